/* Unit tests for daemon/keystore.c: the cookie key file.
 *
 * What is refused (a FIFO, a directory, a file of another user, a symbolic
 * link), serving on with keys in memory when the file cannot be written
 * (and writing it as soon as it can), the warning logged once, and a key
 * file that is never torn when the daemon is killed while rotating; the
 * shared secret's checks and the epoch it follows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

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

#include "daemon/keystore.h"
#include "stderr_capture.h"
#include "daemon/log.h"
#include "proto/nts_cookie.h"
#include "proto/nts_keyderive.h"

#define PERIOD 60
#define NOW 1700000000u
#define KILL_ROUNDS 200

static char dir[64];

static int setup(void **state)
{
  (void)state;
  snprintf(dir, sizeof(dir), "/tmp/ntsd-keystore-XXXXXX");
  log_init("test", true, LOG_LVL_WARN);
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* The key file's set, or NULL if missing or not a valid key file. */
static nts_keyset *file_keys(const char *path)
{
  uint8_t buf[NTS_KEYFILE_MAX_LEN + 1];
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return NULL;
  ssize_t n = read(fd, buf, sizeof(buf));
  close(fd);
  nts_keyset *ks = NULL;
  if (n < 0 || nts_keyset_deserialize(buf, (size_t)n, &ks) != NTS_KEYFILE_OK)
    return NULL;
  return ks;
}

static void test_refused_files(void **state)
{
  (void)state;
  char path[256], err[256];
  keystore *k;

  /* A FIFO: refused at once (opening it for reading would block until a
   * writer came; the alarm ends the test if it does). */
  snprintf(path, sizeof(path), "%s/fifo", dir);
  assert_int_equal(mkfifo(path, 0600), 0);
  alarm(10);
  k = keystore_open(path, PERIOD, NOW, err, sizeof(err));
  alarm(0);
  assert_null(k);
  assert_non_null(strstr(err, path));
  assert_non_null(strstr(err, "not a regular file (a FIFO)"));

  snprintf(path, sizeof(path), "%s/adir", dir);
  assert_int_equal(mkdir(path, 0700), 0);
  assert_null(keystore_open(path, PERIOD, NOW, err, sizeof(err)));
  assert_non_null(strstr(err, "not a regular file (a directory)"));

  /* A good key file of another user: someone else could have chosen it. */
  snprintf(path, sizeof(path), "%s/keys", dir);
  k = keystore_open(path, PERIOD, NOW, err, sizeof(err));
  assert_non_null(k);
  keystore_close(k);
  if (geteuid() == 0) {
    assert_int_equal(chown(path, 4321, 4321), 0);
    assert_null(keystore_open(path, PERIOD, NOW, err, sizeof(err)));
    assert_non_null(strstr(err, "owned by uid 4321"));
    assert_int_equal(chown(path, 0, 0), 0);
  } else {
    print_message("not root: the owner check is not exercised\n");
  }
  k = keystore_open(path, PERIOD, NOW, err, sizeof(err));
  assert_non_null(k);
  keystore_close(k);

  char link[256];
  snprintf(link, sizeof(link), "%s/link", dir);
  assert_int_equal(symlink(path, link), 0);
  assert_null(keystore_open(link, PERIOD, NOW, err, sizeof(err)));
  assert_non_null(strstr(err, "symbolic link"));
}

/* Runs fn with stderr in buf. */
static void capture(void (*fn)(void *), void *arg, char *buf, size_t cap)
{
  char lpath[256];
  snprintf(lpath, sizeof(lpath), "%s/log", dir);
  capture_stderr(lpath, fn, arg, buf, cap);
}

struct run {
  const char *path;
  keystore *k;
  uint64_t now;
};

static void open_it(void *arg)
{
  struct run *r = arg;
  char err[256];
  r->k = keystore_open(r->path, PERIOD, r->now, err, sizeof(err));
}

/* Three rotation checks half a period apart: the second one rotates. */
static void checks(void *arg)
{
  struct run *r = arg;
  for (int i = 0; i < 3; i++) {
    r->now += PERIOD / 2;
    keystore_rotate_if_due(r->k, r->now);
  }
}

/* One check, a second later: no rotation due. */
static void check_once(void *arg)
{
  struct run *r = arg;
  r->now += 1;
  assert_false(keystore_rotate_if_due(r->k, r->now));
}

static void test_unwritable_serves_on(void **state)
{
  (void)state;
  char sub[256], path[300], buf[8192];
  snprintf(sub, sizeof(sub), "%s/later", dir);
  snprintf(path, sizeof(path), "%s/keys", sub);
  struct run r = {.path = path, .now = NOW};
  /* No directory for the file (a read-only or full disk fails the same
   * way): the daemon starts with keys in memory and says so once. */
  capture(open_it, &r, buf, sizeof(buf));
  assert_non_null(r.k);
  assert_true(keystore_unsaved(r.k));
  assert_int_equal(count_substr(buf, "warning: nts cookie "), 1);
  assert_non_null(strstr(buf, path));
  assert_non_null(strstr(buf, "will not survive a restart"));
  uint32_t first = nts_keyset_current_id(keystore_current(r.k));
  capture(checks, &r, buf, sizeof(buf));
  assert_int_equal(count_substr(buf, "warning"), 0); /* retries and a rotation: quiet */
  assert_int_equal(nts_keyset_count(keystore_current(r.k)), 2); /* rotated in memory */
  assert_int_equal(nts_keyset_current_id(keystore_current(r.k)), first + 1);
  assert_null(file_keys(path));
  /* The disk takes it again: written at the next check, with every key. */
  assert_int_equal(mkdir(sub, 0700), 0);
  log_set_level(LOG_LVL_NOTICE);
  capture(check_once, &r, buf, sizeof(buf));
  log_set_level(LOG_LVL_WARN);
  assert_false(keystore_unsaved(r.k));
  assert_non_null(strstr(buf, "written again"));
  nts_keyset *ks = file_keys(path);
  assert_non_null(ks);
  assert_int_equal(nts_keyset_current_id(ks), nts_keyset_current_id(keystore_current(r.k)));
  assert_int_equal(nts_keyset_count(ks), nts_keyset_count(keystore_current(r.k)));
  nts_keyset_free(ks);
  keystore_close(r.k);
}

static void test_check_interval(void **state)
{
  (void)state;
  char err[128];
  keystore *k = keystore_open(NULL, 60, NOW, err, sizeof(err));
  assert_int_equal(keystore_check_interval(k), 6);
  keystore_close(k);
  k = keystore_open(NULL, 86400, NOW, err, sizeof(err));
  assert_int_equal(keystore_check_interval(k), 60);
  keystore_close(k);
}

/* The child: open the file, then rotate as fast as it can until killed. */
static void rotate_loop(const char *path, uint64_t now)
{
  char err[256];
  signal(SIGTERM, SIG_DFL);
  log_set_level(LOG_LVL_ERR);
  keystore *k = keystore_open(path, PERIOD, now, err, sizeof(err));
  if (!k)
    _exit(3);
  for (;;) {
    now += PERIOD;
    keystore_rotate_if_due(k, now);
  }
}

static void test_killed_while_rotating(void **state)
{
  (void)state;
  char path[256], err[256];
  snprintf(path, sizeof(path), "%s/rotating", dir);
  keystore *k = keystore_open(path, PERIOD, NOW, err, sizeof(err));
  assert_non_null(k);
  keystore_close(k);
  unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
  srand(seed);
  int moved = 0;
  for (int round = 0; round < KILL_ROUNDS; round++) {
    nts_keyset *before = file_keys(path);
    assert_non_null(before);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
      rotate_loop(path, nts_keyset_current_created(before));
    long us = rand() % 3000;
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
    int sig = round % 2 ? SIGTERM : SIGKILL;
    assert_int_equal(kill(pid, sig), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == sig);
    nts_keyset *after = file_keys(path);
    if (!after)
      fail_msg("round %d (seed %u): the key file is not a valid key file", round, seed);
    /* Never older than before the kill (ids count up by one per rotation). */
    uint32_t d = nts_keyset_current_id(after) - nts_keyset_current_id(before);
    assert_true(d < 0x80000000u);
    moved += d > 0;
    nts_keyset_free(before);
    nts_keyset_free(after);
  }
  print_message("%d kills while rotating (seed %u): the file moved on in %d rounds, valid "
                "after every one\n", KILL_ROUNDS, seed, moved);
  assert_true(moved > 0);
}

/* The NTS-KE process's store: the set it was given, replaced whole by each
 * install, never rotating by itself. */
static void test_adopt_install(void **state)
{
  (void)state;
  uint8_t k1[NTS_COOKIE_MASTER_KEY_LEN] = {1}, k2[NTS_COOKIE_MASTER_KEY_LEN] = {2};
  keystore *k = keystore_adopt(nts_keyset_new(41, k1, 1000));
  assert_non_null(k);
  assert_int_equal(nts_keyset_current_id(keystore_current(k)), 41);
  assert_false(keystore_rotate_if_due(k, 1000000)); /* period 0: never */
  keystore_install(k, nts_keyset_new(42, k2, 2000));
  keystore_install(k, nts_keyset_new(43, k1, 3000));
  const nts_keyset *cur = keystore_current(k);
  assert_int_equal(nts_keyset_current_id(cur), 43);
  assert_int_equal(nts_keyset_count(cur), 1);
  keystore_close(k);
  assert_null(keystore_adopt(NULL));
}

/* Writes n bytes of byte b to dir/name with mode; returns the path. */
static const char *secret_file(const char *name, size_t n, uint8_t b, mode_t mode)
{
  static char path[256];
  uint8_t buf[NTS_SECRET_MAX_LEN + 1];
  memset(buf, b, sizeof(buf));
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  unlink(path);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, buf, n), (ssize_t)n);
  assert_int_equal(fchmod(fd, mode), 0);
  close(fd);
  return path;
}

static void expect_refused(const char *path, const char *why)
{
  char err[256];
  assert_null(keystore_open_shared(path, PERIOD, NOW, err, sizeof(err)));
  if (!strstr(err, why) || !strstr(err, path))
    fail_msg("'%s': want \"%s\" and the path", err, why);
}

/* What a secret file must be: 32 to 4096 bytes, a regular file, no link,
 * no permission for group or others. */
static void test_shared_refused(void **state)
{
  (void)state;
  expect_refused(secret_file("s31", 31, 7, 0600), "shorter than 32 bytes");
  expect_refused(secret_file("s0", 0, 7, 0600), "shorter than 32 bytes");
  expect_refused(secret_file("big", NTS_SECRET_MAX_LEN + 1, 7, 0600), "longer than 4096");
  expect_refused(secret_file("world", 32, 7, 0604), "everyone");
  expect_refused(secret_file("group", 32, 7, 0640), "its group");
  expect_refused(secret_file("gw", 32, 7, 0620), "mode 620");
  char link[256], missing[256];
  snprintf(link, sizeof(link), "%s/secret-link", dir);
  assert_int_equal(symlink(secret_file("ok", 32, 7, 0600), link), 0);
  expect_refused(link, "symbolic link");
  snprintf(missing, sizeof(missing), "%s/missing", dir);
  expect_refused(missing, "refused");
  char err[256];
  keystore *k = keystore_open_shared(secret_file("max", NTS_SECRET_MAX_LEN, 7, 0400), PERIOD,
                                     NOW, err, sizeof(err));
  assert_non_null(k);
  keystore_close(k);
}

/* Keys of the epoch of the time given: equal to proto's derivation, moving
 * forward and (a clock stepped back) backward with it, never written. */
static void test_shared_epochs(void **state)
{
  (void)state;
  uint8_t secret[40];
  memset(secret, 9, sizeof(secret));
  const char *path = secret_file("secret", sizeof(secret), 9, 0600);
  char err[256];
  keystore *k = keystore_open_shared(path, PERIOD, NOW, err, sizeof(err));
  assert_non_null(k);
  assert_true(keystore_shared(k));
  uint64_t e = NOW / PERIOD;
  assert_int_equal(nts_keyset_current_id(keystore_current(k)),
                   nts_keyderive_id(secret, sizeof(secret), PERIOD, e));
  assert_false(keystore_rotate_if_due(k, (e + 1) * PERIOD - 1));
  assert_true(keystore_rotate_if_due(k, (e + 1) * PERIOD));
  assert_int_equal(nts_keyset_current_id(keystore_current(k)),
                   nts_keyderive_id(secret, sizeof(secret), PERIOD, e + 1));
  assert_false(keystore_rotate_if_due(k, (e + 1) * PERIOD + 30));
  assert_true(keystore_rotate_if_due(k, (e - 5) * PERIOD)); /* stepped back */
  assert_int_equal(nts_keyset_current_id(keystore_current(k)),
                   nts_keyderive_id(secret, sizeof(secret), PERIOD, e - 5));
  assert_false(keystore_unsaved(k));
  keystore_close(k);
  /* A store from a key file is not shared. */
  char kp[256];
  snprintf(kp, sizeof(kp), "%s/plain-keys", dir);
  k = keystore_open(kp, PERIOD, NOW, err, sizeof(err));
  assert_non_null(k);
  assert_false(keystore_shared(k));
  keystore_close(k);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_refused_files),
      cmocka_unit_test(test_unwritable_serves_on),
      cmocka_unit_test(test_check_interval),
      cmocka_unit_test(test_killed_while_rotating),
      cmocka_unit_test(test_adopt_install),
      cmocka_unit_test(test_shared_refused),
      cmocka_unit_test(test_shared_epochs),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
