/* Unit tests for src/proto/ntp_ef: RFC 7822 extension fields and MACs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/ntp_ef.h"
#include "proto/ntp_pkt.h"

#define PKT_CAP 1024

typedef struct pkt {
  uint8_t b[PKT_CAP];
  size_t len;
} pkt;

static void pkt_init(pkt *p)
{
  memset(p->b, 0, sizeof(p->b));
  p->b[0] = 0x23; /* v4 client */
  p->len = NTP_HDR_LEN;
}

/* Raw field: type, declared length, `fill` body bytes of `fill_byte`.
 * The declared length may disagree with what is actually appended. */
static void pkt_raw_ef(pkt *p, uint16_t type, uint16_t decl_len, size_t actual_len,
                       uint8_t fill_byte)
{
  assert_true(p->len + actual_len <= PKT_CAP);
  assert_true(actual_len >= 4);
  uint8_t *q = p->b + p->len;
  q[0] = (uint8_t)(type >> 8);
  q[1] = (uint8_t)type;
  q[2] = (uint8_t)(decl_len >> 8);
  q[3] = (uint8_t)decl_len;
  memset(q + 4, fill_byte, actual_len - 4);
  p->len += actual_len;
}

static void pkt_ef(pkt *p, uint16_t type, uint16_t len, uint8_t fill_byte)
{
  pkt_raw_ef(p, type, len, len, fill_byte);
}

static void pkt_bytes(pkt *p, size_t n, uint8_t v)
{
  assert_true(p->len + n <= PKT_CAP);
  memset(p->b + p->len, v, n);
  p->len += n;
}

static ntp_ef_status validate(const pkt *p, size_t *n, size_t *mac)
{
  *n = 12345;
  *mac = 12345;
  return ntp_ef_validate(p->b, p->len, n, mac);
}

static void test_header_only(void **state)
{
  (void)state;
  pkt p;
  pkt_init(&p);
  ntp_ef_iter it;
  ntp_ef ef;
  ntp_ef_iter_init(&it, p.b, p.len);
  assert_int_equal(ntp_ef_next(&it, &ef), NTP_EF_END);
  assert_int_equal(ntp_ef_next(&it, &ef), NTP_EF_END);
  assert_int_equal(it.mac_len, 0);
  size_t n, mac;
  assert_int_equal(validate(&p, &n, &mac), NTP_EF_END);
  assert_int_equal(n, 0);
  assert_int_equal(mac, 0);
  /* NULL out-parameters are allowed. */
  assert_int_equal(ntp_ef_validate(p.b, p.len, NULL, NULL), NTP_EF_END);
}

static void test_shorter_than_header(void **state)
{
  (void)state;
  pkt p;
  pkt_init(&p);
  ntp_ef_iter it;
  ntp_ef ef;
  for (size_t len = 0; len < NTP_HDR_LEN; len++) {
    ntp_ef_iter_init(&it, p.b, len);
    assert_int_equal(ntp_ef_next(&it, &ef), NTP_EF_MALFORMED);
    assert_int_equal(ntp_ef_next(&it, &ef), NTP_EF_MALFORMED);
    assert_int_equal(ntp_ef_validate(p.b, len, NULL, NULL), NTP_EF_MALFORMED);
  }
}

static void test_single_field(void **state)
{
  (void)state;
  pkt p;
  pkt_init(&p);
  pkt_ef(&p, NTP_EF_UNIQUE_ID, 36, 0xab);
  ntp_ef_iter it;
  ntp_ef ef;
  ntp_ef_iter_init(&it, p.b, p.len);
  assert_int_equal(ntp_ef_next(&it, &ef), NTP_EF_FIELD);
  assert_int_equal(ef.type, NTP_EF_UNIQUE_ID);
  assert_int_equal(ef.len, 36);
  assert_int_equal(ef.offset, NTP_HDR_LEN);
  assert_ptr_equal(ef.body, p.b + NTP_HDR_LEN + 4);
  assert_int_equal(ef.body_len, 32);
  for (size_t i = 0; i < ef.body_len; i++)
    assert_int_equal(ef.body[i], 0xab);
  assert_int_equal(ntp_ef_next(&it, &ef), NTP_EF_END);
  assert_int_equal(it.mac_len, 0);
}

static void test_two_fields_16_and_28(void **state)
{
  (void)state;
  pkt p;
  pkt_init(&p);
  pkt_ef(&p, NTP_EF_NTS_COOKIE, 16, 0x11);
  pkt_ef(&p, NTP_EF_NTS_AUTH, 28, 0x22);
  ntp_ef_iter it;
  ntp_ef ef;
  ntp_ef_iter_init(&it, p.b, p.len);
  assert_int_equal(ntp_ef_next(&it, &ef), NTP_EF_FIELD);
  assert_int_equal(ef.type, NTP_EF_NTS_COOKIE);
  assert_int_equal(ef.len, 16);
  assert_int_equal(ef.offset, 48);
  assert_int_equal(ef.body_len, 12);
  assert_int_equal(ef.body[0], 0x11);
  assert_int_equal(ntp_ef_next(&it, &ef), NTP_EF_FIELD);
  assert_int_equal(ef.type, NTP_EF_NTS_AUTH);
  assert_int_equal(ef.len, 28);
  assert_int_equal(ef.offset, 64);
  assert_int_equal(ef.body_len, 24);
  assert_int_equal(ef.body[23], 0x22);
  assert_int_equal(ntp_ef_next(&it, &ef), NTP_EF_END);
  size_t n, mac;
  assert_int_equal(validate(&p, &n, &mac), NTP_EF_END);
  assert_int_equal(n, 2);
  assert_int_equal(mac, 0);
}

static void test_many_fields(void **state)
{
  (void)state;
  pkt p;
  pkt_init(&p);
  for (int i = 0; i < 20; i++)
    pkt_ef(&p, (uint16_t)(0x1000 + i), 16, (uint8_t)i);
  pkt_ef(&p, 0x2000, 64, 0xff);
  size_t n, mac;
  assert_int_equal(validate(&p, &n, &mac), NTP_EF_END);
  assert_int_equal(n, 21);
  ntp_ef_iter it;
  ntp_ef ef;
  ntp_ef_iter_init(&it, p.b, p.len);
  for (int i = 0; i < 20; i++) {
    assert_int_equal(ntp_ef_next(&it, &ef), NTP_EF_FIELD);
    assert_int_equal(ef.type, 0x1000 + i);
    assert_int_equal(ef.offset, NTP_HDR_LEN + 16 * (size_t)i);
  }
  assert_int_equal(ntp_ef_next(&it, &ef), NTP_EF_FIELD);
  assert_int_equal(ef.len, 64);
  assert_int_equal(ntp_ef_next(&it, &ef), NTP_EF_END);
}

static void test_mac_only(void **state)
{
  (void)state;
  static const size_t sizes[] = {4, 20, 24};
  for (size_t i = 0; i < 3; i++) {
    pkt p;
    pkt_init(&p);
    /* Key id 1 + digest; contents never matter, only the size. */
    pkt_bytes(&p, sizes[i], 0x01);
    ntp_ef_iter it;
    ntp_ef ef;
    ntp_ef_iter_init(&it, p.b, p.len);
    assert_int_equal(ntp_ef_next(&it, &ef), NTP_EF_MAC);
    assert_int_equal(it.mac_len, sizes[i]);
    size_t n, mac;
    assert_int_equal(validate(&p, &n, &mac), NTP_EF_MAC);
    assert_int_equal(n, 0);
    assert_int_equal(mac, sizes[i]);
  }
}

static void test_mac_looks_like_field(void **state)
{
  (void)state;
  /* A 24-byte remainder is a MAC even when its first bytes read like a
   * field header declaring 24 bytes (RFC 7822 7.5). */
  pkt p;
  pkt_init(&p);
  pkt_ef(&p, NTP_EF_UNIQUE_ID, 24, 0);
  size_t n, mac;
  assert_int_equal(validate(&p, &n, &mac), NTP_EF_MAC);
  assert_int_equal(mac, 24);
  assert_int_equal(n, 0);
}

static void test_field_then_mac(void **state)
{
  (void)state;
  static const size_t macs[] = {4, 20, 24};
  static const uint16_t flens[] = {16, 28, 32, 100};
  for (size_t f = 0; f < 4; f++) {
    for (size_t m = 0; m < 3; m++) {
      pkt p;
      pkt_init(&p);
      pkt_ef(&p, NTP_EF_UNIQUE_ID, flens[f], 0x5a);
      pkt_bytes(&p, macs[m], 0xa5);
      ntp_ef_iter it;
      ntp_ef ef;
      ntp_ef_iter_init(&it, p.b, p.len);
      if (flens[f] + macs[m] == 20) {
        /* 16-byte field + 4-byte crypto-NAK is indistinguishable from an
         * MD5 MAC; by size it is a 20-byte MAC. */
        assert_int_equal(ntp_ef_next(&it, &ef), NTP_EF_MAC);
        assert_int_equal(it.mac_len, 20);
        continue;
      }
      assert_int_equal(ntp_ef_next(&it, &ef), NTP_EF_FIELD);
      assert_int_equal(ef.len, flens[f]);
      assert_int_equal(ntp_ef_next(&it, &ef), NTP_EF_MAC);
      assert_int_equal(it.mac_len, macs[m]);
      size_t n, mac;
      assert_int_equal(validate(&p, &n, &mac), NTP_EF_MAC);
      assert_int_equal(n, 1);
      assert_int_equal(mac, macs[m]);
    }
  }
  /* Two fields and a MAC. */
  pkt p;
  pkt_init(&p);
  pkt_ef(&p, 1, 16, 0);
  pkt_ef(&p, 2, 16, 0);
  pkt_bytes(&p, 20, 0);
  size_t n, mac;
  assert_int_equal(validate(&p, &n, &mac), NTP_EF_MAC);
  assert_int_equal(n, 2);
  assert_int_equal(mac, 20);
}

static void assert_malformed(const pkt *p, size_t want_fields)
{
  size_t n, mac;
  assert_int_equal(ntp_ef_validate(p->b, p->len, &n, &mac), NTP_EF_MALFORMED);
  assert_int_equal(n, want_fields);
  assert_int_equal(mac, 0);
  /* The iterator stops for good: no field after a malformed one. */
  ntp_ef_iter it;
  ntp_ef ef;
  ntp_ef_iter_init(&it, p->b, p->len);
  for (size_t i = 0; i < want_fields; i++)
    assert_int_equal(ntp_ef_next(&it, &ef), NTP_EF_FIELD);
  assert_int_equal(ntp_ef_next(&it, &ef), NTP_EF_MALFORMED);
  assert_int_equal(ntp_ef_next(&it, &ef), NTP_EF_MALFORMED);
  assert_int_equal(ntp_ef_next(&it, &ef), NTP_EF_MALFORMED);
}

static void test_len_not_multiple_of_4(void **state)
{
  (void)state;
  static const uint16_t bad[] = {29, 30, 31, 33, 17, 18, 19};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    pkt p;
    pkt_init(&p);
    pkt_raw_ef(&p, NTP_EF_UNIQUE_ID, bad[i], 36, 0);
    assert_malformed(&p, 0);
  }
  /* Also after a good field. */
  pkt p;
  pkt_init(&p);
  pkt_ef(&p, 1, 16, 0);
  pkt_raw_ef(&p, 2, 30, 32, 0);
  assert_malformed(&p, 1);
}

static void test_len_below_16(void **state)
{
  (void)state;
  /* Includes 0 and 4, which would never advance a naive walker. */
  static const uint16_t bad[] = {0, 4, 8, 12};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    pkt p;
    pkt_init(&p);
    pkt_raw_ef(&p, NTP_EF_UNIQUE_ID, bad[i], 32, 0);
    assert_malformed(&p, 0);
  }
}

static void test_len_beyond_remaining(void **state)
{
  (void)state;
  pkt p;
  pkt_init(&p);
  pkt_raw_ef(&p, NTP_EF_UNIQUE_ID, 36, 32, 0);
  assert_malformed(&p, 0);

  pkt_init(&p);
  pkt_raw_ef(&p, NTP_EF_UNIQUE_ID, 0xfffc, 32, 0);
  assert_malformed(&p, 0);

  pkt_init(&p);
  pkt_raw_ef(&p, NTP_EF_UNIQUE_ID, 0xffff, 32, 0);
  assert_malformed(&p, 0);

  /* Second field overruns. */
  pkt_init(&p);
  pkt_ef(&p, 1, 28, 0);
  pkt_raw_ef(&p, 2, 64, 32, 0);
  assert_malformed(&p, 1);
}

static void test_last_field_too_short(void **state)
{
  (void)state;
  /* A last field of 16 bytes without a MAC is not allowed (20 and 24 are
   * taken as MACs by size). */
  pkt p;
  pkt_init(&p);
  pkt_ef(&p, NTP_EF_UNIQUE_ID, 16, 0);
  assert_malformed(&p, 0);

  pkt_init(&p);
  pkt_ef(&p, 1, 28, 0);
  pkt_ef(&p, 2, 16, 0);
  assert_malformed(&p, 1);

  pkt_init(&p);
  pkt_ef(&p, 1, 16, 0);
  pkt_ef(&p, 2, 16, 0);
  assert_malformed(&p, 1);

  /* 28 is the minimum: accepted. */
  pkt_init(&p);
  pkt_ef(&p, 1, 16, 0);
  pkt_ef(&p, 2, 28, 0);
  size_t n, mac;
  assert_int_equal(validate(&p, &n, &mac), NTP_EF_END);
  assert_int_equal(n, 2);
}

static void test_trailing_garbage(void **state)
{
  (void)state;
  /* Remainders that are neither a field nor a MAC size. */
  static const size_t rems[] = {1, 2, 3, 5, 8, 12, 16, 21, 23, 25};
  for (size_t i = 0; i < sizeof(rems) / sizeof(rems[0]); i++) {
    pkt p;
    pkt_init(&p);
    pkt_bytes(&p, rems[i], 0);
    assert_malformed(&p, 0);

    pkt_init(&p);
    pkt_ef(&p, 1, 28, 0);
    pkt_bytes(&p, rems[i], 0);
    assert_malformed(&p, 1);
  }
}

static void test_ef_iter_terminal(void **state)
{
  (void)state;
  /* After MAC or END the iterator never yields another field. */
  pkt p;
  pkt_init(&p);
  pkt_ef(&p, 1, 16, 0);
  pkt_bytes(&p, 20, 0);
  ntp_ef_iter it;
  ntp_ef ef;
  ntp_ef_iter_init(&it, p.b, p.len);
  assert_int_equal(ntp_ef_next(&it, &ef), NTP_EF_FIELD);
  assert_int_equal(ntp_ef_next(&it, &ef), NTP_EF_MAC);
  assert_int_not_equal(ntp_ef_next(&it, &ef), NTP_EF_FIELD);
  assert_int_equal(it.mac_len, 20);
}

static void test_append_padding(void **state)
{
  (void)state;
  uint8_t buf[128];
  static const uint8_t body[40] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14,
                                   15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28,
                                   29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40};
  static const struct {
    size_t body_len, min_len, want;
  } cases[] = {
      {0, NTP_EF_MIN_LEN, 16},       {5, NTP_EF_MIN_LEN, 16},
      {12, NTP_EF_MIN_LEN, 16},      {13, NTP_EF_MIN_LEN, 20},
      {16, NTP_EF_MIN_LEN, 20},      {0, NTP_EF_MIN_LAST_LEN, 28},
      {24, NTP_EF_MIN_LAST_LEN, 28}, {25, NTP_EF_MIN_LAST_LEN, 32},
      {40, NTP_EF_MIN_LAST_LEN, 44}, {1, 17, 20},
      {1, 0, 8},                     {0, 0, 4},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    memset(buf, 0xee, sizeof(buf));
    wire_wr w;
    wire_wr_init(&w, buf, sizeof(buf));
    assert_true(ntp_ef_append(&w, 0x0104, body, cases[i].body_len, cases[i].min_len));
    assert_true(wire_wr_ok(&w));
    size_t want = cases[i].want;
    assert_int_equal(wire_wr_len(&w), want);
    assert_int_equal(buf[0], 0x01);
    assert_int_equal(buf[1], 0x04);
    assert_int_equal(((size_t)buf[2] << 8) | buf[3], want);
    assert_memory_equal(buf + 4, body, cases[i].body_len);
    for (size_t j = 4 + cases[i].body_len; j < want; j++)
      assert_int_equal(buf[j], 0); /* zero padding */
    assert_int_equal(buf[want], 0xee);
  }
}

static void test_append_null_body(void **state)
{
  (void)state;
  uint8_t buf[32];
  wire_wr w;
  wire_wr_init(&w, buf, sizeof(buf));
  assert_true(ntp_ef_append(&w, NTP_EF_NTS_COOKIE_PLACEHOLDER, NULL, 0, NTP_EF_MIN_LEN));
  assert_int_equal(wire_wr_len(&w), 16);
  static const uint8_t want[16] = {0x03, 0x04, 0x00, 0x10};
  assert_memory_equal(buf, want, 16);
}

static void test_append_then_walk(void **state)
{
  (void)state;
  uint8_t buf[256] = {0x23};
  static const uint8_t uid[32] = {0xaa, 0xbb};
  static const uint8_t cookie[7] = {1, 2, 3, 4, 5, 6, 7};
  wire_wr w;
  wire_wr_init(&w, buf, sizeof(buf));
  wire_put_zeros(&w, NTP_HDR_LEN);
  assert_true(ntp_ef_append(&w, NTP_EF_UNIQUE_ID, uid, sizeof(uid), NTP_EF_MIN_LEN));
  assert_true(ntp_ef_append(&w, NTP_EF_NTS_COOKIE, cookie, sizeof(cookie), NTP_EF_MIN_LEN));
  assert_true(ntp_ef_append(&w, NTP_EF_NTS_AUTH, cookie, 3, NTP_EF_MIN_LAST_LEN));
  size_t len = wire_wr_len(&w);
  assert_int_equal(len, NTP_HDR_LEN + 36 + 16 + 28);

  ntp_ef_iter it;
  ntp_ef ef;
  ntp_ef_iter_init(&it, buf, len);
  assert_int_equal(ntp_ef_next(&it, &ef), NTP_EF_FIELD);
  assert_int_equal(ef.type, NTP_EF_UNIQUE_ID);
  assert_int_equal(ef.body_len, 32);
  assert_memory_equal(ef.body, uid, 32);
  assert_int_equal(ntp_ef_next(&it, &ef), NTP_EF_FIELD);
  assert_int_equal(ef.type, NTP_EF_NTS_COOKIE);
  assert_int_equal(ef.body_len, 12);
  assert_memory_equal(ef.body, cookie, 7);
  assert_int_equal(ntp_ef_next(&it, &ef), NTP_EF_FIELD);
  assert_int_equal(ef.type, NTP_EF_NTS_AUTH);
  assert_int_equal(ef.len, 28);
  assert_int_equal(ntp_ef_next(&it, &ef), NTP_EF_END);
}

static void test_append_overflow(void **state)
{
  (void)state;
  uint8_t buf[40];
  static const uint8_t body[32] = {0};
  wire_wr w;

  /* Does not fit: false, writer in error, nothing past the cap. */
  memset(buf, 0xee, sizeof(buf));
  wire_wr_init(&w, buf, 27);
  assert_false(ntp_ef_append(&w, 1, body, 0, NTP_EF_MIN_LAST_LEN));
  assert_false(wire_wr_ok(&w));
  assert_int_equal(buf[27], 0xee);

  /* Body fits but its padding does not. */
  wire_wr_init(&w, buf, 18);
  assert_false(ntp_ef_append(&w, 1, body, 13, NTP_EF_MIN_LEN));
  assert_false(wire_wr_ok(&w));
}

static void test_append_overflow_exact(void **state)
{
  (void)state;
  uint8_t buf[40];
  static const uint8_t body[32] = {0};
  wire_wr w;
  wire_wr_init(&w, buf, sizeof(buf));
  assert_true(ntp_ef_append(&w, 1, body, 20, NTP_EF_MIN_LEN)); /* 24 */
  assert_true(ntp_ef_append(&w, 2, body, 0, NTP_EF_MIN_LEN));  /* 40: exactly full */
  assert_int_equal(wire_wr_len(&w), 40);
  assert_false(ntp_ef_append(&w, 3, body, 0, 0)); /* even 4 bytes do not fit */
  assert_false(wire_wr_ok(&w));

  /* A writer already in error stays in error. */
  wire_wr_init(&w, buf, sizeof(buf));
  wire_put_zeros(&w, 41);
  assert_false(ntp_ef_append(&w, 1, body, 0, NTP_EF_MIN_LEN));
}

static void test_append_too_long_for_length_field(void **state)
{
  (void)state;
  static uint8_t big[0x10000 + 16];
  static const uint8_t src[0x10000];
  wire_wr w;
  /* 0xfff8 body bytes -> 0xfffc total: the largest aligned length. */
  wire_wr_init(&w, big, sizeof(big));
  assert_true(ntp_ef_append(&w, 1, src, 0xfff8, 0));
  assert_int_equal(wire_wr_len(&w), 0xfffc);
  assert_int_equal(big[2], 0xff);
  assert_int_equal(big[3], 0xfc);
  /* One more byte would need 0x10000, which the 16-bit length cannot say. */
  wire_wr_init(&w, big, sizeof(big));
  assert_false(ntp_ef_append(&w, 1, src, 0xfff9, 0));
  assert_false(wire_wr_ok(&w));
  assert_int_equal(wire_wr_len(&w), 0);
  wire_wr_init(&w, big, sizeof(big));
  assert_false(ntp_ef_append(&w, 1, NULL, 0, 0x10000));
  assert_false(wire_wr_ok(&w));
  /* A body length near SIZE_MAX must not wrap into a small field. */
  wire_wr_init(&w, big, sizeof(big));
  assert_false(ntp_ef_append(&w, 1, src, SIZE_MAX - 1, NTP_EF_MIN_LEN));
  assert_false(wire_wr_ok(&w));
  wire_wr_init(&w, big, sizeof(big));
  assert_false(ntp_ef_append(&w, 1, src, SIZE_MAX - 13, NTP_EF_MIN_LEN));
  assert_false(wire_wr_ok(&w));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_header_only),
      cmocka_unit_test(test_shorter_than_header),
      cmocka_unit_test(test_single_field),
      cmocka_unit_test(test_two_fields_16_and_28),
      cmocka_unit_test(test_many_fields),
      cmocka_unit_test(test_mac_only),
      cmocka_unit_test(test_mac_looks_like_field),
      cmocka_unit_test(test_field_then_mac),
      cmocka_unit_test(test_len_not_multiple_of_4),
      cmocka_unit_test(test_len_below_16),
      cmocka_unit_test(test_len_beyond_remaining),
      cmocka_unit_test(test_last_field_too_short),
      cmocka_unit_test(test_trailing_garbage),
      cmocka_unit_test(test_ef_iter_terminal),
      cmocka_unit_test(test_append_padding),
      cmocka_unit_test(test_append_null_body),
      cmocka_unit_test(test_append_then_walk),
      cmocka_unit_test(test_append_overflow),
      cmocka_unit_test(test_append_overflow_exact),
      cmocka_unit_test(test_append_too_long_for_length_field),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
