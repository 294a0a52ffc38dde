/* ke_server: NTS-KE server thread. */
#include "daemon/ke_server.h"

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
#include "proto/nts_cookie.h"
#include "proto/nts_ke.h"
#include "proto/ratelimit.h"

#define KE_MAX_LISTENERS 2
#define KE_RL_SLOTS 4096
#define KE_RL_AVERAGE 1.0 /* one KE per second per client on average ... */
#define KE_RL_BURST 32    /* ... after a burst of 32 */
#define KE_COOKIES 8

static const uint16_t our_aeads[] = {NTS_KE_AEAD_AES_SIV_CMAC_256,
                                     NTS_KE_AEAD_AES_SIV_CMAC_512};

struct ke_server {
  ke_server_cfg cfg;
  char name[NETADDR_STRLEN];
  struct event_base *base;
  struct evconnlistener *lis[KE_MAX_LISTENERS];
  size_t n_lis;
  ntp_ratelimit *rl;
  pthread_t thread;
  bool running;
  int n_conn;
  _Atomic uint64_t serves_good, serves_bad, refused, tls_failures, no_alpn, bad_requests,
      timeouts, cookies_made;
};

typedef struct ke_conn {
  ke_server *srv;
  struct bufferevent *bev;
  struct event *deadline;
  char peer[NETADDR_STRLEN];
  double started;
  bool done; /* outcome counted; waiting for the reply to flush */
  nts_ke_framer framer;
} ke_conn;

static void count(_Atomic uint64_t *c) { atomic_fetch_add_explicit(c, 1, memory_order_relaxed); }

static void conn_free(ke_conn *c)
{
  c->srv->n_conn--;
  if (c->deadline)
    event_free(c->deadline);
  if (c->bev)
    bufferevent_free(c->bev); /* frees the SSL and closes the socket */
  free(c);
}

static void conn_fail(ke_conn *c, _Atomic uint64_t *reason, const char *why)
{
  if (!c->done) {
    count(&c->srv->serves_bad);
    if (reason)
      count(reason);
    log_info("NTSs: NTS-KE from %s failed: %s", c->peer, why);
  }
  conn_free(c);
}

static void on_flushed(struct bufferevent *bev, void *arg)
{
  if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
    conn_free(arg);
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
  log_info("NTSs: NTS-KE from %s refused: %s (Error %u)", c->peer, why, code);
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
    p.server = s->cfg.ntp_server;
    p.port = s->cfg.ntp_port != 123 ? s->cfg.ntp_port : 0;
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
    log_info("NTSs: NTS-KE from %s: %s", c->peer, nts_ke_req_status_name(st));
    reply(c, out, n);
    return;
  }
  n = build_success(c, ssl, res.aead, out, sizeof(out));
  if (n == 0) {
    reply_error(c, NTS_KE_ERR_INTERNAL, "cannot make keys or cookies");
    return;
  }
  count(&s->serves_good);
  atomic_fetch_add_explicit(&s->cookies_made, KE_COOKIES, memory_order_relaxed);
  log_notice("NTSs: NTS-KE from %s, %s, %s, aead=%u, %d cookies, took %.3f s", c->peer,
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

static void on_event(struct bufferevent *bev, short what, void *arg)
{
  ke_conn *c = arg;
  if (what & BEV_EVENT_CONNECTED) {
    if (!tls_alpn_ok(bufferevent_openssl_get_ssl(bev)))
      conn_fail(c, &c->srv->no_alpn, "client did not offer ALPN ntske/1");
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
      conn_fail(c, &c->srv->tls_failures, e);
      return;
    }
    snprintf(e, sizeof(e), "connection error");
  }
  conn_fail(c, NULL, e);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
  ke_conn *c = arg;
  (void)fd;
  (void)what;
  if (c->done) {
    conn_free(c); /* the client does not read its reply */
    return;
  }
  conn_fail(c, &c->srv->timeouts, "deadline passed");
}

/* Cheap checks before any TLS work: restrict, per-client rate, cap. */
static bool admit(ke_server *s, const struct sockaddr *sa)
{
  enum acl_family fam;
  uint8_t addr[16];
  if (!netaddr_to_acl(sa, &fam, addr))
    return false;
  uint32_t flags = s->cfg.acl ? ntp_acl_lookup(s->cfg.acl, fam, addr) : 0;
  if (flags & (ACL_IGNORE | ACL_NOSERVE))
    return false;
  if (ntp_rl_check(s->rl, fam, addr, sysclock_mono(), false) != NTP_RL_PASS)
    return false;
  return s->n_conn < s->cfg.max_connections;
}

/* A server-side TLS bufferevent on fd, or NULL.  On failure the socket is
 * still open; the SSL is not: libevent (since 2.1.9) frees it itself under
 * BEV_OPT_CLOSE_ON_FREE, so freeing it here too would be a double free. */
static struct bufferevent *tls_bev_new(ke_server *s, evutil_socket_t fd)
{
  SSL *ssl = SSL_new(s->cfg.ctx);
  if (!ssl)
    return NULL;
  return bufferevent_openssl_socket_new(s->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                        BEV_OPT_CLOSE_ON_FREE);
}

static void on_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
  ke_server *s = arg;
  (void)lis;
  (void)salen;
  if (!admit(s, sa)) {
    count(&s->refused);
    close(fd);
    return;
  }
  ke_conn *c = calloc(1, sizeof(*c));
  if (c)
    c->bev = tls_bev_new(s, fd);
  if (c && c->bev)
    c->deadline = evtimer_new(s->base, on_deadline, c);
  struct timeval tv = {.tv_sec = (time_t)s->cfg.timeout,
                       .tv_usec = (suseconds_t)((s->cfg.timeout - (time_t)s->cfg.timeout) * 1e6)};
  if (!c || !c->bev || !c->deadline || evtimer_add(c->deadline, &tv) < 0) {
    if (c && c->deadline)
      event_free(c->deadline);
    if (c && c->bev)
      bufferevent_free(c->bev); /* closes fd */
    else
      close(fd);
    free(c);
    count(&s->refused);
    return;
  }
  s->n_conn++;
  c->srv = s;
  c->started = sysclock_mono();
  netaddr_str_port(sa, c->peer, sizeof(c->peer));
  nts_ke_framer_init(&c->framer);
  bufferevent_setwatermark(c->bev, EV_READ, 0, NTS_KE_MAX_MSG);
  bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
  bufferevent_enable(c->bev, EV_READ);
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

static bool open_listeners(ke_server *s, char *err, size_t errlen)
{
  struct sockaddr_storage ss[KE_MAX_LISTENERS];
  socklen_t len[KE_MAX_LISTENERS];
  size_t n = listen_addrs(s->cfg.listen, ss, len);
  if (n == 0) {
    snprintf(err, errlen, "nts-listen-on: bad address '%s'", s->cfg.listen);
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    char name[NETADDR_STRLEN];
    netaddr_str_port((struct sockaddr *)&ss[i], name, sizeof(name));
    int fd = socket(ss[i].ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) {
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)); /* TCP TIME_WAIT */
      if (ss[i].ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    }
    if (fd < 0 || bind(fd, (struct sockaddr *)&ss[i], len[i]) < 0 || listen(fd, 128) < 0) {
      if (fd >= 0)
        close(fd);
      if (n == 2 && i == 1) { /* the IPv6 wildcard on a host without IPv6 */
        log_warn("NTS-KE: cannot listen on %s (continuing with IPv4 only)", name);
        break;
      }
      snprintf(err, errlen, "NTS-KE: cannot listen on %s: %s", name, strerror(errno));
      return false;
    }
    s->lis[s->n_lis] = evconnlistener_new(s->base, on_accept, s, LEV_OPT_CLOSE_ON_FREE, -1, fd);
    if (!s->lis[s->n_lis]) {
      close(fd);
      snprintf(err, errlen, "NTS-KE: cannot listen on %s", name);
      return false;
    }
    s->n_lis++;
    if (i == 0)
      snprintf(s->name, sizeof(s->name), "%s", name);
    log_notice("serving NTS-KE on %s", name);
  }
  return true;
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
    s->cfg.timeout = 2.0;
  if (s->cfg.max_connections <= 0)
    s->cfg.max_connections = 256;
  uint8_t key[16];
  sysclock_random(key, sizeof(key));
  s->rl = ntp_rl_create(KE_RL_SLOTS, KE_RL_AVERAGE, 0.0, KE_RL_BURST, key);
  s->base = event_base_new();
  if (!s->rl || !s->base) {
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
  if (s->base)
    event_base_free(s->base); /* open connections are dropped with it */
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
}

const char *ke_server_address(const ke_server *s) { return s->name; }
