/* server: NTP server sockets. */
#include "daemon/server.h"

#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/log.h"
#include "daemon/netaddr.h"
#include "daemon/netstamp.h"
#include "daemon/privs.h"
#include "daemon/sysclock.h"
#include "daemon/tcp_server.h"
#include "proto/ratelimit.h"

#define MAX_SOCKETS 32 /* listen addresses */
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
/* Each packet thread's stack (the default is 8 MiB). */
#define THREAD_STACK (256 * 1024)

typedef struct srv_worker srv_worker;

typedef struct srv_sock {
  int fd;
  int family;
  struct event *ev;
  char name[NETADDR_STRLEN];
  srv_worker *w; /* the packet thread that reads it */
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

/* One packet thread's request path: everything it writes per packet is
 * its own (no sharing, no lock per packet).  With `threads N` > 1 each runs
 * on a thread of its own and holds `lock` while it serves a wake-up's
 * batches; the main thread takes that lock to read the counters, to update
 * sys, and as the grace period before freeing retired cookie keys or
 * `restrict` rules (server_quiesce).  With one thread, all of it runs on
 * the main loop and the lock is not used. */
struct srv_worker {
  ntsd_server *owner;
  ntp_serve *serve;     /* the request path's state, reused */
  ntp_ratelimit *rl;    /* clients hash to one socket, so to one limiter */
  ntp_sysinfo sys;
  ntsd_server_stats stats;
  pthread_mutex_t lock;
  atomic_bool pause;    /* the main thread waits for the lock */
  pthread_t thread;
  bool running;
  struct mmsghdr rmsg[MMSG_BATCH];
  struct mmsghdr smsg[SEND_BATCH];
  mmsg_slot slot[MMSG_BATCH];
  size_t rand_left;          /* unused bytes at the end of rand_pool */
  uint8_t rand_pool[RAND_POOL];
};

struct ntsd_server {
  /* address-major: socket a of worker t is socks[a * n_threads + t] */
  srv_sock *socks;
  size_t n_socks;
  const ntp_acl *acl;
  keystore *keys;       /* NULL: NTS requests get plain answers */
  const clockctl *clk;  /* the daemon's time */
  tcp_server *tcp;      /* NTP over TCP (`listen ... tcp`), NULL if none */
  size_t n_threads;     /* packet threads; 1: on the main loop */
  /* n_threads workers, then with n_threads > 1 one more: the main loop's,
   * for NTP over TCP */
  srv_worker **w;
  size_t n_w;
  int stop_fd;          /* eventfd: readable when the threads must end */
  int priority;         /* the threads' SCHED_FIFO priority (-P), 0: none */
};

static int set_opt(int fd, int level, int name, int val)
{
  return setsockopt(fd, level, name, &val, sizeof(val));
}

/* Refuses an address another socket holds already.  With `threads`, the
 * sockets set SO_REUSEPORT, and a second daemon's could join their group
 * silently and take part of the traffic: a socket without it finds the
 * port taken, as a single socket would. */
static bool port_free(const struct sockaddr *sa, socklen_t len, const char *name, char *err,
                      size_t errlen)
{
  int fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sa->sa_family == AF_INET6)
    set_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
  bool ok = fd >= 0 && bind(fd, sa, len) == 0;
  if (!ok)
    snprintf(err, errlen, "cannot listen on %s: %s", name, strerror(errno));
  if (fd >= 0)
    close(fd);
  return ok;
}

static int bound_socket(const struct sockaddr *sa, socklen_t len, bool reuseport)
{
  int fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
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
  /* One socket per thread: the kernel hashes each client's address and
   * port to one of them, so a client always meets the same rate limiter. */
  if ((reuseport && set_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1) < 0) || bind(fd, sa, len) < 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

/* The sockets of one listen address, one per packet thread. */
static bool open_socket(ntsd_server *s, const struct sockaddr *sa, socklen_t len, char *err,
                        size_t errlen)
{
  char name[NETADDR_STRLEN];
  netaddr_str_port(sa, name, sizeof(name));
  if (s->n_socks >= MAX_SOCKETS * s->n_threads) {
    snprintf(err, errlen, "too many listen addresses (max %d)", MAX_SOCKETS);
    return false;
  }
  bool group = s->n_threads > 1;
  if (group && !port_free(sa, len, name, err, errlen))
    return false;
  struct sockaddr_storage at;
  memcpy(&at, sa, len);
  for (size_t t = 0; t < s->n_threads; t++) {
    int fd = bound_socket((struct sockaddr *)&at, len, group);
    if (fd < 0) {
      snprintf(err, errlen, "cannot listen on %s: %s", name, strerror(errno));
      while (t-- > 0) /* none of this address's, so IPv6 may be left out */
        close(s->socks[--s->n_socks].fd);
      return false;
    }
    socklen_t alen = len; /* port 0: the others join the port the first got */
    if (t == 0)
      getsockname(fd, (struct sockaddr *)&at, &alen);
    srv_sock *ss = &s->socks[s->n_socks++];
    *ss = (srv_sock){.fd = fd, .family = sa->sa_family, .w = s->w[t]};
    snprintf(ss->name, sizeof(ss->name), "%s", name);
  }
  if (group)
    log_notice("serving NTP on %s (%zu threads)", name, s->n_threads);
  else
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
static void send_replies(srv_worker *w, srv_sock *ss, unsigned n)
{
  unsigned off = 0;
  while (off < n) {
    int r = sendmmsg(ss->fd, w->smsg + off, n - off, 0);
    if (r <= 0) {
      w->stats.send_errors++;
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
  srv_worker *w = arg;
  while (len > 0) {
    if (w->rand_left == 0) {
      sysclock_random(w->rand_pool, sizeof(w->rand_pool));
      w->rand_left = sizeof(w->rand_pool);
    }
    size_t n = len < w->rand_left ? len : w->rand_left;
    uint8_t *src = w->rand_pool + sizeof(w->rand_pool) - w->rand_left;
    memcpy(buf, src, n);
    memset(src, 0, n);
    buf += n;
    len -= n;
    w->rand_left -= n;
  }
}

/* restrict and the rate limit, from the peer's address. */
static ntp_serve_admit admission(srv_worker *w, const struct sockaddr *peer)
{
  enum acl_family fam;
  uint8_t addr[16];
  if (!netaddr_to_acl(peer, &fam, addr))
    return NTP_SERVE_ADMIT_IGNORE;
  return ntp_serve_admission(w->owner->acl, w->rl, fam, addr, sysclock_mono());
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
static size_t serve_one(srv_worker *w, const uint8_t *req, size_t n, ntp_ts rx,
                        const struct sockaddr *peer, uint8_t *out, size_t cap)
{
  const ntsd_server *s = w->owner;
  w->stats.received++;
  ntp_serve_in in = {.req = req, .len = n, .rx = rx, .sys = &w->sys,
                     .admit = admission(w, peer),
                     .keys = s->keys ? keystore_current(s->keys) : NULL,
                     .rand = server_random, .rand_arg = w};
  ntp_serve_result r = ntp_serve_request(w->serve, &in, out, cap);
  size_t len = 0;
  if (ntp_serve_replies(r))
    r = ntp_serve_finish(w->serve, clockctl_now_ntp(s->clk), out, cap, &len);
  ntp_serve_count(w->serve, r, &w->stats.serve);
  if (!len)
    log_drop(peer, r);
  return len;
}

static size_t serve_tcp(void *arg, const uint8_t *req, size_t n, ntp_ts rx,
                        const struct sockaddr *peer, uint8_t *out, size_t cap)
{
  return serve_one(arg, req, n, rx, peer, out, cap);
}

/* Slot i of the batch just received: its reply prepared in w->smsg[*n_out]
 * (and *n_out counted), or a drop. */
static void handle_datagram(srv_worker *w, unsigned i, unsigned *n_out)
{
  const clockctl *clk = w->owner->clk;
  mmsg_slot *sl = &w->slot[i];
  struct msghdr *mh = &w->rmsg[i].msg_hdr;
  netstamp ns;
  netstamp_parse(mh, &ns);
  sl->rt.peer_len = mh->msg_namelen;
  sl->rt.have_pi = ns.have_dst;
  sl->rt.pi4 = ns.dst4;
  sl->rt.pi6 = ns.dst6;
  struct timespec rxts = ns.have_rx ? clockctl_local(clk, &ns.rx) : clockctl_now(clk);
  ntp_ts rx = ntp_ts_from_timespec(&rxts);
  if (mh->msg_flags & MSG_TRUNC) {
    w->stats.received++;
    w->stats.serve.result[NTP_SERVE_DROP_MALFORMED]++;
    return;
  }
  size_t len = serve_one(w, sl->rx, w->rmsg[i].msg_len, rx,
                         (const struct sockaddr *)&sl->rt.peer, sl->tx, sizeof(sl->tx));
  if (len)
    reply_msg(sl, len, &w->smsg[(*n_out)++].msg_hdr);
}

/* Resets the receive headers of the batch (recvmmsg rewrites the lengths). */
static void arm_batch(srv_worker *w, unsigned n)
{
  for (unsigned i = 0; i < n; i++) {
    mmsg_slot *sl = &w->slot[i];
    sl->rx_iov = (struct iovec){.iov_base = sl->rx, .iov_len = sizeof(sl->rx)};
    w->rmsg[i].msg_hdr = (struct msghdr){.msg_name = &sl->rt.peer,
                                         .msg_namelen = sizeof(sl->rt.peer),
                                         .msg_iov = &sl->rx_iov, .msg_iovlen = 1,
                                         .msg_control = sl->rx_cb,
                                         .msg_controllen = sizeof(sl->rx_cb)};
  }
}

/* What is queued on ss, up to RECV_ROUNDS batches. */
static void serve_socket(srv_sock *ss)
{
  srv_worker *w = ss->w;
  for (int round = 0; round < RECV_ROUNDS; round++) {
    arm_batch(w, MMSG_BATCH);
    int n = recvmmsg(ss->fd, w->rmsg, MMSG_BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0)
      break; /* EAGAIN, or an ICMP error for an earlier send: nothing to do */
    unsigned n_out = 0;
    for (unsigned i = 0; i < (unsigned)n; i++) {
      handle_datagram(w, i, &n_out);
      if (n_out == SEND_BATCH) {
        send_replies(w, ss, n_out);
        n_out = 0;
      }
    }
    send_replies(w, ss, n_out);
    if (n < MMSG_BATCH)
      break;
  }
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  serve_socket(arg);
}

/* NTP over TCP on the address and port of a `listen ... tcp` line. */
static bool open_tcp(ntsd_server *s, const server_cfg *cfg, const struct sockaddr *sa,
                     socklen_t len, char *err, size_t errlen)
{
  if (!s->tcp) {
    tcp_server_cfg tc = {.base = cfg->base, .acl = cfg->acl, .clk = cfg->clk,
                         .answer = serve_tcp, .answer_arg = s->w[s->n_w - 1]};
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
    if (!open_socket(s, (struct sockaddr *)&ss, len, err, errlen))
      return false;
    netaddr_parse("::", NTP_PORT, &ss, &len);
    char e6[256];
    if (!open_socket(s, (struct sockaddr *)&ss, len, e6, sizeof(e6)))
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
    if (!open_socket(s, (struct sockaddr *)&ss, len, err, errlen))
      return false;
    if (l->tcp && !open_tcp(s, cfg, (struct sockaddr *)&ss, len, err, errlen))
      return false;
  }
  return true;
}

/* With one thread the sockets are read on the main loop. */
static bool register_sockets(ntsd_server *s, struct event_base *base, char *err,
                             size_t errlen)
{
  for (size_t i = 0; s->n_threads == 1 && i < s->n_socks; i++) {
    srv_sock *ss = &s->socks[i];
    ss->ev = event_new(base, ss->fd, EV_READ | EV_PERSIST, on_readable, ss);
    if (!ss->ev || event_add(ss->ev, NULL) < 0) {
      snprintf(err, errlen, "cannot register socket %s", ss->name);
      return false;
    }
  }
  return true;
}

static srv_worker *worker_create(ntsd_server *s, const server_cfg *cfg)
{
  srv_worker *w = calloc(1, sizeof(*w));
  if (!w)
    return NULL;
  w->owner = s;
  pthread_mutex_init(&w->lock, NULL);
  uint8_t key[16];
  sysclock_random(key, sizeof(key));
  double average = (double)(1u << (cfg->discard_average & 31));
  w->rl = ntp_rl_create(RL_SLOTS, average, (double)cfg->discard_minimum, RL_BURST, key);
  w->serve = ntp_serve_create();
  w->sys.leap = NTP_LEAP_UNSYNC;
  w->sys.stratum = NTP_MAX_STRATUM;
  w->sys.precision = (int8_t)cfg->precision_log2;
  return w;
}

static void worker_destroy(srv_worker *w)
{
  if (!w)
    return;
  ntp_rl_destroy(w->rl);
  ntp_serve_destroy(w->serve);
  pthread_mutex_destroy(&w->lock);
  nts_wipe(w->rand_pool, sizeof(w->rand_pool));
  free(w);
}

static bool create_workers(ntsd_server *s, const server_cfg *cfg)
{
  s->n_threads = cfg->threads > 1 ? (size_t)cfg->threads : 1;
  s->n_w = s->n_threads + (s->n_threads > 1);
  s->w = calloc(s->n_w, sizeof(*s->w));
  s->socks = calloc(MAX_SOCKETS * s->n_threads, sizeof(*s->socks));
  if (!s->w || !s->socks)
    return false;
  for (size_t i = 0; i < s->n_w; i++)
    if (!(s->w[i] = worker_create(s, cfg)) || !s->w[i]->rl || !s->w[i]->serve)
      return false;
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
  s->stop_fd = -1;
  if (!create_workers(s, cfg)) {
    snprintf(err, errlen, "out of memory");
    server_destroy(s);
    return NULL;
  }
  if (s->n_threads > 1 && (s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
    snprintf(err, errlen, "eventfd: %s", strerror(errno));
    server_destroy(s);
    return NULL;
  }
  if (!open_configured(s, cfg, err, errlen) || !register_sockets(s, cfg->base, err, errlen)) {
    server_destroy(s);
    return NULL;
  }
  return s;
}

/* ---- packet threads (`threads N` > 1) ---- */

/* Takes w's lock between two of its wake-ups: from then until
 * worker_release, w holds no cookie key set or `restrict` rule and writes
 * no counter.  The flag makes w step aside at its next wake-up, so a
 * thread that is never idle does not starve the main thread. */
static void worker_hold(srv_worker *w)
{
  atomic_store(&w->pause, true);
  pthread_mutex_lock(&w->lock);
}

static void worker_release(srv_worker *w)
{
  pthread_mutex_unlock(&w->lock);
  atomic_store(&w->pause, false);
}

/* One wake-up: every socket of w with requests queued, under w's lock. */
static void worker_serve(srv_worker *w, const struct pollfd *pfd, srv_sock **socks, size_t n)
{
  while (atomic_load_explicit(&w->pause, memory_order_relaxed))
    sched_yield();
  pthread_mutex_lock(&w->lock);
  for (size_t i = 0; i < n; i++)
    if (pfd[i].revents)
      serve_socket(socks[i]);
  pthread_mutex_unlock(&w->lock);
}

static void *worker_main(void *arg)
{
  srv_worker *w = arg;
  ntsd_server *s = w->owner;
  struct pollfd pfd[MAX_SOCKETS + 1];
  srv_sock *socks[MAX_SOCKETS];
  size_t n = 0;
  for (size_t i = 0; i < s->n_socks; i++)
    if (s->socks[i].w == w) {
      socks[n] = &s->socks[i];
      pfd[n++] = (struct pollfd){.fd = s->socks[i].fd, .events = POLLIN};
    }
  pfd[n] = (struct pollfd){.fd = s->stop_fd, .events = POLLIN};
  for (;;) {
    if (poll(pfd, n + 1, -1) < 0) {
      if (errno == EINTR)
        continue;
      /* its sockets stay in their SO_REUSEPORT group: never leave their
       * share of the clients unanswered */
      log_err("NTP server thread: poll: %s; stopping the daemon", strerror(errno));
      kill(getpid(), SIGTERM);
      break;
    }
    if (pfd[n].revents)
      break;
    worker_serve(w, pfd, socks, n);
  }
  return NULL;
}

/* Threads are started once the daemon runs as its user with its filter
 * loaded: they inherit the filter, and then drop any capability the main
 * thread keeps (capabilities are per thread).  Signals stay with the main
 * thread's loop. */
static void *worker_start(void *arg)
{
  if (!privs_drop_thread(((srv_worker *)arg)->owner->priority)) {
    /* never serve with them, nor leave a share of the clients unserved */
    log_err("NTP server thread: cannot drop capabilities; stopping the daemon");
    kill(getpid(), SIGTERM);
    return NULL;
  }
  return worker_main(arg);
}

/* What the threads block: every signal but those a fault raises in the
 * thread itself.  A blocked SIGSYS would make the kernel kill the process
 * without the filter's handler (no log line, core dumps not turned off). */
static void thread_sigmask(sigset_t *set)
{
  static const int faults[] = {SIGSYS, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP};
  sigfillset(set);
  for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++)
    sigdelset(set, faults[i]);
}

bool server_start(ntsd_server *s, int priority, char *err, size_t errlen)
{
  if (s->n_threads == 1 || s->n_socks == 0) /* `interface ignore all`: nothing to read */
    return true;
  s->priority = priority;
  sigset_t all, old;
  thread_sigmask(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  /* A small stack: the batch buffers are on the heap, and with -m
   * (mlockall, MCL_FUTURE) a thread's whole stack is locked. */
  pthread_attr_t attr;
  int rc = pthread_attr_init(&attr);
  bool have_attr = rc == 0;
  if (rc == 0)
    rc = pthread_attr_setstacksize(&attr, THREAD_STACK);
  for (size_t i = 0; i < s->n_threads && rc == 0; i++) {
    rc = pthread_create(&s->w[i]->thread, &attr, worker_start, s->w[i]);
    s->w[i]->running = rc == 0;
    char name[16]; /* for top -H and each task's comm; set from here, as a
                      thread naming itself would need prctl */
    snprintf(name, sizeof(name), "ntsd-ntp%u", (unsigned)(i % 100)); /* i < 64 */
    if (rc == 0)
      pthread_setname_np(s->w[i]->thread, name);
  }
  if (have_attr)
    pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    snprintf(err, errlen, "cannot start the NTP server threads: %s", strerror(rc));
    return false;
  }
  log_info("NTP server: %zu threads", s->n_threads);
  return true;
}

static void stop_workers(ntsd_server *s)
{
  uint64_t one = 1;
  if (s->stop_fd >= 0 && write(s->stop_fd, &one, sizeof(one)) < 0)
    log_err("cannot stop the NTP server threads: %s", strerror(errno));
  for (size_t i = 0; i < s->n_w; i++)
    if (s->w[i] && s->w[i]->running)
      pthread_join(s->w[i]->thread, NULL);
}

void server_pause(ntsd_server *s)
{
  for (size_t i = 0; i < s->n_w; i++)
    if (s->w[i]->running)
      worker_hold(s->w[i]);
}

void server_resume(ntsd_server *s)
{
  for (size_t i = 0; i < s->n_w; i++)
    if (s->w[i]->running)
      worker_release(s->w[i]);
}

void server_quiesce(void *arg)
{
  server_pause(arg);
  server_resume(arg);
}

void server_destroy(ntsd_server *s)
{
  if (!s)
    return;
  if (s->w)
    stop_workers(s);
  for (size_t i = 0; i < s->n_socks; i++) {
    if (s->socks[i].ev)
      event_free(s->socks[i].ev);
    close(s->socks[i].fd);
  }
  tcp_server_destroy(s->tcp);
  for (size_t i = 0; s->w && i < s->n_w; i++)
    worker_destroy(s->w[i]);
  if (s->stop_fd >= 0)
    close(s->stop_fd);
  free(s->w);
  free(s->socks);
  free(s);
}

void server_set_sysinfo(ntsd_server *s, const ntp_sysinfo *sys)
{
  for (size_t i = 0; i < s->n_w; i++) {
    bool held = s->w[i]->running;
    if (held)
      worker_hold(s->w[i]);
    s->w[i]->sys = *sys;
    if (held)
      worker_release(s->w[i]);
  }
}

static void add_stats(ntsd_server_stats *to, const ntsd_server_stats *from)
{
  to->received += from->received;
  to->send_errors += from->send_errors;
  const ntp_serve_counters *f = &from->serve;
  ntp_serve_counters *c = &to->serve;
  for (size_t i = 0; i < NTP_SERVE_RESULT_COUNT; i++)
    c->result[i] += f->result[i];
  for (size_t i = 0; i < NTS_COOKIE_RESULT_COUNT; i++)
    c->cookies[i] += f->cookies[i];
  for (size_t i = 0; i < NTS_NTP_WHY_COUNT; i++)
    c->nts_why[i] += f->nts_why[i];
  c->cookies_made += f->cookies_made;
}

size_t server_thread_count(const ntsd_server *s) { return s->n_threads; }

void server_get_thread_stats(const ntsd_server *s, size_t i, ntsd_server_stats *out)
{
  *out = (ntsd_server_stats){0};
  if (i >= s->n_w)
    return;
  srv_worker *w = s->w[i];
  if (w->running)
    worker_hold(w);
  add_stats(out, &w->stats);
  if (w->running)
    worker_release(w);
}

void server_get_stats(const ntsd_server *s, ntsd_server_stats *out)
{
  *out = (ntsd_server_stats){0};
  for (size_t i = 0; i < s->n_w; i++) {
    ntsd_server_stats one;
    server_get_thread_stats(s, i, &one);
    add_stats(out, &one);
  }
  if (s->tcp)
    tcp_server_get_stats(s->tcp, &out->tcp);
}
const tcp_server *server_tcp(const ntsd_server *s) { return s->tcp; }
size_t server_socket_count(const ntsd_server *s) { return s->n_socks / s->n_threads; }
const char *server_socket_name(const ntsd_server *s, size_t i)
{
  return i < server_socket_count(s) ? s->socks[i * s->n_threads].name : "";
}
