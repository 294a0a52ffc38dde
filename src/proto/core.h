/* core: the engine that turns the sources' samples into decisions about
 * the clock, sans-I/O.  One object holds the clock discipline, the
 * previous selection and which samples it has fed already; it never reads
 * a clock, a socket or a random number.
 *
 * Each update the caller hands over, for every source by a stable index,
 * what its ntp_source says (ntp_core_set_source: the info and the raw
 * filter samples) and then the monotonic time (ntp_core_update).  The core
 *   1. ages every source's offset to now with the discipline's estimate
 *      (samples are several polls old; selection compares them at one time),
 *   2. runs selection (proto/select.h) with the configured `tos`, keeping
 *      the previous system peer against clock-hopping,
 *   3. while synchronised, feeds the discipline every survivor's samples it
 *      has not fed yet, oldest first, each of an unauthenticated survivor
 *      only if it agrees with the authenticated sources on its own
 *      (ntp_select_sample_agrees), and stops at a step,
 *   4. derives each source's poll from the discipline, and what our own
 *      clients are told (ntp_core_sys).
 * It returns the actions (a step, a frequency with its slew end, the next
 * wake-up, polls, the leap and sync status) for the caller to apply: the
 * daemon to its clock backend and sources, the simulator to its virtual
 * ones.  Fixed arrays, sized by NTP_CORE_MAX_SOURCES: nothing is allocated
 * after ntp_core_create. */
#ifndef NTSD_PROTO_CORE_H
#define NTSD_PROTO_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/discipline.h"
#include "proto/filter.h"
#include "proto/select.h"
#include "proto/source.h"

#define NTP_CORE_MAX_SOURCES 256 /* sources by index 0..255; more are ignored */

/* Which samples reach the discipline.  SURVIVORS is what the daemon runs;
 * the other two are kept for the simulator's comparisons
 * (docs/discipline.md). */
typedef enum ntp_core_feed {
  NTP_CORE_FEED_SURVIVORS = 0, /* every new sample of every survivor, its own offset */
  NTP_CORE_FEED_PEER,          /* a new sample of the system peer, its filter output */
  NTP_CORE_FEED_COMBINED,      /* the same moment, the combined offset (RFC 5905) */
} ntp_core_feed;

typedef struct ntp_core_cfg {
  ntp_select_cfg select; /* `tos`, authselect and auth_configured included */
  ntp_disc_cfg disc;     /* its precision is the one below */
  int local_stratum;     /* `local stratum`: served while unsynchronised, 0: off */
  double precision;      /* our clock's reading precision, seconds */
  int8_t precision_log2; /* the same as NTP serves it */
  ntp_core_feed feed;
  bool no_envelope;      /* survivors: feed no delays (no delay envelope); comparisons only */
  /* Called for each sample fed, with the discipline's answer (optional):
   * src is the source's index, now the update's time.  For logs, traces
   * and statistics; it must not call back into the core but for reads. */
  void (*on_feed)(void *arg, double now, size_t src, const ntp_disc_sample *s, int poll,
                  const ntp_disc_action *a);
  void *on_feed_arg;
} ntp_core_cfg;

/* Defaults: selection and discipline defaults, no local stratum. */
void ntp_core_default_cfg(ntp_core_cfg *cfg);

/* What to do after an update or a tick. */
typedef struct ntp_core_actions {
  bool adjust;          /* the discipline spoke: apply step, freq_ppm and slew_until */
  double step;          /* seconds to add to the clock (0: none); the sources
                           must then forget their samples */
  bool startup;         /* the step is a start-up step */
  double freq_ppm;      /* frequency offset from now on (base + slew) */
  double slew_until;    /* monotonic end of the slew: call ntp_core_tick() then,
                           INFINITY if none (also the next wake-up the core wants) */
  bool refused_panic;   /* an offset beyond the panic threshold was refused */
  /* Per source, the poll (log2 s) the discipline asks for, -1: no advice. */
  int poll[NTP_CORE_MAX_SOURCES];
  size_t n_poll;
  /* For the kernel: leap indicator and whether the system is synchronised. */
  uint8_t leap;
  bool synced;
  /* The clock took the time (synced, and the discipline has corrected it or,
   * estimating only, taken a sample). */
  bool clock_synced;
} ntp_core_actions;

/* What the system serves and reports: a snapshot of the last update. */
typedef struct ntp_core_sys {
  bool synced;          /* selection found a system peer */
  int sys_peer;         /* its index, -1 if none */
  ntp_select_result sel;
  double offset;        /* the discipline's estimate at the update */
  double frequency;     /* the discipline's base frequency, ppm */
  /* ntp_sysinfo but for the reference time, which needs the wall clock:
   * the reference was taken ref_age seconds before the update (-1: none,
   * reftime 0). */
  uint8_t leap, stratum;
  int8_t precision;
  uint32_t refid;
  double root_delay, root_disp;
  double ref_age;
  uint64_t updates;     /* ntp_core_update() calls so far */
} ntp_core_sys;

typedef struct ntp_core ntp_core;

/* now: monotonic seconds (the discipline's start).  NULL on out of memory. */
ntp_core *ntp_core_create(const ntp_core_cfg *cfg, double now);
void ntp_core_destroy(ntp_core *c);

/* Source i's state for the next update: its info (with `authenticated`,
 * prefer and noselect set), its filter's raw samples oldest first
 * (ntp_source_samples; the core skips those it has fed), and the refid we
 * serve when it is our system peer (from its address).  info NULL: the
 * source has no association yet.  Sources not set since the last update
 * count as such. */
void ntp_core_set_source(ntp_core *c, size_t i, const ntp_source_info *info,
                         const ntp_filter_raw *raw, int n_raw, uint32_t refid);

/* The same with the samples read from src; info NULL: src's own at now. */
void ntp_core_set_from(ntp_core *c, size_t i, const ntp_source *src,
                       const ntp_source_info *info, double now, uint32_t refid);

/* Runs selection and the discipline over sources 0..n (the caller set
 * them), at monotonic time now. */
void ntp_core_update(ntp_core *c, double now, size_t n, ntp_core_actions *out);

/* A slew has ended (at actions.slew_until): its actions (adjust only). */
void ntp_core_tick(ntp_core *c, double now, ntp_core_actions *out);

/* The snapshot of the last update; the selection state of source i. */
const ntp_core_sys *ntp_core_get_sys(const ntp_core *c);
ntp_sel_state ntp_core_sel_state(const ntp_core *c, size_t i);

/* The discipline's figures (drift file, reports) and its offset now. */
void ntp_core_disc_info(const ntp_core *c, ntp_disc_info *out);
double ntp_core_offset_now(const ntp_core *c, double now);

#endif
