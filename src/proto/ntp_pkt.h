/* ntp_pkt: the 48-byte NTPv4 header (RFC 5905) and kiss-o'-death codes. */
#ifndef NTSD_PROTO_NTP_PKT_H
#define NTSD_PROTO_NTP_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/ntp_time.h"
#include "proto/wire.h"

#define NTP_HDR_LEN 48
#define NTP_MAX_PKT 1024 /* largest datagram we accept or build */
#define NTP_MAX_STRATUM 16 /* "unsynchronised" */
#define NTP_PORT 123

enum ntp_leap { NTP_LEAP_NONE = 0, NTP_LEAP_INSERT = 1, NTP_LEAP_DELETE = 2, NTP_LEAP_UNSYNC = 3 };

enum ntp_mode {
  NTP_MODE_RESERVED = 0,
  NTP_MODE_SYM_ACTIVE = 1,
  NTP_MODE_SYM_PASSIVE = 2,
  NTP_MODE_CLIENT = 3,
  NTP_MODE_SERVER = 4,
  NTP_MODE_BROADCAST = 5,
  NTP_MODE_CONTROL = 6,
  NTP_MODE_PRIVATE = 7,
};

/* Decoded header: plain values, no wire layout. */
typedef struct ntp_hdr {
  uint8_t leap, version, mode, stratum;
  int8_t poll, precision;
  ntp_short root_delay, root_disp;
  uint32_t refid;
  ntp_ts ref, org, rec, xmt;
} ntp_hdr;

/* Kiss codes we act on (RFC 5905 7.4, RFC 8915 5.7). */
typedef enum ntp_kod {
  NTP_KOD_NONE = 0, /* not a kiss-o'-death */
  NTP_KOD_DENY,     /* stop talking to this server */
  NTP_KOD_RSTR,     /* stop talking to this server */
  NTP_KOD_RATE,     /* reduce the poll rate */
  NTP_KOD_NTSN,     /* NTS NAK: cookie not accepted */
  NTP_KOD_OTHER,    /* any other code: treat as a drop */
} ntp_kod;

#define NTP_REFID(a, b, c, d) \
  (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (uint32_t)(d))

/* Parses the header from the first 48 bytes; false if len < 48. */
bool ntp_hdr_parse(const uint8_t *buf, size_t len, ntp_hdr *h);
/* Appends the 48-byte header. */
void ntp_hdr_write(wire_wr *w, const ntp_hdr *h);
/* Offset of the transmit timestamp in the header (for late stamping). */
#define NTP_XMT_OFFSET 40
void ntp_hdr_set_xmt(uint8_t *pkt, ntp_ts xmt);

/* Classifies a stratum-0 header's refid; NTP_KOD_NONE otherwise. */
ntp_kod ntp_kod_classify(const ntp_hdr *h);
const char *ntp_kod_name(ntp_kod k);
/* Writes a refid as text into buf (4 printable chars for stratum <= 1 or
 * kiss codes, dotted quad otherwise); returns buf. */
const char *ntp_refid_str(uint32_t refid, uint8_t stratum, char *buf, size_t cap);

#endif
