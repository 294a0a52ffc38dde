/* source: one upstream NTP server as seen by our client — poll timing, the
 * reach register, burst/iburst, kiss-o'-death handling, feeding the clock
 * filter (proto/filter.h).  Pure: the caller passes monotonic time (seconds),
 * local NTP timestamps and random nonces in, and sends the bytes out. */
#ifndef NTSD_PROTO_SOURCE_H
#define NTSD_PROTO_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/filter.h"
#include "proto/ntp_client.h"

#define NTP_BURST_LEN 8 /* packets in an iburst/burst */
#define NTP_BURST_SPACING 2.0 /* seconds between burst packets */

typedef struct ntp_source_cfg {
  int minpoll, maxpoll; /* log2 s, 0..17 */
  bool iburst, burst, prefer, noselect;
  uint8_t version;      /* 1..4 */
  double precision;     /* our clock's precision, seconds */
} ntp_source_cfg;

typedef struct ntp_source ntp_source;

/* State for `ntsctl peers` and for selection. */
typedef struct ntp_source_info {
  uint8_t reach;       /* 8-bit shift register, LSB = last poll */
  int poll;            /* current poll, log2 s */
  bool have_sample;    /* the filter holds at least one sample */
  bool denied;         /* DENY/RSTR kiss received: no longer polled */
  bool prefer, noselect;
  bool authenticated;  /* every sample is authenticated (NTS): set by the owner,
                          not by ntp_source_get_info(); see proto/select.h */
  double when;         /* seconds since the last accepted sample, -1 if none */
  double offset, delay, jitter, dispersion; /* of the selected filter sample */
  double sample_age;   /* seconds since that sample was taken, -1 if none: it
                          changes only when the filter takes a newer sample */
  uint64_t spikes;     /* samples held back as popcorn spikes */
  double root_delay, root_disp;
  uint8_t stratum, leap;
  uint32_t refid;
  uint64_t sent, received, accepted;
  uint64_t drops[NTP_DROP_COUNT];
  ntp_kod last_kod;
} ntp_source_info;

ntp_source *ntp_source_create(const ntp_source_cfg *cfg, double now);
void ntp_source_destroy(ntp_source *s);

/* The poll the clock discipline asks for (ntp_disc_poll()), clamped to
 * minpoll..maxpoll and never below what a RATE kiss asked for; ignored
 * while the source is unreachable or in a burst.  Takes effect from the
 * next request on. */
void ntp_source_set_poll(ntp_source *s, int poll);

/* Monotonic time at which the next request is due (INFINITY when denied). */
double ntp_source_next_send(const ntp_source *s);

/* Builds the next request.  nonce: 8 random bytes used as transmit
 * timestamp; t1: the local time it is sent at.  Shifts the reach register
 * and schedules the next send.  Returns the length written, 0 on error. */
size_t ntp_source_make_request(ntp_source *s, double now, const uint8_t nonce[8], ntp_ts t1,
                               uint8_t *buf, size_t cap);

/* Feeds a response received at local time t4 (monotonic `now`).  Returns
 * NTP_DROP_NONE if a sample was taken.  *kod (optional) reports a kiss. */
ntp_drop ntp_source_on_response(ntp_source *s, const uint8_t *pkt, size_t len, ntp_ts t4,
                                double now, ntp_kod *kod);

/* The outstanding request's real departure time, from the kernel's
 * transmit timestamp (read after the send): it replaces the t1 given to
 * make_request, which was read before the request was built and sent.
 * Ignored (false) when no request is outstanding or t1 is not within 0..1 s
 * after the old one. */
bool ntp_source_set_t1(ntp_source *s, ntp_ts t1);

/* True while a request is outstanding (for response timeouts). */
bool ntp_source_awaiting(const ntp_source *s);
/* Forget the outstanding request (socket closed / timed out). */
void ntp_source_give_up(ntp_source *s);

void ntp_source_get_info(const ntp_source *s, double now, ntp_source_info *out);

/* The samples taken after `after` (monotonic), oldest first, for the clock
 * discipline: see ntp_filter_samples().  Returns how many were written. */
int ntp_source_samples(const ntp_source *s, double after, ntp_filter_raw *out, int cap);

/* The local clock was stepped: forget the held samples (ntpd's clear_all),
 * so no offset measured before the step is used again, and void the request
 * in flight (its t1 is on the old time scale; its answer is dropped as
 * unexpected). */
void ntp_source_clock_stepped(ntp_source *s);

/* Root distance (RFC 5905 "lambda") of the current estimate at `now`. */
double ntp_source_info_root_distance(const ntp_source_info *i, double mindist);

#endif
