/* select: from the sources' filter outputs to one system offset (RFC 5905
 * 11.2).  Stages, each of which leaves a mark on the sources it drops:
 *
 *  1. sanity: a source needs a sample, reach, a stratum 1..15, no alarm, no
 *     DENY/RSTR, finite values, and root distance within maxdist.  The first
 *     NTP_SELECT_MAX passing sources (by index) are the candidates.
 *  2. intersection (Marzullo, RFC 5905 11.2.1): the smallest f < c/2 such
 *     that some point lies in the correctness intervals [offset - lambda,
 *     offset + lambda] of c - f candidates; the hull of those points is the
 *     intersection, and a candidate whose interval misses it is a
 *     falseticker.  Like ntpd 4.2.8 and NTPsec (unlike the RFC's pseudo-code)
 *     midpoints are not counted, so a source whose interval does overlap the
 *     majority's is never called false.  No such f: no majority.
 *  3. truechimers in order of stratum x maxdist + lambda (the RFC's merit);
 *     those beyond maxclock are excess.  Fewer than minsane truechimers:
 *     too few to declare synchronisation.
 *  4. clustering (RFC 5905 11.2.2): while more than minclock survive, drop
 *     the one with the largest selection jitter (RMS offset difference to
 *     the others), unless that is already no larger than the smallest peer
 *     jitter (dropping more cannot help).  Prefer peers are never dropped.
 *  5. system peer: among prefer survivors if there are any, else among all,
 *     the smallest root distance.  To avoid clock-hopping between sources of
 *     the same quality (which would change stratum and refid every few
 *     polls), the previous system peer stays while its root distance is
 *     within NTP_SELECT_RESELECT times the best one's.
 *  6. combining (RFC 5905 11.2.3): the system peer and the next
 *     NTP_SELECT_COMBINE_MAX - 1 survivors by root distance are averaged with
 *     weights 1/lambda; further survivors are backups.  System jitter is the
 *     system peer's jitter combined (RSS) with the weighted RMS of the
 *     combined offsets around the system peer's.  With prefer_offset, a
 *     prefer system peer's own offset and jitter are used instead (the ntpd
 *     and NTPsec "prefer" rule), so a trusted source is not pulled towards
 *     the others.
 *  7. leap indicator: whatever more than half of the survivors announce.
 *
 * Authentication (tos authselect, ntp_authsel) decides what unauthenticated
 * sources may do while an authenticated (NTS) one is configured, so that
 * forged replies from plain sources cannot outvote it.  "Configured" means
 * present in infos[] with `authenticated` set and not noselect, whether or
 * not it is usable right now, or counted in cfg->auth_configured (sources
 * in the configuration that have no association yet: a name that does not
 * resolve): an attacker who blocks the NTS traffic, or the DNS answer
 * that names the NTS server, must not thereby hand the clock to the plain
 * sources.
 *
 *  require  unauthenticated sources are never candidates (state noselect).
 *  prefer   as require while an authenticated source is configured; with
 *           none, as ignore.
 *  mix      (default) while an authenticated source is configured:
 *           stage 2 runs over the authenticated candidates alone; an
 *           unauthenticated candidate is a truechimer only if its interval
 *           overlaps that intersection, and a falseticker otherwise.  No
 *           authenticated candidate: status NO_AUTH, no synchronisation.
 *           In stage 3 authenticated truechimers rank before the others;
 *           stage 4 never drops the last authenticated survivor; the
 *           system peer (stage 5) is the best authenticated survivor (prefer
 *           counts among those); only authenticated survivors vote on the
 *           leap indicator (stage 7).  Unauthenticated survivors are
 *           combined (stage 6), so they can move the offset only by as much
 *           as agreeing with the authenticated intersection allows; and as
 *           a survivor passed on its filter output only, each of its samples
 *           must agree on its own before it reaches the clock discipline
 *           (ntp_select_sample_agrees).  With no authenticated source
 *           configured, as ignore.
 *  ignore   authentication plays no part.
 *
 * Pure and allocation-free: the caller provides the state array; work space
 * is on the stack, bounded by NTP_SELECT_MAX. */
#ifndef NTSD_PROTO_SELECT_H
#define NTSD_PROTO_SELECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/source.h"

#define NTP_SELECT_MAX 64         /* candidates considered; more are excess */
#define NTP_SELECT_COMBINE_MAX 6  /* survivors averaged; the rest are backups */
#define NTP_SELECT_RESELECT 1.5   /* previous system peer kept within this ratio */

/* tos authselect: see above. */
typedef enum ntp_authsel {
  NTP_AUTHSEL_MIX = 0, /* the default */
  NTP_AUTHSEL_PREFER,
  NTP_AUTHSEL_REQUIRE,
  NTP_AUTHSEL_IGNORE,
} ntp_authsel;

typedef struct ntp_select_cfg {
  double mindist;     /* tos mindist: floor of the half round trip in lambda (0.001 s) */
  double maxdist;     /* tos maxdist: farther sources are not candidates (1.5 s) */
  int minsane;        /* tos minsane: truechimers needed to declare sync (1) */
  int minclock;       /* tos minclock: clustering keeps at least this many (3) */
  int maxclock;       /* tos maxclock: truechimers considered, the rest excess (10) */
  bool prefer_offset; /* a prefer system peer's offset is the system's (true) */
  ntp_authsel authsel; /* tos authselect (mix) */
  int auth_configured; /* authenticated, selectable sources configured, whether
                          or not they have an association yet (0) */
} ntp_select_cfg;

/* The defaults above (those of ntpd and NTPsec). */
void ntp_select_cfg_default(ntp_select_cfg *cfg);

/* A source's fate in the last selection, shown as the ntpq tally character. */
typedef enum ntp_sel_state {
  NTP_SEL_UNUSABLE = 0, /* ' ' no sample, unreachable, unsynchronised, denied */
  NTP_SEL_NOSELECT,     /* ' ' configured noselect; unauthenticated under
                           authselect require, or prefer with an authenticated source */
  NTP_SEL_FAR,          /* ' ' root distance beyond maxdist */
  NTP_SEL_FALSETICKER,  /* 'x' outside the intersection (all of them if no majority) */
  NTP_SEL_EXCESS,       /* '.' beyond maxclock (or NTP_SELECT_MAX) */
  NTP_SEL_OUTLIER,      /* '-' removed by clustering */
  NTP_SEL_CANDIDATE,    /* '+' combined (or, when not synchronised, a truechimer) */
  NTP_SEL_BACKUP,       /* '#' survivor not combined */
  NTP_SEL_SYSPEER,      /* '*' */
  NTP_SEL_PPS,          /* 'o' reserved: PPS system peer (no PPS support yet) */
} ntp_sel_state;

typedef enum ntp_select_status {
  NTP_SELECT_SYNC = 0,    /* a system peer and a combined offset */
  NTP_SELECT_NO_SOURCES,  /* no candidate passed the sanity checks */
  NTP_SELECT_TOO_FEW,     /* fewer than minsane truechimers */
  NTP_SELECT_NO_MAJORITY, /* no interval is shared by a majority of candidates */
  NTP_SELECT_NO_AUTH,     /* authselect mix: authenticated sources are configured but
                             none is a candidate; the unauthenticated candidates, which
                             nothing vouches for, keep their '+' */
} ntp_select_status;

typedef struct ntp_select_result {
  ntp_select_status status;
  int sys_peer;      /* index into the sources, -1 unless SYNC */
  double offset;     /* combined offset, seconds, NTP sign convention; 0 unless SYNC */
  double jitter;     /* system jitter, seconds; 0 unless SYNC */
  double low, high;  /* the intersection (of the authenticated candidates when
                        authselect mix splits them); 0 if none was found */
  int n_candidates;  /* passed the sanity checks (at most NTP_SELECT_MAX) */
  int n_truechimers; /* inside the intersection, before the maxclock cut */
  int n_survivors;   /* after clustering: '*', '+' and '#'; 0 unless SYNC */
  int n_combined;    /* '*' and '+'; 0 unless SYNC */
  uint8_t leap;      /* majority of survivors; NTP_LEAP_UNSYNC unless SYNC */
  bool auth_split;   /* authselect mix split the sources (an authenticated one is
                        configured): see ntp_select_sample_agrees() */
} ntp_select_result;

/* Runs the selection over infos[0..n) and fills states[0..n) (may be NULL
 * only when n is 0) and *res.  prev_sys_peer: the index chosen last time,
 * or -1.  Returns res->status.  Deterministic: ties go to the lower index. */
ntp_select_status ntp_select(const ntp_source_info *infos, size_t n,
                             const ntp_select_cfg *cfg, int prev_sys_peer,
                             ntp_sel_state *states, ntp_select_result *res);

/* Whether one sample of survivor *src may reach the clock discipline after
 * ntp_select() returned *res: always, unless res->auth_split and the source
 * is unauthenticated; then only if [offset - l, offset + l] overlaps the
 * authenticated intersection, where l = max(mindist, (delay + root delay)
 * / 2) + root dispersion is the sample's own bound.  Selection judged the
 * source by its filter output, whose interval includes the jitter; a forger
 * can inflate that jitter with alternating lies and true answers, and have
 * the lies fed to the discipline alongside the true ones it was judged by.
 * offset: the sample's, aged to the time of the selection as the source's
 * was; delay: the sample's round trip. */
bool ntp_select_sample_agrees(const ntp_select_result *res, const ntp_select_cfg *cfg,
                              const ntp_source_info *src, double offset, double delay);

/* The ntpq tally character and the name used in JSON ("sys.peer",
 * "candidate", "backup", "outlier", "excess", "falseticker", "far",
 * "noselect", "unusable", "pps.peer"). */
char ntp_sel_tally(ntp_sel_state st);
const char *ntp_sel_name(ntp_sel_state st);

/* "sync", "no_sources", "too_few", "no_majority", "no_auth". */
const char *ntp_select_status_name(ntp_select_status st);

/* "require", "prefer", "mix", "ignore"; and back: false for any other word. */
const char *ntp_authsel_name(ntp_authsel mode);
bool ntp_authsel_from_name(const char *name, ntp_authsel *mode);

#endif
