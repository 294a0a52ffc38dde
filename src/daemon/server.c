/* server: NTP server sockets. */
#include "daemon/server.h"

#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/log.h"
#include "daemon/netaddr.h"
#include "daemon/netstamp.h"
#include "daemon/sysclock.h"
#include "daemon/tcp_server.h"
#include "proto/ratelimit.h"

#define MAX_SOCKETS 32
/* Datagrams per recvmmsg, and recvmmsg calls per wake-up before yielding to
 * the loop.  The replies to one batch leave in one sendmmsg, so a reply
 * waits for the rest of its batch to be answered: at a few microseconds
 * each, SEND_BATCH bounds that wait (and the transmit timestamp's lag). */
#define MMSG_BATCH 32
#define RECV_ROUNDS 2
#define SEND_BATCH 8
/* Random bytes drawn from getrandom at a time: each authentic NTS request
 * takes NTS_NTP_SERVER_RAND_LEN (144), so one call serves some 56. */
#define RAND_POOL 8192
/* Requested receive buffer: a burst of requests at line rate is queued
 * rather than dropped while the previous batch is answered. */
#define RCVBUF_BYTES (4 << 20)
#define RL_SLOTS 16384
#define RL_BURST 8

typedef struct srv_sock {
  int fd;
  int family;
  struct event *ev;
  char name[NETADDR_STRLEN];
  ntsd_server *owner;
} srv_sock;

/* Where a reply goes and which local address it leaves from. */
typedef struct reply_to {
  struct sockaddr_storage peer;
  socklen_t peer_len;
  int have_pi; /* 0, 4 or 6 */
  struct in_pktinfo pi4;
  struct in6_pktinfo pi6;
} reply_to;

/* One datagram of a batch: the request, its reply and where it goes. */
typedef struct mmsg_slot {
  uint8_t rx[NTP_MAX_PKT];
  uint8_t tx[NTP_MAX_PKT];
  reply_to rt;
  struct iovec rx_iov, tx_iov;
  _Alignas(struct cmsghdr) char rx_cb[NETSTAMP_CMSG_SPACE];
  /* >= CMSG_SPACE(sizeof(struct in6_pktinfo)), 40 on LP64 */
  _Alignas(struct cmsghdr) char tx_cb[64];
} mmsg_slot;

struct ntsd_server {
  srv_sock socks[MAX_SOCKETS];
  size_t n_socks;
  const ntp_acl *acl;
  keystore *keys;       /* NULL: NTS requests get plain answers */
  const clockctl *clk;  /* the daemon's time */
  ntp_serve *serve;     /* the request path's state, reused */
  ntp_ratelimit *rl;
  ntp_sysinfo sys;
  tcp_server *tcp;      /* NTP over TCP (`listen ... tcp`), NULL if none */
  ntsd_server_stats stats;
  struct mmsghdr rmsg[MMSG_BATCH];
  struct mmsghdr smsg[SEND_BATCH];
  mmsg_slot slot[MMSG_BATCH];
  size_t rand_left;          /* unused bytes at the end of rand_pool */
  uint8_t rand_pool[RAND_POOL];
};

static int set_opt(int fd, int level, int name, int val)
{
  return setsockopt(fd, level, name, &val, sizeof(val));
}

static bool open_socket(ntsd_server *s, struct event_base *base, const struct sockaddr *sa,
                        socklen_t len, char *err, size_t errlen)
{
  char name[NETADDR_STRLEN];
  netaddr_str_port(sa, name, sizeof(name));
  if (s->n_socks >= MAX_SOCKETS) {
    snprintf(err, errlen, "too many listen addresses (max %d)", MAX_SOCKETS);
    return false;
  }
  int fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(err, errlen, "socket for %s: %s", name, strerror(errno));
    return false;
  }
  /* No SO_REUSEADDR: on UDP it would let a second daemon bind the same
   * port silently and steal the traffic. */
  netstamp_enable(fd, false);
  /* FORCE passes net.core.rmem_max where the capability allows (before
   * privileges are dropped); otherwise the kernel caps the plain request. */
  if (set_opt(fd, SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF_BYTES) < 0)
    set_opt(fd, SOL_SOCKET, SO_RCVBUF, RCVBUF_BYTES);
  if (sa->sa_family == AF_INET6) {
    set_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    set_opt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
  } else {
    set_opt(fd, IPPROTO_IP, IP_PKTINFO, 1);
  }
  if (bind(fd, sa, len) < 0) {
    snprintf(err, errlen, "cannot listen on %s: %s", name, strerror(errno));
    close(fd);
    return false;
  }
  srv_sock *ss = &s->socks[s->n_socks];
  ss->fd = fd;
  ss->family = sa->sa_family;
  ss->owner = s;
  snprintf(ss->name, sizeof(ss->name), "%s", name);
  s->n_socks++;
  (void)base;
  log_notice("serving NTP on %s", name);
  return true;
}

/* A reply from the address the request came to, so a wildcard socket on a
 * multi-homed host answers from the right address: fills mh. */
static void reply_msg(mmsg_slot *sl, size_t len, struct msghdr *mh)
{
  const reply_to *rt = &sl->rt;
  sl->tx_iov = (struct iovec){.iov_base = sl->tx, .iov_len = len};
  *mh = (struct msghdr){.msg_name = (void *)&rt->peer, .msg_namelen = rt->peer_len,
                        .msg_iov = &sl->tx_iov, .msg_iovlen = 1};
  memset(&sl->tx_cb, 0, sizeof(sl->tx_cb));
  if (rt->have_pi == 4) {
    struct in_pktinfo out = {0};
    out.ipi_spec_dst = rt->pi4.ipi_addr;
    mh->msg_control = sl->tx_cb;
    mh->msg_controllen = CMSG_SPACE(sizeof(out));
    struct cmsghdr *c = CMSG_FIRSTHDR(mh);
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(out));
    memcpy(CMSG_DATA(c), &out, sizeof(out));
  } else if (rt->have_pi == 6) {
    struct in6_pktinfo out = {0};
    out.ipi6_addr = rt->pi6.ipi6_addr;
    out.ipi6_ifindex = rt->pi6.ipi6_ifindex;
    mh->msg_control = sl->tx_cb;
    mh->msg_controllen = CMSG_SPACE(sizeof(out));
    struct cmsghdr *c = CMSG_FIRSTHDR(mh);
    c->cmsg_level = IPPROTO_IPV6;
    c->cmsg_type = IPV6_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(out));
    memcpy(CMSG_DATA(c), &out, sizeof(out));
  }
}

/* The prepared replies in one sendmmsg; a datagram the kernel refuses is
 * counted and skipped, the rest still go. */
static void send_replies(ntsd_server *s, srv_sock *ss, unsigned n)
{
  unsigned off = 0;
  while (off < n) {
    int r = sendmmsg(ss->fd, s->smsg + off, n - off, 0);
    if (r <= 0) {
      s->stats.send_errors++;
      off++;
    } else {
      off += (unsigned)r;
    }
  }
}

/* Nonces for responses and cookies (they travel in the clear, and AES-SIV
 * needs them only unique): from a pool refilled by one getrandom, not one
 * system call per request.  Bytes handed out are wiped from the pool. */
static void server_random(void *arg, uint8_t *buf, size_t len)
{
  ntsd_server *s = arg;
  while (len > 0) {
    if (s->rand_left == 0) {
      sysclock_random(s->rand_pool, sizeof(s->rand_pool));
      s->rand_left = sizeof(s->rand_pool);
    }
    size_t n = len < s->rand_left ? len : s->rand_left;
    uint8_t *src = s->rand_pool + sizeof(s->rand_pool) - s->rand_left;
    memcpy(buf, src, n);
    memset(src, 0, n);
    buf += n;
    len -= n;
    s->rand_left -= n;
  }
}

/* restrict and the rate limit, from the peer's address. */
static ntp_serve_admit admission(ntsd_server *s, const struct sockaddr *peer)
{
  enum acl_family fam;
  uint8_t addr[16];
  if (!netaddr_to_acl(peer, &fam, addr))
    return NTP_SERVE_ADMIT_IGNORE;
  return ntp_serve_admission(s->acl, s->rl, fam, addr, sysclock_mono());
}

static void log_drop(const struct sockaddr *peer, ntp_serve_result r)
{
  if (!log_enabled(LOG_LVL_DEBUG))
    return;
  char a[NETADDR_STRLEN];
  log_debug("NTP request from %s dropped: %s", netaddr_str_port(peer, a, sizeof(a)),
            ntp_serve_result_name(r));
}

/* One request, whatever carried it (a datagram, a TCP frame): proto/ntp_serve
 * decides; this reads the transmit time between its phases, last, so the
 * caller sends what it built at once.  Returns the response's length in
 * out, 0 for a drop. */
static size_t serve_one(ntsd_server *s, const uint8_t *req, size_t n, ntp_ts rx,
                        const struct sockaddr *peer, uint8_t *out, size_t cap)
{
  s->stats.received++;
  ntp_serve_in in = {.req = req, .len = n, .rx = rx, .sys = &s->sys,
                     .admit = admission(s, peer),
                     .keys = s->keys ? keystore_current(s->keys) : NULL,
                     .rand = server_random, .rand_arg = s};
  ntp_serve_result r = ntp_serve_request(s->serve, &in, out, cap);
  size_t len = 0;
  if (ntp_serve_replies(r))
    r = ntp_serve_finish(s->serve, clockctl_now_ntp(s->clk), out, cap, &len);
  ntp_serve_count(s->serve, r, &s->stats.serve);
  if (!len)
    log_drop(peer, r);
  return len;
}

static size_t serve_tcp(void *arg, const uint8_t *req, size_t n, ntp_ts rx,
                        const struct sockaddr *peer, uint8_t *out, size_t cap)
{
  return serve_one(arg, req, n, rx, peer, out, cap);
}

/* Slot i of the batch just received: its reply prepared in s->smsg[*n_out]
 * (and *n_out counted), or a drop. */
static void handle_datagram(ntsd_server *s, unsigned i, unsigned *n_out)
{
  mmsg_slot *sl = &s->slot[i];
  struct msghdr *mh = &s->rmsg[i].msg_hdr;
  netstamp ns;
  netstamp_parse(mh, &ns);
  sl->rt.peer_len = mh->msg_namelen;
  sl->rt.have_pi = ns.have_dst;
  sl->rt.pi4 = ns.dst4;
  sl->rt.pi6 = ns.dst6;
  struct timespec rxts = ns.have_rx ? clockctl_local(s->clk, &ns.rx) : clockctl_now(s->clk);
  ntp_ts rx = ntp_ts_from_timespec(&rxts);
  if (mh->msg_flags & MSG_TRUNC) {
    s->stats.received++;
    s->stats.serve.result[NTP_SERVE_DROP_MALFORMED]++;
    return;
  }
  size_t len = serve_one(s, sl->rx, s->rmsg[i].msg_len, rx,
                         (const struct sockaddr *)&sl->rt.peer, sl->tx, sizeof(sl->tx));
  if (len)
    reply_msg(sl, len, &s->smsg[(*n_out)++].msg_hdr);
}

/* Resets the receive headers of the batch (recvmmsg rewrites the lengths). */
static void arm_batch(ntsd_server *s, unsigned n)
{
  for (unsigned i = 0; i < n; i++) {
    mmsg_slot *sl = &s->slot[i];
    sl->rx_iov = (struct iovec){.iov_base = sl->rx, .iov_len = sizeof(sl->rx)};
    s->rmsg[i].msg_hdr = (struct msghdr){.msg_name = &sl->rt.peer,
                                         .msg_namelen = sizeof(sl->rt.peer),
                                         .msg_iov = &sl->rx_iov, .msg_iovlen = 1,
                                         .msg_control = sl->rx_cb,
                                         .msg_controllen = sizeof(sl->rx_cb)};
  }
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
  srv_sock *ss = arg;
  ntsd_server *s = ss->owner;
  (void)what;
  for (int round = 0; round < RECV_ROUNDS; round++) {
    arm_batch(s, MMSG_BATCH);
    int n = recvmmsg(fd, s->rmsg, MMSG_BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0)
      break; /* EAGAIN, or an ICMP error for an earlier send: nothing to do */
    unsigned n_out = 0;
    for (unsigned i = 0; i < (unsigned)n; i++) {
      handle_datagram(s, i, &n_out);
      if (n_out == SEND_BATCH) {
        send_replies(s, ss, n_out);
        n_out = 0;
      }
    }
    send_replies(s, ss, n_out);
    if (n < MMSG_BATCH)
      break;
  }
}

/* NTP over TCP on the address and port of a `listen ... tcp` line. */
static bool open_tcp(ntsd_server *s, const server_cfg *cfg, const struct sockaddr *sa,
                     socklen_t len, char *err, size_t errlen)
{
  if (!s->tcp) {
    tcp_server_cfg tc = {.base = cfg->base, .acl = cfg->acl, .clk = cfg->clk,
                         .answer = serve_tcp, .answer_arg = s};
    s->tcp = tcp_server_create(&tc, err, errlen);
    if (!s->tcp)
      return false;
  }
  return tcp_server_listen(s->tcp, sa, len, err, errlen);
}

static bool open_configured(ntsd_server *s, const server_cfg *cfg, char *err, size_t errlen)
{
  struct sockaddr_storage ss;
  socklen_t len;
  if (cfg->no_sockets)
    return true;
  if (cfg->n_listens == 0) {
    /* Like NTPsec: the wildcard addresses on port 123.  A host without
     * IPv6 just gets IPv4. */
    netaddr_parse("0.0.0.0", NTP_PORT, &ss, &len);
    if (!open_socket(s, cfg->base, (struct sockaddr *)&ss, len, err, errlen))
      return false;
    netaddr_parse("::", NTP_PORT, &ss, &len);
    char e6[256];
    if (!open_socket(s, cfg->base, (struct sockaddr *)&ss, len, e6, sizeof(e6)))
      log_warn("%s (continuing with IPv4 only)", e6);
    return true;
  }
  for (size_t i = 0; i < cfg->n_listens; i++) {
    const conf_listen *l = &cfg->listens[i];
    uint16_t port = l->port ? l->port : NTP_PORT;
    if (!netaddr_parse(l->addr, port, &ss, &len)) {
      snprintf(err, errlen, "bad listen address '%s'", l->addr);
      return false;
    }
    if (!open_socket(s, cfg->base, (struct sockaddr *)&ss, len, err, errlen))
      return false;
    if (l->tcp && !open_tcp(s, cfg, (struct sockaddr *)&ss, len, err, errlen))
      return false;
  }
  return true;
}

static bool register_sockets(ntsd_server *s, struct event_base *base, char *err,
                             size_t errlen)
{
  for (size_t i = 0; i < s->n_socks; i++) {
    srv_sock *ss = &s->socks[i];
    ss->ev = event_new(base, ss->fd, EV_READ | EV_PERSIST, on_readable, ss);
    if (!ss->ev || event_add(ss->ev, NULL) < 0) {
      snprintf(err, errlen, "cannot register socket %s", ss->name);
      return false;
    }
  }
  return true;
}

ntsd_server *server_create(const server_cfg *cfg, char *err, size_t errlen)
{
  ntsd_server *s = calloc(1, sizeof(*s));
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  s->acl = cfg->acl;
  s->keys = cfg->keys;
  s->clk = cfg->clk;
  uint8_t key[16];
  sysclock_random(key, sizeof(key));
  double average = (double)(1u << (cfg->discard_average & 31));
  s->rl = ntp_rl_create(RL_SLOTS, average, (double)cfg->discard_minimum, RL_BURST, key);
  s->serve = ntp_serve_create();
  s->sys.leap = NTP_LEAP_UNSYNC;
  s->sys.stratum = NTP_MAX_STRATUM;
  s->sys.precision = (int8_t)cfg->precision_log2;
  if (!s->rl || !s->serve) {
    snprintf(err, errlen, "out of memory");
    server_destroy(s);
    return NULL;
  }
  if (!open_configured(s, cfg, err, errlen) || !register_sockets(s, cfg->base, err, errlen)) {
    server_destroy(s);
    return NULL;
  }
  return s;
}

void server_destroy(ntsd_server *s)
{
  if (!s)
    return;
  for (size_t i = 0; i < s->n_socks; i++) {
    if (s->socks[i].ev)
      event_free(s->socks[i].ev);
    close(s->socks[i].fd);
  }
  tcp_server_destroy(s->tcp);
  ntp_rl_destroy(s->rl);
  ntp_serve_destroy(s->serve);
  free(s);
}

void server_set_sysinfo(ntsd_server *s, const ntp_sysinfo *sys) { s->sys = *sys; }
void server_get_stats(const ntsd_server *s, ntsd_server_stats *out)
{
  *out = s->stats;
  if (s->tcp)
    tcp_server_get_stats(s->tcp, &out->tcp);
}
const tcp_server *server_tcp(const ntsd_server *s) { return s->tcp; }
size_t server_socket_count(const ntsd_server *s) { return s->n_socks; }
const char *server_socket_name(const ntsd_server *s, size_t i)
{
  return i < s->n_socks ? s->socks[i].name : "";
}
