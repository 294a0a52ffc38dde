/* alert: rate-limited reporting of events that should never happen
 * (forged packets, failed authenticators, ...).  The first event after a
 * quiet interval is reported at once; the ones that follow within the
 * interval are only counted, by reason, and reported as one summary when
 * the interval ends.  An operator sees an attack as it starts, and then one
 * line per interval while it lasts, never a flood.
 *
 * Pure: the caller passes the time (monotonic seconds) in and logs. */
#ifndef NTSD_PROTO_ALERT_H
#define NTSD_PROTO_ALERT_H

#include <stdbool.h>
#include <stdint.h>

#define ALERT_MAX_REASONS 8

typedef struct alert {
  double interval;  /* seconds between summaries */
  double opened;    /* start of the current interval; < 0: quiet */
  uint64_t pending[ALERT_MAX_REASONS]; /* counted since the last report */
} alert;

void alert_init(alert *a, double interval);

/* Counts one event.  True if the caller should report it now (the first
 * after a quiet interval); otherwise it waits for the summary.  Reasons
 * out of range are counted as the last one. */
bool alert_event(alert *a, unsigned reason, double now);

/* At or after the end of the interval: copies the counts not reported yet
 * into out[ALERT_MAX_REASONS] and returns their sum (0: nothing to
 * summarise; a quiet interval closes, so the next event is reported at
 * once).  Before the end of the interval: 0 and nothing changes. */
uint64_t alert_summary(alert *a, double now, uint64_t *out);

/* When the current interval ends (INFINITY while quiet): for timers. */
double alert_due(const alert *a);

#endif
