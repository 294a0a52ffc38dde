/* transport: the paths of a client association: UDP, NTP over TCP, and
 * both through a SOCKS5 proxy. */
#include "daemon/transport.h"

#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/netstamp.h"
#include "daemon/socks_conn.h"
#include "proto/ntp_pkt.h"
#include "proto/ntp_tcp.h"

#define RECV_BATCH 8  /* datagrams per wake-up */
#define TX_QUEUE_MAX 4 /* error-queue messages looked at per drain */

struct transport {
  const transport_ops *ops;
  struct event_base *base;
  const clockctl *clk;
  transport_cbs cbs;
  bool open;                /* an exchange's path exists (maybe still coming up) */
  bool ready;               /* ... and requests can be sent on it */
  int fd;                   /* the datagram socket or the stream */
  int ctl;                  /* socks-udp: the association's control connection */
  struct event *rd, *wr, *ctl_ev;
  socks_conn *sc;           /* the proxy handshake in progress */
  socks5_addr dst;          /* socks-udp: the server, named in every datagram */
  struct sockaddr_storage proxy; /* socks-udp: stands for an unspecified relay address */
  socklen_t proxy_len;
  size_t in_len;            /* stream bytes not yet taken as frames */
  uint8_t in[2 * NTP_TCP_FRAME_MAX];
  uint8_t buf[SOCKS5_UDP_HDR_MAX + NTP_MAX_PKT];
};

static void say_errno(char *err, size_t errlen) { snprintf(err, errlen, "%s", strerror(errno)); }

static void free_event(struct event **ev)
{
  if (*ev) {
    event_free(*ev);
    *ev = NULL;
  }
}

static void close_fd(int *fd)
{
  if (*fd >= 0) {
    close(*fd);
    *fd = -1;
  }
}

/* Every way's close: whatever of the path exists goes. */
static void path_close(transport *t)
{
  free_event(&t->rd);
  free_event(&t->wr);
  free_event(&t->ctl_ev);
  if (t->sc) {
    socks_conn_cancel(t->sc);
    t->sc = NULL;
  }
  close_fd(&t->fd);
  close_fd(&t->ctl);
  t->open = t->ready = false;
  t->in_len = 0;
}

/* The path failed: closed, and the client told why. */
static void fail(transport *t, const char *why, bool proxy, socks5_status st)
{
  path_close(t);
  transport_error e = {.why = why, .proxy = proxy, .status = st, .closed = true};
  t->cbs.on_error(t->cbs.arg, &e);
}

static void fail_errno(transport *t, const char *what, int e)
{
  char why[160];
  snprintf(why, sizeof(why), "%s: %s", what, strerror(e));
  fail(t, why, false, SOCKS5_OK);
}

/* The path is up after an asynchronous start. */
static void now_ready(transport *t)
{
  t->ready = true;
  t->cbs.on_ready(t->cbs.arg);
}

/* One recvmsg into buf[cap] with its control messages parsed; the length,
 * or -1 when nothing (more) is there. */
static ssize_t receive(transport *t, uint8_t *buf, size_t cap, int flags, netstamp *ns)
{
  union {
    char buf[NETSTAMP_CMSG_SPACE];
    struct cmsghdr align;
  } cb;
  struct iovec iov = {.iov_base = buf, .iov_len = cap};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.buf,
                      .msg_controllen = sizeof(cb.buf)};
  ssize_t n = recvmsg(t->fd, &mh, flags | MSG_DONTWAIT);
  if (n >= 0)
    netstamp_parse(&mh, ns);
  return n;
}

/* Drains the error queue, where the kernel puts the transmit timestamp of
 * our request: its real departure time, which replaces the t1 read before
 * the request was built and sent (that one is early by the build, the NTS
 * sealing and the send path: ~6-8 us on loopback, a positive offset bias).
 * Called right after the send and before any response is looked at.  On a
 * TCP stream the kernel stamps the segment that carries the request's
 * last byte, so the same holds there. */
static void read_tx_stamp(transport *t)
{
  netstamp ns;
  uint8_t scratch[64];
  for (int i = 0; i < TX_QUEUE_MAX && t->fd >= 0; i++) {
    if (receive(t, scratch, sizeof(scratch), MSG_ERRQUEUE, &ns) < 0)
      return;
    if (ns.have_tx) {
      struct timespec local = clockctl_local(t->clk, &ns.tx);
      t->cbs.on_sent(t->cbs.arg, ntp_ts_from_timespec(&local));
    }
  }
}

/* The receive time: the kernel's stamp, else the clock read now. */
static ntp_ts rx_time(const transport *t, const netstamp *ns)
{
  struct timespec rx = ns->have_rx ? clockctl_local(t->clk, &ns->rx) : clockctl_now(t->clk);
  return ntp_ts_from_timespec(&rx);
}

static bool watch(transport *t, event_callback_fn fn, char *err, size_t errlen)
{
  t->rd = event_new(t->base, t->fd, EV_READ | EV_PERSIST, fn, t);
  if (!t->rd || event_add(t->rd, NULL) < 0) {
    snprintf(err, errlen, "cannot register the socket");
    return false;
  }
  return true;
}

/* ---- UDP ----------------------------------------------------------------- */

static void udp_readable(evutil_socket_t fd, short what, void *arg)
{
  transport *t = arg;
  (void)fd;
  (void)what;
  read_tx_stamp(t);
  netstamp ns;
  for (int i = 0; i < RECV_BATCH && t->fd >= 0; i++) {
    ssize_t n = receive(t, t->buf, NTP_MAX_PKT, 0, &ns);
    if (n < 0)
      return; /* EAGAIN, or ICMP port unreachable: the reach register shows it */
    t->cbs.on_response(t->cbs.arg, t->buf, (size_t)n, rx_time(t, &ns));
  }
}

/* A UDP socket connected to sa: connect() binds a fresh random ephemeral
 * port and makes the kernel drop datagrams from anyone else. */
static bool udp_socket(transport *t, const struct sockaddr *sa, socklen_t len, char *err,
                       size_t errlen)
{
  t->fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (t->fd < 0) {
    say_errno(err, errlen);
    return false;
  }
  netstamp_enable(t->fd, true);
  if (connect(t->fd, sa, len) < 0) {
    say_errno(err, errlen);
    return false;
  }
  return true;
}

static bool udp_open(transport *t, const transport_dest *d, char *err, size_t errlen)
{
  if (!d->sa) {
    snprintf(err, errlen, "no address");
    return false;
  }
  t->ready = udp_socket(t, d->sa, d->len, err, errlen);
  return t->ready;
}

static bool udp_send(transport *t, const uint8_t *pkt, size_t len, char *err, size_t errlen)
{
  if (send(t->fd, pkt, len, 0) < 0) {
    say_errno(err, errlen);
    return false;
  }
  read_tx_stamp(t);
  return watch(t, udp_readable, err, errlen);
}

const transport_ops transport_udp = {.name = "udp", .open = udp_open, .send = udp_send,
                                     .close = path_close};

/* ---- NTP over TCP --------------------------------------------------------- */

/* A stream is ready for requests: no Nagle delay (the request is one small
 * write that must leave at once), kernel timestamps as on UDP. */
static void stream_setup(transport *t)
{
  int one = 1;
  setsockopt(t->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  netstamp_enable(t->fd, true);
}

/* Hands back every whole frame in t->in; false when the stream must close. */
static bool take_frames(transport *t, ntp_ts rx)
{
  size_t off = 0;
  while (t->open) {
    const uint8_t *msg;
    size_t len, used;
    ntp_tcp_status s = ntp_tcp_next(t->in + off, t->in_len - off, &msg, &len, &used);
    if (s == NTP_TCP_BAD_LEN)
      return false;
    if (s == NTP_TCP_NEED_MORE)
      break;
    off += used;
    t->cbs.on_response(t->cbs.arg, msg, len, rx);
  }
  if (t->open && off) {
    memmove(t->in, t->in + off, t->in_len - off);
    t->in_len -= off;
  }
  return true;
}

static void stream_readable(evutil_socket_t fd, short what, void *arg)
{
  transport *t = arg;
  (void)fd;
  (void)what;
  read_tx_stamp(t);
  netstamp ns;
  ssize_t n = receive(t, t->in + t->in_len, sizeof(t->in) - t->in_len, 0, &ns);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return;
  if (n < 0) {
    fail_errno(t, "TCP receive", errno);
    return;
  }
  if (n == 0) {
    fail(t, "the server closed the TCP connection", false, SOCKS5_OK);
    return;
  }
  t->in_len += (size_t)n;
  if (!take_frames(t, rx_time(t, &ns)))
    fail(t, "the server sent a bad NTP-over-TCP frame length", false, SOCKS5_OK);
}

/* The request goes in one write: on a fresh connection the socket buffer
 * is empty, so a short write means the path is broken. */
static bool stream_send(transport *t, const uint8_t *pkt, size_t len, char *err, size_t errlen)
{
  size_t n = ntp_tcp_frame(t->buf, sizeof(t->buf), pkt, len);
  if (n == 0) {
    snprintf(err, errlen, "request too long for a frame");
    return false;
  }
  ssize_t w = send(t->fd, t->buf, n, MSG_NOSIGNAL);
  if (w != (ssize_t)n) {
    if (w < 0)
      say_errno(err, errlen);
    else
      snprintf(err, errlen, "short TCP write");
    return false;
  }
  read_tx_stamp(t);
  return watch(t, stream_readable, err, errlen);
}

static void tcp_connected(evutil_socket_t fd, short what, void *arg)
{
  transport *t = arg;
  free_event(&t->wr);
  if (what & EV_TIMEOUT) {
    fail(t, "TCP connect timed out", false, SOCKS5_OK);
    return;
  }
  int e = 0;
  socklen_t el = sizeof(e);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
    e = errno;
  if (e) {
    fail_errno(t, "TCP connect", e);
    return;
  }
  now_ready(t);
}

static bool tcp_open(transport *t, const transport_dest *d, char *err, size_t errlen)
{
  if (!d->sa) {
    snprintf(err, errlen, "no address");
    return false;
  }
  t->fd = socket(d->sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (t->fd < 0) {
    say_errno(err, errlen);
    return false;
  }
  stream_setup(t);
  if (connect(t->fd, d->sa, d->len) == 0) {
    t->ready = true;
    return true;
  }
  if (errno != EINPROGRESS) {
    snprintf(err, errlen, "TCP connect: %s", strerror(errno));
    return false;
  }
  struct timeval tv = {.tv_sec = (time_t)d->timeout,
                       .tv_usec = (suseconds_t)((d->timeout - (time_t)d->timeout) * 1e6)};
  t->wr = event_new(t->base, t->fd, EV_WRITE, tcp_connected, t);
  if (!t->wr || event_add(t->wr, &tv) < 0) {
    snprintf(err, errlen, "cannot register the socket");
    return false;
  }
  return true;
}

const transport_ops transport_tcp = {.name = "tcp", .open = tcp_open, .send = stream_send,
                                     .close = path_close};

/* ---- through a SOCKS5 proxy ------------------------------------------------ */

static bool socks_start(transport *t, const transport_dest *d, uint8_t cmd,
                        const socks5_addr *dst, socks_conn_done_fn fn, char *err, size_t errlen)
{
  if (!d->proxy || !d->name) {
    snprintf(err, errlen, "no proxy or destination");
    return false;
  }
  socks_conn_cfg sc = {.base = t->base, .proxy = (const struct sockaddr *)&d->proxy->sa,
                       .proxy_len = d->proxy->len, .user = d->proxy->user,
                       .user_len = d->proxy->user_len, .pass = d->proxy->pass,
                       .pass_len = d->proxy->pass_len, .cmd = cmd, .dst = *dst,
                       .timeout = d->timeout};
  t->sc = socks_conn_start(&sc, fn, t, err, errlen);
  return t->sc != NULL;
}

static void socks_tcp_done(void *arg, socks_conn_result *r)
{
  transport *t = arg;
  t->sc = NULL; /* freed when this returns */
  if (!r->ok) {
    fail(t, r->why, true, r->status);
    return;
  }
  t->fd = r->fd;
  stream_setup(t);
  now_ready(t);
}

static bool socks_tcp_open(transport *t, const transport_dest *d, char *err, size_t errlen)
{
  return d->name && socks_start(t, d, SOCKS5_CMD_CONNECT, d->name, socks_tcp_done, err, errlen);
}

const transport_ops transport_socks_tcp = {.name = "socks-tcp", .open = socks_tcp_open,
                                           .send = stream_send, .close = path_close};

/* The association ends when its control connection closes (RFC 1928 7);
 * the proxy sends nothing on it, so anything readable means the end. */
static void ctl_readable(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  fail(arg, "the proxy ended the UDP association", true, SOCKS5_OK);
}

/* The relay's socket address from BND; an unspecified address means the
 * proxy's own.  False for a relay given by name (it would need resolving). */
static bool relay_addr(const transport *t, const socks5_addr *b, struct sockaddr_storage *ss,
                       socklen_t *len)
{
  static const uint8_t zero[16];
  memset(ss, 0, sizeof(*ss));
  if (b->atyp == SOCKS5_ATYP_NAME)
    return false;
  size_t alen = b->atyp == SOCKS5_ATYP_IPV4 ? 4 : 16;
  if (memcmp(b->bytes, zero, alen) == 0) {
    memcpy(ss, &t->proxy, t->proxy_len);
    *len = t->proxy_len;
  } else if (alen == 4) {
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    memcpy(&s4->sin_addr, b->bytes, 4);
    *len = sizeof(*s4);
  } else {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    s6->sin6_family = AF_INET6;
    memcpy(&s6->sin6_addr, b->bytes, 16);
    *len = sizeof(*s6);
  }
  if (ss->ss_family == AF_INET)
    ((struct sockaddr_in *)ss)->sin_port = htons(b->port);
  else
    ((struct sockaddr_in6 *)ss)->sin6_port = htons(b->port);
  return true;
}

static void socks_udp_done(void *arg, socks_conn_result *r)
{
  transport *t = arg;
  t->sc = NULL;
  if (!r->ok) {
    fail(t, r->why, true, r->status);
    return;
  }
  t->ctl = r->fd;
  struct sockaddr_storage relay;
  socklen_t len;
  char err[160] = "cannot register the socket";
  if (!relay_addr(t, &r->bound, &relay, &len)) {
    fail(t, "the proxy named its UDP relay by name", true, SOCKS5_OK);
    return;
  }
  t->ctl_ev = event_new(t->base, t->ctl, EV_READ, ctl_readable, t);
  if (!t->ctl_ev || event_add(t->ctl_ev, NULL) < 0 ||
      !udp_socket(t, (struct sockaddr *)&relay, len, err, sizeof(err))) {
    fail(t, err, false, SOCKS5_OK);
    return;
  }
  now_ready(t);
}

static bool socks_udp_open(transport *t, const transport_dest *d, char *err, size_t errlen)
{
  if (!d->proxy || !d->name) {
    snprintf(err, errlen, "no proxy or destination");
    return false;
  }
  t->dst = *d->name;
  memcpy(&t->proxy, &d->proxy->sa, d->proxy->len);
  t->proxy_len = d->proxy->len;
  /* Where our datagrams will come from is not known before the relay is:
   * all zeros, as RFC 1928 4 allows. */
  static const uint8_t any[4];
  socks5_addr from;
  socks5_addr_ipv4(&from, any, 0);
  return socks_start(t, d, SOCKS5_CMD_UDP_ASSOCIATE, &from, socks_udp_done, err, errlen);
}

static void socks_udp_readable(evutil_socket_t fd, short what, void *arg)
{
  transport *t = arg;
  (void)fd;
  (void)what;
  read_tx_stamp(t);
  netstamp ns;
  for (int i = 0; i < RECV_BATCH && t->fd >= 0; i++) {
    ssize_t n = receive(t, t->buf, sizeof(t->buf), 0, &ns);
    if (n < 0)
      return;
    socks5_addr src;
    size_t off;
    socks5_status s = socks5_parse_udp(t->buf, (size_t)n, &src, &off);
    if (s != SOCKS5_OK) {
      char why[96];
      snprintf(why, sizeof(why), "malformed datagram from the UDP relay: %s",
               socks5_status_name(s));
      transport_error e = {.why = why, .proxy = true, .status = s};
      t->cbs.on_error(t->cbs.arg, &e);
      continue;
    }
    t->cbs.on_response(t->cbs.arg, t->buf + off, (size_t)n - off, rx_time(t, &ns));
  }
}

static bool socks_udp_send(transport *t, const uint8_t *pkt, size_t len, char *err,
                           size_t errlen)
{
  size_t n;
  if (socks5_build_udp(t->buf, sizeof(t->buf), &t->dst, pkt, len, &n) != SOCKS5_OK) {
    snprintf(err, errlen, "cannot build the relay datagram");
    return false;
  }
  if (send(t->fd, t->buf, n, 0) < 0) {
    say_errno(err, errlen);
    return false;
  }
  read_tx_stamp(t);
  return watch(t, socks_udp_readable, err, errlen);
}

const transport_ops transport_socks_udp = {.name = "socks-udp", .open = socks_udp_open,
                                           .send = socks_udp_send, .close = path_close};

/* ---- the transport ------------------------------------------------------- */

transport *transport_create(const transport_cfg *cfg)
{
  transport *t = calloc(1, sizeof(*t));
  if (!t)
    return NULL;
  t->ops = &transport_udp;
  t->base = cfg->base;
  t->clk = cfg->clk;
  t->cbs = cfg->cbs;
  t->fd = t->ctl = -1;
  return t;
}

void transport_destroy(transport *t)
{
  if (!t)
    return;
  transport_close(t);
  free(t);
}

bool transport_open(transport *t, const transport_ops *ops, const transport_dest *d, char *err,
                    size_t errlen)
{
  transport_close(t);
  t->ops = ops;
  t->open = true;
  if (t->ops->open(t, d, err, errlen))
    return true;
  transport_close(t);
  return false;
}

bool transport_ready(const transport *t) { return t->open && t->ready; }

bool transport_send(transport *t, const uint8_t *pkt, size_t n, char *err, size_t errlen)
{
  if (transport_ready(t) && t->ops->send(t, pkt, n, err, errlen))
    return true;
  if (!transport_ready(t))
    snprintf(err, errlen, "the path is not up");
  transport_close(t);
  return false;
}

void transport_close(transport *t) { t->ops->close(t); }
bool transport_is_open(const transport *t) { return t->open; }

bool transport_local_addr(const transport *t, struct sockaddr_storage *ss, socklen_t *len)
{
  *len = sizeof(*ss);
  return t->open && t->fd >= 0 && getsockname(t->fd, (struct sockaddr *)ss, len) == 0;
}
