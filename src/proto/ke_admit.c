/* ke_admit: NTS-KE connection slots, per-prefix caps, eviction. */
#include "proto/ke_admit.h"

#include <stdlib.h>
#include <string.h>

#define V4_PREFIX_BITS 24
#define V6_PREFIX_BITS 56

typedef struct ke_slot {
  uint8_t prefix[8]; /* /24 or /56, zero padded */
  uint8_t fam;       /* ACL_INET or ACL_INET6: part of the prefix's identity */
  uint8_t phase;     /* ke_admit_phase */
  double opened;
  uint64_t seq;      /* accept order: the oldest has the smallest */
} ke_slot;

struct ke_admit {
  ke_admit_cfg cfg;
  ke_slot *slot;
  size_t in_use;
  uint64_t next_seq;
};

unsigned ke_admit_prefix(enum acl_family fam, const uint8_t *addr, uint8_t out[16])
{
  memset(out, 0, 16);
  if (fam == ACL_INET) {
    memcpy(out, addr, V4_PREFIX_BITS / 8);
    return V4_PREFIX_BITS;
  }
  memcpy(out, addr, V6_PREFIX_BITS / 8);
  return V6_PREFIX_BITS;
}

ke_admit *ke_admit_create(const ke_admit_cfg *cfg)
{
  ke_admit *a = calloc(1, sizeof(*a));
  if (!a)
    return NULL;
  a->cfg = *cfg;
  if (a->cfg.slots == 0)
    a->cfg.slots = KE_ADMIT_SLOTS;
  if (a->cfg.per_prefix == 0)
    a->cfg.per_prefix = KE_ADMIT_PER_PREFIX;
  if (!(a->cfg.timeout > 0))
    a->cfg.timeout = KE_ADMIT_TIMEOUT;
  if (!(a->cfg.hello_timeout > 0))
    a->cfg.hello_timeout = KE_ADMIT_HELLO_TIMEOUT;
  if (a->cfg.hello_timeout > a->cfg.timeout)
    a->cfg.hello_timeout = a->cfg.timeout;
  a->slot = calloc(a->cfg.slots, sizeof(ke_slot));
  if (!a->slot) {
    free(a);
    return NULL;
  }
  return a;
}

void ke_admit_destroy(ke_admit *a)
{
  if (!a)
    return;
  free(a->slot);
  free(a);
}

const ke_admit_cfg *ke_admit_config(const ke_admit *a) { return &a->cfg; }

static void key_of(enum acl_family fam, const uint8_t *addr, uint8_t key[8], uint8_t *kfam)
{
  uint8_t p[16];
  ke_admit_prefix(fam, addr, p);
  memcpy(key, p, 8);
  *kfam = fam == ACL_INET ? ACL_INET : ACL_INET6;
}

static size_t count_prefix(const ke_admit *a, const uint8_t key[8], uint8_t kfam)
{
  size_t n = 0;
  for (size_t i = 0; i < a->cfg.slots; i++) {
    const ke_slot *s = &a->slot[i];
    if (s->phase != KE_PHASE_FREE && s->fam == kfam && memcmp(s->prefix, key, 8) == 0)
      n++;
  }
  return n;
}

size_t ke_admit_prefix_count(const ke_admit *a, enum acl_family fam, const uint8_t *addr)
{
  uint8_t key[8], kfam;
  key_of(fam, addr, key, &kfam);
  return count_prefix(a, key, kfam);
}

/* A free slot, else the oldest one still in its handshake; false if every
 * slot has finished its handshake. */
static bool pick_slot(const ke_admit *a, size_t *out, bool *evict)
{
  size_t victim = a->cfg.slots;
  for (size_t i = 0; i < a->cfg.slots; i++) {
    const ke_slot *s = &a->slot[i];
    if (s->phase == KE_PHASE_FREE) {
      *out = i;
      *evict = false;
      return true;
    }
    if (s->phase != KE_PHASE_EXCHANGE && (victim == a->cfg.slots || s->seq < a->slot[victim].seq))
      victim = i;
  }
  if (victim == a->cfg.slots)
    return false;
  *out = victim;
  *evict = true;
  return true;
}

ke_admit_verdict ke_admit_open(ke_admit *a, enum acl_family fam, const uint8_t *addr,
                               double now, size_t *slot)
{
  uint8_t key[8], kfam;
  key_of(fam, addr, key, &kfam);
  if (count_prefix(a, key, kfam) >= a->cfg.per_prefix)
    return KE_ADMIT_PREFIX_FULL;
  size_t i;
  bool evict;
  if (!pick_slot(a, &i, &evict))
    return KE_ADMIT_FULL;
  *slot = i;
  if (evict)
    return KE_ADMIT_EVICT;
  ke_slot *s = &a->slot[i];
  memcpy(s->prefix, key, 8);
  s->fam = kfam;
  s->phase = KE_PHASE_HELLO;
  s->opened = now;
  s->seq = a->next_seq++;
  a->in_use++;
  return KE_ADMIT_OK;
}

void ke_admit_advance(ke_admit *a, size_t slot, ke_admit_phase phase)
{
  if (slot >= a->cfg.slots || a->slot[slot].phase == KE_PHASE_FREE)
    return;
  if (phase > a->slot[slot].phase && phase <= KE_PHASE_EXCHANGE)
    a->slot[slot].phase = (uint8_t)phase;
}

void ke_admit_release(ke_admit *a, size_t slot)
{
  if (slot >= a->cfg.slots || a->slot[slot].phase == KE_PHASE_FREE)
    return;
  memset(&a->slot[slot], 0, sizeof(a->slot[slot]));
  a->in_use--;
}

ke_admit_phase ke_admit_phase_of(const ke_admit *a, size_t slot)
{
  return slot < a->cfg.slots ? (ke_admit_phase)a->slot[slot].phase : KE_PHASE_FREE;
}

double ke_admit_deadline(const ke_admit *a, size_t slot)
{
  if (slot >= a->cfg.slots || a->slot[slot].phase == KE_PHASE_FREE)
    return 0;
  const ke_slot *s = &a->slot[slot];
  return s->opened + (s->phase == KE_PHASE_HELLO ? a->cfg.hello_timeout : a->cfg.timeout);
}

size_t ke_admit_in_use(const ke_admit *a) { return a->in_use; }
