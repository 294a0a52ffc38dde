/* scenarios: the simulator's test table and its command line.
 *
 *   ntsd_sim [-s SEED] [-n RUNS] [-a regression|pll] [-f peer|combined|survivors]
 *            [-v] [-l] [NAME...]
 *
 * Each scenario starts from sim_default_cfg() (one truechimer 1 ms away
 * with 10 us jitter, a client clock 100 ppm fast with 1e-9 wander, poll
 * 6..10 with iburst, 4 hours) and overrides only what it is about, plus its
 * pass limits.  One line per scenario, then "N passed, N failed"; the exit
 * status is non-zero if any failed.  -s replays a seed, -n runs seeds
 * SEED..SEED+RUNS-1 and reports the worst, -v traces every clock update;
 * -a and -f override the control law and which samples feed it (for the
 * comparisons in docs/discipline.md). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

typedef struct scenario {
  const char *name;
  void (*setup)(sim_cfg *c);
} scenario;

static void set_path(sim_server_cfg *srv, double base_out, double base_back, double jitter)
{
  simnet_path p = {.jitter = jitter};
  srv->out = srv->back = p;
  srv->out.base = base_out;
  srv->back.base = base_back;
}

static void add_servers(sim_cfg *c, int n)
{
  for (int i = c->n_servers; i < n; i++)
    c->servers[i] = c->servers[0];
  c->n_servers = n;
}

/* The headline: 100 ppm off, 10 us of network jitter. */
static void sc_freq100(sim_cfg *c)
{
  c->what = "100 ppm, 10 us jitter: RMS < 50 us after 30 min";
  c->lim.rms = 50e-6;
  c->lim.max_err = 200e-6;
  c->lim.max_steps = 0;
  c->lim.sync_time = 1800;
}

static void sc_falseticker(sim_cfg *c)
{
  c->what = "4 sources, one 50 ms off: never system peer, error small";
  add_servers(c, 4);
  c->servers[2].offset = 0.050;
  c->lim.rms = 50e-6;
  c->lim.max_err = 200e-6;
  c->lim.max_steps = 0;
  c->lim.no_false_peer = true;
}

static void sc_spikes(sim_cfg *c)
{
  c->what = "+100 ms on 5% of packets: clock moves < 1 ms";
  c->servers[0].out.spike_prob = c->servers[0].back.spike_prob = 0.05;
  c->servers[0].out.spike = c->servers[0].back.spike = 0.100;
  c->lim.max_err = 1e-3;
  c->lim.rms = 50e-6;
  c->lim.max_steps = 0;
}

static void sc_step3s(sim_cfg *c)
{
  c->what = "3 s initial offset: stepped once at start, never again";
  c->clock.offset = 3.0;
  c->lim.min_steps = c->lim.max_steps = 1;
  c->lim.rms = 50e-6;
  c->lim.max_err = 200e-6;
}

/* The frequency bound leaves no room to slew the phase acquired while the
 * frequency was unknown, so that is stepped; and with wander the clock is
 * beyond the bound half of the time, drifting slowly: bounded, not tight. */
static void sc_freq500(sim_cfg *c)
{
  c->what = "500 ppm: converges, |freq| never beyond 500 ppm";
  c->clock.freq_ppm = 500.0;
  c->lim.rms = 1e-3;
  c->lim.max_err = 2e-3;
  c->lim.sync_band = 2e-3;
  c->lim.max_steps = 4;
}

static void sc_freq500_neg(sim_cfg *c)
{
  sc_freq500(c);
  c->what = "-500 ppm: converges, |freq| never beyond 500 ppm";
  c->clock.freq_ppm = -500.0;
}

static void sc_wan(sim_cfg *c)
{
  c->what = "20+-10 ms delay, 1% loss, 1% reordered";
  set_path(&c->servers[0], 0.020, 0.020, 0.010);
  c->servers[0].out.loss = c->servers[0].back.loss = 0.01;
  c->servers[0].out.reorder_prob = c->servers[0].back.reorder_prob = 0.01;
  c->servers[0].out.reorder_max = c->servers[0].back.reorder_max = 0.5;
  c->duration = 8 * 3600.0;
  c->lim.rms = 3e-3;
  c->lim.max_err = 10e-3;
  c->lim.sync_band = 10e-3;
  c->lim.max_steps = 1; /* updates are rare while the frequency is unknown: a
                           start-up step is allowed (2 seeds in 200 need one) */
}

/* Queueing: 8 ms each way plus an exponential wait with a mean of 2 ms
 * (most exchanges are a little late, a few very late; no ceiling, unlike
 * the uniform jitter of the other scenarios). */
static void sc_queue(sim_cfg *c)
{
  c->what = "8 ms + exponential queueing (mean 2 ms) each way";
  set_path(&c->servers[0], 0.008, 0.008, 0.002);
  c->servers[0].out.queue = c->servers[0].back.queue = true;
  c->lim.rms = 500e-6;  /* worst of 200 seeds: 256 us */
  c->lim.max_err = 3e-3; /* 1.01 ms */
  c->lim.sync_band = 2e-3;
  c->lim.max_steps = 0;
}

/* Half the path asymmetry shows up as a constant offset that no NTP client
 * can see: (5 ms - 15 ms) / 2 = the clock settles 5 ms behind. */
static void sc_asym(sim_cfg *c)
{
  c->what = "5/15 ms asymmetric path: settles at the expected -5 ms";
  set_path(&c->servers[0], 0.005, 0.015, 10e-6);
  c->lim.bias = -0.005;
  c->lim.rms = 50e-6;
  c->lim.max_err = 200e-6;
  c->lim.max_steps = 0;
}

/* ntpd's default poll range: sources go to 1024 s whatever the clock does,
 * and the filter passes about one sample in eight, so the wander between
 * updates dominates. */
static void sc_poll10(sim_cfg *c)
{
  c->what = "poll 6..10 (ntpd default): wander between rare updates";
  c->maxpoll = 10;
  c->duration = 8 * 3600.0;
  c->lim.rms = 500e-6;
  c->lim.sync_band = 2e-3;
  c->lim.max_steps = 0;
}

/* The poll must come back down when the clock wanders faster than the
 * noise: ten times the default wander (a clock in a room whose
 * temperature changes). */
static void sc_poll10_wander(sim_cfg *c)
{
  sc_poll10(c);
  c->what = "poll 6..10 with 10x the wander: the poll has to come back down";
  c->clock.wander = 1e-8;
  c->lim.rms = 1e-3; /* 200 seeds: worst 185 us; climbing to poll 10
                        regardless gave 1.1 ms mean, 2.3 ms worst */
}

static void sc_panic(sim_cfg *c)
{
  c->what = "2000 s offset: beyond panic, refused and never stepped";
  c->clock.offset = -2000.0;
  c->duration = 3600.0;
  c->lim.settle = 0;
  c->lim.max_steps = 0;
  c->lim.want_panic = true;
  c->lim.min_final_err = 1999.0;
}

static void sc_drift_file(sim_cfg *c)
{
  c->what = "drift file 2 ppm off the truth: tight from the start";
  c->clock.freq_ppm = 37.0;
  c->disc.initial_freq_ppm = -35.0;
  c->disc.initial_freq_known = true;
  c->lim.settle = 600;
  c->lim.rms = 50e-6;
  c->lim.max_err = 200e-6;
  c->lim.max_steps = 0;
}

/* The real-network benchmark's start-up (docs/benchmarks.md): poll 16 s
 * fixed with iburst, a perfect clock, 10+-2 ms each way (uniform).  What
 * matters is the first minutes, while the frequency is estimated from a
 * few noisy iburst samples seconds apart.  With only the filter's
 * minimum-delay output reaching the discipline (one sample in ~8, often
 * old) this ran away: hundreds of ppm, 12-41 ms off for ~100 s (worst of
 * 200 seeds), first update at 6 s.  Every sample, weighted by its delay,
 * a young register's samples not over-trusted and a +-300 ppm prior: worst
 * of 200 seeds 7 ms in the first 300 s, first update at 2.1 s. */
static void sc_jitter_startup(sim_cfg *c)
{
  c->what = "poll 4, 10+-2 ms jitter, perfect clock: start-up error small";
  set_path(&c->servers[0], 0.010, 0.010, 0.002);
  c->clock.freq_ppm = 0.0;
  c->minpoll = c->maxpoll = 4;
  c->duration = 3600.0;
  c->lim.early = 600.0;
  c->lim.early_max_err = 10e-3; /* worst of 200 seeds: 7.1 ms */
  c->lim.first_update = 3.0;    /* 2.0-2.1 s */
  c->lim.settle = 300.0;
  c->lim.max_err = 3e-3;
  c->lim.rms = 1e-3;
  c->lim.sync_band = 2e-3;
  c->lim.max_steps = 0;
}

static void sc_spikes_startup(sim_cfg *c)
{
  sc_jitter_startup(c);
  c->what = "the same with +100 ms on 5% of packets";
  c->servers[0].out.spike_prob = c->servers[0].back.spike_prob = 0.05;
  c->servers[0].out.spike = c->servers[0].back.spike = 0.100;
}

static void sc_jitter_startup_freq(sim_cfg *c)
{
  sc_jitter_startup(c);
  c->what = "the same with a clock 30 ppm fast and no drift file";
  c->clock.freq_ppm = 30.0;
}

/* The benchmark's `jitter20-loss` start-up: 20+-10 ms each way, 1 % loss. */
static void sc_wan_startup(sim_cfg *c)
{
  sc_jitter_startup(c);
  c->what = "poll 4, 20+-10 ms jitter, 1% loss, perfect clock: start-up";
  set_path(&c->servers[0], 0.020, 0.020, 0.010);
  c->servers[0].out.loss = c->servers[0].back.loss = 0.01;
  c->lim.early_max_err = 30e-3;
  c->lim.first_update = 4.5; /* a lost iburst reply costs 2 s (2 % of runs) */
  c->lim.max_err = 15e-3;
  c->lim.rms = 5e-3;
  c->lim.sync_band = 10e-3;
}

static const scenario scenarios[] = {
    {"freq100_jitter10us", sc_freq100},
    {"falseticker", sc_falseticker},
    {"delay_spikes", sc_spikes},
    {"startup_step_3s", sc_step3s},
    {"freq_500ppm", sc_freq500},
    {"freq_-500ppm", sc_freq500_neg},
    {"wan_20ms_loss", sc_wan},
    {"queue_2ms", sc_queue},
    {"asymmetric_5_15ms", sc_asym},
    {"poll_6_10", sc_poll10},
    {"poll_6_10_wander", sc_poll10_wander},
    {"panic_2000s", sc_panic},
    {"drift_file", sc_drift_file},
    {"startup_jitter_2ms", sc_jitter_startup},
    {"startup_spikes_2ms", sc_spikes_startup},
    {"startup_jitter_30ppm", sc_jitter_startup_freq},
    {"startup_wan_20ms", sc_wan_startup},
};
#define N_SCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

static const char *fmt_s(double v, char *buf, size_t cap)
{
  double a = fabs(v);
  if (!isfinite(v))
    snprintf(buf, cap, "%s", isnan(v) ? "-" : "inf");
  else if (a >= 1.0)
    snprintf(buf, cap, "%.3gs", v);
  else if (a >= 1e-3)
    snprintf(buf, cap, "%.3gms", v * 1e3);
  else
    snprintf(buf, cap, "%.3gus", v * 1e6);
  return buf;
}

typedef struct run_opts {
  uint64_t seed;
  int runs;
  int algo; /* -1: the scenario's (the default) */
  int feed; /* -1: the scenario's */
  bool verbose;
  bool no_envelope; /* -E: no delays to the discipline */
  bool estimate_only; /* -x: judge the estimate of a free-running clock */
  bool profile;       /* -p: start-up RMS per minute over all runs */
  double early;       /* -w: start-up window (s) instead of the scenario's */
} run_opts;

/* Worst of each figure over the runs. */
static void worst_of(sim_result *w, const sim_result *r, bool first)
{
  if (first) {
    *w = *r;
    return;
  }
  w->rms = fmax(w->rms, r->rms);
  w->max_err = fmax(w->max_err, r->max_err);
  w->sync_time = fmax(w->sync_time, r->sync_time);
  w->early_max_err = fmax(w->early_max_err, r->early_max_err);
  w->early_max_freq = fmax(w->early_max_freq, r->early_max_freq);
  w->first_update = fmax(w->first_update, r->first_update);
  w->steps = r->steps > w->steps ? r->steps : w->steps;
  w->panics = r->panics > w->panics ? r->panics : w->panics;
  if (fabs(r->freq_ppm) > fabs(w->freq_ppm))
    w->freq_ppm = r->freq_ppm;
}

/* Runs one scenario over the seeds; prints its line; true if all passed. */
static bool run_one(const scenario *sc, const run_opts *o)
{
  sim_cfg c;
  sim_default_cfg(&c);
  c.name = sc->name;
  sc->setup(&c);
  if (o->algo >= 0)
    c.disc.algo = (ntp_disc_algo)o->algo;
  if (o->feed >= 0)
    c.feed = (ntp_core_feed)o->feed;
  if (o->no_envelope)
    c.no_envelope = true;
  if (o->estimate_only)
    c.disc.estimate_only = true;
  if (o->early > 0)
    c.lim.early = o->early;
  sim_result worst = {0}, r, failed = {0};
  double sum_rms = 0, sum_early = 0, prof[SIM_PROF_BINS] = {0};
  int prof_n[SIM_PROF_BINS] = {0};
  uint64_t fail_seed = 0;
  int n_failed = 0;
  for (int k = 0; k < o->runs; k++) {
    uint64_t seed = o->seed + (uint64_t)k;
    if (!sim_run(&c, seed, &r, o->verbose ? stdout : NULL) && n_failed++ == 0) {
      failed = r;
      fail_seed = seed;
    }
    sum_rms += r.rms;
    sum_early += isfinite(r.early_rms) ? r.early_rms : 0;
    for (int b = 0; b < SIM_PROF_BINS; b++) {
      prof[b] += r.early_prof[b];
      prof_n[b] += r.early_prof_n[b];
    }
    worst_of(&worst, &r, k == 0);
  }
  char b1[24], b2[24], b3[24], b4[24];
  snprintf(b4, sizeof(b4), isfinite(worst.sync_time) ? "%.0fs" : "never", worst.sync_time);
  printf("%s %-19s rms %-8s max %-8s mean-rms %-8s steps %d sync %-6s freq %+.2fppm",
         n_failed ? "FAIL" : "PASS", sc->name, fmt_s(worst.rms, b1, sizeof(b1)),
         fmt_s(worst.max_err, b2, sizeof(b2)), fmt_s(sum_rms / o->runs, b3, sizeof(b3)),
         worst.steps, b4, worst.freq_ppm);
  if (worst.panics)
    printf(" panics %d", worst.panics);
  if (c.lim.early > 0)
    printf(" first %.1fs early-max %s early-freq %.1fppm early-rms %s", worst.first_update,
           fmt_s(worst.early_max_err, b1, sizeof(b1)), worst.early_max_freq,
           fmt_s(sum_early / o->runs, b2, sizeof(b2)));
  if (n_failed)
    printf("  [%d/%d: %s; replay: -s %llu %s]", n_failed, o->runs, failed.why,
           (unsigned long long)fail_seed, sc->name);
  printf("\n");
  if (o->profile) {
    printf("  start-up RMS per minute:");
    for (int b = 0; b < SIM_PROF_BINS; b++)
      printf(" %s", prof_n[b] ? fmt_s(sqrt(prof[b] / prof_n[b]), b1, sizeof(b1)) : "-");
    printf("\n");
  }
  return n_failed == 0;
}

static int usage(void)
{
  fprintf(stderr, "usage: ntsd_sim [-s SEED] [-n RUNS] [-a regression|pll] "
                  "[-f peer|combined|survivors] [-E] [-x] [-p] [-w SECONDS] [-v] [-l] [NAME...]\n");
  return 2;
}

static void list_scenarios(void)
{
  for (size_t k = 0; k < N_SCENARIOS; k++) {
    sim_cfg c;
    sim_default_cfg(&c);
    scenarios[k].setup(&c);
    printf("%-19s %s\n", scenarios[k].name, c.what);
  }
}

/* -a NAME and -f NAME: the value, or -2 for an unknown name. */
static int algo_named(const char *n)
{
  return !strcmp(n, "pll") ? NTP_DISC_PLL : !strcmp(n, "regression") ? NTP_DISC_REGRESSION : -2;
}

static int feed_named(const char *n)
{
  return !strcmp(n, "peer")        ? NTP_CORE_FEED_PEER
         : !strcmp(n, "combined")  ? NTP_CORE_FEED_COMBINED
         : !strcmp(n, "survivors") ? NTP_CORE_FEED_SURVIVORS
                                   : -2;
}

/* Parses the options into *o and *first_name (the first scenario name's
 * index); -1 to go on, else the exit status. */
static int parse_opts(int argc, char **argv, run_opts *o, int *first_name)
{
  *first_name = argc;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    bool more = i + 1 < argc;
    if (!strcmp(a, "-s") && more) {
      errno = 0;
      o->seed = strtoull(argv[++i], NULL, 0);
      if (errno)
        return usage();
    } else if (!strcmp(a, "-n") && more) {
      if ((o->runs = atoi(argv[++i])) < 1)
        return usage();
    } else if (!strcmp(a, "-a") && more) {
      if ((o->algo = algo_named(argv[++i])) == -2)
        return usage();
    } else if (!strcmp(a, "-f") && more) {
      if ((o->feed = feed_named(argv[++i])) == -2)
        return usage();
    } else if (!strcmp(a, "-w") && more) {
      o->early = atof(argv[++i]);
      if (!(o->early > 0))
        return usage();
    } else if (!strcmp(a, "-v") || !strcmp(a, "-E") || !strcmp(a, "-x") || !strcmp(a, "-p")) {
      o->verbose |= a[1] == 'v';
      o->no_envelope |= a[1] == 'E';
      o->estimate_only |= a[1] == 'x';
      o->profile |= a[1] == 'p';
    } else if (!strcmp(a, "-l")) {
      list_scenarios();
      return 0;
    } else if (a[0] == '-') {
      return usage();
    } else {
      *first_name = i;
      break;
    }
  }
  return -1;
}

int main(int argc, char **argv)
{
  run_opts o = {.seed = 1, .runs = 1, .algo = -1, .feed = -1};
  int first_name;
  int rc = parse_opts(argc, argv, &o, &first_name);
  if (rc >= 0)
    return rc;
  int passed = 0, failed = 0;
  for (size_t k = 0; k < N_SCENARIOS; k++) {
    bool wanted = first_name == argc;
    for (int i = first_name; i < argc && !wanted; i++)
      wanted = !strcmp(argv[i], scenarios[k].name);
    if (!wanted)
      continue;
    if (run_one(&scenarios[k], &o))
      passed++;
    else
      failed++;
  }
  if (passed + failed == 0) {
    fprintf(stderr, "ntsd_sim: no such scenario (-l lists them)\n");
    return 2;
  }
  printf("seed %llu, %d run%s per scenario\n", (unsigned long long)o.seed, o.runs,
         o.runs > 1 ? "s" : "");
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
