/* nts_keyderive: cookie master keys derived from a secret that several
 * servers share, one key per rotation epoch, so that any of them opens
 * the cookies any other sealed (docs/nts-cookies.md, "Shared cookie
 * keys").
 *
 * HKDF-SHA256 (RFC 5869):
 *
 *   PRK   = HKDF-Extract(salt = "ntsd cookie keys v1", IKM = secret)
 *   key_e = HKDF-Expand(PRK, "key" || period || e, 32)
 *   base  = HKDF-Expand(PRK, "id" || period, 4), big-endian
 *   id_e  = base + e  (mod 2^32)
 *
 * period and e are 8-byte big-endian integers; e = floor(time / period) is
 * the epoch.  The period is part of every derivation, so servers that
 * disagree on it fail closed (no shared key) instead of sealing under one
 * another's keys at different times.  Ids are consecutive across epochs,
 * as the key ring requires; the secret-dependent base makes a server with
 * another secret see foreign cookies as unknown ("too-old") rather than
 * trying a key on them.
 *
 * Pure: the epoch (or the time it comes from) is an argument. */
#ifndef NTSD_PROTO_NTS_KEYDERIVE_H
#define NTSD_PROTO_NTS_KEYDERIVE_H

#include <stddef.h>
#include <stdint.h>

#include "proto/nts_cookie.h"

#define NTS_SECRET_MIN_LEN 32   /* bytes: the secret must hold 256 bits */
#define NTS_SECRET_MAX_LEN 4096 /* a file larger than this is not a secret */

/* The epoch of wall-clock second now; 0 for a period of 0. */
uint64_t nts_keyderive_epoch(uint64_t now, uint64_t period);

/* Epoch e's master key into key.  Secret: NTS_SECRET_MIN_LEN to
 * NTS_SECRET_MAX_LEN bytes, period > 0; false (key zeroed) otherwise. */
bool nts_keyderive_key(const uint8_t *secret, size_t len, uint64_t period, uint64_t epoch,
                       uint8_t key[NTS_COOKIE_MASTER_KEY_LEN]);

/* Epoch e's key id (0 on bad arguments, as above). */
uint32_t nts_keyderive_id(const uint8_t *secret, size_t len, uint64_t period, uint64_t epoch);

/* The key set for epoch e: e's key current (sealing), the keys of up to 6
 * earlier epochs (never before epoch 0), and e + 1's key for opening only.
 * Each key's creation time is the start of its epoch.  NULL on bad
 * arguments or allocation failure. */
nts_keyset *nts_keyderive_set(const uint8_t *secret, size_t len, uint64_t period,
                              uint64_t epoch);

/* Epochs held before the current one by nts_keyderive_set. */
#define NTS_KEYDERIVE_PAST (NTS_COOKIE_RING - 2)

#endif
