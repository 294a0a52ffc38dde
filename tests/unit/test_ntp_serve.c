/* Unit tests for src/proto/ntp_serve: the server's whole request path, one
 * test per outcome of ntp_serve_result, the admission decision, the order of
 * the checks, and the counters the daemon derives its `ntsctl` keys from.
 * NTS requests come from our own client (nts_ntp_client_request) holding a
 * cookie sealed for the server's key set, and every NTS response is checked
 * by that client. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/aead.h"
#include "proto/ntp_client.h"
#include "proto/ntp_ef.h"
#include "proto/ntp_serve.h"
#include "proto/nts_client.h"
#include "proto/nts_cookie.h"

#define REQ_XMT 0x0123456789abcdefULL
#define RX_TS 0xe8f0a1b2c3d4e5f6ULL
#define TX_TS 0xe8f0a1b2c4000000ULL

static const ntp_sysinfo sys_sync = {
    .leap = NTP_LEAP_NONE,
    .stratum = 3,
    .precision = -20,
    .refid = NTP_REFID(198, 51, 100, 9),
    .reftime = 0xe8f0a100aabbccddULL,
    .root_delay = 0.002,
    .root_disp = 0.01,
};

/* Counts the calls, fills with a pattern. */
static void test_rand(void *arg, uint8_t *buf, size_t len)
{
  (*(unsigned *)arg)++;
  for (size_t i = 0; i < len; i++)
    buf[i] = (uint8_t)(0xa0 ^ i);
}

/* ---- fixture: a server (state, key set) and an NTS client -------------- */

typedef struct fx {
  ntp_serve *srv;
  nts_keyset *ks;
  nts_client *cli;
  unsigned rand_calls;
  uint8_t c2s[32], s2c[32], uid[NTS_NTP_UID_LEN];
  uint8_t req[NTP_MAX_PKT], out[NTP_MAX_PKT];
  size_t req_len, out_len;
} fx;

static nts_keyset *keyset(uint8_t seed)
{
  uint8_t key[NTS_COOKIE_MASTER_KEY_LEN];
  for (size_t i = 0; i < sizeof(key); i++)
    key[i] = (uint8_t)(seed + 7 * i);
  nts_keyset *ks = nts_keyset_new(0x100u + seed, key, 0);
  assert_non_null(ks);
  return ks;
}

/* A session whose one cookie is sealed by cookie_ks (the server's set, or
 * another one for a NAK). */
static void fx_session(fx *f, const nts_keyset *cookie_ks)
{
  uint8_t cookie[NTS_COOKIE_MAX_LEN], nonce[NTS_COOKIE_NONCE_LEN] = {1, 2, 3};
  size_t klen = nts_aead_key_len(NTS_AEAD_AES_SIV_CMAC_256);
  size_t n = nts_cookie_make(cookie_ks, NTS_AEAD_AES_SIV_CMAC_256, f->c2s, f->s2c, klen, nonce,
                             cookie, sizeof(cookie));
  assert_int_equal(n, NTS_COOKIE_LEN(klen));
  assert_true(nts_client_set_session(f->cli, NTS_AEAD_AES_SIV_CMAC_256, f->c2s, f->s2c, klen,
                                     cookie, 1, n));
}

static int fx_setup(void **state)
{
  static fx f;
  memset(&f, 0, sizeof(f));
  for (size_t i = 0; i < 32; i++) {
    f.c2s[i] = (uint8_t)(0x10 + i);
    f.s2c[i] = (uint8_t)(0x70 + i);
  }
  for (size_t i = 0; i < sizeof(f.uid); i++)
    f.uid[i] = (uint8_t)(0xc0 + i);
  f.srv = ntp_serve_create();
  f.ks = keyset(1);
  f.cli = nts_client_create();
  assert_non_null(f.srv);
  assert_non_null(f.cli);
  fx_session(&f, f.ks);
  *state = &f;
  return 0;
}

static int fx_teardown(void **state)
{
  fx *f = *state;
  ntp_serve_destroy(f->srv);
  nts_keyset_free(f->ks);
  nts_client_destroy(f->cli);
  return 0;
}

static void plain_request(fx *f, uint8_t version, uint8_t mode)
{
  ntp_hdr h = {.version = version, .mode = mode, .poll = 6, .xmt = REQ_XMT};
  wire_wr w;
  memset(f->req, 0, sizeof(f->req));
  wire_wr_init(&w, f->req, sizeof(f->req));
  ntp_hdr_write(&w, &h);
  assert_true(wire_wr_ok(&w));
  f->req_len = NTP_HDR_LEN;
}

static void nts_request(fx *f, unsigned placeholders)
{
  uint8_t hdr[NTP_HDR_LEN], nonce[NTS_NTP_NONCE_LEN] = {9, 8, 7};
  assert_int_equal(ntp_client_build_request(hdr, sizeof(hdr), 4, REQ_XMT), NTP_HDR_LEN);
  f->req_len = nts_ntp_client_request(f->cli, hdr, f->uid, sizeof(f->uid), nonce, placeholders,
                                      f->req, sizeof(f->req));
  assert_true(f->req_len > NTP_HDR_LEN);
}

/* Both phases, as the daemon runs them, into a buffer of cap bytes. */
static ntp_serve_result serve_cap(fx *f, ntp_serve_admit admit, const nts_keyset *ks,
                                  size_t cap)
{
  ntp_serve_in in = {.req = f->req, .len = f->req_len, .rx = RX_TS, .admit = admit,
                     .sys = &sys_sync, .keys = ks, .rand = test_rand,
                     .rand_arg = &f->rand_calls};
  memset(f->out, 0xee, sizeof(f->out));
  ntp_serve_result r = ntp_serve_request(f->srv, &in, f->out, cap);
  ntp_serve_result r2 = ntp_serve_finish(f->srv, TX_TS, f->out, cap, &f->out_len);
  if (r != r2)
    assert_int_equal(r2, NTP_SERVE_DROP_BUFFER); /* only an NTS seal can fail late */
  assert_int_equal(f->out_len != 0, ntp_serve_replies(r2));
  return r2;
}

static ntp_serve_result serve(fx *f, ntp_serve_admit admit, const nts_keyset *ks)
{
  return serve_cap(f, admit, ks, sizeof(f->out));
}

static void assert_serves(fx *f, ntp_serve_admit admit, const nts_keyset *ks,
                          ntp_serve_result want)
{
  ntp_serve_result r = serve(f, admit, ks);
  if (r != want)
    fail_msg("result %s, want %s", ntp_serve_result_name(r), ntp_serve_result_name(want));
}

static ntp_hdr out_header(const fx *f)
{
  ntp_hdr h;
  assert_true(ntp_hdr_parse(f->out, f->out_len, &h));
  assert_int_equal(h.mode, NTP_MODE_SERVER);
  assert_true(h.org == REQ_XMT);
  assert_true(h.rec == RX_TS);
  assert_true(h.xmt == TX_TS);
  return h;
}

/* ---- replies ------------------------------------------------------------ */

static void test_respond(void **state)
{
  fx *f = *state;
  plain_request(f, 4, NTP_MODE_CLIENT);
  /* The same answer with and without NTS service. */
  for (int with_keys = 0; with_keys < 2; with_keys++) {
    assert_serves(f, NTP_SERVE_ADMIT_OK, with_keys ? f->ks : NULL, NTP_SERVE_RESPOND);
    assert_int_equal(f->out_len, NTP_HDR_LEN);
    ntp_hdr h = out_header(f);
    assert_int_equal(h.stratum, 3);
    assert_int_equal(h.refid, sys_sync.refid);
  }
  assert_int_equal(f->rand_calls, 0); /* plain NTP asks for no random bytes */
  assert_false(ntp_serve_cookie(f->srv, &(nts_cookie_result){0}));
}

static void test_respond_nts(void **state)
{
  fx *f = *state;
  fx_session(f, f->ks);
  nts_request(f, 2);
  unsigned calls = f->rand_calls;
  assert_serves(f, NTP_SERVE_ADMIT_OK, f->ks, NTP_SERVE_RESPOND_NTS);
  assert_int_equal(f->rand_calls, calls + 1);
  assert_int_equal(f->out_len, f->req_len); /* no amplification */
  out_header(f);
  assert_int_equal(ntp_serve_cookies_made(f->srv), 3);
  nts_cookie_result cr;
  assert_true(ntp_serve_cookie(f->srv, &cr));
  assert_int_equal(cr, NTS_COOKIE_OK_CURRENT);
  unsigned got = 0;
  assert_int_equal(nts_ntp_client_response(f->cli, f->out, f->out_len, f->uid, sizeof(f->uid),
                                           &got),
                   NTS_NTP_CLI_OK);
  assert_int_equal(got, 3);
}

static void test_nts_request_without_keys_gets_plain_answer(void **state)
{
  fx *f = *state;
  fx_session(f, f->ks);
  nts_request(f, 0);
  assert_serves(f, NTP_SERVE_ADMIT_OK, NULL, NTP_SERVE_RESPOND);
  assert_int_equal(f->out_len, NTP_HDR_LEN);
}

static void test_kod_rate(void **state)
{
  fx *f = *state;
  plain_request(f, 3, NTP_MODE_CLIENT);
  assert_serves(f, NTP_SERVE_ADMIT_KOD, f->ks, NTP_SERVE_KOD_RATE);
  assert_int_equal(f->out_len, NTP_HDR_LEN);
  ntp_hdr h = out_header(f);
  assert_int_equal(h.version, 3);
  assert_int_equal(h.stratum, 0);
  assert_int_equal(h.refid, NTP_REFID('R', 'A', 'T', 'E'));
  /* No kiss for a request that would not be answered. */
  plain_request(f, 4, NTP_MODE_SERVER);
  assert_serves(f, NTP_SERVE_ADMIT_KOD, f->ks, NTP_SERVE_DROP_RATE);
}

static void test_nts_nak(void **state)
{
  fx *f = *state;
  nts_keyset *other = keyset(2);
  fx_session(f, other); /* a cookie from a key the server never had */
  nts_request(f, 1);
  nts_keyset_free(other);
  assert_serves(f, NTP_SERVE_ADMIT_OK, f->ks, NTP_SERVE_NTS_NAK);
  ntp_hdr h = out_header(f);
  assert_int_equal(h.stratum, 0);
  assert_int_equal(h.refid, NTP_REFID('N', 'T', 'S', 'N'));
  assert_true(f->out_len < f->req_len);
  assert_int_equal(ntp_serve_nts_reason(f->srv), NTS_NTP_WHY_COOKIE);
  nts_cookie_result cr;
  assert_true(ntp_serve_cookie(f->srv, &cr));
  assert_int_equal(cr, NTS_COOKIE_UNKNOWN_KEY);
  assert_int_equal(nts_ntp_client_response(f->cli, f->out, f->out_len, f->uid, sizeof(f->uid),
                                           NULL),
                   NTS_NTP_CLI_NAK);
}

/* ---- drops -------------------------------------------------------------- */

static void test_header_drops(void **state)
{
  fx *f = *state;
  plain_request(f, 4, NTP_MODE_CLIENT);
  f->req_len = NTP_HDR_LEN - 1;
  assert_serves(f, NTP_SERVE_ADMIT_OK, f->ks, NTP_SERVE_DROP_SHORT);
  plain_request(f, 5, NTP_MODE_CLIENT);
  assert_serves(f, NTP_SERVE_ADMIT_OK, f->ks, NTP_SERVE_DROP_VERSION);
  plain_request(f, 0, NTP_MODE_CLIENT);
  assert_serves(f, NTP_SERVE_ADMIT_OK, f->ks, NTP_SERVE_DROP_VERSION);
  plain_request(f, 4, NTP_MODE_SERVER);
  assert_serves(f, NTP_SERVE_ADMIT_OK, f->ks, NTP_SERVE_DROP_MODE);
  plain_request(f, 4, NTP_MODE_CLIENT);
  f->req_len += 8; /* junk, not an extension field */
  assert_serves(f, NTP_SERVE_ADMIT_OK, f->ks, NTP_SERVE_DROP_MALFORMED);
  plain_request(f, 4, NTP_MODE_CLIENT);
  f->req[NTP_HDR_LEN + 3] = 1; /* key id 1, then a 16-byte digest */
  f->req_len += 20;
  assert_serves(f, NTP_SERVE_ADMIT_OK, f->ks, NTP_SERVE_DROP_AUTH);
  for (size_t i = 0; i < NTP_HDR_LEN; i++)
    assert_int_equal(f->out[i], 0xee); /* nothing leaks into the buffer on a drop... */
}

static void test_buffer_drops(void **state)
{
  fx *f = *state;
  plain_request(f, 4, NTP_MODE_CLIENT);
  assert_int_equal(serve_cap(f, NTP_SERVE_ADMIT_OK, NULL, NTP_HDR_LEN - 1),
                   NTP_SERVE_DROP_BUFFER);
  /* An authentic request whose response cannot hold one cookie: phase 1
   * accepts it, the seal after the stamp fails. */
  fx_session(f, f->ks);
  nts_request(f, 0);
  assert_int_equal(serve_cap(f, NTP_SERVE_ADMIT_OK, f->ks, NTP_HDR_LEN + 64),
                   NTP_SERVE_DROP_BUFFER);
  /* NTS keys but no random source: no response can be sealed. */
  fx_session(f, f->ks);
  nts_request(f, 0);
  ntp_serve_in in = {.req = f->req, .len = f->req_len, .rx = RX_TS, .sys = &sys_sync,
                     .keys = f->ks};
  assert_int_equal(ntp_serve_request(f->srv, &in, f->out, sizeof(f->out)),
                   NTP_SERVE_DROP_BUFFER);
  assert_int_equal(ntp_serve_finish(f->srv, TX_TS, f->out, sizeof(f->out), &f->out_len),
                   NTP_SERVE_DROP_BUFFER);
  assert_int_equal(f->out_len, 0);
}

static void test_admission_drops(void **state)
{
  fx *f = *state;
  plain_request(f, 4, NTP_MODE_CLIENT);
  assert_serves(f, NTP_SERVE_ADMIT_IGNORE, f->ks, NTP_SERVE_DROP_IGNORE);
  assert_serves(f, NTP_SERVE_ADMIT_NOSERVE, f->ks, NTP_SERVE_DROP_NOSERVE);
  assert_serves(f, NTP_SERVE_ADMIT_LIMITED, f->ks, NTP_SERVE_DROP_RATE);
  /* Before any parsing: a garbage request gets the same verdicts. */
  f->req_len = 3;
  assert_serves(f, NTP_SERVE_ADMIT_IGNORE, f->ks, NTP_SERVE_DROP_IGNORE);
  assert_serves(f, NTP_SERVE_ADMIT_NOSERVE, f->ks, NTP_SERVE_DROP_NOSERVE);
}

static void test_nts_malformed(void **state)
{
  fx *f = *state;
  fx_session(f, f->ks);
  nts_request(f, 0);
  /* The Authenticator EF (last) renamed to an unknown type: no authenticator. */
  size_t auth = NTP_HDR_LEN;
  while (auth + 4 <= f->req_len) {
    size_t len = (size_t)f->req[auth + 2] << 8 | f->req[auth + 3];
    if (auth + len == f->req_len)
      break;
    auth += len;
  }
  assert_int_equal(f->req[auth] << 8 | f->req[auth + 1], NTP_EF_NTS_AUTH);
  f->req[auth] = 0x7f;
  assert_serves(f, NTP_SERVE_ADMIT_OK, f->ks, NTP_SERVE_DROP_NTS_MALFORMED);
  assert_int_equal(ntp_serve_nts_reason(f->srv), NTS_NTP_WHY_NO_AUTH);
  assert_false(ntp_serve_cookie(f->srv, &(nts_cookie_result){0})); /* not reached */
}

static void test_nts_auth(void **state)
{
  fx *f = *state;
  fx_session(f, f->ks);
  nts_request(f, 0);
  f->req[f->req_len - 1] ^= 1; /* the ciphertext (tag) */
  unsigned calls = f->rand_calls;
  assert_serves(f, NTP_SERVE_ADMIT_OK, f->ks, NTP_SERVE_DROP_NTS_AUTH);
  assert_int_equal(ntp_serve_nts_reason(f->srv), NTS_NTP_WHY_AUTH_FAIL);
  nts_cookie_result cr;
  assert_true(ntp_serve_cookie(f->srv, &cr)); /* opened, then the authenticator failed */
  assert_int_equal(cr, NTS_COOKIE_OK_CURRENT);
  assert_int_equal(f->rand_calls, calls);
}

/* ---- order, phases ------------------------------------------------------ */

/* Header checks come before any NTS cryptography: a valid NTS request sent
 * as mode 4 is a mode drop, and its cookie is never opened. */
static void test_header_before_nts(void **state)
{
  fx *f = *state;
  fx_session(f, f->ks);
  nts_request(f, 0);
  f->req[0] = (uint8_t)((f->req[0] & ~7u) | NTP_MODE_SERVER);
  assert_serves(f, NTP_SERVE_ADMIT_OK, f->ks, NTP_SERVE_DROP_MODE);
  assert_false(ntp_serve_cookie(f->srv, &(nts_cookie_result){0}));
  assert_int_equal(ntp_serve_nts_reason(f->srv), NTS_NTP_WHY_NONE);
}

/* finish works once per request, and not after a drop. */
static void test_finish_once(void **state)
{
  fx *f = *state;
  plain_request(f, 4, NTP_MODE_CLIENT);
  assert_serves(f, NTP_SERVE_ADMIT_OK, NULL, NTP_SERVE_RESPOND);
  assert_int_equal(ntp_serve_finish(f->srv, TX_TS, f->out, sizeof(f->out), &f->out_len),
                   NTP_SERVE_RESPOND);
  assert_int_equal(f->out_len, 0);
  plain_request(f, 4, NTP_MODE_SERVER);
  ntp_serve_in in = {.req = f->req, .len = f->req_len, .rx = RX_TS, .sys = &sys_sync};
  assert_int_equal(ntp_serve_request(f->srv, &in, f->out, sizeof(f->out)), NTP_SERVE_DROP_MODE);
  assert_int_equal(ntp_serve_finish(f->srv, TX_TS, f->out, sizeof(f->out), &f->out_len),
                   NTP_SERVE_DROP_MODE);
  assert_int_equal(f->out_len, 0);
}

/* The transmit timestamp is the one given to finish, and the NTS
 * authenticator covers it: the client refuses a response re-stamped after
 * the seal. */
static void test_seal_covers_stamp(void **state)
{
  fx *f = *state;
  fx_session(f, f->ks);
  nts_request(f, 0);
  assert_serves(f, NTP_SERVE_ADMIT_OK, f->ks, NTP_SERVE_RESPOND_NTS);
  ntp_hdr_set_xmt(f->out, TX_TS + 1);
  assert_int_equal(nts_ntp_client_response(f->cli, f->out, f->out_len, f->uid, sizeof(f->uid),
                                           NULL),
                   NTS_NTP_CLI_BAD_AUTH);
}

/* ---- admission ---------------------------------------------------------- */

static void test_admission(void **state)
{
  (void)state;
  ntp_acl *acl = ntp_acl_create();
  assert_non_null(acl);
  static const uint8_t net[4] = {192, 0, 2, 0}, a_ign[4] = {192, 0, 2, 1},
                       a_nos[4] = {192, 0, 2, 2}, a_lim[4] = {192, 0, 2, 3},
                       a_kod[4] = {192, 0, 2, 4}, other[4] = {203, 0, 113, 1};
  assert_true(ntp_acl_set(acl, ACL_INET, net, 24, 0, false));
  assert_true(ntp_acl_set(acl, ACL_INET, a_ign, 32, ACL_IGNORE | ACL_NOSERVE, false));
  assert_true(ntp_acl_set(acl, ACL_INET, a_nos, 32, ACL_NOSERVE | ACL_LIMITED, false));
  assert_true(ntp_acl_set(acl, ACL_INET, a_lim, 32, ACL_LIMITED, false));
  assert_true(ntp_acl_set(acl, ACL_INET, a_kod, 32, ACL_LIMITED | ACL_KOD, false));
  uint8_t key[16] = {0};
  ntp_ratelimit *rl = ntp_rl_create(64, 8.0, 0.0, 2, key);
  assert_non_null(rl);
  assert_int_equal(ntp_serve_admission(acl, rl, ACL_INET, a_ign, 0), NTP_SERVE_ADMIT_IGNORE);
  assert_int_equal(ntp_serve_admission(acl, rl, ACL_INET, a_nos, 0), NTP_SERVE_ADMIT_NOSERVE);
  assert_int_equal(ntp_serve_admission(acl, NULL, ACL_INET, a_lim, 0), NTP_SERVE_ADMIT_OK);
  assert_int_equal(ntp_serve_admission(NULL, rl, ACL_INET, other, 0), NTP_SERVE_ADMIT_OK);
  ntp_serve_admit last_lim = NTP_SERVE_ADMIT_OK;
  unsigned kisses = 0;
  for (int i = 0; i < 5; i++) { /* a burst of 2, then limited */
    last_lim = ntp_serve_admission(acl, rl, ACL_INET, a_lim, 1.0);
    kisses += ntp_serve_admission(acl, rl, ACL_INET, a_kod, 1.0) == NTP_SERVE_ADMIT_KOD;
    assert_int_equal(ntp_serve_admission(acl, rl, ACL_INET, other, 1.0), NTP_SERVE_ADMIT_OK);
  }
  assert_int_equal(last_lim, NTP_SERVE_ADMIT_LIMITED);
  assert_int_equal(kisses, 1); /* one kiss per `average` interval */
  ntp_rl_destroy(rl);
  ntp_acl_destroy(acl);
}

/* ---- names and counters ------------------------------------------------- */

static void test_names_and_keys(void **state)
{
  (void)state;
  for (int a = 0; a < NTP_SERVE_RESULT_COUNT; a++) {
    ntp_serve_result r = (ntp_serve_result)a;
    assert_string_not_equal(ntp_serve_result_name(r), "?");
    for (int b = 0; b < a; b++)
      assert_string_not_equal(ntp_serve_result_name(r),
                              ntp_serve_result_name((ntp_serve_result)b));
    /* Every drop has a `dropped` key; of the replies only the kiss. */
    bool keyed = ntp_serve_dropped_key(r) != NULL;
    assert_int_equal(keyed, !ntp_serve_replies(r) || r == NTP_SERVE_KOD_RATE);
  }
  assert_string_equal(ntp_serve_result_name(NTP_SERVE_RESULT_COUNT), "?");
  assert_null(ntp_serve_dropped_key(NTP_SERVE_RESULT_COUNT));
  /* The keys `ntsctl server --json` has always had (docs/ntsctl.md). */
  static const char *const keys[] = {"short", "version", "mode", "malformed", "auth", "buffer",
                                     "restrict_ignore", "restrict_noserve", "rate_limited"};
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
    bool found = false;
    for (int r = 0; r < NTP_SERVE_RESULT_COUNT; r++) {
      const char *k = ntp_serve_dropped_key((ntp_serve_result)r);
      found = found || (k && strcmp(k, keys[i]) == 0);
    }
    assert_true(found);
  }
}

static void test_counters(void **state)
{
  fx *f = *state;
  ntp_serve_counters c = {0};
  plain_request(f, 4, NTP_MODE_CLIENT);
  ntp_serve_count(f->srv, serve(f, NTP_SERVE_ADMIT_KOD, NULL), &c);
  ntp_serve_count(f->srv, serve(f, NTP_SERVE_ADMIT_LIMITED, NULL), &c);
  ntp_serve_count(f->srv, serve(f, NTP_SERVE_ADMIT_OK, NULL), &c);
  fx_session(f, f->ks);
  nts_request(f, 4);
  ntp_serve_count(f->srv, serve(f, NTP_SERVE_ADMIT_OK, f->ks), &c);
  f->req[f->req_len - 1] ^= 1;
  ntp_serve_count(f->srv, serve(f, NTP_SERVE_ADMIT_OK, f->ks), &c);
  assert_int_equal(c.result[NTP_SERVE_KOD_RATE], 1);
  assert_int_equal(c.result[NTP_SERVE_DROP_RATE], 1);
  assert_int_equal(c.result[NTP_SERVE_RESPOND], 1);
  assert_int_equal(c.result[NTP_SERVE_RESPOND_NTS], 1);
  assert_int_equal(c.result[NTP_SERVE_DROP_NTS_AUTH], 1);
  assert_int_equal(ntp_serve_dropped(&c, "rate_limited"), 2); /* the kiss included */
  assert_int_equal(ntp_serve_dropped(&c, "nts_auth"), 1);
  assert_int_equal(ntp_serve_dropped(&c, "no such key"), 0);
  assert_int_equal(c.cookies_made, 5);
  assert_int_equal(c.cookies[NTS_COOKIE_OK_CURRENT], 2);
  assert_int_equal(c.nts_why[NTS_NTP_WHY_AUTH_FAIL], 1);
}

#define T(t) cmocka_unit_test_setup_teardown(t, fx_setup, fx_teardown)

int main(void)
{
  const struct CMUnitTest tests[] = {
      T(test_respond),
      T(test_respond_nts),
      T(test_nts_request_without_keys_gets_plain_answer),
      T(test_kod_rate),
      T(test_nts_nak),
      T(test_header_drops),
      T(test_buffer_drops),
      T(test_admission_drops),
      T(test_nts_malformed),
      T(test_nts_auth),
      T(test_header_before_nts),
      T(test_finish_once),
      T(test_seal_covers_stamp),
      T(test_admission),
      T(test_names_and_keys),
      T(test_counters),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
