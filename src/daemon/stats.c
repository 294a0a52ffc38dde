/* stats: the statistics files' glue (see stats.h). */
#include "daemon/stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/netaddr.h"
#include "daemon/statsfile.h"
#include "proto/core.h"
#include "proto/ntp_pkt.h"
#include "proto/statsfmt.h"

#define JITTER_AVG 8.0 /* the loop jitter's averaging constant, as NTPsec's */

/* The last event per association, for the low byte of the status word. */
typedef struct stats_event {
  uint8_t code, count;
} stats_event;

struct stats {
  const clockctl *clk;
  statsfile *file[CONF_STATS_N];
  double last_offset, jitter; /* loopstats: RMS of the offset's steps */
  bool have_offset;
  stats_event ev[NTP_CORE_MAX_SOURCES];
};

static const char *const default_names[CONF_STATS_N] = {
    [CONF_STATS_LOOP] = "loopstats", [CONF_STATS_PEER] = "peerstats",
    [CONF_STATS_RAW] = "rawstats"};

stats *stats_create(const ntsd_conf *conf, const clockctl *clk)
{
  bool any = false;
  for (int k = 0; k < CONF_STATS_N; k++)
    any |= conf->filegen[k].enabled;
  if (!any)
    return NULL;
  if (!conf->statsdir[0]) {
    log_warn("statistics: no statsdir: no statistics file is written");
    return NULL;
  }
  stats *s = calloc(1, sizeof(*s));
  if (!s) {
    log_err("statistics: out of memory");
    return NULL;
  }
  s->clk = clk;
  for (int k = 0; k < CONF_STATS_N; k++) {
    const conf_filegen *g = &conf->filegen[k];
    if (!g->enabled)
      continue;
    statsfile_cfg fc = {.dir = conf->statsdir,
                        .name = g->file[0] ? g->file : default_names[k],
                        .daily = g->daily,
                        .link = g->link};
    s->file[k] = statsfile_create(&fc); /* NULL: logged, that one is not written */
  }
  return s;
}

void stats_destroy(stats *s)
{
  if (!s)
    return;
  for (int k = 0; k < CONF_STATS_N; k++)
    statsfile_destroy(s->file[k]);
  free(s);
}

void stats_counts(const stats *s, uint64_t *lines, uint64_t *errors)
{
  *lines = *errors = 0;
  for (int k = 0; s && k < CONF_STATS_N; k++)
    if (s->file[k]) {
      *lines += statsfile_lines(s->file[k]);
      *errors += statsfile_errors(s->file[k]);
    }
}

static statsfmt_time now_utc(const stats *s)
{
  struct timespec ts = clockctl_now(s->clk);
  return (statsfmt_time){.sec = ts.tv_sec, .nsec = (uint32_t)ts.tv_nsec};
}

void stats_loop(stats *s, double offset, double freq_ppm, double wander_ppm, int poll)
{
  if (!s || !s->file[CONF_STATS_LOOP])
    return;
  if (s->have_offset) {
    double d = offset - s->last_offset;
    s->jitter = sqrt(s->jitter * s->jitter + (d * d - s->jitter * s->jitter) / JITTER_AVG);
  }
  s->last_offset = offset;
  s->have_offset = true;
  char line[STATSFMT_LINE_MAX];
  statsfmt_time now = now_utc(s);
  statsfmt_loop l = {.offset = offset, .freq_ppm = freq_ppm, .jitter = s->jitter,
                     .wander_ppm = wander_ppm, .time_constant = poll};
  size_t n = statsfmt_loopstats(line, sizeof(line), now, &l);
  if (n)
    statsfile_write(s->file[CONF_STATS_LOOP], now.sec, line, n);
}

/* NTPsec's last event for the status word: reachable, then system peer
 * once selected; a repeat counts up. */
static uint8_t note_event(stats_event *e, const peer_view *v, ntp_sel_state sel)
{
  uint8_t code = e->code;
  if (sel == NTP_SEL_SYSPEER && e->code != STATSFMT_EVNT_SYSPEER)
    code = STATSFMT_EVNT_SYSPEER;
  else if (v->info.reach && e->code == 0)
    code = STATSFMT_EVNT_REACH;
  if (code != e->code) {
    e->code = code;
    e->count = 1;
  }
  return e->count;
}

static void peer_line(stats *s, size_t i, statsfmt_time now, const clients_reply *r,
                      const peer_view *v, ntp_sel_state sel)
{
  statsfmt_peer p = {.offset = v->info.offset, .delay = v->info.delay,
                     .dispersion = v->info.dispersion, .jitter = v->info.jitter};
  stats_event none = {0}, *e = i < NTP_CORE_MAX_SOURCES ? &s->ev[i] : &none;
  note_event(e, v, sel);
  statsfmt_peer_state st = {.configured = !v->is_pool, .auth_enabled = v->nts,
                            .authentic = true, /* only accepted replies get here */
                            .reachable = v->info.reach != 0, .sel = sel,
                            .last_event = e->code, .event_count = e->count};
  p.status = statsfmt_peer_status(&st);
  if (r->src)
    netaddr_str(r->src, p.addr, sizeof(p.addr));
  else
    snprintf(p.addr, sizeof(p.addr), "%s", v->name);
  char line[STATSFMT_LINE_MAX];
  size_t n = statsfmt_peerstats(line, sizeof(line), now, &p);
  if (n)
    statsfile_write(s->file[CONF_STATS_PEER], now.sec, line, n);
}

static void raw_line(stats *s, statsfmt_time now, const clients_reply *r, const peer_view *v)
{
  ntp_hdr h;
  if (!ntp_hdr_parse(r->pkt, r->len, &h))
    return;
  statsfmt_raw raw = {.t1 = r->t1, .t2 = h.rec, .t3 = h.xmt, .t4 = r->t4, .leap = h.leap,
                      .version = h.version, .mode = h.mode, .stratum = h.stratum,
                      .poll = h.poll, .precision = h.precision,
                      .root_delay = ntp_short_to_double(h.root_delay),
                      .root_disp = ntp_short_to_double(h.root_disp), .refid = h.refid,
                      .lost = r->lost};
  if (r->src)
    netaddr_str(r->src, raw.src, sizeof(raw.src));
  else
    snprintf(raw.src, sizeof(raw.src), "%s", v->name);
  if (r->dst)
    netaddr_str(r->dst, raw.dst, sizeof(raw.dst));
  else
    snprintf(raw.dst, sizeof(raw.dst), "-");
  char line[STATSFMT_LINE_MAX];
  size_t n = statsfmt_rawstats(line, sizeof(line), now, &raw);
  if (n)
    statsfile_write(s->file[CONF_STATS_RAW], now.sec, line, n);
}

void stats_reply(stats *s, size_t i, const clients_reply *r, const peer_view *v,
                 ntp_sel_state sel)
{
  if (!s)
    return;
  statsfmt_time now = now_utc(s);
  if (s->file[CONF_STATS_RAW])
    raw_line(s, now, r, v);
  if (s->file[CONF_STATS_PEER])
    peer_line(s, i, now, r, v, sel);
}
