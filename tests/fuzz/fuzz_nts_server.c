/* libFuzzer target: the server side of NTS for NTPv4 (proto/nts_ntp).
 *
 * A fixed key set (one master key, id FUZZ_KEY_ID) and fixed traffic keys
 * are set up once.  Each input is used two ways:
 *   (a) raw, as a request datagram for nts_ntp_server_check.  The result must
 *       be a named one; an OK request (only the corpus's genuine requests
 *       reach it) must give a response no longer than the request;
 *   (b) wrapped into a valid request so the fuzz bytes get past the AEAD
 *       check: data[0] is a control byte (bits 0-1: where the rest goes:
 *       1 = between the UID and the cookie, in the authenticated region,
 *       2 = as the encrypted plaintext, 3 = data[2..] split between both at
 *       offset data[1];
 *       bit 2: AEAD 17 instead of 15; bits 3-5: placeholders), and the
 *       authenticator is sealed correctly with the cookie's C2S key (mode 0
 *       is mode 2).  With the fuzz bytes only in the plaintext, the outcome is predicted from
 *       the documented rules (RFC 8915 5.5: placeholders as long as the
 *       cookie; fields of >= 16 bytes, multiples of 4).  Every OK request is
 *       answered (finish) and the answer checked by a client holding the
 *       same keys: it must be accepted with exactly the announced number of
 *       cookies, and be as long as the request. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/aead.h"
#include "proto/ntp_ef.h"
#include "proto/ntp_pkt.h"
#include "proto/nts_client.h"
#include "proto/nts_cookie.h"
#include "proto/nts_ntp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* tests/fuzz/corpus/fuzz_nts_server was generated with the same values. */
#define FUZZ_KEY_ID 0x4e545331u
#define PAD4(n) (((size_t)(n) + 3) & ~(size_t)3)

typedef struct fuzz_env {
  nts_keyset *ks;
  nts_ntp_srv *st;
  nts_client *cli;
  uint8_t c2s[64], s2c[64], uid[32];
} fuzz_env;

static fuzz_env *env(void)
{
  static fuzz_env e; /* built once; lives for the process */
  if (e.ks)
    return &e;
  uint8_t key[NTS_COOKIE_MASTER_KEY_LEN];
  for (unsigned i = 0; i < sizeof(key); i++)
    key[i] = (uint8_t)(0xa5 ^ (i * 13));
  for (unsigned i = 0; i < 64; i++) {
    e.c2s[i] = (uint8_t)(0x11 * i + 1);
    e.s2c[i] = (uint8_t)(0x22 * i + 2);
  }
  for (unsigned i = 0; i < 32; i++)
    e.uid[i] = (uint8_t)(0x80 + i);
  e.ks = nts_keyset_new(FUZZ_KEY_ID, key, 0);
  e.st = nts_ntp_srv_create();
  e.cli = nts_client_create();
  if (!e.ks || !e.st || !e.cli)
    abort();
  return &e;
}

typedef struct pkt {
  uint8_t b[4096]; /* up to 900 fuzz bytes and 8 cookies of 168 */
  size_t len;
} pkt;

static void put_ef(pkt *p, uint16_t type, const uint8_t *body, size_t n)
{
  size_t flen = 4 + PAD4(n);
  p->b[p->len] = (uint8_t)(type >> 8);
  p->b[p->len + 1] = (uint8_t)type;
  p->b[p->len + 2] = (uint8_t)(flen >> 8);
  p->b[p->len + 3] = (uint8_t)flen;
  memset(p->b + p->len + 4, 0, flen - 4);
  if (n)
    memcpy(p->b + p->len + 4, body, n);
  p->len += flen;
}

static void put_auth(pkt *p, uint16_t aead, const uint8_t *key, const uint8_t *pt,
                     size_t pt_len)
{
  static const uint8_t nonce[16] = {0x6e, 0x6f, 0x6e, 0x63, 0x65};
  nts_aead_key k;
  size_t clen = NTS_AEAD_TAG_LEN + pt_len, flen = 4 + 4 + 16 + PAD4(clen), n = 0;
  uint8_t *e = p->b + p->len;
  memset(e, 0, flen);
  e[0] = 0x04, e[1] = 0x04, e[2] = (uint8_t)(flen >> 8), e[3] = (uint8_t)flen;
  e[5] = 16, e[6] = (uint8_t)(clen >> 8), e[7] = (uint8_t)clen;
  memcpy(e + 8, nonce, 16);
  if (!nts_aead_key_set(&k, aead, key, nts_aead_key_len(aead)) ||
      !nts_aead_seal(&k, nonce, 16, p->b, p->len, pt, pt_len, e + 24, clen, &n))
    abort();
  nts_aead_key_wipe(&k);
  p->len += flen;
}

/* Answers an OK request and checks the answer as its client would. */
static void answer(fuzz_env *e, const uint8_t *req, size_t len, bool know_keys)
{
  unsigned want = nts_ntp_srv_cookies(e->st);
  uint16_t aead = nts_ntp_srv_aead(e->st);
  if (want < 1 || want > NTS_NTP_MAX_COOKIES || !nts_aead_supported(aead))
    abort();
  uint8_t resp[NTP_MAX_PKT], rnd[NTS_NTP_SERVER_RAND_LEN];
  memset(rnd, 0x3c, sizeof(rnd));
  memcpy(resp, req, NTP_HDR_LEN);
  resp[0] = (uint8_t)((resp[0] & 0x38) | 4); /* a server header will do */
  /* cookies sealed before finish or in it, as the request's last byte says */
  if ((req[len - 1] & 1) && !nts_ntp_server_make_cookies(e->st, e->ks, rnd, sizeof(rnd)))
    abort();
  size_t n = nts_ntp_server_finish(e->st, e->ks, resp, NTP_HDR_LEN, sizeof(resp), rnd,
                                   sizeof(rnd));
  if (n != len)
    abort();
  if (!know_keys)
    return;
  size_t klen = nts_aead_key_len(aead);
  unsigned got = 0;
  if (!nts_client_set_session(e->cli, aead, e->c2s, e->s2c, klen, NULL, 0, 1) ||
      !nts_client_set_pending(e->cli, e->uid, sizeof(e->uid)) ||
      nts_ntp_client_response(e->cli, resp, n, e->uid, sizeof(e->uid), &got) !=
          NTS_NTP_CLI_OK ||
      got != want)
    abort();
}

static void check_raw(fuzz_env *e, const uint8_t *data, size_t size)
{
  nts_ntp_srv_result r = nts_ntp_server_check(e->ks, data, size, e->st);
  if (r >= NTS_NTP_SRV_RESULT_COUNT || nts_ntp_srv_result_name(r)[0] == '?' ||
      nts_ntp_srv_reason_name(nts_ntp_srv_why(e->st))[0] == '?')
    abort();
  if ((r == NTS_NTP_SRV_OK) != (nts_ntp_srv_why(e->st) == NTS_NTP_WHY_NONE) &&
      r != NTS_NTP_SRV_NOT_NTS)
    abort();
  if (r == NTS_NTP_SRV_OK)
    answer(e, data, size, true); /* corpus requests use the fixed keys */
  uint8_t nak[NTP_MAX_PKT];
  memset(nak, 0, NTP_HDR_LEN);
  size_t n = nts_ntp_server_nak(e->st, nak, NTP_HDR_LEN, sizeof(nak));
  bool may_nak = r == NTS_NTP_SRV_OK || r == NTS_NTP_SRV_NAK || r == NTS_NTP_SRV_DROP_AUTH;
  if ((n != 0) != may_nak ||
      (n && (n > size || ntp_ef_validate(nak, n, NULL, NULL) != NTP_EF_END)))
    abort();
}

/* The fate of a plaintext under the documented rules; *ph counts its
 * placeholders. */
static bool plaintext_ok(const uint8_t *pt, size_t len, size_t cookie_len, unsigned *ph)
{
  size_t pos = 0;
  while (pos < len) {
    if (len - pos < 4)
      return false;
    uint16_t type = (uint16_t)(pt[pos] << 8 | pt[pos + 1]);
    size_t flen = (size_t)pt[pos + 2] << 8 | pt[pos + 3];
    if (flen < 16 || flen % 4 || flen > len - pos)
      return false;
    if (type == NTP_EF_NTS_COOKIE_PLACEHOLDER) {
      if (flen - 4 != cookie_len)
        return false;
      (*ph)++;
    }
    pos += flen;
  }
  return true;
}

static void check_wrapped(fuzz_env *e, const uint8_t *data, size_t size)
{
  if (size < 2)
    return;
  uint8_t ctl = data[0];
  unsigned mode = ctl & 3, placeholders = (ctl >> 3) & 7;
  uint16_t aead = (ctl & 4) ? NTS_AEAD_AES_SIV_CMAC_512 : NTS_AEAD_AES_SIV_CMAC_256;
  size_t klen = nts_aead_key_len(aead);
  size_t skip = mode == 3 ? 2 : 1; /* mode 3: data[1] is the split point */
  const uint8_t *rest = data + skip;
  size_t n_rest = size - skip > 900 ? 900 : size - skip;
  size_t split = mode == 3 ? (size_t)data[1] % (n_rest + 1) : (mode == 1 ? n_rest : 0);
  const uint8_t *ad_part = rest, *pt = rest + split;
  size_t ad_len = split, pt_len = mode == 1 ? 0 : n_rest - split;

  uint8_t cookie[NTS_COOKIE_MAX_LEN], zeros[NTS_COOKIE_MAX_LEN] = {0}, cnonce[16] = {ctl};
  size_t cl =
      nts_cookie_make(e->ks, aead, e->c2s, e->s2c, klen, cnonce, cookie, sizeof(cookie));
  if (cl != NTS_COOKIE_LEN(klen))
    abort();
  pkt p;
  memset(p.b, 0, NTP_HDR_LEN);
  p.b[0] = 0x23;
  p.b[47] = ctl;
  p.len = NTP_HDR_LEN;
  put_ef(&p, NTP_EF_UNIQUE_ID, e->uid, sizeof(e->uid));
  memcpy(p.b + p.len, ad_part, ad_len);
  p.len += ad_len;
  put_ef(&p, NTP_EF_NTS_COOKIE, cookie, cl);
  for (unsigned i = 0; i < placeholders; i++)
    put_ef(&p, NTP_EF_NTS_COOKIE_PLACEHOLDER, zeros, cl);
  put_auth(&p, aead, e->c2s, pt, pt_len);

  nts_ntp_srv_result r = nts_ntp_server_check(e->ks, p.b, p.len, e->st);
  if ((mode & 1) == 0 && p.len <= NTP_MAX_PKT) {
    unsigned ph = placeholders;
    bool ok = plaintext_ok(pt, pt_len, cl, &ph);
    if ((r == NTS_NTP_SRV_OK) != ok || (!ok && r != NTS_NTP_SRV_DROP_MALFORMED))
      abort();
    size_t fit = (p.len - NTP_HDR_LEN - 36 - 40) / (4 + cl);
    size_t want = ph + 1 < NTS_NTP_MAX_COOKIES ? ph + 1 : NTS_NTP_MAX_COOKIES;
    if (ok && nts_ntp_srv_cookies(e->st) != (fit < want ? fit : want))
      abort();
  }
  if (r == NTS_NTP_SRV_OK)
    answer(e, p.b, p.len, true);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size > 4096)
    return 0;
  fuzz_env *e = env();
  check_raw(e, data, size);
  check_wrapped(e, data, size);
  return 0;
}
