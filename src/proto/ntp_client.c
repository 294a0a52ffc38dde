/* ntp_client: request building and response checks. */
#include "proto/ntp_client.h"

#include <math.h>

#include "proto/ntp_ef.h"

static const char *const drop_names[NTP_DROP_COUNT] = {
    [NTP_DROP_NONE] = "none",         [NTP_DROP_SHORT] = "short",
    [NTP_DROP_VERSION] = "version",   [NTP_DROP_MODE] = "mode",
    [NTP_DROP_MALFORMED] = "malformed", [NTP_DROP_AUTH] = "auth",
    [NTP_DROP_UNEXPECTED] = "unexpected", [NTP_DROP_BOGUS] = "bogus",
    [NTP_DROP_DUPLICATE] = "duplicate", [NTP_DROP_ZERO_TS] = "zero_ts",
    [NTP_DROP_KOD] = "kod",           [NTP_DROP_UNSYNC] = "unsync",
    [NTP_DROP_BAD_TIMES] = "bad_times",
};

const char *ntp_drop_name(ntp_drop d)
{
  return (d >= 0 && d < NTP_DROP_COUNT && drop_names[d]) ? drop_names[d] : "?";
}

size_t ntp_client_build_request(uint8_t *buf, size_t cap, uint8_t version, ntp_ts nonce_xmt)
{
  ntp_hdr h = {0};
  h.leap = NTP_LEAP_NONE; /* RFC 9109 suggests 0; some servers reject 3 */
  h.version = (version >= 1 && version <= 4) ? version : 4;
  h.mode = NTP_MODE_CLIENT;
  h.xmt = nonce_xmt;
  wire_wr w;
  wire_wr_init(&w, buf, cap);
  ntp_hdr_write(&w, &h);
  return wire_wr_ok(&w) ? wire_wr_len(&w) : 0;
}

/* Largest root delay / dispersion we take seriously (RFC 5905 MAXDISP 16 s). */
#define MAX_ROOT 16.0

ntp_drop ntp_client_check_response(const uint8_t *pkt, size_t len, ntp_ts sent_xmt,
                                   ntp_ts last_xmt, ntp_ts t1, ntp_ts t4,
                                   double local_precision, ntp_sample *out, ntp_kod *kod)
{
  ntp_hdr h;
  if (kod)
    *kod = NTP_KOD_NONE;
  if (!ntp_hdr_parse(pkt, len, &h))
    return NTP_DROP_SHORT;
  if (h.version < 1 || h.version > 4)
    return NTP_DROP_VERSION;
  if (h.mode != NTP_MODE_SERVER)
    return NTP_DROP_MODE;
  ntp_ef_status st = ntp_ef_validate(pkt, len, NULL, NULL);
  if (st == NTP_EF_MALFORMED)
    return NTP_DROP_MALFORMED;
  if (st == NTP_EF_MAC)
    return NTP_DROP_AUTH;
  /* Duplicate first: a replay of the previous response also fails the
   * origin and outstanding-request tests, but "duplicate" says more. */
  if (last_xmt != 0 && h.xmt == last_xmt)
    return NTP_DROP_DUPLICATE;
  if (sent_xmt == 0)
    return NTP_DROP_UNEXPECTED;
  if (h.org != sent_xmt)
    return NTP_DROP_BOGUS;
  if (h.stratum == 0) {
    ntp_kod k = ntp_kod_classify(&h);
    if (kod)
      *kod = k;
    /* Only codes that ask something of us are kisses; others (INIT, STEP,
     * ...) just say the server is not synchronised yet. */
    return k == NTP_KOD_OTHER ? NTP_DROP_UNSYNC : NTP_DROP_KOD;
  }
  if (h.rec == 0 || h.xmt == 0)
    return NTP_DROP_ZERO_TS;
  if (h.leap == NTP_LEAP_UNSYNC || h.stratum >= NTP_MAX_STRATUM)
    return NTP_DROP_UNSYNC;

  double server_time = ntp_ts_diff(h.xmt, h.rec); /* T3 - T2 */
  double round_trip = ntp_ts_diff(t4, t1);        /* T4 - T1 */
  /* A precision above 1 s is nonsense; clamp so it cannot hide a
   * negative delay or blow up the dispersion. */
  int prec_log2 = h.precision < -30 ? -30 : (h.precision > 0 ? 0 : h.precision);
  double prec_server = ntp_log2_to_double(prec_log2);
  double root_delay = ntp_short_to_double(h.root_delay);
  double root_disp = ntp_short_to_double(h.root_disp);
  if (server_time < 0.0 || round_trip < 0.0 || root_delay > MAX_ROOT || root_disp > MAX_ROOT)
    return NTP_DROP_BAD_TIMES;

  ntp_sample s;
  s.t1 = t1;
  s.t2 = h.rec;
  s.t3 = h.xmt;
  s.t4 = t4;
  s.offset = (ntp_ts_diff(h.rec, t1) + ntp_ts_diff(h.xmt, t4)) / 2.0;
  s.delay = round_trip - server_time;
  /* The server may have spent longer than our measured round trip only
   * through clock granularity; clamp to the precision floor. */
  double floor_delay = local_precision > 0.0 ? local_precision : 1e-9;
  if (s.delay < -(prec_server + floor_delay))
    return NTP_DROP_BAD_TIMES;
  if (s.delay < floor_delay)
    s.delay = floor_delay;
  s.dispersion = local_precision + prec_server + NTP_PHI * round_trip;
  s.root_delay = root_delay;
  s.root_disp = root_disp;
  s.stratum = h.stratum;
  s.leap = h.leap;
  s.precision = h.precision;
  s.poll = h.poll;
  s.refid = h.refid;
  if (!isfinite(s.offset) || !isfinite(s.delay))
    return NTP_DROP_BAD_TIMES;
  if (out)
    *out = s;
  return NTP_DROP_NONE;
}
