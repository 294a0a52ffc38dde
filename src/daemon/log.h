/* log: logging to stderr (foreground) or syslog (daemon).  Levels follow
 * syslog; -d raises the verbosity one step each. */
#ifndef NTSD_DAEMON_LOG_H
#define NTSD_DAEMON_LOG_H

#include <stdbool.h>

enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARN = 4, LOG_LVL_NOTICE = 5, LOG_LVL_INFO = 6,
                 LOG_LVL_DEBUG = 7 };

void log_init(const char *ident, bool to_stderr, int max_level);
void log_set_level(int max_level);
bool log_enabled(int level);
/* Whether messages go to syslog (not -n). */
bool log_uses_syslog(void);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
