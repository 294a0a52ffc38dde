/* ke_keygate: acknowledged keys and when they may retire. */
#include "proto/ke_keygate.h"

#include <stdlib.h>

#include "proto/nts_cookie.h"

struct ke_keygate {
  uint32_t first_id;
  double lifetime;
  /* by id % NTS_COOKIE_RING: only ids within one ring matter */
  bool acked[NTS_COOKIE_RING];
  uint32_t id[NTS_COOKIE_RING];
  double at[NTS_COOKIE_RING];
  bool any_acked;         /* some process of this gate's acknowledged a key */
  bool down;              /* no process has sealed for it ... */
  double down_at;         /* ... since then */
  /* Keys older than rel_id were last sealed for this gate at rel_at (or
   * never: rel_never), before a down time that a new process ended. */
  bool has_rel, rel_never;
  uint32_t rel_id;
  double rel_at;
  /* A replaced process sealed with keys up to hold_id until hold_at. */
  bool held;
  uint32_t hold_id;
  double hold_at;
};

ke_keygate *ke_keygate_create(uint32_t first_id, double lifetime)
{
  ke_keygate *g = calloc(1, sizeof(*g));
  if (g) {
    g->first_id = first_id;
    g->lifetime = lifetime;
  }
  return g;
}

void ke_keygate_destroy(ke_keygate *g) { free(g); }

bool ke_keygate_acked(const ke_keygate *g, uint32_t id)
{
  unsigned s = id % NTS_COOKIE_RING;
  return g->acked[s] && g->id[s] == id;
}

void ke_keygate_ack(ke_keygate *g, uint32_t id, double now)
{
  unsigned s = id % NTS_COOKIE_RING;
  if (g->down) { /* a new process: nothing older than id was sealed since down_at */
    g->has_rel = true;
    g->rel_never = !g->any_acked;
    g->rel_id = id;
    g->rel_at = g->down_at;
    g->down = false;
  }
  g->any_acked = true;
  if (ke_keygate_acked(g, id))
    return;
  g->acked[s] = true;
  g->id[s] = id;
  g->at[s] = now;
}

void ke_keygate_down(ke_keygate *g, double now)
{
  if (!g->down) {
    g->down = true;
    g->down_at = now;
  }
}

void ke_keygate_sealed(ke_keygate *g, uint32_t id, double until)
{
  if (!g->held || (int32_t)(id - g->hold_id) > 0)
    g->hold_id = id;
  if (!g->held || until > g->hold_at)
    g->hold_at = until;
  g->held = true;
}

/* Whether nothing sealed for the gate has used `oldest` for a lifetime,
 * by what is known beyond the acknowledgements. */
static bool released(const ke_keygate *g, uint32_t oldest, double now)
{
  if ((int32_t)(oldest - g->first_id) < 0)
    return true; /* retired before this run */
  /* No process has sealed for this gate for a cookie lifetime, or none
   * ever held a key. */
  if (g->down && (!g->any_acked || now - g->down_at >= g->lifetime))
    return true;
  return g->has_rel && (int32_t)(oldest - g->rel_id) < 0 &&
         (g->rel_never || now - g->rel_at >= g->lifetime);
}

bool ke_keygate_may_drop(const ke_keygate *g, uint32_t oldest, uint32_t current, double now)
{
  if (g->held && (int32_t)(g->hold_id - oldest) >= 0 && now - g->hold_at < g->lifetime)
    return false;
  if (released(g, oldest, now))
    return true;
  uint32_t span = current - oldest;
  if (span >= NTS_COOKIE_RING)
    span = NTS_COOKIE_RING - 1;
  /* Acknowledgements come in key order: the first newer key acknowledged
   * is the moment the KE process stopped sealing with `oldest`. */
  for (uint32_t d = 1; d <= span; d++) {
    uint32_t id = oldest + d;
    if (ke_keygate_acked(g, id))
      return now - g->at[id % NTS_COOKIE_RING] >= g->lifetime;
  }
  return false;
}
