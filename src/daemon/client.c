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
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/ke_client.h"
#include "daemon/log.h"
#include "daemon/sysclock.h"
#include "daemon/tls.h"
#include "proto/alert.h"
#include "proto/nts_client.h"
#include "proto/nts_ntp.h"

#define POOL_MAX_SOURCES 4     /* associations spawned per pool name */
#define RESOLVE_RETRY_MIN 2.0  /* seconds; doubles up to the max */
#define RESOLVE_RETRY_MAX 300.0
#define KE_PORT 4460
#define KE_TIMEOUT 5.0         /* seconds for connect + handshake + exchange */
#define KE_RETRY_MIN 2.0       /* seconds; doubles per failure ... */
#define KE_RETRY_MAX 3600.0    /* ... up to an hour, with +-25 % jitter */
#define NAKS_BEFORE_KE 2       /* consecutive exchanges ended by a NAK that make us redo NTS-KE */
#define UNREACH_POLLS 8        /* unanswered polls in a row: unreachable (the reach register) */
#define ALERT_INTERVAL 60.0    /* seconds between tamper-evidence summaries per source */
#define ALERT_CHECK_S 5        /* how often the summaries fall due are looked for */

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

  bool unreach_logged; /* "unreachable" said; "reachable again" is due */

  /* NTS sources only */
  bool nts;
  struct sockaddr_storage ke_sa;
  socklen_t ke_salen;
  const char *ca;         /* CA file or directory, "" for the system store */
  ke_client *ke;
  struct event *ke_timer;
  double ke_at;           /* when ke_timer fires (monotonic) */
  unsigned ke_failures;   /* consecutive failed NTS-KEs */
  unsigned ke_fruitless;  /* consecutive NTS-KE sessions without an authentic response */
  bool need_ke;           /* polling waits for a new NTS-KE */
  bool authentic_since_ke;
  bool ke_unchecked;      /* the running NTS-KE skips certificate dates */
  bool unchecked;         /* the session came from such an NTS-KE */
  char ke_error[200];     /* why the last NTS-KE failed, "" after a success */
  nts_client *ntsc;
  uint8_t uid[NTS_NTP_UID_LEN]; /* of the request in flight */
  bool nak_seen;                /* the exchange in flight got a NAK with our identifier */
  unsigned naks;                /* consecutive exchanges that ended with only a NAK */
  uint64_t tamper[NTS_TAMPER_COUNT];
  alert alert;                  /* rate limit for the tamper log lines */
};

/* One client SSL_CTX per CA file (and per certificate-date policy), shared
 * by every source that uses it: the CA store is loaded once. */
typedef struct tls_ctx_entry {
  char ca[CONF_PATH_MAX];
  bool no_time_check;
  SSL_CTX *ctx;
} tls_ctx_entry;

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
  const clockctl *clk;
  const ntsd_conf *conf;
  double precision;
  clients_update_fn update;
  void *update_arg;
  peer **peers;
  size_t n_peers, cap_peers;
  ntsd_client_stats stats;
  resolver *resolvers;
  size_t n_resolvers;
  tls_ctx_entry *tls;
  size_t n_tls;
  struct event *alert_timer;
  bool synced;             /* the system has been synchronised since start */
  int unchecked_left;      /* NTS-KEs that may still skip certificate dates */
  uint8_t buf[NTP_MAX_PKT];
};

static void schedule_ke(peer *p, double delay);
static double ke_retry_delay(unsigned failures);

static void arm_in(struct event *ev, double wait)
{
  if (wait < 0)
    wait = 0;
  struct timeval tv = {.tv_sec = (time_t)wait, .tv_usec = (suseconds_t)((wait - floor(wait)) * 1e6)};
  evtimer_add(ev, &tv);
}

static void arm_timer(peer *p)
{
  double due = ntp_source_next_send(p->src);
  if (!isfinite(due))
    return; /* denied by a kiss: stays idle */
  arm_in(p->timer, due - sysclock_mono());
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

/* Seconds until the next NTS-KE may start: at once the first time, then
 * backing off over failed KEs and over KEs whose cookies brought no
 * authentic response (the KE server answers but NTP does not), so neither
 * an outage nor a filtered path makes a KE storm. */
static double ke_delay(const peer *p)
{
  unsigned n = p->ke_failures + p->ke_fruitless;
  return n ? ke_retry_delay(n) : 0;
}

/* Polling stops until a new NTS-KE succeeds; the session and its cookies
 * stay until then (a KE that fails replaces nothing). */
static void need_ke(peer *p, const char *why)
{
  if (p->need_ke)
    return;
  p->need_ke = true;
  if (nts_client_has_session(p->ntsc) && !p->authentic_since_ke)
    p->ke_fruitless++;
  close_request(p);
  if (ntp_source_awaiting(p->src))
    ntp_source_give_up(p->src);
  double delay = ke_delay(p);
  char msg[200];
  snprintf(msg, sizeof(msg), "%s; NTS-KE again%s", why, delay > 0 ? " after a backoff" : "");
  log_peer(p, LOG_LVL_NOTICE, msg);
  if (!p->ke && !evtimer_pending(p->ke_timer, NULL))
    schedule_ke(p, delay);
}

/* Counts (and reports, rate-limited) a refused response or KE. */
static void tamper(peer *p, nts_client_tamper why)
{
  p->tamper[why]++;
  if (!alert_event(&p->alert, why, sysclock_mono()))
    return;
  char msg[200];
  snprintf(msg, sizeof(msg), "NTS: refused: %s (tamper evidence; more are summarised every "
                             "%.0f s)", nts_client_tamper_name(why), ALERT_INTERVAL);
  log_peer(p, LOG_LVL_WARN, msg);
}

static void alert_summaries(ntsd_clients *c)
{
  double now = sysclock_mono();
  for (size_t i = 0; i < c->n_peers; i++) {
    peer *p = c->peers[i];
    uint64_t n[ALERT_MAX_REASONS];
    if (!p->nts || alert_summary(&p->alert, now, n) == 0)
      continue;
    char msg[320];
    int len = snprintf(msg, sizeof(msg), "NTS: in the last %.0f s also refused:", ALERT_INTERVAL);
    for (int r = 0; r < NTS_TAMPER_COUNT && len > 0 && (size_t)len < sizeof(msg); r++)
      if (n[r])
        len += snprintf(msg + len, sizeof(msg) - (size_t)len, " %s %llu",
                        nts_client_tamper_name((nts_client_tamper)r), (unsigned long long)n[r]);
    log_peer(p, LOG_LVL_WARN, msg);
  }
}

static void on_alert_timer(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  alert_summaries(arg);
}

/* The exchange in flight ends (a new poll, or a new session): a NAK that
 * no authentic response contradicted counts now (RFC 8915 5.7).  It is
 * unauthenticated, so it only marks the exchange while it lasts, and only
 * NAKS_BEFORE_KE of them in a row make us redo NTS-KE. */
static void end_exchange(peer *p)
{
  if (!p->nak_seen)
    return;
  p->nak_seen = false;
  p->owner->stats.nts_naks++;
  if (++p->naks >= NAKS_BEFORE_KE)
    need_ke(p, "NTS NAKs: the server refuses our cookies");
  else
    log_peer(p, LOG_LVL_INFO, "NTS NAK (cookie refused)");
}

/* The NTS checks on a response in c->buf (RFC 8915 5.7): true if it is
 * authentic and time may be taken from it.  Anything else leaves the
 * exchange open: a forged packet must not end it before the real answer. */
static bool nts_response(peer *p, size_t n)
{
  ntsd_clients *c = p->owner;
  unsigned fresh = 0;
  nts_ntp_cli_result r = nts_ntp_client_response(p->ntsc, c->buf, n, p->uid, sizeof(p->uid),
                                                 &fresh);
  if (r == NTS_NTP_CLI_OK) {
    c->stats.nts_recvs_good++;
    if (p->nak_seen) { /* an authentic answer to the same request: the NAK was forged */
      c->stats.nts_recvs_bad++;
      tamper(p, NTS_TAMPER_FORGED_NAK);
    }
    p->nak_seen = false;
    p->naks = 0;
    p->ke_fruitless = 0;
    p->authentic_since_ke = true;
    return true;
  }
  if (r == NTS_NTP_CLI_NAK) {
    p->nak_seen = true;
    log_peer(p, LOG_LVL_DEBUG, "NTS NAK for the request in flight; still waiting");
    return false;
  }
  c->stats.nts_recvs_bad++;
  tamper(p, nts_ntp_client_tamper(p->ntsc, r, c->buf, n));
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
      struct timespec local = clockctl_local(p->owner->clk, &ts.ts[0]);
      if (ntp_source_set_t1(p->src, ntp_ts_from_timespec(&local)))
        p->owner->stats.tx_timestamps++;
    }
  }
}

static void note_reach(peer *p, double now);

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
    struct timespec rx = clockctl_now(c->clk);
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
      if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS &&
          cm->cmsg_len >= CMSG_LEN(sizeof(rx))) {
        memcpy(&rx, CMSG_DATA(cm), sizeof(rx));
        rx = clockctl_local(c->clk, &rx);
      }
    if (p->nts && !nts_response(p, (size_t)n))
      continue; /* not an authentic answer to our request: keep waiting */
    ntp_kod kod;
    ntp_drop d = ntp_source_on_response(p->src, c->buf, (size_t)n, ntp_ts_from_timespec(&rx),
                                        sysclock_mono(), &kod);
    if (d == NTP_DROP_NONE) {
      close_request(p);
      note_reach(p, sysclock_mono());
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
 * cookie, and placeholders asking for enough cookies to refill the jar.
 * 0 when there is nothing to send with (need_ke() was called). */
static size_t nts_request(peer *p, const uint8_t nonce8[8])
{
  ntsd_clients *c = p->owner;
  unsigned have = nts_client_cookie_count(p->ntsc);
  if (have == 0) {
    need_ke(p, "no NTS cookies left");
    return 0;
  }
  uint8_t hdr[NTP_HDR_LEN], auth_nonce[NTS_NTP_NONCE_LEN];
  unsigned placeholders = NTS_CLIENT_JAR - have; /* one cookie leaves, 1 + these come */
  if (placeholders > NTS_NTP_MAX_PLACEHOLDERS)
    placeholders = NTS_NTP_MAX_PLACEHOLDERS;
  sysclock_random(p->uid, sizeof(p->uid));
  sysclock_random(auth_nonce, sizeof(auth_nonce));
  if (ntp_source_make_request(p->src, sysclock_mono(), nonce8, clockctl_now_ntp(c->clk), hdr,
                              sizeof(hdr)) != NTP_HDR_LEN)
    return 0;
  size_t n = nts_ntp_client_request(p->ntsc, hdr, p->uid, sizeof(p->uid), auth_nonce,
                                    placeholders, c->buf, sizeof(c->buf));
  if (n)
    c->stats.nts_sends++;
  return n;
}

/* A UDP socket connected to the server, with kernel timestamps on; -1 on
 * failure (logged at debug: the reach register shows it). */
static int open_request_socket(peer *p)
{
  int fd = socket(p->sa.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    log_peer(p, LOG_LVL_DEBUG, strerror(errno));
    return -1;
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
    return -1;
  }
  return fd;
}

/* True while an NTS source has a session to poll with. */
static bool nts_polling(const peer *p)
{
  return !p->need_ke && nts_client_has_session(p->ntsc);
}

static void send_request(peer *p)
{
  ntsd_clients *c = p->owner;
  if (p->nts)
    end_exchange(p);
  close_request(p);
  if (ntp_source_awaiting(p->src))
    ntp_source_give_up(p->src);
  if (p->nts && !nts_polling(p))
    return;
  int fd = open_request_socket(p);
  if (fd < 0)
    return;
  uint8_t nonce[8];
  sysclock_random(nonce, sizeof(nonce));
  size_t n;
  if (p->nts) {
    n = nts_request(p, nonce);
  } else {
    n = ntp_source_make_request(p->src, sysclock_mono(), nonce, clockctl_now_ntp(c->clk), c->buf,
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

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
  peer *p = arg;
  (void)fd;
  (void)what;
  double now = sysclock_mono();
  send_request(p);
  note_reach(p, now);
  if (p->nts && !nts_polling(p))
    return; /* the NTS-KE restarts polling when it succeeds */
  if (ntp_source_next_send(p->src) <= now) {
    /* Nothing was sent (a local error): try again a poll later, never in a loop. */
    ntp_source_info i;
    ntp_source_get_info(p->src, now, &i);
    arm_in(p->timer, ldexp(1.0, i.poll));
    return;
  }
  arm_timer(p);
}

/* ---- NTS-KE for NTS sources ---------------------------------------------- */

static void schedule_ke(peer *p, double delay)
{
  p->ke_at = sysclock_mono() + delay;
  arm_in(p->ke_timer, delay);
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

/* A failed NTS-KE replaces nothing: the old session and its cookies stay,
 * and the next attempt waits for the backoff.  One log line per attempt. */
static void ke_failed(peer *p, const ke_result *r, const char *ke)
{
  ntsd_clients *c = p->owner;
  c->stats.ke_probes_bad++;
  p->ke_failures++;
  if (r->verify_result != X509_V_OK)
    p->tamper[NTS_TAMPER_KE_CERT]++;
  else if (p->ke_unchecked)
    c->unchecked_left++; /* the certificate was never judged: the attempt is not spent */
  bool dates = r->verify_result == X509_V_ERR_CERT_NOT_YET_VALID ||
               r->verify_result == X509_V_ERR_CERT_HAS_EXPIRED;
  snprintf(p->ke_error, sizeof(p->ke_error), "%s", r->ok ? "bad session" : r->why);
  double delay = ke_retry_delay(p->ke_failures + p->ke_fruitless);
  log_warn("NTSc: NTS-KE with %s (%s) failed: %s%s; retrying in %.0f s", p->cfg->host, ke,
           p->ke_error, dates ? " (is this machine's clock wrong? see nocerttimecheck)" : "",
           delay);
  schedule_ke(p, delay);
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
    ke_failed(p, r, ke);
    return;
  }
  for (size_t i = 0; i < s->n_cookies; i++)
    nts_client_add_cookie(p->ntsc, s->cookies[i], s->cookie_len);
  c->stats.ke_probes_good++;
  p->ke_failures = 0;
  p->ke_error[0] = '\0';
  p->need_ke = p->nak_seen = p->authentic_since_ke = false;
  p->naks = 0;
  p->unchecked = p->ke_unchecked;
  set_ntp_address(p, s);
  char ntp[NETADDR_STRLEN];
  netaddr_str_port((const struct sockaddr *)&p->sa, ntp, sizeof(ntp));
  log_notice("NTSc: NTS-KE with %s (%s) took %.3f s, %s, %zu cookies, length %zu, aead=%u, "
             "NTP at %s%s", p->cfg->host, ke, r->took, r->tls_version, s->n_cookies,
             s->cookie_len, s->aead, ntp, p->unchecked ? ", certificate dates NOT checked" : "");
  nts_wipe(r->c2s, sizeof(r->c2s));
  nts_wipe(r->s2c, sizeof(r->s2c));
  if (p->unchecked && c->synced) {
    p->authentic_since_ke = true; /* redone for its dates, not for want of answers */
    need_ke(p, "clock synchronised meanwhile: NTS-KE with the certificate's dates checked");
    return;
  }
  if (!evtimer_pending(p->timer, NULL))
    arm_timer(p); /* authenticated polling starts (or resumes) */
}

/* The shared client context for a CA and date policy, made on first use. */
static SSL_CTX *tls_ctx_for(ntsd_clients *c, const char *ca, bool no_time_check, char *err,
                            size_t errlen)
{
  for (size_t i = 0; i < c->n_tls; i++)
    if (c->tls[i].no_time_check == no_time_check && strcmp(c->tls[i].ca, ca) == 0)
      return c->tls[i].ctx;
  tls_ctx_entry *nt = realloc(c->tls, (c->n_tls + 1) * sizeof(*nt));
  if (!nt) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  c->tls = nt;
  SSL_CTX *ctx = tls_client_ctx(ca, no_time_check, err, errlen);
  if (!ctx)
    return NULL;
  tls_ctx_entry *e = &c->tls[c->n_tls++];
  snprintf(e->ca, sizeof(e->ca), "%s", ca);
  e->no_time_check = no_time_check;
  e->ctx = ctx;
  return ctx;
}

/* `nocerttimecheck N`: while the clock has never been synchronised, the
 * first N NTS-KEs accept certificates whatever their dates say. */
static bool skip_cert_dates(peer *p)
{
  ntsd_clients *c = p->owner;
  if (c->synced || c->unchecked_left <= 0)
    return false;
  c->unchecked_left--;
  log_peer(p, LOG_LVL_WARN, "NTS-KE without checking the certificate's dates "
                            "(nocerttimecheck: the clock has never been synchronised)");
  return true;
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
  char err[300];
  p->ke_unchecked = skip_cert_dates(p);
  SSL_CTX *ctx = tls_ctx_for(p->owner, p->ca, p->ke_unchecked, err, sizeof(err));
  if (ctx)
    p->ke = ke_client_start(p->owner->base, ctx, (struct sockaddr *)&p->ke_sa, p->ke_salen,
                            p->cfg->host, aeads, n, KE_TIMEOUT, on_ke_done, p);
  else
    log_peer(p, LOG_LVL_ERR, err);
  if (!p->ke) {
    p->owner->stats.ke_probes_bad++;
    schedule_ke(p, ke_retry_delay(++p->ke_failures + p->ke_fruitless));
  }
}

static bool nts_peer_init(peer *p, const struct sockaddr *sa, socklen_t len)
{
  char err[300];
  p->nts = true;
  p->need_ke = true; /* nothing to poll with before the first NTS-KE */
  memcpy(&p->ke_sa, sa, len);
  p->ke_salen = len;
  p->ca = p->cfg->ca[0] ? p->cfg->ca : p->owner->conf->nts_ca;
  alert_init(&p->alert, ALERT_INTERVAL);
  /* The CA store is loaded now, so a bad CA is reported at start. */
  if (!tls_ctx_for(p->owner, p->ca, false, err, sizeof(err))) {
    log_err("%s: %s; not using this source", p->cfg->host, err);
    return false;
  }
  p->ntsc = nts_client_create();
  p->ke_timer = evtimer_new(p->owner->base, on_ke_timer, p);
  if (!p->ntsc || !p->ke_timer) {
    nts_client_destroy(p->ntsc);
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
                             const clockctl *clk, const ntsd_conf *conf, double precision,
                             clients_update_fn fn, void *arg)
{
  ntsd_clients *c = calloc(1, sizeof(*c));
  if (!c)
    return NULL;
  c->base = base;
  c->dns = dns;
  c->clk = clk;
  c->conf = conf;
  c->precision = precision;
  c->update = fn;
  c->update_arg = arg;
  c->unchecked_left = conf->nocerttimecheck;
  c->resolvers = calloc(conf->n_sources ? conf->n_sources : 1, sizeof(resolver));
  c->alert_timer = event_new(base, -1, EV_PERSIST, on_alert_timer, c);
  struct timeval tv = {.tv_sec = ALERT_CHECK_S};
  if (!c->resolvers || !c->alert_timer || event_add(c->alert_timer, &tv) < 0) {
    if (c->alert_timer)
      event_free(c->alert_timer);
    free(c->resolvers);
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
  for (size_t i = 0; i < c->n_tls; i++)
    SSL_CTX_free(c->tls[i].ctx);
  free(c->tls);
  event_free(c->alert_timer);
  free(c);
}

size_t clients_count(const ntsd_clients *c) { return c->n_peers; }

/* Why a source is (not) giving time, for `ntsctl peers`. */
static const char *peer_state(const peer *p, const ntp_source_info *i)
{
  if (i->denied)
    return "denied";
  if (p->nts && p->ke)
    return "ke";
  if (p->nts && p->ke_failures)
    return "ke-failed";
  if (p->nts && !nts_client_has_session(p->ntsc))
    return "ke";
  if (i->reach == 0)
    return i->sent >= UNREACH_POLLS || (p->nts && p->ke_fruitless) ? "no-reply" : "starting";
  if (p->nts && p->need_ke)
    return "ke-wait";
  return "ok";
}

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
  v->state = peer_state(p, &v->info);
  if (p->nts) {
    v->ke_error = p->ke_error;
    v->nts_naks = p->naks;
    memcpy(v->tamper, p->tamper, sizeof(v->tamper));
    v->ke_retry = evtimer_pending(p->ke_timer, NULL) ? fmax(0, p->ke_at - now) : -1;
  }
  return true;
}

void clients_get_stats(const ntsd_clients *c, ntsd_client_stats *out) { *out = c->stats; }

void clients_set_poll(ntsd_clients *c, size_t i, int poll)
{
  if (i < c->n_peers && c->peers[i]->src)
    ntp_source_set_poll(c->peers[i]->src, poll);
}

void clients_set_synced(ntsd_clients *c)
{
  if (c->synced)
    return;
  c->synced = true;
  for (size_t i = 0; i < c->n_peers; i++) {
    peer *p = c->peers[i];
    if (p->nts && p->unchecked && !p->need_ke) {
      p->unchecked = false;
      need_ke(p, "clock synchronised: NTS-KE again with the certificate's dates checked");
    }
  }
}

void clients_clock_stepped(ntsd_clients *c)
{
  for (size_t i = 0; i < c->n_peers; i++)
    ntp_source_clock_stepped(c->peers[i]->src);
}
