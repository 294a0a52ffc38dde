/* ke_proc: the NTS-KE server in a process of its own, seen from the main
 * process (docs/security.md, "The NTS-KE process").
 *
 * ke_proc_create opens the KE listening sockets (as root, before the
 * privilege drop, like every socket).  ke_proc_start forks the KE process
 * (daemon/ke_child), which inherits the loaded TLS context and those
 * sockets; no exec.  The main process never accepts on them.
 *
 * Between the two, a SOCK_SEQPACKET socketpair carries proto/ipc_msg
 * frames: the main process sends the current cookie key at start and after
 * every rotation; the KE process acknowledges each and reports its counters
 * when they change (at most ten times a second), and once when it is set up
 * and serves.  Everything from the KE process is treated as hostile: a
 * datagram that is not exactly one well-formed KEYS_ACK or STATS frame, or
 * an acknowledgement out of the order of the keys sent to it, ends it.
 *
 * When the KE process ends (the socket reads EOF: it crashed, was killed,
 * or broke the protocol and was killed), that is logged with its exit
 * status and it is restarted after 1 s, 2 s, 4 s ... at most 64 s (back to
 * 1 s once a process has lived a minute).  A process that hangs keeps its
 * socket open, so it is also sent its current key again every 5 s: one that
 * has not acknowledged a key within 10 s is killed and restarted the same
 * way.  NTP serving never depends on it.
 *
 * `ntsprocesses N` runs N such processes side by side (chrony's directive
 * of that name): each is forked the same way, accepts on the same
 * listening sockets (the kernel hands each connection to one of them), is
 * sent every key, supervised and restarted on its own; the counters are
 * their sum.  When a renewal replaces them, each replaced process stops
 * accepting once its own slot's successor serves.
 *
 * The rotation gate (proto/ke_keygate, one per process slot):
 * ke_proc_may_rotate says whether a rotation may drop the oldest key of the
 * ring now, which needs every slot's consent.  A slot whose process has
 * been down (ended, or not startable) for a cookie lifetime consents. */
#ifndef NTSD_DAEMON_KE_PROC_H
#define NTSD_DAEMON_KE_PROC_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "daemon/certpair.h"
#include "daemon/ke_server.h"
#include "daemon/keystore.h"
#include "daemon/sandbox.h"

struct event_base;

#define KE_PROC_MAX 16 /* `ntsprocesses` at most */

typedef struct ke_proc_cfg {
  struct event_base *base; /* the main process's loop */
  ke_server_cfg server;    /* listen is opened here; keys and ctx are ignored */
  unsigned processes;      /* KE processes side by side, 1 to KE_PROC_MAX */
  certpair *pair;          /* borrowed: the KE process makes its TLS context
                              from it; must outlive the processes it starts */
  keystore *keys;          /* the main process's: its current key is sent */
  double cookie_lifetime;  /* seconds a key stays after the KE process left it */
  void (*forget)(void *arg); /* in the child, right after fork: wipes the main
                                process's secrets (NULL: none) */
  void *forget_arg;
  /* In the main process, with true right before each fork and with false
   * right after it (NULL: none): the daemon's other threads are kept out
   * of anything whose lock the child could inherit taken (logging). */
  void (*fork_hold)(void *arg, bool hold);
  void *fork_hold_arg;
  sandbox_cfg sandbox;     /* the KE process's system call filter */
  /* Called with true when a KE process serves while none did (its first
   * report: it holds its key and has loaded its filter), with false when
   * the last serving one ended (NULL: not told). */
  void (*on_state)(void *arg, bool serving);
  void *state_arg;
} ke_proc_cfg;

typedef struct ke_proc ke_proc;

/* Opens the listening sockets.  NULL with err on failure. */
ke_proc *ke_proc_create(const ke_proc_cfg *cfg, char *err, size_t errlen);
/* Forks the first KE processes (after the privilege drop and detaching);
 * false if none could be. */
bool ke_proc_start(ke_proc *p);
/* The main process's key store rotated: sends every KE process the new
 * current key. */
void ke_proc_keys_changed(ke_proc *p);
/* A new certificate and key (a renewal): new KE processes are started with
 * them; each running one serves until a new one does, then stops
 * accepting, finishes its open connections (bounded by their timeout) and
 * ends.  All share the listening sockets, so no connection is refused.
 * pair is borrowed like cfg.pair: it must outlive the processes started
 * with it (the parent's copy of the old one may be freed now). */
void ke_proc_replace(ke_proc *p, certpair *pair);
/* Whether a rotation now may drop the oldest key of the current set; when
 * not, who names the KE process (or its slot, when down) holding it. */
bool ke_proc_may_rotate(ke_proc *p, double now, char *who, size_t len);
/* The counters: every ended KE process's last report plus the running
 * one's. */
void ke_proc_get_stats(const ke_proc *p, ke_server_stats *out);
const char *ke_proc_address(const ke_proc *p);
/* How many KE processes run side by side (`ntsprocesses`), and how many of
 * them serve now (started and reported). */
unsigned ke_proc_count(const ke_proc *p);
unsigned ke_proc_serving(const ke_proc *p);
/* Ends the KE processes (bounded wait) and closes everything. */
void ke_proc_stop(ke_proc *p);

#endif
