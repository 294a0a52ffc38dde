/* ntp_serve: the server's request -> response path. */
#include "proto/ntp_serve.h"

#include <stdlib.h>
#include <string.h>

#define KOD_RATE NTP_REFID('R', 'A', 'T', 'E')
#define KOD_NTSN NTP_REFID('N', 'T', 'S', 'N')

struct ntp_serve {
  nts_ntp_srv *nts;
  const nts_keyset *keys; /* borrowed from phase 1 to finish */
  ntp_serve_result pending; /* phase 1's outcome */
  bool armed;               /* finish has work to do */
  size_t len;               /* bytes of the response prepared */
  bool cookie_tried;
  nts_cookie_result cookie;
  nts_ntp_srv_reason why;
  unsigned cookies_made;
  uint8_t rand[NTS_NTP_SERVER_RAND_LEN]; /* nonces, wiped after finish */
};

/* ---- names ------------------------------------------------------------ */

static const struct {
  const char *name, *dropped;
} results[NTP_SERVE_RESULT_COUNT] = {
    [NTP_SERVE_RESPOND] = {"respond", NULL},
    [NTP_SERVE_RESPOND_NTS] = {"respond_nts", NULL},
    [NTP_SERVE_KOD_RATE] = {"kod_rate", "rate_limited"},
    [NTP_SERVE_NTS_NAK] = {"nts_nak", NULL},
    [NTP_SERVE_DROP_SHORT] = {"short", "short"},
    [NTP_SERVE_DROP_VERSION] = {"version", "version"},
    [NTP_SERVE_DROP_MODE] = {"mode", "mode"},
    [NTP_SERVE_DROP_MALFORMED] = {"malformed", "malformed"},
    [NTP_SERVE_DROP_AUTH] = {"auth", "auth"},
    [NTP_SERVE_DROP_BUFFER] = {"buffer", "buffer"},
    [NTP_SERVE_DROP_IGNORE] = {"restrict_ignore", "restrict_ignore"},
    [NTP_SERVE_DROP_NOSERVE] = {"restrict_noserve", "restrict_noserve"},
    [NTP_SERVE_DROP_RATE] = {"rate_limited", "rate_limited"},
    [NTP_SERVE_DROP_NTS_MALFORMED] = {"nts_malformed", "nts_malformed"},
    [NTP_SERVE_DROP_NTS_AUTH] = {"nts_auth", "nts_auth"},
};

static bool valid(ntp_serve_result r) { return r >= 0 && r < NTP_SERVE_RESULT_COUNT; }

const char *ntp_serve_result_name(ntp_serve_result r)
{
  return valid(r) && results[r].name ? results[r].name : "?";
}

const char *ntp_serve_dropped_key(ntp_serve_result r)
{
  return valid(r) ? results[r].dropped : NULL;
}

bool ntp_serve_replies(ntp_serve_result r)
{
  return r == NTP_SERVE_RESPOND || r == NTP_SERVE_RESPOND_NTS || r == NTP_SERVE_KOD_RATE ||
         r == NTP_SERVE_NTS_NAK;
}

/* ---- admission -------------------------------------------------------- */

ntp_serve_admit ntp_serve_admission(const ntp_acl *acl, ntp_ratelimit *rl, enum acl_family fam,
                                    const uint8_t *addr, double mono)
{
  uint32_t flags = acl ? ntp_acl_lookup(acl, fam, addr) : 0;
  if (flags & ACL_IGNORE)
    return NTP_SERVE_ADMIT_IGNORE;
  if (flags & ACL_NOSERVE)
    return NTP_SERVE_ADMIT_NOSERVE;
  if (!(flags & ACL_LIMITED) || !rl)
    return NTP_SERVE_ADMIT_OK;
  switch (ntp_rl_check(rl, fam, addr, mono, (flags & ACL_KOD) != 0)) {
  case NTP_RL_PASS:
    return NTP_SERVE_ADMIT_OK;
  case NTP_RL_LIMITED_KOD:
    return NTP_SERVE_ADMIT_KOD;
  default:
    return NTP_SERVE_ADMIT_LIMITED;
  }
}

/* ---- state ------------------------------------------------------------ */

ntp_serve *ntp_serve_create(void)
{
  ntp_serve *st = calloc(1, sizeof(*st));
  if (st && !(st->nts = nts_ntp_srv_create())) {
    free(st);
    return NULL;
  }
  return st;
}

void ntp_serve_destroy(ntp_serve *st)
{
  if (!st)
    return;
  nts_ntp_srv_destroy(st->nts);
  nts_wipe(st, sizeof(*st));
  free(st);
}

nts_ntp_srv_reason ntp_serve_nts_reason(const ntp_serve *st) { return st->why; }
unsigned ntp_serve_cookies_made(const ntp_serve *st) { return st->cookies_made; }

bool ntp_serve_cookie(const ntp_serve *st, nts_cookie_result *res)
{
  if (st->cookie_tried)
    *res = st->cookie;
  return st->cookie_tried;
}

/* ---- phase 1 ---------------------------------------------------------- */

static ntp_serve_result from_srv(ntp_srv_result r)
{
  switch (r) {
  case NTP_SRV_RESPOND:
    return NTP_SERVE_RESPOND;
  case NTP_SRV_DROP_SHORT:
    return NTP_SERVE_DROP_SHORT;
  case NTP_SRV_DROP_VERSION:
    return NTP_SERVE_DROP_VERSION;
  case NTP_SRV_DROP_MODE:
    return NTP_SERVE_DROP_MODE;
  case NTP_SRV_DROP_AUTH:
    return NTP_SERVE_DROP_AUTH;
  case NTP_SRV_DROP_MALFORMED:
    return NTP_SERVE_DROP_MALFORMED;
  default:
    return NTP_SERVE_DROP_BUFFER;
  }
}

/* A kiss (RATE, or NTSN before the NAK's field) to a request whose header
 * passed the checks; 0 if it does not fit. */
static size_t kiss(const ntp_serve_in *in, uint32_t code, uint8_t *out, size_t cap)
{
  return ntp_server_kod(in->req, in->len, code, in->rx, out, cap);
}

/* Everything but ADMIT_OK: a drop, or a RATE kiss if one is due and the
 * request is one we would answer. */
static ntp_serve_result refuse(ntp_serve *st, const ntp_serve_in *in, uint8_t *out, size_t cap)
{
  switch (in->admit) {
  case NTP_SERVE_ADMIT_NOSERVE:
    return NTP_SERVE_DROP_NOSERVE;
  case NTP_SERVE_ADMIT_LIMITED:
    return NTP_SERVE_DROP_RATE;
  case NTP_SERVE_ADMIT_KOD:
    st->len = kiss(in, KOD_RATE, out, cap);
    return st->len ? NTP_SERVE_KOD_RATE : NTP_SERVE_DROP_RATE;
  default:
    return NTP_SERVE_DROP_IGNORE;
  }
}

/* An authentic NTS request: the random bytes, and the new cookies sealed
 * now so that only the authenticator is left for after the stamp. */
static ntp_serve_result accept_nts(ntp_serve *st, const ntp_serve_in *in)
{
  if (in->rand)
    in->rand(in->rand_arg, st->rand, sizeof(st->rand));
  if (!in->rand ||
      !nts_ntp_server_make_cookies(st->nts, in->keys, st->rand, sizeof(st->rand))) {
    /* A finish that cannot succeed wipes the traffic keys now. */
    nts_ntp_server_finish(st->nts, in->keys, NULL, 0, 0, NULL, 0);
    return NTP_SERVE_DROP_BUFFER;
  }
  st->cookies_made = nts_ntp_srv_cookies(st->nts);
  return NTP_SERVE_RESPOND_NTS;
}

/* The NTS part of a request whose plain response is in out already. */
static ntp_serve_result serve_nts(ntp_serve *st, const ntp_serve_in *in, uint8_t *out,
                                  size_t cap)
{
  nts_ntp_srv_result r = nts_ntp_server_check(in->keys, in->req, in->len, st->nts);
  if (r == NTS_NTP_SRV_NOT_NTS)
    return NTP_SERVE_RESPOND;
  st->why = nts_ntp_srv_why(st->nts);
  st->cookie = nts_ntp_srv_cookie_result(st->nts);
  st->cookie_tried = st->why == NTS_NTP_WHY_COOKIE || nts_cookie_result_ok(st->cookie);
  switch (r) {
  case NTS_NTP_SRV_OK:
    return accept_nts(st, in);
  case NTS_NTP_SRV_NAK:
    st->len = kiss(in, KOD_NTSN, out, cap);
    st->len = st->len ? nts_ntp_server_nak(st->nts, out, st->len, cap) : 0;
    return st->len ? NTP_SERVE_NTS_NAK : NTP_SERVE_DROP_BUFFER;
  case NTS_NTP_SRV_DROP_AUTH:
    return NTP_SERVE_DROP_NTS_AUTH;
  default:
    return NTP_SERVE_DROP_NTS_MALFORMED;
  }
}

/* Cheap checks first: the admission decision, then the header and the
 * extension-field walk (ntp_server), then the NTS cryptography. */
static ntp_serve_result decide(ntp_serve *st, const ntp_serve_in *in, uint8_t *out, size_t cap)
{
  if (in->admit != NTP_SERVE_ADMIT_OK)
    return refuse(st, in, out, cap);
  ntp_srv_result r = ntp_server_prepare(in->req, in->len, in->sys, in->rx, out, cap, &st->len);
  if (r != NTP_SRV_RESPOND)
    return from_srv(r);
  return in->keys ? serve_nts(st, in, out, cap) : NTP_SERVE_RESPOND;
}

ntp_serve_result ntp_serve_request(ntp_serve *st, const ntp_serve_in *in, uint8_t *out,
                                   size_t cap)
{
  st->keys = in->keys;
  st->len = 0;
  st->cookie_tried = false;
  st->cookie = NTS_COOKIE_MALFORMED;
  st->why = NTS_NTP_WHY_NONE;
  st->cookies_made = 0;
  st->pending = decide(st, in, out, cap);
  st->armed = ntp_serve_replies(st->pending);
  if (!st->armed)
    st->len = 0;
  return st->pending;
}

/* ---- phase 2 ---------------------------------------------------------- */

ntp_serve_result ntp_serve_finish(ntp_serve *st, ntp_ts xmt, uint8_t *out, size_t cap,
                                  size_t *out_len)
{
  ntp_serve_result r = st->pending;
  *out_len = 0;
  if (!st->armed)
    return r;
  st->armed = false;
  ntp_server_finish(out, st->len, xmt);
  if (r == NTP_SERVE_RESPOND_NTS) {
    /* The authenticator covers the header, transmit timestamp included. */
    st->len = nts_ntp_server_finish(st->nts, st->keys, out, st->len, cap, st->rand,
                                    sizeof(st->rand));
    nts_wipe(st->rand, sizeof(st->rand));
    if (st->len == 0)
      r = st->pending = NTP_SERVE_DROP_BUFFER;
  }
  *out_len = st->len;
  return r;
}

/* ---- counters --------------------------------------------------------- */

void ntp_serve_count(const ntp_serve *st, ntp_serve_result r, ntp_serve_counters *c)
{
  if (!valid(r))
    return;
  c->result[r]++;
  nts_cookie_result cr;
  if (ntp_serve_cookie(st, &cr))
    c->cookies[cr]++;
  if (r == NTP_SERVE_NTS_NAK || r == NTP_SERVE_DROP_NTS_MALFORMED ||
      r == NTP_SERVE_DROP_NTS_AUTH)
    c->nts_why[st->why]++;
  if (r == NTP_SERVE_RESPOND_NTS)
    c->cookies_made += st->cookies_made;
}

uint64_t ntp_serve_dropped(const ntp_serve_counters *c, const char *key)
{
  uint64_t n = 0;
  for (int r = 0; r < NTP_SERVE_RESULT_COUNT; r++) {
    const char *k = results[r].dropped;
    if (k && strcmp(k, key) == 0)
      n += c->result[r];
  }
  return n;
}
