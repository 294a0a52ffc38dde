/* sysclock: system clock and randomness. */
#include "daemon/sysclock.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "daemon/log.h"

/* The virtual clock: error(t) = base + (freq_err + corr) * (t - t0), with
 * t0 moved forward whenever the rate changes. */
static struct {
  bool on;
  double base, t0;     /* error at monotonic time t0 */
  double freq_err_ppm; /* the simulated oscillator's own error */
  double corr_ppm;     /* the discipline's correction */
} vclock;

void sysclock_virtual_enable(double offset, double freq_ppm)
{
  vclock.on = true;
  vclock.base = offset;
  vclock.t0 = sysclock_mono();
  vclock.freq_err_ppm = freq_ppm;
  vclock.corr_ppm = 0;
}

bool sysclock_virtual_on(void) { return vclock.on; }

double sysclock_virtual_error(void)
{
  if (!vclock.on)
    return 0;
  return vclock.base + (vclock.freq_err_ppm + vclock.corr_ppm) * 1e-6 *
                           (sysclock_mono() - vclock.t0);
}

void sysclock_virtual_step(double seconds)
{
  vclock.base = sysclock_virtual_error() + seconds;
  vclock.t0 = sysclock_mono();
}

void sysclock_virtual_set_freq(double ppm)
{
  vclock.base = sysclock_virtual_error();
  vclock.t0 = sysclock_mono();
  vclock.corr_ppm = ppm;
}

static struct timespec add_seconds(struct timespec ts, double s)
{
  double whole = floor(s);
  ts.tv_sec += (time_t)whole;
  ts.tv_nsec += (long)llround((s - whole) * 1e9);
  while (ts.tv_nsec >= 1000000000L) {
    ts.tv_nsec -= 1000000000L;
    ts.tv_sec++;
  }
  return ts;
}

struct timespec sysclock_local(const struct timespec *kernel)
{
  return vclock.on ? add_seconds(*kernel, sysclock_virtual_error()) : *kernel;
}

struct timespec sysclock_realtime(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return vclock.on ? add_seconds(ts, sysclock_virtual_error()) : ts;
}

ntp_ts sysclock_now_ntp(void)
{
  struct timespec ts = sysclock_realtime();
  return ntp_ts_from_timespec(&ts);
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
