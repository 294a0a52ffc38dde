/* Unit tests for src/proto/alert: the first event at once, then one
 * summary per interval while events keep coming. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proto/alert.h"

static void test_first_at_once_then_summary(void **state)
{
  (void)state;
  alert a;
  uint64_t n[ALERT_MAX_REASONS];
  alert_init(&a, 60.0);
  assert_true(isinf(alert_due(&a)));
  assert_true(alert_event(&a, 1, 100.0)); /* reported now */
  assert_true(alert_due(&a) == 160.0);
  for (int i = 0; i < 1000; i++) /* a flood: counted, not reported */
    assert_false(alert_event(&a, (unsigned)(i % 3), 100.0 + i * 0.05));
  assert_int_equal(alert_summary(&a, 159.9, n), 0); /* not due yet */
  assert_int_equal(alert_summary(&a, 160.0, n), 1000);
  assert_int_equal(n[0], 334);
  assert_int_equal(n[1], 333);
  assert_int_equal(n[2], 333);
  assert_int_equal(n[3], 0);
  /* The flood went on into this interval: the next one is summarised too. */
  assert_false(alert_event(&a, 0, 161.0));
  assert_int_equal(alert_summary(&a, 200.0, n), 0);
  assert_int_equal(alert_summary(&a, 220.0, n), 1);
  /* A quiet interval closes the alert: the next event is reported at once. */
  assert_int_equal(alert_summary(&a, 280.0, n), 0);
  assert_true(isinf(alert_due(&a)));
  assert_true(alert_event(&a, 2, 300.0));
}

static void test_reason_clamped(void **state)
{
  (void)state;
  alert a;
  uint64_t n[ALERT_MAX_REASONS];
  alert_init(&a, 0); /* a bad interval becomes the default */
  assert_true(alert_event(&a, 99, 0.0));
  assert_false(alert_event(&a, 99, 1.0));
  assert_int_equal(alert_summary(&a, 60.0, n), 1);
  assert_int_equal(n[ALERT_MAX_REASONS - 1], 1);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_first_at_once_then_summary),
      cmocka_unit_test(test_reason_clamped),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
