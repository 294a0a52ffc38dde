/* sysclock: system clock and randomness. */
#include "daemon/sysclock.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "daemon/log.h"

struct timespec sysclock_system(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts;
}

double sysclock_mono(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

double sysclock_precision(int *log2_out)
{
  /* The smallest non-zero step between consecutive readings, as ntpd
   * measures it; at least the clock's resolution. */
  double best = 1.0;
  struct timespec a, b;
  for (int i = 0; i < 64; i++) {
    clock_gettime(CLOCK_REALTIME, &a);
    do
      clock_gettime(CLOCK_REALTIME, &b);
    while (b.tv_sec == a.tv_sec && b.tv_nsec == a.tv_nsec);
    double d = (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) * 1e-9;
    if (d > 0 && d < best)
      best = d;
  }
  int l = (int)floor(log2(best));
  if (l < -30)
    l = -30;
  if (log2_out)
    *log2_out = l;
  return ldexp(1.0, l);
}

void sysclock_random(void *buf, size_t n)
{
  uint8_t *p = buf;
  while (n > 0) {
    ssize_t r = getrandom(p, n, 0);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      log_err("getrandom failed: %s", strerror(errno));
      abort();
    }
    p += r;
    n -= (size_t)r;
  }
}
