/* clockctl: the clock the daemon keeps, and what the discipline's
 * decisions are applied to.  One instance, opened with one of three
 * backends (an ops table inside clockctl.c), owns all of its state:
 *
 *   system  the kernel clock: frequency through clock_adjtime(ADJ_FREQUENCY),
 *           steps through ADJ_SETOFFSET, leap seconds through STA_INS/STA_DEL;
 *           the kernel's own PLL/FLL is switched off;
 *   none    (-x, `disable ntp`) nothing is ever changed: ntsd only estimates;
 *   virtual (--virtual-clock, for tests) the daemon's time is the system
 *           time plus an error that the discipline steps and slews like a
 *           real clock's; the real clock is never touched.
 *
 * Every time the daemon reads or stamps (request and response timestamps,
 * the reference time, key rotation) comes from the instance, so under the
 * virtual backend the whole daemon lives on the virtual clock.  The pure
 * discipline never calls these: the daemon applies its actions. */
#ifndef NTSD_DAEMON_CLOCKCTL_H
#define NTSD_DAEMON_CLOCKCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "proto/ntp_time.h"

typedef struct clockctl clockctl;

enum clockctl_kind { CLOCKCTL_NONE, CLOCKCTL_SYSTEM, CLOCKCTL_VIRTUAL };

typedef struct clockctl_cfg {
  enum clockctl_kind kind;
  /* virtual only: the error it starts with (its time minus the system
   * time, seconds) and its oscillator's own frequency error, ppm */
  double virtual_offset;
  double virtual_freq_ppm;
} clockctl_cfg;

/* NULL with a message on failure (no right to set the system clock). */
clockctl *clockctl_open(const clockctl_cfg *cfg, char *err, size_t errlen);
void clockctl_close(clockctl *c);
bool clockctl_controls(const clockctl *c);
const char *clockctl_name(const clockctl *c); /* "system", "virtual" or "none" */

/* The daemon's time now. */
struct timespec clockctl_now(const clockctl *c);
ntp_ts clockctl_now_ntp(const clockctl *c);
/* A kernel timestamp (system time) on the daemon's clock. */
struct timespec clockctl_local(const clockctl *c, const struct timespec *kernel);
/* The daemon's time minus the system time, for a backend that keeps its
 * own time (virtual); false for the others. */
bool clockctl_error(const clockctl *c, double *seconds);

/* Each returns false (and logs the reason) on failure; the null backend
 * always succeeds without doing anything.  A successful step is not
 * logged here: the caller says once why it stepped. */
bool clockctl_set_freq(clockctl *c, double ppm);
bool clockctl_step(clockctl *c, double seconds);
/* leap: 0 none, 1 insert, 2 delete at the end of the UTC day; synced
 * clears the kernel's "unsynchronised" flag. */
bool clockctl_set_status(clockctl *c, int leap, bool synced);

#endif
