/* Unit tests for src/proto/ntp_path: which way NTP goes, every case of the
 * table in docs/anonymity.md ("Transports"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/ntp_path.h"

static ntp_path_out choose(ntp_path_want want, bool proxy, bool tcp, bool refused, bool fb)
{
  ntp_path_in in = {.want = want, .proxy = proxy, .tcp_offered = tcp, .udp_refused = refused,
                    .directfallback = fb};
  return ntp_path_choose(&in);
}

static void test_direct(void **state)
{
  (void)state;
  /* Without a proxy nothing changes: auto and udp are UDP, whatever the
   * KE server offers; tcp forces TCP. */
  for (int tcp = 0; tcp < 2; tcp++) {
    assert_int_equal(choose(NTP_PATH_WANT_AUTO, false, tcp, false, false).path, NTP_PATH_UDP);
    assert_int_equal(choose(NTP_PATH_WANT_UDP, false, tcp, false, false).path, NTP_PATH_UDP);
    ntp_path_out o = choose(NTP_PATH_WANT_TCP, false, tcp, false, false);
    assert_int_equal(o.path, NTP_PATH_TCP);
    assert_false(o.fallback);
  }
}

static void test_proxy_auto(void **state)
{
  (void)state;
  /* TCP when advertised, even if UDP ASSOCIATE would work. */
  assert_int_equal(choose(NTP_PATH_WANT_AUTO, true, true, false, false).path,
                   NTP_PATH_SOCKS_TCP);
  assert_int_equal(choose(NTP_PATH_WANT_AUTO, true, true, true, false).path,
                   NTP_PATH_SOCKS_TCP);
  /* Else UDP ASSOCIATE until the proxy refused it. */
  assert_int_equal(choose(NTP_PATH_WANT_AUTO, true, false, false, false).path,
                   NTP_PATH_SOCKS_UDP);
  ntp_path_out o = choose(NTP_PATH_WANT_AUTO, true, false, true, false);
  assert_int_equal(o.path, NTP_PATH_NONE);
  assert_false(o.fallback);
  assert_string_equal(o.why, "proxy refuses UDP ASSOCIATE and the server does not offer "
                             "NTP over TCP");
  /* Only an explicit opt-in goes direct then, flagged for a warning. */
  o = choose(NTP_PATH_WANT_AUTO, true, false, true, true);
  assert_int_equal(o.path, NTP_PATH_UDP);
  assert_true(o.fallback);
  assert_non_null(o.why);
}

static void test_proxy_forced(void **state)
{
  (void)state;
  /* tcp: through CONNECT even when not advertised; never direct. */
  for (int fb = 0; fb < 2; fb++) {
    ntp_path_out o = choose(NTP_PATH_WANT_TCP, true, false, true, fb);
    assert_int_equal(o.path, NTP_PATH_SOCKS_TCP);
    assert_false(o.fallback);
  }
  /* udp: UDP ASSOCIATE even when TCP is advertised. */
  assert_int_equal(choose(NTP_PATH_WANT_UDP, true, true, false, false).path,
                   NTP_PATH_SOCKS_UDP);
  ntp_path_out o = choose(NTP_PATH_WANT_UDP, true, true, true, false);
  assert_int_equal(o.path, NTP_PATH_NONE);
  assert_string_equal(o.why, "proxy refuses UDP ASSOCIATE");
  o = choose(NTP_PATH_WANT_UDP, true, true, true, true);
  assert_int_equal(o.path, NTP_PATH_UDP);
  assert_true(o.fallback);
}

static void test_names(void **state)
{
  (void)state;
  assert_string_equal(ntp_path_name(NTP_PATH_NONE), "none");
  assert_string_equal(ntp_path_name(NTP_PATH_UDP), "udp");
  assert_string_equal(ntp_path_name(NTP_PATH_TCP), "tcp");
  assert_string_equal(ntp_path_name(NTP_PATH_SOCKS_UDP), "socks-udp");
  assert_string_equal(ntp_path_name(NTP_PATH_SOCKS_TCP), "socks-tcp");
  assert_string_equal(ntp_path_name((ntp_path)99), "none");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_direct),
      cmocka_unit_test(test_proxy_auto),
      cmocka_unit_test(test_proxy_forced),
      cmocka_unit_test(test_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
