/* Unit tests for src/proto/ntp_server: request -> response, kiss-o'-death. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "proto/ntp_client.h"
#include "proto/ntp_ef.h"
#include "proto/ntp_server.h"

#define REQ_XMT 0x0123456789abcdefULL
#define RX_TS 0xe8f0a1b2c3d4e5f6ULL
#define TX_TS 0xe8f0a1b2c4000000ULL

typedef struct req {
  uint8_t b[256];
  size_t len;
} req;

static const ntp_sysinfo sys_sync = {
    .leap = NTP_LEAP_NONE,
    .stratum = 2,
    .precision = -23,
    .refid = NTP_REFID(192, 0, 2, 7),
    .reftime = 0xe8f0a100aabbccddULL,
    .root_delay = 0.0125,
    .root_disp = 0.5,
};

static void req_make(req *r, uint8_t version, uint8_t mode, int8_t poll)
{
  ntp_hdr h = {.leap = NTP_LEAP_NONE, .version = version, .mode = mode, .poll = poll};
  h.xmt = REQ_XMT;
  memset(r->b, 0, sizeof(r->b));
  wire_wr w;
  wire_wr_init(&w, r->b, sizeof(r->b));
  ntp_hdr_write(&w, &h);
  assert_true(wire_wr_ok(&w));
  r->len = wire_wr_len(&w);
}

static void req_append(req *r, const uint8_t *bytes, size_t n)
{
  assert_true(r->len + n <= sizeof(r->b));
  memcpy(r->b + r->len, bytes, n);
  r->len += n;
}

static ntp_srv_result prepare(const req *r, uint8_t *out, size_t cap, size_t *out_len)
{
  return ntp_server_prepare(r->b, r->len, &sys_sync, RX_TS, out, cap, out_len);
}

static void assert_result(const req *r, ntp_srv_result want)
{
  uint8_t out[64];
  memset(out, 0xee, sizeof(out));
  size_t out_len = 777;
  ntp_srv_result res = prepare(r, out, sizeof(out), &out_len);
  if (res != want)
    fail_msg("result %s, want %s", ntp_srv_result_name(res), ntp_srv_result_name(want));
  if (want != NTP_SRV_RESPOND) {
    /* A dropped request leaves the output alone. */
    assert_int_equal(out_len, 777);
    for (size_t i = 0; i < sizeof(out); i++)
      assert_int_equal(out[i], 0xee);
  }
}

static void test_basic_response(void **state)
{
  (void)state;
  req r;
  req_make(&r, 4, NTP_MODE_CLIENT, 6);
  uint8_t out[NTP_HDR_LEN + 16];
  memset(out, 0xee, sizeof(out));
  size_t out_len = 0;
  assert_int_equal(prepare(&r, out, sizeof(out), &out_len), NTP_SRV_RESPOND);
  assert_int_equal(out_len, NTP_HDR_LEN);
  assert_int_equal(out[NTP_HDR_LEN], 0xee);

  ntp_hdr h;
  assert_true(ntp_hdr_parse(out, out_len, &h));
  assert_int_equal(h.mode, NTP_MODE_SERVER);
  assert_int_equal(h.version, 4);
  assert_int_equal(h.leap, NTP_LEAP_NONE);
  assert_int_equal(h.stratum, 2);
  assert_int_equal(h.poll, 6);
  assert_int_equal(h.precision, -23);
  assert_int_equal(h.refid, NTP_REFID(192, 0, 2, 7));
  assert_true(h.ref == sys_sync.reftime);
  assert_int_equal(h.root_delay, ntp_short_from_double(0.0125));
  assert_int_equal(h.root_disp, 0x00008000u);
  assert_true(h.org == REQ_XMT); /* origin = the request's transmit */
  assert_true(h.rec == RX_TS);   /* receive = kernel rx timestamp */
  assert_true(h.xmt == 0);       /* not yet stamped */
  assert_int_equal(out[0], 0x24);
}

static void test_finish_stamps_late(void **state)
{
  (void)state;
  req r;
  req_make(&r, 4, NTP_MODE_CLIENT, 6);
  uint8_t out[NTP_HDR_LEN + 4];
  memset(out, 0xee, sizeof(out));
  size_t out_len;
  assert_int_equal(prepare(&r, out, sizeof(out), &out_len), NTP_SRV_RESPOND);
  uint8_t before[NTP_HDR_LEN + 4];
  memcpy(before, out, sizeof(out));
  ntp_server_finish(out, out_len, TX_TS);
  /* Only the transmit timestamp changes. */
  assert_memory_equal(out, before, NTP_XMT_OFFSET);
  assert_memory_equal(out + NTP_HDR_LEN, before + NTP_HDR_LEN, 4);
  ntp_hdr h;
  assert_true(ntp_hdr_parse(out, out_len, &h));
  assert_true(h.xmt == TX_TS);
  assert_true(h.rec == RX_TS);
  assert_true(h.org == REQ_XMT);
  /* Stamping again overwrites (a retry with a fresher timestamp). */
  ntp_server_finish(out, out_len, TX_TS + 1);
  assert_true(ntp_hdr_parse(out, out_len, &h));
  assert_true(h.xmt == TX_TS + 1);
}

static void test_finish_short_is_noop(void **state)
{
  (void)state;
  uint8_t out[NTP_HDR_LEN];
  memset(out, 0xee, sizeof(out));
  ntp_server_finish(out, NTP_HDR_LEN - 1, TX_TS);
  ntp_server_finish(out, 0, TX_TS);
  for (size_t i = 0; i < sizeof(out); i++)
    assert_int_equal(out[i], 0xee);
}

static void test_version_echo(void **state)
{
  (void)state;
  for (uint8_t v = 1; v <= 4; v++) {
    req r;
    req_make(&r, v, NTP_MODE_CLIENT, 4);
    uint8_t out[NTP_HDR_LEN];
    size_t out_len;
    assert_int_equal(prepare(&r, out, sizeof(out), &out_len), NTP_SRV_RESPOND);
    ntp_hdr h;
    assert_true(ntp_hdr_parse(out, out_len, &h));
    assert_int_equal(h.version, v);
    assert_int_equal(h.mode, NTP_MODE_SERVER);
  }
}

static void test_version_dropped(void **state)
{
  (void)state;
  static const uint8_t bad[] = {0, 5, 6, 7};
  for (size_t i = 0; i < sizeof(bad); i++) {
    req r;
    req_make(&r, bad[i], NTP_MODE_CLIENT, 6);
    assert_result(&r, NTP_SRV_DROP_VERSION);
  }
}

static void test_mode_dropped(void **state)
{
  (void)state;
  static const uint8_t bad[] = {0, 1, 2, 4, 5, 6, 7};
  for (size_t i = 0; i < sizeof(bad); i++) {
    req r;
    req_make(&r, 4, bad[i], 6);
    assert_result(&r, NTP_SRV_DROP_MODE);
  }
}

static void test_short_dropped(void **state)
{
  (void)state;
  req r;
  req_make(&r, 4, NTP_MODE_CLIENT, 6);
  for (size_t len = 0; len < NTP_HDR_LEN; len++) {
    r.len = len;
    assert_result(&r, NTP_SRV_DROP_SHORT);
  }
  uint8_t out[NTP_HDR_LEN];
  size_t out_len;
  assert_int_equal(ntp_server_prepare(NULL, 0, &sys_sync, RX_TS, out, sizeof(out), &out_len),
                   NTP_SRV_DROP_SHORT);
}

static void test_poll_echoed(void **state)
{
  (void)state;
  static const int8_t polls[] = {-6, 0, 4, 10, 17, 127, -128};
  for (size_t i = 0; i < sizeof(polls); i++) {
    req r;
    req_make(&r, 4, NTP_MODE_CLIENT, polls[i]);
    uint8_t out[NTP_HDR_LEN];
    size_t out_len;
    assert_int_equal(prepare(&r, out, sizeof(out), &out_len), NTP_SRV_RESPOND);
    ntp_hdr h;
    assert_true(ntp_hdr_parse(out, out_len, &h));
    assert_int_equal(h.poll, polls[i]);
  }
}

static void test_request_fields_not_reflected(void **state)
{
  (void)state;
  /* Whatever else the client put in its header stays out of the response. */
  ntp_hdr q = {
      .leap = NTP_LEAP_UNSYNC, .version = 4, .mode = NTP_MODE_CLIENT, .stratum = 9,
      .poll = 7, .precision = -5, .root_delay = 0xdeadbeefu, .root_disp = 0xfeedfaceu,
      .refid = NTP_REFID('E', 'V', 'I', 'L'), .ref = 111, .org = 222, .rec = 333,
      .xmt = REQ_XMT,
  };
  req r;
  wire_wr w;
  wire_wr_init(&w, r.b, sizeof(r.b));
  ntp_hdr_write(&w, &q);
  r.len = wire_wr_len(&w);
  uint8_t out[NTP_HDR_LEN];
  size_t out_len;
  assert_int_equal(prepare(&r, out, sizeof(out), &out_len), NTP_SRV_RESPOND);
  ntp_hdr h;
  assert_true(ntp_hdr_parse(out, out_len, &h));
  assert_int_equal(h.leap, sys_sync.leap);
  assert_int_equal(h.stratum, sys_sync.stratum);
  assert_int_equal(h.precision, sys_sync.precision);
  assert_int_equal(h.refid, sys_sync.refid);
  assert_true(h.ref == sys_sync.reftime);
  assert_int_equal(h.root_delay, ntp_short_from_double(sys_sync.root_delay));
  assert_true(h.org == REQ_XMT);
  assert_true(h.rec == RX_TS);
  assert_int_equal(h.poll, 7);
}

static void test_sysinfo_fields(void **state)
{
  (void)state;
  ntp_sysinfo sys = {
      .leap = NTP_LEAP_UNSYNC,
      .stratum = NTP_MAX_STRATUM,
      .precision = -6,
      .refid = NTP_REFID('I', 'N', 'I', 'T'),
      .reftime = 0,
      .root_delay = 1e9, /* clamps */
      .root_disp = -3.0, /* clamps to 0 */
  };
  req r;
  req_make(&r, 4, NTP_MODE_CLIENT, 6);
  uint8_t out[NTP_HDR_LEN];
  size_t out_len;
  assert_int_equal(ntp_server_prepare(r.b, r.len, &sys, RX_TS, out, sizeof(out), &out_len),
                   NTP_SRV_RESPOND);
  ntp_hdr h;
  assert_true(ntp_hdr_parse(out, out_len, &h));
  assert_int_equal(h.leap, NTP_LEAP_UNSYNC);
  assert_int_equal(h.stratum, 16);
  assert_int_equal(h.precision, -6);
  assert_int_equal(h.refid, NTP_REFID('I', 'N', 'I', 'T'));
  assert_true(h.ref == 0);
  assert_int_equal(h.root_delay, 0xffffffffu);
  assert_int_equal(h.root_disp, 0);

  sys.leap = NTP_LEAP_INSERT;
  sys.stratum = 1;
  sys.refid = NTP_REFID('G', 'P', 'S', 0);
  sys.root_delay = 0.0;
  sys.root_disp = 1.5;
  assert_int_equal(ntp_server_prepare(r.b, r.len, &sys, RX_TS, out, sizeof(out), &out_len),
                   NTP_SRV_RESPOND);
  assert_true(ntp_hdr_parse(out, out_len, &h));
  assert_int_equal(h.leap, NTP_LEAP_INSERT);
  assert_int_equal(h.stratum, 1);
  assert_int_equal(h.refid, NTP_REFID('G', 'P', 'S', 0));
  assert_int_equal(h.root_delay, 0);
  assert_int_equal(h.root_disp, 0x00018000u);
}

static void test_request_with_efs(void **state)
{
  (void)state;
  req r;
  req_make(&r, 4, NTP_MODE_CLIENT, 6);
  uint8_t efs[64];
  wire_wr w;
  wire_wr_init(&w, efs, sizeof(efs));
  static const uint8_t uid[32] = {1, 2, 3};
  assert_true(ntp_ef_append(&w, NTP_EF_UNIQUE_ID, uid, 12, NTP_EF_MIN_LEN));
  assert_true(ntp_ef_append(&w, 0x7777, uid, 20, NTP_EF_MIN_LAST_LEN));
  req_append(&r, efs, wire_wr_len(&w));
  assert_int_equal(r.len, NTP_HDR_LEN + 16 + 28);

  uint8_t out[256];
  memset(out, 0xee, sizeof(out));
  size_t out_len;
  assert_int_equal(prepare(&r, out, sizeof(out), &out_len), NTP_SRV_RESPOND);
  /* Plain request: fields are not echoed, the response is a bare header. */
  assert_int_equal(out_len, NTP_HDR_LEN);
  assert_int_equal(out[NTP_HDR_LEN], 0xee);
  ntp_hdr h;
  assert_true(ntp_hdr_parse(out, out_len, &h));
  assert_true(h.org == REQ_XMT);
}

static void test_malformed_efs_dropped(void **state)
{
  (void)state;
  req r;
  /* Trailing junk. */
  static const uint8_t junk[8] = {0};
  req_make(&r, 4, NTP_MODE_CLIENT, 6);
  req_append(&r, junk, sizeof(junk));
  assert_result(&r, NTP_SRV_DROP_MALFORMED);
  /* Length not a multiple of 4. */
  static const uint8_t odd[32] = {0x01, 0x04, 0x00, 0x1e};
  req_make(&r, 4, NTP_MODE_CLIENT, 6);
  req_append(&r, odd, sizeof(odd));
  assert_result(&r, NTP_SRV_DROP_MALFORMED);
  /* Length beyond the datagram. */
  static const uint8_t over[32] = {0x01, 0x04, 0x01, 0x00};
  req_make(&r, 4, NTP_MODE_CLIENT, 6);
  req_append(&r, over, sizeof(over));
  assert_result(&r, NTP_SRV_DROP_MALFORMED);
  /* Zero length (would loop forever in a naive walker). */
  static const uint8_t zero[32] = {0x01, 0x04, 0x00, 0x00};
  req_make(&r, 4, NTP_MODE_CLIENT, 6);
  req_append(&r, zero, sizeof(zero));
  assert_result(&r, NTP_SRV_DROP_MALFORMED);
  /* Last field of 16 bytes without a MAC. */
  static const uint8_t last16[16] = {0x01, 0x04, 0x00, 0x10};
  req_make(&r, 4, NTP_MODE_CLIENT, 6);
  req_append(&r, last16, sizeof(last16));
  assert_result(&r, NTP_SRV_DROP_MALFORMED);
}

static void test_mac_dropped(void **state)
{
  (void)state;
  static const size_t macs[] = {4, 20, 24};
  static const uint8_t mac[24] = {0, 0, 0, 1, 0xaa, 0xbb};
  for (size_t i = 0; i < 3; i++) {
    req r;
    req_make(&r, 4, NTP_MODE_CLIENT, 6);
    req_append(&r, mac, macs[i]);
    assert_result(&r, NTP_SRV_DROP_AUTH);
  }
  /* Field + MAC. */
  static const uint8_t ef[16] = {0x01, 0x04, 0x00, 0x10};
  req r;
  req_make(&r, 4, NTP_MODE_CLIENT, 6);
  req_append(&r, ef, sizeof(ef));
  req_append(&r, mac, 24);
  assert_result(&r, NTP_SRV_DROP_AUTH);
}

static void test_buffer_too_small(void **state)
{
  (void)state;
  req r;
  req_make(&r, 4, NTP_MODE_CLIENT, 6);
  uint8_t out[NTP_HDR_LEN];
  memset(out, 0xee, sizeof(out));
  size_t out_len = 777;
  assert_int_equal(prepare(&r, out, NTP_HDR_LEN - 1, &out_len), NTP_SRV_DROP_BUFFER);
  assert_int_equal(prepare(&r, out, 0, &out_len), NTP_SRV_DROP_BUFFER);
  assert_int_equal(out_len, 777);
  for (size_t i = 0; i < sizeof(out); i++)
    assert_int_equal(out[i], 0xee);
  /* Request checks come first: a bad request is reported as such. */
  req_make(&r, 4, NTP_MODE_SERVER, 6);
  assert_int_equal(prepare(&r, out, 0, &out_len), NTP_SRV_DROP_MODE);
  /* Exactly a header is enough. */
  req_make(&r, 4, NTP_MODE_CLIENT, 6);
  assert_int_equal(prepare(&r, out, NTP_HDR_LEN, &out_len), NTP_SRV_RESPOND);
  assert_int_equal(out_len, NTP_HDR_LEN);
}

static void test_client_accepts_response(void **state)
{
  (void)state;
  /* The client's request through the server and back: a usable sample.
   * Client clock 0.5 s behind the server, 2 ms each way, 50 us processing. */
  struct timespec now = {.tv_sec = 1700000000, .tv_nsec = 250000000};
  ntp_ts t1 = ntp_ts_from_timespec(&now);
  const ntp_ts nonce = 0x9e3779b97f4a7c15ULL;
  uint8_t q[NTP_HDR_LEN];
  assert_int_equal(ntp_client_build_request(q, sizeof(q), 4, nonce), NTP_HDR_LEN);
  ntp_ts rx = ntp_ts_add(t1, 0.5 + 0.002);
  uint8_t resp[NTP_MAX_PKT];
  size_t resp_len;
  assert_int_equal(ntp_server_prepare(q, sizeof(q), &sys_sync, rx, resp, sizeof(resp),
                                      &resp_len),
                   NTP_SRV_RESPOND);
  ntp_server_finish(resp, resp_len, ntp_ts_add(rx, 0.00005));
  ntp_ts t4 = ntp_ts_add(t1, 0.00405);
  ntp_sample s;
  ntp_kod kod;
  assert_int_equal(ntp_client_check_response(resp, resp_len, nonce, 0, t1, t4, 1e-7, &s, &kod),
                   NTP_DROP_NONE);
  assert_true(fabs(s.offset - 0.5) < 1e-9);
  assert_true(fabs(s.delay - 0.004) < 1e-9);
  assert_int_equal(s.stratum, sys_sync.stratum);
  assert_int_equal(s.refid, sys_sync.refid);
}

static void test_kod_builder(void **state)
{
  (void)state;
  for (uint8_t v = 1; v <= 4; v++) {
    req r;
    req_make(&r, v, NTP_MODE_CLIENT, 9);
    uint8_t out[NTP_HDR_LEN + 8];
    memset(out, 0xee, sizeof(out));
    size_t n = ntp_server_kod(r.b, r.len, NTP_REFID('R', 'A', 'T', 'E'), RX_TS, out,
                              sizeof(out));
    assert_int_equal(n, NTP_HDR_LEN);
    assert_int_equal(out[NTP_HDR_LEN], 0xee);
    ntp_hdr h;
    assert_true(ntp_hdr_parse(out, n, &h));
    assert_int_equal(h.stratum, 0);
    assert_int_equal(h.leap, NTP_LEAP_UNSYNC);
    assert_int_equal(h.mode, NTP_MODE_SERVER);
    assert_int_equal(h.version, v);
    assert_int_equal(h.refid, NTP_REFID('R', 'A', 'T', 'E'));
    assert_int_equal(h.poll, 9);
    assert_true(h.org == REQ_XMT);
    assert_true(h.rec == RX_TS);
    assert_true(h.xmt == 0);
    /* Nothing about us leaks into a kiss. */
    assert_int_equal(h.precision, 0);
    assert_int_equal(h.root_delay, 0);
    assert_int_equal(h.root_disp, 0);
    assert_true(h.ref == 0);
    assert_int_equal(ntp_kod_classify(&h), NTP_KOD_RATE);
    char buf[16];
    assert_string_equal(ntp_refid_str(h.refid, h.stratum, buf, sizeof(buf)), ".RATE.");
  }
}

static void test_kod_seen_by_client(void **state)
{
  (void)state;
  const ntp_ts nonce = 0x1111222233334444ULL;
  uint8_t q[NTP_HDR_LEN];
  assert_int_equal(ntp_client_build_request(q, sizeof(q), 4, nonce), NTP_HDR_LEN);
  uint8_t out[NTP_HDR_LEN];
  size_t n = ntp_server_kod(q, sizeof(q), NTP_REFID('D', 'E', 'N', 'Y'), RX_TS, out,
                            sizeof(out));
  assert_int_equal(n, NTP_HDR_LEN);
  ntp_server_finish(out, n, TX_TS);
  ntp_kod kod = NTP_KOD_NONE;
  assert_int_equal(ntp_client_check_response(out, n, nonce, 0, RX_TS, TX_TS, 1e-7, NULL, &kod),
                   NTP_DROP_KOD);
  assert_int_equal(kod, NTP_KOD_DENY);
}

static void test_kod_builder_rejects(void **state)
{
  (void)state;
  uint8_t out[NTP_HDR_LEN];
  req r;
  /* Buffer too small. */
  req_make(&r, 4, NTP_MODE_CLIENT, 6);
  assert_int_equal(ntp_server_kod(r.b, r.len, NTP_REFID('R', 'A', 'T', 'E'), RX_TS, out,
                                  NTP_HDR_LEN - 1),
                   0);
  /* Requests that would not be answered are not kissed either. */
  req_make(&r, 4, NTP_MODE_SERVER, 6);
  assert_int_equal(ntp_server_kod(r.b, r.len, 0, RX_TS, out, sizeof(out)), 0);
  req_make(&r, 0, NTP_MODE_CLIENT, 6);
  assert_int_equal(ntp_server_kod(r.b, r.len, 0, RX_TS, out, sizeof(out)), 0);
  req_make(&r, 4, NTP_MODE_CLIENT, 6);
  assert_int_equal(ntp_server_kod(r.b, NTP_HDR_LEN - 1, 0, RX_TS, out, sizeof(out)), 0);
  static const uint8_t mac[20] = {0};
  req_append(&r, mac, sizeof(mac));
  assert_int_equal(ntp_server_kod(r.b, r.len, 0, RX_TS, out, sizeof(out)), 0);
}

static void test_result_names(void **state)
{
  (void)state;
  assert_string_equal(ntp_srv_result_name(NTP_SRV_RESPOND), "respond");
  assert_string_equal(ntp_srv_result_name(NTP_SRV_DROP_SHORT), "short");
  assert_string_equal(ntp_srv_result_name(NTP_SRV_DROP_VERSION), "version");
  assert_string_equal(ntp_srv_result_name(NTP_SRV_DROP_MODE), "mode");
  assert_string_equal(ntp_srv_result_name(NTP_SRV_DROP_MALFORMED), "malformed");
  assert_string_equal(ntp_srv_result_name(NTP_SRV_DROP_AUTH), "auth");
  assert_string_equal(ntp_srv_result_name(NTP_SRV_DROP_BUFFER), "buffer");
  assert_string_equal(ntp_srv_result_name(NTP_SRV_RESULT_COUNT), "?");
  assert_string_equal(ntp_srv_result_name((ntp_srv_result)99), "?");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_basic_response),
      cmocka_unit_test(test_finish_stamps_late),
      cmocka_unit_test(test_finish_short_is_noop),
      cmocka_unit_test(test_version_echo),
      cmocka_unit_test(test_version_dropped),
      cmocka_unit_test(test_mode_dropped),
      cmocka_unit_test(test_short_dropped),
      cmocka_unit_test(test_poll_echoed),
      cmocka_unit_test(test_request_fields_not_reflected),
      cmocka_unit_test(test_sysinfo_fields),
      cmocka_unit_test(test_request_with_efs),
      cmocka_unit_test(test_malformed_efs_dropped),
      cmocka_unit_test(test_mac_dropped),
      cmocka_unit_test(test_buffer_too_small),
      cmocka_unit_test(test_client_accepts_response),
      cmocka_unit_test(test_kod_builder),
      cmocka_unit_test(test_kod_seen_by_client),
      cmocka_unit_test(test_kod_builder_rejects),
      cmocka_unit_test(test_result_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
