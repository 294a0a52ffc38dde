/* Helpers for unit tests that check what a module logs: run a function
 * with stderr sent to a file, read it back, count lines. */
#ifndef NTSD_TESTS_STDERR_CAPTURE_H
#define NTSD_TESTS_STDERR_CAPTURE_H

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Runs fn(arg) with stderr in the file lpath, and leaves what it wrote in
 * buf (NUL-terminated; "" if nothing could be read).  The file is removed. */
static void capture_stderr(const char *lpath, void (*fn)(void *), void *arg, char *buf,
                           size_t cap)
{
  fflush(stderr);
  int saved = dup(2), fd = open(lpath, O_CREAT | O_TRUNC | O_RDWR, 0600);
  assert_true(saved >= 0 && fd >= 0);
  dup2(fd, 2);
  fn(arg);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  ssize_t n = pread(fd, buf, cap - 1, 0);
  buf[n > 0 ? n : 0] = '\0';
  close(fd);
  unlink(lpath);
}

/* How many times needle occurs in hay. */
static int count_substr(const char *hay, const char *needle)
{
  int n = 0;
  for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
    n++;
  return n;
}

#endif
