/* ke_proc: supervises the NTS-KE process from the main process. */
#include "daemon/ke_proc.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/ke_child.h"
#include "daemon/log.h"
#include "daemon/netaddr.h"
#include "daemon/sysclock.h"
#include "proto/aead.h"
#include "proto/ipc_msg.h"
#include "proto/ke_keygate.h"
#include "proto/nts_cookie.h"
#include "proto/wire.h"

#define BACKOFF_MAX_S 64
#define STABLE_S 60.0       /* a process that lived this long restarts after 1 s */
#define MSGS_PER_WAKEUP 16  /* a flood from the KE process cannot starve NTP */
#define STOP_WAIT_MS 1000
#define OLDS_PER_WORKER 4   /* replaced processes finishing their connections */
#define OLD_MAX (OLDS_PER_WORKER * KE_PROC_MAX)
#define DRAIN_LIMIT_S 10    /* one that has not ended by then is killed */

/* A replaced KE process (ke_proc_replace): it serves until its successor
 * does, then finishes its open connections and ends. */
typedef struct ke_old {
  ke_proc *p;
  unsigned slot;          /* the worker it was running for */
  uint32_t key;           /* the newest key it may seal with (it gets no more) */
  pid_t pid;              /* 0: slot free */
  int sock;
  struct event *rd, *limit;
  bool shut;              /* told to finish (our side of its socket shut) */
  ke_server_stats last;   /* its last report */
} ke_old;
/* A process that stops running its loop (a livelock, a deadlock, SIGSTOP)
 * keeps its socket open, so EOF never comes: it is sent its key again
 * every PROBE_S and must acknowledge within ANSWER_S, or it is ended. */
#define PROBE_S 5
#define ANSWER_S 10.0

/* One of the `ntsprocesses` slots: the process running in it, restarted in
 * it when it ends, and what it acknowledged. */
typedef struct ke_worker {
  ke_proc *p;
  pid_t pid;              /* 0: none running */
  int sock;               /* to the running process, -1 */
  struct event *rd, *restart;
  double started;         /* monotonic */
  bool waiting;           /* sent_id is not acknowledged yet ... */
  double asked;           /* ... since then (monotonic) */
  unsigned backoff;       /* seconds before the next restart */
  uint32_t sent_id;       /* the key last sent to the running process */
  uint32_t ack_floor;     /* the oldest key it may still acknowledge */
  bool serving;           /* the running process has reported */
  ke_keygate *gate;       /* this slot's acknowledgements */
  ke_server_stats last;   /* the running process's last report */
} ke_worker;

struct ke_proc {
  ke_proc_cfg cfg;
  int fds[KE_MAX_LISTENERS];
  size_t n_fds;
  char name[NETADDR_STRLEN];
  struct event *probe;
  unsigned n_workers;
  bool told;              /* on_state was last told true */
  bool stopping;
  ke_worker w[KE_PROC_MAX];
  ke_server_stats gone;   /* ended processes' last reports, summed */
  ke_old old[OLD_MAX];
};

static void child_gone(ke_worker *w, const char *why);
static void schedule_restart(ke_worker *w);
static void olds_shut(ke_proc *p, unsigned slot);
static void slot_maybe_down(ke_worker *w);

/* to += add, counter by counter. */
static void stats_add(ke_server_stats *to, const ke_server_stats *add)
{
  uint64_t a[IPC_STATS_N], b[IPC_STATS_N];
  _Static_assert(sizeof(*to) == sizeof(a), "ke_server_stats is IPC_STATS_N u64");
  memcpy(a, to, sizeof(a));
  memcpy(b, add, sizeof(b));
  for (size_t i = 0; i < IPC_STATS_N; i++)
    a[i] += b[i];
  memcpy(to, a, sizeof(a));
}

/* The current key of the main process's store, as a KEYS message (the
 * key file layout's last entry is the current key: id, created, key). */
static bool current_key(const keystore *k, ipc_msg *m)
{
  uint8_t buf[NTS_KEYFILE_MAX_LEN];
  const nts_keyset *ks = keystore_current(k);
  size_t n = nts_keyset_serialize(ks, buf, sizeof(buf));
  bool ok = n == NTS_KEYFILE_LEN(nts_keyset_count(ks));
  if (ok) {
    wire_rd r;
    wire_rd_init(&r, buf + NTS_KEYFILE_LEN(nts_keyset_count(ks) - 1) -
                         NTS_KEYFILE_CHECKSUM_LEN, NTS_KEYFILE_ENTRY_LEN);
    m->type = IPC_MSG_KEYS;
    m->u.keys.id = wire_get_u32(&r);
    m->u.keys.created = wire_get_u64(&r);
    ok = wire_get_bytes(&r, m->u.keys.key, IPC_KEY_LEN);
  }
  nts_wipe(buf, sizeof(buf));
  return ok;
}

static bool send_keys(ke_worker *w)
{
  ipc_msg m;
  uint8_t buf[IPC_MSG_MAX_LEN];
  size_t n = current_key(w->p->cfg.keys, &m) ? ipc_msg_encode(&m, buf, sizeof(buf)) : 0;
  bool ok = n && send(w->sock, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)n;
  if (ok) {
    w->sent_id = m.u.keys.id;
    if (!w->waiting) /* an older key still unacknowledged keeps its time */
      w->asked = sysclock_mono();
    w->waiting = true;
  }
  nts_wipe(&m, sizeof(m));
  nts_wipe(buf, sizeof(buf));
  return ok;
}

/* Slots served now: by their running process once it reported, or by a
 * replaced process still accepting until that one does. */
static unsigned serving_count(const ke_proc *p)
{
  unsigned n = 0;
  for (unsigned i = 0; i < p->n_workers; i++) {
    bool on = p->w[i].serving;
    for (size_t k = 0; k < OLD_MAX && !on; k++)
      on = p->old[k].pid && !p->old[k].shut && p->old[k].slot == i;
    n += on;
  }
  return n;
}

/* Whether a started process has not reported yet (it may still serve). */
static bool any_starting(const ke_proc *p)
{
  for (unsigned i = 0; i < p->n_workers; i++)
    if (p->w[i].pid && !p->w[i].serving)
      return true;
  return false;
}

static void tell(ke_proc *p, bool serving)
{
  p->told = serving;
  if (p->cfg.on_state && !p->stopping)
    p->cfg.on_state(p->cfg.state_arg, serving);
}

/* on_state when NTS-KE starts or stops being served. */
static void update_state(ke_proc *p)
{
  bool any = serving_count(p) > 0;
  if (any != p->told)
    tell(p, any);
}

/* A worker's process reported for the first time: it holds its key and
 * serves. */
static void now_serving(ke_worker *w)
{
  ke_proc *p = w->p;
  w->serving = true;
  olds_shut(p, (unsigned)(w - p->w)); /* the one it replaces may stop accepting now */
  update_state(p);
}

/* One message from the KE process; false when it must end. */
static bool take(ke_worker *w, const ipc_msg *m)
{
  if (m->type == IPC_MSG_STATS) {
    memcpy(&w->last, m->u.stats, sizeof(w->last));
    if (!w->serving)
      now_serving(w);
    return true;
  }
  /* Acknowledgements follow the keys sent, in order: a rotation may have
   * sent a newer key before the previous one's acknowledgement arrived. */
  if ((int32_t)(m->u.ack_id - w->ack_floor) < 0 || (int32_t)(w->sent_id - m->u.ack_id) < 0)
    return false;
  w->ack_floor = m->u.ack_id;
  if (m->u.ack_id == w->sent_id)
    w->waiting = false;
  if (!ke_keygate_acked(w->gate, m->u.ack_id))
    log_info("NTS-KE process %ld uses cookie key %08x", (long)w->pid, m->u.ack_id);
  ke_keygate_ack(w->gate, m->u.ack_id, sysclock_mono());
  return true;
}

/* One frame from a KE process's socket: 1 with m decoded, 0 when none is
 * waiting, -1 when the process has gone or sent a bad frame (why says
 * which). */
static int recv_frame(int fd, ipc_msg *m, char *why, size_t len)
{
  uint8_t buf[IPC_MSG_MAX_LEN];
  ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return 0;
  if (n <= 0) {
    snprintf(why, len, "%s", n == 0 ? "ended" : strerror(errno));
    return -1;
  }
  ipc_status st = (size_t)n > sizeof(buf) ? IPC_TRAILING
                                          : ipc_msg_decode(buf, (size_t)n, IPC_FROM_KE, m);
  if (st != IPC_OK) {
    snprintf(why, len, "sent a bad message (%s)", ipc_status_name(st));
    return -1;
  }
  return 1;
}

static void on_msg(evutil_socket_t fd, short what, void *arg)
{
  ke_worker *w = arg;
  (void)what;
  for (int i = 0; i < MSGS_PER_WAKEUP; i++) {
    ipc_msg m;
    char why[96];
    int r = recv_frame(fd, &m, why, sizeof(why));
    if (r == 0)
      return;
    if (r < 0 || !take(w, &m)) {
      child_gone(w, r < 0 ? why : "sent a bad message (acknowledged a key not sent to it)");
      return;
    }
  }
}

/* In the child: never returns. */
static void run_child(ke_proc *p, int sock, pid_t parent)
{
  ke_child_cfg cc = {.server = p->cfg.server, .pair = p->cfg.pair, .sock = sock,
                     .forget = p->cfg.forget,
                     .forget_arg = p->cfg.forget_arg, .sandbox = p->cfg.sandbox,
                     .parent = parent};
  cc.server.fds = p->fds;
  cc.server.n_fds = p->n_fds;
  ke_child_main(&cc);
}

/* Forks the process a worker starts (no state of the worker yet): its pid,
 * sv[0] our end of the channel; -1 on failure (logged). */
static pid_t fork_child(ke_proc *p, int sv[2])
{
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    log_err("NTS-KE process: socketpair: %s", strerror(errno));
    return -1;
  }
  pid_t parent = getpid();
  if (p->cfg.fork_hold)
    p->cfg.fork_hold(p->cfg.fork_hold_arg, true);
  pid_t pid = fork();
  if (pid == 0) {
    close(sv[0]);
    run_child(p, sv[1], parent);
  }
  if (p->cfg.fork_hold)
    p->cfg.fork_hold(p->cfg.fork_hold_arg, false);
  close(sv[1]);
  if (pid < 0) {
    log_err("NTS-KE process: fork: %s", strerror(errno));
    close(sv[0]);
  }
  return pid;
}

static bool spawn(ke_worker *w)
{
  int sv[2];
  pid_t pid = fork_child(w->p, sv);
  if (pid < 0) {
    slot_maybe_down(w);
    schedule_restart(w);
    return false;
  }
  w->pid = pid;
  w->sock = sv[0];
  w->started = sysclock_mono();
  memset(&w->last, 0, sizeof(w->last));
  w->rd = event_new(w->p->cfg.base, w->sock, EV_READ | EV_PERSIST, on_msg, w);
  if (!w->rd || event_add(w->rd, NULL) < 0 || !send_keys(w)) {
    child_gone(w, "could not be set up");
    return false;
  }
  w->ack_floor = w->sent_id;
  log_notice("NTS-KE process %ld started", (long)pid);
  return true;
}

/* Every PROBE_S: each running process answers, or is ended as hung. */
static void on_probe(evutil_socket_t fd, short what, void *arg)
{
  ke_proc *p = arg;
  (void)fd;
  (void)what;
  for (unsigned i = 0; i < p->n_workers; i++) {
    ke_worker *w = &p->w[i];
    if (!w->pid)
      continue;
    if (w->waiting && sysclock_mono() - w->asked >= ANSWER_S) {
      char why[80];
      snprintf(why, sizeof(why), "stopped answering (no acknowledgement within %.0f s)",
               ANSWER_S);
      child_gone(w, why);
    } else if (!w->waiting && !send_keys(w)) {
      child_gone(w, "could not be sent its cookie key");
    }
  }
}

static void on_restart(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  spawn(arg);
}

static const char *exit_str(int status, char *buf, size_t len)
{
  if (WIFSIGNALED(status))
    snprintf(buf, len, "killed by signal %d", WTERMSIG(status));
  else if (WIFEXITED(status))
    snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
  else
    snprintf(buf, len, "status %#x", (unsigned)status);
  return buf;
}

/* Our end of a worker's channel: closed, its event gone. */
static void close_channel(ke_worker *w)
{
  if (w->rd)
    event_free(w->rd);
  w->rd = NULL;
  if (w->sock >= 0)
    close(w->sock);
  w->sock = -1;
}

/* Kills the running process (it may only have closed its socket), reaps
 * it and closes the channel.  The kill comes before the close: on EOF a
 * live process would exit by itself, and the status logged would hide that
 * it was killed. */
static int reap(ke_worker *w)
{
  int status = 0;
  kill(w->pid, SIGKILL);
  close_channel(w);
  while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR)
    ;
  w->pid = 0;
  w->waiting = false;
  return status;
}

/* The next start after the backoff, which then doubles (at most
 * BACKOFF_MAX_S). */
static void schedule_restart(ke_worker *w)
{
  struct timeval tv = {.tv_sec = w->backoff};
  if (event_add(w->restart, &tv) < 0)
    log_err("NTS-KE process: cannot schedule the restart");
  w->backoff = w->backoff * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : w->backoff * 2;
}

/* The KE process ended or must end: log, keep its counters, restart later. */
static void child_gone(ke_worker *w, const char *why)
{
  ke_proc *p = w->p;
  long pid = (long)w->pid;
  char st[48];
  int status = reap(w);
  stats_add(&p->gone, &w->last);
  memset(&w->last, 0, sizeof(w->last));
  if (sysclock_mono() - w->started >= STABLE_S)
    w->backoff = 1;
  log_err("NTS-KE process %ld %s (%s); restarting it in %u s (NTP service continues)", pid,
          why, exit_str(status, st, sizeof(st)), w->backoff);
  schedule_restart(w);
  w->serving = false;
  slot_maybe_down(w);
  /* Told even when none ever served, once no started process may still
   * report: the daemon then says it is ready without NTS-KE rather than
   * waiting for a report. */
  if (serving_count(p) == 0 && !any_starting(p))
    tell(p, false);
}

static bool worker_init(ke_proc *p, ke_worker *w)
{
  w->p = p;
  w->sock = -1;
  w->backoff = 1;
  w->gate = ke_keygate_create(nts_keyset_current_id(keystore_current(p->cfg.keys)),
                              p->cfg.cookie_lifetime);
  w->restart = evtimer_new(p->cfg.base, on_restart, w);
  return w->gate && w->restart;
}

ke_proc *ke_proc_create(const ke_proc_cfg *cfg, char *err, size_t errlen)
{
  ke_proc *p = calloc(1, sizeof(*p));
  if (!p) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  p->cfg = *cfg;
  p->n_workers = cfg->processes < 1 ? 1 : cfg->processes > KE_PROC_MAX ? KE_PROC_MAX
                                                                       : cfg->processes;
  bool ok = true;
  for (unsigned i = 0; i < p->n_workers; i++)
    ok = worker_init(p, &p->w[i]) && ok;
  p->probe = event_new(cfg->base, -1, EV_PERSIST, on_probe, p);
  if (!ok || !p->probe || event_add(p->probe, &(struct timeval){.tv_sec = PROBE_S}) < 0) {
    snprintf(err, errlen, "out of memory");
    ke_proc_stop(p);
    return NULL;
  }
  p->n_fds = ke_server_listen(cfg->server.listen, p->fds, p->name, sizeof(p->name), err,
                              errlen);
  if (!p->n_fds) {
    ke_proc_stop(p);
    return NULL;
  }
  return p;
}

bool ke_proc_start(ke_proc *p)
{
  bool any = false;
  for (unsigned i = 0; i < p->n_workers; i++)
    any = spawn(&p->w[i]) || any;
  return any;
}

void ke_proc_keys_changed(ke_proc *p)
{
  for (unsigned i = 0; i < p->n_workers; i++) {
    ke_worker *w = &p->w[i];
    if (w->pid && !send_keys(w))
      child_gone(w, "could not be sent the new cookie key");
  }
}

bool ke_proc_may_rotate(ke_proc *p, double now, char *who, size_t len)
{
  const nts_keyset *ks = keystore_current(p->cfg.keys);
  unsigned n = nts_keyset_count(ks);
  uint32_t cur = nts_keyset_current_id(ks);
  if (n < NTS_COOKIE_RING)
    return true;
  uint32_t oldest = cur - (n - 1);
  for (size_t i = 0; i < OLD_MAX; i++) {
    const ke_old *o = &p->old[i];
    if (o->pid && (int32_t)(o->key - oldest) >= 0) {
      snprintf(who, len, "replaced NTS-KE process %ld", (long)o->pid);
      return false;
    }
  }
  for (unsigned i = 0; i < p->n_workers; i++) {
    const ke_worker *w = &p->w[i];
    if (ke_keygate_may_drop(w->gate, oldest, cur, now))
      continue;
    if (w->pid)
      snprintf(who, len, "NTS-KE process %ld", (long)w->pid);
    else
      snprintf(who, len, "NTS-KE process %u of %u (down)", i + 1, p->n_workers);
    return false;
  }
  return true;
}

void ke_proc_get_stats(const ke_proc *p, ke_server_stats *out)
{
  *out = p->gone;
  for (unsigned i = 0; i < p->n_workers; i++)
    stats_add(out, &p->w[i].last);
  for (size_t i = 0; i < OLD_MAX; i++)
    if (p->old[i].pid)
      stats_add(out, &p->old[i].last);
}

unsigned ke_proc_count(const ke_proc *p) { return p->n_workers; }

unsigned ke_proc_serving(const ke_proc *p) { return serving_count(p); }

/* ---- replaced processes ------------------------------------------------- */

/* Ends a replaced process (killing it if it is still there), keeps its
 * counters. */
static void old_end(ke_old *o, const char *why)
{
  ke_proc *p = o->p;
  char st[48];
  int status = 0;
  kill(o->pid, SIGKILL); /* before the close: a status that says it was killed */
  if (o->rd)
    event_free(o->rd);
  if (o->limit)
    event_free(o->limit);
  close(o->sock);
  while (waitpid(o->pid, &status, 0) < 0 && errno == EINTR)
    ;
  stats_add(&p->gone, &o->last);
  log_info("replaced NTS-KE process %ld %s (%s)", (long)o->pid, why,
           exit_str(status, st, sizeof(st)));
  unsigned slot = o->slot;
  uint32_t key = o->key;
  memset(o, 0, sizeof(*o));
  o->sock = -1;
  if (slot < p->n_workers) {
    ke_keygate_sealed(p->w[slot].gate, key, sysclock_mono());
    slot_maybe_down(&p->w[slot]);
  }
  update_state(p);
}

/* The slot's gate is down once no process seals for it: none running in
 * it and no replaced one still serving (a replaced process keeps the key
 * it had until it ends). */
static void slot_maybe_down(ke_worker *w)
{
  ke_proc *p = w->p;
  unsigned slot = (unsigned)(w - p->w);
  if (w->pid)
    return;
  for (size_t i = 0; i < OLD_MAX; i++)
    if (p->old[i].pid && p->old[i].slot == slot)
      return;
  ke_keygate_down(w->gate, sysclock_mono());
}

/* It reports its counters until it ends; anything else ends it now. */
static void on_old_msg(evutil_socket_t fd, short what, void *arg)
{
  ke_old *o = arg;
  (void)what;
  for (int i = 0; i < MSGS_PER_WAKEUP; i++) {
    ipc_msg m;
    char why[96];
    int r = recv_frame(fd, &m, why, sizeof(why));
    if (r == 0)
      return;
    if (r < 0) {
      old_end(o, why);
      return;
    }
    if (m.type == IPC_MSG_STATS)
      memcpy(&o->last, m.u.stats, sizeof(o->last));
  }
}

static void on_old_limit(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  old_end(arg, "had not finished in time");
}

/* A free entry for a process of w's slot about to be replaced.  A slot
 * keeps at most OLDS_PER_WORKER replaced processes (renewed again and
 * again): past that, one of its own goes now, one already finishing if
 * there is, never another slot's. */
static ke_old *old_entry(ke_worker *w)
{
  ke_proc *p = w->p;
  unsigned slot = (unsigned)(w - p->w);
  ke_old *free_one = NULL, *mine = NULL;
  size_t n = 0;
  for (size_t i = 0; i < OLDS_PER_WORKER * p->n_workers; i++) {
    ke_old *o = &p->old[i];
    if (!o->pid) {
      free_one = free_one ? free_one : o;
    } else if (o->slot == slot) {
      n++;
      if (!mine || (o->shut && !mine->shut))
        mine = o;
    }
  }
  if (n >= OLDS_PER_WORKER || !free_one) {
    if (!mine)
      mine = &p->old[0]; /* not reached: each slot keeps at most its share */
    old_end(mine, "was ended early (too many replacements at once)");
    return mine;
  }
  return free_one;
}

/* The worker's running process becomes a replaced one; false if out of
 * memory (it is then ended at once). */
static bool make_old(ke_worker *w)
{
  ke_proc *p = w->p;
  ke_old *o = old_entry(w);
  *o = (ke_old){.p = p, .slot = (unsigned)(w - p->w), .key = w->sent_id, .pid = w->pid,
                .sock = w->sock, .last = w->last};
  o->rd = event_new(p->cfg.base, o->sock, EV_READ | EV_PERSIST, on_old_msg, o);
  o->limit = evtimer_new(p->cfg.base, on_old_limit, o);
  event_free(w->rd);
  w->rd = NULL;
  w->pid = 0;
  w->sock = -1;
  w->serving = false; /* the replaced process serves the slot until its successor does */
  w->waiting = false; /* the successor's first key starts its own wait */
  memset(&w->last, 0, sizeof(w->last));
  if (!o->rd || !o->limit || event_add(o->rd, NULL) < 0) {
    old_end(o, "was ended (out of memory)");
    return false;
  }
  return true;
}

/* A successor serves in slot: the processes it replaces stop accepting,
 * finish their connections and end. */
static void olds_shut(ke_proc *p, unsigned slot)
{
  struct timeval tv = {.tv_sec = DRAIN_LIMIT_S};
  for (size_t i = 0; i < OLD_MAX; i++) {
    ke_old *o = &p->old[i];
    if (!o->pid || o->shut || o->slot != slot)
      continue;
    o->shut = true;
    if (shutdown(o->sock, SHUT_WR) < 0 || event_add(o->limit, &tv) < 0)
      old_end(o, "could not be told to finish");
  }
}

void ke_proc_replace(ke_proc *p, certpair *pair)
{
  p->cfg.pair = pair;
  for (unsigned i = 0; i < p->n_workers; i++) {
    ke_worker *w = &p->w[i];
    if (!w->pid)
      continue; /* none running: its next start uses the new pair */
    long was = (long)w->pid;
    make_old(w);
    if (spawn(w))
      log_notice("NTS-KE process %ld replaces process %ld, which finishes its open "
                 "connections", (long)w->pid, was);
  }
}

const char *ke_proc_address(const ke_proc *p) { return p->name; }

/* Closes every channel, so the KE processes end by themselves (each
 * logging its last summary); kills those that have not within
 * STOP_WAIT_MS. */
static void stop_workers(ke_proc *p)
{
  for (unsigned i = 0; i < p->n_workers; i++)
    close_channel(&p->w[i]);
  for (int t = 0; t <= STOP_WAIT_MS / 10; t++) {
    bool left = false;
    for (unsigned i = 0; i < p->n_workers; i++) {
      ke_worker *w = &p->w[i];
      if (w->pid && waitpid(w->pid, NULL, WNOHANG) == w->pid)
        w->pid = 0;
      left = left || w->pid;
    }
    if (!left)
      return;
    if (t < STOP_WAIT_MS / 10)
      nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
  }
  for (unsigned i = 0; i < p->n_workers; i++)
    if (p->w[i].pid)
      reap(&p->w[i]);
}

void ke_proc_stop(ke_proc *p)
{
  if (!p)
    return;
  p->stopping = true;
  for (size_t i = 0; i < OLD_MAX; i++)
    if (p->old[i].pid)
      old_end(&p->old[i], "was stopped");
  stop_workers(p);
  for (unsigned i = 0; i < p->n_workers; i++) {
    if (p->w[i].restart)
      event_free(p->w[i].restart);
    ke_keygate_destroy(p->w[i].gate);
  }
  if (p->probe)
    event_free(p->probe);
  for (size_t i = 0; i < p->n_fds; i++)
    close(p->fds[i]);
  free(p);
}
