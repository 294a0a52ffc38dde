/* socks5: the SOCKS Protocol Version 5 messages (RFC 1928) and the
 * username/password sub-negotiation (RFC 1929), client side.
 *
 * Builders write a message into a caller buffer.  Parsers read the replies a
 * proxy sends over TCP, which may arrive in any number of pieces: the caller
 * keeps the bytes received so far and calls the parser again over all of
 * them while it says SOCKS5_NEED_MORE.  A parser looks at the bytes in wire
 * order and stops at the first one that is wrong, so an error shows as soon
 * as its byte has arrived and the outcome never depends on how the stream was
 * split.  On SOCKS5_OK it reports exactly how many bytes the message took;
 * what follows (the start of the TLS handshake) is the caller's.
 *
 * Every message is bounded (SOCKS5_*_MAX below): a parser that has been given
 * that many bytes never asks for more.  Domain names go to the proxy as
 * given, so the proxy, not this host, resolves them.  No allocation. */
#ifndef NTSD_PROTO_SOCKS5_H
#define NTSD_PROTO_SOCKS5_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SOCKS5_VERSION 5
#define SOCKS5_AUTH_VERSION 1 /* RFC 1929 sub-negotiation */

/* Methods (RFC 1928 3). */
#define SOCKS5_METHOD_NONE 0x00
#define SOCKS5_METHOD_USERPASS 0x02
#define SOCKS5_METHOD_UNACCEPTABLE 0xff

/* Which methods a greeting offers (a bit set). */
#define SOCKS5_OFFER_NONE 0x1u
#define SOCKS5_OFFER_USERPASS 0x2u

/* Commands (RFC 1928 4); BIND is not used. */
#define SOCKS5_CMD_CONNECT 0x01
#define SOCKS5_CMD_UDP_ASSOCIATE 0x03

/* Address types (RFC 1928 5). */
#define SOCKS5_ATYP_IPV4 0x01
#define SOCKS5_ATYP_NAME 0x03
#define SOCKS5_ATYP_IPV6 0x04

#define SOCKS5_NAME_MAX 255 /* a one-byte length */
#define SOCKS5_CRED_MAX 255 /* RFC 1929 UNAME and PASSWD */

/* Upper bounds of each message, in bytes. */
#define SOCKS5_GREETING_MAX 4                            /* VER NMETHODS 2 methods */
#define SOCKS5_METHOD_REPLY_LEN 2                        /* VER METHOD */
#define SOCKS5_AUTH_MAX (3 + 2 * SOCKS5_CRED_MAX)        /* VER ULEN U PLEN P */
#define SOCKS5_AUTH_REPLY_LEN 2                          /* VER STATUS */
#define SOCKS5_ADDR_MAX (1 + 1 + SOCKS5_NAME_MAX + 2)    /* ATYP LEN NAME PORT */
#define SOCKS5_REQUEST_MAX (3 + SOCKS5_ADDR_MAX)         /* VER CMD RSV ADDR */
#define SOCKS5_REPLY_MAX (3 + SOCKS5_ADDR_MAX)           /* VER REP RSV ADDR */
#define SOCKS5_UDP_HDR_MAX (3 + SOCKS5_ADDR_MAX)         /* RSV(2) FRAG ADDR */

typedef enum socks5_status {
  SOCKS5_OK = 0,
  SOCKS5_NEED_MORE,       /* a prefix of a valid message: read more */
  /* the peer's bytes */
  SOCKS5_ERR_VERSION,     /* VER is not 5 (1 in the RFC 1929 reply) */
  SOCKS5_ERR_RESERVED,    /* RSV is not zero */
  SOCKS5_ERR_ATYP,        /* unknown address type */
  SOCKS5_ERR_NAME_LEN,    /* a domain name of length 0 */
  SOCKS5_ERR_NO_METHOD,   /* 0xFF: none of the offered methods is acceptable */
  SOCKS5_ERR_METHOD,      /* the proxy chose a method that was not offered */
  SOCKS5_ERR_AUTH,        /* RFC 1929: the proxy refused the credentials */
  SOCKS5_ERR_FRAG,        /* a UDP datagram fragment (FRAG != 0) */
  SOCKS5_ERR_TRUNCATED,   /* a UDP datagram shorter than its header */
  /* a failure reply, one per REP code of RFC 1928 6 */
  SOCKS5_ERR_GENERAL_FAILURE,       /* 1 */
  SOCKS5_ERR_NOT_ALLOWED,           /* 2 */
  SOCKS5_ERR_NETWORK_UNREACHABLE,   /* 3 */
  SOCKS5_ERR_HOST_UNREACHABLE,      /* 4 */
  SOCKS5_ERR_REFUSED,               /* 5 */
  SOCKS5_ERR_TTL_EXPIRED,           /* 6 */
  SOCKS5_ERR_COMMAND_NOT_SUPPORTED, /* 7 */
  SOCKS5_ERR_ATYP_NOT_SUPPORTED,    /* 8 */
  SOCKS5_ERR_REP_UNKNOWN,           /* 9..255 */
  /* ours */
  SOCKS5_ERR_ARG,         /* a builder argument out of range */
  SOCKS5_ERR_SPACE,       /* the output buffer is too small */
  SOCKS5_STATUS_COUNT
} socks5_status;

/* A short constant name for any status ("unknown" outside the enum). */
const char *socks5_status_name(socks5_status s);

/* The status a REP byte means (SOCKS5_OK for 0). */
socks5_status socks5_rep_status(uint8_t rep);

/* An address and port: IPv4 (4 bytes), IPv6 (16) or a domain name
 * (name_len bytes, not NUL-terminated, may be any bytes).  A value type. */
typedef struct socks5_addr {
  uint8_t atyp;
  uint8_t name_len;
  uint8_t bytes[SOCKS5_NAME_MAX];
  uint16_t port;
} socks5_addr;

void socks5_addr_ipv4(socks5_addr *a, const uint8_t ip[4], uint16_t port);
void socks5_addr_ipv6(socks5_addr *a, const uint8_t ip[16], uint16_t port);
/* SOCKS5_ERR_ARG unless 1 <= len <= SOCKS5_NAME_MAX. */
socks5_status socks5_addr_name(socks5_addr *a, const char *name, size_t len,
                               uint16_t port);

/* ---- builders: each writes *out_len bytes into out[cap] ----------------
 * SOCKS5_ERR_ARG for a bad argument, SOCKS5_ERR_SPACE when cap is short;
 * nothing useful is written then and *out_len is 0. */

/* The method-selection greeting; offer is a non-empty set of SOCKS5_OFFER_*. */
socks5_status socks5_build_greeting(uint8_t *out, size_t cap, unsigned offer,
                                    size_t *out_len);

/* RFC 1929 request; user 1..255 bytes, password 0..255 (pass may be NULL
 * when pass_len is 0). */
socks5_status socks5_build_auth(uint8_t *out, size_t cap, const uint8_t *user,
                                size_t user_len, const uint8_t *pass,
                                size_t pass_len, size_t *out_len);

/* CONNECT or UDP ASSOCIATE to dst. */
socks5_status socks5_build_request(uint8_t *out, size_t cap, uint8_t cmd,
                                   const socks5_addr *dst, size_t *out_len);

/* A UDP ASSOCIATE datagram: the header for dst, then the payload. */
socks5_status socks5_build_udp(uint8_t *out, size_t cap, const socks5_addr *dst,
                               const uint8_t *payload, size_t payload_len,
                               size_t *out_len);

/* ---- parsers ------------------------------------------------------------
 * *consumed is the message's length on SOCKS5_OK and 0 otherwise. */

/* The method-selection reply to a greeting that offered `offer`;
 * *method gets the chosen method on SOCKS5_OK. */
socks5_status socks5_parse_method(const uint8_t *buf, size_t len,
                                  unsigned offer, uint8_t *method,
                                  size_t *consumed);

/* The RFC 1929 status reply: SOCKS5_OK only for status 0. */
socks5_status socks5_parse_auth(const uint8_t *buf, size_t len,
                                size_t *consumed);

/* The reply to CONNECT or UDP ASSOCIATE; *bound gets BND.ADDR and BND.PORT
 * on SOCKS5_OK.  A failure REP is reported as soon as its byte is there. */
socks5_status socks5_parse_reply(const uint8_t *buf, size_t len,
                                 socks5_addr *bound, size_t *consumed);

/* A whole datagram from the UDP relay: on SOCKS5_OK *src is the address the
 * payload came from and the payload starts at *payload_off (<= len). */
socks5_status socks5_parse_udp(const uint8_t *buf, size_t len, socks5_addr *src,
                               size_t *payload_off);

#endif
