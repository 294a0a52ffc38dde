/* sandbox: the system call filter (seccomp, through libseccomp).
 *
 * Once set up and running as its user, each ntsd process loads an
 * allow-list of the system calls its work needs.  Anything else is refused:
 * the process logs one line naming the call and dies of SIGSYS, so a memory
 * bug turned into code execution cannot reach the rest of the kernel's
 * interface (exec, ptrace, new namespaces, mount, module loading, ...).
 *
 * Filters stack: a process started from one that has a filter keeps it and
 * adds its own, and a call must pass both.  SANDBOX_KE's list is therefore
 * a subset of SANDBOX_MAIN's.  docs/security.md lists both and why. */
#ifndef NTSD_DAEMON_SANDBOX_H
#define NTSD_DAEMON_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>

typedef enum sandbox_profile {
  SANDBOX_MAIN, /* the daemon: clock, NTP client and server, control socket, DNS, state files */
  SANDBOX_KE    /* the NTS-KE server: TLS over accepted sockets, nothing else */
} sandbox_profile;

typedef struct sandbox_cfg {
  bool enabled;       /* -F 0 / `sandbox off` turn it off */
  bool clock_control; /* main: clock_adjtime/settime allowed */
  bool log_only;      /* SCMP_ACT_LOG instead of killing, for diagnosis */
} sandbox_cfg;

/* The level of -F (chrony's option) and of `sandbox on|off|log`: 1 on (a
 * refused call is logged and ends the process), 0 off, -1 log only. */
#define SANDBOX_ON 1
#define SANDBOX_OFF 0
#define SANDBOX_LOG (-1)

/* -F LEVEL: "1", "0" or "-1" into *level; false (and *level unchanged) for
 * anything else. */
bool sandbox_parse_level(const char *arg, int *level);

/* Sets cfg->enabled and cfg->log_only for a level; clock_control is kept. */
void sandbox_set_level(sandbox_cfg *cfg, int level);

/* Loads the profile's allow-list for the calling process (all threads:
 * SECCOMP_FILTER_FLAG_TSYNC); false with a message in err.  Also sets
 * no-new-privileges.  Does nothing (true) when !cfg->enabled. */
bool sandbox_apply(sandbox_profile p, const sandbox_cfg *cfg, char *err, size_t errlen);

/* The descriptor the refusal is logged through (-1: none): a process that
 * closes what it inherited keeps this one. */
int sandbox_log_fd(void);

#endif
