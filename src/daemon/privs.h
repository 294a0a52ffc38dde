/* privs: what the daemon keeps of root once it is set up.
 *
 * ntsd starts as root, opens everything that needs root (sockets, the TLS
 * key, the state files), then becomes an ordinary user (`-u`, `user`),
 * keeping only the capabilities its work needs: CAP_SYS_TIME when it
 * adjusts the clock, CAP_SYS_NICE when a scheduling priority was asked for,
 * CAP_IPC_LOCK for memory locking where the locked-memory limit cannot be
 * lifted.
 * No-new-privileges is set, so no later exec can gain any.
 *
 * Capabilities belong to threads: privs_apply must run before any thread
 * is started (it refuses otherwise), so that every later thread inherits
 * the reduced set.  docs/security.md describes the whole sequence. */
#ifndef NTSD_DAEMON_PRIVS_H
#define NTSD_DAEMON_PRIVS_H

#include <stdbool.h>
#include <stddef.h>

#define PRIVS_PRIORITY_MAX 99 /* SCHED_FIFO's range on Linux: 1..99 */

typedef struct privs_cfg {
  const char *user;  /* "NAME[:GROUP]"; NULL or "": stay the user we were started as */
  bool clock;        /* the system clock is adjusted: keep CAP_SYS_TIME */
  int priority;      /* SCHED_FIFO priority 1..PRIVS_PRIORITY_MAX; 0: unchanged */
  bool lock_memory;  /* lock all memory (mlockall) */
  const char *state_files[2]; /* rewritten after the drop (NULL or "": none): their
                                 directories must be writable by the user */
} privs_cfg;

typedef struct privs privs;

/* Looks the user and group up, before anything is opened, so that a typing
 * error stops the start with a clear message.  NULL with err on failure. */
privs *privs_create(const privs_cfg *cfg, char *err, size_t errlen);
void privs_free(privs *p);

/* Whether a user change is asked for; its uid and gid (for the files the
 * daemon writes while still root). */
bool privs_changes_user(const privs *p, unsigned *uid, unsigned *gid);

/* After set-up and before any thread: sets the priority (a failure is a
 * warning), makes memory locking possible after the drop, then drops to the
 * user with only the capabilities kept, and warns about each state file
 * whose directory the user cannot write.  Without a user, the credentials
 * stay as they are.  false with err: the daemon must not run. */
bool privs_apply(privs *p, char *err, size_t errlen);

/* Locks memory (after detaching: locks are not inherited across fork); a
 * failure is a warning. */
void privs_lock_memory(const privs *p);

/* The SCHED_FIFO priority the main thread runs at after privs_apply (0:
 * none asked for, or refused). */
int privs_priority(const privs *p);

/* For a thread started after privs_apply: takes SCHED_FIFO at priority
 * when it is > 0 (the main thread's: SCHED_RESET_ON_FORK keeps new threads
 * from inheriting it; a refusal is a warning), then clears the thread's
 * capabilities (they are per thread), as it needs none of those the main
 * thread keeps.  False if the kernel refused the clearing. */
bool privs_drop_thread(int priority);

#endif
