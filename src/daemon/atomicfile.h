/* atomicfile: small state files (the cookie key file, the drift file)
 * replaced whole, so that a crash, a kill or a full disk at any moment
 * leaves either the old contents or the new ones, never a mix; and read
 * only when they are regular files that the daemon or root owns.
 *
 * A write goes through an unnamed temporary (O_TMPFILE) in the target's
 * directory: written, fsync'd, linked under a random hidden name
 * (".NAME.XXXXXXXXXXXXXXXX.ntsd-tmp"), renamed over the target, and the
 * directory fsync'd.  Where the filesystem has no O_TMPFILE, the temporary
 * is created under that random name with O_CREAT|O_EXCL|O_NOFOLLOW.  A kill
 * between the link and the rename can leave one such temporary; the next
 * write of the same target removes it.
 *
 * An atomicfile object is a file rewritten from time to time, with the
 * failure logging a daemon wants: the first failure is a warning, the
 * following ones (a full or read-only disk stays so) are debug lines, and
 * the first success after them is a notice. */
#ifndef NTSD_DAEMON_ATOMICFILE_H
#define NTSD_DAEMON_ATOMICFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

/* Replaces path with len bytes of data, file mode `mode` (whatever the
 * umask).  Returns 0, or an errno value with a reason in err. */
int atomicfile_write(const char *path, const void *data, size_t len, mode_t mode, char *err,
                     size_t errlen);
/* The same, never trying O_TMPFILE: the way taken where it is missing. */
int atomicfile_write_named(const char *path, const void *data, size_t len, mode_t mode,
                           char *err, size_t errlen);

/* Removes the temporaries that killed writes of path left behind; returns
 * how many. */
int atomicfile_cleanup(const char *path);

typedef enum atomicfile_status {
  ATOMICFILE_OK,
  ATOMICFILE_MISSING,     /* no such file */
  ATOMICFILE_SYMLINK,     /* a symbolic link: never followed */
  ATOMICFILE_NOT_REGULAR, /* a FIFO, directory, device or socket */
  ATOMICFILE_BAD_OWNER,   /* owned by neither the daemon's user nor root */
  ATOMICFILE_ERROR,       /* cannot open or read it (permissions, I/O) */
} atomicfile_status;

/* The user the daemon becomes once set up (-u): files written while still
 * root are given to it, and reading accepts its files as well as the
 * effective uid's and root's.  Unset, files stay the effective uid's. */
void atomicfile_set_owner(uid_t uid, gid_t gid);

/* Opens path for reading: never follows a symbolic link, never blocks (a
 * FIFO is refused, not waited on), and accepts only a regular file owned
 * by the effective uid, the daemon's user (atomicfile_set_owner) or root.  On ATOMICFILE_OK, *fd is open (close
 * it) and *st describes it; otherwise err says why, naming no path. */
atomicfile_status atomicfile_open_read(const char *path, int *fd, struct stat *st, char *err,
                                       size_t errlen);

/* Reads at most cap bytes from an open file; the count, or -1. */
long atomicfile_read_fd(int fd, void *buf, size_t cap);

typedef struct atomicfile atomicfile;

/* `what` starts log lines ("driftfile", "nts cookie"); `consequence` ends
 * the first failure's warning (what a failed write means to the user). */
atomicfile *atomicfile_create(const char *path, mode_t mode, const char *what,
                              const char *consequence);
void atomicfile_destroy(atomicfile *f);
const char *atomicfile_path(const atomicfile *f);

/* Writes the file, logging as described above; true on success. */
bool atomicfile_save(atomicfile *f, const void *data, size_t len);
/* Failed saves since the last success. */
unsigned atomicfile_failures(const atomicfile *f);

#endif
