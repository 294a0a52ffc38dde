/* Unit tests for proto/nts_client.c: session install and the cookie jar. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/nts_client.h"

static const uint8_t key32[32] = {1, 2, 3};

static void make_cookies(uint8_t *buf, size_t n, size_t len)
{
  for (size_t i = 0; i < n; i++)
    memset(buf + i * len, (int)(0x10 + i), len);
}

static void test_session_and_fifo(void **state)
{
  (void)state;
  nts_client *c = nts_client_create();
  assert_false(nts_client_has_session(c));
  uint8_t cookies[8 * 104], out[NTS_KE_MAX_COOKIE_LEN];
  make_cookies(cookies, 8, 104);
  assert_true(nts_client_set_session(c, NTS_AEAD_AES_SIV_CMAC_256, key32, key32, 32, cookies, 8,
                                     104));
  assert_true(nts_client_has_session(c));
  assert_int_equal(nts_client_aead(c), 15);
  assert_int_equal(nts_client_cookie_count(c), 8);
  /* oldest first, each exactly once */
  for (int i = 0; i < 8; i++) {
    assert_int_equal(nts_client_take_cookie(c, out, sizeof(out)), 104);
    assert_int_equal(out[0], 0x10 + i);
  }
  assert_int_equal(nts_client_cookie_count(c), 0);
  assert_int_equal(nts_client_take_cookie(c, out, sizeof(out)), 0);
  nts_client_destroy(c);
}

static void test_add_drops_oldest_when_full(void **state)
{
  (void)state;
  nts_client *c = nts_client_create();
  uint8_t cookies[8 * 104], one[104], out[NTS_KE_MAX_COOKIE_LEN];
  make_cookies(cookies, 8, 104);
  assert_true(nts_client_set_session(c, 15, key32, key32, 32, cookies, 8, 104));
  memset(one, 0x99, sizeof(one));
  assert_true(nts_client_add_cookie(c, one, sizeof(one)));
  assert_int_equal(nts_client_cookie_count(c), 8);
  assert_int_equal(nts_client_take_cookie(c, out, sizeof(out)), 104);
  assert_int_equal(out[0], 0x11); /* 0x10 was dropped */
  assert_false(nts_client_add_cookie(c, one, 0));
  assert_false(nts_client_add_cookie(c, one, NTS_KE_MAX_COOKIE_LEN + 1));
  /* a too-small output buffer leaves the cookie in the jar */
  unsigned before = nts_client_cookie_count(c);
  assert_int_equal(nts_client_take_cookie(c, out, 10), 0);
  assert_int_equal(nts_client_cookie_count(c), before);
  nts_client_destroy(c);
}

static void test_bad_sessions(void **state)
{
  (void)state;
  nts_client *c = nts_client_create();
  uint8_t cookies[9 * 104];
  make_cookies(cookies, 9, 104);
  assert_false(nts_client_set_session(c, 16, key32, key32, 32, cookies, 8, 104)); /* AEAD */
  assert_false(nts_client_set_session(c, 15, key32, key32, 64, cookies, 8, 104)); /* key len */
  assert_false(nts_client_set_session(c, 15, key32, key32, 32, cookies, 9, 104)); /* too many */
  assert_false(nts_client_set_session(c, 15, key32, key32, 32, cookies, 1, 0));
  assert_false(nts_client_has_session(c));
  assert_int_equal(nts_client_cookie_count(c), 0);
  assert_true(nts_client_set_session(c, 15, key32, key32, 32, cookies, 3, 104));
  /* A bad session replaces nothing: the old one and its cookies stay. */
  assert_false(nts_client_set_session(c, 17, key32, key32, 32, cookies, 8, 104));
  assert_false(nts_client_set_session(c, 15, key32, key32, 32, cookies, 9, 104));
  assert_true(nts_client_has_session(c));
  assert_int_equal(nts_client_aead(c), 15);
  assert_int_equal(nts_client_cookie_count(c), 3);
  nts_client_reset(c);
  assert_false(nts_client_has_session(c));
  assert_int_equal(nts_client_cookie_count(c), 0);
  nts_client_destroy(c);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_session_and_fifo),
      cmocka_unit_test(test_add_drops_oldest_when_full),
      cmocka_unit_test(test_bad_sessions),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
