/* svcnotify: the environment of systemd's notification protocol, read
 * without libsystemd.
 *
 * A service manager that wants notifications passes NOTIFY_SOCKET, the
 * address of an AF_UNIX datagram socket: an absolute path, or "@name" for
 * a name in the abstract namespace (sent with a leading NUL byte).  For
 * keep-alives it also passes WATCHDOG_USEC (the period, decimal
 * microseconds) and, optionally, WATCHDOG_PID (the process it watches).
 * The protocol (sd_notify(3)) is one datagram of "KEY=VALUE" lines per
 * notification; the daemon's notify module sends them. */
#ifndef NTSD_PROTO_SVCNOTIFY_H
#define NTSD_PROTO_SVCNOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* sizeof(((struct sockaddr_un *)0)->sun_path) on Linux. */
#define SVCNOTIFY_PATH_MAX 108

typedef struct svcnotify_addr {
  char path[SVCNOTIFY_PATH_MAX]; /* sun_path as sent: path[0] == 0 for abstract */
  size_t len;                    /* bytes of path used (no terminating NUL) */
} svcnotify_addr;

typedef enum svcnotify_status {
  SVCNOTIFY_OK,
  SVCNOTIFY_UNSET,       /* absent or empty: no manager listens */
  SVCNOTIFY_UNSUPPORTED, /* another kind of address (e.g. vsock:, relative) */
  SVCNOTIFY_TOO_LONG,    /* does not fit sun_path */
  SVCNOTIFY_INVALID,     /* malformed number, zero, or out of range */
  SVCNOTIFY_OTHER_PID,   /* WATCHDOG_PID names another process */
} svcnotify_status;

/* NOTIFY_SOCKET (may be NULL) into an address. */
svcnotify_status svcnotify_parse_socket(const char *value, svcnotify_addr *out);

/* WATCHDOG_USEC and WATCHDOG_PID (either may be NULL) for the process
 * self_pid: the period in *usec when keep-alives are wanted from it. */
svcnotify_status svcnotify_parse_watchdog(const char *usec_value, const char *pid_value,
                                          uint64_t self_pid, uint64_t *usec);

/* A short English description of a status, for log lines. */
const char *svcnotify_status_str(svcnotify_status s);

#endif
