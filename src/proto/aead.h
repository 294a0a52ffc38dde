/* aead: the NTS AEAD algorithms (RFC 8915 5.1), AES-SIV-CMAC from RFC 5297,
 * through Nettle's siv-cmac.h, plus the project's secret-handling primitives
 * (wipe, constant-time compare) for code that cannot call OpenSSL.
 *
 * Only the two SIV algorithms exist here: NTS requires AEAD_AES_SIV_CMAC_256
 * (IANA AEAD id 15) and servers may offer AEAD_AES_SIV_CMAC_512 (id 17).
 * Nettle and not OpenSSL: OpenSSL 3.0's EVP SIV fails on an empty plaintext,
 * and every NTS client request authenticates an empty plaintext.
 *
 * Sealed output is tag (16 bytes, the synthetic IV) followed by the
 * ciphertext, which is as long as the plaintext (RFC 5297 / RFC 5116 layout,
 * and what NTS puts in the Authenticator EF).  S2V runs over exactly two
 * components before the plaintext: the associated data, then the nonce
 * (RFC 5297 section 6, the RFC 5116 interface).  Both may be empty except
 * the nonce, which must be at least one byte (Nettle's SIV_MIN_NONCE_SIZE). */
#ifndef NTSD_PROTO_AEAD_H
#define NTSD_PROTO_AEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nettle/siv-cmac.h>

/* IANA "AEAD Algorithms" registry ids. */
#define NTS_AEAD_AES_SIV_CMAC_256 15 /* 32-byte key: two AES-128 keys */
#define NTS_AEAD_AES_SIV_CMAC_512 17 /* 64-byte key: two AES-256 keys */

#define NTS_AEAD_TAG_LEN 16
#define NTS_AEAD_MAX_KEY_LEN 64
#define NTS_AEAD_MIN_NONCE_LEN 1

/* A key with its expanded schedule, so the packet path never re-expands it.
 * A plain value: embed it or keep it on the stack, and nts_aead_key_wipe()
 * it when done.  id is 0 while no key is set.  Read-only use (seal, open)
 * from several threads at once is safe. */
typedef struct nts_aead_key {
  uint16_t id;
  union {
    struct siv_cmac_aes128_ctx s256; /* NTS_AEAD_AES_SIV_CMAC_256 */
    struct siv_cmac_aes256_ctx s512; /* NTS_AEAD_AES_SIV_CMAC_512 */
  } u;
} nts_aead_key;

/* Key length for an AEAD id, 0 if we do not implement it. */
size_t nts_aead_key_len(uint16_t id);
bool nts_aead_supported(uint16_t id);

/* Expands `key` (len must be nts_aead_key_len(id)).  On failure k is left
 * wiped and unset (id 0). */
bool nts_aead_key_set(nts_aead_key *k, uint16_t id, const uint8_t *key, size_t len);
void nts_aead_key_wipe(nts_aead_key *k);

/* Seals pt into out = tag || ciphertext, *out_len = NTS_AEAD_TAG_LEN + pt_len.
 * False (and *out_len 0) if k is unset, the nonce is empty or out_cap is too
 * small.  pt/ad may be NULL when their length is 0.  out must not overlap
 * the inputs. */
bool nts_aead_seal(const nts_aead_key *k, const uint8_t *nonce, size_t nonce_len,
                   const uint8_t *ad, size_t ad_len, const uint8_t *pt, size_t pt_len,
                   uint8_t *out, size_t out_cap, size_t *out_len);

/* Opens in = tag || ciphertext into out, *out_len = in_len - NTS_AEAD_TAG_LEN.
 * False if k is unset, the nonce is empty, in is shorter than a tag, out_cap
 * is too small, or authentication fails (Nettle compares the tag in constant
 * time).  On failure *out_len is 0 and out holds no plaintext: Nettle
 * decrypts before it verifies, so whatever it wrote is zeroed again.
 * out must not overlap the inputs. */
bool nts_aead_open(const nts_aead_key *k, const uint8_t *nonce, size_t nonce_len,
                   const uint8_t *ad, size_t ad_len, const uint8_t *in, size_t in_len,
                   uint8_t *out, size_t out_cap, size_t *out_len);

/* Zeroes n bytes through a volatile pointer, so the compiler cannot drop the
 * stores as dead (plain memset before free or return may vanish).  The
 * project's wipe for keys, plaintexts and key schedules. */
void nts_wipe(void *p, size_t n);

/* Constant-time equality of two n-byte buffers (the time depends on n only);
 * for MACs, tags and anything else an attacker may probe byte by byte. */
bool nts_ct_equal(const void *a, const void *b, size_t n);

#endif
