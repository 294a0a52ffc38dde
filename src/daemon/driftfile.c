/* driftfile: NTPsec-format frequency file. */
#include "daemon/driftfile.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/atomicfile.h"

#define DRIFT_FILE_MAX 64 /* "-500.000\n" is 9 bytes; allow some white space */
#define DRIFT_FILE_MODE 0644

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
  struct stat st;
  int fd;
  if (atomicfile_open_read(path, &fd, &st, err, errlen) != ATOMICFILE_OK)
    return false;
  long n = atomicfile_read_fd(fd, buf, sizeof(buf));
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

static int format(double ppm, char *text, size_t cap)
{
  return snprintf(text, cap, "%.3f\n", ppm);
}

bool driftfile_write(const char *path, double ppm, char *err, size_t errlen)
{
  char text[32];
  int n = format(ppm, text, sizeof(text));
  return atomicfile_write(path, text, (size_t)n, DRIFT_FILE_MODE, err, errlen) == 0;
}

struct driftfile {
  atomicfile *file;
};

driftfile *driftfile_create(const char *path)
{
  driftfile *f = calloc(1, sizeof(*f));
  if (f)
    f->file = atomicfile_create(path, DRIFT_FILE_MODE, "driftfile",
                                "the frequency will not survive a restart");
  if (f && !f->file) {
    free(f);
    return NULL;
  }
  return f;
}

void driftfile_destroy(driftfile *f)
{
  if (!f)
    return;
  atomicfile_destroy(f->file);
  free(f);
}

bool driftfile_save(driftfile *f, double ppm)
{
  char text[32];
  int n = format(ppm, text, sizeof(text));
  return atomicfile_save(f->file, text, (size_t)n);
}
