/* libFuzzer target: the client side of NTS for NTPv4 (proto/nts_ntp).
 *
 * A client with a known session (fixed C2S/S2C keys) and a request in
 * flight with a fixed unique identifier.  Each input is used three ways:
 *   (a) raw, as the response datagram.  The result must be a named one; only
 *       OK may change the jar or answer the request;
 *   (b) sealed: data[0] is a control byte (bit 0: AEAD 17 instead of 15;
 *       bit 1: also put a cookie EF before the authenticator, authenticated
 *       but not encrypted), the rest becomes the plaintext of an otherwise
 *       valid response (header, UID EF, Authenticator EF sealed with S2C),
 *       so the parser after decryption is fuzzed.  The outcome is predicted
 *       from the documented rules: OK exactly when the plaintext is a run of
 *       extension fields (>= 16 bytes, multiples of 4), and then the jar
 *       holds the last 8 of its NTS Cookie EFs in order, never the one
 *       outside the ciphertext;
 *   (c) as the cookie in the jar: the request built around it is well formed
 *       (ntp_ef), as long as documented, and a server answers it with a NAK
 *       (the fuzz bytes are no cookie of its). */
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
#include "proto/nts_ke_msg.h"
#include "proto/nts_ntp.h"

#include "fuzz_pkt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/* tests/fuzz/corpus/fuzz_nts_client was generated with the same values. */
typedef struct fuzz_env {
  nts_client *cli;
  nts_keyset *ks;
  nts_ntp_srv *st;
  uint8_t c2s[64], s2c[64], uid[32];
} fuzz_env;

static fuzz_env *env(void)
{
  static fuzz_env e; /* built once; lives for the process */
  if (e.cli)
    return &e;
  uint8_t key[NTS_COOKIE_MASTER_KEY_LEN] = {0x42};
  for (unsigned i = 0; i < 64; i++) {
    e.c2s[i] = (uint8_t)(0x33 * i + 3);
    e.s2c[i] = (uint8_t)(0x44 * i + 4);
  }
  for (unsigned i = 0; i < 32; i++)
    e.uid[i] = (uint8_t)(0xc0 + i);
  e.cli = nts_client_create();
  e.ks = nts_keyset_new(1, key, 0);
  e.st = nts_ntp_srv_create();
  if (!e.cli || !e.ks || !e.st)
    abort();
  return &e;
}

static uint16_t aead_of(uint8_t ctl)
{
  return (ctl & 1) ? NTS_AEAD_AES_SIV_CMAC_512 : NTS_AEAD_AES_SIV_CMAC_256;
}

/* A fresh session with an empty jar and our request in flight. */
static void start(fuzz_env *e, uint16_t aead)
{
  size_t klen = nts_aead_key_len(aead);
  if (!nts_client_set_session(e->cli, aead, e->c2s, e->s2c, klen, NULL, 0, 1) ||
      !nts_client_set_pending(e->cli, e->uid, sizeof(e->uid)))
    abort();
}

static void check_raw(fuzz_env *e, const uint8_t *data, size_t size)
{
  start(e, aead_of(size ? data[0] : 0));
  unsigned n = 99;
  nts_ntp_cli_result r = nts_ntp_client_response(e->cli, data, size, e->uid, 32, &n);
  if (r >= NTS_NTP_CLI_RESULT_COUNT || nts_ntp_cli_result_name(r)[0] == '?')
    abort();
  if (r != NTS_NTP_CLI_OK) { /* every refusal has a tamper reason, never the KE's */
    nts_client_tamper t = nts_ntp_client_tamper(e->cli, r, data, size);
    if (t >= NTS_TAMPER_KE_CERT || nts_client_tamper_name(t)[0] == '?')
      abort();
  }
  bool answered = !nts_client_is_pending(e->cli, e->uid, 32);
  if (answered != (r == NTS_NTP_CLI_OK) || (r != NTS_NTP_CLI_OK && n != 0) ||
      nts_client_cookie_count(e->cli) != (n < NTS_CLIENT_JAR ? n : NTS_CLIENT_JAR))
    abort();
}


/* Cookie EFs of a well-formed plaintext (offsets and lengths), or -1. */
static int plaintext_cookies(const uint8_t *pt, size_t len, size_t *off, size_t *blen)
{
  size_t pos = 0;
  int n = 0;
  while (pos < len) {
    if (len - pos < 4)
      return -1;
    uint16_t type = (uint16_t)(pt[pos] << 8 | pt[pos + 1]);
    size_t flen = (size_t)pt[pos + 2] << 8 | pt[pos + 3];
    if (flen < 16 || flen % 4 || flen > len - pos)
      return -1;
    if (type == NTP_EF_NTS_COOKIE && flen - 4 <= NTS_KE_MAX_COOKIE_LEN) {
      off[n] = pos + 4;
      blen[n++] = flen - 4;
    }
    pos += flen;
  }
  return n;
}

static void check_sealed(fuzz_env *e, const uint8_t *data, size_t size)
{
  if (size < 1)
    return;
  uint8_t ctl = data[0];
  uint16_t aead = aead_of(ctl);
  const uint8_t *pt = data + 1;
  size_t pt_len = size - 1 > 780 ? 780 : size - 1; /* response <= NTP_MAX_PKT */
  static const uint8_t nonce[16] = {0x4e, 0x4f};
  static const uint8_t outside[104] = {0xba, 0xd0};
  pkt p;
  memset(p.b, 0, NTP_HDR_LEN);
  p.b[0] = 0x24, p.b[1] = 1, p.b[47] = ctl;
  p.len = NTP_HDR_LEN;
  put_ef(&p, NTP_EF_UNIQUE_ID, e->uid, sizeof(e->uid));
  if (ctl & 2)
    put_ef(&p, NTP_EF_NTS_COOKIE, outside, sizeof(outside));
  size_t clen = NTS_AEAD_TAG_LEN + pt_len, flen = 4 + 4 + 16 + PAD4(clen), n = 0;
  uint8_t *a = p.b + p.len;
  memset(a, 0, flen);
  a[0] = 0x04, a[1] = 0x04, a[2] = (uint8_t)(flen >> 8), a[3] = (uint8_t)flen;
  a[5] = 16, a[6] = (uint8_t)(clen >> 8), a[7] = (uint8_t)clen;
  memcpy(a + 8, nonce, 16);
  nts_aead_key k;
  if (!nts_aead_key_set(&k, aead, e->s2c, nts_aead_key_len(aead)) ||
      !nts_aead_seal(&k, nonce, 16, p.b, p.len, pt, pt_len, a + 24, clen, &n))
    abort();
  p.len += flen;

  start(e, aead);
  size_t off[NTP_MAX_PKT / 16], blen[NTP_MAX_PKT / 16];
  int want = plaintext_cookies(pt, pt_len, off, blen);
  unsigned got = 99;
  nts_ntp_cli_result r = nts_ntp_client_response(e->cli, p.b, p.len, e->uid, 32, &got);
  if ((want < 0) != (r == NTS_NTP_CLI_MALFORMED) || (want >= 0 && r != NTS_NTP_CLI_OK) ||
      (want >= 0 && got != (unsigned)want))
    abort();
  /* the jar: the last 8 encrypted cookies, oldest first */
  int first = want > NTS_CLIENT_JAR ? want - NTS_CLIENT_JAR : 0;
  for (int i = first; i < want; i++) {
    uint8_t c[NTS_KE_MAX_COOKIE_LEN];
    if (nts_client_take_cookie(e->cli, c, sizeof(c)) != blen[i] ||
        memcmp(c, pt + off[i], blen[i]) != 0)
      abort();
  }
  if (nts_client_cookie_count(e->cli) != 0)
    abort();
}

static void check_request(fuzz_env *e, const uint8_t *data, size_t size)
{
  if (size < 2 || size - 1 > NTS_KE_MAX_COOKIE_LEN)
    return;
  uint16_t aead = aead_of(data[0]);
  start(e, aead);
  if (!nts_client_add_cookie(e->cli, data + 1, size - 1))
    abort();
  uint8_t hdr[NTP_HDR_LEN] = {0x23}, nonce[16] = {7}, req[NTP_MAX_PKT];
  unsigned ph = data[0] >> 4;
  size_t len = nts_ntp_client_request(e->cli, hdr, e->uid, 32, nonce, ph, req, sizeof(req));
  size_t ef = 4 + PAD4(size - 1) < 16 ? 16 : 4 + PAD4(size - 1);
  unsigned sent = ph > NTS_NTP_MAX_PLACEHOLDERS ? NTS_NTP_MAX_PLACEHOLDERS : ph;
  while (sent > 0 && (1 + sent) * ef > NTS_NTP_MAX_COOKIE_BYTES)
    sent--;
  if (len != NTP_HDR_LEN + 36 + (1 + sent) * ef + 40 || nts_client_cookie_count(e->cli) != 0 ||
      ntp_ef_validate(req, len, NULL, NULL) != NTP_EF_END)
    abort();
  if (nts_ntp_server_check(e->ks, req, len, e->st) != NTS_NTP_SRV_NAK)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size > 4096)
    return 0;
  fuzz_env *e = env();
  check_raw(e, data, size);
  check_sealed(e, data, size);
  check_request(e, data, size);
  return 0;
}
