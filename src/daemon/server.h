/* server: the NTP server's sockets.  Receives with kernel timestamps
 * (SO_TIMESTAMPNS) and hands each datagram to proto/ntp_serve, which takes
 * every decision (restrict, rate limit, NTS) and builds the response in a
 * per-server buffer (no allocation per packet); the transmit time is read
 * between its two phases, just before sending.  For `listen ... tcp` it
 * also runs a tcp_server on the same address and port, whose requests take
 * the same path (same admission, rate limiter, NTS state and counters).
 *
 * With `threads N` > 1, each listen address gets N sockets sharing its port
 * (SO_REUSEPORT: the kernel hashes each client to one), each read by one of
 * N packet threads with its own request state, rate limiter, nonce pool and
 * counters; NTP over TCP stays on the main loop.  docs/architecture.md
 * describes the threads and what they share. */
#ifndef NTSD_DAEMON_SERVER_H
#define NTSD_DAEMON_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/clockctl.h"
#include "daemon/conf.h"
#include "daemon/keystore.h"
#include "daemon/tcp_server.h"
#include "proto/acl.h"
#include "proto/ntp_serve.h"

struct event_base;
typedef struct ntsd_server ntsd_server;

typedef struct ntsd_server_stats {
  uint64_t received;        /* requests, UDP and TCP */
  uint64_t send_errors;     /* UDP */
  ntp_serve_counters serve; /* by outcome (ntp_serve_result), NTS details; both transports */
  tcp_server_stats tcp;     /* NTP over TCP's own (all 0 without it) */
} ntsd_server_stats;

/* What the server needs from the configuration, copied or borrowed only
 * while server_create runs, unless said otherwise. */
typedef struct server_cfg {
  struct event_base *base;    /* borrowed; must outlive the server */
  const ntp_acl *acl;         /* borrowed; must outlive the server */
  keystore *keys;             /* borrowed; must outlive the server; NULL: no NTS */
  const clockctl *clk;        /* borrowed; must outlive the server: whose time it stamps */
  const conf_listen *listens; /* `listen` addresses; none: wildcard port 123 (UDP only) */
  size_t n_listens;
  bool no_sockets;            /* `interface ignore all` */
  int discard_average;        /* log2 s between requests (`discard average`) */
  int discard_minimum;        /* s (`discard minimum`) */
  int precision_log2;         /* our clock's precision, as served */
  int threads;                /* packet threads (`threads`); 0 or 1: the main loop */
} server_cfg;

/* Opens the sockets of cfg and registers them with cfg->base.
 * Returns NULL with a message in err on failure. */
ntsd_server *server_create(const server_cfg *cfg, char *err, size_t errlen);
/* Starts the packet threads (none with one thread).  Call it once the
 * process runs as its user with its system call filter loaded: the threads
 * inherit the filter and drop every capability. */
bool server_start(ntsd_server *s, int priority, char *err, size_t errlen);
/* Ends the threads, closes the sockets. */
void server_destroy(ntsd_server *s);
/* The time we serve: copied to every packet thread between two batches. */
void server_set_sysinfo(ntsd_server *s, const ntp_sysinfo *sys);
/* Waits until no packet thread is inside a batch and keeps them out until
 * server_resume: the `restrict` rules or cookie keys the threads borrow may
 * then be changed or freed (a wake-up's batches, well under a millisecond). */
void server_pause(ntsd_server *s);
void server_resume(ntsd_server *s);
/* server_pause then server_resume: every packet thread has left the batch
 * it was in.  A keystore grace callback (void *: the server). */
void server_quiesce(void *arg);
/* The sums over every thread. */
void server_get_stats(const ntsd_server *s, ntsd_server_stats *out);
/* `threads` (1 without), and thread i's own counters (i < that count; with
 * threads, index count is the main loop's: NTP over TCP). */
size_t server_thread_count(const ntsd_server *s);
void server_get_thread_stats(const ntsd_server *s, size_t i, ntsd_server_stats *out);
size_t server_socket_count(const ntsd_server *s);
/* "127.0.0.1:123" of the i-th socket (for logs and ntsctl). */
const char *server_socket_name(const ntsd_server *s, size_t i);
/* The NTP over TCP transport, NULL when no `listen` line has `tcp`. */
const tcp_server *server_tcp(const ntsd_server *s);

#endif
