/* Unit tests for proto/select.c: sanity checks, intersection, maxclock,
 * clustering, system peer choice, combining, the leap vote and tos
 * authselect. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/ntp_pkt.h"
#include "proto/select.h"

/* cmocka's assert_float_equal works in single precision. */
static void near_(double a, double b, double eps, const char *file, int line)
{
  if (!(fabs(a - b) <= eps)) {
    print_error("%.17g != %.17g (within %g)\n", a, b, eps);
    _fail(file, line);
  }
}
#define assert_near(a, b, eps) near_((a), (b), (eps), __FILE__, __LINE__)

#define JIT 1e-4

/* A usable stratum-2 source with offset `off` whose root distance is
 * exactly `lam` (with the default mindist of 1 ms and no delay). */
static ntp_source_info src_j(double off, double lam, double jit)
{
  ntp_source_info i;
  memset(&i, 0, sizeof(i));
  i.have_sample = true;
  i.reach = 0xff;
  i.stratum = 2;
  i.leap = NTP_LEAP_NONE;
  i.offset = off;
  i.jitter = jit;
  i.dispersion = lam - 0.001 - jit;
  return i;
}

static ntp_source_info src(double off, double lam) { return src_j(off, lam, JIT); }

static ntp_select_cfg cfg_def(void)
{
  ntp_select_cfg c;
  ntp_select_cfg_default(&c);
  return c;
}

static void test_defaults_and_names(void **state)
{
  (void)state;
  ntp_select_cfg c = cfg_def();
  assert_near(c.mindist, 0.001, 0);
  assert_near(c.maxdist, 1.5, 0);
  assert_int_equal(c.minsane, 1);
  assert_int_equal(c.minclock, 3);
  assert_int_equal(c.maxclock, 10);
  assert_true(c.prefer_offset);
  const struct {
    ntp_sel_state st;
    char tally;
    const char *name;
  } t[] = {
      {NTP_SEL_UNUSABLE, ' ', "unusable"},   {NTP_SEL_NOSELECT, ' ', "noselect"},
      {NTP_SEL_FAR, ' ', "far"},             {NTP_SEL_FALSETICKER, 'x', "falseticker"},
      {NTP_SEL_EXCESS, '.', "excess"},       {NTP_SEL_OUTLIER, '-', "outlier"},
      {NTP_SEL_CANDIDATE, '+', "candidate"}, {NTP_SEL_BACKUP, '#', "backup"},
      {NTP_SEL_SYSPEER, '*', "sys.peer"},    {NTP_SEL_PPS, 'o', "pps.peer"},
  };
  for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
    assert_int_equal(ntp_sel_tally(t[k].st), t[k].tally);
    assert_string_equal(ntp_sel_name(t[k].st), t[k].name);
  }
  assert_string_equal(ntp_select_status_name(NTP_SELECT_SYNC), "sync");
  assert_string_equal(ntp_select_status_name(NTP_SELECT_NO_SOURCES), "no_sources");
  assert_string_equal(ntp_select_status_name(NTP_SELECT_TOO_FEW), "too_few");
  assert_string_equal(ntp_select_status_name(NTP_SELECT_NO_MAJORITY), "no_majority");
}

static void test_no_sources(void **state)
{
  (void)state;
  ntp_select_cfg c = cfg_def();
  ntp_select_result r;
  assert_int_equal(ntp_select(NULL, 0, &c, -1, NULL, &r), NTP_SELECT_NO_SOURCES);
  assert_int_equal(r.status, NTP_SELECT_NO_SOURCES);
  assert_int_equal(r.sys_peer, -1);
  assert_int_equal(r.leap, NTP_LEAP_UNSYNC);
  assert_int_equal(r.n_candidates, 0);

  ntp_source_info in[9];
  for (int k = 0; k < 9; k++)
    in[k] = src(0, 0.01);
  in[0].have_sample = false;
  in[1].reach = 0;
  in[2].stratum = 16;
  in[3].stratum = 0;
  in[4].denied = true;
  in[5].leap = NTP_LEAP_UNSYNC;
  in[6].offset = NAN;
  in[7].noselect = true;
  in[8].dispersion = 2.0; /* root distance beyond maxdist */
  ntp_sel_state st[9];
  assert_int_equal(ntp_select(in, 9, &c, -1, st, &r), NTP_SELECT_NO_SOURCES);
  for (int k = 0; k < 7; k++)
    assert_int_equal(st[k], NTP_SEL_UNUSABLE);
  assert_int_equal(st[7], NTP_SEL_NOSELECT);
  assert_int_equal(st[8], NTP_SEL_FAR);
  assert_int_equal(r.sys_peer, -1);
}

static void test_single_source(void **state)
{
  (void)state;
  ntp_select_cfg c = cfg_def();
  ntp_source_info in[1] = {src(0.125, 0.02)};
  ntp_sel_state st[1];
  ntp_select_result r;
  assert_int_equal(ntp_select(in, 1, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(r.sys_peer, 0);
  assert_int_equal(st[0], NTP_SEL_SYSPEER);
  assert_near(r.offset, 0.125, 1e-15);
  assert_near(r.jitter, JIT, 1e-15);
  assert_int_equal(r.leap, NTP_LEAP_NONE);
  assert_int_equal(r.n_survivors, 1);
  assert_int_equal(r.n_combined, 1);
  assert_near(r.low, 0.105, 1e-12);
  assert_near(r.high, 0.145, 1e-12);
}

static void test_falseticker_rejected(void **state)
{
  (void)state;
  ntp_select_cfg c = cfg_def();
  ntp_source_info in[4] = {src(0, 0.01), src(0.002, 0.01), src(-0.002, 0.01), src(0.5, 0.01)};
  ntp_sel_state st[4];
  ntp_select_result r;
  assert_int_equal(ntp_select(in, 4, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(st[3], NTP_SEL_FALSETICKER);
  assert_int_equal(ntp_sel_tally(st[3]), 'x');
  assert_int_equal(r.sys_peer, 0); /* equal distances: the lowest index */
  assert_int_equal(st[1], NTP_SEL_CANDIDATE);
  assert_int_equal(st[2], NTP_SEL_CANDIDATE);
  assert_int_equal(r.n_candidates, 4);
  assert_int_equal(r.n_truechimers, 3);
  assert_near(r.low, -0.008, 1e-12);
  assert_near(r.high, 0.008, 1e-12);
  assert_near(r.offset, 0, 1e-15);

  /* A falseticker stays one even if it is the prefer peer. */
  in[3].prefer = true;
  assert_int_equal(ntp_select(in, 4, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(st[3], NTP_SEL_FALSETICKER);
  assert_int_equal(r.sys_peer, 0);
}

static void test_no_majority(void **state)
{
  (void)state;
  ntp_select_cfg c = cfg_def();
  ntp_source_info in[4] = {src(0, 0.01), src(0.001, 0.01), src(0.5, 0.01), src(0.501, 0.01)};
  ntp_sel_state st[4];
  ntp_select_result r;
  assert_int_equal(ntp_select(in, 4, &c, -1, st, &r), NTP_SELECT_NO_MAJORITY);
  for (int k = 0; k < 4; k++)
    assert_int_equal(st[k], NTP_SEL_FALSETICKER);
  assert_int_equal(r.sys_peer, -1);
  assert_int_equal(r.leap, NTP_LEAP_UNSYNC);
  assert_near(r.offset, 0, 0);
  /* Two sources that disagree cannot outvote each other either. */
  assert_int_equal(ntp_select(in + 1, 2, &c, -1, st, &r), NTP_SELECT_NO_MAJORITY);
  /* Intervals that just touch do agree (they are closed). */
  ntp_source_info touch[2] = {src(0, 0.01), src(0, 0.01)};
  double lam = ntp_source_info_root_distance(&touch[0], c.mindist);
  touch[1].offset = 2 * lam;
  assert_int_equal(ntp_select(touch, 2, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_near(r.low, lam, 0);
  assert_near(r.high, lam, 0);
}

static void test_minsane(void **state)
{
  (void)state;
  ntp_select_cfg c = cfg_def();
  c.minsane = 3;
  ntp_source_info in[3] = {src(0, 0.01), src(0.001, 0.01), src(0.9, 0.01)};
  ntp_sel_state st[3];
  ntp_select_result r;
  assert_int_equal(ntp_select(in, 3, &c, -1, st, &r), NTP_SELECT_TOO_FEW);
  assert_int_equal(r.sys_peer, -1);
  assert_int_equal(r.n_truechimers, 2);
  assert_int_equal(r.n_survivors, 0);
  assert_int_equal(r.leap, NTP_LEAP_UNSYNC);
  assert_int_equal(st[0], NTP_SEL_CANDIDATE);
  assert_int_equal(st[1], NTP_SEL_CANDIDATE);
  assert_int_equal(st[2], NTP_SEL_FALSETICKER);
  c.minsane = 2;
  assert_int_equal(ntp_select(in, 3, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(r.sys_peer, 0);
}

static void test_prefer(void **state)
{
  (void)state;
  ntp_select_cfg c = cfg_def();
  ntp_source_info in[3] = {src(0, 0.01), src(0.004, 0.03), src(0.001, 0.02)};
  in[1].prefer = true;
  ntp_sel_state st[3];
  ntp_select_result r;
  assert_int_equal(ntp_select(in, 3, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(r.sys_peer, 1);
  assert_int_equal(st[1], NTP_SEL_SYSPEER);
  assert_int_equal(st[0], NTP_SEL_CANDIDATE);
  /* prefer_offset: the prefer peer's own offset and jitter. */
  assert_near(r.offset, 0.004, 1e-15);
  assert_near(r.jitter, JIT, 1e-15);
  /* Otherwise it is combined like the others. */
  c.prefer_offset = false;
  assert_int_equal(ntp_select(in, 3, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(r.sys_peer, 1);
  double w = 1 / 0.01 + 1 / 0.03 + 1 / 0.02;
  assert_near(r.offset, (0.004 / 0.03 + 0.001 / 0.02) / w, 1e-12);
}

static void test_noselect(void **state)
{
  (void)state;
  ntp_select_cfg c = cfg_def();
  ntp_source_info in[3] = {src(0, 0.005), src(0.001, 0.02), src(0.002, 0.03)};
  in[0].noselect = true;
  ntp_sel_state st[3];
  ntp_select_result r;
  assert_int_equal(ntp_select(in, 3, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(st[0], NTP_SEL_NOSELECT);
  assert_int_equal(r.sys_peer, 1);
  assert_int_equal(r.n_candidates, 2);
  /* A noselect source does not vote: 1 against 1 has no majority, while
   * the same three as candidates make the first a falseticker. */
  ntp_source_info v[3] = {src(0, 0.01), src(0.5, 0.01), src(0.5, 0.01)};
  v[2].noselect = true;
  assert_int_equal(ntp_select(v, 3, &c, -1, st, &r), NTP_SELECT_NO_MAJORITY);
  v[2].noselect = false;
  assert_int_equal(ntp_select(v, 3, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(st[0], NTP_SEL_FALSETICKER);
}

static void test_maxclock_excess(void **state)
{
  (void)state;
  ntp_select_cfg c = cfg_def();
  c.maxclock = 3;
  ntp_source_info in[5] = {src(0, 0.01), src(0.001, 0.05), src(0.002, 0.02), src(0.001, 0.03),
                           src(0, 0.005)};
  in[1].stratum = 1; /* stratum dominates the order: kept despite its distance */
  in[4].stratum = 3; /* the smallest distance, but the worst stratum */
  ntp_sel_state st[5];
  ntp_select_result r;
  assert_int_equal(ntp_select(in, 5, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(st[3], NTP_SEL_EXCESS);
  assert_int_equal(st[4], NTP_SEL_EXCESS);
  assert_int_equal(ntp_sel_tally(st[4]), '.');
  assert_int_equal(r.n_truechimers, 5);
  assert_int_equal(r.n_survivors, 3);
  assert_int_equal(r.sys_peer, 0);
  assert_int_equal(st[1], NTP_SEL_CANDIDATE);
  assert_int_equal(st[2], NTP_SEL_CANDIDATE);
}

static void test_clustering(void **state)
{
  (void)state;
  ntp_select_cfg c = cfg_def();
  const double off[5] = {0, 0.001, -0.001, 0.0005, 0.03};
  ntp_source_info in[5];
  for (int k = 0; k < 5; k++)
    in[k] = src(off[k], 0.05);
  ntp_sel_state st[5];
  ntp_select_result r;
  /* The noisiest goes first, then the one farthest from the rest, down to
   * minclock. */
  assert_int_equal(ntp_select(in, 5, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(st[4], NTP_SEL_OUTLIER);
  assert_int_equal(st[2], NTP_SEL_OUTLIER);
  assert_int_equal(ntp_sel_tally(st[2]), '-');
  assert_int_equal(r.n_truechimers, 5);
  assert_int_equal(r.n_survivors, 3);
  assert_int_equal(st[0], NTP_SEL_SYSPEER);
  assert_near(r.offset, 0.0015 / 3, 1e-15);

  /* Larger peer jitter: once the selection jitter is below it, dropping
   * more would not help, so clustering stops with four. */
  for (int k = 0; k < 5; k++)
    in[k] = src_j(off[k], 0.05, 0.01);
  assert_int_equal(ntp_select(in, 5, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(st[4], NTP_SEL_OUTLIER);
  assert_int_equal(r.n_survivors, 4);
  assert_int_equal(st[2], NTP_SEL_CANDIDATE);

  /* A prefer peer is never clustered away. */
  for (int k = 0; k < 5; k++)
    in[k] = src(off[k], 0.05);
  in[4].prefer = true;
  assert_int_equal(ntp_select(in, 5, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(st[4], NTP_SEL_SYSPEER);
  assert_int_equal(r.n_survivors, 3);
  assert_near(r.offset, 0.03, 0);
}

static void test_combine_weighted(void **state)
{
  (void)state;
  ntp_select_cfg c = cfg_def();
  ntp_source_info in[2] = {src(0.010, 0.01), src(0.020, 0.03)};
  ntp_sel_state st[2];
  ntp_select_result r;
  assert_int_equal(ntp_select(in, 2, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(r.sys_peer, 0);
  /* Weights 1/lambda: 100 and 33.3, so 3:1. */
  assert_near(r.offset, 0.0125, 1e-12);
  /* System jitter: the system peer's, and the weighted RMS of the offsets
   * around its offset: (33.3 * 0.01^2 / 133.3) = 2.5e-5. */
  assert_near(r.jitter, sqrt(JIT * JIT + 2.5e-5), 1e-12);
  assert_int_equal(r.n_combined, 2);
}

static void test_backup_beyond_combine_max(void **state)
{
  (void)state;
  ntp_select_cfg c = cfg_def();
  ntp_source_info in[10];
  for (int k = 0; k < 10; k++)
    in[k] = src_j(0.0001 * (k % 3), 0.02 + 0.001 * k, 0.01); /* too calm to cluster */
  ntp_sel_state st[10];
  ntp_select_result r;
  assert_int_equal(ntp_select(in, 10, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(r.n_survivors, 10);
  assert_int_equal(r.n_combined, NTP_SELECT_COMBINE_MAX);
  assert_int_equal(st[0], NTP_SEL_SYSPEER);
  for (int k = 1; k < 6; k++)
    assert_int_equal(st[k], NTP_SEL_CANDIDATE);
  for (int k = 6; k < 10; k++)
    assert_int_equal(st[k], NTP_SEL_BACKUP);
  assert_int_equal(ntp_sel_tally(st[9]), '#');
  /* A system peer kept from before stays combined; the sixth-best goes. */
  assert_int_equal(ntp_select(in, 10, &c, 8, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(r.sys_peer, 8);
  assert_int_equal(st[8], NTP_SEL_SYSPEER);
  assert_int_equal(st[5], NTP_SEL_BACKUP);
  assert_int_equal(st[0], NTP_SEL_CANDIDATE);
  assert_int_equal(r.n_combined, NTP_SELECT_COMBINE_MAX);
}

static void test_leap_majority(void **state)
{
  (void)state;
  ntp_select_cfg c = cfg_def();
  ntp_source_info in[4] = {src(0, 0.01), src(0, 0.01), src(0, 0.01), src(0, 0.01)};
  ntp_sel_state st[4];
  ntp_select_result r;
  in[0].leap = NTP_LEAP_INSERT;
  in[2].leap = NTP_LEAP_INSERT;
  ntp_select(in, 3, &c, -1, st, &r);
  assert_int_equal(r.leap, NTP_LEAP_INSERT); /* 2 of 3 */
  ntp_select(in, 4, &c, -1, st, &r);
  assert_int_equal(r.leap, NTP_LEAP_NONE); /* 2 of 4 is no majority */
  in[1].leap = NTP_LEAP_DELETE;
  in[2].leap = NTP_LEAP_DELETE;
  ntp_select(in, 3, &c, -1, st, &r);
  assert_int_equal(r.leap, NTP_LEAP_DELETE);
  in[1].leap = NTP_LEAP_NONE;
  ntp_select(in, 3, &c, -1, st, &r);
  assert_int_equal(r.leap, NTP_LEAP_NONE); /* one insert, one delete, one none */
}

static void test_ties_and_order(void **state)
{
  (void)state;
  ntp_select_cfg c = cfg_def();
  ntp_source_info same[3] = {src(0.001, 0.02), src(0.001, 0.02), src(0.001, 0.02)};
  ntp_sel_state st[3];
  ntp_select_result r;
  assert_int_equal(ntp_select(same, 3, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(r.sys_peer, 0);
  assert_int_equal(ntp_select(same, 3, &c, 2, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(r.sys_peer, 2); /* the previous one stays */
  assert_int_equal(ntp_select(same, 3, &c, 7, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(r.sys_peer, 0); /* an index out of range is ignored */

  /* The same sources in every order give the same answer. */
  const ntp_source_info base[3] = {src(0.001, 0.01), src(0.003, 0.02), src(-0.002, 0.03)};
  const int perm[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  double first = 0;
  for (int p = 0; p < 6; p++) {
    ntp_source_info in[3];
    for (int k = 0; k < 3; k++)
      in[k] = base[perm[p][k]];
    assert_int_equal(ntp_select(in, 3, &c, -1, st, &r), NTP_SELECT_SYNC);
    assert_int_equal(perm[p][r.sys_peer], 0);
    if (p == 0)
      first = r.offset;
    assert_near(r.offset, first, 1e-15);
  }
}

static void test_hysteresis(void **state)
{
  (void)state;
  ntp_select_cfg c = cfg_def();
  ntp_source_info in[2] = {src(0, 0.02), src(0.001, 0.014)};
  ntp_sel_state st[2];
  ntp_select_result r;
  ntp_select(in, 2, &c, -1, st, &r);
  assert_int_equal(r.sys_peer, 1);
  /* 0.020 <= 1.5 x 0.014: not clearly better, so no hop. */
  ntp_select(in, 2, &c, 0, st, &r);
  assert_int_equal(r.sys_peer, 0);
  assert_int_equal(st[0], NTP_SEL_SYSPEER);
  assert_int_equal(st[1], NTP_SEL_CANDIDATE);
  /* 0.020 > 1.5 x 0.012: clearly better. */
  in[1] = src(0.001, 0.012);
  ntp_select(in, 2, &c, 0, st, &r);
  assert_int_equal(r.sys_peer, 1);
  /* A prefer peer wins regardless. */
  in[1] = src(0.001, 0.03);
  in[1].prefer = true;
  ntp_select(in, 2, &c, 0, st, &r);
  assert_int_equal(r.sys_peer, 1);
}

static void test_n_max(void **state)
{
  (void)state;
  ntp_select_cfg c = cfg_def();
  enum { N = NTP_SELECT_MAX + 2 };
  ntp_source_info in[N];
  ntp_sel_state st[N];
  ntp_select_result r;
  for (int k = 0; k < N; k++)
    in[k] = src(0.0001 * (k % 5), 0.02);
  assert_int_equal(ntp_select(in, N, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(r.n_candidates, NTP_SELECT_MAX);
  assert_int_equal(r.n_truechimers, NTP_SELECT_MAX);
  assert_int_equal(st[NTP_SELECT_MAX], NTP_SEL_EXCESS);
  assert_int_equal(st[NTP_SELECT_MAX + 1], NTP_SEL_EXCESS);
  int excess = 0;
  for (int k = 0; k < N; k++)
    excess += st[k] == NTP_SEL_EXCESS;
  assert_int_equal(excess, N - 10); /* maxclock 10, the lowest indices on a tie */
  assert_true(r.n_survivors >= 3 && r.n_survivors <= 10);

  /* Exactly the maximum, all kept: six combined, the rest backups. */
  c.maxclock = NTP_SELECT_MAX;
  c.minclock = NTP_SELECT_MAX;
  assert_int_equal(ntp_select(in, NTP_SELECT_MAX, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(r.n_survivors, NTP_SELECT_MAX);
  assert_int_equal(r.n_combined, NTP_SELECT_COMBINE_MAX);
  int backups = 0;
  for (int k = 0; k < NTP_SELECT_MAX; k++)
    backups += st[k] == NTP_SEL_BACKUP;
  assert_int_equal(backups, NTP_SELECT_MAX - NTP_SELECT_COMBINE_MAX);
}

/* ---- tos authselect ----------------------------------------------------- */

static ntp_source_info auth_src(double off, double lam)
{
  ntp_source_info i = src(off, lam);
  i.authenticated = true;
  return i;
}

static bool survived(ntp_sel_state st)
{
  return st == NTP_SEL_SYSPEER || st == NTP_SEL_CANDIDATE || st == NTP_SEL_BACKUP;
}

static void test_authsel_names(void **state)
{
  (void)state;
  ntp_select_cfg c = cfg_def();
  assert_int_equal(c.authsel, NTP_AUTHSEL_MIX);
  const struct {
    ntp_authsel m;
    const char *name;
  } t[] = {{NTP_AUTHSEL_REQUIRE, "require"},
           {NTP_AUTHSEL_PREFER, "prefer"},
           {NTP_AUTHSEL_MIX, "mix"},
           {NTP_AUTHSEL_IGNORE, "ignore"}};
  for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
    ntp_authsel m = NTP_AUTHSEL_IGNORE + 1;
    assert_string_equal(ntp_authsel_name(t[k].m), t[k].name);
    assert_true(ntp_authsel_from_name(t[k].name, &m));
    assert_int_equal(m, t[k].m);
  }
  const char *bad[] = {"", "Mix", "mixed", "requires", "none", "mix "};
  for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
    ntp_authsel m = NTP_AUTHSEL_PREFER;
    assert_false(ntp_authsel_from_name(bad[k], &m));
    assert_int_equal(m, NTP_AUTHSEL_PREFER); /* untouched */
  }
  assert_string_equal(ntp_authsel_name((ntp_authsel)99), "?");
  assert_string_equal(ntp_select_status_name(NTP_SELECT_NO_AUTH), "no_auth");
}

/* One authenticated source with the true time against three plain ones
 * that agree on a lie 100 ms off: a majority of forgeries. */
static void liars(ntp_source_info in[4])
{
  in[0] = auth_src(0, 0.01);
  for (int k = 1; k < 4; k++)
    in[k] = src(0.1 + 0.0005 * k, 0.01);
}

static void test_authsel_mix_liars_cannot_outvote(void **state)
{
  (void)state;
  ntp_select_cfg c = cfg_def(); /* mix */
  ntp_source_info in[4];
  ntp_sel_state st[4];
  ntp_select_result r;
  liars(in);
  assert_int_equal(ntp_select(in, 4, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(r.sys_peer, 0);
  assert_int_equal(st[0], NTP_SEL_SYSPEER);
  for (int k = 1; k < 4; k++)
    assert_int_equal(st[k], NTP_SEL_FALSETICKER);
  assert_near(r.offset, 0, 1e-15);
  assert_near(r.low, -0.01, 1e-12); /* the authenticated interval alone */
  assert_near(r.high, 0.01, 1e-12);
  assert_int_equal(r.n_candidates, 4);
  assert_int_equal(r.n_truechimers, 1);
  /* Also while the liars were the system peer before. */
  assert_int_equal(ntp_select(in, 4, &c, 2, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(r.sys_peer, 0);

  /* ignore: the old majority vote, and the forgeries win. */
  c.authsel = NTP_AUTHSEL_IGNORE;
  assert_int_equal(ntp_select(in, 4, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(st[0], NTP_SEL_FALSETICKER);
  assert_true(r.sys_peer >= 1);
  assert_true(r.offset > 0.1);

  /* A value out of range is taken as the default. */
  c.authsel = (ntp_authsel)42;
  assert_int_equal(ntp_select(in, 4, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(r.sys_peer, 0);
}

static void test_authsel_mix_agreeing_plain_sources_help(void **state)
{
  (void)state;
  ntp_select_cfg c = cfg_def();
  /* Plain sources inside the authenticated interval survive and are
   * combined, but the system peer stays the authenticated one although
   * theirs are far smaller root distances. */
  ntp_source_info in[3] = {auth_src(0.004, 0.02), src(0.001, 0.005), src(0.0, 0.005)};
  ntp_sel_state st[3];
  ntp_select_result r;
  assert_int_equal(ntp_select(in, 3, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(r.sys_peer, 0);
  assert_int_equal(st[1], NTP_SEL_CANDIDATE);
  assert_int_equal(st[2], NTP_SEL_CANDIDATE);
  assert_int_equal(r.n_truechimers, 3);
  assert_int_equal(r.n_combined, 3);
  double w = 1 / 0.02 + 2 / 0.005;
  assert_near(r.offset, (0.004 / 0.02 + 0.001 / 0.005) / w, 1e-12);
  /* ignore: the closest source would be the system peer. */
  c.authsel = NTP_AUTHSEL_IGNORE;
  assert_int_equal(ntp_select(in, 3, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(r.sys_peer, 1);

  /* A plain interval that just touches the authenticated one agrees. */
  c.authsel = NTP_AUTHSEL_MIX;
  ntp_source_info t[2] = {auth_src(0, 0.01), src(0, 0.01)};
  double lam = ntp_source_info_root_distance(&t[0], c.mindist);
  t[1].offset = 2 * lam;
  assert_int_equal(ntp_select(t, 2, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(st[1], NTP_SEL_CANDIDATE);
  t[1].offset = 2 * lam + 1e-9;
  assert_int_equal(ntp_select(t, 2, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(st[1], NTP_SEL_FALSETICKER);
}

static void test_authsel_mix_needs_an_authenticated_candidate(void **state)
{
  (void)state;
  ntp_select_cfg c = cfg_def();
  ntp_source_info in[4];
  ntp_sel_state st[4];
  ntp_select_result r;
  /* The authenticated source is configured but has no sample yet (NTS-KE
   * pending, or its traffic blocked): the plain ones are not used. */
  liars(in);
  in[0].have_sample = false;
  assert_int_equal(ntp_select(in, 4, &c, -1, st, &r), NTP_SELECT_NO_AUTH);
  assert_int_equal(r.sys_peer, -1);
  assert_int_equal(r.leap, NTP_LEAP_UNSYNC);
  assert_int_equal(r.n_candidates, 3);
  assert_int_equal(st[0], NTP_SEL_UNUSABLE);
  for (int k = 1; k < 4; k++)
    assert_int_equal(st[k], NTP_SEL_CANDIDATE);
  in[0].have_sample = true;
  in[0].dispersion = 2.0; /* too far: not a candidate either */
  assert_int_equal(ntp_select(in, 4, &c, -1, st, &r), NTP_SELECT_NO_AUTH);
  assert_int_equal(st[0], NTP_SEL_FAR);

  /* A noselect authenticated source does not count: plain selection. */
  liars(in);
  in[0].noselect = true;
  assert_int_equal(ntp_select(in, 4, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(st[0], NTP_SEL_NOSELECT);
  assert_true(r.sys_peer >= 1);
  /* Nor does mix change anything without authenticated sources. */
  in[0].authenticated = false;
  in[0].noselect = false;
  ntp_select_result r2;
  ntp_sel_state st2[4];
  assert_int_equal(ntp_select(in, 4, &c, -1, st, &r), NTP_SELECT_SYNC);
  c.authsel = NTP_AUTHSEL_IGNORE;
  assert_int_equal(ntp_select(in, 4, &c, -1, st2, &r2), NTP_SELECT_SYNC);
  assert_memory_equal(&r, &r2, sizeof(r));
  assert_memory_equal(st, st2, sizeof(st));

  /* An NTS source in the configuration with no association yet (its name
   * does not resolve: DNS blocked) still counts: the plain ones wait. */
  c.authsel = NTP_AUTHSEL_MIX;
  c.auth_configured = 1;
  assert_int_equal(ntp_select(&in[1], 3, &c, -1, st, &r), NTP_SELECT_NO_AUTH);
  assert_int_equal(r.sys_peer, -1);
  c.authsel = NTP_AUTHSEL_PREFER;
  assert_int_equal(ntp_select(&in[1], 3, &c, -1, st, &r), NTP_SELECT_NO_SOURCES);
  assert_int_equal(st[0], NTP_SEL_NOSELECT);
}

static void test_authsel_mix_majority_among_authenticated(void **state)
{
  (void)state;
  ntp_select_cfg c = cfg_def();
  ntp_sel_state st[5];
  ntp_select_result r;
  /* Two authenticated sources disagree: three plain ones cannot settle it. */
  ntp_source_info tie[5] = {auth_src(0, 0.01), auth_src(0.5, 0.01), src(0.5, 0.01),
                            src(0.5, 0.01), src(0.5, 0.01)};
  assert_int_equal(ntp_select(tie, 5, &c, -1, st, &r), NTP_SELECT_NO_MAJORITY);
  for (int k = 0; k < 5; k++)
    assert_int_equal(st[k], NTP_SEL_FALSETICKER);
  c.authsel = NTP_AUTHSEL_IGNORE;
  assert_int_equal(ntp_select(tie, 5, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(st[0], NTP_SEL_FALSETICKER);

  /* Three authenticated: their majority decides, the plain ones that side
   * with the authenticated falseticker are falsetickers too. */
  c.authsel = NTP_AUTHSEL_MIX;
  ntp_source_info in[5] = {auth_src(0, 0.01), auth_src(0.001, 0.01), auth_src(0.5, 0.01),
                           src(0.5, 0.01), src(0.5, 0.01)};
  assert_int_equal(ntp_select(in, 5, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(r.sys_peer, 0);
  assert_int_equal(st[1], NTP_SEL_CANDIDATE);
  for (int k = 2; k < 5; k++)
    assert_int_equal(st[k], NTP_SEL_FALSETICKER);
  assert_near(r.low, -0.009, 1e-12);
  assert_near(r.high, 0.01, 1e-12);
}

static void test_authsel_mix_keeps_authenticated_survivor(void **state)
{
  (void)state;
  ntp_select_cfg c = cfg_def();
  /* Four plain sources huddled together within the authenticated
   * interval: clustering would drop the authenticated one first (largest
   * selection jitter), leaving only plain survivors. */
  ntp_source_info in[5] = {auth_src(0.004, 0.05), src(0, 0.05), src(0.0001, 0.05),
                           src(-0.0001, 0.05), src(0.00005, 0.05)};
  ntp_sel_state st[5];
  ntp_select_result r;
  assert_int_equal(ntp_select(in, 5, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(r.sys_peer, 0);
  assert_int_equal(r.n_survivors, 3);
  int outliers = 0;
  for (int k = 1; k < 5; k++)
    outliers += st[k] == NTP_SEL_OUTLIER;
  assert_int_equal(outliers, 2);
  c.authsel = NTP_AUTHSEL_IGNORE;
  assert_int_equal(ntp_select(in, 5, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(st[0], NTP_SEL_OUTLIER);

  /* maxclock: plain sources with better strata do not push the
   * authenticated one out as excess. */
  c.authsel = NTP_AUTHSEL_MIX;
  c.maxclock = 2;
  ntp_source_info mc[3] = {auth_src(0, 0.02), src(0.001, 0.01), src(0.002, 0.01)};
  mc[0].stratum = 3;
  mc[1].stratum = 1;
  mc[2].stratum = 1;
  assert_int_equal(ntp_select(mc, 3, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(r.sys_peer, 0);
  assert_int_equal(st[2], NTP_SEL_EXCESS);
  assert_int_equal(st[1], NTP_SEL_CANDIDATE);
  c.authsel = NTP_AUTHSEL_IGNORE;
  assert_int_equal(ntp_select(mc, 3, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(st[0], NTP_SEL_EXCESS);
}

static void test_authsel_mix_prefer_and_leap(void **state)
{
  (void)state;
  ntp_select_cfg c = cfg_def();
  /* Too calm to cluster: all four survive. */
  ntp_source_info in[4] = {src_j(0, 0.02, 0.005), src_j(0.001, 0.03, 0.005),
                           src_j(0.002, 0.01, 0.005), src_j(0.001, 0.01, 0.005)};
  in[0].authenticated = in[1].authenticated = true;
  ntp_sel_state st[4];
  ntp_select_result r;
  /* A plain prefer source is combined but is not the system peer. */
  in[2].prefer = true;
  assert_int_equal(ntp_select(in, 4, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(r.sys_peer, 0);
  assert_true(survived(st[2]));
  /* An authenticated prefer source is. */
  in[1].prefer = true;
  assert_int_equal(ntp_select(in, 4, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(r.sys_peer, 1);
  assert_near(r.offset, 0.001, 1e-15);
  /* The previous system peer is kept only if authenticated. */
  in[1].prefer = false;
  in[2].prefer = false;
  assert_int_equal(ntp_select(in, 4, &c, 3, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(r.sys_peer, 0);
  assert_int_equal(ntp_select(in, 4, &c, 1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(r.sys_peer, 1); /* 0.03 <= 1.5 x 0.02 */

  /* Plain survivors do not vote on leap seconds. */
  in[2].leap = NTP_LEAP_INSERT;
  in[3].leap = NTP_LEAP_INSERT;
  assert_int_equal(ntp_select(in, 4, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_true(survived(st[2]) && survived(st[3]));
  assert_int_equal(r.leap, NTP_LEAP_NONE);
  in[0].leap = NTP_LEAP_INSERT;
  assert_int_equal(ntp_select(in, 4, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(r.leap, NTP_LEAP_NONE); /* 1 of 2 authenticated */
  in[1].leap = NTP_LEAP_INSERT;
  in[2].leap = NTP_LEAP_NONE;
  in[3].leap = NTP_LEAP_NONE;
  assert_int_equal(ntp_select(in, 4, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(r.leap, NTP_LEAP_INSERT); /* 2 of 2, whatever the others say */
  in[0].leap = in[1].leap = NTP_LEAP_NONE;
  in[2].leap = in[3].leap = NTP_LEAP_INSERT;
  c.authsel = NTP_AUTHSEL_IGNORE;
  assert_int_equal(ntp_select(in, 4, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(r.leap, NTP_LEAP_NONE); /* 2 of 4 */
  in[1].leap = NTP_LEAP_INSERT;
  assert_int_equal(ntp_select(in, 4, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(r.leap, NTP_LEAP_INSERT); /* 3 of 4 */
}

static void test_authsel_require(void **state)
{
  (void)state;
  ntp_select_cfg c = cfg_def();
  c.authsel = NTP_AUTHSEL_REQUIRE;
  ntp_source_info in[5];
  ntp_sel_state st[5];
  ntp_select_result r;
  liars(in);
  in[4] = src(0.0005, 0.005); /* agrees with it, still not used */
  in[3].reach = 0;
  assert_int_equal(ntp_select(in, 5, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(r.sys_peer, 0);
  assert_int_equal(st[1], NTP_SEL_NOSELECT);
  assert_int_equal(st[2], NTP_SEL_NOSELECT);
  assert_int_equal(st[3], NTP_SEL_UNUSABLE); /* unusable comes first */
  assert_int_equal(st[4], NTP_SEL_NOSELECT);
  assert_int_equal(r.n_candidates, 1);
  assert_near(r.offset, 0, 0);
  /* No authenticated candidate: nothing to synchronise to. */
  in[0].reach = 0;
  assert_int_equal(ntp_select(in, 5, &c, -1, st, &r), NTP_SELECT_NO_SOURCES);
  in[0].authenticated = false; /* and with none configured at all */
  in[0].reach = 0xff;
  assert_int_equal(ntp_select(in, 5, &c, -1, st, &r), NTP_SELECT_NO_SOURCES);
  assert_int_equal(st[0], NTP_SEL_NOSELECT);
  assert_int_equal(r.sys_peer, -1);
}

static void test_authsel_prefer(void **state)
{
  (void)state;
  ntp_select_cfg c = cfg_def();
  c.authsel = NTP_AUTHSEL_PREFER;
  ntp_source_info in[5];
  ntp_sel_state st[5];
  ntp_select_result r;
  liars(in);
  in[4] = src(0.0005, 0.005);
  assert_int_equal(ntp_select(in, 5, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(r.sys_peer, 0);
  for (int k = 1; k < 5; k++)
    assert_int_equal(st[k], NTP_SEL_NOSELECT);
  assert_near(r.offset, 0, 0);
  /* Configured but not usable: still no fallback to the plain sources. */
  in[0].have_sample = false;
  assert_int_equal(ntp_select(in, 5, &c, -1, st, &r), NTP_SELECT_NO_SOURCES);
  assert_int_equal(st[4], NTP_SEL_NOSELECT);
  /* With no authenticated source configured, the plain ones are used. */
  in[0].authenticated = false;
  in[0].have_sample = true;
  assert_int_equal(ntp_select(in, 5, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(st[0], NTP_SEL_FALSETICKER);
  assert_true(r.sys_peer >= 1);
}

static void test_authsel_sample_agrees(void **state)
{
  (void)state;
  ntp_select_cfg c = cfg_def();
  ntp_source_info in[2] = {auth_src(0, 0.01), src(0.004, 0.1)};
  ntp_sel_state st[2];
  ntp_select_result r;
  /* A plain source with a wide interval (a large jitter) survives ... */
  in[1].jitter = 0.09;
  in[1].root_delay = 0.002;
  in[1].root_disp = 0.0005;
  assert_int_equal(ntp_select(in, 2, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_true(r.auth_split);
  assert_int_equal(st[1], NTP_SEL_CANDIDATE);
  /* ... but each of its samples is judged by its own bound: here
   * max(0.001, (0.004 + 0.002) / 2) + 0.0005 = 0.0035 around the offset,
   * against the authenticated [-0.01, 0.01]. */
  assert_true(ntp_select_sample_agrees(&r, &c, &in[1], 0.0135, 0.004));
  assert_false(ntp_select_sample_agrees(&r, &c, &in[1], 0.0136, 0.004));
  assert_true(ntp_select_sample_agrees(&r, &c, &in[1], -0.0135, 0.004));
  assert_false(ntp_select_sample_agrees(&r, &c, &in[1], -0.0136, 0.004));
  assert_false(ntp_select_sample_agrees(&r, &c, &in[1], 0.1, 0.004)); /* a lie */
  assert_true(ntp_select_sample_agrees(&r, &c, &in[1], 0.1, 0.2)); /* 0.1 round trip: no bound */
  assert_false(ntp_select_sample_agrees(&r, &c, &in[1], NAN, 0.004));
  /* mindist is the floor of the half round trip. */
  in[1].root_delay = 0;
  in[1].root_disp = 0;
  assert_true(ntp_select_sample_agrees(&r, &c, &in[1], 0.011, 0));
  assert_false(ntp_select_sample_agrees(&r, &c, &in[1], 0.0111, 0));
  /* Authenticated sources' samples are not checked. */
  assert_true(ntp_select_sample_agrees(&r, &c, &in[0], 0.5, 0));

  /* No split (ignore, or no authenticated source): every sample passes. */
  c.authsel = NTP_AUTHSEL_IGNORE;
  assert_int_equal(ntp_select(in, 2, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_false(r.auth_split);
  assert_true(ntp_select_sample_agrees(&r, &c, &in[1], 0.1, 0.004));
  c.authsel = NTP_AUTHSEL_MIX;
  in[0].authenticated = false;
  assert_int_equal(ntp_select(in, 2, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_false(r.auth_split);
  assert_true(ntp_select_sample_agrees(&r, &c, &in[1], 0.1, 0.004));
  /* require and prefer leave no unauthenticated survivor to check. */
  in[0].authenticated = true;
  c.authsel = NTP_AUTHSEL_REQUIRE;
  assert_int_equal(ntp_select(in, 2, &c, -1, st, &r), NTP_SELECT_SYNC);
  assert_int_equal(st[1], NTP_SEL_NOSELECT);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults_and_names),
      cmocka_unit_test(test_no_sources),
      cmocka_unit_test(test_single_source),
      cmocka_unit_test(test_falseticker_rejected),
      cmocka_unit_test(test_no_majority),
      cmocka_unit_test(test_minsane),
      cmocka_unit_test(test_prefer),
      cmocka_unit_test(test_noselect),
      cmocka_unit_test(test_maxclock_excess),
      cmocka_unit_test(test_clustering),
      cmocka_unit_test(test_combine_weighted),
      cmocka_unit_test(test_backup_beyond_combine_max),
      cmocka_unit_test(test_leap_majority),
      cmocka_unit_test(test_ties_and_order),
      cmocka_unit_test(test_hysteresis),
      cmocka_unit_test(test_n_max),
      cmocka_unit_test(test_authsel_names),
      cmocka_unit_test(test_authsel_mix_liars_cannot_outvote),
      cmocka_unit_test(test_authsel_mix_agreeing_plain_sources_help),
      cmocka_unit_test(test_authsel_mix_needs_an_authenticated_candidate),
      cmocka_unit_test(test_authsel_mix_majority_among_authenticated),
      cmocka_unit_test(test_authsel_mix_keeps_authenticated_survivor),
      cmocka_unit_test(test_authsel_mix_prefer_and_leap),
      cmocka_unit_test(test_authsel_require),
      cmocka_unit_test(test_authsel_prefer),
      cmocka_unit_test(test_authsel_sample_agrees),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
