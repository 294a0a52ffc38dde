/* Unit tests for daemon/sandbox.c: the system call filter.
 *
 * Each case forks a child that loads a filter and then makes calls: an
 * allowed call must work, a refused one must end the child by SIGSYS after
 * one line on stderr naming the call.  The parent checks the child's end
 * and what it wrote.  The clock is never changed: clock_adjtime is only
 * called read-only (modes 0). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timex.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/log.h"
#include "daemon/sandbox.h"

typedef int (*child_fn)(void);

typedef struct outcome {
  int status;      /* from waitpid */
  char out[4096];  /* what the child wrote to stderr */
} outcome;

/* Runs fn in a child whose stderr is a pipe; the child exits with fn's
 * value, unless the filter ends it first. */
static void run_child(child_fn fn, outcome *o)
{
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], STDERR_FILENO);
    close(fds[1]);
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    _exit(fn());
  }
  close(fds[1]);
  size_t n = 0;
  ssize_t r;
  while (n + 1 < sizeof(o->out) && (r = read(fds[0], o->out + n, sizeof(o->out) - 1 - n)) > 0)
    n += (size_t)r;
  o->out[n] = '\0';
  close(fds[0]);
  assert_int_equal(waitpid(pid, &o->status, 0), pid);
}

static void expect_refused(const outcome *o, const char *what)
{
  if (!WIFSIGNALED(o->status) || WTERMSIG(o->status) != SIGSYS)
    fail_msg("child not ended by SIGSYS (status 0x%x), stderr: %s", o->status, o->out);
  if (!strstr(o->out, what))
    fail_msg("'%s' not in the child's stderr: %s", what, o->out);
  assert_non_null(strstr(o->out, "refused by the system call filter; exiting"));
  assert_non_null(strstr(o->out, "ntsd: error: seccomp: system call "));
  assert_null(strstr(o->out, "reached")); /* nothing ran after the refused call */
}

static void expect_exit(const outcome *o, int code)
{
  if (!WIFEXITED(o->status) || WEXITSTATUS(o->status) != code)
    fail_msg("child status 0x%x, expected exit %d; stderr: %s", o->status, code, o->out);
}

static int load(sandbox_profile p, bool clock, bool log_only)
{
  sandbox_cfg cfg = {.enabled = true, .clock_control = clock, .log_only = log_only};
  char err[256] = "";
  if (!sandbox_apply(p, &cfg, err, sizeof(err))) {
    fprintf(stderr, "apply: %s\n", err);
    return 0;
  }
  return 1;
}

static void reached(void) { fprintf(stderr, "reached\n"); }

/* ---- the main process's filter ------------------------------------------ */

static int main_then_ptrace(void)
{
  if (!load(SANDBOX_MAIN, false, false))
    return 10;
  if (getpid() <= 0 || write(STDERR_FILENO, "allowed\n", 8) != 8)
    return 11;
  syscall(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0);
  reached();
  return 0;
}

static void test_main_refuses_ptrace(void **state)
{
  (void)state;
  outcome o;
  run_child(main_then_ptrace, &o);
  expect_refused(&o, "system call 101 (ptrace) refused");
  assert_non_null(strstr(o.out, "allowed\n"));
}

static int main_then_execve(void)
{
  if (!load(SANDBOX_MAIN, false, false))
    return 10;
  char *argv[] = {"/bin/true", NULL};
  execve(argv[0], argv, NULL);
  reached();
  return 0;
}

static void test_main_refuses_execve(void **state)
{
  (void)state;
  outcome o;
  run_child(main_then_execve, &o);
  expect_refused(&o, "(execve) refused");
}

/* UDP sockets are the daemon's work; a packet socket is not. */
static int main_then_packet_socket(void)
{
  if (!load(SANDBOX_MAIN, false, false))
    return 10;
  int fd = socket(AF_INET6, SOCK_DGRAM, 0);
  if (fd < 0 || close(fd) < 0)
    return 11;
  fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0 || close(fd) < 0)
    return 12;
  socket(AF_PACKET, SOCK_RAW, 0);
  reached();
  return 0;
}

static void test_main_refuses_packet_socket(void **state)
{
  (void)state;
  outcome o;
  run_child(main_then_packet_socket, &o);
  expect_refused(&o, "(socket) refused");
}

/* The routing socket, for getifaddrs (libevent's AI_ADDRCONFIG), is allowed;
 * another netlink protocol is not. */
static int main_then_netlink(void)
{
  if (!load(SANDBOX_MAIN, false, false))
    return 10;
  struct ifaddrs *ifa = NULL;
  if (getifaddrs(&ifa) < 0)
    return 11;
  freeifaddrs(ifa);
  fprintf(stderr, "listed\n");
  socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT);
  reached();
  return 0;
}

static void test_main_netlink(void **state)
{
  (void)state;
  outcome o;
  run_child(main_then_netlink, &o);
  expect_refused(&o, "(socket) refused");
  assert_non_null(strstr(o.out, "listed\n")); /* getifaddrs worked */
}

/* A new user namespace, through clone or unshare, is refused. */
static int main_then_clone_newuser(void)
{
  if (!load(SANDBOX_MAIN, false, false))
    return 10;
  syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), 0, 0, 0, 0);
  reached();
  return 0;
}

static int main_then_unshare(void)
{
  if (!load(SANDBOX_MAIN, false, false))
    return 10;
  unshare(CLONE_NEWUSER);
  reached();
  return 0;
}

static void test_main_refuses_namespaces(void **state)
{
  (void)state;
  outcome o;
  run_child(main_then_clone_newuser, &o);
  expect_refused(&o, "(clone) refused");
  run_child(main_then_unshare, &o);
  expect_refused(&o, "(unshare) refused");
}

/* Threads and child processes (the NTS-KE process, restarted) still work. */
static void *thread_main(void *arg) { return arg; }

static int main_then_thread_and_fork(void)
{
  if (!load(SANDBOX_MAIN, false, false))
    return 10;
  pthread_t t;
  void *ret = NULL;
  if (pthread_create(&t, NULL, thread_main, (void *)42) != 0 || pthread_join(t, &ret) != 0 ||
      ret != (void *)42)
    return 11;
  pid_t pid = fork();
  if (pid < 0)
    return 12;
  if (pid == 0)
    _exit(7);
  int st;
  if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 7)
    return 13;
  return 0;
}

static void test_main_allows_threads_and_fork(void **state)
{
  (void)state;
  outcome o;
  run_child(main_then_thread_and_fork, &o);
  expect_exit(&o, 0);
}

/* clock_adjtime (here read-only) only with clock control. */
static int clock_read(void)
{
  struct timex tx = {.modes = 0};
  return clock_adjtime(CLOCK_REALTIME, &tx) >= 0 ? 0 : 11;
}

static int main_clock_then_adjtime(void) { return load(SANDBOX_MAIN, true, false) ? clock_read() : 10; }
static int main_noclock_then_adjtime(void)
{
  if (!load(SANDBOX_MAIN, false, false))
    return 10;
  clock_read();
  reached();
  return 0;
}

static void test_main_clock_control(void **state)
{
  (void)state;
  outcome o;
  run_child(main_clock_then_adjtime, &o);
  expect_exit(&o, 0);
  run_child(main_noclock_then_adjtime, &o);
  expect_refused(&o, "(clock_adjtime) refused");
}

/* ---- other ABIs ----------------------------------------------------------- */

#if defined(__x86_64__)
static int main_then_i386(void)
{
  if (!load(SANDBOX_MAIN, false, false))
    return 10;
  long ret = 20; /* i386's getpid, through the 32-bit entry */
  __asm__ volatile("int $0x80" : "+a"(ret) : : "memory");
  reached();
  return 0;
}

static int main_then_x32(void)
{
  if (!load(SANDBOX_MAIN, false, false))
    return 10;
  syscall(0x40000000L | SYS_getpid); /* x32's getpid */
  reached();
  return 0;
}

static void test_other_abis_refused(void **state)
{
  (void)state;
  outcome o;
  run_child(main_then_i386, &o);
  expect_refused(&o, "of another architecture (0x40000003)");
  run_child(main_then_x32, &o);
  expect_refused(&o, "system call 1073741863 refused");
}
#endif

/* ---- the NTS-KE process's filter ---------------------------------------- */

static int ke_then_open(void)
{
  if (!load(SANDBOX_KE, false, false))
    return 10;
  open("/dev/null", O_RDONLY);
  reached();
  return 0;
}

static int ke_then_udp_socket(void)
{
  if (!load(SANDBOX_KE, false, false))
    return 10;
  socket(AF_INET, SOCK_DGRAM, 0);
  reached();
  return 0;
}

static int ke_then_netlink(void)
{
  if (!load(SANDBOX_KE, false, false))
    return 10;
  socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
  reached();
  return 0;
}

static int ke_then_fork(void)
{
  if (!load(SANDBOX_KE, false, false))
    return 10;
  syscall(SYS_clone, (unsigned long)SIGCHLD, 0, 0, 0, 0);
  reached();
  return 0;
}

/* A compromised NTS-KE process cannot signal the main process (its
 * parent here): SIGCONT is harmless should the filter let it through. */
static int ke_then_signal_parent(void)
{
  if (!load(SANDBOX_KE, false, false))
    return 10;
  syscall(SYS_tgkill, getppid(), getppid(), SIGCONT);
  reached();
  return 0;
}

/* Signals to itself stay: raise(3), abort(3). */
static int ke_then_raise(void)
{
  signal(SIGUSR1, SIG_IGN);
  if (!load(SANDBOX_KE, false, false))
    return 10;
  return raise(SIGUSR1) == 0 ? 0 : 11;
}

/* Under the main filter the NTS-KE process can still set its parent-death
 * signal (SIGKILL only). */
static int main_then_pdeathsig(void)
{
  if (!load(SANDBOX_MAIN, false, false))
    return 10;
  if (prctl(PR_SET_PDEATHSIG, (long)SIGKILL, 0L, 0L, 0L) != 0)
    return 11;
  fprintf(stderr, "pdeathsig set\n");
  prctl(PR_SET_PDEATHSIG, (long)SIGTERM, 0L, 0L, 0L);
  reached();
  return 0;
}

/* What stays: a socket pair's traffic, the time, randomness. */
static int ke_then_allowed(void)
{
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
    return 9;
  if (!load(SANDBOX_KE, false, false))
    return 10;
  char b[4] = "ping", r[4];
  struct timespec ts;
  if (send(sv[0], b, 4, 0) != 4 || recv(sv[1], r, 4, 0) != 4 || memcmp(b, r, 4))
    return 11;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0 || getrandom(r, 4, 0) != 4)
    return 12;
  return 0;
}

static void test_ke_profile(void **state)
{
  (void)state;
  outcome o;
  run_child(ke_then_open, &o);
  expect_refused(&o, "(openat) refused");
  run_child(ke_then_udp_socket, &o);
  expect_refused(&o, "(socket) refused");
  run_child(ke_then_netlink, &o);
  expect_refused(&o, "(socket) refused");
  run_child(ke_then_fork, &o);
  expect_refused(&o, "(clone) refused");
  run_child(ke_then_allowed, &o);
  expect_exit(&o, 0);
  run_child(ke_then_signal_parent, &o);
  expect_refused(&o, "(tgkill) refused");
  run_child(ke_then_raise, &o);
  expect_exit(&o, 0);
  run_child(main_then_pdeathsig, &o);
  expect_refused(&o, "(prctl) refused");
  assert_non_null(strstr(o.out, "pdeathsig set"));
}

/* ---- all threads, log-only, off ------------------------------------------- */

static void *thread_ptrace(void *arg)
{
  (void)arg;
  syscall(SYS_ptrace, 0, 0, 0, 0);
  reached();
  return NULL;
}

static int go_pipe[2];

/* Waits for the filter to be loaded, then makes a refused call. */
static void *thread_wait_ptrace(void *arg)
{
  char c;
  if (read(go_pipe[0], &c, 1) == 1)
    thread_ptrace(arg);
  return NULL;
}

/* A thread started before the filter is loaded is covered too (TSYNC). */
static int thread_then_load(void)
{
  pthread_t t;
  if (pipe(go_pipe) < 0 || pthread_create(&t, NULL, thread_wait_ptrace, NULL) != 0)
    return 9;
  if (!load(SANDBOX_MAIN, false, false))
    return 10;
  if (write(go_pipe[1], "g", 1) != 1)
    return 11;
  pthread_join(t, NULL);
  return 0;
}

static void test_all_threads(void **state)
{
  (void)state;
  outcome o;
  run_child(thread_then_load, &o);
  expect_refused(&o, "(ptrace) refused");
}

static int log_only_then_open(void)
{
  if (!load(SANDBOX_KE, false, true))
    return 10;
  int fd = open("/dev/null", O_RDONLY); /* refused, but only logged by the kernel */
  return fd >= 0 && close(fd) == 0 ? 0 : 11;
}

static int status_seccomp(void)
{
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  int mode = -1;
  while (f && fgets(line, sizeof(line), f))
    if (sscanf(line, "Seccomp: %d", &mode) == 1)
      break;
  if (f)
    fclose(f);
  return mode;
}

static int off_then_open(void)
{
  sandbox_cfg cfg = {.enabled = false};
  char err[256];
  if (!sandbox_apply(SANDBOX_KE, &cfg, err, sizeof(err)))
    return 10;
  return status_seccomp() == 0 ? 0 : 11;
}

static void test_log_only_and_off(void **state)
{
  (void)state;
  outcome o;
  run_child(log_only_then_open, &o);
  expect_exit(&o, 0);
  run_child(off_then_open, &o);
  expect_exit(&o, 0);
}

static void test_parse_level(void **state)
{
  (void)state;
  int level = 7;
  assert_true(sandbox_parse_level("0", &level));
  assert_int_equal(level, SANDBOX_OFF);
  assert_true(sandbox_parse_level("1", &level));
  assert_int_equal(level, SANDBOX_ON);
  assert_true(sandbox_parse_level("-1", &level));
  assert_int_equal(level, SANDBOX_LOG);
  const char *bad[] = {"", "2", "-2", "on", "1x", " 1", "01"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_false(sandbox_parse_level(bad[i], &level));
  assert_int_equal(level, SANDBOX_LOG); /* unchanged by refused values */
}

/* A level sets enabled and log_only, and leaves the clock alone. */
static void test_set_level(void **state)
{
  (void)state;
  sandbox_cfg c = {.clock_control = true};
  sandbox_set_level(&c, SANDBOX_OFF);
  assert_true(!c.enabled && !c.log_only && c.clock_control);
  sandbox_set_level(&c, SANDBOX_LOG);
  assert_true(c.enabled && c.log_only && c.clock_control);
  sandbox_set_level(&c, SANDBOX_ON);
  assert_true(c.enabled && !c.log_only && c.clock_control);
}

int main(void)
{
  log_init("ntsd", true, LOG_LVL_NOTICE);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_main_refuses_ptrace),
      cmocka_unit_test(test_main_refuses_execve),
      cmocka_unit_test(test_main_refuses_packet_socket),
      cmocka_unit_test(test_main_netlink),
      cmocka_unit_test(test_main_refuses_namespaces),
      cmocka_unit_test(test_main_allows_threads_and_fork),
      cmocka_unit_test(test_main_clock_control),
#if defined(__x86_64__)
      cmocka_unit_test(test_other_abis_refused),
#endif
      cmocka_unit_test(test_ke_profile),
      cmocka_unit_test(test_all_threads),
      cmocka_unit_test(test_log_only_and_off),
      cmocka_unit_test(test_parse_level),
      cmocka_unit_test(test_set_level),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
