/* Unit tests for src/proto/ke_summary: NTS-KE outcome counts, the summary
 * line, and which outcomes get a line of their own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/ke_summary.h"

static void test_first_of_each_kind(void **state)
{
  (void)state;
  ke_summary *s = ke_summary_create();
  assert_non_null(s);
  assert_int_equal(ke_summary_note(s, KE_OUT_SERVED, 8), 0);
  assert_int_equal(ke_summary_note(s, KE_OUT_SERVED, 8), 0);
  assert_int_equal(ke_summary_note(s, KE_OUT_TLS, 0), KE_LOG_DETAIL);
  assert_int_equal(ke_summary_note(s, KE_OUT_TLS, 0), 0);
  assert_int_equal(ke_summary_note(s, KE_OUT_TIMEOUT, 0), KE_LOG_DETAIL);
  assert_int_equal(ke_summary_note(s, KE_OUT_HELLO_TIMEOUT, 0), KE_LOG_DETAIL);
  assert_int_equal(ke_summary_note(s, KE_OUT_HELLO_TIMEOUT, 0), 0);
  /* Refusals before TLS have no line of their own; a shortage of slots is
   * worth one warning per interval, whichever form it takes. */
  assert_int_equal(ke_summary_note(s, KE_OUT_REFUSED_RATE, 0), 0);
  assert_int_equal(ke_summary_note(s, KE_OUT_REFUSED_ACL, 0), 0);
  assert_int_equal(ke_summary_note(s, KE_OUT_EVICTED, 0), KE_LOG_DETAIL | KE_LOG_PRESSURE);
  assert_int_equal(ke_summary_note(s, KE_OUT_EVICTED, 0), 0);
  assert_int_equal(ke_summary_note(s, KE_OUT_REFUSED_PREFIX, 0), 0);
  assert_int_equal(ke_summary_note(s, KE_OUT_REFUSED_FULL, 0), 0);
  assert_int_equal(ke_summary_note(s, KE_OUT_COUNT, 0), 0);
  assert_int_equal(ke_summary_count(s, KE_OUT_SERVED), 2);
  assert_int_equal(ke_summary_count(s, KE_OUT_TLS), 2);
  assert_int_equal(ke_summary_count(s, KE_OUT_COUNT), 0);

  /* A new interval: the first ones are worth their lines again. */
  char buf[256];
  assert_true(ke_summary_take(s, 60, buf, sizeof(buf)));
  assert_int_equal(ke_summary_count(s, KE_OUT_TLS), 0);
  assert_int_equal(ke_summary_note(s, KE_OUT_TLS, 0), KE_LOG_DETAIL);
  assert_int_equal(ke_summary_note(s, KE_OUT_REFUSED_PREFIX, 0), KE_LOG_PRESSURE);
  ke_summary_destroy(s);
  ke_summary_destroy(NULL);
}

static void test_summary_line(void **state)
{
  (void)state;
  ke_summary *s = ke_summary_create();
  char buf[512];
  strcpy(buf, "junk");
  assert_false(ke_summary_take(s, 60, buf, sizeof(buf)));
  assert_string_equal(buf, "");

  for (int i = 0; i < 3; i++)
    ke_summary_note(s, KE_OUT_SERVED, 8);
  assert_true(ke_summary_take(s, 60, buf, sizeof(buf)));
  assert_string_equal(buf, "NTS-KE in the last 60 s: 3 served (24 cookies)");

  ke_summary_note(s, KE_OUT_SERVED, 8);
  ke_summary_note(s, KE_OUT_TLS, 0);
  ke_summary_note(s, KE_OUT_TLS, 0);
  ke_summary_note(s, KE_OUT_TIMEOUT, 0);
  ke_summary_note(s, KE_OUT_EVICTED, 0);
  ke_summary_note(s, KE_OUT_REFUSED_RATE, 0);
  ke_summary_note(s, KE_OUT_REFUSED_RATE, 0);
  ke_summary_note(s, KE_OUT_REFUSED_PREFIX, 0);
  assert_true(ke_summary_take(s, 59.6, buf, sizeof(buf)));
  assert_string_equal(buf, "NTS-KE in the last 60 s: 1 served (8 cookies); 4 failed (2 tls, "
                           "1 timeout, 1 evicted); 3 refused (2 rate, 1 prefix_cap)");

  /* Only refusals. */
  ke_summary_note(s, KE_OUT_REFUSED_FULL, 0);
  assert_true(ke_summary_take(s, 60, buf, sizeof(buf)));
  assert_string_equal(buf, "NTS-KE in the last 60 s: 0 served (0 cookies); 1 refused (1 full)");

  /* Every outcome has a name. */
  for (int o = 0; o < KE_OUT_COUNT; o++) {
    assert_non_null(ke_outcome_name((ke_outcome)o));
    assert_string_not_equal(ke_outcome_name((ke_outcome)o), "?");
    ke_summary_note(s, (ke_outcome)o, 1);
  }
  assert_string_equal(ke_outcome_name(KE_OUT_COUNT), "?");
  assert_true(ke_summary_take(s, 60, buf, sizeof(buf)));
  assert_non_null(strstr(buf, "; 8 failed (1 no_common, 1 bad_request, 1 tls, 1 no_alpn, "
                              "1 closed, 1 timeout, 1 hello_timeout, 1 evicted); 5 refused "
                              "(1 restrict, 1 rate, 1 prefix_cap, 1 full, 1 error)"));
  ke_summary_destroy(s);
}

static void test_small_buffers(void **state)
{
  (void)state;
  ke_summary *s = ke_summary_create();
  char buf[16];
  memset(buf, 'x', sizeof(buf));
  for (int o = 0; o < KE_OUT_COUNT; o++)
    ke_summary_note(s, (ke_outcome)o, 1);
  assert_true(ke_summary_take(s, 60, buf, 10));
  assert_int_equal(strlen(buf), 9);
  assert_int_equal(buf[10], 'x');
  ke_summary_note(s, KE_OUT_SERVED, 1);
  assert_false(ke_summary_take(s, 60, buf, 0)); /* nowhere to write: counted as taken */
  assert_false(ke_summary_take(s, 60, buf, sizeof(buf)));
  ke_summary_destroy(s);
}

/* However many outcomes, an interval gives at most one line per failure
 * kind and one warning. */
static void test_lines_are_bounded(void **state)
{
  (void)state;
  ke_summary *s = ke_summary_create();
  uint32_t x = 12345;
  for (int interval = 0; interval < 3; interval++) {
    int details = 0, warnings = 0;
    for (int i = 0; i < 100000; i++) {
      x = x * 1103515245u + 12345u;
      unsigned bits = ke_summary_note(s, (ke_outcome)((x >> 16) % KE_OUT_COUNT), 8);
      details += (bits & KE_LOG_DETAIL) != 0;
      warnings += (bits & KE_LOG_PRESSURE) != 0;
    }
    assert_int_equal(details, KE_OUT_EVICTED - KE_OUT_SERVED);
    assert_int_equal(warnings, 1);
    char buf[512];
    assert_true(ke_summary_take(s, 60, buf, sizeof(buf)));
  }
  ke_summary_destroy(s);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_first_of_each_kind),
      cmocka_unit_test(test_summary_line),
      cmocka_unit_test(test_small_buffers),
      cmocka_unit_test(test_lines_are_bounded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
