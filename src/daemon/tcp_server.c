/* tcp_server: NTP over TCP connections. */
#include "daemon/tcp_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/log.h"
#include "daemon/netaddr.h"
#include "daemon/netstamp.h"
#include "daemon/sysclock.h"
#include "daemon/timer.h"
#include "proto/ke_admit.h"
#include "proto/ntp_tcp.h"

#define TCP_MAX_LISTENERS 32
#define TCP_BACKLOG 128
#define TCP_WARN_INTERVAL 60.0 /* s between warnings about full slots */
#define TCP_ACCEPT_PAUSE 0.5   /* s the listeners rest after a failed accept */

typedef struct tcp_conn tcp_conn;

struct tcp_server {
  tcp_server_cfg cfg;
  struct evconnlistener *lis[TCP_MAX_LISTENERS];
  char names[TCP_MAX_LISTENERS][NETADDR_STRLEN];
  size_t n_lis;
  ke_admit *adm;
  tcp_conn **conns; /* by admission slot; kept for the slot's next connection */
  double warned;    /* when the last pressure warning was logged */
  struct event *resume;  /* re-enables the listeners after an accept failure */
  double accept_warned;  /* when the last accept failure was logged */
  tcp_server_stats stats;
};

struct tcp_conn {
  tcp_server *srv;
  size_t slot;
  bool open;          /* a connection is in the slot; else the storage waits */
  int fd;
  struct event *rd, *wr, *timer;
  struct sockaddr_storage peer;
  char name[NETADDR_STRLEN];
  unsigned requests;  /* frames taken so far */
  bool last;          /* max_requests reached: close once the output is written */
  double idle_since;  /* accept, or the end of the last exchange */
  double frame_since; /* the first byte of the request now arriving */
  ntp_ts rx;          /* when the bytes in `in` were read */
  size_t in_len;
  size_t out_len, out_off; /* out[out_off..out_len) still to write */
  uint8_t in[NTP_TCP_FRAME_MAX];
  uint8_t out[NTP_TCP_FRAME_MAX];
};

/* The connection ends; its storage and events stay with the slot for the
 * next one, so that accepting allocates nothing once the slot has been
 * used (a client may well open one connection per request). */
static void conn_close(tcp_conn *c, uint64_t *reason, const char *why)
{
  tcp_server *t = c->srv;
  if (reason)
    (*reason)++;
  if (why)
    log_debug("NTP over TCP from %s closed: %s", c->name, why);
  ke_admit_release(t->adm, c->slot);
  t->stats.open--;
  event_del(c->rd);
  event_del(c->wr);
  event_del(c->timer);
  close(c->fd);
  c->fd = -1;
  c->open = false;
}

static void conn_free(tcp_conn *c)
{
  struct event *evs[] = {c->rd, c->wr, c->timer};
  for (size_t i = 0; i < 3; i++)
    if (evs[i])
      event_free(evs[i]);
  free(c);
}

/* The one deadline in force: the output's or the request's, else idle. */
static void arm_timer(tcp_conn *c)
{
  const tcp_server_cfg *cfg = &c->srv->cfg;
  double due = c->out_off < c->out_len || c->in_len > 0 ? c->frame_since + cfg->request_timeout
                                                        : c->idle_since + cfg->idle_timeout;
  double left = due - sysclock_mono();
  if (left < 0)
    left = 0;
  struct timeval tv = {.tv_sec = (time_t)left,
                       .tv_usec = (suseconds_t)((left - (double)(time_t)left) * 1e6)};
  evtimer_add(c->timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
  tcp_conn *c = arg;
  (void)fd;
  (void)what;
  if (c->out_off < c->out_len || c->in_len > 0)
    conn_close(c, &c->srv->stats.request_timeouts, "request not complete in time");
  else
    conn_close(c, &c->srv->stats.idle_timeouts, "idle");
}

/* Writes what is left of the output; false when the connection is closed. */
static bool flush_out(tcp_conn *c)
{
  while (c->out_off < c->out_len) {
    ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                     MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return true;
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      conn_close(c, &c->srv->stats.write_errors, "write failed");
      return false;
    }
    c->out_off += (size_t)n;
  }
  c->srv->stats.responses++;
  c->out_off = c->out_len = 0;
  return true;
}

/* One whole request: answered and framed in place (the response is built
 * right after the two length bytes), then written at once. */
static bool take_request(tcp_conn *c, const uint8_t *msg, size_t len)
{
  tcp_server *t = c->srv;
  t->stats.requests++;
  c->requests++;
  size_t n = t->cfg.answer(t->cfg.answer_arg, msg, len, c->rx, (struct sockaddr *)&c->peer,
                           c->out + 2, NTP_TCP_MSG_MAX);
  if (n == 0 || ntp_tcp_frame(c->out, sizeof(c->out), c->out + 2, n) == 0) {
    t->stats.unanswered++;
    return true;
  }
  c->out_len = 2 + n;
  c->out_off = 0;
  return flush_out(c);
}

/* Answers the whole requests held, in order, while the output keeps up;
 * false when the connection is closed. */
static bool take_requests(tcp_conn *c)
{
  size_t off = 0;
  while (c->out_off == c->out_len && !c->last) {
    const uint8_t *msg;
    size_t len, used;
    ntp_tcp_status st = ntp_tcp_next(c->in + off, c->in_len - off, &msg, &len, &used);
    if (st == NTP_TCP_BAD_LEN) {
      conn_close(c, &c->srv->stats.bad_length, "bad frame length");
      return false;
    }
    if (st == NTP_TCP_NEED_MORE)
      break;
    off += used;
    c->last = c->requests + 1 >= c->srv->cfg.max_requests;
    if (!take_request(c, msg, len))
      return false;
    c->idle_since = c->frame_since = sysclock_mono();
  }
  memmove(c->in, c->in + off, c->in_len - off);
  c->in_len -= off;
  return true;
}

/* After a read or a write: close when done, else wait for the right event
 * with the right deadline. */
static void settle(tcp_conn *c)
{
  bool pending = c->out_off < c->out_len;
  if (c->last && !pending) {
    conn_close(c, &c->srv->stats.request_limit, "request limit");
    return;
  }
  if (pending) {
    event_del(c->rd);
    event_add(c->wr, NULL);
  } else {
    event_del(c->wr);
    event_add(c->rd, NULL);
  }
  arm_timer(c);
}

/* The receive time: the kernel's stamp of the read when it has one no later
 * than the clock read as the read returned, else that clock read. */
static ntp_ts rx_time(const tcp_server *t, const struct msghdr *mh, struct timespec now)
{
  netstamp ns;
  netstamp_parse(mh, &ns);
  if (ns.have_rx) {
    struct timespec k = clockctl_local(t->cfg.clk, &ns.rx);
    if (k.tv_sec < now.tv_sec || (k.tv_sec == now.tv_sec && k.tv_nsec <= now.tv_nsec))
      now = k;
  }
  return ntp_ts_from_timespec(&now);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
  tcp_conn *c = arg;
  (void)what;
  union {
    char buf[NETSTAMP_CMSG_SPACE];
    struct cmsghdr align;
  } cb;
  struct iovec iov = {.iov_base = c->in + c->in_len, .iov_len = sizeof(c->in) - c->in_len};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.buf,
                      .msg_controllen = sizeof(cb.buf)};
  ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
  struct timespec now = clockctl_now(c->srv->cfg.clk);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return;
  if (n <= 0) {
    conn_close(c, NULL, c->in_len ? "closed within a request" : NULL);
    return;
  }
  c->rx = rx_time(c->srv, &mh, now);
  if (c->in_len == 0)
    c->frame_since = sysclock_mono();
  c->in_len += (size_t)n;
  if (take_requests(c))
    settle(c);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
  tcp_conn *c = arg;
  (void)fd;
  (void)what;
  if (!flush_out(c))
    return;
  if (c->out_off == c->out_len) { /* written whole: on to those held back meanwhile */
    c->idle_since = c->frame_since = sysclock_mono();
    if (!take_requests(c))
      return;
  }
  settle(c);
}

/* The slot's storage: made the first time the slot is used, then kept.
 * Its events get their socket at each accept (event_assign). */
static tcp_conn *conn_storage(tcp_server *t, size_t slot)
{
  if (t->conns[slot])
    return t->conns[slot];
  tcp_conn *c = calloc(1, sizeof(*c));
  if (!c)
    return NULL;
  c->srv = t;
  c->slot = slot;
  c->fd = -1;
  c->rd = event_new(t->cfg.base, -1, EV_READ | EV_PERSIST, on_read, c);
  c->wr = event_new(t->cfg.base, -1, EV_WRITE | EV_PERSIST, on_write, c);
  c->timer = evtimer_new(t->cfg.base, on_timer, c);
  if (!c->rd || !c->wr || !c->timer) {
    conn_free(c);
    return NULL;
  }
  t->conns[slot] = c;
  return c;
}

/* Takes fd into admission slot `slot`; false (fd closed) when out of memory. */
static bool conn_new(tcp_server *t, evutil_socket_t fd, size_t slot, const struct sockaddr *sa,
                     int salen)
{
  tcp_conn *c = conn_storage(t, slot);
  if (!c || event_assign(c->rd, t->cfg.base, fd, EV_READ | EV_PERSIST, on_read, c) < 0 ||
      event_assign(c->wr, t->cfg.base, fd, EV_WRITE | EV_PERSIST, on_write, c) < 0) {
    close(fd);
    return false;
  }
  c->open = true;
  c->fd = fd;
  c->requests = 0;
  c->last = false;
  c->in_len = c->out_len = c->out_off = 0;
  memset(&c->peer, 0, sizeof(c->peer));
  memcpy(&c->peer, sa, (size_t)salen < sizeof(c->peer) ? (size_t)salen : sizeof(c->peer));
  netaddr_str_port(sa, c->name, sizeof(c->name));
  c->idle_since = c->frame_since = sysclock_mono();
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  netstamp_enable(fd, false);
  t->stats.open++;
  t->stats.accepted++;
  settle(c);
  return true;
}

/* A warning when the caps start to bite, at most one per interval; every
 * refusal is counted. */
static void warn_pressure(tcp_server *t, ke_admit_verdict v, const char *peer)
{
  double now = sysclock_mono();
  if (t->warned != 0 && now - t->warned < TCP_WARN_INTERVAL)
    return;
  t->warned = now;
  const ke_admit_cfg *ac = ke_admit_config(t->adm);
  if (v == KE_ADMIT_PREFIX_FULL)
    log_warn("NTP over TCP: the prefix of %s holds %zu connections, refusing more from it",
             peer, ac->per_prefix);
  else
    log_warn("NTP over TCP: all %zu connection slots busy, closing the oldest for newcomers",
             ac->slots);
}

/* restrict, then a slot: cheap checks before any buffer is allocated. */
static void on_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
  tcp_server *t = arg;
  (void)lis;
  enum acl_family fam;
  uint8_t addr[16];
  char name[NETADDR_STRLEN];
  netaddr_str_port(sa, name, sizeof(name));
  if (!netaddr_to_acl(sa, &fam, addr) ||
      (t->cfg.acl && (ntp_acl_lookup(t->cfg.acl, fam, addr) & (ACL_IGNORE | ACL_NOSERVE)))) {
    t->stats.refused++;
    log_debug("NTP over TCP from %s refused: restrict", name);
    close(fd);
    return;
  }
  size_t slot;
  ke_admit_verdict v = ke_admit_open(t->adm, fam, addr, sysclock_mono(), &slot);
  if (v == KE_ADMIT_EVICT) {
    warn_pressure(t, v, name);
    if (t->conns[slot] && t->conns[slot]->open)
      conn_close(t->conns[slot], &t->stats.evicted, "closed for a newer connection");
    else
      ke_admit_release(t->adm, slot); /* cannot happen: a taken slot has its connection */
    v = ke_admit_open(t->adm, fam, addr, sysclock_mono(), &slot);
  }
  if (v != KE_ADMIT_OK) {
    t->stats.refused++;
    if (v == KE_ADMIT_PREFIX_FULL)
      t->stats.refused_prefix++;
    warn_pressure(t, v, name);
    close(fd);
    return;
  }
  if (!conn_new(t, fd, slot, sa, salen)) {
    ke_admit_release(t->adm, slot);
    t->stats.refused++;
  }
}

/* accept() failed for want of descriptors or memory: the connection stays
 * in the backlog and keeps the listener readable, so the loop would spin
 * at full CPU (logging each turn) until something else frees a
 * descriptor.  Every listener rests a moment instead. */
static void on_accept_error(struct evconnlistener *lis, void *arg)
{
  tcp_server *t = arg;
  int e = EVUTIL_SOCKET_ERROR();
  (void)lis;
  for (size_t i = 0; i < t->n_lis; i++)
    evconnlistener_disable(t->lis[i]);
  timer_arm_in(t->resume, TCP_ACCEPT_PAUSE);
  double now = sysclock_mono();
  if (t->accept_warned == 0 || now - t->accept_warned >= TCP_WARN_INTERVAL) {
    t->accept_warned = now;
    log_warn("NTP over TCP: cannot accept: %s; pausing %.1f s (at most one warning a minute)",
             strerror(e), TCP_ACCEPT_PAUSE);
  }
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
  tcp_server *t = arg;
  (void)fd;
  (void)what;
  for (size_t i = 0; i < t->n_lis; i++)
    evconnlistener_enable(t->lis[i]);
}

tcp_server *tcp_server_create(const tcp_server_cfg *cfg, char *err, size_t errlen)
{
  tcp_server *t = calloc(1, sizeof(*t));
  if (!t) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  t->cfg = *cfg;
  if (t->cfg.max_connections == 0)
    t->cfg.max_connections = TCP_SERVER_SLOTS;
  if (t->cfg.max_per_prefix == 0)
    t->cfg.max_per_prefix = TCP_SERVER_PER_PREFIX;
  if (!(t->cfg.idle_timeout > 0))
    t->cfg.idle_timeout = TCP_SERVER_IDLE_TIMEOUT;
  if (!(t->cfg.request_timeout > 0))
    t->cfg.request_timeout = TCP_SERVER_REQUEST_TIMEOUT;
  if (t->cfg.max_requests == 0)
    t->cfg.max_requests = TCP_SERVER_MAX_REQUESTS;
  /* ke_admit's phases are not used: every connection stays evictable, the
   * oldest first, so none can hold a slot against newcomers for longer
   * than it takes all the others to arrive. */
  ke_admit_cfg ac = {.slots = t->cfg.max_connections, .per_prefix = t->cfg.max_per_prefix};
  t->adm = ke_admit_create(&ac);
  t->conns = calloc(t->cfg.max_connections, sizeof(*t->conns));
  t->resume = evtimer_new(t->cfg.base, on_resume, t);
  if (!t->adm || !t->conns || !t->resume) {
    snprintf(err, errlen, "out of memory");
    tcp_server_destroy(t);
    return NULL;
  }
  return t;
}

bool tcp_server_listen(tcp_server *t, const struct sockaddr *sa, socklen_t len, char *err,
                       size_t errlen)
{
  char name[NETADDR_STRLEN];
  netaddr_str_port(sa, name, sizeof(name));
  if (t->n_lis >= TCP_MAX_LISTENERS) {
    snprintf(err, errlen, "too many NTP over TCP addresses (max %d)", TCP_MAX_LISTENERS);
    return false;
  }
  int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd >= 0) {
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)); /* TCP TIME_WAIT */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (sa->sa_family == AF_INET6)
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  }
  if (fd < 0 || bind(fd, sa, len) < 0 || listen(fd, TCP_BACKLOG) < 0) {
    snprintf(err, errlen, "cannot serve NTP over TCP on %s: %s", name, strerror(errno));
    if (fd >= 0)
      close(fd);
    return false;
  }
  struct evconnlistener *l =
      evconnlistener_new(t->cfg.base, on_accept, t, LEV_OPT_CLOSE_ON_FREE, -1, fd);
  if (!l) {
    close(fd);
    snprintf(err, errlen, "cannot serve NTP over TCP on %s", name);
    return false;
  }
  evconnlistener_set_error_cb(l, on_accept_error);
  t->lis[t->n_lis] = l;
  snprintf(t->names[t->n_lis], sizeof(t->names[0]), "%s", name);
  t->n_lis++;
  log_notice("serving NTP over TCP on %s", name);
  return true;
}

void tcp_server_destroy(tcp_server *t)
{
  if (!t)
    return;
  for (size_t i = 0; i < t->n_lis; i++)
    evconnlistener_free(t->lis[i]);
  for (size_t i = 0; t->conns && i < t->cfg.max_connections; i++) {
    if (!t->conns[i])
      continue;
    if (t->conns[i]->open)
      conn_close(t->conns[i], NULL, NULL);
    conn_free(t->conns[i]);
  }
  free(t->conns);
  if (t->resume)
    event_free(t->resume);
  ke_admit_destroy(t->adm);
  free(t);
}

void tcp_server_get_stats(const tcp_server *t, tcp_server_stats *out) { *out = t->stats; }
size_t tcp_server_socket_count(const tcp_server *t) { return t->n_lis; }
const char *tcp_server_socket_name(const tcp_server *t, size_t i)
{
  return i < t->n_lis ? t->names[i] : "";
}
