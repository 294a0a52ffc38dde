/* keystore: the NTS server's cookie master keys.
 *
 * Holds the current proto/nts_cookie key set and publishes it through an
 * atomic pointer, so a reader on another thread (the NTS-KE server when
 * it runs on one, as in its unit test) and the NTP path read it without a
 * lock.  In the daemon the NTS-KE process has a store of its own, holding
 * the one key the main process sent it (keystore_adopt).  Key sets are immutable: rotation
 * builds a new one, publishes it, and frees the set retired by the previous
 * rotation (a reader holds a set for microseconds; rotations are at least a
 * minute apart), after the readers' grace (keystore_set_grace) when other
 * threads read it.
 *
 * With a file (`nts cookie FILE`), the keys persist across restarts so every
 * issued cookie stays valid: the file is written through atomicfile (a kill
 * at any moment leaves the old keys or the new ones) with mode 0600.  A
 * missing file is created; a corrupt one is logged and replaced with fresh
 * keys; a symbolic link, anything but a regular file, or a file owned by
 * another user than the daemon's or root is refused.  When the file cannot
 * be written (read-only or full disk), that is logged once and the keys in
 * memory serve on; the write is retried at every rotation check until it
 * succeeds. */
#ifndef NTSD_DAEMON_KEYSTORE_H
#define NTSD_DAEMON_KEYSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/nts_cookie.h"

typedef struct keystore keystore;

/* path: "" or NULL for keys in memory only.  period: rotation interval, s.
 * now: wall-clock seconds (key creation times are wall-clock, so they mean
 * the same after a restart). */
keystore *keystore_open(const char *path, uint64_t period, uint64_t now, char *err,
                        size_t errlen);
void keystore_close(keystore *k);

/* The current key set; valid for at least one rotation period. */
const nts_keyset *keystore_current(const keystore *k);

/* Rotates when the current key is older than the period, else retries a
 * failed write of the file (main thread only).  Returns true if it
 * rotated. */
bool keystore_rotate_if_due(keystore *k, uint64_t now);

/* How often to call keystore_rotate_if_due, seconds: a tenth of the
 * period, at most a minute (rotation is at most that late). */
unsigned keystore_check_interval(const keystore *k);

/* A store in memory holding ks (taken), never rotating itself: the NTS-KE
 * process's, fed by keystore_install.  NULL for a NULL ks or when out of
 * memory (ks freed). */
keystore *keystore_adopt(nts_keyset *ks);

/* Replaces the current set with ks (taken); the set it replaces is freed at
 * the next install (a reader holds one for microseconds). */
void keystore_install(keystore *k, nts_keyset *ks);

/* Readers on other threads (the NTP server's packet threads): grace(arg)
 * returns once none of them is inside a request begun before it was
 * called; a retired set is freed only after it.  Main thread only. */
void keystore_set_grace(keystore *k, void (*grace)(void *arg), void *arg);

/* Keys derived from a secret shared with other servers (`nts
 * cookie-secret FILE`, docs/nts-cookies.md): the file is read now (before
 * privileges drop), refused unless it is a regular file owned by root or
 * the daemon's user, not a symbolic link, with no permission for group or
 * others, and 32 to 4096 bytes long.  The set is epoch floor(now / period)'s
 * (proto/nts_keyderive); keystore_rotate_if_due moves to the epoch of the
 * time it is given.  Nothing is written. */
keystore *keystore_open_shared(const char *secret_path, uint64_t period, uint64_t now,
                               char *err, size_t errlen);

/* Whether the keys are derived from a shared secret. */
bool keystore_shared(const keystore *k);

/* True while the file does not hold the keys in memory (writes failed). */
bool keystore_unsaved(const keystore *k);

#endif
