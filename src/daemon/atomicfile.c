/* atomicfile: crash-safe replacement and careful reading of state files. */
#include "daemon/atomicfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/log.h"
#include "daemon/sysclock.h"

#define TMP_SUFFIX ".ntsd-tmp"
#define TMP_HEX 16        /* random hex digits in a temporary's name */
#define TMP_BASE_MAX 200  /* of the target's name, so the temporary's fits NAME_MAX */
#define NAME_TRIES 4      /* random names tried before giving up (EEXIST) */

/* Set once at start-up, before any thread (atomicfile_set_owner). */
static bool owner_set;
static uid_t owner_uid;
static gid_t owner_gid;

void atomicfile_set_owner(uid_t uid, gid_t gid)
{
  owner_uid = uid;
  owner_gid = gid;
  owner_set = true;
}

/* A file written before the drop belongs to the user who rewrites it later. */
static bool give_to_owner(int fd)
{
  return !owner_set || geteuid() != 0 || fchown(fd, owner_uid, owner_gid) == 0;
}

/* The directory (an open fd) and last component of path. */
static int open_dir(const char *path, const char **base)
{
  const char *slash = strrchr(path, '/');
  *base = slash ? slash + 1 : path;
  if (!**base) {
    errno = EISDIR;
    return -1;
  }
  char dir[4096];
  if (!slash)
    snprintf(dir, sizeof(dir), ".");
  else if (slash == path)
    snprintf(dir, sizeof(dir), "/");
  else if ((size_t)(slash - path) < sizeof(dir))
    snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
  else {
    errno = ENAMETOOLONG;
    return -1;
  }
  return open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static void tmp_name(char *out, size_t cap, const char *base)
{
  uint64_t r;
  sysclock_random(&r, sizeof(r));
  snprintf(out, cap, ".%.*s.%016" PRIx64 TMP_SUFFIX, TMP_BASE_MAX, base, r);
}

/* Whether name is one of our temporaries for base. */
static bool is_tmp_of(const char *name, const char *base)
{
  size_t bl = strlen(base) < TMP_BASE_MAX ? strlen(base) : TMP_BASE_MAX;
  size_t sl = strlen(TMP_SUFFIX);
  if (strlen(name) != 1 + bl + 1 + TMP_HEX + sl || name[0] != '.' ||
      strncmp(name + 1, base, bl) != 0 || name[1 + bl] != '.' ||
      strcmp(name + 2 + bl + TMP_HEX, TMP_SUFFIX) != 0)
    return false;
  for (size_t i = 0; i < TMP_HEX; i++)
    if (!strchr("0123456789abcdef", name[2 + bl + i]))
      return false;
  return true;
}

static int cleanup_at(int dfd, const char *base)
{
  int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (!d) {
    if (fd >= 0)
      close(fd);
    return 0;
  }
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (is_tmp_of(e->d_name, base) && unlinkat(dfd, e->d_name, 0) == 0)
      n++;
  closedir(d);
  return n;
}

int atomicfile_cleanup(const char *path)
{
  const char *base;
  int dfd = open_dir(path, &base);
  if (dfd < 0)
    return 0;
  int n = cleanup_at(dfd, base);
  close(dfd);
  return n;
}

static bool write_all(int fd, const void *data, size_t len)
{
  const char *p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      if (n == 0)
        errno = EIO;
      return false;
    }
    p += n;
    len -= (size_t)n;
  }
  return true;
}

/* Gives the unnamed temporary fd a random name in dfd. */
static bool link_tmpfile(int fd, int dfd, const char *base, char *name, size_t cap)
{
  for (int i = 0; i < NAME_TRIES; i++) {
    tmp_name(name, cap, base);
    if (linkat(fd, "", dfd, name, AT_EMPTY_PATH) == 0)
      return true;
    if (errno == ENOENT || errno == EPERM) {
      /* AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; /proc does not. */
      char proc[64];
      snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
      if (linkat(AT_FDCWD, proc, dfd, name, AT_SYMLINK_FOLLOW) == 0)
        return true;
    }
    if (errno != EEXIST)
      return false;
  }
  return false;
}

static int open_named(int dfd, const char *base, mode_t mode, char *name, size_t cap)
{
  for (int i = 0; i < NAME_TRIES; i++) {
    tmp_name(name, cap, base);
    int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd >= 0 || errno != EEXIST)
      return fd;
  }
  return -1;
}

/* The temporary's contents and mode, durable.  Returns its fd with *named
 * holding its name in dfd, or -1 with *step saying what failed. */
static int make_tmp(int dfd, const char *base, const void *data, size_t len, mode_t mode,
                    bool try_tmpfile, char *name, size_t cap, const char **step)
{
  name[0] = '\0';
  int fd = -1;
  if (try_tmpfile) {
    fd = openat(dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, mode);
    if (fd < 0 && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
      *step = "cannot create a temporary file";
      return -1;
    }
  }
  if (fd < 0 && (fd = open_named(dfd, base, mode, name, cap)) < 0) {
    *step = "cannot create a temporary file";
    return -1;
  }
  *step = "cannot write";
  /* The mode first: once the file is the user's, root needs CAP_FOWNER to
   * change it, which a container may well not grant. */
  if (fchmod(fd, mode) == 0 && give_to_owner(fd) && write_all(fd, data, len) &&
      fsync(fd) == 0) {
    if (name[0] || link_tmpfile(fd, dfd, base, name, cap))
      return fd;
    /* An unnamed temporary that cannot be named (no CAP_DAC_READ_SEARCH
     * and no /proc, in a chroot): a named one still works. */
    close(fd);
    return make_tmp(dfd, base, data, len, mode, false, name, cap, step);
  }
  int e = errno;
  close(fd);
  if (name[0])
    unlinkat(dfd, name, 0);
  errno = e;
  return -1;
}

static int write_file(const char *path, const void *data, size_t len, mode_t mode,
                      bool try_tmpfile, char *err, size_t errlen)
{
  const char *base;
  int dfd = open_dir(path, &base);
  if (dfd < 0) {
    int e = errno;
    snprintf(err, errlen, "cannot open its directory: %s", strerror(e));
    return e;
  }
  cleanup_at(dfd, base);
  char name[TMP_BASE_MAX + TMP_HEX + 32];
  const char *step = "";
  int fd = make_tmp(dfd, base, data, len, mode, try_tmpfile, name, sizeof(name), &step);
  int e = 0;
  if (fd < 0) {
    e = errno;
  } else {
    if (close(fd) < 0) {
      e = errno;
      step = "cannot write";
    } else if (renameat(dfd, name, dfd, base) < 0) {
      e = errno;
      step = "cannot rename the temporary file over it";
    }
    if (e)
      unlinkat(dfd, name, 0);
  }
  if (e == 0)
    fsync(dfd); /* the rename itself; the data are on disk already */
  else
    snprintf(err, errlen, "%s: %s", step, strerror(e));
  close(dfd);
  return e;
}

int atomicfile_write(const char *path, const void *data, size_t len, mode_t mode, char *err,
                     size_t errlen)
{
  return write_file(path, data, len, mode, true, err, errlen);
}

int atomicfile_write_named(const char *path, const void *data, size_t len, mode_t mode,
                           char *err, size_t errlen)
{
  return write_file(path, data, len, mode, false, err, errlen);
}

atomicfile_status atomicfile_open_read(const char *path, int *fd, struct stat *st, char *err,
                                       size_t errlen)
{
  /* O_NONBLOCK: opening a FIFO returns at once, and fstat refuses it. */
  *fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  if (*fd < 0) {
    int e = errno;
    snprintf(err, errlen, "%s", e == ELOOP ? "is a symbolic link" : strerror(e));
    return e == ENOENT ? ATOMICFILE_MISSING : e == ELOOP ? ATOMICFILE_SYMLINK : ATOMICFILE_ERROR;
  }
  atomicfile_status r = ATOMICFILE_OK;
  if (fstat(*fd, st) < 0) {
    snprintf(err, errlen, "%s", strerror(errno));
    r = ATOMICFILE_ERROR;
  } else if (!S_ISREG(st->st_mode)) {
    snprintf(err, errlen, "not a regular file (%s)",
             S_ISFIFO(st->st_mode) ? "a FIFO" : S_ISDIR(st->st_mode) ? "a directory"
             : S_ISSOCK(st->st_mode) ? "a socket" : "a device");
    r = ATOMICFILE_NOT_REGULAR;
  } else if (st->st_uid != geteuid() && st->st_uid != 0 &&
             !(owner_set && st->st_uid == owner_uid)) {
    snprintf(err, errlen, "owned by uid %u, not by the daemon's user (uid %u) or root",
             (unsigned)st->st_uid, (unsigned)(owner_set ? owner_uid : geteuid()));
    r = ATOMICFILE_BAD_OWNER;
  }
  if (r != ATOMICFILE_OK) {
    close(*fd);
    *fd = -1;
  }
  return r;
}

long atomicfile_read_fd(int fd, void *buf, size_t cap)
{
  size_t got = 0;
  while (got < cap) {
    ssize_t n = read(fd, (char *)buf + got, cap - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -1;
    if (n == 0)
      break;
    got += (size_t)n;
  }
  return (long)got;
}

struct atomicfile {
  char *path, *what, *consequence;
  mode_t mode;
  unsigned failures;
};

atomicfile *atomicfile_create(const char *path, mode_t mode, const char *what,
                              const char *consequence)
{
  atomicfile *f = calloc(1, sizeof(*f));
  if (!f)
    return NULL;
  f->path = strdup(path);
  f->what = strdup(what);
  f->consequence = strdup(consequence);
  f->mode = mode;
  if (!f->path || !f->what || !f->consequence) {
    atomicfile_destroy(f);
    return NULL;
  }
  return f;
}

void atomicfile_destroy(atomicfile *f)
{
  if (!f)
    return;
  free(f->path);
  free(f->what);
  free(f->consequence);
  free(f);
}

const char *atomicfile_path(const atomicfile *f) { return f->path; }
unsigned atomicfile_failures(const atomicfile *f) { return f->failures; }

bool atomicfile_save(atomicfile *f, const void *data, size_t len)
{
  char err[160];
  if (atomicfile_write(f->path, data, len, f->mode, err, sizeof(err)) == 0) {
    if (f->failures)
      log_notice("%s %s: written again, after %u failed attempt%s", f->what, f->path,
                 f->failures, f->failures == 1 ? "" : "s");
    f->failures = 0;
    return true;
  }
  /* A full or read-only disk stays so for a while: say it once. */
  if (f->failures++ == 0)
    log_warn("%s %s: %s; %s (until a write succeeds, further failures are logged at debug "
             "level only)", f->what, f->path, err, f->consequence);
  else
    log_debug("%s %s: %s (failed attempt %u)", f->what, f->path, err, f->failures);
  return false;
}
