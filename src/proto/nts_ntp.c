/* nts_ntp: NTS extension fields for NTPv4 (RFC 8915 section 5). */
#include "proto/nts_ntp.h"

#include <stdlib.h>
#include <string.h>

#include "proto/ntp_ef.h"
#include "proto/wire.h"

#define PAD4(n) (((size_t)(n) + 3) & ~(size_t)3)
#define EF_HDR 4   /* type, length */
#define AUTH_HDR 4 /* nonce length, ciphertext length */
/* RFC 8915 5.6: the nonce with its padding and any additional padding must
 * fill at least N_REQ = min(16, N_MAX) bytes, rounded up to 4.  AES-SIV has
 * no practical N_MAX, so 16: a request is never smaller than the response
 * the server builds with its 16-byte nonce. */
#define AUTH_NONCE_ROOM 16
/* The smallest Authenticator EF we build: empty plaintext, 16-byte nonce. */
#define AUTH_EF_MIN (EF_HDR + AUTH_HDR + NTS_NTP_NONCE_LEN + NTS_AEAD_TAG_LEN) /* 40 */
/* Fields of one datagram plus those of its plaintext: at most one per 16
 * bytes of each, and neither is longer than NTP_MAX_PKT. */
#define MAX_FIELDS (2 * NTP_MAX_PKT / NTP_EF_MIN_LEN)

typedef struct field_list {
  nts_ntp_field f[MAX_FIELDS];
  size_t n;
} field_list;

/* The Authenticator EF body, located but not yet verified. */
typedef struct auth_view {
  const uint8_t *nonce, *ct;
  size_t nonce_len, ct_len;
} auth_view;

/* What a walk over the packet found, for the server's checks. */
typedef struct req_scan {
  const nts_ntp_field *uid, *cookie, *auth;
  unsigned n_uid, n_cookie, n_auth, n_placeholder;
  bool placeholder_len_bad;
} req_scan;

struct nts_ntp_srv {
  nts_ntp_srv_reason why;
  nts_cookie_result cookie_res;
  bool ok;           /* checked: finish may run */
  bool cookies_made; /* pt holds n_cookies cookie EFs already */
  bool keyed;        /* keys/key may hold secrets */
  size_t pt_used;    /* bytes of pt to wipe */
  size_t req_len;
  size_t uid_len;    /* UID EF body (with padding) to echo; 0: none */
  uint8_t uid[NTS_NTP_MAX_UID_LEN];
  nts_cookie_keys keys; /* from the request's cookie, for the new cookies */
  nts_aead_key key;     /* C2S while checking, then S2C */
  unsigned n_cookies;
  size_t cookie_ef_len; /* of each new cookie's EF */
  field_list fields;
  uint8_t pt[NTP_MAX_PKT]; /* request plaintext, then response plaintext */
};

/* ---- names ------------------------------------------------------------ */

static const char *const zone_names[] = {
    [NTS_NTP_UNTRUSTED] = "untrusted",
    [NTS_NTP_AUTHENTICATED] = "authenticated",
    [NTS_NTP_ENCRYPTED] = "encrypted",
};

static const char *const srv_names[NTS_NTP_SRV_RESULT_COUNT] = {
    [NTS_NTP_SRV_NOT_NTS] = "not-nts",
    [NTS_NTP_SRV_OK] = "ok",
    [NTS_NTP_SRV_NAK] = "nak",
    [NTS_NTP_SRV_DROP_MALFORMED] = "malformed",
    [NTS_NTP_SRV_DROP_AUTH] = "auth",
};

static const char *const why_names[NTS_NTP_WHY_COUNT] = {
    [NTS_NTP_WHY_NONE] = "none",
    [NTS_NTP_WHY_TOO_LONG] = "too-long",
    [NTS_NTP_WHY_BAD_EF] = "bad-ef",
    [NTS_NTP_WHY_NO_UID] = "no-uid",
    [NTS_NTP_WHY_DUP_UID] = "dup-uid",
    [NTS_NTP_WHY_UID_LEN] = "uid-len",
    [NTS_NTP_WHY_NO_COOKIE] = "no-cookie",
    [NTS_NTP_WHY_DUP_COOKIE] = "dup-cookie",
    [NTS_NTP_WHY_PLACEHOLDER_LEN] = "placeholder-len",
    [NTS_NTP_WHY_NO_AUTH] = "no-auth",
    [NTS_NTP_WHY_AUTH_NOT_LAST] = "auth-not-last",
    [NTS_NTP_WHY_AUTH_FORMAT] = "auth-format",
    [NTS_NTP_WHY_COOKIE] = "cookie",
    [NTS_NTP_WHY_AUTH_FAIL] = "auth-fail",
    [NTS_NTP_WHY_PLAINTEXT] = "plaintext",
};

static const char *const cli_names[NTS_NTP_CLI_RESULT_COUNT] = {
    [NTS_NTP_CLI_OK] = "ok",
    [NTS_NTP_CLI_NAK] = "nak",
    [NTS_NTP_CLI_BAD_UID] = "bad-uid",
    [NTS_NTP_CLI_BAD_AUTH] = "bad-auth",
    [NTS_NTP_CLI_MALFORMED] = "malformed",
};

const char *nts_ntp_zone_name(nts_ntp_zone z)
{
  return ((unsigned)z < sizeof(zone_names) / sizeof(zone_names[0])) ? zone_names[z] : "?";
}

const char *nts_ntp_srv_result_name(nts_ntp_srv_result r)
{
  return ((unsigned)r < NTS_NTP_SRV_RESULT_COUNT) ? srv_names[r] : "?";
}

const char *nts_ntp_srv_reason_name(nts_ntp_srv_reason r)
{
  return ((unsigned)r < NTS_NTP_WHY_COUNT) ? why_names[r] : "?";
}

const char *nts_ntp_cli_result_name(nts_ntp_cli_result r)
{
  return ((unsigned)r < NTS_NTP_CLI_RESULT_COUNT) ? cli_names[r] : "?";
}

/* ---- fields and zones --------------------------------------------------- */

bool nts_ntp_field_is_new_cookie(const nts_ntp_field *f)
{
  return f->type == NTP_EF_NTS_COOKIE && f->zone == NTS_NTP_ENCRYPTED;
}

static bool add_field(field_list *fl, uint16_t type, nts_ntp_zone zone, size_t offset,
                      size_t len, const uint8_t *field)
{
  if (fl->n == MAX_FIELDS)
    return false;
  nts_ntp_field *f = &fl->f[fl->n++];
  f->type = type;
  f->zone = zone;
  f->offset = offset;
  f->len = len;
  f->body = field + EF_HDR;
  f->body_len = len - EF_HDR;
  return true;
}

/* The datagram's fields, all untrusted until an authenticator verifies.
 * False if they do not parse (RFC 7822 rules, in ntp_ef). */
static bool walk_packet(const uint8_t *pkt, size_t len, field_list *fl)
{
  ntp_ef_iter it;
  ntp_ef ef;
  ntp_ef_status st;
  ntp_ef_iter_init(&it, pkt, len);
  while ((st = ntp_ef_next(&it, &ef)) == NTP_EF_FIELD)
    if (!add_field(fl, ef.type, NTS_NTP_UNTRUSTED, ef.offset, ef.len, pkt + ef.offset))
      return false;
  return st != NTP_EF_MALFORMED; /* a trailing MAC fails "authenticator last" later */
}

/* Fields inside a verified plaintext: the packet's format (length a
 * multiple of 4 and at least 16, as chrony's NEF_ParseSingleField), no MAC. */
static bool walk_plaintext(const uint8_t *pt, size_t len, field_list *fl)
{
  wire_rd r;
  wire_rd_init(&r, pt, len);
  while (wire_rd_left(&r) > 0) {
    size_t off = wire_rd_pos(&r);
    uint16_t type = wire_get_u16(&r);
    uint16_t flen = wire_get_u16(&r);
    if (!wire_rd_ok(&r) || flen < NTP_EF_MIN_LEN || (flen & 3) != 0 ||
        !wire_skip(&r, (size_t)flen - EF_HDR) ||
        !add_field(fl, type, NTS_NTP_ENCRYPTED, off, flen, pt + off))
      return false;
  }
  return true;
}

/* Once the authenticator at auth_offset verified, everything before it was
 * in its associated data. */
static void promote(field_list *fl, size_t auth_offset)
{
  for (size_t i = 0; i < fl->n; i++)
    if (fl->f[i].zone == NTS_NTP_UNTRUSTED && fl->f[i].offset < auth_offset)
      fl->f[i].zone = NTS_NTP_AUTHENTICATED;
}

static bool all_zero(const uint8_t *p, size_t n)
{
  uint8_t acc = 0;
  for (size_t i = 0; i < n; i++)
    acc |= p[i];
  return acc == 0;
}

/* Locates nonce and ciphertext in an Authenticator EF body (RFC 8915 5.6),
 * every length checked against the body before anything is decrypted.
 * need_room: the server's check that nonce and padding fill 16 bytes.  The
 * padding must be zero: the field is outside its own associated data, so
 * unchecked padding would be the one part of a packet an attacker could
 * change unnoticed. */
static bool parse_auth(const nts_ntp_field *f, bool need_room, auth_view *a)
{
  wire_rd r;
  wire_rd_init(&r, f->body, f->body_len);
  size_t nlen = wire_get_u16(&r);
  size_t clen = wire_get_u16(&r);
  if (!wire_rd_ok(&r) || nlen < NTS_AEAD_MIN_NONCE_LEN || clen < NTS_AEAD_TAG_LEN)
    return false;
  size_t used = AUTH_HDR + PAD4(nlen) + PAD4(clen);
  size_t room = PAD4(nlen) < AUTH_NONCE_ROOM ? AUTH_NONCE_ROOM : PAD4(nlen);
  if (used > f->body_len || (need_room && AUTH_HDR + room + PAD4(clen) > f->body_len))
    return false;
  a->nonce = f->body + AUTH_HDR;
  a->nonce_len = nlen;
  a->ct = a->nonce + PAD4(nlen);
  a->ct_len = clen;
  return all_zero(a->nonce + nlen, PAD4(nlen) - nlen) &&
         all_zero(a->ct + clen, f->body_len - AUTH_HDR - PAD4(nlen) - clen);
}

/* Appends an Authenticator EF sealing pt with k under AD = everything w
 * holds so far, zero-padded to at least min_len bytes (a multiple of 4). */
static bool put_auth_ef(wire_wr *w, const nts_aead_key *k, const uint8_t *nonce,
                        const uint8_t *pt, size_t pt_len, size_t min_len)
{
  size_t ad_len = wire_wr_len(w);
  size_t ct_len = NTS_AEAD_TAG_LEN + pt_len;
  size_t ef_len = EF_HDR + AUTH_HDR + PAD4(NTS_NTP_NONCE_LEN) + PAD4(ct_len);
  if (ef_len < min_len)
    ef_len = PAD4(min_len);
  if (ct_len > 0xffff || ef_len > 0xfffc) {
    w->err = true;
    return false;
  }
  wire_put_u16(w, NTP_EF_NTS_AUTH);
  wire_put_u16(w, (uint16_t)ef_len);
  wire_put_u16(w, NTS_NTP_NONCE_LEN);
  wire_put_u16(w, (uint16_t)ct_len);
  wire_put_bytes(w, nonce, NTS_NTP_NONCE_LEN);
  uint8_t *ct = wire_reserve(w, ct_len);
  wire_put_zeros(w, ef_len - (EF_HDR + AUTH_HDR + NTS_NTP_NONCE_LEN + ct_len));
  size_t n = 0;
  if (!ct || !wire_wr_ok(w) ||
      !nts_aead_seal(k, nonce, NTS_NTP_NONCE_LEN, w->buf, ad_len, pt, pt_len, ct, ct_len,
                     &n)) {
    w->err = true;
    return false;
  }
  return true;
}

/* An extension field of body_len zero bytes (a cookie placeholder). */
static void put_zero_ef(wire_wr *w, uint16_t type, size_t body_len)
{
  wire_put_u16(w, type);
  wire_put_u16(w, (uint16_t)(EF_HDR + body_len));
  wire_put_zeros(w, body_len);
}

/* ---- server ----------------------------------------------------------- */

nts_ntp_srv *nts_ntp_srv_create(void) { return calloc(1, sizeof(nts_ntp_srv)); }

/* Only when a cookie was opened: most requests are plain NTP, and this
 * runs for each of them. */
static void srv_wipe_keys(nts_ntp_srv *st)
{
  if (!st->keyed)
    return;
  nts_cookie_keys_wipe(&st->keys);
  nts_aead_key_wipe(&st->key);
  st->keyed = false;
}

void nts_ntp_srv_destroy(nts_ntp_srv *st)
{
  if (!st)
    return;
  nts_wipe(st, sizeof(*st));
  free(st);
}

nts_ntp_srv_reason nts_ntp_srv_why(const nts_ntp_srv *st) { return st->why; }
nts_cookie_result nts_ntp_srv_cookie_result(const nts_ntp_srv *st) { return st->cookie_res; }
uint16_t nts_ntp_srv_aead(const nts_ntp_srv *st) { return st->ok ? st->keys.aead_id : 0; }
unsigned nts_ntp_srv_cookies(const nts_ntp_srv *st) { return st->ok ? st->n_cookies : 0; }

static nts_ntp_srv_result srv_fail(nts_ntp_srv *st, nts_ntp_srv_result r,
                                   nts_ntp_srv_reason why)
{
  srv_wipe_keys(st);
  st->ok = false;
  st->why = why;
  return r;
}

static void scan_request(const field_list *fl, req_scan *s)
{
  memset(s, 0, sizeof(*s));
  for (size_t i = 0; i < fl->n; i++) {
    const nts_ntp_field *f = &fl->f[i];
    switch (f->type) {
    case NTP_EF_UNIQUE_ID:
      s->uid = s->n_uid++ ? s->uid : f;
      break;
    case NTP_EF_NTS_COOKIE:
      s->cookie = s->n_cookie++ ? s->cookie : f;
      break;
    case NTP_EF_NTS_COOKIE_PLACEHOLDER:
      s->n_placeholder++;
      break;
    case NTP_EF_NTS_AUTH:
      s->auth = s->n_auth++ ? s->auth : f;
      break;
    default: /* unknown fields are ignored (RFC 7822) */
      break;
    }
  }
  /* RFC 8915 5.5: a placeholder's body is as long as the cookie's. */
  for (size_t i = 0; i < fl->n && s->cookie; i++)
    if (fl->f[i].type == NTP_EF_NTS_COOKIE_PLACEHOLDER &&
        fl->f[i].body_len != s->cookie->body_len)
      s->placeholder_len_bad = true;
}

static bool is_nts_type(uint16_t type)
{
  return type == NTP_EF_NTS_COOKIE || type == NTP_EF_NTS_COOKIE_PLACEHOLDER ||
         type == NTP_EF_NTS_AUTH;
}

/* Longer than we build or accept for NTS: plain NTP (ntp_server's to judge)
 * unless it has NTS fields. */
static nts_ntp_srv_result long_request_result(const uint8_t *req, size_t len)
{
  ntp_ef_iter it;
  ntp_ef ef;
  ntp_ef_status st;
  bool nts = false;
  ntp_ef_iter_init(&it, req, len);
  while ((st = ntp_ef_next(&it, &ef)) == NTP_EF_FIELD)
    nts = nts || is_nts_type(ef.type);
  return (nts || st == NTP_EF_MALFORMED) ? NTS_NTP_SRV_DROP_MALFORMED : NTS_NTP_SRV_NOT_NTS;
}

/* Structure checks, cheapest first and before any cryptography. */
static nts_ntp_srv_reason check_structure(const req_scan *s, size_t len, auth_view *a)
{
  if (s->n_uid == 0)
    return NTS_NTP_WHY_NO_UID;
  if (s->n_uid > 1)
    return NTS_NTP_WHY_DUP_UID;
  if (s->uid->body_len < NTS_NTP_UID_LEN || s->uid->body_len > NTS_NTP_MAX_UID_LEN)
    return NTS_NTP_WHY_UID_LEN;
  if (s->n_cookie == 0)
    return NTS_NTP_WHY_NO_COOKIE;
  if (s->n_cookie > 1)
    return NTS_NTP_WHY_DUP_COOKIE;
  if (s->placeholder_len_bad)
    return NTS_NTP_WHY_PLACEHOLDER_LEN;
  if (s->n_auth == 0)
    return NTS_NTP_WHY_NO_AUTH;
  /* With two authenticators the first is not last either. */
  if (s->auth->offset + s->auth->len != len)
    return NTS_NTP_WHY_AUTH_NOT_LAST;
  if (!parse_auth(s->auth, true, a))
    return NTS_NTP_WHY_AUTH_FORMAT;
  return NTS_NTP_WHY_NONE;
}

/* Cookies the response can carry: at most `want`, and the response
 * (header, echoed UID EF, Authenticator EF with a 16-byte nonce and n cookie
 * EFs) within `room` bytes after the header. */
static unsigned cookies_that_fit(size_t room, size_t uid_ef, size_t cookie_ef, unsigned want)
{
  size_t base = uid_ef + AUTH_EF_MIN;
  if (room < base)
    return 0;
  size_t n = (room - base) / cookie_ef;
  return n < want ? (unsigned)n : want;
}

/* Decrypts the request's plaintext, parses its fields (unknown ones are
 * ignored; placeholders there count too, as in chrony). */
static nts_ntp_srv_reason verify_request(nts_ntp_srv *st, const uint8_t *req,
                                         const req_scan *s, const auth_view *a,
                                         unsigned *placeholders)
{
  size_t pt_len = 0;
  if (!nts_aead_key_set(&st->key, st->keys.aead_id, st->keys.c2s, st->keys.key_len) ||
      !nts_aead_open(&st->key, a->nonce, a->nonce_len, req, s->auth->offset, a->ct, a->ct_len,
                     st->pt, sizeof(st->pt), &pt_len))
    return NTS_NTP_WHY_AUTH_FAIL;
  size_t outer = st->fields.n;
  nts_ntp_srv_reason why =
      walk_plaintext(st->pt, pt_len, &st->fields) ? NTS_NTP_WHY_NONE : NTS_NTP_WHY_PLAINTEXT;
  for (size_t i = outer; why == NTS_NTP_WHY_NONE && i < st->fields.n; i++) {
    const nts_ntp_field *f = &st->fields.f[i];
    if (f->type != NTP_EF_NTS_COOKIE_PLACEHOLDER)
      continue;
    if (f->body_len != s->cookie->body_len)
      why = NTS_NTP_WHY_PLACEHOLDER_LEN;
    (*placeholders)++;
  }
  /* The fields point into st->pt; nothing reads them after this check. */
  nts_wipe(st->pt, pt_len);
  if (why == NTS_NTP_WHY_NONE)
    promote(&st->fields, s->auth->offset);
  return why;
}

nts_ntp_srv_result nts_ntp_server_check(const nts_keyset *ks, const uint8_t *req, size_t len,
                                        nts_ntp_srv *st)
{
  srv_wipe_keys(st); /* a previous check that was never finished */
  st->ok = st->cookies_made = false;
  st->why = NTS_NTP_WHY_NONE;
  st->cookie_res = NTS_COOKIE_MALFORMED;
  st->uid_len = st->n_cookies = 0;
  st->req_len = len;
  st->fields.n = 0;
  if (len < NTP_HDR_LEN)
    return srv_fail(st, NTS_NTP_SRV_NOT_NTS, NTS_NTP_WHY_NONE);
  if (len > NTP_MAX_PKT) { /* maybe more fields than the list holds */
    nts_ntp_srv_result r = long_request_result(req, len);
    return srv_fail(st, r, r == NTS_NTP_SRV_NOT_NTS ? NTS_NTP_WHY_NONE : NTS_NTP_WHY_TOO_LONG);
  }
  if (!walk_packet(req, len, &st->fields))
    return srv_fail(st, NTS_NTP_SRV_DROP_MALFORMED, NTS_NTP_WHY_BAD_EF);
  req_scan s;
  scan_request(&st->fields, &s);
  if (s.n_cookie == 0 && s.n_placeholder == 0 && s.n_auth == 0)
    return srv_fail(st, NTS_NTP_SRV_NOT_NTS, NTS_NTP_WHY_NONE);
  auth_view a;
  nts_ntp_srv_reason why = check_structure(&s, len, &a);
  if (why != NTS_NTP_WHY_NONE)
    return srv_fail(st, NTS_NTP_SRV_DROP_MALFORMED, why);
  /* From here on the UID is known: a NAK can echo it. */
  memcpy(st->uid, s.uid->body, s.uid->body_len);
  st->uid_len = s.uid->body_len;

  st->cookie_res = nts_cookie_open(ks, s.cookie->body, s.cookie->body_len, &st->keys);
  st->keyed = true;
  if (!nts_cookie_result_ok(st->cookie_res))
    return srv_fail(st, NTS_NTP_SRV_NAK, NTS_NTP_WHY_COOKIE);
  unsigned placeholders = s.n_placeholder;
  why = verify_request(st, req, &s, &a, &placeholders);
  if (why != NTS_NTP_WHY_NONE)
    return srv_fail(st, why == NTS_NTP_WHY_AUTH_FAIL ? NTS_NTP_SRV_DROP_AUTH
                                                     : NTS_NTP_SRV_DROP_MALFORMED, why);

  /* New cookies have the request cookie's AEAD, hence its length. */
  st->cookie_ef_len = EF_HDR + NTS_COOKIE_LEN(st->keys.key_len);
  unsigned want = placeholders < NTS_NTP_MAX_PLACEHOLDERS ? 1 + placeholders
                                                          : NTS_NTP_MAX_COOKIES;
  st->n_cookies = cookies_that_fit(len - NTP_HDR_LEN, EF_HDR + st->uid_len, st->cookie_ef_len,
                                   want);
  if (!nts_aead_key_set(&st->key, st->keys.aead_id, st->keys.s2c, st->keys.key_len))
    return srv_fail(st, NTS_NTP_SRV_DROP_AUTH, NTS_NTP_WHY_AUTH_FAIL);
  st->ok = true;
  return NTS_NTP_SRV_OK;
}

/* Seals cookies [0, n) into st->pt as NTS Cookie EFs, cookie i with the
 * nonce at rand + 16 + 16 i. */
static bool seal_cookies(nts_ntp_srv *st, const nts_keyset *ks, const uint8_t *rand,
                         size_t rand_len, unsigned n)
{
  if (!rand || rand_len < NTS_NTP_NONCE_LEN + (size_t)n * NTS_COOKIE_NONCE_LEN)
    return false;
  wire_wr w;
  wire_wr_init(&w, st->pt, sizeof(st->pt));
  st->pt_used = (size_t)n * st->cookie_ef_len;
  size_t clen = st->cookie_ef_len - EF_HDR;
  for (unsigned i = 0; i < n; i++) {
    wire_put_u16(&w, NTP_EF_NTS_COOKIE);
    wire_put_u16(&w, (uint16_t)st->cookie_ef_len);
    uint8_t *dst = wire_reserve(&w, clen);
    const uint8_t *nonce = rand + NTS_NTP_NONCE_LEN + (size_t)i * NTS_COOKIE_NONCE_LEN;
    if (!dst || nts_cookie_make(ks, st->keys.aead_id, st->keys.c2s, st->keys.s2c,
                                st->keys.key_len, nonce, dst, clen) != clen)
      return false;
  }
  return true;
}

bool nts_ntp_server_make_cookies(nts_ntp_srv *st, const nts_keyset *ks, const uint8_t *rand,
                                 size_t rand_len)
{
  if (!st->ok || st->cookies_made)
    return st->ok;
  st->cookies_made = seal_cookies(st, ks, rand, rand_len, st->n_cookies);
  return st->cookies_made;
}

size_t nts_ntp_server_finish(nts_ntp_srv *st, const nts_keyset *ks, uint8_t *resp,
                             size_t hdr_len, size_t cap, const uint8_t *rand, size_t rand_len)
{
  size_t out = 0;
  /* Exactly the request's length (a multiple of 4: all fields are), or
   * less if the buffer is smaller; never more. */
  size_t target = (st->req_len < cap ? st->req_len : cap) & ~(size_t)3;
  if (!st->ok || hdr_len < NTP_HDR_LEN || (hdr_len & 3) != 0 || hdr_len > target || !rand ||
      rand_len < NTS_NTP_NONCE_LEN)
    goto done;
  unsigned n = cookies_that_fit(target - hdr_len, EF_HDR + st->uid_len, st->cookie_ef_len,
                                st->n_cookies);
  if (n == 0 || (!st->cookies_made && !seal_cookies(st, ks, rand, rand_len, n)))
    goto done;
  wire_wr w;
  wire_wr_init(&w, resp, target);
  wire_reserve(&w, hdr_len); /* the header is already there */
  ntp_ef_append(&w, NTP_EF_UNIQUE_ID, st->uid, st->uid_len, NTP_EF_MIN_LEN);
  put_auth_ef(&w, &st->key, rand, st->pt, n * st->cookie_ef_len, target - wire_wr_len(&w));
  if (wire_wr_ok(&w))
    out = wire_wr_len(&w);
done:
  nts_wipe(st->pt, st->pt_used < sizeof(st->pt) ? st->pt_used : sizeof(st->pt));
  st->pt_used = 0;
  srv_wipe_keys(st);
  st->ok = st->cookies_made = false;
  return out;
}

size_t nts_ntp_server_nak(const nts_ntp_srv *st, uint8_t *resp, size_t hdr_len, size_t cap)
{
  if (st->uid_len == 0 || hdr_len < NTP_HDR_LEN || hdr_len > cap)
    return 0;
  wire_wr w;
  wire_wr_init(&w, resp, cap);
  wire_reserve(&w, hdr_len);
  ntp_ef_append(&w, NTP_EF_UNIQUE_ID, st->uid, st->uid_len, NTP_EF_MIN_LAST_LEN);
  return wire_wr_ok(&w) ? wire_wr_len(&w) : 0;
}

/* ---- client ----------------------------------------------------------- */

size_t nts_ntp_client_request(nts_client *c, const uint8_t *hdr, const uint8_t *uid,
                              size_t uid_len, const uint8_t nonce[NTS_NTP_NONCE_LEN],
                              unsigned placeholders, uint8_t *out, size_t cap)
{
  size_t clen = nts_client_cookie_len(c); /* of the next cookie; 0: jar empty */
  if (!nts_client_has_session(c) || clen == 0 || !hdr || !uid || !nonce || !out ||
      uid_len < NTS_NTP_UID_LEN || uid_len > NTS_NTP_MAX_UID_LEN)
    return 0;
  size_t cookie_ef = EF_HDR + PAD4(clen);
  if (cookie_ef < NTP_EF_MIN_LEN)
    cookie_ef = NTP_EF_MIN_LEN;
  unsigned p = placeholders < NTS_NTP_MAX_PLACEHOLDERS ? placeholders
                                                       : NTS_NTP_MAX_PLACEHOLDERS;
  while (p > 0 && (1 + (size_t)p) * cookie_ef > NTS_NTP_MAX_COOKIE_BYTES)
    p--;
  /* Everything is sized before the cookie leaves the jar. */
  size_t need =
      NTP_HDR_LEN + EF_HDR + PAD4(uid_len) + (1 + (size_t)p) * cookie_ef + AUTH_EF_MIN;
  if (need > cap)
    return 0;
  uint8_t cookie[NTS_KE_MAX_COOKIE_LEN];
  memmove(out, hdr, NTP_HDR_LEN);
  if (nts_client_take_cookie(c, cookie, sizeof(cookie)) != clen)
    return 0;
  wire_wr w;
  wire_wr_init(&w, out, cap);
  wire_reserve(&w, NTP_HDR_LEN);
  ntp_ef_append(&w, NTP_EF_UNIQUE_ID, uid, uid_len, NTP_EF_MIN_LEN);
  ntp_ef_append(&w, NTP_EF_NTS_COOKIE, cookie, clen, NTP_EF_MIN_LEN);
  for (unsigned i = 0; i < p; i++)
    put_zero_ef(&w, NTP_EF_NTS_COOKIE_PLACEHOLDER, cookie_ef - EF_HDR);
  put_auth_ef(&w, nts_client_c2s(c), nonce, NULL, 0, 0);
  nts_wipe(cookie, clen);
  if (!wire_wr_ok(&w) || !nts_client_set_pending(c, uid, uid_len))
    return 0;
  return wire_wr_len(&w);
}

/* The echoed identifier: the body is uid zero-padded to 4 bytes.  Not a
 * secret (it travels in the clear), so plain memcmp. */
static bool uid_matches(const nts_ntp_field *f, const uint8_t *uid, size_t uid_len)
{
  return f->body_len == PAD4(uid_len) && memcmp(f->body, uid, uid_len) == 0 &&
         all_zero(f->body + uid_len, f->body_len - uid_len);
}

static bool is_nts_nak(const uint8_t *resp, size_t len)
{
  ntp_hdr h;
  return ntp_hdr_parse(resp, len, &h) && ntp_kod_classify(&h) == NTP_KOD_NTSN;
}

static unsigned take_new_cookies(nts_client *c, const field_list *fl)
{
  unsigned n = 0;
  for (size_t i = 0; i < fl->n; i++)
    if (nts_ntp_field_is_new_cookie(&fl->f[i]) &&
        nts_client_add_cookie(c, fl->f[i].body, fl->f[i].body_len))
      n++;
  return n;
}

/* Verifies the authenticator and collects the encrypted fields into fl. */
static nts_ntp_cli_result open_response(nts_client *c, const uint8_t *resp,
                                        const nts_ntp_field *auth, field_list *fl,
                                        uint8_t *pt, size_t pt_cap, size_t *pt_len)
{
  auth_view a;
  if (!parse_auth(auth, false, &a))
    return NTS_NTP_CLI_MALFORMED;
  if (!nts_aead_open(nts_client_s2c(c), a.nonce, a.nonce_len, resp, auth->offset, a.ct,
                     a.ct_len, pt, pt_cap, pt_len))
    return NTS_NTP_CLI_BAD_AUTH;
  promote(fl, auth->offset);
  return walk_plaintext(pt, *pt_len, fl) ? NTS_NTP_CLI_OK : NTS_NTP_CLI_MALFORMED;
}

nts_ntp_cli_result nts_ntp_client_response(nts_client *c, const uint8_t *resp, size_t len,
                                           const uint8_t *uid, size_t uid_len,
                                           unsigned *new_cookies)
{
  if (new_cookies)
    *new_cookies = 0;
  field_list fl;
  fl.n = 0;
  if (len < NTP_HDR_LEN || len > NTP_MAX_PKT || !walk_packet(resp, len, &fl))
    return NTS_NTP_CLI_MALFORMED;
  const nts_ntp_field *id = NULL, *auth = NULL;
  unsigned n_id = 0, n_auth = 0;
  for (size_t i = 0; i < fl.n; i++) {
    if (fl.f[i].type == NTP_EF_UNIQUE_ID && n_id++ == 0)
      id = &fl.f[i];
    if (fl.f[i].type == NTP_EF_NTS_AUTH && n_auth++ == 0)
      auth = &fl.f[i];
  }
  if (n_id > 1)
    return NTS_NTP_CLI_MALFORMED;
  if (!id || !uid || !uid_matches(id, uid, uid_len) || !nts_client_is_pending(c, uid, uid_len))
    return NTS_NTP_CLI_BAD_UID;
  /* A NAK carries our identifier and no authenticator; anyone who saw the
   * request can forge one, so it changes nothing here. */
  if (!auth)
    return is_nts_nak(resp, len) ? NTS_NTP_CLI_NAK : NTS_NTP_CLI_BAD_AUTH;
  if (auth->offset + auth->len != len)
    return NTS_NTP_CLI_BAD_AUTH;
  uint8_t pt[NTP_MAX_PKT];
  size_t pt_len = 0;
  nts_ntp_cli_result r = open_response(c, resp, auth, &fl, pt, sizeof(pt), &pt_len);
  if (r == NTS_NTP_CLI_OK) {
    unsigned n = take_new_cookies(c, &fl);
    if (new_cookies)
      *new_cookies = n;
    nts_client_clear_pending(c); /* answered: a replay is BAD_UID */
  }
  nts_wipe(pt, pt_len);
  return r;
}

nts_client_tamper nts_ntp_client_tamper(const nts_client *c, nts_ntp_cli_result r,
                                        const uint8_t *resp, size_t len)
{
  if (r == NTS_NTP_CLI_MALFORMED)
    return NTS_TAMPER_MALFORMED;
  if (r == NTS_NTP_CLI_BAD_AUTH)
    return NTS_TAMPER_BAD_AUTH;
  if (r == NTS_NTP_CLI_NAK)
    return NTS_TAMPER_FORGED_NAK; /* asked only when an authentic answer followed */
  if (is_nts_nak(resp, len))
    return NTS_TAMPER_FORGED_NAK;
  field_list fl;
  fl.n = 0;
  if (len < NTP_HDR_LEN || len > NTP_MAX_PKT || !walk_packet(resp, len, &fl))
    return NTS_TAMPER_MALFORMED;
  for (size_t i = 0; i < fl.n; i++)
    if (fl.f[i].type == NTP_EF_UNIQUE_ID)
      return nts_client_was_sent(c, fl.f[i].body, fl.f[i].body_len) ? NTS_TAMPER_REPLAY
                                                                    : NTS_TAMPER_UNEXPECTED;
  return NTS_TAMPER_UNEXPECTED;
}
