/* nts_cookie: the server's NTS cookies (RFC 8915 6) and the ring of master
 * keys that seals them.  docs/nts-cookies.md has the rationale.
 *
 * Cookie layout (all integers big-endian):
 *
 *   key id   4 bytes   id of the master key that sealed it
 *   nonce   16 bytes   from the caller's CSPRNG
 *   tag     16 bytes   AES-SIV synthetic IV
 *   ct       4 + 2*L   AEAD_AES_SIV_CMAC_256(master key, nonce, AD = key id
 *                      bytes, plaintext = AEAD id (2) || reserved 0 (2) ||
 *                      C2S key || S2C key)
 *
 * L is the key length of the negotiated AEAD: 32 for id 15 (a 104-byte
 * cookie), 64 for id 17 (168 bytes).  The AEAD id lives inside the sealed
 * plaintext, so a client cannot make us use its keys with another algorithm.
 *
 * Master keys are 32 bytes (AES-SIV-CMAC-256).  A key set holds the current
 * key and up to 7 predecessors, with consecutive ids (each rotation adds 1,
 * wrapping at 2^32), so the slot of an id is id % 8: lookup is O(1) and a
 * cookie from a key that fell out of the ring is recognised as such.
 *
 * A key set is immutable.  Rotation returns a new one; the daemon publishes
 * it with an atomic pointer swap and frees the old one when no packet
 * handler can still see it, so the packet path takes no lock.  make and
 * open allocate nothing. */
#ifndef NTSD_PROTO_NTS_COOKIE_H
#define NTSD_PROTO_NTS_COOKIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/aead.h"

#define NTS_COOKIE_MASTER_KEY_LEN 32
#define NTS_COOKIE_RING 8 /* current key + 7 previous */
#define NTS_COOKIE_NONCE_LEN 16
#define NTS_COOKIE_KEYID_LEN 4
/* Everything but the two traffic keys: id, nonce, tag, AEAD id and 2
 * reserved zero bytes.  The reserved bytes make every cookie length a
 * multiple of 4 (104 and 168): a cookie travels in an extension field padded
 * to 4 bytes, and peers (chrony) refuse cookies whose length is not. */
#define NTS_COOKIE_OVERHEAD \
  (NTS_COOKIE_KEYID_LEN + NTS_COOKIE_NONCE_LEN + NTS_AEAD_TAG_LEN + 4) /* 40 */
#define NTS_COOKIE_LEN(key_len) (NTS_COOKIE_OVERHEAD + 2 * (size_t)(key_len))
#define NTS_COOKIE_MAX_LEN NTS_COOKIE_LEN(NTS_AEAD_MAX_KEY_LEN) /* 168 */

typedef struct nts_keyset nts_keyset;

/* ---- key set -------------------------------------------------------- */

/* A set holding one key.  created is the caller's wall-clock time in
 * seconds (only nts_keyset_due() looks at it).  NULL on allocation failure
 * or a NULL key. */
nts_keyset *nts_keyset_new(uint32_t first_id, const uint8_t key[NTS_COOKIE_MASTER_KEY_LEN],
                           uint64_t created);

/* A new set: old's keys plus new_key as current with id current + 1
 * (wrapping); the oldest key drops out once 8 are held.  old is unchanged.
 * NULL on allocation failure. */
nts_keyset *nts_keyset_rotate(const nts_keyset *old,
                              const uint8_t new_key[NTS_COOKIE_MASTER_KEY_LEN],
                              uint64_t created);

/* A new set: old's keys plus next_key with id current + 1, which opens
 * cookies but seals none (current stays current), for servers sharing
 * derived keys whose clocks cross an epoch boundary a little before ours.
 * With a full ring the oldest key drops out; count and persistence cover
 * only the current key and its predecessors.  old is unchanged.  NULL on
 * allocation failure. */
nts_keyset *nts_keyset_with_next(const nts_keyset *old,
                                 const uint8_t next_key[NTS_COOKIE_MASTER_KEY_LEN],
                                 uint64_t created);

/* Wipes every key and frees; NULL is fine. */
void nts_keyset_free(nts_keyset *ks);

uint32_t nts_keyset_current_id(const nts_keyset *ks);
uint64_t nts_keyset_current_created(const nts_keyset *ks);
/* Keys held, 1..NTS_COOKIE_RING. */
unsigned nts_keyset_count(const nts_keyset *ks);

/* Whether the current key should be rotated at wall-clock time now: it is
 * at least `period` seconds old, or it claims to be created more than a
 * period in the future (the clock was stepped back; waiting for it to
 * catch up would keep one key for as long as the step).  period 0 turns
 * rotation off. */
bool nts_keyset_due(const nts_keyset *ks, uint64_t now, uint64_t period);

/* ---- persistence (`nts cookie FILE`) ---------------------------------
 *
 *   "NTSDKEY1"   8 bytes magic
 *   version      u16, 1
 *   count        u16, 1..8
 *   count x      { id u32, created u64, key[32] }, oldest first, ids
 *                consecutive, the last is the current key
 *   checksum     first 16 bytes of SHA-256 over everything before it
 *
 * The checksum catches corruption (torn writes, bit rot), not tampering: the
 * file holds the keys themselves and is protected by its permissions. */
#define NTS_KEYFILE_MAGIC "NTSDKEY1"
#define NTS_KEYFILE_VERSION 1
#define NTS_KEYFILE_ENTRY_LEN (4 + 8 + NTS_COOKIE_MASTER_KEY_LEN)
#define NTS_KEYFILE_CHECKSUM_LEN 16
#define NTS_KEYFILE_LEN(count) \
  (8 + 2 + 2 + (size_t)(count) * NTS_KEYFILE_ENTRY_LEN + NTS_KEYFILE_CHECKSUM_LEN)
#define NTS_KEYFILE_MAX_LEN NTS_KEYFILE_LEN(NTS_COOKIE_RING) /* 380 */

typedef enum nts_keyfile_result {
  NTS_KEYFILE_OK = 0,
  NTS_KEYFILE_BAD_MAGIC,    /* not a key file (checked on the bytes present) */
  NTS_KEYFILE_TRUNCATED,    /* shorter than its header or its count says */
  NTS_KEYFILE_BAD_VERSION,  /* a version we do not read */
  NTS_KEYFILE_BAD_COUNT,    /* count 0 or above NTS_COOKIE_RING */
  NTS_KEYFILE_TRAILING,     /* bytes after the checksum */
  NTS_KEYFILE_BAD_CHECKSUM, /* corrupted */
  NTS_KEYFILE_BAD_IDS,      /* ids duplicate or not consecutive */
  NTS_KEYFILE_NOMEM,
  NTS_KEYFILE_RESULT_COUNT
} nts_keyfile_result;

const char *nts_keyfile_result_name(nts_keyfile_result r);

/* Writes the set into out; returns the length (NTS_KEYFILE_LEN(count)) or 0
 * if cap is too small.  out then holds the master keys: nts_wipe() it. */
size_t nts_keyset_serialize(const nts_keyset *ks, uint8_t *out, size_t cap);

/* Any bytes in: a new set in *out and NTS_KEYFILE_OK, or *out NULL and the
 * first problem found. */
nts_keyfile_result nts_keyset_deserialize(const uint8_t *buf, size_t len, nts_keyset **out);

/* ---- cookies -------------------------------------------------------- */

typedef enum nts_cookie_result {
  NTS_COOKIE_OK_CURRENT = 0, /* sealed with the current key */
  NTS_COOKIE_OK_OLD,         /* sealed with one of the 7 previous keys */
  NTS_COOKIE_UNKNOWN_KEY,    /* key id not in the ring: too old, or never ours */
  NTS_COOKIE_MALFORMED,      /* not a cookie length */
  NTS_COOKIE_BAD,            /* authentication failed, or the plaintext is not
                                a supported AEAD id with keys of its length */
  NTS_COOKIE_RESULT_COUNT
} nts_cookie_result;

/* Counter name: "decoded", "decoded-old", "too-old", "malformed",
 * "decode-error". */
const char *nts_cookie_result_name(nts_cookie_result r);

/* OK_CURRENT or OK_OLD. */
bool nts_cookie_result_ok(nts_cookie_result r);

/* The traffic keys a cookie carries.  Wipe with nts_cookie_keys_wipe(). */
typedef struct nts_cookie_keys {
  uint16_t aead_id;
  size_t key_len; /* of each key: nts_aead_key_len(aead_id) */
  uint8_t c2s[NTS_AEAD_MAX_KEY_LEN];
  uint8_t s2c[NTS_AEAD_MAX_KEY_LEN];
  bool current_key; /* sealed with the current master key (else an older one) */
} nts_cookie_keys;

void nts_cookie_keys_wipe(nts_cookie_keys *k);

/* Seals a cookie with the current key.  key_len must be
 * nts_aead_key_len(aead_id); nonce comes from the caller's CSPRNG.
 * Returns NTS_COOKIE_LEN(key_len), or 0 on bad arguments or a short cap. */
size_t nts_cookie_make(const nts_keyset *ks, uint16_t aead_id, const uint8_t *c2s,
                       const uint8_t *s2c, size_t key_len,
                       const uint8_t nonce[NTS_COOKIE_NONCE_LEN], uint8_t *out, size_t cap);

/* Opens a cookie.  *out is zeroed first and filled only on an OK result. */
nts_cookie_result nts_cookie_open(const nts_keyset *ks, const uint8_t *cookie, size_t len,
                                  nts_cookie_keys *out);

#endif
