/* source: per-server poll state machine. */
#include "proto/source.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct ntp_source {
  ntp_source_cfg cfg;
  int poll;
  uint8_t reach;
  int rate_poll;     /* poll a RATE kiss asked for: never polled faster */
  int burst_left;    /* packets still to send in the current burst */
  bool denied;
  double next_send;

  ntp_ts sent_xmt;   /* nonce of the outstanding request, 0 if none */
  ntp_ts t1;         /* local send time of that request */
  ntp_ts last_xmt;   /* server transmit time of the last accepted response */

  ntp_filter filt;
  double last_sample_t;
  ntp_sample last;   /* header values of the last accepted response */

  uint64_t sent, received, accepted, spikes;
  uint64_t drops[NTP_DROP_COUNT];
  ntp_kod last_kod;
};

static int clamp_poll(int p, const ntp_source_cfg *c)
{
  if (p < c->minpoll)
    return c->minpoll;
  if (p > c->maxpoll)
    return c->maxpoll;
  return p;
}

ntp_source *ntp_source_create(const ntp_source_cfg *cfg, double now)
{
  ntp_source *s = calloc(1, sizeof(*s));
  if (!s)
    return NULL;
  s->cfg = *cfg;
  if (s->cfg.minpoll < 0)
    s->cfg.minpoll = 0;
  if (s->cfg.maxpoll < s->cfg.minpoll)
    s->cfg.maxpoll = s->cfg.minpoll;
  if (s->cfg.version < 1 || s->cfg.version > 4)
    s->cfg.version = 4;
  s->poll = s->cfg.minpoll;
  s->next_send = now; /* first request right away */
  s->last_sample_t = -1.0;
  ntp_filter_init(&s->filt, s->cfg.precision);
  return s;
}

void ntp_source_destroy(ntp_source *s) { free(s); }

double ntp_source_next_send(const ntp_source *s) { return s->denied ? INFINITY : s->next_send; }

static double poll_interval(const ntp_source *s) { return ldexp(1.0, s->poll); }

/* Chooses when the request after this one goes out. */
static void schedule_next(ntp_source *s, double now)
{
  if (s->burst_left == 0) {
    bool start_burst = (s->cfg.iburst && s->reach == 0) || (s->cfg.burst && s->reach != 0);
    if (start_burst)
      s->burst_left = NTP_BURST_LEN;
  }
  double interval = poll_interval(s);
  if (s->burst_left > 0) {
    s->burst_left--;
    if (s->burst_left > 0 && interval > NTP_BURST_SPACING)
      interval = NTP_BURST_SPACING;
  }
  s->next_send = now + interval;
}

size_t ntp_source_make_request(ntp_source *s, double now, const uint8_t nonce[8], ntp_ts t1,
                               uint8_t *buf, size_t cap)
{
  if (s->denied)
    return 0;
  ntp_ts x = 0;
  for (int i = 0; i < 8; i++)
    x = (x << 8) | nonce[i];
  if (x == 0)
    x = 1; /* 0 means "no request outstanding" */
  size_t n = ntp_client_build_request(buf, cap, s->cfg.version, x);
  if (n == 0)
    return 0;

  s->reach = (uint8_t)(s->reach << 1);
  if (s->reach == 0 && s->sent > 0 && s->poll != s->cfg.minpoll)
    s->poll = s->cfg.minpoll; /* unreachable: start over quickly */
  s->sent_xmt = x;
  s->t1 = t1;
  s->sent++;
  schedule_next(s, now);
  return n;
}

bool ntp_source_set_t1(ntp_source *s, ntp_ts t1)
{
  double d = ntp_ts_diff(t1, s->t1);
  if (s->sent_xmt == 0 || !(d >= 0.0 && d <= 1.0))
    return false;
  s->t1 = t1;
  return true;
}

bool ntp_source_awaiting(const ntp_source *s) { return s->sent_xmt != 0; }
void ntp_source_give_up(ntp_source *s) { s->sent_xmt = 0; }

static void on_kod(ntp_source *s, ntp_kod k, const ntp_hdr *h)
{
  s->last_kod = k;
  if (k == NTP_KOD_DENY || k == NTP_KOD_RSTR) {
    s->denied = true;
    s->reach = 0; /* no longer polled: never shown as reachable */
  } else if (k == NTP_KOD_RATE) {
    int p = s->poll + 1;
    if (h->poll > p)
      p = h->poll;
    s->poll = clamp_poll(p, &s->cfg);
    s->rate_poll = s->poll;
    s->burst_left = 0;
  }
}

void ntp_source_set_poll(ntp_source *s, int poll)
{
  if (s->reach == 0 || s->burst_left > 0)
    return; /* unreachable (or starting): minpoll, or the burst's spacing */
  s->poll = clamp_poll(poll > s->rate_poll ? poll : s->rate_poll, &s->cfg);
}

ntp_drop ntp_source_on_response(ntp_source *s, const uint8_t *pkt, size_t len, ntp_ts t4,
                                double now, ntp_kod *kod)
{
  ntp_sample smp;
  ntp_kod k = NTP_KOD_NONE;
  s->received++;
  ntp_drop d = ntp_client_check_response(pkt, len, s->sent_xmt, s->last_xmt, s->t1, t4,
                                         s->cfg.precision, &smp, &k);
  if (kod)
    *kod = k;
  if (d == NTP_DROP_KOD) {
    ntp_hdr h;
    ntp_hdr_parse(pkt, len, &h);
    s->sent_xmt = 0; /* a kiss answers the request */
    on_kod(s, k, &h);
  }
  if (d != NTP_DROP_NONE) {
    s->drops[d]++;
    return d;
  }
  s->accepted++;
  s->sent_xmt = 0;
  s->last_xmt = smp.t3;
  s->reach |= 1;
  s->last = smp;
  s->last_sample_t = now;
  if (ntp_filter_add(&s->filt, smp.offset, smp.delay, smp.dispersion, now) == NTP_FILTER_SPIKE)
    s->spikes++;
  return NTP_DROP_NONE;
}

void ntp_source_get_info(const ntp_source *s, double now, ntp_source_info *out)
{
  memset(out, 0, sizeof(*out));
  out->reach = s->reach;
  out->poll = s->poll;
  out->denied = s->denied;
  out->prefer = s->cfg.prefer;
  out->noselect = s->cfg.noselect;
  out->when = s->last_sample_t < 0 ? -1.0 : now - s->last_sample_t;
  out->stratum = s->last.stratum;
  out->leap = s->last.leap;
  out->refid = s->last.refid;
  out->root_delay = s->last.root_delay;
  out->root_disp = s->last.root_disp;
  out->sent = s->sent;
  out->received = s->received;
  out->accepted = s->accepted;
  memcpy(out->drops, s->drops, sizeof(out->drops));
  out->last_kod = s->last_kod;
  ntp_filter_out fo;
  out->have_sample = ntp_filter_get(&s->filt, now, &fo);
  out->offset = fo.offset;
  out->delay = fo.delay;
  out->jitter = fo.jitter;
  out->dispersion = fo.dispersion;
  out->sample_age = out->have_sample ? now - fo.t : -1.0;
  out->spikes = s->spikes;
}

double ntp_source_info_root_distance(const ntp_source_info *i, double mindist)
{
  double half = (i->delay + i->root_delay) / 2.0;
  if (half < mindist)
    half = mindist;
  return half + i->dispersion + i->root_disp + i->jitter;
}

int ntp_source_samples(const ntp_source *s, double after, ntp_filter_raw *out, int cap)
{
  return ntp_filter_samples(&s->filt, after, out, cap);
}

void ntp_source_clock_stepped(ntp_source *s)
{
  ntp_filter_init(&s->filt, s->cfg.precision);
  /* A request in flight was stamped on the old time scale: its answer would
   * enter the fresh filter off by the step.  It is dropped as unexpected. */
  s->sent_xmt = 0;
}
