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
  f->min_delay = -1.0;
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

  double reg_min = INFINITY;
  for (int i = 0; i < f->n; i++)
    reg_min = fmin(reg_min, f->reg[i].delay);
  if (f->min_delay < 0 || delay < f->min_delay)
    f->min_delay = delay;
  else
    f->min_delay += (reg_min - f->min_delay) / NTP_FILTER_MIN_RELAX;

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
  /* RFC 5905: weights 1/2, 1/4, ... in sort order.  The RFC counts empty
   * slots as maximum dispersion, which keeps a source out of selection
   * until four samples are in (6 s of iburst).  Here a single sample is
   * not trusted (an empty slot is MAXDISP), but from two on an empty slot
   * counts as the worst held sample: two agreeing samples are enough to
   * start on, and the discipline weights what follows. */
  double empty = NTP_FILTER_MAXDISP;
  if (f->n >= NTP_FILTER_MIN_SAMPLES) {
    empty = 0.0;
    for (int i = 0; i < f->n; i++)
      empty = fmax(empty, aged_disp(&f->reg[i], now));
  }
  double disp = 0.0;
  for (int i = 0; i < NTP_FILTER_LEN; i++)
    disp += ldexp(i < f->n ? aged_disp(&f->reg[order[i]], now) : empty, -(i + 1));
  out->offset = f->out.offset;
  out->delay = f->out.delay;
  out->dispersion = disp;
  out->jitter = f->jitter;
  out->t = f->out.t;
  return true;
}

double ntp_filter_error_floor(double *ex, int n, double min_delay, unsigned seen,
                              double precision)
{
  if (n <= 0)
    return fmax(precision, 1e-9);
  for (int i = 1; i < n; i++) { /* insertion sort of the excesses */
    double v = ex[i];
    int j = i;
    while (j > 0 && ex[j - 1] > v) {
      ex[j] = ex[j - 1];
      j--;
    }
    ex[j] = v;
  }
  /* The typical excess: the median, robust to the odd queued or spiking
   * sample; of two samples the smaller (the other may be a spike, which
   * would otherwise give the good one its error). */
  double excess = n >= 3 ? ex[n / 2] : ex[0];
  double floor_err = fmax(NTP_FILTER_ERR_FLOOR * excess / 2.0, precision);
  /* A young source has not seen the path's minimum yet: its samples may
   * all have queued.  Until it has NTP_FILTER_LEN, part of the physical
   * bound (half the minimum delay: no asymmetry error can exceed it) is
   * added. */
  if (seen < NTP_FILTER_LEN)
    floor_err += min_delay / 2.0 * (double)(NTP_FILTER_LEN - seen) / NTP_FILTER_LEN;
  return floor_err > 0 ? floor_err : 1e-9;
}

int ntp_filter_samples(const ntp_filter *f, double after, ntp_filter_raw *out, int cap)
{
  if (f->n == 0 || cap <= 0)
    return 0;
  double dmin = f->min_delay, ex[NTP_FILTER_LEN];
  for (int i = 0; i < f->n; i++)
    ex[i] = fmax(f->reg[i].delay - dmin, 0.0);
  double floor_err = ntp_filter_error_floor(ex, f->n, dmin, (unsigned)f->n, f->precision);
  int m = 0;
  for (int i = f->n - 1; i >= 0 && m < cap; i--) { /* oldest first */
    const ntp_filter_sample *s = &f->reg[newest_idx(f, i)];
    if (s->spike || !(s->t > after))
      continue;
    out[m++] = (ntp_filter_raw){.t = s->t, .offset = s->offset, .delay = s->delay,
                                .error = floor_err + fmax(s->delay - dmin, 0.0) / 2.0};
  }
  return m;
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
