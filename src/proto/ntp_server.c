/* ntp_server: stateless request -> response. */
#include "proto/ntp_server.h"

#include "proto/ntp_ef.h"

static const char *const result_names[NTP_SRV_RESULT_COUNT] = {
    [NTP_SRV_RESPOND] = "respond",        [NTP_SRV_DROP_SHORT] = "short",
    [NTP_SRV_DROP_VERSION] = "version",   [NTP_SRV_DROP_MODE] = "mode",
    [NTP_SRV_DROP_MALFORMED] = "malformed", [NTP_SRV_DROP_AUTH] = "auth",
    [NTP_SRV_DROP_BUFFER] = "buffer",
};

const char *ntp_srv_result_name(ntp_srv_result r)
{
  return (r >= 0 && r < NTP_SRV_RESULT_COUNT && result_names[r]) ? result_names[r] : "?";
}

static ntp_srv_result check_request(const uint8_t *req, size_t len, ntp_hdr *h)
{
  if (!ntp_hdr_parse(req, len, h))
    return NTP_SRV_DROP_SHORT;
  if (h->version < 1 || h->version > 4)
    return NTP_SRV_DROP_VERSION;
  if (h->mode != NTP_MODE_CLIENT)
    return NTP_SRV_DROP_MODE;
  /* Extension fields of a plain request are walked for validity and
   * otherwise ignored; a legacy MAC needs keys we do not have. */
  ntp_ef_status st = ntp_ef_validate(req, len, NULL, NULL);
  if (st == NTP_EF_MALFORMED)
    return NTP_SRV_DROP_MALFORMED;
  if (st == NTP_EF_MAC)
    return NTP_SRV_DROP_AUTH;
  return NTP_SRV_RESPOND;
}

ntp_srv_result ntp_server_prepare(const uint8_t *req, size_t len, const ntp_sysinfo *sys,
                                  ntp_ts rx, uint8_t *out, size_t cap, size_t *out_len)
{
  ntp_hdr q;
  ntp_srv_result res = check_request(req, len, &q);
  if (res != NTP_SRV_RESPOND)
    return res;
  if (cap < NTP_HDR_LEN)
    return NTP_SRV_DROP_BUFFER;

  ntp_hdr r = {0};
  r.leap = sys->leap;
  r.version = q.version;
  r.mode = NTP_MODE_SERVER;
  r.stratum = sys->stratum;
  r.poll = q.poll;
  r.precision = sys->precision;
  r.root_delay = ntp_short_from_double(sys->root_delay);
  r.root_disp = ntp_short_from_double(sys->root_disp);
  r.refid = sys->refid;
  r.ref = sys->reftime;
  r.org = q.xmt;
  r.rec = rx;
  r.xmt = 0; /* set by ntp_server_finish */

  wire_wr w;
  wire_wr_init(&w, out, cap);
  ntp_hdr_write(&w, &r);
  if (!wire_wr_ok(&w))
    return NTP_SRV_DROP_BUFFER;
  *out_len = wire_wr_len(&w);
  return NTP_SRV_RESPOND;
}

void ntp_server_finish(uint8_t *resp, size_t len, ntp_ts xmt)
{
  if (len >= NTP_HDR_LEN)
    ntp_hdr_set_xmt(resp, xmt);
}

size_t ntp_server_kod(const uint8_t *req, size_t len, uint32_t code, ntp_ts rx, uint8_t *out,
                      size_t cap)
{
  ntp_hdr q;
  if (check_request(req, len, &q) != NTP_SRV_RESPOND || cap < NTP_HDR_LEN)
    return 0;
  ntp_hdr r = {0};
  r.leap = NTP_LEAP_UNSYNC;
  r.version = q.version;
  r.mode = NTP_MODE_SERVER;
  r.stratum = 0;
  r.poll = q.poll;
  r.refid = code;
  r.org = q.xmt;
  r.rec = rx;
  wire_wr w;
  wire_wr_init(&w, out, cap);
  ntp_hdr_write(&w, &r);
  return wire_wr_ok(&w) ? wire_wr_len(&w) : 0;
}
