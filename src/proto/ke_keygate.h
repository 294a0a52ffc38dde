/* ke_keygate: when the main process may let a cookie master key fall out of
 * its ring, now that a separate NTS-KE process mints the cookies.
 *
 * The main process opens cookies with its ring of NTS_COOKIE_RING keys; the
 * KE process seals them with the one key the main process last sent it.
 * After a rotation the KE process keeps sealing with the previous key until
 * the new one has reached it and it has acknowledged it.  So a key may drop
 * out of the ring only once the KE process has acknowledged a newer key AND
 * a cookie lifetime has passed since that acknowledgement: every cookie it
 * sealed then stays accepted for at least that long, however late messages
 * are.  Until then the main process postpones the rotation that would drop
 * it.  Keys already older than the key current when the gate was made (read
 * from the key file, sealed by an earlier run) are not held back.
 *
 * A gate whose process has ended and not been replaced (ke_keygate_down)
 * holds nothing back once a cookie lifetime has passed since, or at once
 * if no process of its ever acknowledged a key (it sealed nothing): a KE
 * process that stays down, or keeps dying before it acknowledges anything,
 * does not stop rotations for good.  The next process's first
 * acknowledgement ends the down time; keys older than the one it
 * acknowledges then retire a lifetime after the down time began, not a
 * lifetime after that acknowledgement.
 *
 * A KE process replaced by another (a renewal) keeps sealing with the keys
 * it had until it ends: ke_keygate_sealed holds those keys for a lifetime
 * after its end.
 *
 * Acknowledgements must be given in the order the keys were sent (the
 * caller ignores any other).  Pure: times are the caller's monotonic
 * seconds. */
#ifndef NTSD_PROTO_KE_KEYGATE_H
#define NTSD_PROTO_KE_KEYGATE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct ke_keygate ke_keygate;

/* first_id: the current key id now.  lifetime: seconds a cookie stays
 * accepted after its key stopped being used for new ones.  NULL when out of
 * memory. */
ke_keygate *ke_keygate_create(uint32_t first_id, double lifetime);
void ke_keygate_destroy(ke_keygate *g);

/* The KE process acknowledged key id at time now (a repeat keeps the first
 * time). */
void ke_keygate_ack(ke_keygate *g, uint32_t id, double now);

/* No KE process seals for the gate from now (it ended, or could not be
 * started); a repeat keeps the first time.  The next acknowledgement ends
 * it. */
void ke_keygate_down(ke_keygate *g, double now);
/* A process of this gate's, replaced, sealed with keys up to id until
 * `until` (it has ended then). */
void ke_keygate_sealed(ke_keygate *g, uint32_t id, double until);

/* Whether the key `oldest` may leave the ring while `current` is the newest
 * key. */
bool ke_keygate_may_drop(const ke_keygate *g, uint32_t oldest, uint32_t current, double now);

/* Whether id has been acknowledged. */
bool ke_keygate_acked(const ke_keygate *g, uint32_t id);

#endif
