/* Unit tests for src/proto/ntp_time: 32.32 timestamps, eras, short format. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "proto/ntp_time.h"

/* 2036-02-07T06:28:16Z: NTP era 0 ends, seconds field wraps to 0. */
#define ERA1_UNIX 2085978496LL
#define NS 1000000000LL

/* cmocka's assert_float_equal works in float; these checks need double. */
#define assert_near(a, b, eps)                                                               \
  do {                                                                                       \
    double a_ = (a), b_ = (b), e_ = (eps);                                                   \
    if (!(fabs(a_ - b_) <= e_))                                                              \
      fail_msg("%s = %.17g, want %.17g +- %g", #a, a_, b_, e_);                             \
  } while (0)

static struct timespec mkts(int64_t sec, long nsec)
{
  struct timespec t;
  t.tv_sec = (time_t)sec;
  t.tv_nsec = nsec;
  return t;
}

static int64_t ts_ns(const struct timespec *t) { return (int64_t)t->tv_sec * NS + t->tv_nsec; }

/* Asserts a and b are within tol_ns and b is normalised. */
static void assert_ts_near(const struct timespec *a, const struct timespec *b, int64_t tol_ns)
{
  assert_true(b->tv_nsec >= 0 && b->tv_nsec < NS);
  int64_t d = ts_ns(a) - ts_ns(b);
  if (d < -tol_ns || d > tol_ns)
    fail_msg("%lld.%09ld vs %lld.%09ld (diff %lld ns)", (long long)a->tv_sec, a->tv_nsec,
             (long long)b->tv_sec, b->tv_nsec, (long long)d);
}

static void test_from_timespec_known(void **state)
{
  (void)state;
  struct timespec t = mkts(0, 0);
  assert_true(ntp_ts_from_timespec(&t) == NTP_UNIX_OFFSET << 32);

  t = mkts(0, 500000000);
  assert_true(ntp_ts_from_timespec(&t) == ((NTP_UNIX_OFFSET << 32) | 0x80000000ULL));

  /* 1 ns = 4.29 units of 2^-32 s, rounded to nearest. */
  t = mkts(0, 1);
  assert_true((ntp_ts_from_timespec(&t) & 0xffffffffULL) == 4);
  t = mkts(0, 250000000);
  assert_true((ntp_ts_from_timespec(&t) & 0xffffffffULL) == 0x40000000ULL);
  /* The largest fraction does not carry into the seconds. */
  t = mkts(0, 999999999);
  ntp_ts x = ntp_ts_from_timespec(&t);
  assert_true(x >> 32 == NTP_UNIX_OFFSET);
  assert_true((x & 0xffffffffULL) == 4294967292ULL);

  /* 2000-01-01T00:00:00Z is NTP second 3155673600. */
  t = mkts(946684800, 0);
  assert_true(ntp_ts_from_timespec(&t) >> 32 == 3155673600ULL);
}

static void test_from_timespec_era_wrap(void **state)
{
  (void)state;
  /* One second before the rollover: 0xffffffff. */
  struct timespec t = mkts(ERA1_UNIX - 1, 0);
  assert_true(ntp_ts_from_timespec(&t) == 0xffffffff00000000ULL);
  /* At and after it the seconds start again from 0 (era is dropped). */
  t = mkts(ERA1_UNIX, 0);
  assert_true(ntp_ts_from_timespec(&t) == 0);
  t = mkts(ERA1_UNIX + 1, 500000000);
  assert_true(ntp_ts_from_timespec(&t) == 0x0000000180000000ULL);
}

static void test_from_timespec_negative(void **state)
{
  (void)state;
  /* Before 1970 (still era 0): 1969-12-31T23:59:59.5Z. */
  struct timespec t = mkts(-1, 500000000);
  assert_true(ntp_ts_from_timespec(&t) == (((NTP_UNIX_OFFSET - 1) << 32) | 0x80000000ULL));
  /* The NTP prime epoch 1900-01-01 is timestamp 0. */
  t = mkts(-(int64_t)NTP_UNIX_OFFSET, 0);
  assert_true(ntp_ts_from_timespec(&t) == 0);
}

static void roundtrip_at(int64_t sec, long nsec, int64_t pivot_delta_ns)
{
  struct timespec t = mkts(sec, nsec);
  int64_t pns = ts_ns(&t) + pivot_delta_ns;
  int64_t psec = pns / NS, pfrac = pns % NS;
  if (pfrac < 0) {
    pfrac += NS;
    psec--;
  }
  struct timespec pivot = mkts(psec, (long)pfrac);
  struct timespec back = ntp_ts_to_timespec(ntp_ts_from_timespec(&t), &pivot);
  assert_ts_near(&t, &back, 1);
}

static void test_timespec_roundtrip(void **state)
{
  (void)state;
  static const long nsecs[] = {0,         1,         2,         3,         499999999,
                               500000000, 500000001, 999999998, 999999999, 123456789};
  static const int64_t bases[] = {0,
                                  1,
                                  -1,
                                  1700000000,
                                  ERA1_UNIX - 1,
                                  ERA1_UNIX,
                                  ERA1_UNIX + 1,
                                  2147483647LL, /* 2038 */
                                  -(int64_t)NTP_UNIX_OFFSET + 10};
  static const int64_t deltas[] = {0,
                                   1,
                                   -1,
                                   NS / 2,
                                   -NS / 2,
                                   1000 * NS,
                                   -1000 * NS,
                                   30LL * 365 * 86400 * NS,
                                   -30LL * 365 * 86400 * NS,
                                   ((1LL << 31) - 86400) * NS,
                                   -((1LL << 31) - 86400) * NS};
  for (size_t b = 0; b < sizeof(bases) / sizeof(bases[0]); b++)
    for (size_t n = 0; n < sizeof(nsecs) / sizeof(nsecs[0]); n++)
      for (size_t d = 0; d < sizeof(deltas) / sizeof(deltas[0]); d++)
        roundtrip_at(bases[b], nsecs[n], deltas[d]);
}

static void test_timespec_roundtrip_sweep(void **state)
{
  (void)state;
  /* Every nanosecond value in a few windows plus a coarse sweep: the
   * 32-bit fraction has 0.23 ns resolution, so the round trip is exact. */
  for (long ns = 0; ns < 5000; ns++) {
    roundtrip_at(1700000000, ns, 0);
    roundtrip_at(1700000000, 999999999 - ns, 7 * NS + 3);
    roundtrip_at(1700000000, 500000000 + ns, -NS);
  }
  for (long ns = 0; ns < 1000000000; ns += 9973)
    roundtrip_at(ERA1_UNIX, ns, -(NS / 3));
}

static void test_era_after_rollover_pivot_before(void **state)
{
  (void)state;
  /* Timestamp 2 s after the rollover, pivot 1 s before it. */
  struct timespec t = mkts(ERA1_UNIX + 2, 250000000);
  ntp_ts x = ntp_ts_from_timespec(&t);
  assert_true(x >> 32 == 2); /* small: era 1 */
  struct timespec pivot = mkts(ERA1_UNIX - 1, 0);
  struct timespec r = ntp_ts_to_timespec(x, &pivot);
  assert_int_equal((int64_t)r.tv_sec, ERA1_UNIX + 2);
  assert_int_equal(r.tv_nsec, 250000000);

  /* The very first instant of era 1 with a pivot a day earlier. */
  pivot = mkts(ERA1_UNIX - 86400, 999999999);
  r = ntp_ts_to_timespec(0, &pivot);
  assert_int_equal((int64_t)r.tv_sec, ERA1_UNIX);
  assert_int_equal(r.tv_nsec, 0);

  /* Pivot years before the rollover (still within 68 years). */
  pivot = mkts(1700000000, 0);
  r = ntp_ts_to_timespec(x, &pivot);
  assert_int_equal((int64_t)r.tv_sec, ERA1_UNIX + 2);
}

static void test_era_before_rollover_pivot_after(void **state)
{
  (void)state;
  /* Timestamp 0.75 s before the rollover, pivot 3 s after it. */
  struct timespec t = mkts(ERA1_UNIX - 1, 250000000);
  ntp_ts x = ntp_ts_from_timespec(&t);
  assert_true(x >> 32 == 0xffffffffULL); /* large: era 0 */
  struct timespec pivot = mkts(ERA1_UNIX + 3, 0);
  struct timespec r = ntp_ts_to_timespec(x, &pivot);
  assert_int_equal((int64_t)r.tv_sec, ERA1_UNIX - 1);
  assert_int_equal(r.tv_nsec, 250000000);

  /* The last 2^-32 s of era 0 is 0.23 ns before the rollover: rounded to
   * the nearest nanosecond it carries into the seconds, normalised. */
  pivot = mkts(ERA1_UNIX + 10, 0);
  r = ntp_ts_to_timespec(0xffffffffffffffffULL, &pivot);
  assert_int_equal((int64_t)r.tv_sec, ERA1_UNIX);
  assert_int_equal(r.tv_nsec, 0);
  r = ntp_ts_to_timespec(0xfffffffff0000000ULL, &pivot);
  assert_int_equal((int64_t)r.tv_sec, ERA1_UNIX - 1);
  assert_int_equal(r.tv_nsec, 937500000);
}

static void test_era_far_pivot(void **state)
{
  (void)state;
  /* A 1970 timestamp read with a 2030 pivot stays in era 0 (60 years). */
  struct timespec t = mkts(86400, 0);
  struct timespec pivot = mkts(1900000000, 0);
  struct timespec r = ntp_ts_to_timespec(ntp_ts_from_timespec(&t), &pivot);
  assert_int_equal((int64_t)r.tv_sec, 86400);
  /* A 2090 timestamp (era 1) read with a 2030 pivot. */
  t = mkts(3786912000LL, 0);
  r = ntp_ts_to_timespec(ntp_ts_from_timespec(&t), &pivot);
  assert_int_equal((int64_t)r.tv_sec, 3786912000LL);
  /* The same NTP value read with a 1950 pivot lands in era 0 instead. */
  pivot = mkts(-631152000, 0);
  r = ntp_ts_to_timespec(ntp_ts_from_timespec(&t), &pivot);
  assert_int_equal((int64_t)r.tv_sec, 3786912000LL - (1LL << 32));
}

static void test_diff(void **state)
{
  (void)state;
  struct timespec a = mkts(1700000000, 750000000), b = mkts(1700000000, 250000000);
  ntp_ts ta = ntp_ts_from_timespec(&a), tb = ntp_ts_from_timespec(&b);
  assert_near(ntp_ts_diff(ta, tb), 0.5, 1e-9);
  assert_near(ntp_ts_diff(tb, ta), -0.5, 1e-9);
  assert_near(ntp_ts_diff(ta, ta), 0.0, 0.0);
  /* One unit of 2^-32 s. */
  assert_near(ntp_ts_diff(ta + 1, ta), 1.0 / 4294967296.0, 1e-20);
  assert_near(ntp_ts_diff(ta, ta + 1), -1.0 / 4294967296.0, 1e-20);
  /* Large but < 68 years. */
  struct timespec c = mkts(1700000000 + 2000000000LL, 0), d = mkts(1700000000, 0);
  assert_near(ntp_ts_diff(ntp_ts_from_timespec(&c), ntp_ts_from_timespec(&d)),
                     2000000000.0, 1e-6);
  assert_near(ntp_ts_diff(ntp_ts_from_timespec(&d), ntp_ts_from_timespec(&c)),
                     -2000000000.0, 1e-6);
}

static void test_diff_across_era(void **state)
{
  (void)state;
  struct timespec after = mkts(ERA1_UNIX + 1, 500000000);
  struct timespec before = mkts(ERA1_UNIX - 1, 750000000);
  ntp_ts ta = ntp_ts_from_timespec(&after), tb = ntp_ts_from_timespec(&before);
  assert_true(ta < tb); /* raw values are out of order... */
  assert_near(ntp_ts_diff(ta, tb), 1.75, 1e-9); /* ...the difference is not */
  assert_near(ntp_ts_diff(tb, ta), -1.75, 1e-9);
  assert_near(ntp_ts_diff(0, 0xffffffffffffffffULL), 1.0 / 4294967296.0, 1e-20);
  assert_near(ntp_ts_diff(0xffffffffffffffffULL, 0), -1.0 / 4294967296.0, 1e-20);
  /* 10 days across the boundary. */
  struct timespec far = mkts(ERA1_UNIX + 5 * 86400, 0);
  struct timespec early = mkts(ERA1_UNIX - 5 * 86400, 0);
  assert_near(ntp_ts_diff(ntp_ts_from_timespec(&far), ntp_ts_from_timespec(&early)),
                     10.0 * 86400, 1e-9);
}

static void test_add(void **state)
{
  (void)state;
  ntp_ts t = 0x0000000500000000ULL;
  assert_true(ntp_ts_add(t, 1.5) == 0x0000000680000000ULL);
  assert_true(ntp_ts_add(t, -0.25) == 0x00000004c0000000ULL);
  assert_true(ntp_ts_add(t, 0.0) == t);
  /* Across the era boundary in both directions. */
  assert_true(ntp_ts_add(0xffffffff80000000ULL, 1.0) == 0x0000000080000000ULL);
  assert_true(ntp_ts_add(0, -0.5) == 0xffffffff80000000ULL);
  /* add and diff are inverses. */
  static const double secs[] = {0.001, -0.001, 12345.678, -98765.4321, 0.25};
  for (size_t i = 0; i < sizeof(secs) / sizeof(secs[0]); i++)
    assert_near(ntp_ts_diff(ntp_ts_add(0xfffffff000000000ULL, secs[i]),
                                   0xfffffff000000000ULL),
                       secs[i], 1e-9);
}

static void test_to_double(void **state)
{
  (void)state;
  assert_near(ntp_ts_to_double(0), 0.0, 0.0);
  assert_near(ntp_ts_to_double(0x0000000180000000ULL), 1.5, 1e-12);
  assert_near(ntp_ts_to_double(0xffffffff00000000ULL), 4294967295.0, 1e-3);
}

static void test_short_from_double(void **state)
{
  (void)state;
  assert_int_equal(ntp_short_from_double(1.0), 0x00010000u);
  assert_int_equal(ntp_short_from_double(0.5), 0x00008000u);
  assert_int_equal(ntp_short_from_double(1.0 / 65536.0), 1u);
  assert_int_equal(ntp_short_from_double(1000.25), 0x03e84000u);
  /* Rounded to the nearest unit. */
  assert_int_equal(ntp_short_from_double(0.4 / 65536.0), 1u); /* bounds round up */
  assert_int_equal(ntp_short_from_double(0.6 / 65536.0), 1u);
  /* Zero, negative and NaN clamp to 0. */
  assert_int_equal(ntp_short_from_double(0.0), 0u);
  assert_int_equal(ntp_short_from_double(-0.0), 0u);
  assert_int_equal(ntp_short_from_double(-1.0), 0u);
  assert_int_equal(ntp_short_from_double(-1e300), 0u);
  assert_int_equal(ntp_short_from_double(-INFINITY), 0u);
  assert_int_equal(ntp_short_from_double(NAN), 0u);
  /* Too large clamps to the maximum, never wraps. */
  assert_int_equal(ntp_short_from_double(65535.99998), 0xffffffffu);
  assert_int_equal(ntp_short_from_double(65536.0), 0xffffffffu);
  assert_int_equal(ntp_short_from_double(1e9), 0xffffffffu);
  assert_int_equal(ntp_short_from_double(INFINITY), 0xffffffffu);
  assert_int_equal(ntp_short_from_double(65535.0), 0xffff0000u);
  /* Just below the clamp: largest values are monotonic and in range. */
  ntp_short prev = 0;
  for (double s = 65535.9995; s < 65536.0; s += 0.000001) {
    ntp_short v = ntp_short_from_double(s);
    assert_true(v >= prev);
    assert_true(v >= 0xffff0000u);
    prev = v;
  }
}

static void test_short_to_double(void **state)
{
  (void)state;
  assert_near(ntp_short_to_double(0), 0.0, 0.0);
  assert_near(ntp_short_to_double(0x00018000u), 1.5, 0.0);
  assert_near(ntp_short_to_double(1), 1.0 / 65536.0, 0.0);
  assert_near(ntp_short_to_double(0xffffffffu), 65536.0 - 1.0 / 65536.0, 0.0);
  /* Round trip: never below the value, less than a unit above (bounds
   * round up). */
  static const double vals[] = {0.000015, 0.001, 0.0123, 0.5, 1.0, 3.999, 16.0, 1234.5678};
  for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
    double back = ntp_short_to_double(ntp_short_from_double(vals[i]));
    assert_true(back >= vals[i] && back < vals[i] + 1.0 / 65536.0);
  }
}

static void test_log2(void **state)
{
  (void)state;
  assert_near(ntp_log2_to_double(0), 1.0, 0.0);
  assert_near(ntp_log2_to_double(6), 64.0, 0.0);
  assert_near(ntp_log2_to_double(-1), 0.5, 0.0);
  assert_near(ntp_log2_to_double(-20), 1.0 / 1048576.0, 0.0);
  assert_near(ntp_log2_to_double(-30), 1.0 / 1073741824.0, 0.0);
  assert_near(ntp_log2_to_double(17), 131072.0, 0.0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_from_timespec_known),
      cmocka_unit_test(test_from_timespec_era_wrap),
      cmocka_unit_test(test_from_timespec_negative),
      cmocka_unit_test(test_timespec_roundtrip),
      cmocka_unit_test(test_timespec_roundtrip_sweep),
      cmocka_unit_test(test_era_after_rollover_pivot_before),
      cmocka_unit_test(test_era_before_rollover_pivot_after),
      cmocka_unit_test(test_era_far_pivot),
      cmocka_unit_test(test_diff),
      cmocka_unit_test(test_diff_across_era),
      cmocka_unit_test(test_add),
      cmocka_unit_test(test_to_double),
      cmocka_unit_test(test_short_from_double),
      cmocka_unit_test(test_short_to_double),
      cmocka_unit_test(test_log2),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
