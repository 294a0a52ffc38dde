/* Unit tests for proto/discipline.c: step/slew decisions, thresholds, panic,
 * the frequency bound, the start-up step, slew expiry and sample ageing, and
 * both control laws closing the loop on a noiseless clock. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/discipline.h"

#define ERR 10e-6 /* error estimate passed with every offset */

static ntp_disc_cfg cfg_default(void)
{
  ntp_disc_cfg c;
  ntp_disc_default_cfg(&c);
  return c;
}

/* A noiseless clock under the discipline's control: the local clock runs
 * `natural` ppm fast plus whatever freq_ppm it is told, starts `offset`
 * seconds ahead, and is measured every `interval` seconds. */
typedef struct loop {
  ntp_disc *d;
  double t;        /* monotonic = true time here */
  double err;      /* local - true */
  double natural;  /* ppm */
  double applied;  /* ppm */
  int steps, spikes, panics;
  double max_abs_freq;
} loop;

static void loop_apply(loop *l, const ntp_disc_action *a)
{
  l->err += a->step;
  l->applied = a->freq_ppm;
  l->steps += a->step != 0;
  l->spikes += a->spike;
  l->panics += a->refused_panic;
  if (fabs(a->freq_ppm) > l->max_abs_freq)
    l->max_abs_freq = fabs(a->freq_ppm);
}

/* Advances to t, honouring the slew end the discipline announced. */
static void loop_advance(loop *l, double t, double *slew_until)
{
  while (*slew_until < t) {
    l->err += 1e-6 * (l->natural + l->applied) * (*slew_until - l->t);
    l->t = *slew_until;
    ntp_disc_action a = ntp_disc_tick(l->d, l->t);
    loop_apply(l, &a);
    *slew_until = a.slew_until;
  }
  l->err += 1e-6 * (l->natural + l->applied) * (t - l->t);
  l->t = t;
}

/* Runs n updates `interval` apart; the measured offset is -err. */
static void loop_run(loop *l, int n, double interval)
{
  double until = INFINITY;
  for (int i = 0; i < n; i++) {
    loop_advance(l, l->t + interval, &until);
    ntp_disc_action a = ntp_disc_update(l->d, l->t, -l->err, ERR, 6);
    loop_apply(l, &a);
    until = a.slew_until;
  }
}

static loop loop_start(const ntp_disc_cfg *c, double offset, double natural)
{
  loop l = {.d = ntp_disc_create(c, 0.0), .err = offset, .natural = natural,
            .applied = c->initial_freq_ppm};
  assert_non_null(l.d);
  return l;
}

static void test_defaults(void **state)
{
  (void)state;
  ntp_disc_cfg c = cfg_default();
  assert_int_equal(c.algo, NTP_DISC_REGRESSION);
  assert_float_equal(c.step_threshold, 0.128, 1e-12);
  assert_float_equal(c.panic_threshold, 1000.0, 1e-12);
  assert_float_equal(c.max_freq_ppm, 500.0, 1e-12);
  assert_float_equal(c.stepout, 300.0, 1e-12);
  assert_true(c.startup_step);
  assert_string_equal(ntp_disc_algo_name(NTP_DISC_PLL), "pll");
  assert_string_equal(ntp_disc_algo_name(NTP_DISC_REGRESSION), "regression");
}

static void test_small_offset_is_slewed(void **state)
{
  (void)state;
  ntp_disc_cfg c = cfg_default();
  ntp_disc *d = ntp_disc_create(&c, 0.0);
  ntp_disc_action a = ntp_disc_update(d, 10.0, 0.010, ERR, 6);
  assert_true(a.step == 0);
  assert_false(a.refused_panic || a.spike);
  assert_true(a.freq_ppm > 0); /* behind: run faster */
  assert_true(isfinite(a.slew_until) && a.slew_until > 10.0);
  /* Slewed at freq - base for (slew_until - now) removes the offset. */
  double removed = 1e-6 * (a.freq_ppm - a.base_freq_ppm) * (a.slew_until - 10.0);
  assert_float_equal(removed, 0.010, 1e-9);
  /* When it runs out, the frequency falls back to the base. */
  ntp_disc_action t = ntp_disc_tick(d, a.slew_until);
  assert_float_equal(t.freq_ppm, t.base_freq_ppm, 1e-12);
  assert_true(isinf(t.slew_until));
  ntp_disc_info i;
  ntp_disc_get_info(d, &i);
  assert_true(i.synced);
  assert_int_equal(i.updates, 1);
  assert_int_equal(i.steps, 0);
  ntp_disc_destroy(d);
}

static void test_startup_step_once(void **state)
{
  (void)state;
  ntp_disc_cfg c = cfg_default();
  loop l = loop_start(&c, 3.0, 0.0); /* 3 s ahead */
  loop_run(&l, 1, 10.0);
  assert_int_equal(l.steps, 1);
  assert_float_equal(l.err, 0.0, 1e-9);
  /* Locked now: a later jump of the same kind is a spike, not a step. */
  loop_run(&l, 10, 64.0);
  l.err += 3.0;
  ntp_disc_action a = ntp_disc_update(l.d, l.t + 1, -l.err, ERR, 6);
  assert_true(a.spike);
  assert_false(a.startup);
  assert_true(a.step == 0);
  ntp_disc_destroy(l.d);
}

static void test_startup_step_flag_and_disabled(void **state)
{
  (void)state;
  ntp_disc_cfg c = cfg_default();
  ntp_disc *d = ntp_disc_create(&c, 0.0);
  ntp_disc_action a = ntp_disc_update(d, 1.0, -3.0, ERR, 6);
  assert_float_equal(a.step, -3.0, 1e-12);
  assert_true(a.startup);
  ntp_disc_destroy(d);

  /* Without it, even the first offset waits for stepout. */
  c.startup_step = false;
  d = ntp_disc_create(&c, 0.0);
  a = ntp_disc_update(d, 1.0, -3.0, ERR, 6);
  assert_true(a.step == 0 && a.spike);
  a = ntp_disc_update(d, 200.0, -3.0, ERR, 6);
  assert_true(a.step == 0 && a.spike);
  a = ntp_disc_update(d, 301.0, -3.0, ERR, 6);
  assert_float_equal(a.step, -3.0, 1e-9);
  assert_false(a.startup);
  ntp_disc_destroy(d);

  /* step_threshold 0 never steps later, but the start-up step uses 0.128 s. */
  c = cfg_default();
  c.step_threshold = 0;
  d = ntp_disc_create(&c, 0.0);
  a = ntp_disc_update(d, 1.0, 0.5, ERR, 6);
  assert_float_equal(a.step, 0.5, 1e-12);
  ntp_disc_destroy(d);
}

static void test_threshold_boundaries(void **state)
{
  (void)state;
  ntp_disc_cfg c = cfg_default();
  ntp_disc *d = ntp_disc_create(&c, 0.0);
  /* At the threshold: slewed (only beyond it is stepped). */
  ntp_disc_action a = ntp_disc_update(d, 1.0, 0.128, ERR, 6);
  assert_true(a.step == 0);
  ntp_disc_destroy(d);
  d = ntp_disc_create(&c, 0.0);
  a = ntp_disc_update(d, 1.0, 0.1281, ERR, 6);
  assert_float_equal(a.step, 0.1281, 1e-12);
  ntp_disc_destroy(d);
}

static void test_spike_then_stepout(void **state)
{
  (void)state;
  ntp_disc_cfg c = cfg_default();
  loop l = loop_start(&c, 0.0, 20.0);
  loop_run(&l, 20, 64.0);
  assert_int_equal(l.steps, 0);
  /* One popcorn spike: ignored, and nothing changes. */
  ntp_disc_action before = ntp_disc_tick(l.d, l.t);
  ntp_disc_action a = ntp_disc_update(l.d, l.t + 1, 0.5, ERR, 6);
  assert_true(a.spike);
  assert_true(a.step == 0);
  assert_float_equal(a.base_freq_ppm, before.base_freq_ppm, 1e-12);
  /* Back to normal: the spike run is over. */
  loop_run(&l, 1, 64.0);
  /* A lasting jump: held for stepout from the first sample that showed
   * it, then stepped once. */
  l.err -= 0.5;
  int steps = l.steps;
  loop_run(&l, 5, 64.0); /* seen at 64 .. 320 s: 256 s < stepout */
  assert_int_equal(l.steps, steps);
  assert_int_equal(l.spikes, 5);
  loop_run(&l, 1, 64.0); /* 320 s >= stepout */
  assert_int_equal(l.steps, steps + 1);
  assert_true(fabs(l.err) < 1e-3);
  /* The history restarts after the jump, keeping the frequency. */
  loop_run(&l, 10, 64.0);
  assert_int_equal(l.steps, steps + 1);
  ntp_disc_info i;
  ntp_disc_get_info(l.d, &i);
  assert_float_equal(i.freq_ppm, -20.0, 0.01);
  assert_true(fabs(l.err) < 1e-6);
  ntp_disc_destroy(l.d);
}

static void test_panic_refused(void **state)
{
  (void)state;
  ntp_disc_cfg c = cfg_default();
  ntp_disc *d = ntp_disc_create(&c, 0.0);
  for (int i = 0; i < 5; i++) {
    ntp_disc_action a = ntp_disc_update(d, 64.0 * (i + 1), 2000.0, ERR, 6);
    assert_true(a.refused_panic);
    assert_true(a.step == 0);
    assert_float_equal(a.freq_ppm, 0.0, 1e-12);
  }
  ntp_disc_info i;
  ntp_disc_get_info(d, &i);
  assert_int_equal(i.panics, 5);
  assert_false(i.synced);
  /* Just below the threshold it is an ordinary start-up step. */
  ntp_disc_action a = ntp_disc_update(d, 400.0, -999.0, ERR, 6);
  assert_false(a.refused_panic);
  assert_float_equal(a.step, -999.0, 1e-9);
  ntp_disc_destroy(d);

  /* panic_threshold 0: any start-up step. */
  c.panic_threshold = 0;
  d = ntp_disc_create(&c, 0.0);
  a = ntp_disc_update(d, 1.0, 1e6, ERR, 6);
  assert_float_equal(a.step, 1e6, 1e-3);
  ntp_disc_destroy(d);
}

static void test_frequency_converges(void **state)
{
  (void)state;
  ntp_disc_cfg c = cfg_default();
  loop l = loop_start(&c, 0.0, 100.0);
  loop_run(&l, 30, 64.0);
  ntp_disc_info i;
  ntp_disc_get_info(l.d, &i);
  assert_float_equal(i.freq_ppm, -100.0, 0.01);
  assert_true(fabs(l.err) < 1e-6);
  assert_int_equal(l.steps, 0);
  assert_true(i.samples >= 2);
  ntp_disc_destroy(l.d);
}

static void test_frequency_bound(void **state)
{
  (void)state;
  ntp_disc_cfg c = cfg_default();
  loop l = loop_start(&c, 0.0, 800.0); /* beyond what may be corrected */
  loop_run(&l, 40, 64.0);
  assert_true(l.max_abs_freq <= 500.0 + 1e-9);
  ntp_disc_info i;
  ntp_disc_get_info(l.d, &i);
  assert_float_equal(i.freq_ppm, -500.0, 1e-9);
  ntp_disc_destroy(l.d);

  c.max_freq_ppm = 100.0;
  l = loop_start(&c, 0.0, -50.0);
  loop_run(&l, 40, 64.0);
  assert_true(l.max_abs_freq <= 100.0 + 1e-9);
  ntp_disc_get_info(l.d, &i);
  assert_float_equal(i.freq_ppm, 50.0, 0.01);
  ntp_disc_destroy(l.d);
}

static void test_drift_file(void **state)
{
  (void)state;
  ntp_disc_cfg c = cfg_default();
  c.initial_freq_ppm = -42.0;
  c.initial_freq_known = true;
  ntp_disc *d = ntp_disc_create(&c, 0.0);
  ntp_disc_action a = ntp_disc_tick(d, 0.0);
  assert_float_equal(a.freq_ppm, -42.0, 1e-12);
  ntp_disc_destroy(d);
  /* A drift file beyond the bound is clamped. */
  c.initial_freq_ppm = 900.0;
  d = ntp_disc_create(&c, 0.0);
  a = ntp_disc_tick(d, 0.0);
  assert_float_equal(a.freq_ppm, 500.0, 1e-12);
  ntp_disc_destroy(d);
  /* With it the loop is tight at once. */
  c.initial_freq_ppm = -42.0;
  loop l = loop_start(&c, 0.0, 42.0);
  loop_run(&l, 3, 64.0);
  assert_true(fabs(l.err) < 1e-6);
  ntp_disc_destroy(l.d);
}

static void test_predict_ages_samples(void **state)
{
  (void)state;
  ntp_disc_cfg c = cfg_default();
  ntp_disc *d = ntp_disc_create(&c, 0.0);
  /* Nothing done yet: a sample keeps its offset. */
  assert_float_equal(ntp_disc_predict(d, 0.004, 5.0, 50.0), 0.004, 1e-12);
  ntp_disc_action a = ntp_disc_update(d, 10.0, 0.002, ERR, 6);
  /* Half-way through the slew, half of a 2 ms offset measured at 10 s is
   * left (the base frequency is still 0, so only the slew counts). */
  double mid = 10.0 + (a.slew_until - 10.0) / 2;
  assert_float_equal(ntp_disc_predict(d, 0.002, 10.0, mid), 0.001, 1e-9);
  /* After a step, an older sample loses the step. */
  ntp_disc_destroy(d);
  d = ntp_disc_create(&c, 0.0);
  a = ntp_disc_update(d, 10.0, 0.5, ERR, 6);
  assert_float_equal(a.step, 0.5, 1e-12);
  assert_float_equal(ntp_disc_predict(d, 0.5, 9.0, 11.0), 0.0, 1e-9);
  ntp_disc_destroy(d);
}

static void test_old_sample_placed_in_time(void **state)
{
  (void)state;
  /* A free-running clock 50 ppm slow, and a filter output measured 256 s
   * before it is handed over: update_at puts it where it belongs, so the
   * estimate for now includes the drift since. */
  ntp_disc_cfg c = cfg_default();
  ntp_disc *d = ntp_disc_create(&c, 0.0);
  ntp_disc_action a = ntp_disc_update_at(d, 100.0, 100.0, 0.0, ERR, 6);
  assert_true(a.freq_ppm == 0 && isinf(a.slew_until)); /* nothing to do yet */
  a = ntp_disc_update_at(d, 612.0, 356.0, 50e-6 * 256, ERR, 6);
  ntp_disc_info i;
  ntp_disc_get_info(d, &i);
  assert_float_equal(a.base_freq_ppm, 50.0, 0.1);
  assert_float_equal(i.residual, 50e-6 * 512, 1e-6);
  ntp_disc_destroy(d);
}

static void test_garbage_ignored(void **state)
{
  (void)state;
  ntp_disc_cfg c = cfg_default();
  ntp_disc *d = ntp_disc_create(&c, 100.0);
  ntp_disc_action a = ntp_disc_update(d, 200.0, NAN, ERR, 6);
  assert_true(a.step == 0 && a.freq_ppm == 0);
  a = ntp_disc_update(d, 50.0, 0.01, ERR, 6); /* before creation */
  assert_true(a.step == 0 && a.freq_ppm == 0);
  ntp_disc_info i;
  ntp_disc_get_info(d, &i);
  assert_int_equal(i.updates, 0);
  /* A zero error estimate and an absurd poll are tolerated. */
  a = ntp_disc_update(d, 300.0, 0.001, 0.0, 99);
  assert_true(a.freq_ppm > 0);
  ntp_disc_destroy(d);
}

static void test_pll_converges(void **state)
{
  (void)state;
  ntp_disc_cfg c = cfg_default();
  c.algo = NTP_DISC_PLL;
  loop l = loop_start(&c, 0.0, 30.0);
  /* ntpd's FREQ state: the frequency is measured over 300 s. */
  loop_run(&l, 6, 64.0);
  ntp_disc_info i;
  ntp_disc_get_info(l.d, &i);
  assert_float_equal(i.freq_ppm, -30.0, 0.5);
  /* Then the PLL pulls the phase in with a time constant of 16 polls; its
   * integrator overshoots a little and settles over hours. */
  loop_run(&l, 200, 64.0);
  assert_true(fabs(l.err) < 5e-4);
  ntp_disc_get_info(l.d, &i);
  assert_float_equal(i.freq_ppm, -30.0, 0.5);
  assert_int_equal(l.steps, 0);
  assert_true(l.max_abs_freq <= 500.0);
  ntp_disc_destroy(l.d);
}

/* Weighted by the callers' errors: a sample that says it may be 50 ms off
 * barely moves a history of 10 us samples, however far off it is. */
static void test_weighted_by_error(void **state)
{
  (void)state;
  ntp_disc_cfg c = cfg_default();
  loop l = loop_start(&c, 0.0, 0.0);
  loop_run(&l, 20, 16.0);
  double until = INFINITY;
  loop_advance(&l, l.t + 16.0, &until);
  ntp_disc_action a = ntp_disc_update(l.d, l.t, -l.err + 0.040, 0.050, 4);
  loop_apply(&l, &a);
  loop_run(&l, 1, 16.0);
  assert_true(fabs(l.err) < 50e-6);
  /* The same sample with a small error is believed (after the spare
   * newest, it would be an outlier): this is the weighting, not luck. */
  loop m = loop_start(&c, 0.0, 0.0);
  loop_run(&m, 20, 16.0);
  until = INFINITY;
  loop_advance(&m, m.t + 16.0, &until);
  a = ntp_disc_update(m.d, m.t, -m.err + 0.040, ERR, 4);
  loop_apply(&m, &a);
  assert_true(a.freq_ppm > 100.0); /* slewing towards +40 ms */
  ntp_disc_destroy(l.d);
  ntp_disc_destroy(m.d);
}

/* A start-up step needs the offset beyond the threshold even after its
 * error: one reordered reply (0.3 s late, so up to 0.15 s off) is not
 * stepped, a 3 s offset measured to 1 ms is. */
static void test_step_needs_certainty(void **state)
{
  (void)state;
  ntp_disc_cfg c = cfg_default();
  ntp_disc *d = ntp_disc_create(&c, 0.0);
  ntp_disc_action a = ntp_disc_update(d, 2.0, -0.150, 0.150, 4);
  assert_true(a.step == 0);
  assert_true(a.freq_ppm < 0);
  ntp_disc_destroy(d);
  d = ntp_disc_create(&c, 0.0);
  a = ntp_disc_update(d, 2.0, 3.0, 1e-3, 4);
  assert_float_equal(a.step, 3.0, 1e-9);
  assert_true(a.startup);
  ntp_disc_destroy(d);
}

/* Estimating only (-x): nothing is ever done to the clock, whatever the
 * offset, and offset_now is the untouched clock's error carried forward at
 * the estimated frequency. */
static void test_estimate_only(void **state)
{
  (void)state;
  ntp_disc_cfg c = cfg_default();
  c.estimate_only = true;
  ntp_disc *d = ntp_disc_create(&c, 0.0);
  assert_float_equal(ntp_disc_offset_now(d, 0.0), 0.0, 1e-12);
  /* The clock is 5 s behind and loses 20 ppm: offset = 5 + 20e-6 t. */
  for (int i = 0; i <= 40; i++) {
    double t = 16.0 * i;
    ntp_disc_action a = ntp_disc_update(d, t, 5.0 + 20e-6 * t, ERR, 4);
    assert_true(a.step == 0 && a.freq_ppm == 0 && !a.spike && !a.refused_panic);
    assert_false(isfinite(a.slew_until));
  }
  double now = 640.0 + 8.0;
  assert_true(fabs(ntp_disc_offset_now(d, now) - (5.0 + 20e-6 * now)) < 1e-7);
  ntp_disc_info i;
  ntp_disc_get_info(d, &i);
  assert_true(i.synced);
  assert_true(fabs(i.freq_ppm - 20.0) < 0.01);
  assert_true(i.steps == 0 && i.spikes == 0 && i.panics == 0);
  /* Beyond the panic threshold: still only an estimate, never refused. */
  ntp_disc_action a = ntp_disc_update(d, 700.0, 5000.0, ERR, 4);
  assert_false(a.refused_panic);
  ntp_disc_destroy(d);
}

/* The delay envelope: with queueing on both ways (0..4 ms each, drawn
 * independently), the least-delayed request and the least-delayed response
 * pin the offset far closer than the weighted line alone. */
static double envelope_run(bool with_delay)
{
  ntp_disc_cfg c = cfg_default();
  c.estimate_only = true;
  ntp_disc *d = ntp_disc_create(&c, 0.0);
  uint64_t x = 12345;
  double theta = 2e-3; /* the clock is 2 ms behind */
  for (int i = 0; i < 64; i++) {
    double q[2];
    for (int k = 0; k < 2; k++) { /* LCG, uniform on [0, 4 ms) */
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      q[k] = 4e-3 * (double)(x >> 11) / 9007199254740992.0;
    }
    ntp_disc_sample s = {.taken = 16.0 * i, .offset = theta + (q[0] - q[1]) / 2,
                         .delay = 0.010 + q[0] + q[1], .path = with_delay ? 0 : -1};
    s.error = 1e-3 + (q[0] + q[1]) / 2;
    if (!with_delay)
      s.delay = NAN;
    ntp_disc_feed(d, 16.0 * i, &s, 4);
  }
  double err = fabs(ntp_disc_offset_now(d, 16.0 * 63) - theta);
  ntp_disc_destroy(d);
  return err;
}

static void test_delay_envelope(void **state)
{
  (void)state;
  double with = envelope_run(true), without = envelope_run(false);
  print_message("envelope: error %.1f us with delays, %.1f us without\n", with * 1e6,
                without * 1e6);
  assert_true(with < 100e-6);
  assert_true(with < without);
}

/* With a delay and a source, a sample's weight comes from its delay
 * against that source's other samples, as of each fit: what the caller
 * thought of it on arrival (a young filter register's inflated errors for
 * the first few) does not tilt the line for good. */
static void rated_run(bool young_errors, bool with_delay, double *off, double *freq)
{
  ntp_disc_cfg c = cfg_default();
  c.estimate_only = true;
  ntp_disc *d = ntp_disc_create(&c, 0.0);
  uint64_t x = 777;
  for (int i = 0; i < 12; i++) {
    double q[2];
    for (int k = 0; k < 2; k++) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      q[k] = 4e-3 * (double)(x >> 11) / 9007199254740992.0;
    }
    double t = i < 8 ? 2.0 * i : 14.0 + 16.0 * (i - 7);
    ntp_disc_sample s = {.taken = t, .offset = (q[0] - q[1]) / 2, .delay = 0.020 + q[0] + q[1],
                         .path = 0, .error = 1e-3 + (q[0] + q[1]) / 2};
    if (young_errors && i < 8)
      s.error += 0.010 * (8 - i) / 8; /* what a filter with i samples adds */
    if (!with_delay) {
      s.delay = NAN;
      s.path = -1;
    }
    ntp_disc_feed(d, t, &s, 4);
  }
  ntp_disc_info info;
  ntp_disc_get_info(d, &info);
  *off = ntp_disc_offset_now(d, 14.0 + 16.0 * 4);
  *freq = info.freq_ppm;
  ntp_disc_destroy(d);
}

static void test_rated_by_delay(void **state)
{
  (void)state;
  double o1, f1, o2, f2;
  rated_run(false, true, &o1, &f1);
  rated_run(true, true, &o2, &f2);
  assert_true(fabs(o1 - o2) < 1e-12 && fabs(f1 - f2) < 1e-9);
  /* Without delays the caller's errors are all there is. */
  rated_run(false, false, &o1, &f1);
  rated_run(true, false, &o2, &f2);
  assert_true(fabs(f1 - f2) > 1e-3);
}

/* A noisy path keeps a long history (128 samples, 34 minutes at poll
 * 16 s): the line averages more than 64 samples. */
static void test_long_history(void **state)
{
  (void)state;
  ntp_disc_cfg c = cfg_default();
  c.estimate_only = true;
  ntp_disc *d = ntp_disc_create(&c, 0.0);
  uint64_t x = 99;
  for (int i = 0; i < 120; i++) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    double q = 2e-3 * (double)(x >> 11) / 9007199254740992.0 - 1e-3;
    ntp_disc_sample s = {.taken = 16.0 * i, .offset = q, .delay = NAN, .path = -1,
                         .error = 1e-3};
    ntp_disc_feed(d, 16.0 * i, &s, 4);
  }
  ntp_disc_info info;
  ntp_disc_get_info(d, &info);
  print_message("history: %d samples\n", info.samples);
  assert_true(info.samples > 64);
  ntp_disc_destroy(d);
}

/* A source whose delays are all the same (a coarse clock: no excess
 * ever) is not trusted beyond the clock's precision: with 5 us of it, it
 * counts about as much as a source 5 us noisy, instead of a million times
 * more. */
static void test_precision_floor(void **state)
{
  (void)state;
  ntp_disc_cfg c = cfg_default();
  c.estimate_only = true;
  c.precision = 5e-6;
  ntp_disc *d = ntp_disc_create(&c, 0.0);
  for (int i = 0; i < 24; i++) {
    double t = 16.0 * i;
    ntp_disc_sample a = {.taken = t, .offset = 10e-6, .error = 5e-6, .delay = 1e-3, .path = 0};
    ntp_disc_sample b = {.taken = t + 1, .offset = -10e-6, .error = 5e-6,
                         .delay = 1e-3 + (i % 2) * 10e-6, .path = 1};
    ntp_disc_feed(d, t, &a, 4);
    ntp_disc_feed(d, t + 1, &b, 4);
  }
  double est = ntp_disc_offset_now(d, 16.0 * 23 + 1);
  print_message("two sources +-10 us, one with identical delays: estimate %.2f us\n", est * 1e6);
  assert_true(fabs(est) < 8e-6);
  ntp_disc_destroy(d);
}

/* The poll advice (RFC 5905's jiggle counter, per source): samples that
 * land where the discipline predicted, within their errors, raise the poll
 * one step at a time; samples that keep landing far off (the clock
 * wandered between polls) lower it. */
static void test_poll_advice(void **state)
{
  (void)state;
  ntp_disc_cfg c = cfg_default();
  c.estimate_only = true;
  ntp_disc *d = ntp_disc_create(&c, 0.0);
  assert_int_equal(ntp_disc_poll(d, 0), -1);
  double t = 0;
  int poll = 6;
  for (int i = 0; i < 40; i++) { /* quiet: offsets within 1 us, errors 10 us */
    ntp_disc_sample s = {.taken = t, .offset = (i % 2 ? 1e-6 : -1e-6), .error = 10e-6,
                         .delay = 1e-3, .path = 0};
    ntp_disc_feed(d, t, &s, poll);
    if (ntp_disc_poll(d, 0) >= 0)
      poll = ntp_disc_poll(d, 0);
    t += ldexp(1.0, poll);
  }
  assert_true(poll >= 9);
  /* A source never fed (not selected) polls like the slowest fed one. */
  assert_int_equal(ntp_disc_poll(d, 1), poll);
  int high = poll;
  for (int i = 0; i < 6; i++) { /* the clock now runs off: 1 ms more each poll */
    ntp_disc_sample s = {.taken = t, .offset = 1e-3 * (i + 1), .error = 10e-6,
                         .delay = 1e-3, .path = 0};
    ntp_disc_feed(d, t, &s, poll);
    poll = ntp_disc_poll(d, 0);
    t += ldexp(1.0, poll);
  }
  assert_true(poll < high);
  ntp_disc_destroy(d);
}

/* Samples from several sources go to the discipline oldest first; equal
 * times keep their order. */
static void test_sort_samples(void **state)
{
  (void)state;
  ntp_disc_sample s[5] = {{.taken = 30, .path = 0}, {.taken = 10, .path = 1},
                          {.taken = 20, .path = 0}, {.taken = 10, .path = 2},
                          {.taken = 5, .path = 1}};
  ntp_disc_sort_samples(s, 5);
  const double t[5] = {5, 10, 10, 20, 30};
  const int p[5] = {1, 1, 2, 0, 0};
  for (int i = 0; i < 5; i++) {
    assert_true(s[i].taken == t[i]);
    assert_int_equal(s[i].path, p[i]);
  }
  ntp_disc_sort_samples(s, 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_small_offset_is_slewed),
      cmocka_unit_test(test_startup_step_once),
      cmocka_unit_test(test_startup_step_flag_and_disabled),
      cmocka_unit_test(test_threshold_boundaries),
      cmocka_unit_test(test_spike_then_stepout),
      cmocka_unit_test(test_panic_refused),
      cmocka_unit_test(test_frequency_converges),
      cmocka_unit_test(test_frequency_bound),
      cmocka_unit_test(test_drift_file),
      cmocka_unit_test(test_predict_ages_samples),
      cmocka_unit_test(test_old_sample_placed_in_time),
      cmocka_unit_test(test_garbage_ignored),
      cmocka_unit_test(test_pll_converges),
      cmocka_unit_test(test_weighted_by_error),
      cmocka_unit_test(test_step_needs_certainty),
      cmocka_unit_test(test_estimate_only),
      cmocka_unit_test(test_delay_envelope),
      cmocka_unit_test(test_sort_samples),
      cmocka_unit_test(test_rated_by_delay),
      cmocka_unit_test(test_long_history),
      cmocka_unit_test(test_poll_advice),
      cmocka_unit_test(test_precision_floor),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
