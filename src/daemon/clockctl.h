/* clockctl: what the discipline's decisions are applied to.
 *
 *   system  the kernel clock: frequency through clock_adjtime(ADJ_FREQUENCY),
 *           steps through ADJ_SETOFFSET, leap seconds through STA_INS/STA_DEL;
 *           the kernel's own PLL/FLL is switched off;
 *   none    (-x, `disable ntp`) nothing is ever changed: ntsd only estimates;
 *   virtual (--virtual-clock, for tests) the discipline steers the virtual
 *           clock in sysclock: the real one is never touched.
 *
 * The pure discipline never calls these: the daemon applies its actions. */
#ifndef NTSD_DAEMON_CLOCKCTL_H
#define NTSD_DAEMON_CLOCKCTL_H

#include <stdbool.h>
#include <stddef.h>

typedef struct clockctl clockctl;

enum clockctl_kind { CLOCKCTL_NONE, CLOCKCTL_SYSTEM, CLOCKCTL_VIRTUAL };

/* NULL with a message on failure (no right to set the system clock). */
clockctl *clockctl_open(enum clockctl_kind kind, char *err, size_t errlen);
void clockctl_close(clockctl *c);
bool clockctl_controls(const clockctl *c);
const char *clockctl_name(const clockctl *c); /* "system", "virtual" or "none" */

/* Each returns false (and logs) on failure; the null backend always
 * succeeds without doing anything. */
bool clockctl_set_freq(clockctl *c, double ppm);
bool clockctl_step(clockctl *c, double seconds);
/* leap: 0 none, 1 insert, 2 delete at the end of the UTC day; synced
 * clears the kernel's "unsynchronised" flag. */
bool clockctl_set_status(clockctl *c, int leap, bool synced);

#endif
