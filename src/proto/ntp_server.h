/* ntp_server: turning a client request into a response, in two phases so the
 * transmit timestamp can be taken as late as possible:
 *
 *   ntp_server_prepare()  parse + validate the request, write the response
 *                         (everything but the transmit timestamp) into a
 *                         caller buffer;
 *   ntp_server_finish()   stamp the transmit timestamp just before sending.
 *
 * No allocation, no state: the system variables come in as a value. */
#ifndef NTSD_PROTO_NTP_SERVER_H
#define NTSD_PROTO_NTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "proto/ntp_pkt.h"

/* What our own clients are told about us. */
typedef struct ntp_sysinfo {
  uint8_t leap;      /* NTP_LEAP_UNSYNC when not synchronised */
  uint8_t stratum;   /* 16 when not synchronised */
  int8_t precision;  /* log2 seconds */
  uint32_t refid;
  ntp_ts reftime;
  double root_delay; /* seconds */
  double root_disp;  /* seconds */
} ntp_sysinfo;

typedef enum ntp_srv_result {
  NTP_SRV_RESPOND = 0,  /* response prepared */
  NTP_SRV_DROP_SHORT,   /* shorter than a header */
  NTP_SRV_DROP_VERSION, /* version 0 or > 4 */
  NTP_SRV_DROP_MODE,    /* not a client request (mode 3) */
  NTP_SRV_DROP_MALFORMED, /* bad extension fields */
  NTP_SRV_DROP_AUTH,    /* symmetric-key MAC: not supported */
  NTP_SRV_DROP_BUFFER,  /* caller buffer too small */
  NTP_SRV_RESULT_COUNT
} ntp_srv_result;

const char *ntp_srv_result_name(ntp_srv_result r);

/* rx: kernel receive timestamp of the request.  On NTP_SRV_RESPOND, *out_len
 * is the response length (48: extension fields of a plain request are not
 * echoed).  out must hold NTP_HDR_LEN bytes. */
ntp_srv_result ntp_server_prepare(const uint8_t *req, size_t len, const ntp_sysinfo *sys,
                                  ntp_ts rx, uint8_t *out, size_t cap, size_t *out_len);

/* Stamps the transmit timestamp into a prepared response. */
void ntp_server_finish(uint8_t *resp, size_t len, ntp_ts xmt);

/* Builds a kiss-o'-death response (e.g. NTP_REFID('R','A','T','E')) to a
 * request that already passed ntp_server_prepare checks; returns its length,
 * 0 on failure.  Its transmit timestamp is set by ntp_server_finish. */
size_t ntp_server_kod(const uint8_t *req, size_t len, uint32_t code, ntp_ts rx, uint8_t *out,
                      size_t cap);

#endif
