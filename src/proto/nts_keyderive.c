/* nts_keyderive: per-epoch cookie master keys from a shared secret. */
#include "proto/nts_keyderive.h"

#include <string.h>

#include <nettle/hkdf.h>
#include <nettle/hmac.h>

#include "proto/aead.h"
#include "proto/wire.h"

#define SALT "ntsd cookie keys v1"

uint64_t nts_keyderive_epoch(uint64_t now, uint64_t period)
{
  return period ? now / period : 0;
}

static bool args_ok(const uint8_t *secret, size_t len, uint64_t period)
{
  return secret && len >= NTS_SECRET_MIN_LEN && len <= NTS_SECRET_MAX_LEN && period > 0;
}

/* HKDF-SHA256(secret, SALT, info) into out[0..n). */
static void hkdf(const uint8_t *secret, size_t len, const uint8_t *info, size_t info_len,
                 uint8_t *out, size_t n)
{
  struct hmac_sha256_ctx h;
  uint8_t prk[SHA256_DIGEST_SIZE];
  hmac_sha256_set_key(&h, sizeof(SALT) - 1, (const uint8_t *)SALT);
  hkdf_extract(&h, (nettle_hash_update_func *)hmac_sha256_update,
               (nettle_hash_digest_func *)hmac_sha256_digest, SHA256_DIGEST_SIZE, len, secret,
               prk);
  hmac_sha256_set_key(&h, sizeof(prk), prk);
  hkdf_expand(&h, (nettle_hash_update_func *)hmac_sha256_update,
              (nettle_hash_digest_func *)hmac_sha256_digest, SHA256_DIGEST_SIZE, info_len,
              info, n, out);
  nts_wipe(prk, sizeof(prk));
  nts_wipe(&h, sizeof(h));
}

/* label || period || [epoch], the HKDF info; returns its length. */
static size_t info_of(uint8_t *buf, size_t cap, const char *label, uint64_t period,
                      const uint64_t *epoch)
{
  wire_wr w;
  wire_wr_init(&w, buf, cap);
  wire_put_bytes(&w, (const uint8_t *)label, strlen(label));
  wire_put_u64(&w, period);
  if (epoch)
    wire_put_u64(&w, *epoch);
  return wire_wr_ok(&w) ? wire_wr_len(&w) : 0;
}

bool nts_keyderive_key(const uint8_t *secret, size_t len, uint64_t period, uint64_t epoch,
                       uint8_t key[NTS_COOKIE_MASTER_KEY_LEN])
{
  memset(key, 0, NTS_COOKIE_MASTER_KEY_LEN);
  if (!args_ok(secret, len, period))
    return false;
  uint8_t info[3 + 16];
  size_t n = info_of(info, sizeof(info), "key", period, &epoch);
  hkdf(secret, len, info, n, key, NTS_COOKIE_MASTER_KEY_LEN);
  return true;
}

uint32_t nts_keyderive_id(const uint8_t *secret, size_t len, uint64_t period, uint64_t epoch)
{
  if (!args_ok(secret, len, period))
    return 0;
  uint8_t info[2 + 8], b[4];
  size_t n = info_of(info, sizeof(info), "id", period, NULL);
  hkdf(secret, len, info, n, b, sizeof(b));
  uint32_t base = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
  return base + (uint32_t)epoch; /* unsigned: wraps at 2^32 */
}

/* set plus epoch e's key: as current (rotate) or as the next one. */
static nts_keyset *add(nts_keyset *set, const uint8_t *secret, size_t len, uint64_t period,
                       uint64_t e, bool next)
{
  uint8_t key[NTS_COOKIE_MASTER_KEY_LEN];
  nts_keyderive_key(secret, len, period, e, key);
  uint64_t created = e * period;
  nts_keyset *out = !set ? nts_keyset_new(nts_keyderive_id(secret, len, period, e), key, created)
                    : next ? nts_keyset_with_next(set, key, created)
                           : nts_keyset_rotate(set, key, created);
  nts_wipe(key, sizeof(key));
  nts_keyset_free(set);
  return out;
}

nts_keyset *nts_keyderive_set(const uint8_t *secret, size_t len, uint64_t period,
                              uint64_t epoch)
{
  if (!args_ok(secret, len, period) || epoch > UINT64_MAX / period - 1)
    return NULL;
  uint64_t first = epoch > NTS_KEYDERIVE_PAST ? epoch - NTS_KEYDERIVE_PAST : 0;
  nts_keyset *ks = NULL;
  for (uint64_t e = first; e <= epoch + 1; e++) {
    ks = add(ks, secret, len, period, e, e == epoch + 1);
    if (!ks)
      return NULL;
  }
  return ks;
}
