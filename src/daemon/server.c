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
#define RECV_BATCH 64 /* datagrams per wake-up before yielding to the loop */
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
  uint8_t rx[NTP_MAX_PKT];
  uint8_t tx[NTP_MAX_PKT];
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

/* Sends from the address the request came to, so a wildcard socket on a
 * multi-homed host answers from the right address. */
static void send_reply(ntsd_server *s, srv_sock *ss, const uint8_t *buf, size_t len,
                       const reply_to *rt)
{
  const struct sockaddr_storage *peer = &rt->peer;
  socklen_t peer_len = rt->peer_len;
  int have_pi = rt->have_pi;
  const struct in_pktinfo *pi4 = &rt->pi4;
  const struct in6_pktinfo *pi6 = &rt->pi6;
  struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
  union {
    char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
    struct cmsghdr align;
  } cb;
  struct msghdr mh = {.msg_name = (void *)peer, .msg_namelen = peer_len, .msg_iov = &iov,
                      .msg_iovlen = 1};
  memset(&cb, 0, sizeof(cb));
  if (have_pi == 4) {
    struct in_pktinfo out = {0};
    out.ipi_spec_dst = pi4->ipi_addr;
    mh.msg_control = cb.buf;
    mh.msg_controllen = CMSG_SPACE(sizeof(out));
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(out));
    memcpy(CMSG_DATA(c), &out, sizeof(out));
  } else if (have_pi == 6) {
    struct in6_pktinfo out = {0};
    out.ipi6_addr = pi6->ipi6_addr;
    out.ipi6_ifindex = pi6->ipi6_ifindex;
    mh.msg_control = cb.buf;
    mh.msg_controllen = CMSG_SPACE(sizeof(out));
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = IPPROTO_IPV6;
    c->cmsg_type = IPV6_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(out));
    memcpy(CMSG_DATA(c), &out, sizeof(out));
  }
  if (sendmsg(ss->fd, &mh, 0) < 0)
    s->stats.send_errors++;
}

static void server_random(void *arg, uint8_t *buf, size_t len)
{
  (void)arg;
  sysclock_random(buf, len);
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
                     .rand = server_random};
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

static void handle_datagram(ntsd_server *s, srv_sock *ss, size_t n, ntp_ts rx,
                            const reply_to *rt)
{
  size_t len = serve_one(s, s->rx, n, rx, (const struct sockaddr *)&rt->peer, s->tx,
                         sizeof(s->tx));
  if (len)
    send_reply(s, ss, s->tx, len, rt);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
  srv_sock *ss = arg;
  ntsd_server *s = ss->owner;
  (void)what;
  for (int i = 0; i < RECV_BATCH; i++) {
    reply_to rt = {0};
    union {
      char buf[NETSTAMP_CMSG_SPACE];
      struct cmsghdr align;
    } cb;
    struct iovec iov = {.iov_base = s->rx, .iov_len = sizeof(s->rx)};
    struct msghdr mh = {.msg_name = &rt.peer, .msg_namelen = sizeof(rt.peer), .msg_iov = &iov,
                        .msg_iovlen = 1, .msg_control = cb.buf,
                        .msg_controllen = sizeof(cb.buf)};
    ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
    if (n < 0)
      break; /* EAGAIN, or an ICMP error for an earlier send: nothing to do */
    netstamp ns;
    netstamp_parse(&mh, &ns);
    rt.peer_len = mh.msg_namelen;
    rt.have_pi = ns.have_dst;
    rt.pi4 = ns.dst4;
    rt.pi6 = ns.dst6;
    struct timespec rxts = ns.have_rx ? clockctl_local(s->clk, &ns.rx) : clockctl_now(s->clk);
    ntp_ts rx = ntp_ts_from_timespec(&rxts);
    if (mh.msg_flags & MSG_TRUNC) {
      s->stats.received++;
      s->stats.serve.result[NTP_SERVE_DROP_MALFORMED]++;
      continue;
    }
    handle_datagram(s, ss, (size_t)n, rx, &rt);
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
