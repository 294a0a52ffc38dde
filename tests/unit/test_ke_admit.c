/* Unit tests for src/proto/ke_admit: NTS-KE connection slots, per-prefix
 * caps, eviction and deadlines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/ke_admit.h"

static void v4(uint8_t out[4], uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
  out[0] = a;
  out[1] = b;
  out[2] = c;
  out[3] = d;
}

/* 2001:db8:0:<h3>::<last> */
static void v6(uint8_t out[16], uint16_t h3, uint8_t last)
{
  static const uint8_t base[16] = {0x20, 0x01, 0x0d, 0xb8};
  memcpy(out, base, 16);
  out[6] = (uint8_t)(h3 >> 8);
  out[7] = (uint8_t)h3;
  out[15] = last;
}

static ke_admit *mk(size_t slots, size_t per_prefix)
{
  ke_admit_cfg cfg = {.slots = slots, .per_prefix = per_prefix, .hello_timeout = 0.5,
                      .timeout = 2.0};
  ke_admit *a = ke_admit_create(&cfg);
  assert_non_null(a);
  return a;
}

static ke_admit_verdict open4(ke_admit *a, uint8_t c, uint8_t d, double now, size_t *slot)
{
  uint8_t ad[4];
  v4(ad, 192, 0, c, d);
  return ke_admit_open(a, ACL_INET, ad, now, slot);
}

static void test_defaults(void **state)
{
  (void)state;
  ke_admit_cfg cfg = {0};
  ke_admit *a = ke_admit_create(&cfg);
  assert_non_null(a);
  const ke_admit_cfg *c = ke_admit_config(a);
  assert_int_equal(c->slots, KE_ADMIT_SLOTS);
  assert_int_equal(c->per_prefix, KE_ADMIT_PER_PREFIX);
  assert_true(c->hello_timeout == KE_ADMIT_HELLO_TIMEOUT);
  assert_true(c->timeout == KE_ADMIT_TIMEOUT);
  ke_admit_destroy(a);
  /* The ClientHello deadline is never later than the whole exchange's. */
  cfg = (ke_admit_cfg){.hello_timeout = 5.0, .timeout = 1.5};
  a = ke_admit_create(&cfg);
  assert_true(ke_admit_config(a)->hello_timeout == 1.5);
  ke_admit_destroy(a);
  ke_admit_destroy(NULL);
}

static void test_prefix(void **state)
{
  (void)state;
  uint8_t ad[16], p[16];
  v4(ad, 192, 0, 2, 77);
  assert_int_equal(ke_admit_prefix(ACL_INET, ad, p), 24);
  const uint8_t want4[16] = {192, 0, 2, 0};
  assert_memory_equal(p, want4, 16);
  v6(ad, 0xff42, 9);
  ad[10] = 0x55;
  assert_int_equal(ke_admit_prefix(ACL_INET6, ad, p), 56);
  const uint8_t want6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0xff};
  assert_memory_equal(p, want6, 16);
}

static void test_per_prefix_cap_v4(void **state)
{
  (void)state;
  ke_admit *a = mk(64, 16);
  size_t slot, first = 0;
  for (int i = 0; i < 16; i++) {
    /* Different addresses, one /24. */
    assert_int_equal(open4(a, 2, (uint8_t)(i + 1), i, &slot), KE_ADMIT_OK);
    if (i == 0)
      first = slot;
  }
  assert_int_equal(open4(a, 2, 200, 20, &slot), KE_ADMIT_PREFIX_FULL);
  assert_int_equal(open4(a, 2, 1, 20, &slot), KE_ADMIT_PREFIX_FULL);
  /* The neighbouring /24 is another prefix. */
  assert_int_equal(open4(a, 3, 1, 20, &slot), KE_ADMIT_OK);
  uint8_t ad[4];
  v4(ad, 192, 0, 2, 99);
  assert_int_equal(ke_admit_prefix_count(a, ACL_INET, ad), 16);
  assert_int_equal(ke_admit_in_use(a), 17);
  /* A closed connection makes room in its prefix. */
  ke_admit_release(a, first);
  assert_int_equal(ke_admit_prefix_count(a, ACL_INET, ad), 15);
  assert_int_equal(open4(a, 2, 200, 21, &slot), KE_ADMIT_OK);
  assert_int_equal(slot, first);
  ke_admit_destroy(a);
}

static void test_per_prefix_cap_v6(void **state)
{
  (void)state;
  ke_admit *a = mk(16, 2);
  uint8_t ad[16];
  size_t slot;
  /* 2001:db8:0:ff00::/56 holds ff00..ffff in the fourth group. */
  v6(ad, 0xff00, 1);
  assert_int_equal(ke_admit_open(a, ACL_INET6, ad, 0, &slot), KE_ADMIT_OK);
  v6(ad, 0xffff, 2);
  assert_int_equal(ke_admit_open(a, ACL_INET6, ad, 0, &slot), KE_ADMIT_OK);
  v6(ad, 0xff80, 3);
  assert_int_equal(ke_admit_open(a, ACL_INET6, ad, 0, &slot), KE_ADMIT_PREFIX_FULL);
  v6(ad, 0xfe00, 3);
  assert_int_equal(ke_admit_open(a, ACL_INET6, ad, 0, &slot), KE_ADMIT_OK);
  /* IPv4 192.0.2.x and an IPv6 address whose first bytes are c0 00 02
   * are different prefixes. */
  uint8_t a6[16] = {192, 0, 2};
  assert_int_equal(open4(a, 2, 1, 0, &slot), KE_ADMIT_OK);
  assert_int_equal(open4(a, 2, 2, 0, &slot), KE_ADMIT_OK);
  assert_int_equal(open4(a, 2, 3, 0, &slot), KE_ADMIT_PREFIX_FULL);
  assert_int_equal(ke_admit_open(a, ACL_INET6, a6, 0, &slot), KE_ADMIT_OK);
  ke_admit_destroy(a);
}

/* Full table: the oldest unfinished handshake makes room, whatever its phase
 * before EXCHANGE; finished ones are never evicted. */
static void test_evicts_oldest_unfinished(void **state)
{
  (void)state;
  ke_admit *a = mk(4, 4);
  size_t s[4], slot;
  for (int i = 0; i < 4; i++)
    assert_int_equal(open4(a, (uint8_t)i, 1, 10 + i, &s[i]), KE_ADMIT_OK);
  assert_int_equal(open4(a, 9, 1, 20, &slot), KE_ADMIT_EVICT);
  assert_int_equal(slot, s[0]);
  /* Nothing changed until the caller closes the victim. */
  assert_int_equal(ke_admit_in_use(a), 4);
  assert_int_equal(open4(a, 9, 1, 20, &slot), KE_ADMIT_EVICT);
  ke_admit_release(a, s[0]);
  assert_int_equal(open4(a, 9, 1, 20, &slot), KE_ADMIT_OK);
  assert_int_equal(slot, s[0]);
  s[0] = slot; /* now the newest */

  /* s[1] finished its handshake, s[2] is in it: s[2] goes next. */
  ke_admit_advance(a, s[1], KE_PHASE_EXCHANGE);
  ke_admit_advance(a, s[2], KE_PHASE_HANDSHAKE);
  assert_int_equal(open4(a, 10, 1, 21, &slot), KE_ADMIT_EVICT);
  assert_int_equal(slot, s[2]);
  ke_admit_release(a, s[2]);
  assert_int_equal(open4(a, 10, 1, 21, &slot), KE_ADMIT_OK);
  s[2] = slot;
  /* Order now: s[1] (EXCHANGE), s[3], s[0], s[2]. */
  assert_int_equal(open4(a, 11, 1, 22, &slot), KE_ADMIT_EVICT);
  assert_int_equal(slot, s[3]);

  /* Every handshake finished: refused. */
  for (int i = 0; i < 4; i++)
    ke_admit_advance(a, s[i], KE_PHASE_EXCHANGE);
  assert_int_equal(open4(a, 11, 1, 23, &slot), KE_ADMIT_FULL);
  ke_admit_release(a, s[1]);
  assert_int_equal(open4(a, 11, 1, 23, &slot), KE_ADMIT_OK);
  assert_int_equal(slot, s[1]);
  ke_admit_destroy(a);
}

/* The prefix cap is checked first: a full prefix cannot evict anyone. */
static void test_prefix_cap_before_eviction(void **state)
{
  (void)state;
  ke_admit *a = mk(4, 2);
  size_t slot;
  assert_int_equal(open4(a, 1, 1, 0, &slot), KE_ADMIT_OK);
  assert_int_equal(open4(a, 1, 2, 0, &slot), KE_ADMIT_OK);
  assert_int_equal(open4(a, 2, 1, 0, &slot), KE_ADMIT_OK);
  assert_int_equal(open4(a, 3, 1, 0, &slot), KE_ADMIT_OK);
  assert_int_equal(open4(a, 1, 3, 1, &slot), KE_ADMIT_PREFIX_FULL);
  assert_int_equal(open4(a, 4, 1, 1, &slot), KE_ADMIT_EVICT);
  ke_admit_destroy(a);
}

static void test_deadlines_and_phases(void **state)
{
  (void)state;
  ke_admit *a = mk(2, 2);
  size_t slot;
  assert_int_equal(open4(a, 1, 1, 100.0, &slot), KE_ADMIT_OK);
  assert_int_equal(ke_admit_phase_of(a, slot), KE_PHASE_HELLO);
  assert_true(ke_admit_deadline(a, slot) == 100.5);
  ke_admit_advance(a, slot, KE_PHASE_HANDSHAKE);
  assert_int_equal(ke_admit_phase_of(a, slot), KE_PHASE_HANDSHAKE);
  assert_true(ke_admit_deadline(a, slot) == 102.0); /* from the accept, not from now */
  ke_admit_advance(a, slot, KE_PHASE_HELLO);         /* never back */
  assert_int_equal(ke_admit_phase_of(a, slot), KE_PHASE_HANDSHAKE);
  ke_admit_advance(a, slot, KE_PHASE_EXCHANGE);
  assert_int_equal(ke_admit_phase_of(a, slot), KE_PHASE_EXCHANGE);
  assert_true(ke_admit_deadline(a, slot) == 102.0);
  ke_admit_advance(a, slot, (ke_admit_phase)7);
  assert_int_equal(ke_admit_phase_of(a, slot), KE_PHASE_EXCHANGE);
  /* HELLO straight to EXCHANGE (a ClientHello and handshake in one go). */
  size_t s2;
  assert_int_equal(open4(a, 2, 1, 101.0, &s2), KE_ADMIT_OK);
  ke_admit_advance(a, s2, KE_PHASE_EXCHANGE);
  assert_int_equal(ke_admit_phase_of(a, s2), KE_PHASE_EXCHANGE);

  /* Free and out-of-range slots are harmless. */
  ke_admit_release(a, slot);
  ke_admit_release(a, slot);
  assert_int_equal(ke_admit_in_use(a), 1);
  assert_int_equal(ke_admit_phase_of(a, slot), KE_PHASE_FREE);
  assert_true(ke_admit_deadline(a, slot) == 0);
  ke_admit_advance(a, slot, KE_PHASE_HANDSHAKE);
  assert_int_equal(ke_admit_phase_of(a, slot), KE_PHASE_FREE);
  ke_admit_release(a, 99);
  ke_admit_advance(a, 99, KE_PHASE_HANDSHAKE);
  assert_int_equal(ke_admit_phase_of(a, 99), KE_PHASE_FREE);
  assert_true(ke_admit_deadline(a, 99) == 0);
  assert_int_equal(ke_admit_in_use(a), 1);
  ke_admit_destroy(a);
}

/* The integration test's flood, here in full: 300 idle connections from
 * 150 addresses (20 in one /24, 130 over 26 others), two each, then a good
 * client from yet another /24.  It always gets a slot. */
static void test_flood_from_many_prefixes(void **state)
{
  (void)state;
  ke_admit *a = mk(256, 16);
  int refused = 0, evicted = 0, ok = 0;
  double t = 0;
  for (int i = 0; i < 150; i++) {
    uint8_t ad[4];
    if (i < 20)
      v4(ad, 127, 5, 0, (uint8_t)(i + 1));
    else
      v4(ad, 127, 6, (uint8_t)((i - 20) / 5), (uint8_t)((i - 20) % 5 + 1));
    for (int k = 0; k < 2; k++) {
      size_t slot;
      ke_admit_verdict v = ke_admit_open(a, ACL_INET, ad, t += 0.001, &slot);
      if (v == KE_ADMIT_EVICT) {
        evicted++;
        ke_admit_release(a, slot);
        v = ke_admit_open(a, ACL_INET, ad, t, &slot);
      }
      if (v == KE_ADMIT_PREFIX_FULL) {
        refused++;
        continue;
      }
      assert_int_equal(v, KE_ADMIT_OK);
      ok++;
    }
  }
  assert_int_equal(refused, 40 - 16);
  assert_int_equal(ok, 300 - refused);
  assert_int_equal(evicted, ok - 256);
  assert_int_equal(ke_admit_in_use(a), 256);
  /* The first connections evicted were the oldest: the single /24's. */
  uint8_t one[4];
  v4(one, 127, 5, 0, 1);
  assert_int_equal(ke_admit_prefix_count(a, ACL_INET, one), 0);
  size_t slot;
  uint8_t good[4];
  v4(good, 127, 9, 0, 1);
  assert_int_equal(ke_admit_open(a, ACL_INET, good, t, &slot), KE_ADMIT_EVICT);
  ke_admit_release(a, slot);
  assert_int_equal(ke_admit_open(a, ACL_INET, good, t, &slot), KE_ADMIT_OK);
  ke_admit_destroy(a);
}

/* Random opens, phase changes and closes: the invariants hold throughout. */
static void test_random_invariants(void **state)
{
  (void)state;
  enum { SLOTS = 32, CAP = 3, PREFIXES = 24 };
  ke_admit *a = mk(SLOTS, CAP);
  uint64_t x = 0x9e3779b97f4a7c15ULL;
  uint64_t seq_of[SLOTS] = {0}, seq = 0;
  int seen[4] = {0};
  for (int step = 0; step < 20000; step++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    uint8_t ad[4];
    v4(ad, 10, (uint8_t)(x % PREFIXES), 0, (uint8_t)(x >> 32));
    size_t slot = (size_t)((x >> 8) % SLOTS);
    switch ((x >> 40) % 8) {
    case 0:
    case 1:
    case 2: {
      size_t got;
      ke_admit_verdict v = ke_admit_open(a, ACL_INET, ad, step, &got);
      size_t before = ke_admit_prefix_count(a, ACL_INET, ad);
      seen[v]++;
      if (v == KE_ADMIT_PREFIX_FULL) {
        assert_int_equal(before, CAP);
      } else if (v == KE_ADMIT_FULL) {
        assert_int_equal(ke_admit_in_use(a), SLOTS);
        for (size_t i = 0; i < SLOTS; i++)
          assert_int_equal(ke_admit_phase_of(a, i), KE_PHASE_EXCHANGE);
      } else if (v == KE_ADMIT_EVICT) {
        assert_int_equal(ke_admit_in_use(a), SLOTS);
        /* The victim is the oldest unfinished one. */
        assert_true(ke_admit_phase_of(a, got) != KE_PHASE_EXCHANGE);
        for (size_t i = 0; i < SLOTS; i++)
          if (ke_admit_phase_of(a, i) != KE_PHASE_EXCHANGE)
            assert_true(seq_of[i] >= seq_of[got]);
        ke_admit_release(a, got);
      } else {
        assert_int_equal(ke_admit_phase_of(a, got), KE_PHASE_HELLO);
        seq_of[got] = seq++;
      }
      break;
    }
    case 3:
    case 4:
    case 5:
    case 6:
      ke_admit_advance(a, slot, (x >> 50) % 4 ? KE_PHASE_EXCHANGE : KE_PHASE_HANDSHAKE);
      break;
    default:
      ke_admit_release(a, slot);
    }
    assert_true(ke_admit_in_use(a) <= SLOTS);
    size_t used = 0;
    for (size_t i = 0; i < SLOTS; i++)
      used += ke_admit_phase_of(a, i) != KE_PHASE_FREE;
    assert_int_equal(used, ke_admit_in_use(a));
    for (int p = 0; p < PREFIXES; p++) {
      uint8_t pa[4];
      v4(pa, 10, (uint8_t)p, 0, 0);
      assert_true(ke_admit_prefix_count(a, ACL_INET, pa) <= CAP);
    }
  }
  /* Every verdict came up. */
  for (int v = 0; v < 4; v++) {
    print_message("verdict %d: %d times\n", v, seen[v]);
    assert_true(seen[v] > 0);
  }
  ke_admit_destroy(a);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_prefix),
      cmocka_unit_test(test_per_prefix_cap_v4),
      cmocka_unit_test(test_per_prefix_cap_v6),
      cmocka_unit_test(test_evicts_oldest_unfinished),
      cmocka_unit_test(test_prefix_cap_before_eviction),
      cmocka_unit_test(test_deadlines_and_phases),
      cmocka_unit_test(test_flood_from_many_prefixes),
      cmocka_unit_test(test_random_invariants),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
