/* Unit tests for src/proto/svcnotify (NOTIFY_SOCKET, WATCHDOG_USEC and
 * WATCHDOG_PID as a service manager passes them). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/svcnotify.h"

static void test_socket_path(void **state)
{
  (void)state;
  svcnotify_addr a;
  assert_int_equal(svcnotify_parse_socket("/run/systemd/notify", &a), SVCNOTIFY_OK);
  assert_int_equal(a.len, strlen("/run/systemd/notify"));
  assert_memory_equal(a.path, "/run/systemd/notify", a.len);
}

static void test_socket_abstract(void **state)
{
  (void)state;
  svcnotify_addr a;
  assert_int_equal(svcnotify_parse_socket("@ntsd/notify", &a), SVCNOTIFY_OK);
  assert_int_equal(a.len, 12);
  assert_int_equal(a.path[0], '\0');
  assert_memory_equal(a.path + 1, "ntsd/notify", 11);
}

static void test_socket_refused(void **state)
{
  (void)state;
  svcnotify_addr a;
  assert_int_equal(svcnotify_parse_socket(NULL, &a), SVCNOTIFY_UNSET);
  assert_int_equal(svcnotify_parse_socket("", &a), SVCNOTIFY_UNSET);
  assert_int_equal(svcnotify_parse_socket("run/notify", &a), SVCNOTIFY_UNSUPPORTED);
  assert_int_equal(svcnotify_parse_socket("vsock:2:1234", &a), SVCNOTIFY_UNSUPPORTED);
  assert_int_equal(svcnotify_parse_socket("@", &a), SVCNOTIFY_INVALID);
  assert_int_equal(a.len, 0);
}

/* A path keeps room for its NUL; an abstract name may fill sun_path. */
static void test_socket_lengths(void **state)
{
  (void)state;
  char s[SVCNOTIFY_PATH_MAX + 2];
  svcnotify_addr a;
  memset(s, 'x', sizeof(s));
  s[0] = '/';
  s[SVCNOTIFY_PATH_MAX - 1] = '\0';
  assert_int_equal(svcnotify_parse_socket(s, &a), SVCNOTIFY_OK);
  assert_int_equal(a.len, SVCNOTIFY_PATH_MAX - 1);
  s[SVCNOTIFY_PATH_MAX - 1] = 'x';
  s[SVCNOTIFY_PATH_MAX] = '\0';
  assert_int_equal(svcnotify_parse_socket(s, &a), SVCNOTIFY_TOO_LONG);
  s[0] = '@';
  assert_int_equal(svcnotify_parse_socket(s, &a), SVCNOTIFY_OK);
  assert_int_equal(a.len, SVCNOTIFY_PATH_MAX);
  s[SVCNOTIFY_PATH_MAX] = 'x';
  s[SVCNOTIFY_PATH_MAX + 1] = '\0';
  assert_int_equal(svcnotify_parse_socket(s, &a), SVCNOTIFY_TOO_LONG);
}

static void test_watchdog(void **state)
{
  (void)state;
  uint64_t u = 7;
  assert_int_equal(svcnotify_parse_watchdog(NULL, NULL, 10, &u), SVCNOTIFY_UNSET);
  assert_int_equal(u, 0);
  assert_int_equal(svcnotify_parse_watchdog("", "10", 10, &u), SVCNOTIFY_UNSET);
  assert_int_equal(svcnotify_parse_watchdog("30000000", NULL, 10, &u), SVCNOTIFY_OK);
  assert_int_equal(u, 30000000);
  assert_int_equal(svcnotify_parse_watchdog("1000000", "10", 10, &u), SVCNOTIFY_OK);
  assert_int_equal(u, 1000000);
  assert_int_equal(svcnotify_parse_watchdog("1000000", "11", 10, &u), SVCNOTIFY_OTHER_PID);
  assert_int_equal(u, 0);
  assert_int_equal(svcnotify_parse_watchdog("18446744073709551614", "", 10, &u), SVCNOTIFY_OK);
  assert_true(u == UINT64_MAX - 1);
}

static void test_watchdog_refused(void **state)
{
  (void)state;
  uint64_t u;
  const char *bad[] = {"0", "-1", "+5", " 5", "5 ", "5s", "1e6", "0x10",
                       "18446744073709551615", "99999999999999999999"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(svcnotify_parse_watchdog(bad[i], NULL, 1, &u), SVCNOTIFY_INVALID);
  assert_int_equal(svcnotify_parse_watchdog("5", "0", 1, &u), SVCNOTIFY_INVALID);
  assert_int_equal(svcnotify_parse_watchdog("5", "4294967296", 1, &u), SVCNOTIFY_INVALID);
  assert_int_equal(svcnotify_parse_watchdog("5", "x", 1, &u), SVCNOTIFY_INVALID);
  assert_int_equal(u, 0);
  assert_string_equal(svcnotify_status_str(SVCNOTIFY_OTHER_PID), "meant for another process");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_socket_path),    cmocka_unit_test(test_socket_abstract),
      cmocka_unit_test(test_socket_refused), cmocka_unit_test(test_socket_lengths),
      cmocka_unit_test(test_watchdog),       cmocka_unit_test(test_watchdog_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
