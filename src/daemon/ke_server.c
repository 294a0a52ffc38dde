/* ke_server: NTS-KE server on its own event loop. */
#include "daemon/ke_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/conf.h"
#include "daemon/log.h"
#include "daemon/netaddr.h"
#include "daemon/sysclock.h"
#include "daemon/tls.h"
#include "proto/aead.h"
#include "proto/ke_admit.h"
#include "proto/ke_summary.h"
#include "proto/nts_cookie.h"
#include "proto/nts_ke.h"
#include "proto/ratelimit.h"

#define KE_RL_SLOTS 4096
#define KE_RL_AVERAGE 1.0 /* one KE per second per client on average ... */
#define KE_RL_BURST 32    /* ... after a burst of 32 */
#define KE_COOKIES 8
#define KE_SUMMARY_INTERVAL 60.0

static const uint16_t our_aeads[] = {NTS_KE_AEAD_AES_SIV_CMAC_256,
                                     NTS_KE_AEAD_AES_SIV_CMAC_512};

typedef struct ke_conn ke_conn;

struct ke_server {
  ke_server_cfg cfg;
  char name[NETADDR_STRLEN];
  struct event_base *base;
  struct evconnlistener *lis[KE_MAX_LISTENERS];
  size_t n_lis;
  ntp_ratelimit *rl;
  ke_admit *adm;
  ke_conn **conns; /* by admission slot */
  size_t next_ntp_server; /* the `nts ntpserver` the next response names */
  ke_summary *sum; /* this log interval's outcomes (the server's loop only) */
  struct event *sum_timer;
  double sum_since;
  pthread_t thread;
  bool running;
  bool draining;   /* ke_server_drain: the loop ends with the last connection */
  _Atomic uint64_t serves_good, serves_bad, refused, tls_failures, no_alpn, bad_requests,
      timeouts, cookies_made, refused_prefix, evicted, hello_timeouts;
  _Atomic uint64_t hs_bucket[KE_HS_BUCKETS], hs_sum_us;
};

struct ke_conn {
  ke_server *srv;
  size_t slot;
  struct bufferevent *bev;
  struct event *deadline;
  char peer[NETADDR_STRLEN];
  double started;
  bool done; /* outcome counted; waiting for the reply to flush */
  nts_ke_framer framer;
};

static void count(_Atomic uint64_t *c) { atomic_fetch_add_explicit(c, 1, memory_order_relaxed); }

/* A completed KE's time from accept to the response, into the histogram. */
static void observe_handshake(ke_server *s, double took)
{
  static const double bounds[KE_HS_BUCKETS - 1] = KE_HS_BOUNDS;
  size_t b = 0;
  while (b < KE_HS_BUCKETS - 1 && took > bounds[b])
    b++;
  count(&s->hs_bucket[b]);
  uint64_t us = took > 0 ? (uint64_t)(took * 1e6 + 0.5) : 0;
  atomic_fetch_add_explicit(&s->hs_sum_us, us, memory_order_relaxed);
}

/* Notes an outcome for the summary (and tells the owner: counters change
 * with every outcome); returns ke_summary_note's log bits. */
static unsigned sum_note(ke_server *s, ke_outcome o, unsigned cookies)
{
  unsigned bits = ke_summary_note(s->sum, o, cookies);
  if (s->cfg.on_outcome)
    s->cfg.on_outcome(s->cfg.on_outcome_arg);
  return bits;
}

/* Notes an outcome; true when it deserves its own line. */
static bool note(ke_server *s, ke_outcome o, unsigned cookies)
{
  return (sum_note(s, o, cookies) & KE_LOG_DETAIL) != 0;
}

/* Whether a connection is open. */
static bool busy(const ke_server *s)
{
  for (size_t i = 0; i < ke_admit_config(s->adm)->slots; i++)
    if (s->conns[i])
      return true;
  return false;
}

static void conn_free(ke_conn *c)
{
  ke_server *s = c->srv;
  ke_admit_release(s->adm, c->slot);
  s->conns[c->slot] = NULL;
  if (c->deadline)
    event_free(c->deadline);
  if (c->bev)
    bufferevent_free(c->bev); /* frees the SSL and closes the socket */
  free(c);
  if (s->draining && !busy(s))
    event_base_loopexit(s->base, NULL);
}

/* A connection that ends without a response.  reason: its counter. */
static void conn_fail(ke_conn *c, ke_outcome o, _Atomic uint64_t *reason, const char *why)
{
  if (!c->done) {
    count(&c->srv->serves_bad);
    if (reason)
      count(reason);
    log_msg(note(c->srv, o, 0) ? LOG_LVL_INFO : LOG_LVL_DEBUG,
            "NTSs: NTS-KE from %s failed: %s", c->peer, why);
  }
  conn_free(c);
}

/* The reply has been written: say so in TLS (close_notify), then close.
 * One try: the alert is a few bytes behind a flushed reply, so it only
 * fails when the client has stopped reading, and then a plain close does. */
static void conn_finish(ke_conn *c)
{
  SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
  if (ssl && SSL_shutdown(ssl) < 0) {
    log_debug("NTSs: NTS-KE to %s: no close_notify sent", c->peer);
    ERR_clear_error();
  }
  conn_free(c);
}

static void on_flushed(struct bufferevent *bev, void *arg)
{
  if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
    conn_finish(arg);
}

static void on_event(struct bufferevent *bev, short what, void *arg);

/* Queues the reply; the connection closes once it has been written. */
static void reply(ke_conn *c, const uint8_t *msg, size_t len)
{
  c->done = true;
  bufferevent_disable(c->bev, EV_READ);
  bufferevent_setcb(c->bev, NULL, on_flushed, on_event, c);
  bufferevent_write(c->bev, msg, len);
}

static void reply_error(ke_conn *c, uint16_t code, const char *why)
{
  uint8_t buf[64];
  size_t n = nts_ke_build_error(code, buf, sizeof(buf));
  count(&c->srv->serves_bad);
  count(&c->srv->bad_requests);
  log_msg(note(c->srv, KE_OUT_BAD_REQUEST, 0) ? LOG_LVL_INFO : LOG_LVL_DEBUG,
          "NTSs: NTS-KE from %s refused: %s (Error %u)", c->peer, why, code);
  reply(c, buf, n);
}

/* Exports the keys, makes the cookies and builds the response. */
static size_t build_success(ke_conn *c, SSL *ssl, uint16_t aead, uint8_t *out, size_t cap)
{
  ke_server *s = c->srv;
  size_t klen = nts_aead_key_len(aead);
  uint8_t c2s[NTS_AEAD_MAX_KEY_LEN], s2c[NTS_AEAD_MAX_KEY_LEN];
  uint8_t cookies[KE_COOKIES][NTS_COOKIE_MAX_LEN];
  nts_ke_response_params p = {.protocol_ok = true, .aead_ok = true, .aead = aead};
  size_t n = 0;
  if (klen && tls_export_key(ssl, aead, 0, c2s, klen) && tls_export_key(ssl, aead, 1, s2c, klen)) {
    const nts_keyset *ks = keystore_current(s->cfg.keys);
    for (int i = 0; i < KE_COOKIES; i++) {
      uint8_t nonce[NTS_COOKIE_NONCE_LEN];
      sysclock_random(nonce, sizeof(nonce));
      p.cookie_len = nts_cookie_make(ks, aead, c2s, s2c, klen, nonce, cookies[i],
                                     sizeof(cookies[i]));
      if (p.cookie_len == 0)
        break;
      p.cookies[p.n_cookies++] = cookies[i];
    }
    if (s->cfg.n_ntp_servers)
      p.server = s->cfg.ntp_servers[s->next_ntp_server++ % s->cfg.n_ntp_servers];
    p.port = s->cfg.ntp_port != 123 ? s->cfg.ntp_port : 0;
    p.tcp_port = s->cfg.ntp_tcp_port;
    if (p.n_cookies == KE_COOKIES)
      n = nts_ke_server_build_response(&p, out, cap);
  }
  nts_wipe(c2s, sizeof(c2s));
  nts_wipe(s2c, sizeof(s2c));
  nts_wipe(cookies, sizeof(cookies));
  return n;
}

static void handle_request(ke_conn *c, const uint8_t *msg, size_t len)
{
  ke_server *s = c->srv;
  SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
  nts_ke_request_result res;
  nts_ke_req_status st = nts_ke_server_parse_request(msg, len, our_aeads,
                                                     sizeof(our_aeads) / sizeof(our_aeads[0]),
                                                     &res);
  if (nts_ke_req_is_error(st)) {
    reply_error(c, res.error_code, nts_ke_req_status_name(st));
    return;
  }
  uint8_t out[NTS_KE_MAX_MSG];
  size_t n;
  if (st != NTS_KE_REQ_OK) {
    /* Nothing in common: say so (empty record), no cookies. */
    nts_ke_response_params p = {.protocol_ok = st != NTS_KE_REQ_NO_PROTOCOL, .aead_ok = false};
    n = nts_ke_server_build_response(&p, out, sizeof(out));
    count(&s->serves_bad);
    log_msg(note(s, KE_OUT_NO_COMMON, 0) ? LOG_LVL_INFO : LOG_LVL_DEBUG,
            "NTSs: NTS-KE from %s: %s", c->peer, nts_ke_req_status_name(st));
    reply(c, out, n);
    return;
  }
  n = build_success(c, ssl, res.aead, out, sizeof(out));
  if (n == 0) {
    reply_error(c, NTS_KE_ERR_INTERNAL, "cannot make keys or cookies");
    return;
  }
  count(&s->serves_good);
  observe_handshake(s, sysclock_mono() - c->started);
  atomic_fetch_add_explicit(&s->cookies_made, KE_COOKIES, memory_order_relaxed);
  note(s, KE_OUT_SERVED, KE_COOKIES);
  log_debug("NTSs: NTS-KE from %s, %s, %s, aead=%u, %d cookies, took %.3f s", c->peer,
            SSL_get_version(ssl), SSL_get_cipher_name(ssl), res.aead, KE_COOKIES,
            sysclock_mono() - c->started);
  reply(c, out, n);
  nts_wipe(out, sizeof(out));
}

static void on_read(struct bufferevent *bev, void *arg)
{
  ke_conn *c = arg;
  struct evbuffer *in = bufferevent_get_input(bev);
  uint8_t chunk[4096];
  while (!c->done && evbuffer_get_length(in) > 0) {
    int n = evbuffer_remove(in, chunk, sizeof(chunk));
    if (n <= 0)
      break;
    nts_ke_frame_status st = nts_ke_framer_feed(&c->framer, chunk, (size_t)n);
    if (st == NTS_KE_FRAME_COMPLETE) {
      size_t len;
      const uint8_t *msg = nts_ke_framer_msg(&c->framer, &len);
      handle_request(c, msg, len);
    } else if (st != NTS_KE_FRAME_NEED_MORE) {
      reply_error(c, NTS_KE_ERR_BAD_REQUEST, nts_ke_frame_status_name(st));
    }
  }
}

static bool arm_deadline(ke_conn *c);

static void on_event(struct bufferevent *bev, short what, void *arg)
{
  ke_conn *c = arg;
  ke_server *s = c->srv;
  if (what & BEV_EVENT_CONNECTED) {
    ke_admit_advance(s->adm, c->slot, KE_PHASE_EXCHANGE);
    arm_deadline(c); /* the exchange's own deadline from now on */
    if (!tls_alpn_ok(bufferevent_openssl_get_ssl(bev)))
      conn_fail(c, KE_OUT_NO_ALPN, &s->no_alpn, "client did not offer ALPN ntske/1");
    return;
  }
  if (c->done) {
    conn_free(c); /* the client closed before reading all: nothing more to do */
    return;
  }
  char e[256] = "connection closed before a complete request";
  if (what & BEV_EVENT_ERROR) {
    unsigned long ossl = bufferevent_get_openssl_error(bev);
    if (ossl) {
      ERR_error_string_n(ossl, e, sizeof(e));
      conn_fail(c, KE_OUT_TLS, &s->tls_failures, e);
      return;
    }
    snprintf(e, sizeof(e), "connection error");
  }
  conn_fail(c, KE_OUT_CLOSED, NULL, e);
}

/* (Re)arms the connection's timer for its phase's deadline. */
static bool arm_deadline(ke_conn *c)
{
  double left = ke_admit_deadline(c->srv->adm, c->slot) - sysclock_mono();
  if (left < 0)
    left = 0;
  struct timeval tv = {.tv_sec = (time_t)left,
                       .tv_usec = (suseconds_t)((left - (double)(time_t)left) * 1e6)};
  return evtimer_add(c->deadline, &tv) == 0;
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
  ke_conn *c = arg;
  ke_server *s = c->srv;
  (void)fd;
  (void)what;
  if (c->done) {
    conn_free(c); /* the client does not read its reply */
    return;
  }
  if (ke_admit_phase_of(s->adm, c->slot) == KE_PHASE_HELLO) {
    char why[64];
    snprintf(why, sizeof(why), "no ClientHello within %.1f s",
             ke_admit_config(s->adm)->hello_timeout);
    conn_fail(c, KE_OUT_HELLO_TIMEOUT, &s->hello_timeouts, why);
    return;
  }
  conn_fail(c, KE_OUT_TIMEOUT, &s->timeouts, "deadline passed");
}

/* OpenSSL's protocol-message hook: the whole ClientHello has arrived, so
 * the connection moves from the short ClientHello deadline to the
 * exchange's. */
static void on_tls_msg(int write_p, int version, int content_type, const void *buf, size_t len,
                       SSL *ssl, void *arg)
{
  ke_conn *c = arg;
  (void)version;
  (void)ssl;
  if (write_p || content_type != SSL3_RT_HANDSHAKE || len < 1 ||
      ((const uint8_t *)buf)[0] != SSL3_MT_CLIENT_HELLO ||
      ke_admit_phase_of(c->srv->adm, c->slot) != KE_PHASE_HELLO)
    return;
  ke_admit_advance(c->srv->adm, c->slot, KE_PHASE_HANDSHAKE);
  arm_deadline(c); /* pending already; on failure the first deadline stays */
}

/* A server-side TLS bufferevent on fd for c, or NULL.  On failure the
 * socket is still open; the SSL is not: libevent (since 2.1.9) frees it
 * itself under BEV_OPT_CLOSE_ON_FREE, so freeing it here too would be a
 * double free. */
static struct bufferevent *tls_bev_new(ke_server *s, evutil_socket_t fd, ke_conn *c)
{
  SSL *ssl = SSL_new(s->cfg.ctx);
  if (!ssl)
    return NULL;
  SSL_set_msg_callback(ssl, on_tls_msg);
  SSL_set_msg_callback_arg(ssl, c);
  return bufferevent_openssl_socket_new(s->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                        BEV_OPT_CLOSE_ON_FREE);
}

/* Takes fd (closed on failure) into admission slot `slot`. */
static bool conn_new(ke_server *s, evutil_socket_t fd, size_t slot, const struct sockaddr *sa)
{
  ke_conn *c = calloc(1, sizeof(*c));
  if (c) {
    c->srv = s;
    c->slot = slot;
    c->bev = tls_bev_new(s, fd, c);
  }
  if (c && c->bev)
    c->deadline = evtimer_new(s->base, on_deadline, c);
  if (!c || !c->bev || !c->deadline || !arm_deadline(c)) {
    if (c && c->deadline)
      event_free(c->deadline);
    if (c && c->bev)
      bufferevent_free(c->bev); /* closes fd */
    else
      close(fd);
    free(c);
    return false;
  }
  s->conns[slot] = c;
  c->started = sysclock_mono();
  netaddr_str_port(sa, c->peer, sizeof(c->peer));
  nts_ke_framer_init(&c->framer);
  bufferevent_setwatermark(c->bev, EV_READ, 0, NTS_KE_MAX_MSG);
  bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
  bufferevent_enable(c->bev, EV_READ);
  return true;
}

/* The first shortage of slots in a log interval, at once: an attack (or a
 * server too small for its clients) shows as it starts. */
static void warn_pressure(ke_server *s, ke_admit_verdict v, enum acl_family fam,
                          const uint8_t *addr)
{
  const ke_admit_cfg *ac = ke_admit_config(s->adm);
  if (v == KE_ADMIT_PREFIX_FULL) {
    uint8_t p[16];
    char str[INET6_ADDRSTRLEN] = "?";
    unsigned bits = ke_admit_prefix(fam, addr, p);
    inet_ntop(fam == ACL_INET ? AF_INET : AF_INET6, p, str, sizeof(str));
    log_warn("NTSs: NTS-KE: %s/%u holds %zu connections, refusing more from it "
             "(counted in the next summary)", str, bits, ac->per_prefix);
  } else if (v == KE_ADMIT_FULL) {
    log_warn("NTSs: NTS-KE: all %zu connection slots hold finished handshakes, refusing "
             "newcomers (counted in the next summary)", ac->slots);
  } else {
    log_warn("NTSs: NTS-KE: all %zu connection slots busy, closing the oldest unfinished "
             "handshakes for newcomers (counted in the next summary)", ac->slots);
  }
}

/* Closes the connection in slot to make room for a newer one. */
static void evict(ke_server *s, size_t slot, enum acl_family fam, const uint8_t *addr)
{
  ke_conn *c = s->conns[slot];
  unsigned bits = sum_note(s, KE_OUT_EVICTED, 0);
  if (bits & KE_LOG_PRESSURE)
    warn_pressure(s, KE_ADMIT_EVICT, fam, addr);
  count(&s->evicted);
  if (!c) { /* cannot happen: every taken slot has its connection */
    ke_admit_release(s->adm, slot);
    return;
  }
  count(&s->serves_bad);
  log_msg(bits & KE_LOG_DETAIL ? LOG_LVL_INFO : LOG_LVL_DEBUG,
          "NTSs: NTS-KE from %s failed: closed for a newer connection (all slots busy)",
          c->peer);
  c->done = true; /* counted */
  conn_free(c);
}

static void refuse(ke_server *s, evutil_socket_t fd, ke_outcome o)
{
  count(&s->refused);
  sum_note(s, o, 0);
  close(fd);
}

/* Cheap checks before any TLS work: restrict, per-client rate, per-prefix
 * cap, a slot (evicting the oldest unfinished handshake if need be). */
static void on_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
  ke_server *s = arg;
  (void)lis;
  (void)salen;
  enum acl_family fam;
  uint8_t addr[16];
  double now = sysclock_mono();
  if (!netaddr_to_acl(sa, &fam, addr)) {
    refuse(s, fd, KE_OUT_REFUSED_ACL);
    return;
  }
  uint32_t flags = s->cfg.acl ? ntp_acl_lookup(s->cfg.acl, fam, addr) : 0;
  if (flags & (ACL_IGNORE | ACL_NOSERVE)) {
    refuse(s, fd, KE_OUT_REFUSED_ACL);
    return;
  }
  if (ntp_rl_check(s->rl, fam, addr, now, false) != NTP_RL_PASS) {
    refuse(s, fd, KE_OUT_REFUSED_RATE);
    return;
  }
  size_t slot;
  ke_admit_verdict v = ke_admit_open(s->adm, fam, addr, now, &slot);
  if (v == KE_ADMIT_EVICT) {
    evict(s, slot, fam, addr);
    v = ke_admit_open(s->adm, fam, addr, now, &slot);
  }
  if (v != KE_ADMIT_OK) {
    ke_outcome o = v == KE_ADMIT_PREFIX_FULL ? KE_OUT_REFUSED_PREFIX : KE_OUT_REFUSED_FULL;
    if (v == KE_ADMIT_PREFIX_FULL)
      count(&s->refused_prefix);
    if (sum_note(s, o, 0) & KE_LOG_PRESSURE)
      warn_pressure(s, v, fam, addr);
    count(&s->refused);
    close(fd);
    return;
  }
  if (!conn_new(s, fd, slot, sa)) {
    ke_admit_release(s->adm, slot);
    count(&s->refused);
    sum_note(s, KE_OUT_REFUSED_ERROR, 0);
  }
}

/* Logs the summary of the interval now ending, if anything happened. */
static void summarise(ke_server *s)
{
  char line[512];
  double now = sysclock_mono();
  if (ke_summary_take(s->sum, now - s->sum_since, line, sizeof(line)))
    log_notice("NTSs: %s", line);
  s->sum_since = now;
}

static void on_summary(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  summarise(arg);
}

/* "PORT", "ADDR:PORT", "[v6]:PORT" or "": the addresses to listen on. */
static size_t listen_addrs(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
  char host[CONF_HOST_MAX] = "";
  uint16_t port = KE_DEFAULT_PORT;
  if (spec && *spec) {
    if (!spec[strspn(spec, "0123456789")]) {
      long v = strtol(spec, NULL, 10);
      if (v < 1 || v > 65535)
        return 0;
      port = (uint16_t)v;
    } else if (!conf_split_host_port(spec, host, sizeof(host), &port)) {
      return 0;
    }
  }
  if (host[0] && strcmp(host, "*") != 0)
    return netaddr_parse(host, port, &ss[0], &len[0]) ? 1 : 0;
  if (!netaddr_parse("0.0.0.0", port, &ss[0], &len[0]) ||
      !netaddr_parse("::", port, &ss[1], &len[1]))
    return 0;
  return 2;
}

static void *thread_main(void *arg)
{
  ke_server *s = arg;
  event_base_dispatch(s->base);
  return NULL;
}

/* One listening socket on ss, or -1 with errno set. */
static int listen_one(const struct sockaddr_storage *ss, socklen_t len)
{
  int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd < 0)
    return -1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)); /* TCP TIME_WAIT */
  if (ss->ss_family == AF_INET6)
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (bind(fd, (const struct sockaddr *)ss, len) < 0 || listen(fd, 128) < 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

size_t ke_server_listen(const char *spec, int fds[KE_MAX_LISTENERS], char *name,
                        size_t namelen, char *err, size_t errlen)
{
  struct sockaddr_storage ss[KE_MAX_LISTENERS];
  socklen_t len[KE_MAX_LISTENERS];
  size_t n = listen_addrs(spec, ss, len), got = 0;
  if (n == 0) {
    snprintf(err, errlen, "nts-listen-on: bad address '%s'", spec ? spec : "");
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    char a[NETADDR_STRLEN];
    netaddr_str_port((struct sockaddr *)&ss[i], a, sizeof(a));
    int fd = listen_one(&ss[i], len[i]);
    if (fd < 0 && n == 2 && i == 1) { /* the IPv6 wildcard on a host without IPv6 */
      log_warn("NTS-KE: cannot listen on %s (continuing with IPv4 only)", a);
      break;
    }
    if (fd < 0) {
      snprintf(err, errlen, "NTS-KE: cannot listen on %s: %s", a, strerror(errno));
      for (size_t k = 0; k < got; k++)
        close(fds[k]);
      return 0;
    }
    fds[got++] = fd;
    if (i == 0)
      snprintf(name, namelen, "%s", a);
    log_notice("serving NTS-KE on %s", a);
  }
  return got;
}

/* Serves on the listening sockets fds (taken: closed with the server). */
static bool adopt_listeners(ke_server *s, const int *fds, size_t n, char *err, size_t errlen)
{
  for (size_t i = 0; i < n && i < KE_MAX_LISTENERS; i++) {
    /* backlog 0: listening already (the NTS-KE process may not call listen) */
    s->lis[s->n_lis] = evconnlistener_new(s->base, on_accept, s, LEV_OPT_CLOSE_ON_FREE, 0,
                                          fds[i]);
    if (!s->lis[s->n_lis]) {
      for (size_t k = i; k < n; k++)
        close(fds[k]);
      snprintf(err, errlen, "NTS-KE: cannot listen: out of memory");
      return false;
    }
    s->n_lis++;
  }
  return true;
}

static bool open_listeners(ke_server *s, char *err, size_t errlen)
{
  int fds[KE_MAX_LISTENERS];
  size_t n = s->cfg.n_fds;
  if (n > KE_MAX_LISTENERS)
    n = KE_MAX_LISTENERS;
  if (n)
    memcpy(fds, s->cfg.fds, n * sizeof(int));
  else if (!(n = ke_server_listen(s->cfg.listen, fds, s->name, sizeof(s->name), err, errlen)))
    return false;
  return adopt_listeners(s, fds, n, err, errlen);
}

/* Admission, summary and their timer; false when out of memory. */
static bool make_state(ke_server *s)
{
  ke_admit_cfg ac = {.slots = (size_t)s->cfg.max_connections,
                     .per_prefix = (size_t)s->cfg.max_per_prefix,
                     .hello_timeout = s->cfg.hello_timeout,
                     .timeout = s->cfg.timeout};
  s->adm = ke_admit_create(&ac);
  s->sum = ke_summary_create();
  s->conns = s->adm ? calloc(ke_admit_config(s->adm)->slots, sizeof(*s->conns)) : NULL;
  s->sum_timer = s->base ? event_new(s->base, -1, EV_PERSIST, on_summary, s) : NULL;
  double iv = s->cfg.summary_interval;
  struct timeval tv = {.tv_sec = (time_t)iv,
                       .tv_usec = (suseconds_t)((iv - (double)(time_t)iv) * 1e6)};
  s->sum_since = sysclock_mono();
  return s->sum && s->conns && s->sum_timer && event_add(s->sum_timer, &tv) == 0;
}

ke_server *ke_server_start(const ke_server_cfg *cfg, char *err, size_t errlen)
{
  ke_server *s = calloc(1, sizeof(*s));
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  s->cfg = *cfg;
  if (s->cfg.timeout <= 0)
    s->cfg.timeout = KE_ADMIT_TIMEOUT;
  if (s->cfg.max_connections <= 0)
    s->cfg.max_connections = KE_ADMIT_SLOTS;
  if (s->cfg.max_per_prefix <= 0)
    s->cfg.max_per_prefix = KE_ADMIT_PER_PREFIX;
  if (s->cfg.hello_timeout <= 0)
    s->cfg.hello_timeout = KE_ADMIT_HELLO_TIMEOUT;
  if (s->cfg.summary_interval <= 0)
    s->cfg.summary_interval = KE_SUMMARY_INTERVAL;
  uint8_t key[16];
  sysclock_random(key, sizeof(key));
  s->rl = ntp_rl_create(KE_RL_SLOTS, KE_RL_AVERAGE, 0.0, KE_RL_BURST, key);
  s->base = event_base_new();
  if (!s->rl || !s->base || !make_state(s)) {
    snprintf(err, errlen, "out of memory");
    ke_server_stop(s);
    return NULL;
  }
  if (!open_listeners(s, err, errlen)) {
    ke_server_stop(s);
    return NULL;
  }
  return s;
}

bool ke_server_run(ke_server *s)
{
  if (s->running)
    return true;
  if (pthread_create(&s->thread, NULL, thread_main, s) != 0)
    return false;
  s->running = true;
  return true;
}

bool ke_server_serve(ke_server *s)
{
  return event_base_dispatch(s->base) == 0;
}

struct event_base *ke_server_base(ke_server *s) { return s->base; }

void ke_server_drain(ke_server *s)
{
  if (s->draining)
    return;
  s->draining = true;
  for (size_t i = 0; i < s->n_lis; i++)
    evconnlistener_disable(s->lis[i]);
  if (!busy(s))
    event_base_loopexit(s->base, NULL);
}

void ke_server_stop(ke_server *s)
{
  if (!s)
    return;
  if (s->running) {
    event_base_loopexit(s->base, NULL);
    pthread_join(s->thread, NULL);
  }
  for (size_t i = 0; i < s->n_lis; i++)
    evconnlistener_free(s->lis[i]);
  if (s->conns) { /* open connections are dropped */
    for (size_t i = 0; i < ke_admit_config(s->adm)->slots; i++)
      if (s->conns[i])
        conn_free(s->conns[i]);
  }
  if (s->sum)
    summarise(s);
  if (s->sum_timer)
    event_free(s->sum_timer);
  if (s->base)
    event_base_free(s->base);
  free(s->conns);
  ke_summary_destroy(s->sum);
  ke_admit_destroy(s->adm);
  ntp_rl_destroy(s->rl);
  free(s);
}

void ke_server_get_stats(const ke_server *s, ke_server_stats *o)
{
  ke_server *m = (ke_server *)s;
  o->serves_good = atomic_load(&m->serves_good);
  o->serves_bad = atomic_load(&m->serves_bad);
  o->refused = atomic_load(&m->refused);
  o->tls_failures = atomic_load(&m->tls_failures);
  o->no_alpn = atomic_load(&m->no_alpn);
  o->bad_requests = atomic_load(&m->bad_requests);
  o->timeouts = atomic_load(&m->timeouts);
  o->cookies_made = atomic_load(&m->cookies_made);
  o->refused_prefix = atomic_load(&m->refused_prefix);
  o->evicted = atomic_load(&m->evicted);
  o->hello_timeouts = atomic_load(&m->hello_timeouts);
  for (size_t i = 0; i < KE_HS_BUCKETS; i++)
    o->hs_bucket[i] = atomic_load(&m->hs_bucket[i]);
  o->hs_sum_us = atomic_load(&m->hs_sum_us);
}

const char *ke_server_address(const ke_server *s) { return s->name; }
