/* discipline: steering the local clock from the system offset, sans-I/O.
 *
 * The caller feeds one offset per fresh system-peer sample and applies the
 * returned action to the real clock (a step, and a frequency offset that
 * holds until the next action).  The module never reads a clock: all times
 * are monotonic seconds passed in, so the same code runs in the daemon,
 * the unit tests and the simulator (tests/sim).
 *
 * Sign conventions follow NTP: offset = server - local, so a positive offset
 * means the local clock is behind; a positive step moves the clock forward;
 * a positive freq_ppm makes the clock run faster.
 *
 * Two control laws are kept behind ntp_disc_algo (docs/discipline.md has
 * the simulator comparison that chose the default):
 *   NTP_DISC_REGRESSION  chrony-like: the frequency is the slope of a
 *                        weighted linear regression of the recent offsets
 *                        (corrected for our own adjustments) against time,
 *                        and the phase is slewed out over a few polls;
 *   NTP_DISC_PLL         RFC 5905 hybrid PLL/FLL with a time constant tied
 *                        to the poll interval, and ntpd's direct frequency
 *                        measurement when no drift file is known. */
#ifndef NTSD_PROTO_DISCIPLINE_H
#define NTSD_PROTO_DISCIPLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum ntp_disc_algo {
  NTP_DISC_REGRESSION = 0, /* default */
  NTP_DISC_PLL,
} ntp_disc_algo;

typedef struct ntp_disc_cfg {
  ntp_disc_algo algo;
  /* Offsets beyond this are stepped instead of slewed, once they have
   * persisted for `stepout` seconds (a single spike is ignored).  0: never
   * step after start-up.  Default 0.128 s (ntpd, NTPsec). */
  double step_threshold;
  double stepout;          /* seconds, default 300 (ntpd, NTPsec) */
  /* Start-up, until the frequency is known: offsets beyond the step
   * threshold are stepped at once (they come from the unknown time and
   * frequency, like ntpd's FREQ state and chrony's makestep), and the very
   * first update is stepped beyond 0.128 s even when step_threshold is 0
   * (`ntpd -g`, ntpd-rs' start-up step).  Default true. */
  bool startup_step;
  /* Offsets beyond this are never corrected (refused_panic), at start-up
   * too: set 0 to allow any start-up step.  Default 1000 s. */
  double panic_threshold;
  double max_freq_ppm;     /* bound on every freq_ppm returned, default 500 */
  double initial_freq_ppm; /* from a drift file; applied from ntp_disc_create on */
  bool initial_freq_known; /* the drift file existed: skip frequency acquisition */
  /* Estimates only (ntsd -x, `disable ntp`): the clock is never adjusted, so
   * every action is "nothing", no step, spike or panic logic applies, and
   * ntp_disc_offset_now() is the estimated error of the untouched clock. */
  bool estimate_only;
  /* Our clock's reading precision, seconds: no sample's error is taken
   * below it (0: none known). */
  double precision;
} ntp_disc_cfg;

/* The defaults described above. */
void ntp_disc_default_cfg(ntp_disc_cfg *cfg);

/* What the caller does with the clock, now. */
typedef struct ntp_disc_action {
  double step;          /* seconds to add to the clock (0: none) */
  double freq_ppm;      /* frequency offset to apply from now on, base + slew */
  double base_freq_ppm; /* its lasting part (what a drift file stores) */
  /* Monotonic time when the temporary phase-slew part of freq_ppm is used
   * up: call ntp_disc_tick() then.  INFINITY when freq_ppm == base. */
  double slew_until;
  bool refused_panic;   /* |offset| > panic threshold: nothing done */
  bool spike;           /* beyond the step threshold for less than stepout:
                           the sample was ignored */
  bool startup;         /* this step is a start-up step (see startup_step) */
} ntp_disc_action;

typedef struct ntp_disc ntp_disc;

/* `now`: monotonic seconds; the clock is assumed to run with the
 * configured initial frequency from then on. */
ntp_disc *ntp_disc_create(const ntp_disc_cfg *cfg, double now);
void ntp_disc_destroy(ntp_disc *d);

/* One clock update.  offset: the offset measured at `taken` (<= now,
 * monotonic), as it was measured: not corrected for adjustments made since,
 * steps included (the module remembers its own; a filter that shifts its
 * samples on a step, ntp_source_clock_stepped, would count the step twice).
 * error: its jitter/error estimate (seconds, > 0); poll: the source's poll
 * exponent (log2 s): the time constant of the PLL, the longest slew of the
 * regression.  A clock filter hands over its minimum-delay sample, often
 * several polls old: passing when it was taken lets the regression place it
 * right.  Feed each sample once. */
ntp_disc_action ntp_disc_update_at(ntp_disc *d, double now, double taken, double offset,
                                   double error, int poll);

/* One sample with everything the discipline can use. */
typedef struct ntp_disc_sample {
  double taken;  /* monotonic time it was measured (<= now) */
  double offset; /* server - local, as measured */
  double error;  /* its error estimate: the sample weighs 1/error^2 */
  double delay;  /* its round-trip delay, NAN if unknown */
  int path;      /* the caller's id of the source it came from, -1: unknown */
} ntp_disc_sample;

/* Sorts samples gathered from several sources by measurement time, oldest
 * first, keeping the given order for equal times: the order ntp_disc_feed()
 * wants them in. */
void ntp_disc_sort_samples(ntp_disc_sample *s, size_t n);

/* ntp_disc_update_at() for a sample whose delay and source are known: the
 * phase estimate then also uses the delay envelope of each source's recent
 * samples (docs/discipline.md, "The envelope"). */
ntp_disc_action ntp_disc_feed(ntp_disc *d, double now, const ntp_disc_sample *s, int poll);

/* The same for an offset measured now. */
ntp_disc_action ntp_disc_update(ntp_disc *d, double now, double offset, double error,
                                int poll);

/* Ends an expired phase slew: call at action.slew_until; returns the
 * action to apply (freq_ppm back to the base, no step). */
ntp_disc_action ntp_disc_tick(ntp_disc *d, double now);

/* The offset a sample measured at `taken` with offset x would show at
 * `now`, given the adjustments commanded since and the current frequency
 * estimate.  Clock filters hold samples several polls old: age them with
 * this before selection compares sources (chrony corrects its samples the
 * same way).  Exact for `taken` within the last NTP_DISC_PHASE_HIST
 * adjustments.  Linear in x. */
#define NTP_DISC_PHASE_HIST 64
double ntp_disc_predict(const ntp_disc *d, double x, double taken, double now);

/* The estimated offset of the clock now (server - local, seconds): what
 * the last update found and has not corrected yet, carried to `now` (less
 * the slew since, or, estimating only, plus the drift since).  0 before
 * the first update. */
double ntp_disc_offset_now(const ntp_disc *d, double now);

/* The poll (log2 s) source `path` should use, from how well its samples
 * land where the discipline predicted them (RFC 5905's jiggle counter, per
 * source).  A source with no advice of its own (never fed: not selected)
 * gets the highest any source has; -1 while there is none (also after a
 * step).  For ntp_source_set_poll(). */
int ntp_disc_poll(const ntp_disc *d, int path);

/* State for `ntsctl` and the drift file. */
typedef struct ntp_disc_info {
  bool synced;          /* at least one update corrected the clock */
  double freq_ppm;      /* current base frequency offset */
  double skew_ppm;      /* its estimated error (1 sigma), 0 if unknown */
  double last_offset;   /* last offset fed (seconds) */
  double last_update;   /* monotonic time of it, -1 if none */
  double residual;      /* phase still being slewed out at last_update */
  uint64_t updates, steps, spikes, panics;
  double stepped_total; /* sum of |step|, seconds */
  int samples;          /* offsets in the regression window */
} ntp_disc_info;

void ntp_disc_get_info(const ntp_disc *d, ntp_disc_info *out);

const char *ntp_disc_algo_name(ntp_disc_algo a);

#endif
