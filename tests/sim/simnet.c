/* simnet: per-packet delay draws. */
#include "simnet.h"

#include <math.h>

bool simnet_delay(const simnet_path *p, sim_rng *rng, simnet_stats *st, double *delay)
{
  /* Always draw the same number of values so that one path's settings do
   * not shift the random stream of the packets that follow. */
  double u_loss = sim_rng_uniform(rng), u_jit = sim_rng_uniform(rng);
  double u_spike = sim_rng_uniform(rng), u_reo = sim_rng_uniform(rng);
  double u_hold = sim_rng_uniform(rng);
  st->sent++;
  if (u_loss < p->loss) {
    st->lost++;
    return false;
  }
  double d = p->queue ? p->base - p->jitter * log1p(-u_jit)
                       : p->base + p->jitter * (2.0 * u_jit - 1.0);
  if (d < 0)
    d = 0;
  if (u_spike < p->spike_prob) {
    d += p->spike;
    st->spiked++;
  }
  if (u_reo < p->reorder_prob) {
    d += p->reorder_max * u_hold;
    st->reordered++;
  }
  *delay = d;
  return true;
}
