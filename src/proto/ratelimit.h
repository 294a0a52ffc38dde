/* ratelimit: per-client rate limiting for `restrict ... limited`, in a fixed
 * table sized at creation (no allocation per packet).  Each client (IPv4
 * address, or IPv6 /64) has a token bucket refilled at one request per
 * `average` seconds up to `burst`, and requests closer than `minimum`
 * seconds apart are refused outright (NTPsec's `discard average/minimum`).
 * Slots are chosen by a keyed hash so an attacker cannot aim collisions;
 * a new client may evict an old one, which only ever makes us more lenient. */
#ifndef NTSD_PROTO_RATELIMIT_H
#define NTSD_PROTO_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/acl.h"

typedef struct ntp_ratelimit ntp_ratelimit;

typedef enum ntp_rl_result {
  NTP_RL_PASS = 0,
  NTP_RL_LIMITED,     /* drop */
  NTP_RL_LIMITED_KOD, /* drop, but a RATE kiss may be sent (at most one per
                         `average` interval per client) */
} ntp_rl_result;

/* slots: table size (rounded up to a power of two); key: 16 random bytes
 * from the caller for the slot hash. */
ntp_ratelimit *ntp_rl_create(size_t slots, double average, double minimum, unsigned burst,
                             const uint8_t key[16]);
void ntp_rl_destroy(ntp_ratelimit *rl);
/* now: monotonic seconds.  want_kod: the client's entry has the kod flag. */
ntp_rl_result ntp_rl_check(ntp_ratelimit *rl, enum acl_family fam, const uint8_t *addr,
                           double now, bool want_kod);

#endif
