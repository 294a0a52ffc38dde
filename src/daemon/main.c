/* ntsd: network time daemon with Network Time Security. */
#include <event2/thread.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/atomicfile.h"
#include "daemon/conf.h"
#include "daemon/daemon.h"
#include "daemon/log.h"
#include "daemon/privs.h"
#include "daemon/sandbox.h"

#define DEFAULT_CONF "/etc/ntsd.conf"

static void usage(FILE *f)
{
  fprintf(f,
          "usage: ntsd [-c FILE] [-n] [-x] [-d]... [-s SOCKET] [-l FILE] [-u USER[:GROUP]]\n"
          "            [-N | -P PRIORITY] [-m] [-F LEVEL] [--check]\n"
          "       ntsd --list-directives[=mdoc] | --version | --help\n"
          "\n"
          "  -c, --config FILE   configuration file (default " DEFAULT_CONF ")\n"
          "  -n, --foreground    stay in the foreground, log to stderr\n"
          "  -x, --no-clock      never adjust the system clock (estimates only)\n"
          "  -d, --debug         more logging (repeat for more)\n"
          "  -s, --socket PATH   control socket (default /run/ntsd/ntsd.sock)\n"
          "  -l, --logfile FILE  log to FILE instead of syslog or stderr; overrides\n"
          "                      `logfile`\n"
          "  -u, --user USER[:GROUP]\n"
          "                      once set up, run as USER (and GROUP, else USER's group)\n"
          "                      keeping only CAP_SYS_TIME; overrides `user`\n"
          "  -N, --nice          real-time scheduling (SCHED_FIFO, priority 1)\n"
          "  -P, --priority N    real-time scheduling at priority N (1-99)\n"
          "  -m, --lock-memory   lock the daemon's memory in RAM\n"
          "  -F, --filter LEVEL  system call filter: 1 on (default; a refused call is\n"
          "                      logged and ends the daemon), 0 off, -1 log only;\n"
          "                      overrides `sandbox`\n"
          "      --virtual-clock OFFSET[,PPM]\n"
          "                      for tests: discipline a virtual clock that starts OFFSET s\n"
          "                      away from the system clock, with a PPM frequency error;\n"
          "                      the system clock is never touched\n"
          "      --check         check the configuration's syntax and values, then exit\n"
          "                      (0: fine, 2: errors); opens no referenced file\n"
          "      --list-directives[=mdoc]\n"
          "                      print every directive with its status in this release\n"
          "                      (a markdown table, or mdoc) and exit\n"
          "      --version       print the version and exit\n"
          "  -h, --help          this text\n");
}

typedef struct diag_ctx {
  unsigned errors;
} diag_ctx;

static void print_diag(void *arg, bool is_error, const char *msg)
{
  diag_ctx *ctx = arg;
  if (is_error)
    ctx->errors++;
  fprintf(stderr, "%s%s\n", msg, is_error ? "" : " (warning)");
}

/* Loads and checks the configuration; NULL, with the exit status in *rc, when
 * the run ends here (errors, or --check). */
static ntsd_conf *load_conf(const char *conf_path, bool check, int *rc)
{
  ntsd_conf *conf = conf_new();
  if (!conf) {
    fprintf(stderr, "ntsd: out of memory\n");
    *rc = 1;
    return NULL;
  }
  diag_ctx dc = {0};
  if (conf_load_file(conf, conf_path, print_diag, &dc) != 0 || dc.errors) {
    fprintf(stderr, "ntsd: %s: configuration refused\n", conf_path);
    conf_free(conf);
    *rc = 2;
    return NULL;
  }
  if (check) {
    printf("%s: ok (%zu sources, %u warnings)\n", conf_path, conf->n_sources, conf->n_warnings);
    conf_free(conf);
    *rc = 0;
    return NULL;
  }
  return conf;
}

typedef struct cmdline {
  const char *conf_path;
  ntsd_opts opts;
  bool check;
  int debug;
  const char *user; /* -u */
  const char *logfile; /* -l */
  int priority;     /* -N, -P */
  bool lock_memory; /* -m */
  bool filter_set;    /* -F LEVEL given: it overrides `sandbox` */
  int filter;
} cmdline;

static int fail(const ntsd_opts *opts, const char *err)
{
  fprintf(stderr, "ntsd: %s\n", err);
  if (!opts->foreground)
    log_err("%s", err);
  return 1;
}

/* What stays of root once set up (docs/security.md), looked up before
 * anything is opened.  The files written while still root go to the user. */
static privs *make_privs(const ntsd_conf *conf, const cmdline *cl, char *err, size_t errlen)
{
  bool clock = conf->clock_control && !cl->opts.no_clock;
  privs_cfg pc = {.user = cl->user ? cl->user : conf->user,
                  .clock = clock && !cl->opts.virtual_clock,
                  .priority = cl->priority, .lock_memory = cl->lock_memory,
                  .state_files = {conf->nts_enable ? conf->nts_cookie : NULL,
                                  clock || cl->opts.virtual_clock ? conf->driftfile : NULL}};
  privs *p = privs_create(&pc, err, errlen);
  unsigned uid, gid;
  if (p && privs_changes_user(p, &uid, &gid))
    atomicfile_set_owner(uid, gid);
  return p;
}

/* The system call filter, last before the event loop (docs/security.md). */
static bool apply_sandbox(int level, bool clock, char *err, size_t errlen)
{
  sandbox_cfg sc = {.clock_control = clock};
  sandbox_set_level(&sc, level);
  return sandbox_apply(SANDBOX_MAIN, &sc, err, errlen);
}

/* Set up as root; drop to the user while the process has one thread (the
 * drop is per thread), before ntsd_run forks the NTS-KE process, which then
 * inherits the user; lock memory once detached; then the system call
 * filter. */
static int run(ntsd_conf *conf, const cmdline *cl)
{
  const ntsd_opts *opts = &cl->opts;
  /* Packet threads (`threads N`) are the daemon's only threads, started by
   * ntsd_run; they touch no event base, but libevent's locks are on all the
   * same (they must be chosen before any event base exists).  The NTS-KE
   * server runs in a process of its own (daemon/ke_proc), not on a thread
   * as in its unit test. */
  evthread_use_pthreads();
  int level = LOG_LVL_NOTICE + cl->debug;
  log_set_facility(conf->logfacility);
  log_init("ntsd", opts->foreground, level > LOG_LVL_DEBUG ? LOG_LVL_DEBUG : level);
  log_set_mask(conf->logmask);
  char err[512] = "";
  /* as root, before the drop: the descriptor stays writable (docs/logging.md) */
  const char *logfile = cl->logfile ? cl->logfile : conf->logfile;
  if (logfile[0] && !log_open_file(logfile, err, sizeof(err))) {
    conf_free(conf);
    return fail(opts, err);
  }
  bool conf_clock = conf->clock_control && !opts->no_clock && !opts->virtual_clock;
  if (cl->filter_set)
    conf->sandbox = cl->filter; /* one level for both processes' filters */
  int filter = conf->sandbox;
  privs *p = make_privs(conf, cl, err, sizeof(err));
  if (!p) {
    conf_free(conf);
    return fail(opts, err);
  }
  ntsd *d = ntsd_create(conf, opts, err, sizeof(err));
  int rc = 1;
  if (!d)
    rc = fail(opts, err);
  else if (!privs_apply(p, err, sizeof(err)))
    rc = fail(opts, err);
  else if (!opts->foreground && !ntsd_daemonize(d, err, sizeof(err)))
    rc = fail(opts, err);
  else {
    privs_lock_memory(p);
    if (apply_sandbox(filter, conf_clock, err, sizeof(err)))
      rc = ntsd_run(d, privs_priority(p));
    else
      rc = fail(opts, err);
  }
  ntsd_destroy(d);
  privs_free(p);
  return rc;
}

/* --virtual-clock OFFSET[,PPM] */
static bool parse_virtual(const char *arg, ntsd_opts *opts)
{
  double off = 0, ppm = 0;
  char extra;
  int n = sscanf(arg, "%lf,%lf%c", &off, &ppm, &extra);
  if (n < 1 || n > 2 || !(fabs(off) < 1e6) || !(fabs(ppm) <= 500)) {
    fprintf(stderr, "ntsd: --virtual-clock OFFSET[,PPM]: bad value '%s'\n", arg);
    return false;
  }
  opts->virtual_offset = off;
  opts->virtual_freq_ppm = ppm;
  opts->virtual_clock = true;
  return true;
}

/* -P N */
static bool parse_priority(const char *arg, int *prio)
{
  int v;
  char extra;
  if (sscanf(arg, "%d%c", &v, &extra) != 1 || v < 1 || v > PRIVS_PRIORITY_MAX) {
    fprintf(stderr, "ntsd: -P PRIORITY: expected 1..%d, not '%s'\n", PRIVS_PRIORITY_MAX, arg);
    return false;
  }
  *prio = v;
  return true;
}

/* -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, cmdline *cl)
{
  static const struct option longopts[] = {
      {"config", required_argument, NULL, 'c'}, {"foreground", no_argument, NULL, 'n'},
      {"no-clock", no_argument, NULL, 'x'},     {"debug", no_argument, NULL, 'd'},
      {"socket", required_argument, NULL, 's'}, {"check", no_argument, NULL, 'C'},
      {"logfile", required_argument, NULL, 'l'},
      {"version", no_argument, NULL, 'V'},      {"help", no_argument, NULL, 'h'},
      {"virtual-clock", required_argument, NULL, 'v'},
      {"user", required_argument, NULL, 'u'},   {"nice", no_argument, NULL, 'N'},
      {"priority", required_argument, NULL, 'P'}, {"lock-memory", no_argument, NULL, 'm'},
      {"filter", required_argument, NULL, 'F'},
      /* docs/configuration.md's table; =mdoc: ntsd.conf(5)'s list */
      {"list-directives", optional_argument, NULL, 'L'},
      {NULL, 0, NULL, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "c:nxds:l:u:NP:mF:h", longopts, NULL)) != -1) {
    switch (ch) {
    case 'c': cl->conf_path = optarg; break;
    case 'n': cl->opts.foreground = true; break;
    case 'x': cl->opts.no_clock = true; break;
    case 'd': cl->debug++; break;
    case 's': cl->opts.socket_path = optarg; break;
    case 'l': cl->logfile = optarg; break;
    case 'C': cl->check = true; break;
    case 'u': cl->user = optarg; break;
    case 'N': cl->priority = 1; break;
    case 'P':
      if (!parse_priority(optarg, &cl->priority))
        return 2;
      break;
    case 'm': cl->lock_memory = true; break;
    case 'F':
      if (!sandbox_parse_level(optarg, &cl->filter)) {
        fprintf(stderr, "ntsd: -F LEVEL: expected 1, 0 or -1, not '%s'\n", optarg);
        return 2;
      }
      cl->filter_set = true;
      break;
    case 'v':
      if (!parse_virtual(optarg, &cl->opts))
        return 2;
      break;
    case 'V': printf("ntsd %s\n", NTSD_VERSION); return 0;
    case 'L':
      if (optarg && strcmp(optarg, "mdoc") != 0) {
        fprintf(stderr, "ntsd: --list-directives[=mdoc]: unknown format '%s'\n", optarg);
        return 2;
      }
      (optarg ? conf_write_directive_mdoc : conf_write_directive_table)(stdout);
      return 0;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc) {
    fprintf(stderr, "ntsd: unexpected argument '%s'\n", argv[optind]);
    usage(stderr);
    return 2;
  }
  return -1;
}

int main(int argc, char **argv)
{
  cmdline cl = {.conf_path = DEFAULT_CONF};
  int rc = parse_args(argc, argv, &cl);
  if (rc >= 0)
    return rc;
  cl.opts.conf_path = cl.conf_path;
  ntsd_conf *conf = load_conf(cl.conf_path, cl.check, &rc);
  return conf ? run(conf, &cl) : rc;
}
