/* Unit tests for daemon/atomicfile.c: crash-safe writes, careful reads,
 * and failures logged once.
 *
 * The kill tests fork a child that rewrites one file through the real
 * module, alternating two contents of different lengths, and kill it
 * (SIGKILL or SIGTERM) after a random delay, hundreds of times: the file
 * must always be exactly one of the two, and at most the one temporary of
 * the write that was killed may be left (the next write removes it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/atomicfile.h"
#include "stderr_capture.h"
#include "daemon/log.h"

#define KILL_ROUNDS 300

static char dir[64];

static int setup(void **state)
{
  (void)state;
  snprintf(dir, sizeof(dir), "/tmp/ntsd-atomicfile-XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
  (void)state;
  DIR *d = opendir(dir);
  struct dirent *e;
  char p[512];
  while (d && (e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
    if (unlink(p) < 0)
      rmdir(p);
  }
  if (d)
    closedir(d);
  rmdir(dir);
  return 0;
}

static void path_of(char *out, size_t cap, const char *name)
{
  snprintf(out, cap, "%s/%s", dir, name);
}

/* Whole contents of path into buf (NUL-terminated); the length or -1. */
static long slurp(const char *path, char *buf, size_t cap)
{
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return -1;
  long n = atomicfile_read_fd(fd, buf, cap - 1);
  close(fd);
  if (n >= 0)
    buf[n] = '\0';
  return n;
}

/* Directory entries other than keep (and . ..). */
static int others_in_dir(const char *keep)
{
  DIR *d = opendir(dir);
  struct dirent *e;
  int n = 0;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, keep))
      n++;
  closedir(d);
  return n;
}

static void test_write_replaces(void **state)
{
  (void)state;
  char path[256], buf[256], err[160];
  path_of(path, sizeof(path), "state");
  mode_t old = umask(077); /* the mode asked for wins over the umask */
  for (int named = 0; named < 2; named++) {
    int (*wr)(const char *, const void *, size_t, mode_t, char *, size_t) =
        named ? atomicfile_write_named : atomicfile_write;
    assert_int_equal(wr(path, "first contents\n", 15, 0644, err, sizeof(err)), 0);
    assert_int_equal(slurp(path, buf, sizeof(buf)), 15);
    assert_string_equal(buf, "first contents\n");
    assert_int_equal(wr(path, "2nd", 3, 0600, err, sizeof(err)), 0);
    assert_int_equal(slurp(path, buf, sizeof(buf)), 3);
    assert_string_equal(buf, "2nd");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(wr(path, "x", 1, 0644, err, sizeof(err)), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_int_equal(others_in_dir("state"), 0); /* no temporary left */
  }
  umask(old);
  /* A symbolic link at the target is replaced, never written through. */
  char victim[256];
  path_of(victim, sizeof(victim), "victim");
  assert_int_equal(atomicfile_write(victim, "keep", 4, 0600, err, sizeof(err)), 0);
  unlink(path);
  assert_int_equal(symlink(victim, path), 0);
  assert_int_equal(atomicfile_write(path, "new", 3, 0600, err, sizeof(err)), 0);
  assert_int_equal(slurp(victim, buf, sizeof(buf)), 4);
  struct stat st;
  assert_int_equal(lstat(path, &st), 0);
  assert_true(S_ISREG(st.st_mode));
  unlink(victim);
  /* No directory: an error naming the step, and nothing created. */
  char nodir[256];
  path_of(nodir, sizeof(nodir), "missing/state");
  assert_int_equal(atomicfile_write(nodir, "x", 1, 0600, err, sizeof(err)), ENOENT);
  assert_non_null(strstr(err, "directory"));
  assert_int_not_equal(atomicfile_write(dir, "x", 1, 0600, err, sizeof(err)), 0);
}

static void test_cleanup_only_ours(void **state)
{
  (void)state;
  static const char *const ours[] = {".state.0123456789abcdef.ntsd-tmp",
                                     ".state.ffffffffffffffff.ntsd-tmp"};
  static const char *const theirs[] = {".state.0123456789abcdeg.ntsd-tmp",
                                       ".state.0123456789abcdef.tmp",
                                       ".statex.0123456789abcdef.ntsd-tmp",
                                       ".state.0123456789abcde.ntsd-tmp", "state.tmp",
                                       ".other.0123456789abcdef.ntsd-tmp"};
  char p[256], err[160];
  for (size_t i = 0; i < 2; i++) {
    path_of(p, sizeof(p), ours[i]);
    close(open(p, O_CREAT | O_WRONLY, 0600));
  }
  for (size_t i = 0; i < sizeof(theirs) / sizeof(theirs[0]); i++) {
    path_of(p, sizeof(p), theirs[i]);
    close(open(p, O_CREAT | O_WRONLY, 0600));
  }
  path_of(p, sizeof(p), "state");
  assert_int_equal(atomicfile_write(p, "x", 1, 0600, err, sizeof(err)), 0);
  struct stat st;
  for (size_t i = 0; i < 2; i++) {
    path_of(p, sizeof(p), ours[i]);
    assert_int_equal(stat(p, &st), -1);
  }
  for (size_t i = 0; i < sizeof(theirs) / sizeof(theirs[0]); i++) {
    path_of(p, sizeof(p), theirs[i]);
    assert_int_equal(stat(p, &st), 0);
    unlink(p);
  }
  path_of(p, sizeof(p), "state");
  unlink(p);
}

static atomicfile_status open_status(const char *path, char *err)
{
  int fd = -1;
  struct stat st;
  atomicfile_status s = atomicfile_open_read(path, &fd, &st, err, 160);
  if (s == ATOMICFILE_OK)
    close(fd);
  else
    assert_int_equal(fd, -1);
  return s;
}

static void test_open_read_refuses(void **state)
{
  (void)state;
  char path[256], other[256], err[160];
  path_of(path, sizeof(path), "file");
  assert_int_equal(open_status(path, err), ATOMICFILE_MISSING);
  assert_int_equal(atomicfile_write(path, "ok", 2, 0600, err, sizeof(err)), 0);
  assert_int_equal(open_status(path, err), ATOMICFILE_OK);

  path_of(other, sizeof(other), "link");
  assert_int_equal(symlink(path, other), 0);
  assert_int_equal(open_status(other, err), ATOMICFILE_SYMLINK);
  assert_non_null(strstr(err, "symbolic link"));
  unlink(other);

  /* A FIFO with no writer: refused at once (a blocking open would hang;
   * the alarm ends the test if it does). */
  path_of(other, sizeof(other), "fifo");
  assert_int_equal(mkfifo(other, 0600), 0);
  alarm(10);
  assert_int_equal(open_status(other, err), ATOMICFILE_NOT_REGULAR);
  alarm(0);
  assert_non_null(strstr(err, "not a regular file (a FIFO)"));
  unlink(other);

  path_of(other, sizeof(other), "subdir");
  assert_int_equal(mkdir(other, 0700), 0);
  assert_int_equal(open_status(other, err), ATOMICFILE_NOT_REGULAR);
  assert_non_null(strstr(err, "a directory"));
  rmdir(other);

  /* Owned by another user (only root can give a file away). */
  if (geteuid() == 0) {
    assert_int_equal(chown(path, 4321, 4321), 0);
    assert_int_equal(open_status(path, err), ATOMICFILE_BAD_OWNER);
    assert_non_null(strstr(err, "owned by uid 4321"));
    assert_int_equal(chown(path, 0, 0), 0);
    assert_int_equal(open_status(path, err), ATOMICFILE_OK);
  } else {
    print_message("not root: the owner check is not exercised\n");
  }
  unlink(path);
}

/* The child: rewrite path with a and b in turn until killed, b first. */
static void writer_loop(const char *path, const char *a, const char *b, bool named)
{
  char err[160];
  signal(SIGTERM, SIG_DFL);
  for (unsigned i = 0;; i++) {
    const char *s = i % 2 ? a : b;
    int r = named ? atomicfile_write_named(path, s, strlen(s), 0600, err, sizeof(err))
                  : atomicfile_write(path, s, strlen(s), 0600, err, sizeof(err));
    if (r != 0)
      _exit(3);
  }
}

static void kill_rounds(bool named)
{
  char path[256], err[160];
  static char a[300], b[5000], buf[6000];
  memset(a, 'a', sizeof(a) - 1);
  memset(b, 'b', sizeof(b) - 1);
  memcpy(a, "first\n", 6);
  memcpy(b, "second\n", 7);
  path_of(path, sizeof(path), "target");
  assert_int_equal(atomicfile_write(path, a, strlen(a), 0600, err, sizeof(err)), 0);
  /* Kill within about two writes' time (fsync makes that disk-dependent). */
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < 10; i++)
    assert_int_equal(atomicfile_write(path, a, strlen(a), 0600, err, sizeof(err)), 0);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  long write_us = ((t1.tv_sec - t0.tv_sec) * 1000000000L + t1.tv_nsec - t0.tv_nsec) / 10000;
  long span_us = 2 * write_us + 200;
  unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
  srand(seed);
  int seen_old = 0, seen_new = 0, leftovers = 0, max_left = 0;
  for (int round = 0; round < KILL_ROUNDS; round++) {
    long before = slurp(path, buf, sizeof(buf));
    const char *cur = before == (long)strlen(a) ? a : b, *next = cur == a ? b : a;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
      writer_loop(path, cur, next, named); /* the other contents first */
    long us = rand() % span_us;
    struct timespec ts = {us / 1000000, us % 1000000 * 1000};
    nanosleep(&ts, NULL);
    int sig = round % 2 ? SIGTERM : SIGKILL;
    assert_int_equal(kill(pid, sig), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == sig); /* not a write error */
    long n = slurp(path, buf, sizeof(buf));
    if ((n == (long)strlen(a) && strcmp(buf, a) == 0) ||
        (n == (long)strlen(b) && strcmp(buf, b) == 0))
      (void)(buf[0] == cur[0] ? seen_old++ : seen_new++);
    else
      fail_msg("round %d (seed %u, %s): the target holds %ld bytes that are neither "
               "contents", round, seed, named ? "named" : "O_TMPFILE", n);
    int left = others_in_dir("target");
    leftovers += left > 0;
    max_left = left > max_left ? left : max_left;
    if (left > 1)
      fail_msg("round %d (seed %u): %d temporaries left", round, seed, left);
  }
  print_message("%s: %d kills within %ld us (a write takes %ld us; seed %u): old/new "
                "contents %d/%d, a temporary left after %d (never more than %d)\n",
                named ? "named temporary" : "O_TMPFILE", KILL_ROUNDS, span_us, write_us, seed,
                seen_old, seen_new, leftovers, max_left);
  /* The kills did land before and after the renames. */
  assert_true(seen_old > KILL_ROUNDS / 10 && seen_new > KILL_ROUNDS / 10);
  assert_int_equal(atomicfile_write(path, a, strlen(a), 0600, err, sizeof(err)), 0);
  assert_int_equal(others_in_dir("target"), 0);
  unlink(path);
}

static void test_kill_tmpfile(void **state)
{
  (void)state;
  kill_rounds(false);
}

static void test_kill_named(void **state)
{
  (void)state;
  kill_rounds(true);
}

/* The log lines of fn() (stderr redirected to a file), in buf. */
static void capture_log(void (*fn)(void *), void *arg, char *buf, size_t cap)
{
  char lpath[256];
  path_of(lpath, sizeof(lpath), "log");
  capture_stderr(lpath, fn, arg, buf, cap);
}

static void save_three(void *arg)
{
  for (int i = 0; i < 3; i++)
    assert_false(atomicfile_save(arg, "1.000\n", 6));
}

static void save_one(void *arg) { assert_true(atomicfile_save(arg, "2.000\n", 6)); }

static void test_save_logs_once(void **state)
{
  (void)state;
  char sub[256], path[300], buf[4096];
  path_of(sub, sizeof(sub), "later");
  snprintf(path, sizeof(path), "%s/drift", sub);
  log_init("test", true, LOG_LVL_INFO);
  atomicfile *f = atomicfile_create(path, 0644, "driftfile", "it will not survive");
  assert_non_null(f);
  /* The directory is missing: three failures, one warning. */
  capture_log(save_three, f, buf, sizeof(buf));
  assert_int_equal(atomicfile_failures(f), 3);
  assert_int_equal(count_substr(buf, "\n"), 1);
  assert_int_equal(count_substr(buf, "warning: driftfile "), 1);
  assert_non_null(strstr(buf, path));
  assert_non_null(strstr(buf, "it will not survive"));
  /* At debug level the repeats show, marked as such. */
  log_set_level(LOG_LVL_DEBUG);
  capture_log(save_three, f, buf, sizeof(buf));
  assert_int_equal(count_substr(buf, "debug: driftfile "), 3);
  assert_int_equal(count_substr(buf, "warning"), 0);
  log_set_level(LOG_LVL_INFO);
  /* Writing works again: one notice, the counter reset. */
  assert_int_equal(mkdir(sub, 0700), 0);
  capture_log(save_one, f, buf, sizeof(buf));
  assert_int_equal(atomicfile_failures(f), 0);
  assert_int_equal(count_substr(buf, "\n"), 1);
  assert_non_null(strstr(buf, "written again, after 6 failed attempts"));
  capture_log(save_one, f, buf, sizeof(buf));
  assert_string_equal(buf, ""); /* a success after a success is quiet */
  atomicfile_destroy(f);
  unlink(path);
  rmdir(sub);
}

/* With a user to become (-u): what root writes is the user's, and the
 * user's files are read; another user's still are not.  Runs last: the
 * owner is set for the rest of the process. */
static void test_owner(void **state)
{
  (void)state;
  char path[256], err[160];
  struct stat st;
  if (geteuid() != 0) {
    print_message("not root: files cannot be given away\n");
    return;
  }
  path_of(path, sizeof(path), "owned");
  assert_int_equal(atomicfile_write(path, "x", 1, 0600, err, sizeof(err)), 0);
  assert_int_equal(chown(path, 4321, 4321), 0);
  assert_int_equal(open_status(path, err), ATOMICFILE_BAD_OWNER);
  atomicfile_set_owner(4321, 4322);
  assert_int_equal(open_status(path, err), ATOMICFILE_OK);
  for (int named = 0; named < 2; named++) {
    int r = named ? atomicfile_write_named(path, "yz", 2, 0600, err, sizeof(err))
                  : atomicfile_write(path, "yz", 2, 0600, err, sizeof(err));
    assert_int_equal(r, 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_uid, 4321);
    assert_int_equal(st.st_gid, 4322);
    assert_int_equal(st.st_mode & 0777, 0600);
  }
  assert_int_equal(chown(path, 4323, 4323), 0);
  assert_int_equal(open_status(path, err), ATOMICFILE_BAD_OWNER);
  assert_non_null(strstr(err, "not by the daemon's user (uid 4321)"));
  unlink(path);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_write_replaces),
      cmocka_unit_test(test_cleanup_only_ours),
      cmocka_unit_test(test_open_read_refuses),
      cmocka_unit_test(test_kill_tmpfile),
      cmocka_unit_test(test_kill_named),
      cmocka_unit_test(test_save_logs_once),
      cmocka_unit_test(test_owner), /* last: sets the owner for good */
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
