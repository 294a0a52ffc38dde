/* libFuzzer target: the NTP server's request path as the daemon runs it
 * (proto/ntp_serve: ntp_serve_request, the transmit stamp, ntp_serve_finish).
 *
 * A fixed key set (one master key, id FUZZ_KEY_ID) and fixed traffic keys
 * are set up once.  Each input is used two ways:
 *   (a) raw, as a request datagram: served with NTS, then without keys and
 *       under each refusing admission decision.  Every outcome must be a
 *       named one, agree across the passes (header drops come before NTS,
 *       admission before everything) and reply exactly when it says so: a
 *       48-byte answer or RATE kiss, a NAK holding only the echoed Unique
 *       Identifier, an NTS response exactly as long as the request that the
 *       client holding the same keys accepts with the announced cookies
 *       (only the corpus's genuine requests get that far);
 *   (b) wrapped into a valid request so the fuzz bytes get past the AEAD
 *       check: data[0] is a control byte (bits 0-1: where the rest goes:
 *       1 = between the UID and the cookie, in the authenticated region,
 *       2 = as the encrypted plaintext, 3 = data[2..] split between both at
 *       offset data[1];
 *       bit 2: AEAD 17 instead of 15; bits 3-5: placeholders; bit 6: the
 *       response buffer is only 48 + 4 * data[size - 1] bytes), and the
 *       authenticator is sealed correctly with the cookie's C2S key (mode 0
 *       is mode 2).  With the fuzz bytes only in the plaintext, the outcome is predicted from
 *       the documented rules (RFC 8915 5.5: placeholders as long as the
 *       cookie; fields of >= 16 bytes, multiples of 4), and so is the number
 *       of new cookies. */
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
#include "proto/ntp_serve.h"

#include "fuzz_pkt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* tests/fuzz/corpus/fuzz_nts_server was generated with the same values. */
#define FUZZ_KEY_ID 0x4e545331u
#define RX_TS 0xe8f0a1b2c3d4e5f6ULL
#define TX_TS 0xe8f0a1b2c4000000ULL

typedef struct fuzz_env {
  nts_keyset *ks;
  ntp_serve *srv;
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
  e.srv = ntp_serve_create();
  e.cli = nts_client_create();
  if (!e.ks || !e.srv || !e.cli)
    abort();
  return &e;
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

static const ntp_sysinfo sys_sync = {
    .leap = NTP_LEAP_NONE, .stratum = 2, .precision = -23,
    .refid = NTP_REFID(192, 0, 2, 7), .reftime = 0xe8f0a100aabbccddULL,
    .root_delay = 0.0125, .root_disp = 0.5,
};

static void fuzz_rand(void *arg, uint8_t *buf, size_t len)
{
  (void)arg;
  for (size_t i = 0; i < len; i++)
    buf[i] = (uint8_t)(0x3c + i);
}

/* The response's header answers the request: a server packet for its
 * transmit timestamp, received at RX_TS, stamped at TX_TS. */
static void check_header(ntp_serve_result r, const uint8_t *req, const uint8_t *resp, size_t n)
{
  ntp_hdr q, h;
  if (!ntp_hdr_parse(req, NTP_HDR_LEN, &q) || !ntp_hdr_parse(resp, n, &h) ||
      h.mode != NTP_MODE_SERVER || h.version != q.version || h.org != q.xmt || h.rec != RX_TS ||
      h.xmt != TX_TS)
    abort();
  bool kiss = r == NTP_SERVE_KOD_RATE || r == NTP_SERVE_NTS_NAK;
  uint32_t code = r == NTP_SERVE_KOD_RATE ? NTP_REFID('R', 'A', 'T', 'E')
                                          : NTP_REFID('N', 'T', 'S', 'N');
  if (kiss ? (h.stratum != 0 || h.refid != code) : h.stratum != sys_sync.stratum)
    abort();
  size_t ef_n = 0;
  if (r == NTP_SERVE_NTS_NAK && (ntp_ef_validate(resp, n, &ef_n, NULL) != NTP_EF_END ||
                                 ef_n != 1 || resp[NTP_HDR_LEN + 1] != 0x04))
    abort(); /* a NAK carries the Unique Identifier EF (0x0104) and nothing else */
  if ((r == NTP_SERVE_RESPOND || r == NTP_SERVE_KOD_RATE) && n != NTP_HDR_LEN)
    abort();
}

/* An NTS response as its client, holding the fixed keys (AEAD 15 or 17,
 * as the request's cookie says), sees it: authentic, with every cookie
 * made when the buffer held the request's length, and exactly as long. */
static void check_client(fuzz_env *e, const uint8_t *resp, size_t n, size_t req_len, size_t cap)
{
  static const uint16_t aeads[] = {NTS_AEAD_AES_SIV_CMAC_256, NTS_AEAD_AES_SIV_CMAC_512};
  unsigned made = ntp_serve_cookies_made(e->srv), got = 0;
  nts_ntp_cli_result cr = NTS_NTP_CLI_BAD_AUTH;
  for (size_t i = 0; i < 2 && cr != NTS_NTP_CLI_OK; i++) {
    size_t klen = nts_aead_key_len(aeads[i]);
    if (!nts_client_set_session(e->cli, aeads[i], e->c2s, e->s2c, klen, NULL, 0, 1) ||
        !nts_client_set_pending(e->cli, e->uid, sizeof(e->uid)))
      abort();
    cr = nts_ntp_client_response(e->cli, resp, n, e->uid, sizeof(e->uid), &got);
  }
  if (cr != NTS_NTP_CLI_OK || got < 1 || got > made ||
      (cap >= req_len && (got != made || n != req_len)))
    abort();
}

/* One request through both phases, as the daemon runs them; cap is the
 * response buffer.  Checks what every outcome promises. */
static ntp_serve_result serve(fuzz_env *e, const uint8_t *req, size_t len,
                              ntp_serve_admit admit, const nts_keyset *ks, size_t cap,
                              uint8_t *resp, size_t *n)
{
  ntp_serve_in in = {.req = req, .len = len, .rx = RX_TS, .admit = admit, .sys = &sys_sync,
                     .keys = ks, .rand = fuzz_rand};
  ntp_serve_result r1 = ntp_serve_request(e->srv, &in, resp, cap);
  ntp_serve_result r = ntp_serve_finish(e->srv, TX_TS, resp, cap, n);
  if (r >= NTP_SERVE_RESULT_COUNT || ntp_serve_result_name(r)[0] == '?' ||
      (r != r1 && !(r1 == NTP_SERVE_RESPOND_NTS && r == NTP_SERVE_DROP_BUFFER && cap < len)) ||
      (*n != 0) != ntp_serve_replies(r) || *n > cap || (*n > len && r != NTP_SERVE_RESPOND))
    abort();
  bool nts_why = r == NTP_SERVE_NTS_NAK || r == NTP_SERVE_DROP_NTS_MALFORMED ||
                 r == NTP_SERVE_DROP_NTS_AUTH;
  if (nts_why != (ntp_serve_nts_reason(e->srv) != NTS_NTP_WHY_NONE) ||
      (r == NTP_SERVE_RESPOND_NTS && (ntp_serve_cookies_made(e->srv) < 1 ||
                                      ntp_serve_cookies_made(e->srv) > NTS_NTP_MAX_COOKIES)))
    abort();
  ntp_serve_counters c = {0};
  ntp_serve_count(e->srv, r, &c);
  if (c.result[r] != 1)
    abort();
  if (*n)
    check_header(r, req, resp, *n);
  if (r == NTP_SERVE_RESPOND_NTS)
    check_client(e, resp, *n, len, cap);
  return r;
}

static bool header_drop(ntp_serve_result r)
{
  return r >= NTP_SERVE_DROP_SHORT && r <= NTP_SERVE_DROP_BUFFER;
}

static void check_raw(fuzz_env *e, const uint8_t *data, size_t size)
{
  uint8_t resp[NTP_MAX_PKT];
  size_t n;
  ntp_serve_result r = serve(e, data, size, NTP_SERVE_ADMIT_OK, e->ks, sizeof(resp), resp, &n);
  /* Without keys: plain NTP, the same header verdict. */
  ntp_serve_result plain =
      serve(e, data, size, NTP_SERVE_ADMIT_OK, NULL, sizeof(resp), resp, &n);
  if ((plain != NTP_SERVE_RESPOND && !header_drop(plain)) ||
      ((header_drop(r) || header_drop(plain)) && r != plain))
    abort();
  static const ntp_serve_result refused[NTP_SERVE_ADMIT_COUNT] = {
      [NTP_SERVE_ADMIT_IGNORE] = NTP_SERVE_DROP_IGNORE,
      [NTP_SERVE_ADMIT_NOSERVE] = NTP_SERVE_DROP_NOSERVE,
      [NTP_SERVE_ADMIT_LIMITED] = NTP_SERVE_DROP_RATE,
      [NTP_SERVE_ADMIT_KOD] = NTP_SERVE_KOD_RATE,
  };
  for (int a = NTP_SERVE_ADMIT_IGNORE; a < NTP_SERVE_ADMIT_COUNT; a++) {
    ntp_serve_result want = refused[a];
    if (a == NTP_SERVE_ADMIT_KOD && plain != NTP_SERVE_RESPOND)
      want = NTP_SERVE_DROP_RATE; /* no kiss for a request we would not answer */
    if (serve(e, data, size, (ntp_serve_admit)a, e->ks, sizeof(resp), resp, &n) != want)
      abort();
  }
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

  uint8_t resp[NTP_MAX_PKT];
  size_t n, cap = (ctl & 0x40) ? NTP_HDR_LEN + 4 * (size_t)data[size - 1] : sizeof(resp);
  ntp_serve_result r = serve(e, p.b, p.len, NTP_SERVE_ADMIT_OK, e->ks, cap, resp, &n);
  if ((mode & 1) == 0 && p.len <= NTP_MAX_PKT) {
    unsigned ph = placeholders;
    bool ok = plaintext_ok(pt, pt_len, cl, &ph);
    bool answered = r == NTP_SERVE_RESPOND_NTS || (r == NTP_SERVE_DROP_BUFFER && cap < p.len);
    if (answered != ok || (!ok && r != NTP_SERVE_DROP_NTS_MALFORMED))
      abort();
    size_t fit = (p.len - NTP_HDR_LEN - 36 - 40) / (4 + cl);
    size_t want = ph + 1 < NTS_NTP_MAX_COOKIES ? ph + 1 : NTS_NTP_MAX_COOKIES;
    if (ok && ntp_serve_cookies_made(e->srv) != (fit < want ? fit : want))
      abort();
  }
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
