/* ntp_tcp: one NTP packet per frame on a TCP stream, behind a 2-byte
 * big-endian length, as DNS does over TCP (RFC 7766 8).  The packet itself
 * is unchanged: the same bytes a UDP datagram would carry, NTS extension
 * fields and all, so the request path and the authenticator do not know the
 * transport.
 *
 * A frame of length 0, or longer than NTP_TCP_MSG_MAX, is refused as soon
 * as its two length bytes are there: the peer is not speaking this protocol
 * (or is trying to make us buffer), and the connection is closed.  Frames
 * follow each other directly, so one connection can carry several requests.
 *
 * Pure: no allocation, no I/O; the caller owns the buffers. */
#ifndef NTSD_PROTO_NTP_TCP_H
#define NTSD_PROTO_NTP_TCP_H

#include <stddef.h>
#include <stdint.h>

#include "proto/ntp_pkt.h"

/* The largest packet a frame carries: the UDP path's bound.  ntp_serve
 * drops a request longer than NTP_MAX_PKT and builds no response longer
 * than its request (NTS responses are padded to the request's size, never
 * beyond), and the NTS client builds requests and accepts responses of at
 * most NTP_MAX_PKT bytes, so nothing either end sends or accepts is cut
 * off, and a server needs at most this much per connection to hold one. */
#define NTP_TCP_MSG_MAX NTP_MAX_PKT
#define NTP_TCP_FRAME_MAX (2 + NTP_TCP_MSG_MAX)

/* Writes the 2-byte length then msg; returns bytes written, 0 if len is 0,
 * > NTP_TCP_MSG_MAX or cap is short. */
size_t ntp_tcp_frame(uint8_t *out, size_t cap, const uint8_t *msg, size_t len);

typedef enum ntp_tcp_status {
  NTP_TCP_MSG = 0,   /* a whole frame is there */
  NTP_TCP_NEED_MORE, /* not yet: read more */
  NTP_TCP_BAD_LEN,   /* the length is 0 or over NTP_TCP_MSG_MAX: close */
} ntp_tcp_status;

/* The first frame in buf[len]: on NTP_TCP_MSG, *msg and *msg_len are the packet
 * (pointing into buf) and *consumed the frame's size.  NTP_TCP_BAD_LEN for a
 * length of 0 or > NTP_TCP_MSG_MAX (as soon as the 2 bytes are there: the
 * caller closes).  Otherwise *msg is NULL and *msg_len, *consumed are 0. */
ntp_tcp_status ntp_tcp_next(const uint8_t *buf, size_t len, const uint8_t **msg,
                            size_t *msg_len, size_t *consumed);

/* "msg", "need_more", "bad_len". */
const char *ntp_tcp_status_name(ntp_tcp_status s);

#endif
