/* nts_ke: NTS-KE negotiation for both ends. */
#include "proto/nts_ke.h"

#include <string.h>

/* ---- shared helpers ----------------------------------------------------- */

/* Copies a Server record body into out (NUL-terminated) if it is 1..255
 * bytes of printable ASCII without spaces: a host name or an address, and
 * nothing a log line or a resolver could trip over. */
static bool copy_server_name(const nts_ke_record *rec, char *out)
{
  if (rec->len < 1 || rec->len > NTS_KE_MAX_SERVER_NAME)
    return false;
  for (size_t i = 0; i < rec->len; i++) {
    if (rec->body[i] < 0x21 || rec->body[i] > 0x7e)
      return false;
  }
  memcpy(out, rec->body, rec->len);
  out[rec->len] = '\0';
  return true;
}

static bool valid_server_name(const char *s)
{
  size_t n = 0;
  while (n <= NTS_KE_MAX_SERVER_NAME && s[n] != '\0') {
    if ((unsigned char)s[n] < 0x21 || (unsigned char)s[n] > 0x7e)
      return false;
    n++;
  }
  return n >= 1 && n <= NTS_KE_MAX_SERVER_NAME;
}

/* A Port record: exactly one nonzero 16-bit value. */
static bool get_port(const nts_ke_record *rec, uint16_t *port)
{
  if (rec->len != 2)
    return false;
  *port = nts_ke_rec_u16_at(rec, 0);
  return *port != 0;
}

static bool list_contains(const uint16_t *list, size_t n, uint16_t v)
{
  for (size_t i = 0; i < n; i++) {
    if (list[i] == v)
      return true;
  }
  return false;
}

/* After End of Message: was it empty and the last thing in the message? */
typedef enum eom_check { EOM_OK, EOM_HAS_BODY, EOM_NOT_LAST } eom_check;

static eom_check check_eom(const nts_ke_iter *it, const nts_ke_record *rec)
{
  if (rec->len != 0)
    return EOM_HAS_BODY;
  return nts_ke_iter_left(it) != 0 ? EOM_NOT_LAST : EOM_OK;
}

/* ---- server side -------------------------------------------------------- */

static const char *const req_names[NTS_KE_REQ_STATUS_COUNT] = {
    [NTS_KE_REQ_OK] = "ok",
    [NTS_KE_REQ_NO_PROTOCOL] = "no_protocol",
    [NTS_KE_REQ_NO_AEAD] = "no_aead",
    [NTS_KE_REQ_MALFORMED] = "malformed",
    [NTS_KE_REQ_NO_EOM] = "no_eom",
    [NTS_KE_REQ_EOM_BODY] = "eom_body",
    [NTS_KE_REQ_AFTER_EOM] = "after_eom",
    [NTS_KE_REQ_UNKNOWN_CRITICAL] = "unknown_critical",
    [NTS_KE_REQ_NO_NEXT_PROTO] = "no_next_proto",
    [NTS_KE_REQ_DUP_NEXT_PROTO] = "dup_next_proto",
    [NTS_KE_REQ_BAD_NEXT_PROTO] = "bad_next_proto",
    [NTS_KE_REQ_NO_AEAD_RECORD] = "no_aead_record",
    [NTS_KE_REQ_DUP_AEAD] = "dup_aead",
    [NTS_KE_REQ_BAD_AEAD] = "bad_aead",
    [NTS_KE_REQ_FORBIDDEN] = "forbidden_record",
    [NTS_KE_REQ_BAD_SERVER] = "bad_server",
    [NTS_KE_REQ_DUP_SERVER] = "dup_server",
    [NTS_KE_REQ_BAD_PORT] = "bad_port",
    [NTS_KE_REQ_DUP_PORT] = "dup_port",
};

const char *nts_ke_req_status_name(nts_ke_req_status s)
{
  return (s >= 0 && s < NTS_KE_REQ_STATUS_COUNT && req_names[s]) ? req_names[s] : "?";
}

bool nts_ke_req_is_error(nts_ke_req_status s)
{
  return s != NTS_KE_REQ_OK && s != NTS_KE_REQ_NO_PROTOCOL && s != NTS_KE_REQ_NO_AEAD;
}

typedef struct req_state {
  bool seen_proto, seen_aead, seen_server, seen_port;
  bool ntpv4_offered;
  nts_ke_record aead; /* the client's list, kept to choose from at the end */
} req_state;

/* One record of a request other than End of Message.  NTS_KE_REQ_OK means
 * "fine so far". */
static nts_ke_req_status req_record(req_state *st, const nts_ke_record *rec,
                                    nts_ke_request_result *out)
{
  size_t n;
  switch (rec->type) {
  case NTS_KE_REC_NEXT_PROTO:
    if (st->seen_proto)
      return NTS_KE_REQ_DUP_NEXT_PROTO;
    st->seen_proto = true;
    /* RFC 8915 4.1.2: the request MUST list at least one protocol. */
    if (!nts_ke_rec_u16_count(rec, &n) || n == 0)
      return NTS_KE_REQ_BAD_NEXT_PROTO;
    for (size_t i = 0; i < n; i++)
      st->ntpv4_offered |= nts_ke_rec_u16_at(rec, i) == NTS_KE_PROTO_NTPV4;
    return NTS_KE_REQ_OK;
  case NTS_KE_REC_AEAD:
    if (st->seen_aead)
      return NTS_KE_REQ_DUP_AEAD;
    st->seen_aead = true;
    st->aead = *rec;
    /* RFC 8915 4.1.5: in requests the list MUST include at least one. */
    return (!nts_ke_rec_u16_count(rec, &n) || n == 0) ? NTS_KE_REQ_BAD_AEAD : NTS_KE_REQ_OK;
  case NTS_KE_REC_ERROR:
  case NTS_KE_REC_WARNING:
  case NTS_KE_REC_NEW_COOKIE:
    return NTS_KE_REQ_FORBIDDEN; /* clients MUST NOT send these */
  case NTS_KE_REC_SERVER:
    if (st->seen_server)
      return NTS_KE_REQ_DUP_SERVER;
    st->seen_server = true;
    return copy_server_name(rec, out->server_hint) ? NTS_KE_REQ_OK : NTS_KE_REQ_BAD_SERVER;
  case NTS_KE_REC_PORT:
    if (st->seen_port)
      return NTS_KE_REQ_DUP_PORT;
    st->seen_port = true;
    return get_port(rec, &out->port_hint) ? NTS_KE_REQ_OK : NTS_KE_REQ_BAD_PORT;
  case NTS_KE_REC_NTP_TCP_PORT:
    return NTS_KE_REQ_OK; /* a server's offer; nothing for us to do with it */
  default:
    return rec->critical ? NTS_KE_REQ_UNKNOWN_CRITICAL : NTS_KE_REQ_OK;
  }
}

/* The whole request was well formed: pick protocol and AEAD. */
static nts_ke_req_status req_decide(const req_state *st, const uint16_t *our_aeads,
                                    size_t n_aeads, nts_ke_request_result *out)
{
  if (!st->seen_proto)
    return NTS_KE_REQ_NO_NEXT_PROTO;
  if (!st->ntpv4_offered)
    return NTS_KE_REQ_NO_PROTOCOL;
  /* RFC 8915 4.1.5: with NTPv4 offered the AEAD record MUST be there. */
  if (!st->seen_aead)
    return NTS_KE_REQ_NO_AEAD_RECORD;
  out->next_proto = NTS_KE_PROTO_NTPV4;
  size_t n;
  (void)nts_ke_rec_u16_count(&st->aead, &n);
  for (size_t i = 0; i < n; i++) {
    uint16_t id = nts_ke_rec_u16_at(&st->aead, i);
    if (our_aeads && list_contains(our_aeads, n_aeads, id)) {
      out->aead = id;
      return NTS_KE_REQ_OK;
    }
  }
  return NTS_KE_REQ_NO_AEAD;
}

static nts_ke_req_status req_finish(nts_ke_request_result *out, nts_ke_req_status s)
{
  out->status = s;
  if (s == NTS_KE_REQ_UNKNOWN_CRITICAL)
    out->error_code = NTS_KE_ERR_UNRECOGNIZED_CRITICAL;
  else if (nts_ke_req_is_error(s))
    out->error_code = NTS_KE_ERR_BAD_REQUEST;
  if (s != NTS_KE_REQ_OK)
    out->aead = 0;
  if (s != NTS_KE_REQ_OK && s != NTS_KE_REQ_NO_AEAD)
    out->next_proto = 0;
  return s;
}

nts_ke_req_status nts_ke_server_parse_request(const uint8_t *msg, size_t len,
                                              const uint16_t *our_aeads, size_t n_aeads,
                                              nts_ke_request_result *out)
{
  memset(out, 0, sizeof(*out));
  req_state st = {0};
  nts_ke_iter it;
  nts_ke_record rec;
  nts_ke_iter_init(&it, msg, len);
  for (;;) {
    nts_ke_iter_status is = nts_ke_iter_next(&it, &rec);
    if (is == NTS_KE_ITER_MALFORMED)
      return req_finish(out, NTS_KE_REQ_MALFORMED);
    if (is == NTS_KE_ITER_END)
      return req_finish(out, NTS_KE_REQ_NO_EOM);
    if (rec.type == NTS_KE_REC_EOM)
      break;
    nts_ke_req_status s = req_record(&st, &rec, out);
    if (s != NTS_KE_REQ_OK)
      return req_finish(out, s);
  }
  switch (check_eom(&it, &rec)) {
  case EOM_HAS_BODY: return req_finish(out, NTS_KE_REQ_EOM_BODY);
  case EOM_NOT_LAST: return req_finish(out, NTS_KE_REQ_AFTER_EOM);
  case EOM_OK: break;
  }
  return req_finish(out, req_decide(&st, our_aeads, n_aeads, out));
}

static bool response_params_ok(const nts_ke_response_params *p)
{
  if (p->n_cookies < 1 || p->n_cookies > NTS_KE_MAX_COOKIES || p->cookie_len < 1 ||
      p->cookie_len > NTS_KE_MAX_COOKIE_LEN)
    return false;
  for (size_t i = 0; i < p->n_cookies; i++) {
    if (!p->cookies[i])
      return false;
  }
  return !p->server || valid_server_name(p->server);
}

/* Next Protocol and AEAD are critical (MUST and MAY); New Cookie is not;
 * Server and Port are, so that a client that does not know them fails
 * instead of talking to the wrong NTP server (RFC 8915 4.1.7/4.1.8: servers
 * MAY set the bit). */
size_t nts_ke_server_build_response(const nts_ke_response_params *p, uint8_t *buf,
                                    size_t cap)
{
  wire_wr w;
  wire_wr_init(&w, buf, cap);
  if (!p->protocol_ok) {
    nts_ke_put_u16_list(&w, true, NTS_KE_REC_NEXT_PROTO, NULL, 0);
  } else if (!p->aead_ok) {
    nts_ke_put_u16(&w, true, NTS_KE_REC_NEXT_PROTO, NTS_KE_PROTO_NTPV4);
    nts_ke_put_u16_list(&w, true, NTS_KE_REC_AEAD, NULL, 0);
  } else {
    if (!response_params_ok(p))
      return 0;
    nts_ke_put_u16(&w, true, NTS_KE_REC_NEXT_PROTO, NTS_KE_PROTO_NTPV4);
    nts_ke_put_u16(&w, true, NTS_KE_REC_AEAD, p->aead);
    for (size_t i = 0; i < p->n_cookies; i++)
      nts_ke_put_record(&w, false, NTS_KE_REC_NEW_COOKIE, p->cookies[i], p->cookie_len);
    if (p->server)
      nts_ke_put_record(&w, true, NTS_KE_REC_SERVER, (const uint8_t *)p->server,
                        strlen(p->server));
    if (p->port != 0)
      nts_ke_put_u16(&w, true, NTS_KE_REC_PORT, p->port);
    if (p->tcp_port != 0)
      nts_ke_put_u16(&w, false, NTS_KE_REC_NTP_TCP_PORT, p->tcp_port);
  }
  nts_ke_put_eom(&w);
  return wire_wr_ok(&w) ? wire_wr_len(&w) : 0;
}

size_t nts_ke_build_error(uint16_t code, uint8_t *buf, size_t cap)
{
  wire_wr w;
  wire_wr_init(&w, buf, cap);
  nts_ke_put_u16(&w, true, NTS_KE_REC_ERROR, code);
  nts_ke_put_eom(&w);
  return wire_wr_ok(&w) ? wire_wr_len(&w) : 0;
}

/* ---- client side -------------------------------------------------------- */

size_t nts_ke_client_build_request(const uint16_t *aeads, size_t n, uint8_t *buf,
                                   size_t cap)
{
  if (n == 0 || !aeads)
    return 0;
  wire_wr w;
  wire_wr_init(&w, buf, cap);
  nts_ke_put_u16(&w, true, NTS_KE_REC_NEXT_PROTO, NTS_KE_PROTO_NTPV4);
  nts_ke_put_u16_list(&w, true, NTS_KE_REC_AEAD, aeads, n);
  nts_ke_put_eom(&w);
  return wire_wr_ok(&w) ? wire_wr_len(&w) : 0;
}

static const char *const resp_names[NTS_KE_RESP_STATUS_COUNT] = {
    [NTS_KE_RESP_OK] = "ok",
    [NTS_KE_RESP_SERVER_ERROR] = "server_error",
    [NTS_KE_RESP_WARNING] = "warning",
    [NTS_KE_RESP_MALFORMED] = "malformed",
    [NTS_KE_RESP_NO_EOM] = "no_eom",
    [NTS_KE_RESP_EOM_BODY] = "eom_body",
    [NTS_KE_RESP_AFTER_EOM] = "after_eom",
    [NTS_KE_RESP_UNKNOWN_CRITICAL] = "unknown_critical",
    [NTS_KE_RESP_BAD_ERROR] = "bad_error_record",
    [NTS_KE_RESP_NO_NEXT_PROTO] = "no_next_proto",
    [NTS_KE_RESP_DUP_NEXT_PROTO] = "dup_next_proto",
    [NTS_KE_RESP_BAD_NEXT_PROTO] = "bad_next_proto",
    [NTS_KE_RESP_NO_PROTOCOL] = "no_protocol",
    [NTS_KE_RESP_WRONG_PROTOCOL] = "wrong_protocol",
    [NTS_KE_RESP_NO_AEAD_RECORD] = "no_aead_record",
    [NTS_KE_RESP_DUP_AEAD] = "dup_aead",
    [NTS_KE_RESP_BAD_AEAD] = "bad_aead",
    [NTS_KE_RESP_NO_AEAD] = "no_aead",
    [NTS_KE_RESP_AEAD_NOT_OFFERED] = "aead_not_offered",
    [NTS_KE_RESP_NO_COOKIES] = "no_cookies",
    [NTS_KE_RESP_BAD_COOKIE] = "bad_cookie",
    [NTS_KE_RESP_COOKIE_LEN] = "cookie_len_mismatch",
    [NTS_KE_RESP_BAD_SERVER] = "bad_server",
    [NTS_KE_RESP_DUP_SERVER] = "dup_server",
    [NTS_KE_RESP_BAD_PORT] = "bad_port",
    [NTS_KE_RESP_DUP_PORT] = "dup_port",
};

const char *nts_ke_resp_status_name(nts_ke_resp_status s)
{
  return (s >= 0 && s < NTS_KE_RESP_STATUS_COUNT && resp_names[s]) ? resp_names[s] : "?";
}

typedef struct resp_state {
  const uint16_t *offered;
  size_t n_offered;
  bool seen_proto, seen_aead, seen_server, seen_port;
  bool proto_empty, aead_empty;
  bool seen_tcp_port, tcp_port_bad; /* NTP TCP Port seen; malformed or repeated */
} resp_state;

static nts_ke_resp_status resp_next_proto(resp_state *st, const nts_ke_record *rec)
{
  size_t n;
  if (st->seen_proto)
    return NTS_KE_RESP_DUP_NEXT_PROTO;
  st->seen_proto = true;
  if (!nts_ke_rec_u16_count(rec, &n))
    return NTS_KE_RESP_BAD_NEXT_PROTO;
  /* The answer is a subset of our request, which offered only NTPv4. */
  for (size_t i = 0; i < n; i++) {
    if (nts_ke_rec_u16_at(rec, i) != NTS_KE_PROTO_NTPV4)
      return NTS_KE_RESP_WRONG_PROTOCOL;
  }
  st->proto_empty = (n == 0);
  return NTS_KE_RESP_OK;
}

static nts_ke_resp_status resp_aead(resp_state *st, const nts_ke_record *rec,
                                    nts_ke_session *out)
{
  size_t n;
  if (st->seen_aead)
    return NTS_KE_RESP_DUP_AEAD;
  st->seen_aead = true;
  /* RFC 8915 4.1.5: in responses at most one algorithm. */
  if (!nts_ke_rec_u16_count(rec, &n) || n > 1)
    return NTS_KE_RESP_BAD_AEAD;
  st->aead_empty = (n == 0);
  if (n == 0)
    return NTS_KE_RESP_OK;
  out->aead = nts_ke_rec_u16_at(rec, 0);
  if (!st->offered || !list_contains(st->offered, st->n_offered, out->aead))
    return NTS_KE_RESP_AEAD_NOT_OFFERED;
  return NTS_KE_RESP_OK;
}

static nts_ke_resp_status resp_cookie(const nts_ke_record *rec, nts_ke_session *out,
                                      size_t *n_seen)
{
  if (rec->len < 1 || rec->len > NTS_KE_MAX_COOKIE_LEN)
    return NTS_KE_RESP_BAD_COOKIE;
  if (*n_seen > 0 && rec->len != out->cookie_len)
    return NTS_KE_RESP_COOKIE_LEN;
  out->cookie_len = rec->len;
  if (out->n_cookies < NTS_KE_MAX_COOKIES)
    memcpy(out->cookies[out->n_cookies++], rec->body, rec->len);
  (*n_seen)++;
  return NTS_KE_RESP_OK;
}

/* NTP TCP Port: an offer, not a term of the session.  Malformed or repeated,
 * it is taken as not made rather than failing a KE whose UDP service is
 * fine. */
static void resp_tcp_port(resp_state *st, const nts_ke_record *rec, nts_ke_session *out)
{
  uint16_t port = 0;
  if (st->seen_tcp_port || !get_port(rec, &port))
    st->tcp_port_bad = true;
  st->seen_tcp_port = true;
  out->tcp_port = st->tcp_port_bad ? 0 : port;
}

/* One record of a response other than End of Message. */
static nts_ke_resp_status resp_record(resp_state *st, const nts_ke_record *rec,
                                      nts_ke_session *out, size_t *n_cookies_seen)
{
  switch (rec->type) {
  case NTS_KE_REC_ERROR:
    if (rec->len != 2)
      return NTS_KE_RESP_BAD_ERROR;
    out->error_code = nts_ke_rec_u16_at(rec, 0);
    return NTS_KE_RESP_SERVER_ERROR;
  case NTS_KE_REC_WARNING:
    if (rec->len != 2)
      return NTS_KE_RESP_BAD_ERROR;
    out->warning_code = nts_ke_rec_u16_at(rec, 0);
    return NTS_KE_RESP_WARNING;
  case NTS_KE_REC_NEXT_PROTO: return resp_next_proto(st, rec);
  case NTS_KE_REC_AEAD: return resp_aead(st, rec, out);
  case NTS_KE_REC_NEW_COOKIE: return resp_cookie(rec, out, n_cookies_seen);
  case NTS_KE_REC_SERVER:
    if (st->seen_server)
      return NTS_KE_RESP_DUP_SERVER;
    st->seen_server = true;
    return copy_server_name(rec, out->server) ? NTS_KE_RESP_OK : NTS_KE_RESP_BAD_SERVER;
  case NTS_KE_REC_PORT:
    if (st->seen_port)
      return NTS_KE_RESP_DUP_PORT;
    st->seen_port = true;
    return get_port(rec, &out->port) ? NTS_KE_RESP_OK : NTS_KE_RESP_BAD_PORT;
  case NTS_KE_REC_NTP_TCP_PORT:
    resp_tcp_port(st, rec, out);
    return NTS_KE_RESP_OK;
  default:
    return rec->critical ? NTS_KE_RESP_UNKNOWN_CRITICAL : NTS_KE_RESP_OK;
  }
}

static nts_ke_resp_status resp_decide(const resp_state *st, nts_ke_session *out)
{
  if (!st->seen_proto)
    return NTS_KE_RESP_NO_NEXT_PROTO;
  if (st->proto_empty)
    return NTS_KE_RESP_NO_PROTOCOL;
  out->next_proto = NTS_KE_PROTO_NTPV4;
  if (!st->seen_aead)
    return NTS_KE_RESP_NO_AEAD_RECORD;
  if (st->aead_empty)
    return NTS_KE_RESP_NO_AEAD;
  return out->n_cookies == 0 ? NTS_KE_RESP_NO_COOKIES : NTS_KE_RESP_OK;
}

/* Leaves nothing usable behind a failure but the codes that explain it. */
static nts_ke_resp_status resp_finish(nts_ke_session *out, nts_ke_resp_status s)
{
  if (s != NTS_KE_RESP_OK) {
    uint16_t error_code = out->error_code, warning_code = out->warning_code;
    memset(out, 0, sizeof(*out));
    out->error_code = error_code;
    out->warning_code = warning_code;
  }
  return s;
}

nts_ke_resp_status nts_ke_client_parse_response(const uint8_t *msg, size_t len,
                                                const uint16_t *offered_aeads, size_t n,
                                                nts_ke_session *out)
{
  memset(out, 0, sizeof(*out));
  resp_state st = {.offered = offered_aeads, .n_offered = n};
  size_t n_cookies_seen = 0;
  nts_ke_iter it;
  nts_ke_record rec;
  nts_ke_iter_init(&it, msg, len);
  for (;;) {
    nts_ke_iter_status is = nts_ke_iter_next(&it, &rec);
    if (is == NTS_KE_ITER_MALFORMED)
      return resp_finish(out, NTS_KE_RESP_MALFORMED);
    if (is == NTS_KE_ITER_END)
      return resp_finish(out, NTS_KE_RESP_NO_EOM);
    if (rec.type == NTS_KE_REC_EOM)
      break;
    nts_ke_resp_status s = resp_record(&st, &rec, out, &n_cookies_seen);
    if (s != NTS_KE_RESP_OK)
      return resp_finish(out, s);
  }
  switch (check_eom(&it, &rec)) {
  case EOM_HAS_BODY: return resp_finish(out, NTS_KE_RESP_EOM_BODY);
  case EOM_NOT_LAST: return resp_finish(out, NTS_KE_RESP_AFTER_EOM);
  case EOM_OK: break;
  }
  return resp_finish(out, resp_decide(&st, out));
}
