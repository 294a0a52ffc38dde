/* simnet: one-way packet delays of the simulated network.  Each direction
 * of each client-server path has a base delay, jitter (uniform around the
 * base, or a queue: exponential above it), occasional spikes, loss and
 * reordering (a packet held back long enough to arrive after later ones). */
#ifndef NTSD_SIM_SIMNET_H
#define NTSD_SIM_SIMNET_H

#include <stdbool.h>
#include <stdint.h>

#include "sim_rng.h"

typedef struct simnet_path {
  double base;         /* seconds */
  double jitter;       /* delay is base + uniform(-jitter, +jitter), >= 0 */
  bool queue;          /* ... or base + exponential with mean `jitter` */
  double loss;         /* probability a packet is dropped */
  double spike_prob;   /* probability a packet is delayed by `spike` more */
  double spike;        /* seconds */
  double reorder_prob; /* probability a packet is held back by up to reorder_max */
  double reorder_max;  /* seconds */
} simnet_path;

typedef struct simnet_stats {
  uint64_t sent, lost, spiked, reordered;
} simnet_stats;

/* Draws the delay of one packet on path p; false if the packet is lost. */
bool simnet_delay(const simnet_path *p, sim_rng *rng, simnet_stats *st, double *delay);

#endif
