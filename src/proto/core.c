/* core: selection and the clock discipline wired together (see core.h). */
#include "proto/core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "proto/ntp_pkt.h"

#define CORE_SAME_TIME 1e-6 /* taken times closer than this are one sample */
#define CORE_MAX_DELAY 16.0 /* NTP's MAXDISP, s: a longer round trip or larger error is
                               worthless */
#define CORE_MAX_OFFSET 4294967296.0 /* one NTP era, s: no measurement spans more */

typedef struct core_src {
  ntp_source_info info;  /* as the caller gave it (offset as measured) */
  ntp_filter_raw raw[NTP_FILTER_LEN];
  int n_raw;
  uint32_t refid;
  double fed;            /* when its newest sample fed was taken */
} core_src;

struct ntp_core {
  ntp_core_cfg cfg;
  ntp_disc *disc;
  double t_start;        /* monotonic time of ntp_core_create */
  core_src src[NTP_CORE_MAX_SOURCES];
  ntp_source_info aged[NTP_CORE_MAX_SOURCES]; /* offsets carried to the update */
  ntp_sel_state states[NTP_CORE_MAX_SOURCES];
  size_t n;
  int prev_peer;         /* against clock-hopping: the last system peer */
  double last_fed;       /* newest sample fed from any source (peer modes) */
  ntp_disc_sample in[NTP_CORE_MAX_SOURCES * NTP_FILTER_LEN];
  ntp_core_sys sys;
};

void ntp_core_default_cfg(ntp_core_cfg *cfg)
{
  memset(cfg, 0, sizeof(*cfg));
  ntp_select_cfg_default(&cfg->select);
  ntp_disc_default_cfg(&cfg->disc);
  cfg->feed = NTP_CORE_FEED_SURVIVORS;
}

/* Nothing measured before `since` is fed: at the start, and after a step
 * (whether or not the caller managed to step, the discipline has counted
 * it, so samples from before it must not come back). */
static void forget_samples(ntp_core *c, double since)
{
  for (size_t i = 0; i < NTP_CORE_MAX_SOURCES; i++) {
    c->src[i].fed = since;
    c->src[i].n_raw = 0;
  }
  c->last_fed = since;
}

ntp_core *ntp_core_create(const ntp_core_cfg *cfg, double now)
{
  ntp_core *c = calloc(1, sizeof(*c));
  if (!c)
    return NULL;
  c->cfg = *cfg;
  c->cfg.disc.precision = cfg->precision;
  c->disc = ntp_disc_create(&c->cfg.disc, now);
  if (!c->disc) {
    free(c);
    return NULL;
  }
  c->prev_peer = -1;
  c->t_start = now;
  forget_samples(c, -INFINITY);
  c->sys = (ntp_core_sys){.sys_peer = -1, .leap = NTP_LEAP_UNSYNC,
                          .stratum = NTP_MAX_STRATUM, .precision = cfg->precision_log2,
                          .ref_age = -1, .sel = {.sys_peer = -1, .leap = NTP_LEAP_UNSYNC}};
  return c;
}

void ntp_core_destroy(ntp_core *c)
{
  if (!c)
    return;
  ntp_disc_destroy(c->disc);
  free(c);
}

void ntp_core_set_source(ntp_core *c, size_t i, const ntp_source_info *info,
                         const ntp_filter_raw *raw, int n_raw, uint32_t refid)
{
  if (i >= NTP_CORE_MAX_SOURCES)
    return;
  core_src *s = &c->src[i];
  if (info)
    s->info = *info;
  else
    s->info = (ntp_source_info){.when = -1, .sample_age = -1};
  s->n_raw = 0;
  for (int k = 0; raw && k < n_raw && k < NTP_FILTER_LEN; k++)
    s->raw[s->n_raw++] = raw[k];
  s->refid = refid;
}

void ntp_core_set_from(ntp_core *c, size_t i, const ntp_source *src,
                       const ntp_source_info *info, double now, uint32_t refid)
{
  ntp_source_info own;
  ntp_filter_raw raw[NTP_FILTER_LEN];
  int k = 0;
  if (src) {
    if (!info) {
      ntp_source_get_info(src, now, &own);
      info = &own;
    }
    k = ntp_source_samples(src, -INFINITY, raw, NTP_FILTER_LEN);
  }
  ntp_core_set_source(c, i, info, raw, k, refid);
}

static void actions_init(ntp_core_actions *out, size_t n_poll)
{
  out->adjust = false;
  out->step = 0;
  out->startup = false;
  out->freq_ppm = 0;
  out->slew_until = INFINITY;
  out->refused_panic = false;
  out->n_poll = n_poll;
  for (size_t i = 0; i < n_poll; i++)
    out->poll[i] = -1;
}

/* The caller applies the last frequency; a refusal anywhere is reported. */
static void actions_merge(ntp_core_actions *out, const ntp_disc_action *a)
{
  out->adjust = true;
  out->step = a->step;
  out->startup = a->startup;
  out->freq_ppm = a->freq_ppm;
  out->slew_until = a->slew_until;
  out->refused_panic |= a->refused_panic;
}

/* Feeds one sample of source i; true if the clock is to be stepped, after
 * which every sample held is void (the sources start over). */
static bool feed_one(ntp_core *c, double now, size_t i, const ntp_disc_sample *smp,
                     ntp_core_actions *out)
{
  int poll = c->src[i].info.poll;
  c->src[i].fed = smp->taken;
  c->last_fed = smp->taken;
  ntp_disc_action a = ntp_disc_feed(c->disc, now, smp, poll);
  if (c->cfg.on_feed)
    c->cfg.on_feed(c->cfg.on_feed_arg, now, i, smp, poll, &a);
  actions_merge(out, &a);
  if (a.step == 0.0)
    return false;
  forget_samples(c, now);
  return true;
}

/* A sample the discipline can use: measured since the core started (the
 * discipline knows nothing of the clock before) and not after now (one
 * from the future would also hold back the source's later samples), with
 * an offset within one NTP era and an error and delay (NAN: unknown)
 * within MAXDISP.  A filter gives no others; the check keeps the clock
 * safe from one that does. */
static bool sample_ok(const ntp_core *c, double t, const ntp_disc_sample *s, double now)
{
  return t >= c->t_start && t <= now && fabs(s->offset) <= CORE_MAX_OFFSET &&
         s->error >= 0 && s->error <= CORE_MAX_DELAY &&
         (isnan(s->delay) || (s->delay >= 0 && s->delay <= CORE_MAX_DELAY));
}

static bool survivor(ntp_sel_state st)
{
  return st == NTP_SEL_SYSPEER || st == NTP_SEL_CANDIDATE || st == NTP_SEL_BACKUP;
}

/* Every survivor's samples not fed yet, oldest first, each with its error
 * from its delay (docs/discipline.md: every sample, weighted, not only the
 * filter's minimum-delay output).  An unauthenticated survivor's sample
 * must agree with the authenticated sources on its own. */
static void feed_survivors(ntp_core *c, double now, const ntp_select_result *res,
                           ntp_core_actions *out)
{
  size_t m = 0;
  for (size_t i = 0; i < c->n; i++) {
    const core_src *s = &c->src[i];
    if (!survivor(c->states[i]))
      continue;
    for (int j = 0; j < s->n_raw; j++) {
      const ntp_filter_raw *r = &s->raw[j];
      ntp_disc_sample smp = {.taken = r->t, .offset = r->offset, .error = r->error,
                             .delay = r->delay, .path = (int)i};
      if (sample_ok(c, r->t, &smp, now) && r->t > s->fed + CORE_SAME_TIME &&
          ntp_select_sample_agrees(res, &c->cfg.select, &s->info,
                                   ntp_disc_predict(c->disc, r->offset, r->t, now), r->delay))
        c->in[m++] = smp;
    }
  }
  ntp_disc_sort_samples(c->in, m);
  for (size_t k = 0; k < m; k++) {
    ntp_disc_sample smp = c->in[k];
    size_t i = (size_t)smp.path;
    if (c->cfg.no_envelope) {
      smp.delay = NAN;
      smp.path = -1;
    }
    if (feed_one(c, now, i, &smp, out))
      return;
  }
  for (size_t i = 0; i < c->n; i++)
    out->poll[i] = ntp_disc_poll(c->disc, (int)i);
}

/* The system peer's newest filter output (or the combined offset), once,
 * and never older than the last sample fed (RFC 5905: a peer switch must
 * not go back in time).  For comparisons only. */
static void feed_peer(ntp_core *c, double now, int p, const ntp_select_result *res,
                      ntp_core_actions *out)
{
  const ntp_source_info *in = &c->aged[p];
  double taken = now - in->sample_age;
  if (!in->have_sample || taken <= c->src[p].fed + CORE_SAME_TIME ||
      taken <= c->last_fed + CORE_SAME_TIME)
    return;
  /* The offsets were aged to now; the discipline wants them as measured. */
  double unage = -ntp_disc_predict(c->disc, 0.0, taken, now);
  bool comb = c->cfg.feed == NTP_CORE_FEED_COMBINED;
  /* A filter output is no one round trip: its jitter stands in for the
   * delay the envelope weighs by, and the error is the precision floor. */
  double jitter = comb ? res->jitter : in->jitter;
  ntp_disc_sample smp = {.taken = taken, .offset = (comb ? res->offset : in->offset) + unage,
                         .error = c->cfg.precision, .delay = jitter, .path = p};
  if (sample_ok(c, taken, &smp, now))
    feed_one(c, now, (size_t)p, &smp, out);
}

/* Selection compares offsets measured at different times: age them to
 * now with the discipline's estimate.  Returns the system peer or -1. */
static int select_now(ntp_core *c, double now, ntp_select_result *res)
{
  for (size_t i = 0; i < c->n; i++) {
    ntp_source_info *a = &c->aged[i];
    *a = c->src[i].info;
    if (a->have_sample && a->sample_age >= 0)
      a->offset = ntp_disc_predict(c->disc, a->offset, now - a->sample_age, now);
  }
  *res = (ntp_select_result){.sys_peer = -1, .leap = NTP_LEAP_UNSYNC};
  if (ntp_select(c->aged, c->n, &c->cfg.select, c->prev_peer, c->states, res) !=
      NTP_SELECT_SYNC)
    return -1;
  return res->sys_peer;
}

/* What our clients are told: from the system peer, else `local stratum`,
 * else unsynchronised. */
static void system_info(ntp_core *c, int best, const ntp_select_result *res, double now)
{
  ntp_core_sys *s = &c->sys;
  ntp_disc_info di;
  ntp_disc_get_info(c->disc, &di);
  s->sel = *res;
  s->sys_peer = best;
  s->synced = best >= 0;
  s->frequency = di.freq_ppm;
  s->offset = 0;
  s->precision = c->cfg.precision_log2;
  s->root_delay = s->root_disp = 0;
  if (best >= 0) {
    const ntp_source_info *b = &c->src[best].info;
    /* What the discipline has not corrected yet (estimating only, the
     * untouched clock's error), from every survivor's samples. */
    s->offset = ntp_disc_offset_now(c->disc, now);
    s->leap = res->leap; /* majority of the survivors */
    s->stratum = (uint8_t)(b->stratum + 1);
    s->refid = c->src[best].refid;
    s->ref_age = b->when > 0 ? b->when : 0;
    s->root_delay = b->root_delay + b->delay;
    s->root_disp = b->root_disp + b->dispersion + res->jitter + fabs(res->offset);
  } else if (c->cfg.local_stratum > 0) {
    s->leap = NTP_LEAP_NONE;
    s->stratum = (uint8_t)c->cfg.local_stratum;
    s->refid = NTP_REFID('L', 'O', 'C', 'L');
    s->ref_age = 0;
    s->root_disp = c->cfg.precision;
  } else {
    s->leap = NTP_LEAP_UNSYNC;
    s->stratum = NTP_MAX_STRATUM;
    s->refid = 0;
    s->ref_age = -1;
  }
}

static void status(const ntp_core *c, ntp_core_actions *out)
{
  ntp_disc_info di;
  ntp_disc_get_info(c->disc, &di);
  out->synced = c->sys.synced;
  out->leap = c->sys.synced ? c->sys.leap : NTP_LEAP_UNSYNC;
  /* Estimating only, nothing corrects the clock: it never takes the time. */
  out->clock_synced = c->sys.synced && di.synced && !c->cfg.disc.estimate_only;
}

void ntp_core_update(ntp_core *c, double now, size_t n, ntp_core_actions *out)
{
  c->n = n < NTP_CORE_MAX_SOURCES ? n : NTP_CORE_MAX_SOURCES;
  actions_init(out, c->n);
  ntp_select_result res;
  int best = select_now(c, now, &res);
  c->prev_peer = best;
  if (best >= 0 && c->cfg.feed == NTP_CORE_FEED_SURVIVORS)
    feed_survivors(c, now, &res, out);
  else if (best >= 0)
    feed_peer(c, now, best, &res, out);
  system_info(c, best, &res, now);
  c->sys.updates++;
  status(c, out);
}

void ntp_core_tick(ntp_core *c, double now, ntp_core_actions *out)
{
  actions_init(out, 0);
  ntp_disc_action a = ntp_disc_tick(c->disc, now);
  actions_merge(out, &a);
  status(c, out);
}

const ntp_core_sys *ntp_core_get_sys(const ntp_core *c) { return &c->sys; }

ntp_sel_state ntp_core_sel_state(const ntp_core *c, size_t i)
{
  return i < c->n ? c->states[i] : NTP_SEL_UNUSABLE;
}

void ntp_core_disc_info(const ntp_core *c, ntp_disc_info *out)
{
  ntp_disc_get_info(c->disc, out);
}

double ntp_core_offset_now(const ntp_core *c, double now)
{
  return ntp_disc_offset_now(c->disc, now);
}
