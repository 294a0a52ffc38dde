/* Unit tests for daemon/netaddr.c: address parsing, formatting, ACL keys
 * and the refid a server advertises for its upstream. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/netaddr.h"

static void test_parse_and_format(void **state)
{
  (void)state;
  struct sockaddr_storage ss;
  socklen_t len;
  char buf[NETADDR_STRLEN];
  assert_true(netaddr_parse("127.0.0.1", 123, &ss, &len));
  assert_int_equal(len, sizeof(struct sockaddr_in));
  assert_string_equal(netaddr_str_port((struct sockaddr *)&ss, buf, sizeof(buf)),
                      "127.0.0.1:123");
  assert_int_equal(netaddr_port((struct sockaddr *)&ss), 123);
  assert_true(netaddr_parse("::1", 4460, &ss, &len));
  assert_int_equal(len, sizeof(struct sockaddr_in6));
  assert_string_equal(netaddr_str_port((struct sockaddr *)&ss, buf, sizeof(buf)), "[::1]:4460");
  assert_string_equal(netaddr_str((struct sockaddr *)&ss, buf, sizeof(buf)), "::1");
  assert_true(netaddr_parse("", 123, &ss, &len));
  assert_string_equal(netaddr_str_port((struct sockaddr *)&ss, buf, sizeof(buf)), "0.0.0.0:123");
  assert_true(netaddr_parse("*", 1, &ss, &len));
  assert_false(netaddr_parse("localhost", 123, &ss, &len)); /* literals only */
  assert_false(netaddr_parse("1.2.3.4.5", 123, &ss, &len));
  assert_false(netaddr_parse("[::1]", 123, &ss, &len));
}

static void test_acl_key(void **state)
{
  (void)state;
  struct sockaddr_storage ss;
  socklen_t len;
  enum acl_family fam;
  uint8_t a[16];
  assert_true(netaddr_parse("192.0.2.7", 1, &ss, &len));
  assert_true(netaddr_to_acl((struct sockaddr *)&ss, &fam, a));
  assert_int_equal(fam, ACL_INET);
  assert_memory_equal(a, "\xc0\x00\x02\x07", 4);
  /* An IPv4-mapped IPv6 address is matched as IPv4. */
  assert_true(netaddr_parse("::ffff:192.0.2.7", 1, &ss, &len));
  assert_true(netaddr_to_acl((struct sockaddr *)&ss, &fam, a));
  assert_int_equal(fam, ACL_INET);
  assert_memory_equal(a, "\xc0\x00\x02\x07", 4);
  assert_true(netaddr_parse("2001:db8::1", 1, &ss, &len));
  assert_true(netaddr_to_acl((struct sockaddr *)&ss, &fam, a));
  assert_int_equal(fam, ACL_INET6);
  assert_int_equal(a[0], 0x20);
  assert_int_equal(a[15], 1);
  struct sockaddr un = {.sa_family = AF_UNIX};
  assert_false(netaddr_to_acl(&un, &fam, a));
}

static void test_refid(void **state)
{
  (void)state;
  struct sockaddr_storage ss;
  socklen_t len;
  assert_true(netaddr_parse("127.0.0.1", 123, &ss, &len));
  assert_int_equal(netaddr_refid((struct sockaddr *)&ss), 0x7f000001);
  /* IPv6: the first four bytes of the MD5 of the 16 address bytes
   * (RFC 5905); MD5(::1) starts cf 40 4d c8. */
  assert_true(netaddr_parse("::1", 123, &ss, &len));
  uint32_t r = netaddr_refid((struct sockaddr *)&ss);
  assert_int_equal(r, 0xcf404dc8);
  struct sockaddr_storage ss2;
  assert_true(netaddr_parse("::2", 123, &ss2, &len));
  assert_int_not_equal(r, netaddr_refid((struct sockaddr *)&ss2));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_and_format),
      cmocka_unit_test(test_acl_key),
      cmocka_unit_test(test_refid),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
