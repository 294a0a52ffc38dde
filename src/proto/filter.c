/* filter: per-source clock filter (minimum delay, popcorn spikes, jitter,
 * aged dispersion). */
#include "proto/filter.h"

#include <math.h>
#include <string.h>

#include "proto/ntp_client.h" /* NTP_PHI */

void ntp_filter_init(ntp_filter *f, double precision)
{
  memset(f, 0, sizeof(*f));
  f->precision = precision > 0 ? precision : 0;
}

int ntp_filter_count(const ntp_filter *f) { return f->n; }

/* Index of the i-th sample counting from the newest (i = 0). */
static int newest_idx(const ntp_filter *f, int i)
{
  return (f->pos - 1 - i + 2 * NTP_FILTER_LEN) % NTP_FILTER_LEN;
}

static double aged_disp(const ntp_filter_sample *s, double now)
{
  double age = now > s->t ? now - s->t : 0.0;
  return fmin(s->disp + NTP_PHI * age, NTP_FILTER_MAXDISP);
}

/* The sort key: the delay, and beyond the Allan intercept also the aged
 * dispersion, because there the clock's wander since the sample costs more
 * than a lower delay saves (as ntpd does). */
static double sort_key(const ntp_filter_sample *s, double now)
{
  if (now - s->t > NTP_FILTER_ALLAN)
    return s->delay + aged_disp(s, now);
  return s->delay;
}

/* Fills order[] with the indices of the register's samples by increasing
 * key at `now` and returns how many there are; spikes are left out when
 * `skip_spikes`.  Equal keys put the newer sample first, so the choice is
 * deterministic and favours fresh data. */
static int sort_samples(const ntp_filter *f, double now, bool skip_spikes,
                        int order[NTP_FILTER_LEN])
{
  double key[NTP_FILTER_LEN];
  int m = 0;
  for (int i = 0; i < f->n; i++) {
    int k = newest_idx(f, i);
    key[k] = sort_key(&f->reg[k], now);
    if (!(skip_spikes && f->reg[k].spike))
      order[m++] = k;
  }
  for (int i = 1; i < m; i++) { /* insertion sort: stable, m <= 8 */
    int v = order[i], j = i;
    while (j > 0 && key[order[j - 1]] > key[v]) {
      order[j] = order[j - 1];
      j--;
    }
    order[j] = v;
  }
  return m;
}

/* RMS of the non-spike offsets around the used sample's (RFC 5905 peer
 * jitter), floored at our precision. */
static void update_jitter(ntp_filter *f)
{
  double sq = 0.0;
  int m = 0;
  for (int i = 0; i < f->n; i++) {
    if (f->reg[i].spike)
      continue;
    double d = f->reg[i].offset - f->out.offset;
    sq += d * d;
    m++;
  }
  double jit = m > 1 ? sqrt(sq / (m - 1)) : 0.0;
  f->jitter = jit > f->precision ? jit : f->precision;
  f->jitter_n = m;
}

/* Popcorn spike test for a sample on arrival (before it enters the
 * register); sets x->displaced and x->spike.  The gate only applies once
 * jitter is established.  A displacement persists when the sample before
 * was displaced the same way, and then that one is no spike either. */
static void check_spike(ntp_filter *f, ntp_filter_sample *x)
{
  x->displaced = 0;
  x->spike = false;
  if (!f->have_out || f->jitter_n < NTP_FILTER_JITTER_MIN)
    return;
  double diff = x->offset - f->out.offset;
  if (fabs(diff) <= NTP_FILTER_SGATE * f->jitter)
    return;
  x->displaced = diff < 0 ? -1 : 1;
  ntp_filter_sample *prev = &f->reg[newest_idx(f, 0)]; /* have_out: n >= 1 */
  if (prev->displaced == x->displaced) {
    prev->spike = false;
    return;
  }
  x->spike = true;
}

ntp_filter_result ntp_filter_add(ntp_filter *f, double offset, double delay, double disp,
                                 double now)
{
  ntp_filter_sample x = {.offset = offset, .delay = delay, .disp = disp, .t = now};
  check_spike(f, &x);
  f->reg[f->pos] = x;
  f->pos = (f->pos + 1) % NTP_FILTER_LEN;
  if (f->n < NTP_FILTER_LEN)
    f->n++;

  ntp_filter_result r;
  int order[NTP_FILTER_LEN];
  int m = sort_samples(f, now, true, order);
  if (x.spike) {
    r = NTP_FILTER_SPIKE;
  } else if (m == 0 || (f->have_out && f->reg[order[0]].t <= f->out.t)) {
    /* RFC 5905 "prime directive": never reuse a sample or go back in time. */
    r = NTP_FILTER_OLD;
  } else {
    f->out = f->reg[order[0]];
    f->have_out = true;
    r = NTP_FILTER_UPDATED;
  }
  update_jitter(f);
  return r;
}

bool ntp_filter_get(const ntp_filter *f, double now, ntp_filter_out *out)
{
  memset(out, 0, sizeof(*out));
  out->n = f->n;
  if (!f->have_out) {
    out->dispersion = NTP_FILTER_MAXDISP;
    return false;
  }
  /* Spikes count here like any sample: dispersion says how full and how
   * fresh the register is. */
  int order[NTP_FILTER_LEN];
  sort_samples(f, now, false, order);
  /* RFC 5905: weights 1/2, 1/4, ... in sort order; empty slots count as
   * maximum dispersion so a young filter is not trusted too much. */
  double disp = 0.0;
  for (int i = 0; i < NTP_FILTER_LEN; i++)
    disp += ldexp(i < f->n ? aged_disp(&f->reg[order[i]], now) : NTP_FILTER_MAXDISP, -(i + 1));
  out->offset = f->out.offset;
  out->delay = f->out.delay;
  out->dispersion = disp;
  out->jitter = f->jitter;
  out->t = f->out.t;
  return true;
}

const char *ntp_filter_result_name(ntp_filter_result r)
{
  switch (r) {
  case NTP_FILTER_UPDATED: return "updated";
  case NTP_FILTER_OLD: return "old";
  case NTP_FILTER_SPIKE: return "spike";
  }
  return "?";
}
