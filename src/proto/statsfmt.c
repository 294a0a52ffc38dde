/* statsfmt: NTPsec's statistics lines (see statsfmt.h). */
#include "proto/statsfmt.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#define MJD_1970 40587 /* Modified Julian Day of 1970-01-01 */

int64_t statsfmt_day(int64_t unix_sec)
{
  int64_t d = unix_sec / 86400;
  return unix_sec % 86400 < 0 ? d - 1 : d;
}

/* Civil date from days since 1970 (proleptic Gregorian, eras of 400 years). */
void statsfmt_day_suffix(int64_t day, char out[9])
{
  int64_t z = day + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t d = doy - (153 * mp + 2) / 5 + 1;
  int64_t m = mp < 10 ? mp + 3 : mp - 9;
  int64_t y = yoe + era * 400 + (m <= 2);
  if (y < 0 || y > 9999)
    y = 0; /* keeps 8 digits; not a date anyone runs at */
  snprintf(out, 9, "%04d%02d%02d", (int)y, (int)m, (int)d);
}

uint16_t statsfmt_peer_status(const statsfmt_peer_state *s)
{
  /* Selection codes as NTPsec numbers them (RFC 5905 appendix B's table). */
  static const uint8_t sel[] = {
      [NTP_SEL_UNUSABLE] = 0, [NTP_SEL_NOSELECT] = 0,  [NTP_SEL_FAR] = 0,
      [NTP_SEL_FALSETICKER] = 1, [NTP_SEL_EXCESS] = 2, [NTP_SEL_OUTLIER] = 3,
      [NTP_SEL_CANDIDATE] = 4, [NTP_SEL_BACKUP] = 5,   [NTP_SEL_SYSPEER] = 6,
      [NTP_SEL_PPS] = 7};
  unsigned hi = (s->configured ? 0x80u : 0) | (s->auth_enabled ? 0x40u : 0) |
                (s->authentic ? 0x20u : 0) | (s->reachable ? 0x10u : 0);
  if ((unsigned)s->sel < sizeof(sel))
    hi |= sel[s->sel];
  unsigned n = s->event_count > 15 ? 15 : s->event_count;
  return (uint16_t)(hi << 8 | n << 4 | (s->last_event & 0xfu));
}

void statsfmt_refid(uint8_t stratum, uint32_t refid, char out[16])
{
  if (stratum > 1) {
    snprintf(out, 16, "%u.%u.%u.%u", refid >> 24, (refid >> 16) & 0xffu, (refid >> 8) & 0xffu,
             refid & 0xffu);
    return;
  }
  size_t n = 0;
  out[n++] = '.';
  for (int i = 3; i >= 0; i--) {
    unsigned c = (refid >> (8 * i)) & 0xffu;
    if (c > 0x20 && c < 0x7f)
      out[n++] = (char)c;
  }
  out[n++] = '.';
  out[n] = '\0';
}

/* "MJD SECONDS.mmm", milliseconds truncated as NTPsec prints them. */
static int when(char *buf, size_t cap, statsfmt_time t)
{
  int64_t day = statsfmt_day(t.sec);
  int64_t sod = t.sec - day * 86400;
  return snprintf(buf, cap, "%" PRId64 " %" PRId64 ".%03u", day + MJD_1970, sod,
                  (unsigned)(t.nsec % 1000000000u / 1000000u));
}

/* An NTP timestamp as seconds.fraction, 9 decimals rounded. */
static void ts_str(ntp_ts t, char out[24])
{
  uint64_t sec = t >> 32;
  uint64_t ns = ((t & 0xffffffffu) * 1000000000ULL + 0x80000000ULL) >> 32;
  if (ns >= 1000000000ULL) {
    ns -= 1000000000ULL;
    sec = (sec + 1) & 0xffffffffu;
  }
  snprintf(out, 24, "%" PRIu64 ".%09" PRIu64, sec, ns);
}

/* Appends to buf after its prefix; 0 if the whole does not fit. */
__attribute__((format(printf, 4, 5)))
static size_t finish(char *buf, size_t cap, int head, const char *fmt, ...)
{
  if (head < 0 || (size_t)head >= cap)
    return 0;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf + head, cap - (size_t)head, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= cap - (size_t)head)
    return 0;
  return (size_t)head + (size_t)n;
}

size_t statsfmt_loopstats(char *buf, size_t cap, statsfmt_time now, const statsfmt_loop *l)
{
  return finish(buf, cap, when(buf, cap, now), " %.9f %.6f %.9f %.6f %d\n", l->offset,
                l->freq_ppm, l->jitter, l->wander_ppm, l->time_constant);
}

size_t statsfmt_peerstats(char *buf, size_t cap, statsfmt_time now, const statsfmt_peer *p)
{
  return finish(buf, cap, when(buf, cap, now), " %s %04x %.9f %.9f %.9f %.9f\n", p->addr,
                p->status, p->offset, p->delay, p->dispersion, p->jitter);
}

size_t statsfmt_rawstats(char *buf, size_t cap, statsfmt_time now, const statsfmt_raw *r)
{
  char t[4][24], refid[16];
  ts_str(r->t1, t[0]);
  ts_str(r->t2, t[1]);
  ts_str(r->t3, t[2]);
  ts_str(r->t4, t[3]);
  statsfmt_refid(r->stratum, r->refid, refid);
  /* The last two: packets dropped since the request (we log none) and the
   * flash bits, 0 for an accepted reply (the only ones logged). */
  return finish(buf, cap, when(buf, cap, now),
                " %s %s %s %s %s %s %u %u %u %u %d %d %.6f %.6f %s %u 0 0\n", r->src, r->dst,
                t[0], t[1], t[2], t[3], r->leap, r->version, r->mode, r->stratum, r->poll,
                r->precision, r->root_delay, r->root_disp, refid, r->lost);
}
