/* Unit tests for daemon/driftfile.c: NTPsec-format drift files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/driftfile.h"

static bool parse(const char *s, double *v) { return driftfile_parse(s, strlen(s), v); }

static void test_parse_good(void **state)
{
  (void)state;
  double v;
  assert_true(parse("-12.345\n", &v));
  assert_float_equal(v, -12.345, 1e-12);
  assert_true(parse("  7\r\n", &v));
  assert_float_equal(v, 7.0, 0);
  assert_true(parse("+500.000", &v));
  assert_true(parse("-500", &v));
  assert_true(parse("0.001", &v));
}

static void test_parse_bad(void **state)
{
  (void)state;
  double v = 42;
  static const char *const bad[] = {"", "\n", "500.001", "-600", "1e2", "0x10", "inf", "nan",
                                    "1.2.3x", "12 13", "--1", "abc", "1,5"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_false(parse(bad[i], &v));
  assert_false(driftfile_parse("1\0" "2", 3, &v)); /* embedded NUL */
  char big[200];
  memset(big, '1', sizeof(big));
  assert_false(driftfile_parse(big, sizeof(big), &v));
  assert_float_equal(v, 42, 0); /* untouched on failure */
}

static void test_write_read(void **state)
{
  (void)state;
  char dir[] = "/tmp/ntsd-drift-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[256], err[128];
  snprintf(path, sizeof(path), "%s/ntp.drift", dir);
  double v;
  assert_false(driftfile_read(path, &v, err, sizeof(err))); /* missing */
  assert_true(driftfile_write(path, -3.14159, err, sizeof(err)));
  assert_true(driftfile_read(path, &v, err, sizeof(err)));
  assert_float_equal(v, -3.142, 1e-9);
  FILE *f = fopen(path, "w");
  fputs("garbage\n", f);
  fclose(f);
  assert_false(driftfile_read(path, &v, err, sizeof(err)));
  assert_non_null(strstr(err, "ppm"));
  unlink(path);
  rmdir(dir);
}

/* Only a regular file of the daemon's user or root is read: a FIFO is
 * refused at once (a blocking open would hang the start; the alarm ends
 * the test if it does), and so are a directory, a symbolic link and a file
 * of another user. */
static void test_read_refuses(void **state)
{
  (void)state;
  char dir[] = "/tmp/ntsd-drift-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[256], other[256], err[128];
  double v = 42;
  snprintf(path, sizeof(path), "%s/fifo", dir);
  assert_int_equal(mkfifo(path, 0600), 0);
  alarm(10);
  assert_false(driftfile_read(path, &v, err, sizeof(err)));
  alarm(0);
  assert_non_null(strstr(err, "not a regular file (a FIFO)"));
  unlink(path);
  assert_false(driftfile_read(dir, &v, err, sizeof(err)));
  assert_non_null(strstr(err, "not a regular file (a directory)"));
  snprintf(path, sizeof(path), "%s/ntp.drift", dir);
  assert_true(driftfile_write(path, 1.5, err, sizeof(err)));
  snprintf(other, sizeof(other), "%s/link", dir);
  assert_int_equal(symlink(path, other), 0);
  assert_false(driftfile_read(other, &v, err, sizeof(err)));
  assert_non_null(strstr(err, "symbolic link"));
  unlink(other);
  if (geteuid() == 0) {
    assert_int_equal(chown(path, 4321, 4321), 0);
    assert_false(driftfile_read(path, &v, err, sizeof(err)));
    assert_non_null(strstr(err, "owned by uid 4321"));
    assert_int_equal(chown(path, 0, 0), 0);
  }
  assert_float_equal(v, 42, 0);
  assert_true(driftfile_read(path, &v, err, sizeof(err)));
  assert_float_equal(v, 1.5, 0);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0644);
  unlink(path);
  rmdir(dir);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_good),
      cmocka_unit_test(test_parse_bad),
      cmocka_unit_test(test_write_read),
      cmocka_unit_test(test_read_refuses),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
