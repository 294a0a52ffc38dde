/* Unit tests for daemon/clockctl.c: the null and virtual backends.  The
 * system backend is never opened here: it would take over this machine's
 * clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "daemon/clockctl.h"
#include "daemon/sysclock.h"

static double ts_diff(struct timespec a, struct timespec b)
{
  return (double)(a.tv_sec - b.tv_sec) + (a.tv_nsec - b.tv_nsec) * 1e-9;
}

static clockctl *open_virtual(double offset, double ppm)
{
  char err[200];
  clockctl_cfg cfg = {.kind = CLOCKCTL_VIRTUAL, .virtual_offset = offset,
                      .virtual_freq_ppm = ppm};
  clockctl *c = clockctl_open(&cfg, err, sizeof(err));
  assert_non_null(c);
  return c;
}

static void test_none(void **state)
{
  (void)state;
  char err[200];
  clockctl_cfg cfg = {.kind = CLOCKCTL_NONE, .virtual_offset = 5};
  clockctl *c = clockctl_open(&cfg, err, sizeof(err));
  assert_non_null(c);
  assert_string_equal(clockctl_name(c), "none");
  assert_false(clockctl_controls(c));
  double e = 42;
  assert_false(clockctl_error(c, &e));
  assert_true(clockctl_step(c, 1.0)); /* accepted, nothing changes */
  assert_true(clockctl_set_freq(c, 10));
  assert_false(clockctl_set_freq(c, 501)); /* beyond what any clock may be told */
  struct timespec k = {.tv_sec = 1000, .tv_nsec = 5};
  struct timespec l = clockctl_local(c, &k);
  assert_int_equal(l.tv_sec, 1000);
  assert_int_equal(l.tv_nsec, 5);
  assert_true(ts_diff(clockctl_now(c), sysclock_system()) < 0.01);
  clockctl_close(c);
}

/* Two instances keep apart: the state is the instance's, not the module's. */
static void test_virtual_instances(void **state)
{
  (void)state;
  clockctl *a = open_virtual(0.25, 0);
  clockctl *b = open_virtual(-3.0, 0);
  assert_string_equal(clockctl_name(a), "virtual");
  assert_true(clockctl_controls(a));
  double ea, eb;
  assert_true(clockctl_error(a, &ea));
  assert_true(clockctl_error(b, &eb));
  assert_float_equal(ea, 0.25, 1e-6);
  assert_float_equal(eb, -3.0, 1e-6);
  assert_true(clockctl_step(a, -0.25));
  assert_true(clockctl_error(a, &ea));
  assert_true(clockctl_error(b, &eb));
  assert_float_equal(ea, 0, 1e-6);
  assert_float_equal(eb, -3.0, 1e-6);
  assert_false(clockctl_step(b, 0.0 / 0.0));
  clockctl_close(a);
  clockctl_close(b);
}

/* The daemon's time reads go through the instance: now, kernel stamps. */
static void test_virtual_time(void **state)
{
  (void)state;
  clockctl *c = open_virtual(2.5, 0);
  assert_float_equal(ts_diff(clockctl_now(c), sysclock_system()), 2.5, 0.01);
  struct timespec k = {.tv_sec = 1000, .tv_nsec = 800000000};
  struct timespec l = clockctl_local(c, &k);
  assert_float_equal(ts_diff(l, k), 2.5, 1e-6);
  assert_true(l.tv_nsec >= 0 && l.tv_nsec < 1000000000L);
  ntp_ts n = clockctl_now_ntp(c);
  struct timespec sys = sysclock_system();
  ntp_ts s = ntp_ts_from_timespec(&sys);
  assert_float_equal(ntp_ts_diff(n, s), 2.5, 0.01);
  clockctl_close(c);
}

/* A frequency error makes the error grow; the correction cancels it. */
static void test_virtual_freq(void **state)
{
  (void)state;
  clockctl *c = open_virtual(0, 400000); /* 0.4 s per second: visible in 50 ms */
  struct timespec d = {.tv_nsec = 50000000};
  nanosleep(&d, NULL);
  double e;
  assert_true(clockctl_error(c, &e));
  assert_true(e > 0.015);
  assert_true(clockctl_set_freq(c, 400)); /* within the +-500 ppm a correction may be */
  assert_false(clockctl_set_freq(c, 1e9));
  clockctl_close(c);
  c = open_virtual(0, 300);
  assert_true(clockctl_set_freq(c, -300));
  nanosleep(&d, NULL);
  assert_true(clockctl_error(c, &e));
  assert_float_equal(e, 0, 1e-7);
  clockctl_close(c);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_none),
      cmocka_unit_test(test_virtual_instances),
      cmocka_unit_test(test_virtual_time),
      cmocka_unit_test(test_virtual_freq),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
