/* Unit tests for src/proto/ratelimit: per-client token buckets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/ratelimit.h"

static const uint8_t key[16] = {0x6b, 0x65, 0x79, 0x21, 0x13, 0x37, 0xc0, 0xde,
                                0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};

static const uint8_t v4a[4] = {192, 0, 2, 1};
static const uint8_t v4b[4] = {192, 0, 2, 2};

static ntp_rl_result chk4(ntp_ratelimit *rl, const uint8_t *a, double now)
{
  return ntp_rl_check(rl, ACL_INET, a, now, false);
}

/* 2001:db8:<h2>:<h3>::<last> */
static void mk6(uint8_t out[16], uint16_t h2, uint16_t h3, uint8_t last)
{
  memset(out, 0, 16);
  out[0] = 0x20;
  out[1] = 0x01;
  out[2] = 0x0d;
  out[3] = 0xb8;
  out[4] = (uint8_t)(h2 >> 8);
  out[5] = (uint8_t)h2;
  out[6] = (uint8_t)(h3 >> 8);
  out[7] = (uint8_t)h3;
  out[15] = last;
}

static void test_first_packet_passes(void **state)
{
  (void)state;
  /* Even with the tightest settings, a new client's first packet passes. */
  ntp_ratelimit *rl = ntp_rl_create(64, 1000.0, 1000.0, 1, key);
  assert_non_null(rl);
  assert_int_equal(chk4(rl, v4a, 5.0), NTP_RL_PASS);
  uint8_t a6[16];
  mk6(a6, 1, 1, 1);
  assert_int_equal(ntp_rl_check(rl, ACL_INET6, a6, 5.0, true), NTP_RL_PASS);
  ntp_rl_destroy(rl);
  ntp_rl_destroy(NULL);
}

static void test_burst_then_limited(void **state)
{
  (void)state;
  ntp_ratelimit *rl = ntp_rl_create(64, 8.0, 0.0, 4, key);
  for (int i = 0; i < 4; i++)
    assert_int_equal(chk4(rl, v4a, 100.0), NTP_RL_PASS);
  assert_int_equal(chk4(rl, v4a, 100.0), NTP_RL_LIMITED);
  assert_int_equal(chk4(rl, v4a, 100.5), NTP_RL_LIMITED);
  assert_int_equal(chk4(rl, v4a, 101.0), NTP_RL_LIMITED);
  ntp_rl_destroy(rl);
}

static void test_refill(void **state)
{
  (void)state;
  ntp_ratelimit *rl = ntp_rl_create(64, 8.0, 0.0, 4, key);
  for (int i = 0; i < 4; i++)
    assert_int_equal(chk4(rl, v4a, 100.0), NTP_RL_PASS);
  assert_int_equal(chk4(rl, v4a, 100.0), NTP_RL_LIMITED);
  /* Half an interval: half a token, still limited. */
  assert_int_equal(chk4(rl, v4a, 104.0), NTP_RL_LIMITED);
  /* One full interval since the bucket ran dry: one more packet. */
  assert_int_equal(chk4(rl, v4a, 108.0), NTP_RL_PASS);
  assert_int_equal(chk4(rl, v4a, 108.0), NTP_RL_LIMITED);
  /* A long pause refills to the burst size, no further. */
  for (int i = 0; i < 4; i++)
    assert_int_equal(chk4(rl, v4a, 10000.0), NTP_RL_PASS);
  assert_int_equal(chk4(rl, v4a, 10000.0), NTP_RL_LIMITED);
  /* A client polling exactly at the average rate is never limited. */
  for (int i = 1; i <= 50; i++)
    assert_int_equal(chk4(rl, v4b, 2000.0 + 8.0 * i), NTP_RL_PASS);
  ntp_rl_destroy(rl);
}

static void test_sustained_rate(void **state)
{
  (void)state;
  /* A client sending 4x faster than allowed gets ~1/4 through (+ burst). */
  ntp_ratelimit *rl = ntp_rl_create(64, 4.0, 0.0, 3, key);
  int pass = 0;
  for (int i = 0; i < 400; i++)
    if (chk4(rl, v4a, (double)i) == NTP_RL_PASS)
      pass++;
  assert_in_range(pass, 100, 103);
  ntp_rl_destroy(rl);
}

static void test_minimum_interval(void **state)
{
  (void)state;
  /* Plenty of tokens, but packets closer than 2 s are refused. */
  ntp_ratelimit *rl = ntp_rl_create(64, 1.0, 2.0, 8, key);
  assert_int_equal(chk4(rl, v4a, 0.0), NTP_RL_PASS);
  assert_int_equal(chk4(rl, v4a, 1.0), NTP_RL_LIMITED);
  /* The gap counts from the last packet, refused or not. */
  assert_int_equal(chk4(rl, v4a, 2.5), NTP_RL_LIMITED);
  assert_int_equal(chk4(rl, v4a, 4.5), NTP_RL_PASS);
  assert_int_equal(chk4(rl, v4a, 6.5), NTP_RL_PASS);
  assert_int_equal(chk4(rl, v4a, 8.4), NTP_RL_LIMITED);
  assert_int_equal(chk4(rl, v4a, 20.0), NTP_RL_PASS);
  ntp_rl_destroy(rl);
}

static void test_kod_once_per_average(void **state)
{
  (void)state;
  ntp_ratelimit *rl = ntp_rl_create(64, 2.0, 0.0, 1, key);
  /* A flood every 0.1 s for 20 s asking for kisses. */
  int kods = 0, pass = 0;
  double last_kod = -1e9;
  for (int i = 0; i < 200; i++) {
    double now = 100.0 + 0.1 * i;
    ntp_rl_result r = ntp_rl_check(rl, ACL_INET, v4a, now, true);
    if (r == NTP_RL_LIMITED_KOD) {
      assert_true(now - last_kod >= 2.0 - 1e-9);
      last_kod = now;
      kods++;
    } else if (r == NTP_RL_PASS) {
      pass++;
    }
  }
  assert_in_range(kods, 1, 10);
  assert_in_range(pass, 9, 11);
  ntp_rl_destroy(rl);
}

static void test_kod_sequence(void **state)
{
  (void)state;
  ntp_ratelimit *rl = ntp_rl_create(64, 10.0, 0.0, 1, key);
  assert_int_equal(ntp_rl_check(rl, ACL_INET, v4a, 0.0, true), NTP_RL_PASS);
  /* First limited packet may be kissed, the next ones not. */
  assert_int_equal(ntp_rl_check(rl, ACL_INET, v4a, 0.0, true), NTP_RL_LIMITED_KOD);
  assert_int_equal(ntp_rl_check(rl, ACL_INET, v4a, 0.0, true), NTP_RL_LIMITED);
  assert_int_equal(ntp_rl_check(rl, ACL_INET, v4a, 5.0, true), NTP_RL_LIMITED);
  assert_int_equal(ntp_rl_check(rl, ACL_INET, v4a, 9.0, true), NTP_RL_LIMITED);
  assert_int_equal(ntp_rl_check(rl, ACL_INET, v4a, 10.0, true), NTP_RL_PASS);
  /* 10 s after the first kiss another one is allowed. */
  assert_int_equal(ntp_rl_check(rl, ACL_INET, v4a, 10.0, true), NTP_RL_LIMITED_KOD);
  assert_int_equal(ntp_rl_check(rl, ACL_INET, v4a, 10.0, true), NTP_RL_LIMITED);
  ntp_rl_destroy(rl);
}

static void test_no_kod_without_flag(void **state)
{
  (void)state;
  ntp_ratelimit *rl = ntp_rl_create(64, 1.0, 0.0, 1, key);
  for (int i = 0; i < 100; i++)
    assert_int_not_equal(chk4(rl, v4a, 0.01 * i), NTP_RL_LIMITED_KOD);
  /* Not asking earlier does not use up the kiss. */
  assert_int_equal(ntp_rl_check(rl, ACL_INET, v4a, 0.995, true), NTP_RL_LIMITED_KOD);
  ntp_rl_destroy(rl);
}

static void test_clients_independent(void **state)
{
  (void)state;
  ntp_ratelimit *rl = ntp_rl_create(65536, 16.0, 0.0, 2, key);
  uint8_t addrs[10][4];
  for (int i = 0; i < 10; i++) {
    addrs[i][0] = 198;
    addrs[i][1] = 51;
    addrs[i][2] = 100;
    addrs[i][3] = (uint8_t)(i + 1);
  }
  /* Client 0 exhausts its bucket... */
  assert_int_equal(chk4(rl, addrs[0], 50.0), NTP_RL_PASS);
  assert_int_equal(chk4(rl, addrs[0], 50.0), NTP_RL_PASS);
  assert_int_equal(chk4(rl, addrs[0], 50.0), NTP_RL_LIMITED);
  /* ...the others still have theirs... */
  for (int i = 1; i < 10; i++) {
    assert_int_equal(chk4(rl, addrs[i], 50.0), NTP_RL_PASS);
    assert_int_equal(chk4(rl, addrs[i], 50.0), NTP_RL_PASS);
    assert_int_equal(chk4(rl, addrs[i], 50.0), NTP_RL_LIMITED);
  }
  /* ...and their traffic did not reset client 0. */
  assert_int_equal(chk4(rl, addrs[0], 50.0), NTP_RL_LIMITED);
  ntp_rl_destroy(rl);
}

static void test_v6_per_64(void **state)
{
  (void)state;
  ntp_ratelimit *rl = ntp_rl_create(65536, 16.0, 0.0, 1, key);
  uint8_t a[16], b[16], c[16];
  mk6(a, 0x10, 0x20, 1);
  mk6(b, 0x10, 0x20, 0xfe); /* same /64 */
  mk6(c, 0x10, 0x21, 1);    /* next /64 */
  assert_int_equal(ntp_rl_check(rl, ACL_INET6, a, 0.0, false), NTP_RL_PASS);
  /* The whole /64 shares one bucket. */
  assert_int_equal(ntp_rl_check(rl, ACL_INET6, b, 0.0, false), NTP_RL_LIMITED);
  assert_int_equal(ntp_rl_check(rl, ACL_INET6, c, 0.0, false), NTP_RL_PASS);
  assert_int_equal(ntp_rl_check(rl, ACL_INET6, c, 0.0, false), NTP_RL_LIMITED);
  ntp_rl_destroy(rl);
}

static void test_v4_v6_distinct(void **state)
{
  (void)state;
  ntp_ratelimit *rl = ntp_rl_create(65536, 16.0, 0.0, 1, key);
  /* v4 10.0.0.1 and v6 0a00:1::/64 start with the same bytes. */
  const uint8_t v4[4] = {10, 0, 0, 1};
  uint8_t v6[16] = {0x0a, 0x00, 0x00, 0x01};
  assert_int_equal(chk4(rl, v4, 0.0), NTP_RL_PASS);
  assert_int_equal(chk4(rl, v4, 0.0), NTP_RL_LIMITED);
  assert_int_equal(ntp_rl_check(rl, ACL_INET6, v6, 0.0, false), NTP_RL_PASS);
  assert_int_equal(ntp_rl_check(rl, ACL_INET6, v6, 0.0, false), NTP_RL_LIMITED);
  assert_int_equal(chk4(rl, v4, 0.0), NTP_RL_LIMITED);

  /* The v6 /64 whose bytes 4..7 are 00 00 00 04 must not share the bucket
   * of the v4 address equal to its bytes 0..3 either: 32.1.13.184 vs
   * 2001:db8:0:4::/64 (global unicast space). */
  const uint8_t v4c[4] = {32, 1, 13, 184};
  uint8_t v6c[16];
  mk6(v6c, 0, 4, 1);
  assert_int_equal(chk4(rl, v4c, 0.0), NTP_RL_PASS);
  assert_int_equal(chk4(rl, v4c, 0.0), NTP_RL_LIMITED);
  assert_int_equal(ntp_rl_check(rl, ACL_INET6, v6c, 0.0, false), NTP_RL_PASS);
  assert_int_equal(ntp_rl_check(rl, ACL_INET6, v6c, 0.0, false), NTP_RL_LIMITED);
  assert_int_equal(chk4(rl, v4c, 0.0), NTP_RL_LIMITED);
  ntp_rl_destroy(rl);
}

static void test_eviction_is_lenient(void **state)
{
  (void)state;
  /* One slot: every client evicts the previous one, which then starts
   * afresh (never stricter than intended). */
  ntp_ratelimit *rl = ntp_rl_create(1, 100.0, 0.0, 1, key);
  assert_int_equal(chk4(rl, v4a, 0.0), NTP_RL_PASS);
  assert_int_equal(chk4(rl, v4a, 0.0), NTP_RL_LIMITED);
  assert_int_equal(chk4(rl, v4b, 0.0), NTP_RL_PASS);
  assert_int_equal(chk4(rl, v4a, 0.0), NTP_RL_PASS);
  ntp_rl_destroy(rl);
}

static void test_clock_backwards(void **state)
{
  (void)state;
  ntp_ratelimit *rl = ntp_rl_create(64, 4.0, 1.0, 2, key);
  assert_int_equal(chk4(rl, v4a, 100.0), NTP_RL_PASS);
  /* Time going backwards gives no tokens and counts as a zero gap. */
  assert_int_equal(chk4(rl, v4a, 50.0), NTP_RL_LIMITED);
  assert_int_equal(chk4(rl, v4a, 51.5), NTP_RL_PASS);
  assert_int_equal(chk4(rl, v4a, 53.0), NTP_RL_LIMITED); /* bucket empty */
  ntp_rl_destroy(rl);
}

static void test_degenerate_params(void **state)
{
  (void)state;
  /* burst 0 acts as 1; average <= 0 acts as 1 s; slots 0 gives one slot. */
  ntp_ratelimit *rl = ntp_rl_create(0, 0.0, 0.0, 0, key);
  assert_non_null(rl);
  assert_int_equal(chk4(rl, v4a, 0.0), NTP_RL_PASS);
  assert_int_equal(chk4(rl, v4a, 0.5), NTP_RL_LIMITED);
  assert_int_equal(chk4(rl, v4a, 1.5), NTP_RL_PASS);
  ntp_rl_destroy(rl);

  rl = ntp_rl_create(100, -5.0, 0.0, 1, key);
  assert_int_equal(chk4(rl, v4a, 0.0), NTP_RL_PASS);
  assert_int_equal(chk4(rl, v4a, 1.0), NTP_RL_PASS);
  ntp_rl_destroy(rl);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_first_packet_passes),
      cmocka_unit_test(test_burst_then_limited),
      cmocka_unit_test(test_refill),
      cmocka_unit_test(test_sustained_rate),
      cmocka_unit_test(test_minimum_interval),
      cmocka_unit_test(test_kod_once_per_average),
      cmocka_unit_test(test_kod_sequence),
      cmocka_unit_test(test_no_kod_without_flag),
      cmocka_unit_test(test_clients_independent),
      cmocka_unit_test(test_v6_per_64),
      cmocka_unit_test(test_v4_v6_distinct),
      cmocka_unit_test(test_eviction_is_lenient),
      cmocka_unit_test(test_clock_backwards),
      cmocka_unit_test(test_degenerate_params),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
