/* Unit tests for daemon/log.c (docs/logging.md).
 *
 * The line formats (stderr with its own time, the journal's stream with a
 * <N> priority and no time, a logfile with the pid), what `logconfig`'s
 * mask lets through (errors and warnings always), and the logfile after
 * rotation: truncated in place (copytruncate) or moved away (reopened at
 * the path, at most once a second). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/log.h"
#include "stderr_capture.h"

#define TIME_RE "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "

static char dir[64];

static int setup(void **state)
{
  (void)state;
  snprintf(dir, sizeof(dir), "/tmp/ntsd-log-XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
  (void)state;
  char cmd[128];
  log_close_file();
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static bool matches(const char *text, const char *re)
{
  regex_t r;
  assert_int_equal(regcomp(&r, re, REG_EXTENDED | REG_NEWLINE), 0);
  bool m = regexec(&r, text, 0, NULL, 0) == 0;
  regfree(&r);
  return m;
}

/* One line of each level and class. */
static void say_all(void)
{
  log_class_msg(LOG_CLASS_PEER, LOG_LVL_ERR, "peer error %d", 1);
  log_class_msg(LOG_CLASS_PEER, LOG_LVL_WARN, "peer warning");
  log_class_msg(LOG_CLASS_PEER, LOG_LVL_NOTICE, "peer event");
  log_class_msg(LOG_CLASS_SYS, LOG_LVL_NOTICE, "sys event");
  log_class_msg(LOG_CLASS_SYS, LOG_LVL_INFO, "sys info");
  log_class_msg(LOG_CLASS_CLOCK, LOG_LVL_DEBUG, "clock statistics");
}

static bool journal_env; /* set JOURNAL_STREAM to stderr's device and inode */

static void run_stderr(void *arg)
{
  (void)arg;
  struct stat st;
  char js[64];
  assert_int_equal(fstat(2, &st), 0);
  snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
           (unsigned long long)st.st_ino + (journal_env ? 0 : 1));
  setenv("JOURNAL_STREAM", js, 1);
  log_init("ntsd", true, LOG_LVL_DEBUG);
  say_all();
  unsetenv("JOURNAL_STREAM");
}

static void capture(char *buf, size_t cap)
{
  char path[96];
  snprintf(path, sizeof(path), "%s/stderr", dir);
  capture_stderr(path, run_stderr, NULL, buf, cap);
}

static void test_stderr_and_journal(void **state)
{
  (void)state;
  char buf[4096];
  log_set_mask(LOG_MASK_ALL);
  journal_env = false; /* JOURNAL_STREAM names another stream: stderr was redirected */
  capture(buf, sizeof(buf));
  assert_true(matches(buf, "^" TIME_RE "ntsd: error: peer error 1$"));
  assert_true(matches(buf, "^" TIME_RE "ntsd: warning: peer warning$"));
  assert_true(matches(buf, "^" TIME_RE "ntsd: debug: clock statistics$"));
  assert_int_equal(count_substr(buf, "\n"), 6);
  assert_false(log_to_journal());

  journal_env = true;
  capture(buf, sizeof(buf));
  assert_string_equal(buf, "<3>error: peer error 1\n<4>warning: peer warning\n<5>peer event\n"
                           "<5>sys event\n<6>sys info\n<7>debug: clock statistics\n");
  assert_true(log_to_journal());
  log_init("ntsd", true, LOG_LVL_NOTICE);
}

static void test_mask(void **state)
{
  (void)state;
  char buf[4096];
  uint32_t mask = LOG_MASK_ALL;
  journal_env = true;
  assert_true(log_config_word(&mask, "=syncall"));
  log_set_mask(mask);
  capture(buf, sizeof(buf));
  /* errors and warnings whatever the mask */
  assert_string_equal(buf, "<3>error: peer error 1\n<4>warning: peer warning\n");

  mask = LOG_MASK_ALL;
  assert_true(log_config_word(&mask, "-peerstatus") && log_config_word(&mask, "-sysinfo"));
  log_set_mask(mask);
  capture(buf, sizeof(buf));
  assert_string_equal(buf, "<3>error: peer error 1\n<4>warning: peer warning\n"
                           "<5>sys event\n<7>debug: clock statistics\n");

  mask = 0;
  assert_true(log_config_word(&mask, "clockstatistics") && log_config_word(&mask, "+sysstatus"));
  log_set_mask(mask);
  capture(buf, sizeof(buf));
  assert_string_equal(buf, "<3>error: peer error 1\n<4>warning: peer warning\n"
                           "<5>sys event\n<7>debug: clock statistics\n");
  assert_false(log_config_word(&mask, "peer"));
  assert_false(log_config_word(&mask, "+allstuff"));
  assert_false(log_config_word(&mask, ""));
  log_set_mask(LOG_MASK_ALL);
}

static size_t read_file(const char *path, char *buf, size_t cap)
{
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    buf[0] = '\0';
    return 0;
  }
  ssize_t n = read(fd, buf, cap - 1);
  close(fd);
  buf[n > 0 ? n : 0] = '\0';
  return n > 0 ? (size_t)n : 0;
}

static void test_logfile(void **state)
{
  (void)state;
  char path[96], moved[112], buf[4096], err[256], pidre[160];
  struct stat st;
  snprintf(path, sizeof(path), "%s/ntsd.log", dir);
  snprintf(moved, sizeof(moved), "%s/ntsd.log.1", dir);
  snprintf(pidre, sizeof(pidre), "^" TIME_RE "ntsd\\[%ld\\]: ", (long)getpid());
  log_init("ntsd", true, LOG_LVL_INFO);
  log_set_mask(LOG_MASK_ALL);
  assert_false(log_open_file("/nonexistent-dir/ntsd.log", err, sizeof(err)));
  assert_non_null(strstr(err, "logfile /nonexistent-dir/ntsd.log: No such file"));
  assert_true(log_open_file(path, err, sizeof(err)));
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0640);
  assert_false(log_uses_syslog());
  log_notice("first %s", "line");
  log_warn("second");
  read_file(path, buf, sizeof(buf));
  assert_true(matches(buf, strcat(strcpy((char[256]){0}, pidre), "first line$")));
  assert_true(matches(buf, strcat(strcpy((char[256]){0}, pidre), "warning: second$")));

  /* copytruncate: the next line lands at the start, no hole before it */
  assert_int_equal(truncate(path, 0), 0);
  log_notice("after truncate");
  size_t n = read_file(path, buf, sizeof(buf));
  assert_true(n > 0 && buf[0] == '2' && strstr(buf, "after truncate"));
  assert_int_equal(strchr(buf, '\n')[1], '\0'); /* that line alone */

  /* moved away: a new file at the path within a second */
  assert_int_equal(rename(path, moved), 0);
  sleep(1);
  log_notice("after the move");
  read_file(path, buf, sizeof(buf));
  assert_non_null(strstr(buf, "after the move"));
  read_file(moved, buf, sizeof(buf));
  assert_null(strstr(buf, "after the move"));

  /* a process that does not reopen writes on to what it holds */
  log_file_no_reopen();
  assert_int_equal(rename(path, moved), 0);
  sleep(1);
  log_notice("still the old one");
  read_file(moved, buf, sizeof(buf));
  assert_non_null(strstr(buf, "still the old one"));
  assert_int_equal(access(path, F_OK), -1);
  log_close_file();
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stderr_and_journal),
      cmocka_unit_test(test_mask),
      cmocka_unit_test(test_logfile),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
