/* log: logging to stderr (foreground), syslog (daemon) or a file (`logfile`).
 * Levels follow syslog; -d raises the verbosity one step each.
 *
 * Each message has a class, as NTPsec's `logconfig` knows them (sys, peer,
 * clock, sync): a file sets LOG_CLASS before its first #include for its
 * messages, else they are sys.  `logconfig` picks which classes' info,
 * events/status and statistics messages are logged; errors and warnings
 * always are (docs/logging.md). */
#ifndef NTSD_DAEMON_LOG_H
#define NTSD_DAEMON_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARN = 4, LOG_LVL_NOTICE = 5, LOG_LVL_INFO = 6,
                 LOG_LVL_DEBUG = 7 };

enum log_class { LOG_CLASS_SYS, LOG_CLASS_PEER, LOG_CLASS_CLOCK, LOG_CLASS_SYNC };

/* `logconfig`'s mask: 4 bits (info, events, status, statistics) per class. */
#define LOG_MASK_ALL 0xffffu

void log_init(const char *ident, bool to_stderr, int max_level);
void log_set_level(int max_level);
bool log_enabled(int level);
/* Whether messages go to syslog (not -n, no logfile). */
bool log_uses_syslog(void);

/* The syslog facility (LOG_DAEMON unless set; before log_init). */
void log_set_facility(int facility);
int log_facility(void);
/* `logfacility NAME`: daemon, user, local0 ... local7; false if unknown. */
bool log_facility_parse(const char *name, int *facility);

/* `logconfig`: applies one keyword ([=+-]CLASSITEM, as NTPsec) to *mask;
 * false if it is not one. */
bool log_config_word(uint32_t *mask, const char *word);
void log_set_mask(uint32_t mask);

/* `logfile FILE`: from now on every line goes to FILE (appended; created
 * 0640), not to stderr or syslog.  Opened as root, before the privileges
 * drop; the descriptor stays valid after it.  The process that opened it
 * reopens FILE when it was moved or removed (logrotate's `create`), checked
 * at most once a second; copytruncate needs nothing.  False with err. */
bool log_open_file(const char *path, char *err, size_t errlen);
/* Back to stderr or syslog. */
void log_close_file(void);
/* The file's descriptor, -1 without one: a forked process keeps it. */
int log_file_fd(void);
/* In a forked process that cannot open files: keep writing to the
 * descriptor held, never reopen. */
void log_file_no_reopen(void);

/* Standard error is the systemd journal's stream (JOURNAL_STREAM names
 * its device and inode): lines carry no time of their own, but a <N>
 * priority prefix (sd-daemon(3)). */
bool log_to_journal(void);

void log_class_msg(int cls, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define log_msg(...) log_class_msg(LOG_CLASS, __VA_ARGS__)

#ifndef LOG_CLASS
#define LOG_CLASS LOG_CLASS_SYS
#endif

#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
