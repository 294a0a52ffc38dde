/* Unit tests for src/proto/nts_keyderive: cookie keys derived per epoch
 * from a shared secret.  The expected keys and ids were computed with
 * OpenSSL 3's EVP_KDF HKDF, independently of the Nettle code under test:
 *
 *   openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt hexkey:000102..1f \
 *     -kdfopt 'salt:ntsd cookie keys v1' -kdfopt hexinfo:INFO HKDF
 *
 * with INFO = "key" || period (u64 BE) || epoch (u64 BE) for a key and
 * "id" || period (u64 BE) with -keylen 4 for the id base. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/aead.h"
#include "proto/nts_cookie.h"
#include "proto/nts_keyderive.h"

#define DAY 86400u

static uint8_t secret[32]; /* 00 01 .. 1f */

static int setup(void **state)
{
  (void)state;
  for (unsigned i = 0; i < sizeof(secret); i++)
    secret[i] = (uint8_t)i;
  return 0;
}

static void test_vectors(void **state)
{
  (void)state;
  static const uint8_t k_day_20000[32] = {
      0x96, 0x5F, 0x46, 0x32, 0x1F, 0x41, 0xEB, 0x24,
      0x04, 0x2A, 0xED, 0xC0, 0x39, 0x08, 0xFC, 0xE2,
      0x53, 0x0C, 0xCA, 0xBB, 0x76, 0x29, 0x27, 0xE3,
      0x1A, 0x50, 0xF7, 0x8E, 0x7A, 0xB7, 0xCB, 0x92};
  static const uint8_t k_day_20001[32] = {
      0x47, 0x41, 0x4F, 0xC2, 0x29, 0x60, 0x0F, 0x8C,
      0xEA, 0xE4, 0xB7, 0x13, 0x9F, 0xA9, 0xB0, 0xC0,
      0xC2, 0xC9, 0x96, 0x34, 0x61, 0xBA, 0x9C, 0x79,
      0xE5, 0xA5, 0xFA, 0x16, 0xDD, 0x73, 0xFF, 0xF8};
  static const uint8_t k_min_29000000[32] = {
      0xB2, 0x12, 0xB2, 0x20, 0x28, 0x42, 0x3E, 0xBB,
      0xC4, 0x3D, 0x4C, 0x0D, 0x8D, 0xBC, 0x17, 0x16,
      0x1E, 0xF3, 0x8E, 0xF2, 0x56, 0x24, 0xC9, 0xCF,
      0x77, 0x6F, 0x32, 0x57, 0xA3, 0xA1, 0xDD, 0xC1};
  uint8_t k[32];
  assert_true(nts_keyderive_key(secret, sizeof(secret), DAY, 20000, k));
  assert_memory_equal(k, k_day_20000, 32);
  assert_true(nts_keyderive_key(secret, sizeof(secret), DAY, 20001, k));
  assert_memory_equal(k, k_day_20001, 32);
  assert_true(nts_keyderive_key(secret, sizeof(secret), 60, 29000000, k));
  assert_memory_equal(k, k_min_29000000, 32);
  /* id bases 8d301968 (period 86400) and 98eba283 (period 60), plus the epoch */
  assert_int_equal(nts_keyderive_id(secret, sizeof(secret), DAY, 0), 0x8d301968u);
  assert_int_equal(nts_keyderive_id(secret, sizeof(secret), DAY, 20000), 0x8d301968u + 20000u);
  assert_int_equal(nts_keyderive_id(secret, sizeof(secret), 60, 29000000),
                   (uint32_t)(0x98eba283u + 29000000u));
  /* ids wrap at 2^32 and stay consecutive */
  assert_int_equal(nts_keyderive_id(secret, sizeof(secret), DAY, 0x72cfe697u), 0xffffffffu);
  assert_int_equal(nts_keyderive_id(secret, sizeof(secret), DAY, 0x72cfe698u), 0);
}

static void test_epoch(void **state)
{
  (void)state;
  assert_int_equal(nts_keyderive_epoch(0, 60), 0);
  assert_int_equal(nts_keyderive_epoch(59, 60), 0);
  assert_int_equal(nts_keyderive_epoch(60, 60), 1);
  assert_int_equal(nts_keyderive_epoch(1765000000, DAY), 1765000000 / DAY);
  assert_int_equal(nts_keyderive_epoch(123, 0), 0);
}

static void test_bad_arguments(void **state)
{
  (void)state;
  uint8_t k[32];
  memset(k, 0xaa, sizeof(k));
  assert_false(nts_keyderive_key(secret, 31, DAY, 1, k)); /* too short */
  static const uint8_t zero[32];
  assert_memory_equal(k, zero, 32);
  assert_false(nts_keyderive_key(NULL, 32, DAY, 1, k));
  assert_false(nts_keyderive_key(secret, 32, 0, 1, k));
  static uint8_t big[NTS_SECRET_MAX_LEN + 1];
  assert_false(nts_keyderive_key(big, sizeof(big), DAY, 1, k));
  assert_true(nts_keyderive_key(big, NTS_SECRET_MAX_LEN, DAY, 1, k));
  assert_int_equal(nts_keyderive_id(secret, 31, DAY, 5), 0);
  assert_null(nts_keyderive_set(secret, 31, DAY, 5));
  assert_null(nts_keyderive_set(secret, 32, 0, 5));
  assert_null(nts_keyderive_set(secret, 32, 2, UINT64_MAX / 2)); /* end of time overflows */
}

/* A cookie sealed by set ks (its current key), for traffic keys of byte b. */
static size_t seal(const nts_keyset *ks, uint8_t b, uint8_t out[NTS_COOKIE_MAX_LEN])
{
  uint8_t c2s[32], s2c[32], nonce[NTS_COOKIE_NONCE_LEN];
  memset(c2s, b, sizeof(c2s));
  memset(s2c, b ^ 0xff, sizeof(s2c));
  memset(nonce, 7, sizeof(nonce));
  size_t n = nts_cookie_make(ks, NTS_AEAD_AES_SIV_CMAC_256, c2s, s2c, 32, nonce, out,
                             NTS_COOKIE_MAX_LEN);
  assert_int_equal(n, NTS_COOKIE_LEN(32));
  return n;
}

static nts_cookie_result open_with(const nts_keyset *ks, const uint8_t *c, size_t n, uint8_t b)
{
  nts_cookie_keys k;
  nts_cookie_result r = nts_cookie_open(ks, c, n, &k);
  if (nts_cookie_result_ok(r)) {
    assert_int_equal(k.c2s[0], b);
    assert_int_equal(k.s2c[31], b ^ 0xff);
  }
  nts_cookie_keys_wipe(&k);
  return r;
}

/* Two servers with the same secret: one at epoch e opens what the other
 * sealed at e - 6 .. e + 1, and nothing older or newer. */
static void test_window(void **state)
{
  (void)state;
  const uint64_t e = 20000;
  nts_keyset *at_e = nts_keyderive_set(secret, sizeof(secret), DAY, e);
  assert_non_null(at_e);
  assert_int_equal(nts_keyset_current_id(at_e), nts_keyderive_id(secret, 32, DAY, e));
  assert_int_equal(nts_keyset_count(at_e), NTS_KEYDERIVE_PAST + 1);
  assert_int_equal(nts_keyset_current_created(at_e), e * DAY);
  for (uint64_t s = e - 8; s <= e + 2; s++) {
    nts_keyset *other = nts_keyderive_set(secret, sizeof(secret), DAY, s);
    assert_non_null(other);
    uint8_t c[NTS_COOKIE_MAX_LEN];
    size_t n = seal(other, (uint8_t)s, c);
    nts_cookie_result r = open_with(at_e, c, n, (uint8_t)s);
    if (s == e)
      assert_int_equal(r, NTS_COOKIE_OK_CURRENT);
    else if (s + NTS_KEYDERIVE_PAST >= e && s <= e + 1)
      assert_int_equal(r, NTS_COOKIE_OK_OLD);
    else
      assert_int_equal(r, NTS_COOKIE_UNKNOWN_KEY);
    /* the same holds the other way round where the window allows */
    assert_int_equal(open_with(other, c, n, (uint8_t)s), NTS_COOKIE_OK_CURRENT);
    nts_keyset_free(other);
  }
  nts_keyset_free(at_e);
}

/* Another secret, or another period: nothing opens. */
static void test_foreign(void **state)
{
  (void)state;
  uint8_t other_secret[32];
  memcpy(other_secret, secret, 32);
  other_secret[31] ^= 1;
  nts_keyset *a = nts_keyderive_set(secret, 32, DAY, 20000);
  nts_keyset *b = nts_keyderive_set(other_secret, 32, DAY, 20000);
  nts_keyset *p = nts_keyderive_set(secret, 32, 3600, 20000 * 24);
  assert_true(a && b && p);
  uint8_t c[NTS_COOKIE_MAX_LEN];
  size_t n = seal(a, 1, c);
  assert_false(nts_cookie_result_ok(open_with(b, c, n, 1)));
  assert_false(nts_cookie_result_ok(open_with(p, c, n, 1)));
  /* relabelled with a's id: authentication still fails */
  n = seal(b, 2, c);
  uint32_t id = nts_keyset_current_id(a);
  c[0] = (uint8_t)(id >> 24), c[1] = (uint8_t)(id >> 16), c[2] = (uint8_t)(id >> 8);
  c[3] = (uint8_t)id;
  assert_int_equal(open_with(a, c, n, 2), NTS_COOKIE_BAD);
  assert_false(nts_cookie_result_ok(open_with(a, c, n, 2)));
  nts_keyset_free(a);
  nts_keyset_free(b);
  nts_keyset_free(p);
}

/* Epoch 0 holds no past keys; a derived set's file form keeps the sealing
 * key current (the next key is not persisted). */
static void test_edges(void **state)
{
  (void)state;
  nts_keyset *ks = nts_keyderive_set(secret, 32, 60, 0);
  assert_non_null(ks);
  assert_int_equal(nts_keyset_count(ks), 1);
  assert_int_equal(nts_keyset_current_id(ks), nts_keyderive_id(secret, 32, 60, 0));
  nts_keyset *next = nts_keyderive_set(secret, 32, 60, 1);
  uint8_t c[NTS_COOKIE_MAX_LEN];
  size_t n = seal(next, 3, c);
  assert_int_equal(open_with(ks, c, n, 3), NTS_COOKIE_OK_OLD);
  nts_keyset_free(next);
  nts_keyset_free(ks);

  ks = nts_keyderive_set(secret, 32, DAY, 20000);
  uint8_t buf[NTS_KEYFILE_MAX_LEN];
  size_t len = nts_keyset_serialize(ks, buf, sizeof(buf));
  assert_int_equal(len, NTS_KEYFILE_LEN(NTS_KEYDERIVE_PAST + 1));
  nts_keyset *back = NULL;
  assert_int_equal(nts_keyset_deserialize(buf, len, &back), NTS_KEYFILE_OK);
  assert_int_equal(nts_keyset_current_id(back), nts_keyset_current_id(ks));
  nts_keyset_free(back);
  nts_keyset_free(ks);
}

/* nts_keyset_with_next on a full ring drops the oldest key. */
static void test_with_next_full_ring(void **state)
{
  (void)state;
  uint8_t key[32];
  memset(key, 1, sizeof(key));
  nts_keyset *ks = nts_keyset_new(100, key, 0);
  for (int i = 0; i < 7; i++) {
    nts_keyset *r = nts_keyset_rotate(ks, key, 0);
    nts_keyset_free(ks);
    ks = r;
  }
  assert_int_equal(nts_keyset_count(ks), NTS_COOKIE_RING);
  nts_keyset *n = nts_keyset_with_next(ks, key, 0);
  assert_non_null(n);
  assert_int_equal(nts_keyset_count(n), NTS_COOKIE_RING - 1);
  assert_int_equal(nts_keyset_current_id(n), 107);
  uint8_t c[NTS_COOKIE_MAX_LEN];
  size_t len = seal(n, 9, c);
  assert_int_equal(open_with(n, c, len, 9), NTS_COOKIE_OK_CURRENT);
  assert_null(nts_keyset_with_next(NULL, key, 0));
  nts_keyset_free(n);
  nts_keyset_free(ks);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_vectors, setup),
      cmocka_unit_test_setup(test_epoch, setup),
      cmocka_unit_test_setup(test_bad_arguments, setup),
      cmocka_unit_test_setup(test_window, setup),
      cmocka_unit_test_setup(test_foreign, setup),
      cmocka_unit_test_setup(test_edges, setup),
      cmocka_unit_test_setup(test_with_next_full_ring, setup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
