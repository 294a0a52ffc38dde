/* daemon: the event loop, and the adapters that feed proto/core and apply its actions. */
#include "daemon/daemon.h"

#include <errno.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/client.h"
#include "daemon/clockctl.h"
#include "daemon/control.h"
#include "daemon/driftfile.h"
#include "daemon/ke_proc.h"
#include "daemon/keystore.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "daemon/notify.h"
#include "daemon/report.h"
#include "daemon/sandbox.h"
#include "daemon/server.h"
#include "daemon/stats.h"
#include "daemon/sysclock.h"
#include "daemon/certpair.h"
#include "daemon/tls.h"
#include "proto/acl.h"
#include "proto/core.h"

#define SYS_REFRESH_S 1 /* how often system variables are recomputed */
#define DRIFT_SAVE_S 3600 /* drift file written about hourly */
#define KE_TIMEOUT_S 2.0
#define KE_MAX_CONNECTIONS 256
#define CERT_WATCH_S 2 /* how often `nts cert` and `nts key` are looked at */

/* What stat says of the certificate and key files: a renewal that renames
 * new files over them (certbot, lego) or rewrites them changes it. */
typedef struct cert_files {
  struct stat cert, key;
  int cert_errno, key_errno;
} cert_files;
#define CERT_WARN_S (14 * 86400) /* warn this long before the certificate expires */
#define CERT_CHECK_S 86400       /* and repeat the warning daily while it holds */

struct ntsd {
  ntsd_conf *conf;
  ntsd_opts opts;
  struct event_base *base;
  struct evdns_base *dns;
  ntp_acl *acl;
  ntsd_server *server;
  ntsd_clients *clients;
  ntsd_control *control;
  struct event *sig_int, *sig_term, *sig_hup, *refresh, *key_check, *cert_check;
  struct event *cert_watch; /* the certificate and key files, for renewals */
  metrics *metrics;        /* `metrics ADDR:PORT`, NULL when off */
  uint64_t key_rotations;
  bool have_cert;
  int64_t cert_not_after;  /* the NTS-KE certificate's, Unix time */
  certpair *ke_pair;       /* the certificate and key the KE process serves */
  cert_files cert_used;    /* the files as they were when ke_pair was read */
  cert_files cert_seen;    /* as the last look found them */
  bool cert_blind;         /* the user cannot see the files: said once */
  cert_files cert_bad;     /* the files as last refused */
  bool cert_refused;       /* cert_bad holds something */
  clockctl *clk;
  ntp_core *core;          /* selection and the discipline (estimating only with -x) */
  struct event *slew_timer, *drift_timer;
  driftfile *drift;        /* `driftfile`, with clock control */
  int kernel_leap;         /* last leap/sync state given to the kernel */
  bool kernel_synced;
  keystore *keys;
  ke_proc *ke;             /* the NTS-KE process */
  bool ke_serving;         /* it has reported since it (re)started */
  notify *notify;          /* the service manager, when one listens */
  bool rotation_held;      /* a rotation waits for the KE process (logged once) */
  double precision;
  int precision_log2;
  report_sys sys;
  stats *stats;            /* the statistics files, NULL if none */
};

/* The `restrict` lines of conf into acl. */
static bool fill_acl(ntp_acl *acl, const ntsd_conf *conf, char *err, size_t errlen)
{
  for (size_t i = 0; i < conf->n_restricts; i++) {
    const conf_restrict *r = &conf->restricts[i];
    if (r->is_source)
      continue; /* applies to our own servers' associations, not to clients */
    bool ok = true;
    if (r->is_default) {
      static const uint8_t zero[16];
      if (r->fam != CONF_FAM_6)
        ok &= ntp_acl_set(acl, ACL_INET, zero, 0, r->flags, r->unrestrict);
      if (r->fam != CONF_FAM_4)
        ok &= ntp_acl_set(acl, ACL_INET6, zero, 0, r->flags, r->unrestrict);
    } else {
      enum acl_family fam = r->fam == CONF_FAM_6 ? ACL_INET6 : ACL_INET;
      ok = ntp_acl_set(acl, fam, r->addr, r->prefix, r->flags, r->unrestrict);
    }
    if (!ok) {
      snprintf(err, errlen, "restrict on line %u: cannot add entry", r->line);
      return false;
    }
  }
  return true;
}

static bool build_acl(ntsd *d, char *err, size_t errlen)
{
  d->acl = ntp_acl_create();
  if (!d->acl) {
    snprintf(err, errlen, "out of memory");
    return false;
  }
  return fill_acl(d->acl, d->conf, err, errlen);
}

/* Applies the core's clock decision to the clock backend. */
static void apply_clock(ntsd *d, const ntp_core_actions *a, double now)
{
  if (a->refused_panic)
    log_err("offset beyond the panic threshold: not correcting the clock (is the time "
            "wildly wrong? set it by hand, or raise the threshold)");
  if (!a->adjust)
    return;
  if (a->step != 0.0) {
    if (clockctl_step(d->clk, a->step)) {
      log_class_msg(LOG_CLASS_CLOCK, LOG_LVL_NOTICE, "%s clock stepped by %+.6f s%s",
                    clockctl_name(d->clk), a->step, a->startup ? " (start-up)" : "");
      clients_clock_stepped(d->clients);
    }
  }
  clockctl_set_freq(d->clk, a->freq_ppm);
  if (!d->slew_timer)
    return; /* estimating only: nothing to slew */
  evtimer_del(d->slew_timer);
  if (isfinite(a->slew_until) && a->slew_until > now) {
    double w = a->slew_until - now;
    struct timeval tv = {.tv_sec = (time_t)w, .tv_usec = (suseconds_t)((w - floor(w)) * 1e6)};
    evtimer_add(d->slew_timer, &tv);
  }
}

/* The core's log line for each sample it feeds the discipline. */
static void on_feed(void *arg, double now, size_t i, const ntp_disc_sample *in, int poll,
                    const ntp_disc_action *a)
{
  ntsd *d = arg;
  if (d->stats) {
    ntp_disc_info di;
    ntp_core_disc_info(d->core, &di);
    stats_loop(d->stats, in->offset, a->base_freq_ppm, di.skew_ppm, poll);
  }
  if (log_enabled(LOG_LVL_DEBUG))
    log_debug("discipline: source %zu sample %.6f s ago: offset %+.9f delay %.9f error %.9f"
              " -> frequency %+.4f ppm, offset now %+.9f",
              i, now - in->taken, in->offset, in->delay, in->error, a->base_freq_ppm,
              ntp_core_offset_now(d->core, now));
}

static void on_slew_done(evutil_socket_t fd, short what, void *arg)
{
  ntsd *d = arg;
  (void)fd;
  (void)what;
  double now = sysclock_mono();
  ntp_core_actions a;
  ntp_core_tick(d->core, now, &a);
  apply_clock(d, &a, now);
}

/* Tells the kernel about leap seconds and synchronisation, on changes. */
static void update_kernel_status(ntsd *d, int leap, bool synced)
{
  if (!clockctl_controls(d->clk) || (leap == d->kernel_leap && synced == d->kernel_synced))
    return;
  if (clockctl_set_status(d->clk, leap == NTP_LEAP_UNSYNC ? 0 : leap, synced)) {
    d->kernel_leap = leap;
    d->kernel_synced = synced;
    if (leap == NTP_LEAP_INSERT || leap == NTP_LEAP_DELETE)
      log_class_msg(LOG_CLASS_CLOCK, LOG_LVL_NOTICE,
                    "leap second %s announced by the sources; armed in the kernel",
                    leap == NTP_LEAP_INSERT ? "insertion" : "deletion");
  }
}

static void save_drift(ntsd *d)
{
  ntp_disc_info di;
  if (!d->core || !clockctl_controls(d->clk) || !d->drift)
    return;
  ntp_core_disc_info(d->core, &di);
  if (di.synced)
    driftfile_save(d->drift, di.freq_ppm); /* a failure is logged once */
}

static void on_drift_timer(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  save_drift(arg);
}

/* The selection settings from `tos`. */
static void select_cfg(const ntsd_conf *conf, ntp_select_cfg *scfg)
{
  ntp_select_cfg_default(scfg);
  scfg->mindist = conf->tos_mindist;
  scfg->maxdist = conf->tos_maxdist;
  scfg->minsane = conf->tos_minsane;
  scfg->minclock = conf->tos_minclock;
  scfg->maxclock = conf->tos_maxclock;
  scfg->authsel = (ntp_authsel)conf->tos_authselect;
  for (size_t i = 0; i < conf->n_sources; i++)
    scfg->auth_configured += conf->sources[i].nts && !conf->sources[i].noselect;
}

/* Copies the core's last decisions into the report (read-only for the
 * control socket) and what the server tells its clients. */
static void publish(ntsd *d)
{
  const ntp_core_sys *cs = ntp_core_get_sys(d->core);
  report_sys *s = &d->sys;
  ntp_disc_info di;
  ntp_core_disc_info(d->core, &di);
  s->synced = cs->synced;
  s->offset = cs->offset;
  s->frequency = cs->frequency;
  s->disc_updates = di.updates;
  s->disc_steps = di.steps;
  s->core_updates = cs->updates;
  s->info = (ntp_sysinfo){.leap = cs->leap, .stratum = cs->stratum, .precision = cs->precision,
                          .refid = cs->refid, .root_delay = cs->root_delay,
                          .root_disp = cs->root_disp};
  if (cs->ref_age >= 0)
    s->info.reftime = ntp_ts_add(clockctl_now_ntp(d->clk), -cs->ref_age);
  peer_view v;
  s->system_peer[0] = '\0';
  if (cs->sys_peer >= 0 && clients_view(d->clients, (size_t)cs->sys_peer, sysclock_mono(), &v))
    snprintf(s->system_peer, sizeof(s->system_peer), "%s", v.address);
  size_t n = clients_count(d->clients);
  for (s->sel_states_n = 0; s->sel_states_n < n && s->sel_states_n < REPORT_MAX_PEERS;
       s->sel_states_n++)
    s->sel_states[s->sel_states_n] = ntp_core_sel_state(d->core, s->sel_states_n);
  ntsd_client_stats cst;
  clients_get_stats(d->clients, &cst);
  s->tx_timestamps = cst.tx_timestamps;
  stats_counts(d->stats, &s->stats_lines, &s->stats_errors);
  if (d->server)
    server_set_sysinfo(d->server, &s->info);
}

/* Usable sources: those selection kept (combined, backup, system peer). */
static size_t usable_sources(const report_sys *s)
{
  size_t n = 0;
  for (size_t i = 0; i < s->sel_states_n; i++)
    n += s->sel_states[i] >= NTP_SEL_CANDIDATE;
  return n;
}

/* The service manager's one-line status: synchronisation, sources, what is
 * served.  Sent only when it changes. */
static void update_status(ntsd *d)
{
  if (!d->notify || !notify_enabled(d->notify))
    return;
  const report_sys *s = &d->sys;
  char sync[sizeof(s->system_peer) + 32], buf[sizeof(sync) + 128];
  if (!s->synced)
    snprintf(sync, sizeof(sync), "not synchronised");
  else if (s->system_peer[0])
    snprintf(sync, sizeof(sync), "synchronised to %s", s->system_peer);
  else
    snprintf(sync, sizeof(sync), "synchronised (stratum %u)", (unsigned)s->info.stratum);
  snprintf(buf, sizeof(buf), "%s; %zu of %zu sources usable; %s%s%s", sync,
           usable_sources(s), clients_count(d->clients),
           d->conf->interface_ignore_all ? "not serving NTP" : "serving NTP",
           !d->ke                            ? ""
           : d->ke_serving                   ? ", NTS-KE"
           : notify_is_ready(d->notify) ? ", NTS-KE process restarting"
                                             : ", NTS-KE process starting",
           clockctl_controls(d->clk) ? "" : "; clock control off");
  notify_status(d->notify, buf);
}

/* Hands every association to the core, applies what it decides, and
 * publishes the result.  Called on each fresh sample and every second;
 * never from a control query. */
static void update_system(ntsd *d)
{
  if (!d->core)
    return; /* not set up yet */
  double now = sysclock_mono();
  size_t n = clients_count(d->clients);
  peer_view v;
  for (size_t i = 0; i < n && i < NTP_CORE_MAX_SOURCES; i++) {
    bool ok = clients_view(d->clients, i, now, &v);
    uint32_t refid = ok && v.sa ? netaddr_refid(v.sa) : 0;
    ntp_core_set_from(d->core, i, ok ? v.src : NULL, ok ? &v.info : NULL, now, refid);
  }
  ntp_core_actions a;
  ntp_core_update(d->core, now, n, &a);
  apply_clock(d, &a, now);
  for (size_t i = 0; i < a.n_poll; i++)
    if (a.poll[i] >= 0)
      clients_set_poll(d->clients, i, a.poll[i]);
  if (a.clock_synced)
    clients_set_synced(d->clients); /* the clock took the time, not only selection */
  update_kernel_status(d, a.leap, a.synced);
  publish(d);
  update_status(d);
}

static void on_update(void *arg) { update_system(arg); }

static void on_reply(void *arg, size_t i, const clients_reply *r)
{
  ntsd *d = arg;
  peer_view v;
  if (d->stats && clients_view(d->clients, i, sysclock_mono(), &v))
    stats_reply(d->stats, i, r, &v, ntp_core_sel_state(d->core, i));
}

static void on_refresh(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  update_system(arg);
}

static void reload(ntsd *d);

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
  ntsd *d = arg;
  (void)what;
  if (sig == SIGHUP) {
    reload(d);
    return;
  }
  log_notice("signal %d: shutting down", (int)sig);
  if (d->notify) {
    char st[48];
    snprintf(st, sizeof(st), "shutting down (signal %d)", (int)sig);
    notify_stopping(d->notify, st);
  }
  event_base_loopexit(d->base, NULL);
}

static void on_key_check(evutil_socket_t fd, short what, void *arg)
{
  ntsd *d = arg;
  (void)fd;
  (void)what;
  uint64_t now = (uint64_t)clockctl_now(d->clk).tv_sec;
  bool due = nts_keyset_due(keystore_current(d->keys), now, (uint64_t)d->conf->nts_rotate);
  /* Shared keys follow the epoch, which no server may postpone. */
  char who[64];
  if (due && d->ke && !keystore_shared(d->keys) &&
      !ke_proc_may_rotate(d->ke, sysclock_mono(), who, sizeof(who))) {
    if (!d->rotation_held)
      log_warn("NTS cookie key rotation postponed: the oldest key may still be in cookies "
               "%s issued (docs/security.md)", who);
    d->rotation_held = true;
    return;
  }
  d->rotation_held = false;
  if (keystore_rotate_if_due(d->keys, now)) {
    d->key_rotations++;
    if (d->ke)
      ke_proc_keys_changed(d->ke);
  }
}

/* A warning when the NTS-KE certificate expires within CERT_WARN_S: at the
 * start, then once a day while it holds (never per KE). */
static void check_cert_expiry(ntsd *d)
{
  if (!d->have_cert)
    return;
  int64_t left = d->cert_not_after - (int64_t)clockctl_now(d->clk).tv_sec;
  if (left <= 0)
    log_warn("NTS-KE certificate %s has expired (notAfter %.1f days ago): clients will "
             "refuse it; renew it", d->conf->nts_cert, (double)-left / 86400);
  else if (left <= CERT_WARN_S)
    log_warn("NTS-KE certificate %s expires in %.1f days; renew it", d->conf->nts_cert,
             (double)left / 86400);
}

static void on_cert_check(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  check_cert_expiry(arg);
}

static void cert_stat(const ntsd_conf *c, cert_files *f)
{
  memset(f, 0, sizeof(*f));
  f->cert_errno = stat(c->nts_cert, &f->cert) < 0 ? errno : 0;
  f->key_errno = stat(c->nts_key, &f->key) < 0 ? errno : 0;
}

/* The change time is left out: a chmod or chown alone is no new pair. */
static bool stat_same(const struct stat *a, const struct stat *b)
{
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
         a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static bool files_same(const cert_files *a, const cert_files *b)
{
  return a->cert_errno == b->cert_errno && a->key_errno == b->key_errno &&
         stat_same(&a->cert, &b->cert) && stat_same(&a->key, &b->key);
}

/* Loads the certificate and key as they are now; if they load and match,
 * a new NTS-KE process serves them (the running one finishes its
 * connections), else the running one goes on with the previous pair. */
static void cert_reload(ntsd *d, const cert_files *now)
{
  char err[320];
  int64_t not_after = 0;
  bool have_not_after = false;
  certpair *pair = certpair_read(d->conf->nts_cert, d->conf->nts_key, err, sizeof(err));
  /* The check forks while packet threads may run: its child only parses
   * and writes to a pipe, touching no lock those threads take. */
  if (!pair || !certpair_check(pair, &not_after, &have_not_after, err, sizeof(err))) {
    certpair_free(pair);
    log_err("NTS certificate or key changed but cannot be used (%s); still serving the "
            "previous pair", err);
    d->cert_refused = true;
    d->cert_bad = *now;
    return;
  }
  d->cert_refused = false;
  d->cert_used = *now;
  /* The old pair goes first: the new KE process, forked with the new one,
   * must not inherit the old key's bytes (the running one has its copy). */
  certpair_free(d->ke_pair);
  d->ke_pair = pair;
  ke_proc_replace(d->ke, pair);
  d->have_cert = have_not_after; /* the metric */
  d->cert_not_after = not_after;
  check_cert_expiry(d); /* warns at once if the new one is close to expiry too */
  log_notice("NTS certificate %s and key %s reloaded", d->conf->nts_cert, d->conf->nts_key);
}

/* Acts on a change once the files have stayed the same for one interval:
 * a renewal that replaces the certificate and then the key is taken
 * whole, not half-way; refused files are not tried again until they
 * change.  On SIGHUP (now_or_never) at once, refused files too: the
 * operator says the renewal is done, or has fixed what was refused (a
 * chmod alone is not seen as a change). */
static void cert_watch(ntsd *d, bool now_or_never)
{
  cert_files now;
  cert_stat(d->conf, &now);
  /* After -u the files may be out of the user's sight (a directory only
   * root may search): nothing can be seen to change, and the pair loaded
   * as root keeps serving.  SIGHUP still tries, and says why it fails. */
  if (!now_or_never && (now.cert_errno == EACCES || now.key_errno == EACCES)) {
    if (!d->cert_blind)
      log_notice("NTS certificate or key not visible to this user (%s): renewals are not "
                 "noticed until a restart (docs/reload.md)",
                 strerror(EACCES));
    d->cert_blind = true;
    return;
  }
  d->cert_blind = false;
  bool stable = now_or_never || files_same(&now, &d->cert_seen);
  d->cert_seen = now;
  if (files_same(&now, &d->cert_used) ||
      (!now_or_never && d->cert_refused && files_same(&now, &d->cert_bad)))
    return;
  if (stable)
    cert_reload(d, &now);
}

static void on_cert_watch(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  cert_watch(arg, false);
}

/* ---- SIGHUP: the configuration again (docs/reload.md) ------------------- */

typedef struct reload_diag {
  unsigned errors;
} reload_diag;

static void on_reload_diag(void *arg, bool is_error, const char *msg)
{
  reload_diag *r = arg;
  r->errors += is_error;
  if (is_error)
    log_err("reload: %s", msg);
  else
    log_warn("reload: %s (warning)", msg);
}

static bool listens_same(const ntsd_conf *a, const ntsd_conf *b)
{
  if (a->n_listens != b->n_listens || a->interface_ignore_all != b->interface_ignore_all)
    return false;
  for (size_t i = 0; i < a->n_listens; i++)
    if (strcmp(a->listens[i].addr, b->listens[i].addr) ||
        a->listens[i].port != b->listens[i].port || a->listens[i].tcp != b->listens[i].tcp)
      return false;
  return true;
}

static bool restricts_same(const ntsd_conf *a, const ntsd_conf *b)
{
  if (a->n_restricts != b->n_restricts)
    return false;
  for (size_t i = 0; i < a->n_restricts; i++) {
    const conf_restrict *x = &a->restricts[i], *y = &b->restricts[i];
    if (x->fam != y->fam || x->is_default != y->is_default || x->is_source != y->is_source ||
        memcmp(x->addr, y->addr, sizeof(x->addr)) || x->prefix != y->prefix ||
        x->flags != y->flags || x->unrestrict != y->unrestrict)
      return false;
  }
  return true;
}

static bool ntpservers_same(const ntsd_conf *a, const ntsd_conf *b)
{
  if (a->n_nts_ntpserver != b->n_nts_ntpserver)
    return false;
  for (size_t i = 0; i < a->n_nts_ntpserver; i++)
    if (strcmp(a->nts_ntpserver[i], b->nts_ntpserver[i]))
      return false;
  return true;
}

static bool filegens_same(const ntsd_conf *a, const ntsd_conf *b)
{
  for (int i = 0; i < CONF_STATS_N; i++) {
    const conf_filegen *x = &a->filegen[i], *y = &b->filegen[i];
    if (x->enabled != y->enabled || x->daily != y->daily || x->link != y->link ||
        strcmp(x->file, y->file))
      return false;
  }
  return true;
}

/* Settings a reload does not apply: each that changed is named once. */
static void log_not_applied(const ntsd_conf *o, const ntsd_conf *n)
{
  struct {
    const char *what;
    bool same;
  } t[] = {
      {"listen / interface", listens_same(o, n)},
      {"nts enable / nts-listen-on / nts ntpserver / nts cookie / nts cookie-secret / "
       "nts rotate",
       o->nts_enable == n->nts_enable && !strcmp(o->nts_listen, n->nts_listen) &&
           ntpservers_same(o, n) && !strcmp(o->nts_cookie, n->nts_cookie) &&
           !strcmp(o->nts_cookie_secret, n->nts_cookie_secret) && o->nts_rotate == n->nts_rotate},
      {"nts cert / nts key (file names)",
       !strcmp(o->nts_cert, n->nts_cert) && !strcmp(o->nts_key, n->nts_key)},
      {"nts ca / nocerttimecheck",
       !strcmp(o->nts_ca, n->nts_ca) && o->nocerttimecheck == n->nocerttimecheck},
      {"tos / tinker / local stratum",
       o->tos_minsane == n->tos_minsane && o->tos_minclock == n->tos_minclock &&
           o->tos_maxclock == n->tos_maxclock && o->tos_mindist == n->tos_mindist &&
           o->tos_maxdist == n->tos_maxdist && o->tos_authselect == n->tos_authselect &&
           o->tinker_step == n->tinker_step && o->tinker_stepout == n->tinker_stepout &&
           o->tinker_panic == n->tinker_panic && o->local_stratum == n->local_stratum},
      {"discard", o->discard_average == n->discard_average &&
                      o->discard_minimum == n->discard_minimum},
      {"threads", o->threads == n->threads},
      {"ntsprocesses", o->nts_processes == n->nts_processes},
      {"driftfile / disable ntp",
       !strcmp(o->driftfile, n->driftfile) && o->clock_control == n->clock_control},
      {"logfile / logconfig / logfacility / metrics",
       !strcmp(o->logfile, n->logfile) && o->logmask == n->logmask &&
           o->logfacility == n->logfacility && !strcmp(o->metrics, n->metrics)},
      {"statsdir / statistics / filegen",
       !strcmp(o->statsdir, n->statsdir) && filegens_same(o, n)},
      {"controlsocket / user / sandbox",
       !strcmp(o->control_socket, n->control_socket) &&
           !strcmp(o->control_group, n->control_group) && !strcmp(o->user, n->user) &&
           o->sandbox == n->sandbox},
  };
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
    if (!t[i].same)
      log_warn("reload: %s changed: not applied until a restart", t[i].what);
}

/* New `restrict` lines: the table the NTP server, NTP over TCP and the
 * main process borrow is refilled in place; the NTS-KE process, which has
 * its own copy since its fork, is replaced by one forked with the new
 * table (the old one finishes its connections under the old rules). */
static void apply_restricts(ntsd *d, ntsd_conf *nc)
{
  if (restricts_same(d->conf, nc))
    return;
  char err[160];
  ntp_acl *acl = ntp_acl_create();
  if (!acl || !fill_acl(acl, nc, err, sizeof(err))) {
    log_err("reload: restrict not applied (%s); the previous rules stay",
            acl ? err : "out of memory");
    ntp_acl_destroy(acl);
    return;
  }
  server_pause(d->server); /* its threads read the table */
  ntp_acl_swap(d->acl, acl);
  server_resume(d->server);
  ntp_acl_destroy(acl); /* the previous entries */
  conf_restrict *r = d->conf->restricts;
  size_t n = d->conf->n_restricts;
  d->conf->restricts = nc->restricts;
  d->conf->n_restricts = nc->n_restricts;
  nc->restricts = r;
  nc->n_restricts = n;
  log_notice("reload: restrict applied (%zu entries)", ntp_acl_count(d->acl));
  if (d->ke)
    ke_proc_replace(d->ke, d->ke_pair);
}

/* The new file's sources replace the running ones (the rest of the running
 * configuration stays, as the parts of the daemon set up from it hold it). */
static void apply_sources(ntsd *d, ntsd_conf *nc)
{
  clients_change ch;
  if (!clients_reconfigure(d->clients, nc->sources, nc->n_sources, &ch))
    log_err("reload: out of memory: some sources may be missing");
  conf_source *s = d->conf->sources;
  size_t n = d->conf->n_sources;
  d->conf->sources = nc->sources; /* what the daemon reports from now on */
  d->conf->n_sources = nc->n_sources;
  nc->sources = s; /* freed with nc */
  nc->n_sources = n;
  log_notice("reload: sources: %zu kept, %zu removed, %zu added", ch.kept, ch.removed,
             ch.added);
}

/* SIGHUP: reads the configuration file again.  A file with an error is
 * refused whole (each error logged with file:line) and the running
 * configuration stays.  Otherwise the sources are applied; settings that
 * need a restart are named; the NTS certificate and key are looked at. */
static void reload(ntsd *d)
{
  const char *path = d->opts.conf_path;
  if (d->notify)
    notify_reloading(d->notify);
  log_notice("SIGHUP: reloading %s", path ? path : "(no file)");
  ntsd_conf *nc = path ? conf_new() : NULL;
  reload_diag rd = {0};
  if (nc && (conf_load_file(nc, path, on_reload_diag, &rd) != 0 || rd.errors)) {
    log_err("reload: %s refused (%u error%s); the running configuration stays", path,
            rd.errors, rd.errors == 1 ? "" : "s");
  } else if (nc) {
    log_not_applied(d->conf, nc);
    apply_restricts(d, nc);
    apply_sources(d, nc);
    update_system(d);
  }
  conf_free(nc);
  if (d->ke)
    cert_watch(d, true);
  if (d->notify)
    notify_reloaded(d->notify);
}

/* In the NTS-KE process, right after fork: it gets only the current key,
 * over its socket; the ring of the main process goes (wiped). */
static void forget_in_child(void *arg)
{
  ntsd *d = arg;
  keystore_close(d->keys);
  d->keys = NULL;
}

/* The NTS-KE process serves (it reported) or ended.  The daemon is ready
 * once it serves; should it end before, NTP is served all the same, so the
 * daemon says it is ready, with the status telling what is missing. */
static void on_ke_state(void *arg, bool serving)
{
  ntsd *d = arg;
  d->ke_serving = serving;
  if (d->notify && !serving) /* first, so the status says "restarting" */
    notify_ready(d->notify);
  update_status(d);
  if (d->notify && serving)
    notify_ready(d->notify);
}

/* The NTP port our KE server advertises: the first `listen` port. */
static uint16_t our_ntp_port(const ntsd_conf *conf)
{
  return conf->n_listens && conf->listens[0].port ? conf->listens[0].port : NTP_PORT;
}

/* The NTP over TCP port our KE server advertises: the first `listen ... tcp`
 * line's; 0 when NTP over TCP is not served. */
static uint16_t our_ntp_tcp_port(const ntsd_conf *conf)
{
  for (size_t i = 0; i < conf->n_listens && !conf->interface_ignore_all; i++)
    if (conf->listens[i].tcp)
      return conf->listens[i].port ? conf->listens[i].port : NTP_PORT;
  return 0;
}

/* The cookie keys: from `nts cookie-secret` (derived, shared with other
 * servers), else random ones (kept in `nts cookie FILE` if given); and
 * their rotation check. */
static bool setup_cookie_keys(ntsd *d, char *err, size_t errlen)
{
  const ntsd_conf *c = d->conf;
  uint64_t now = (uint64_t)clockctl_now(d->clk).tv_sec;
  if (c->nts_cookie_secret[0] && c->nts_cookie[0]) {
    snprintf(err, errlen, "nts cookie-secret and nts cookie exclude each other: derived "
             "keys are never saved (docs/nts-cookies.md)");
    return false;
  }
  d->keys = c->nts_cookie_secret[0]
                ? keystore_open_shared(c->nts_cookie_secret, (uint64_t)c->nts_rotate, now, err,
                                       errlen)
                : keystore_open(c->nts_cookie, (uint64_t)c->nts_rotate, now, err, errlen);
  if (!d->keys)
    return false;
  struct timeval tv = {.tv_sec = keystore_check_interval(d->keys)};
  d->key_check = event_new(d->base, -1, EV_PERSIST, on_key_check, d);
  if (!d->key_check || event_add(d->key_check, &tv) < 0) {
    snprintf(err, errlen, "cannot register events");
    return false;
  }
  return true;
}

/* `nts enable`: TLS context, cookie keys, and the KE process's sockets.
 * Without it, `nts cookie-secret` alone makes an NTS NTP server for cookies
 * that other servers' NTS-KE issued. */
/* Around each fork of an NTS-KE process: the packet threads leave their
 * batch and wait, so none holds the C library's log lock (or any other)
 * in the child's copy of the process. */
static void hold_threads(void *arg, bool hold)
{
  ntsd *d = arg;
  if (!d->server)
    return;
  if (hold)
    server_pause(d->server);
  else
    server_resume(d->server);
}

static bool setup_nts_server(ntsd *d, char *err, size_t errlen)
{
  const ntsd_conf *c = d->conf;
  if (!c->nts_enable)
    return !c->nts_cookie_secret[0] || setup_cookie_keys(d, err, errlen);
  if (!c->nts_cert[0] || !c->nts_key[0]) {
    snprintf(err, errlen, "nts enable needs `nts cert FILE` and `nts key FILE`");
    return false;
  }
  cert_stat(c, &d->cert_used); /* before reading: a change while reading is seen */
  d->cert_seen = d->cert_used;
  d->ke_pair = certpair_read(c->nts_cert, c->nts_key, err, errlen);
  if (!d->ke_pair ||
      !certpair_check(d->ke_pair, &d->cert_not_after, &d->have_cert, err, errlen))
    return false;
  /* The main process keeps the files' bytes for the KE processes it forks
   * and parses nothing itself: the check (a short-lived child) refused a
   * bad pair here, before privileges drop, and gave the notAfter for the
   * expiry warning and the metric. */
  struct timeval day = {.tv_sec = CERT_CHECK_S};
  d->cert_check = event_new(d->base, -1, EV_PERSIST, on_cert_check, d);
  struct timeval watch = {.tv_sec = CERT_WATCH_S};
  d->cert_watch = event_new(d->base, -1, EV_PERSIST, on_cert_watch, d);
  if (!d->cert_check || event_add(d->cert_check, &day) < 0 || !d->cert_watch ||
      event_add(d->cert_watch, &watch) < 0) {
    snprintf(err, errlen, "cannot register events");
    return false;
  }
  if (!setup_cookie_keys(d, err, errlen))
    return false;
  ke_server_cfg kc = {.listen = c->nts_listen, .acl = d->acl,
                      .ntp_port = our_ntp_port(c), .ntp_tcp_port = our_ntp_tcp_port(c),
                      .n_ntp_servers = c->n_nts_ntpserver,
                      .timeout = KE_TIMEOUT_S, .max_connections = KE_MAX_CONNECTIONS};
  /* A key leaves the ring 7 rotations after it was current; the gate holds
   * 6 periods after the KE process took its successor, so it only ever
   * delays a rotation when that process lags or is down. */
  _Static_assert(CONF_NTPSERVER_MAX == KE_MAX_NTP_SERVERS, "nts ntpserver lines");
  for (size_t i = 0; i < c->n_nts_ntpserver; i++)
    kc.ntp_servers[i] = c->nts_ntpserver[i];
  _Static_assert(CONF_NTSPROCS_MAX == KE_PROC_MAX, "ntsprocesses");
  ke_proc_cfg pc = {.base = d->base, .server = kc, .processes = (unsigned)c->nts_processes,
                    .pair = d->ke_pair, .keys = d->keys,
                    .cookie_lifetime = (NTS_COOKIE_RING - 2) * (double)c->nts_rotate,
                    .forget = forget_in_child, .forget_arg = d,
                    .fork_hold = hold_threads, .fork_hold_arg = d,
                    .on_state = on_ke_state, .state_arg = d};
  sandbox_set_level(&pc.sandbox, c->sandbox); /* `sandbox`, or -F over it */
  d->ke = ke_proc_create(&pc, err, errlen);
  return d->ke != NULL;
}

/* The engine's settings: `tos`, `local stratum`, our precision. */
static void core_cfg(ntsd *d, ntp_core_cfg *cc)
{
  ntp_core_default_cfg(cc);
  select_cfg(d->conf, &cc->select);
  cc->local_stratum = d->conf->local_stratum;
  cc->precision = d->precision;
  cc->precision_log2 = (int8_t)d->precision_log2;
  cc->disc.precision = d->precision;
  cc->on_feed = on_feed;
  cc->on_feed_arg = d;
}

/* The clock backend, opened before anything that reads the time. */
static bool open_clock(ntsd *d, char *err, size_t errlen)
{
  bool control = d->conf->clock_control && !d->opts.no_clock;
  clockctl_cfg cc = {.kind = d->opts.virtual_clock ? CLOCKCTL_VIRTUAL
                             : control             ? CLOCKCTL_SYSTEM
                                                   : CLOCKCTL_NONE,
                     .virtual_offset = d->opts.virtual_offset,
                     .virtual_freq_ppm = d->opts.virtual_freq_ppm};
  d->clk = clockctl_open(&cc, err, errlen);
  return d->clk != NULL;
}

/* Clock control: the system clock and the discipline, or estimates only
 * (-x, `disable ntp`). */
static bool setup_clock(ntsd *d, char *err, size_t errlen)
{
  d->kernel_leap = -1;
  ntp_core_cfg cc;
  core_cfg(d, &cc);
  ntp_disc_cfg cfg = cc.disc;
  if (!clockctl_controls(d->clk)) {
    /* The discipline still runs, estimating only: the offset and frequency
     * it reports are those of the untouched clock. */
    cc.disc.estimate_only = true;
    d->core = ntp_core_create(&cc, sysclock_mono());
    if (!d->core) {
      snprintf(err, errlen, "out of memory");
      return false;
    }
    log_notice("clock control off: estimates only, the system clock is never adjusted");
    return true;
  }
  if (d->conf->tinker_step >= 0)
    cfg.step_threshold = d->conf->tinker_step;
  if (d->conf->tinker_stepout >= 0)
    cfg.stepout = d->conf->tinker_stepout;
  if (d->conf->tinker_panic >= 0)
    cfg.panic_threshold = d->conf->tinker_panic;
  char e[160];
  if (d->conf->driftfile[0] && !(d->drift = driftfile_create(d->conf->driftfile))) {
    snprintf(err, errlen, "out of memory");
    return false;
  }
  if (d->drift) {
    if (driftfile_read(d->conf->driftfile, &cfg.initial_freq_ppm, e, sizeof(e))) {
      cfg.initial_freq_known = true;
      log_info("driftfile %s: %+.3f ppm", d->conf->driftfile, cfg.initial_freq_ppm);
    } else {
      log_notice("driftfile %s: %s; measuring the frequency from scratch",
                 d->conf->driftfile, e);
    }
  }
  cc.disc = cfg;
  d->core = ntp_core_create(&cc, sysclock_mono());
  d->slew_timer = evtimer_new(d->base, on_slew_done, d);
  d->drift_timer = event_new(d->base, -1, EV_PERSIST, on_drift_timer, d);
  struct timeval tv = {.tv_sec = DRIFT_SAVE_S};
  if (!d->core || !d->slew_timer || !d->drift_timer || event_add(d->drift_timer, &tv) < 0) {
    snprintf(err, errlen, "out of memory");
    return false;
  }
  clockctl_set_freq(d->clk, cfg.initial_freq_ppm);
  log_notice("clock control on (%s clock): %s discipline", clockctl_name(d->clk),
             ntp_disc_algo_name(cfg.algo));
  return true;
}

/* A query reads the last snapshot and the associations' own state: it
 * never runs the core, so it cannot feed the discipline or step the clock. */
static char *on_control(void *arg, ctl_cmd cmd, const ctl_opts *opts)
{
  ntsd *d = arg;
  bool json = opts->json;
  double now = sysclock_mono();
  switch (cmd) {
  case CTL_PEERS: return report_peers(d->clients, &d->sys, now, json, opts->numeric);
  case CTL_SERVER: return report_server(d->server, json);
  case CTL_SYS: return report_system(&d->sys, d->clk, json);
  case CTL_NTS: {
    ke_server_stats ks;
    if (d->ke)
      ke_proc_get_stats(d->ke, &ks);
    return report_nts(d->clients, d->ke ? &ks : NULL, d->ke ? ke_proc_address(d->ke) : NULL,
                      d->ke ? ke_proc_count(d->ke) : 0, d->server, json);
  }
  }
  return NULL;
}

/* A scrape: the same snapshot and counters the control socket reports. */
static char *on_metrics(void *arg, bool openmetrics, size_t *len)
{
  ntsd *d = arg;
  ke_server_stats ks;
  if (d->ke)
    ke_proc_get_stats(d->ke, &ks);
  report_metrics_in in = {.clients = d->clients, .sys = &d->sys, .server = d->server,
                          .ke = d->ke ? &ks : NULL, .key_rotations = d->key_rotations,
                          .ke_procs = d->ke ? ke_proc_count(d->ke) : 0,
                          .ke_serving = d->ke ? ke_proc_serving(d->ke) : 0,
                          .have_cert = d->have_cert, .cert_not_after = (double)d->cert_not_after,
                          .mono_now = sysclock_mono()};
  struct timespec now = clockctl_now(d->clk);
  in.wall_now = (double)now.tv_sec + now.tv_nsec * 1e-9;
  if (d->keys) {
    in.have_keys = true;
    in.key_age = in.wall_now - (double)nts_keyset_current_created(keystore_current(d->keys));
  }
  return report_metrics(&in, openmetrics, len);
}

/* `metrics ADDR:PORT`: the listening socket is opened here, as root. */
static bool setup_metrics(ntsd *d, char *err, size_t errlen)
{
  if (!d->conf->metrics[0])
    return true;
  metrics_cfg mc = {.base = d->base, .listen = d->conf->metrics, .render = on_metrics,
                    .arg = d};
  d->metrics = metrics_create(&mc, err, errlen);
  return d->metrics != NULL;
}

static bool add_signal(ntsd *d, struct event **ev, int sig)
{
  *ev = evsignal_new(d->base, sig, on_signal, d);
  return *ev && event_add(*ev, NULL) == 0;
}

static bool setup_control(ntsd *d, char *err, size_t errlen)
{
  const char *path = d->opts.socket_path;
  if (!path || !*path)
    path = d->conf->control_socket[0] ? d->conf->control_socket : CONTROL_DEFAULT_SOCKET;
  if (strcmp(path, CONTROL_DEFAULT_SOCKET) == 0)
    mkdir("/run/ntsd", 0755); /* may exist already */
  d->control = control_create(d->base, path, d->conf->control_group, on_control, d, err, errlen);
  return d->control != NULL;
}

/* The NTP server, with its part of the configuration. */
static bool setup_server(ntsd *d, char *err, size_t errlen)
{
  const ntsd_conf *conf = d->conf;
  server_cfg sc = {.base = d->base, .acl = d->acl, .keys = d->keys, .clk = d->clk,
                   .listens = conf->listens, .n_listens = conf->n_listens,
                   .no_sockets = conf->interface_ignore_all,
                   .discard_average = conf->discard_average,
                   .discard_minimum = conf->discard_minimum,
                   .precision_log2 = d->precision_log2, .threads = conf->threads};
  d->server = server_create(&sc, err, errlen);
  if (d->server && d->keys) /* the packet threads read the keys */
    keystore_set_grace(d->keys, server_quiesce, d->server);
  return d->server != NULL;
}

/* The upstream associations, with their part of the configuration. */
static bool setup_clients(ntsd *d, char *err, size_t errlen)
{
  const ntsd_conf *conf = d->conf;
  clients_cfg cc = {.base = d->base, .dns = d->dns, .clk = d->clk, .sources = conf->sources,
                    .n_sources = conf->n_sources, .nts_ca = conf->nts_ca,
                    .nocerttimecheck = conf->nocerttimecheck, .precision = d->precision,
                    .update = on_update, .update_arg = d, .on_reply = on_reply};
  d->stats = stats_create(conf, d->clk); /* files open at their first line */
  d->clients = clients_create(&cc);
  if (!d->clients)
    snprintf(err, errlen, "cannot create client associations");
  return d->clients != NULL;
}

ntsd *ntsd_create(ntsd_conf *conf, const ntsd_opts *opts, char *err, size_t errlen)
{
  ntsd *d = calloc(1, sizeof(*d));
  if (!d) {
    conf_free(conf);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  d->conf = conf;
  d->opts = *opts;
  signal(SIGPIPE, SIG_IGN);
  d->precision = sysclock_precision(&d->precision_log2);
  d->base = event_base_new();
  if (!d->base) {
    snprintf(err, errlen, "cannot create event loop");
    goto fail;
  }
  if (!open_clock(d, err, errlen) || !build_acl(d, err, errlen))
    goto fail;
  if (!setup_nts_server(d, err, errlen))
    goto fail;
  if (!setup_server(d, err, errlen))
    goto fail;
  d->dns = evdns_base_new(d->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                       EVDNS_BASE_NAMESERVERS_NO_DEFAULT);
  if (!d->dns) {
    /* No usable resolv.conf: address literals and /etc/hosts only. */
    d->dns = evdns_base_new(d->base, 0);
    if (d->dns)
      evdns_base_load_hosts(d->dns, NULL);
  }
  if (!d->dns) {
    snprintf(err, errlen, "cannot create DNS resolver");
    goto fail;
  }
  if (!setup_control(d, err, errlen) || !setup_metrics(d, err, errlen))
    goto fail;
  if (!setup_clients(d, err, errlen))
    goto fail;
  struct timeval tv = {.tv_sec = SYS_REFRESH_S};
  d->refresh = event_new(d->base, -1, EV_PERSIST, on_refresh, d);
  if (!d->refresh || event_add(d->refresh, &tv) < 0 || !add_signal(d, &d->sig_int, SIGINT) ||
      !add_signal(d, &d->sig_term, SIGTERM) || !add_signal(d, &d->sig_hup, SIGHUP)) {
    snprintf(err, errlen, "cannot register events");
    goto fail;
  }
  if (!setup_clock(d, err, errlen))
    goto fail;
  update_system(d);
  return d;
fail:
  ntsd_destroy(d);
  return NULL;
}

bool ntsd_daemonize(ntsd *d, char *err, size_t errlen)
{
  /* Opened before the fork: without it the daemon would keep the caller's
   * terminal or pipes as its standard streams, and the caller would see a
   * successful start of a daemon that is not detached. */
  int fd = open("/dev/null", O_RDWR);
  if (fd < 0) {
    snprintf(err, errlen, "cannot detach: /dev/null: %s", strerror(errno));
    return false;
  }
  pid_t pid = fork();
  if (pid < 0) {
    snprintf(err, errlen, "cannot detach: fork: %s", strerror(errno));
    close(fd);
    return false;
  }
  if (pid > 0)
    _exit(0);
  /* from here on the caller is gone: errors reach the log only */
  bool ok = setsid() >= 0 && chdir("/") == 0 && dup2(fd, 0) == 0 && dup2(fd, 1) == 1 &&
            dup2(fd, 2) == 2;
  if (!ok)
    snprintf(err, errlen, "cannot detach from the terminal: %s", strerror(errno));
  if (fd > 2)
    close(fd);
  if (!ok)
    return false;
  return event_reinit(d->base) == 0;
}

/* Everything is set up, the privileges dropped and the filter loaded: the
 * service manager hears from the daemon from here on (docs/systemd.md). */
int ntsd_run(ntsd *d, int priority)
{
  d->notify = notify_create(d->base);
  if (!d->notify)
    log_warn("out of memory: the service manager will not be notified");
  char err[256];
  if (!server_start(d->server, priority, err, sizeof(err))) {
    log_err("%s", err);
    return 1;
  }
  bool ke_started = d->ke && ke_proc_start(d->ke);
  if (d->ke && !ke_started)
    log_err("cannot start the NTS-KE process; retrying");
  log_notice("ntsd %s running", NTSD_VERSION);
  check_cert_expiry(d);
  update_status(d);
  /* Without an NTS-KE server the sockets serve already; with one, its
   * process's first report (on_ke_state) makes the daemon ready. */
  if (d->notify && !ke_started)
    notify_ready(d->notify);
  event_base_dispatch(d->base);
  return 0;
}

void ntsd_destroy(ntsd *d)
{
  if (!d)
    return;
  ke_proc_stop(d->ke); /* ends the KE process before anything it uses goes */
  notify_destroy(d->notify);
  clients_destroy(d->clients);
  control_destroy(d->control);
  metrics_destroy(d->metrics);
  server_destroy(d->server);
  if (d->dns)
    evdns_base_free(d->dns, 0);
  save_drift(d);
  driftfile_destroy(d->drift);
  stats_destroy(d->stats);
  ntp_core_destroy(d->core);
  clockctl_close(d->clk);
  keystore_close(d->keys);
  certpair_free(d->ke_pair);
  struct event *evs[] = {d->sig_int, d->sig_term, d->sig_hup, d->refresh, d->key_check,
                         d->cert_check, d->cert_watch, d->slew_timer, d->drift_timer};
  for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
    if (evs[i])
      event_free(evs[i]);
  if (d->base)
    event_base_free(d->base);
  ntp_acl_destroy(d->acl);
  conf_free(d->conf);
  free(d);
}
