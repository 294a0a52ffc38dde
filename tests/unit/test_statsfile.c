/* Unit tests for daemon/statsfile.c: daily files, the link, rotation at UTC
 * midnight and failures, with the time passed in. */
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

#include "daemon/statsfile.h"

#define DAY1 1796601600 /* 2026-12-07 00:00:00 UTC */

typedef struct tdir {
  char dir[64];
} tdir;

static int setup(void **state)
{
  tdir *t = calloc(1, sizeof(*t));
  snprintf(t->dir, sizeof(t->dir), "/tmp/ntsd-statsfile-XXXXXX");
  assert_non_null(mkdtemp(t->dir));
  *state = t;
  return 0;
}

static int teardown(void **state)
{
  tdir *t = *state;
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
  assert_int_equal(system(cmd), 0);
  free(t);
  return 0;
}

static void slurp(const char *dir, const char *name, char *buf, size_t cap)
{
  char path[512];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  FILE *fp = fopen(path, "r");
  buf[0] = '\0';
  if (!fp)
    fail_msg("cannot open %s", path);
  size_t n = fread(buf, 1, cap - 1, fp);
  buf[n] = '\0';
  fclose(fp);
}

static ino_t inode(const char *dir, const char *name, nlink_t *links)
{
  char path[512];
  struct stat st;
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  if (lstat(path, &st) != 0)
    return 0;
  if (links)
    *links = st.st_nlink;
  return st.st_ino;
}

static void put(statsfile *f, int64_t t, const char *line)
{
  assert_true(statsfile_write(f, t, line, strlen(line)));
}

static void test_daily_rotation(void **state)
{
  tdir *t = *state;
  char b[256];
  statsfile_cfg cfg = {.dir = t->dir, .name = "loopstats", .daily = true, .link = true};
  statsfile *f = statsfile_create(&cfg);
  assert_non_null(f);
  put(f, DAY1 + 86399, "a\n");
  put(f, DAY1 + 86399, "b\n");
  slurp(t->dir, "loopstats.20261207", b, sizeof(b));
  assert_string_equal(b, "a\nb\n");
  nlink_t links = 0;
  assert_int_equal(inode(t->dir, "loopstats", &links), inode(t->dir, "loopstats.20261207", NULL));
  assert_int_equal(links, 2);
  /* The first second of the next UTC day: a new file, the link follows. */
  put(f, DAY1 + 86400, "c\n");
  slurp(t->dir, "loopstats.20261208", b, sizeof(b));
  assert_string_equal(b, "c\n");
  slurp(t->dir, "loopstats.20261207", b, sizeof(b));
  assert_string_equal(b, "a\nb\n");
  assert_int_equal(inode(t->dir, "loopstats", NULL), inode(t->dir, "loopstats.20261208", NULL));
  slurp(t->dir, "loopstats", b, sizeof(b));
  assert_string_equal(b, "c\n");
  assert_int_equal(statsfile_lines(f), 3);
  assert_int_equal(statsfile_errors(f), 0);
  statsfile_destroy(f);
  /* A restart the same day appends to that day's file. */
  cfg.dir = b; /* with a trailing slash */
  snprintf(b, sizeof(b), "%s/", t->dir);
  f = statsfile_create(&cfg);
  put(f, DAY1 + 86400 + 5, "d\n");
  statsfile_destroy(f);
  slurp(t->dir, "loopstats.20261208", b, sizeof(b));
  assert_string_equal(b, "c\nd\n");
}

static void test_nolink_and_none(void **state)
{
  tdir *t = *state;
  char b[256];
  /* type none: one file, no suffix, never rotated. */
  statsfile_cfg cfg = {.dir = t->dir, .name = "peerstats", .daily = false, .link = true};
  statsfile *f = statsfile_create(&cfg);
  put(f, DAY1, "a\n");
  put(f, DAY1 + 3 * 86400, "b\n");
  statsfile_destroy(f);
  slurp(t->dir, "peerstats", b, sizeof(b));
  assert_string_equal(b, "a\nb\n");
  /* Then daily with the link: the old file is kept aside, not lost. */
  ino_t old = inode(t->dir, "peerstats", NULL);
  cfg.daily = true;
  f = statsfile_create(&cfg);
  put(f, DAY1, "c\n");
  statsfile_destroy(f);
  snprintf(b, sizeof(b), "peerstats.C%ju", (uintmax_t)old);
  assert_int_equal(inode(t->dir, b, NULL), old);
  slurp(t->dir, "peerstats", b, sizeof(b));
  assert_string_equal(b, "c\n");
  /* nolink: no NAME at all. */
  cfg.name = "rawstats";
  cfg.link = false;
  f = statsfile_create(&cfg);
  put(f, DAY1, "r\n");
  statsfile_destroy(f);
  assert_int_equal(inode(t->dir, "rawstats", NULL), 0);
  slurp(t->dir, "rawstats.20261207", b, sizeof(b));
  assert_string_equal(b, "r\n");
}

static void test_failure_counted(void **state)
{
  tdir *t = *state;
  char dir[128], b[64];
  snprintf(dir, sizeof(dir), "%s/missing", t->dir);
  statsfile_cfg cfg = {.dir = dir, .name = "loopstats", .daily = true, .link = true};
  statsfile *f = statsfile_create(&cfg);
  assert_false(statsfile_write(f, DAY1, "a\n", 2));
  assert_false(statsfile_write(f, DAY1, "b\n", 2));
  assert_int_equal(statsfile_errors(f), 2);
  /* Once the directory is there, lines are written again. */
  assert_int_equal(mkdir(dir, 0755), 0);
  put(f, DAY1, "c\n");
  slurp(dir, "loopstats.20261207", b, sizeof(b));
  assert_string_equal(b, "c\n");
  assert_int_equal(statsfile_lines(f), 1);
  statsfile_destroy(f);
  /* A path too long is refused at creation. */
  char longname[1300];
  memset(longname, 'x', sizeof(longname) - 1);
  longname[sizeof(longname) - 1] = '\0';
  cfg.name = longname;
  assert_null(statsfile_create(&cfg));
  statsfile_destroy(NULL);
}

static void test_full_disk(void **state)
{
  (void)state;
  /* /dev/full: every write fails with ENOSPC; counted, never fatal. */
  statsfile_cfg cfg = {.dir = "/dev", .name = "full", .daily = false};
  statsfile *f = statsfile_create(&cfg);
  assert_false(statsfile_write(f, DAY1, "a\n", 2));
  assert_false(statsfile_write(f, DAY1, "b\n", 2));
  assert_int_equal(statsfile_errors(f), 2);
  assert_int_equal(statsfile_lines(f), 0);
  statsfile_destroy(f);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_daily_rotation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_nolink_and_none, setup, teardown),
      cmocka_unit_test_setup_teardown(test_failure_counted, setup, teardown),
      cmocka_unit_test(test_full_disk),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
