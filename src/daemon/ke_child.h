/* ke_child: the NTS-KE process's side — what runs in the child that
 * daemon/ke_proc forks.
 *
 * Right after the fork it forgets what it must not hold: the caller's hook
 * wipes the main process's cookie key ring, and every file descriptor but
 * stdin/out/err, the socket to the main process and the KE listening
 * sockets is closed (NTP sockets, the control socket, the clock, DNS).  It
 * then drops every capability (effective, permitted, inheritable, ambient),
 * sets no-new-privileges, waits (bounded) for its first key from the main
 * process, sets the NTS-KE server up on the inherited listening sockets,
 * applies its seccomp filter, and serves.  The uid is the one the main
 * process dropped to before forking (`-u`).
 *
 * From the main process it accepts KEYS messages only (proto/ipc_msg): each
 * replaces its one cookie key and is acknowledged with KEYS_ACK once in use
 * (the key in use sent again, as the main process's liveness probe, is only
 * acknowledged).
 * It sends its counters (STATS) after each connection's outcome, at most
 * ten times a second.  Anything else from the main process, or the main
 * process going away, ends it; SIGTERM and SIGINT do not (they are the
 * main process's to act on). */
#ifndef NTSD_DAEMON_KE_CHILD_H
#define NTSD_DAEMON_KE_CHILD_H

#include <stddef.h>

#include "daemon/certpair.h"
#include "daemon/ke_server.h"
#include <sys/types.h>

#include "daemon/sandbox.h"

typedef struct ke_child_cfg {
  ke_server_cfg server;   /* with the listening sockets in fds; keys and ctx
                             ignored */
  certpair *pair;         /* the certificate and key the TLS context is made
                             of (this process's copy is wiped once made) */
  int sock;               /* to the main process */
  void (*forget)(void *arg); /* wipes the main process's secrets; may be NULL */
  void *forget_arg;
  sandbox_cfg sandbox;    /* the filter applied once set up (SANDBOX_KE) */
  pid_t parent;           /* the main process: this one dies with it */
} ke_child_cfg;

/* Never returns: exits with 0 when the main process closed the socket, 1
 * on any failure. */
void ke_child_main(const ke_child_cfg *cfg) __attribute__((noreturn));

#endif
