/* sim_rng: the simulator's seeded PRNG (xoshiro256** seeded by splitmix64),
 * so a seed replays a run exactly.  Independent streams per component keep
 * the network noise identical when only the discipline changes. */
#ifndef NTSD_SIM_SIM_RNG_H
#define NTSD_SIM_SIM_RNG_H

#include <stdint.h>

typedef struct sim_rng {
  uint64_t s[4];
} sim_rng;

void sim_rng_seed(sim_rng *r, uint64_t seed, uint64_t stream);
uint64_t sim_rng_next(sim_rng *r);
double sim_rng_uniform(sim_rng *r); /* [0, 1) */
double sim_rng_gauss(sim_rng *r);   /* N(0, 1) */

#endif
