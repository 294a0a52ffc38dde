/* sandbox: seccomp allow-lists (libseccomp).
 *
 * A refused call raises SIGSYS (SCMP_ACT_TRAP) rather than killing the
 * process outright, so that the daemon can say why it stops: the handler
 * writes one line naming the call to stderr (or the `logfile`) and, when
 * ntsd logs to syslog, to a datagram socket connected to /dev/log before the
 * filter was loaded.
 * It then turns core dumps off (the process holds keys) and dies of SIGSYS,
 * as SCMP_ACT_KILL_PROCESS would.  Everything it does is async-signal-safe
 * and on the allow-list. */
#include "daemon/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <syslog.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "daemon/log.h"

/* ---- the lists ---------------------------------------------------------- */

/* Both processes: memory, threads' bookkeeping, signals, time, I/O on the
 * descriptors they hold, the event loop, accepting and using sockets,
 * randomness. */
static const char *const common_calls[] = {
    "brk", "mmap", "munmap", "mremap", "mprotect", "madvise",
    "futex", "set_robust_list", "rseq", "gettid", "getpid", "getppid",
    "sched_yield", "sched_getaffinity", "exit", "exit_group",
    "rt_sigreturn", "rt_sigprocmask", "rt_sigaction", "sigaltstack", "restart_syscall",
    "clock_gettime", "clock_getres", "gettimeofday", "time", "nanosleep", "clock_nanosleep",
    "read", "write", "readv", "writev", "pread64", "close", "fcntl", "fstat", "newfstatat",
    "statx", "lseek",
    "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "ppoll",
    "select", "pselect6", "eventfd2", "pipe2",
    "recvfrom", "recvmsg", "recvmmsg", "sendto", "sendmsg", "sendmmsg", "accept", "accept4",
    "shutdown", "getsockname", "getpeername", "getsockopt", "setsockopt",
    "getrandom", "getuid", "geteuid", "getgid", "getegid",
    /* syslog(3) reconnects after a restart of the log daemon (socket: below) */
    "connect",
};

/* The main process also makes sockets (client transports, DNS, SOCKS,
 * NTS-KE client), writes its state files (atomicfile: O_TMPFILE, linkat,
 * renameat), starts threads or the NTS-KE process and reaps it. */
static const char *const main_calls[] = {
    "bind", "socketpair",
    "openat", "open", "linkat", "link", "renameat", "renameat2", "rename", "unlinkat", "unlink",
    "fsync", "fdatasync", "fchmod", "fchown", "fchmodat", "fchownat", "ftruncate", "umask",
    "access", "faccessat", "faccessat2", "getdents64", "readlink", "readlinkat", "getcwd",
    "uname", "dup", "dup2", "dup3",
    "wait4", "waitid", "kill", "tgkill",
    /* the NTS-KE process between fork and its own filter: it closes what it
     * inherited, drops its capabilities and loads its filter */
    "close_range", "capget", "capset", "seccomp",
    /* OpenSSL starts in the children (the NTS-KE process before its own
     * filter, the certificate check, daemon/certpair): the C library's
     * qsort, which it sorts its algorithm tables with, reads the memory
     * size through sysinfo */
    "sysinfo",
};

/* Adjusting the system clock: the main process with clock control only. */
static const char *const clock_calls[] = {
    "clock_adjtime", "adjtimex", "clock_settime", "settimeofday",
};

/* Namespaces must not be created: clone() is allowed without these flags. */
#define CLONE_NS_FLAGS                                                                      \
  ((scmp_datum_t)(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | \
                  CLONE_NEWNET | CLONE_NEWCGROUP))

/* ---- the refusal -------------------------------------------------------- */

/* The native calls' names, resolved before the filter is loaded: the handler
 * cannot allocate. */
#define NAMES_MAX 512
#define NAME_LEN 24
static char names[NAMES_MAX][NAME_LEN];
/* AUDIT_ARCH_* of this build, as si_arch reports it (SCMP_ARCH_NATIVE is 0) */
static uint32_t native_arch;
static int log_fd = -1; /* connected to /dev/log when logging to syslog */

/* Appends s to buf at *n (bounded); async-signal-safe. */
static void put_str(char *buf, size_t size, size_t *n, const char *s)
{
  while (*s && *n + 1 < size)
    buf[(*n)++] = *s++;
  buf[*n] = '\0';
}

static void put_uint(char *buf, size_t size, size_t *n, unsigned long v, int width, int base)
{
  char tmp[24];
  int len = 0;
  do {
    tmp[len++] = "0123456789abcdef"[v % (unsigned)base];
    v /= (unsigned)base;
  } while (v && len < (int)sizeof(tmp));
  while (len < width && len < (int)sizeof(tmp))
    tmp[len++] = '0';
  while (len > 0 && *n + 1 < size)
    buf[(*n)++] = tmp[--len];
  buf[*n] = '\0';
}

/* "seccomp: system call N (NAME) refused; exiting" */
static void refusal_text(char *buf, size_t size, size_t *n, const siginfo_t *si)
{
  put_str(buf, size, n, "seccomp: system call ");
  put_uint(buf, size, n, (unsigned long)(unsigned)si->si_syscall, 0, 10);
  if ((uint32_t)si->si_arch != native_arch) {
    put_str(buf, size, n, " of another architecture (0x");
    put_uint(buf, size, n, (unsigned long)(unsigned)si->si_arch, 0, 16);
    put_str(buf, size, n, ")");
  } else if (si->si_syscall >= 0 && si->si_syscall < NAMES_MAX && names[si->si_syscall][0]) {
    put_str(buf, size, n, " (");
    put_str(buf, size, n, names[si->si_syscall]);
    put_str(buf, size, n, ")");
  }
  put_str(buf, size, n, " refused by the system call filter; exiting (ntsd -F -1 logs instead)");
}

/* The line in log.c's format: UTC time, "ntsd: error: ..." (with the pid in
 * a logfile); to the journal, its priority instead of the time. */
static void stderr_prefix(char *buf, size_t size, size_t *n, bool to_file)
{
  if (!to_file && log_to_journal()) {
    put_str(buf, size, n, "<3>error: ");
    return;
  }
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  long days = (long)(ts.tv_sec / 86400), secs = (long)(ts.tv_sec % 86400);
  /* civil date from days since 1970-01-01 (proleptic Gregorian) */
  long z = days + 719468, era = z / 146097, doe = z - era * 146097;
  long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  long doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
  long d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
  long y = yoe + era * 400 + (m <= 2);
  long parts[] = {y, m, d, secs / 3600, secs / 60 % 60, secs % 60};
  const char *seps[] = {"-", "-", "T", ":", ":", "."};
  for (int i = 0; i < 6; i++) {
    put_uint(buf, size, n, (unsigned long)parts[i], i ? 2 : 4, 10);
    put_str(buf, size, n, seps[i]);
  }
  put_uint(buf, size, n, (unsigned long)(ts.tv_nsec / 1000000), 3, 10);
  put_str(buf, size, n, "Z ntsd");
  if (to_file) {
    put_str(buf, size, n, "[");
    put_uint(buf, size, n, (unsigned long)getpid(), 0, 10);
    put_str(buf, size, n, "]");
  }
  put_str(buf, size, n, ": error: ");
}

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
  (void)uc;
  int saved = errno;
  char line[256];
  size_t n = 0;
  int file_fd = log_file_fd(); /* `logfile`: the line goes there */
  stderr_prefix(line, sizeof(line), &n, file_fd >= 0);
  refusal_text(line, sizeof(line), &n, si);
  put_str(line, sizeof(line), &n, "\n");
  ssize_t w = write(file_fd >= 0 ? file_fd : STDERR_FILENO, line, n);
  if (log_fd >= 0) {
    char msg[256];
    size_t m = 0;
    put_str(msg, sizeof(msg), &m, "<");
    put_uint(msg, sizeof(msg), &m, (unsigned long)(log_facility() | LOG_ERR), 0, 10);
    put_str(msg, sizeof(msg), &m, ">ntsd[");
    put_uint(msg, sizeof(msg), &m, (unsigned long)getpid(), 0, 10);
    put_str(msg, sizeof(msg), &m, "]: ");
    refusal_text(msg, sizeof(msg), &m, si);
    w = send(log_fd, msg, m, MSG_NOSIGNAL);
  }
  (void)w;
  /* No core file: the process holds the TLS key and the cookie keys. */
  prctl(PR_SET_DUMPABLE, 0L, 0L, 0L, 0L);
  /* SA_RESETHAND restored the default action and SA_NODEFER left SIGSYS
   * unblocked: this ends the process. */
  syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), sig);
  errno = saved;
  _exit(128 + sig);
}

/* Prepares what the handler needs, then installs it. */
static bool prepare_refusal(char *err, size_t errlen)
{
  native_arch = seccomp_arch_native();
  for (int i = 0; i < NAMES_MAX; i++) {
    char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, i);
    if (name) {
      snprintf(names[i], NAME_LEN, "%s", name);
      free(name);
    }
  }
  if (log_fd < 0 && log_uses_syslog()) {
    struct sockaddr_un sun = {.sun_family = AF_UNIX, .sun_path = "/dev/log"};
    log_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (log_fd >= 0 && connect(log_fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
      close(log_fd);
      log_fd = -1;
    }
  }
  struct sigaction sa = {.sa_sigaction = on_sigsys,
                         .sa_flags = SA_SIGINFO | SA_RESETHAND | SA_NODEFER};
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSYS, &sa, NULL) < 0) {
    snprintf(err, errlen, "system call filter: cannot handle SIGSYS: %s", strerror(errno));
    return false;
  }
  return true;
}

/* ---- building the filter ------------------------------------------------ */

static int allow_names(scmp_filter_ctx f, const char *const *calls, size_t n, const char **bad)
{
  for (size_t i = 0; i < n; i++) {
    int nr = seccomp_syscall_resolve_name(calls[i]);
    if (nr == __NR_SCMP_ERROR)
      continue; /* not a call of this architecture (open, time, ... on some) */
    int rc = seccomp_rule_add(f, SCMP_ACT_ALLOW, nr, 0);
    if (rc < 0) {
      *bad = calls[i];
      return rc;
    }
  }
  return 0;
}

#define ADD(f, rc, ...)                      \
  do {                                       \
    if ((rc) == 0)                           \
      (rc) = seccomp_rule_add(f, __VA_ARGS__); \
  } while (0)

/* The calls allowed only with some arguments. */
static int allow_args(scmp_filter_ctx f, sandbox_profile p)
{
  int rc = 0;
  const scmp_datum_t cmd_mask = 0xffffffffu; /* ioctl's request is an int */
  ADD(f, rc, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_MASKED_EQ, cmd_mask, FIONREAD));
  ADD(f, rc, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_MASKED_EQ, cmd_mask, FIONBIO));
  ADD(f, rc, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_MASKED_EQ, cmd_mask, TCGETS));
  /* the SIGSYS handler: core dumps off, never on */
  ADD(f, rc, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 2, SCMP_A0(SCMP_CMP_EQ, PR_SET_DUMPABLE, 0),
      SCMP_A1(SCMP_CMP_EQ, 0, 0));
  /* clone3's flags are behind a pointer: ENOSYS makes the C library use clone */
  ADD(f, rc, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  /* syslog(3)'s socket, when it reconnects */
  ADD(f, rc, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2, SCMP_A0(SCMP_CMP_EQ, AF_UNIX, 0),
      SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_DGRAM));
  if (p == SANDBOX_KE) {
    /* signals to itself only (raise, abort, the SIGSYS handler): not to
     * the main process or, without -u, any other process of the user */
    ADD(f, rc, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
        SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid(), 0));
    return rc;
  }
  /* the NTS-KE process, before its filter: only ever giving privileges up,
   * and dying with the main process */
  ADD(f, rc, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 2, SCMP_A0(SCMP_CMP_EQ, PR_SET_PDEATHSIG, 0),
      SCMP_A1(SCMP_CMP_EQ, SIGKILL, 0));
  ADD(f, rc, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 2, SCMP_A0(SCMP_CMP_EQ, PR_SET_KEEPCAPS, 0),
      SCMP_A1(SCMP_CMP_EQ, 0, 0));
  ADD(f, rc, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 2, SCMP_A0(SCMP_CMP_EQ, PR_CAP_AMBIENT, 0),
      SCMP_A1(SCMP_CMP_EQ, PR_CAP_AMBIENT_CLEAR_ALL, 0));
  ADD(f, rc, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 2, SCMP_A0(SCMP_CMP_EQ, PR_SET_NO_NEW_PRIVS, 0),
      SCMP_A1(SCMP_CMP_EQ, 1, 0));
  ADD(f, rc, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, AF_INET, 0));
  ADD(f, rc, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, AF_INET6, 0));
  ADD(f, rc, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2, SCMP_A0(SCMP_CMP_EQ, AF_UNIX, 0),
      SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_STREAM));
  /* a packet thread takes the main thread's real-time priority (-P) for
   * itself: the calling thread only (0), and raising it needs CAP_SYS_NICE */
  ADD(f, rc, SCMP_ACT_ALLOW, SCMP_SYS(sched_setscheduler), 1, SCMP_A0(SCMP_CMP_EQ, 0, 0));
  /* libevent's resolver lists the host's addresses (getifaddrs) at its first
   * lookup with AI_ADDRCONFIG, which may come after the filter: reading the
   * routing socket; changing anything there needs CAP_NET_ADMIN */
  ADD(f, rc, SCMP_ACT_ALLOW, SCMP_SYS(socket), 3, SCMP_A0(SCMP_CMP_EQ, AF_NETLINK, 0),
      SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_RAW), SCMP_A2(SCMP_CMP_EQ, NETLINK_ROUTE, 0));
  /* threads and processes, in no new namespace */
  ADD(f, rc, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NS_FLAGS, 0));
  return rc;
}

static const char *profile_name(sandbox_profile p) { return p == SANDBOX_KE ? "NTS-KE" : "main"; }

/* The filter for p, not loaded; NULL with err. */
static scmp_filter_ctx build(sandbox_profile p, const sandbox_cfg *cfg, char *err, size_t errlen)
{
  uint32_t deny = cfg->log_only ? SCMP_ACT_LOG : SCMP_ACT_TRAP;
  scmp_filter_ctx f = seccomp_init(deny);
  if (!f) {
    snprintf(err, errlen, "system call filter: cannot create it");
    return NULL;
  }
  const char *bad = "(attribute)";
  /* Calls of another ABI (i386's int 0x80, x32) are refused alike. */
  int rc = seccomp_attr_set(f, SCMP_FLTATR_ACT_BADARCH, deny);
  if (rc == 0)
    rc = seccomp_attr_set(f, SCMP_FLTATR_CTL_TSYNC, 1);
  if (rc == 0)
    rc = allow_names(f, common_calls, sizeof(common_calls) / sizeof(common_calls[0]), &bad);
  if (rc == 0 && p == SANDBOX_MAIN)
    rc = allow_names(f, main_calls, sizeof(main_calls) / sizeof(main_calls[0]), &bad);
  if (rc == 0 && p == SANDBOX_MAIN && cfg->clock_control)
    rc = allow_names(f, clock_calls, sizeof(clock_calls) / sizeof(clock_calls[0]), &bad);
  if (rc == 0) {
    bad = "(argument rules)";
    rc = allow_args(f, p);
  }
  if (rc < 0) {
    snprintf(err, errlen, "system call filter (%s): cannot add %s: %s", profile_name(p), bad,
             strerror(-rc));
    seccomp_release(f);
    return NULL;
  }
  return f;
}

int sandbox_log_fd(void) { return log_fd; }

bool sandbox_parse_level(const char *arg, int *level)
{
  static const char *const words[] = {"1", "0", "-1"};
  static const int levels[] = {SANDBOX_ON, SANDBOX_OFF, SANDBOX_LOG};
  for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
    if (!strcmp(arg, words[i])) {
      *level = levels[i];
      return true;
    }
  return false;
}

void sandbox_set_level(sandbox_cfg *cfg, int level)
{
  cfg->enabled = level != SANDBOX_OFF;
  cfg->log_only = level == SANDBOX_LOG;
}

bool sandbox_apply(sandbox_profile p, const sandbox_cfg *cfg, char *err, size_t errlen)
{
  if (!cfg->enabled) {
    log_info("system call filter off");
    return true;
  }
  scmp_filter_ctx f = build(p, cfg, err, errlen);
  if (!f)
    return false;
  if (!prepare_refusal(err, errlen)) {
    seccomp_release(f);
    return false;
  }
  int rc = seccomp_load(f);
  seccomp_release(f);
  if (rc < 0) {
    /* TSYNC fails with a positive thread id that libseccomp reports as
     * -ESRCH: a thread already has another filter. */
    snprintf(err, errlen, "system call filter (%s): cannot load it: %s", profile_name(p),
             strerror(-rc));
    return false;
  }
  log_info("system call filter loaded (%s process%s%s)", profile_name(p),
           p == SANDBOX_MAIN ? (cfg->clock_control ? ", clock control" : ", no clock control")
                             : "",
           cfg->log_only ? ", log only" : "");
  return true;
}
