/* Unit tests for src/proto/acl: longest-prefix restrict table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/acl.h"

static const uint8_t any4[4] = {0, 0, 0, 0};
static const uint8_t any6[16] = {0};

static uint32_t look4(const ntp_acl *acl, uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
  const uint8_t addr[4] = {a, b, c, d};
  return ntp_acl_lookup(acl, ACL_INET, addr);
}

static bool set4(ntp_acl *acl, uint8_t a, uint8_t b, uint8_t c, uint8_t d, unsigned prefix,
                 uint32_t flags)
{
  const uint8_t addr[4] = {a, b, c, d};
  return ntp_acl_set(acl, ACL_INET, addr, prefix, flags, false);
}

static bool unset4(ntp_acl *acl, uint8_t a, uint8_t b, uint8_t c, uint8_t d, unsigned prefix)
{
  const uint8_t addr[4] = {a, b, c, d};
  return ntp_acl_set(acl, ACL_INET, addr, prefix, 0, true);
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

static void test_empty(void **state)
{
  (void)state;
  ntp_acl *acl = ntp_acl_create();
  assert_non_null(acl);
  assert_int_equal(ntp_acl_count(acl), 0);
  assert_int_equal(look4(acl, 10, 0, 0, 1), 0);
  uint8_t a6[16];
  mk6(a6, 0, 0, 1);
  assert_int_equal(ntp_acl_lookup(acl, ACL_INET6, a6), 0);
  ntp_acl_destroy(acl);
  ntp_acl_destroy(NULL);
}

static void test_longest_prefix_any_order(void **state)
{
  (void)state;
  /* All insertion orders of /8, /16, /32 give the same answers. */
  static const int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
                                  {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  for (int p = 0; p < 6; p++) {
    ntp_acl *acl = ntp_acl_create();
    for (int i = 0; i < 3; i++) {
      switch (perms[p][i]) {
      case 0: assert_true(set4(acl, 10, 0, 0, 0, 8, ACL_NOSERVE)); break;
      case 1: assert_true(set4(acl, 10, 1, 0, 0, 16, ACL_LIMITED)); break;
      default: assert_true(set4(acl, 10, 1, 2, 3, 32, ACL_KOD)); break;
      }
    }
    assert_int_equal(ntp_acl_count(acl), 3);
    assert_int_equal(look4(acl, 10, 1, 2, 3), ACL_KOD);
    assert_int_equal(look4(acl, 10, 1, 2, 4), ACL_LIMITED);
    assert_int_equal(look4(acl, 10, 1, 255, 255), ACL_LIMITED);
    assert_int_equal(look4(acl, 10, 2, 0, 0), ACL_NOSERVE);
    assert_int_equal(look4(acl, 10, 0, 0, 0), ACL_NOSERVE);
    assert_int_equal(look4(acl, 11, 1, 2, 3), 0);
    assert_int_equal(look4(acl, 9, 255, 255, 255), 0);
    ntp_acl_destroy(acl);
  }
}

static void test_unaligned_prefixes(void **state)
{
  (void)state;
  ntp_acl *acl = ntp_acl_create();
  assert_true(set4(acl, 192, 0, 2, 0, 24, ACL_NOQUERY));
  assert_true(set4(acl, 192, 0, 2, 128, 25, ACL_NOPEER));
  assert_true(set4(acl, 192, 0, 2, 200, 31, ACL_NOTRAP));
  assert_true(set4(acl, 128, 0, 0, 0, 1, ACL_NOMODIFY));
  assert_int_equal(look4(acl, 192, 0, 2, 127), ACL_NOQUERY);
  assert_int_equal(look4(acl, 192, 0, 2, 128), ACL_NOPEER);
  assert_int_equal(look4(acl, 192, 0, 2, 199), ACL_NOPEER);
  assert_int_equal(look4(acl, 192, 0, 2, 200), ACL_NOTRAP);
  assert_int_equal(look4(acl, 192, 0, 2, 201), ACL_NOTRAP);
  assert_int_equal(look4(acl, 192, 0, 2, 202), ACL_NOPEER);
  assert_int_equal(look4(acl, 192, 0, 3, 0), ACL_NOMODIFY); /* /1: top bit set */
  assert_int_equal(look4(acl, 255, 255, 255, 255), ACL_NOMODIFY);
  assert_int_equal(look4(acl, 127, 255, 255, 255), 0);
  ntp_acl_destroy(acl);
}

static void test_host_bits_ignored(void **state)
{
  (void)state;
  ntp_acl *acl = ntp_acl_create();
  /* 10.1.2.3/8 is the same entry as 10.0.0.0/8. */
  assert_true(set4(acl, 10, 1, 2, 3, 8, ACL_NOSERVE));
  assert_int_equal(look4(acl, 10, 200, 0, 1), ACL_NOSERVE);
  assert_true(set4(acl, 10, 0, 0, 0, 8, ACL_LIMITED));
  assert_int_equal(ntp_acl_count(acl), 1);
  assert_int_equal(look4(acl, 10, 1, 2, 3), ACL_LIMITED);
  assert_true(unset4(acl, 10, 9, 9, 9, 8));
  assert_int_equal(ntp_acl_count(acl), 0);
  assert_int_equal(look4(acl, 10, 1, 2, 3), 0);
  ntp_acl_destroy(acl);
}

static void test_default_v4_v6_separate(void **state)
{
  (void)state;
  ntp_acl *acl = ntp_acl_create();
  assert_true(ntp_acl_set(acl, ACL_INET, any4, 0, ACL_NOSERVE | ACL_NOQUERY, false));
  uint8_t a6[16];
  mk6(a6, 1, 2, 3);
  /* A v4 default does not cover v6 clients... */
  assert_int_equal(look4(acl, 203, 0, 113, 9), ACL_NOSERVE | ACL_NOQUERY);
  assert_int_equal(ntp_acl_lookup(acl, ACL_INET6, a6), 0);
  assert_int_equal(ntp_acl_lookup(acl, ACL_INET6, any6), 0);
  /* ...and a v6 default does not cover v4 clients. */
  assert_true(ntp_acl_set(acl, ACL_INET6, any6, 0, ACL_LIMITED | ACL_KOD, false));
  assert_int_equal(ntp_acl_count(acl), 2);
  assert_int_equal(ntp_acl_lookup(acl, ACL_INET6, a6), ACL_LIMITED | ACL_KOD);
  assert_int_equal(look4(acl, 203, 0, 113, 9), ACL_NOSERVE | ACL_NOQUERY);
  assert_int_equal(look4(acl, 0, 0, 0, 0), ACL_NOSERVE | ACL_NOQUERY);
  /* Removing one default leaves the other. */
  assert_true(ntp_acl_set(acl, ACL_INET, any4, 0, 0, true));
  assert_int_equal(look4(acl, 203, 0, 113, 9), 0);
  assert_int_equal(ntp_acl_lookup(acl, ACL_INET6, a6), ACL_LIMITED | ACL_KOD);
  ntp_acl_destroy(acl);
}

static void test_families_do_not_mix(void **state)
{
  (void)state;
  ntp_acl *acl = ntp_acl_create();
  /* v4 10.0.0.0/8 and v6 0a00::/8 have the same leading bits. */
  assert_true(set4(acl, 10, 0, 0, 0, 8, ACL_IGNORE));
  uint8_t a6[16] = {0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  assert_int_equal(ntp_acl_lookup(acl, ACL_INET6, a6), 0);
  assert_true(ntp_acl_set(acl, ACL_INET6, a6, 8, ACL_NOPEER, false));
  assert_int_equal(ntp_acl_count(acl), 2);
  assert_int_equal(ntp_acl_lookup(acl, ACL_INET6, a6), ACL_NOPEER);
  assert_int_equal(look4(acl, 10, 0, 0, 1), ACL_IGNORE);
  /* Removing the v6 entry leaves the v4 one with the same bits. */
  assert_true(ntp_acl_set(acl, ACL_INET6, a6, 8, 0, true));
  assert_int_equal(ntp_acl_count(acl), 1);
  assert_int_equal(look4(acl, 10, 0, 0, 1), ACL_IGNORE);
  ntp_acl_destroy(acl);
}

static void test_v6_prefixes(void **state)
{
  (void)state;
  ntp_acl *acl = ntp_acl_create();
  uint8_t a[16];
  mk6(a, 0, 0, 0);
  assert_true(ntp_acl_set(acl, ACL_INET6, a, 32, ACL_NOSERVE, false)); /* 2001:db8::/32 */
  mk6(a, 0x1234, 0, 0);
  assert_true(ntp_acl_set(acl, ACL_INET6, a, 48, ACL_LIMITED, false));
  mk6(a, 0x1234, 0x5678, 0);
  assert_true(ntp_acl_set(acl, ACL_INET6, a, 64, ACL_KOD, false));
  mk6(a, 0x1234, 0x5678, 0x81);
  assert_true(ntp_acl_set(acl, ACL_INET6, a, 128, ACL_NOTRUST, false));
  mk6(a, 0x1234, 0x5678, 0x80);
  assert_true(ntp_acl_set(acl, ACL_INET6, a, 121, ACL_VERSION, false));

  mk6(a, 0x1234, 0x5678, 0x81);
  assert_int_equal(ntp_acl_lookup(acl, ACL_INET6, a), ACL_NOTRUST);
  mk6(a, 0x1234, 0x5678, 0x82);
  assert_int_equal(ntp_acl_lookup(acl, ACL_INET6, a), ACL_VERSION);
  mk6(a, 0x1234, 0x5678, 0x7f);
  assert_int_equal(ntp_acl_lookup(acl, ACL_INET6, a), ACL_KOD);
  mk6(a, 0x1234, 0x5679, 0x81);
  assert_int_equal(ntp_acl_lookup(acl, ACL_INET6, a), ACL_LIMITED);
  mk6(a, 0x1235, 0x5678, 0x81);
  assert_int_equal(ntp_acl_lookup(acl, ACL_INET6, a), ACL_NOSERVE);
  a[3] = 0xb9; /* 2001:db9:: */
  assert_int_equal(ntp_acl_lookup(acl, ACL_INET6, a), 0);
  ntp_acl_destroy(acl);
}

static void test_flags_preserved(void **state)
{
  (void)state;
  ntp_acl *acl = ntp_acl_create();
  const uint32_t all = ACL_IGNORE | ACL_NOSERVE | ACL_NOQUERY | ACL_NOMODIFY | ACL_NOPEER |
                       ACL_LIMITED | ACL_KOD | ACL_NOTRAP | ACL_NOTRUST | ACL_NOMRULIST |
                       ACL_VERSION | ACL_NTPPORT | ACL_NOEPEER;
  assert_int_equal(all, 0x1fffu); /* 13 distinct bits */
  assert_true(set4(acl, 198, 51, 100, 0, 24, all));
  assert_int_equal(look4(acl, 198, 51, 100, 1), all);
  assert_true(set4(acl, 198, 51, 100, 7, 32, ACL_LIMITED | ACL_KOD));
  assert_int_equal(look4(acl, 198, 51, 100, 7), ACL_LIMITED | ACL_KOD);
  /* An entry with no flags still matches (and overrides a shorter one). */
  assert_true(set4(acl, 198, 51, 100, 8, 32, 0));
  assert_int_equal(look4(acl, 198, 51, 100, 8), 0);
  ntp_acl_destroy(acl);
}

static void test_replace(void **state)
{
  (void)state;
  ntp_acl *acl = ntp_acl_create();
  assert_true(set4(acl, 10, 0, 0, 0, 8, ACL_NOSERVE));
  assert_true(set4(acl, 10, 0, 0, 0, 16, ACL_NOQUERY));
  assert_true(set4(acl, 10, 0, 0, 0, 8, ACL_LIMITED | ACL_KOD));
  assert_int_equal(ntp_acl_count(acl), 2);
  assert_int_equal(look4(acl, 10, 5, 0, 0), ACL_LIMITED | ACL_KOD);
  assert_int_equal(look4(acl, 10, 0, 5, 0), ACL_NOQUERY);
  /* Replacing does not change the order: /16 still wins. */
  assert_true(set4(acl, 10, 0, 0, 0, 16, ACL_IGNORE));
  assert_int_equal(look4(acl, 10, 0, 5, 0), ACL_IGNORE);
  assert_int_equal(ntp_acl_count(acl), 2);
  ntp_acl_destroy(acl);
}

static void test_swap(void **state)
{
  (void)state;
  ntp_acl *a = ntp_acl_create(), *b = ntp_acl_create();
  assert_true(set4(a, 10, 0, 0, 0, 8, ACL_NOSERVE));
  assert_true(set4(b, 192, 0, 2, 0, 24, ACL_IGNORE));
  assert_true(set4(b, 198, 51, 100, 0, 24, ACL_KOD));
  ntp_acl_swap(a, b);
  assert_int_equal(ntp_acl_count(a), 2);
  assert_int_equal(ntp_acl_count(b), 1);
  assert_int_equal(look4(a, 10, 1, 1, 1), 0);
  assert_int_equal(look4(a, 192, 0, 2, 7), ACL_IGNORE);
  assert_int_equal(look4(b, 10, 1, 1, 1), ACL_NOSERVE);
  assert_int_equal(look4(b, 192, 0, 2, 7), 0);
  /* each goes on growing on its own */
  assert_true(set4(b, 203, 0, 113, 0, 24, ACL_LIMITED));
  assert_int_equal(look4(a, 203, 0, 113, 1), 0);
  ntp_acl_destroy(a);
  ntp_acl_destroy(b);
}

static void test_remove(void **state)
{
  (void)state;
  ntp_acl *acl = ntp_acl_create();
  assert_true(ntp_acl_set(acl, ACL_INET, any4, 0, ACL_NOQUERY, false));
  assert_true(set4(acl, 10, 0, 0, 0, 8, ACL_NOSERVE));
  assert_true(set4(acl, 10, 1, 0, 0, 16, ACL_LIMITED));
  assert_true(set4(acl, 10, 1, 2, 3, 32, ACL_KOD));
  assert_int_equal(ntp_acl_count(acl), 4);

  /* unrestrict the /16: its addresses fall back to the /8. */
  assert_true(unset4(acl, 10, 1, 0, 0, 16));
  assert_int_equal(ntp_acl_count(acl), 3);
  assert_int_equal(look4(acl, 10, 1, 9, 9), ACL_NOSERVE);
  assert_int_equal(look4(acl, 10, 1, 2, 3), ACL_KOD);

  /* Removing what is not there succeeds and changes nothing; only an exact
   * address/prefix match is removed. */
  assert_true(unset4(acl, 10, 1, 0, 0, 16));
  assert_true(unset4(acl, 10, 0, 0, 0, 9));
  assert_true(unset4(acl, 172, 16, 0, 0, 12));
  assert_int_equal(ntp_acl_count(acl), 3);
  assert_int_equal(look4(acl, 10, 1, 2, 3), ACL_KOD);

  assert_true(unset4(acl, 10, 1, 2, 3, 32));
  assert_int_equal(look4(acl, 10, 1, 2, 3), ACL_NOSERVE);
  assert_true(unset4(acl, 10, 0, 0, 0, 8));
  assert_int_equal(look4(acl, 10, 1, 2, 3), ACL_NOQUERY);
  assert_true(ntp_acl_set(acl, ACL_INET, any4, 0, 0, true));
  assert_int_equal(ntp_acl_count(acl), 0);
  assert_int_equal(look4(acl, 10, 1, 2, 3), 0);

  /* Re-adding after removal works. */
  assert_true(set4(acl, 10, 1, 2, 3, 32, ACL_IGNORE));
  assert_int_equal(look4(acl, 10, 1, 2, 3), ACL_IGNORE);
  ntp_acl_destroy(acl);
}

static void test_bad_prefix(void **state)
{
  (void)state;
  ntp_acl *acl = ntp_acl_create();
  uint8_t a6[16];
  mk6(a6, 0, 0, 1);
  assert_false(set4(acl, 10, 0, 0, 0, 33, ACL_NOSERVE));
  assert_false(set4(acl, 10, 0, 0, 0, 1000, ACL_NOSERVE));
  assert_false(set4(acl, 10, 0, 0, 0, (unsigned)-1, ACL_NOSERVE));
  assert_false(ntp_acl_set(acl, ACL_INET6, a6, 129, ACL_NOSERVE, false));
  assert_false(ntp_acl_set(acl, ACL_INET6, a6, 256, ACL_NOSERVE, false));
  assert_false(unset4(acl, 10, 0, 0, 0, 33));
  /* Unknown family. */
  assert_false(ntp_acl_set(acl, (enum acl_family)5, a6, 8, ACL_NOSERVE, false));
  assert_false(ntp_acl_set(acl, (enum acl_family)0, a6, 0, ACL_NOSERVE, false));
  assert_int_equal(ntp_acl_count(acl), 0);
  assert_int_equal(look4(acl, 10, 0, 0, 1), 0);
  /* The limits themselves are fine. */
  assert_true(set4(acl, 10, 0, 0, 1, 32, ACL_NOSERVE));
  assert_true(ntp_acl_set(acl, ACL_INET6, a6, 128, ACL_NOPEER, false));
  assert_int_equal(look4(acl, 10, 0, 0, 1), ACL_NOSERVE);
  assert_int_equal(look4(acl, 10, 0, 0, 2), 0);
  assert_int_equal(ntp_acl_lookup(acl, ACL_INET6, a6), ACL_NOPEER);
  mk6(a6, 0, 0, 2);
  assert_int_equal(ntp_acl_lookup(acl, ACL_INET6, a6), 0);
  ntp_acl_destroy(acl);
}

static void test_many_entries(void **state)
{
  (void)state;
  /* Enough entries to grow the table several times, mixed prefixes. */
  ntp_acl *acl = ntp_acl_create();
  assert_true(set4(acl, 10, 0, 0, 0, 8, ACL_NOSERVE));
  for (unsigned i = 0; i < 200; i++) {
    assert_true(set4(acl, 10, (uint8_t)i, 0, 0, 16, 1u << (i % 13)));
    assert_true(set4(acl, 10, (uint8_t)i, 7, 0, 24, ACL_KOD | ACL_LIMITED));
  }
  assert_int_equal(ntp_acl_count(acl), 401);
  for (unsigned i = 0; i < 200; i++) {
    assert_int_equal(look4(acl, 10, (uint8_t)i, 1, 1), 1u << (i % 13));
    assert_int_equal(look4(acl, 10, (uint8_t)i, 7, 1), ACL_KOD | ACL_LIMITED);
  }
  assert_int_equal(look4(acl, 10, 222, 1, 1), ACL_NOSERVE);
  /* Remove every other /16. */
  for (unsigned i = 0; i < 200; i += 2)
    assert_true(unset4(acl, 10, (uint8_t)i, 0, 0, 16));
  assert_int_equal(ntp_acl_count(acl), 301);
  for (unsigned i = 0; i < 200; i++) {
    uint32_t want = (i % 2) ? 1u << (i % 13) : ACL_NOSERVE;
    assert_int_equal(look4(acl, 10, (uint8_t)i, 1, 1), want);
    assert_int_equal(look4(acl, 10, (uint8_t)i, 7, 200), ACL_KOD | ACL_LIMITED);
  }
  ntp_acl_destroy(acl);
}

static void test_flag_names(void **state)
{
  (void)state;
  static const struct {
    const char *name;
    uint32_t bit;
  } names[] = {
      {"ignore", ACL_IGNORE},     {"noserve", ACL_NOSERVE},     {"noquery", ACL_NOQUERY},
      {"nomodify", ACL_NOMODIFY}, {"nopeer", ACL_NOPEER},       {"limited", ACL_LIMITED},
      {"kod", ACL_KOD},           {"notrap", ACL_NOTRAP},       {"notrust", ACL_NOTRUST},
      {"nomrulist", ACL_NOMRULIST}, {"version", ACL_VERSION},   {"ntpport", ACL_NTPPORT},
      {"noepeer", ACL_NOEPEER},
  };
  uint32_t seen = 0;
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    uint32_t bit = ntp_acl_flag_from_name(names[i].name);
    assert_int_equal(bit, names[i].bit);
    assert_int_equal(seen & bit, 0); /* each name its own bit */
    seen |= bit;
  }
  assert_int_equal(ntp_acl_flag_from_name(""), 0);
  assert_int_equal(ntp_acl_flag_from_name("default"), 0);
  assert_int_equal(ntp_acl_flag_from_name("mask"), 0);
  assert_int_equal(ntp_acl_flag_from_name("KOD"), 0);
  assert_int_equal(ntp_acl_flag_from_name("kod "), 0);
  assert_int_equal(ntp_acl_flag_from_name("ko"), 0);
  assert_int_equal(ntp_acl_flag_from_name("limitedx"), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty),
      cmocka_unit_test(test_longest_prefix_any_order),
      cmocka_unit_test(test_unaligned_prefixes),
      cmocka_unit_test(test_host_bits_ignored),
      cmocka_unit_test(test_default_v4_v6_separate),
      cmocka_unit_test(test_families_do_not_mix),
      cmocka_unit_test(test_v6_prefixes),
      cmocka_unit_test(test_flags_preserved),
      cmocka_unit_test(test_replace),
      cmocka_unit_test(test_swap),
      cmocka_unit_test(test_remove),
      cmocka_unit_test(test_bad_prefix),
      cmocka_unit_test(test_many_entries),
      cmocka_unit_test(test_flag_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
