/* client: the upstream associations and the glue between their parts. */
#include "daemon/client.h"

#include <event2/event.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/nts_source.h"
#include "daemon/resolver.h"
#include "daemon/sysclock.h"
#include "daemon/timer.h"
#include "daemon/transport.h"

#define POOL_MAX_SOURCES 4 /* associations spawned per pool name */
#define KE_PORT 4460
#define UNREACH_POLLS 8    /* unanswered polls in a row: unreachable (the reach register) */
#define ALERT_CHECK_S 5    /* how often the tamper summaries falling due are looked for */

typedef struct peer peer;

struct peer {
  ntsd_clients *owner;
  conf_source cfg;               /* its configuration line */
  struct sockaddr_storage named; /* what the name resolved to: the server, or its NTS-KE */
  socklen_t namedlen;
  struct sockaddr_storage sa;    /* where NTP goes */
  socklen_t salen;
  bool have_addr;                /* sa known (for NTS: after NTS-KE) */
  ntp_source *src;
  struct event *timer;
  transport *tr;                 /* the request in flight, while open */
  bool unreach_logged;           /* "unreachable" said; "reachable again" is due */
  nts_source *nts;               /* NULL for plain NTP */
};

/* One `server` or `pool` line and its name's resolution. */
typedef struct named_source {
  ntsd_clients *owner;
  conf_source cfg;
  resolver *res;
} named_source;

struct ntsd_clients {
  clients_cfg cfg; /* sources and nts_ca not kept: copied where needed */
  char nts_ca[CONF_PATH_MAX];
  peer **peers;
  size_t n_peers, cap_peers;
  uint64_t tx_timestamps;
  nts_sources *nts;
  named_source *names;
  size_t n_names;
  struct event *alert_timer;
  uint8_t buf[NTP_MAX_PKT]; /* the request being built */
};

static void arm_timer(peer *p)
{
  double due = ntp_source_next_send(p->src);
  if (!isfinite(due))
    return; /* denied by a kiss: stays idle */
  timer_arm_in(p->timer, due - sysclock_mono());
}

static void log_peer(const peer *p, int level, const char *what)
{
  char a[NETADDR_STRLEN];
  const struct sockaddr *sa = (const struct sockaddr *)(p->have_addr ? &p->sa : &p->named);
  log_msg(level, "%s (%s): %s", p->cfg.host, netaddr_str_port(sa, a, sizeof(a)), what);
}

static void on_alert_timer(evutil_socket_t fd, short what, void *arg)
{
  ntsd_clients *c = arg;
  (void)fd;
  (void)what;
  double now = sysclock_mono();
  for (size_t i = 0; i < c->n_peers; i++)
    if (c->peers[i]->nts)
      nts_source_summarise(c->peers[i]->nts, now);
}

/* The exchange in flight is abandoned. */
static void end_request(peer *p)
{
  transport_close(p->tr);
  if (ntp_source_awaiting(p->src))
    ntp_source_give_up(p->src);
}

/* ---- the exchange: transport callbacks ----------------------------------- */

static void on_sent(void *arg, ntp_ts t1)
{
  peer *p = arg;
  if (ntp_source_set_t1(p->src, t1))
    p->owner->tx_timestamps++;
}

/* Says once that a source stopped answering (and once that it is back). */
static void note_reach(peer *p, double now)
{
  ntp_source_info i;
  ntp_source_get_info(p->src, now, &i);
  if (i.reach == 0 && i.sent >= UNREACH_POLLS && !p->unreach_logged) {
    p->unreach_logged = true;
    log_peer(p, LOG_LVL_NOTICE, "unreachable: no reply to the last 8 polls");
  } else if (i.reach != 0 && p->unreach_logged) {
    p->unreach_logged = false;
    log_peer(p, LOG_LVL_NOTICE, "reachable again");
  }
}

static void on_response(void *arg, const uint8_t *pkt, size_t n, ntp_ts rx)
{
  peer *p = arg;
  ntsd_clients *c = p->owner;
  if (p->nts && !nts_source_check(p->nts, pkt, n))
    return; /* not an authentic answer to our request: keep waiting */
  ntp_kod kod;
  ntp_drop d = ntp_source_on_response(p->src, pkt, n, rx, sysclock_mono(), &kod);
  char msg[96];
  if (d == NTP_DROP_NONE) {
    transport_close(p->tr);
    note_reach(p, sysclock_mono());
    if (c->cfg.update)
      c->cfg.update(c->cfg.update_arg);
  } else if (d == NTP_DROP_KOD) {
    snprintf(msg, sizeof(msg), "kiss-o'-death %s", ntp_kod_name(kod));
    log_peer(p, kod == NTP_KOD_RATE ? LOG_LVL_INFO : LOG_LVL_WARN, msg);
    transport_close(p->tr);
    evtimer_del(p->timer);
    arm_timer(p); /* the poll may have changed */
  } else {
    snprintf(msg, sizeof(msg), "response dropped: %s", ntp_drop_name(d));
    log_peer(p, LOG_LVL_DEBUG, msg);
  }
}

/* ---- polling -------------------------------------------------------------- */

/* Builds the request in c->buf, reading t1 as late as the build allows;
 * 0 when there is nothing to send with. */
static size_t build_request(peer *p, const uint8_t nonce8[8])
{
  ntsd_clients *c = p->owner;
  if (!p->nts)
    return ntp_source_make_request(p->src, sysclock_mono(), nonce8, clockctl_now_ntp(c->cfg.clk),
                                   c->buf, sizeof(c->buf));
  uint8_t hdr[NTP_HDR_LEN];
  if (!nts_source_begin(p->nts) ||
      ntp_source_make_request(p->src, sysclock_mono(), nonce8, clockctl_now_ntp(c->cfg.clk), hdr,
                              sizeof(hdr)) != NTP_HDR_LEN)
    return 0;
  return nts_source_seal(p->nts, hdr, sizeof(hdr), c->buf, sizeof(c->buf));
}

static void send_request(peer *p)
{
  if (p->nts)
    nts_source_end_exchange(p->nts);
  end_request(p);
  if (p->nts && !nts_source_polling(p->nts))
    return;
  char err[128];
  if (!transport_open(p->tr, (struct sockaddr *)&p->sa, p->salen, err, sizeof(err))) {
    log_peer(p, LOG_LVL_DEBUG, err); /* the reach register shows it */
    return;
  }
  uint8_t nonce[8];
  sysclock_random(nonce, sizeof(nonce));
  size_t n = build_request(p, nonce);
  if (n == 0) {
    transport_close(p->tr);
    return;
  }
  if (!transport_send(p->tr, p->owner->buf, n, err, sizeof(err)))
    log_peer(p, LOG_LVL_DEBUG, err);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
  peer *p = arg;
  (void)fd;
  (void)what;
  double now = sysclock_mono();
  send_request(p);
  note_reach(p, now);
  if (p->nts && !nts_source_polling(p->nts))
    return; /* the NTS-KE restarts polling when it succeeds */
  if (ntp_source_next_send(p->src) <= now) {
    /* Nothing was sent (a local error): try again a poll later, never in a loop. */
    ntp_source_info i;
    ntp_source_get_info(p->src, now, &i);
    timer_arm_in(p->timer, ldexp(1.0, i.poll));
    return;
  }
  arm_timer(p);
}

/* ---- NTS hooks ------------------------------------------------------------ */

static void nts_log(void *arg, int level, const char *msg) { log_peer(arg, level, msg); }
static void nts_stop(void *arg) { end_request(arg); }

static void nts_set_address(void *arg, const struct sockaddr *sa, socklen_t len)
{
  peer *p = arg;
  memcpy(&p->sa, sa, len);
  p->salen = len;
  p->have_addr = true;
}

static void nts_resume(void *arg)
{
  peer *p = arg;
  if (!evtimer_pending(p->timer, NULL))
    arm_timer(p); /* authenticated polling starts (or resumes) */
}

static bool nts_peer_init(peer *p)
{
  static const nts_source_hooks hooks = {.log = nts_log, .stop = nts_stop,
                                         .set_address = nts_set_address, .resume = nts_resume};
  ntsd_clients *c = p->owner;
  nts_source_hooks h = hooks;
  h.arg = p;
  nts_source_cfg nc = {.host = p->cfg.host, .ca = p->cfg.ca[0] ? p->cfg.ca : c->nts_ca,
                       .aead = p->cfg.aead[0] ? conf_aead_id(p->cfg.aead) : 0};
  /* Pins with the line's own `ca` add to it; pins without it replace the CA. */
  nc.pins.n = p->cfg.pins.n < KE_PINS_MAX ? p->cfg.pins.n : KE_PINS_MAX;
  memcpy(nc.pins.sha256, p->cfg.pins.sha256, nc.pins.n * sizeof(nc.pins.sha256[0]));
  nc.pins.chain = p->cfg.ca[0] != '\0';
  char err[300];
  p->nts = nts_source_create(c->nts, &nc, (struct sockaddr *)&p->named, p->namedlen, &h, err,
                             sizeof(err));
  if (!p->nts)
    log_err("%s: %s; not using this source", p->cfg.host, err);
  return p->nts != NULL;
}

/* ---- associations --------------------------------------------------------- */

static void peer_free(peer *p)
{
  if (!p)
    return;
  nts_source_destroy(p->nts);
  transport_destroy(p->tr);
  if (p->timer)
    event_free(p->timer);
  ntp_source_destroy(p->src);
  free(p);
}

static peer *peer_new(ntsd_clients *c, const conf_source *cfg, const struct sockaddr *sa,
                      socklen_t len)
{
  peer *p = calloc(1, sizeof(*p));
  if (!p)
    return NULL;
  p->owner = c;
  p->cfg = *cfg;
  memcpy(&p->named, sa, len);
  p->namedlen = len;
  if (!cfg->nts) {
    memcpy(&p->sa, sa, len);
    p->salen = len;
    p->have_addr = true;
  } else if (!nts_peer_init(p)) {
    free(p);
    return NULL;
  }
  ntp_source_cfg sc = {.minpoll = cfg->minpoll, .maxpoll = cfg->maxpoll, .iburst = cfg->iburst,
                       .burst = cfg->burst, .prefer = cfg->prefer, .noselect = cfg->noselect,
                       .version = (uint8_t)cfg->version, .precision = c->cfg.precision};
  transport_cfg tc = {.ops = &transport_udp, .base = c->cfg.base, .clk = c->cfg.clk,
                      .cbs = {.on_sent = on_sent, .on_response = on_response, .arg = p}};
  p->src = ntp_source_create(&sc, sysclock_mono());
  p->timer = evtimer_new(c->cfg.base, on_timer, p);
  p->tr = transport_create(&tc);
  if (!p->src || !p->timer || !p->tr) {
    peer_free(p);
    return NULL;
  }
  return p;
}

static bool add_peer(ntsd_clients *c, const conf_source *cfg, const struct sockaddr *sa,
                     socklen_t len)
{
  if (c->n_peers == c->cap_peers) {
    size_t nc = c->cap_peers ? c->cap_peers * 2 : 8;
    peer **np = realloc(c->peers, nc * sizeof(*np));
    if (!np)
      return false;
    c->peers = np;
    c->cap_peers = nc;
  }
  peer *p = peer_new(c, cfg, sa, len);
  if (!p)
    return false;
  c->peers[c->n_peers++] = p;
  log_peer(p, LOG_LVL_NOTICE, p->nts ? "new NTS association" : "new association");
  if (p->nts)
    nts_source_start(p->nts); /* NTS-KE first */
  else
    arm_timer(p);
  return true;
}

static bool have_address(const ntsd_clients *c, const struct sockaddr *sa, socklen_t len)
{
  for (size_t i = 0; i < c->n_peers; i++)
    if (c->peers[i]->namedlen == len && memcmp(&c->peers[i]->named, sa, len) == 0)
      return true;
  return false;
}

/* An address for a name: a new association unless one has it already. */
static bool on_address(void *arg, const struct sockaddr *sa, socklen_t len)
{
  named_source *ns = arg;
  return !have_address(ns->owner, sa, len) && add_peer(ns->owner, &ns->cfg, sa, len);
}

static bool start_names(ntsd_clients *c, const conf_source *sources, size_t n)
{
  c->names = calloc(n ? n : 1, sizeof(*c->names));
  if (!c->names)
    return false;
  for (size_t i = 0; i < n; i++) {
    /* Never go direct for a source meant to go through a proxy. */
    if (sources[i].proxy.set) {
      log_msg(LOG_LVL_ERR, "%s: SOCKS5 proxies are not supported by this build; source not used",
              sources[i].host);
      continue;
    }
    named_source *ns = &c->names[c->n_names++];
    ns->owner = c;
    ns->cfg = sources[i];
    uint16_t dflt = ns->cfg.nts ? KE_PORT : NTP_PORT; /* an NTS source names its KE server */
    resolver_cfg rc = {.base = c->cfg.base, .dns = c->cfg.dns, .host = ns->cfg.host,
                       .port = ns->cfg.port ? ns->cfg.port : dflt,
                       .want = ns->cfg.kind == CONF_POOL ? POOL_MAX_SOURCES : 1,
                       .fn = on_address, .arg = ns};
    /* Numeric hosts resolve synchronously inside this call. */
    ns->res = resolver_start(&rc);
  }
  return true;
}

ntsd_clients *clients_create(const clients_cfg *cfg)
{
  ntsd_clients *c = calloc(1, sizeof(*c));
  if (!c)
    return NULL;
  c->cfg = *cfg;
  c->cfg.sources = NULL;
  c->cfg.nts_ca = NULL;
  snprintf(c->nts_ca, sizeof(c->nts_ca), "%s", cfg->nts_ca ? cfg->nts_ca : "");
  c->nts = nts_sources_create(cfg->base, cfg->nocerttimecheck);
  c->alert_timer = event_new(cfg->base, -1, EV_PERSIST, on_alert_timer, c);
  struct timeval tv = {.tv_sec = ALERT_CHECK_S};
  if (!c->nts || !c->alert_timer || event_add(c->alert_timer, &tv) < 0 ||
      !start_names(c, cfg->sources, cfg->n_sources)) {
    clients_destroy(c);
    return NULL;
  }
  return c;
}

void clients_destroy(ntsd_clients *c)
{
  if (!c)
    return;
  for (size_t i = 0; i < c->n_names; i++)
    resolver_free(c->names[i].res);
  free(c->names);
  for (size_t i = 0; i < c->n_peers; i++)
    peer_free(c->peers[i]);
  free(c->peers);
  nts_sources_destroy(c->nts);
  if (c->alert_timer)
    event_free(c->alert_timer);
  free(c);
}

size_t clients_count(const ntsd_clients *c) { return c->n_peers; }

/* Why a source is (not) giving time, for `ntsctl peers`. */
static const char *peer_state(const peer *p, const ntp_source_info *i, const nts_source_view *n)
{
  if (i->denied)
    return "denied";
  if (p->nts && n->ke_running)
    return "ke";
  if (p->nts && n->ke_failed)
    return "ke-failed";
  if (p->nts && !n->has_session)
    return "ke";
  if (i->reach == 0)
    return i->sent >= UNREACH_POLLS || (p->nts && n->fruitless) ? "no-reply" : "starting";
  if (p->nts && n->need_ke)
    return "ke-wait";
  return "ok";
}

bool clients_view(const ntsd_clients *c, size_t i, double now, peer_view *v)
{
  if (i >= c->n_peers)
    return false;
  const peer *p = c->peers[i];
  memset(v, 0, sizeof(*v));
  v->name = p->cfg.host;
  v->sa = (const struct sockaddr *)(p->have_addr ? &p->sa : &p->named);
  netaddr_str_port(v->sa, v->address, sizeof(v->address));
  v->is_pool = p->cfg.kind == CONF_POOL;
  v->nts = p->nts != NULL;
  ntp_source_get_info(p->src, now, &v->info);
  v->info.authenticated = v->nts; /* an NTS source takes only authenticated replies */
  v->src = p->src;
  nts_source_view n = {0};
  if (p->nts) {
    nts_source_get_view(p->nts, now, &n);
    v->cookies = n.cookies;
    v->ke_error = n.ke_error;
    v->nts_naks = n.naks;
    memcpy(v->tamper, n.tamper, sizeof(v->tamper));
    v->ke_retry = n.ke_retry;
  }
  v->state = peer_state(p, &v->info, &n);
  return true;
}

void clients_get_stats(const ntsd_clients *c, ntsd_client_stats *out)
{
  nts_sources_get_stats(c->nts, &out->nts);
  out->tx_timestamps = c->tx_timestamps;
}

void clients_set_poll(ntsd_clients *c, size_t i, int poll)
{
  if (i < c->n_peers && c->peers[i]->src)
    ntp_source_set_poll(c->peers[i]->src, poll);
}

void clients_set_synced(ntsd_clients *c)
{
  if (!nts_sources_set_synced(c->nts))
    return;
  for (size_t i = 0; i < c->n_peers; i++)
    if (c->peers[i]->nts)
      nts_source_synced(c->peers[i]->nts);
}

void clients_clock_stepped(ntsd_clients *c)
{
  for (size_t i = 0; i < c->n_peers; i++)
    ntp_source_clock_stepped(c->peers[i]->src);
}
