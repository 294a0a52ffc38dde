/* select: sanity, intersection, clustering, combining (RFC 5905 11.2). */
#include "proto/select.h"

#include <math.h>
#include <string.h>

#include "proto/ntp_pkt.h"

/* Lambda never drops below this in the 1/lambda weights, so a source with
 * all-zero errors (mindist 0) cannot divide by zero. */
#define LAMBDA_FLOOR 1e-9

/* A candidate: a source that passed the sanity checks. */
typedef struct cand {
  int src;       /* index into the caller's arrays */
  double off;    /* offset, seconds */
  double lam;    /* root distance */
  double jit;    /* peer jitter */
  double metric; /* stratum x maxdist + lambda: the truechimers' order */
  bool prefer;
  bool auth;     /* authenticated */
  uint8_t leap;
} cand;

/* What tos authselect makes of the sources at hand (proto/select.h). */
typedef enum auth_plan {
  PLAN_ALL,        /* authentication plays no part */
  PLAN_AUTH_ONLY,  /* unauthenticated sources are not candidates */
  PLAN_AUTH_FIRST, /* the authenticated candidates alone find the intersection */
} auth_plan;

/* An end of a correctness interval: type -1 for the low end, +1 the high. */
typedef struct edge {
  double val;
  int type;
} edge;

void ntp_select_cfg_default(ntp_select_cfg *cfg)
{
  cfg->mindist = 0.001;
  cfg->maxdist = 1.5;
  cfg->minsane = 1;
  cfg->minclock = 3;
  cfg->maxclock = 10;
  cfg->prefer_offset = true;
  cfg->authsel = NTP_AUTHSEL_MIX;
  cfg->auth_configured = 0;
}

static auth_plan plan_for(const ntp_source_info *infos, size_t n, const ntp_select_cfg *cfg)
{
  ntp_authsel mode = cfg->authsel;
  bool any = cfg->auth_configured > 0; /* configured, usable or not: see proto/select.h */
  for (size_t k = 0; k < n; k++)
    any |= infos[k].authenticated && !infos[k].noselect;
  switch (mode) {
  case NTP_AUTHSEL_REQUIRE: return PLAN_AUTH_ONLY;
  case NTP_AUTHSEL_PREFER: return any ? PLAN_AUTH_ONLY : PLAN_ALL;
  case NTP_AUTHSEL_IGNORE: return PLAN_ALL;
  case NTP_AUTHSEL_MIX: break;
  }
  return any ? PLAN_AUTH_FIRST : PLAN_ALL; /* mix, and any value out of range */
}

static ntp_sel_state classify(const ntp_source_info *i, const ntp_select_cfg *cfg,
                              auth_plan plan, double lam)
{
  if (!i->have_sample || i->reach == 0 || i->denied || i->stratum == 0 ||
      i->stratum >= NTP_MAX_STRATUM || i->leap == NTP_LEAP_UNSYNC || !isfinite(i->offset) ||
      !isfinite(lam) || !isfinite(i->jitter))
    return NTP_SEL_UNUSABLE;
  if (i->noselect || (plan == PLAN_AUTH_ONLY && !i->authenticated))
    return NTP_SEL_NOSELECT;
  if (lam > cfg->maxdist)
    return NTP_SEL_FAR;
  return NTP_SEL_CANDIDATE;
}

/* Stage 1: marks every source and gathers the candidates; returns how many. */
static int gather(const ntp_source_info *infos, size_t n, const ntp_select_cfg *cfg,
                  auth_plan plan, ntp_sel_state *states, cand *cs)
{
  int c = 0;
  for (size_t k = 0; k < n; k++) {
    const ntp_source_info *i = &infos[k];
    double lam = ntp_source_info_root_distance(i, cfg->mindist);
    states[k] = classify(i, cfg, plan, lam);
    if (states[k] != NTP_SEL_CANDIDATE)
      continue;
    if (c == NTP_SELECT_MAX) {
      states[k] = NTP_SEL_EXCESS;
      continue;
    }
    cand *x = &cs[c++];
    x->src = (int)k;
    x->off = i->offset;
    x->lam = lam > LAMBDA_FLOOR ? lam : LAMBDA_FLOOR;
    x->jit = i->jitter;
    x->metric = i->stratum * cfg->maxdist + x->lam;
    x->prefer = i->prefer;
    x->auth = i->authenticated;
    x->leap = i->leap;
  }
  return c;
}

/* Orders interval ends by value; at equal values low ends come first, so
 * intervals that merely touch still count as overlapping (they are closed). */
static bool edge_after(const edge *a, const edge *b)
{
  return a->val > b->val || (a->val == b->val && a->type > b->type);
}

static void sort_edges(edge *e, int m)
{
  for (int i = 1; i < m; i++) {
    edge v = e[i];
    int j = i;
    while (j > 0 && edge_after(&e[j - 1], &v)) {
      e[j] = e[j - 1];
      j--;
    }
    e[j] = v;
  }
}

/* Stage 2: finds [*lo, *hi], the hull of the points covered by the
 * correctness intervals of at least c - f voters for the smallest f < c/2,
 * where the voters are the candidates (only the authenticated ones if
 * only_auth) and c is their number.  Returns false if even the largest
 * allowed f finds none. */
static bool intersect(const cand *cs, int n, bool only_auth, double *lo, double *hi)
{
  edge e[2 * NTP_SELECT_MAX];
  int m = 0;
  for (int k = 0; k < n; k++) {
    if (only_auth && !cs[k].auth)
      continue;
    e[m++] = (edge){cs[k].off - cs[k].lam, -1};
    e[m++] = (edge){cs[k].off + cs[k].lam, +1};
  }
  int c = m / 2;
  sort_edges(e, m);
  for (int f = 0; 2 * f < c; f++) {
    int need = c - f, depth = 0;
    double low = INFINITY, high = -INFINITY;
    for (int i = 0; i < m; i++) { /* upwards: a low end opens an interval */
      depth -= e[i].type;
      if (depth >= need) {
        low = e[i].val;
        break;
      }
    }
    depth = 0;
    for (int i = m - 1; i >= 0; i--) { /* downwards: a high end opens one */
      depth += e[i].type;
      if (depth >= need) {
        high = e[i].val;
        break;
      }
    }
    if (low <= high) {
      *lo = low;
      *hi = high;
      return true;
    }
  }
  return false;
}

/* Stage 2, the verdict: marks the falsetickers, puts the truechimers'
 * candidate numbers in list[] and returns how many.  Under PLAN_AUTH_FIRST
 * the intersection is the authenticated candidates' alone, and an
 * unauthenticated candidate is judged by it like any other. */
static int truechimers(const cand *cs, int c, double lo, double hi, ntp_sel_state *states,
                       int *list)
{
  int m = 0;
  for (int k = 0; k < c; k++) {
    if (cs[k].off + cs[k].lam < lo || cs[k].off - cs[k].lam > hi)
      states[cs[k].src] = NTP_SEL_FALSETICKER;
    else
      list[m++] = k;
  }
  return m;
}

/* Sorts list[] (candidate numbers) by key, ties by source index; with
 * auth_first, authenticated candidates go before all the others. */
static void sort_list(const cand *cs, int *list, int m, bool by_metric, bool auth_first)
{
  for (int i = 1; i < m; i++) {
    int v = list[i], j = i;
    double kv = by_metric ? cs[v].metric : cs[v].lam;
    while (j > 0) {
      const cand *p = &cs[list[j - 1]];
      double kp = by_metric ? p->metric : p->lam;
      if (auth_first && p->auth != cs[v].auth) {
        if (p->auth)
          break;
      } else if (kp < kv || (kp == kv && p->src < cs[v].src)) {
        break;
      }
      list[j] = list[j - 1];
      j--;
    }
    list[j] = v;
  }
}

/* Stage 4: removes outliers from list[0..m) and returns how many remain.
 * keep_auth: the last authenticated survivor is never removed. */
static int cluster(const cand *cs, int *list, int m, int floor_n, bool keep_auth,
                   ntp_sel_state *states)
{
  int n_auth = 0;
  for (int i = 0; i < m; i++)
    n_auth += cs[list[i]].auth;
  while (m > floor_n) {
    double max_sj = -1.0, min_pj = INFINITY;
    int worst = -1;
    for (int i = 0; i < m; i++) {
      const cand *a = &cs[list[i]];
      double sq = 0.0;
      for (int j = 0; j < m; j++) {
        double d = cs[list[j]].off - a->off;
        sq += d * d;
      }
      double sj = sqrt(sq / (m - 1));
      if (a->jit < min_pj)
        min_pj = a->jit;
      bool kept = a->prefer || (keep_auth && a->auth && n_auth == 1);
      /* >=: on a tie the later one (worse merit) goes. */
      if (!kept && sj >= max_sj) {
        max_sj = sj;
        worst = i;
      }
    }
    if (worst < 0 || max_sj <= min_pj)
      break;
    states[cs[list[worst]].src] = NTP_SEL_OUTLIER;
    n_auth -= cs[list[worst]].auth;
    memmove(&list[worst], &list[worst + 1], (size_t)(m - worst - 1) * sizeof(list[0]));
    m--;
  }
  return m;
}

/* Stage 5: the system peer's position in list[0..m), which is sorted by
 * root distance.  only_auth: among the authenticated survivors (there is
 * one: cluster() keeps it). */
static int pick_sys_peer(const cand *cs, const int *list, int m, int prev_src, bool only_auth)
{
  bool any_prefer = false;
  for (int i = 0; i < m; i++)
    any_prefer |= cs[list[i]].prefer && (!only_auth || cs[list[i]].auth);
  int best = -1, prev = -1;
  for (int i = 0; i < m; i++) {
    const cand *a = &cs[list[i]];
    if ((any_prefer && !a->prefer) || (only_auth && !a->auth))
      continue;
    if (best < 0)
      best = i; /* the list is in lambda order: the first eligible wins */
    if (a->src == prev_src)
      prev = i;
  }
  if (prev >= 0 && cs[list[prev]].lam <= NTP_SELECT_RESELECT * cs[list[best]].lam)
    return prev;
  return best;
}

/* Stage 6: marks the combined set and the backups, and averages. */
static void combine(const cand *cs, const int *list, int m, int sys, const ntp_select_cfg *cfg,
                    ntp_sel_state *states, ntp_select_result *res)
{
  const cand *sp = &cs[list[sys]];
  double w_sum = 0.0, off_sum = 0.0, sq_sum = 0.0;
  int others = 0;
  for (int i = 0; i < m; i++) {
    const cand *a = &cs[list[i]];
    if (i != sys && others == NTP_SELECT_COMBINE_MAX - 1) {
      states[a->src] = NTP_SEL_BACKUP;
      continue;
    }
    if (i != sys)
      others++;
    states[a->src] = i == sys ? NTP_SEL_SYSPEER : NTP_SEL_CANDIDATE;
    double w = 1.0 / a->lam, d = a->off - sp->off;
    w_sum += w;
    off_sum += w * a->off;
    sq_sum += w * d * d;
  }
  res->n_combined = others + 1;
  if (sp->prefer && cfg->prefer_offset) {
    res->offset = sp->off;
    res->jitter = sp->jit;
  } else {
    res->offset = off_sum / w_sum;
    res->jitter = sqrt(sp->jit * sp->jit + sq_sum / w_sum);
  }
}

/* Stage 7: the survivors vote (only the authenticated ones if only_auth). */
static uint8_t leap_vote(const cand *cs, const int *list, int m, bool only_auth)
{
  int ins = 0, del = 0, voters = 0;
  for (int i = 0; i < m; i++) {
    if (only_auth && !cs[list[i]].auth)
      continue;
    voters++;
    ins += cs[list[i]].leap == NTP_LEAP_INSERT;
    del += cs[list[i]].leap == NTP_LEAP_DELETE;
  }
  if (2 * ins > voters)
    return NTP_LEAP_INSERT;
  if (2 * del > voters)
    return NTP_LEAP_DELETE;
  return NTP_LEAP_NONE;
}

static int clamp_int(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

ntp_select_status ntp_select(const ntp_source_info *infos, size_t n,
                             const ntp_select_cfg *cfg, int prev_sys_peer,
                             ntp_sel_state *states, ntp_select_result *res)
{
  cand cs[NTP_SELECT_MAX];
  int list[NTP_SELECT_MAX];
  memset(res, 0, sizeof(*res));
  res->sys_peer = -1;
  res->leap = NTP_LEAP_UNSYNC;

  auth_plan plan = plan_for(infos, n, cfg);
  bool split = plan == PLAN_AUTH_FIRST;
  res->auth_split = split;
  int c = gather(infos, n, cfg, plan, states, cs);
  res->n_candidates = c;
  res->status = NTP_SELECT_NO_SOURCES;
  if (c == 0)
    return res->status;
  int n_auth = 0;
  for (int k = 0; k < c; k++)
    n_auth += cs[k].auth;
  res->status = NTP_SELECT_NO_AUTH;
  if (split && n_auth == 0)
    return res->status;

  res->status = NTP_SELECT_NO_MAJORITY;
  if (!intersect(cs, c, split, &res->low, &res->high)) {
    for (int k = 0; k < c; k++)
      states[cs[k].src] = NTP_SEL_FALSETICKER;
    return res->status;
  }
  int m = truechimers(cs, c, res->low, res->high, states, list);
  res->n_truechimers = m;
  sort_list(cs, list, m, true, split);
  int maxclock = clamp_int(cfg->maxclock, 1, NTP_SELECT_MAX);
  for (int i = maxclock; i < m; i++)
    states[cs[list[i]].src] = NTP_SEL_EXCESS;
  if (m > maxclock)
    m = maxclock;

  res->status = NTP_SELECT_TOO_FEW;
  if (res->n_truechimers < clamp_int(cfg->minsane, 1, NTP_SELECT_MAX))
    return res->status; /* the truechimers keep their '+' */

  m = cluster(cs, list, m, cfg->minclock > 1 ? cfg->minclock : 1, split, states);
  sort_list(cs, list, m, false, false);
  int sys = pick_sys_peer(cs, list, m, prev_sys_peer, split);
  combine(cs, list, m, sys, cfg, states, res);
  res->status = NTP_SELECT_SYNC;
  res->sys_peer = cs[list[sys]].src;
  res->n_survivors = m;
  res->leap = leap_vote(cs, list, m, split);
  return res->status;
}

bool ntp_select_sample_agrees(const ntp_select_result *res, const ntp_select_cfg *cfg,
                              const ntp_source_info *src, double offset, double delay)
{
  if (!res->auth_split || src->authenticated)
    return true;
  double half = (delay + src->root_delay) / 2.0;
  double l = (half > cfg->mindist ? half : cfg->mindist) + src->root_disp;
  /* NaN anywhere compares false: such a sample does not agree. */
  return offset + l >= res->low && offset - l <= res->high;
}

char ntp_sel_tally(ntp_sel_state st)
{
  switch (st) {
  case NTP_SEL_SYSPEER: return '*';
  case NTP_SEL_BACKUP: return '#';
  case NTP_SEL_CANDIDATE: return '+';
  case NTP_SEL_OUTLIER: return '-';
  case NTP_SEL_EXCESS: return '.';
  case NTP_SEL_FALSETICKER: return 'x';
  case NTP_SEL_PPS: return 'o';
  case NTP_SEL_FAR:
  case NTP_SEL_NOSELECT:
  case NTP_SEL_UNUSABLE: return ' ';
  }
  return ' ';
}

const char *ntp_sel_name(ntp_sel_state st)
{
  switch (st) {
  case NTP_SEL_SYSPEER: return "sys.peer";
  case NTP_SEL_BACKUP: return "backup";
  case NTP_SEL_CANDIDATE: return "candidate";
  case NTP_SEL_OUTLIER: return "outlier";
  case NTP_SEL_EXCESS: return "excess";
  case NTP_SEL_FALSETICKER: return "falseticker";
  case NTP_SEL_PPS: return "pps.peer";
  case NTP_SEL_FAR: return "far";
  case NTP_SEL_NOSELECT: return "noselect";
  case NTP_SEL_UNUSABLE: return "unusable";
  }
  return "unusable";
}

const char *ntp_select_status_name(ntp_select_status st)
{
  switch (st) {
  case NTP_SELECT_SYNC: return "sync";
  case NTP_SELECT_NO_SOURCES: return "no_sources";
  case NTP_SELECT_TOO_FEW: return "too_few";
  case NTP_SELECT_NO_MAJORITY: return "no_majority";
  case NTP_SELECT_NO_AUTH: return "no_auth";
  }
  return "?";
}

static const char *const authsel_names[] = {
    [NTP_AUTHSEL_MIX] = "mix",
    [NTP_AUTHSEL_PREFER] = "prefer",
    [NTP_AUTHSEL_REQUIRE] = "require",
    [NTP_AUTHSEL_IGNORE] = "ignore",
};

const char *ntp_authsel_name(ntp_authsel mode)
{
  if ((unsigned)mode >= sizeof(authsel_names) / sizeof(authsel_names[0]))
    return "?";
  return authsel_names[mode];
}

bool ntp_authsel_from_name(const char *name, ntp_authsel *mode)
{
  for (unsigned k = 0; k < sizeof(authsel_names) / sizeof(authsel_names[0]); k++)
    if (strcmp(name, authsel_names[k]) == 0) {
      *mode = (ntp_authsel)k;
      return true;
    }
  return false;
}
