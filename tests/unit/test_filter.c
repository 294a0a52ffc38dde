/* Unit tests for proto/filter.c: minimum-delay choice, the only-newer rule,
 * popcorn spikes, jitter and dispersion aging. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/filter.h"
#include "proto/ntp_client.h"

/* cmocka's assert_float_equal works in single precision. */
static void near_(double a, double b, double eps, const char *file, int line)
{
  if (!(fabs(a - b) <= eps)) {
    print_error("%.17g != %.17g (within %g)\n", a, b, eps);
    _fail(file, line);
  }
}
#define assert_near(a, b, eps) near_((a), (b), (eps), __FILE__, __LINE__)

#define PREC 1e-6
#define D 0.020 /* a common delay: on equal delays the newest sample wins */

static ntp_filter_out get(const ntp_filter *f, double now)
{
  ntp_filter_out o;
  assert_true(ntp_filter_get(f, now, &o));
  return o;
}

static void test_empty(void **state)
{
  (void)state;
  ntp_filter f;
  ntp_filter_init(&f, PREC);
  ntp_filter_out o;
  assert_false(ntp_filter_get(&f, 10, &o));
  assert_int_equal(o.n, 0);
  assert_near(o.dispersion, NTP_FILTER_MAXDISP, 0);
  assert_int_equal(ntp_filter_count(&f), 0);
}

static void test_min_delay_selection(void **state)
{
  (void)state;
  ntp_filter f;
  ntp_filter_init(&f, PREC);
  assert_int_equal(ntp_filter_add(&f, 0.010, 0.100, 0, 0), NTP_FILTER_UPDATED);
  assert_int_equal(ntp_filter_add(&f, 0.001, 0.010, 0, 16), NTP_FILTER_UPDATED);
  /* Worse delays: the 16 s sample stays the best and is not used again. */
  assert_int_equal(ntp_filter_add(&f, 0.007, 0.060, 0, 32), NTP_FILTER_OLD);
  assert_int_equal(ntp_filter_add(&f, 0.009, 0.080, 0, 48), NTP_FILTER_OLD);
  ntp_filter_out o = get(&f, 50);
  assert_near(o.offset, 0.001, 1e-12);
  assert_near(o.delay, 0.010, 1e-12);
  assert_near(o.t, 16, 0);
  assert_int_equal(o.n, 4);
  /* A lower delay wins even with a larger offset. */
  assert_int_equal(ntp_filter_add(&f, 0.004, 0.005, 0, 64), NTP_FILTER_UPDATED);
  o = get(&f, 64);
  assert_near(o.offset, 0.004, 1e-12);
}

/* Once the used sample leaves the register, the best of the rest is used
 * (it is newer), and then never again. */
static void test_only_newer(void **state)
{
  (void)state;
  ntp_filter f;
  ntp_filter_init(&f, PREC);
  assert_int_equal(ntp_filter_add(&f, 0.001, 0.010, 0, 0), NTP_FILTER_UPDATED);
  const double delays[7] = {0.05, 0.06, 0.02, 0.07, 0.05, 0.08, 0.09};
  for (int k = 0; k < 7; k++)
    assert_int_equal(ntp_filter_add(&f, 0.001, delays[k], 0, 16.0 * (k + 1)), NTP_FILTER_OLD);
  assert_near(get(&f, 120).t, 0, 0);
  /* The ninth sample pushes the used one out: the 0.02 s one (t = 48) is
   * the best now and newer than the one used last. */
  assert_int_equal(ntp_filter_add(&f, 0.001, 0.10, 0, 128), NTP_FILTER_UPDATED);
  ntp_filter_out o = get(&f, 128);
  assert_near(o.t, 48, 0);
  assert_near(o.delay, 0.02, 1e-12);
  assert_int_equal(o.n, NTP_FILTER_LEN);
  assert_int_equal(ntp_filter_add(&f, 0.001, 0.10, 0, 144), NTP_FILTER_OLD);
  assert_near(get(&f, 144).t, 48, 0);
}

/* Past the Allan intercept a sample's age counts against it, so a long
 * poll does not keep offering a sample from hours ago. */
static void test_allan_intercept(void **state)
{
  (void)state;
  ntp_filter f;
  ntp_filter_init(&f, PREC);
  assert_int_equal(ntp_filter_add(&f, 0.001, 0.010, 0, 0), NTP_FILTER_UPDATED);
  assert_int_equal(ntp_filter_add(&f, 0.002, 0.012, 0, 1024), NTP_FILTER_OLD);
  /* Exactly at the intercept the delay alone still decides. */
  assert_int_equal(ntp_filter_add(&f, 0.003, 0.012, 0, NTP_FILTER_ALLAN), NTP_FILTER_OLD);
  /* 3072 s old: 0.010 + 46 ms of aged dispersion loses to 0.012. */
  assert_int_equal(ntp_filter_add(&f, 0.004, 0.012, 0, 3072), NTP_FILTER_UPDATED);
  ntp_filter_out o = get(&f, 3072);
  assert_near(o.offset, 0.004, 0); /* equal keys: the newest */
  assert_near(o.t, 3072, 0);
}

static void test_jitter(void **state)
{
  (void)state;
  ntp_filter f;
  ntp_filter_init(&f, PREC);
  ntp_filter_add(&f, 0.001, D, 0, 0);
  assert_near(get(&f, 0).jitter, PREC, 0); /* one sample: the precision floor */
  ntp_filter_add(&f, 0.003, D, 0, 16);
  ntp_filter_add(&f, 0.002, D, 0, 32);
  /* Around the used (newest) 0.002: differences -1, +1, 0 ms over n-1 = 2. */
  ntp_filter_out o = get(&f, 32);
  assert_near(o.offset, 0.002, 1e-12);
  assert_near(o.jitter, 0.001, 1e-12);
  /* Identical offsets: the floor again. */
  ntp_filter g;
  ntp_filter_init(&g, PREC);
  for (int k = 0; k < 8; k++)
    ntp_filter_add(&g, 0.5, D, 0, k);
  assert_near(get(&g, 8).jitter, PREC, 0);
}

static void test_dispersion_aging(void **state)
{
  (void)state;
  ntp_filter f;
  ntp_filter_init(&f, PREC);
  ntp_filter_add(&f, 0, D, 0.001, 0);
  /* One sample weighs 1/2, the seven empty slots count as MAXDISP. */
  double empty = NTP_FILTER_MAXDISP * (0.5 - 1.0 / 256);
  assert_near(get(&f, 0).dispersion, 0.0005 + empty, 1e-12);
  assert_near(get(&f, 1000).dispersion, (0.001 + NTP_PHI * 1000) / 2 + empty, 1e-12);

  ntp_filter g;
  ntp_filter_init(&g, PREC);
  for (int k = 0; k < NTP_FILTER_LEN; k++)
    ntp_filter_add(&g, 0, D + 0.001 * k, 0, 0);
  double w = 1.0 - 1.0 / 256; /* sum of the weights 1/2 .. 1/256 */
  assert_near(get(&g, 0).dispersion, 0, 1e-15);
  assert_near(get(&g, 1000).dispersion, NTP_PHI * 1000 * w, 1e-12);
  /* Each sample's dispersion stops at MAXDISP. */
  assert_near(get(&g, 1e8).dispersion, NTP_FILTER_MAXDISP * w, 1e-9);
  /* Aging never changes the chosen sample. */
  assert_near(get(&g, 1e8).delay, D, 1e-12);
}

/* Eight samples alternating +-0.1 ms establish a jitter of about 0.15 ms. */
static void establish(ntp_filter *f, double *now)
{
  ntp_filter_init(f, PREC);
  for (int k = 0; k < NTP_FILTER_LEN; k++) {
    double off = (k & 1) ? -1e-4 : 1e-4;
    assert_int_equal(ntp_filter_add(f, off, D, 0, *now), NTP_FILTER_UPDATED);
    *now += 16;
  }
  assert_true(get(f, *now).jitter < 2e-4);
}

static void test_popcorn_spike_rejected(void **state)
{
  (void)state;
  ntp_filter f;
  double now = 0;
  establish(&f, &now);
  ntp_filter_out before = get(&f, now);
  assert_int_equal(ntp_filter_add(&f, 0.050, D, 0, now), NTP_FILTER_SPIKE);
  now += 16;
  ntp_filter_out o = get(&f, now);
  assert_near(o.offset, before.offset, 0);
  assert_near(o.t, before.t, 0);
  assert_true(o.jitter < 2e-4); /* a held spike does not inflate jitter */
  /* Back to normal: the spike is never used. */
  assert_int_equal(ntp_filter_add(&f, 1e-4, D, 0, now), NTP_FILTER_UPDATED);
  assert_near(get(&f, now).offset, 1e-4, 0);
  /* Opposite spikes in a row do not confirm each other. */
  now += 16;
  assert_int_equal(ntp_filter_add(&f, 0.050, D, 0, now), NTP_FILTER_SPIKE);
  now += 16;
  assert_int_equal(ntp_filter_add(&f, -0.050, D, 0, now), NTP_FILTER_SPIKE);
  assert_near(get(&f, now).offset, 1e-4, 0);
}

static void test_popcorn_step_persists(void **state)
{
  (void)state;
  ntp_filter f;
  double now = 0;
  establish(&f, &now);
  assert_int_equal(ntp_filter_add(&f, 0.050, D, 0, now), NTP_FILTER_SPIKE);
  now += 16;
  /* Displaced the same way again: a real step, accepted one sample late. */
  assert_int_equal(ntp_filter_add(&f, 0.0502, D, 0, now), NTP_FILTER_UPDATED);
  ntp_filter_out o = get(&f, now);
  assert_near(o.offset, 0.0502, 0);
  assert_true(o.jitter > 0.01); /* old level and new level now in the register */
  now += 16;
  assert_int_equal(ntp_filter_add(&f, 0.0501, D, 0, now), NTP_FILTER_UPDATED);

  /* The confirmed first sample is no spike any more: with the lowest delay
   * it is the one chosen. */
  establish(&f, &now);
  assert_int_equal(ntp_filter_add(&f, -0.030, D / 2, 0, now), NTP_FILTER_SPIKE);
  assert_int_equal(ntp_filter_add(&f, -0.031, D, 0, now + 16), NTP_FILTER_UPDATED);
  assert_near(get(&f, now + 16).offset, -0.030, 0);
}

static void test_no_gate_before_jitter(void **state)
{
  (void)state;
  ntp_filter f;
  ntp_filter_init(&f, PREC);
  ntp_filter_add(&f, 0.0, D, 0, 0);
  ntp_filter_add(&f, 1e-5, D, 0, 16);
  /* Only two samples: a jump of 1000 jitters is not called a spike. */
  assert_int_equal(ntp_filter_add(&f, 0.5, D, 0, 32), NTP_FILTER_UPDATED);
  assert_near(get(&f, 32).offset, 0.5, 0);
}

/* Two samples are enough for a source to be selectable (root distance
 * below maxdist 1.5 s); one is not. */
static void test_young_dispersion(void **state)
{
  (void)state;
  ntp_filter f;
  ntp_filter_init(&f, PREC);
  ntp_filter_add(&f, 0.001, D, PREC, 0.0);
  assert_true(get(&f, 0.0).dispersion > 1.5);
  ntp_filter_add(&f, 0.001, D, PREC, 2.0);
  ntp_filter_out o = get(&f, 2.0);
  assert_true(o.dispersion < 1e-3);
  assert_int_equal(o.n, 2);
}

/* Every sample goes to the discipline, weighted by the delay beyond the
 * path's minimum; spikes stay out; `after` selects the new ones. */
static void test_raw_samples(void **state)
{
  (void)state;
  ntp_filter f;
  ntp_filter_init(&f, PREC);
  ntp_filter_raw r[NTP_FILTER_LEN];
  assert_int_equal(ntp_filter_samples(&f, -1.0, r, NTP_FILTER_LEN), 0);
  for (int i = 0; i < NTP_FILTER_LEN; i++) /* 20, 21, 22, ... ms */
    ntp_filter_add(&f, 0.0, D + 1e-3 * (i % 4), PREC, 10.0 * i);
  int n = ntp_filter_samples(&f, -1.0, r, NTP_FILTER_LEN);
  assert_int_equal(n, NTP_FILTER_LEN);
  for (int i = 0; i < n; i++) {
    assert_near(r[i].t, 10.0 * i, 1e-12); /* oldest first */
    if (i > 0)
      /* each ms of queueing adds half a ms of error */
      assert_near(r[i].error - r[i - 1].error,
                  (i % 4 == 0 ? -3 : 1) * 0.5e-3, 1e-9);
  }
  /* Floor: half the median excess (1.5 or 2 ms here), not 0. */
  assert_true(r[0].error >= 0.5e-3 && r[0].error <= 1e-3);
  /* Only the samples after a time; a short buffer is respected. */
  assert_int_equal(ntp_filter_samples(&f, 35.0, r, NTP_FILTER_LEN), 4);
  assert_near(r[0].t, 40.0, 1e-12);
  assert_int_equal(ntp_filter_samples(&f, -1.0, r, 3), 3);
  assert_near(r[0].t, 0.0, 1e-12);
  /* A popcorn spike is not handed over. */
  ntp_filter_add(&f, 1.0, D, PREC, 100.0);
  assert_int_equal(ntp_filter_samples(&f, 75.0, r, NTP_FILTER_LEN), 0);
  /* A sample that queued 100 ms counts ~100x less than one that did not. */
  ntp_filter_add(&f, 0.0, D + 0.100, PREC, 110.0);
  ntp_filter_add(&f, 0.0, D, PREC, 120.0);
  n = ntp_filter_samples(&f, 105.0, r, NTP_FILTER_LEN);
  assert_int_equal(n, 2);
  assert_true(r[0].error > 0.050 && r[1].error < 2e-3);
}

/* Two samples, one of them queued 100 ms: the good one keeps a small
 * error (the spike's excess is not taken as the typical one), so the first
 * estimate from the two is not dragged by the spike. */
static void test_raw_two_one_spiked(void **state)
{
  (void)state;
  ntp_filter f;
  ntp_filter_init(&f, PREC);
  ntp_filter_add(&f, 0.050, D + 0.100, PREC, 0.0);
  ntp_filter_add(&f, 0.000, D, PREC, 2.0);
  ntp_filter_raw r[2];
  assert_int_equal(ntp_filter_samples(&f, 1.0, r, 2), 1);
  /* the good one: precision + the young register's share of D/2 */
  assert_near(r[0].error, PREC + D / 2 * (NTP_FILTER_LEN - 2) / NTP_FILTER_LEN, 1e-9);
}

/* A young register may not have seen the path's minimum: its samples
 * carry part of the delay bound, so two of them cannot pin a frequency. */
static void test_raw_young(void **state)
{
  (void)state;
  ntp_filter f;
  ntp_filter_init(&f, PREC);
  ntp_filter_add(&f, 0.0, D, PREC, 0.0);
  ntp_filter_raw r[1];
  assert_int_equal(ntp_filter_samples(&f, -1.0, r, 1), 1);
  assert_near(r[0].error, PREC + D / 2 * (NTP_FILTER_LEN - 1) / NTP_FILTER_LEN, 1e-9);
  /* The minimum delay is remembered beyond the register, and relaxes
   * towards the register's minimum when the path gets slower. */
  for (int i = 1; i < 40; i++)
    ntp_filter_add(&f, 0.0, 2 * D, PREC, 2.0 * i);
  ntp_filter_add(&f, 0.0, 2 * D, PREC, 100.0);
  assert_int_equal(ntp_filter_samples(&f, 99.0, r, 1), 1);
  assert_true(r[0].error < D / 2); /* mostly relaxed to 40 ms */
}

static void test_result_names(void **state)
{
  (void)state;
  assert_string_equal(ntp_filter_result_name(NTP_FILTER_UPDATED), "updated");
  assert_string_equal(ntp_filter_result_name(NTP_FILTER_OLD), "old");
  assert_string_equal(ntp_filter_result_name(NTP_FILTER_SPIKE), "spike");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty),
      cmocka_unit_test(test_min_delay_selection),
      cmocka_unit_test(test_only_newer),
      cmocka_unit_test(test_allan_intercept),
      cmocka_unit_test(test_jitter),
      cmocka_unit_test(test_dispersion_aging),
      cmocka_unit_test(test_popcorn_spike_rejected),
      cmocka_unit_test(test_popcorn_step_persists),
      cmocka_unit_test(test_no_gate_before_jitter),
      cmocka_unit_test(test_young_dispersion),
      cmocka_unit_test(test_raw_samples),
      cmocka_unit_test(test_raw_young),
      cmocka_unit_test(test_raw_two_one_spiked),
      cmocka_unit_test(test_result_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
