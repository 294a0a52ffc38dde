/* select: interim system-peer selection. */
#include "proto/select.h"

static ntp_sel_state classify(const ntp_source_info *i, const ntp_select_cfg *cfg)
{
  if (!i->have_sample || i->reach == 0 || i->denied || i->stratum == 0 ||
      i->stratum >= NTP_MAX_STRATUM || i->leap == NTP_LEAP_UNSYNC)
    return NTP_SEL_UNUSABLE;
  if (i->noselect)
    return NTP_SEL_NOSELECT;
  if (ntp_source_info_root_distance(i, cfg->mindist) > cfg->maxdist)
    return NTP_SEL_FAR;
  return NTP_SEL_CANDIDATE;
}

int ntp_select(const ntp_source_info *infos, size_t n, const ntp_select_cfg *cfg,
               ntp_sel_state *states)
{
  int best = -1;
  double best_dist = 0.0;
  bool best_prefer = false;
  for (size_t k = 0; k < n; k++) {
    states[k] = classify(&infos[k], cfg);
    if (states[k] != NTP_SEL_CANDIDATE)
      continue;
    double d = ntp_source_info_root_distance(&infos[k], cfg->mindist);
    bool pref = infos[k].prefer;
    if (best < 0 || (pref && !best_prefer) || (pref == best_prefer && d < best_dist)) {
      best = (int)k;
      best_dist = d;
      best_prefer = pref;
    }
  }
  if (best >= 0)
    states[best] = NTP_SEL_SYSPEER;
  return best;
}

char ntp_sel_tally(ntp_sel_state st)
{
  switch (st) {
  case NTP_SEL_SYSPEER: return '*';
  case NTP_SEL_CANDIDATE: return '+';
  case NTP_SEL_FAR: return '-';
  case NTP_SEL_NOSELECT:
  case NTP_SEL_UNUSABLE: return ' ';
  }
  return ' ';
}
