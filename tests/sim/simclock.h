/* simclock: the client's virtual clock in the simulator.
 *
 * True time is the simulator's time axis (seconds since the start).  The
 * local clock starts `offset` seconds off and runs at 1 + (natural + applied)
 * ppm, where the natural frequency error starts at `freq_ppm` and wanders as
 * a random walk; the discipline's freq_ppm is the applied part and its steps
 * jump the local (not the monotonic) clock. */
#ifndef NTSD_SIM_SIMCLOCK_H
#define NTSD_SIM_SIMCLOCK_H

#include <stdint.h>

typedef struct simclock_cfg {
  double offset;   /* local - true at the start, seconds */
  double freq_ppm; /* natural frequency error (positive: runs fast) */
  double wander;   /* random-walk of the frequency, (s/s) per sqrt(s) */
} simclock_cfg;

typedef struct simclock simclock;

simclock *simclock_create(const simclock_cfg *cfg, uint64_t seed);
void simclock_destroy(simclock *c);

/* Integrates the clock up to true time t (never backwards). */
void simclock_advance(simclock *c, double t);

/* Readings at true time t (advance first). */
double simclock_local(simclock *c, double t);
double simclock_mono(simclock *c, double t);

/* Discipline actions at true time t. */
void simclock_set_freq(simclock *c, double t, double ppm);
void simclock_step(simclock *c, double t, double seconds);

/* True time at which the monotonic clock reads `mono`, assuming the
 * current rate holds (for scheduling timers). */
double simclock_true_at_mono(simclock *c, double t, double mono);

/* Current total rate error in ppm (natural + applied). */
double simclock_rate_ppm(const simclock *c);

#endif
