/* ntp_serve: the NTP server's whole request -> response path, in the order
 * the daemon uses it, for any transport: the bytes of one request in, the
 * bytes of one response out (UDP today; a TCP framing calls the same two
 * functions).  Two phases around the transmit timestamp:
 *
 *   ntp_serve_request()  the caller's admission decision (restrict, rate
 *                        limit), the header checks, the NTS check (cookie,
 *                        authenticator), the response without its transmit
 *                        timestamp, and the new NTS cookies;
 *   ntp_serve_finish()   stamps the transmit timestamp and seals the NTS
 *                        authenticator over it.
 *
 * Every outcome is one ntp_serve_result; the caller counts by it
 * (ntp_serve_count) and sends what finish returns.  Pure: the times, the
 * random bytes (a callback, asked only for an authentic NTS request) and the
 * cookie keys are inputs; the state between the phases is created once per
 * packet thread and reused, and nothing is allocated per request.
 * docs/nts-ntp.md describes the path. */
#ifndef NTSD_PROTO_NTP_SERVE_H
#define NTSD_PROTO_NTP_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/acl.h"
#include "proto/ntp_server.h"
#include "proto/nts_cookie.h"
#include "proto/nts_ntp.h"
#include "proto/ratelimit.h"

/* The policy decision for the client's address, taken before any parsing. */
typedef enum ntp_serve_admit {
  NTP_SERVE_ADMIT_OK = 0,  /* serve */
  NTP_SERVE_ADMIT_IGNORE,  /* restrict ignore (or not an IP address) */
  NTP_SERVE_ADMIT_NOSERVE, /* restrict noserve */
  NTP_SERVE_ADMIT_LIMITED, /* over the rate limit: drop */
  NTP_SERVE_ADMIT_KOD,     /* over the rate limit: drop with a RATE kiss */
  NTP_SERVE_ADMIT_COUNT
} ntp_serve_admit;

/* The `restrict` flags of addr first (ignore, then noserve), then, for a
 * `limited` entry, the rate limiter (rl NULL: none).  mono: monotonic
 * seconds, for the limiter. */
ntp_serve_admit ntp_serve_admission(const ntp_acl *acl, ntp_ratelimit *rl, enum acl_family fam,
                                    const uint8_t *addr, double mono);

/* Every outcome of one request.  The first four reply (see
 * ntp_serve_replies); each other one is a reason to drop. */
typedef enum ntp_serve_result {
  NTP_SERVE_RESPOND = 0,      /* plain NTP response */
  NTP_SERVE_RESPOND_NTS,      /* authenticated NTS response (RFC 8915 5) */
  NTP_SERVE_KOD_RATE,         /* rate limited, answered with a RATE kiss */
  NTP_SERVE_NTS_NAK,          /* cookie not opened: NTS NAK (RFC 8915 5.7) */
  NTP_SERVE_DROP_SHORT,       /* shorter than a header */
  NTP_SERVE_DROP_VERSION,     /* version 0 or > 4 */
  NTP_SERVE_DROP_MODE,        /* not a client request (mode 3) */
  NTP_SERVE_DROP_MALFORMED,   /* extension fields do not parse, or truncated */
  NTP_SERVE_DROP_AUTH,        /* symmetric-key MAC: not supported */
  NTP_SERVE_DROP_BUFFER,      /* the caller's buffer cannot hold the response */
  NTP_SERVE_DROP_IGNORE,      /* restrict ignore */
  NTP_SERVE_DROP_NOSERVE,     /* restrict noserve */
  NTP_SERVE_DROP_RATE,        /* rate limited, no kiss */
  NTP_SERVE_DROP_NTS_MALFORMED, /* bad NTS structure (ntp_serve_nts_reason) */
  NTP_SERVE_DROP_NTS_AUTH,    /* the NTS authenticator does not verify */
  NTP_SERVE_RESULT_COUNT
} ntp_serve_result;

/* Log and counter name: "respond", "respond_nts", "kod_rate", "nts_nak",
 * and for drops the key of `ntsctl server`'s `dropped` object. */
const char *ntp_serve_result_name(ntp_serve_result r);
/* The `dropped` counter r adds to, NULL for a response.  A RATE kiss also
 * counts as "rate_limited": the request got no time. */
const char *ntp_serve_dropped_key(ntp_serve_result r);
/* True for the outcomes that send something: stamp, finish, send. */
bool ntp_serve_replies(ntp_serve_result r);

/* Random bytes from the caller's CSPRNG (the daemon: getrandom). */
typedef void (*ntp_serve_rand_fn)(void *arg, uint8_t *buf, size_t len);

typedef struct ntp_serve_in {
  const uint8_t *req; /* the whole request (UDP payload) */
  size_t len;
  ntp_ts rx;            /* when it was received */
  ntp_serve_admit admit;
  const ntp_sysinfo *sys;
  /* Cookie keys, borrowed until finish; NULL: no NTS service (NTS
   * requests get plain answers, their fields are ignored). */
  const nts_keyset *keys;
  /* Asked for NTS_NTP_SERVER_RAND_LEN bytes per authentic NTS request;
   * with keys and no rand, such a request is dropped (DROP_BUFFER). */
  ntp_serve_rand_fn rand;
  void *rand_arg;
} ntp_serve_in;

/* State between the phases and per-request scratch (several KB): one per
 * packet thread, reused for every request. */
typedef struct ntp_serve ntp_serve;

ntp_serve *ntp_serve_create(void);
void ntp_serve_destroy(ntp_serve *st); /* wipes; NULL is fine */

/* Phase 1.  Writes the response, all but its transmit timestamp (and the
 * NTS authenticator), into out; out must hold NTP_HDR_LEN bytes for a plain
 * response, the request's length for a full NTS one.  Returns the outcome;
 * for those that reply, call ntp_serve_finish with the same out and cap. */
ntp_serve_result ntp_serve_request(ntp_serve *st, const ntp_serve_in *in, uint8_t *out,
                                   size_t cap);

/* Phase 2, right before sending: stamps xmt and, for an NTS response, seals
 * the authenticator over the stamped packet.  Sets *out_len to the bytes to
 * send (0 for a drop) and returns the final outcome: phase 1's, or
 * NTP_SERVE_DROP_BUFFER if the NTS response did not fit in cap.  Once per
 * ntp_serve_request; the traffic keys and random bytes are wiped. */
ntp_serve_result ntp_serve_finish(ntp_serve *st, ntp_ts xmt, uint8_t *out, size_t cap,
                                  size_t *out_len);

/* Details of the last request, for logs and counters. */
/* The NTS reason of a NAK or an NTS drop; NTS_NTP_WHY_NONE otherwise. */
nts_ntp_srv_reason ntp_serve_nts_reason(const ntp_serve *st);
/* True if the request's cookie was opened (then *res says how) or failed to
 * open; false if it was not reached (plain NTP, header or structure
 * failures). */
bool ntp_serve_cookie(const ntp_serve *st, nts_cookie_result *res);
/* New cookies sealed for an NTS response (0 otherwise). */
unsigned ntp_serve_cookies_made(const ntp_serve *st);

/* The counters a transport keeps: by outcome, and the NTS details. */
typedef struct ntp_serve_counters {
  uint64_t result[NTP_SERVE_RESULT_COUNT];
  uint64_t cookies[NTS_COOKIE_RESULT_COUNT]; /* cookies opened, by outcome */
  uint64_t nts_why[NTS_NTP_WHY_COUNT];       /* NAKs and NTS drops, by reason */
  uint64_t cookies_made;                     /* new cookies in NTS responses */
} ntp_serve_counters;

/* Adds the last request's outcome r (as finish returned it) to c. */
void ntp_serve_count(const ntp_serve *st, ntp_serve_result r, ntp_serve_counters *c);
/* Sum of the counters whose `dropped` key is key (0 if none). */
uint64_t ntp_serve_dropped(const ntp_serve_counters *c, const char *key);

#endif
