/* Unit tests for proto/select.c (interim system-peer choice). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/ntp_pkt.h"
#include "proto/select.h"

static ntp_source_info usable(double delay)
{
  ntp_source_info i;
  memset(&i, 0, sizeof(i));
  i.have_sample = true;
  i.reach = 0xff;
  i.stratum = 2;
  i.delay = delay;
  i.dispersion = 0.001;
  i.jitter = 0.0001;
  return i;
}

static const ntp_select_cfg cfg = {.mindist = 0.001, .maxdist = 1.5};

static void test_none_usable(void **state)
{
  (void)state;
  ntp_source_info in[3] = {usable(0.01), usable(0.01), usable(0.01)};
  in[0].have_sample = false;
  in[1].reach = 0;
  in[2].stratum = 16;
  ntp_sel_state st[3];
  assert_int_equal(ntp_select(in, 3, &cfg, st), -1);
  for (int i = 0; i < 3; i++)
    assert_int_equal(st[i], NTP_SEL_UNUSABLE);
  assert_int_equal(ntp_select(NULL, 0, &cfg, st), -1);
}

static void test_smallest_distance_wins(void **state)
{
  (void)state;
  ntp_source_info in[3] = {usable(0.05), usable(0.01), usable(0.03)};
  ntp_sel_state st[3];
  assert_int_equal(ntp_select(in, 3, &cfg, st), 1);
  assert_int_equal(st[1], NTP_SEL_SYSPEER);
  assert_int_equal(st[0], NTP_SEL_CANDIDATE);
  assert_int_equal(ntp_sel_tally(st[1]), '*');
  assert_int_equal(ntp_sel_tally(st[0]), '+');
}

static void test_prefer_wins(void **state)
{
  (void)state;
  ntp_source_info in[2] = {usable(0.01), usable(0.05)};
  in[1].prefer = true;
  ntp_sel_state st[2];
  assert_int_equal(ntp_select(in, 2, &cfg, st), 1);
}

static void test_noselect_far_kod(void **state)
{
  (void)state;
  ntp_source_info in[4] = {usable(0.01), usable(4.0), usable(0.02), usable(0.03)};
  in[0].noselect = true;
  in[2].denied = true;
  ntp_sel_state st[4];
  assert_int_equal(ntp_select(in, 4, &cfg, st), 3);
  assert_int_equal(st[0], NTP_SEL_NOSELECT);
  assert_int_equal(st[1], NTP_SEL_FAR);
  assert_int_equal(st[2], NTP_SEL_UNUSABLE);
  in[3].leap = NTP_LEAP_UNSYNC;
  assert_int_equal(ntp_select(in, 4, &cfg, st), -1);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_none_usable),
      cmocka_unit_test(test_smallest_distance_wins),
      cmocka_unit_test(test_prefer_wins),
      cmocka_unit_test(test_noselect_far_kod),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
