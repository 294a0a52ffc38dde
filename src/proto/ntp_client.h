/* ntp_client: building client requests and checking server responses
 * (RFC 5905 8 and 9.2 tests), computing one offset/delay/dispersion sample.
 *
 * Requests follow RFC 9109-style data minimisation: every header field is
 * zero except the first byte and the transmit timestamp, which is random
 * (supplied by the caller) and only serves as a nonce matched against the
 * response's origin timestamp.  The real send time t1 is kept locally. */
#ifndef NTSD_PROTO_NTP_CLIENT_H
#define NTSD_PROTO_NTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/ntp_pkt.h"

/* Why a response was not used.  Counted per source and shown by ntsctl. */
typedef enum ntp_drop {
  NTP_DROP_NONE = 0,
  NTP_DROP_SHORT,       /* shorter than a header */
  NTP_DROP_VERSION,     /* version not 1..4 */
  NTP_DROP_MODE,        /* not a server (mode 4) response */
  NTP_DROP_MALFORMED,   /* bad extension fields */
  NTP_DROP_AUTH,        /* carries a MAC we cannot check */
  NTP_DROP_UNEXPECTED,  /* no request outstanding */
  NTP_DROP_BOGUS,       /* origin timestamp does not match our request */
  NTP_DROP_DUPLICATE,   /* transmit timestamp seen before */
  NTP_DROP_ZERO_TS,     /* receive or transmit timestamp zero */
  NTP_DROP_KOD,         /* kiss-o'-death: DENY, RSTR, RATE or NTSN */
  NTP_DROP_UNSYNC,      /* leap 3, stratum >= 16, or stratum 0 with another code
                           (INIT, STEP, ...: not synchronised yet) */
  NTP_DROP_BAD_TIMES,   /* negative round trip beyond tolerance, or absurd
                           root delay/dispersion */
  NTP_DROP_COUNT
} ntp_drop;

const char *ntp_drop_name(ntp_drop d);

typedef struct ntp_sample {
  double offset;     /* server - local, seconds (positive: local clock behind) */
  double delay;      /* round trip, seconds, >= 0 */
  double dispersion; /* error bound from precisions and round-trip frequency error */
  double root_delay, root_disp;
  uint8_t stratum, leap;
  int8_t precision, poll;
  uint32_t refid;
  ntp_ts t1, t2, t3, t4;
} ntp_sample;

/* Frequency tolerance (RFC 5905 PHI): 15 ppm. */
#define NTP_PHI 15e-6

/* Builds a 48-byte request with version 4 (or `version`) and transmit
 * timestamp `nonce_xmt`; returns its length or 0 if cap is too small. */
size_t ntp_client_build_request(uint8_t *buf, size_t cap, uint8_t version, ntp_ts nonce_xmt);

/* Checks a response to the request whose transmit field was `sent_xmt`,
 * sent at local time t1 and received at local time t4.  `last_xmt` is the
 * transmit timestamp of the previous accepted response (0 if none), for the
 * duplicate test.  local_precision is our clock's precision in seconds.
 * On NTP_DROP_KOD, *kod says which kiss code.  On NTP_DROP_NONE, *out holds
 * the sample. */
ntp_drop ntp_client_check_response(const uint8_t *pkt, size_t len, ntp_ts sent_xmt,
                                   ntp_ts last_xmt, ntp_ts t1, ntp_ts t4,
                                   double local_precision, ntp_sample *out, ntp_kod *kod);

#endif
