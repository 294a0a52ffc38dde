/* privs: dropping root, keeping only the capabilities the work needs. */
#include "daemon/privs.h"

#include <dirent.h>
#include <libgen.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "daemon/log.h"

#define NAME_MAX_LEN 64

struct privs {
  privs_cfg cfg;
  bool change;           /* a user was named */
  bool need_ipc_lock;    /* -m and the locked-memory limit could not be lifted */
  int priority;          /* the SCHED_FIFO priority in effect, 0: none */
  uid_t uid;
  gid_t gid;
  char user[NAME_MAX_LEN], group[NAME_MAX_LEN];
  char *state_files[2];
};

/* A decimal id, or false. */
static bool parse_id(const char *s, unsigned long *v)
{
  char *end;
  if (!*s || strspn(s, "0123456789") != strlen(s))
    return false;
  errno = 0;
  *v = strtoul(s, &end, 10);
  return errno == 0 && *v < (unsigned long)(uid_t)-1;
}

static bool lookup_user(privs *p, const char *name, char *err, size_t errlen)
{
  unsigned long id;
  struct passwd *pw = getpwnam(name);
  if (!pw && parse_id(name, &id))
    pw = getpwuid((uid_t)id);
  if (!pw) {
    snprintf(err, errlen, "user '%s': no such user (create it, or fix -u / `user`)", name);
    return false;
  }
  p->uid = pw->pw_uid;
  p->gid = pw->pw_gid;
  snprintf(p->user, sizeof(p->user), "%s", pw->pw_name);
  return true;
}

static bool lookup_group(privs *p, const char *name, char *err, size_t errlen)
{
  unsigned long id;
  struct group *gr = getgrnam(name);
  if (!gr && parse_id(name, &id))
    gr = getgrgid((gid_t)id);
  if (!gr) {
    snprintf(err, errlen, "group '%s': no such group", name);
    return false;
  }
  p->gid = gr->gr_gid;
  snprintf(p->group, sizeof(p->group), "%s", gr->gr_name);
  return true;
}

/* "NAME[:GROUP]" to ids. */
static bool resolve(privs *p, const char *spec, char *err, size_t errlen)
{
  char buf[2 * NAME_MAX_LEN];
  if (strlen(spec) >= sizeof(buf)) {
    snprintf(err, errlen, "user '%.32s...': too long", spec);
    return false;
  }
  memcpy(buf, spec, strlen(spec) + 1);
  char *group = strchr(buf, ':');
  if (group)
    *group++ = '\0';
  if (!buf[0] || (group && (!group[0] || strchr(group, ':')))) {
    snprintf(err, errlen, "user '%s': expected NAME or NAME:GROUP", spec);
    return false;
  }
  if (!lookup_user(p, buf, err, errlen))
    return false;
  if (group)
    return lookup_group(p, group, err, errlen);
  struct group *gr = getgrgid(p->gid);
  snprintf(p->group, sizeof(p->group), "%s", gr ? gr->gr_name : "?");
  return true;
}

privs *privs_create(const privs_cfg *cfg, char *err, size_t errlen)
{
  privs *p = calloc(1, sizeof(*p));
  if (!p) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  p->cfg = *cfg;
  p->cfg.user = NULL; /* not kept: they may point into the configuration */
  for (size_t i = 0; i < 2; i++) {
    p->cfg.state_files[i] = NULL;
    if (cfg->state_files[i] && cfg->state_files[i][0] &&
        !(p->state_files[i] = strdup(cfg->state_files[i]))) {
      snprintf(err, errlen, "out of memory");
      privs_free(p);
      return NULL;
    }
  }
  if (cfg->priority < 0 || cfg->priority > PRIVS_PRIORITY_MAX) {
    snprintf(err, errlen, "priority %d: expected 1..%d", cfg->priority, PRIVS_PRIORITY_MAX);
    privs_free(p);
    return NULL;
  }
  if (cfg->user && cfg->user[0]) {
    p->change = true;
    if (!resolve(p, cfg->user, err, errlen)) {
      privs_free(p);
      return NULL;
    }
  }
  return p;
}

void privs_free(privs *p)
{
  if (!p)
    return;
  free(p->state_files[0]);
  free(p->state_files[1]);
  free(p);
}

bool privs_changes_user(const privs *p, unsigned *uid, unsigned *gid)
{
  *uid = p->uid;
  *gid = p->gid;
  return p->change;
}

/* Real-time scheduling for the main thread.  Neither the NTS-KE process
 * nor any thread started later inherits it (SCHED_RESET_ON_FORK applies to
 * every new task): handshakes run at normal priority, and the packet
 * threads take it themselves (privs_drop_thread).  Optional: a failure is
 * a warning. */
static bool set_priority(int prio)
{
  struct sched_param sp = {.sched_priority = prio};
  if (sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &sp) < 0) {
    log_warn("cannot run at real-time priority %d (SCHED_FIFO): %s; continuing at normal "
             "priority", prio, strerror(errno));
    return false;
  }
  log_info("scheduling: SCHED_FIFO, priority %d", prio);
  return true;
}

/* Locked memory counts against RLIMIT_MEMLOCK once root is gone: lift the
 * limit while that is still allowed (it reserves nothing).  Where it cannot
 * be (a container), CAP_IPC_LOCK is kept instead: with MCL_FUTURE, every
 * later allocation beyond the limit would fail. */
static void allow_memory_lock(privs *p)
{
  struct rlimit rl = {.rlim_cur = RLIM_INFINITY, .rlim_max = RLIM_INFINITY};
  p->need_ipc_lock = setrlimit(RLIMIT_MEMLOCK, &rl) < 0;
  if (p->need_ipc_lock)
    log_debug("cannot lift the locked-memory limit (%s): keeping CAP_IPC_LOCK",
              strerror(errno));
}

void privs_lock_memory(const privs *p)
{
  if (!p->cfg.lock_memory)
    return;
  if (mlockall(MCL_CURRENT | MCL_FUTURE) < 0)
    log_warn("cannot lock memory: %s; continuing without (pages may be swapped out)",
             strerror(errno));
  else
    log_info("memory locked");
}

/* Capabilities are per thread: a drop with other threads running would
 * leave them privileged. */
static bool single_threaded(void)
{
  DIR *d = opendir("/proc/self/task");
  if (!d)
    return true; /* no /proc: nothing to tell; no thread is started before this */
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    n += e->d_name[0] != '.';
  closedir(d);
  return n == 1;
}

/* Whether cap is in our permitted set (the bounding set may lack it). */
static bool have_cap(cap_value_t cap)
{
  cap_t c = cap_get_proc();
  cap_flag_value_t v = CAP_CLEAR;
  if (c) {
    cap_get_flag(c, cap, CAP_PERMITTED, &v);
    cap_free(c);
  }
  return v == CAP_SET;
}

/* The capabilities to keep, among those we hold. */
static int wanted_caps(const privs *p, cap_value_t *keep)
{
  int n = 0;
  if (p->cfg.clock) {
    if (have_cap(CAP_SYS_TIME))
      keep[n++] = CAP_SYS_TIME;
    else
      log_info("CAP_SYS_TIME is not available (not in the bounding set?): the clock cannot "
               "be adjusted");
  }
  if (p->cfg.priority) {
    if (have_cap(CAP_SYS_NICE))
      keep[n++] = CAP_SYS_NICE;
    else
      log_info("CAP_SYS_NICE is not available");
  }
  if (p->need_ipc_lock && have_cap(CAP_IPC_LOCK))
    keep[n++] = CAP_IPC_LOCK;
  return n;
}

/* Exactly `keep` in the permitted and effective sets, nothing inheritable. */
static bool set_caps(const cap_value_t *keep, int n, char *err, size_t errlen)
{
  cap_t c = cap_init();
  bool ok = c && (n == 0 || (cap_set_flag(c, CAP_PERMITTED, n, keep, CAP_SET) == 0 &&
                             cap_set_flag(c, CAP_EFFECTIVE, n, keep, CAP_SET) == 0)) &&
            cap_set_proc(c) == 0;
  if (!ok)
    snprintf(err, errlen, "cannot set capabilities: %s", strerror(errno));
  if (c)
    cap_free(c);
  return ok;
}

/* setgroups, setgid, setuid with the kept capabilities surviving setuid. */
static bool switch_user(const privs *p, const cap_value_t *keep, int n, char *err,
                        size_t errlen)
{
  const char *step = "PR_SET_KEEPCAPS";
  if (prctl(PR_SET_KEEPCAPS, 1L, 0L, 0L, 0L) < 0)
    goto fail;
  step = "setgroups";
  if (setgroups(1, &p->gid) < 0)
    goto fail;
  step = "setgid";
  if (setresgid(p->gid, p->gid, p->gid) < 0)
    goto fail;
  step = "setuid";
  if (setresuid(p->uid, p->uid, p->uid) < 0)
    goto fail;
  if (!set_caps(keep, n, err, errlen))
    return false;
  step = "PR_SET_KEEPCAPS";
  if (prctl(PR_SET_KEEPCAPS, 0L, 0L, 0L, 0L) < 0)
    goto fail;
  return true;
fail:
  snprintf(err, errlen, "cannot become user %s: %s: %s", p->user, step, strerror(errno));
  return false;
}

/* The drop took: every id is the user's and root cannot come back. */
static bool verify(const privs *p, char *err, size_t errlen)
{
  uid_t r, e, s;
  gid_t gr, ge, gs;
  if (getresuid(&r, &e, &s) < 0 || getresgid(&gr, &ge, &gs) < 0 || r != p->uid ||
      e != p->uid || s != p->uid || gr != p->gid || ge != p->gid || gs != p->gid) {
    snprintf(err, errlen, "user %s: the ids did not all change", p->user);
    return false;
  }
  if (p->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
    snprintf(err, errlen, "user %s: root could be regained", p->user);
    return false;
  }
  return true;
}

/* A state file is replaced through its directory: say at start, not at the
 * first rewrite (a key rotation may be a day away), when that will fail. */
static void check_state_dirs(const privs *p)
{
  for (size_t i = 0; i < 2; i++) {
    char dir[4096];
    if (!p->state_files[i] || strlen(p->state_files[i]) >= sizeof(dir))
      continue;
    memcpy(dir, p->state_files[i], strlen(p->state_files[i]) + 1);
    const char *d = dirname(dir);
    if (access(d, W_OK | X_OK) < 0)
      log_warn("%s: its directory %s is not writable by user %s (%s): the file cannot be "
               "rewritten; give the directory to the user", p->state_files[i], d, p->user,
               strerror(errno));
  }
}

static void log_result(const privs *p)
{
  cap_t c = cap_get_proc();
  char *text = c ? cap_to_text(c, NULL) : NULL;
  log_notice("running as user %s (uid %u), group %s (gid %u); capabilities: %s", p->user,
             (unsigned)p->uid, p->group, (unsigned)p->gid,
             text && strcmp(text, "=") != 0 ? text : "none");
  cap_free(text);
  cap_free(c);
}

bool privs_apply(privs *p, char *err, size_t errlen)
{
  if (p->cfg.priority)
    p->priority = set_priority(p->cfg.priority) ? p->cfg.priority : 0;
  if (p->cfg.lock_memory)
    allow_memory_lock(p);
  if (!p->change)
    return true;
  if (!single_threaded()) {
    snprintf(err, errlen, "cannot drop privileges: threads are running already");
    return false;
  }
  cap_value_t keep[3];
  int n = wanted_caps(p, keep);
  if (geteuid() != 0) {
    /* Started as the user already (a service manager did it): trim the
     * capabilities all the same. */
    if (getuid() != p->uid || geteuid() != p->uid) {
      snprintf(err, errlen, "cannot become user %s: not started as root", p->user);
      return false;
    }
    if (!set_caps(keep, n, err, errlen))
      return false;
  } else if (!switch_user(p, keep, n, err, errlen)) {
    return false;
  }
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0L, 0L, 0L); /* none kept past exec */
  if (prctl(PR_SET_NO_NEW_PRIVS, 1L, 0L, 0L, 0L) < 0) {
    snprintf(err, errlen, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
    return false;
  }
  if (!verify(p, err, errlen))
    return false;
  log_result(p);
  check_state_dirs(p);
  return true;
}

int privs_priority(const privs *p) { return p ? p->priority : 0; }

bool privs_drop_thread(int priority)
{
  /* sched_setscheduler(0) is this thread only, and needs CAP_SYS_NICE,
   * which the main thread keeps with -P and this one clears below */
  struct sched_param sp = {.sched_priority = priority};
  if (priority > 0 && sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &sp) < 0)
    log_warn("NTP server thread: cannot run at real-time priority %d: %s", priority,
             strerror(errno));
  cap_t c = cap_init(); /* all clear */
  bool ok = c && cap_set_proc(c) == 0;
  cap_free(c);
  return ok;
}
