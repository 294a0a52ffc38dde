/* transport: the UDP path of a client association. */
#include "daemon/transport.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/netstamp.h"
#include "proto/ntp_pkt.h"

#define RECV_BATCH 8  /* datagrams per wake-up */
#define TX_QUEUE_MAX 4 /* error-queue messages looked at per drain */

struct transport {
  const transport_ops *ops;
  struct event_base *base;
  const clockctl *clk;
  transport_cbs cbs;
  int fd;
  struct event *rd;
  uint8_t buf[NTP_MAX_PKT];
};

static void say_errno(char *err, size_t errlen) { snprintf(err, errlen, "%s", strerror(errno)); }

/* One recvmsg into t->buf with its control messages parsed; the length,
 * or -1 when nothing (more) is there. */
static ssize_t receive(transport *t, int flags, netstamp *ns)
{
  union {
    char buf[NETSTAMP_CMSG_SPACE];
    struct cmsghdr align;
  } cb;
  struct iovec iov = {.iov_base = t->buf, .iov_len = sizeof(t->buf)};
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
 * Called right after the send and before any response is looked at. */
static void read_tx_stamp(transport *t)
{
  netstamp ns;
  for (int i = 0; i < TX_QUEUE_MAX && t->fd >= 0; i++) {
    if (receive(t, MSG_ERRQUEUE, &ns) < 0)
      return;
    if (ns.have_tx) {
      struct timespec local = clockctl_local(t->clk, &ns.tx);
      t->cbs.on_sent(t->cbs.arg, ntp_ts_from_timespec(&local));
    }
  }
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
  transport *t = arg;
  (void)fd;
  (void)what;
  read_tx_stamp(t);
  netstamp ns;
  for (int i = 0; i < RECV_BATCH && t->fd >= 0; i++) {
    ssize_t n = receive(t, 0, &ns);
    if (n < 0)
      return; /* EAGAIN, or ICMP port unreachable: the reach register shows it */
    struct timespec rx = ns.have_rx ? clockctl_local(t->clk, &ns.rx) : clockctl_now(t->clk);
    t->cbs.on_response(t->cbs.arg, t->buf, (size_t)n, ntp_ts_from_timespec(&rx));
  }
}

static bool udp_open(transport *t, const struct sockaddr *sa, socklen_t len, char *err,
                     size_t errlen)
{
  t->fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (t->fd < 0) {
    say_errno(err, errlen);
    return false;
  }
  netstamp_enable(t->fd, true);
  /* connect() binds a fresh random ephemeral port and makes the kernel
   * drop datagrams from anyone but the server. */
  if (connect(t->fd, sa, len) < 0) {
    say_errno(err, errlen);
    return false;
  }
  return true;
}

static bool udp_send(transport *t, const uint8_t *pkt, size_t len, char *err, size_t errlen)
{
  if (send(t->fd, pkt, len, 0) < 0) {
    say_errno(err, errlen);
    return false;
  }
  read_tx_stamp(t);
  t->rd = event_new(t->base, t->fd, EV_READ | EV_PERSIST, on_readable, t);
  if (!t->rd || event_add(t->rd, NULL) < 0) {
    snprintf(err, errlen, "cannot register the socket");
    return false;
  }
  return true;
}

static void udp_close(transport *t)
{
  if (t->rd) {
    event_free(t->rd);
    t->rd = NULL;
  }
  if (t->fd >= 0) {
    close(t->fd);
    t->fd = -1;
  }
}

const transport_ops transport_udp = {.name = "udp", .open = udp_open, .send = udp_send,
                                     .close = udp_close};

transport *transport_create(const transport_cfg *cfg)
{
  transport *t = calloc(1, sizeof(*t));
  if (!t)
    return NULL;
  t->ops = cfg->ops;
  t->base = cfg->base;
  t->clk = cfg->clk;
  t->cbs = cfg->cbs;
  t->fd = -1;
  return t;
}

void transport_destroy(transport *t)
{
  if (!t)
    return;
  transport_close(t);
  free(t);
}

bool transport_open(transport *t, const struct sockaddr *sa, socklen_t len, char *err,
                    size_t errlen)
{
  transport_close(t);
  if (t->ops->open(t, sa, len, err, errlen))
    return true;
  transport_close(t);
  return false;
}

bool transport_send(transport *t, const uint8_t *pkt, size_t n, char *err, size_t errlen)
{
  if (t->ops->send(t, pkt, n, err, errlen))
    return true;
  transport_close(t);
  return false;
}

void transport_close(transport *t) { t->ops->close(t); }
bool transport_is_open(const transport *t) { return t->fd >= 0; }
