/* Unit tests for src/proto/prom_text: the exact lines of both exposition
 * formats, escaping, names, and a full buffer. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/prom_text.h"

static char buf[4096];

static void test_gauge_and_counter(void **state)
{
  (void)state;
  prom_w w;
  prom_init(&w, buf, sizeof(buf), false);
  prom_family(&w, "ntsd_system_offset_seconds", PROM_GAUGE, "The offset.");
  prom_sample(&w, NULL, 0, -0.000125);
  prom_family(&w, "ntsd_server_requests", PROM_COUNTER, "Requests.");
  const prom_label l[] = {{"mode", "nts"}, {"outcome", "responded"}};
  prom_sample_u64(&w, l, 2, UINT64_MAX);
  prom_sample(&w, l, 1, NAN);
  prom_sample(&w, NULL, 0, -INFINITY);
  assert_true(prom_end(&w));
  buf[w.len] = '\0';
  assert_string_equal(buf, "# HELP ntsd_system_offset_seconds The offset.\n"
                           "# TYPE ntsd_system_offset_seconds gauge\n"
                           "ntsd_system_offset_seconds -0.000125\n"
                           "# HELP ntsd_server_requests_total Requests.\n"
                           "# TYPE ntsd_server_requests_total counter\n"
                           "ntsd_server_requests_total{mode=\"nts\",outcome=\"responded\"} "
                           "18446744073709551615\n"
                           "ntsd_server_requests_total{mode=\"nts\"} NaN\n"
                           "ntsd_server_requests_total -Inf\n");
}

/* Label values escape backslash, quote and newline; help texts backslash
 * and newline (OpenMetrics: the quote too). */
static void test_escaping(void **state)
{
  (void)state;
  prom_w w;
  prom_init(&w, buf, sizeof(buf), false);
  prom_family(&w, "ntsd_x", PROM_GAUGE, "a \"b\" c\\d\ne");
  const prom_label l[] = {{"source", "we\"ird\\name\nx"}, {"empty", NULL}};
  prom_sample(&w, l, 2, 1);
  assert_true(prom_end(&w));
  buf[w.len] = '\0';
  assert_string_equal(buf, "# HELP ntsd_x a \"b\" c\\\\d\\ne\n"
                           "# TYPE ntsd_x gauge\n"
                           "ntsd_x{source=\"we\\\"ird\\\\name\\nx\",empty=\"\"} 1\n");
  prom_init(&w, buf, sizeof(buf), true);
  prom_family(&w, "ntsd_x", PROM_GAUGE, "a \"b\"");
  assert_true(prom_end(&w));
  buf[w.len] = '\0';
  assert_string_equal(buf, "# HELP ntsd_x a \\\"b\\\"\n# TYPE ntsd_x gauge\n# EOF\n");
}

static void test_histogram(void **state)
{
  (void)state;
  static const double bounds[] = {0.005, 0.1, 1};
  static const uint64_t counts[] = {1, 3, 3};
  const prom_label l[] = {{"a", "b"}};
  for (int om = 0; om < 2; om++) {
    prom_w w;
    prom_init(&w, buf, sizeof(buf), om);
    prom_family(&w, "ntsd_ke_handshake_seconds", PROM_HISTOGRAM, "KE time.");
    prom_histogram(&w, l, 1, bounds, counts, 3, 4, 2.75);
    assert_true(prom_end(&w));
    buf[w.len] = '\0';
    assert_string_equal(buf, om ? "# HELP ntsd_ke_handshake_seconds KE time.\n"
                                  "# TYPE ntsd_ke_handshake_seconds histogram\n"
                                  "ntsd_ke_handshake_seconds_bucket{a=\"b\",le=\"0.005\"} 1\n"
                                  "ntsd_ke_handshake_seconds_bucket{a=\"b\",le=\"0.1\"} 3\n"
                                  "ntsd_ke_handshake_seconds_bucket{a=\"b\",le=\"1.0\"} 3\n"
                                  "ntsd_ke_handshake_seconds_bucket{a=\"b\",le=\"+Inf\"} 4\n"
                                  "ntsd_ke_handshake_seconds_sum{a=\"b\"} 2.75\n"
                                  "ntsd_ke_handshake_seconds_count{a=\"b\"} 4\n"
                                  "# EOF\n"
                                : "# HELP ntsd_ke_handshake_seconds KE time.\n"
                                  "# TYPE ntsd_ke_handshake_seconds histogram\n"
                                  "ntsd_ke_handshake_seconds_bucket{a=\"b\",le=\"0.005\"} 1\n"
                                  "ntsd_ke_handshake_seconds_bucket{a=\"b\",le=\"0.1\"} 3\n"
                                  "ntsd_ke_handshake_seconds_bucket{a=\"b\",le=\"1\"} 3\n"
                                  "ntsd_ke_handshake_seconds_bucket{a=\"b\",le=\"+Inf\"} 4\n"
                                  "ntsd_ke_handshake_seconds_sum{a=\"b\"} 2.75\n"
                                  "ntsd_ke_handshake_seconds_count{a=\"b\"} 4\n");
  }
}

/* OpenMetrics names a counter family without _total; its samples keep it. */
static void test_openmetrics_counter(void **state)
{
  (void)state;
  prom_w w;
  prom_init(&w, buf, sizeof(buf), true);
  prom_family(&w, "ntsd_source_naks", PROM_COUNTER, "NAKs.");
  prom_sample_u64(&w, NULL, 0, 7);
  assert_true(prom_end(&w));
  buf[w.len] = '\0';
  assert_string_equal(buf, "# HELP ntsd_source_naks NAKs.\n# TYPE ntsd_source_naks counter\n"
                           "ntsd_source_naks_total 7\n# EOF\n");
}

/* A full buffer: overflow, never a write past it. */
static void test_overflow(void **state)
{
  (void)state;
  char small[40];
  memset(small, 'Z', sizeof(small));
  prom_w w;
  prom_init(&w, small, 30, false);
  prom_family(&w, "ntsd_system_offset_seconds", PROM_GAUGE, "The offset.");
  prom_sample(&w, NULL, 0, 1);
  assert_false(prom_end(&w));
  assert_true(w.len <= 30);
  for (size_t i = 30; i < sizeof(small); i++)
    assert_int_equal(small[i], 'Z');
}

static void test_names(void **state)
{
  (void)state;
  assert_true(prom_name_ok("ntsd_a:b_1", false));
  assert_false(prom_name_ok("ntsd_a:b_1", true));
  assert_true(prom_name_ok("_x", true));
  assert_false(prom_name_ok("1x", false));
  assert_false(prom_name_ok("a-b", false));
  assert_false(prom_name_ok("", false));
  assert_false(prom_name_ok(NULL, false));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gauge_and_counter), cmocka_unit_test(test_escaping),
      cmocka_unit_test(test_histogram),         cmocka_unit_test(test_openmetrics_counter),
      cmocka_unit_test(test_overflow),          cmocka_unit_test(test_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
