/* client: the upstream associations and the glue between their parts. */
#define LOG_CLASS LOG_CLASS_PEER /* log.h: the class `logconfig` knows them by */
#include "daemon/client.h"

#include <event2/event.h>
#include <math.h>
#include <netinet/in.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/nts_source.h"
#include "daemon/resolver.h"
#include "daemon/socks_conn.h"
#include "daemon/sysclock.h"
#include "daemon/timer.h"
#include "daemon/transport.h"
#include "proto/alert.h"
#include "proto/ntp_path.h"

#define POOL_MAX_SOURCES 4 /* associations spawned per pool name */
#define KE_PORT 4460
#define UNREACH_POLLS 8    /* unanswered polls in a row: unreachable (the reach register) */
#define ALERT_CHECK_S 5    /* how often the tamper summaries falling due are looked for */
#define PATH_TIMEOUT 10.0  /* seconds for a TCP connect or a proxy handshake */
#define REPLY_TIMEOUT 10.0 /* seconds a stream or a proxy's association waits for the reply */
#define UDP_REFUSED_S 3600.0 /* a refused UDP ASSOCIATE is asked again after this */
#define PROXY_ALERT_S 60.0 /* seconds between summaries of proxy errors */

typedef struct peer peer;
typedef struct named_source named_source;
static bool resolve_fallback(peer *p);

struct peer {
  ntsd_clients *owner;
  const named_source *from;      /* its `server` or `pool` line */
  conf_source cfg;               /* its configuration line */
  struct sockaddr_storage named; /* what the name resolved to: the server, or its NTS-KE */
  socklen_t namedlen;
  struct sockaddr_storage sa;    /* where NTP goes (direct; proxied: the directfallback) */
  socklen_t salen;
  bool have_addr;                /* sa known (for NTS: after NTS-KE) */
  ntp_source *src;
  struct event *timer;
  struct event *reply_timer;     /* ends a connection (TCP, proxy) the reply does not use */
  transport *tr;                 /* the request in flight, while open */
  bool unreach_logged;           /* "unreachable" said; "reachable again" is due */
  nts_source *nts;               /* NULL for plain NTP */
  /* The path (docs/anonymity.md): with a proxy, names go to it unresolved. */
  bool proxied;
  transport_proxy proxy;         /* proxied: its address and the credentials in use */
  char ntp_host[CONF_HOST_MAX];  /* proxied: the NTP server as the proxy gets it */
  uint16_t ntp_port;             /* NTP's UDP port */
  uint16_t tcp_port;             /* NTP over TCP as the KE server advertised it, 0: not */
  ntp_path path;                 /* the way of the last poll */
  bool udp_refused;              /* the proxy refused UDP ASSOCIATE ... */
  double udp_refused_at;         /* ... then (monotonic) */
  resolver *fb_res;              /* directfallback: the NTP server's name, resolved */
  char path_error[200];          /* why the path failed last; "" after an answer */
  uint64_t proxy_errors;         /* proxy failures and malformed relay datagrams */
  char proxy_error[200];         /* the last one */
  alert proxy_alert;             /* rate limit for their log lines */
  ntp_ts t1;                     /* the last request's departure (statistics) */
  unsigned unanswered;           /* requests sent since the last accepted reply */
};

/* One `server` or `pool` line and its name's resolution. */
struct named_source {
  ntsd_clients *owner;
  conf_source cfg;               /* a proxy's password wiped */
  uint8_t pass_hash[32];         /* ... and its hash, to see it change */
  resolver *res;
};

struct ntsd_clients {
  clients_cfg cfg; /* sources and nts_ca not kept: copied where needed */
  char nts_ca[CONF_PATH_MAX];
  peer **peers;
  size_t n_peers, cap_peers;
  uint64_t tx_timestamps;
  nts_sources *nts;
  named_source **names;         /* each resolver holds its entry: not moved */
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

/* Where the source's traffic goes, "ADDR:PORT"; proxied, the name (or
 * literal) and port the proxy gets, "" before NTS-KE names the NTP server. */
static const char *peer_where(const peer *p, char *buf, size_t size)
{
  if (!p->proxied) {
    const struct sockaddr *sa = (const struct sockaddr *)(p->have_addr ? &p->sa : &p->named);
    return netaddr_str_port(sa, buf, size);
  }
  const char *h = p->ntp_host;
  snprintf(buf, size, strchr(h, ':') ? "[%s]:%u" : "%s:%u", h, p->ntp_port);
  if (!h[0])
    buf[0] = '\0';
  return buf;
}

static void log_peer(const peer *p, int level, const char *what)
{
  char a[NETADDR_STRLEN + CONF_HOST_MAX];
  peer_where(p, a, sizeof(a));
  log_msg(level, "%s (%s%s): %s", p->cfg.host, p->proxied ? "via proxy " : "",
          a[0] ? a : p->cfg.host, what);
}

static void on_alert_timer(evutil_socket_t fd, short what, void *arg)
{
  ntsd_clients *c = arg;
  (void)fd;
  (void)what;
  double now = sysclock_mono();
  for (size_t i = 0; i < c->n_peers; i++) {
    peer *p = c->peers[i];
    if (p->nts)
      nts_source_summarise(p->nts, now);
    uint64_t n[ALERT_MAX_REASONS];
    uint64_t more = alert_summary(&p->proxy_alert, now, n);
    if (more) {
      char msg[320];
      snprintf(msg, sizeof(msg), "proxy: %llu more errors in the last %.0f s; the last: %s",
               (unsigned long long)more, PROXY_ALERT_S, p->proxy_error);
      log_peer(p, LOG_LVL_WARN, msg);
    }
  }
}

/* The exchange in flight is abandoned. */
static void end_request(peer *p)
{
  if (p->reply_timer)
    evtimer_del(p->reply_timer);
  transport_close(p->tr);
  if (ntp_source_awaiting(p->src))
    ntp_source_give_up(p->src);
}

/* ---- the exchange: transport callbacks ----------------------------------- */

static void on_sent(void *arg, ntp_ts t1)
{
  peer *p = arg;
  if (ntp_source_set_t1(p->src, t1)) {
    p->owner->tx_timestamps++;
    p->t1 = t1;
  }
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

/* The statistics files' view of an accepted reply. */
static void report_reply(peer *p, const uint8_t *pkt, size_t n, ntp_ts rx)
{
  ntsd_clients *c = p->owner;
  struct sockaddr_storage local;
  socklen_t len;
  size_t i = 0;
  while (i < c->n_peers && c->peers[i] != p)
    i++;
  clients_reply r = {.pkt = pkt, .len = n, .t1 = p->t1, .t4 = rx,
                     .src = p->have_addr && !p->proxied ? (const struct sockaddr *)&p->sa
                                                        : NULL,
                     .dst = transport_local_addr(p->tr, &local, &len) ? (struct sockaddr *)&local
                                                                      : NULL,
                     .lost = p->unanswered > 0 ? p->unanswered - 1 : 0};
  if (p->proxied) /* the proxy's relay, not our way to the server; the name stands */
    r.dst = NULL;
  c->cfg.on_reply(c->cfg.update_arg, i, &r);
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
    if (c->cfg.on_reply)
      report_reply(p, pkt, n, rx);
    p->unanswered = 0;
    transport_close(p->tr);
    p->path_error[0] = '\0';
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

/* ---- the path ------------------------------------------------------------- */

static ntp_path_out choose_path(const peer *p, double now)
{
  static const ntp_path_want want[] = {[CONF_TRANSPORT_AUTO] = NTP_PATH_WANT_AUTO,
                                       [CONF_TRANSPORT_UDP] = NTP_PATH_WANT_UDP,
                                       [CONF_TRANSPORT_TCP] = NTP_PATH_WANT_TCP};
  ntp_path_in in = {.want = want[p->cfg.transport], .proxy = p->proxied,
                    .tcp_offered = p->tcp_port != 0,
                    .udp_refused = p->udp_refused && now - p->udp_refused_at < UDP_REFUSED_S,
                    .directfallback = p->cfg.directfallback};
  return ntp_path_choose(&in);
}

static const transport_ops *path_ops(ntp_path path)
{
  switch (path) {
  case NTP_PATH_TCP:
    return &transport_tcp;
  case NTP_PATH_SOCKS_UDP:
    return &transport_socks_udp;
  case NTP_PATH_SOCKS_TCP:
    return &transport_socks_tcp;
  default:
    return &transport_udp;
  }
}

/* TCP goes to the advertised port, else to NTP's own (the server serves
 * both on one address and port when it serves TCP at all). */
static uint16_t path_port(const peer *p, ntp_path path)
{
  bool tcp = path == NTP_PATH_TCP || path == NTP_PATH_SOCKS_TCP;
  return tcp && p->tcp_port ? p->tcp_port : p->ntp_port;
}

/* The destination of this poll's exchange, in the caller's storage. */
static bool path_dest(const peer *p, ntp_path path, transport_dest *d,
                      struct sockaddr_storage *ss, socks5_addr *name)
{
  *d = (transport_dest){.timeout = PATH_TIMEOUT};
  uint16_t port = path_port(p, path);
  if (path == NTP_PATH_SOCKS_UDP || path == NTP_PATH_SOCKS_TCP) {
    d->proxy = &p->proxy;
    d->name = name;
    return socks_conn_dst(name, p->ntp_host, port) == SOCKS5_OK;
  }
  if (!p->have_addr)
    return false;
  memcpy(ss, &p->sa, p->salen);
  if (ss->ss_family == AF_INET)
    ((struct sockaddr_in *)ss)->sin_port = htons(port);
  else
    ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
  d->sa = (const struct sockaddr *)ss;
  d->len = p->salen;
  return true;
}

/* A proxy error: counted, and logged at once, then summarised. */
static void proxy_error(peer *p, const char *why)
{
  p->proxy_errors++;
  snprintf(p->proxy_error, sizeof(p->proxy_error), "%s", why);
  if (!alert_event(&p->proxy_alert, 0, sysclock_mono()))
    return;
  char msg[300];
  snprintf(msg, sizeof(msg), "proxy error: %s (more are summarised every %.0f s)", why,
           PROXY_ALERT_S);
  log_peer(p, LOG_LVL_WARN, msg);
}

/* ---- polling -------------------------------------------------------------- */

/* Builds the request in c->buf, reading t1 as late as the build allows;
 * 0 when there is nothing to send with. */
static size_t build_request(peer *p, const uint8_t nonce8[8])
{
  ntsd_clients *c = p->owner;
  p->t1 = clockctl_now_ntp(c->cfg.clk);
  if (!p->nts)
    return ntp_source_make_request(p->src, sysclock_mono(), nonce8, p->t1, c->buf,
                                   sizeof(c->buf));
  uint8_t hdr[NTP_HDR_LEN];
  if (!nts_source_begin(p->nts) ||
      ntp_source_make_request(p->src, sysclock_mono(), nonce8, p->t1, hdr, sizeof(hdr)) !=
          NTP_HDR_LEN)
    return 0;
  return nts_source_seal(p->nts, hdr, sizeof(hdr), c->buf, sizeof(c->buf));
}

/* The next poll: when due, or a poll interval from now when nothing was
 * sent (a local or path error), never in a loop. */
static void arm_next(peer *p, double now)
{
  if (p->nts && !nts_source_polling(p->nts))
    return; /* the NTS-KE restarts polling when it succeeds */
  if (ntp_source_next_send(p->src) <= now) {
    ntp_source_info i;
    ntp_source_get_info(p->src, now, &i);
    timer_arm_in(p->timer, ldexp(1.0, i.poll));
    return;
  }
  arm_timer(p);
}

/* A reply later than this is of no use; a connection (to the server or to
 * a proxy, and through Tor a stream on a circuit) is not held open for it
 * until the next poll, which may be hours away.  UDP holds nothing. */
static void on_reply_timeout(evutil_socket_t fd, short what, void *arg)
{
  peer *p = arg;
  (void)fd;
  (void)what;
  if (!transport_is_open(p->tr))
    return;
  transport_close(p->tr);
  log_peer(p, LOG_LVL_DEBUG, "no reply in time: connection closed");
}

/* The path is up: the request is built (t1 read) and sent now. */
static void send_now(peer *p)
{
  uint8_t nonce[8];
  char err[128];
  sysclock_random(nonce, sizeof(nonce));
  size_t n = build_request(p, nonce);
  if (n == 0)
    transport_close(p->tr);
  else if (!transport_send(p->tr, p->owner->buf, n, err, sizeof(err)))
    log_peer(p, LOG_LVL_DEBUG, err);
  else {
    p->unanswered++;
    if (p->path != NTP_PATH_UDP)
      timer_arm_in(p->reply_timer, REPLY_TIMEOUT);
  }
}

/* Opens this poll's path; false if nothing can be sent now. */
static bool open_path(peer *p, double now)
{
  ntp_path_out o = choose_path(p, now);
  p->path = o.path;
  if (o.path == NTP_PATH_NONE) {
    snprintf(p->path_error, sizeof(p->path_error), "%s", o.why);
    return false;
  }
  if (o.fallback && p->proxied && !p->have_addr && !resolve_fallback(p)) {
    p->path = NTP_PATH_NONE;
    snprintf(p->path_error, sizeof(p->path_error), "directfallback: an onion service has no "
                                                   "direct path (%s)", o.why);
    return false;
  }
  transport_dest d;
  struct sockaddr_storage ss;
  socks5_addr name;
  char err[160];
  if (!path_dest(p, o.path, &d, &ss, &name)) {
    snprintf(p->path_error, sizeof(p->path_error), "%s",
             o.fallback ? "directfallback: the server's address is not known yet"
                        : "no destination");
    return false;
  }
  if (o.fallback) {
    char msg[300];
    snprintf(msg, sizeof(msg), "directfallback: this request goes DIRECT, not through the "
                               "proxy (%s)", o.why);
    log_peer(p, LOG_LVL_WARN, msg);
  }
  if (!transport_open(p->tr, path_ops(o.path), &d, err, sizeof(err))) {
    snprintf(p->path_error, sizeof(p->path_error), "%s", err);
    log_peer(p, LOG_LVL_DEBUG, err); /* the reach register shows it */
    return false;
  }
  return true;
}

static void send_request(peer *p, double now)
{
  if (p->nts)
    nts_source_end_exchange(p->nts);
  end_request(p);
  if (p->nts && !nts_source_polling(p->nts))
    return;
  if (open_path(p, now) && transport_ready(p->tr))
    send_now(p);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
  peer *p = arg;
  (void)fd;
  (void)what;
  double now = sysclock_mono();
  send_request(p, now);
  note_reach(p, now);
  if (transport_is_open(p->tr) && !transport_ready(p->tr))
    return; /* armed when the path comes up (or fails) */
  arm_next(p, now);
}

/* ---- the exchange: path callbacks ------------------------------------------ */

static void on_ready(void *arg)
{
  peer *p = arg;
  double now = sysclock_mono();
  send_now(p);
  arm_next(p, now);
}

static void on_path_error(void *arg, const transport_error *e)
{
  peer *p = arg;
  snprintf(p->path_error, sizeof(p->path_error), "%s", e->why);
  if (e->proxy)
    proxy_error(p, e->why);
  else
    log_peer(p, LOG_LVL_DEBUG, e->why);
  if (e->status == SOCKS5_ERR_COMMAND_NOT_SUPPORTED && p->path == NTP_PATH_SOCKS_UDP) {
    /* Tor's answer: asked again only after UDP_REFUSED_S. */
    p->udp_refused = true;
    p->udp_refused_at = sysclock_mono();
    log_peer(p, LOG_LVL_NOTICE, "the proxy refuses UDP ASSOCIATE");
  }
  if (e->closed && !evtimer_pending(p->timer, NULL) &&
      (!p->nts || nts_source_polling(p->nts)))
    arm_next(p, sysclock_mono()); /* the path failed before the request went */
}

/* ---- NTS hooks ------------------------------------------------------------ */

static void nts_log(void *arg, int level, const char *msg) { log_peer(arg, level, msg); }
static void nts_stop(void *arg) { end_request(arg); }

static void nts_set_ntp(void *arg, const nts_source_ntp *n)
{
  peer *p = arg;
  if (n->sa) {
    memcpy(&p->sa, n->sa, n->len);
    p->salen = n->len;
    p->have_addr = true;
  } else if (strcmp(p->ntp_host, n->host) != 0) {
    snprintf(p->ntp_host, sizeof(p->ntp_host), "%s", n->host);
    p->have_addr = false; /* a directfallback address was for another name */
    resolver_free(p->fb_res);
    p->fb_res = NULL;
  }
  if (n->proxy)
    p->proxy = *n->proxy; /* the NTP stream uses the session's credentials */
  p->ntp_port = n->port;
  p->tcp_port = n->tcp_port;
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
                                         .set_ntp = nts_set_ntp, .resume = nts_resume};
  ntsd_clients *c = p->owner;
  nts_source_hooks h = hooks;
  h.arg = p;
  nts_source_cfg nc = {.host = p->cfg.host, .ca = p->cfg.ca[0] ? p->cfg.ca : c->nts_ca,
                       .aead = p->cfg.aead[0] ? conf_aead_id(p->cfg.aead) : 0,
                       .ke_port = p->cfg.port ? p->cfg.port : KE_PORT,
                       .proxy = p->proxied ? &p->proxy : NULL,
                       .isolate = p->proxied && !p->cfg.proxy.auth};
  /* Pins with the line's own `ca` add to it; pins without it replace the CA. */
  nc.pins.n = p->cfg.pins.n < KE_PINS_MAX ? p->cfg.pins.n : KE_PINS_MAX;
  memcpy(nc.pins.sha256, p->cfg.pins.sha256, nc.pins.n * sizeof(nc.pins.sha256[0]));
  nc.pins.chain = p->cfg.ca[0] != '\0';
  char err[300];
  p->nts = nts_source_create(c->nts, &nc, p->proxied ? NULL : (struct sockaddr *)&p->named,
                             p->namedlen, &h, err, sizeof(err));
  if (!p->nts)
    log_err("%s: %s; not using this source", p->cfg.host, err);
  return p->nts != NULL;
}

/* ---- associations --------------------------------------------------------- */

/* `directfallback` with a name: resolved locally only once the source has
 * to go direct (an opted-in leak), never before. */
static bool on_fallback_addr(void *arg, const struct sockaddr *sa, socklen_t len)
{
  peer *p = arg;
  memcpy(&p->sa, sa, len);
  p->salen = len;
  p->have_addr = true;
  return true;
}

/* False when there is no direct way to look for: an onion name exists only
 * inside Tor, and asking the local resolver for it would tell the network
 * which onion service the source uses (and never get an answer). */
static bool resolve_fallback(peer *p)
{
  const char *host = p->ntp_host[0] ? p->ntp_host : p->cfg.host;
  if (conf_is_onion(host))
    return false;
  if (p->have_addr || p->fb_res)
    return true;
  resolver_cfg rc = {.base = p->owner->cfg.base, .dns = p->owner->cfg.dns, .host = host,
                     .port = p->ntp_port, .want = 1, .fn = on_fallback_addr, .arg = p};
  p->fb_res = resolver_start(&rc);
  return true;
}

/* The proxy's address and the credentials: the user's, or random ones for
 * stream isolation (an NTS source draws new ones for each NTS-KE). */
static bool proxy_init(peer *p)
{
  const conf_proxy *cp = &p->cfg.proxy;
  transport_proxy *tp = &p->proxy;
  if (!socks_conn_proxy_addr(cp->host, cp->port, &tp->sa, &tp->len))
    return false;
  char user[SOCKS_ISOLATION_LEN + 1], pass[SOCKS_ISOLATION_LEN + 1];
  if (!cp->auth) {
    socks_conn_isolation_creds(user, pass);
    cp = NULL;
  }
  tp->user_len = strlen(cp ? cp->user : user);
  tp->pass_len = strlen(cp ? cp->pass : pass);
  memcpy(tp->user, cp ? cp->user : user, tp->user_len);
  memcpy(tp->pass, cp ? cp->pass : pass, tp->pass_len);
  nts_wipe(p->cfg.proxy.pass, sizeof(p->cfg.proxy.pass)); /* one copy is enough */
  nts_wipe(pass, sizeof(pass));
  p->proxied = true;
  snprintf(p->ntp_host, sizeof(p->ntp_host), "%s", p->cfg.nts ? "" : p->cfg.host);
  return true;
}

static void peer_free(peer *p)
{
  if (!p)
    return;
  nts_source_destroy(p->nts);
  transport_destroy(p->tr);
  resolver_free(p->fb_res);
  if (p->timer)
    event_free(p->timer);
  if (p->reply_timer)
    event_free(p->reply_timer);
  ntp_source_destroy(p->src);
  nts_wipe(&p->proxy, sizeof(p->proxy));
  free(p);
}

/* sa: the resolved name (direct); NULL with a proxy. */
static bool peer_addr_init(peer *p, const struct sockaddr *sa, socklen_t len)
{
  p->ntp_port = p->cfg.port && !p->cfg.nts ? p->cfg.port : NTP_PORT;
  if (p->cfg.proxy.set) {
    if (!proxy_init(p)) {
      log_err("%s: bad proxy address %s; not using this source", p->cfg.host,
              p->cfg.proxy.host);
      return false;
    }
  } else {
    memcpy(&p->named, sa, len);
    p->namedlen = len;
  }
  if (!p->cfg.nts && sa) {
    memcpy(&p->sa, sa, len);
    p->salen = len;
    p->have_addr = true;
  }
  return !p->cfg.nts || nts_peer_init(p);
}

static peer *peer_new(ntsd_clients *c, const conf_source *cfg, const struct sockaddr *sa,
                      socklen_t len)
{
  peer *p = calloc(1, sizeof(*p));
  if (!p)
    return NULL;
  p->owner = c;
  p->cfg = *cfg;
  alert_init(&p->proxy_alert, PROXY_ALERT_S);
  if (!peer_addr_init(p, sa, len)) {
    peer_free(p);
    return NULL;
  }
  ntp_source_cfg sc = {.minpoll = cfg->minpoll, .maxpoll = cfg->maxpoll, .iburst = cfg->iburst,
                       .burst = cfg->burst, .prefer = cfg->prefer, .noselect = cfg->noselect,
                       .version = (uint8_t)cfg->version, .precision = c->cfg.precision};
  transport_cfg tc = {.base = c->cfg.base, .clk = c->cfg.clk,
                      .cbs = {.on_ready = on_ready, .on_sent = on_sent,
                              .on_response = on_response, .on_error = on_path_error,
                              .arg = p}};
  p->path = choose_path(p, sysclock_mono()).path;
  p->src = ntp_source_create(&sc, sysclock_mono());
  p->timer = evtimer_new(c->cfg.base, on_timer, p);
  p->reply_timer = evtimer_new(c->cfg.base, on_reply_timeout, p);
  p->tr = transport_create(&tc);
  if (!p->src || !p->timer || !p->reply_timer || !p->tr) {
    peer_free(p);
    return NULL;
  }
  return p;
}

static bool add_peer(ntsd_clients *c, const named_source *ns, const conf_source *cfg,
                     const struct sockaddr *sa, socklen_t len)
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
  p->from = ns;
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
  return !have_address(ns->owner, sa, len) && add_peer(ns->owner, ns, &ns->cfg, sa, len);
}

static void pass_hash(const conf_proxy *p, uint8_t out[32])
{
  SHA256((const unsigned char *)p->pass, strlen(p->pass), out);
}

/* One `server` or `pool` line: its name resolved (or handed to the proxy),
 * its associations made.  False when out of memory. */
static bool start_name(ntsd_clients *c, const conf_source *src)
{
  named_source *ns = calloc(1, sizeof(*ns));
  if (!ns)
    return false;
  c->names[c->n_names++] = ns;
  ns->owner = c;
  ns->cfg = *src;
  pass_hash(&src->proxy, ns->pass_hash);
  if (ns->cfg.proxy.set) {
    /* The name goes to the proxy: never resolved here. */
    add_peer(c, ns, &ns->cfg, NULL, 0);
    nts_wipe(ns->cfg.proxy.pass, sizeof(ns->cfg.proxy.pass));
    return true;
  }
  uint16_t dflt = ns->cfg.nts ? KE_PORT : NTP_PORT; /* an NTS source names its KE server */
  resolver_cfg rc = {.base = c->cfg.base, .dns = c->cfg.dns, .host = ns->cfg.host,
                     .port = ns->cfg.port ? ns->cfg.port : dflt,
                     .want = ns->cfg.kind == CONF_POOL ? POOL_MAX_SOURCES : 1,
                     .fn = on_address, .arg = ns};
  /* Numeric hosts resolve synchronously inside this call. */
  ns->res = resolver_start(&rc);
  return true;
}

static bool grow_names(ntsd_clients *c, size_t more)
{
  named_source **nn = realloc(c->names, (c->n_names + more + 1) * sizeof(*nn));
  if (nn)
    c->names = nn;
  return nn != NULL;
}

static bool start_names(ntsd_clients *c, const conf_source *sources, size_t n)
{
  if (!grow_names(c, n))
    return false;
  for (size_t i = 0; i < n; i++)
    if (!start_name(c, &sources[i]))
      return false;
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
  for (size_t i = 0; i < c->n_names; i++) {
    resolver_free(c->names[i]->res);
    free(c->names[i]);
  }
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
  if (p->path == NTP_PATH_NONE || (p->path_error[0] && i->reach == 0))
    return "no-path";
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
  v->sa = p->proxied ? NULL : (const struct sockaddr *)(p->have_addr ? &p->sa : &p->named);
  peer_where(p, v->address, sizeof(v->address));
  v->proxy = p->proxied ? p->cfg.proxy.url : NULL;
  v->transport = p->path != NTP_PATH_NONE ? ntp_path_name(p->path) : NULL;
  v->path_error = p->path_error;
  v->proxy_errors = p->proxy_errors;
  v->proxy_error = p->proxy_error;
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
    v->naks_total = n.naks_total;
    v->ke_good = n.ke_good;
    v->ke_bad = n.ke_bad;
    v->last_ke_age = n.last_ke_age;
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

/* The same line as far as an association is concerned (its line number
 * aside); a proxy's password by its hash. */
static bool same_source(const named_source *ns, const conf_source *b)
{
  const conf_source *a = &ns->cfg;
  uint8_t h[32];
  pass_hash(&b->proxy, h);
  return a->kind == b->kind && !strcmp(a->host, b->host) && a->port == b->port &&
         a->nts == b->nts && !strcmp(a->ca, b->ca) && !strcmp(a->aead, b->aead) &&
         a->pins.n == b->pins.n &&
         !memcmp(a->pins.sha256, b->pins.sha256, a->pins.n * sizeof(a->pins.sha256[0])) &&
         a->noval == b->noval && a->iburst == b->iburst && a->burst == b->burst &&
         a->prefer == b->prefer && a->noselect == b->noselect && a->trusted == b->trusted &&
         a->minpoll == b->minpoll && a->maxpoll == b->maxpoll && a->version == b->version &&
         a->proxy.set == b->proxy.set && !strcmp(a->proxy.host, b->proxy.host) &&
         a->proxy.port == b->proxy.port && a->proxy.auth == b->proxy.auth &&
         !strcmp(a->proxy.user, b->proxy.user) && !memcmp(ns->pass_hash, h, sizeof(h)) &&
         a->noproxy == b->noproxy && a->transport == b->transport &&
         a->directfallback == b->directfallback;
}

/* Ends the associations of one line and the line itself. */
static void stop_name(ntsd_clients *c, size_t k)
{
  named_source *ns = c->names[k];
  size_t keep = 0;
  for (size_t i = 0; i < c->n_peers; i++) {
    peer *p = c->peers[i];
    if (p->from != ns) {
      c->peers[keep++] = p;
      continue;
    }
    log_peer(p, LOG_LVL_NOTICE, "association removed (configuration reloaded)");
    peer_free(p);
  }
  c->n_peers = keep;
  resolver_free(ns->res);
  free(ns);
  memmove(&c->names[k], &c->names[k + 1], (c->n_names - k - 1) * sizeof(c->names[0]));
  c->n_names--;
}

bool clients_reconfigure(ntsd_clients *c, const conf_source *sources, size_t n,
                         clients_change *out)
{
  memset(out, 0, sizeof(*out));
  bool *used = calloc(n ? n : 1, sizeof(*used));
  if (!used || !grow_names(c, n)) {
    free(used);
    return false;
  }
  for (size_t k = 0; k < c->n_names;) {
    size_t j = 0;
    while (j < n && (used[j] || !same_source(c->names[k], &sources[j])))
      j++;
    if (j < n) { /* unchanged: kept with its state */
      used[j] = true;
      c->names[k]->cfg.line = sources[j].line;
      out->kept++;
      k++;
    } else {
      stop_name(c, k);
      out->removed++;
    }
  }
  bool ok = true;
  for (size_t j = 0; j < n && ok; j++)
    if (!used[j]) {
      ok = start_name(c, &sources[j]);
      out->added += ok;
    }
  free(used);
  return ok;
}
