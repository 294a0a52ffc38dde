/* Unit tests for src/proto/socks5: RFC 1928 / RFC 1929 client messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/socks5.h"

static const uint8_t ip4[4] = {192, 0, 2, 7};
static const uint8_t ip6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                0, 0, 0, 0, 0, 0, 0, 0x42};

static void assert_bytes(const uint8_t *got, size_t got_len, const uint8_t *want,
                         size_t want_len)
{
  assert_int_equal(got_len, want_len);
  assert_memory_equal(got, want, want_len);
}

/* ---- builders against hand-written bytes -------------------------------- */

static void test_greeting(void **state)
{
  (void)state;
  uint8_t out[8];
  size_t n;
  assert_int_equal(socks5_build_greeting(out, sizeof(out), SOCKS5_OFFER_NONE, &n), SOCKS5_OK);
  assert_bytes(out, n, (const uint8_t[]){0x05, 0x01, 0x00}, 3);
  assert_int_equal(socks5_build_greeting(out, sizeof(out), SOCKS5_OFFER_USERPASS, &n), SOCKS5_OK);
  assert_bytes(out, n, (const uint8_t[]){0x05, 0x01, 0x02}, 3);
  assert_int_equal(socks5_build_greeting(out, sizeof(out),
                                         SOCKS5_OFFER_NONE | SOCKS5_OFFER_USERPASS, &n),
                   SOCKS5_OK);
  assert_bytes(out, n, (const uint8_t[]){0x05, 0x02, 0x00, 0x02}, 4);
  assert_true(n <= SOCKS5_GREETING_MAX);
  assert_int_equal(socks5_build_greeting(out, sizeof(out), 0, &n), SOCKS5_ERR_ARG);
  assert_int_equal(n, 0);
  assert_int_equal(socks5_build_greeting(out, sizeof(out), 0x4, &n), SOCKS5_ERR_ARG);
  assert_int_equal(socks5_build_greeting(out, 3, SOCKS5_OFFER_NONE | SOCKS5_OFFER_USERPASS, &n),
                   SOCKS5_ERR_SPACE);
  assert_int_equal(n, 0);
}

static void test_auth(void **state)
{
  (void)state;
  uint8_t out[SOCKS5_AUTH_MAX];
  size_t n;
  assert_int_equal(socks5_build_auth(out, sizeof(out), (const uint8_t *)"ab", 2,
                                     (const uint8_t *)"xyz", 3, &n),
                   SOCKS5_OK);
  assert_bytes(out, n, (const uint8_t[]){0x01, 0x02, 'a', 'b', 0x03, 'x', 'y', 'z'}, 8);

  uint8_t big[256];
  memset(big, 'u', sizeof(big));
  assert_int_equal(socks5_build_auth(out, sizeof(out), big, 255, big, 255, &n), SOCKS5_OK);
  assert_int_equal(n, SOCKS5_AUTH_MAX);
  assert_int_equal(out[1], 255);
  assert_int_equal(out[2 + 255], 255);
  /* lengths 1..255 only */
  assert_int_equal(socks5_build_auth(out, sizeof(out), big, 256, big, 1, &n), SOCKS5_ERR_ARG);
  assert_int_equal(socks5_build_auth(out, sizeof(out), big, 1, big, 256, &n), SOCKS5_ERR_ARG);
  assert_int_equal(socks5_build_auth(out, sizeof(out), big, 0, big, 1, &n), SOCKS5_ERR_ARG);
  assert_int_equal(socks5_build_auth(out, sizeof(out), big, 1, NULL, 1, &n), SOCKS5_ERR_ARG);
  /* an empty password is PLEN 0 (curl's `user@`), with or without a pointer */
  assert_int_equal(socks5_build_auth(out, sizeof(out), (const uint8_t *)"u", 1, big, 0, &n),
                   SOCKS5_OK);
  assert_bytes(out, n, (const uint8_t[]){0x01, 0x01, 'u', 0x00}, 4);
  assert_int_equal(socks5_build_auth(out, sizeof(out), (const uint8_t *)"u", 1, NULL, 0, &n),
                   SOCKS5_OK);
  assert_bytes(out, n, (const uint8_t[]){0x01, 0x01, 'u', 0x00}, 4);
  assert_int_equal(socks5_build_auth(out, 3, (const uint8_t *)"u", 1, NULL, 0, &n),
                   SOCKS5_ERR_SPACE);
  assert_int_equal(socks5_build_auth(out, sizeof(out), NULL, 1, big, 1, &n), SOCKS5_ERR_ARG);
  assert_int_equal(socks5_build_auth(out, 4, big, 1, big, 1, &n), SOCKS5_ERR_SPACE);
  assert_int_equal(n, 0);
}

static void test_request(void **state)
{
  (void)state;
  uint8_t out[SOCKS5_REQUEST_MAX];
  size_t n;
  socks5_addr a;

  socks5_addr_ipv4(&a, ip4, 4460);
  assert_int_equal(socks5_build_request(out, sizeof(out), SOCKS5_CMD_CONNECT, &a, &n), SOCKS5_OK);
  assert_bytes(out, n, (const uint8_t[]){0x05, 0x01, 0x00, 0x01, 192, 0, 2, 7, 0x11, 0x6c}, 10);

  socks5_addr_ipv6(&a, ip6, 123);
  assert_int_equal(socks5_build_request(out, sizeof(out), SOCKS5_CMD_UDP_ASSOCIATE, &a, &n),
                   SOCKS5_OK);
  assert_bytes(out, n,
               (const uint8_t[]){0x05, 0x03, 0x00, 0x04, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                 0, 0, 0, 0, 0, 0, 0, 0x42, 0x00, 0x7b},
               22);

  assert_int_equal(socks5_addr_name(&a, "time.example", 12, 4460), SOCKS5_OK);
  assert_int_equal(socks5_build_request(out, sizeof(out), SOCKS5_CMD_CONNECT, &a, &n), SOCKS5_OK);
  assert_bytes(out, n,
               (const uint8_t[]){0x05, 0x01, 0x00, 0x03, 12, 't', 'i', 'm', 'e', '.', 'e', 'x',
                                 'a', 'm', 'p', 'l', 'e', 0x11, 0x6c},
               19);

  /* a 255-byte name fills the bound exactly; 0 and 256 are refused */
  char name[256];
  memset(name, 'n', sizeof(name));
  assert_int_equal(socks5_addr_name(&a, name, 255, 1), SOCKS5_OK);
  assert_int_equal(socks5_build_request(out, sizeof(out), SOCKS5_CMD_CONNECT, &a, &n), SOCKS5_OK);
  assert_int_equal(n, SOCKS5_REQUEST_MAX);
  assert_int_equal(socks5_build_request(out, SOCKS5_REQUEST_MAX - 1, SOCKS5_CMD_CONNECT, &a, &n),
                   SOCKS5_ERR_SPACE);
  assert_int_equal(socks5_addr_name(&a, name, 256, 1), SOCKS5_ERR_ARG);
  assert_int_equal(socks5_addr_name(&a, name, 0, 1), SOCKS5_ERR_ARG);
  assert_int_equal(socks5_addr_name(&a, NULL, 3, 1), SOCKS5_ERR_ARG);

  /* BIND and unknown commands, unknown ATYP, a name of length 0 */
  socks5_addr_ipv4(&a, ip4, 1);
  assert_int_equal(socks5_build_request(out, sizeof(out), 0x02, &a, &n), SOCKS5_ERR_ARG);
  assert_int_equal(socks5_build_request(out, sizeof(out), 0x00, &a, &n), SOCKS5_ERR_ARG);
  a.atyp = 2;
  assert_int_equal(socks5_build_request(out, sizeof(out), SOCKS5_CMD_CONNECT, &a, &n),
                   SOCKS5_ERR_ARG);
  a.atyp = SOCKS5_ATYP_NAME;
  a.name_len = 0;
  assert_int_equal(socks5_build_request(out, sizeof(out), SOCKS5_CMD_CONNECT, &a, &n),
                   SOCKS5_ERR_ARG);
  assert_int_equal(n, 0);
  assert_int_equal(socks5_build_request(out, sizeof(out), SOCKS5_CMD_CONNECT, NULL, &n),
                   SOCKS5_ERR_ARG);
}

static void test_udp_build(void **state)
{
  (void)state;
  uint8_t out[64];
  size_t n;
  socks5_addr a;
  socks5_addr_ipv4(&a, ip4, 123);
  const uint8_t pl[3] = {0xaa, 0xbb, 0xcc};
  assert_int_equal(socks5_build_udp(out, sizeof(out), &a, pl, 3, &n), SOCKS5_OK);
  assert_bytes(out, n,
               (const uint8_t[]){0x00, 0x00, 0x00, 0x01, 192, 0, 2, 7, 0x00, 0x7b, 0xaa, 0xbb,
                                 0xcc},
               13);
  assert_int_equal(socks5_addr_name(&a, "a.b", 3, 123), SOCKS5_OK);
  assert_int_equal(socks5_build_udp(out, sizeof(out), &a, NULL, 0, &n), SOCKS5_OK);
  assert_bytes(out, n, (const uint8_t[]){0, 0, 0, 0x03, 3, 'a', '.', 'b', 0x00, 0x7b}, 10);
  assert_int_equal(socks5_build_udp(out, 12, &a, pl, 3, &n), SOCKS5_ERR_SPACE);
  assert_int_equal(n, 0);
  assert_int_equal(socks5_build_udp(out, sizeof(out), &a, NULL, 3, &n), SOCKS5_ERR_ARG);
}

/* ---- parsers ------------------------------------------------------------ */

static void test_method_reply(void **state)
{
  (void)state;
  const unsigned both = SOCKS5_OFFER_NONE | SOCKS5_OFFER_USERPASS;
  uint8_t m = 0xee;
  size_t c = 9;
  const uint8_t ok[] = {0x05, 0x02, 0x16, 0x03}; /* trailing bytes: TLS */
  assert_int_equal(socks5_parse_method(ok, 0, both, &m, &c), SOCKS5_NEED_MORE);
  assert_int_equal(c, 0);
  assert_int_equal(socks5_parse_method(ok, 1, both, &m, &c), SOCKS5_NEED_MORE);
  for (size_t len = 2; len <= sizeof(ok); len++) {
    assert_int_equal(socks5_parse_method(ok, len, both, &m, &c), SOCKS5_OK);
    assert_int_equal(m, SOCKS5_METHOD_USERPASS);
    assert_int_equal(c, 2);
  }
  assert_int_equal(socks5_parse_method((const uint8_t[]){5, 0}, 2, SOCKS5_OFFER_NONE, &m, &c),
                   SOCKS5_OK);
  assert_int_equal(m, SOCKS5_METHOD_NONE);
  assert_int_equal(socks5_parse_method((const uint8_t[]){5, 0xff}, 2, both, &m, &c),
                   SOCKS5_ERR_NO_METHOD);
  assert_int_equal(socks5_parse_method((const uint8_t[]){5, 2}, 2, SOCKS5_OFFER_NONE, &m, &c),
                   SOCKS5_ERR_METHOD);
  assert_int_equal(socks5_parse_method((const uint8_t[]){5, 0}, 2, SOCKS5_OFFER_USERPASS, &m, &c),
                   SOCKS5_ERR_METHOD);
  assert_int_equal(socks5_parse_method((const uint8_t[]){5, 1}, 2, both, &m, &c),
                   SOCKS5_ERR_METHOD); /* GSSAPI: never offered */
  /* the version byte alone is enough to fail */
  assert_int_equal(socks5_parse_method((const uint8_t[]){4}, 1, both, &m, &c), SOCKS5_ERR_VERSION);
  assert_int_equal(socks5_parse_method((const uint8_t[]){'H', 'T'}, 2, both, &m, &c),
                   SOCKS5_ERR_VERSION);
  assert_int_equal(c, 0);
}

static void test_auth_reply(void **state)
{
  (void)state;
  size_t c = 9;
  const uint8_t ok[] = {0x01, 0x00, 0x05};
  assert_int_equal(socks5_parse_auth(ok, 0, &c), SOCKS5_NEED_MORE);
  assert_int_equal(socks5_parse_auth(ok, 1, &c), SOCKS5_NEED_MORE);
  assert_int_equal(socks5_parse_auth(ok, 2, &c), SOCKS5_OK);
  assert_int_equal(c, 2);
  assert_int_equal(socks5_parse_auth(ok, 3, &c), SOCKS5_OK);
  assert_int_equal(c, 2);
  for (unsigned s = 1; s < 256; s++) {
    uint8_t bad[2] = {1, (uint8_t)s};
    assert_int_equal(socks5_parse_auth(bad, 2, &c), SOCKS5_ERR_AUTH);
    assert_int_equal(c, 0);
  }
  /* a reply with the SOCKS version instead of the sub-negotiation's */
  assert_int_equal(socks5_parse_auth((const uint8_t[]){5, 0}, 2, &c), SOCKS5_ERR_VERSION);
  assert_int_equal(socks5_parse_auth((const uint8_t[]){0}, 1, &c), SOCKS5_ERR_VERSION);
}

/* Parse a good reply at every prefix length: NEED_MORE below its length,
 * then OK with the same result whatever follows it. */
static void check_reply_prefixes(const uint8_t *msg, size_t msg_len, socks5_addr *out)
{
  uint8_t buf[SOCKS5_REPLY_MAX + 8];
  memcpy(buf, msg, msg_len);
  memset(buf + msg_len, 0x16, sizeof(buf) - msg_len);
  size_t c = 99;
  for (size_t len = 0; len < msg_len; len++) {
    assert_int_equal(socks5_parse_reply(buf, len, out, &c), SOCKS5_NEED_MORE);
    assert_int_equal(c, 0);
  }
  socks5_addr first;
  assert_int_equal(socks5_parse_reply(buf, msg_len, &first, &c), SOCKS5_OK);
  assert_int_equal(c, msg_len);
  for (size_t len = msg_len; len <= sizeof(buf); len++) {
    assert_int_equal(socks5_parse_reply(buf, len, out, &c), SOCKS5_OK);
    assert_int_equal(c, msg_len);
    assert_memory_equal(out, &first, sizeof(first));
  }
}

static void test_reply_good(void **state)
{
  (void)state;
  socks5_addr a;
  const uint8_t r4[] = {5, 0, 0, 1, 10, 1, 2, 3, 0x04, 0x38};
  check_reply_prefixes(r4, sizeof(r4), &a);
  assert_int_equal(a.atyp, SOCKS5_ATYP_IPV4);
  assert_memory_equal(a.bytes, ((const uint8_t[]){10, 1, 2, 3}), 4);
  assert_int_equal(a.port, 1080);

  uint8_t r6[22] = {5, 0, 0, 4};
  memcpy(r6 + 4, ip6, 16);
  r6[20] = 0xff;
  r6[21] = 0xfe;
  check_reply_prefixes(r6, sizeof(r6), &a);
  assert_int_equal(a.atyp, SOCKS5_ATYP_IPV6);
  assert_memory_equal(a.bytes, ip6, 16);
  assert_int_equal(a.port, 0xfffe);

  const uint8_t rn[] = {5, 0, 0, 3, 4, 'p', 'r', 'x', 'y', 0, 0};
  check_reply_prefixes(rn, sizeof(rn), &a);
  assert_int_equal(a.atyp, SOCKS5_ATYP_NAME);
  assert_int_equal(a.name_len, 4);
  assert_memory_equal(a.bytes, "prxy", 4);
  assert_int_equal(a.port, 0);

  /* the longest reply: a 255-byte name */
  uint8_t rmax[SOCKS5_REPLY_MAX] = {5, 0, 0, 3, 255};
  memset(rmax + 5, 'x', 255);
  rmax[260] = 0x12;
  rmax[261] = 0x34;
  check_reply_prefixes(rmax, sizeof(rmax), &a);
  assert_int_equal(a.name_len, 255);
  assert_int_equal(a.port, 0x1234);
}

static void test_reply_rep_codes(void **state)
{
  (void)state;
  static const socks5_status want[9] = {
      SOCKS5_OK,
      SOCKS5_ERR_GENERAL_FAILURE,
      SOCKS5_ERR_NOT_ALLOWED,
      SOCKS5_ERR_NETWORK_UNREACHABLE,
      SOCKS5_ERR_HOST_UNREACHABLE,
      SOCKS5_ERR_REFUSED,
      SOCKS5_ERR_TTL_EXPIRED,
      SOCKS5_ERR_COMMAND_NOT_SUPPORTED,
      SOCKS5_ERR_ATYP_NOT_SUPPORTED,
  };
  socks5_addr a;
  size_t c;
  for (unsigned rep = 0; rep < 256; rep++) {
    socks5_status w = rep < 9 ? want[rep] : SOCKS5_ERR_REP_UNKNOWN;
    assert_int_equal(socks5_rep_status((uint8_t)rep), w);
    uint8_t msg[10] = {5, (uint8_t)rep, 0, 1, 0, 0, 0, 0, 0, 0};
    if (rep == 0)
      continue;
    /* a failure shows once REP has arrived, with or without the rest */
    assert_int_equal(socks5_parse_reply(msg, 1, &a, &c), SOCKS5_NEED_MORE);
    for (size_t len = 2; len <= sizeof(msg); len++) {
      assert_int_equal(socks5_parse_reply(msg, len, &a, &c), w);
      assert_int_equal(c, 0);
    }
  }
  /* Tor refuses UDP ASSOCIATE with 7 */
  assert_string_equal(socks5_status_name(socks5_rep_status(7)), "command-not-supported");
  assert_string_equal(socks5_status_name(socks5_rep_status(1)), "general-failure");
  assert_string_equal(socks5_status_name(socks5_rep_status(200)), "unknown-reply");
}

static void test_reply_errors(void **state)
{
  (void)state;
  socks5_addr a;
  size_t c = 9;
  /* bad version: a SOCKS4 reply, an HTTP proxy, zero */
  assert_int_equal(socks5_parse_reply((const uint8_t[]){0x00, 0x5a}, 2, &a, &c),
                   SOCKS5_ERR_VERSION);
  assert_int_equal(socks5_parse_reply((const uint8_t[]){'H'}, 1, &a, &c), SOCKS5_ERR_VERSION);
  assert_int_equal(socks5_parse_reply((const uint8_t[]){4, 0, 0, 1}, 4, &a, &c),
                   SOCKS5_ERR_VERSION);
  /* reserved byte */
  assert_int_equal(socks5_parse_reply((const uint8_t[]){5, 0, 1}, 3, &a, &c),
                   SOCKS5_ERR_RESERVED);
  assert_int_equal(socks5_parse_reply((const uint8_t[]){5, 0, 0xff, 1, 0, 0, 0, 0, 0, 0}, 10,
                                      &a, &c),
                   SOCKS5_ERR_RESERVED);
  /* unknown ATYPs */
  const uint8_t atyps[] = {0, 2, 5, 0xff};
  for (size_t i = 0; i < sizeof(atyps); i++) {
    uint8_t m[4] = {5, 0, 0, atyps[i]};
    assert_int_equal(socks5_parse_reply(m, 4, &a, &c), SOCKS5_ERR_ATYP);
  }
  /* a name of length 0 */
  assert_int_equal(socks5_parse_reply((const uint8_t[]){5, 0, 0, 3, 0, 0, 0}, 7, &a, &c),
                   SOCKS5_ERR_NAME_LEN);
  assert_int_equal(c, 0);
  /* the REP byte comes before RSV: a failure with a bad RSV is the failure */
  assert_int_equal(socks5_parse_reply((const uint8_t[]){5, 5, 7}, 3, &a, &c), SOCKS5_ERR_REFUSED);
  /* truncated: a long name announced, few bytes sent */
  assert_int_equal(socks5_parse_reply((const uint8_t[]){5, 0, 0, 3, 255, 'a', 'b'}, 7, &a, &c),
                   SOCKS5_NEED_MORE);
}

static void test_udp_parse(void **state)
{
  (void)state;
  socks5_addr a;
  size_t off = 9;
  const uint8_t d4[] = {0, 0, 0, 1, 192, 0, 2, 7, 0, 123, 0x24, 0x01};
  assert_int_equal(socks5_parse_udp(d4, sizeof(d4), &a, &off), SOCKS5_OK);
  assert_int_equal(off, 10);
  assert_int_equal(a.atyp, SOCKS5_ATYP_IPV4);
  assert_memory_equal(a.bytes, ip4, 4);
  assert_int_equal(a.port, 123);
  /* an empty payload */
  assert_int_equal(socks5_parse_udp(d4, 10, &a, &off), SOCKS5_OK);
  assert_int_equal(off, 10);
  /* every shorter datagram is truncated */
  for (size_t len = 0; len < 10; len++) {
    assert_int_equal(socks5_parse_udp(d4, len, &a, &off), SOCKS5_ERR_TRUNCATED);
    assert_int_equal(off, 0);
  }
  uint8_t d6[24] = {0, 0, 0, 4};
  memcpy(d6 + 4, ip6, 16);
  d6[21] = 123;
  assert_int_equal(socks5_parse_udp(d6, sizeof(d6), &a, &off), SOCKS5_OK);
  assert_int_equal(off, 22);
  assert_memory_equal(a.bytes, ip6, 16);
  const uint8_t dn[] = {0, 0, 0, 3, 1, 'h', 0, 1, 'p'};
  assert_int_equal(socks5_parse_udp(dn, sizeof(dn), &a, &off), SOCKS5_OK);
  assert_int_equal(off, 8);
  assert_int_equal(a.name_len, 1);

  /* fragments are refused, every FRAG value */
  for (unsigned f = 1; f < 256; f++) {
    uint8_t d[sizeof(d4)];
    memcpy(d, d4, sizeof(d));
    d[2] = (uint8_t)f;
    assert_int_equal(socks5_parse_udp(d, sizeof(d), &a, &off), SOCKS5_ERR_FRAG);
    assert_int_equal(off, 0);
  }
  assert_int_equal(socks5_parse_udp((const uint8_t[]){0, 1, 0, 1}, 4, &a, &off),
                   SOCKS5_ERR_RESERVED);
  assert_int_equal(socks5_parse_udp((const uint8_t[]){1}, 1, &a, &off), SOCKS5_ERR_RESERVED);
  assert_int_equal(socks5_parse_udp((const uint8_t[]){0, 0, 0, 9, 0, 0}, 6, &a, &off),
                   SOCKS5_ERR_ATYP);
  assert_int_equal(socks5_parse_udp((const uint8_t[]){0, 0, 0, 3, 0, 0, 0}, 7, &a, &off),
                   SOCKS5_ERR_NAME_LEN);
}

/* Builder output read back by the parsers: a request's address section is
 * laid out like a reply's and like a datagram's header. */
static void test_round_trip(void **state)
{
  (void)state;
  socks5_addr in, out;
  uint8_t buf[SOCKS5_UDP_HDR_MAX + 4];
  size_t n, off;
  char name[255];
  for (size_t i = 0; i < sizeof(name); i++)
    name[i] = (char)(i * 7 + 1);
  for (int k = 0; k < 3; k++) {
    if (k == 0)
      socks5_addr_ipv4(&in, ip4, 1);
    else if (k == 1)
      socks5_addr_ipv6(&in, ip6, 65535);
    else
      assert_int_equal(socks5_addr_name(&in, name, sizeof(name), 4460), SOCKS5_OK);
    assert_int_equal(socks5_build_udp(buf, sizeof(buf), &in, (const uint8_t *)"abcd", 4, &n),
                     SOCKS5_OK);
    assert_int_equal(socks5_parse_udp(buf, n, &out, &off), SOCKS5_OK);
    assert_int_equal(off, n - 4);
    assert_memory_equal(&in, &out, sizeof(in));
    assert_int_equal(socks5_build_request(buf, sizeof(buf), SOCKS5_CMD_CONNECT, &in, &n),
                     SOCKS5_OK);
    buf[1] = 0; /* CMD -> REP succeeded */
    size_t c;
    assert_int_equal(socks5_parse_reply(buf, n, &out, &c), SOCKS5_OK);
    assert_int_equal(c, n);
    assert_memory_equal(&in, &out, sizeof(in));
  }
}

static void test_status_names(void **state)
{
  (void)state;
  for (int s = 0; s < SOCKS5_STATUS_COUNT; s++) {
    const char *n = socks5_status_name((socks5_status)s);
    assert_non_null(n);
    assert_string_not_equal(n, "unknown");
    for (int t = 0; t < s; t++)
      assert_string_not_equal(n, socks5_status_name((socks5_status)t));
  }
  assert_string_equal(socks5_status_name(SOCKS5_STATUS_COUNT), "unknown");
  assert_string_equal(socks5_status_name((socks5_status)-1), "unknown");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_greeting),       cmocka_unit_test(test_auth),
      cmocka_unit_test(test_request),        cmocka_unit_test(test_udp_build),
      cmocka_unit_test(test_method_reply),   cmocka_unit_test(test_auth_reply),
      cmocka_unit_test(test_reply_good),     cmocka_unit_test(test_reply_rep_codes),
      cmocka_unit_test(test_reply_errors),   cmocka_unit_test(test_udp_parse),
      cmocka_unit_test(test_round_trip),     cmocka_unit_test(test_status_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
