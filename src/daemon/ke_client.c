/* ke_client: NTS-KE client exchange. */
#include "daemon/ke_client.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/netaddr.h"
#include "daemon/socks_conn.h"
#include "daemon/sysclock.h"
#include "daemon/tls.h"
#include "proto/nts_ke_msg.h"

#define MAX_AEADS 4

struct ke_client {
  struct bufferevent *bev;
  struct event_base *base;
  SSL *ssl;          /* until bev owns it (through a proxy: after the handshake) */
  socks_conn *socks; /* through a proxy, while its handshake runs */
  char proxy[NETADDR_STRLEN]; /* through a proxy: its address, for messages */
  double timeout;
  struct event *deadline;
  ke_client_done_fn fn;
  void *arg;
  double started;
  uint16_t aeads[MAX_AEADS];
  size_t n_aeads;
  bool sent;
  ke_pins pins;
  nts_ke_framer framer;
  ke_result res;
};

static void destroy(ke_client *k)
{
  if (k->deadline)
    event_free(k->deadline);
  if (k->bev)
    bufferevent_free(k->bev);
  SSL_free(k->ssl);
  socks_conn_cancel(k->socks);
  nts_wipe(&k->res, sizeof(k->res));
  free(k);
}

/* why == NULL: success; otherwise stage says where it failed. */
static void finish(ke_client *k, ke_fail stage, const char *why)
{
  bool ok = why == NULL;
  k->res.ok = ok;
  k->res.fail = ok ? KE_FAIL_NONE : stage;
  k->res.took = sysclock_mono() - k->started;
  /* Through a proxy, a failure after its handshake says so (the proxy's
   * own failures already start with "proxy ADDR:"). */
  if (why && !ok && k->proxy[0] && !strstr(why, k->proxy))
    snprintf(k->res.why, sizeof(k->res.why), "%s (through proxy %s)", why, k->proxy);
  else if (why)
    snprintf(k->res.why, sizeof(k->res.why), "%s", why);
  SSL *ssl = k->bev ? bufferevent_openssl_get_ssl(k->bev) : NULL;
  if (ssl) {
    snprintf(k->res.tls_version, sizeof(k->res.tls_version), "%s", SSL_get_version(ssl));
    const char *c = SSL_get_cipher_name(ssl);
    snprintf(k->res.cipher, sizeof(k->res.cipher), "%s", c ? c : "-");
  }
  k->res.ssl = ssl;
  k->fn(k->arg, &k->res);
  k->res.ssl = NULL;
  destroy(k);
}

/* errno after a failed TCP connect, if it still says why (deferred
 * callbacks run after other system calls, so anything else is stale). */
static int connect_errno(void)
{
  int e = EVUTIL_SOCKET_ERROR();
  return e == ECONNREFUSED || e == ENETUNREACH || e == EHOSTUNREACH || e == ETIMEDOUT ||
                 e == ECONNRESET || e == EADDRNOTAVAIL
             ? e
             : 0;
}

/* Explains a failure, with the certificate verdict when there is one.  An
 * "error" of library 0 is libevent's own code for a failed system call
 * (SSL_ERROR_SYSCALL), not an OpenSSL error worth printing. */
static void tls_failure(ke_client *k, struct bufferevent *bev)
{
  char why[200], e[160] = "";
  SSL *ssl = bufferevent_openssl_get_ssl(bev);
  unsigned long ossl = bufferevent_get_openssl_error(bev);
  /* Through a proxy the TCP connect was the proxy's, and has succeeded. */
  int sys_errno = !k->sent && !k->proxy[0] && ERR_GET_LIB(ossl) != ERR_LIB_SSL
                      ? connect_errno()
                      : 0;
  long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
  if (ossl)
    ERR_error_string_n(ossl, e, sizeof(e));
  k->res.verify_result = vr;
  /* No ClientHello yet: the TCP connection itself failed. */
  ke_fail stage = k->sent ? KE_FAIL_PROTOCOL
                  : !ssl || SSL_in_before(ssl) ? KE_FAIL_CONNECT
                                               : KE_FAIL_TLS;
  if (vr != X509_V_OK) {
    snprintf(why, sizeof(why), "certificate verification failed: %s",
             X509_verify_cert_error_string(vr));
    stage = KE_FAIL_TLS;
  } else if (sys_errno) {
    snprintf(why, sizeof(why), "cannot connect: %s", strerror(sys_errno));
    stage = KE_FAIL_CONNECT;
  } else if (ossl && ERR_GET_LIB(ossl) != 0) {
    snprintf(why, sizeof(why), "TLS: %s", e);
    stage = KE_FAIL_TLS;
  } else {
    snprintf(why, sizeof(why), "connection failed or closed before the response");
  }
  finish(k, stage, why);
}

static void on_response(ke_client *k, SSL *ssl, const uint8_t *msg, size_t len)
{
  nts_ke_resp_status st = nts_ke_client_parse_response(msg, len, k->aeads, k->n_aeads,
                                                       &k->res.session);
  if (st != NTS_KE_RESP_OK) {
    char why[200];
    k->res.resp_status = st;
    if (st == NTS_KE_RESP_SERVER_ERROR)
      snprintf(why, sizeof(why), "server sent Error %u (%s)", k->res.session.error_code,
               nts_ke_error_name(k->res.session.error_code));
    else if (st == NTS_KE_RESP_WARNING)
      snprintf(why, sizeof(why), "server sent Warning %u", k->res.session.warning_code);
    else
      snprintf(why, sizeof(why), "bad response: %s", nts_ke_resp_status_name(st));
    finish(k, KE_FAIL_PROTOCOL, why);
    return;
  }
  uint16_t aead = k->res.session.aead;
  k->res.key_len = nts_aead_key_len(aead);
  if (k->res.key_len == 0 || !tls_export_key(ssl, aead, 0, k->res.c2s, k->res.key_len) ||
      !tls_export_key(ssl, aead, 1, k->res.s2c, k->res.key_len)) {
    finish(k, KE_FAIL_PROTOCOL, "cannot export the NTS keys");
    return;
  }
  finish(k, KE_FAIL_NONE, NULL);
}

static void on_read(struct bufferevent *bev, void *arg)
{
  ke_client *k = arg;
  struct evbuffer *in = bufferevent_get_input(bev);
  uint8_t chunk[4096];
  while (evbuffer_get_length(in) > 0) {
    int n = evbuffer_remove(in, chunk, sizeof(chunk));
    if (n <= 0)
      return;
    nts_ke_frame_status st = nts_ke_framer_feed(&k->framer, chunk, (size_t)n);
    if (st == NTS_KE_FRAME_COMPLETE) {
      size_t len;
      const uint8_t *msg = nts_ke_framer_msg(&k->framer, &len);
      on_response(k, bufferevent_openssl_get_ssl(bev), msg, len);
      return; /* k is gone */
    }
    if (st != NTS_KE_FRAME_NEED_MORE) {
      char why[96];
      snprintf(why, sizeof(why), "bad response: %s", nts_ke_frame_status_name(st));
      finish(k, KE_FAIL_PROTOCOL, why);
      return;
    }
  }
}

/* The leaf's public key against the pins, in constant time; on a mismatch,
 * why says which key the server showed (what a new pin would be). */
static bool pin_ok(const ke_client *k, SSL *ssl, char *why, size_t cap)
{
  uint8_t got[32];
  if (!tls_peer_spki_sha256(ssl, got)) {
    snprintf(why, cap, "public key pin: no server certificate");
    return false;
  }
  bool match = false;
  for (size_t i = 0; i < k->pins.n; i++)
    match |= CRYPTO_memcmp(got, k->pins.sha256[i], sizeof(got)) == 0;
  if (!match) {
    char b64[48];
    EVP_EncodeBlock((unsigned char *)b64, got, (int)sizeof(got));
    snprintf(why, cap, "public key pin mismatch: got sha256:%s", b64);
  }
  return match;
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
  ke_client *k = arg;
  if (what & BEV_EVENT_CONNECTED) {
    char why[200];
    if (k->pins.n && !pin_ok(k, bufferevent_openssl_get_ssl(bev), why, sizeof(why))) {
      k->res.verify_result = X509_V_ERR_APPLICATION_VERIFICATION;
      finish(k, KE_FAIL_TLS, why);
      return;
    }
    if (!tls_alpn_ok(bufferevent_openssl_get_ssl(bev))) {
      finish(k, KE_FAIL_TLS, "server did not select ALPN ntske/1");
      return;
    }
    /* The request follows the client's Finished, still unacknowledged:
     * with Nagle's algorithm it would wait for the server's delayed ACK
     * (40 ms on Linux) before it is sent. */
    int one = 1;
    setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    uint8_t req[64];
    size_t n = nts_ke_client_build_request(k->aeads, k->n_aeads, req, sizeof(req));
    if (n == 0 || bufferevent_write(bev, req, n) < 0) {
      finish(k, KE_FAIL_PROTOCOL, "cannot send the request");
      return;
    }
    k->sent = true;
    return;
  }
  tls_failure(k, bev);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
  ke_client *k = arg;
  (void)fd;
  (void)what;
  SSL *ssl = k->bev ? bufferevent_openssl_get_ssl(k->bev) : NULL;
  bool in_tls = k->proxy[0] || (ssl && !SSL_in_before(ssl));
  if (k->sent)
    finish(k, KE_FAIL_PROTOCOL, "timed out waiting for the response");
  else if (in_tls)
    finish(k, KE_FAIL_TLS, "timed out in the TLS handshake");
  else
    finish(k, KE_FAIL_CONNECT, "timed out connecting");
}

static bool arm_deadline(ke_client *k, struct event_base *base, double timeout)
{
  if (!(timeout > 0))
    timeout = 0.001;
  k->deadline = evtimer_new(base, on_deadline, k);
  struct timeval tv = {.tv_sec = (time_t)timeout,
                       .tv_usec = (suseconds_t)((timeout - (double)(time_t)timeout) * 1e6)};
  return k->deadline && evtimer_add(k->deadline, &tv) == 0;
}

/* The exchange's state before any connection: the SSL set up for host. */
static ke_client *ke_new(SSL_CTX *ctx, const char *host, const ke_pins *pins,
                         const uint16_t *aeads, size_t n_aeads, double timeout,
                         ke_client_done_fn fn, void *arg)
{
  ke_client *k = calloc(1, sizeof(*k));
  if (!k)
    return NULL;
  k->fn = fn;
  k->arg = arg;
  k->started = sysclock_mono();
  k->timeout = timeout;
  k->n_aeads = n_aeads < MAX_AEADS ? n_aeads : MAX_AEADS;
  memcpy(k->aeads, aeads, k->n_aeads * sizeof(aeads[0]));
  nts_ke_framer_init(&k->framer);
  if (pins)
    k->pins = *pins;
  if (k->pins.n > KE_PINS_MAX)
    k->pins.n = KE_PINS_MAX;
  bool pin_only = k->pins.n && !k->pins.chain;
  k->ssl = SSL_new(ctx);
  if (!k->ssl ||
      !(pin_only ? tls_client_setup_pinned(k->ssl, host) : tls_client_setup(k->ssl, host))) {
    destroy(k);
    return NULL;
  }
  return k;
}

/* TLS over fd (-1: a socket bufferevent_socket_connect will make).  On
 * failure the caller destroys k; fd is still the caller's then. */
static bool attach_tls(ke_client *k, struct event_base *base, evutil_socket_t fd)
{
  /* Deferred callbacks: a connect that fails at once must not call back
   * (and free k) before ke_client_start has returned. */
  SSL *ssl = k->ssl;
  k->ssl = NULL;
  k->bev = bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_CONNECTING,
                                          BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
  /* Without a bev, libevent (since 2.1.9) has freed the SSL, as
   * BEV_OPT_CLOSE_ON_FREE says; freeing it again would be a double free. */
  if (!k->bev)
    return false;
  bufferevent_openssl_set_allow_dirty_shutdown(k->bev, 1);
  bufferevent_setcb(k->bev, on_read, NULL, on_event, k);
  return bufferevent_enable(k->bev, EV_READ) == 0;
}

ke_client *ke_client_start(struct event_base *base, SSL_CTX *ctx, const struct sockaddr *sa,
                           socklen_t salen, const char *host, const ke_pins *pins,
                           const uint16_t *aeads, size_t n_aeads, double timeout,
                           ke_client_done_fn fn, void *arg)
{
  return ke_client_start_fd(base, ctx, -1, sa, salen, host, pins, aeads, n_aeads, timeout, fn,
                            arg);
}

ke_client *ke_client_start_fd(struct event_base *base, SSL_CTX *ctx, int fd,
                              const struct sockaddr *sa, socklen_t salen, const char *host,
                              const ke_pins *pins, const uint16_t *aeads, size_t n_aeads,
                              double timeout, ke_client_done_fn fn, void *arg)
{
  ke_client *k = ke_new(ctx, host, pins, aeads, n_aeads, timeout, fn, arg);
  if (!k) {
    if (fd >= 0)
      close(fd);
    return NULL;
  }
  if (!attach_tls(k, base, fd)) {
    if (!k->bev && fd >= 0)
      close(fd);
    destroy(k);
    return NULL;
  }
  if (!arm_deadline(k, base, timeout) ||
      bufferevent_socket_connect(k->bev, (struct sockaddr *)sa, (int)salen) < 0) {
    destroy(k);
    return NULL;
  }
  return k;
}

/* The proxy's handshake is over: TLS on its stream, in the time left. */
static void on_socks(void *arg, socks_conn_result *r)
{
  ke_client *k = arg;
  k->socks = NULL; /* freed by socks_conn when this returns */
  if (!r->ok) {
    finish(k, KE_FAIL_CONNECT, r->why);
    return;
  }
  struct event_base *base = k->base;
  if (!attach_tls(k, base, r->fd)) {
    if (!k->bev)
      close(r->fd);
    finish(k, KE_FAIL_TLS, "cannot set up TLS on the proxy's stream");
    return;
  }
  if (!arm_deadline(k, base, k->timeout - (sysclock_mono() - k->started)))
    finish(k, KE_FAIL_CONNECT, "cannot set up the deadline");
}

ke_client *ke_client_start_via(struct event_base *base, SSL_CTX *ctx, const ke_via *via,
                               const char *host, uint16_t port, const ke_pins *pins,
                               const uint16_t *aeads, size_t n_aeads, double timeout,
                               ke_client_done_fn fn, void *arg, char *err, size_t errlen)
{
  socks_conn_cfg cfg = {
      .base = base,
      .proxy = via->proxy,
      .proxy_len = via->proxy_len,
      .user = via->user,
      .user_len = via->user_len,
      .pass = via->pass,
      .pass_len = via->pass_len,
      .cmd = SOCKS5_CMD_CONNECT,
      .timeout = timeout,
  };
  const char *target = via->target ? via->target : host;
  if (socks_conn_dst(&cfg.dst, target, port) != SOCKS5_OK) {
    snprintf(err, errlen, "bad NTS-KE server name for the proxy: %s", target);
    return NULL;
  }
  ke_client *k = ke_new(ctx, host, pins, aeads, n_aeads, timeout, fn, arg);
  if (!k) {
    snprintf(err, errlen, "cannot set up TLS for %s", host);
    return NULL;
  }
  k->base = base;
  netaddr_str_port(via->proxy, k->proxy, sizeof(k->proxy));
  /* The proxy's own deadline is the exchange's: on_socks arms the rest. */
  k->socks = socks_conn_start(&cfg, on_socks, k, err, errlen);
  if (!k->socks) {
    destroy(k);
    return NULL;
  }
  return k;
}

void ke_client_cancel(ke_client *k)
{
  if (k)
    destroy(k);
}
