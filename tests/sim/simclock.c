/* simclock: piecewise-linear virtual clock with a wandering frequency. */
#include "simclock.h"

#include <math.h>
#include <stdlib.h>

#include "sim_rng.h"

struct simclock {
  simclock_cfg cfg;
  double t;       /* true time integrated up to */
  double local;   /* local clock at t */
  double mono;    /* monotonic clock at t: local without steps */
  double natural; /* ppm, wandering */
  double applied; /* ppm, from the discipline */
  sim_rng rng;
};

simclock *simclock_create(const simclock_cfg *cfg, uint64_t seed)
{
  simclock *c = calloc(1, sizeof(*c));
  if (!c)
    return NULL;
  c->cfg = *cfg;
  c->local = cfg->offset;
  c->mono = 0;
  c->natural = cfg->freq_ppm;
  sim_rng_seed(&c->rng, seed, 1);
  return c;
}

void simclock_destroy(simclock *c) { free(c); }

void simclock_advance(simclock *c, double t)
{
  double dt = t - c->t;
  if (dt <= 0)
    return;
  double rate = 1.0 + 1e-6 * (c->natural + c->applied);
  c->local += dt * rate;
  c->mono += dt * rate;
  c->t = t;
  if (c->cfg.wander > 0)
    c->natural += 1e6 * c->cfg.wander * sqrt(dt) * sim_rng_gauss(&c->rng);
}

double simclock_local(simclock *c, double t)
{
  simclock_advance(c, t);
  return c->local;
}

double simclock_mono(simclock *c, double t)
{
  simclock_advance(c, t);
  return c->mono;
}

void simclock_set_freq(simclock *c, double t, double ppm)
{
  simclock_advance(c, t);
  c->applied = ppm;
}

void simclock_step(simclock *c, double t, double seconds)
{
  simclock_advance(c, t);
  c->local += seconds;
}

double simclock_true_at_mono(simclock *c, double t, double mono)
{
  simclock_advance(c, t);
  double rate = 1.0 + 1e-6 * (c->natural + c->applied);
  return t + (mono - c->mono) / rate;
}

double simclock_rate_ppm(const simclock *c) { return c->natural + c->applied; }
