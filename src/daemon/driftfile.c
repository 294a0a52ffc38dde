/* driftfile: NTPsec-format frequency file. */
#include "daemon/driftfile.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DRIFT_FILE_MAX 64 /* "-500.000\n" is 9 bytes; allow some white space */

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool driftfile_parse(const char *text, size_t len, double *ppm)
{
  char buf[DRIFT_FILE_MAX + 1];
  size_t a = 0, b = len;
  while (a < b && is_space(text[a]))
    a++;
  while (b > a && is_space(text[b - 1]))
    b--;
  if (b == a || b - a > DRIFT_FILE_MAX)
    return false;
  for (size_t i = a; i < b; i++) {
    char c = text[i];
    /* Plain decimal only: no hex, inf, nan, exponents or embedded NULs. */
    if (!((c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+'))
      return false;
  }
  memcpy(buf, text + a, b - a);
  buf[b - a] = '\0';
  char *end;
  errno = 0;
  double v = strtod(buf, &end);
  if (errno || end != buf + (b - a) || !isfinite(v) || fabs(v) > DRIFT_MAX_PPM)
    return false;
  *ppm = v;
  return true;
}

bool driftfile_read(const char *path, double *ppm, char *err, size_t errlen)
{
  char buf[DRIFT_FILE_MAX + 2];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "%s", strerror(errno));
    return false;
  }
  ssize_t n = read(fd, buf, sizeof(buf));
  close(fd);
  if (n < 0) {
    snprintf(err, errlen, "%s", strerror(errno));
    return false;
  }
  if (!driftfile_parse(buf, (size_t)n, ppm)) {
    snprintf(err, errlen, "not a frequency in ppm within +-%.0f", DRIFT_MAX_PPM);
    return false;
  }
  return true;
}

bool driftfile_write(const char *path, double ppm, char *err, size_t errlen)
{
  char tmp[4096], text[32];
  int n = snprintf(text, sizeof(text), "%.3f\n", ppm);
  if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
    snprintf(err, errlen, "path too long");
    return false;
  }
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  bool ok = fd >= 0 && write(fd, text, (size_t)n) == n && fsync(fd) == 0;
  int e = errno;
  if (fd >= 0)
    close(fd);
  if (ok && rename(tmp, path) == 0)
    return true;
  e = ok ? errno : e;
  if (fd >= 0)
    unlink(tmp);
  snprintf(err, errlen, "%s", strerror(e));
  return false;
}
