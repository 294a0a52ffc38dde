/* report: the text tables and JSON documents the control socket serves
 * (`ntsctl peers`, `ntsctl server`, `ntsctl sys`).  The JSON key names are
 * a contract with scripts: add keys, never rename or remove them. */
#ifndef NTSD_DAEMON_REPORT_H
#define NTSD_DAEMON_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/client.h"
#include "daemon/clockctl.h"
#include "daemon/ke_server.h"
#include "daemon/server.h"
#include "proto/ntp_server.h"
#include "proto/select.h"

#define REPORT_MAX_PEERS 256

/* System state: a snapshot of the core's last update (proto/core.h). */
typedef struct report_sys {
  bool synced;
  double offset;              /* the discipline's estimate then, NTP sign convention */
  double frequency;           /* ppm, the discipline's (estimated only under -x) */
  uint64_t disc_updates;      /* samples the discipline has taken */
  uint64_t disc_steps;        /* steps it commanded */
  uint64_t core_updates;      /* selections run (fresh samples and the 1 s refresh) */
  uint64_t tx_timestamps;     /* requests timed by a kernel transmit timestamp */
  uint64_t stats_lines;       /* statistics records written (docs/statistics.md) */
  uint64_t stats_errors;      /* ... and lost to failures */
  ntp_sysinfo info;           /* what our clients are told */
  char system_peer[NETADDR_STRLEN + CONF_HOST_MAX]; /* as peer_view.address */
  ntp_sel_state sel_states[REPORT_MAX_PEERS];
  size_t sel_states_n;
} report_sys;

/* Each returns a malloc'd NUL-terminated string (NULL on out of memory). */
/* The text table names each source as configured (a pool's members by
 * address: they have no name of their own); numeric: by address and port,
 * as ntpq -n.  No reverse lookups.  JSON has both, as "remote" and "address". */
char *report_peers(const ntsd_clients *c, const report_sys *sys, double now, bool json,
                   bool numeric);
char *report_server(const ntsd_server *s, bool json);
/* clk: the clock backend, shown by name ("none": -x, estimates only) and,
 * for the virtual clock, with its error. */
char *report_system(const report_sys *sys, const clockctl *clk, bool json);
/* ke: the NTS-KE server's counters (NULL when it is off); ke_addr: where
 * it listens; ke_procs: how many KE processes serve it (`ntsprocesses`). */
char *report_nts(const ntsd_clients *c, const ke_server_stats *ke, const char *ke_addr,
                 unsigned ke_procs, const ntsd_server *srv, bool json);

/* What the metrics endpoint shows beyond the modules' own counters. */
typedef struct report_metrics_in {
  const ntsd_clients *clients;
  const report_sys *sys;
  const ntsd_server *server;
  const ke_server_stats *ke;   /* NULL: no NTS-KE server */
  unsigned ke_procs;           /* KE processes configured (`ntsprocesses`) ... */
  unsigned ke_serving;         /* ... and serving now */
  bool have_keys;              /* cookie keys (NTS server) */
  double key_age;              /* s since the current cookie key was made */
  uint64_t key_rotations;      /* since start */
  bool have_cert;
  double cert_not_after;       /* the NTS-KE certificate's, Unix time */
  double mono_now, wall_now;   /* monotonic and Unix time, s */
} report_metrics_in;

/* The Prometheus text exposition (0.0.4), or OpenMetrics 1.0.0; every
 * metric is listed in docs/metrics.md.  Malloc'd and NUL-terminated, its
 * length in *len. */
char *report_metrics(const report_metrics_in *in, bool openmetrics, size_t *len);

#endif
