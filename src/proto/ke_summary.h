/* ke_summary: what the NTS-KE server logs, so that a busy server or an
 * attack gives a few lines a minute, not one per connection.
 *
 * The server notes each connection's outcome here.  The summary of an
 * interval (the counts by outcome, as one line) is taken at its end; the
 * server logs it at notice level when anything happened.  Within an
 * interval, the first failure of each kind is worth its own line (the
 * operator sees an attack as it starts, with an example); later ones are
 * only counted.  The first refusal or eviction for want of slots is worth
 * a warning at once.  No clock: an interval is the time between two takes. */
#ifndef NTSD_PROTO_KE_SUMMARY_H
#define NTSD_PROTO_KE_SUMMARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum ke_outcome {
  KE_OUT_SERVED = 0,     /* cookies issued */
  /* failed after the accept */
  KE_OUT_NO_COMMON,      /* no protocol or AEAD in common: answered, no cookies */
  KE_OUT_BAD_REQUEST,    /* answered with an Error record */
  KE_OUT_TLS,            /* the TLS handshake failed */
  KE_OUT_NO_ALPN,        /* no ALPN ntske/1 */
  KE_OUT_CLOSED,         /* closed by the client before a complete request */
  KE_OUT_TIMEOUT,        /* the exchange's deadline passed */
  KE_OUT_HELLO_TIMEOUT,  /* no ClientHello by its deadline */
  KE_OUT_EVICTED,        /* closed to make room for a newer connection */
  /* refused before any TLS */
  KE_OUT_REFUSED_ACL,    /* restrict ignore/noserve */
  KE_OUT_REFUSED_RATE,   /* the per-address rate limit */
  KE_OUT_REFUSED_PREFIX, /* the per-prefix connection cap */
  KE_OUT_REFUSED_FULL,   /* every slot holds a finished handshake */
  KE_OUT_REFUSED_ERROR,  /* out of memory or sockets */
  KE_OUT_COUNT
} ke_outcome;

/* What to log about one outcome (bits). */
#define KE_LOG_DETAIL 1u   /* the connection's own line at info level, not debug */
#define KE_LOG_PRESSURE 2u /* a warning now: the slots do not suffice */

typedef struct ke_summary ke_summary;

ke_summary *ke_summary_create(void);
void ke_summary_destroy(ke_summary *s);
/* Counts one outcome (with the cookies issued for KE_OUT_SERVED); returns
 * KE_LOG_* bits. */
unsigned ke_summary_note(ke_summary *s, ke_outcome o, unsigned cookies);
uint64_t ke_summary_count(const ke_summary *s, ke_outcome o);
/* Ends the interval of `seconds`: writes its summary line into out and
 * starts a new one.  False (and out empty) when nothing happened. */
bool ke_summary_take(ke_summary *s, double seconds, char *out, size_t cap);
/* "tls", "hello_timeout", ...: the outcome's name in the summary. */
const char *ke_outcome_name(ke_outcome o);

#endif
