/* Unit tests for src/proto/ntp_client: requests and RFC 5905 response checks. */
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

/* cmocka's assert_float_equal works in float; these checks need double. */
#define assert_near(a, b, eps)                                                               \
  do {                                                                                       \
    double a_ = (a), b_ = (b), e_ = (eps);                                                   \
    if (!(fabs(a_ - b_) <= e_))                                                              \
      fail_msg("%s = %.17g, want %.17g +- %g", #a, a_, b_, e_);                             \
  } while (0)

#define ERA1_UNIX 2085978496LL /* 2036-02-07T06:28:16Z */
#define NONCE 0x5eed5eedc0ffee11ULL
#define LOCAL_PREC 1e-7

/* One exchange: local t1/t4, server t2/t3, and the response header. */
typedef struct xchg {
  ntp_ts t1, t2, t3, t4;
  ntp_hdr h;
  uint8_t pkt[256];
  size_t len;
} xchg;

static ntp_ts ts_at(int64_t sec, long nsec)
{
  struct timespec t;
  t.tv_sec = (time_t)sec;
  t.tv_nsec = nsec;
  return ntp_ts_from_timespec(&t);
}

/* Server `offset` seconds ahead, `owd` one-way delay each way, `proc`
 * seconds of server processing, request sent at local time t1. */
static void xchg_init(xchg *x, ntp_ts t1, double offset, double owd, double proc)
{
  memset(x, 0, sizeof(*x));
  x->t1 = t1;
  x->t2 = ntp_ts_add(t1, owd + offset);
  x->t3 = ntp_ts_add(x->t2, proc);
  x->t4 = ntp_ts_add(t1, owd + proc + owd);
  x->h.leap = NTP_LEAP_NONE;
  x->h.version = 4;
  x->h.mode = NTP_MODE_SERVER;
  x->h.stratum = 2;
  x->h.poll = 6;
  x->h.precision = -20;
  x->h.root_delay = ntp_short_from_double(0.015);
  x->h.root_disp = ntp_short_from_double(0.03);
  x->h.refid = NTP_REFID(192, 0, 2, 1);
  x->h.ref = ntp_ts_add(x->t2, -64.0);
  x->h.org = NONCE;
  x->h.rec = x->t2;
  x->h.xmt = x->t3;
}

static void xchg_encode(xchg *x)
{
  wire_wr w;
  wire_wr_init(&w, x->pkt, sizeof(x->pkt));
  ntp_hdr_write(&w, &x->h);
  assert_true(wire_wr_ok(&w));
  x->len = wire_wr_len(&w);
}

static void xchg_default(xchg *x)
{
  xchg_init(x, ts_at(1700000000, 123456789), 0.25, 0.010, 0.001);
  xchg_encode(x);
}

static ntp_drop check(const xchg *x, ntp_sample *out, ntp_kod *kod)
{
  return ntp_client_check_response(x->pkt, x->len, NONCE, 0, x->t1, x->t4, LOCAL_PREC, out,
                                   kod);
}

/* Re-encodes x after `h` was edited and asserts the drop reason; also that
 * *out is left alone and the kiss code is NONE for non-KoD drops. */
static void assert_drop(xchg *x, ntp_drop want)
{
  xchg_encode(x);
  ntp_sample s;
  memset(&s, 0x5a, sizeof(s));
  ntp_sample untouched = s;
  ntp_kod kod = NTP_KOD_DENY;
  ntp_drop d = check(x, &s, &kod);
  if (d != want)
    fail_msg("drop %s, want %s", ntp_drop_name(d), ntp_drop_name(want));
  assert_memory_equal(&s, &untouched, sizeof(s));
  if (want != NTP_DROP_KOD)
    assert_int_equal(kod, NTP_KOD_NONE);
}

/* ---- requests ----------------------------------------------------------- */

static void test_build_request(void **state)
{
  (void)state;
  uint8_t buf[64];
  memset(buf, 0xee, sizeof(buf));
  assert_int_equal(ntp_client_build_request(buf, sizeof(buf), 4, 0x0102030405060708ULL),
                   NTP_HDR_LEN);
  assert_int_equal(buf[0], 0x23); /* leap 0, version 4, mode 3 */
  /* Data minimisation: everything but the first byte and xmt is zero. */
  for (size_t i = 1; i < NTP_XMT_OFFSET; i++)
    assert_int_equal(buf[i], 0);
  static const uint8_t xmt[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  assert_memory_equal(buf + NTP_XMT_OFFSET, xmt, 8);
  assert_int_equal(buf[NTP_HDR_LEN], 0xee);

  ntp_hdr h;
  assert_true(ntp_hdr_parse(buf, NTP_HDR_LEN, &h));
  assert_int_equal(h.mode, NTP_MODE_CLIENT);
  assert_int_equal(h.version, 4);
  assert_int_equal(h.leap, NTP_LEAP_NONE);
  assert_true(h.xmt == 0x0102030405060708ULL);
  assert_true(h.org == 0 && h.rec == 0 && h.ref == 0);
  /* A request carries no extension fields. */
  assert_int_equal(ntp_ef_validate(buf, NTP_HDR_LEN, NULL, NULL), NTP_EF_END);
}

static void test_build_request_versions(void **state)
{
  (void)state;
  uint8_t buf[NTP_HDR_LEN];
  ntp_hdr h;
  for (uint8_t v = 1; v <= 4; v++) {
    assert_int_equal(ntp_client_build_request(buf, sizeof(buf), v, NONCE), NTP_HDR_LEN);
    assert_int_equal(buf[0], (v << 3) | 3);
    assert_true(ntp_hdr_parse(buf, sizeof(buf), &h));
    assert_int_equal(h.version, v);
  }
  /* Out of range: falls back to version 4. */
  static const uint8_t bad[] = {0, 5, 7, 8, 255};
  for (size_t i = 0; i < sizeof(bad); i++) {
    assert_int_equal(ntp_client_build_request(buf, sizeof(buf), bad[i], NONCE), NTP_HDR_LEN);
    assert_int_equal(buf[0], 0x23);
  }
}

static void test_build_request_small(void **state)
{
  (void)state;
  uint8_t buf[NTP_HDR_LEN];
  assert_int_equal(ntp_client_build_request(buf, NTP_HDR_LEN - 1, 4, NONCE), 0);
  assert_int_equal(ntp_client_build_request(buf, 0, 4, NONCE), 0);
  assert_int_equal(ntp_client_build_request(NULL, 0, 4, NONCE), 0);
}

/* ---- good responses ----------------------------------------------------- */

static void test_sample_known_offset(void **state)
{
  (void)state;
  /* Server 0.25 s ahead, 10 ms each way, 1 ms processing. */
  xchg x;
  xchg_default(&x);
  ntp_sample s;
  ntp_kod kod = NTP_KOD_RATE;
  assert_int_equal(check(&x, &s, &kod), NTP_DROP_NONE);
  assert_int_equal(kod, NTP_KOD_NONE);
  assert_near(s.offset, 0.25, 1e-9);
  assert_near(s.delay, 0.020, 1e-9);
  double rtt = ntp_ts_diff(x.t4, x.t1);
  assert_near(rtt, 0.021, 1e-9);
  assert_near(s.dispersion, LOCAL_PREC + ldexp(1.0, -20) + NTP_PHI * rtt, 1e-15);
  assert_near(s.root_delay, 0.015, 1.0 / 65536);
  assert_near(s.root_disp, 0.03, 1.0 / 65536);
  assert_int_equal(s.stratum, 2);
  assert_int_equal(s.leap, NTP_LEAP_NONE);
  assert_int_equal(s.precision, -20);
  assert_int_equal(s.poll, 6);
  assert_int_equal(s.refid, NTP_REFID(192, 0, 2, 1));
  assert_true(s.t1 == x.t1 && s.t2 == x.t2 && s.t3 == x.t3 && s.t4 == x.t4);
}

static void test_sample_offsets(void **state)
{
  (void)state;
  static const struct {
    double offset, owd, proc;
  } cases[] = {
      {-0.25, 0.010, 0.001}, {0.0, 0.0005, 0.0},     {1000.5, 0.050, 0.002},
      {-3600.0, 0.1, 0.0},   {1e-6, 0.00001, 1e-6}, {123456.789, 0.2, 0.01},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    xchg x;
    xchg_init(&x, ts_at(1700000000, 999999999), cases[i].offset, cases[i].owd,
              cases[i].proc);
    xchg_encode(&x);
    ntp_sample s;
    assert_int_equal(check(&x, &s, NULL), NTP_DROP_NONE);
    assert_near(s.offset, cases[i].offset, 1e-9);
    double want_delay = 2 * cases[i].owd;
    if (want_delay < LOCAL_PREC)
      want_delay = LOCAL_PREC;
    assert_near(s.delay, want_delay, 1e-9);
    assert_true(s.delay > 0.0);
  }
}

static void test_sample_across_era(void **state)
{
  (void)state;
  /* Sent 5 ms before the 2036 rollover (local), server 0.25 s ahead: t2,
   * t3 and t4 are all in era 1 while t1 is in era 0. */
  xchg x;
  xchg_init(&x, ts_at(ERA1_UNIX - 1, 995000000), 0.25, 0.010, 0.001);
  assert_true(x.t1 >> 32 == 0xffffffffULL);
  assert_true(x.t2 >> 32 == 0 && x.t4 >> 32 == 0);
  xchg_encode(&x);
  ntp_sample s;
  assert_int_equal(check(&x, &s, NULL), NTP_DROP_NONE);
  assert_near(s.offset, 0.25, 1e-9);
  assert_near(s.delay, 0.020, 1e-9);

  /* Local clock after the rollover, server 2 s behind (still in era 0). */
  xchg_init(&x, ts_at(ERA1_UNIX, 500000000), -2.0, 0.010, 0.001);
  assert_true(x.t2 >> 32 == 0xfffffffeULL);
  assert_true(x.t1 >> 32 == 0);
  xchg_encode(&x);
  assert_int_equal(check(&x, &s, NULL), NTP_DROP_NONE);
  assert_near(s.offset, -2.0, 1e-9);
  assert_near(s.delay, 0.020, 1e-9);
}

static void test_sample_out_null(void **state)
{
  (void)state;
  xchg x;
  xchg_default(&x);
  assert_int_equal(check(&x, NULL, NULL), NTP_DROP_NONE);
}

static void test_old_versions_accepted(void **state)
{
  (void)state;
  for (uint8_t v = 1; v <= 4; v++) {
    xchg x;
    xchg_default(&x);
    x.h.version = v;
    xchg_encode(&x);
    ntp_sample s;
    assert_int_equal(check(&x, &s, NULL), NTP_DROP_NONE);
  }
}

static void test_response_with_ef_accepted(void **state)
{
  (void)state;
  xchg x;
  xchg_default(&x);
  wire_wr w;
  wire_wr_init(&w, x.pkt + x.len, sizeof(x.pkt) - x.len);
  static const uint8_t body[8] = {1, 2, 3};
  assert_true(ntp_ef_append(&w, NTP_EF_UNIQUE_ID, body, sizeof(body), NTP_EF_MIN_LEN));
  assert_true(ntp_ef_append(&w, 0x1234, body, sizeof(body), NTP_EF_MIN_LAST_LEN));
  x.len += wire_wr_len(&w);
  ntp_sample s;
  assert_int_equal(check(&x, &s, NULL), NTP_DROP_NONE);
  assert_near(s.offset, 0.25, 1e-9);
}

static void test_stratum_15_accepted(void **state)
{
  (void)state;
  xchg x;
  xchg_default(&x);
  x.h.stratum = 15;
  x.h.leap = NTP_LEAP_INSERT;
  xchg_encode(&x);
  ntp_sample s;
  assert_int_equal(check(&x, &s, NULL), NTP_DROP_NONE);
  assert_int_equal(s.stratum, 15);
  assert_int_equal(s.leap, NTP_LEAP_INSERT);
}

static void test_precision_clamped(void **state)
{
  (void)state;
  /* An absurdly fine server precision counts as 2^-30 s. */
  xchg x;
  xchg_default(&x);
  x.h.precision = -128;
  xchg_encode(&x);
  ntp_sample s;
  assert_int_equal(check(&x, &s, NULL), NTP_DROP_NONE);
  assert_int_equal(s.precision, -128);
  assert_near(s.dispersion, LOCAL_PREC + ldexp(1.0, -30) + NTP_PHI * ntp_ts_diff(x.t4, x.t1),
              1e-15);
}

static void test_root_limits(void **state)
{
  (void)state;
  /* Exactly 16 s root delay / dispersion is still accepted. */
  xchg x;
  xchg_default(&x);
  x.h.root_delay = ntp_short_from_double(16.0);
  x.h.root_disp = ntp_short_from_double(16.0);
  xchg_encode(&x);
  ntp_sample s;
  assert_int_equal(check(&x, &s, NULL), NTP_DROP_NONE);
  assert_near(s.root_delay, 16.0, 0.0);
}

static void test_small_negative_delay_clamped(void **state)
{
  (void)state;
  /* Server reports 2^-21 s more processing than our whole round trip:
   * within its 2^-20 precision, so accepted with delay at the floor. */
  xchg x;
  xchg_default(&x);
  x.h.xmt = ntp_ts_add(x.h.rec, 0.021 + ldexp(1.0, -21));
  x.t3 = x.h.xmt;
  xchg_encode(&x);
  ntp_sample s;
  assert_int_equal(check(&x, &s, NULL), NTP_DROP_NONE);
  assert_near(s.delay, LOCAL_PREC, 0.0);
}

/* ---- drops -------------------------------------------------------------- */

static void test_drop_short(void **state)
{
  (void)state;
  xchg x;
  xchg_default(&x);
  for (size_t len = 0; len < NTP_HDR_LEN; len++) {
    ntp_kod kod = NTP_KOD_DENY;
    assert_int_equal(ntp_client_check_response(x.pkt, len, NONCE, 0, x.t1, x.t4, LOCAL_PREC,
                                               NULL, &kod),
                     NTP_DROP_SHORT);
    assert_int_equal(kod, NTP_KOD_NONE);
  }
  assert_int_equal(
      ntp_client_check_response(NULL, 0, NONCE, 0, x.t1, x.t4, LOCAL_PREC, NULL, NULL),
      NTP_DROP_SHORT);
}

static void test_drop_version(void **state)
{
  (void)state;
  static const uint8_t bad[] = {0, 5, 6, 7};
  for (size_t i = 0; i < sizeof(bad); i++) {
    xchg x;
    xchg_default(&x);
    x.h.version = bad[i];
    assert_drop(&x, NTP_DROP_VERSION);
  }
}

static void test_drop_mode(void **state)
{
  (void)state;
  static const uint8_t bad[] = {0, 1, 2, 3, 5, 6, 7};
  for (size_t i = 0; i < sizeof(bad); i++) {
    xchg x;
    xchg_default(&x);
    x.h.mode = bad[i];
    assert_drop(&x, NTP_DROP_MODE);
  }
}

static void test_drop_malformed_ef(void **state)
{
  (void)state;
  xchg x;
  /* Trailing bytes that are neither a field nor a MAC. */
  static const size_t junk[] = {1, 3, 8, 12, 16};
  for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
    xchg_default(&x);
    memset(x.pkt + x.len, 0, junk[i]);
    x.len += junk[i];
    assert_int_equal(check(&x, NULL, NULL), NTP_DROP_MALFORMED);
  }
  /* A field whose length overruns the packet. */
  xchg_default(&x);
  static const uint8_t ef[32] = {0x01, 0x04, 0x00, 0x40};
  memcpy(x.pkt + x.len, ef, sizeof(ef));
  x.len += sizeof(ef);
  assert_int_equal(check(&x, NULL, NULL), NTP_DROP_MALFORMED);
}

static void test_drop_mac(void **state)
{
  (void)state;
  static const size_t macs[] = {4, 20, 24};
  for (size_t i = 0; i < 3; i++) {
    xchg x;
    xchg_default(&x);
    memset(x.pkt + x.len, 0x42, macs[i]);
    x.len += macs[i];
    ntp_sample s;
    assert_int_equal(check(&x, &s, NULL), NTP_DROP_AUTH);
  }
}

static void test_drop_unexpected(void **state)
{
  (void)state;
  xchg x;
  xchg_default(&x);
  /* No request outstanding: even a response whose origin is 0 is refused. */
  x.h.org = 0;
  xchg_encode(&x);
  ntp_sample s;
  assert_int_equal(
      ntp_client_check_response(x.pkt, x.len, 0, 0, x.t1, x.t4, LOCAL_PREC, &s, NULL),
      NTP_DROP_UNEXPECTED);
  xchg_default(&x);
  assert_int_equal(
      ntp_client_check_response(x.pkt, x.len, 0, 0, x.t1, x.t4, LOCAL_PREC, &s, NULL),
      NTP_DROP_UNEXPECTED);
}

static void test_drop_bogus_origin(void **state)
{
  (void)state;
  static const ntp_ts bad[] = {NONCE + 1, NONCE - 1, NONCE ^ (1ULL << 63), 0,
                               0xffffffffffffffffULL};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    xchg x;
    xchg_default(&x);
    x.h.org = bad[i];
    assert_drop(&x, NTP_DROP_BOGUS);
  }
  /* A kiss with the wrong origin is spoofed: bogus, not acted on. */
  xchg x;
  xchg_default(&x);
  x.h.org = NONCE + 1;
  x.h.stratum = 0;
  x.h.refid = NTP_REFID('D', 'E', 'N', 'Y');
  assert_drop(&x, NTP_DROP_BOGUS);
}

static void test_drop_duplicate(void **state)
{
  (void)state;
  xchg x;
  xchg_default(&x);
  ntp_sample s;
  /* Same transmit timestamp as the previously accepted response. */
  assert_int_equal(ntp_client_check_response(x.pkt, x.len, NONCE, x.t3, x.t1, x.t4,
                                             LOCAL_PREC, &s, NULL),
                   NTP_DROP_DUPLICATE);
  /* A replay of an older response also has the old origin: still duplicate. */
  x.h.org = NONCE - 99;
  xchg_encode(&x);
  assert_int_equal(ntp_client_check_response(x.pkt, x.len, NONCE, x.t3, x.t1, x.t4,
                                             LOCAL_PREC, &s, NULL),
                   NTP_DROP_DUPLICATE);
  /* A different previous xmt is not a duplicate. */
  xchg_default(&x);
  assert_int_equal(ntp_client_check_response(x.pkt, x.len, NONCE, x.t3 + 1, x.t1, x.t4,
                                             LOCAL_PREC, &s, NULL),
                   NTP_DROP_NONE);
}

static void test_drop_kod(void **state)
{
  (void)state;
  static const struct {
    uint32_t refid;
    ntp_kod kod;
  } cases[] = {
      {NTP_REFID('D', 'E', 'N', 'Y'), NTP_KOD_DENY},
      {NTP_REFID('R', 'S', 'T', 'R'), NTP_KOD_RSTR},
      {NTP_REFID('R', 'A', 'T', 'E'), NTP_KOD_RATE},
      {NTP_REFID('N', 'T', 'S', 'N'), NTP_KOD_NTSN},
      /* Informational codes: not synchronised yet, not a kiss. */
      {NTP_REFID('A', 'C', 'S', 'T'), NTP_KOD_OTHER},
      {NTP_REFID('I', 'N', 'I', 'T'), NTP_KOD_OTHER},
      {0, NTP_KOD_OTHER},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    xchg x;
    xchg_default(&x);
    x.h.stratum = 0;
    x.h.leap = NTP_LEAP_UNSYNC;
    x.h.refid = cases[i].refid;
    /* Kisses usually carry zero timestamps: KoD is reported first. */
    x.h.rec = 0;
    x.h.xmt = 0;
    xchg_encode(&x);
    ntp_kod kod = NTP_KOD_NONE;
    ntp_sample s;
    memset(&s, 0x5a, sizeof(s));
    ntp_sample untouched = s;
    ntp_drop want = cases[i].kod == NTP_KOD_OTHER ? NTP_DROP_UNSYNC : NTP_DROP_KOD;
    assert_int_equal(check(&x, &s, &kod), want);
    assert_int_equal(kod, cases[i].kod);
    assert_memory_equal(&s, &untouched, sizeof(s));
    /* kod may be NULL. */
    assert_int_equal(check(&x, &s, NULL), want);
  }
}

static void test_drop_zero_ts(void **state)
{
  (void)state;
  xchg x;
  xchg_default(&x);
  x.h.rec = 0;
  assert_drop(&x, NTP_DROP_ZERO_TS);
  xchg_default(&x);
  x.h.xmt = 0;
  assert_drop(&x, NTP_DROP_ZERO_TS);
  xchg_default(&x);
  x.h.rec = 0;
  x.h.xmt = 0;
  assert_drop(&x, NTP_DROP_ZERO_TS);
}

static void test_drop_unsync(void **state)
{
  (void)state;
  xchg x;
  xchg_default(&x);
  x.h.leap = NTP_LEAP_UNSYNC;
  assert_drop(&x, NTP_DROP_UNSYNC);
  static const uint8_t strata[] = {16, 17, 255};
  for (size_t i = 0; i < sizeof(strata); i++) {
    xchg_default(&x);
    x.h.stratum = strata[i];
    assert_drop(&x, NTP_DROP_UNSYNC);
  }
}

static void test_drop_bad_times(void **state)
{
  (void)state;
  xchg x;
  /* Server transmit before its receive. */
  xchg_default(&x);
  x.h.xmt = ntp_ts_add(x.h.rec, -0.001);
  assert_drop(&x, NTP_DROP_BAD_TIMES);

  /* Local receive before local send (t4 < t1). */
  xchg_default(&x);
  ntp_sample s;
  assert_int_equal(ntp_client_check_response(x.pkt, x.len, NONCE, 0, x.t4, x.t1, LOCAL_PREC,
                                             &s, NULL),
                   NTP_DROP_BAD_TIMES);

  /* Server claims to have spent longer than the whole round trip. */
  xchg_default(&x);
  x.h.xmt = ntp_ts_add(x.h.rec, 0.030);
  assert_drop(&x, NTP_DROP_BAD_TIMES);

  /* Absurd root delay / dispersion (> 16 s). */
  xchg_default(&x);
  x.h.root_delay = ntp_short_from_double(16.5);
  assert_drop(&x, NTP_DROP_BAD_TIMES);
  xchg_default(&x);
  x.h.root_disp = 0xffffffffu;
  assert_drop(&x, NTP_DROP_BAD_TIMES);
  xchg_default(&x);
  x.h.root_delay = ntp_short_from_double(16.0) + 1;
  assert_drop(&x, NTP_DROP_BAD_TIMES);
}

static void test_drop_order(void **state)
{
  (void)state;
  /* When several tests fail, the earlier one in the documented order wins. */
  xchg x;
  xchg_default(&x);
  x.h.version = 0;
  x.h.mode = NTP_MODE_CLIENT;
  assert_drop(&x, NTP_DROP_VERSION);

  xchg_default(&x);
  x.h.mode = NTP_MODE_BROADCAST;
  x.h.org = 0;
  assert_drop(&x, NTP_DROP_MODE);

  xchg_default(&x);
  x.h.org = 1;
  x.h.rec = 0;
  x.h.leap = NTP_LEAP_UNSYNC;
  assert_drop(&x, NTP_DROP_BOGUS);

  xchg_default(&x);
  x.h.rec = 0;
  x.h.leap = NTP_LEAP_UNSYNC;
  assert_drop(&x, NTP_DROP_ZERO_TS);

  xchg_default(&x);
  x.h.leap = NTP_LEAP_UNSYNC;
  x.h.xmt = ntp_ts_add(x.h.rec, -1.0);
  assert_drop(&x, NTP_DROP_UNSYNC);

  /* A replay of the last accepted response is a duplicate even when no
   * request is outstanding any more. */
  xchg_default(&x);
  assert_int_equal(
      ntp_client_check_response(x.pkt, x.len, 0, x.t3, x.t1, x.t4, LOCAL_PREC, NULL, NULL),
      NTP_DROP_DUPLICATE);

  /* MAC before the origin checks. */
  xchg_default(&x);
  x.h.org = 1;
  xchg_encode(&x);
  memset(x.pkt + x.len, 0, 20);
  x.len += 20;
  assert_int_equal(check(&x, NULL, NULL), NTP_DROP_AUTH);
}

static void test_drop_names(void **state)
{
  (void)state;
  static const char *const want[NTP_DROP_COUNT] = {
      "none",  "short",     "version", "mode", "malformed", "auth",      "unexpected",
      "bogus", "duplicate", "zero_ts", "kod",  "unsync",    "bad_times",
  };
  for (int d = 0; d < NTP_DROP_COUNT; d++)
    assert_string_equal(ntp_drop_name((ntp_drop)d), want[d]);
  assert_string_equal(ntp_drop_name(NTP_DROP_COUNT), "?");
  assert_string_equal(ntp_drop_name((ntp_drop)1000), "?");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_build_request),
      cmocka_unit_test(test_build_request_versions),
      cmocka_unit_test(test_build_request_small),
      cmocka_unit_test(test_sample_known_offset),
      cmocka_unit_test(test_sample_offsets),
      cmocka_unit_test(test_sample_across_era),
      cmocka_unit_test(test_sample_out_null),
      cmocka_unit_test(test_old_versions_accepted),
      cmocka_unit_test(test_response_with_ef_accepted),
      cmocka_unit_test(test_stratum_15_accepted),
      cmocka_unit_test(test_precision_clamped),
      cmocka_unit_test(test_root_limits),
      cmocka_unit_test(test_small_negative_delay_clamped),
      cmocka_unit_test(test_drop_short),
      cmocka_unit_test(test_drop_version),
      cmocka_unit_test(test_drop_mode),
      cmocka_unit_test(test_drop_malformed_ef),
      cmocka_unit_test(test_drop_mac),
      cmocka_unit_test(test_drop_unexpected),
      cmocka_unit_test(test_drop_bogus_origin),
      cmocka_unit_test(test_drop_duplicate),
      cmocka_unit_test(test_drop_kod),
      cmocka_unit_test(test_drop_zero_ts),
      cmocka_unit_test(test_drop_unsync),
      cmocka_unit_test(test_drop_bad_times),
      cmocka_unit_test(test_drop_order),
      cmocka_unit_test(test_drop_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
