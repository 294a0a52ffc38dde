/* clockctl: the system, null and virtual clock backends. */
#define LOG_CLASS LOG_CLASS_CLOCK /* log.h: the class `logconfig` knows them by */
#include "daemon/clockctl.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timex.h>

#include "daemon/log.h"
#include "daemon/sysclock.h"

typedef struct clock_ops {
  const char *name;
  bool controls; /* the discipline's decisions change something */
  bool (*open)(clockctl *c, char *err, size_t errlen);
  /* The daemon's time minus the system time; NULL: they are the same. */
  double (*error)(const clockctl *c);
  bool (*set_freq)(clockctl *c, double ppm);
  bool (*step)(clockctl *c, double seconds);
  bool (*set_status)(clockctl *c, int leap, bool synced);
} clock_ops;

struct clockctl {
  const clock_ops *ops;
  /* virtual: error(t) = base + (freq_err + corr) * (t - t0) at monotonic
   * time t, with t0 moved forward whenever the rate changes */
  double base, t0;
  double freq_err_ppm; /* the simulated oscillator's own error */
  double corr_ppm;     /* the discipline's correction */
  pthread_mutex_t lock; /* virtual: base, t0, corr_ppm */
};

static bool nothing_to_open(clockctl *c, char *err, size_t errlen)
{
  (void)c;
  (void)err;
  (void)errlen;
  return true;
}

static bool nothing_freq(clockctl *c, double ppm)
{
  (void)c;
  (void)ppm;
  return true;
}

static bool nothing_step(clockctl *c, double seconds)
{
  (void)c;
  (void)seconds;
  return true;
}

static bool nothing_status(clockctl *c, int leap, bool synced)
{
  (void)c;
  (void)leap;
  (void)synced;
  return true;
}

/* ---- system: the kernel clock ------------------------------------------- */

static bool system_open(clockctl *c, char *err, size_t errlen)
{
  (void)c;
  /* Take over from the kernel PLL/FLL; fails without CAP_SYS_TIME, which
   * is the right moment to say so. */
  struct timex tx = {.modes = ADJ_STATUS | ADJ_OFFSET | ADJ_NANO, .status = STA_UNSYNC,
                     .offset = 0};
  if (clock_adjtime(CLOCK_REALTIME, &tx) < 0) {
    snprintf(err, errlen, "cannot control the system clock (%s); run with the right to set "
             "the time (CAP_SYS_TIME) or use -x", strerror(errno));
    return false;
  }
  return true;
}

static bool system_set_freq(clockctl *c, double ppm)
{
  (void)c;
  /* The kernel's unit is 2^-16 ppm. */
  struct timex tx = {.modes = ADJ_FREQUENCY, .freq = lround(ppm * 65536.0)};
  if (clock_adjtime(CLOCK_REALTIME, &tx) < 0) {
    log_err("cannot set the clock frequency: %s", strerror(errno));
    return false;
  }
  return true;
}

static bool system_step(clockctl *c, double seconds)
{
  (void)c;
  double whole = floor(seconds);
  struct timex tx = {.modes = ADJ_SETOFFSET | ADJ_NANO};
  tx.time.tv_sec = (time_t)whole;
  tx.time.tv_usec = (suseconds_t)lround((seconds - whole) * 1e9); /* ns with ADJ_NANO */
  if (tx.time.tv_usec >= 1000000000) {
    tx.time.tv_sec++;
    tx.time.tv_usec -= 1000000000;
  }
  if (clock_adjtime(CLOCK_REALTIME, &tx) < 0) {
    log_err("cannot step the clock by %+.6f s: %s", seconds, strerror(errno));
    return false;
  }
  return true;
}

static bool system_set_status(clockctl *c, int leap, bool synced)
{
  (void)c;
  struct timex tx = {.modes = 0};
  if (clock_adjtime(CLOCK_REALTIME, &tx) < 0)
    return false;
  int status = tx.status & ~(STA_INS | STA_DEL | STA_UNSYNC | STA_PLL | STA_FLL);
  if (leap == 1)
    status |= STA_INS;
  else if (leap == 2)
    status |= STA_DEL;
  if (!synced)
    status |= STA_UNSYNC;
  if (status == tx.status)
    return true;
  struct timex set = {.modes = ADJ_STATUS, .status = status};
  if (clock_adjtime(CLOCK_REALTIME, &set) < 0) {
    log_err("cannot set the kernel clock status: %s", strerror(errno));
    return false;
  }
  return true;
}

/* ---- virtual: the system time plus a disciplined error ------------------ */

/* The NTP server's packet threads (`threads`) read the error while the
 * main thread disciplines it: under the lock, which only this backend
 * (a test and simulation aid) takes. */
static double error_locked(const clockctl *c)
{
  return c->base + (c->freq_err_ppm + c->corr_ppm) * 1e-6 * (sysclock_mono() - c->t0);
}

static double virtual_error(const clockctl *c)
{
  pthread_mutex_lock(&((clockctl *)c)->lock);
  double e = error_locked(c);
  pthread_mutex_unlock(&((clockctl *)c)->lock);
  return e;
}

static bool virtual_set_freq(clockctl *c, double ppm)
{
  pthread_mutex_lock(&c->lock);
  c->base = error_locked(c);
  c->t0 = sysclock_mono();
  c->corr_ppm = ppm;
  pthread_mutex_unlock(&c->lock);
  return true;
}

static bool virtual_step(clockctl *c, double seconds)
{
  pthread_mutex_lock(&c->lock);
  c->base = error_locked(c) + seconds;
  c->t0 = sysclock_mono();
  pthread_mutex_unlock(&c->lock);
  return true;
}

static const clock_ops ops_none = {.name = "none", .open = nothing_to_open,
                                   .set_freq = nothing_freq, .step = nothing_step,
                                   .set_status = nothing_status};
static const clock_ops ops_system = {.name = "system", .controls = true, .open = system_open,
                                     .set_freq = system_set_freq, .step = system_step,
                                     .set_status = system_set_status};
static const clock_ops ops_virtual = {.name = "virtual", .controls = true,
                                      .open = nothing_to_open, .error = virtual_error,
                                      .set_freq = virtual_set_freq, .step = virtual_step,
                                      .set_status = nothing_status};

/* ---- the instance ------------------------------------------------------- */

clockctl *clockctl_open(const clockctl_cfg *cfg, char *err, size_t errlen)
{
  clockctl *c = calloc(1, sizeof(*c));
  if (!c) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  c->ops = cfg->kind == CLOCKCTL_SYSTEM    ? &ops_system
           : cfg->kind == CLOCKCTL_VIRTUAL ? &ops_virtual
                                           : &ops_none;
  c->base = cfg->virtual_offset;
  c->freq_err_ppm = cfg->virtual_freq_ppm;
  c->t0 = sysclock_mono();
  pthread_mutex_init(&c->lock, NULL);
  if (!c->ops->open(c, err, errlen)) {
    clockctl_close(c);
    return NULL;
  }
  return c;
}

void clockctl_close(clockctl *c)
{
  if (!c)
    return;
  pthread_mutex_destroy(&c->lock);
  free(c);
}
bool clockctl_controls(const clockctl *c) { return c->ops->controls; }
const char *clockctl_name(const clockctl *c) { return c->ops->name; }

bool clockctl_error(const clockctl *c, double *seconds)
{
  if (!c->ops->error)
    return false;
  *seconds = c->ops->error(c);
  return true;
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

struct timespec clockctl_local(const clockctl *c, const struct timespec *kernel)
{
  return c->ops->error ? add_seconds(*kernel, c->ops->error(c)) : *kernel;
}

struct timespec clockctl_now(const clockctl *c)
{
  struct timespec ts = sysclock_system();
  return clockctl_local(c, &ts);
}

ntp_ts clockctl_now_ntp(const clockctl *c)
{
  struct timespec ts = clockctl_now(c);
  return ntp_ts_from_timespec(&ts);
}

bool clockctl_set_freq(clockctl *c, double ppm)
{
  if (!isfinite(ppm) || fabs(ppm) > 500.0)
    return false;
  return c->ops->set_freq(c, ppm);
}

bool clockctl_step(clockctl *c, double seconds)
{
  return isfinite(seconds) && c->ops->step(c, seconds);
}

bool clockctl_set_status(clockctl *c, int leap, bool synced)
{
  return c->ops->set_status(c, leap, synced);
}
