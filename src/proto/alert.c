/* alert: first event at once, then one summary per interval. */
#include "proto/alert.h"

#include <math.h>
#include <string.h>

void alert_init(alert *a, double interval)
{
  memset(a, 0, sizeof(*a));
  a->interval = interval > 0 ? interval : 60.0;
  a->opened = -1.0;
}

bool alert_event(alert *a, unsigned reason, double now)
{
  if (reason >= ALERT_MAX_REASONS)
    reason = ALERT_MAX_REASONS - 1;
  if (a->opened < 0) {
    a->opened = now; /* reported now; the interval counts what follows */
    return true;
  }
  a->pending[reason]++;
  return false;
}

uint64_t alert_summary(alert *a, double now, uint64_t *out)
{
  if (a->opened < 0 || now < a->opened + a->interval)
    return 0;
  uint64_t sum = 0;
  for (unsigned i = 0; i < ALERT_MAX_REASONS; i++) {
    out[i] = a->pending[i];
    sum += a->pending[i];
    a->pending[i] = 0;
  }
  /* Events in this interval keep the next one open; a quiet one closes. */
  a->opened = sum ? now : -1.0;
  return sum;
}

double alert_due(const alert *a) { return a->opened < 0 ? INFINITY : a->opened + a->interval; }
