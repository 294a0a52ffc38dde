/* ntsd_bound: how well any estimator could do at the benchmark's start-up.
 *
 * The accuracy benchmark (docs/benchmarks.md) runs a client with a perfect
 * clock behind a relay that delays each direction by base +- jitter
 * (uniform), polling every 16 s after an iburst.  Its RMS over the first
 * minutes is decided by how well a handful of samples fix the phase and the
 * frequency.  This tool draws the same sample pattern, and compares on
 * identical samples:
 *
 *   ntsd      the daemon's discipline (src/proto/discipline.c, -x mode)
 *   line      least squares with equal weights, frequency prior +-100 ppm
 *   feasible  posterior mean over every (phase, frequency) that the
 *             samples' delays allow, knowing the true minimum one-way
 *             delay: the best estimator when the delay above the minimum
 *             is exponential (its likelihood is then flat over that set)
 *   oracle    the same knowing the relay's ceiling too: the best
 *             estimator for uniform delays, which no daemon can know
 *
 * All use the same frequency prior, N(0, 100 ppm), the discipline's.
 * Output: RMS of the error over [0, W), the 10th, 50th and 90th percentile
 * of the runs' own RMS, and the RMS per minute.  Not a test: the
 * figures are quoted in docs/discipline.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/discipline.h"
#include "sim_rng.h"

#define MAX_SAMPLES 512
#define BURST 8          /* the client's iburst: 8 requests 2 s apart */
#define BURST_SPACING 2.0
#define POLL 16.0
#define PRIOR_PPM 100.0
#define GRID 2000        /* frequency grid points of the posterior */
#define MINUTES 60
#define MAX_RUNS 10000

typedef struct bnd_run {
  double t[MAX_SAMPLES], x[MAX_SAMPLES], delay[MAX_SAMPLES];
  int n;
  double freq; /* the truth: offset(t) = freq * t */
} bnd_run;

typedef struct bnd_opts {
  double base, jitter, freq_sd, window;
  bool expo;
} bnd_opts;

enum { EST_NTSD, EST_LINE, EST_FEASIBLE, EST_ORACLE, EST_COUNT };
static const char *const est_names[EST_COUNT] = {"ntsd", "line", "feasible", "oracle"};

/* One way's delay: base - jitter plus an excess that is U(0, 2 jitter) or
 * exponential with mean jitter. */
static double leg(const bnd_opts *o, sim_rng *r)
{
  double u = sim_rng_uniform(r);
  return o->base - o->jitter + (o->expo ? -o->jitter * log1p(-u) : 2 * o->jitter * u);
}

static void draw(const bnd_opts *o, sim_rng *r, bnd_run *run)
{
  run->freq = 1e-6 * o->freq_sd * sim_rng_gauss(r);
  run->n = 0;
  for (double t = 0; t < o->window && run->n < MAX_SAMPLES;) {
    double out = leg(o, r), back = leg(o, r);
    run->t[run->n] = t;
    run->x[run->n] = (out - back) / 2 + run->freq * t;
    run->delay[run->n] = out + back;
    run->n++;
    t += run->n < BURST ? BURST_SPACING : POLL;
  }
}

/* Least squares through samples [0, n) with equal weights and the prior,
 * the phase at t_now and the frequency. */
static void est_line(const bnd_run *r, int n, double t_now, double *phase, double *freq)
{
  double tm = 0, xm = 0, stt = 0, stx = 0, chi2 = 0;
  for (int i = 0; i < n; i++) {
    tm += r->t[i] - t_now;
    xm += r->x[i];
  }
  tm /= n;
  xm /= n;
  for (int i = 0; i < n; i++) {
    double dt = r->t[i] - t_now - tm;
    stt += dt * dt;
    stx += dt * (r->x[i] - xm);
  }
  double b = stt > 0 ? stx / stt : 0;
  for (int i = 0; i < n; i++) {
    double res = r->x[i] - xm - b * (r->t[i] - t_now - tm);
    chi2 += res * res;
  }
  /* the noise from the residuals, never below the first sample's scale */
  double s2 = n > 2 ? chi2 / (n - 2) : INFINITY;
  double vb = stt > 0 && isfinite(s2) ? s2 / stt : INFINITY;
  double pv = 1e-12 * PRIOR_PPM * PRIOR_PPM;
  double f = isfinite(vb) ? (b / vb) / (1 / pv + 1 / vb) : 0;
  *phase = xm - f * tm;
  *freq = f;
}

/* The interval [low, high] of phases at t_now that every sample allows for
 * frequency f: each sample's offset lies within (its delay - 2 d_min) / 2
 * of the line, and within (2 ceiling - delay) / 2 when a ceiling is known
 * (ceiling 0: none).  Empty when high < low. */
static void allowed(const bnd_run *r, int n, double t_now, double d_min, double ceiling,
                    double f, double *low, double *high)
{
  *low = -INFINITY;
  *high = INFINITY;
  for (int i = 0; i < n; i++) {
    double xp = r->x[i] - f * (r->t[i] - t_now), h = r->delay[i] / 2 - d_min;
    if (ceiling > 0)
      h = fmin(h, ceiling - r->delay[i] / 2);
    *low = fmax(*low, xp - h);
    *high = fmin(*high, xp + h);
  }
}

/* Posterior mean of (phase at t_now, frequency) over the set the delays
 * allow: flat likelihood inside, Gaussian prior on the frequency.  The set
 * is convex, so its frequencies form one interval: a coarse pass over
 * +-6 sigma of the prior finds it, a fine pass integrates over it. */
static void est_set(const bnd_run *r, int n, double t_now, double d_min, double ceiling,
                    double *phase, double *freq)
{
  double pv = 1e-12 * PRIOR_PPM * PRIOR_PPM, lo = -6e-6 * PRIOR_PPM, hi = 6e-6 * PRIOR_PPM;
  double step = (hi - lo) / GRID, f_lo = INFINITY, f_hi = -INFINITY, best = INFINITY;
  double low, high, f_best = 0;
  for (int k = 0; k <= GRID; k++) {
    double f = lo + step * k;
    allowed(r, n, t_now, d_min, ceiling, f, &low, &high);
    if (low - high < best) {
      best = low - high;
      f_best = f;
    }
    if (high > low) {
      f_lo = fmin(f_lo, f);
      f_hi = fmax(f_hi, f);
    }
  }
  if (f_lo > f_hi) /* narrower than the coarse grid: around the nearest miss */
    f_lo = f_hi = f_best;
  lo = f_lo - step;
  hi = f_hi + step;
  double num_p = 0, num_f = 0, den = 0;
  best = INFINITY;
  for (int k = 0; k <= GRID; k++) {
    double f = lo + (hi - lo) * k / GRID;
    allowed(r, n, t_now, d_min, ceiling, f, &low, &high);
    if (low - high < best) { /* the least infeasible, if nothing is feasible */
      best = low - high;
      *phase = (low + high) / 2;
      *freq = f;
    }
    if (high <= low)
      continue;
    double w = exp(-0.5 * f * f / pv) * (high - low);
    num_p += w * (low + high) / 2;
    num_f += w * f;
    den += w;
  }
  if (den > 0) {
    *phase = num_p / den;
    *freq = num_f / den;
  }
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The q-quantile of v[0..n) (sorts v). */
static double quantile(double *v, int n, double q)
{
  qsort(v, (size_t)n, sizeof(*v), cmp_double);
  return v[(int)fmin(n - 1, floor(q * n))];
}

static void usage(void)
{
  fprintf(stderr, "usage: ntsd_bound [-n RUNS] [-s SEED] [-b BASE_MS] [-j JITTER_MS] [-e] "
                  "[-f FREQ_SD_PPM] [-w SECONDS]\n"
                  "  -e  exponential excess delay (mean JITTER) instead of uniform\n");
}

int main(int argc, char **argv)
{
  bnd_opts o = {.base = 0.010, .jitter = 0.002, .freq_sd = 0, .window = 600};
  int runs = 200, opt;
  unsigned long long seed = 1;
  while ((opt = getopt(argc, argv, "n:s:b:j:ef:w:h")) != -1) {
    switch (opt) {
    case 'n': runs = atoi(optarg); break;
    case 's': seed = strtoull(optarg, NULL, 0); break;
    case 'b': o.base = 1e-3 * atof(optarg); break;
    case 'j': o.jitter = 1e-3 * atof(optarg); break;
    case 'e': o.expo = true; break;
    case 'f': o.freq_sd = atof(optarg); break;
    case 'w': o.window = atof(optarg); break;
    default: usage(); return opt == 'h' ? 0 : 2;
    }
  }
  int minutes = (int)ceil(o.window / 60);
  if (runs < 1 || runs > MAX_RUNS || o.window < 60 || minutes > MINUTES || o.jitter <= 0 || o.base < o.jitter) {
    usage();
    return 2;
  }

  static double sq[EST_COUNT][MINUTES], total[EST_COUNT], per_run[EST_COUNT][MAX_RUNS];
  static long cnt[MINUTES];
  long all = 0;
  static bnd_run run;
  for (int k = 0; k < runs; k++) {
    sim_rng rng;
    sim_rng_seed(&rng, seed + (unsigned long long)k, 7);
    draw(&o, &rng, &run);
    ntp_disc_cfg dc;
    ntp_disc_default_cfg(&dc);
    dc.estimate_only = true;
    dc.precision = 1e-7;
    ntp_disc *d = ntp_disc_create(&dc, 0);
    if (!d)
      return 1;
    double run_sq[EST_COUNT] = {0};
    long run_cnt = 0;
    for (int i = 0; i < run.n; i++) {
      double t0 = run.t[i], t1 = i + 1 < run.n ? run.t[i + 1] : o.window;
      ntp_disc_sample s = {.taken = t0, .offset = run.x[i], .error = run.delay[i] / 2,
                           .delay = run.delay[i], .path = 0};
      ntp_disc_feed(d, t0, &s, 4);
      double ph[EST_COUNT], fr[EST_COUNT];
      est_line(&run, i + 1, t0, &ph[EST_LINE], &fr[EST_LINE]);
      double d_min = o.base - o.jitter;
      est_set(&run, i + 1, t0, d_min, 0, &ph[EST_FEASIBLE], &fr[EST_FEASIBLE]);
      if (o.expo) {
        ph[EST_ORACLE] = ph[EST_FEASIBLE];
        fr[EST_ORACLE] = fr[EST_FEASIBLE];
      } else {
        est_set(&run, i + 1, t0, d_min, o.base + o.jitter, &ph[EST_ORACLE], &fr[EST_ORACLE]);
      }
      for (double t = t0; t < t1; t += 1.0) {
        int m = (int)(t / 60);
        double truth = run.freq * t;
        for (int e = 0; e < EST_COUNT; e++) {
          double est = e == EST_NTSD ? ntp_disc_offset_now(d, t) : ph[e] + fr[e] * (t - t0);
          double err = est - truth;
          sq[e][m] += err * err;
          total[e] += err * err;
          run_sq[e] += err * err;
        }
        run_cnt++;
        cnt[m]++;
        all++;
      }
    }
    ntp_disc_destroy(d);
    for (int e = 0; e < EST_COUNT; e++)
      per_run[e][k] = sqrt(run_sq[e] / (double)run_cnt);
  }

  printf("%d runs, %s delays %.1f +- %.1f ms each way, frequency sd %.0f ppm, %.0f s\n", runs,
         o.expo ? "exponential" : "uniform", 1e3 * o.base, 1e3 * o.jitter, o.freq_sd, o.window);
  printf("%-9s %8s %6s %6s %6s   RMS per minute (us)\n", "estimator", "RMS(us)", "p10", "median",
         "p90");
  for (int e = 0; e < EST_COUNT; e++) {
    if (e == EST_ORACLE && o.expo)
      continue; /* the same as feasible: exponential delays have no ceiling */
    printf("%-9s %8.0f %6.0f %6.0f %6.0f  ", est_names[e], 1e6 * sqrt(total[e] / all),
           1e6 * quantile(per_run[e], runs, 0.1), 1e6 * quantile(per_run[e], runs, 0.5),
           1e6 * quantile(per_run[e], runs, 0.9));
    for (int m = 0; m < minutes; m++)
      printf(" %.0f", 1e6 * sqrt(sq[e][m] / cnt[m]));
    printf("\n");
  }
  return 0;
}
