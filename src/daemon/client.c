/* client: upstream associations over UDP. */
#include "daemon/client.h"

#include <errno.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/ke_client.h"
#include "daemon/log.h"
#include "daemon/sysclock.h"
#include "daemon/tls.h"
#include "proto/nts_client.h"
#include "proto/nts_ntp.h"

#define POOL_MAX_SOURCES 4     /* associations spawned per pool name */
#define RESOLVE_RETRY_MIN 2.0  /* seconds; doubles up to the max */
#define RESOLVE_RETRY_MAX 300.0
#define KE_PORT 4460
#define KE_TIMEOUT 5.0         /* seconds for connect + handshake + exchange */
#define KE_RETRY_MIN 2.0       /* seconds; doubles per failure ... */
#define KE_RETRY_MAX 3600.0    /* ... up to an hour, with +-25 % jitter */
#define NAKS_BEFORE_KE 2       /* consecutive NTS NAKs that make us redo NTS-KE */

/* AEADs offered in NTS-KE, preferred first. */
static const uint16_t offered_aeads[] = {NTS_AEAD_AES_SIV_CMAC_256, NTS_AEAD_AES_SIV_CMAC_512};

typedef struct peer peer;
typedef struct resolver resolver;

struct peer {
  ntsd_clients *owner;
  const conf_source *cfg;
  struct sockaddr_storage sa;
  socklen_t salen;
  ntp_source *src;
  struct event *timer;
  struct event *rd; /* outstanding request's socket */
  int fd;
  bool have_addr;   /* NTP address known (for NTS: after NTS-KE) */

  /* NTS sources only */
  bool nts;
  struct sockaddr_storage ke_sa;
  socklen_t ke_salen;
  SSL_CTX *tls;
  ke_client *ke;
  struct event *ke_timer;
  unsigned ke_failures;
  nts_client *ntsc;
  uint8_t uid[NTS_NTP_UID_LEN]; /* of the request in flight */
  unsigned naks;                /* consecutive NTS NAKs */
};

/* One name to resolve (a `server` or `pool` line). */
struct resolver {
  ntsd_clients *owner;
  const conf_source *cfg;
  struct evdns_getaddrinfo_request *req;
  struct event *retry;
  double backoff;
  bool done;
};

struct ntsd_clients {
  struct event_base *base;
  struct evdns_base *dns;
  const ntsd_conf *conf;
  double precision;
  clients_update_fn update;
  void *update_arg;
  peer **peers;
  size_t n_peers, cap_peers;
  ntsd_client_stats stats;
  resolver *resolvers;
  size_t n_resolvers;
  uint8_t buf[NTP_MAX_PKT];
};

static void schedule_ke(peer *p, double delay);
static double ke_retry_delay(unsigned failures);

static void arm_timer(peer *p)
{
  double due = ntp_source_next_send(p->src);
  if (!isfinite(due))
    return; /* denied by a kiss: stays idle */
  double wait = due - sysclock_mono();
  if (wait < 0)
    wait = 0;
  struct timeval tv = {.tv_sec = (time_t)wait, .tv_usec = (suseconds_t)((wait - floor(wait)) * 1e6)};
  evtimer_add(p->timer, &tv);
}

static void close_request(peer *p)
{
  if (p->rd) {
    event_free(p->rd);
    p->rd = NULL;
  }
  if (p->fd >= 0) {
    close(p->fd);
    p->fd = -1;
  }
}

static void log_peer(const peer *p, int level, const char *what)
{
  char a[NETADDR_STRLEN];
  const struct sockaddr *sa = (const struct sockaddr *)(p->have_addr ? &p->sa : &p->ke_sa);
  log_msg(level, "%s (%s): %s", p->cfg->host, netaddr_str_port(sa, a, sizeof(a)), what);
}

/* Starts a new NTS-KE (forgetting the old session) unless one is running;
 * after failures it waits for the backoff. */
static void redo_ke(peer *p, const char *why)
{
  log_peer(p, LOG_LVL_NOTICE, why);
  nts_client_reset(p->ntsc);
  p->naks = 0;
  if (!p->ke && !evtimer_pending(p->ke_timer, NULL))
    schedule_ke(p, p->ke_failures ? ke_retry_delay(p->ke_failures) : 0);
}

/* The NTS checks on a response in c->buf (RFC 8915 5.7): true if it is
 * authentic and time may be taken from it.  A NAK for our request ends the
 * exchange (p->rd cleared) without touching the jar the first time. */
static bool nts_response(peer *p, size_t n)
{
  ntsd_clients *c = p->owner;
  unsigned fresh = 0;
  nts_ntp_cli_result r = nts_ntp_client_response(p->ntsc, c->buf, n, p->uid, sizeof(p->uid),
                                                 &fresh);
  if (r == NTS_NTP_CLI_OK) {
    c->stats.nts_recvs_good++;
    p->naks = 0;
    return true;
  }
  if (r == NTS_NTP_CLI_NAK) {
    c->stats.nts_naks++;
    ntp_source_give_up(p->src);
    close_request(p);
    if (++p->naks >= NAKS_BEFORE_KE)
      redo_ke(p, "NTS NAKs: cookies refused, redoing NTS-KE");
    else
      log_peer(p, LOG_LVL_INFO, "NTS NAK (cookie refused)");
    return true;
  }
  c->stats.nts_recvs_bad++;
  char msg[80];
  snprintf(msg, sizeof(msg), "NTS response dropped: %s", nts_ntp_cli_result_name(r));
  log_peer(p, LOG_LVL_DEBUG, msg);
  return false;
}

/* Drains the request socket's error queue, where the kernel puts the
 * transmit timestamp of our request: its real departure time, which
 * replaces the t1 read before the request was built and sent (that one is
 * early by the build, the NTS sealing and the send path: ~6-8 us on
 * loopback, a positive offset bias).  Called right after the send and
 * before any response is looked at. */
static void read_tx_stamp(peer *p)
{
  for (int i = 0; i < 4 && p->fd >= 0; i++) {
    union {
      char buf[CMSG_SPACE(sizeof(struct scm_timestamping)) + 128];
      struct cmsghdr align;
    } cb;
    char data[64];
    struct iovec iov = {.iov_base = data, .iov_len = sizeof(data)};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.buf,
                        .msg_controllen = sizeof(cb.buf)};
    if (recvmsg(p->fd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
      return;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
      struct scm_timestamping ts;
      if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_TIMESTAMPING ||
          cm->cmsg_len < CMSG_LEN(sizeof(ts)))
        continue;
      memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
      if (ts.ts[0].tv_sec == 0 && ts.ts[0].tv_nsec == 0)
        continue;
      struct timespec local = sysclock_local(&ts.ts[0]);
      if (ntp_source_set_t1(p->src, ntp_ts_from_timespec(&local)))
        p->owner->stats.tx_timestamps++;
    }
  }
}

static void on_response(evutil_socket_t fd, short what, void *arg)
{
  peer *p = arg;
  ntsd_clients *c = p->owner;
  (void)what;
  read_tx_stamp(p);
  for (int i = 0; i < 8; i++) {
    union {
      char buf[CMSG_SPACE(sizeof(struct timespec)) + 128];
      struct cmsghdr align;
    } cb;
    struct iovec iov = {.iov_base = c->buf, .iov_len = sizeof(c->buf)};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.buf,
                        .msg_controllen = sizeof(cb.buf)};
    ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
    if (n < 0)
      return; /* EAGAIN, or ICMP port unreachable: the reach register shows it */
    struct timespec rx = sysclock_realtime();
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
      if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS &&
          cm->cmsg_len >= CMSG_LEN(sizeof(rx))) {
        memcpy(&rx, CMSG_DATA(cm), sizeof(rx));
        rx = sysclock_local(&rx);
      }
    if (p->nts && !nts_response(p, (size_t)n))
      continue; /* not an authentic answer to our request: keep waiting */
    if (p->nts && !p->rd)
      return;   /* an NTS NAK ended the exchange */
    ntp_kod kod;
    ntp_drop d = ntp_source_on_response(p->src, c->buf, (size_t)n, ntp_ts_from_timespec(&rx),
                                        sysclock_mono(), &kod);
    if (d == NTP_DROP_NONE) {
      close_request(p);
      if (c->update)
        c->update(c->update_arg);
      return;
    }
    char msg[96];
    if (d == NTP_DROP_KOD) {
      snprintf(msg, sizeof(msg), "kiss-o'-death %s", ntp_kod_name(kod));
      log_peer(p, kod == NTP_KOD_RATE ? LOG_LVL_INFO : LOG_LVL_WARN, msg);
      close_request(p);
      evtimer_del(p->timer);
      arm_timer(p); /* the poll may have changed */
      return;
    }
    snprintf(msg, sizeof(msg), "response dropped: %s", ntp_drop_name(d));
    log_peer(p, LOG_LVL_DEBUG, msg);
  }
}

/* Builds an NTS request in c->buf: a fresh unique identifier, one unused
 * cookie, and placeholders asking for enough cookies to refill the jar. */
static size_t nts_request(peer *p, const uint8_t nonce8[8])
{
  ntsd_clients *c = p->owner;
  unsigned have = nts_client_cookie_count(p->ntsc);
  if (have == 0) {
    redo_ke(p, "no NTS cookies left, redoing NTS-KE");
    return 0;
  }
  uint8_t hdr[NTP_HDR_LEN], auth_nonce[NTS_NTP_NONCE_LEN];
  unsigned placeholders = NTS_CLIENT_JAR - have; /* one cookie leaves, 1 + these come */
  if (placeholders > NTS_NTP_MAX_PLACEHOLDERS)
    placeholders = NTS_NTP_MAX_PLACEHOLDERS;
  sysclock_random(p->uid, sizeof(p->uid));
  sysclock_random(auth_nonce, sizeof(auth_nonce));
  if (ntp_source_make_request(p->src, sysclock_mono(), nonce8, sysclock_now_ntp(), hdr,
                              sizeof(hdr)) != NTP_HDR_LEN)
    return 0;
  size_t n = nts_ntp_client_request(p->ntsc, hdr, p->uid, sizeof(p->uid), auth_nonce,
                                    placeholders, c->buf, sizeof(c->buf));
  if (n)
    c->stats.nts_sends++;
  return n;
}

static void send_request(peer *p)
{
  ntsd_clients *c = p->owner;
  close_request(p);
  if (ntp_source_awaiting(p->src))
    ntp_source_give_up(p->src);
  int fd = socket(p->sa.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    log_peer(p, LOG_LVL_WARN, strerror(errno));
    return;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
  /* Software transmit timestamps on the error queue (read_tx_stamp); the
   * receive stamp still comes from SO_TIMESTAMPNS.  Best effort. */
  int tsf = SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE |
            SOF_TIMESTAMPING_OPT_TSONLY;
  setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &tsf, sizeof(tsf));
  /* connect() binds a fresh random ephemeral port and makes the kernel
   * drop datagrams from anyone but the server. */
  if (connect(fd, (struct sockaddr *)&p->sa, p->salen) < 0) {
    log_peer(p, LOG_LVL_DEBUG, strerror(errno));
    close(fd);
    return;
  }
  uint8_t nonce[8];
  sysclock_random(nonce, sizeof(nonce));
  size_t n;
  if (p->nts) {
    n = nts_request(p, nonce);
  } else {
    n = ntp_source_make_request(p->src, sysclock_mono(), nonce, sysclock_now_ntp(), c->buf,
                                sizeof(c->buf));
  }
  if (n == 0 || send(fd, c->buf, n, 0) < 0) {
    if (n)
      log_peer(p, LOG_LVL_DEBUG, strerror(errno));
    close(fd);
    return;
  }
  p->fd = fd;
  read_tx_stamp(p);
  p->rd = event_new(c->base, fd, EV_READ | EV_PERSIST, on_response, p);
  if (!p->rd || event_add(p->rd, NULL) < 0)
    close_request(p);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
  peer *p = arg;
  (void)fd;
  (void)what;
  send_request(p);
  arm_timer(p);
}

/* ---- NTS-KE for NTS sources ---------------------------------------------- */

static void schedule_ke(peer *p, double delay)
{
  struct timeval tv = {.tv_sec = (time_t)delay,
                       .tv_usec = (suseconds_t)((delay - floor(delay)) * 1e6)};
  evtimer_add(p->ke_timer, &tv);
}

/* Exponential backoff with +-25 % jitter, so an unreachable KE server is
 * not hammered and many clients do not retry in step. */
static double ke_retry_delay(unsigned failures)
{
  double d = KE_RETRY_MIN * ldexp(1.0, failures > 20 ? 20 : (int)failures - 1);
  if (d > KE_RETRY_MAX)
    d = KE_RETRY_MAX;
  uint16_t r;
  sysclock_random(&r, sizeof(r));
  return d * (0.75 + 0.5 * (r / 65535.0));
}

/* Where NTP goes after NTS-KE: the negotiated server and port, falling back
 * to the KE server's address and port 123 (RFC 8915 4.1.7, 4.1.8). */
static bool set_ntp_address(peer *p, const nts_ke_session *s)
{
  uint16_t port = s->port ? s->port : NTP_PORT;
  if (s->server[0]) {
    if (!netaddr_parse(s->server, port, &p->sa, &p->salen)) {
      /* A name: resolving it is left for later; refuse rather than guess. */
      log_peer(p, LOG_LVL_WARN, "NTS-KE server named an NTP server by name; using the KE "
                                "server's address instead");
    } else {
      p->have_addr = true;
      return true;
    }
  }
  memcpy(&p->sa, &p->ke_sa, p->ke_salen);
  p->salen = p->ke_salen;
  if (p->sa.ss_family == AF_INET)
    ((struct sockaddr_in *)&p->sa)->sin_port = htons(port);
  else
    ((struct sockaddr_in6 *)&p->sa)->sin6_port = htons(port);
  p->have_addr = true;
  return true;
}

static void on_ke_done(void *arg, ke_result *r)
{
  peer *p = arg;
  ntsd_clients *c = p->owner;
  char ke[NETADDR_STRLEN];
  netaddr_str_port((const struct sockaddr *)&p->ke_sa, ke, sizeof(ke));
  p->ke = NULL;
  const nts_ke_session *s = &r->session;
  if (!r->ok || !nts_client_set_session(p->ntsc, s->aead, r->c2s, r->s2c, r->key_len,
                                        &s->cookies[0][0], 0, s->cookie_len)) {
    c->stats.ke_probes_bad++;
    p->ke_failures++;
    double delay = ke_retry_delay(p->ke_failures);
    log_warn("NTSc: NTS-KE with %s (%s) failed: %s; retrying in %.0f s", p->cfg->host, ke,
             r->ok ? "bad session" : r->why, delay);
    schedule_ke(p, delay);
    return;
  }
  for (size_t i = 0; i < s->n_cookies; i++)
    nts_client_add_cookie(p->ntsc, s->cookies[i], s->cookie_len);
  c->stats.ke_probes_good++;
  p->ke_failures = 0;
  set_ntp_address(p, s);
  char ntp[NETADDR_STRLEN];
  netaddr_str_port((const struct sockaddr *)&p->sa, ntp, sizeof(ntp));
  log_notice("NTSc: NTS-KE with %s (%s) took %.3f s, %s, %zu cookies, length %zu, aead=%u, "
             "NTP at %s", p->cfg->host, ke, r->took, r->tls_version, s->n_cookies,
             s->cookie_len, s->aead, ntp);
  if (!evtimer_pending(p->timer, NULL))
    arm_timer(p); /* authenticated polling starts (or resumes) */
  nts_wipe(r->c2s, sizeof(r->c2s));
  nts_wipe(r->s2c, sizeof(r->s2c));
}

static void on_ke_timer(evutil_socket_t fd, short what, void *arg)
{
  peer *p = arg;
  (void)fd;
  (void)what;
  if (p->ke)
    return;
  /* `aead NAME` on the server line: offer only that one. */
  uint16_t chosen = p->cfg->aead[0] ? conf_aead_id(p->cfg->aead) : 0;
  const uint16_t *aeads = chosen ? &chosen : offered_aeads;
  size_t n = chosen ? 1 : sizeof(offered_aeads) / sizeof(offered_aeads[0]);
  p->ke = ke_client_start(p->owner->base, p->tls, (struct sockaddr *)&p->ke_sa, p->ke_salen,
                          p->cfg->host, aeads, n, KE_TIMEOUT, on_ke_done, p);
  if (!p->ke) {
    p->owner->stats.ke_probes_bad++;
    schedule_ke(p, ke_retry_delay(++p->ke_failures));
  }
}

static bool nts_peer_init(peer *p, const struct sockaddr *sa, socklen_t len)
{
  const char *ca = p->cfg->ca[0] ? p->cfg->ca : p->owner->conf->nts_ca;
  char err[300];
  p->nts = true;
  memcpy(&p->ke_sa, sa, len);
  p->ke_salen = len;
  p->tls = tls_client_ctx(ca, err, sizeof(err));
  if (!p->tls) {
    log_err("%s: %s; not using this source", p->cfg->host, err);
    return false;
  }
  p->ntsc = nts_client_create();
  p->ke_timer = evtimer_new(p->owner->base, on_ke_timer, p);
  if (!p->ntsc || !p->ke_timer) {
    nts_client_destroy(p->ntsc);
    SSL_CTX_free(p->tls);
    if (p->ke_timer)
      event_free(p->ke_timer);
    return false;
  }
  return true;
}

static void nts_peer_free(peer *p)
{
  if (!p->nts)
    return;
  ke_client_cancel(p->ke);
  if (p->ke_timer)
    event_free(p->ke_timer);
  nts_client_destroy(p->ntsc);
  SSL_CTX_free(p->tls);
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
  peer *p = calloc(1, sizeof(*p));
  if (!p)
    return false;
  p->owner = c;
  p->cfg = cfg;
  p->fd = -1;
  if (cfg->nts) {
    if (!nts_peer_init(p, sa, len)) {
      free(p);
      return false;
    }
  } else {
    memcpy(&p->sa, sa, len);
    p->salen = len;
    p->have_addr = true;
  }
  ntp_source_cfg sc = {.minpoll = cfg->minpoll, .maxpoll = cfg->maxpoll, .iburst = cfg->iburst,
                       .burst = cfg->burst, .prefer = cfg->prefer, .noselect = cfg->noselect,
                       .version = (uint8_t)cfg->version, .precision = c->precision};
  p->src = ntp_source_create(&sc, sysclock_mono());
  p->timer = evtimer_new(c->base, on_timer, p);
  if (!p->src || !p->timer) {
    ntp_source_destroy(p->src);
    if (p->timer)
      event_free(p->timer);
    free(p);
    return false;
  }
  c->peers[c->n_peers++] = p;
  log_peer(p, LOG_LVL_NOTICE, p->nts ? "new NTS association" : "new association");
  if (p->nts)
    schedule_ke(p, 0); /* NTS-KE first */
  else
    arm_timer(p);
  return true;
}

static bool have_address(const ntsd_clients *c, const struct sockaddr *sa, socklen_t len)
{
  for (size_t i = 0; i < c->n_peers; i++) {
    const peer *p = c->peers[i];
    if (p->nts ? (p->ke_salen == len && memcmp(&p->ke_sa, sa, len) == 0)
               : (p->salen == len && memcmp(&p->sa, sa, len) == 0))
      return true;
  }
  return false;
}

static void start_resolve(resolver *r);

static void on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
  resolver *r = arg;
  ntsd_clients *c = r->owner;
  r->req = NULL;
  if (result != 0) {
    if (result == EVUTIL_EAI_CANCEL)
      return;
    log_warn("cannot resolve %s: %s (retrying in %.0f s)", r->cfg->host,
             evutil_gai_strerror(result), r->backoff);
    struct timeval tv = {.tv_sec = (time_t)r->backoff};
    evtimer_add(r->retry, &tv);
    r->backoff = fmin(r->backoff * 2, RESOLVE_RETRY_MAX);
    return;
  }
  int want = r->cfg->kind == CONF_POOL ? POOL_MAX_SOURCES : 1;
  int added = 0;
  for (struct evutil_addrinfo *ai = res; ai && added < want; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
      continue;
    if (have_address(c, ai->ai_addr, (socklen_t)ai->ai_addrlen))
      continue;
    if (add_peer(c, r->cfg, ai->ai_addr, (socklen_t)ai->ai_addrlen))
      added++;
  }
  evutil_freeaddrinfo(res);
  r->done = true;
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  start_resolve(arg);
}

static void start_resolve(resolver *r)
{
  char port[8];
  uint16_t dflt = r->cfg->nts ? KE_PORT : NTP_PORT; /* an NTS source names its KE server */
  snprintf(port, sizeof(port), "%u", r->cfg->port ? r->cfg->port : dflt);
  struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM,
                                  .ai_protocol = IPPROTO_UDP,
                                  .ai_flags = EVUTIL_AI_ADDRCONFIG};
  r->req = evdns_getaddrinfo(r->owner->dns, r->cfg->host, port, &hints, on_resolved, r);
}

ntsd_clients *clients_create(struct event_base *base, struct evdns_base *dns,
                             const ntsd_conf *conf, double precision, clients_update_fn fn,
                             void *arg)
{
  ntsd_clients *c = calloc(1, sizeof(*c));
  if (!c)
    return NULL;
  c->base = base;
  c->dns = dns;
  c->conf = conf;
  c->precision = precision;
  c->update = fn;
  c->update_arg = arg;
  c->resolvers = calloc(conf->n_sources ? conf->n_sources : 1, sizeof(resolver));
  if (!c->resolvers) {
    free(c);
    return NULL;
  }
  for (size_t i = 0; i < conf->n_sources; i++) {
    const conf_source *cs = &conf->sources[i];
    resolver *r = &c->resolvers[c->n_resolvers++];
    r->owner = c;
    r->cfg = cs;
    r->backoff = RESOLVE_RETRY_MIN;
    r->retry = evtimer_new(base, on_retry, r);
    /* Numeric hosts resolve synchronously inside this call. */
    start_resolve(r);
  }
  return c;
}

void clients_destroy(ntsd_clients *c)
{
  if (!c)
    return;
  for (size_t i = 0; i < c->n_resolvers; i++) {
    if (c->resolvers[i].req)
      evdns_getaddrinfo_cancel(c->resolvers[i].req);
    if (c->resolvers[i].retry)
      event_free(c->resolvers[i].retry);
  }
  free(c->resolvers);
  for (size_t i = 0; i < c->n_peers; i++) {
    peer *p = c->peers[i];
    close_request(p);
    nts_peer_free(p);
    event_free(p->timer);
    ntp_source_destroy(p->src);
    free(p);
  }
  free(c->peers);
  free(c);
}

size_t clients_count(const ntsd_clients *c) { return c->n_peers; }

bool clients_view(const ntsd_clients *c, size_t i, double now, peer_view *v)
{
  if (i >= c->n_peers)
    return false;
  const peer *p = c->peers[i];
  memset(v, 0, sizeof(*v));
  v->name = p->cfg->host;
  v->sa = (const struct sockaddr *)&p->sa;
  netaddr_str_port(v->sa, v->address, sizeof(v->address));
  v->is_pool = p->cfg->kind == CONF_POOL;
  v->nts = p->nts;
  v->cookies = p->ntsc ? nts_client_cookie_count(p->ntsc) : 0;
  if (!p->have_addr) {
    v->sa = (const struct sockaddr *)&p->ke_sa;
    netaddr_str_port(v->sa, v->address, sizeof(v->address));
  }
  ntp_source_get_info(p->src, now, &v->info);
  v->info.authenticated = p->nts; /* an NTS source takes only authenticated replies */
  v->src = p->src;
  return true;
}

void clients_get_stats(const ntsd_clients *c, ntsd_client_stats *out) { *out = c->stats; }

void clients_set_poll(ntsd_clients *c, size_t i, int poll)
{
  if (i < c->n_peers && c->peers[i]->src)
    ntp_source_set_poll(c->peers[i]->src, poll);
}

void clients_clock_stepped(ntsd_clients *c)
{
  for (size_t i = 0; i < c->n_peers; i++)
    ntp_source_clock_stepped(c->peers[i]->src);
}
