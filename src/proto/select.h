/* select: choosing the system peer among sources.  This is the interim
 * selection of the foundation release: the usable source with the smallest
 * root distance, `prefer` first.  The full intersection/clustering
 * algorithm replaces it. */
#ifndef NTSD_PROTO_SELECT_H
#define NTSD_PROTO_SELECT_H

#include <stddef.h>

#include "proto/source.h"

typedef struct ntp_select_cfg {
  double mindist; /* tos mindist, default 0.001 s */
  double maxdist; /* tos maxdist, default 1.5 s */
} ntp_select_cfg;

/* Why a source is or is not a candidate (the ntpq -p tally character). */
typedef enum ntp_sel_state {
  NTP_SEL_UNUSABLE = 0, /* ' ' no sample, unreachable, unsynchronised, denied */
  NTP_SEL_NOSELECT,     /* ' ' configured noselect */
  NTP_SEL_FAR,          /* '-' root distance beyond maxdist */
  NTP_SEL_CANDIDATE,    /* '+' */
  NTP_SEL_SYSPEER,      /* '*' */
} ntp_sel_state;

/* Fills states[i] for each source and returns the index of the system peer,
 * or -1 if none is usable. */
int ntp_select(const ntp_source_info *infos, size_t n, const ntp_select_cfg *cfg,
               ntp_sel_state *states);

char ntp_sel_tally(ntp_sel_state st);

#endif
