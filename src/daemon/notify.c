/* notify: the service manager's notification socket. */
#include "daemon/notify.h"

#include <errno.h>
#include <event2/event.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "daemon/log.h"
#include "proto/svcnotify.h"

#define STATUS_MAX 512
/* How long READY, RELOADING and STOPPING may wait for room in the
 * manager's queue (libsystemd's sd_notify waits without a limit). */
#define SEND_WAIT_S 5

struct notify {
  bool enabled;       /* NOTIFY_SOCKET was set at creation */
  pid_t pid;          /* the process that sends */
  int fd;             /* an unbound datagram socket, -1 if none */
  struct sockaddr_un to;
  socklen_t to_len;
  bool ready, stopping;
  bool failed;        /* a send failed (logged once) */
  struct event *watchdog; /* keep-alives, NULL: none asked for */
  char status[STATUS_MAX];
};

/* One notification; a failure is logged once (the manager may have gone:
 * the daemon goes on serving).  A state change waits (bounded) for room in
 * the manager's queue, which is full in a boot storm: a lost READY=1 would
 * have the unit killed at its start timeout.  STATUS and WATCHDOG do not
 * wait: the next one comes soon. */
static void send_msg(notify *n, const char *state, bool wait)
{
  if (!n->enabled || n->fd < 0 || getpid() != n->pid)
    return;
  /* The address goes with every datagram: a manager that re-creates its
   * socket (systemd's re-execution) is still reached. */
  ssize_t rc = sendto(n->fd, state, strlen(state), MSG_NOSIGNAL | (wait ? 0 : MSG_DONTWAIT),
                      (const struct sockaddr *)&n->to, n->to_len);
  if (rc < 0 && !n->failed) {
    n->failed = true;
    log_warn("service manager notification failed: %s", strerror(errno));
  }
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  send_msg(arg, "WATCHDOG=1", false);
}

/* WATCHDOG_USEC (for this process, WATCHDOG_PID): keep-alives twice per
 * period, as sd_watchdog_enabled(3) advises. */
static bool arm_watchdog(notify *n, struct event_base *base)
{
  uint64_t usec = 0;
  svcnotify_status st = svcnotify_parse_watchdog(getenv("WATCHDOG_USEC"), getenv("WATCHDOG_PID"),
                                                 (uint64_t)n->pid, &usec);
  if (st == SVCNOTIFY_INVALID)
    log_warn("WATCHDOG_USEC/WATCHDOG_PID: %s; no watchdog keep-alives",
             svcnotify_status_str(st));
  if (st != SVCNOTIFY_OK || usec < 2)
    return true;
  uint64_t half = usec / 2;
  struct timeval tv = {.tv_sec = (time_t)(half / 1000000),
                       .tv_usec = (suseconds_t)(half % 1000000)};
  n->watchdog = event_new(base, -1, EV_PERSIST, on_watchdog, n);
  if (!n->watchdog || event_add(n->watchdog, &tv) < 0)
    return false;
  log_info("service manager watchdog: a keep-alive every %.3f s", (double)half / 1e6);
  return true;
}

static void send_state(notify *n, const char *state) { send_msg(n, state, true); }

/* The socket is made once, when the daemon starts serving (after the
 * privilege drop and the system call filter, which allows AF_UNIX
 * datagram sockets), and kept; a bad NOTIFY_SOCKET is named in one line. */
static bool open_socket(notify *n)
{
  svcnotify_addr a;
  svcnotify_status st = svcnotify_parse_socket(getenv("NOTIFY_SOCKET"), &a);
  n->enabled = st != SVCNOTIFY_UNSET;
  if (st != SVCNOTIFY_OK) {
    if (n->enabled)
      log_warn("NOTIFY_SOCKET: %s; no service manager notifications", svcnotify_status_str(st));
    return !n->enabled;
  }
  n->to.sun_family = AF_UNIX;
  memcpy(n->to.sun_path, a.path, a.len);
  n->to_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + a.len);
  n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (n->fd < 0) {
    log_warn("service manager notification socket: %s", strerror(errno));
    return false;
  }
  struct timeval wait = {.tv_sec = SEND_WAIT_S};
  if (setsockopt(n->fd, SOL_SOCKET, SO_SNDTIMEO, &wait, sizeof(wait)) < 0)
    log_debug("notification socket: SO_SNDTIMEO: %s", strerror(errno));
  return true;
}

notify *notify_create(struct event_base *base)
{
  notify *n = calloc(1, sizeof(*n));
  if (!n)
    return NULL;
  n->fd = -1;
  n->pid = getpid();
  if (!open_socket(n))
    n->failed = true; /* logged; the daemon runs without notifications */
  if (n->enabled && !arm_watchdog(n, base)) {
    notify_destroy(n);
    return NULL;
  }
  return n;
}

void notify_destroy(notify *n)
{
  if (!n)
    return;
  if (n->watchdog)
    event_free(n->watchdog);
  if (n->fd >= 0)
    close(n->fd);
  free(n);
}

bool notify_enabled(const notify *n) { return n->enabled; }
bool notify_is_ready(const notify *n) { return n->ready; }

void notify_ready(notify *n)
{
  if (n->ready || n->stopping)
    return;
  n->ready = true;
  send_state(n, "READY=1");
}

void notify_reloading(notify *n)
{
  struct timespec ts;
  char buf[64];
  if (n->stopping)
    return;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  snprintf(buf, sizeof(buf), "RELOADING=1\nMONOTONIC_USEC=%llu",
           (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
  send_state(n, buf);
}

void notify_reloaded(notify *n)
{
  if (n->stopping)
    return;
  n->ready = true;
  send_state(n, "READY=1");
}

/* "STATUS=..." on one line, in buf. */
static void status_line(char *buf, size_t len, const char *status)
{
  snprintf(buf, len, "STATUS=%s", status);
  for (char *c = buf; *c; c++)
    if (*c == '\n' || *c == '\r')
      *c = ' ';
}

void notify_status(notify *n, const char *status)
{
  char s[STATUS_MAX];
  snprintf(s, sizeof(s), "%s", status);
  if (!n->enabled || n->stopping || !strcmp(n->status, s))
    return;
  memcpy(n->status, s, sizeof(s));
  char buf[STATUS_MAX + 8];
  status_line(buf, sizeof(buf), status);
  send_msg(n, buf, false);
}

void notify_stopping(notify *n, const char *status)
{
  if (n->stopping)
    return;
  n->stopping = true;
  char buf[STATUS_MAX + 24];
  size_t off = (size_t)snprintf(buf, sizeof(buf), "STOPPING=1\n");
  status_line(buf + off, sizeof(buf) - off, status);
  send_state(n, buf);
}
