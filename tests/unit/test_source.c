/* Unit tests for proto/source.c: poll timing, reach, burst, KoD, filter. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/ntp_pkt.h"
#include "proto/source.h"

static const uint8_t nonce1[8] = {1, 2, 3, 4, 5, 6, 7, 8};

static ntp_source_cfg cfg_default(void)
{
  ntp_source_cfg c = {.minpoll = 4, .maxpoll = 6, .version = 4, .precision = 1e-7};
  return c;
}

/* A server response to request `req` with the server `offset` ahead and a
 * symmetric one-way delay `owd`; t1 is our send time. */
static size_t make_response(const uint8_t *req, ntp_ts t1, double offset, double owd,
                            uint8_t stratum, uint8_t *out, ntp_ts *t4)
{
  ntp_hdr q, r = {0};
  assert_true(ntp_hdr_parse(req, NTP_HDR_LEN, &q));
  r.version = 4;
  r.mode = NTP_MODE_SERVER;
  r.stratum = stratum;
  r.precision = -20;
  r.refid = NTP_REFID('G', 'P', 'S', 0);
  r.org = q.xmt;
  r.rec = ntp_ts_add(t1, owd + offset);
  r.xmt = ntp_ts_add(r.rec, 0.0001);
  *t4 = ntp_ts_add(t1, 2 * owd + 0.0001);
  wire_wr w;
  wire_wr_init(&w, out, NTP_HDR_LEN);
  ntp_hdr_write(&w, &r);
  return wire_wr_len(&w);
}

static ntp_ts t0(void) { return (ntp_ts)3900000000ULL << 32; }

static void test_first_poll_immediate_then_interval(void **state)
{
  (void)state;
  ntp_source_cfg c = cfg_default();
  ntp_source *s = ntp_source_create(&c, 100.0);
  assert_true(ntp_source_next_send(s) <= 100.0);
  uint8_t buf[64];
  assert_int_equal(ntp_source_make_request(s, 100.0, nonce1, t0(), buf, sizeof(buf)), 48);
  assert_true(ntp_source_awaiting(s));
  assert_float_equal(ntp_source_next_send(s), 116.0, 1e-9);
  ntp_source_destroy(s);
}

static void test_sample_accepted_and_reach(void **state)
{
  (void)state;
  ntp_source_cfg c = cfg_default();
  ntp_source *s = ntp_source_create(&c, 0.0);
  uint8_t req[64], resp[64];
  ntp_ts t4;
  ntp_source_make_request(s, 0.0, nonce1, t0(), req, sizeof(req));
  size_t n = make_response(req, t0(), 0.125, 0.01, 2, resp, &t4);
  assert_int_equal(ntp_source_on_response(s, resp, n, t4, 0.02, NULL), NTP_DROP_NONE);
  ntp_source_info i;
  ntp_source_get_info(s, 0.02, &i);
  assert_true(i.have_sample);
  assert_int_equal(i.reach, 1);
  assert_int_equal(i.stratum, 2);
  assert_float_equal(i.offset, 0.125, 1e-6);
  assert_float_equal(i.delay, 0.02, 1e-6);
  /* The same response again is a duplicate, not a second sample. */
  assert_int_equal(ntp_source_on_response(s, resp, n, t4, 0.03, NULL), NTP_DROP_DUPLICATE);
  ntp_source_get_info(s, 0.03, &i);
  assert_int_equal(i.accepted, 1);
  assert_int_equal(i.drops[NTP_DROP_DUPLICATE], 1);
  ntp_source_destroy(s);
}

static void test_response_without_request_dropped(void **state)
{
  (void)state;
  ntp_source_cfg c = cfg_default();
  ntp_source *s = ntp_source_create(&c, 0.0);
  uint8_t req[64], resp[64];
  ntp_ts t4;
  ntp_client_build_request(req, sizeof(req), 4, 42);
  size_t n = make_response(req, t0(), 0, 0.01, 2, resp, &t4);
  assert_int_equal(ntp_source_on_response(s, resp, n, t4, 0, NULL), NTP_DROP_UNEXPECTED);
  ntp_source_destroy(s);
}

/* A request in flight across a step of the local clock carries a t1 on the
 * old time scale: its answer would enter the fresh filter off by the step.
 * The step voids it; the next poll starts clean. */
static void test_clock_step_voids_request_in_flight(void **state)
{
  (void)state;
  ntp_source_cfg c = cfg_default();
  ntp_source *s = ntp_source_create(&c, 0.0);
  uint8_t req[64], resp[64];
  ntp_ts t4;
  ntp_source_make_request(s, 0.0, nonce1, t0(), req, sizeof(req));
  /* The server sees the true time; we stepped back by 1 s meanwhile. */
  size_t n = make_response(req, t0(), 0.0, 0.01, 2, resp, &t4);
  ntp_source_clock_stepped(s);
  assert_false(ntp_source_awaiting(s));
  assert_int_equal(ntp_source_on_response(s, resp, n, ntp_ts_add(t4, -1.0), 0.02, NULL),
                   NTP_DROP_UNEXPECTED);
  ntp_source_info i;
  ntp_source_get_info(s, 0.02, &i);
  assert_false(i.have_sample);
  ntp_source_destroy(s);
}

static void test_reach_shifts_on_unanswered(void **state)
{
  (void)state;
  ntp_source_cfg c = cfg_default();
  ntp_source *s = ntp_source_create(&c, 0.0);
  uint8_t req[64], resp[64];
  ntp_ts t4;
  ntp_source_make_request(s, 0.0, nonce1, t0(), req, sizeof(req));
  size_t n = make_response(req, t0(), 0, 0.01, 2, resp, &t4);
  ntp_source_on_response(s, resp, n, t4, 0.02, NULL);
  for (int k = 1; k <= 3; k++)
    ntp_source_make_request(s, 16.0 * k, nonce1, t0(), req, sizeof(req));
  ntp_source_info i;
  ntp_source_get_info(s, 50, &i);
  assert_int_equal(i.reach, 1 << 3);
  for (int k = 4; k <= 8; k++)
    ntp_source_make_request(s, 16.0 * k, nonce1, t0(), req, sizeof(req));
  ntp_source_get_info(s, 200, &i);
  assert_int_equal(i.reach, 0);
  ntp_source_destroy(s);
}

static void test_iburst_spacing(void **state)
{
  (void)state;
  ntp_source_cfg c = cfg_default();
  c.iburst = true;
  c.minpoll = 6;
  ntp_source *s = ntp_source_create(&c, 0.0);
  uint8_t req[64];
  double now = 0;
  for (int k = 0; k < NTP_BURST_LEN - 1; k++) {
    ntp_source_make_request(s, now, nonce1, t0(), req, sizeof(req));
    assert_float_equal(ntp_source_next_send(s) - now, NTP_BURST_SPACING, 1e-9);
    now = ntp_source_next_send(s);
  }
  ntp_source_make_request(s, now, nonce1, t0(), req, sizeof(req));
  assert_float_equal(ntp_source_next_send(s) - now, 64.0, 1e-9);
  ntp_source_destroy(s);
}

static void test_kod_rate_and_deny(void **state)
{
  (void)state;
  ntp_source_cfg c = cfg_default();
  ntp_source *s = ntp_source_create(&c, 0.0);
  uint8_t req[64], resp[64];
  ntp_ts t4;
  ntp_source_make_request(s, 0.0, nonce1, t0(), req, sizeof(req));
  size_t n = make_response(req, t0(), 0, 0.01, 0, resp, &t4);
  /* refid RATE */
  resp[12] = 'R'; resp[13] = 'A'; resp[14] = 'T'; resp[15] = 'E';
  ntp_kod k;
  assert_int_equal(ntp_source_on_response(s, resp, n, t4, 0.02, &k), NTP_DROP_KOD);
  assert_int_equal(k, NTP_KOD_RATE);
  ntp_source_info i;
  ntp_source_get_info(s, 1, &i);
  assert_int_equal(i.poll, 5);
  assert_false(i.have_sample);

  ntp_source_make_request(s, 32.0, nonce1, t0(), req, sizeof(req));
  n = make_response(req, t0(), 0, 0.01, 0, resp, &t4);
  resp[12] = 'D'; resp[13] = 'E'; resp[14] = 'N'; resp[15] = 'Y';
  assert_int_equal(ntp_source_on_response(s, resp, n, t4, 32.02, &k), NTP_DROP_KOD);
  assert_int_equal(k, NTP_KOD_DENY);
  assert_true(isinf(ntp_source_next_send(s)));
  ntp_source_get_info(s, 33, &i);
  assert_true(i.denied);
  assert_int_equal(i.reach, 0);
  assert_int_equal(ntp_source_make_request(s, 100.0, nonce1, t0(), req, sizeof(req)), 0);
  ntp_source_destroy(s);
}

static void test_filter_prefers_min_delay(void **state)
{
  (void)state;
  ntp_source_cfg c = cfg_default();
  ntp_source *s = ntp_source_create(&c, 0.0);
  uint8_t req[64], resp[64];
  ntp_ts t4;
  const double owd[4] = {0.050, 0.005, 0.030, 0.040};
  const double off[4] = {0.010, 0.001, 0.007, 0.009};
  for (int k = 0; k < 4; k++) {
    uint8_t nonce[8] = {9, 9, 9, 9, 9, 9, 9, (uint8_t)(k + 1)};
    ntp_ts t1 = ntp_ts_add(t0(), 16.0 * k);
    ntp_source_make_request(s, 16.0 * k, nonce, t1, req, sizeof(req));
    size_t n = make_response(req, t1, off[k], owd[k], 2, resp, &t4);
    assert_int_equal(ntp_source_on_response(s, resp, n, t4, 16.0 * k + 0.1, NULL),
                     NTP_DROP_NONE);
  }
  ntp_source_info i;
  ntp_source_get_info(s, 60, &i);
  assert_float_equal(i.offset, 0.001, 1e-6);
  assert_float_equal(i.delay, 0.010, 1e-5);
  assert_true(i.jitter > 0.005);
  assert_int_equal(i.reach, 0xf);
  ntp_source_destroy(s);
}

/* The filter's popcorn-spike suppression as seen through the source: the
 * spike is counted, the estimate and its age stay with the earlier sample. */
static void test_filter_spike_counted(void **state)
{
  (void)state;
  ntp_source_cfg c = cfg_default();
  ntp_source *s = ntp_source_create(&c, 0.0);
  uint8_t req[64], resp[64];
  ntp_ts t4;
  for (int k = 0; k < 9; k++) {
    uint8_t nonce[8] = {5, 5, 5, 5, 5, 5, 5, (uint8_t)(k + 1)};
    ntp_ts t1 = ntp_ts_add(t0(), 16.0 * k);
    ntp_source_make_request(s, 16.0 * k, nonce, t1, req, sizeof(req));
    double off = k < 8 ? 0.001 * (k & 1) : 0.5;
    size_t n = make_response(req, t1, off, 0.01, 2, resp, &t4);
    assert_int_equal(ntp_source_on_response(s, resp, n, t4, 16.0 * k + 0.02, NULL),
                     NTP_DROP_NONE);
  }
  ntp_source_info i;
  ntp_source_get_info(s, 130, &i);
  assert_int_equal(i.spikes, 1);
  assert_int_equal(i.accepted, 9);
  assert_float_equal(i.offset, 0.001, 1e-6); /* the sample at 112 s */
  assert_float_equal(i.sample_age, 130 - 112.02, 1e-6);
  assert_float_equal(i.when, 130 - 128.02, 1e-6);
  ntp_source_destroy(s);
}

/* The poll follows the discipline's advice (ntp_source_set_poll), within
 * minpoll..maxpoll; it never grows on its own. */
static void test_poll_set_and_clamped(void **state)
{
  (void)state;
  ntp_source_cfg c = cfg_default();
  ntp_source *s = ntp_source_create(&c, 0.0);
  uint8_t req[64], resp[64];
  ntp_ts t4;
  double now = 0;
  ntp_source_info i;
  for (int k = 0; k < 40; k++) {
    uint8_t nonce[8] = {7, 7, 7, 7, 7, 7, (uint8_t)(k >> 8), (uint8_t)(k + 1)};
    ntp_ts t1 = ntp_ts_add(t0(), now);
    ntp_source_make_request(s, now, nonce, t1, req, sizeof(req));
    size_t n = make_response(req, t1, 0, 0.01, 2, resp, &t4);
    assert_int_equal(ntp_source_on_response(s, resp, n, t4, now + 0.02, NULL), NTP_DROP_NONE);
    now = ntp_source_next_send(s);
  }
  ntp_source_get_info(s, now, &i);
  assert_int_equal(i.poll, 4); /* 40 answers, no advice: still minpoll */
  ntp_source_set_poll(s, 5);
  ntp_source_get_info(s, now, &i);
  assert_int_equal(i.poll, 5);
  double sent = now;
  ntp_source_make_request(s, now, nonce1, t0(), req, sizeof(req));
  assert_true(fabs(ntp_source_next_send(s) - (sent + 32.0)) < 1e-9);
  ntp_source_set_poll(s, 12);
  ntp_source_get_info(s, now, &i);
  assert_int_equal(i.poll, 6); /* maxpoll */
  ntp_source_set_poll(s, 1);
  ntp_source_get_info(s, now, &i);
  assert_int_equal(i.poll, 4); /* minpoll */
  ntp_source_destroy(s);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_first_poll_immediate_then_interval),
      cmocka_unit_test(test_sample_accepted_and_reach),
      cmocka_unit_test(test_response_without_request_dropped),
      cmocka_unit_test(test_reach_shifts_on_unanswered),
      cmocka_unit_test(test_iburst_spacing),
      cmocka_unit_test(test_kod_rate_and_deny),
      cmocka_unit_test(test_filter_prefers_min_delay),
      cmocka_unit_test(test_filter_spike_counted),
      cmocka_unit_test(test_poll_set_and_clamped),
      cmocka_unit_test(test_clock_step_voids_request_in_flight),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
