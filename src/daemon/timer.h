/* timer: libevent timers armed in seconds (double), as the pure core
 * reckons time. */
#ifndef NTSD_DAEMON_TIMER_H
#define NTSD_DAEMON_TIMER_H

struct event;

/* Arms ev to fire in `seconds` (at once if not positive). */
void timer_arm_in(struct event *ev, double seconds);

#endif
