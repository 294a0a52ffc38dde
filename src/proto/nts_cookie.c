/* nts_cookie: cookie sealing/opening and the cookie master-key ring. */
#include "proto/nts_cookie.h"

#include <stdlib.h>
#include <string.h>

#include <nettle/sha2.h>

#include "proto/wire.h"

/* One master key with its expanded AES-SIV schedule, so opening a cookie
 * costs no key setup. */
typedef struct ks_slot {
  bool used;
  uint32_t id;
  uint64_t created;
  uint8_t key[NTS_COOKIE_MASTER_KEY_LEN];
  nts_aead_key aead;
} ks_slot;

struct nts_keyset {
  uint32_t current;
  unsigned count;
  /* Indexed by id % NTS_COOKIE_RING.  2^32 is a multiple of the ring size,
   * so consecutive ids stay in consecutive slots across the wrap. */
  ks_slot slot[NTS_COOKIE_RING];
};

/* The sealed plaintext: AEAD id and two keys of the longest length. */
#define PT_MAX (4 + 2 * NTS_AEAD_MAX_KEY_LEN)

/* ---- key set -------------------------------------------------------- */

static const ks_slot *ks_lookup(const nts_keyset *ks, uint32_t id)
{
  const ks_slot *s = &ks->slot[id % NTS_COOKIE_RING];
  return (s->used && s->id == id) ? s : NULL;
}

static bool slot_set(ks_slot *s, uint32_t id, const uint8_t *key, uint64_t created)
{
  nts_wipe(s, sizeof(*s));
  if (!nts_aead_key_set(&s->aead, NTS_AEAD_AES_SIV_CMAC_256, key, NTS_COOKIE_MASTER_KEY_LEN))
    return false;
  memcpy(s->key, key, NTS_COOKIE_MASTER_KEY_LEN);
  s->id = id;
  s->created = created;
  s->used = true;
  return true;
}

nts_keyset *nts_keyset_new(uint32_t first_id, const uint8_t key[NTS_COOKIE_MASTER_KEY_LEN],
                           uint64_t created)
{
  if (!key)
    return NULL;
  nts_keyset *ks = calloc(1, sizeof(*ks));
  if (!ks)
    return NULL;
  if (!slot_set(&ks->slot[first_id % NTS_COOKIE_RING], first_id, key, created)) {
    nts_keyset_free(ks);
    return NULL;
  }
  ks->current = first_id;
  ks->count = 1;
  return ks;
}

nts_keyset *nts_keyset_rotate(const nts_keyset *old,
                              const uint8_t new_key[NTS_COOKIE_MASTER_KEY_LEN],
                              uint64_t created)
{
  if (!old || !new_key)
    return NULL;
  nts_keyset *ks = malloc(sizeof(*ks));
  if (!ks)
    return NULL;
  memcpy(ks, old, sizeof(*ks));
  uint32_t id = old->current + 1u; /* unsigned: wraps at 2^32 */
  /* Once the ring is full, id's slot holds id - 8, the oldest key;
   * slot_set wipes it before reuse. */
  if (!slot_set(&ks->slot[id % NTS_COOKIE_RING], id, new_key, created)) {
    nts_keyset_free(ks);
    return NULL;
  }
  ks->current = id;
  if (ks->count < NTS_COOKIE_RING)
    ks->count++;
  return ks;
}

nts_keyset *nts_keyset_with_next(const nts_keyset *old,
                                 const uint8_t next_key[NTS_COOKIE_MASTER_KEY_LEN],
                                 uint64_t created)
{
  if (!old || !next_key)
    return NULL;
  nts_keyset *ks = malloc(sizeof(*ks));
  if (!ks)
    return NULL;
  memcpy(ks, old, sizeof(*ks));
  uint32_t id = old->current + 1u;
  /* With a full ring, the next id's slot holds the oldest key: it goes. */
  if (!slot_set(&ks->slot[id % NTS_COOKIE_RING], id, next_key, created)) {
    nts_keyset_free(ks);
    return NULL;
  }
  if (ks->count == NTS_COOKIE_RING)
    ks->count--;
  return ks;
}

void nts_keyset_free(nts_keyset *ks)
{
  if (!ks)
    return;
  nts_wipe(ks, sizeof(*ks));
  free(ks);
}

uint32_t nts_keyset_current_id(const nts_keyset *ks) { return ks ? ks->current : 0; }

uint64_t nts_keyset_current_created(const nts_keyset *ks)
{
  const ks_slot *s = ks ? ks_lookup(ks, ks->current) : NULL;
  return s ? s->created : 0;
}

unsigned nts_keyset_count(const nts_keyset *ks) { return ks ? ks->count : 0; }

bool nts_keyset_due(const nts_keyset *ks, uint64_t now, uint64_t period)
{
  if (!ks || period == 0)
    return false;
  uint64_t created = nts_keyset_current_created(ks);
  if (now >= created)
    return now - created >= period;
  return created - now > period;
}

/* ---- persistence ---------------------------------------------------- */

static const char *const keyfile_names[NTS_KEYFILE_RESULT_COUNT] = {
    [NTS_KEYFILE_OK] = "ok",
    [NTS_KEYFILE_BAD_MAGIC] = "not a key file (bad magic)",
    [NTS_KEYFILE_TRUNCATED] = "truncated",
    [NTS_KEYFILE_BAD_VERSION] = "unsupported version",
    [NTS_KEYFILE_BAD_COUNT] = "bad key count",
    [NTS_KEYFILE_TRAILING] = "trailing bytes after the checksum",
    [NTS_KEYFILE_BAD_CHECKSUM] = "checksum mismatch (corrupted)",
    [NTS_KEYFILE_BAD_IDS] = "key ids not consecutive",
    [NTS_KEYFILE_NOMEM] = "out of memory",
};

const char *nts_keyfile_result_name(nts_keyfile_result r)
{
  return (r >= 0 && r < NTS_KEYFILE_RESULT_COUNT && keyfile_names[r]) ? keyfile_names[r] : "?";
}

/* First NTS_KEYFILE_CHECKSUM_LEN bytes of SHA-256(buf[0..len)). */
static void keyfile_checksum(const uint8_t *buf, size_t len,
                             uint8_t out[NTS_KEYFILE_CHECKSUM_LEN])
{
  struct sha256_ctx h;
  sha256_init(&h);
  sha256_update(&h, len, buf);
  sha256_digest(&h, NTS_KEYFILE_CHECKSUM_LEN, out);
  nts_wipe(&h, sizeof(h)); /* its block buffer held key bytes */
}

size_t nts_keyset_serialize(const nts_keyset *ks, uint8_t *out, size_t cap)
{
  if (!ks || !out)
    return 0;
  size_t total = NTS_KEYFILE_LEN(ks->count);
  if (cap < total)
    return 0;
  wire_wr w;
  wire_wr_init(&w, out, cap);
  wire_put_bytes(&w, (const uint8_t *)NTS_KEYFILE_MAGIC, 8);
  wire_put_u16(&w, NTS_KEYFILE_VERSION);
  wire_put_u16(&w, (uint16_t)ks->count);
  uint32_t oldest = ks->current - (ks->count - 1u);
  for (unsigned i = 0; i < ks->count; i++) {
    const ks_slot *s = ks_lookup(ks, oldest + i);
    if (!s)
      return 0; /* cannot happen: the ring holds count consecutive ids */
    wire_put_u32(&w, s->id);
    wire_put_u64(&w, s->created);
    wire_put_bytes(&w, s->key, sizeof(s->key));
  }
  size_t body = wire_wr_len(&w);
  uint8_t *sum = wire_reserve(&w, NTS_KEYFILE_CHECKSUM_LEN);
  if (!sum || !wire_wr_ok(&w))
    return 0;
  keyfile_checksum(out, body, sum);
  return wire_wr_len(&w);
}

/* Structure checks, in order, up to and including the checksum.  On OK,
 * *count is the number of entries. */
static nts_keyfile_result keyfile_check(const uint8_t *buf, size_t len, unsigned *count)
{
  size_t mlen = len < 8 ? len : 8;
  if (mlen > 0 && memcmp(buf, NTS_KEYFILE_MAGIC, mlen) != 0)
    return NTS_KEYFILE_BAD_MAGIC;
  wire_rd r;
  wire_rd_init(&r, buf, len);
  wire_skip(&r, 8);
  uint16_t version = wire_get_u16(&r);
  uint16_t n = wire_get_u16(&r);
  if (!wire_rd_ok(&r))
    return NTS_KEYFILE_TRUNCATED;
  if (version != NTS_KEYFILE_VERSION)
    return NTS_KEYFILE_BAD_VERSION;
  if (n == 0 || n > NTS_COOKIE_RING)
    return NTS_KEYFILE_BAD_COUNT;
  size_t need = NTS_KEYFILE_LEN(n);
  if (len < need)
    return NTS_KEYFILE_TRUNCATED;
  if (len > need)
    return NTS_KEYFILE_TRAILING;
  uint8_t sum[NTS_KEYFILE_CHECKSUM_LEN];
  size_t body = need - NTS_KEYFILE_CHECKSUM_LEN;
  keyfile_checksum(buf, body, sum);
  if (!nts_ct_equal(sum, buf + body, sizeof(sum)))
    return NTS_KEYFILE_BAD_CHECKSUM;
  *count = n;
  return NTS_KEYFILE_OK;
}

nts_keyfile_result nts_keyset_deserialize(const uint8_t *buf, size_t len, nts_keyset **out)
{
  if (out)
    *out = NULL;
  if (!buf)
    len = 0;
  unsigned count = 0;
  nts_keyfile_result res = keyfile_check(buf, len, &count);
  if (res != NTS_KEYFILE_OK)
    return res;
  nts_keyset *ks = calloc(1, sizeof(*ks));
  if (!ks)
    return NTS_KEYFILE_NOMEM;
  wire_rd r;
  wire_rd_init(&r, buf, len);
  wire_skip(&r, 12);
  uint32_t first = 0;
  for (unsigned i = 0; i < count; i++) {
    uint32_t id = wire_get_u32(&r);
    uint64_t created = wire_get_u64(&r);
    const uint8_t *key = wire_get_span(&r, NTS_COOKIE_MASTER_KEY_LEN);
    if (i == 0)
      first = id;
    /* Consecutive ids also rule out duplicates, as count <= ring size. */
    if (!key || id != first + i) {
      res = NTS_KEYFILE_BAD_IDS;
      break;
    }
    if (!slot_set(&ks->slot[id % NTS_COOKIE_RING], id, key, created)) {
      res = NTS_KEYFILE_NOMEM; /* unreachable: the id and length are fixed */
      break;
    }
    ks->current = id;
  }
  ks->count = count;
  if (res != NTS_KEYFILE_OK || !out) {
    nts_keyset_free(ks);
    return res;
  }
  *out = ks;
  return NTS_KEYFILE_OK;
}

/* ---- cookies -------------------------------------------------------- */

static const char *const cookie_names[NTS_COOKIE_RESULT_COUNT] = {
    [NTS_COOKIE_OK_CURRENT] = "decoded",    [NTS_COOKIE_OK_OLD] = "decoded-old",
    [NTS_COOKIE_UNKNOWN_KEY] = "too-old",   [NTS_COOKIE_MALFORMED] = "malformed",
    [NTS_COOKIE_BAD] = "decode-error",
};

const char *nts_cookie_result_name(nts_cookie_result r)
{
  return (r >= 0 && r < NTS_COOKIE_RESULT_COUNT && cookie_names[r]) ? cookie_names[r] : "?";
}

bool nts_cookie_result_ok(nts_cookie_result r)
{
  return r == NTS_COOKIE_OK_CURRENT || r == NTS_COOKIE_OK_OLD;
}

void nts_cookie_keys_wipe(nts_cookie_keys *k)
{
  if (k)
    nts_wipe(k, sizeof(*k));
}

size_t nts_cookie_make(const nts_keyset *ks, uint16_t aead_id, const uint8_t *c2s,
                       const uint8_t *s2c, size_t key_len,
                       const uint8_t nonce[NTS_COOKIE_NONCE_LEN], uint8_t *out, size_t cap)
{
  if (!ks || !c2s || !s2c || !nonce || !out || key_len == 0 ||
      key_len != nts_aead_key_len(aead_id) || cap < NTS_COOKIE_LEN(key_len))
    return 0;
  const ks_slot *s = ks_lookup(ks, ks->current);
  if (!s)
    return 0;
  uint8_t pt[PT_MAX];
  wire_wr p;
  wire_wr_init(&p, pt, sizeof(pt));
  wire_put_u16(&p, aead_id);
  wire_put_u16(&p, 0); /* reserved: keeps the cookie length a multiple of 4 */
  wire_put_bytes(&p, c2s, key_len);
  wire_put_bytes(&p, s2c, key_len);

  uint8_t ad[NTS_COOKIE_KEYID_LEN];
  wire_wr a;
  wire_wr_init(&a, ad, sizeof(ad));
  wire_put_u32(&a, s->id);

  wire_wr w;
  wire_wr_init(&w, out, cap);
  wire_put_bytes(&w, ad, sizeof(ad));
  wire_put_bytes(&w, nonce, NTS_COOKIE_NONCE_LEN);
  size_t sealed_len = NTS_AEAD_TAG_LEN + wire_wr_len(&p);
  uint8_t *sealed = wire_reserve(&w, sealed_len);
  size_t n = 0;
  bool ok = wire_wr_ok(&p) && wire_wr_ok(&a) && sealed &&
            nts_aead_seal(&s->aead, nonce, NTS_COOKIE_NONCE_LEN, ad, sizeof(ad), pt,
                          wire_wr_len(&p), sealed, sealed_len, &n);
  nts_wipe(pt, sizeof(pt));
  return ok && n == sealed_len ? wire_wr_len(&w) : 0;
}

/* Checks a decrypted plaintext and copies the keys out. */
static bool cookie_plaintext(const uint8_t *pt, size_t len, nts_cookie_keys *out)
{
  wire_rd r;
  wire_rd_init(&r, pt, len);
  uint16_t aead = wire_get_u16(&r);
  uint16_t reserved = wire_get_u16(&r);
  size_t klen = nts_aead_key_len(aead);
  if (!wire_rd_ok(&r) || reserved != 0 || klen == 0 || wire_rd_left(&r) != 2 * klen)
    return false;
  out->aead_id = aead;
  out->key_len = klen;
  wire_get_bytes(&r, out->c2s, klen);
  wire_get_bytes(&r, out->s2c, klen);
  return wire_rd_ok(&r);
}

nts_cookie_result nts_cookie_open(const nts_keyset *ks, const uint8_t *cookie, size_t len,
                                  nts_cookie_keys *out)
{
  nts_cookie_keys scratch;
  nts_cookie_keys *k = out ? out : &scratch;
  memset(k, 0, sizeof(*k));
  /* Only the lengths we issue: anything else is rejected before any
   * crypto runs. */
  if (!cookie || (len != NTS_COOKIE_LEN(32) && len != NTS_COOKIE_LEN(64)))
    return NTS_COOKIE_MALFORMED;
  wire_rd r;
  wire_rd_init(&r, cookie, len);
  const uint8_t *ad = wire_get_span(&r, NTS_COOKIE_KEYID_LEN);
  wire_rd idr;
  wire_rd_init(&idr, ad, NTS_COOKIE_KEYID_LEN);
  uint32_t id = wire_get_u32(&idr);
  const uint8_t *nonce = wire_get_span(&r, NTS_COOKIE_NONCE_LEN);
  size_t sealed_len = wire_rd_left(&r);
  const uint8_t *sealed = wire_get_span(&r, sealed_len);
  if (!ad || !nonce || !sealed)
    return NTS_COOKIE_MALFORMED;
  const ks_slot *s = ks ? ks_lookup(ks, id) : NULL;
  if (!s)
    return NTS_COOKIE_UNKNOWN_KEY;

  uint8_t pt[PT_MAX];
  size_t pt_len = 0;
  nts_cookie_result res = NTS_COOKIE_BAD;
  if (nts_aead_open(&s->aead, nonce, NTS_COOKIE_NONCE_LEN, ad, NTS_COOKIE_KEYID_LEN, sealed,
                    sealed_len, pt, sizeof(pt), &pt_len) &&
      cookie_plaintext(pt, pt_len, k)) {
    k->current_key = (id == ks->current);
    res = k->current_key ? NTS_COOKIE_OK_CURRENT : NTS_COOKIE_OK_OLD;
  }
  nts_wipe(pt, sizeof(pt));
  if (res == NTS_COOKIE_BAD || k == &scratch)
    nts_cookie_keys_wipe(k);
  return res;
}
