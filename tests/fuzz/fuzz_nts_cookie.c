/* libFuzzer target: NTS cookies and the cookie key file.
 *
 * A deterministic key set (8 keys, ids 0xfffffffc..3 so the ring wraps)
 * is built once from fixed keys.  Each input is used three ways:
 *   (a) as a cookie for nts_cookie_open.  Only a genuine cookie opens (the
 *       corpus holds some made with these keys); when one does, making a
 *       cookie from the opened keys with the same id and nonce must give
 *       back the input byte for byte (SIV is deterministic).  A failure
 *       leaves the output zeroed; MALFORMED exactly for the wrong lengths;
 *   (b) as a key file for nts_keyset_deserialize.  An accepted file is
 *       written back byte-identical, and the loaded set works (rotate,
 *       make, open);
 *   (c) as a cookie plaintext: first byte = control, the rest = plaintext
 *       (raw, or fitted to a valid length, or given a valid header), sealed
 *       by hand with the master key of a ring slot (or an unknown id) into
 *       the documented layout, so the checks after decryption get fuzzed.
 *       The result must match an independent prediction. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/aead.h"
#include "proto/nts_cookie.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FIRST_ID 0xfffffffcu
#define RING NTS_COOKIE_RING

/* Master key n (0 = oldest): fixed bytes.  tests/fuzz/corpus/fuzz_nts_cookie
 * was generated with the same derivation. */
static void master(uint8_t key[NTS_COOKIE_MASTER_KEY_LEN], unsigned n)
{
  for (unsigned i = 0; i < NTS_COOKIE_MASTER_KEY_LEN; i++)
    key[i] = (uint8_t)(0xf0 ^ (n * 37 + i * 11));
}

static const nts_keyset *fuzz_keyset(void)
{
  static nts_keyset *ks; /* built once; lives for the process */
  if (ks)
    return ks;
  uint8_t key[NTS_COOKIE_MASTER_KEY_LEN];
  master(key, 0);
  ks = nts_keyset_new(FIRST_ID, key, 1000);
  for (unsigned n = 1; ks && n < RING; n++) {
    master(key, n);
    nts_keyset *next = nts_keyset_rotate(ks, key, 1000 + n);
    nts_keyset_free(ks);
    ks = next;
  }
  if (!ks || nts_keyset_current_id(ks) != FIRST_ID + RING - 1)
    abort();
  return ks;
}

static bool zeroed(const nts_cookie_keys *k)
{
  const uint8_t *p = (const uint8_t *)k;
  for (size_t i = 0; i < sizeof(*k); i++)
    if (p[i])
      return false;
  return true;
}

static void check_open(const nts_keyset *ks, const uint8_t *data, size_t size)
{
  nts_cookie_keys k;
  nts_cookie_result r = nts_cookie_open(ks, data, size, &k);
  if (r >= NTS_COOKIE_RESULT_COUNT || nts_cookie_result_name(r)[0] == '?')
    abort();
  bool right_len = size == NTS_COOKIE_LEN(32) || size == NTS_COOKIE_LEN(64);
  if ((r == NTS_COOKIE_MALFORMED) == right_len)
    abort();
  if (!nts_cookie_result_ok(r)) {
    if (!zeroed(&k))
      abort();
    return;
  }
  if (k.key_len != nts_aead_key_len(k.aead_id) || size != NTS_COOKIE_LEN(k.key_len) ||
      k.current_key != (r == NTS_COOKIE_OK_CURRENT))
    abort();
  /* Re-seal: only the current key makes cookies, so compare those. */
  if (r == NTS_COOKIE_OK_CURRENT) {
    uint8_t again[NTS_COOKIE_MAX_LEN];
    size_t n = nts_cookie_make(ks, k.aead_id, k.c2s, k.s2c, k.key_len, data + 4, again,
                               sizeof(again));
    if (n != size || memcmp(again, data, size) != 0)
      abort();
  }
  nts_cookie_keys_wipe(&k);
}

static void check_keyfile(const uint8_t *data, size_t size)
{
  nts_keyset *ks = NULL;
  nts_keyfile_result r = nts_keyset_deserialize(data, size, &ks);
  if (r >= NTS_KEYFILE_RESULT_COUNT || nts_keyfile_result_name(r)[0] == '?')
    abort();
  if ((r == NTS_KEYFILE_OK) != (ks != NULL))
    abort();
  if (!ks)
    return;
  uint8_t out[NTS_KEYFILE_MAX_LEN];
  size_t n = nts_keyset_serialize(ks, out, sizeof(out));
  if (n != size || memcmp(out, data, size) != 0)
    abort();
  /* The loaded set is usable: rotate it and open a fresh cookie from the
   * new key and one from the previous current key. */
  uint8_t key[NTS_COOKIE_MASTER_KEY_LEN] = {1}, c2s[32] = {2}, s2c[32] = {3}, nonce[16] = {4};
  uint8_t c_old[NTS_COOKIE_MAX_LEN], c_new[NTS_COOKIE_MAX_LEN];
  size_t lo = nts_cookie_make(ks, NTS_AEAD_AES_SIV_CMAC_256, c2s, s2c, 32, nonce, c_old,
                              sizeof(c_old));
  nts_keyset *next = nts_keyset_rotate(ks, key, 0);
  if (!next)
    abort();
  size_t ln = nts_cookie_make(next, NTS_AEAD_AES_SIV_CMAC_256, c2s, s2c, 32, nonce, c_new,
                              sizeof(c_new));
  if (lo != 104 || ln != 104 ||
      nts_cookie_open(next, c_new, ln, NULL) != NTS_COOKIE_OK_CURRENT ||
      nts_cookie_open(next, c_old, lo, NULL) != NTS_COOKIE_OK_OLD ||
      nts_keyset_current_id(next) != nts_keyset_current_id(ks) + 1u)
    abort();
  nts_keyset_free(next);
  nts_keyset_free(ks);
}

/* Plaintext for (c): control bits 0-1 pick raw / fit to 66 / fit to 130 /
 * fit and give a valid AEAD header (bit 2: AEAD 17). */
static size_t build_plaintext(uint8_t ctl, const uint8_t *body, size_t blen, uint8_t *pt,
                              size_t cap)
{
  size_t len;
  switch (ctl & 3) {
  case 0:
    len = blen < cap ? blen : cap;
    break;
  case 1:
    len = 4 + 2 * 32;
    break;
  case 2:
    len = 4 + 2 * 64;
    break;
  default:
    len = (ctl & 4) ? 4 + 2 * 64 : 4 + 2 * 32;
    break;
  }
  memset(pt, 0, len);
  memcpy(pt, body, blen < len ? blen : len);
  if ((ctl & 3) == 3) {
    pt[0] = 0;
    pt[1] = (ctl & 4) ? NTS_AEAD_AES_SIV_CMAC_512 : NTS_AEAD_AES_SIV_CMAC_256;
    if (!(ctl & 0x40)) /* usually a valid reserved field; sometimes not */
      pt[2] = pt[3] = 0;
  }
  return len;
}

static void check_sealed_plaintext(const nts_keyset *ks, const uint8_t *data, size_t size)
{
  if (size == 0)
    return;
  uint8_t ctl = data[0];
  uint8_t pt[4 + 2 * NTS_AEAD_MAX_KEY_LEN + 64];
  size_t pt_len = build_plaintext(ctl, data + 1, size - 1, pt, sizeof(pt));
  unsigned slot = (unsigned)(ctl >> 3) % (RING + 1); /* RING: an unknown id */
  uint32_t id = FIRST_ID + slot;                     /* wraps */
  uint8_t key[NTS_COOKIE_MASTER_KEY_LEN];
  master(key, slot);
  uint8_t cookie[20 + NTS_AEAD_TAG_LEN + sizeof(pt)];
  const uint8_t ad[4] = {(uint8_t)(id >> 24), (uint8_t)(id >> 16), (uint8_t)(id >> 8),
                         (uint8_t)id};
  memcpy(cookie, ad, 4);
  for (int i = 0; i < 16; i++)
    cookie[4 + i] = (uint8_t)(ctl + i);
  nts_aead_key k;
  size_t n = 0;
  if (!nts_aead_key_set(&k, NTS_AEAD_AES_SIV_CMAC_256, key, sizeof(key)) ||
      !nts_aead_seal(&k, cookie + 4, 16, ad, 4, pt, pt_len, cookie + 20, sizeof(cookie) - 20,
                     &n))
    abort();
  nts_aead_key_wipe(&k);
  size_t clen = 20 + n;

  /* Prediction, from the documented format alone. */
  nts_cookie_result want;
  uint16_t aead = pt_len >= 2 ? (uint16_t)(pt[0] << 8 | pt[1]) : 0;
  uint16_t reserved = pt_len >= 4 ? (uint16_t)(pt[2] << 8 | pt[3]) : 1;
  size_t klen = (aead == 15) ? 32 : (aead == 17) ? 64 : 0;
  if (clen != 104 && clen != 168)
    want = NTS_COOKIE_MALFORMED;
  else if (slot == RING)
    want = NTS_COOKIE_UNKNOWN_KEY;
  else if (klen == 0 || reserved != 0 || pt_len != 4 + 2 * klen)
    want = NTS_COOKIE_BAD;
  else
    want = (slot == RING - 1) ? NTS_COOKIE_OK_CURRENT : NTS_COOKIE_OK_OLD;

  nts_cookie_keys out;
  nts_cookie_result r = nts_cookie_open(ks, cookie, clen, &out);
  if (r != want)
    abort();
  if (nts_cookie_result_ok(r) &&
      (out.aead_id != aead || out.key_len != klen || memcmp(out.c2s, pt + 4, klen) != 0 ||
       memcmp(out.s2c, pt + 4 + klen, klen) != 0))
    abort();
  if (!nts_cookie_result_ok(r) && !zeroed(&out))
    abort();
  /* Every single-byte change of the sealed part must be rejected. */
  if (nts_cookie_result_ok(r)) {
    size_t at = 20 + (size_t)data[size - 1] % n;
    cookie[at] ^= (uint8_t)(1u << (ctl & 7));
    if (nts_cookie_open(ks, cookie, clen, &out) != NTS_COOKIE_BAD)
      abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size > 4096)
    return 0;
  const nts_keyset *ks = fuzz_keyset();
  check_open(ks, data, size);
  check_keyfile(data, size);
  check_sealed_plaintext(ks, data, size);
  return 0;
}
