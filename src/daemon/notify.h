/* notify: tells a service manager how the daemon is doing (systemd's
 * Type=notify protocol, sd_notify(3), spoken directly: one datagram
 * per notification to NOTIFY_SOCKET; proto/svcnotify reads the environment).
 *
 * Without NOTIFY_SOCKET in the environment every call does nothing, so the
 * daemon runs the same by hand.  With it:
 *   READY=1     once, when the daemon serves (notify_ready);
 *   STATUS=...  one line on what it is doing, sent when it changes;
 *   RELOADING=1 ... READY=1 around a configuration reload (SIGHUP);
 *   STOPPING=1  when it begins to shut down;
 *   WATCHDOG=1  every half of WATCHDOG_USEC from the event loop, when the
 *               manager asked for keep-alives (WATCHDOG_USEC, WATCHDOG_PID), so a
 *               hung loop gets the service restarted.
 *
 * Only the process that created the notifier sends: a forked child (the
 * NTS-KE process) inherits it but stays silent, as systemd's
 * NotifyAccess=main expects.  docs/systemd.md describes the unit. */
#ifndef NTSD_DAEMON_NOTIFY_H
#define NTSD_DAEMON_NOTIFY_H

#include <stdbool.h>

struct event_base;

typedef struct notify notify;

/* NULL only when out of memory.  The watchdog timer is armed on base. */
notify *notify_create(struct event_base *base);
void notify_destroy(notify *n);

/* Whether a service manager listens (NOTIFY_SOCKET is set). */
bool notify_enabled(const notify *n);
/* READY=1, the first time only. */
void notify_ready(notify *n);
bool notify_is_ready(const notify *n);
/* RELOADING=1 (with MONOTONIC_USEC, as Type=notify-reload wants) when a
 * reload begins; notify_reloaded sends READY=1 when it is over. */
void notify_reloading(notify *n);
void notify_reloaded(notify *n);
/* STATUS=status when it differs from the last one sent (newlines become
 * spaces: one line). */
void notify_status(notify *n, const char *status);
/* STOPPING=1 with a last status; later calls do nothing. */
void notify_stopping(notify *n, const char *status);

#endif
