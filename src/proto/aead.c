/* aead: AES-SIV-CMAC-256/512 over Nettle, wipe and constant-time compare. */
#include "proto/aead.h"

#include <stdint.h>

size_t nts_aead_key_len(uint16_t id)
{
  switch (id) {
  case NTS_AEAD_AES_SIV_CMAC_256:
    return SIV_CMAC_AES128_KEY_SIZE;
  case NTS_AEAD_AES_SIV_CMAC_512:
    return SIV_CMAC_AES256_KEY_SIZE;
  default:
    return 0;
  }
}

bool nts_aead_supported(uint16_t id) { return nts_aead_key_len(id) != 0; }

/* Stands in for a NULL pointer with length 0: Nettle may hand its inputs to
 * memcpy even when empty, and memcpy from NULL is undefined. */
static const uint8_t no_bytes[1];

void nts_wipe(void *p, size_t n)
{
  volatile uint8_t *v = p;
  while (n--)
    *v++ = 0;
}

bool nts_ct_equal(const void *a, const void *b, size_t n)
{
  const uint8_t *x = a, *y = b;
  uint8_t acc = 0;
  for (size_t i = 0; i < n; i++)
    acc |= (uint8_t)(x[i] ^ y[i]);
  /* Reading through volatile keeps the compiler from turning the loop into
   * an early-exit comparison. */
  volatile uint8_t r = acc;
  return r == 0;
}

void nts_aead_key_wipe(nts_aead_key *k)
{
  if (k)
    nts_wipe(k, sizeof(*k));
}

bool nts_aead_key_set(nts_aead_key *k, uint16_t id, const uint8_t *key, size_t len)
{
  nts_aead_key_wipe(k);
  size_t need = nts_aead_key_len(id);
  if (!k || !key || need == 0 || len != need)
    return false;
  if (id == NTS_AEAD_AES_SIV_CMAC_256)
    siv_cmac_aes128_set_key(&k->u.s256, key);
  else
    siv_cmac_aes256_set_key(&k->u.s512, key);
  k->id = id;
  return true;
}

/* Shared argument checks: a set key and a non-empty nonce. */
static bool usable(const nts_aead_key *k, const uint8_t *nonce, size_t nonce_len)
{
  return k && nts_aead_supported(k->id) && nonce && nonce_len >= NTS_AEAD_MIN_NONCE_LEN;
}

bool nts_aead_seal(const nts_aead_key *k, const uint8_t *nonce, size_t nonce_len,
                   const uint8_t *ad, size_t ad_len, const uint8_t *pt, size_t pt_len,
                   uint8_t *out, size_t out_cap, size_t *out_len)
{
  if (out_len)
    *out_len = 0;
  if (!usable(k, nonce, nonce_len) || !out || !out_len ||
      pt_len > SIZE_MAX - NTS_AEAD_TAG_LEN || out_cap < NTS_AEAD_TAG_LEN + pt_len ||
      (ad_len && !ad) || (pt_len && !pt))
    return false;
  ad = ad_len ? ad : no_bytes;
  pt = pt_len ? pt : no_bytes;
  size_t clen = NTS_AEAD_TAG_LEN + pt_len;
  if (k->id == NTS_AEAD_AES_SIV_CMAC_256)
    siv_cmac_aes128_encrypt_message(&k->u.s256, nonce_len, nonce, ad_len, ad, clen, out, pt);
  else
    siv_cmac_aes256_encrypt_message(&k->u.s512, nonce_len, nonce, ad_len, ad, clen, out, pt);
  *out_len = clen;
  return true;
}

bool nts_aead_open(const nts_aead_key *k, const uint8_t *nonce, size_t nonce_len,
                   const uint8_t *ad, size_t ad_len, const uint8_t *in, size_t in_len,
                   uint8_t *out, size_t out_cap, size_t *out_len)
{
  if (out_len)
    *out_len = 0;
  if (!usable(k, nonce, nonce_len) || !in || !out_len || in_len < NTS_AEAD_TAG_LEN ||
      (ad_len && !ad))
    return false;
  size_t mlen = in_len - NTS_AEAD_TAG_LEN;
  /* An empty plaintext needs no output buffer at all (the NTS request). */
  uint8_t scratch[1];
  if (mlen == 0 && !out)
    out = scratch;
  if (!out || out_cap < mlen)
    return false;
  ad = ad_len ? ad : no_bytes;
  int ok;
  if (k->id == NTS_AEAD_AES_SIV_CMAC_256)
    ok = siv_cmac_aes128_decrypt_message(&k->u.s256, nonce_len, nonce, ad_len, ad, mlen, out,
                                         in);
  else
    ok = siv_cmac_aes256_decrypt_message(&k->u.s512, nonce_len, nonce, ad_len, ad, mlen, out,
                                         in);
  if (!ok) {
    nts_wipe(out, mlen);
    return false;
  }
  *out_len = mlen;
  return true;
}
