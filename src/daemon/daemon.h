/* daemon: the running ntsd — owns the event loop, the server, the client
 * associations and the control socket, and turns source selection into the
 * system variables our own clients see. */
#ifndef NTSD_DAEMON_DAEMON_H
#define NTSD_DAEMON_DAEMON_H

#include <stdbool.h>
#include <stddef.h>

#include "daemon/conf.h"

typedef struct ntsd_opts {
  bool foreground;        /* -n */
  bool no_clock;          /* -x: never adjust the clock */
  const char *socket_path; /* -s, overrides the config */
  const char *conf_path;  /* -c: read again on SIGHUP */
  bool virtual_clock;     /* --virtual-clock: discipline a virtual clock (tests) */
  double virtual_offset;  /* its error at start, seconds */
  double virtual_freq_ppm; /* its oscillator's frequency error */
} ntsd_opts;

typedef struct ntsd ntsd;

/* Takes ownership of conf.  NULL with a message in err on failure. */
ntsd *ntsd_create(ntsd_conf *conf, const ntsd_opts *opts, char *err, size_t errlen);
/* Detaches from the terminal (after everything that can fail has been set
 * up, so errors still reach the user).  Returns false on failure. */
bool ntsd_daemonize(ntsd *d, char *err, size_t errlen);
/* Runs until SIGINT/SIGTERM; returns the exit code. */
int ntsd_run(ntsd *d, int priority);
void ntsd_destroy(ntsd *d);

#endif
