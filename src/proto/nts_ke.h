/* nts_ke: NTS Key Establishment negotiation (RFC 8915 4.1), bytes in, bytes
 * out.  TLS, the key exporter and cookie generation are elsewhere: the server
 * side decides what to answer and builds the answer around cookies it is
 * handed; the client side builds the request and checks the response.
 *
 * Rules applied where RFC 8915 leaves room (tests pin each one):
 *   - The critical bit only decides the fate of *unrecognized* record types
 *     (RFC 8915 4), so on recognized types it is not checked when reading.
 *     When writing we set it wherever the RFC says MUST (End of Message, Next
 *     Protocol, Error, Warning) and also on AEAD and on the server's Server
 *     and Port records (RFC: MAY), never on New Cookie or on client hints.
 *   - Next Protocol and AEAD records may occur once; Server and Port once per
 *     message (RFC: MUST NOT send more than one); a second is an error.
 *   - An unknown record with the critical bit set is an error (server: code 0,
 *     Unrecognized Critical Record); without it, it is skipped.
 *   - Anything after End of Message, or End of Message with a body, is
 *     malformed, as is a 16-bit list of odd length.
 *   - Server: a request with no Next Protocol, an empty one, two of them, an
 *     empty or missing AEAD record while NTPv4 is offered, or one of the
 *     records a client MUST NOT send (Error, Warning, New Cookie) gets Bad
 *     Request.  Server and Port hints from the client are validated
 *     (printable ASCII, 1..255 bytes; exactly 2 bytes, nonzero) and recorded;
 *     the daemon may ignore them (honouring them is OPTIONAL).
 *   - Server: the AEAD chosen is the first in the client's list that we
 *     support, honouring the client's preference order.
 *   - Client: any Warning fails the exchange, because no warning codes are
 *     defined and unrecognized warning codes MUST be treated as errors
 *     (RFC 8915 4.1.4).  The code is reported.
 *   - Client: cookies must all have the same length, 1..NTS_KE_MAX_COOKIE_LEN
 *     (our NTP requests send placeholders the size of the cookie); cookies
 *     beyond NTS_KE_MAX_COOKIES are checked and dropped.
 *   - Client: a Port record of 0 is malformed (0 means "absent" in our API and
 *     is no usable UDP port); the server name must be printable ASCII without
 *     spaces, 1..255 bytes.
 *   - NTP TCP Port (NTS_KE_REC_NTP_TCP_PORT, ours): the server sends it, not
 *     critical, after Port.  It is only an offer, so a client that finds it
 *     malformed (body not exactly 2 bytes, port 0) or repeated takes it as
 *     not made, and the exchange still succeeds: UDP works as before.  A
 *     server ignores it in a request. */
#ifndef NTSD_PROTO_NTS_KE_H
#define NTSD_PROTO_NTS_KE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/nts_ke_msg.h"

/* ---- server side -------------------------------------------------------- */

/* The outcome of a request, one value per reason so each can be counted.
 * OK, NO_PROTOCOL and NO_AEAD are answered with
 * nts_ke_server_build_response(); every other value with
 * nts_ke_build_error(out->error_code). */
typedef enum nts_ke_req_status {
  NTS_KE_REQ_OK = 0,           /* NTPv4 and an AEAD agreed: keys and cookies */
  NTS_KE_REQ_NO_PROTOCOL,      /* NTPv4 not offered: empty Next Protocol */
  NTS_KE_REQ_NO_AEAD,          /* no AEAD in common: empty AEAD, no cookies */
  NTS_KE_REQ_MALFORMED,        /* a record runs past the end of the message */
  NTS_KE_REQ_NO_EOM,           /* no End of Message */
  NTS_KE_REQ_EOM_BODY,         /* End of Message with a body */
  NTS_KE_REQ_AFTER_EOM,        /* bytes after End of Message */
  NTS_KE_REQ_UNKNOWN_CRITICAL, /* unrecognized record with the critical bit */
  NTS_KE_REQ_NO_NEXT_PROTO,    /* no Next Protocol record */
  NTS_KE_REQ_DUP_NEXT_PROTO,   /* two Next Protocol records */
  NTS_KE_REQ_BAD_NEXT_PROTO,   /* Next Protocol body empty or odd */
  NTS_KE_REQ_NO_AEAD_RECORD,   /* NTPv4 offered without an AEAD record */
  NTS_KE_REQ_DUP_AEAD,         /* two AEAD records */
  NTS_KE_REQ_BAD_AEAD,         /* AEAD body empty or odd */
  NTS_KE_REQ_FORBIDDEN,        /* Error, Warning or New Cookie from a client */
  NTS_KE_REQ_BAD_SERVER,       /* Server hint empty, too long or not printable */
  NTS_KE_REQ_DUP_SERVER,       /* two Server hints */
  NTS_KE_REQ_BAD_PORT,         /* Port hint not 2 bytes, or 0 */
  NTS_KE_REQ_DUP_PORT,         /* two Port hints */
  NTS_KE_REQ_STATUS_COUNT
} nts_ke_req_status;

const char *nts_ke_req_status_name(nts_ke_req_status s);
/* True for the statuses answered with an Error record. */
bool nts_ke_req_is_error(nts_ke_req_status s);

typedef struct nts_ke_request_result {
  nts_ke_req_status status;
  uint16_t error_code; /* NTS_KE_ERR_*, for error statuses */
  uint16_t next_proto; /* NTS_KE_PROTO_NTPV4 with OK and NO_AEAD */
  uint16_t aead;       /* with OK */
  /* The client's hints (RFC 8915 4.1.7/4.1.8), when sent and valid. */
  char server_hint[NTS_KE_MAX_SERVER_NAME + 1]; /* "" if none */
  uint16_t port_hint;                           /* 0 if none */
} nts_ke_request_result;

/* Decides the answer to one complete request.  our_aeads lists the AEAD IDs
 * we support (any order).  Returns out->status. */
nts_ke_req_status nts_ke_server_parse_request(const uint8_t *msg, size_t len,
                                              const uint16_t *our_aeads, size_t n_aeads,
                                              nts_ke_request_result *out);

typedef struct nts_ke_response_params {
  /* false: NTPv4 was not offered; the response is an empty Next Protocol
   * record and End of Message, everything below is ignored. */
  bool protocol_ok;
  /* false: no AEAD in common; Next Protocol [NTPv4], an empty AEAD record
   * and End of Message, everything below is ignored. */
  bool aead_ok;
  uint16_t aead;
  /* 1..NTS_KE_MAX_COOKIES cookies of cookie_len (1..NTS_KE_MAX_COOKIE_LEN)
   * bytes each. */
  const uint8_t *cookies[NTS_KE_MAX_COOKIES];
  size_t n_cookies;
  size_t cookie_len;
  /* NTPv4 server to use (printable ASCII, 1..255 bytes) or NULL: the client
   * then uses the KE server's address. */
  const char *server;
  /* NTPv4 port, or 0 to omit the record (the client then uses 123). */
  uint16_t port;
  /* Port of our NTP over TCP service, or 0: not offered, no record. */
  uint16_t tcp_port;
} nts_ke_response_params;

/* Builds the response: Next Protocol, AEAD, New Cookie x n, Server, Port,
 * NTP TCP Port, End of Message.  Returns its length, or 0 if it does not fit cap or the
 * parameters break the rules above (a caller bug: answer Internal Server
 * Error instead). */
size_t nts_ke_server_build_response(const nts_ke_response_params *p, uint8_t *buf,
                                    size_t cap);

/* Error record with `code` and End of Message; length or 0 if cap < 10. */
size_t nts_ke_build_error(uint16_t code, uint8_t *buf, size_t cap);

/* ---- client side -------------------------------------------------------- */

/* Builds a request: Next Protocol [NTPv4], AEAD (aeads, most preferred
 * first, at least one), End of Message, all critical.  Returns its length,
 * or 0 if n is 0 or it does not fit cap. */
size_t nts_ke_client_build_request(const uint16_t *aeads, size_t n, uint8_t *buf,
                                   size_t cap);

/* Why a response was not used.  Counted per source and shown by ntsctl. */
typedef enum nts_ke_resp_status {
  NTS_KE_RESP_OK = 0,
  NTS_KE_RESP_SERVER_ERROR,     /* Error record: see error_code */
  NTS_KE_RESP_WARNING,          /* Warning record: see warning_code */
  NTS_KE_RESP_MALFORMED,        /* a record runs past the end of the message */
  NTS_KE_RESP_NO_EOM,           /* no End of Message */
  NTS_KE_RESP_EOM_BODY,         /* End of Message with a body */
  NTS_KE_RESP_AFTER_EOM,        /* bytes after End of Message */
  NTS_KE_RESP_UNKNOWN_CRITICAL, /* unrecognized record with the critical bit */
  NTS_KE_RESP_BAD_ERROR,        /* Error or Warning body not 2 bytes */
  NTS_KE_RESP_NO_NEXT_PROTO,    /* no Next Protocol record */
  NTS_KE_RESP_DUP_NEXT_PROTO,   /* two Next Protocol records */
  NTS_KE_RESP_BAD_NEXT_PROTO,   /* Next Protocol body odd */
  NTS_KE_RESP_NO_PROTOCOL,      /* empty Next Protocol: server refused NTPv4 */
  NTS_KE_RESP_WRONG_PROTOCOL,   /* a protocol other than NTPv4 */
  NTS_KE_RESP_NO_AEAD_RECORD,   /* no AEAD record */
  NTS_KE_RESP_DUP_AEAD,         /* two AEAD records */
  NTS_KE_RESP_BAD_AEAD,         /* AEAD body odd or more than one ID */
  NTS_KE_RESP_NO_AEAD,          /* empty AEAD record: no algorithm in common */
  NTS_KE_RESP_AEAD_NOT_OFFERED, /* an AEAD we did not ask for */
  NTS_KE_RESP_NO_COOKIES,       /* no New Cookie records */
  NTS_KE_RESP_BAD_COOKIE,       /* empty cookie or longer than the maximum */
  NTS_KE_RESP_COOKIE_LEN,       /* cookies of different lengths */
  NTS_KE_RESP_BAD_SERVER,       /* Server empty, too long or not printable */
  NTS_KE_RESP_DUP_SERVER,       /* two Server records */
  NTS_KE_RESP_BAD_PORT,         /* Port not 2 bytes, or 0 */
  NTS_KE_RESP_DUP_PORT,         /* two Port records */
  NTS_KE_RESP_STATUS_COUNT
} nts_ke_resp_status;

const char *nts_ke_resp_status_name(nts_ke_resp_status s);

/* What one response gave us.  Meaningful fields depend on the status: with
 * OK, all but error_code and warning_code; with SERVER_ERROR, error_code;
 * with WARNING, warning_code. */
typedef struct nts_ke_session {
  uint16_t next_proto; /* NTS_KE_PROTO_NTPV4 */
  uint16_t aead;
  size_t n_cookies; /* 1..NTS_KE_MAX_COOKIES */
  size_t cookie_len;
  uint8_t cookies[NTS_KE_MAX_COOKIES][NTS_KE_MAX_COOKIE_LEN];
  char server[NTS_KE_MAX_SERVER_NAME + 1]; /* "" if absent: use the KE address */
  uint16_t port;                           /* 0 if absent: use 123 */
  uint16_t tcp_port; /* 0: not advertised (or malformed); else the server's NTP over TCP port */
  uint16_t error_code;
  uint16_t warning_code;
} nts_ke_session;

/* Checks one complete response to a request that offered offered_aeads.
 * Returns the status; *out is always written (zeroed first). */
nts_ke_resp_status nts_ke_client_parse_response(const uint8_t *msg, size_t len,
                                                const uint16_t *offered_aeads, size_t n,
                                                nts_ke_session *out);

#endif
