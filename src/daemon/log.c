/* log: stderr, the journal, syslog or a file. */
#include "daemon/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "daemon/sysclock.h"

#define LINE_MAX_BYTES 1024
#define REOPEN_CHECK_S 1

static bool use_stderr = true;
static bool journal; /* stderr is the journal's stream */
static int level_max = LOG_LVL_NOTICE;
static int facility = LOG_DAEMON;
static uint32_t mask = LOG_MASK_ALL;
static const char *log_ident = "ntsd";

static struct {
  int fd;               /* -1: no logfile */
  char path[1024];
  bool reopen;          /* this process may reopen it */
  bool reopen_failed;   /* said once */
  time_t checked;       /* CLOCK_MONOTONIC s of the last check */
} file = {.fd = -1};

/* JOURNAL_STREAM is "DEV:INO" of the stream systemd connected stderr to;
 * a stderr redirected elsewhere since (a shell under the unit) differs. */
static bool stderr_is_journal(void)
{
  const char *js = getenv("JOURNAL_STREAM");
  unsigned long long dev, ino;
  char extra;
  struct stat st;
  if (!js || sscanf(js, "%llu:%llu%c", &dev, &ino, &extra) != 2)
    return false;
  return fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
         (unsigned long long)st.st_ino == ino;
}

void log_init(const char *ident, bool to_stderr, int max_level)
{
  log_ident = ident;
  use_stderr = to_stderr;
  level_max = max_level;
  journal = to_stderr && stderr_is_journal();
  if (!to_stderr)
    openlog(ident, LOG_PID | LOG_NDELAY, facility);
}

void log_set_level(int max_level) { level_max = max_level; }
bool log_enabled(int level) { return level <= level_max; }
bool log_uses_syslog(void) { return !use_stderr && file.fd < 0; }
bool log_to_journal(void) { return journal && file.fd < 0; }
void log_set_facility(int fac) { facility = fac; }
int log_facility(void) { return facility; }
void log_set_mask(uint32_t m) { mask = m; }
int log_file_fd(void) { return file.fd; }
void log_file_no_reopen(void) { file.reopen = false; }

bool log_facility_parse(const char *name, int *fac)
{
  static const struct {
    const char *name;
    int fac;
  } tab[] = {{"daemon", LOG_DAEMON}, {"user", LOG_USER},     {"local0", LOG_LOCAL0},
             {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3},
             {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5}, {"local6", LOG_LOCAL6},
             {"local7", LOG_LOCAL7}};
  for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
    if (strcmp(name, tab[i].name) == 0) {
      *fac = tab[i].fac;
      return true;
    }
  return false;
}

/* ---- logconfig ---------------------------------------------------------- */

enum { ITEM_INFO, ITEM_EVENTS, ITEM_STATUS, ITEM_STATISTICS, ITEMS };
static const char *const class_names[] = {"sys", "peer", "clock", "sync"};
static const char *const item_names[] = {"info", "events", "status", "statistics"};
#define N_CLASSES (sizeof(class_names) / sizeof(class_names[0]))

/* "all" or one of names: the bit of each it stands for */
static bool match(const char *w, const char *const *names, size_t n, uint32_t *bits)
{
  if (strcmp(w, "all") == 0) {
    *bits = ~0u;
    return true;
  }
  for (size_t i = 0; i < n; i++)
    if (strcmp(w, names[i]) == 0) {
      *bits = 1u << i;
      return true;
    }
  return false;
}

/* CLASSITEM: a class name or "all" followed by an item name or "all"; or,
 * as NTPsec also takes, "all" followed by a class name. */
static bool word_bits(const char *w, uint32_t *bits)
{
  uint32_t only;
  if (!*w)
    return false;
  if (strncmp(w, "all", 3) == 0 && match(w + 3, class_names, N_CLASSES, &only) &&
      strcmp(w + 3, "all") != 0) {
    for (size_t c = 0; c < N_CLASSES; c++)
      if (only & (1u << c))
        *bits = ((1u << ITEMS) - 1) << (c * ITEMS);
    return true;
  }
  for (size_t split = 1; w[split]; split++) {
    char cls[16];
    uint32_t cb, ib;
    if (split >= sizeof(cls))
      break;
    memcpy(cls, w, split);
    cls[split] = '\0';
    if (!match(cls, class_names, N_CLASSES, &cb) ||
        !match(w + split, item_names, ITEMS, &ib))
      continue;
    if (ib == 1u << ITEM_STATUS) /* state changes are events here */
      ib = 1u << ITEM_EVENTS;
    *bits = 0;
    for (size_t c = 0; c < N_CLASSES; c++)
      if (cb & (1u << c))
        *bits |= (ib & ((1u << ITEMS) - 1)) << (c * ITEMS);
    return true;
  }
  return false;
}

bool log_config_word(uint32_t *m, const char *word)
{
  char op = '+'; /* NTPsec: a keyword without a prefix adds */
  uint32_t bits;
  if (*word == '=' || *word == '+' || *word == '-')
    op = *word++;
  if (!word_bits(word, &bits))
    return false;
  if (op == '=')
    *m = bits;
  else if (op == '+')
    *m |= bits;
  else
    *m &= ~bits;
  return true;
}

/* Errors and warnings always; notice is events (and status, its synonym:
 * ntsd reports changes of state as events), info is info, debug is
 * statistics. */
static bool class_wants(int cls, int level)
{
  uint32_t items;
  if (level <= LOG_LVL_WARN)
    return true;
  if (level == LOG_LVL_NOTICE)
    items = 1u << ITEM_EVENTS;
  else if (level == LOG_LVL_INFO)
    items = 1u << ITEM_INFO;
  else
    items = 1u << ITEM_STATISTICS;
  if (cls < 0 || (size_t)cls >= N_CLASSES)
    cls = LOG_CLASS_SYS;
  return (mask >> (cls * ITEMS)) & items;
}

/* ---- logfile ------------------------------------------------------------ */

static int open_file(const char *path)
{
  return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0640);
}

bool log_open_file(const char *path, char *err, size_t errlen)
{
  if (snprintf(file.path, sizeof(file.path), "%s", path) >= (int)sizeof(file.path)) {
    snprintf(err, errlen, "logfile: path too long");
    return false;
  }
  int fd = open_file(path);
  if (fd < 0) {
    snprintf(err, errlen, "logfile %s: %s", path, strerror(errno));
    return false;
  }
  file.fd = fd;
  file.reopen = true;
  return true;
}

void log_close_file(void)
{
  if (file.fd >= 0)
    close(file.fd);
  file.fd = -1;
  file.reopen = file.reopen_failed = false;
  file.checked = 0;
}

static void write_all(int fd, const char *s, size_t n)
{
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return; /* nowhere to say it */
    s += w;
    n -= (size_t)w;
  }
}

/* After logrotate moved the file away (or it was removed), the next line
 * goes to a new file at the path; the descriptor's number stays, so a
 * forked process's copy and the SIGSYS handler keep a valid one. */
static void check_moved(void)
{
  struct timespec now;
  struct stat fst, pst;
  clock_gettime(CLOCK_MONOTONIC, &now);
  if (!file.reopen || now.tv_sec - file.checked < REOPEN_CHECK_S)
    return;
  file.checked = now.tv_sec;
  if (fstat(file.fd, &fst) < 0)
    return;
  if (stat(file.path, &pst) == 0 && pst.st_dev == fst.st_dev && pst.st_ino == fst.st_ino)
    return;
  int fd = open_file(file.path);
  if (fd < 0 || dup3(fd, file.fd, O_CLOEXEC) < 0) {
    if (!file.reopen_failed) {
      char line[LINE_MAX_BYTES];
      int n = snprintf(line, sizeof(line),
                       "%s[%ld]: warning: logfile %s was moved and cannot be reopened (%s); "
                       "writing on to the moved file (docs/logging.md: copytruncate)\n",
                       log_ident, (long)getpid(), file.path, strerror(errno));
      if (n > 0)
        write_all(file.fd, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
    }
    file.reopen_failed = true;
    if (fd >= 0)
      close(fd);
    return;
  }
  close(fd);
  file.reopen_failed = false;
}

/* ---- the line ----------------------------------------------------------- */

static const char *level_word(int level)
{
  static const char *const names[] = {"", "", "", "error: ", "warning: ", "", "", "debug: "};
  return (level >= 0 && level <= 7) ? names[level] : "";
}

/* "2026-01-02T03:04:05.678Z " */
static size_t put_time(char *buf, size_t size)
{
  struct timespec ts = sysclock_system(); /* the wall clock, as the kernel keeps it */
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  int n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   ts.tv_nsec / 1000000);
  return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

void log_class_msg(int cls, int level, const char *fmt, ...)
{
  if (level > level_max || !class_wants(cls, level))
    return;
  va_list ap;
  va_start(ap, fmt);
  if (!use_stderr && file.fd < 0) {
    vsyslog(level, fmt, ap);
    va_end(ap);
    return;
  }
  char line[LINE_MAX_BYTES];
  size_t n = 0;
  int w;
  if (file.fd >= 0) {
    n = put_time(line, sizeof(line));
    w = snprintf(line + n, sizeof(line) - n, "%s[%ld]: %s", log_ident, (long)getpid(),
                 level_word(level));
  } else if (journal) {
    w = snprintf(line, sizeof(line), "<%d>%s", level, level_word(level));
  } else {
    n = put_time(line, sizeof(line));
    w = snprintf(line + n, sizeof(line) - n, "%s: %s", log_ident, level_word(level));
  }
  if (w > 0)
    n = n + (size_t)w < sizeof(line) ? n + (size_t)w : sizeof(line) - 1;
  w = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
  va_end(ap);
  if (w > 0)
    n = n + (size_t)w < sizeof(line) - 1 ? n + (size_t)w : sizeof(line) - 2;
  line[n++] = '\n';
  if (file.fd >= 0) {
    if (gettid() == getpid()) /* the NTP server's packet threads only write */
      check_moved();
    write_all(file.fd, line, n);
  } else {
    write_all(STDERR_FILENO, line, n);
  }
}
