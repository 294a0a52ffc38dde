/* Unit tests for src/proto/nts_ke: NTS-KE negotiation, both ends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/nts_ke.h"

/* Deterministic PRNG (splitmix64) so a failure replays. */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static size_t rng_below(size_t n) { return n ? (size_t)(rng_next() % n) : 0; }
static bool rng_bool(void) { return rng_next() & 1; }

static const uint16_t OURS[] = {NTS_KE_AEAD_AES_SIV_CMAC_512, NTS_KE_AEAD_AES_SIV_CMAC_256};
#define N_OURS 2
static const uint16_t OFFER[] = {NTS_KE_AEAD_AES_SIV_CMAC_256, NTS_KE_AEAD_AES_SIV_CMAC_512};
#define N_OFFER 2

typedef struct msg {
  uint8_t b[NTS_KE_MAX_MSG];
  wire_wr w;
} msg;

static void msg_init(msg *m)
{
  memset(m->b, 0xee, sizeof(m->b));
  wire_wr_init(&m->w, m->b, sizeof(m->b));
}

static size_t msg_len(const msg *m) { return wire_wr_len(&m->w); }

static void put_proto(msg *m, uint16_t proto)
{
  nts_ke_put_u16(&m->w, true, NTS_KE_REC_NEXT_PROTO, proto);
}

static void put_aeads(msg *m, const uint16_t *ids, size_t n)
{
  nts_ke_put_u16_list(&m->w, true, NTS_KE_REC_AEAD, ids, n);
}

static void put_aead(msg *m, uint16_t id) { put_aeads(m, &id, 1); }

static void put_str(msg *m, bool critical, uint16_t type, const char *s)
{
  nts_ke_put_record(&m->w, critical, type, (const uint8_t *)s, strlen(s));
}

static void put_cookies(msg *m, size_t n, size_t len)
{
  uint8_t c[NTS_KE_MAX_COOKIE_LEN + 1];
  for (size_t i = 0; i < n; i++) {
    memset(c, (int)(0xc0 + i), sizeof(c));
    nts_ke_put_record(&m->w, false, NTS_KE_REC_NEW_COOKIE, c, len);
  }
}

static void put_eom(msg *m)
{
  nts_ke_put_eom(&m->w);
  assert_true(wire_wr_ok(&m->w));
}

/* ---- server side -------------------------------------------------------- */

static nts_ke_request_result rq;

static nts_ke_req_status parse_req(const msg *m)
{
  nts_ke_req_status s = nts_ke_server_parse_request(m->b, msg_len(m), OURS, N_OURS, &rq);
  assert_int_equal(rq.status, s);
  return s;
}

/* A request with NTPv4 and the given AEAD list. */
static void req_with(msg *m, const uint16_t *ids, size_t n)
{
  msg_init(m);
  put_proto(m, NTS_KE_PROTO_NTPV4);
  put_aeads(m, ids, n);
  put_eom(m);
}

static void assert_req_error(const msg *m, nts_ke_req_status want, uint16_t code)
{
  assert_int_equal(parse_req(m), want);
  assert_true(nts_ke_req_is_error(want));
  assert_int_equal(rq.error_code, code);
  assert_int_equal(rq.aead, 0);
}

static void test_req_names(void **state)
{
  (void)state;
  for (int i = 0; i < NTS_KE_REQ_STATUS_COUNT; i++) {
    const char *name = nts_ke_req_status_name((nts_ke_req_status)i);
    assert_string_not_equal(name, "?");
    for (int j = 0; j < i; j++)
      assert_string_not_equal(name, nts_ke_req_status_name((nts_ke_req_status)j));
  }
  assert_string_equal(nts_ke_req_status_name(NTS_KE_REQ_STATUS_COUNT), "?");
  assert_false(nts_ke_req_is_error(NTS_KE_REQ_OK));
  assert_false(nts_ke_req_is_error(NTS_KE_REQ_NO_PROTOCOL));
  assert_false(nts_ke_req_is_error(NTS_KE_REQ_NO_AEAD));
  for (int i = NTS_KE_REQ_MALFORMED; i < NTS_KE_REQ_STATUS_COUNT; i++)
    assert_true(nts_ke_req_is_error((nts_ke_req_status)i));
}

static void test_req_client_built(void **state)
{
  (void)state;
  msg m;
  msg_init(&m);
  size_t n = nts_ke_client_build_request(OFFER, N_OFFER, m.b, sizeof(m.b));
  const uint8_t want[] = {0x80, 0x01, 0x00, 0x02, 0x00, 0x00, 0x80, 0x04, 0x00, 0x04,
                          0x00, 0x0f, 0x00, 0x11, 0x80, 0x00, 0x00, 0x00};
  assert_int_equal(n, sizeof(want));
  assert_memory_equal(m.b, want, sizeof(want));
  assert_int_equal(nts_ke_server_parse_request(m.b, n, OURS, N_OURS, &rq), NTS_KE_REQ_OK);
  assert_int_equal(rq.next_proto, NTS_KE_PROTO_NTPV4);
  assert_int_equal(rq.aead, NTS_KE_AEAD_AES_SIV_CMAC_256);
  assert_string_equal(rq.server_hint, "");
  assert_int_equal(rq.port_hint, 0);
  /* Too small a buffer, no AEADs. */
  for (size_t cap = 0; cap < sizeof(want); cap++)
    assert_int_equal(nts_ke_client_build_request(OFFER, N_OFFER, m.b, cap), 0);
  assert_int_equal(nts_ke_client_build_request(OFFER, 0, m.b, sizeof(m.b)), 0);
  assert_int_equal(nts_ke_client_build_request(NULL, 1, m.b, sizeof(m.b)), 0);
}

static void test_req_aead_preference(void **state)
{
  (void)state;
  msg m;
  const struct {
    uint16_t ids[3];
    size_t n;
    nts_ke_req_status st;
    uint16_t aead;
  } cases[] = {
      {{17, 15}, 2, NTS_KE_REQ_OK, 17},
      {{15, 17}, 2, NTS_KE_REQ_OK, 15},
      {{99, 15}, 2, NTS_KE_REQ_OK, 15},
      {{99, 16, 17}, 3, NTS_KE_REQ_OK, 17},
      {{15, 15}, 2, NTS_KE_REQ_OK, 15},
      {{99}, 1, NTS_KE_REQ_NO_AEAD, 0},
      {{16, 30, 0}, 3, NTS_KE_REQ_NO_AEAD, 0},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    req_with(&m, cases[i].ids, cases[i].n);
    assert_int_equal(parse_req(&m), cases[i].st);
    assert_int_equal(rq.aead, cases[i].aead);
    assert_int_equal(rq.next_proto, NTS_KE_PROTO_NTPV4);
  }
  /* Our own list only restricts, it does not reorder the client's. */
  const uint16_t only256[] = {15}, both[] = {17, 15};
  req_with(&m, both, 2);
  assert_int_equal(nts_ke_server_parse_request(m.b, msg_len(&m), only256, 1, &rq),
                   NTS_KE_REQ_OK);
  assert_int_equal(rq.aead, 15);
  assert_int_equal(nts_ke_server_parse_request(m.b, msg_len(&m), NULL, 0, &rq),
                   NTS_KE_REQ_NO_AEAD);
}

static void test_req_protocols(void **state)
{
  (void)state;
  msg m;
  /* NTPv4 among others. */
  const uint16_t protos[] = {0x8001, 0, 7};
  msg_init(&m);
  nts_ke_put_u16_list(&m.w, true, NTS_KE_REC_NEXT_PROTO, protos, 3);
  put_aead(&m, 15);
  put_eom(&m);
  assert_int_equal(parse_req(&m), NTS_KE_REQ_OK);
  assert_int_equal(rq.next_proto, 0);
  /* Only protocols we do not speak: no AEAD record needed. */
  msg_init(&m);
  put_proto(&m, 0x8001);
  put_eom(&m);
  assert_int_equal(parse_req(&m), NTS_KE_REQ_NO_PROTOCOL);
  assert_false(nts_ke_req_is_error(rq.status));
  /* ... but one that is there is still checked. */
  msg_init(&m);
  put_proto(&m, 3);
  put_aead(&m, 15);
  put_eom(&m);
  assert_int_equal(parse_req(&m), NTS_KE_REQ_NO_PROTOCOL);
  msg_init(&m);
  put_proto(&m, 3);
  put_aeads(&m, NULL, 0);
  put_eom(&m);
  assert_req_error(&m, NTS_KE_REQ_BAD_AEAD, NTS_KE_ERR_BAD_REQUEST);
}

static void test_req_structure_errors(void **state)
{
  (void)state;
  msg m;
  /* No Next Protocol. */
  msg_init(&m);
  put_aead(&m, 15);
  put_eom(&m);
  assert_req_error(&m, NTS_KE_REQ_NO_NEXT_PROTO, NTS_KE_ERR_BAD_REQUEST);
  /* No End of Message. */
  msg_init(&m);
  put_proto(&m, 0);
  put_aead(&m, 15);
  assert_req_error(&m, NTS_KE_REQ_NO_EOM, NTS_KE_ERR_BAD_REQUEST);
  /* Nothing at all. */
  assert_int_equal(nts_ke_server_parse_request(NULL, 0, OURS, N_OURS, &rq), NTS_KE_REQ_NO_EOM);
  /* End of Message with a body. */
  msg_init(&m);
  put_proto(&m, 0);
  put_aead(&m, 15);
  nts_ke_put_u16(&m.w, true, NTS_KE_REC_EOM, 0);
  assert_req_error(&m, NTS_KE_REQ_EOM_BODY, NTS_KE_ERR_BAD_REQUEST);
  /* A record after End of Message, or a stray byte. */
  req_with(&m, OFFER, 1);
  put_aead(&m, 15);
  assert_req_error(&m, NTS_KE_REQ_AFTER_EOM, NTS_KE_ERR_BAD_REQUEST);
  req_with(&m, OFFER, 1);
  wire_put_u8(&m.w, 0);
  assert_req_error(&m, NTS_KE_REQ_AFTER_EOM, NTS_KE_ERR_BAD_REQUEST);
  /* A record running past the end. */
  req_with(&m, OFFER, 1);
  m.b[3] = 0x40; /* Next Protocol claims 64 bytes of 18 */
  assert_req_error(&m, NTS_KE_REQ_MALFORMED, NTS_KE_ERR_BAD_REQUEST);
  /* Missing AEAD while NTPv4 is offered. */
  msg_init(&m);
  put_proto(&m, 0);
  put_eom(&m);
  assert_req_error(&m, NTS_KE_REQ_NO_AEAD_RECORD, NTS_KE_ERR_BAD_REQUEST);
}

static void test_req_duplicates(void **state)
{
  (void)state;
  msg m;
  msg_init(&m);
  put_proto(&m, 0);
  put_aead(&m, 15);
  put_proto(&m, 0);
  put_eom(&m);
  assert_req_error(&m, NTS_KE_REQ_DUP_NEXT_PROTO, NTS_KE_ERR_BAD_REQUEST);
  msg_init(&m);
  put_proto(&m, 0);
  put_aead(&m, 15);
  put_aead(&m, 15);
  put_eom(&m);
  assert_req_error(&m, NTS_KE_REQ_DUP_AEAD, NTS_KE_ERR_BAD_REQUEST);
  msg_init(&m);
  put_proto(&m, 0);
  put_aead(&m, 15);
  put_str(&m, false, NTS_KE_REC_SERVER, "a.example");
  put_str(&m, false, NTS_KE_REC_SERVER, "b.example");
  put_eom(&m);
  assert_req_error(&m, NTS_KE_REQ_DUP_SERVER, NTS_KE_ERR_BAD_REQUEST);
  msg_init(&m);
  put_proto(&m, 0);
  put_aead(&m, 15);
  nts_ke_put_u16(&m.w, false, NTS_KE_REC_PORT, 123);
  nts_ke_put_u16(&m.w, false, NTS_KE_REC_PORT, 123);
  put_eom(&m);
  assert_req_error(&m, NTS_KE_REQ_DUP_PORT, NTS_KE_ERR_BAD_REQUEST);
}

static void test_req_bad_lists(void **state)
{
  (void)state;
  msg m;
  const uint8_t odd[] = {0, 0, 0};
  /* Empty or odd Next Protocol. */
  msg_init(&m);
  nts_ke_put_u16_list(&m.w, true, NTS_KE_REC_NEXT_PROTO, NULL, 0);
  put_aead(&m, 15);
  put_eom(&m);
  assert_req_error(&m, NTS_KE_REQ_BAD_NEXT_PROTO, NTS_KE_ERR_BAD_REQUEST);
  msg_init(&m);
  nts_ke_put_record(&m.w, true, NTS_KE_REC_NEXT_PROTO, odd, 3);
  put_aead(&m, 15);
  put_eom(&m);
  assert_req_error(&m, NTS_KE_REQ_BAD_NEXT_PROTO, NTS_KE_ERR_BAD_REQUEST);
  /* Empty or odd AEAD. */
  req_with(&m, NULL, 0);
  assert_req_error(&m, NTS_KE_REQ_BAD_AEAD, NTS_KE_ERR_BAD_REQUEST);
  msg_init(&m);
  put_proto(&m, 0);
  const uint8_t odd15[] = {0, 15, 0};
  nts_ke_put_record(&m.w, true, NTS_KE_REC_AEAD, odd15, 3);
  put_eom(&m);
  assert_req_error(&m, NTS_KE_REQ_BAD_AEAD, NTS_KE_ERR_BAD_REQUEST);
}

static void test_req_forbidden_records(void **state)
{
  (void)state;
  msg m;
  const uint16_t types[] = {NTS_KE_REC_ERROR, NTS_KE_REC_WARNING, NTS_KE_REC_NEW_COOKIE};
  for (size_t i = 0; i < 3; i++) {
    for (int crit = 0; crit < 2; crit++) {
      msg_init(&m);
      put_proto(&m, 0);
      put_aead(&m, 15);
      nts_ke_put_u16(&m.w, crit, types[i], 1);
      put_eom(&m);
      assert_req_error(&m, NTS_KE_REQ_FORBIDDEN, NTS_KE_ERR_BAD_REQUEST);
    }
  }
}

static void test_req_hints(void **state)
{
  (void)state;
  msg m;
  /* Valid hints, critical or not, are recorded. */
  char name[NTS_KE_MAX_SERVER_NAME + 2];
  memset(name, 'a', sizeof(name));
  name[NTS_KE_MAX_SERVER_NAME] = '\0';
  for (int crit = 0; crit < 2; crit++) {
    msg_init(&m);
    put_str(&m, crit, NTS_KE_REC_SERVER, name);
    nts_ke_put_u16(&m.w, crit, NTS_KE_REC_PORT, 4123);
    put_proto(&m, 0);
    put_aead(&m, 17);
    put_eom(&m);
    assert_int_equal(parse_req(&m), NTS_KE_REQ_OK);
    assert_string_equal(rq.server_hint, name);
    assert_int_equal(rq.port_hint, 4123);
    assert_int_equal(rq.aead, 17);
  }
  /* Port without server is fine too. */
  msg_init(&m);
  put_proto(&m, 0);
  put_aead(&m, 15);
  nts_ke_put_u16(&m.w, false, NTS_KE_REC_PORT, 123);
  put_eom(&m);
  assert_int_equal(parse_req(&m), NTS_KE_REQ_OK);
  assert_int_equal(rq.port_hint, 123);
  assert_string_equal(rq.server_hint, "");

  /* Bad server names. */
  name[NTS_KE_MAX_SERVER_NAME] = 'a';
  name[NTS_KE_MAX_SERVER_NAME + 1] = '\0';
  const char *bad_names[] = {"", name, "a b", "tab\there", "caf\xc3\xa9", "del\x7f"};
  for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
    msg_init(&m);
    put_proto(&m, 0);
    put_aead(&m, 15);
    put_str(&m, false, NTS_KE_REC_SERVER, bad_names[i]);
    put_eom(&m);
    assert_req_error(&m, NTS_KE_REQ_BAD_SERVER, NTS_KE_ERR_BAD_REQUEST);
    assert_string_equal(rq.server_hint, "");
  }
  /* An embedded NUL. */
  msg_init(&m);
  put_proto(&m, 0);
  put_aead(&m, 15);
  nts_ke_put_record(&m.w, false, NTS_KE_REC_SERVER, (const uint8_t *)"a\0b", 3);
  put_eom(&m);
  assert_req_error(&m, NTS_KE_REQ_BAD_SERVER, NTS_KE_ERR_BAD_REQUEST);

  /* Bad ports: wrong length or 0. */
  const uint8_t port_bodies[][4] = {{0}, {0x01}, {0x01, 0x02, 0x03}, {0, 0}, {0, 123, 0, 123}};
  const size_t port_lens[] = {0, 1, 3, 2, 4};
  for (size_t i = 0; i < 5; i++) {
    msg_init(&m);
    put_proto(&m, 0);
    put_aead(&m, 15);
    nts_ke_put_record(&m.w, false, NTS_KE_REC_PORT, port_bodies[i], port_lens[i]);
    put_eom(&m);
    assert_req_error(&m, NTS_KE_REQ_BAD_PORT, NTS_KE_ERR_BAD_REQUEST);
  }
}

static void test_req_unknown_records(void **state)
{
  (void)state;
  msg m;
  /* Unknown non-critical records anywhere before End of Message: ignored. */
  msg_init(&m);
  nts_ke_put_record(&m.w, false, 0x4000, (const uint8_t *)"xyz", 3);
  put_proto(&m, 0);
  nts_ke_put_record(&m.w, false, 8, NULL, 0);
  put_aead(&m, 15);
  nts_ke_put_record(&m.w, false, 1024, NULL, 0); /* chrony's compliant-export */
  static const uint8_t junk[300];
  nts_ke_put_record(&m.w, false, 0x7fff, junk, sizeof(junk));
  put_eom(&m);
  assert_int_equal(parse_req(&m), NTS_KE_REQ_OK);
  /* The same with the critical bit: error 0. */
  const uint16_t unknown[] = {8, 1024, 0x4000, 0x7fff};
  for (size_t i = 0; i < 4; i++) {
    msg_init(&m);
    put_proto(&m, 0);
    put_aead(&m, 15);
    nts_ke_put_record(&m.w, true, unknown[i], NULL, 0);
    put_eom(&m);
    assert_req_error(&m, NTS_KE_REQ_UNKNOWN_CRITICAL, NTS_KE_ERR_UNRECOGNIZED_CRITICAL);
  }
}

/* The critical bit only matters for unrecognized types: a client that leaves
 * it off Next Protocol, AEAD or End of Message is still understood. */
static void test_req_known_without_critical(void **state)
{
  (void)state;
  msg m;
  msg_init(&m);
  nts_ke_put_u16(&m.w, false, NTS_KE_REC_NEXT_PROTO, 0);
  nts_ke_put_u16(&m.w, false, NTS_KE_REC_AEAD, 15);
  nts_ke_put_record(&m.w, false, NTS_KE_REC_EOM, NULL, 0);
  assert_int_equal(parse_req(&m), NTS_KE_REQ_OK);
  assert_int_equal(rq.aead, 15);
}

/* The first problem in record order decides. */
static void test_req_first_error_wins(void **state)
{
  (void)state;
  msg m;
  msg_init(&m);
  nts_ke_put_record(&m.w, true, 999, NULL, 0);
  put_proto(&m, 0);
  put_proto(&m, 0);
  put_eom(&m);
  assert_req_error(&m, NTS_KE_REQ_UNKNOWN_CRITICAL, NTS_KE_ERR_UNRECOGNIZED_CRITICAL);
  msg_init(&m);
  put_proto(&m, 0);
  put_proto(&m, 0);
  nts_ke_put_record(&m.w, true, 999, NULL, 0);
  put_eom(&m);
  assert_req_error(&m, NTS_KE_REQ_DUP_NEXT_PROTO, NTS_KE_ERR_BAD_REQUEST);
}

/* ---- building responses ------------------------------------------------- */

static uint8_t cookie_store[NTS_KE_MAX_COOKIES][NTS_KE_MAX_COOKIE_LEN];

static nts_ke_response_params ok_params(size_t n, size_t len)
{
  nts_ke_response_params p = {.protocol_ok = true, .aead_ok = true, .aead = 15};
  for (size_t i = 0; i < n && i < NTS_KE_MAX_COOKIES; i++) {
    for (size_t j = 0; j < NTS_KE_MAX_COOKIE_LEN; j++)
      cookie_store[i][j] = (uint8_t)(i * 31 + j);
    p.cookies[i] = cookie_store[i];
  }
  p.n_cookies = n;
  p.cookie_len = len;
  return p;
}

static nts_ke_session sess;

static nts_ke_resp_status parse_resp(const uint8_t *b, size_t len)
{
  return nts_ke_client_parse_response(b, len, OFFER, N_OFFER, &sess);
}

static void assert_session_matches(const nts_ke_response_params *p)
{
  assert_int_equal(sess.next_proto, NTS_KE_PROTO_NTPV4);
  assert_int_equal(sess.aead, p->aead);
  assert_int_equal(sess.n_cookies, p->n_cookies);
  assert_int_equal(sess.cookie_len, p->cookie_len);
  for (size_t i = 0; i < p->n_cookies; i++)
    assert_memory_equal(sess.cookies[i], p->cookies[i], p->cookie_len);
  assert_string_equal(sess.server, p->server ? p->server : "");
  assert_int_equal(sess.port, p->port);
  assert_int_equal(sess.tcp_port, p->tcp_port);
}

static void test_resp_roundtrip(void **state)
{
  (void)state;
  msg m;
  nts_ke_response_params p = ok_params(8, 100);
  p.server = "ntp1.example.net";
  p.port = 1123;
  size_t n = nts_ke_server_build_response(&p, m.b, sizeof(m.b));
  assert_int_equal(n, 6 + 6 + 8 * 104 + 4 + 16 + 6 + 4);
  assert_int_equal(parse_resp(m.b, n), NTS_KE_RESP_OK);
  assert_session_matches(&p);
  /* Without server and port; 17; a single cookie of maximum size. */
  p = ok_params(1, NTS_KE_MAX_COOKIE_LEN);
  p.aead = 17;
  n = nts_ke_server_build_response(&p, m.b, sizeof(m.b));
  assert_true(n > 0);
  assert_int_equal(parse_resp(m.b, n), NTS_KE_RESP_OK);
  assert_session_matches(&p);
  assert_string_equal(sess.server, "");
  assert_int_equal(sess.port, 0);
  /* The largest response we can build fits a KE message comfortably. */
  char name[NTS_KE_MAX_SERVER_NAME + 1];
  memset(name, 'n', NTS_KE_MAX_SERVER_NAME);
  name[NTS_KE_MAX_SERVER_NAME] = '\0';
  p = ok_params(NTS_KE_MAX_COOKIES, NTS_KE_MAX_COOKIE_LEN);
  p.server = name;
  p.port = 65535;
  n = nts_ke_server_build_response(&p, m.b, sizeof(m.b));
  assert_true(n > 0 && n < NTS_KE_MAX_MSG / 3);
  assert_int_equal(parse_resp(m.b, n), NTS_KE_RESP_OK);
  assert_session_matches(&p);
}

static void test_resp_critical_bits(void **state)
{
  (void)state;
  msg m;
  nts_ke_response_params p = ok_params(2, 16);
  p.server = "192.0.2.1";
  p.port = 4123;
  p.tcp_port = 4124;
  size_t n = nts_ke_server_build_response(&p, m.b, sizeof(m.b));
  nts_ke_iter it;
  nts_ke_record rec;
  nts_ke_iter_init(&it, m.b, n);
  const uint16_t want_type[] = {NTS_KE_REC_NEXT_PROTO, NTS_KE_REC_AEAD,
                                NTS_KE_REC_NEW_COOKIE, NTS_KE_REC_NEW_COOKIE,
                                NTS_KE_REC_SERVER,     NTS_KE_REC_PORT,
                                NTS_KE_REC_NTP_TCP_PORT, NTS_KE_REC_EOM};
  /* the NTP TCP Port record is ours: never critical, so others skip it */
  const bool want_crit[] = {true, true, false, false, true, true, false, true};
  for (size_t i = 0; i < 8; i++) {
    assert_int_equal(nts_ke_iter_next(&it, &rec), NTS_KE_ITER_RECORD);
    assert_int_equal(rec.type, want_type[i]);
    assert_int_equal(rec.critical, want_crit[i]);
  }
  assert_int_equal(nts_ke_iter_next(&it, &rec), NTS_KE_ITER_END);
}

static void test_resp_refusals(void **state)
{
  (void)state;
  msg m;
  nts_ke_response_params p = {.protocol_ok = false};
  size_t n = nts_ke_server_build_response(&p, m.b, sizeof(m.b));
  const uint8_t no_proto[] = {0x80, 0x01, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00};
  assert_int_equal(n, sizeof(no_proto));
  assert_memory_equal(m.b, no_proto, n);
  assert_int_equal(parse_resp(m.b, n), NTS_KE_RESP_NO_PROTOCOL);

  p = (nts_ke_response_params){.protocol_ok = true, .aead_ok = false};
  n = nts_ke_server_build_response(&p, m.b, sizeof(m.b));
  const uint8_t no_aead[] = {0x80, 0x01, 0x00, 0x02, 0x00, 0x00, 0x80, 0x04,
                             0x00, 0x00, 0x80, 0x00, 0x00, 0x00};
  assert_int_equal(n, sizeof(no_aead));
  assert_memory_equal(m.b, no_aead, n);
  assert_int_equal(parse_resp(m.b, n), NTS_KE_RESP_NO_AEAD);
  assert_int_equal(sess.n_cookies, 0);
}

static void test_resp_bad_params(void **state)
{
  (void)state;
  msg m;
  nts_ke_response_params p;
  p = ok_params(0, 100);
  assert_int_equal(nts_ke_server_build_response(&p, m.b, sizeof(m.b)), 0);
  p = ok_params(8, 100);
  p.n_cookies = 9;
  assert_int_equal(nts_ke_server_build_response(&p, m.b, sizeof(m.b)), 0);
  p = ok_params(8, 0);
  assert_int_equal(nts_ke_server_build_response(&p, m.b, sizeof(m.b)), 0);
  p = ok_params(8, NTS_KE_MAX_COOKIE_LEN + 1);
  assert_int_equal(nts_ke_server_build_response(&p, m.b, sizeof(m.b)), 0);
  p = ok_params(8, 100);
  p.cookies[7] = NULL;
  assert_int_equal(nts_ke_server_build_response(&p, m.b, sizeof(m.b)), 0);
  char name[NTS_KE_MAX_SERVER_NAME + 2];
  memset(name, 'x', sizeof(name) - 1);
  name[sizeof(name) - 1] = '\0';
  const char *bad_names[] = {"", "a b", "\x80", name};
  for (size_t i = 0; i < 4; i++) {
    p = ok_params(8, 100);
    p.server = bad_names[i];
    assert_int_equal(nts_ke_server_build_response(&p, m.b, sizeof(m.b)), 0);
  }
  /* Every buffer that is too small. */
  p = ok_params(3, 40);
  p.server = "s";
  p.port = 9;
  size_t full = nts_ke_server_build_response(&p, m.b, sizeof(m.b));
  assert_true(full > 0);
  for (size_t cap = 0; cap < full; cap++)
    assert_int_equal(nts_ke_server_build_response(&p, m.b, cap), 0);
  assert_int_equal(nts_ke_server_build_response(&p, m.b, full), full);
}

static void test_build_error(void **state)
{
  (void)state;
  uint8_t b[16];
  size_t n = nts_ke_build_error(NTS_KE_ERR_BAD_REQUEST, b, sizeof(b));
  const uint8_t want[] = {0x80, 0x02, 0x00, 0x02, 0x00, 0x01, 0x80, 0x00, 0x00, 0x00};
  assert_int_equal(n, sizeof(want));
  assert_memory_equal(b, want, n);
  for (size_t cap = 0; cap < sizeof(want); cap++)
    assert_int_equal(nts_ke_build_error(1, b, cap), 0);
  for (uint16_t code = 0; code < 4; code++) {
    n = nts_ke_build_error(code, b, sizeof(b));
    assert_int_equal(parse_resp(b, n), NTS_KE_RESP_SERVER_ERROR);
    assert_int_equal(sess.error_code, code);
    assert_int_equal(sess.n_cookies, 0);
  }
}

/* ---- client parsing ----------------------------------------------------- */

static void test_resp_names(void **state)
{
  (void)state;
  for (int i = 0; i < NTS_KE_RESP_STATUS_COUNT; i++) {
    const char *name = nts_ke_resp_status_name((nts_ke_resp_status)i);
    assert_string_not_equal(name, "?");
    for (int j = 0; j < i; j++)
      assert_string_not_equal(name, nts_ke_resp_status_name((nts_ke_resp_status)j));
  }
  assert_string_equal(nts_ke_resp_status_name(NTS_KE_RESP_STATUS_COUNT), "?");
  assert_string_equal(nts_ke_resp_status_name((nts_ke_resp_status)-1), "?");
}

static void assert_resp(const msg *m, nts_ke_resp_status want)
{
  nts_ke_resp_status got = parse_resp(m->b, msg_len(m));
  if (got != want)
    print_error("got %s, want %s\n", nts_ke_resp_status_name(got),
                nts_ke_resp_status_name(want));
  assert_int_equal(got, want);
  if (want != NTS_KE_RESP_OK) {
    assert_int_equal(sess.n_cookies, 0);
    assert_int_equal(sess.aead, 0);
  }
}

/* Standard response parts. */
static void resp_head(msg *m)
{
  msg_init(m);
  put_proto(m, 0);
  put_aead(m, 15);
}

static void test_resp_server_error_and_warning(void **state)
{
  (void)state;
  msg m;
  /* Error anywhere wins over what came before. */
  resp_head(&m);
  put_cookies(&m, 8, 100);
  nts_ke_put_u16(&m.w, true, NTS_KE_REC_ERROR, 2);
  put_eom(&m);
  assert_resp(&m, NTS_KE_RESP_SERVER_ERROR);
  assert_int_equal(sess.error_code, 2);
  msg_init(&m);
  nts_ke_put_u16(&m.w, true, NTS_KE_REC_ERROR, 0x9999);
  put_eom(&m);
  assert_resp(&m, NTS_KE_RESP_SERVER_ERROR);
  assert_int_equal(sess.error_code, 0x9999);
  /* Any warning fails: none are defined, unknown ones are errors. */
  resp_head(&m);
  put_cookies(&m, 8, 100);
  nts_ke_put_u16(&m.w, true, NTS_KE_REC_WARNING, 7);
  put_eom(&m);
  assert_resp(&m, NTS_KE_RESP_WARNING);
  assert_int_equal(sess.warning_code, 7);
  /* Error / Warning bodies must be 2 bytes. */
  const size_t lens[] = {0, 1, 3, 4};
  for (size_t i = 0; i < 4; i++) {
    for (uint16_t t = NTS_KE_REC_ERROR; t <= NTS_KE_REC_WARNING; t++) {
      msg_init(&m);
      nts_ke_put_record(&m.w, true, t, (const uint8_t *)"\0\1\0\1", lens[i]);
      put_eom(&m);
      assert_resp(&m, NTS_KE_RESP_BAD_ERROR);
    }
  }
}

static void test_resp_structure(void **state)
{
  (void)state;
  msg m;
  resp_head(&m);
  put_cookies(&m, 8, 100);
  assert_resp(&m, NTS_KE_RESP_NO_EOM);
  resp_head(&m);
  put_cookies(&m, 8, 100);
  nts_ke_put_u16(&m.w, true, NTS_KE_REC_EOM, 0);
  assert_resp(&m, NTS_KE_RESP_EOM_BODY);
  resp_head(&m);
  put_cookies(&m, 8, 100);
  put_eom(&m);
  put_cookies(&m, 1, 100);
  assert_resp(&m, NTS_KE_RESP_AFTER_EOM);
  resp_head(&m);
  put_cookies(&m, 8, 100);
  put_eom(&m);
  wire_put_u8(&m.w, 0);
  assert_resp(&m, NTS_KE_RESP_AFTER_EOM);
  /* Truncated record. */
  resp_head(&m);
  put_cookies(&m, 1, 100);
  m.w.pos -= 1;
  assert_resp(&m, NTS_KE_RESP_MALFORMED);
  assert_int_equal(nts_ke_client_parse_response(NULL, 0, OFFER, N_OFFER, &sess),
                   NTS_KE_RESP_NO_EOM);
  /* Unknown records: skipped without the critical bit, fatal with it. */
  resp_head(&m);
  nts_ke_put_record(&m.w, false, 0x4444, (const uint8_t *)"zz", 2);
  put_cookies(&m, 2, 64);
  nts_ke_put_record(&m.w, false, 1024, NULL, 0);
  put_eom(&m);
  assert_resp(&m, NTS_KE_RESP_OK);
  assert_int_equal(sess.n_cookies, 2);
  resp_head(&m);
  put_cookies(&m, 2, 64);
  nts_ke_put_record(&m.w, true, 1024, NULL, 0);
  put_eom(&m);
  assert_resp(&m, NTS_KE_RESP_UNKNOWN_CRITICAL);
  /* Known records without the critical bit are understood. */
  msg_init(&m);
  nts_ke_put_u16(&m.w, false, NTS_KE_REC_NEXT_PROTO, 0);
  nts_ke_put_u16(&m.w, false, NTS_KE_REC_AEAD, 17);
  put_cookies(&m, 1, 4);
  nts_ke_put_record(&m.w, false, NTS_KE_REC_SERVER, (const uint8_t *)"x", 1);
  nts_ke_put_u16(&m.w, false, NTS_KE_REC_PORT, 5);
  nts_ke_put_record(&m.w, false, NTS_KE_REC_EOM, NULL, 0);
  assert_resp(&m, NTS_KE_RESP_OK);
  assert_int_equal(sess.aead, 17);
  assert_string_equal(sess.server, "x");
  assert_int_equal(sess.port, 5);
}

static void test_resp_next_proto(void **state)
{
  (void)state;
  msg m;
  /* Missing. */
  msg_init(&m);
  put_aead(&m, 15);
  put_cookies(&m, 8, 100);
  put_eom(&m);
  assert_resp(&m, NTS_KE_RESP_NO_NEXT_PROTO);
  /* Duplicate. */
  resp_head(&m);
  put_proto(&m, 0);
  put_cookies(&m, 8, 100);
  put_eom(&m);
  assert_resp(&m, NTS_KE_RESP_DUP_NEXT_PROTO);
  /* Odd body. */
  msg_init(&m);
  nts_ke_put_record(&m.w, true, NTS_KE_REC_NEXT_PROTO, (const uint8_t *)"\0", 1);
  put_aead(&m, 15);
  put_cookies(&m, 8, 100);
  put_eom(&m);
  assert_resp(&m, NTS_KE_RESP_BAD_NEXT_PROTO);
  /* Empty: refused. */
  msg_init(&m);
  nts_ke_put_u16_list(&m.w, true, NTS_KE_REC_NEXT_PROTO, NULL, 0);
  put_eom(&m);
  assert_resp(&m, NTS_KE_RESP_NO_PROTOCOL);
  /* Something we did not offer, alone or next to NTPv4. */
  msg_init(&m);
  put_proto(&m, 1);
  put_aead(&m, 15);
  put_cookies(&m, 8, 100);
  put_eom(&m);
  assert_resp(&m, NTS_KE_RESP_WRONG_PROTOCOL);
  const uint16_t two[] = {0, 0x8001};
  msg_init(&m);
  nts_ke_put_u16_list(&m.w, true, NTS_KE_REC_NEXT_PROTO, two, 2);
  put_aead(&m, 15);
  put_cookies(&m, 8, 100);
  put_eom(&m);
  assert_resp(&m, NTS_KE_RESP_WRONG_PROTOCOL);
}

static void test_resp_aead(void **state)
{
  (void)state;
  msg m;
  /* Missing. */
  msg_init(&m);
  put_proto(&m, 0);
  put_cookies(&m, 8, 100);
  put_eom(&m);
  assert_resp(&m, NTS_KE_RESP_NO_AEAD_RECORD);
  /* Duplicate. */
  resp_head(&m);
  put_aead(&m, 15);
  put_cookies(&m, 8, 100);
  put_eom(&m);
  assert_resp(&m, NTS_KE_RESP_DUP_AEAD);
  /* Two IDs, or an odd body. */
  msg_init(&m);
  put_proto(&m, 0);
  put_aeads(&m, OFFER, 2);
  put_cookies(&m, 8, 100);
  put_eom(&m);
  assert_resp(&m, NTS_KE_RESP_BAD_AEAD);
  msg_init(&m);
  put_proto(&m, 0);
  nts_ke_put_record(&m.w, true, NTS_KE_REC_AEAD, (const uint8_t *)"\0\x0f\0", 3);
  put_cookies(&m, 8, 100);
  put_eom(&m);
  assert_resp(&m, NTS_KE_RESP_BAD_AEAD);
  /* Empty: nothing in common. */
  msg_init(&m);
  put_proto(&m, 0);
  put_aeads(&m, NULL, 0);
  put_eom(&m);
  assert_resp(&m, NTS_KE_RESP_NO_AEAD);
  /* One we did not offer. */
  msg_init(&m);
  put_proto(&m, 0);
  put_aead(&m, 16);
  put_cookies(&m, 8, 100);
  put_eom(&m);
  assert_resp(&m, NTS_KE_RESP_AEAD_NOT_OFFERED);
  /* 17 is fine only if offered. */
  msg_init(&m);
  put_proto(&m, 0);
  put_aead(&m, 17);
  put_cookies(&m, 8, 100);
  put_eom(&m);
  const uint16_t only256[] = {15};
  assert_int_equal(nts_ke_client_parse_response(m.b, msg_len(&m), only256, 1, &sess),
                   NTS_KE_RESP_AEAD_NOT_OFFERED);
  assert_int_equal(nts_ke_client_parse_response(m.b, msg_len(&m), NULL, 0, &sess),
                   NTS_KE_RESP_AEAD_NOT_OFFERED);
  assert_resp(&m, NTS_KE_RESP_OK);
}

static void test_resp_cookies(void **state)
{
  (void)state;
  msg m;
  /* None. */
  resp_head(&m);
  put_eom(&m);
  assert_resp(&m, NTS_KE_RESP_NO_COOKIES);
  /* Empty or oversized. */
  resp_head(&m);
  put_cookies(&m, 1, 0);
  put_eom(&m);
  assert_resp(&m, NTS_KE_RESP_BAD_COOKIE);
  resp_head(&m);
  put_cookies(&m, 1, NTS_KE_MAX_COOKIE_LEN + 1);
  put_eom(&m);
  assert_resp(&m, NTS_KE_RESP_BAD_COOKIE);
  /* Unequal lengths. */
  resp_head(&m);
  put_cookies(&m, 3, 100);
  put_cookies(&m, 1, 104);
  put_eom(&m);
  assert_resp(&m, NTS_KE_RESP_COOKIE_LEN);
  /* More than we keep: the first 8 are kept, the rest still checked. */
  resp_head(&m);
  put_cookies(&m, 12, 100);
  put_eom(&m);
  assert_resp(&m, NTS_KE_RESP_OK);
  assert_int_equal(sess.n_cookies, NTS_KE_MAX_COOKIES);
  for (size_t i = 0; i < NTS_KE_MAX_COOKIES; i++) {
    assert_int_equal(sess.cookies[i][0], 0xc0 + i);
    assert_int_equal(sess.cookies[i][99], 0xc0 + i);
  }
  resp_head(&m);
  put_cookies(&m, 10, 100);
  put_cookies(&m, 1, 99);
  put_eom(&m);
  assert_resp(&m, NTS_KE_RESP_COOKIE_LEN);
  /* Odd sizes are opaque and fine; critical cookies too. */
  resp_head(&m);
  uint8_t c[7] = {1, 2, 3, 4, 5, 6, 7};
  nts_ke_put_record(&m.w, true, NTS_KE_REC_NEW_COOKIE, c, 7);
  put_eom(&m);
  assert_resp(&m, NTS_KE_RESP_OK);
  assert_int_equal(sess.n_cookies, 1);
  assert_int_equal(sess.cookie_len, 7);
  assert_memory_equal(sess.cookies[0], c, 7);
}

static void test_resp_server_port(void **state)
{
  (void)state;
  msg m;
  resp_head(&m);
  put_cookies(&m, 8, 100);
  put_str(&m, true, NTS_KE_REC_SERVER, "2001:db8::1");
  nts_ke_put_u16(&m.w, true, NTS_KE_REC_PORT, 123);
  put_eom(&m);
  assert_resp(&m, NTS_KE_RESP_OK);
  assert_string_equal(sess.server, "2001:db8::1");
  assert_int_equal(sess.port, 123);

  char name[NTS_KE_MAX_SERVER_NAME + 2];
  memset(name, 'a', sizeof(name) - 1);
  name[sizeof(name) - 1] = '\0';
  const char *bad[] = {"", name, "a b", "x\n", "\x01", "\xff"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    resp_head(&m);
    put_cookies(&m, 8, 100);
    put_str(&m, true, NTS_KE_REC_SERVER, bad[i]);
    put_eom(&m);
    assert_resp(&m, NTS_KE_RESP_BAD_SERVER);
    assert_string_equal(sess.server, "");
  }
  resp_head(&m);
  put_cookies(&m, 8, 100);
  put_str(&m, true, NTS_KE_REC_SERVER, "a");
  put_str(&m, true, NTS_KE_REC_SERVER, "a");
  put_eom(&m);
  assert_resp(&m, NTS_KE_RESP_DUP_SERVER);

  const size_t port_lens[] = {0, 1, 3, 4};
  for (size_t i = 0; i < 4; i++) {
    resp_head(&m);
    put_cookies(&m, 8, 100);
    const uint8_t body[] = {0, 123, 0, 123};
    nts_ke_put_record(&m.w, true, NTS_KE_REC_PORT, body, port_lens[i]);
    put_eom(&m);
    assert_resp(&m, NTS_KE_RESP_BAD_PORT);
  }
  resp_head(&m);
  put_cookies(&m, 8, 100);
  nts_ke_put_u16(&m.w, true, NTS_KE_REC_PORT, 0);
  put_eom(&m);
  assert_resp(&m, NTS_KE_RESP_BAD_PORT);
  resp_head(&m);
  put_cookies(&m, 8, 100);
  nts_ke_put_u16(&m.w, true, NTS_KE_REC_PORT, 123);
  nts_ke_put_u16(&m.w, true, NTS_KE_REC_PORT, 124);
  put_eom(&m);
  assert_resp(&m, NTS_KE_RESP_DUP_PORT);
}

/* Our NTP TCP Port record: exact bytes, and an offer that a malformed or
 * repeated record withdraws without failing the exchange. */
static void test_resp_tcp_port(void **state)
{
  (void)state;
  msg m;
  nts_ke_response_params p = ok_params(8, 100);
  p.tcp_port = 4460;
  size_t n = nts_ke_server_build_response(&p, m.b, sizeof(m.b));
  const uint8_t rec[] = {0x4e, 0x54, 0x00, 0x02, 0x11, 0x6c, 0x80, 0x00, 0x00, 0x00};
  assert_true(n > sizeof(rec));
  assert_memory_equal(m.b + n - sizeof(rec), rec, sizeof(rec));
  assert_int_equal(parse_resp(m.b, n), NTS_KE_RESP_OK);
  assert_session_matches(&p);
  assert_int_equal(sess.tcp_port, 4460);
  /* not offered: no record at all */
  p.tcp_port = 0;
  size_t n0 = nts_ke_server_build_response(&p, m.b, sizeof(m.b));
  assert_int_equal(n0, n - 6);
  assert_int_equal(parse_resp(m.b, n0), NTS_KE_RESP_OK);
  assert_int_equal(sess.tcp_port, 0);

  /* the critical bit does not matter on a type we know */
  resp_head(&m);
  put_cookies(&m, 8, 100);
  nts_ke_put_u16(&m.w, true, NTS_KE_REC_NTP_TCP_PORT, 123);
  put_eom(&m);
  assert_resp(&m, NTS_KE_RESP_OK);
  assert_int_equal(sess.tcp_port, 123);

  /* malformed: the session stands, without the offer */
  const uint8_t body[] = {0x11, 0x6c, 0x11, 0x6c};
  const size_t lens[] = {0, 1, 3, 4};
  for (size_t i = 0; i < 4; i++) {
    resp_head(&m);
    put_cookies(&m, 8, 100);
    nts_ke_put_record(&m.w, false, NTS_KE_REC_NTP_TCP_PORT, body, lens[i]);
    nts_ke_put_u16(&m.w, true, NTS_KE_REC_PORT, 1123);
    put_eom(&m);
    assert_resp(&m, NTS_KE_RESP_OK);
    assert_int_equal(sess.tcp_port, 0);
    assert_int_equal(sess.n_cookies, 8);
    assert_int_equal(sess.port, 1123);
  }
  resp_head(&m);
  put_cookies(&m, 8, 100);
  nts_ke_put_u16(&m.w, false, NTS_KE_REC_NTP_TCP_PORT, 0);
  put_eom(&m);
  assert_resp(&m, NTS_KE_RESP_OK);
  assert_int_equal(sess.tcp_port, 0);
  /* repeated, same or different, before or after a bad one: withdrawn */
  const uint16_t pairs[][2] = {{4460, 4460}, {4460, 4461}, {0, 4460}, {4460, 0}};
  for (size_t i = 0; i < 4; i++) {
    resp_head(&m);
    nts_ke_put_u16(&m.w, false, NTS_KE_REC_NTP_TCP_PORT, pairs[i][0]);
    put_cookies(&m, 8, 100);
    nts_ke_put_u16(&m.w, false, NTS_KE_REC_NTP_TCP_PORT, pairs[i][1]);
    put_eom(&m);
    assert_resp(&m, NTS_KE_RESP_OK);
    assert_int_equal(sess.tcp_port, 0);
  }
  /* it does not save a response that fails for another reason */
  resp_head(&m);
  nts_ke_put_u16(&m.w, false, NTS_KE_REC_NTP_TCP_PORT, 4460);
  put_eom(&m);
  assert_resp(&m, NTS_KE_RESP_NO_COOKIES);
  assert_int_equal(sess.tcp_port, 0);
}

/* A client has no reason to send the record; a server skips it, with or
 * without the critical bit. */
static void test_req_tcp_port_ignored(void **state)
{
  (void)state;
  for (int crit = 0; crit < 2; crit++) {
    msg m;
    msg_init(&m);
    put_proto(&m, NTS_KE_PROTO_NTPV4);
    nts_ke_put_u16(&m.w, crit, NTS_KE_REC_NTP_TCP_PORT, 4460);
    put_aead(&m, 15);
    nts_ke_put_record(&m.w, crit, NTS_KE_REC_NTP_TCP_PORT, NULL, 0);
    put_eom(&m);
    assert_int_equal(parse_req(&m), NTS_KE_REQ_OK);
    assert_int_equal(rq.aead, 15);
    assert_int_equal(rq.port_hint, 0);
  }
}

/* ---- robustness --------------------------------------------------------- */

/* What any accepted response must look like, whatever produced it. */
static void check_session(nts_ke_resp_status s, const uint16_t *offered, size_t n_offered)
{
  assert_true(s >= 0 && s < NTS_KE_RESP_STATUS_COUNT);
  if (s != NTS_KE_RESP_OK) {
    assert_int_equal(sess.n_cookies, 0);
    return;
  }
  assert_int_equal(sess.next_proto, NTS_KE_PROTO_NTPV4);
  bool offered_it = false;
  for (size_t i = 0; i < n_offered; i++)
    offered_it |= offered[i] == sess.aead;
  assert_true(offered_it);
  assert_true(sess.n_cookies >= 1 && sess.n_cookies <= NTS_KE_MAX_COOKIES);
  assert_true(sess.cookie_len >= 1 && sess.cookie_len <= NTS_KE_MAX_COOKIE_LEN);
  size_t sl = strnlen(sess.server, sizeof(sess.server));
  assert_true(sl <= NTS_KE_MAX_SERVER_NAME);
  for (size_t i = 0; i < sl; i++)
    assert_true(sess.server[i] > 0x20 && sess.server[i] < 0x7f);
}

static uint8_t *dup_exact(const uint8_t *b, size_t len)
{
  uint8_t *p = malloc(len ? len : 1);
  assert_non_null(p);
  memcpy(p, b, len);
  return p;
}

/* Every truncation of a valid response fails; every single-bit flip parses
 * to a defined result, and flips in the Next Protocol, AEAD and End of
 * Message records (except their critical bits) always fail. */
static void test_resp_flips_and_truncations(void **state)
{
  (void)state;
  msg m;
  nts_ke_response_params p = ok_params(8, 100);
  p.server = "ntp.example";
  p.port = 1123;
  size_t full = nts_ke_server_build_response(&p, m.b, sizeof(m.b));
  assert_true(full > 0);
  for (size_t len = 0; len < full; len++) {
    uint8_t *b = dup_exact(m.b, len);
    nts_ke_resp_status s = parse_resp(b, len);
    assert_int_not_equal(s, NTS_KE_RESP_OK);
    check_session(s, OFFER, N_OFFER);
    free(b);
  }
  size_t ok = 0, total = 0;
  for (size_t pos = 0; pos < full; pos++) {
    for (int bit = 0; bit < 8; bit++) {
      uint8_t *b = dup_exact(m.b, full);
      b[pos] ^= (uint8_t)(1u << bit);
      nts_ke_resp_status s = parse_resp(b, full);
      check_session(s, OFFER, N_OFFER);
      bool crit_bit = bit == 7 && (pos == 0 || pos == 6 || pos == full - 4);
      bool fixed_part = pos < 12 || pos >= full - 4;
      if (fixed_part && !crit_bit)
        assert_int_not_equal(s, NTS_KE_RESP_OK);
      ok += s == NTS_KE_RESP_OK;
      total++;
      free(b);
    }
  }
  /* Most flips land in cookie bodies, which are opaque. */
  print_message("bit flips: %zu of %zu still parse\n", ok, total);
}

static void test_req_flips_and_truncations(void **state)
{
  (void)state;
  msg m;
  msg_init(&m);
  size_t full = nts_ke_client_build_request(OFFER, N_OFFER, m.b, sizeof(m.b));
  for (size_t len = 0; len < full; len++) {
    uint8_t *b = dup_exact(m.b, len);
    assert_true(nts_ke_req_is_error(nts_ke_server_parse_request(b, len, OURS, N_OURS, &rq)));
    free(b);
  }
  /* Harmless flips: the three critical bits, and either AEAD ID (the other
   * one is still there to choose). */
  size_t ok = 0;
  for (size_t pos = 0; pos < full; pos++) {
    for (int bit = 0; bit < 8; bit++) {
      uint8_t *b = dup_exact(m.b, full);
      b[pos] ^= (uint8_t)(1u << bit);
      nts_ke_req_status s = nts_ke_server_parse_request(b, full, OURS, N_OURS, &rq);
      assert_true(s >= 0 && s < NTS_KE_REQ_STATUS_COUNT);
      bool crit_bit = bit == 7 && (pos == 0 || pos == 6 || pos == 14);
      bool aead_id = pos >= 10 && pos < 14;
      if (s == NTS_KE_REQ_OK) {
        ok++;
        assert_true(crit_bit || aead_id);
        assert_int_equal(rq.aead, aead_id && pos < 12 ? 17 : 15);
      } else {
        assert_false(crit_bit);
      }
      free(b);
    }
  }
  assert_int_equal(ok, 3 + 4 * 8);
}

/* A random request: returns the status it must get.  Like chrony's test,
 * most are valid with random decoration; some carry one defect. */
static nts_ke_req_status random_request(msg *m, uint16_t *want_aead)
{
  uint16_t ids[6];
  size_t n_ids = 1 + rng_below(5);
  for (size_t i = 0; i < n_ids; i++) {
    const uint16_t pool[] = {15, 17, 16, 30, 99, 0x8000};
    ids[i] = pool[rng_below(6)];
  }
  *want_aead = 0;
  for (size_t i = 0; i < n_ids && !*want_aead; i++)
    if (ids[i] == 15 || ids[i] == 17)
      *want_aead = ids[i];
  static const uint8_t junk[64];
  int defect = rng_below(3) == 0 ? (int)(1 + rng_below(9)) : 0;
  msg_init(m);
  if (rng_bool())
    nts_ke_put_record(&m->w, false, (uint16_t)(8 + rng_below(0x7ff0)), junk, rng_below(64));
  if (defect != 1)
    put_proto(m, NTS_KE_PROTO_NTPV4);
  if (defect == 2)
    put_proto(m, NTS_KE_PROTO_NTPV4);
  if (rng_bool())
    put_str(m, false, NTS_KE_REC_SERVER, "192.0.2.44");
  if (defect != 3)
    put_aeads(m, ids, defect == 4 ? 0 : n_ids);
  if (defect == 5)
    nts_ke_put_record(&m->w, true, (uint16_t)(8 + rng_below(0x7ff0)), NULL, 0);
  if (defect == 6)
    nts_ke_put_u16(&m->w, false, NTS_KE_REC_NEW_COOKIE, 1);
  if (rng_bool())
    nts_ke_put_u16(&m->w, false, NTS_KE_REC_PORT, (uint16_t)(1 + rng_below(65535)));
  if (defect != 7)
    nts_ke_put_record(&m->w, true, NTS_KE_REC_EOM, junk, defect == 8 ? 2 : 0);
  if (defect == 9)
    put_aead(m, 15);
  assert_true(wire_wr_ok(&m->w));
  static const nts_ke_req_status want[] = {
      NTS_KE_REQ_OK,        NTS_KE_REQ_NO_NEXT_PROTO, NTS_KE_REQ_DUP_NEXT_PROTO,
      NTS_KE_REQ_NO_AEAD_RECORD, NTS_KE_REQ_BAD_AEAD,   NTS_KE_REQ_UNKNOWN_CRITICAL,
      NTS_KE_REQ_FORBIDDEN, NTS_KE_REQ_NO_EOM,        NTS_KE_REQ_EOM_BODY,
      NTS_KE_REQ_AFTER_EOM};
  if (defect == 0 && !*want_aead)
    return NTS_KE_REQ_NO_AEAD;
  return want[defect];
}

/* A random response built by the server code, sometimes with a defect. */
static nts_ke_resp_status random_response(msg *m, nts_ke_response_params *p)
{
  *p = ok_params(1 + rng_below(NTS_KE_MAX_COOKIES), 1 + rng_below(NTS_KE_MAX_COOKIE_LEN));
  p->aead = rng_bool() ? 15 : 17;
  p->server = rng_bool() ? "time.example.org" : NULL;
  p->port = rng_bool() ? (uint16_t)(1 + rng_below(65535)) : 0;
  p->tcp_port = rng_bool() ? (uint16_t)(1 + rng_below(65535)) : 0;
  size_t n = nts_ke_server_build_response(p, m->b, sizeof(m->b));
  assert_true(n > 0);
  m->w.pos = n;
  switch (rng_below(8)) {
  case 0: /* drop End of Message */
    m->w.pos -= 4;
    return NTS_KE_RESP_NO_EOM;
  case 1: /* append a cookie of another length after End of Message */
    put_cookies(m, 1, p->cookie_len + 1);
    return NTS_KE_RESP_AFTER_EOM;
  case 2: /* cut somewhere */
    m->w.pos = rng_below(n);
    return NTS_KE_RESP_STATUS_COUNT; /* any failure */
  default:
    return NTS_KE_RESP_OK;
  }
}

static void test_random_messages(void **state)
{
  (void)state;
  static msg m;
  static nts_ke_framer fr;
  rng_state = 20240601;
  size_t seen[NTS_KE_REQ_STATUS_COUNT] = {0};
  for (int iter = 0; iter < 10000; iter++) {
    /* Request: expected verdict, also when it arrives in random pieces. */
    uint16_t want_aead;
    nts_ke_req_status want = random_request(&m, &want_aead);
    nts_ke_req_status got = parse_req(&m);
    if (got != want)
      print_error("iter %d: got %s want %s\n", iter, nts_ke_req_status_name(got),
                  nts_ke_req_status_name(want));
    assert_int_equal(got, want);
    assert_int_equal(rq.aead, want == NTS_KE_REQ_OK ? want_aead : 0);
    seen[got]++;
    nts_ke_framer_init(&fr);
    size_t pos = 0, len = msg_len(&m);
    while (pos < len) {
      size_t k = 1 + rng_below(len - pos);
      nts_ke_framer_feed(&fr, m.b + pos, k);
      pos += k;
    }
    nts_ke_frame_status fs = nts_ke_framer_status(&fr);
    if (want == NTS_KE_REQ_NO_EOM)
      assert_int_equal(fs, NTS_KE_FRAME_NEED_MORE);
    else if (want == NTS_KE_REQ_AFTER_EOM)
      assert_int_equal(fs, NTS_KE_FRAME_TRAILING);
    else
      assert_int_equal(fs, NTS_KE_FRAME_COMPLETE);

    /* Response: built, maybe damaged, parsed. */
    nts_ke_response_params p;
    nts_ke_resp_status rwant = random_response(&m, &p);
    nts_ke_resp_status rgot = parse_resp(m.b, msg_len(&m));
    check_session(rgot, OFFER, N_OFFER);
    if (rwant == NTS_KE_RESP_OK)
      assert_session_matches(&p);
    else if (rwant == NTS_KE_RESP_STATUS_COUNT)
      assert_int_not_equal(rgot, NTS_KE_RESP_OK);
    else
      assert_int_equal(rgot, rwant);

    /* Random bytes changed: any verdict, but a defined one. */
    size_t rlen = msg_len(&m);
    if (rlen > 0) {
      for (int k = 1 + (int)rng_below(4); k > 0; k--)
        m.b[rng_below(rlen)] = (uint8_t)rng_next();
      check_session(parse_resp(m.b, rlen), OFFER, N_OFFER);
      nts_ke_req_status s = nts_ke_server_parse_request(m.b, rlen, OURS, N_OURS, &rq);
      assert_true(s >= 0 && s < NTS_KE_REQ_STATUS_COUNT);
    }
  }
  /* Every planned outcome actually occurred. */
  const nts_ke_req_status planned[] = {
      NTS_KE_REQ_OK,           NTS_KE_REQ_NO_AEAD,         NTS_KE_REQ_NO_NEXT_PROTO,
      NTS_KE_REQ_DUP_NEXT_PROTO, NTS_KE_REQ_NO_AEAD_RECORD, NTS_KE_REQ_BAD_AEAD,
      NTS_KE_REQ_UNKNOWN_CRITICAL, NTS_KE_REQ_FORBIDDEN,   NTS_KE_REQ_NO_EOM,
      NTS_KE_REQ_EOM_BODY,     NTS_KE_REQ_AFTER_EOM};
  for (size_t i = 0; i < sizeof(planned) / sizeof(planned[0]); i++)
    assert_true(seen[planned[i]] > 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_req_names),
      cmocka_unit_test(test_req_client_built),
      cmocka_unit_test(test_req_aead_preference),
      cmocka_unit_test(test_req_protocols),
      cmocka_unit_test(test_req_structure_errors),
      cmocka_unit_test(test_req_duplicates),
      cmocka_unit_test(test_req_bad_lists),
      cmocka_unit_test(test_req_forbidden_records),
      cmocka_unit_test(test_req_hints),
      cmocka_unit_test(test_req_unknown_records),
      cmocka_unit_test(test_req_known_without_critical),
      cmocka_unit_test(test_req_first_error_wins),
      cmocka_unit_test(test_resp_roundtrip),
      cmocka_unit_test(test_resp_critical_bits),
      cmocka_unit_test(test_resp_refusals),
      cmocka_unit_test(test_resp_bad_params),
      cmocka_unit_test(test_build_error),
      cmocka_unit_test(test_resp_names),
      cmocka_unit_test(test_resp_server_error_and_warning),
      cmocka_unit_test(test_resp_structure),
      cmocka_unit_test(test_resp_next_proto),
      cmocka_unit_test(test_resp_aead),
      cmocka_unit_test(test_resp_cookies),
      cmocka_unit_test(test_resp_server_port),
      cmocka_unit_test(test_resp_tcp_port),
      cmocka_unit_test(test_req_tcp_port_ignored),
      cmocka_unit_test(test_resp_flips_and_truncations),
      cmocka_unit_test(test_req_flips_and_truncations),
      cmocka_unit_test(test_random_messages),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
