/* log: stderr or syslog. */
#include "daemon/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>

#include "daemon/sysclock.h"

static bool use_stderr = true;
static int level_max = LOG_LVL_NOTICE;

void log_init(const char *ident, bool to_stderr, int max_level)
{
  use_stderr = to_stderr;
  level_max = max_level;
  if (!to_stderr)
    openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_set_level(int max_level) { level_max = max_level; }
bool log_enabled(int level) { return level <= level_max; }
bool log_uses_syslog(void) { return !use_stderr; }

void log_msg(int level, const char *fmt, ...)
{
  if (level > level_max)
    return;
  va_list ap;
  va_start(ap, fmt);
  if (use_stderr) {
    static const char *const names[] = {"", "", "", "error: ", "warning: ", "", "", "debug: "};
    struct timespec ts = sysclock_system(); /* the wall clock, as the kernel keeps it */
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char buf[1024];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ntsd: %s%s\n", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
            (level >= 0 && level <= 7) ? names[level] : "", buf);
  } else {
    vsyslog(level, fmt, ap);
  }
  va_end(ap);
}
