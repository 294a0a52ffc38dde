/* sim: the event loop, the client and server glue, and the pass checks. */
#include "sim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "proto/core.h"
#include "proto/ntp_client.h"
#include "proto/ntp_server.h"
#include "proto/source.h"

#define SIM_EPOCH ((ntp_ts)3900000000ULL << 32) /* true time 0, in 2023 */
#define SIM_PROC 20e-6  /* server turnaround, seconds */
#define SIM_METRIC_EVERY 1.0

typedef enum ev_type { EV_POLL, EV_SRV_RX, EV_CLI_RX, EV_TICK, EV_METRIC } ev_type;

typedef struct sim_event {
  double t;
  uint64_t seq;  /* ties go to the event queued first: deterministic order */
  ev_type type;
  int src;
  unsigned gen;  /* drops events addressed to a source or tick since replaced */
  double arg;    /* EV_TICK: the monotonic time the slew ends */
  size_t len;
  uint8_t pkt[NTP_HDR_LEN];
} sim_event;

typedef struct ev_queue {
  sim_event *v;
  size_t n, cap;
  uint64_t seq;
} ev_queue;

typedef struct sim_src {
  ntp_source *s;
  unsigned gen;
} sim_src;

typedef struct sim {
  const sim_cfg *cfg;
  sim_result *res;
  FILE *trace;
  ev_queue q;
  simclock *clk;
  ntp_core *core;        /* the daemon's engine: selection and discipline */
  double now_t;          /* true time of the update under way */
  sim_rng rng_net, rng_srv, rng_nonce;
  sim_src src[SIM_MAX_SERVERS];
  unsigned tick_gen;
  double sum2;           /* metrics after settle */
  long n2;
  double early_sum2;     /* ... and from the first update to lim.early */
  long early_n;
  double last_bad;       /* last metric time outside the sync band */
} sim;

/* ---- event queue (binary heap on t, seq) ----------------------------- */

static bool ev_before(const sim_event *a, const sim_event *b)
{
  return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void evq_push(ev_queue *q, sim_event e)
{
  if (q->n == q->cap) {
    size_t cap = q->cap ? q->cap * 2 : 64;
    sim_event *v = realloc(q->v, cap * sizeof(*v));
    if (!v)
      abort();
    q->v = v;
    q->cap = cap;
  }
  e.seq = q->seq++;
  size_t i = q->n++;
  while (i > 0 && ev_before(&e, &q->v[(i - 1) / 2])) {
    q->v[i] = q->v[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  q->v[i] = e;
}

static bool evq_pop(ev_queue *q, sim_event *out)
{
  if (q->n == 0)
    return false;
  *out = q->v[0];
  sim_event last = q->v[--q->n];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= q->n)
      break;
    if (c + 1 < q->n && ev_before(&q->v[c + 1], &q->v[c]))
      c++;
    if (!ev_before(&q->v[c], &last))
      break;
    q->v[i] = q->v[c];
    i = c;
  }
  if (q->n > 0)
    q->v[i] = last;
  return true;
}

static void push(sim *s, double t, ev_type type, int src, unsigned gen)
{
  sim_event e = {.t = t, .type = type, .src = src, .gen = gen};
  evq_push(&s->q, e);
}

/* ---- client ---------------------------------------------------------- */

static ntp_ts local_ts(sim *s, double t)
{
  return ntp_ts_add(SIM_EPOCH, simclock_local(s->clk, t));
}

static void source_start(sim *s, int i, double t)
{
  const sim_cfg *c = s->cfg;
  sim_src *src = &s->src[i];
  ntp_source_cfg sc = {.minpoll = c->minpoll, .maxpoll = c->maxpoll, .iburst = c->iburst,
                       .version = 4, .precision = c->precision};
  if (src->s)
    ntp_source_destroy(src->s);
  src->s = ntp_source_create(&sc, simclock_mono(s->clk, t));
  if (!src->s)
    abort();
  src->gen++;
  /* Staggered so that the sources do not answer in lockstep. */
  push(s, t + 0.1 * i + 0.01, EV_POLL, i, src->gen);
}

static void on_poll(sim *s, const sim_event *e)
{
  sim_src *src = &s->src[e->src];
  const sim_server_cfg *srv = &s->cfg->servers[e->src];
  double mono = simclock_mono(s->clk, e->t);
  uint64_t x = sim_rng_next(&s->rng_nonce);
  uint8_t nonce[8];
  for (int k = 0; k < 8; k++)
    nonce[k] = (uint8_t)(x >> (56 - 8 * k));
  sim_event out = {.type = EV_SRV_RX, .src = e->src, .gen = e->gen};
  ntp_ts t1 = local_ts(s, e->t);
  out.len = ntp_source_make_request(src->s, mono, nonce, t1, out.pkt, sizeof(out.pkt));
  double delay;
  if (out.len && simnet_delay(&srv->out, &s->rng_net, &s->res->net, &delay)) {
    out.t = e->t + delay;
    evq_push(&s->q, out);
  }
  double next = ntp_source_next_send(src->s);
  if (isfinite(next)) {
    double tn = simclock_true_at_mono(s->clk, e->t, next);
    push(s, tn > e->t ? tn : e->t + 1e-3, EV_POLL, e->src, e->gen);
  }
}

static void apply(sim *s, double t, const ntp_core_actions *a);

/* Statistics and the trace, per sample the core feeds to the discipline. */
static void on_feed(void *arg, double mono, size_t peer, const ntp_disc_sample *in, int poll,
                    const ntp_disc_action *a)
{
  sim *s = arg;
  double t = s->now_t;
  if (t >= s->cfg->lim.settle && s->cfg->servers[peer].offset != 0)
    s->res->false_fed++;
  s->res->updates++;
  if (!isfinite(s->res->first_update))
    s->res->first_update = t;
  if (t <= s->cfg->lim.early) {
    /* The clock runs at clock.freq_ppm + freq: the error is their sum. */
    double fe = fabs(a->base_freq_ppm + s->cfg->clock.freq_ppm);
    if (fe > s->res->early_max_freq)
      s->res->early_max_freq = fe;
  }
  if (!s->cfg->disc.estimate_only) {
    s->res->max_abs_freq = fmax(s->res->max_abs_freq, fabs(a->freq_ppm));
    s->res->panics += a->refused_panic;
  }
  if (s->trace) {
    ntp_disc_info di;
    ntp_core_disc_info(s->core, &di);
    fprintf(s->trace, "%s t=%9.1f peer=%zu age=%5.0f off=%+.6f err=%.6f poll=%d clk=%+.6f "
            "freq=%+.3f base=%+.3f n=%d est=%+.6f%s%s\n", s->cfg->name, t, peer,
            mono - in->taken, in->offset, in->error, poll, simclock_local(s->clk, t) - t,
            a->freq_ppm, a->base_freq_ppm, di.samples, ntp_core_offset_now(s->core, mono),
            a->step != 0 ? " STEP" : "",
            a->refused_panic ? " PANIC" : a->spike ? " SPIKE" : "");
  }
}

/* A fresh sample: the core sees every source, as the daemon's does. */
static void system_update(sim *s, double t)
{
  double mono = simclock_mono(s->clk, t);
  for (int i = 0; i < s->cfg->n_servers; i++)
    ntp_core_set_from(s->core, (size_t)i, s->src[i].s, NULL, mono, 0);
  ntp_core_actions a;
  s->now_t = t;
  ntp_core_update(s->core, mono, (size_t)s->cfg->n_servers, &a);
  apply(s, t, &a);
}

static void on_cli_rx(sim *s, const sim_event *e)
{
  sim_src *src = &s->src[e->src];
  double mono = simclock_mono(s->clk, e->t);
  ntp_ts t4 = local_ts(s, e->t);
  if (ntp_source_on_response(src->s, e->pkt, e->len, t4, mono, NULL) == NTP_DROP_NONE)
    system_update(s, e->t);
}

static void apply(sim *s, double t, const ntp_core_actions *a)
{
  for (size_t i = 0; i < a->n_poll; i++)
    if (a->poll[i] >= 0)
      ntp_source_set_poll(s->src[i].s, a->poll[i]);
  if (!a->adjust || s->cfg->disc.estimate_only)
    return; /* -x: the clock runs free, only the estimate is judged */
  if (a->step != 0) {
    simclock_step(s->clk, t, a->step);
    s->res->steps++;
    /* As ntpd's clear_all(): samples from before a step are meaningless. */
    for (int i = 0; i < s->cfg->n_servers; i++)
      source_start(s, i, t);
  }
  simclock_set_freq(s->clk, t, a->freq_ppm);
  s->tick_gen++;
  if (isfinite(a->slew_until)) {
    sim_event e = {.type = EV_TICK, .gen = s->tick_gen, .arg = a->slew_until};
    e.t = simclock_true_at_mono(s->clk, t, a->slew_until);
    if (e.t < t)
      e.t = t;
    evq_push(&s->q, e);
  }
}

static void on_tick(sim *s, const sim_event *e)
{
  if (e->gen != s->tick_gen)
    return;
  double mono = simclock_mono(s->clk, e->t);
  ntp_core_actions a;
  ntp_core_tick(s->core, mono > e->arg ? mono : e->arg, &a);
  if (!s->cfg->disc.estimate_only)
    s->res->max_abs_freq = fmax(s->res->max_abs_freq, fabs(a.freq_ppm));
  apply(s, e->t, &a);
}

/* ---- servers --------------------------------------------------------- */

static ntp_ts server_ts(sim *s, const sim_server_cfg *srv, double t)
{
  return ntp_ts_add(SIM_EPOCH, t + srv->offset + srv->noise * sim_rng_gauss(&s->rng_srv));
}

static void on_srv_rx(sim *s, const sim_event *e)
{
  const sim_server_cfg *srv = &s->cfg->servers[e->src];
  ntp_sysinfo si = {.leap = NTP_LEAP_NONE, .stratum = 1, .precision = -20,
                    .refid = NTP_REFID('G', 'P', 'S', 0), .root_delay = 0, .root_disp = 1e-5};
  ntp_ts rx = server_ts(s, srv, e->t);
  si.reftime = ntp_ts_add(rx, -1.0);
  sim_event out = {.type = EV_CLI_RX, .src = e->src, .gen = e->gen};
  if (ntp_server_prepare(e->pkt, e->len, &si, rx, out.pkt, sizeof(out.pkt), &out.len) !=
      NTP_SRV_RESPOND)
    return;
  ntp_server_finish(out.pkt, out.len, server_ts(s, srv, e->t + SIM_PROC));
  double delay;
  if (simnet_delay(&srv->back, &s->rng_net, &s->res->net, &delay)) {
    out.t = e->t + SIM_PROC + delay;
    evq_push(&s->q, out);
  }
}

/* ---- metrics and limits ---------------------------------------------- */

static void on_metric(sim *s, const sim_event *e)
{
  const sim_limits *l = &s->cfg->lim;
  double err = simclock_local(s->clk, e->t) - e->t - l->bias;
  if (s->cfg->disc.estimate_only) /* the clock as the estimate would correct it */
    err += ntp_core_offset_now(s->core, simclock_mono(s->clk, e->t));
  s->res->final_err = err + l->bias;
  if (l->sync_band > 0 && fabs(err) > l->sync_band)
    s->last_bad = e->t;
  if (isfinite(s->res->first_update) && e->t <= l->early) {
    if (fabs(err) > s->res->early_max_err)
      s->res->early_max_err = fabs(err);
    s->early_sum2 += err * err;
    s->early_n++;
    int bin = (int)((e->t - s->res->first_update) / 60.0);
    if (bin >= 0 && bin < SIM_PROF_BINS) {
      s->res->early_prof[bin] += err * err;
      s->res->early_prof_n[bin]++;
    }
  }
  if (e->t >= l->settle) {
    s->sum2 += err * err;
    s->n2++;
    if (fabs(err) > s->res->max_err)
      s->res->max_err = fabs(err);
    int peer = ntp_core_get_sys(s->core)->sys_peer;
    if (peer >= 0 && s->cfg->servers[peer].offset != 0)
      s->res->false_peer++;
  }
  push(s, e->t + SIM_METRIC_EVERY, EV_METRIC, 0, 0);
}

#define FAIL(...) \
  do { \
    snprintf(r->why, sizeof(r->why), __VA_ARGS__); \
    return false; \
  } while (0)

static bool check_limits(const sim_cfg *c, sim_result *r)
{
  const sim_limits *l = &c->lim;
  if (r->max_abs_freq > c->disc.max_freq_ppm + 1e-9)
    FAIL("|freq| %.3f ppm > %.0f", r->max_abs_freq, c->disc.max_freq_ppm);
  if (l->rms > 0 && !(r->rms <= l->rms))
    FAIL("rms %.3g > %.3g", r->rms, l->rms);
  if (l->max_err > 0 && !(r->max_err <= l->max_err))
    FAIL("max %.3g > %.3g", r->max_err, l->max_err);
  if (l->early_max_err > 0 && !(r->early_max_err <= l->early_max_err))
    FAIL("start-up max %.3g > %.3g", r->early_max_err, l->early_max_err);
  if (l->first_update > 0 && !(r->first_update <= l->first_update))
    FAIL("first update at %.1f s > %.1f", r->first_update, l->first_update);
  if (l->min_steps >= 0 && r->steps < l->min_steps)
    FAIL("steps %d < %d", r->steps, l->min_steps);
  if (l->max_steps >= 0 && r->steps > l->max_steps)
    FAIL("steps %d > %d", r->steps, l->max_steps);
  if (l->sync_time > 0 && !(r->sync_time <= l->sync_time))
    FAIL("sync %.0f s > %.0f", r->sync_time, l->sync_time);
  if (l->no_false_peer && r->false_peer > 0)
    FAIL("falseticker was system peer for %d s", r->false_peer);
  if (l->no_false_peer && r->false_fed > 0)
    FAIL("%d falseticker samples reached the discipline", r->false_fed);
  if (l->want_panic && r->panics == 0)
    FAIL("no panic refusal");
  if (l->min_final_err > 0 && !(fabs(r->final_err) >= l->min_final_err))
    FAIL("final error %.3g < %.3g", fabs(r->final_err), l->min_final_err);
  return true;
}

/* ---- run ------------------------------------------------------------- */

void sim_default_cfg(sim_cfg *c)
{
  memset(c, 0, sizeof(*c));
  c->duration = 4 * 3600.0;
  c->clock.freq_ppm = 100.0;
  c->clock.wander = 1e-9;
  ntp_disc_default_cfg(&c->disc);
  c->minpoll = 6;
  c->maxpoll = 6;
  ntp_select_cfg_default(&c->select);
  c->feed = NTP_CORE_FEED_SURVIVORS;
  c->iburst = true;
  c->precision = 1e-7;
  c->n_servers = 1;
  simnet_path p = {.base = 1e-3, .jitter = 10e-6};
  c->servers[0].noise = 1e-6;
  c->servers[0].out = c->servers[0].back = p;
  c->lim.settle = 1800.0;
  c->lim.sync_band = 200e-6;
  c->lim.min_steps = -1;
  c->lim.max_steps = -1;
}

static void dispatch(sim *s, const sim_event *e)
{
  if (e->type == EV_POLL && e->gen != s->src[e->src].gen)
    return; /* the source was restarted after a step */
  switch (e->type) {
  case EV_POLL: on_poll(s, e); break;
  case EV_SRV_RX: on_srv_rx(s, e); break;
  case EV_CLI_RX: on_cli_rx(s, e); break;
  case EV_TICK: on_tick(s, e); break;
  case EV_METRIC: on_metric(s, e); break;
  }
}

bool sim_run(const sim_cfg *cfg, uint64_t seed, sim_result *res, FILE *trace)
{
  sim s = {.cfg = cfg, .res = res, .trace = trace};
  memset(res, 0, sizeof(*res));
  res->first_update = INFINITY;
  sim_rng_seed(&s.rng_net, seed, 2);
  sim_rng_seed(&s.rng_srv, seed, 3);
  sim_rng_seed(&s.rng_nonce, seed, 4);
  s.clk = simclock_create(&cfg->clock, seed);
  ntp_core_cfg cc;
  ntp_core_default_cfg(&cc);
  cc.select = cfg->select;
  cc.disc = cfg->disc;
  cc.precision = cfg->precision;
  cc.feed = cfg->feed;
  cc.no_envelope = cfg->no_envelope;
  cc.on_feed = on_feed;
  cc.on_feed_arg = &s;
  s.core = ntp_core_create(&cc, 0.0);
  if (!s.clk || !s.core)
    abort();
  simclock_set_freq(s.clk, 0.0, cfg->disc.initial_freq_ppm);
  for (int i = 0; i < cfg->n_servers; i++)
    source_start(&s, i, 0.0);
  push(&s, 0.0, EV_METRIC, 0, 0);
  sim_event e;
  while (evq_pop(&s.q, &e) && e.t <= cfg->duration)
    dispatch(&s, &e);

  res->rms = s.n2 ? sqrt(s.sum2 / (double)s.n2) : NAN;
  res->early_rms = s.early_n ? sqrt(s.early_sum2 / (double)s.early_n) : NAN;
  res->sync_time = s.last_bad < cfg->duration - 2 * SIM_METRIC_EVERY ? s.last_bad : INFINITY;
  ntp_disc_info di;
  ntp_core_disc_info(s.core, &di);
  res->freq_ppm = di.freq_ppm;
  res->pass = check_limits(cfg, res);
  for (int i = 0; i < cfg->n_servers; i++)
    ntp_source_destroy(s.src[i].s);
  ntp_core_destroy(s.core);
  simclock_destroy(s.clk);
  free(s.q.v);
  return res->pass;
}
