/* driftfile: the clock's frequency error, kept across restarts in NTPsec's
 * format (one number, parts per million, e.g. "-12.345\n"), so ntsd can take
 * over an existing /var/lib/ntp/ntp.drift.  Written through atomicfile (a
 * kill at any moment leaves the old value or the new one); read only when
 * it is a regular file owned by the daemon's user or root. */
#ifndef NTSD_DAEMON_DRIFTFILE_H
#define NTSD_DAEMON_DRIFTFILE_H

#include <stdbool.h>
#include <stddef.h>

#define DRIFT_MAX_PPM 500.0

/* Parses the file's text: one decimal number within +-500 ppm, surrounded
 * by optional white space.  False on anything else. */
bool driftfile_parse(const char *text, size_t len, double *ppm);

/* Reads path; false (with a reason in err) if missing, unreadable, not a
 * regular file, owned by another user, or bad. */
bool driftfile_read(const char *path, double *ppm, char *err, size_t errlen);

/* Writes "%.3f\n" atomically (atomicfile_write), mode 0644. */
bool driftfile_write(const char *path, double ppm, char *err, size_t errlen);

/* The daemon's drift file, rewritten from time to time. */
typedef struct driftfile driftfile;

driftfile *driftfile_create(const char *path); /* NULL: out of memory */
void driftfile_destroy(driftfile *f);
/* Writes ppm; a failure is logged once (a warning: the frequency will not
 * survive a restart), repeats at debug level, and the next success as a
 * notice (atomicfile_save). */
bool driftfile_save(driftfile *f, double ppm);

#endif
