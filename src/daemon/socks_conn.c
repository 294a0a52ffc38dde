/* socks_conn: SOCKS5 client handshake.  See socks_conn.h. */
#include "daemon/socks_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/conf.h"
#include "daemon/netaddr.h"
#include "daemon/sysclock.h"
#include "proto/aead.h"

enum phase { PH_CONNECT, PH_METHOD, PH_AUTH, PH_REPLY };

struct socks_conn {
  int fd;
  struct event *ev_r, *ev_w, *deadline;
  socks_conn_done_fn fn;
  void *arg;
  enum phase phase;
  int early_errno; /* a connect that failed at once, reported from the loop */
  double timeout;
  unsigned offer;
  uint8_t cmd;
  socks5_addr dst;
  uint8_t user[SOCKS5_CRED_MAX], pass[SOCKS5_CRED_MAX];
  size_t user_len, pass_len;
  uint8_t out[SOCKS5_AUTH_MAX]; /* the largest message we send */
  size_t out_len, out_off;
  uint8_t in[SOCKS5_REPLY_MAX]; /* the largest message we read */
  size_t in_len;
  size_t total_read;
  char proxy[NETADDR_STRLEN];
  socks_conn_result res;
};

static void destroy(socks_conn *c)
{
  if (c->ev_r)
    event_free(c->ev_r);
  if (c->ev_w)
    event_free(c->ev_w);
  if (c->deadline)
    event_free(c->deadline);
  if (c->fd >= 0)
    close(c->fd);
  /* the credentials, and a reply that may carry nothing secret but is
   * cheap to clear; a plain memset before free is a dead store the
   * compiler drops */
  nts_wipe(c, sizeof(*c));
  free(c);
}

/* Reports and frees.  On success the socket changes hands. */
static void finish(socks_conn *c)
{
  c->res.fd = -1;
  if (c->res.ok) {
    c->res.fd = c->fd;
    c->fd = -1;
  }
  c->fn(c->arg, &c->res);
  destroy(c);
}

static void fail(socks_conn *c, socks5_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(socks_conn *c, socks5_status st, const char *fmt, ...)
{
  c->res.ok = false;
  c->res.status = st;
  int n = snprintf(c->res.why, sizeof(c->res.why), "proxy %s: ", c->proxy);
  if (n > 0 && (size_t)n < sizeof(c->res.why)) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->res.why + n, sizeof(c->res.why) - (size_t)n, fmt, ap);
    va_end(ap);
  }
  finish(c);
}

static const char *cmd_name(uint8_t cmd)
{
  return cmd == SOCKS5_CMD_CONNECT ? "CONNECT" : "UDP ASSOCIATE";
}

/* What the handshake is waiting for, for timeouts and early closes. */
static const char *waiting_for(const socks_conn *c, char *buf, size_t cap)
{
  switch (c->phase) {
  case PH_CONNECT:
    return "connecting";
  case PH_METHOD:
    return "the method reply";
  case PH_AUTH:
    return "the authentication reply";
  case PH_REPLY:
    break;
  }
  snprintf(buf, cap, "the reply to %s", cmd_name(c->cmd));
  return buf;
}

/* RFC 1928 6's meaning of each failure REP, and the onion-service codes
 * Tor sends on a SocksPort with ExtendedErrors. */
static const char *rep_text(uint8_t rep)
{
  static const char *const text[] = {
      "succeeded",          "general SOCKS server failure", "connection not allowed by ruleset",
      "network unreachable", "host unreachable",            "connection refused",
      "TTL expired",         "command not supported",       "address type not supported",
  };
  static const char *const tor[] = {
      "Tor: onion service descriptor cannot be found",
      "Tor: onion service descriptor is invalid",
      "Tor: onion service introduction failed",
      "Tor: onion service rendezvous failed",
      "Tor: onion service missing client authorization",
      "Tor: onion service wrong client authorization",
      "Tor: invalid onion service address",
      "Tor: onion service introduction timed out",
  };
  if (rep < sizeof(text) / sizeof(text[0]))
    return text[rep];
  if (rep >= 0xf0 && rep < 0xf0 + sizeof(tor) / sizeof(tor[0]))
    return tor[rep - 0xf0];
  return "unknown reply code";
}

/* A parser's verdict on the bytes in c->in, as a log line. */
static void fail_parse(socks_conn *c, socks5_status st)
{
  const uint8_t *p = c->in;
  switch (st) {
  case SOCKS5_ERR_VERSION:
    if (c->phase == PH_AUTH)
      fail(c, st, "bad authentication reply (version %u, want 1)", p[0]);
    else if (c->phase == PH_METHOD)
      fail(c, st, "not a SOCKS5 server (version %u%s)", p[0],
           p[0] == 0 ? ", a SOCKS4 reply" : "");
    else
      fail(c, st, "bad reply to %s (version %u)", cmd_name(c->cmd), p[0]);
    return;
  case SOCKS5_ERR_NO_METHOD:
    fail(c, st, "accepts none of the offered methods (%s)",
         c->offer & SOCKS5_OFFER_USERPASS ? "no authentication, username/password"
                                          : "no authentication");
    return;
  case SOCKS5_ERR_METHOD:
    fail(c, st, "chose method 0x%02x, which was not offered", p[1]);
    return;
  case SOCKS5_ERR_AUTH:
    fail(c, st, "authentication refused (status %u)", p[1]);
    return;
  case SOCKS5_ERR_RESERVED:
    fail(c, st, "bad reply to %s (reserved byte 0x%02x)", cmd_name(c->cmd), p[2]);
    return;
  case SOCKS5_ERR_ATYP:
    fail(c, st, "bad reply to %s (unknown address type %u)", cmd_name(c->cmd), p[3]);
    return;
  case SOCKS5_ERR_NAME_LEN:
    fail(c, st, "bad reply to %s (empty bound name)", cmd_name(c->cmd));
    return;
  default:
    break;
  }
  if (st >= SOCKS5_ERR_GENERAL_FAILURE && st <= SOCKS5_ERR_REP_UNKNOWN)
    fail(c, st, "%s failed: reply %u (%s)", cmd_name(c->cmd), p[1], rep_text(p[1]));
  else
    fail(c, st, "bad reply (%s)", socks5_status_name(st));
}

/* ---- sending ------------------------------------------------------------ */

static void send_pending(socks_conn *c);

static void start_message(socks_conn *c, enum phase next, socks5_status built)
{
  if (built != SOCKS5_OK) {
    fail(c, built, "cannot build the %s message", next == PH_AUTH ? "authentication" : "request");
    return;
  }
  c->phase = next;
  c->out_off = 0;
  c->in_len = 0;
  send_pending(c);
}

static void send_request(socks_conn *c)
{
  start_message(c, PH_REPLY,
                socks5_build_request(c->out, sizeof(c->out), c->cmd, &c->dst, &c->out_len));
}

/* Writes what is left of c->out; then waits for the reply. */
static void send_pending(socks_conn *c)
{
  while (c->out_off < c->out_len) {
    ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      event_add(c->ev_w, NULL);
      return;
    }
    if (n <= 0) {
      char buf[48];
      fail(c, SOCKS5_OK, "send failed before %s: %s", waiting_for(c, buf, sizeof(buf)),
           strerror(n < 0 ? errno : EPIPE));
      return;
    }
    c->out_off += (size_t)n;
  }
  event_del(c->ev_w);
  event_add(c->ev_r, NULL);
}

static void on_connected(socks_conn *c)
{
  int err = c->early_errno;
  socklen_t len = sizeof(err);
  if (!err && getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
    err = errno;
  if (err) {
    fail(c, SOCKS5_OK, "cannot connect: %s", strerror(err));
    return;
  }
  start_message(c, PH_METHOD, socks5_build_greeting(c->out, sizeof(c->out), c->offer,
                                                    &c->out_len));
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
  socks_conn *c = arg;
  (void)fd;
  (void)what;
  if (c->phase == PH_CONNECT)
    on_connected(c);
  else
    send_pending(c);
}

/* ---- receiving ---------------------------------------------------------- */

/* How many bytes of the current reply to hold before parsing again: never
 * more than the reply itself takes, so nothing after it is read. */
static size_t reply_want(const socks_conn *c)
{
  if (c->phase != PH_REPLY)
    return 2; /* VER METHOD, VER STATUS */
  /* VER REP RSV ATYP and one more byte: no valid reply is shorter
   * (the shortest, a one-byte name, takes 8). */
  if (c->in_len < 5)
    return 5;
  switch (c->in[3]) {
  case SOCKS5_ATYP_IPV4:
    return 4 + 4 + 2;
  case SOCKS5_ATYP_IPV6:
    return 4 + 16 + 2;
  default: /* a name; the parser has rejected any other ATYP by now */
    return 4 + 1 + (size_t)c->in[4] + 2;
  }
}

static socks5_status parse(socks_conn *c, uint8_t *method, size_t *used)
{
  switch (c->phase) {
  case PH_METHOD:
    return socks5_parse_method(c->in, c->in_len, c->offer, method, used);
  case PH_AUTH:
    return socks5_parse_auth(c->in, c->in_len, used);
  default:
    return socks5_parse_reply(c->in, c->in_len, &c->res.bound, used);
  }
}

/* A whole reply has arrived and is good: the next step. */
static void advance(socks_conn *c, uint8_t method)
{
  event_del(c->ev_r);
  if (c->phase == PH_METHOD && method == SOCKS5_METHOD_USERPASS) {
    start_message(c, PH_AUTH, socks5_build_auth(c->out, sizeof(c->out), c->user, c->user_len,
                                                c->pass, c->pass_len, &c->out_len));
    return;
  }
  if (c->phase == PH_METHOD || c->phase == PH_AUTH) {
    send_request(c);
    return;
  }
  c->res.ok = true;
  c->res.status = SOCKS5_OK;
  finish(c);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
  socks_conn *c = arg;
  (void)what;
  for (;;) {
    size_t want = reply_want(c);
    if (want > sizeof(c->in) || want <= c->in_len) {
      fail(c, SOCKS5_OK, "bad reply (internal length error)");
      return;
    }
    ssize_t n = recv(fd, c->in + c->in_len, want - c->in_len, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    char buf[48];
    if (n < 0) {
      fail(c, SOCKS5_OK, "receive failed waiting for %s: %s",
           waiting_for(c, buf, sizeof(buf)), strerror(errno));
      return;
    }
    if (n == 0) {
      if (c->in_len)
        fail(c, SOCKS5_OK, "connection closed after %zu bytes of %s", c->in_len,
             waiting_for(c, buf, sizeof(buf)));
      else
        fail(c, SOCKS5_OK, "connection closed waiting for %s", waiting_for(c, buf, sizeof(buf)));
      return;
    }
    c->in_len += (size_t)n;
    c->total_read += (size_t)n;
    uint8_t method = 0;
    size_t used = 0;
    socks5_status st = parse(c, &method, &used);
    if (st == SOCKS5_NEED_MORE)
      continue;
    if (st != SOCKS5_OK) {
      fail_parse(c, st);
      return;
    }
    advance(c, method);
    return;
  }
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
  socks_conn *c = arg;
  (void)fd;
  (void)what;
  char buf[48];
  const char *w = waiting_for(c, buf, sizeof(buf));
  fail(c, SOCKS5_OK, "timed out after %g s %s%s", c->timeout,
       c->phase == PH_CONNECT ? "" : "waiting for ", w);
}

/* ---- start -------------------------------------------------------------- */

static bool check_cfg(const socks_conn_cfg *cfg, char *err, size_t errlen)
{
  const char *bad = NULL;
  if (!cfg->base || !cfg->proxy)
    bad = "no event loop or proxy address";
  else if (cfg->proxy->sa_family != AF_INET && cfg->proxy->sa_family != AF_INET6)
    bad = "the proxy address is not IPv4 or IPv6";
  else if (cfg->user_len > SOCKS5_CRED_MAX || cfg->pass_len > SOCKS5_CRED_MAX ||
           (cfg->user_len && !cfg->user) || (cfg->pass_len && !cfg->pass))
    bad = "SOCKS credentials longer than 255 bytes";
  else if (cfg->cmd != SOCKS5_CMD_CONNECT && cfg->cmd != SOCKS5_CMD_UDP_ASSOCIATE)
    bad = "unsupported SOCKS command";
  else if (!(cfg->timeout > 0 && cfg->timeout < 1e6))
    bad = "bad timeout";
  if (bad)
    snprintf(err, errlen, "%s", bad);
  return bad == NULL;
}

static socks_conn *new_conn(const socks_conn_cfg *cfg, socks_conn_done_fn fn, void *arg)
{
  socks_conn *c = calloc(1, sizeof(*c));
  if (!c)
    return NULL;
  c->fd = -1;
  c->fn = fn;
  c->arg = arg;
  c->timeout = cfg->timeout;
  c->cmd = cfg->cmd;
  c->dst = cfg->dst;
  c->user_len = cfg->user_len;
  c->pass_len = cfg->pass_len;
  if (cfg->user_len)
    memcpy(c->user, cfg->user, cfg->user_len);
  if (cfg->pass_len)
    memcpy(c->pass, cfg->pass, cfg->pass_len);
  c->offer = SOCKS5_OFFER_NONE | (cfg->user_len ? SOCKS5_OFFER_USERPASS : 0);
  c->res.fd = -1;
  netaddr_str_port(cfg->proxy, c->proxy, sizeof(c->proxy));
  return c;
}

socks_conn *socks_conn_start(const socks_conn_cfg *cfg, socks_conn_done_fn fn, void *arg,
                             char *err, size_t errlen)
{
  if (!check_cfg(cfg, err, errlen))
    return NULL;
  socks_conn *c = new_conn(cfg, fn, arg);
  if (!c) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  c->fd = socket(cfg->proxy->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) {
    snprintf(err, errlen, "proxy %s: socket: %s", c->proxy, strerror(errno));
    destroy(c);
    return NULL;
  }
  c->ev_r = event_new(cfg->base, c->fd, EV_READ | EV_PERSIST, on_readable, c);
  c->ev_w = event_new(cfg->base, c->fd, EV_WRITE | EV_PERSIST, on_writable, c);
  c->deadline = evtimer_new(cfg->base, on_deadline, c);
  struct timeval tv = {.tv_sec = (time_t)cfg->timeout,
                       .tv_usec = (suseconds_t)((cfg->timeout - (double)(time_t)cfg->timeout) *
                                                1e6)};
  if (!c->ev_r || !c->ev_w || !c->deadline || evtimer_add(c->deadline, &tv) < 0) {
    snprintf(err, errlen, "cannot set up the proxy connection's events");
    destroy(c);
    return NULL;
  }
  if (connect(c->fd, cfg->proxy, cfg->proxy_len) < 0 && errno != EINPROGRESS)
    /* e.g. ECONNREFUSED at once on loopback: reported from the loop, so
     * the callback never runs inside this call */
    c->early_errno = errno;
  if (c->early_errno)
    event_active(c->ev_w, EV_WRITE, 1);
  else
    event_add(c->ev_w, NULL);
  return c;
}

void socks_conn_cancel(socks_conn *c)
{
  if (c)
    destroy(c);
}

/* ---- helpers ------------------------------------------------------------ */

void socks_conn_isolation_creds(char user[SOCKS_ISOLATION_LEN + 1],
                                char pass[SOCKS_ISOLATION_LEN + 1])
{
  static const char hex[] = "0123456789abcdef";
  uint8_t r[SOCKS_ISOLATION_LEN];
  sysclock_random(r, sizeof(r));
  for (size_t i = 0; i < SOCKS_ISOLATION_LEN / 2; i++) {
    user[2 * i] = hex[r[i] >> 4];
    user[2 * i + 1] = hex[r[i] & 15];
    pass[2 * i] = hex[r[SOCKS_ISOLATION_LEN / 2 + i] >> 4];
    pass[2 * i + 1] = hex[r[SOCKS_ISOLATION_LEN / 2 + i] & 15];
  }
  user[SOCKS_ISOLATION_LEN] = pass[SOCKS_ISOLATION_LEN] = '\0';
  nts_wipe(r, sizeof(r));
}

bool socks_conn_proxy_addr(const char *host, uint16_t port, struct sockaddr_storage *ss,
                           socklen_t *len)
{
  /* netaddr_parse also takes "" and "*" as the wildcard: not a proxy */
  if (!host || !host[0] || strcmp(host, "*") == 0 || port == 0)
    return false;
  return netaddr_parse(host, port, ss, len);
}

bool socks_conn_proxy_from_conf(const conf_proxy *p, struct sockaddr_storage *ss,
                                socklen_t *len)
{
  return p && p->set && socks_conn_proxy_addr(p->host, p->port, ss, len);
}

void socks_conn_creds(const conf_proxy *p, socks_creds *out)
{
  memset(out, 0, sizeof(*out));
  if (p && p->auth) {
    out->user_len = strnlen(p->user, sizeof(out->user));
    out->pass_len = strnlen(p->pass, sizeof(out->pass));
    memcpy(out->user, p->user, out->user_len);
    memcpy(out->pass, p->pass, out->pass_len);
    return;
  }
  char u[SOCKS_ISOLATION_LEN + 1], pw[SOCKS_ISOLATION_LEN + 1];
  socks_conn_isolation_creds(u, pw);
  memcpy(out->user, u, SOCKS_ISOLATION_LEN);
  memcpy(out->pass, pw, SOCKS_ISOLATION_LEN);
  out->user_len = out->pass_len = SOCKS_ISOLATION_LEN;
  out->random = true;
  nts_wipe(u, sizeof(u));
  nts_wipe(pw, sizeof(pw));
}

socks5_status socks_conn_dst(socks5_addr *dst, const char *host, uint16_t port)
{
  size_t len = host ? strlen(host) : 0;
  char lit[INET6_ADDRSTRLEN + 1];
  const char *h = host;
  if (len >= 2 && host[0] == '[' && host[len - 1] == ']' && len - 2 < sizeof(lit)) {
    memcpy(lit, host + 1, len - 2);
    lit[len - 2] = '\0';
    h = lit;
  }
  uint8_t ip[16];
  if (h && inet_pton(AF_INET, h, ip) == 1) {
    socks5_addr_ipv4(dst, ip, port);
    return SOCKS5_OK;
  }
  if (h && inet_pton(AF_INET6, h, ip) == 1) {
    socks5_addr_ipv6(dst, ip, port);
    return SOCKS5_OK;
  }
  return socks5_addr_name(dst, host, len, port);
}
