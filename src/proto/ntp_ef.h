/* ntp_ef: RFC 7822 extension-field walker and writer.
 *
 * After the 48-byte header an NTPv4 packet holds zero or more extension
 * fields (type, length, body padded to 4 bytes, length >= 16) and optionally
 * a legacy MAC (4-byte key id + 16 or 20 byte digest, or a 4-byte crypto-NAK).
 * The two are told apart by size as RFC 7822 7.5 prescribes: a remainder of
 * 4, 20 or 24 bytes is a MAC, and when no MAC follows, the last extension
 * field must be at least 28 bytes long. */
#ifndef NTSD_PROTO_NTP_EF_H
#define NTSD_PROTO_NTP_EF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/wire.h"

#define NTP_EF_MIN_LEN 16
#define NTP_EF_MIN_LAST_LEN 28

/* Field types used by NTS (RFC 8915 5.7). */
#define NTP_EF_UNIQUE_ID 0x0104
#define NTP_EF_NTS_COOKIE 0x0204
#define NTP_EF_NTS_COOKIE_PLACEHOLDER 0x0304
#define NTP_EF_NTS_AUTH 0x0404

typedef struct ntp_ef {
  uint16_t type;
  uint16_t len;        /* whole field, header included */
  size_t offset;       /* of the field's first byte in the packet */
  const uint8_t *body; /* len - 4 bytes (with any padding) */
  size_t body_len;
} ntp_ef;

typedef enum ntp_ef_status {
  NTP_EF_FIELD,     /* *ef holds the next field */
  NTP_EF_END,       /* no more fields and no MAC */
  NTP_EF_MAC,       /* the rest of the packet is a MAC (see mac_len) */
  NTP_EF_MALFORMED, /* bad length or alignment */
} ntp_ef_status;

typedef struct ntp_ef_iter {
  const uint8_t *pkt;
  size_t len;
  size_t pos;
  size_t mac_len; /* set when NTP_EF_MAC is returned */
  bool done;
  bool malformed; /* sticky: later calls repeat NTP_EF_MALFORMED */
} ntp_ef_iter;

/* pkt/len: the whole datagram, header included (len >= 48). */
void ntp_ef_iter_init(ntp_ef_iter *it, const uint8_t *pkt, size_t len);
ntp_ef_status ntp_ef_next(ntp_ef_iter *it, ntp_ef *ef);

/* Walks the whole packet; returns NTP_EF_END, NTP_EF_MAC or NTP_EF_MALFORMED.
 * n_fields and mac_len may be NULL. */
ntp_ef_status ntp_ef_validate(const uint8_t *pkt, size_t len, size_t *n_fields, size_t *mac_len);

/* Appends a field with a body, zero-padded to a multiple of 4 and to at least
 * min_len bytes in total (use NTP_EF_MIN_LEN, or NTP_EF_MIN_LAST_LEN for a
 * field that will be last).  False (and w in error) if it does not fit. */
bool ntp_ef_append(wire_wr *w, uint16_t type, const uint8_t *body, size_t body_len,
                   size_t min_len);

#endif
