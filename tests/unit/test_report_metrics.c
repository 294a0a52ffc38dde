/* Unit tests for report_metrics (src/daemon/report.c): the families a
 * scrape carries, the NTS-KE histogram made cumulative from the per-bucket
 * counts the KE process reports, and what is left out when a part is off. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/report.h"

static bool has_line(const char *text, const char *line)
{
  size_t n = strlen(line);
  for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
    if ((p == text || p[-1] == '\n') && p[n] == '\n')
      return true;
  return false;
}

static void test_ke_histogram_and_cert(void **state)
{
  (void)state;
  report_sys sys = {.synced = true, .offset = -0.25, .frequency = 12.5,
                    .info = {.stratum = 2, .leap = 0}};
  ke_server_stats ks = {.serves_good = 6, .serves_bad = 2, .refused = 5, .refused_prefix = 3,
                        .timeouts = 1, .hello_timeouts = 1,
                        .hs_bucket = {1, 0, 2, 0, 0, 0, 0, 0, 0, 3}, .hs_sum_us = 9000500};
  report_metrics_in in = {.sys = &sys, .ke = &ks, .have_keys = true, .key_age = 60,
                          .key_rotations = 4, .have_cert = true, .cert_not_after = 1000000,
                          .wall_now = 1000000 - 86400 + 0.7};
  size_t len = 0;
  char *t = report_metrics(&in, false, &len);
  assert_non_null(t);
  assert_int_equal(strlen(t), len);
  static const char *const want[] = {
      "ntsd_system_offset_seconds -0.25",
      "ntsd_system_frequency_ratio 1.25e-05",
      "ntsd_system_synchronised 1",
      "ntsd_system_stratum 2",
      "# TYPE ntsd_ke_serves_total counter",
      "ntsd_ke_serves_total{outcome=\"success\"} 6",
      "ntsd_ke_serves_total{outcome=\"failure\"} 2",
      "ntsd_ke_timeouts_total 2",
      "ntsd_ke_refused_total{reason=\"prefix_cap\"} 3",
      "ntsd_ke_refused_total{reason=\"other\"} 2",
      "# TYPE ntsd_ke_handshake_seconds histogram",
      "ntsd_ke_handshake_seconds_bucket{le=\"0.005\"} 1",
      "ntsd_ke_handshake_seconds_bucket{le=\"0.01\"} 1",
      "ntsd_ke_handshake_seconds_bucket{le=\"0.025\"} 3",
      "ntsd_ke_handshake_seconds_bucket{le=\"2.5\"} 3",
      "ntsd_ke_handshake_seconds_bucket{le=\"+Inf\"} 6",
      "ntsd_ke_handshake_seconds_sum 9.0005",
      "ntsd_ke_handshake_seconds_count 6",
      "ntsd_cookie_key_age_seconds 60",
      "ntsd_cookie_key_rotations_total 4",
      "ntsd_certificate_expiry_seconds 86400",
      "ntsd_certificate_not_after_timestamp_seconds 1000000",
  };
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
    if (!has_line(t, want[i]))
      fail_msg("no line '%s' in:\n%s", want[i], t);
  free(t);
}

/* No NTS-KE server, no keys, no certificate, no sources: none of their
 * families; OpenMetrics ends with # EOF. */
static void test_parts_off(void **state)
{
  (void)state;
  report_sys sys = {0};
  report_metrics_in in = {.sys = &sys};
  size_t len;
  char *t = report_metrics(&in, true, &len);
  assert_non_null(t);
  assert_null(strstr(t, "ntsd_ke_"));
  assert_null(strstr(t, "ntsd_cookie_"));
  assert_null(strstr(t, "ntsd_certificate_"));
  assert_null(strstr(t, "ntsd_source_offset_seconds{"));
  assert_true(has_line(t, "# TYPE ntsd_system_clock_steps counter"));
  assert_true(has_line(t, "ntsd_system_clock_steps_total 0"));
  assert_true(len >= 6 && strcmp(t + len - 6, "# EOF\n") == 0);
  free(t);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ke_histogram_and_cert),
      cmocka_unit_test(test_parts_off),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
