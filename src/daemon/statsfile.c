/* statsfile: appending to NTPsec-style statistics files (see statsfile.h). */
#include "daemon/statsfile.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/log.h"
#include "proto/statsfmt.h"

#define STATSFILE_PATH_MAX 1200

struct statsfile {
  char base[STATSFILE_PATH_MAX]; /* DIR/NAME */
  bool daily, link;
  int fd;                        /* -1: closed */
  int64_t day;                   /* the open file's day (daily) */
  bool failing;                  /* a failure was logged; the next success says so */
  uint64_t lines, errors;
};

statsfile *statsfile_create(const statsfile_cfg *cfg)
{
  statsfile *f = calloc(1, sizeof(*f));
  if (!f)
    return NULL;
  size_t dl = strlen(cfg->dir);
  const char *sep = dl && cfg->dir[dl - 1] == '/' ? "" : "/";
  int n = snprintf(f->base, sizeof(f->base), "%s%s%s", cfg->dir, sep, cfg->name);
  /* Room for ".YYYYMMDD" and the ".C<inode>" of a displaced file. */
  if (n < 0 || (size_t)n + 32 >= sizeof(f->base)) {
    log_err("statistics: path %s/%s too long", cfg->dir, cfg->name);
    free(f);
    return NULL;
  }
  f->daily = cfg->daily;
  f->link = cfg->link;
  f->fd = -1;
  return f;
}

void statsfile_destroy(statsfile *f)
{
  if (!f)
    return;
  if (f->fd >= 0)
    close(f->fd);
  free(f);
}

uint64_t statsfile_lines(const statsfile *f) { return f->lines; }
uint64_t statsfile_errors(const statsfile *f) { return f->errors; }

static void fail(statsfile *f, const char *what, const char *path, int err)
{
  f->errors++;
  if (!f->failing)
    log_warn("statistics: %s %s: %s (lines are dropped until it works again)", what, path,
             strerror(err));
  else
    log_debug("statistics: %s %s: %s", what, path, strerror(err));
  f->failing = true;
}

/* NAME as a hard link to today's file.  A regular file there that is no
 * link (left by `type none`) is kept under NAME.C<inode>, as NTPsec does. */
static void link_base(statsfile *f, const char *path)
{
  struct stat st;
  if (lstat(f->base, &st) == 0) {
    if (S_ISREG(st.st_mode) && st.st_nlink == 1) {
      char keep[STATSFILE_PATH_MAX + 32];
      snprintf(keep, sizeof(keep), "%s.C%" PRIuMAX, f->base, (uintmax_t)st.st_ino);
      if (rename(f->base, keep) != 0)
        log_warn("statistics: rename %s: %s", f->base, strerror(errno));
    } else if (unlink(f->base) != 0) {
      log_warn("statistics: unlink %s: %s", f->base, strerror(errno));
    }
  }
  if (link(path, f->base) != 0 && errno != EEXIST)
    log_warn("statistics: link %s to %s: %s", f->base, path, strerror(errno));
}

/* Opens the file for day (daily), closing the previous one. */
static bool open_for(statsfile *f, int64_t day)
{
  char path[STATSFILE_PATH_MAX + 16];
  if (f->daily) {
    char ymd[9];
    statsfmt_day_suffix(day, ymd);
    snprintf(path, sizeof(path), "%s.%s", f->base, ymd);
  } else {
    snprintf(path, sizeof(path), "%s", f->base);
  }
  if (f->fd >= 0) {
    close(f->fd);
    f->fd = -1;
  }
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY,
                STATSFILE_MODE);
  if (fd < 0) {
    fail(f, "open", path, errno);
    return false;
  }
  f->fd = fd;
  f->day = day;
  if (f->daily && f->link)
    link_base(f, path);
  log_info("statistics: writing %s", path);
  return true;
}

bool statsfile_write(statsfile *f, int64_t now_sec, const char *line, size_t n)
{
  int64_t day = statsfmt_day(now_sec);
  if ((f->fd < 0 || (f->daily && day != f->day)) && !open_for(f, day))
    return false;
  ssize_t w = write(f->fd, line, n);
  if (w != (ssize_t)n) {
    /* A short write leaves part of a line: the next one starts on a new
     * line so that a reader loses one record, not two. */
    int err = w < 0 ? errno : ENOSPC;
    if (w > 0 && write(f->fd, "\n", 1) < 0)
      err = errno;
    fail(f, "write", f->base, err);
    close(f->fd);
    f->fd = -1; /* reopened at the next line */
    return false;
  }
  if (f->failing)
    log_notice("statistics: writing %s again", f->base);
  f->failing = false;
  f->lines++;
  return true;
}
