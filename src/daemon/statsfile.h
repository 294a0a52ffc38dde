/* statsfile: one statistics file as NTPsec keeps it (a "file generation
 * set"): lines appended to STATSDIR/NAME, or with daily files to
 * STATSDIR/NAME.YYYYMMDD (UTC) with NAME a hard link to the current one.
 * The file is opened at the first line and again on each new UTC day, by
 * the daemon's user after the privilege drop: statsdir must be writable by
 * it (docs/statistics.md).  A failure (missing directory, disk full, read
 * only) is counted and logged once until a line is written again; it never
 * stops the daemon. */
#ifndef NTSD_DAEMON_STATSFILE_H
#define NTSD_DAEMON_STATSFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STATSFILE_MODE 0644

typedef struct statsfile_cfg {
  const char *dir;  /* statsdir; a trailing '/' or not */
  const char *name; /* the file's name in it */
  bool daily;       /* NAME.YYYYMMDD, a new one each UTC day */
  bool link;        /* daily: NAME links to the current day's file */
} statsfile_cfg;

typedef struct statsfile statsfile;

/* NULL: out of memory, or the path is too long (logged). */
statsfile *statsfile_create(const statsfile_cfg *cfg);
void statsfile_destroy(statsfile *f);

/* Appends line (n bytes, with its newline) at Unix time now_sec, which
 * picks the day's file.  False on failure (counted). */
bool statsfile_write(statsfile *f, int64_t now_sec, const char *line, size_t n);

uint64_t statsfile_lines(const statsfile *f);
uint64_t statsfile_errors(const statsfile *f);

#endif
