/* ntp_time: NTP timestamp arithmetic. */
#include "proto/ntp_time.h"

#include <math.h>

#define FRAC 4294967296.0 /* 2^32 */

ntp_ts ntp_ts_from_timespec(const struct timespec *ts)
{
  /* Modulo 2^32 seconds: the era is dropped on purpose. */
  uint64_t sec = (uint64_t)((int64_t)ts->tv_sec + (int64_t)NTP_UNIX_OFFSET) & 0xffffffffULL;
  uint64_t frac = (((uint64_t)ts->tv_nsec << 32) + 500000000ULL) / 1000000000ULL;
  if (frac > 0xffffffffULL)
    frac = 0xffffffffULL;
  return (sec << 32) | frac;
}

struct timespec ntp_ts_to_timespec(ntp_ts t, const struct timespec *pivot)
{
  ntp_ts p = ntp_ts_from_timespec(pivot);
  int64_t d = (int64_t)(t - p); /* signed 32.32 distance from the pivot */
  int64_t dsec = d >> 32;       /* floor */
  uint64_t dfrac = (uint64_t)d & 0xffffffffULL;
  /* Re-add the pivot's own fraction exactly. */
  uint64_t pfrac = p & 0xffffffffULL;
  uint64_t frac = dfrac + pfrac;
  int64_t sec = (int64_t)pivot->tv_sec + dsec + (int64_t)(frac >> 32);
  frac &= 0xffffffffULL;
  struct timespec r;
  uint64_t nsec = (frac * 1000000000ULL + 0x80000000ULL) >> 32;
  if (nsec >= 1000000000ULL) {
    nsec -= 1000000000ULL;
    sec++;
  }
  r.tv_sec = (time_t)sec;
  r.tv_nsec = (long)nsec;
  return r;
}

double ntp_ts_diff(ntp_ts a, ntp_ts b)
{
  return (double)(int64_t)(a - b) / FRAC;
}

ntp_ts ntp_ts_add(ntp_ts t, double seconds)
{
  return t + (uint64_t)(int64_t)llround(seconds * FRAC);
}

double ntp_ts_to_double(ntp_ts t) { return (double)t / FRAC; }

ntp_short ntp_short_from_double(double seconds)
{
  if (!(seconds > 0.0))
    return 0;
  if (seconds >= 65535.99998)
    return 0xffffffffU;
  /* Rounded up: root delay and dispersion are error bounds, and a path
   * quicker than the unit (15 us, loopback) must not be served as 0. */
  return (ntp_short)ceil(seconds * 65536.0);
}

double ntp_short_to_double(ntp_short s) { return (double)s / 65536.0; }

double ntp_log2_to_double(int x) { return ldexp(1.0, x); }
