/* ntp_pkt: NTPv4 header codec and kiss codes. */
#include "proto/ntp_pkt.h"

#include <stdio.h>

bool ntp_hdr_parse(const uint8_t *buf, size_t len, ntp_hdr *h)
{
  wire_rd r;
  wire_rd_init(&r, buf, len);
  uint8_t lvm = wire_get_u8(&r);
  h->leap = lvm >> 6;
  h->version = (lvm >> 3) & 7;
  h->mode = lvm & 7;
  h->stratum = wire_get_u8(&r);
  h->poll = (int8_t)wire_get_u8(&r);
  h->precision = (int8_t)wire_get_u8(&r);
  h->root_delay = wire_get_u32(&r);
  h->root_disp = wire_get_u32(&r);
  h->refid = wire_get_u32(&r);
  h->ref = wire_get_u64(&r);
  h->org = wire_get_u64(&r);
  h->rec = wire_get_u64(&r);
  h->xmt = wire_get_u64(&r);
  return wire_rd_ok(&r);
}

void ntp_hdr_write(wire_wr *w, const ntp_hdr *h)
{
  wire_put_u8(w, (uint8_t)(((h->leap & 3) << 6) | ((h->version & 7) << 3) | (h->mode & 7)));
  wire_put_u8(w, h->stratum);
  wire_put_u8(w, (uint8_t)h->poll);
  wire_put_u8(w, (uint8_t)h->precision);
  wire_put_u32(w, h->root_delay);
  wire_put_u32(w, h->root_disp);
  wire_put_u32(w, h->refid);
  wire_put_u64(w, h->ref);
  wire_put_u64(w, h->org);
  wire_put_u64(w, h->rec);
  wire_put_u64(w, h->xmt);
}

void ntp_hdr_set_xmt(uint8_t *pkt, ntp_ts xmt)
{
  wire_wr w;
  wire_wr_init(&w, pkt + NTP_XMT_OFFSET, 8);
  wire_put_u64(&w, xmt);
}

ntp_kod ntp_kod_classify(const ntp_hdr *h)
{
  if (h->stratum != 0)
    return NTP_KOD_NONE;
  switch (h->refid) {
  case NTP_REFID('D', 'E', 'N', 'Y'): return NTP_KOD_DENY;
  case NTP_REFID('R', 'S', 'T', 'R'): return NTP_KOD_RSTR;
  case NTP_REFID('R', 'A', 'T', 'E'): return NTP_KOD_RATE;
  case NTP_REFID('N', 'T', 'S', 'N'): return NTP_KOD_NTSN;
  default: return NTP_KOD_OTHER;
  }
}

const char *ntp_kod_name(ntp_kod k)
{
  switch (k) {
  case NTP_KOD_NONE: return "none";
  case NTP_KOD_DENY: return "DENY";
  case NTP_KOD_RSTR: return "RSTR";
  case NTP_KOD_RATE: return "RATE";
  case NTP_KOD_NTSN: return "NTSN";
  case NTP_KOD_OTHER: return "other";
  }
  return "?";
}

/* Text refids (stratum 0/1 and kiss codes) are 1-4 printable ASCII
 * characters, NUL padded; anything else (e.g. chrony's 127.127.1.1 for a
 * local reference) is shown as a dotted quad. */
static bool refid_is_text(uint32_t refid)
{
  bool ended = false;
  for (int i = 3; i >= 0; i--) {
    unsigned char c = (unsigned char)(refid >> (8 * i));
    if (c == 0)
      ended = true;
    else if (ended || c < 0x20 || c >= 0x7f)
      return false;
  }
  return (refid >> 24) != 0;
}

const char *ntp_refid_str(uint32_t refid, uint8_t stratum, char *buf, size_t cap)
{
  if (!buf || cap == 0)
    return "";
  if (stratum <= 1 && refid_is_text(refid)) {
    char s[5];
    size_t n = 0;
    for (int i = 3; i >= 0 && (refid >> (8 * i)) & 0xff; i--)
      s[n++] = (char)((refid >> (8 * i)) & 0xff);
    s[n] = '\0';
    snprintf(buf, cap, ".%s.", s);
  } else {
    snprintf(buf, cap, "%u.%u.%u.%u", refid >> 24, (refid >> 16) & 0xff, (refid >> 8) & 0xff,
             refid & 0xff);
  }
  return buf;
}
