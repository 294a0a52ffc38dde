/* sim: deterministic single-process NTP simulator.
 *
 * Virtual true time, one client running our pure code (an ntp_source per
 * server and the daemon's own engine, proto/core: selection and the
 * discipline) on a simclock, virtual servers answering through ntp_server_prepare/finish, and simnet
 * delays in between.  An event queue orders everything; a seed replays a
 * run exactly.  Hours of simulated time take milliseconds. */
#ifndef NTSD_SIM_SIM_H
#define NTSD_SIM_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "proto/core.h"
#include "simclock.h"
#include "simnet.h"

#define SIM_MAX_SERVERS 8
#define SIM_PROF_BINS 10 /* start-up profile: 60 s bins */

typedef struct sim_server_cfg {
  double offset;    /* server clock - true time: 0 for a truechimer */
  double noise;     /* reading noise of its clock, seconds (1 sigma) */
  simnet_path out;  /* client -> server */
  simnet_path back; /* server -> client */
} sim_server_cfg;

/* Pass limits; a zero limit (or -1 for counts) is not checked. */
typedef struct sim_limits {
  double settle;     /* seconds before the error statistics start */
  double rms;        /* RMS of (time error - bias) after settle */
  double max_err;    /* max |time error - bias| after settle */
  double bias;       /* expected constant time error (path asymmetry) */
  double sync_band;  /* |error - bias| band for the sync time */
  double sync_time;  /* error stays within sync_band from this time on */
  int min_steps, max_steps;
  bool no_false_peer; /* no falseticker is system peer (or fed) after settle */
  bool want_panic;    /* the panic threshold must have refused an offset */
  double min_final_err; /* |final error| at least this (a refused step) */
  double early;      /* end of the start-up window (seconds), 0: none */
  double early_max_err; /* max |time error - bias| from the first update to early */
  double first_update;  /* the first update reaches the discipline by this */
} sim_limits;

typedef struct sim_cfg {
  const char *name;
  const char *what;  /* one-line description */
  double duration;   /* simulated seconds */
  simclock_cfg clock;
  ntp_disc_cfg disc;
  int minpoll, maxpoll;
  bool iburst;
  double precision;  /* client clock precision, seconds */
  ntp_select_cfg select; /* `tos`, as the daemon passes it to the core */
  ntp_core_feed feed; /* which samples reach the discipline */
  bool no_envelope;     /* survivors mode without delays: no delay envelope */
  int n_servers;
  sim_server_cfg servers[SIM_MAX_SERVERS];
  sim_limits lim;
} sim_cfg;

typedef struct sim_result {
  bool pass;
  char why[160];      /* first failed limit */
  double rms, max_err, sync_time, final_err;
  double freq_ppm;    /* discipline's base frequency at the end */
  double max_abs_freq; /* largest |freq_ppm| ever commanded */
  double early_max_err; /* max |time error - bias| in the start-up window */
  double early_rms;     /* RMS time error there (the benchmark's 600 s view) */
  double early_max_freq; /* largest |base freq - true freq| there, ppm */
  double first_update;  /* true time of the first update fed, INFINITY if none */
  int steps, panics, updates;
  int false_peer;     /* seconds after settle with a falseticker as peer */
  int false_fed;      /* falseticker samples fed to the discipline after settle */
  double early_prof[SIM_PROF_BINS]; /* sum of squared errors per 60 s of start-up */
  int early_prof_n[SIM_PROF_BINS];
  simnet_stats net;
} sim_result;

/* Fills the defaults every scenario starts from. */
void sim_default_cfg(sim_cfg *c);

/* Runs one scenario with `seed`; `trace` (optional) gets one line per clock
 * update.  Returns res->pass. */
bool sim_run(const sim_cfg *cfg, uint64_t seed, sim_result *res, FILE *trace);

#endif
