/* Unit tests for src/proto/nts_cookie: cookies, the key ring, the key file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <nettle/sha2.h>

#include "proto/aead.h"
#include "proto/nts_cookie.h"

#define L256 32 /* traffic key length, AEAD 15 */
#define L512 64 /* traffic key length, AEAD 17 */

/* xorshift64*: deterministic test data. */
static uint64_t rnd(uint64_t *s)
{
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 0x2545F4914F6CDD1DULL;
}

static void fill(uint64_t *s, uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(rnd(s) >> 56);
}

/* Master key number n: distinct and recognisable. */
static void master(uint8_t key[NTS_COOKIE_MASTER_KEY_LEN], unsigned n)
{
  for (int i = 0; i < NTS_COOKIE_MASTER_KEY_LEN; i++)
    key[i] = (uint8_t)(n * 31 + (unsigned)i);
}

typedef struct traffic {
  uint8_t c2s[64], s2c[64], nonce[16];
} traffic;

static void traffic_init(traffic *t, uint8_t seed)
{
  for (int i = 0; i < 64; i++) {
    t->c2s[i] = (uint8_t)(seed + i);
    t->s2c[i] = (uint8_t)(seed ^ (0x80 + i));
  }
  for (int i = 0; i < 16; i++)
    t->nonce[i] = (uint8_t)(seed * 3 + i);
}

static size_t make(const nts_keyset *ks, uint16_t aead, const traffic *t, uint8_t *out)
{
  size_t klen = nts_aead_key_len(aead);
  size_t n =
      nts_cookie_make(ks, aead, t->c2s, t->s2c, klen, t->nonce, out, NTS_COOKIE_MAX_LEN);
  assert_int_equal(n, NTS_COOKIE_LEN(klen));
  return n;
}

static void check_keys(const nts_cookie_keys *k, uint16_t aead, const traffic *t)
{
  size_t klen = nts_aead_key_len(aead);
  assert_int_equal(k->aead_id, aead);
  assert_int_equal(k->key_len, klen);
  assert_memory_equal(k->c2s, t->c2s, klen);
  assert_memory_equal(k->s2c, t->s2c, klen);
}

static bool all_zero(const void *p, size_t n)
{
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i])
      return false;
  return true;
}

static nts_keyset *ring(uint32_t first_id, unsigned rotations)
{
  uint8_t key[32];
  master(key, 0);
  nts_keyset *ks = nts_keyset_new(first_id, key, 1000);
  assert_non_null(ks);
  for (unsigned i = 1; i <= rotations; i++) {
    master(key, i);
    nts_keyset *next = nts_keyset_rotate(ks, key, 1000 + i);
    assert_non_null(next);
    nts_keyset_free(ks);
    ks = next;
  }
  return ks;
}

static void test_sizes(void **state)
{
  (void)state;
  assert_int_equal(NTS_COOKIE_LEN(L256), 104);
  assert_int_equal(NTS_COOKIE_LEN(L512), 168);
  assert_int_equal(NTS_COOKIE_MAX_LEN, 168);
  assert_int_equal(NTS_KEYFILE_LEN(1), 72);
  assert_int_equal(NTS_KEYFILE_MAX_LEN, 380);
}

static void test_round_trip(void **state)
{
  (void)state;
  nts_keyset *ks = ring(1000, 0);
  assert_int_equal(nts_keyset_current_id(ks), 1000);
  assert_int_equal(nts_keyset_count(ks), 1);
  const uint16_t aeads[] = {NTS_AEAD_AES_SIV_CMAC_256, NTS_AEAD_AES_SIV_CMAC_512};
  for (size_t j = 0; j < 2; j++) {
    traffic t;
    traffic_init(&t, (uint8_t)(j + 1));
    uint8_t c[NTS_COOKIE_MAX_LEN], c2[NTS_COOKIE_MAX_LEN];
    size_t n = make(ks, aeads[j], &t, c);
    /* Documented layout: key id, then the nonce in the clear. */
    const uint8_t id_be[4] = {0, 0, 0x03, 0xe8};
    assert_memory_equal(c, id_be, 4);
    assert_memory_equal(c + 4, t.nonce, 16);
    nts_cookie_keys k;
    memset(&k, 0xcc, sizeof(k));
    assert_int_equal(nts_cookie_open(ks, c, n, &k), NTS_COOKIE_OK_CURRENT);
    check_keys(&k, aeads[j], &t);
    assert_true(k.current_key);
    assert_int_equal(nts_cookie_open(ks, c, n, NULL), NTS_COOKIE_OK_CURRENT);
    /* The same keys with another nonce give an unrelated cookie. */
    t.nonce[15] ^= 1;
    assert_int_equal(make(ks, aeads[j], &t, c2), n);
    assert_memory_not_equal(c + 20, c2 + 20, 16);
    nts_cookie_keys_wipe(&k);
    assert_true(all_zero(&k, sizeof(k)));
  }
  nts_keyset_free(ks);
}

static void test_make_rejects(void **state)
{
  (void)state;
  nts_keyset *ks = ring(7, 0);
  traffic t;
  traffic_init(&t, 9);
  uint8_t c[NTS_COOKIE_MAX_LEN + 1];
  const uint16_t a = NTS_AEAD_AES_SIV_CMAC_256;
  assert_int_equal(nts_cookie_make(ks, a, t.c2s, t.s2c, L256, t.nonce, c, 101), 0);
  assert_int_equal(nts_cookie_make(ks, a, t.c2s, t.s2c, L256, t.nonce, c, 104), 104);
  assert_int_equal(nts_cookie_make(ks, a, t.c2s, t.s2c, L512, t.nonce, c, sizeof(c)), 0);
  assert_int_equal(nts_cookie_make(ks, a, t.c2s, t.s2c, 0, t.nonce, c, sizeof(c)), 0);
  assert_int_equal(nts_cookie_make(ks, 16, t.c2s, t.s2c, L256, t.nonce, c, sizeof(c)), 0);
  assert_int_equal(nts_cookie_make(ks, 0, t.c2s, t.s2c, 0, t.nonce, c, sizeof(c)), 0);
  assert_int_equal(
      nts_cookie_make(ks, NTS_AEAD_AES_SIV_CMAC_512, t.c2s, t.s2c, L512, t.nonce, c, 165), 0);
  assert_int_equal(nts_cookie_make(NULL, a, t.c2s, t.s2c, L256, t.nonce, c, sizeof(c)), 0);
  assert_int_equal(nts_cookie_make(ks, a, NULL, t.s2c, L256, t.nonce, c, sizeof(c)), 0);
  assert_int_equal(nts_cookie_make(ks, a, t.c2s, NULL, L256, t.nonce, c, sizeof(c)), 0);
  assert_int_equal(nts_cookie_make(ks, a, t.c2s, t.s2c, L256, NULL, c, sizeof(c)), 0);
  assert_int_equal(nts_cookie_make(ks, a, t.c2s, t.s2c, L256, t.nonce, NULL, sizeof(c)), 0);
  nts_keyset_free(ks);
}

/* Old keys open for 7 rotations; the 8th pushes the oldest out.  Old sets
 * are untouched by rotation. */
static void test_rotation_window(void **state)
{
  (void)state;
  uint8_t key[32];
  master(key, 0);
  nts_keyset *sets[10];
  uint8_t cookies[10][NTS_COOKIE_MAX_LEN];
  size_t lens[10];
  traffic t[10];
  sets[0] = nts_keyset_new(500, key, 1);
  for (unsigned i = 0; i < 10; i++) {
    if (i > 0) {
      master(key, i);
      sets[i] = nts_keyset_rotate(sets[i - 1], key, 1 + i);
      assert_non_null(sets[i]);
    }
    assert_int_equal(nts_keyset_current_id(sets[i]), 500 + i);
    assert_int_equal(nts_keyset_count(sets[i]), i < 8 ? i + 1 : 8);
    assert_int_equal(nts_keyset_current_created(sets[i]), 1 + i);
    traffic_init(&t[i], (uint8_t)(40 + i));
    lens[i] = make(sets[i], (i & 1) ? NTS_AEAD_AES_SIV_CMAC_512 : NTS_AEAD_AES_SIV_CMAC_256,
                   &t[i], cookies[i]);
  }
  for (unsigned s = 0; s < 10; s++) {
    for (unsigned c = 0; c < 10; c++) {
      nts_cookie_keys k;
      nts_cookie_result r = nts_cookie_open(sets[s], cookies[c], lens[c], &k);
      if (c == s) {
        assert_int_equal(r, NTS_COOKIE_OK_CURRENT);
        assert_true(k.current_key);
      } else if (c < s && s - c <= 7) {
        assert_int_equal(r, NTS_COOKIE_OK_OLD);
        assert_false(k.current_key);
      } else {
        /* newer than the set (never issued by it) or more than 7 back */
        assert_int_equal(r, NTS_COOKIE_UNKNOWN_KEY);
        assert_true(all_zero(&k, sizeof(k)));
        continue;
      }
      check_keys(&k, (c & 1) ? NTS_AEAD_AES_SIV_CMAC_512 : NTS_AEAD_AES_SIV_CMAC_256, &t[c]);
    }
  }
  for (unsigned i = 0; i < 10; i++)
    nts_keyset_free(sets[i]);
}

static void test_ids_wrap(void **state)
{
  (void)state;
  nts_keyset *ks = ring(0xfffffffdu, 0);
  traffic t;
  traffic_init(&t, 3);
  uint8_t first[NTS_COOKIE_MAX_LEN];
  size_t flen = make(ks, NTS_AEAD_AES_SIV_CMAC_256, &t, first);
  const uint32_t want[] = {0xfffffffeu, 0xffffffffu, 0, 1, 2, 3, 4, 5};
  for (unsigned i = 0; i < 8; i++) {
    uint8_t key[32], c[NTS_COOKIE_MAX_LEN];
    master(key, 100 + i);
    nts_keyset *next = nts_keyset_rotate(ks, key, 50);
    nts_keyset_free(ks);
    ks = next;
    assert_int_equal(nts_keyset_current_id(ks), want[i]);
    size_t n = make(ks, NTS_AEAD_AES_SIV_CMAC_256, &t, c);
    assert_int_equal(c[0], (uint8_t)(want[i] >> 24));
    assert_int_equal(c[3], (uint8_t)want[i]);
    assert_int_equal(nts_cookie_open(ks, c, n, NULL), NTS_COOKIE_OK_CURRENT);
    /* 0xfffffffd stays for 7 rotations across the wrap */
    assert_int_equal(nts_cookie_open(ks, first, flen, NULL),
                     i < 7 ? NTS_COOKIE_OK_OLD : NTS_COOKIE_UNKNOWN_KEY);
    /* and survives the key file */
    uint8_t file[NTS_KEYFILE_MAX_LEN];
    size_t fl = nts_keyset_serialize(ks, file, sizeof(file));
    assert_int_equal(fl, NTS_KEYFILE_LEN(nts_keyset_count(ks)));
    nts_keyset *loaded = NULL;
    assert_int_equal(nts_keyset_deserialize(file, fl, &loaded), NTS_KEYFILE_OK);
    assert_int_equal(nts_keyset_current_id(loaded), want[i]);
    assert_int_equal(nts_cookie_open(loaded, c, n, NULL), NTS_COOKIE_OK_CURRENT);
    nts_keyset_free(loaded);
  }
  nts_keyset_free(ks);
}

/* Every single-bit flip and every truncation of a valid cookie fails. */
static void test_flips_and_truncations(void **state)
{
  (void)state;
  nts_keyset *ks = ring(1000, 7); /* ids 1000..1007: id flips may hit a real key */
  const uint16_t aeads[] = {NTS_AEAD_AES_SIV_CMAC_256, NTS_AEAD_AES_SIV_CMAC_512};
  for (size_t j = 0; j < 2; j++) {
    traffic t;
    traffic_init(&t, 77);
    uint8_t c[NTS_COOKIE_MAX_LEN + 8];
    memset(c, 0, sizeof(c));
    size_t n = make(ks, aeads[j], &t, c);
    nts_cookie_keys k;
    for (size_t bit = 0; bit < n * 8; bit++) {
      c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
      nts_cookie_result r = nts_cookie_open(ks, c, n, &k);
      assert_false(nts_cookie_result_ok(r));
      if (bit >= 32)
        assert_int_equal(r, NTS_COOKIE_BAD);
      else
        assert_true(r == NTS_COOKIE_UNKNOWN_KEY || r == NTS_COOKIE_BAD);
      assert_true(all_zero(&k, sizeof(k)));
      c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    /* A 168-byte cookie cut to 104 bytes has a valid length but fails
     * authentication. */
    for (size_t len = 0; len < n; len++)
      assert_int_equal(nts_cookie_open(ks, c, len, &k),
                       len == NTS_COOKIE_LEN(L256) ? NTS_COOKIE_BAD : NTS_COOKIE_MALFORMED);
    for (size_t extra = 1; extra <= 8; extra++)
      assert_int_equal(nts_cookie_open(ks, c, n + extra, &k), NTS_COOKIE_MALFORMED);
    assert_int_equal(nts_cookie_open(ks, NULL, n, &k), NTS_COOKIE_MALFORMED);
    assert_int_equal(nts_cookie_open(ks, c, n, &k), NTS_COOKIE_OK_CURRENT);
    assert_int_equal(nts_cookie_open(NULL, c, n, &k), NTS_COOKIE_UNKNOWN_KEY);
  }
  nts_keyset_free(ks);
}

/* Seals a cookie by hand from the documented layout, with every field
 * chosen by the test: id in the header, id used as AD, AEAD id and key
 * length in the plaintext. */
static size_t hand_cookie_r(unsigned master_n, uint32_t hdr_id, uint32_t ad_id,
                            uint16_t pt_aead, uint16_t reserved, size_t pt_klen, uint8_t *out)
{
  uint8_t key[32], nonce[16], pt[4 + 128], ad[4];
  master(key, master_n);
  memset(nonce, 0x5a, sizeof(nonce));
  pt[0] = (uint8_t)(pt_aead >> 8);
  pt[1] = (uint8_t)pt_aead;
  pt[2] = (uint8_t)(reserved >> 8);
  pt[3] = (uint8_t)reserved;
  for (size_t i = 0; i < 2 * pt_klen; i++)
    pt[4 + i] = (uint8_t)i;
  ad[0] = (uint8_t)(ad_id >> 24);
  ad[1] = (uint8_t)(ad_id >> 16);
  ad[2] = (uint8_t)(ad_id >> 8);
  ad[3] = (uint8_t)ad_id;
  out[0] = (uint8_t)(hdr_id >> 24);
  out[1] = (uint8_t)(hdr_id >> 16);
  out[2] = (uint8_t)(hdr_id >> 8);
  out[3] = (uint8_t)hdr_id;
  memcpy(out + 4, nonce, 16);
  nts_aead_key k;
  size_t n = 0;
  assert_true(nts_aead_key_set(&k, NTS_AEAD_AES_SIV_CMAC_256, key, 32));
  assert_true(nts_aead_seal(&k, nonce, 16, ad, 4, pt, 4 + 2 * pt_klen, out + 20,
                            NTS_COOKIE_MAX_LEN + 64 - 20, &n));
  nts_aead_key_wipe(&k);
  return 20 + n;
}

static size_t hand_cookie(unsigned master_n, uint32_t hdr_id, uint32_t ad_id, uint16_t pt_aead,
                          size_t pt_klen, uint8_t *out)
{
  return hand_cookie_r(master_n, hdr_id, ad_id, pt_aead, 0, pt_klen, out);
}

static void test_layout_and_plaintext_checks(void **state)
{
  (void)state;
  nts_keyset *ks = ring(200, 2); /* ids 200 (master 0), 201 (1), 202 (2) */
  uint8_t c[NTS_COOKIE_MAX_LEN + 64];
  nts_cookie_keys k;
  /* The layout in the header, built independently, opens. */
  size_t n = hand_cookie(2, 202, 202, NTS_AEAD_AES_SIV_CMAC_256, L256, c);
  assert_int_equal(n, 104);
  assert_int_equal(nts_cookie_open(ks, c, n, &k), NTS_COOKIE_OK_CURRENT);
  assert_int_equal(k.aead_id, NTS_AEAD_AES_SIV_CMAC_256);
  assert_int_equal(k.c2s[1], 1);
  assert_int_equal(k.s2c[0], 32);
  n = hand_cookie(1, 201, 201, NTS_AEAD_AES_SIV_CMAC_512, L512, c);
  assert_int_equal(n, 168);
  assert_int_equal(nts_cookie_open(ks, c, n, &k), NTS_COOKIE_OK_OLD);
  assert_int_equal(k.key_len, 64);
  assert_int_equal(k.s2c[63], 127);
  /* AD is the key id: a cookie sealed with AD 201 but labelled 202 (and
   * sealed with 202's key) fails; so does one sealed with another key. */
  n = hand_cookie(2, 202, 201, NTS_AEAD_AES_SIV_CMAC_256, L256, c);
  assert_int_equal(nts_cookie_open(ks, c, n, &k), NTS_COOKIE_BAD);
  n = hand_cookie(1, 202, 202, NTS_AEAD_AES_SIV_CMAC_256, L256, c);
  assert_int_equal(nts_cookie_open(ks, c, n, &k), NTS_COOKIE_BAD);
  /* relabelling a valid cookie with another id in the ring */
  n = hand_cookie(2, 202, 202, NTS_AEAD_AES_SIV_CMAC_256, L256, c);
  c[3] = 201 & 0xff;
  assert_int_equal(nts_cookie_open(ks, c, n, &k), NTS_COOKIE_BAD);
  /* authentic but invalid plaintexts */
  n = hand_cookie(2, 202, 202, 16, L256, c); /* unsupported AEAD id */
  assert_int_equal(nts_cookie_open(ks, c, n, &k), NTS_COOKIE_BAD);
  n = hand_cookie(2, 202, 202, 0, L256, c);
  assert_int_equal(nts_cookie_open(ks, c, n, &k), NTS_COOKIE_BAD);
  n = hand_cookie_r(2, 202, 202, NTS_AEAD_AES_SIV_CMAC_256, 1, L256, c); /* reserved != 0 */
  assert_int_equal(n, 104);
  assert_int_equal(nts_cookie_open(ks, c, n, &k), NTS_COOKIE_BAD);
  n = hand_cookie(2, 202, 202, NTS_AEAD_AES_SIV_CMAC_512, L256, c); /* id/length mismatch */
  assert_int_equal(n, 104);
  assert_int_equal(nts_cookie_open(ks, c, n, &k), NTS_COOKIE_BAD);
  n = hand_cookie(2, 202, 202, NTS_AEAD_AES_SIV_CMAC_256, L512, c);
  assert_int_equal(n, 168);
  assert_int_equal(nts_cookie_open(ks, c, n, &k), NTS_COOKIE_BAD);
  assert_true(all_zero(&k, sizeof(k)));
  /* unknown ids: never issued, and a "future" one */
  n = hand_cookie(2, 199, 199, NTS_AEAD_AES_SIV_CMAC_256, L256, c);
  assert_int_equal(nts_cookie_open(ks, c, n, &k), NTS_COOKIE_UNKNOWN_KEY);
  n = hand_cookie(2, 203, 203, NTS_AEAD_AES_SIV_CMAC_256, L256, c);
  assert_int_equal(nts_cookie_open(ks, c, n, &k), NTS_COOKIE_UNKNOWN_KEY);
  nts_keyset_free(ks);
}

/* 10,000 random cookies never open.  Half carry a key id that is in the
 * ring, so they reach the AEAD check. */
static void test_random_cookies(void **state)
{
  (void)state;
  nts_keyset *ks = ring(300, 7);
  uint64_t seed = 0xc00c1e5eedULL;
  unsigned counts[NTS_COOKIE_RESULT_COUNT] = {0};
  for (int i = 0; i < 10000; i++) {
    uint8_t c[NTS_COOKIE_MAX_LEN];
    size_t n = (rnd(&seed) & 1) ? 168 : 104;
    if (rnd(&seed) % 16 == 0)
      n = rnd(&seed) % sizeof(c);
    fill(&seed, c, n);
    if (n >= 4 && (rnd(&seed) & 1)) {
      uint32_t id = 300 + (uint32_t)(rnd(&seed) % 8);
      c[0] = 0;
      c[1] = 0;
      c[2] = (uint8_t)(id >> 8);
      c[3] = (uint8_t)id;
    }
    nts_cookie_keys k;
    nts_cookie_result r = nts_cookie_open(ks, c, n, &k);
    assert_false(nts_cookie_result_ok(r));
    assert_true(all_zero(&k, sizeof(k)));
    counts[r]++;
  }
  assert_true(counts[NTS_COOKIE_BAD] > 4000);
  assert_true(counts[NTS_COOKIE_UNKNOWN_KEY] > 4000);
  assert_true(counts[NTS_COOKIE_MALFORMED] > 100);
  nts_keyset_free(ks);
}

static void test_keyfile_round_trip(void **state)
{
  (void)state;
  const unsigned rotations[] = {0, 2, 7, 12};
  for (size_t j = 0; j < 4; j++) {
    nts_keyset *ks = ring(0x12345678, rotations[j]);
    uint8_t file[NTS_KEYFILE_MAX_LEN + 1], again[NTS_KEYFILE_MAX_LEN];
    unsigned count = nts_keyset_count(ks);
    size_t n = nts_keyset_serialize(ks, file, sizeof(file));
    assert_int_equal(n, NTS_KEYFILE_LEN(count));
    assert_memory_equal(file, "NTSDKEY1", 8);
    assert_int_equal(nts_keyset_serialize(ks, again, n - 1), 0);
    nts_keyset *loaded = (nts_keyset *)&count; /* must be overwritten */
    assert_int_equal(nts_keyset_deserialize(file, n, &loaded), NTS_KEYFILE_OK);
    assert_non_null(loaded);
    assert_int_equal(nts_keyset_current_id(loaded), nts_keyset_current_id(ks));
    assert_int_equal(nts_keyset_count(loaded), count);
    assert_int_equal(nts_keyset_current_created(loaded), nts_keyset_current_created(ks));
    /* byte-identical when written again */
    assert_int_equal(nts_keyset_serialize(loaded, again, sizeof(again)), n);
    assert_memory_equal(again, file, n);
    /* SIV is deterministic: both sets make the same cookie, and each opens
     * the other's, including from the oldest key. */
    traffic t;
    traffic_init(&t, 5);
    uint8_t a[NTS_COOKIE_MAX_LEN], b[NTS_COOKIE_MAX_LEN];
    size_t la = make(ks, NTS_AEAD_AES_SIV_CMAC_512, &t, a);
    size_t lb = make(loaded, NTS_AEAD_AES_SIV_CMAC_512, &t, b);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    assert_int_equal(nts_cookie_open(loaded, a, la, NULL), NTS_COOKIE_OK_CURRENT);
    nts_keyset *rotated = nts_keyset_rotate(loaded, a, 9);
    assert_int_equal(nts_cookie_open(rotated, a, la, NULL), NTS_COOKIE_OK_OLD);
    nts_keyset_free(rotated);
    nts_keyset_free(loaded);
    nts_keyset_free(ks);
  }
}

/* Rewrites the checksum after a deliberate edit. */
static void reseal(uint8_t *file, size_t len)
{
  struct sha256_ctx h;
  uint8_t d[SHA256_DIGEST_SIZE];
  sha256_init(&h);
  sha256_update(&h, len - 16, file);
  sha256_digest(&h, sizeof(d), d);
  memcpy(file + len - 16, d, 16);
}

static nts_keyfile_result load(const uint8_t *file, size_t len)
{
  nts_keyset *ks = (nts_keyset *)file; /* must be overwritten */
  nts_keyfile_result r = nts_keyset_deserialize(file, len, &ks);
  if (r == NTS_KEYFILE_OK) {
    assert_non_null(ks);
    nts_keyset_free(ks);
  } else {
    assert_null(ks);
  }
  return r;
}

/* Each bit of a file flipped: the field it lands in decides the error. */
static void check_flips(uint8_t *file, size_t n, unsigned count)
{
  for (size_t bit = 0; bit < n * 8; bit++) {
    size_t at = bit / 8;
    file[at] ^= (uint8_t)(1u << (bit % 8));
    nts_keyfile_result r = load(file, n);
    if (at < 8) {
      assert_int_equal(r, NTS_KEYFILE_BAD_MAGIC);
    } else if (at < 10) {
      assert_int_equal(r, NTS_KEYFILE_BAD_VERSION);
    } else if (at < 12) {
      /* A count still in 1..8 disagrees with the length instead. */
      unsigned c = (unsigned)(file[10] << 8 | file[11]);
      nts_keyfile_result want = (c == 0 || c > 8)    ? NTS_KEYFILE_BAD_COUNT
                                : c > count           ? NTS_KEYFILE_TRUNCATED
                                                      : NTS_KEYFILE_TRAILING;
      assert_int_equal(r, want);
    } else {
      assert_int_equal(r, NTS_KEYFILE_BAD_CHECKSUM);
    }
    file[at] ^= (uint8_t)(1u << (bit % 8));
  }
  assert_int_equal(load(file, n), NTS_KEYFILE_OK);
}

static void test_keyfile_corruption(void **state)
{
  (void)state;
  const unsigned rotations[] = {0, 2, 9};
  for (size_t j = 0; j < 3; j++) {
    nts_keyset *ks = ring(40, rotations[j]);
    unsigned count = nts_keyset_count(ks);
    uint8_t file[NTS_KEYFILE_MAX_LEN + 200];
    memset(file, 0, sizeof(file));
    size_t n = nts_keyset_serialize(ks, file, sizeof(file));
    assert_true(n > 0);
    check_flips(file, n, count);
    /* truncations: every prefix, the empty file and NULL */
    for (size_t len = 0; len < n; len++)
      assert_int_equal(load(file, len), NTS_KEYFILE_TRUNCATED);
    assert_int_equal(load(NULL, 0), NTS_KEYFILE_TRUNCATED);
    assert_int_equal(load(NULL, 10), NTS_KEYFILE_TRUNCATED);
    /* extra bytes */
    assert_int_equal(load(file, n + 1), NTS_KEYFILE_TRAILING);
    assert_int_equal(load(file, n + 200), NTS_KEYFILE_TRAILING);
    nts_keyset_free(ks);
  }
}

static void test_keyfile_structure_errors(void **state)
{
  (void)state;
  nts_keyset *ks = ring(0xfffffffeu, 3); /* ids fffffffe, ffffffff, 0, 1 */
  uint8_t file[NTS_KEYFILE_MAX_LEN], f[NTS_KEYFILE_MAX_LEN];
  size_t n = nts_keyset_serialize(ks, file, sizeof(file));
  assert_int_equal(n, NTS_KEYFILE_LEN(4));
  /* other magics, including a short non-matching prefix */
  memcpy(f, file, n);
  f[7] = '2';
  assert_int_equal(load(f, n), NTS_KEYFILE_BAD_MAGIC);
  assert_int_equal(load((const uint8_t *)"X", 1), NTS_KEYFILE_BAD_MAGIC);
  assert_int_equal(load((const uint8_t *)"NTSDKEY", 7), NTS_KEYFILE_TRUNCATED);
  /* version 2, even with a valid checksum */
  memcpy(f, file, n);
  f[9] = 2;
  reseal(f, n);
  assert_int_equal(load(f, n), NTS_KEYFILE_BAD_VERSION);
  /* counts 0 and 9 */
  memcpy(f, file, n);
  f[11] = 0;
  assert_int_equal(load(f, n), NTS_KEYFILE_BAD_COUNT);
  f[11] = 9;
  assert_int_equal(load(f, n), NTS_KEYFILE_BAD_COUNT);
  /* ids with a valid checksum: a gap, a duplicate, reversed order */
  const size_t id_at[4] = {12, 12 + 44, 12 + 88, 12 + 132};
  memcpy(f, file, n);
  f[id_at[2] + 3] = 2; /* fffffffe ffffffff 2 1 */
  reseal(f, n);
  assert_int_equal(load(f, n), NTS_KEYFILE_BAD_IDS);
  memcpy(f, file, n);
  memcpy(f + id_at[3], f + id_at[2], 4); /* ... 0 0 */
  reseal(f, n);
  assert_int_equal(load(f, n), NTS_KEYFILE_BAD_IDS);
  memcpy(f, file, n);
  for (int i = 0; i < 4; i++)
    memcpy(f + id_at[i], file + id_at[3 - i], 4);
  reseal(f, n);
  assert_int_equal(load(f, n), NTS_KEYFILE_BAD_IDS);
  /* the untouched file, resealed, still loads; out may be NULL */
  memcpy(f, file, n);
  reseal(f, n);
  assert_int_equal(load(f, n), NTS_KEYFILE_OK);
  assert_int_equal(nts_keyset_deserialize(f, n, NULL), NTS_KEYFILE_OK);
  assert_int_equal(nts_keyset_serialize(NULL, f, sizeof(f)), 0);
  nts_keyset_free(ks);
}

static void test_due(void **state)
{
  (void)state;
  uint8_t key[32];
  master(key, 1);
  nts_keyset *ks = nts_keyset_new(1, key, 100000);
  const uint64_t day = 86400;
  assert_false(nts_keyset_due(ks, 100000, day));
  assert_false(nts_keyset_due(ks, 100000 + day - 1, day));
  assert_true(nts_keyset_due(ks, 100000 + day, day));
  assert_true(nts_keyset_due(ks, UINT64_MAX, day));
  /* clock stepped back: tolerated up to one period */
  assert_false(nts_keyset_due(ks, 100000 - day, day));
  assert_true(nts_keyset_due(ks, 100000 - day - 1, day));
  assert_true(nts_keyset_due(ks, 0, day));
  /* period 0: never */
  assert_false(nts_keyset_due(ks, 100000 + 10 * day, 0));
  assert_false(nts_keyset_due(NULL, 100000 + 10 * day, day));
  /* rotation resets the age */
  nts_keyset *next = nts_keyset_rotate(ks, key, 100000 + day);
  assert_false(nts_keyset_due(next, 100000 + day, day));
  assert_true(nts_keyset_due(ks, 100000 + day, day));
  nts_keyset_free(next);
  nts_keyset_free(ks);
}

static void test_names_and_nulls(void **state)
{
  (void)state;
  const char *want[] = {"decoded", "decoded-old", "too-old", "malformed", "decode-error"};
  for (int r = 0; r < NTS_COOKIE_RESULT_COUNT; r++)
    assert_string_equal(nts_cookie_result_name((nts_cookie_result)r), want[r]);
  assert_string_equal(nts_cookie_result_name(NTS_COOKIE_RESULT_COUNT), "?");
  for (int r = 0; r < NTS_KEYFILE_RESULT_COUNT; r++) {
    const char *s = nts_keyfile_result_name((nts_keyfile_result)r);
    assert_string_not_equal(s, "?");
    for (int q = 0; q < r; q++)
      assert_string_not_equal(s, nts_keyfile_result_name((nts_keyfile_result)q));
  }
  assert_string_equal(nts_keyfile_result_name(NTS_KEYFILE_RESULT_COUNT), "?");
  uint8_t key[32] = {0};
  assert_null(nts_keyset_new(1, NULL, 0));
  assert_null(nts_keyset_rotate(NULL, key, 0));
  nts_keyset *ks = nts_keyset_new(1, key, 0);
  assert_null(nts_keyset_rotate(ks, NULL, 0));
  nts_keyset_free(ks);
  nts_keyset_free(NULL);
  assert_int_equal(nts_keyset_current_id(NULL), 0);
  assert_int_equal(nts_keyset_count(NULL), 0);
  assert_int_equal(nts_keyset_current_created(NULL), 0);
  nts_cookie_keys_wipe(NULL);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sizes),
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_make_rejects),
      cmocka_unit_test(test_rotation_window),
      cmocka_unit_test(test_ids_wrap),
      cmocka_unit_test(test_flips_and_truncations),
      cmocka_unit_test(test_layout_and_plaintext_checks),
      cmocka_unit_test(test_random_cookies),
      cmocka_unit_test(test_keyfile_round_trip),
      cmocka_unit_test(test_keyfile_corruption),
      cmocka_unit_test(test_keyfile_structure_errors),
      cmocka_unit_test(test_due),
      cmocka_unit_test(test_names_and_nulls),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
