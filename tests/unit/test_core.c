/* Unit tests for proto/core.c: selection wired to the discipline (each
 * survivor sample fed once, none while unsynchronised), the step action
 * and what it voids, poll advice, the slew tick, `tos authselect` passed
 * through, what the system serves, samples no filter gives kept from the
 * discipline, and no allocation per update. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/core.h"
#include "proto/ntp_pkt.h"

/* Allocation counting: the test's own malloc family, in front of glibc's
 * (under AddressSanitizer, whose allocator this would bypass, the count
 * is not taken). */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NO_ALLOC_COUNT 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define NO_ALLOC_COUNT 1
#endif

static unsigned long n_allocs;
#ifndef NO_ALLOC_COUNT
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
void *malloc(size_t n)
{
  n_allocs++;
  return __libc_malloc(n);
}
void *calloc(size_t n, size_t size)
{
  n_allocs++;
  return __libc_calloc(n, size);
}
void *realloc(void *p, size_t n)
{
  n_allocs++;
  return __libc_realloc(p, n);
}
#endif

#define POLL 6

/* A stratum-1 source whose raw samples, one per 64 s poll up to `now`,
 * all show offset `off`; its newest was taken at `now`. */
typedef struct fake_src {
  ntp_source_info info;
  ntp_filter_raw raw[NTP_FILTER_LEN];
  int n;
} fake_src;

static void fake_init(fake_src *f, double off, bool auth)
{
  memset(f, 0, sizeof(*f));
  f->info.have_sample = true;
  f->info.reach = 0xff;
  f->info.poll = POLL;
  f->info.stratum = 1;
  f->info.leap = NTP_LEAP_NONE;
  f->info.refid = NTP_REFID('G', 'P', 'S', 0);
  f->info.offset = off;
  f->info.delay = 0.002;
  f->info.jitter = 1e-5;
  f->info.dispersion = 1e-4;
  f->info.when = f->info.sample_age = -1;
  f->info.authenticated = auth;
}

/* A new sample at `t`, the filter's output from now on. */
static void fake_sample(fake_src *f, double t)
{
  if (f->n == NTP_FILTER_LEN) {
    memmove(f->raw, f->raw + 1, sizeof(f->raw[0]) * (NTP_FILTER_LEN - 1));
    f->n--;
  }
  f->raw[f->n++] = (ntp_filter_raw){.t = t, .offset = f->info.offset, .delay = 0.002,
                                    .error = 1e-4};
}

static void fake_give(ntp_core *c, size_t i, fake_src *f, double now, uint32_t refid)
{
  double last = f->raw[f->n - 1].t;
  f->info.when = f->info.sample_age = now - last;
  ntp_core_set_source(c, i, &f->info, f->raw, f->n, refid);
}

static uint64_t disc_updates(const ntp_core *c)
{
  ntp_disc_info di;
  ntp_core_disc_info(c, &di);
  return di.updates;
}

static ntp_core *make_core(ntp_core_cfg *cfg)
{
  ntp_core *c = ntp_core_create(cfg, 0.0);
  assert_non_null(c);
  return c;
}

static void test_unsynced_and_local(void **state)
{
  (void)state;
  ntp_core_cfg cfg;
  ntp_core_default_cfg(&cfg);
  cfg.precision = 1e-6;
  cfg.precision_log2 = -20;
  ntp_core *c = make_core(&cfg);
  ntp_core_actions a;
  ntp_core_update(c, 10.0, 0, &a);
  const ntp_core_sys *s = ntp_core_get_sys(c);
  assert_false(a.adjust);
  assert_false(a.synced);
  assert_int_equal(a.leap, NTP_LEAP_UNSYNC);
  assert_int_equal(s->stratum, NTP_MAX_STRATUM);
  assert_int_equal(s->sys_peer, -1);
  assert_true(s->ref_age < 0);
  assert_int_equal(s->precision, -20);
  assert_int_equal(s->updates, 1);
  ntp_core_destroy(c);

  cfg.local_stratum = 7;
  c = make_core(&cfg);
  ntp_core_update(c, 10.0, 0, &a);
  s = ntp_core_get_sys(c);
  assert_int_equal(s->stratum, 7);
  assert_int_equal(s->leap, NTP_LEAP_NONE);
  assert_int_equal(s->refid, NTP_REFID('L', 'O', 'C', 'L'));
  assert_true(s->ref_age == 0);
  assert_false(a.synced); /* our own clock is no reference for the kernel */
  ntp_core_destroy(c);
}

/* Every survivor's sample reaches the discipline exactly once; the system
 * info comes from the system peer. */
static void test_feeds_each_sample_once(void **state)
{
  (void)state;
  ntp_core_cfg cfg;
  ntp_core_default_cfg(&cfg);
  ntp_core *c = make_core(&cfg);
  fake_src f[2];
  fake_init(&f[0], 1e-4, false);
  fake_init(&f[1], 1.2e-4, false);
  f[1].info.stratum = 2;
  double now = 1.0;
  fake_sample(&f[0], now - 0.5);
  fake_sample(&f[0], now - 0.2);
  fake_sample(&f[1], now - 0.1);
  fake_give(c, 0, &f[0], now, 0x0a000001);
  fake_give(c, 1, &f[1], now, 0x0a000002);
  ntp_core_actions a;
  ntp_core_update(c, now, 2, &a);
  const ntp_core_sys *s = ntp_core_get_sys(c);
  assert_true(a.synced);
  assert_true(a.adjust);
  assert_int_equal(s->sys_peer, 0); /* stratum 1 beats 2 */
  assert_int_equal(s->stratum, 2);
  assert_int_equal(s->refid, 0x0a000001);
  assert_int_equal(ntp_core_sel_state(c, 0), NTP_SEL_SYSPEER);
  assert_int_equal(disc_updates(c), 3);
  /* The same samples again: nothing new to feed. */
  now += 1.0;
  fake_give(c, 0, &f[0], now, 0x0a000001);
  fake_give(c, 1, &f[1], now, 0x0a000002);
  ntp_core_update(c, now, 2, &a);
  assert_false(a.adjust);
  assert_int_equal(disc_updates(c), 3);
  /* One fresh sample: one update. */
  now += 64;
  fake_sample(&f[1], now);
  fake_give(c, 0, &f[0], now, 0x0a000001);
  fake_give(c, 1, &f[1], now, 0x0a000002);
  ntp_core_update(c, now, 2, &a);
  assert_true(a.adjust);
  assert_int_equal(disc_updates(c), 4);
  assert_int_equal(ntp_core_get_sys(c)->updates, 3);
  ntp_core_destroy(c);
}

/* Not synchronised (too few sources for tos minsane): nothing is fed. */
static void test_minsane_passed_through(void **state)
{
  (void)state;
  ntp_core_cfg cfg;
  ntp_core_default_cfg(&cfg);
  cfg.select.minsane = 2;
  ntp_core *c = make_core(&cfg);
  fake_src f;
  fake_init(&f, 1e-4, false);
  fake_sample(&f, 0.5);
  fake_give(c, 0, &f, 1.0, 0);
  ntp_core_actions a;
  ntp_core_update(c, 1.0, 1, &a);
  assert_false(a.synced);
  assert_false(a.adjust);
  assert_int_equal(disc_updates(c), 0);
  assert_int_equal(ntp_core_get_sys(c)->sel.status, NTP_SELECT_TOO_FEW);
  ntp_core_destroy(c);
}

static void test_authselect_passed_through(void **state)
{
  (void)state;
  ntp_core_cfg cfg;
  ntp_core_default_cfg(&cfg);
  cfg.select.authsel = NTP_AUTHSEL_REQUIRE;
  ntp_core *c = make_core(&cfg);
  fake_src f[2];
  fake_init(&f[0], 1e-4, false);
  fake_init(&f[1], 2e-4, true);
  fake_sample(&f[0], 0.5);
  fake_sample(&f[1], 0.6);
  fake_give(c, 0, &f[0], 1.0, 1);
  ntp_core_actions a;
  ntp_core_update(c, 1.0, 1, &a);
  assert_false(a.synced); /* the plain source may not be selected */
  assert_int_equal(ntp_core_sel_state(c, 0), NTP_SEL_NOSELECT);
  assert_int_equal(disc_updates(c), 0);
  fake_give(c, 0, &f[0], 2.0, 1);
  fake_give(c, 1, &f[1], 2.0, 2);
  ntp_core_update(c, 2.0, 2, &a);
  assert_true(a.synced);
  assert_int_equal(ntp_core_get_sys(c)->sys_peer, 1);
  assert_int_equal(disc_updates(c), 1); /* the authenticated sample only */
  ntp_core_destroy(c);

  /* mix, with an NTS source configured that has no association yet: the
   * plain source alone cannot synchronise. */
  ntp_core_default_cfg(&cfg);
  cfg.select.auth_configured = 1;
  c = make_core(&cfg);
  fake_give(c, 0, &f[0], 1.0, 1);
  ntp_core_update(c, 1.0, 1, &a);
  assert_false(a.synced);
  assert_int_equal(ntp_core_get_sys(c)->sel.status, NTP_SELECT_NO_AUTH);
  ntp_core_destroy(c);
}

/* A start-up offset beyond the step threshold: a step action; the samples
 * measured before it are void, fresh ones count again. */
static void test_step_action(void **state)
{
  (void)state;
  ntp_core_cfg cfg;
  ntp_core_default_cfg(&cfg);
  ntp_core *c = make_core(&cfg);
  fake_src f;
  fake_init(&f, 3.0, false);
  fake_sample(&f, 0.5);
  fake_sample(&f, 0.8);
  fake_give(c, 0, &f, 1.0, 0);
  ntp_core_actions a;
  ntp_core_update(c, 1.0, 1, &a);
  assert_true(a.adjust);
  assert_true(fabs(a.step - 3.0) < 1e-3);
  assert_true(a.startup);
  assert_int_equal(a.poll[0], -1); /* no advice after a step */
  ntp_disc_info di;
  ntp_core_disc_info(c, &di);
  assert_int_equal(di.steps, 1);
  uint64_t fed = di.updates;
  /* The caller did not manage to clear its source: the old samples are
   * still offered, and must not be fed again. */
  fake_give(c, 0, &f, 2.0, 0);
  ntp_core_update(c, 2.0, 1, &a);
  assert_false(a.adjust);
  assert_int_equal(disc_updates(c), fed);
  /* A sample measured after the step is fed. */
  fake_init(&f, 1e-4, false);
  fake_sample(&f, 66.0);
  fake_give(c, 0, &f, 66.5, 0);
  ntp_core_update(c, 66.5, 1, &a);
  assert_true(a.adjust);
  assert_true(a.step == 0);
  assert_int_equal(disc_updates(c), fed + 1);
  ntp_core_destroy(c);
}

/* Poll advice for the sources fed, and the slew's end as the wake-up. */
static void test_poll_and_tick(void **state)
{
  (void)state;
  ntp_core_cfg cfg;
  ntp_core_default_cfg(&cfg);
  ntp_core *c = make_core(&cfg);
  fake_src f;
  fake_init(&f, 0.01, false);
  ntp_core_actions a = {0};
  double now = 0;
  for (int k = 0; k < 6; k++) {
    now = 1.0 + 64.0 * k;
    fake_sample(&f, now - 0.01);
    fake_give(c, 0, &f, now, 0);
    ntp_core_update(c, now, 1, &a);
    assert_int_equal(a.n_poll, 1);
  }
  assert_true(a.adjust);
  assert_true(a.poll[0] >= 0);
  assert_true(a.clock_synced);
  if (isfinite(a.slew_until)) {
    assert_true(a.slew_until > now);
    ntp_core_actions t;
    ntp_core_tick(c, a.slew_until, &t);
    assert_true(t.adjust);
    assert_true(isinf(t.slew_until));
    assert_true(t.step == 0);
    assert_int_equal(t.n_poll, 0);
    assert_true(t.synced);
  }
  ntp_core_destroy(c);
}

/* Samples no filter gives (from the future, from before the core started,
 * NaN, infinite or absurd offsets, errors and delays) never reach the
 * discipline, and one
 * from the future does not hold back the good ones after it. */
static void test_bad_samples_not_fed(void **state)
{
  (void)state;
  ntp_core_cfg cfg;
  ntp_core_default_cfg(&cfg);
  ntp_core *c = ntp_core_create(&cfg, 100.0);
  assert_non_null(c);
  fake_src f;
  fake_init(&f, 1e-4, false);
  const ntp_filter_raw bad[] = {
      {.t = -1e300, .offset = 1e-4, .delay = 0.002, .error = 1e-4},
      {.t = 50.0, .offset = 1e-4, .delay = 0.002, .error = 1e-4},
      {.t = 101.0, .offset = NAN, .delay = 0.002, .error = 1e-4},
      {.t = 101.5, .offset = 1e-4, .delay = 0.002, .error = INFINITY},
      {.t = 101.6, .offset = 1e-4, .delay = 1e300, .error = 1e-4},
      {.t = 101.7, .offset = 1e12, .delay = 0.002, .error = 1e-4},
      {.t = 500.0, .offset = 1e-4, .delay = 0.002, .error = 1e-4},
  };
  memcpy(f.raw, bad, sizeof(bad));
  f.n = (int)(sizeof(bad) / sizeof(bad[0]));
  f.info.when = f.info.sample_age = 0.5;
  ntp_core_set_source(c, 0, &f.info, f.raw, f.n, 0);
  ntp_core_actions a;
  ntp_core_update(c, 102.0, 1, &a);
  assert_true(a.synced);
  assert_false(a.adjust);
  assert_int_equal(disc_updates(c), 0);
  f.raw[f.n - 1].t = 102.5; /* a good one */
  ntp_core_set_source(c, 0, &f.info, f.raw, f.n, 0);
  ntp_core_update(c, 103.0, 1, &a);
  assert_true(a.adjust);
  assert_true(isfinite(a.freq_ppm));
  assert_int_equal(disc_updates(c), 1);
  ntp_core_destroy(c);
}

static int feeds_seen;
static void count_feed(void *arg, double now, size_t src, const ntp_disc_sample *s, int poll,
                       const ntp_disc_action *a)
{
  (void)now;
  (void)s;
  (void)a;
  assert_int_equal(poll, POLL);
  assert_int_equal(src, 0);
  (*(int *)arg)++;
}

/* Created once, updated many times: no allocation after create; the
 * feed observer sees every sample fed. */
static void test_no_allocation(void **state)
{
  (void)state;
  ntp_core_cfg cfg;
  ntp_core_default_cfg(&cfg);
  cfg.on_feed = count_feed;
  cfg.on_feed_arg = &feeds_seen;
  unsigned long at_create = n_allocs;
  ntp_core *c = make_core(&cfg);
#ifndef NO_ALLOC_COUNT
  assert_true(n_allocs > at_create); /* the count does see the core's allocations */
#else
  (void)at_create;
#endif
  fake_src f;
  fake_init(&f, 1e-4, false);
  ntp_core_actions a;
  unsigned long before = n_allocs;
  for (int k = 0; k < 500; k++) {
    double now = 1.0 + 16.0 * k;
    if (k % 4 == 0)
      fake_sample(&f, now - 0.01);
    fake_give(c, 0, &f, now, 0);
    ntp_core_update(c, now, 1, &a);
    if (a.slew_until <= now + 16.0) /* the slew ends before the next update */
      ntp_core_tick(c, a.slew_until, &a);
  }
  unsigned long during = n_allocs - before;
  assert_int_equal(during, 0);
  assert_int_equal(feeds_seen, 125);
  assert_int_equal(disc_updates(c), 125);
  ntp_core_destroy(c);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unsynced_and_local),
      cmocka_unit_test(test_feeds_each_sample_once),
      cmocka_unit_test(test_minsane_passed_through),
      cmocka_unit_test(test_authselect_passed_through),
      cmocka_unit_test(test_step_action),
      cmocka_unit_test(test_poll_and_tick),
      cmocka_unit_test(test_bad_samples_not_fed),
      cmocka_unit_test(test_no_allocation),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
