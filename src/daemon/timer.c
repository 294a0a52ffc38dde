/* timer: seconds to timevals for libevent. */
#include "daemon/timer.h"

#include <event2/event.h>
#include <math.h>

void timer_arm_in(struct event *ev, double seconds)
{
  if (!(seconds > 0))
    seconds = 0;
  double whole = floor(seconds);
  struct timeval tv = {.tv_sec = (time_t)whole, .tv_usec = (suseconds_t)((seconds - whole) * 1e6)};
  evtimer_add(ev, &tv);
}
