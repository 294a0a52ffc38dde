/* driftfile: the clock's frequency error, kept across restarts in NTPsec's
 * format (one number, parts per million, e.g. "-12.345\n"), so ntsd can take
 * over an existing /var/lib/ntp/ntp.drift.  Written atomically. */
#ifndef NTSD_DAEMON_DRIFTFILE_H
#define NTSD_DAEMON_DRIFTFILE_H

#include <stdbool.h>
#include <stddef.h>

#define DRIFT_MAX_PPM 500.0

/* Parses the file's text: one decimal number within +-500 ppm, surrounded
 * by optional white space.  False on anything else. */
bool driftfile_parse(const char *text, size_t len, double *ppm);

/* Reads path; false (with a reason in err) if missing, unreadable or bad. */
bool driftfile_read(const char *path, double *ppm, char *err, size_t errlen);

/* Writes "%.3f\n" atomically (temporary file, fsync, rename). */
bool driftfile_write(const char *path, double ppm, char *err, size_t errlen);

#endif
