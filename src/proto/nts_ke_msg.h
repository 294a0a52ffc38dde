/* nts_ke_msg: NTS Key Establishment record codec (RFC 8915 4).
 *
 * An NTS-KE message is a sequence of records, each a 16-bit word holding the
 * critical bit and a 15-bit type, a 16-bit body length and the body, and it
 * ends with exactly one End of Message record.  A connection carries one
 * request and one response; both arrive over TLS as an arbitrary split byte
 * stream, so this module provides
 *   - a framer that collects stream bytes into a fixed buffer and says when a
 *     whole message (through End of Message) is there, or that it never will be;
 *   - an iterator over the records of a complete message;
 *   - writers for records through a wire_wr.
 * What the records mean is nts_ke's business.
 *
 * Size limit: RFC 8915 4 lets implementations bound messages but says servers
 * MUST accept requests of at least 1024 octets and clients SHOULD accept
 * responses of at least 65536.  Like chrony we take 16384 in both directions:
 * a full response (8 cookies of at most NTS_KE_MAX_COOKIE_LEN bytes, a server
 * name, a port) fits well inside it, and a 64 KB buffer per TLS connection
 * would be a cheap way to make a KE server spend memory. */
#ifndef NTSD_PROTO_NTS_KE_MSG_H
#define NTSD_PROTO_NTS_KE_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/wire.h"

/* Record types (IANA "NTS Key Establishment Record Types"). */
#define NTS_KE_REC_EOM 0
#define NTS_KE_REC_NEXT_PROTO 1
#define NTS_KE_REC_ERROR 2
#define NTS_KE_REC_WARNING 3
#define NTS_KE_REC_AEAD 4
#define NTS_KE_REC_NEW_COOKIE 5
#define NTS_KE_REC_SERVER 6
#define NTS_KE_REC_PORT 7
/* Ours, from the range RFC 8915 7.6 leaves for private or experimental use
 * (0x4000-0x7FFF; 0x4E54 is "NT"): the server also serves NTP over TCP
 * (docs/ntp-over-tcp.md) on the 2-byte port in the body.  Always sent
 * without the critical bit, so clients that do not know it skip it. */
#define NTS_KE_REC_NTP_TCP_PORT 0x4E54

/* High bit of the first word; the remaining 15 bits are the type. */
#define NTS_KE_CRITICAL 0x8000u
#define NTS_KE_TYPE_MASK 0x7fffu

/* Error codes (Error record body). */
#define NTS_KE_ERR_UNRECOGNIZED_CRITICAL 0
#define NTS_KE_ERR_BAD_REQUEST 1
#define NTS_KE_ERR_INTERNAL 2

/* Next protocol IDs. */
#define NTS_KE_PROTO_NTPV4 0

/* AEAD algorithm IDs (IANA "AEAD Algorithms").  384 is named for logs only. */
#define NTS_KE_AEAD_AES_SIV_CMAC_256 15
#define NTS_KE_AEAD_AES_SIV_CMAC_384 16
#define NTS_KE_AEAD_AES_SIV_CMAC_512 17

#define NTS_KE_REC_HDR_LEN 4
/* Largest message, End of Message included, in either direction. */
#define NTS_KE_MAX_MSG 16384
/* Cookies are opaque to the client.  Ours are ~100 bytes, chrony's and
 * NTPsec's about the same.  512 is generous to other formats but bounded, so
 * a session's cookies are a fixed 4 KB array; how many placeholders an NTP
 * request can afford at a given cookie length is the NTS client's call. */
#define NTS_KE_MAX_COOKIE_LEN 512
/* Cookies kept from one response (RFC 8915 4.1.6: servers SHOULD send 8). */
#define NTS_KE_MAX_COOKIES 8
/* NTPv4 Server Negotiation body: a host name or address, at most 255 bytes
 * (the longest DNS name). */
#define NTS_KE_MAX_SERVER_NAME 255

/* "end_of_message", "aead", ... or "unknown". */
const char *nts_ke_record_name(uint16_t type);
/* "unrecognized_critical_record", "bad_request", "internal_server_error" or
 * "unknown". */
const char *nts_ke_error_name(uint16_t code);
/* "AEAD_AES_SIV_CMAC_256", ... or "unknown". */
const char *nts_ke_aead_name(uint16_t id);

/* ---- writing ------------------------------------------------------------ */

/* Appends one record.  type must be < 0x8000 and len <= 65535, otherwise w
 * goes into error.  body may be NULL when len is 0.  Returns wire_wr_ok(w). */
bool nts_ke_put_record(wire_wr *w, bool critical, uint16_t type, const uint8_t *body,
                       size_t len);
/* A record whose body is n 16-bit values (Next Protocol, AEAD, Error, Port). */
bool nts_ke_put_u16_list(wire_wr *w, bool critical, uint16_t type, const uint16_t *vals,
                         size_t n);
/* A record whose body is one 16-bit value. */
bool nts_ke_put_u16(wire_wr *w, bool critical, uint16_t type, uint16_t val);
/* End of Message: critical, empty (RFC 8915 4.1.1). */
bool nts_ke_put_eom(wire_wr *w);

/* ---- framing ------------------------------------------------------------ */

typedef enum nts_ke_frame_status {
  NTS_KE_FRAME_NEED_MORE = 0, /* no End of Message yet; feed more bytes */
  NTS_KE_FRAME_COMPLETE,      /* a whole message is held: nts_ke_framer_msg() */
  NTS_KE_FRAME_TOO_LONG,      /* the message cannot end within NTS_KE_MAX_MSG */
  NTS_KE_FRAME_TRAILING,      /* bytes arrived after End of Message */
  NTS_KE_FRAME_STATUS_COUNT
} nts_ke_frame_status;

const char *nts_ke_frame_status_name(nts_ke_frame_status s);

/* Collects one message from a byte stream.  The framer owns its buffer (one
 * fixed NTS_KE_MAX_MSG array, no allocation), so a caller cannot let the
 * buffer and the framer's idea of it drift apart: it feeds whatever TLS
 * returned and looks at the status.  Embed it in the connection state; the
 * fields are private.
 *
 * Only record boundaries are checked here (a record's header says how long it
 * is, and End of Message, with or without the critical bit, ends the
 * message).  Bodies are nts_ke's to validate.
 *
 * One connection carries exactly one message each way (RFC 8915 4: the client
 * sends its request and waits, the server answers and closes), so a byte after
 * End of Message is a protocol violation, not the start of a next message:
 * NTS_KE_FRAME_TRAILING.  A server answers it with Bad Request, a client gives
 * up.  TOO_LONG is reported as early as it is certain: as soon as a record
 * header claims a body that would end beyond NTS_KE_MAX_MSG, or the buffer is
 * full without End of Message.  COMPLETE, TOO_LONG and TRAILING are final;
 * after COMPLETE any further non-empty feed turns the status into TRAILING. */
typedef struct nts_ke_framer {
  size_t len;      /* bytes held */
  size_t next_rec; /* offset of the first record not yet wholly held */
  size_t msg_len;  /* with COMPLETE: bytes through End of Message */
  nts_ke_frame_status status;
  uint8_t buf[NTS_KE_MAX_MSG];
} nts_ke_framer;

void nts_ke_framer_init(nts_ke_framer *f);
/* Appends len bytes of the stream (data may be NULL when len is 0). */
nts_ke_frame_status nts_ke_framer_feed(nts_ke_framer *f, const uint8_t *data, size_t len);
nts_ke_frame_status nts_ke_framer_status(const nts_ke_framer *f);
/* The message when the status is COMPLETE, NULL (and *len 0) otherwise.  The
 * bytes live in the framer. */
const uint8_t *nts_ke_framer_msg(const nts_ke_framer *f, size_t *len);

/* ---- reading ------------------------------------------------------------ */

typedef struct nts_ke_record {
  bool critical;
  uint16_t type; /* without the critical bit */
  const uint8_t *body;
  size_t len;
} nts_ke_record;

typedef enum nts_ke_iter_status {
  NTS_KE_ITER_RECORD,    /* *rec holds the next record */
  NTS_KE_ITER_END,       /* the message ended exactly at a record boundary */
  NTS_KE_ITER_MALFORMED, /* a header or body runs past the end */
} nts_ke_iter_status;

/* Walks the records of a message in order, End of Message included (it is
 * yielded like any record; what may follow it is for the caller to judge).
 * END and MALFORMED are final. */
typedef struct nts_ke_iter {
  wire_rd rd;
  bool malformed;
} nts_ke_iter;

void nts_ke_iter_init(nts_ke_iter *it, const uint8_t *msg, size_t len);
nts_ke_iter_status nts_ke_iter_next(nts_ke_iter *it, nts_ke_record *rec);
/* Bytes after the last record returned (0 once MALFORMED): what follows End
 * of Message, for instance. */
size_t nts_ke_iter_left(const nts_ke_iter *it);

/* Body as a list of 16-bit values: false when the length is odd. */
bool nts_ke_rec_u16_count(const nts_ke_record *rec, size_t *count);
/* Value i of a 16-bit list body; 0 when i is out of range. */
uint16_t nts_ke_rec_u16_at(const nts_ke_record *rec, size_t i);

#endif
