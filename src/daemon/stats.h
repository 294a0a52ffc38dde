/* stats: the statistics files the configuration asks for (`statsdir`,
 * `statistics`, `filegen`): loopstats from each discipline update,
 * peerstats and rawstats from each accepted reply, in NTPsec's formats
 * (proto/statsfmt.h, docs/statistics.md).  Times are the daemon's clock
 * (clockctl), so a virtual clock dates the records too. */
#ifndef NTSD_DAEMON_STATS_H
#define NTSD_DAEMON_STATS_H

#include <stdbool.h>
#include <stddef.h>

#include "daemon/client.h"
#include "daemon/clockctl.h"
#include "daemon/conf.h"
#include "proto/select.h"

typedef struct stats stats;

/* NULL when no file is enabled, or (logged) on out of memory; a file
 * enabled without `statsdir` is logged and not written. */
stats *stats_create(const ntsd_conf *conf, const clockctl *clk);
void stats_destroy(stats *s);

/* One sample fed to the discipline: its offset, the frequency and its
 * error (ppm) after it, and the poll the discipline runs at. */
void stats_loop(stats *s, double offset, double freq_ppm, double wander_ppm, int poll);

/* An accepted reply of association i: v its view after the sample, sel
 * its selection state at the last update. */
void stats_reply(stats *s, size_t i, const clients_reply *r, const peer_view *v,
                 ntp_sel_state sel);

/* Lines written and failures, all files together. */
void stats_counts(const stats *s, uint64_t *lines, uint64_t *errors);

#endif
