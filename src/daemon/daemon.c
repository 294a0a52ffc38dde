/* daemon: wiring and the system state. */
#include "daemon/daemon.h"

#include <event2/dns.h>
#include <event2/event.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/client.h"
#include "daemon/clockctl.h"
#include "daemon/control.h"
#include "daemon/driftfile.h"
#include "daemon/ke_server.h"
#include "daemon/keystore.h"
#include "daemon/log.h"
#include "daemon/report.h"
#include "daemon/server.h"
#include "daemon/sysclock.h"
#include "daemon/tls.h"
#include "proto/acl.h"
#include "proto/discipline.h"
#include "proto/select.h"

#define SYS_REFRESH_S 1 /* how often system variables are recomputed */
#define DRIFT_SAVE_S 3600 /* drift file written about hourly */
#define KE_TIMEOUT_S 2.0
#define KE_MAX_CONNECTIONS 256

struct ntsd {
  ntsd_conf *conf;
  ntsd_opts opts;
  struct event_base *base;
  struct evdns_base *dns;
  ntp_acl *acl;
  ntsd_server *server;
  ntsd_clients *clients;
  ntsd_control *control;
  struct event *sig_int, *sig_term, *sig_hup, *refresh, *key_check;
  SSL_CTX *ke_ctx;
  clockctl *clk;
  ntp_disc *disc;          /* estimating only without clock control (-x) */
  double fed[REPORT_MAX_PEERS]; /* per source: measurement time last fed to it */
  ntp_disc_sample feed_buf[REPORT_MAX_PEERS * NTP_FILTER_LEN]; /* feed_discipline() */
  struct event *slew_timer, *drift_timer;
  driftfile *drift;        /* `driftfile`, with clock control */
  int kernel_leap;         /* last leap/sync state given to the kernel */
  bool kernel_synced;
  keystore *keys;
  ke_server *ke;
  double precision;
  int precision_log2;
  report_sys sys;
};

static bool build_acl(ntsd *d, char *err, size_t errlen)
{
  d->acl = ntp_acl_create();
  if (!d->acl) {
    snprintf(err, errlen, "out of memory");
    return false;
  }
  for (size_t i = 0; i < d->conf->n_restricts; i++) {
    const conf_restrict *r = &d->conf->restricts[i];
    if (r->is_source)
      continue; /* applies to our own servers' associations, not to clients */
    bool ok = true;
    if (r->is_default) {
      static const uint8_t zero[16];
      if (r->fam != CONF_FAM_6)
        ok &= ntp_acl_set(d->acl, ACL_INET, zero, 0, r->flags, r->unrestrict);
      if (r->fam != CONF_FAM_4)
        ok &= ntp_acl_set(d->acl, ACL_INET6, zero, 0, r->flags, r->unrestrict);
    } else {
      enum acl_family fam = r->fam == CONF_FAM_6 ? ACL_INET6 : ACL_INET;
      ok = ntp_acl_set(d->acl, fam, r->addr, r->prefix, r->flags, r->unrestrict);
    }
    if (!ok) {
      snprintf(err, errlen, "restrict on line %u: cannot add entry", r->line);
      return false;
    }
  }
  return true;
}

/* Applies a discipline decision to the clock backend; true if it stepped. */
static bool apply_action(ntsd *d, const ntp_disc_action *a, double now)
{
  bool stepped = false;
  if (a->refused_panic)
    log_err("offset beyond the panic threshold: not correcting the clock (is the time "
            "wildly wrong? set it by hand, or raise the threshold)");
  if (a->step != 0.0) {
    log_notice("stepping the clock by %+.6f s%s", a->step, a->startup ? " (start-up)" : "");
    if (clockctl_step(d->clk, a->step)) {
      clients_clock_stepped(d->clients);
      memset(d->fed, 0, sizeof(d->fed));
      stepped = true;
    }
  }
  clockctl_set_freq(d->clk, a->freq_ppm);
  if (!d->slew_timer)
    return stepped; /* estimating only: nothing to slew */
  evtimer_del(d->slew_timer);
  if (isfinite(a->slew_until) && a->slew_until > now) {
    double w = a->slew_until - now;
    struct timeval tv = {.tv_sec = (time_t)w, .tv_usec = (suseconds_t)((w - floor(w)) * 1e6)};
    evtimer_add(d->slew_timer, &tv);
  }
  return stepped;
}

/* Feeds the discipline every selection survivor's samples not fed yet,
 * each with the time it was measured and an error from its delay, oldest
 * first (docs/discipline.md: every sample, weighted, not only the
 * filter's minimum-delay output, and no averaging of samples taken at
 * different times).  An unauthenticated survivor's sample must agree with
 * the authenticated sources on its own (ntp_select_sample_agrees). */
static void feed_discipline(ntsd *d, const ntp_sel_state *states, size_t n,
                            const ntp_select_result *res, const ntp_select_cfg *scfg, double now)
{
  ntp_disc_sample *in = d->feed_buf;
  int poll[REPORT_MAX_PEERS];
  size_t m = 0;
  peer_view v;
  for (size_t i = 0; i < n && i < REPORT_MAX_PEERS; i++) {
    bool survivor = states[i] == NTP_SEL_SYSPEER || states[i] == NTP_SEL_CANDIDATE ||
                    states[i] == NTP_SEL_BACKUP;
    if (!survivor || !clients_view(d->clients, i, now, &v) || !v.src)
      continue;
    poll[i] = v.info.poll;
    ntp_filter_raw raw[NTP_FILTER_LEN];
    int k = ntp_source_samples(v.src, d->fed[i] + 1e-6, raw, NTP_FILTER_LEN);
    for (int j = 0; j < k; j++)
      if (ntp_select_sample_agrees(res, scfg, &v.info,
                                   ntp_disc_predict(d->disc, raw[j].offset, raw[j].t, now),
                                   raw[j].delay))
        in[m++] = (ntp_disc_sample){.taken = raw[j].t, .offset = raw[j].offset,
                                    .error = raw[j].error, .delay = raw[j].delay,
                                    .path = (int)i};
  }
  ntp_disc_sort_samples(in, m);
  for (size_t k = 0; k < m; k++) {
    size_t i = (size_t)in[k].path;
    d->fed[i] = in[k].taken;
    ntp_disc_action a = ntp_disc_feed(d->disc, now, &in[k], poll[i]);
    if (log_enabled(LOG_LVL_DEBUG))
      log_debug("discipline: source %zu sample %.6f s ago: offset %+.9f delay %.9f error %.9f"
                " -> frequency %+.4f ppm, offset now %+.9f",
                i, now - in[k].taken, in[k].offset, in[k].delay, in[k].error, a.base_freq_ppm,
                ntp_disc_offset_now(d->disc, now));
    if (apply_action(d, &a, now))
      return; /* the sources start over after a step */
  }
  for (size_t i = 0; i < n && i < REPORT_MAX_PEERS; i++) {
    int poll_adv = ntp_disc_poll(d->disc, (int)i);
    if (poll_adv >= 0)
      clients_set_poll(d->clients, i, poll_adv);
  }
}

static void on_slew_done(evutil_socket_t fd, short what, void *arg)
{
  ntsd *d = arg;
  (void)fd;
  (void)what;
  double now = sysclock_mono();
  ntp_disc_action a = ntp_disc_tick(d->disc, now);
  apply_action(d, &a, now);
}

/* Tells the kernel about leap seconds and synchronisation, on changes. */
static void update_kernel_status(ntsd *d, int leap, bool synced)
{
  if (!d->disc || !clockctl_controls(d->clk) ||
      (leap == d->kernel_leap && synced == d->kernel_synced))
    return;
  if (clockctl_set_status(d->clk, leap == NTP_LEAP_UNSYNC ? 0 : leap, synced)) {
    d->kernel_leap = leap;
    d->kernel_synced = synced;
    if (leap == NTP_LEAP_INSERT || leap == NTP_LEAP_DELETE)
      log_notice("leap second %s announced by the sources; armed in the kernel",
                 leap == NTP_LEAP_INSERT ? "insertion" : "deletion");
  }
}

static void save_drift(ntsd *d)
{
  ntp_disc_info di;
  if (!d->disc || !clockctl_controls(d->clk) || !d->drift)
    return;
  ntp_disc_get_info(d->disc, &di);
  if (di.synced)
    driftfile_save(d->drift, di.freq_ppm); /* a failure is logged once */
}

static void on_drift_timer(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  save_drift(arg);
}

/* True once the discipline has corrected the clock (or, estimating only,
 * taken a sample): a panic refusal leaves it false. */
static bool disc_synced(const ntp_disc *disc)
{
  ntp_disc_info di;
  ntp_disc_get_info(disc, &di);
  return di.synced;
}

/* Recomputes selection and the system variables served to our clients. */
/* The selection settings from `tos`. */
static void select_cfg(const ntsd *d, ntp_select_cfg *scfg)
{
  ntp_select_cfg_default(scfg);
  scfg->mindist = d->conf->tos_mindist;
  scfg->maxdist = d->conf->tos_maxdist;
  scfg->minsane = d->conf->tos_minsane;
  scfg->minclock = d->conf->tos_minclock;
  scfg->maxclock = d->conf->tos_maxclock;
  scfg->authsel = (ntp_authsel)d->conf->tos_authselect;
  for (size_t i = 0; i < d->conf->n_sources; i++)
    scfg->auth_configured += d->conf->sources[i].nts && !d->conf->sources[i].noselect;
}

/* Runs selection over every association into states[0..n) and *res;
 * returns the system peer's index or -1. */
static int run_selection(ntsd *d, double now, const ntp_select_cfg *scfg,
                         ntp_source_info *infos, ntp_sel_state *states, size_t n,
                         ntp_select_result *res)
{
  const report_sys *s = &d->sys;
  int prev = -1; /* last system peer, so selection can avoid clock-hopping */
  for (size_t i = 0; i < s->sel_states_n; i++)
    if (s->sel_states[i] == NTP_SEL_SYSPEER)
      prev = (int)i;
  peer_view v;
  for (size_t i = 0; i < n; i++) {
    clients_view(d->clients, i, now, &v);
    infos[i] = v.info;
  }
  /* Selection compares offsets measured at different times: age them to
   * now with the discipline's frequency estimate. */
  for (size_t i = 0; d->disc && i < n; i++)
    if (infos[i].have_sample && infos[i].sample_age >= 0)
      infos[i].offset = ntp_disc_predict(d->disc, infos[i].offset,
                                         now - infos[i].sample_age, now);
  return ntp_select(infos, n, scfg, prev, states, res) == NTP_SELECT_SYNC ? res->sys_peer : -1;
}

/* What our clients are told (and s->offset, s->system_peer, s->synced):
 * from the system peer, else `local stratum`, else unsynchronised. */
static ntp_sysinfo system_info(ntsd *d, int best, const ntp_select_result *res, double now)
{
  report_sys *s = &d->sys;
  ntp_sysinfo si = {.precision = (int8_t)d->precision_log2};
  peer_view v;
  s->synced = false;
  s->system_peer[0] = '\0';
  s->offset = 0;
  if (best >= 0 && clients_view(d->clients, (size_t)best, now, &v)) {
    const ntp_source_info *b = &v.info;
    s->synced = true;
    /* The discipline's estimate: what it has not corrected yet (under -x,
     * the untouched clock's error), from every survivor's samples. */
    s->offset = ntp_disc_offset_now(d->disc, now);
    si.leap = res->leap; /* majority of the survivors */
    si.stratum = (uint8_t)(b->stratum + 1);
    si.refid = netaddr_refid(v.sa);
    si.reftime = ntp_ts_add(sysclock_now_ntp(), -(b->when > 0 ? b->when : 0));
    si.root_delay = b->root_delay + b->delay;
    si.root_disp = b->root_disp + b->dispersion + res->jitter + fabs(res->offset);
    snprintf(s->system_peer, sizeof(s->system_peer), "%s", v.address);
  } else if (d->conf->local_stratum > 0) {
    si.leap = NTP_LEAP_NONE;
    si.stratum = (uint8_t)d->conf->local_stratum;
    si.refid = NTP_REFID('L', 'O', 'C', 'L');
    si.reftime = sysclock_now_ntp();
    si.root_delay = 0;
    si.root_disp = d->precision;
  } else {
    si.leap = NTP_LEAP_UNSYNC;
    si.stratum = NTP_MAX_STRATUM;
    si.refid = 0;
  }
  return si;
}

/* Recomputes selection and the system variables served to our clients. */
static void update_system(ntsd *d)
{
  double now = sysclock_mono();
  report_sys *s = &d->sys;
  size_t n = clients_count(d->clients);
  int best = -1;
  ntp_select_cfg scfg;
  select_cfg(d, &scfg);
  ntp_select_result res = {.sys_peer = -1, .leap = NTP_LEAP_UNSYNC};
  ntp_source_info *infos = n ? calloc(n, sizeof(*infos)) : NULL;
  ntp_sel_state *states = n ? calloc(n, sizeof(*states)) : NULL;
  if (n && infos && states)
    best = run_selection(d, now, &scfg, infos, states, n, &res);
  s->sel_states_n = 0;
  for (size_t i = 0; i < n && i < REPORT_MAX_PEERS && states; i++)
    s->sel_states[s->sel_states_n++] = states[i];
  if (d->disc && best >= 0)
    feed_discipline(d, states, n, &res, &scfg, now);
  ntp_sysinfo si = system_info(d, best, &res, now);
  s->info = si;
  if (s->synced && d->disc && disc_synced(d->disc))
    clients_set_synced(d->clients); /* the clock took the time, not only selection */
  update_kernel_status(d, s->synced ? si.leap : NTP_LEAP_UNSYNC, s->synced);
  if (d->disc) {
    ntp_disc_info di;
    ntp_disc_get_info(d->disc, &di);
    s->frequency = di.freq_ppm;
  }
  ntsd_client_stats cst;
  clients_get_stats(d->clients, &cst);
  s->tx_timestamps = cst.tx_timestamps;
  if (d->server)
    server_set_sysinfo(d->server, &si);
  free(infos);
  free(states);
}

static void on_update(void *arg) { update_system(arg); }

static void on_refresh(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  update_system(arg);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
  ntsd *d = arg;
  (void)what;
  if (sig == SIGHUP) {
    log_notice("SIGHUP: configuration reload is not supported yet; ignoring");
    return;
  }
  log_notice("signal %d: shutting down", (int)sig);
  event_base_loopexit(d->base, NULL);
}

static void on_key_check(evutil_socket_t fd, short what, void *arg)
{
  ntsd *d = arg;
  (void)fd;
  (void)what;
  keystore_rotate_if_due(d->keys, (uint64_t)sysclock_realtime().tv_sec);
}

/* The NTP port our KE server advertises: the first `listen` port. */
static uint16_t our_ntp_port(const ntsd_conf *conf)
{
  return conf->n_listens && conf->listens[0].port ? conf->listens[0].port : NTP_PORT;
}

/* `nts enable`: TLS context, cookie keys, and the KE thread. */
static bool setup_nts_server(ntsd *d, char *err, size_t errlen)
{
  const ntsd_conf *c = d->conf;
  if (!c->nts_enable)
    return true;
  if (!c->nts_cert[0] || !c->nts_key[0]) {
    snprintf(err, errlen, "nts enable needs `nts cert FILE` and `nts key FILE`");
    return false;
  }
  d->ke_ctx = tls_server_ctx(c->nts_cert, c->nts_key, err, errlen);
  if (!d->ke_ctx)
    return false;
  uint64_t now = (uint64_t)sysclock_realtime().tv_sec;
  d->keys = keystore_open(c->nts_cookie, (uint64_t)c->nts_rotate, now, err, errlen);
  if (!d->keys)
    return false;
  struct timeval tv = {.tv_sec = keystore_check_interval(d->keys)};
  d->key_check = event_new(d->base, -1, EV_PERSIST, on_key_check, d);
  if (!d->key_check || event_add(d->key_check, &tv) < 0) {
    snprintf(err, errlen, "cannot register events");
    return false;
  }
  ke_server_cfg kc = {.listen = c->nts_listen, .ctx = d->ke_ctx, .acl = d->acl,
                      .keys = d->keys, .ntp_port = our_ntp_port(c),
                      .ntp_server = c->nts_ntpserver[0] ? c->nts_ntpserver : NULL,
                      .timeout = KE_TIMEOUT_S, .max_connections = KE_MAX_CONNECTIONS};
  d->ke = ke_server_start(&kc, err, errlen);
  return d->ke != NULL;
}

/* Clock control: the system clock and the discipline, or estimates only
 * (-x, `disable ntp`). */
static bool setup_clock(ntsd *d, char *err, size_t errlen)
{
  bool control = d->conf->clock_control && !d->opts.no_clock;
  enum clockctl_kind kind = d->opts.virtual_clock ? CLOCKCTL_VIRTUAL
                            : control             ? CLOCKCTL_SYSTEM
                                                  : CLOCKCTL_NONE;
  d->kernel_leap = -1;
  d->clk = clockctl_open(kind, err, errlen);
  if (!d->clk)
    return false;
  ntp_disc_cfg cfg;
  ntp_disc_default_cfg(&cfg);
  cfg.precision = d->precision;
  if (kind == CLOCKCTL_NONE) {
    /* The discipline still runs, estimating only: the offset and frequency
     * it reports are those of the untouched clock. */
    cfg.estimate_only = true;
    d->disc = ntp_disc_create(&cfg, sysclock_mono());
    if (!d->disc) {
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
  double now = sysclock_mono();
  d->disc = ntp_disc_create(&cfg, now);
  d->slew_timer = evtimer_new(d->base, on_slew_done, d);
  d->drift_timer = event_new(d->base, -1, EV_PERSIST, on_drift_timer, d);
  struct timeval tv = {.tv_sec = DRIFT_SAVE_S};
  if (!d->disc || !d->slew_timer || !d->drift_timer || event_add(d->drift_timer, &tv) < 0) {
    snprintf(err, errlen, "out of memory");
    return false;
  }
  clockctl_set_freq(d->clk, cfg.initial_freq_ppm);
  log_notice("clock control on (%s clock): %s discipline", clockctl_name(d->clk),
             ntp_disc_algo_name(cfg.algo));
  return true;
}

static char *on_control(void *arg, ctl_cmd cmd, bool json)
{
  ntsd *d = arg;
  update_system(d);
  double now = sysclock_mono();
  switch (cmd) {
  case CTL_PEERS: return report_peers(d->clients, &d->sys, now, json);
  case CTL_SERVER: return report_server(d->server, json);
  case CTL_SYS: return report_system(&d->sys, clockctl_name(d->clk), json);
  case CTL_NTS: return report_nts(d->clients, d->ke, d->server, json);
  }
  return NULL;
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
  if (!build_acl(d, err, errlen))
    goto fail;
  if (!setup_nts_server(d, err, errlen))
    goto fail;
  server_cfg sc = {.base = d->base, .acl = d->acl, .keys = d->keys,
                   .listens = conf->listens, .n_listens = conf->n_listens,
                   .no_sockets = conf->interface_ignore_all,
                   .discard_average = conf->discard_average,
                   .discard_minimum = conf->discard_minimum,
                   .precision_log2 = d->precision_log2};
  d->server = server_create(&sc, err, errlen);
  if (!d->server)
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
  if (!setup_control(d, err, errlen))
    goto fail;
  d->clients = clients_create(d->base, d->dns, conf, d->precision, on_update, d);
  if (!d->clients) {
    snprintf(err, errlen, "cannot create client associations");
    goto fail;
  }
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

bool ntsd_daemonize(ntsd *d)
{
  pid_t pid = fork();
  if (pid < 0)
    return false;
  if (pid > 0)
    _exit(0);
  if (setsid() < 0)
    return false;
  if (chdir("/") < 0)
    return false;
  int fd = open("/dev/null", O_RDWR);
  if (fd >= 0) {
    dup2(fd, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    if (fd > 2)
      close(fd);
  }
  return event_reinit(d->base) == 0;
}

int ntsd_run(ntsd *d)
{
  if (d->ke && !ke_server_run(d->ke)) {
    log_err("cannot start the NTS-KE thread");
    return 1;
  }
  log_notice("ntsd %s running", NTSD_VERSION);
  event_base_dispatch(d->base);
  return 0;
}

void ntsd_destroy(ntsd *d)
{
  if (!d)
    return;
  ke_server_stop(d->ke); /* joins the KE thread before anything it uses goes */
  clients_destroy(d->clients);
  control_destroy(d->control);
  server_destroy(d->server);
  if (d->dns)
    evdns_base_free(d->dns, 0);
  save_drift(d);
  driftfile_destroy(d->drift);
  ntp_disc_destroy(d->disc);
  clockctl_close(d->clk);
  keystore_close(d->keys);
  SSL_CTX_free(d->ke_ctx);
  struct event *evs[] = {d->sig_int, d->sig_term, d->sig_hup, d->refresh, d->key_check,
                         d->slew_timer, d->drift_timer};
  for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
    if (evs[i])
      event_free(evs[i]);
  if (d->base)
    event_base_free(d->base);
  ntp_acl_destroy(d->acl);
  conf_free(d->conf);
  free(d);
}
