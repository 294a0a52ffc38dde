/* keystore: cookie master keys, persisted and published atomically. */
#include "daemon/keystore.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/log.h"
#include "daemon/sysclock.h"

struct keystore {
  _Atomic(nts_keyset *) current;
  nts_keyset *retired; /* replaced at the last rotation; freed at the next */
  char path[1024];
  uint64_t period;
};

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

/* Writes path atomically: a temporary file in the same directory, fsync,
 * rename over the old one, fsync the directory. */
static bool save(const keystore *k, const nts_keyset *ks)
{
  uint8_t buf[NTS_KEYFILE_MAX_LEN];
  size_t n = nts_keyset_serialize(ks, buf, sizeof(buf));
  char tmp[sizeof(k->path) + 16];
  snprintf(tmp, sizeof(tmp), "%s.tmp", k->path);
  int fd = n ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600) : -1;
  bool ok = fd >= 0 && fchmod(fd, 0600) == 0 && write(fd, buf, n) == (ssize_t)n &&
            fsync(fd) == 0;
  int saved_errno = errno;
  if (fd >= 0)
    close(fd);
  if (ok && rename(tmp, k->path) == 0) {
    char dir[sizeof(k->path)];
    snprintf(dir, sizeof(dir), "%s", k->path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      fsync(dfd);
      close(dfd);
    }
    nts_wipe(buf, sizeof(buf));
    return true;
  }
  if (fd >= 0)
    unlink(tmp);
  nts_wipe(buf, sizeof(buf));
  log_err("nts cookie %s: cannot write: %s", k->path, strerror(ok ? errno : saved_errno));
  return false;
}

/* Reads the key file; NULL (with a log line) if missing or corrupt.
 * *fatal is set for a symbolic link: it is never followed (the file is
 * rewritten in place, and a link could aim that at another file), and
 * replacing it would silently invalidate every issued cookie. */
static nts_keyset *load(const keystore *k, bool *fatal)
{
  uint8_t buf[NTS_KEYFILE_MAX_LEN + 1];
  int fd = open(k->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  *fatal = false;
  if (fd < 0) {
    if (errno == ENOENT) {
      log_notice("nts cookie %s: no key file yet; creating one", k->path);
    } else if (errno == ELOOP) {
      log_err("nts cookie %s: is a symbolic link; give the real path", k->path);
      *fatal = true;
    } else {
      log_warn("nts cookie %s: cannot read (%s); replacing it", k->path, strerror(errno));
    }
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) == 0 && (st.st_mode & 077)) {
    log_warn("nts cookie %s: readable by others (mode %03o); setting 0600 — consider the "
             "keys exposed and remove the file to start with new ones", k->path,
             (unsigned)(st.st_mode & 0777));
    if (fchmod(fd, 0600) < 0)
      log_warn("nts cookie %s: chmod: %s", k->path, strerror(errno));
  }
  ssize_t n = read(fd, buf, sizeof(buf));
  close(fd);
  nts_keyset *ks = NULL;
  nts_keyfile_result r = n < 0 ? NTS_KEYFILE_TRUNCATED
                               : nts_keyset_deserialize(buf, (size_t)n, &ks);
  nts_wipe(buf, sizeof(buf));
  if (r != NTS_KEYFILE_OK) {
    log_warn("nts cookie %s: corrupt key file (%s); replacing it with new keys: cookies "
             "issued before cannot be decoded", k->path, nts_keyfile_result_name(r));
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
  if (path && *path)
    snprintf(k->path, sizeof(k->path), "%s", path);
  bool fatal = false;
  nts_keyset *ks = k->path[0] ? load(k, &fatal) : NULL;
  if (fatal) {
    snprintf(err, errlen, "nts cookie %s: is a symbolic link; give the real path", k->path);
    free(k);
    return NULL;
  }
  bool dirty = false;
  if (!ks) {
    ks = fresh_keyset(now);
    dirty = true;
  }
  if (!ks) {
    snprintf(err, errlen, "cannot create cookie keys");
    free(k);
    return NULL;
  }
  atomic_store(&k->current, ks);
  if (!keystore_rotate_if_due(k, now) && dirty && k->path[0] && !save(k, ks)) {
    snprintf(err, errlen, "nts cookie %s: cannot write the key file", k->path);
    keystore_close(k);
    return NULL;
  }
  log_info("NTS cookie key %08x in use (%u keys held)", nts_keyset_current_id(ks),
           nts_keyset_count(keystore_current(k)));
  return k;
}

void keystore_close(keystore *k)
{
  if (!k)
    return;
  nts_keyset_free(atomic_load(&k->current));
  nts_keyset_free(k->retired);
  free(k);
}

const nts_keyset *keystore_current(const keystore *k)
{
  return atomic_load_explicit(&((keystore *)k)->current, memory_order_acquire);
}

bool keystore_rotate_if_due(keystore *k, uint64_t now)
{
  nts_keyset *cur = atomic_load(&k->current);
  if (!nts_keyset_due(cur, now, k->period))
    return false;
  uint8_t key[NTS_COOKIE_MASTER_KEY_LEN];
  sysclock_random(key, sizeof(key));
  nts_keyset *next = nts_keyset_rotate(cur, key, now);
  nts_wipe(key, sizeof(key));
  if (!next) {
    log_err("NTS cookie key rotation failed: out of memory");
    return false;
  }
  if (k->path[0])
    save(k, next); /* logged on failure; the new keys are used anyway */
  atomic_store_explicit(&k->current, next, memory_order_release);
  nts_keyset_free(k->retired);
  k->retired = cur;
  log_notice("NTS cookie key rotated: key %08x in use, %u keys held",
             nts_keyset_current_id(next), nts_keyset_count(next));
  return true;
}
