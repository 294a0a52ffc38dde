/* keystore: cookie master keys, persisted and published atomically. */
#include "daemon/keystore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/atomicfile.h"
#include "daemon/log.h"
#include "daemon/sysclock.h"
#include "proto/nts_keyderive.h"

#define KEY_CHECK_MAX_S 60 /* rotation checks at least this often */

struct keystore {
  _Atomic(nts_keyset *) current;
  nts_keyset *retired; /* replaced at the last rotation; freed at the next */
  atomicfile *file;    /* NULL: keys in memory only */
  bool unsaved;        /* the file lags the keys in memory (a write failed) */
  uint64_t period;
  uint8_t *secret;     /* `nts cookie-secret`: keys derived per epoch; else NULL */
  size_t secret_len;
  uint64_t epoch;      /* with a secret: the epoch of the current set */
  void (*grace)(void *arg); /* keystore_set_grace */
  void *grace_arg;
};

/* old, just replaced, is kept until the next rotation; the set it replaces
 * in turn is freed once every reader has left the request it was in. */
static void retire(keystore *k, nts_keyset *old)
{
  if (k->retired && k->grace)
    k->grace(k->grace_arg);
  nts_keyset_free(k->retired);
  k->retired = old;
}

static bool derive_if_due(keystore *k, uint64_t now);

static nts_keyset *fresh_keyset(uint64_t now)
{
  uint8_t key[NTS_COOKIE_MASTER_KEY_LEN];
  uint32_t id;
  sysclock_random(key, sizeof(key));
  sysclock_random(&id, sizeof(id));
  nts_keyset *ks = nts_keyset_new(id, key, now);
  nts_wipe(key, sizeof(key));
  return ks;
}

/* Writes the key file (atomicfile: old or new keys after any crash).  A
 * failure is logged once and the keys in memory stay in use. */
static void save(keystore *k, const nts_keyset *ks)
{
  uint8_t buf[NTS_KEYFILE_MAX_LEN];
  size_t n = nts_keyset_serialize(ks, buf, sizeof(buf));
  k->unsaved = !n || !atomicfile_save(k->file, buf, n);
  nts_wipe(buf, sizeof(buf));
}

/* Reads the key file; NULL (with a log line) if missing or corrupt.
 * *fatal is set (with the reason in err) for what is refused rather than
 * replaced: a symbolic link (never followed: the file is rewritten in
 * place, and a link could aim that at another file), anything but a
 * regular file, and a file that neither the daemon's user nor root owns
 * (someone else could have chosen the keys).  Replacing those would also
 * silently invalidate every issued cookie. */
static nts_keyset *load(const keystore *k, bool *fatal, char *err, size_t errlen)
{
  const char *path = atomicfile_path(k->file);
  uint8_t buf[NTS_KEYFILE_MAX_LEN + 1];
  char why[128];
  struct stat st;
  int fd;
  atomicfile_status s = atomicfile_open_read(path, &fd, &st, why, sizeof(why));
  *fatal = s == ATOMICFILE_SYMLINK || s == ATOMICFILE_NOT_REGULAR || s == ATOMICFILE_BAD_OWNER;
  if (*fatal) {
    snprintf(err, errlen, "nts cookie %s: refused: %s; %s", path, why,
             s == ATOMICFILE_SYMLINK ? "give the real path" : "give a regular file that "
             "only the daemon's user (or root) owns");
    return NULL;
  }
  if (s == ATOMICFILE_MISSING) {
    log_notice("nts cookie %s: no key file yet; creating one", path);
    return NULL;
  }
  if (s != ATOMICFILE_OK) {
    log_warn("nts cookie %s: cannot read (%s); replacing it", path, why);
    return NULL;
  }
  if (st.st_mode & 077) {
    log_warn("nts cookie %s: readable by others (mode %03o); setting 0600 — consider the "
             "keys exposed and remove the file to start with new ones", path,
             (unsigned)(st.st_mode & 0777));
    if (fchmod(fd, 0600) < 0)
      log_warn("nts cookie %s: chmod: %s", path, strerror(errno));
  }
  long n = atomicfile_read_fd(fd, buf, sizeof(buf));
  close(fd);
  nts_keyset *ks = NULL;
  nts_keyfile_result r = n < 0 ? NTS_KEYFILE_TRUNCATED
                               : nts_keyset_deserialize(buf, (size_t)n, &ks);
  nts_wipe(buf, sizeof(buf));
  if (r != NTS_KEYFILE_OK) {
    log_warn("nts cookie %s: corrupt key file (%s); replacing it with new keys: cookies "
             "issued before cannot be decoded", path, nts_keyfile_result_name(r));
    return NULL;
  }
  return ks;
}

keystore *keystore_open(const char *path, uint64_t period, uint64_t now, char *err,
                        size_t errlen)
{
  keystore *k = calloc(1, sizeof(*k));
  if (!k) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  k->period = period;
  if (path && *path &&
      !(k->file = atomicfile_create(path, 0600, "nts cookie",
                                    "the keys in memory stay in use, but they will not "
                                    "survive a restart (a restart before the file is saved "
                                    "invalidates the cookies issued until then)"))) {
    snprintf(err, errlen, "out of memory");
    free(k);
    return NULL;
  }
  bool fatal = false;
  nts_keyset *ks = k->file ? load(k, &fatal, err, errlen) : NULL;
  if (fatal) {
    keystore_close(k);
    return NULL;
  }
  bool fresh = !ks;
  if (!ks && !(ks = fresh_keyset(now))) {
    snprintf(err, errlen, "cannot create cookie keys");
    keystore_close(k);
    return NULL;
  }
  atomic_store(&k->current, ks);
  if (!keystore_rotate_if_due(k, now) && fresh && k->file)
    save(k, ks);
  const nts_keyset *cur = keystore_current(k);
  log_info("NTS cookie key %08x in use (%u keys held%s)", nts_keyset_current_id(cur),
           nts_keyset_count(cur), !k->file ? ", in memory only" : k->unsaved ?
           ", not saved yet" : "");
  return k;
}

void keystore_close(keystore *k)
{
  if (!k)
    return;
  nts_keyset_free(atomic_load(&k->current));
  nts_keyset_free(k->retired);
  atomicfile_destroy(k->file);
  if (k->secret)
    nts_wipe(k->secret, k->secret_len);
  free(k->secret);
  free(k);
}

const nts_keyset *keystore_current(const keystore *k)
{
  return atomic_load_explicit(&((keystore *)k)->current, memory_order_acquire);
}

bool keystore_unsaved(const keystore *k) { return k->unsaved; }

keystore *keystore_adopt(nts_keyset *ks)
{
  keystore *k = ks ? calloc(1, sizeof(*k)) : NULL;
  if (!k) {
    nts_keyset_free(ks);
    return NULL;
  }
  atomic_store(&k->current, ks);
  return k;
}

void keystore_install(keystore *k, nts_keyset *ks)
{
  nts_keyset *old = atomic_exchange_explicit(&k->current, ks, memory_order_acq_rel);
  retire(k, old);
}

void keystore_set_grace(keystore *k, void (*grace)(void *arg), void *arg)
{
  k->grace = grace;
  k->grace_arg = arg;
}

unsigned keystore_check_interval(const keystore *k)
{
  uint64_t s = k->period / 10;
  return s < 1 ? 1 : s > KEY_CHECK_MAX_S ? KEY_CHECK_MAX_S : (unsigned)s;
}

bool keystore_rotate_if_due(keystore *k, uint64_t now)
{
  if (k->secret)
    return derive_if_due(k, now);
  nts_keyset *cur = atomic_load(&k->current);
  if (!nts_keyset_due(cur, now, k->period)) {
    if (k->unsaved)
      save(k, cur); /* the disk may take it now; quiet until it does */
    return false;
  }
  uint8_t key[NTS_COOKIE_MASTER_KEY_LEN];
  sysclock_random(key, sizeof(key));
  nts_keyset *next = nts_keyset_rotate(cur, key, now);
  nts_wipe(key, sizeof(key));
  if (!next) {
    log_err("NTS cookie key rotation failed: out of memory");
    return false;
  }
  if (k->file)
    save(k, next); /* logged on failure; the new keys are used anyway */
  atomic_store_explicit(&k->current, next, memory_order_release);
  retire(k, cur);
  log_notice("NTS cookie key rotated: key %08x in use, %u keys held",
             nts_keyset_current_id(next), nts_keyset_count(next));
  return true;
}

/* ---- keys derived from a shared secret (`nts cookie-secret FILE`) ---- */

bool keystore_shared(const keystore *k) { return k->secret != NULL; }

/* Publishes the set of epoch e (main thread only): false when out of
 * memory (the current set stays). */
static bool derive(keystore *k, uint64_t e)
{
  nts_keyset *next = nts_keyderive_set(k->secret, k->secret_len, k->period, e);
  if (!next)
    return false;
  nts_keyset *cur = atomic_exchange_explicit(&k->current, next, memory_order_acq_rel);
  retire(k, cur);
  k->epoch = e;
  return true;
}

/* Every server with the secret moves to the epoch of its own clock: a
 * clock stepped back moves back with it (the epochs around it are held). */
static bool derive_if_due(keystore *k, uint64_t now)
{
  uint64_t e = nts_keyderive_epoch(now, k->period);
  if (e == k->epoch)
    return false;
  if (!derive(k, e)) {
    log_err("NTS cookie key rotation failed: out of memory");
    return false;
  }
  log_notice("NTS cookie key rotated: key %08x (epoch %llu of the shared secret) in use",
             nts_keyset_current_id(keystore_current(k)), (unsigned long long)e);
  return true;
}

/* Reads the secret: a regular file owned by root or the daemon's user,
 * never a symbolic link, with no permission for group or others (unlike
 * the key file, it is not ours to fix: it was copied here, and may have
 * been read), of NTS_SECRET_MIN_LEN to NTS_SECRET_MAX_LEN bytes. */
static bool read_secret(keystore *k, const char *path, char *err, size_t errlen)
{
  char why[128];
  struct stat st;
  int fd;
  atomicfile_status s = atomicfile_open_read(path, &fd, &st, why, sizeof(why));
  if (s != ATOMICFILE_OK) {
    snprintf(err, errlen, "nts cookie-secret %s: refused: %s", path, why);
    return false;
  }
  if (st.st_mode & 077) {
    close(fd);
    snprintf(err, errlen, "nts cookie-secret %s: refused: mode %03o lets %s read it; "
             "chmod 600 it, and replace the secret on every server if others may have "
             "read it", path, (unsigned)(st.st_mode & 0777),
             st.st_mode & 007 ? "everyone" : "its group");
    return false;
  }
  k->secret = malloc(NTS_SECRET_MAX_LEN + 1);
  long n = k->secret ? atomicfile_read_fd(fd, k->secret, NTS_SECRET_MAX_LEN + 1) : -1;
  close(fd);
  if (n < NTS_SECRET_MIN_LEN || n > NTS_SECRET_MAX_LEN) {
    snprintf(err, errlen, "nts cookie-secret %s: refused: %s", path,
             !k->secret ? "out of memory" : n < 0 ? "cannot read it"
             : n < NTS_SECRET_MIN_LEN ? "shorter than 32 bytes; write 32 random bytes or more "
                                        "(e.g. openssl rand -out FILE 32)"
                                      : "longer than 4096 bytes: not a secret file");
    return false;
  }
  k->secret_len = (size_t)n;
  return true;
}

keystore *keystore_open_shared(const char *secret_path, uint64_t period, uint64_t now,
                               char *err, size_t errlen)
{
  keystore *k = calloc(1, sizeof(*k));
  if (!k) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  k->period = period;
  if (!read_secret(k, secret_path, err, errlen)) {
    keystore_close(k);
    return NULL;
  }
  if (!derive(k, nts_keyderive_epoch(now, period))) {
    snprintf(err, errlen, "cannot derive cookie keys");
    keystore_close(k);
    return NULL;
  }
  log_info("NTS cookie key %08x in use (derived from the shared secret %s, epoch %llu of "
           "%llu s)", nts_keyset_current_id(keystore_current(k)), secret_path,
           (unsigned long long)k->epoch, (unsigned long long)period);
  return k;
}
