/* ratelimit: fixed-size token-bucket table. */
#include "proto/ratelimit.h"

#include <stdlib.h>
#include <string.h>

typedef struct rl_slot {
  uint8_t key[8]; /* IPv4 address or IPv6 /64, zero padded */
  uint8_t fam;    /* 4 or 6: part of the client's identity */
  uint8_t used;
  double last;     /* time of the last request */
  double tokens;
  double last_kod; /* time of the last kiss sent */
} rl_slot;

struct ntp_ratelimit {
  rl_slot *slots;
  size_t mask;
  double average, minimum;
  double burst;
  uint64_t k0, k1;
};

ntp_ratelimit *ntp_rl_create(size_t slots, double average, double minimum, unsigned burst,
                             const uint8_t key[16])
{
  size_t n = 1;
  while (n < slots && n < ((size_t)1 << 24))
    n <<= 1;
  ntp_ratelimit *rl = calloc(1, sizeof(*rl));
  if (!rl)
    return NULL;
  rl->slots = calloc(n, sizeof(rl_slot));
  if (!rl->slots) {
    free(rl);
    return NULL;
  }
  rl->mask = n - 1;
  rl->average = average > 0 ? average : 1.0;
  rl->minimum = minimum;
  rl->burst = burst ? burst : 1;
  memcpy(&rl->k0, key, 8);
  memcpy(&rl->k1, key + 8, 8);
  return rl;
}

void ntp_rl_destroy(ntp_ratelimit *rl)
{
  if (!rl)
    return;
  free(rl->slots);
  free(rl);
}

/* A keyed mixing hash (not a MAC; it only needs to be unpredictable). */
static uint64_t mix(uint64_t x, uint64_t k0, uint64_t k1)
{
  x ^= k0;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= k1;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

ntp_rl_result ntp_rl_check(ntp_ratelimit *rl, enum acl_family fam, const uint8_t *addr,
                           double now, bool want_kod)
{
  uint8_t key[8] = {0};
  memcpy(key, addr, fam == ACL_INET ? 4 : 8);
  /* An IPv6 /64 uses all 64 key bits, so no marker byte in the key can keep
   * v4 and v6 apart (v4 32.1.13.184 would be 2001:db8:0:4::/64): the family
   * is compared separately, and tweaks the hash. */
  uint8_t kfam = fam == ACL_INET ? 4 : 6;
  uint64_t kv;
  memcpy(&kv, key, 8);
  rl_slot *s = &rl->slots[mix(kv, rl->k0, rl->k1 ^ kfam) & rl->mask];

  if (!s->used || s->fam != kfam || memcmp(s->key, key, 8) != 0) {
    memcpy(s->key, key, 8);
    s->fam = kfam;
    s->used = 1;
    s->last = now;
    s->tokens = rl->burst - 1.0;
    s->last_kod = -1e18;
    return NTP_RL_PASS;
  }
  double gap = now - s->last;
  if (gap < 0)
    gap = 0;
  s->tokens += gap / rl->average;
  if (s->tokens > rl->burst)
    s->tokens = rl->burst;
  s->last = now;
  if (gap >= rl->minimum && s->tokens >= 1.0) {
    s->tokens -= 1.0;
    return NTP_RL_PASS;
  }
  if (want_kod && now - s->last_kod >= rl->average) {
    s->last_kod = now;
    return NTP_RL_LIMITED_KOD;
  }
  return NTP_RL_LIMITED;
}
