/* Unit tests for proto/statsfmt.c: exact lines as NTPsec 1.2 writes them
 * (the expected lines are NTPsec's own, from one run, values re-entered). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/statsfmt.h"

/* 2026-12-07 13:09:56.312 UTC: MJD 61381, second 47396 of the day. */
static const statsfmt_time T = {.sec = 1796648996, .nsec = 312999999};

/* The NTP timestamp of a Unix time plus nanoseconds, as the wire has it. */
static ntp_ts ts(uint64_t unix_sec, uint64_t ns)
{
  return (unix_sec + NTP_UNIX_OFFSET) << 32 | ((ns << 32) + 500000000ULL) / 1000000000ULL;
}

static void test_day(void **state)
{
  (void)state;
  char s[9];
  assert_int_equal(statsfmt_day(0), 0);
  assert_int_equal(statsfmt_day(86399), 0);
  assert_int_equal(statsfmt_day(86400), 1);
  assert_int_equal(statsfmt_day(-1), -1);
  statsfmt_day_suffix(statsfmt_day(T.sec), s);
  assert_string_equal(s, "20261207");
  statsfmt_day_suffix(0, s);
  assert_string_equal(s, "19700101");
  statsfmt_day_suffix(statsfmt_day(951782400), s); /* a leap day */
  assert_string_equal(s, "20000229");
  statsfmt_day_suffix(statsfmt_day(951868800), s);
  assert_string_equal(s, "20000301");
  statsfmt_day_suffix(statsfmt_day(4102444799), s);
  assert_string_equal(s, "20991231");
}

static void test_loopstats(void **state)
{
  (void)state;
  char b[STATSFMT_LINE_MAX];
  statsfmt_loop l = {.offset = 0.000006019, .freq_ppm = 13.77819, .jitter = 0.000351733,
                     .wander_ppm = 0.0133806, .time_constant = 6};
  statsfmt_time t = {.sec = (int64_t)(50935 - 40587) * 86400 + 75440, .nsec = 31000000};
  size_t n = statsfmt_loopstats(b, sizeof(b), t, &l);
  assert_string_equal(b, "50935 75440.031 0.000006019 13.778190 0.000351733 0.013381 6\n");
  assert_int_equal(n, strlen(b));
  l.offset = -0.5;
  l.freq_ppm = -500;
  statsfmt_loopstats(b, sizeof(b), T, &l);
  assert_string_equal(b, "61381 47396.312 -0.500000000 -500.000000 0.000351733 0.013381 6\n");
}

static void test_peerstats(void **state)
{
  (void)state;
  char b[STATSFMT_LINE_MAX];
  statsfmt_peer p = {.addr = "10.89.0.1", .status = 0xb61a, .offset = 0.000016160,
                     .delay = 0.000052104, .dispersion = 0.000029020, .jitter = 0.000006318};
  statsfmt_peerstats(b, sizeof(b), T, &p);
  assert_string_equal(b, "61381 47396.312 10.89.0.1 b61a 0.000016160 0.000052104 "
                         "0.000029020 0.000006318\n");
  p.status = 0x9014;
  strcpy(p.addr, "2001:db8::1");
  p.offset = -1.25;
  statsfmt_peerstats(b, sizeof(b), T, &p);
  assert_string_equal(b, "61381 47396.312 2001:db8::1 9014 -1.250000000 0.000052104 "
                         "0.000029020 0.000006318\n");
}

static void test_rawstats(void **state)
{
  (void)state;
  char b[STATSFMT_LINE_MAX];
  statsfmt_raw r = {.src = "10.89.0.1", .dst = "10.89.0.2",
                    .t1 = ts(1796648996, 312132773), .t2 = ts(1796648996, 312206124),
                    .t3 = ts(1796648996, 312271411), .t4 = ts(1796648996, 312281528),
                    .leap = 0, .version = 4, .mode = 4, .stratum = 1, .poll = 0,
                    .precision = -26, .root_delay = 0, .root_disp = 0.0000152,
                    .refid = 0x4c4f434c /* LOCL */};
  size_t n = statsfmt_rawstats(b, sizeof(b), T, &r);
  assert_string_equal(b, "61381 47396.312 10.89.0.1 10.89.0.2 4005637796.312132773 "
                         "4005637796.312206124 4005637796.312271411 4005637796.312281528 "
                         "0 4 4 1 0 -26 0.000000 0.000015 .LOCL. 0 0 0\n");
  assert_int_equal(n, strlen(b));
  /* Stratum 2: the refid is an address; a fraction that rounds up carries. */
  r.stratum = 2;
  r.refid = 0x0a590001;
  r.leap = 3;
  r.t4 = (uint64_t)4005637796 << 32 | 0xffffffffu;
  r.lost = 2;
  statsfmt_rawstats(b, sizeof(b), T, &r);
  assert_non_null(strstr(b, " 4005637797.000000000 3 4 4 2 0 -26 0.000000 0.000015 "
                            "10.89.0.1 2 0 0\n"));
}

static void test_refid(void **state)
{
  (void)state;
  char s[16];
  statsfmt_refid(1, 0x47505300, s); /* "GPS\0" */
  assert_string_equal(s, ".GPS.");
  statsfmt_refid(0, 0x52415445, s);
  assert_string_equal(s, ".RATE.");
  statsfmt_refid(1, 0x0a00ff1b, s); /* control bytes dropped */
  assert_string_equal(s, "..");
  statsfmt_refid(3, 0xc0000201, s);
  assert_string_equal(s, "192.0.2.1");
}

static void test_status(void **state)
{
  (void)state;
  /* NTPsec's own words for a configured, reachable plain-NTP server:
   * b014 just reachable, b61a once it is the system peer. */
  statsfmt_peer_state s = {.configured = true, .authentic = true, .reachable = true,
                           .sel = NTP_SEL_UNUSABLE, .last_event = STATSFMT_EVNT_REACH,
                           .event_count = 1};
  assert_int_equal(statsfmt_peer_status(&s), 0xb014);
  s.sel = NTP_SEL_SYSPEER;
  s.last_event = STATSFMT_EVNT_SYSPEER;
  assert_int_equal(statsfmt_peer_status(&s), 0xb61a);
  s.sel = NTP_SEL_CANDIDATE;
  s.auth_enabled = true;
  s.event_count = 40; /* saturates */
  assert_int_equal(statsfmt_peer_status(&s), 0xf4fa);
  s = (statsfmt_peer_state){.configured = true, .sel = NTP_SEL_FALSETICKER,
                            .last_event = STATSFMT_EVNT_UNREACH, .event_count = 2};
  assert_int_equal(statsfmt_peer_status(&s), 0x8123);
  s.sel = (ntp_sel_state)99; /* out of range: no selection code */
  assert_int_equal(statsfmt_peer_status(&s), 0x8023);
}

static void test_too_small(void **state)
{
  (void)state;
  char b[20];
  statsfmt_peer p = {.addr = "10.89.0.1"};
  assert_int_equal(statsfmt_peerstats(b, sizeof(b), T, &p), 0);
  assert_int_equal(statsfmt_peerstats(b, 5, T, &p), 0);
  statsfmt_raw r = {.src = "a", .dst = "b"};
  assert_int_equal(statsfmt_rawstats(b, sizeof(b), T, &r), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_day),      cmocka_unit_test(test_loopstats),
      cmocka_unit_test(test_peerstats), cmocka_unit_test(test_rawstats),
      cmocka_unit_test(test_refid),    cmocka_unit_test(test_status),
      cmocka_unit_test(test_too_small),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
