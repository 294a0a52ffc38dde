/* ke_child: the unprivileged NTS-KE process. */
#include "daemon/ke_child.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "daemon/keystore.h"
#include "daemon/log.h"
#include "daemon/sysclock.h"
#include "daemon/tls.h"
#include "proto/aead.h"
#include "proto/ipc_msg.h"
#include "proto/nts_cookie.h"

#define FIRST_KEY_WAIT_MS 10000
#define STATS_MIN_GAP_S 0.1 /* counters are sent at most ten times a second */
#define MSGS_PER_WAKEUP 16

typedef struct child {
  int sock;
  keystore *keys;
  ke_server *srv;
  SSL_CTX *ctx;
  struct event *rd, *stats;
  bool stats_due;  /* the stats event is pending */
  double stats_at; /* monotonic time of the last report */
} child;

static bool kept(int fd, const int *keep, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (keep[i] == fd)
      return true;
  return fd <= 2;
}

/* close_range(2) came with Linux 5.9, and the filters of some container
 * runtimes refuse it: then every descriptor that /proc/self/fd lists is
 * closed one by one.  False when neither works (nothing is known closed). */
static bool close_each(const int *keep, size_t n)
{
  DIR *d = opendir("/proc/self/fd");
  if (!d)
    return false;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    char *end;
    long fd = strtol(e->d_name, &end, 10);
    if (*end == '\0' && end != e->d_name && fd != dirfd(d) && !kept((int)fd, keep, n))
      close((int)fd);
  }
  closedir(d);
  return true;
}

/* Closes every descriptor but 0-2 and those in keep (in any order). */
static bool close_others(const int *keep, size_t n, char *err, size_t errlen)
{
  int k[KE_MAX_LISTENERS + 3];
  size_t m = 0;
  for (size_t i = 0; i < n && m < sizeof(k) / sizeof(k[0]); i++)
    if (keep[i] > 2)
      k[m++] = keep[i];
  for (size_t i = 1; i < m; i++) /* insertion sort: at most 4 */
    for (size_t j = i; j > 0 && k[j - 1] > k[j]; j--) {
      int t = k[j];
      k[j] = k[j - 1];
      k[j - 1] = t;
    }
  unsigned lo = 3;
  bool ok = true;
  for (size_t i = 0; i < m; i++) {
    if ((unsigned)k[i] > lo)
      ok = ok && close_range(lo, (unsigned)k[i] - 1, 0) == 0;
    lo = (unsigned)k[i] + 1;
  }
  ok = ok && close_range(lo, ~0u, 0) == 0;
  if (!ok)
    log_info("NTS-KE process: close_range: %s; closing descriptors one by one",
             strerror(errno));
  if (!ok && !close_each(keep, n)) {
    snprintf(err, errlen, "cannot close the inherited descriptors: %s", strerror(errno));
    return false;
  }
  return true;
}

/* No capability in any set, none to regain through exec. */
static bool drop_caps(char *err, size_t errlen)
{
  cap_t c = cap_init();
  bool ok = c && prctl(PR_SET_KEEPCAPS, 0L, 0L, 0L, 0L) == 0 && cap_set_proc(c) == 0 &&
            prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0L, 0L, 0L) == 0 &&
            prctl(PR_SET_NO_NEW_PRIVS, 1L, 0L, 0L, 0L) == 0;
  if (!ok)
    snprintf(err, errlen, "cannot drop capabilities: %s", strerror(errno));
  if (c)
    cap_free(c);
  return ok;
}

/* A stopped or hung process would outlive the main process and keep the
 * NTS-KE port from a new one; the death signal ends it with its parent.
 * Set after the capability drop, which may clear it, and checked against a
 * parent that died before it was set. */
static bool die_with(pid_t parent, char *err, size_t errlen)
{
  if (prctl(PR_SET_PDEATHSIG, (long)SIGKILL, 0L, 0L, 0L) < 0) {
    snprintf(err, errlen, "cannot set the parent-death signal: %s", strerror(errno));
    return false;
  }
  if (getppid() != parent) {
    snprintf(err, errlen, "the main process has already ended");
    return false;
  }
  return true;
}

static bool send_msg(int sock, const ipc_msg *m)
{
  uint8_t buf[IPC_MSG_MAX_LEN];
  size_t n = ipc_msg_encode(m, buf, sizeof(buf));
  return n && send(sock, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)n;
}

/* One datagram from the main process: a KEYS message or nothing.
 * Returns 1 for a message, 0 for none yet, -2 when the main process shut
 * its side (it has gone, or replaced this process), -1 to end now. */
static int read_msg(int sock, ipc_msg *m)
{
  uint8_t buf[IPC_MSG_MAX_LEN];
  ssize_t n = recv(sock, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return 0;
  if (n == 0)
    return -2;
  if (n < 0)
    return -1;
  ipc_status st = (size_t)n > sizeof(buf) ? IPC_TRAILING
                                          : ipc_msg_decode(buf, (size_t)n, IPC_FROM_MAIN, m);
  nts_wipe(buf, sizeof(buf));
  if (st != IPC_OK) {
    log_err("NTS-KE process: bad message from the main process (%s)", ipc_status_name(st));
    return -1;
  }
  return 1;
}

/* A key set holding the key of m (wiped). */
static nts_keyset *keyset_of(ipc_msg *m)
{
  nts_keyset *ks = nts_keyset_new(m->u.keys.id, m->u.keys.key, m->u.keys.created);
  nts_wipe(m, sizeof(*m));
  return ks;
}

/* Blocks (bounded) for the first key. */
static keystore *first_keys(int sock, char *err, size_t errlen)
{
  struct pollfd pfd = {.fd = sock, .events = POLLIN};
  ipc_msg m;
  int r = poll(&pfd, 1, FIRST_KEY_WAIT_MS) == 1 ? read_msg(sock, &m) : -1;
  if (r != 1) {
    snprintf(err, errlen, "no cookie key from the main process");
    return NULL;
  }
  uint32_t id = m.u.keys.id;
  nts_keyset *ks = keyset_of(&m);
  keystore *k = ks ? keystore_adopt(ks) : NULL;
  ipc_msg ack = {.type = IPC_MSG_KEYS_ACK, .u.ack_id = id};
  if (!k || !send_msg(sock, &ack)) {
    keystore_close(k);
    snprintf(err, errlen, "cannot take the first cookie key");
    return NULL;
  }
  return k;
}

static void on_main_msg(evutil_socket_t fd, short what, void *arg)
{
  child *c = arg;
  (void)what;
  for (int i = 0; i < MSGS_PER_WAKEUP; i++) {
    ipc_msg m;
    int r = read_msg(fd, &m);
    if (r == 0)
      return;
    if (r == -2) {
      /* No new connection from here on; those open finish (bounded by
       * their deadlines), and the counters still reach the main process,
       * which only shut its sending side. */
      event_del(c->rd);
      log_info("NTS-KE process %ld: finishing its open connections, then ending",
               (long)getpid());
      ke_server_drain(c->srv);
      return;
    }
    if (r < 0) {
      event_base_loopexit(ke_server_base(c->srv), NULL);
      return;
    }
    ipc_msg ack = {.type = IPC_MSG_KEYS_ACK, .u.ack_id = m.u.keys.id};
    if (ack.u.ack_id == nts_keyset_current_id(keystore_current(c->keys))) {
      nts_wipe(&m, sizeof(m)); /* the key in use again: the main process's liveness probe */
    } else {
      nts_keyset *ks = keyset_of(&m);
      if (!ks) {
        event_base_loopexit(ke_server_base(c->srv), NULL);
        return;
      }
      keystore_install(c->keys, ks);
      log_info("NTS-KE process: cookie key %08x in use", ack.u.ack_id);
    }
    send_msg(fd, &ack); /* a lost ack only postpones the main process's next rotation */
  }
}

static void on_stats(evutil_socket_t fd, short what, void *arg)
{
  child *c = arg;
  ke_server_stats st;
  (void)fd;
  (void)what;
  c->stats_due = false;
  c->stats_at = sysclock_mono();
  ke_server_get_stats(c->srv, &st);
  ipc_msg m = {.type = IPC_MSG_STATS};
  _Static_assert(sizeof(st) == sizeof(m.u.stats), "ke_server_stats is IPC_STATS_N u64");
  memcpy(m.u.stats, &st, sizeof(st));
  if (!send_msg(c->sock, &m)) { /* the main process lags: try again later */
    struct timeval tv = {.tv_sec = 0, .tv_usec = (suseconds_t)(STATS_MIN_GAP_S * 1e6)};
    c->stats_due = event_add(c->stats, &tv) == 0;
  }
}

/* An outcome changed the counters: report them once this callback is done,
 * or STATS_MIN_GAP_S after the last report. */
static void on_outcome(void *arg)
{
  child *c = arg;
  if (c->stats_due)
    return;
  double wait = c->stats_at + STATS_MIN_GAP_S - sysclock_mono();
  if (wait < 0)
    wait = 0;
  struct timeval tv = {.tv_sec = 0, .tv_usec = (suseconds_t)(wait * 1e6)};
  c->stats_due = event_add(c->stats, &tv) == 0;
}

/* The TLS context, made here from the bytes the main process read (it
 * never parses them itself), and the copy of the key's bytes this process
 * inherited wiped: the context holds the key from now on. */
static bool make_ctx(child *c, const ke_child_cfg *cfg, char *err, size_t errlen)
{
  if (!cfg->pair) {
    snprintf(err, errlen, "no certificate");
    return false;
  }
  c->ctx = tls_server_ctx_pem(cfg->pair, err, errlen);
  certpair_free(cfg->pair);
  return c->ctx != NULL;
}

/* The server and its two events on the server's loop. */
static bool serve_setup(child *c, const ke_child_cfg *cfg, char *err, size_t errlen)
{
  ke_server_cfg sc = cfg->server;
  sc.ctx = c->ctx;
  sc.keys = c->keys;
  sc.on_outcome = on_outcome;
  sc.on_outcome_arg = c;
  c->srv = ke_server_start(&sc, err, errlen);
  if (!c->srv)
    return false;
  struct event_base *b = ke_server_base(c->srv);
  c->rd = event_new(b, c->sock, EV_READ | EV_PERSIST, on_main_msg, c);
  c->stats = evtimer_new(b, on_stats, c);
  if (!c->rd || !c->stats || event_add(c->rd, NULL) < 0) {
    snprintf(err, errlen, "cannot register events");
    return false;
  }
  return true;
}

/* What the main process installed for itself goes back to the defaults,
 * except the stop signals: this process ends when the main process closes
 * the channel.  A service manager's SIGTERM to the whole group, or ^C in a
 * terminal, reaches both; were this one to die of it first, the main
 * process would log a crash and schedule a restart while stopping, and the
 * last KE summary would be lost.  SIGKILL still ends it. */
static void reset_signals(void)
{
  signal(SIGTERM, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGCHLD, SIG_DFL);
  signal(SIGPIPE, SIG_IGN);
}

void ke_child_main(const ke_child_cfg *cfg)
{
  child c = {.sock = cfg->sock};
  char err[256] = "";
  int keep[KE_MAX_LISTENERS + 3];
  size_t n = 0;
  if (cfg->forget)
    cfg->forget(cfg->forget_arg);
  reset_signals();
  closelog(); /* its descriptor goes below; syslog() reopens one itself */
  keep[n++] = cfg->sock;
  if (sandbox_log_fd() >= 0)
    keep[n++] = sandbox_log_fd(); /* the filter's refusals are logged through it */
  if (log_file_fd() >= 0)
    keep[n++] = log_file_fd(); /* `logfile`: written on, never reopened here */
  log_file_no_reopen();
  for (size_t i = 0; i < cfg->server.n_fds && i < KE_MAX_LISTENERS; i++)
    keep[n++] = cfg->server.fds[i];
  bool ok = close_others(keep, n, err, sizeof(err)) && drop_caps(err, sizeof(err)) &&
            die_with(cfg->parent, err, sizeof(err)) &&
            (c.keys = first_keys(c.sock, err, sizeof(err))) &&
            make_ctx(&c, cfg, err, sizeof(err)) && serve_setup(&c, cfg, err, sizeof(err)) &&
            sandbox_apply(SANDBOX_KE, &cfg->sandbox, err, sizeof(err));
  if (!ok) {
    log_err("NTS-KE process: %s", err);
    _exit(1);
  }
  log_info("NTS-KE process %ld serving", (long)getpid());
  on_stats(-1, 0, &c); /* the first report tells the main process it serves */
  ke_server_serve(c.srv);
  on_stats(-1, 0, &c); /* the last report: connections finished while draining */
  event_free(c.rd);
  event_free(c.stats);
  ke_server_stop(c.srv); /* logs the last summary */
  SSL_CTX_free(c.ctx);
  keystore_close(c.keys);
  _exit(0);
}
