/* clockctl: system and null clock backends. */
#include "daemon/clockctl.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timex.h>
#include <time.h>

#include "daemon/log.h"
#include "daemon/sysclock.h"

struct clockctl {
  enum clockctl_kind kind;
  bool control; /* the system clock */
};

clockctl *clockctl_open(enum clockctl_kind kind, char *err, size_t errlen)
{
  clockctl *c = calloc(1, sizeof(*c));
  if (!c) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  c->kind = kind;
  c->control = kind == CLOCKCTL_SYSTEM;
  if (!c->control)
    return c;
  /* Take over from the kernel PLL/FLL; fails without CAP_SYS_TIME, which
   * is the right moment to say so. */
  struct timex tx = {.modes = ADJ_STATUS | ADJ_OFFSET | ADJ_NANO, .status = STA_UNSYNC,
                     .offset = 0};
  if (clock_adjtime(CLOCK_REALTIME, &tx) < 0) {
    snprintf(err, errlen, "cannot control the system clock (%s); run with the right to set "
             "the time (CAP_SYS_TIME) or use -x", strerror(errno));
    free(c);
    return NULL;
  }
  return c;
}

void clockctl_close(clockctl *c) { free(c); }
bool clockctl_controls(const clockctl *c) { return c->kind != CLOCKCTL_NONE; }

const char *clockctl_name(const clockctl *c)
{
  return c->kind == CLOCKCTL_SYSTEM ? "system" : c->kind == CLOCKCTL_VIRTUAL ? "virtual" : "none";
}

bool clockctl_set_freq(clockctl *c, double ppm)
{
  if (!isfinite(ppm) || fabs(ppm) > 500.0)
    return false;
  if (c->kind == CLOCKCTL_VIRTUAL)
    sysclock_virtual_set_freq(ppm);
  if (!c->control)
    return true;
  /* The kernel's unit is 2^-16 ppm. */
  struct timex tx = {.modes = ADJ_FREQUENCY, .freq = lround(ppm * 65536.0)};
  if (clock_adjtime(CLOCK_REALTIME, &tx) < 0) {
    log_err("cannot set the clock frequency: %s", strerror(errno));
    return false;
  }
  return true;
}

bool clockctl_step(clockctl *c, double seconds)
{
  if (!isfinite(seconds))
    return false;
  if (c->kind == CLOCKCTL_VIRTUAL) {
    sysclock_virtual_step(seconds);
    log_notice("virtual clock stepped by %+.6f s", seconds);
  }
  if (!c->control)
    return true;
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
  log_notice("clock stepped by %+.6f s", seconds);
  return true;
}

bool clockctl_set_status(clockctl *c, int leap, bool synced)
{
  if (!c->control)
    return true;
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
