/* discipline: step/slew policy and the two control laws. */
#include "proto/discipline.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "proto/filter.h"

#define DISC_HIST 128           /* offsets kept for the regression: 34 min at
                                   poll 16 s with one source (64 left noisy
                                   paths 15-25 % worse in steady state,
                                   docs/discipline.md) */
#define DISC_MIN_RUNS 6         /* shortest window the runs test may cut to */
#define DISC_RUNS_SIGMAS 1.75   /* runs test: cut below mean - this many sd */
#define DISC_MIN_OUTLIER 5      /* samples needed before one can be an outlier */
#define DISC_OUTLIER_SIGMAS 5.0
#define DISC_MAX_OUTLIERS 2     /* dropped per update */
#define DISC_OUTLIER_SPARE 2    /* newest samples never called outliers */
#define DISC_MAX_SKEW_PPM 100.0 /* a slope more certain than this locks the
                                   frequency (cf. chrony's maxupdateskew) */
#define DISC_DRIFT_FILE_PPM 5.0 /* how far a drift file is trusted, 1 sigma */
#define DISC_UNKNOWN_PPM 100.0  /* ... and no drift file: the frequency is
                                   0 +- this (1 sigma) until samples say
                                   more, as a real oscillator's error is;
                                   +-500 (ntpd's bound) let a few noisy
                                   start-up samples throw it far */
#define DISC_RESTART_PPM 1.0    /* ... and the frequency across a jump */
#define DISC_CORR_RATIO 1.0     /* regression: phase slewed out over this many
                                   update intervals */
#define DISC_DEFAULT_STEP 0.128
#define DISC_PINNED_STEP 1e-3   /* smallest step of a phase the bound blocks */
#define DISC_PINNED_PERIODS 100 /* "blocks": slewing would take this many periods */
#define DISC_ERR_FLOOR 1e-9
#define DISC_ENV_WINDOW 32      /* newest samples the envelope looks at */
#define DISC_ENV_MIN 16         /* ... of one source, for it to count */
#define DISC_ENV_PATHS 8        /* sources it tells apart */
#define DISC_SOURCES 256        /* sources (paths 0..255) with their own state */
#define DISC_POLL_GATE 2.0      /* poll: a sample within this many errors of
                                   the prediction counts as quiet.  RFC 5905
                                   has 4 jitters; a sample's error here
                                   (a floor plus half its excess delay) is
                                   ~2-3x the noise, so 2 is about the same
                                   gate (4 polled 30 % less and kept time
                                   1.4-2.4x worse, docs/discipline.md) */
#define DISC_POLL_LIMIT 30      /* ... and the jiggle count that moves the
                                   poll one step (RFC 5905 LIMIT) */
#define DISC_ENV_AGE_RATIO 3.0  /* a source's samples count while the
                                   frequency's error over their age stays
                                   below this many times the line's own */

/* RFC 5905 appendix A.5.5.6, with ntpd's PLL gain (the RFC's 65536 gives a
 * phase time constant of weeks). */
#define PLL_GAIN 16.0
#define PLL_ALLAN 1500.0        /* Allan intercept, s: the FLL works above half */
#define PLL_FLL_POLL 18         /* FLL gain: max(PLL_FLL_POLL - poll, PLL_AVG) */
#define PLL_AVG 4.0
#define PLL_FREQ_WATCH 300.0    /* direct frequency measurement interval, s */

/* One stretch of commanded clock behaviour: phase p at time t, running at
 * f (ppm) until `until`, at fb after it. */
typedef struct disc_seg {
  double t, p, f, until, fb;
} disc_seg;

typedef struct disc_sample {
  double t;   /* monotonic time it was measured */
  double x;   /* offset + our phase at t: the free-running clock's offset */
  double err; /* the caller's error estimate */
  double e;   /* the error the fit uses (rate_samples) */
  double h;   /* half its round-trip delay, NAN if unknown */
  int path;   /* the caller's source id, -1 if unknown */
} disc_sample;

struct ntp_disc {
  ntp_disc_cfg cfg;

  /* What the caller was told to do: phase p_ref at t_ref, running at f_cur
   * until slew_until, at f_base after it; older stretches in segs[]. */
  double t_ref, p_ref, f_cur, f_base, slew_until;
  disc_seg segs[NTP_DISC_PHASE_HIST];
  int n_segs, seg_pos;

  bool started, synced, freq_known;
  double spike_since;        /* start of an over-threshold run, -1 if none */
  double last_t;             /* last update that reached a control law */
  double last_raw;           /* its free-running offset (PLL) */
  double fm_t, fm_raw;       /* PLL: start of the frequency measurement */
  bool fm_started;
  double res_t;              /* when st.residual was estimated */
  double last_taken;         /* newest sample time seen by the regression */

  disc_sample hist[DISC_HIST];
  int n_hist;
  double skew;               /* ppm, of the last accepted slope */
  double prior_f, prior_var; /* frequency known before hist[] (ppm, ppm^2) */

  struct {                   /* per source (by path): */
    int jiggle, poll;        /* RFC 5905's poll adjustment; poll -1: no advice */
    unsigned fed;            /* samples fed, for rate_samples' young term */
  } src[DISC_SOURCES];

  ntp_disc_info st;
};

void ntp_disc_default_cfg(ntp_disc_cfg *cfg)
{
  memset(cfg, 0, sizeof(*cfg));
  cfg->algo = NTP_DISC_REGRESSION;
  cfg->step_threshold = DISC_DEFAULT_STEP;
  cfg->stepout = 300.0;
  cfg->startup_step = true;
  cfg->panic_threshold = 1000.0;
  cfg->max_freq_ppm = 500.0;
}

const char *ntp_disc_algo_name(ntp_disc_algo a)
{
  return a == NTP_DISC_PLL ? "pll" : "regression";
}

static double clampd(double v, double lim) { return v > lim ? lim : v < -lim ? -lim : v; }

ntp_disc *ntp_disc_create(const ntp_disc_cfg *cfg, double now)
{
  ntp_disc *d = calloc(1, sizeof(*d));
  if (!d)
    return NULL;
  d->cfg = *cfg;
  if (!(d->cfg.max_freq_ppm > 0))
    d->cfg.max_freq_ppm = 500.0;
  if (!(d->cfg.stepout >= 0))
    d->cfg.stepout = 0;
  d->f_base = clampd(cfg->initial_freq_ppm, d->cfg.max_freq_ppm);
  d->f_cur = d->f_base;
  d->t_ref = now;
  d->slew_until = INFINITY;
  d->freq_known = cfg->initial_freq_known;
  d->prior_f = d->f_base;
  double prior = fmin(DISC_UNKNOWN_PPM, d->cfg.max_freq_ppm);
  d->prior_var = cfg->initial_freq_known ? DISC_DRIFT_FILE_PPM * DISC_DRIFT_FILE_PPM
                                         : prior * prior;
  d->spike_since = -1;
  d->last_t = -1;
  d->last_taken = -1;
  d->st.last_update = -1;
  for (int k = 0; k < DISC_SOURCES; k++)
    d->src[k].poll = -1;
  return d;
}

void ntp_disc_destroy(ntp_disc *d) { free(d); }

/* ---- the commanded phase ----------------------------------------------- */

static double seg_phase(const disc_seg *g, double t)
{
  if (t > g->until)
    return g->p + 1e-6 * (g->f * (g->until - g->t) + g->fb * (t - g->until));
  return g->p + 1e-6 * g->f * (t - g->t);
}

/* Total correction commanded since creation, as of t: steps plus the
 * integral of the frequency. */
static double phase_at(const ntp_disc *d, double t)
{
  disc_seg cur = {d->t_ref, d->p_ref, d->f_cur, d->slew_until, d->f_base};
  if (t >= d->t_ref || d->n_segs == 0)
    return seg_phase(&cur, t);
  const disc_seg *g = NULL;
  for (int i = 1; i <= d->n_segs; i++) { /* newest first */
    g = &d->segs[(d->seg_pos - i + NTP_DISC_PHASE_HIST) % NTP_DISC_PHASE_HIST];
    if (g->t <= t)
      break;
  }
  return seg_phase(g, t);
}

double ntp_disc_predict(const ntp_disc *d, double x, double taken, double now)
{
  /* Our corrections since `taken`, less the part that only cancels the
   * clock's own drift at the estimated frequency. */
  double ours = phase_at(d, now) - phase_at(d, taken) - 1e-6 * d->f_base * (now - taken);
  return x - ours;
}

/* Moves the reference to `now` (keeping the stretch before it for
 * phase_at), ending a slew that has run out. */
static void commit(ntp_disc *d, double now)
{
  if (now > d->t_ref) {
    d->segs[d->seg_pos] = (disc_seg){d->t_ref, d->p_ref, d->f_cur, d->slew_until, d->f_base};
    d->seg_pos = (d->seg_pos + 1) % NTP_DISC_PHASE_HIST;
    if (d->n_segs < NTP_DISC_PHASE_HIST)
      d->n_segs++;
    d->p_ref = phase_at(d, now);
    d->t_ref = now;
  }
  if (now >= d->slew_until) {
    d->f_cur = d->f_base;
    d->slew_until = INFINITY;
  }
}

/* Sets the frequency to base + a slew removing `phase` seconds in about
 * `period` seconds, as fast as the frequency bound allows.  False when the
 * bound leaves (next to) no room in that direction. */
static bool set_slew(ntp_disc *d, double now, double phase, double period)
{
  double lim = d->cfg.max_freq_ppm;
  d->f_base = clampd(d->f_base, lim);
  double f = clampd(d->f_base + 1e6 * phase / period, lim);
  double rate = f - d->f_base;
  if (phase == 0 || fabs(rate) < 1e-9 || (rate > 0) != (phase > 0)) {
    d->f_cur = d->f_base;
    d->slew_until = INFINITY;
    return phase == 0;
  }
  d->f_cur = f;
  d->slew_until = now + phase / (1e-6 * rate);
  return d->slew_until - now < DISC_PINNED_PERIODS * period;
}

static void poll_reset(ntp_disc *d);

static void do_step(ntp_disc *d, double x, ntp_disc_action *a)
{
  d->p_ref += x;
  d->f_cur = d->f_base;
  d->slew_until = INFINITY;
  d->st.steps++;
  d->st.stepped_total += fabs(x);
  a->step = x;
  poll_reset(d);
}

/* ---- regression -------------------------------------------------------- */

typedef struct disc_fit {
  double a, b;   /* free-running offset at `now`, and its slope (s/s) */
  double tm, xm; /* weighted centroid (time relative to now, offset) */
  double sd_xm;  /* error of xm from the samples' errors */
  double var_b;  /* variance of b */
  int runs;      /* sign runs of the residuals */
} disc_fit;

/* The errors the fit weights hist[from..n) by.  A sample with a known
 * source and delay is rated against that source's samples in the window
 * with the clock filter's formula (ntp_filter_error_floor: half its delay
 * beyond their minimum, plus a floor shared by all of them, larger while
 * the source is young).  The caller rated each sample once, against the
 * register it had then; here the floor for a young source shrinks for all
 * its samples alike as more arrive, so the first samples do not stay
 * discounted against the later ones (which tilted the slope towards
 * whichever quick sample came last). */
static void rate_samples(ntp_disc *d, int from)
{
  int n = d->n_hist, done[DISC_HIST] = {0};
  for (int i = from; i < n; i++) {
    d->hist[i].e = d->hist[i].err;
    if (d->hist[i].path < 0 || !isfinite(d->hist[i].h))
      done[i] = 1;
  }
  for (int i = from; i < n; i++) {
    if (done[i])
      continue;
    int path = d->hist[i].path, cnt = 0;
    double dmin = INFINITY, ex[DISC_HIST];
    for (int j = i; j < n; j++)
      if (!done[j] && d->hist[j].path == path)
        dmin = fmin(dmin, 2 * d->hist[j].h);
    for (int j = i; j < n; j++)
      if (!done[j] && d->hist[j].path == path)
        ex[cnt++] = 2 * d->hist[j].h - dmin;
    unsigned seen = path < DISC_SOURCES ? d->src[path].fed : (unsigned)cnt;
    double base = ntp_filter_error_floor(ex, cnt, dmin, seen, d->cfg.precision);
    for (int j = i; j < n; j++) {
      if (done[j] || d->hist[j].path != path)
        continue;
      d->hist[j].e = base + (2 * d->hist[j].h - dmin) / 2;
      done[j] = 1;
    }
  }
}

/* Weighted least squares over hist[from..n) with time relative to now,
 * weights 1/e^2.  The errors come from each sample's queueing delay
 * (rate_samples; the caller's error where no delay is known), so a sample
 * that crossed a quiet network counts far more than one that queued.  The residuals scale the
 * variance when they are larger than the errors say, never down. */
static void fit_window(ntp_disc *d, int from, double now, disc_fit *f)
{
  int n = d->n_hist - from;
  double sw = 0, tm = 0, xm = 0;
  rate_samples(d, from);
  for (int i = from; i < d->n_hist; i++) {
    double w = 1.0 / (d->hist[i].e * d->hist[i].e);
    sw += w;
    tm += w * (d->hist[i].t - now);
    xm += w * d->hist[i].x;
  }
  tm /= sw;
  xm /= sw;
  f->sd_xm = sqrt(1.0 / sw);
  double stt = 0, stx = 0;
  for (int i = from; i < d->n_hist; i++) {
    double w = 1.0 / (d->hist[i].e * d->hist[i].e);
    double dt = d->hist[i].t - now - tm;
    stt += w * dt * dt;
    stx += w * dt * (d->hist[i].x - xm);
  }
  f->b = stt > 0 ? stx / stt : 0;
  f->a = xm - f->b * tm;
  f->tm = tm;
  f->xm = xm;
  double chi2 = 0;
  int runs = 0, prev = 0;
  for (int i = from; i < d->n_hist; i++) {
    double r = d->hist[i].x - (f->a + f->b * (d->hist[i].t - now));
    chi2 += r * r / (d->hist[i].e * d->hist[i].e);
    int sign = r >= 0 ? 1 : -1;
    runs += sign != prev;
    prev = sign;
  }
  double s2 = n > 2 ? chi2 / (n - 2) : 1.0;
  f->var_b = stt > 0 ? fmax(s2, 1.0) / stt : INFINITY;
  f->runs = runs;
}

/* Fewest sign runs of n residuals that still look like noise around a
 * line (Wald-Wolfowitz, DISC_RUNS_SIGMAS below the mean).  One sigma
 * cut the window on pure noise one test in six, and with every sample fed
 * (not one in eight) that threw the frequency around under heavy jitter;
 * two sigmas follow wander too late.  1.75 measured best over both
 * (docs/discipline.md). */
static int runs_needed(int n)
{
  double mean = n / 2.0 + 1.0, sd = sqrt((n - 1) / 4.0);
  return (int)floor(mean - DISC_RUNS_SIGMAS * sd);
}

static void hist_drop(ntp_disc *d, int i)
{
  memmove(d->hist + i, d->hist + i + 1, (size_t)(d->n_hist - i - 1) * sizeof(d->hist[0]));
  d->n_hist--;
}

/* Index of a sample that sits far off the fitted line (a falseticker's or a
 * spike that got through), or -1.  Robust: each residual in units of its
 * sample's error, against 5 times the median of those (never below 5).  The
 * newest samples are left alone: off the line, they may be the first to
 * show a real change, which the runs test sees once there are more. */
static int find_outlier(const ntp_disc *d, const disc_fit *f, double now)
{
  int n = d->n_hist;
  if (n < DISC_MIN_OUTLIER)
    return -1;
  double z[DISC_HIST], sorted[DISC_HIST];
  for (int i = 0; i < n; i++) {
    z[i] = fabs(d->hist[i].x - (f->a + f->b * (d->hist[i].t - now))) / d->hist[i].e;
    int j = i; /* insertion sort, n <= DISC_HIST */
    while (j > 0 && sorted[j - 1] > z[i]) {
      sorted[j] = sorted[j - 1];
      j--;
    }
    sorted[j] = z[i];
  }
  double limit = DISC_OUTLIER_SIGMAS * fmax(1.4826 * sorted[n / 2], 1.0);
  int worst = -1;
  for (int i = 0; i < n - DISC_OUTLIER_SPARE; i++)
    if (z[i] > limit && (worst < 0 || z[i] > z[worst]))
      worst = i;
  return worst;
}

/* Fits the newest samples: drops old ones while the residuals show a curve
 * (frequency wander, or a jump) rather than noise, like chrony's
 * sourcestats, then outliers. */
static void fit_history(ntp_disc *d, double now, disc_fit *f)
{
  int from = 0;
  fit_window(d, 0, now, f);
  for (;;) {
    int n = d->n_hist - from;
    if (n <= DISC_MIN_RUNS || f->runs >= runs_needed(n))
      break;
    int drop = n / 4;
    if (n - drop < DISC_MIN_RUNS)
      drop = n - DISC_MIN_RUNS;
    from += drop;
    fit_window(d, from, now, f);
  }
  if (from > 0) {
    memmove(d->hist, d->hist + from, (size_t)(d->n_hist - from) * sizeof(d->hist[0]));
    d->n_hist -= from;
  }
  for (int k = 0; k < DISC_MAX_OUTLIERS; k++) {
    int o = find_outlier(d, f, now);
    if (o < 0)
      break;
    hist_drop(d, o);
    fit_window(d, 0, now, f);
  }
}

/* Inserts in time order (a peer change can hand over an older sample). */
static void hist_add(ntp_disc *d, double t, double x, double err, double h, int path)
{
  if (d->n_hist == DISC_HIST) {
    memmove(d->hist, d->hist + 1, (DISC_HIST - 1) * sizeof(d->hist[0]));
    d->n_hist--;
  }
  int i = d->n_hist;
  while (i > 0 && d->hist[i - 1].t > t) {
    d->hist[i] = d->hist[i - 1];
    i--;
  }
  d->hist[i] = (disc_sample){.t = t, .x = x, .err = err > DISC_ERR_FLOOR ? err : DISC_ERR_FLOOR,
                            .h = h, .path = path};
  d->n_hist++;
}

/* The regression's slope b (variance vb, ppm^2) blended with what was
 * known before the samples in the history: the drift file, nothing
 * (+-max_freq), or the estimate before a step cleared the history.  Two
 * samples far apart already say much more than nothing, even when the
 * callers' error estimates are swollen; two close together say little, and
 * no slope says more than that the clock is within the bound. */
static double blend_freq(const ntp_disc *d, double b, double vb)
{
  b = clampd(b, d->cfg.max_freq_ppm);
  return (d->prior_f / d->prior_var + b / vb) / (1 / d->prior_var + 1 / vb);
}

/* After a step that was not ours to explain (a lasting jump), offsets from
 * before it no longer line up with those after: start a new history, with
 * the frequency learnt so far as its prior. */
static void hist_restart(ntp_disc *d)
{
  d->prior_f = d->f_base;
  d->prior_var = fmax(d->skew * d->skew, DISC_RESTART_PPM * DISC_RESTART_PPM);
  d->n_hist = 0;
  d->fm_started = false;
}

/* The delay envelope: how far the fitted line at `now` (line_now, slope in
 * s/s) is off, from the newest samples' delays.  Each sample bounds the
 * offset from both sides, at its offset +- half its delay (the one-way
 * delays are not negative), so per source the line's residuals r give
 *   max(r - delay/2) <= error of the line <= min(r + delay/2)
 * and the middle of that interval is the offset the least-delayed request
 * and the least-delayed response agree on, even when no single exchange
 * was quick both ways; it tightens like 1/n where the line's average
 * tightens like 1/sqrt(n).  Sources count by 1/width^2 (the width is
 * mostly the path's base delay: nearer servers count more); a source only
 * counts with DISC_ENV_MIN samples, and while the frequency's uncertainty
 * over their age stays within DISC_ENV_AGE_RATIO times the line's own
 * error, since the residuals are detrended with that frequency.  Returns
 * the correction to add to the line (0: none). */
static double envelope(const ntp_disc *d, double now, double line_now, double slope,
                       double line_err)
{
  int ids[DISC_ENV_PATHS], count[DISC_ENV_PATHS], np = 0;
  double lo[DISC_ENV_PATHS], hi[DISC_ENV_PATHS], age[DISC_ENV_PATHS];
  int seen = 0;
  for (int i = d->n_hist - 1; i >= 0 && seen < DISC_ENV_WINDOW; i--, seen++) {
    const disc_sample *h = &d->hist[i];
    if (h->path < 0 || !isfinite(h->h))
      continue;
    int k = 0;
    while (k < np && ids[k] != h->path)
      k++;
    if (k == np) {
      if (np == DISC_ENV_PATHS)
        continue;
      ids[np] = h->path;
      count[np] = 0;
      lo[np] = -INFINITY;
      hi[np] = INFINITY;
      np++;
    }
    double r = h->x - (line_now + slope * (h->t - now));
    lo[k] = fmax(lo[k], r - h->h);
    hi[k] = fmin(hi[k], r + h->h);
    age[k] = now - h->t;
    count[k]++;
  }
  double sw = 0, sum = 0;
  for (int k = 0; k < np; k++) {
    double width = hi[k] - lo[k];
    if (count[k] < DISC_ENV_MIN || !(width >= 0))
      continue; /* too few, or inconsistent (a bogus delay) */
    if (1e-6 * d->skew * age[k] > DISC_ENV_AGE_RATIO * line_err)
      continue; /* the frequency is not known well enough that far back */
    double w = 1.0 / fmax(width * width, 1e-18);
    sw += w;
    sum += w * (lo[k] + hi[k]) / 2;
  }
  return sw > 0 ? sum / sw : 0.0;
}

/* Returns the phase error now; *period: how long to slew it out over. */
static double regression_law(ntp_disc *d, double now, const ntp_disc_sample *s, double x,
                             double raw, int poll, double *period, double *est_err)
{
  double taken = s->taken, err = s->error;
  *est_err = err;
  hist_add(d, taken, raw, err, s->delay / 2, s->path);
  double est = x;
  if (d->n_hist >= 2) {
    disc_fit f;
    fit_history(d, now, &f);
    double b = 1e6 * f.b, vb = 1e12 * f.var_b;
    d->f_base = clampd(blend_freq(d, b, vb), d->cfg.max_freq_ppm);
    d->skew = sqrt(vb);
    if (d->skew <= DISC_MAX_SKEW_PPM)
      d->freq_known = true;
    /* The phase now: the weighted centroid carried forward at the blended
     * frequency (the fitted line itself once the slope is certain; while it
     * is not, a line through a few noisy samples would throw the phase as
     * far as its slope is wrong). */
    double line_now = f.xm - 1e-6 * d->f_base * f.tm;
    if (d->freq_known)
      line_now += envelope(d, now, line_now, 1e-6 * d->f_base, f.sd_xm);
    est = line_now - phase_at(d, now);
    *est_err = f.sd_xm;
  }
  /* Slewed out by the next sample: one poll, or the spacing of the
   * samples when they come faster (iburst).  Samples handed over together
   * are still a poll apart in what they measured. */
  double interval = ldexp(1.0, poll);
  if (d->last_taken >= 0 && taken - d->last_taken < interval)
    interval = fmax(taken - d->last_taken, 1.0);
  if (taken > d->last_taken)
    d->last_taken = taken;
  *period = DISC_CORR_RATIO * interval;
  return est;
}

/* ---- RFC 5905 PLL/FLL -------------------------------------------------- */

/* The RFC loop takes the offset as current, whatever its age (as ntpd). */
static double pll_law(ntp_disc *d, double now, double taken, double x, double raw, int poll,
                      double *period)
{
  double tp = ldexp(1.0, poll);
  double mu = d->last_t >= 0 ? now - d->last_t : 0;
  if (!d->freq_known) {
    /* ntpd's FREQ state: with no drift file the PLL would need hours, so
     * the frequency is measured directly over PLL_FREQ_WATCH seconds. */
    if (!d->fm_started) {
      d->fm_started = true;
      d->fm_t = taken;
      d->fm_raw = raw;
    } else if (taken - d->fm_t >= PLL_FREQ_WATCH) {
      d->f_base = clampd(1e6 * (raw - d->fm_raw) / (taken - d->fm_t), d->cfg.max_freq_ppm);
      d->freq_known = true;
    }
  } else if (mu > 0) {
    if (tp > PLL_ALLAN / 2) {
      /* FLL: the frequency error seen since the last update, averaged. */
      double ferr = (raw - d->last_raw) / mu - 1e-6 * d->f_base;
      double gain = fmax(PLL_FLL_POLL - poll, PLL_AVG);
      d->f_base += 1e6 * ferr * mu / (fmax(mu, PLL_ALLAN) * gain);
    }
    double den = 4 * PLL_GAIN * tp;
    d->f_base += 1e6 * x * fmin(mu, tp) / (den * den);
  }
  d->last_raw = raw;
  *period = PLL_GAIN * tp;
  return x;
}

/* ---- entry points ------------------------------------------------------ */

/* Panic and popcorn gates: true when the offset may reach a control law;
 * *may_step: and a step is allowed if it is still beyond the threshold. */
static bool admit(ntp_disc *d, double now, double x, bool *may_step, ntp_disc_action *a)
{
  const ntp_disc_cfg *c = &d->cfg;
  *may_step = false;
  if (c->estimate_only)
    return true; /* nothing is corrected, so nothing is refused */
  if (c->panic_threshold > 0 && fabs(x) > c->panic_threshold) {
    a->refused_panic = true;
    d->st.panics++;
    return false;
  }
  if (!(c->step_threshold > 0 && fabs(x) > c->step_threshold)) {
    d->spike_since = -1;
    return true;
  }
  /* Far off while the frequency is unknown: that is what an unknown
   * frequency does (ntpd's FREQ state), not a spike. */
  if (c->startup_step && !d->freq_known) {
    *may_step = true;
    return true;
  }
  /* Otherwise a spike until it lasts for stepout. */
  if (d->spike_since < 0)
    d->spike_since = now;
  if (now - d->spike_since >= c->stepout) {
    d->spike_since = -1;
    *may_step = true;
    return true;
  }
  a->spike = true;
  d->st.spikes++;
  return false;
}

/* Step or slew the control law's estimate. */
static void correct(ntp_disc *d, double now, double est, double est_err, double x,
                    double x_err, double period, bool may_step, ntp_disc_action *a)
{
  /* A step needs the offset beyond the threshold even allowing for its
   * error: a lone sample that crossed a queue (or came back reordered) can
   * be far off, and its delay says so. */
  double sure = fabs(est) - est_err;
  const ntp_disc_cfg *c = &d->cfg;
  double thr = c->step_threshold > 0 ? c->step_threshold : DISC_DEFAULT_STEP;
  bool first = !d->started;
  d->started = true;
  d->synced = true;
  if (first && c->startup_step && sure > thr) {
    a->startup = true;
    do_step(d, est, a);
  } else if (may_step && fabs(x) - x_err > c->step_threshold) {
    /* The offset has been beyond the threshold for stepout (or the
     * frequency is still unknown): the history is from before the jump, so
     * the sample itself says how far. */
    a->startup = c->startup_step && !d->freq_known;
    if (!a->startup)
      hist_restart(d);
    do_step(d, x, a);
  } else if (!set_slew(d, now, est, period) && d->freq_known && c->step_threshold > 0 &&
             fabs(est) > DISC_PINNED_STEP) {
    /* The frequency sits at its bound (a clock as bad as max_freq_ppm): the
     * phase can never be slewed back this way, so it is stepped. */
    do_step(d, est, a);
  }
  d->st.residual = a->step != 0 ? 0 : est;
  d->res_t = now;
}

/* RFC 5905's poll adjustment (the "jiggle" counter of local_clock()), per
 * source: a sample that lands within DISC_POLL_GATE errors of what the
 * discipline predicted counts the source's poll up (at least 1, so that
 * 1 s test polling climbs too), one that does not counts twice the poll
 * down; at +-DISC_POLL_LIMIT the advice is one step from the poll the
 * source had.  So the poll grows while the clock's wander between polls
 * stays inside the noise and comes back down when it does not (a frequency
 * change, a warmer room). */
static void poll_update(ntp_disc *d, int path, int poll, bool quiet)
{
  if (path < 0 || path >= DISC_SOURCES)
    return;
  int *jig = &d->src[path].jiggle;
  if (quiet) {
    *jig += poll > 1 ? poll : 1;
    if (*jig > DISC_POLL_LIMIT) {
      *jig = 0;
      d->src[path].poll = poll < 17 ? poll + 1 : 17;
    }
  } else {
    *jig -= 2 * poll;
    if (*jig < -DISC_POLL_LIMIT) {
      *jig = 0;
      d->src[path].poll = poll > 0 ? poll - 1 : 0;
    }
  }
}

/* After a step the sources start over: so does their poll advice. */
static void poll_reset(ntp_disc *d)
{
  for (int k = 0; k < DISC_SOURCES; k++) {
    d->src[k].jiggle = 0;
    d->src[k].poll = -1;
  }
}

int ntp_disc_poll(const ntp_disc *d, int path)
{
  if (path >= 0 && path < DISC_SOURCES && d->src[path].poll >= 0)
    return d->src[path].poll;
  int best = -1;
  for (int k = 0; k < DISC_SOURCES; k++)
    if (d->src[k].poll > best)
      best = d->src[k].poll;
  return best;
}

ntp_disc_action ntp_disc_update_at(ntp_disc *d, double now, double taken, double offset,
                                   double error, int poll)
{
  ntp_disc_sample s = {.taken = taken, .offset = offset, .error = error, .delay = NAN,
                       .path = -1};
  return ntp_disc_feed(d, now, &s, poll);
}

void ntp_disc_sort_samples(ntp_disc_sample *s, size_t n)
{
  for (size_t a = 1; a < n; a++) { /* insertion sort: stable, n is small */
    ntp_disc_sample v = s[a];
    size_t b = a;
    while (b > 0 && s[b - 1].taken > v.taken) {
      s[b] = s[b - 1];
      b--;
    }
    s[b] = v;
  }
}

ntp_disc_action ntp_disc_feed(ntp_disc *d, double now, const ntp_disc_sample *in, int poll)
{
  ntp_disc_sample smp = *in;
  double taken = smp.taken, offset = smp.offset, error = smp.error;
  if (!isfinite(now) || !isfinite(offset) || !(now >= d->t_ref))
    return ntp_disc_tick(d, d->t_ref); /* garbage in: nothing changes */
  commit(d, now);
  ntp_disc_action a = {0};
  if (!(taken <= now))
    taken = now;
  if (!(error > 0))
    error = DISC_ERR_FLOOR;
  if (!(smp.delay >= 0) || !isfinite(smp.delay))
    smp.delay = NAN;
  smp.taken = taken;
  smp.error = error;
  poll = poll < 0 ? 0 : poll > 17 ? 17 : poll;
  /* The free-running clock's offset at `taken`, and the offset expected now. */
  double raw = offset + phase_at(d, taken);
  double x = ntp_disc_predict(d, offset, taken, now);
  d->st.updates++;
  d->st.last_offset = x;
  d->st.last_update = now;
  bool may_step;
  if (smp.path >= 0 && smp.path < DISC_SOURCES && isfinite(smp.delay))
    d->src[smp.path].fed++;
  /* What the discipline expected now, before this sample (for the poll). */
  bool judge = d->started && d->freq_known && smp.path >= 0;
  double expected = judge ? ntp_disc_offset_now(d, now) : 0.0;
  if (admit(d, now, x, &may_step, &a)) {
    double period, est, est_err = 0;
    if (d->cfg.algo == NTP_DISC_PLL)
      est = pll_law(d, now, taken, x, raw, poll, &period);
    else
      est = regression_law(d, now, &smp, x, raw, poll, &period, &est_err);
    if (d->cfg.estimate_only) {
      d->started = d->synced = true;
      d->st.residual = est;
      d->res_t = now;
    } else {
      correct(d, now, est, est_err, x, error, period, may_step, &a);
    }
    d->last_t = now;
    if (judge && a.step == 0)
      poll_update(d, smp.path, poll, fabs(x - expected) < DISC_POLL_GATE * error);
  }
  a.freq_ppm = d->f_cur;
  a.base_freq_ppm = d->f_base;
  a.slew_until = d->slew_until;
  return a;
}

ntp_disc_action ntp_disc_update(ntp_disc *d, double now, double offset, double error, int poll)
{
  return ntp_disc_update_at(d, now, now, offset, error, poll);
}

ntp_disc_action ntp_disc_tick(ntp_disc *d, double now)
{
  commit(d, now);
  ntp_disc_action a = {.freq_ppm = d->f_cur, .base_freq_ppm = d->f_base,
                       .slew_until = d->slew_until};
  return a;
}

double ntp_disc_offset_now(const ntp_disc *d, double now)
{
  if (!d->started || !(now >= d->res_t))
    return d->st.residual;
  return ntp_disc_predict(d, d->st.residual, d->res_t, now);
}

void ntp_disc_get_info(const ntp_disc *d, ntp_disc_info *out)
{
  *out = d->st;
  out->synced = d->synced;
  out->freq_ppm = d->f_base;
  out->skew_ppm = d->freq_known ? d->skew : 0;
  out->samples = d->n_hist;
}
