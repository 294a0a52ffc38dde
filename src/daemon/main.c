/* ntsd: network time daemon with Network Time Security. */
#include <event2/thread.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/conf.h"
#include "daemon/daemon.h"
#include "daemon/log.h"

#define DEFAULT_CONF "/etc/ntsd.conf"

static void usage(FILE *f)
{
  fprintf(f,
          "usage: ntsd [-c FILE] [-n] [-x] [-d]... [-s SOCKET] [--check]\n"
          "       ntsd --version | --help\n"
          "\n"
          "  -c, --config FILE   configuration file (default " DEFAULT_CONF ")\n"
          "  -n, --foreground    stay in the foreground, log to stderr\n"
          "  -x, --no-clock      never adjust the system clock (estimates only)\n"
          "  -d, --debug         more logging (repeat for more)\n"
          "  -s, --socket PATH   control socket (default /run/ntsd/ntsd.sock)\n"
          "      --virtual-clock OFFSET[,PPM]\n"
          "                      for tests: discipline a virtual clock that starts OFFSET s\n"
          "                      away from the system clock, with a PPM frequency error;\n"
          "                      the system clock is never touched\n"
          "      --check         check the configuration's syntax and values, then exit\n"
          "                      (0: fine, 2: errors); opens no referenced file\n"
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

static int run(ntsd_conf *conf, const ntsd_opts *opts, int debug)
{
  /* The NTS-KE server runs its own event loop on a thread; libevent must
   * know before any event base exists. */
  evthread_use_pthreads();
  int level = LOG_LVL_NOTICE + debug;
  log_init("ntsd", opts->foreground, level > LOG_LVL_DEBUG ? LOG_LVL_DEBUG : level);
  char err[512] = "";
  ntsd *d = ntsd_create(conf, opts, err, sizeof(err));
  if (!d) {
    fprintf(stderr, "ntsd: %s\n", err);
    if (!opts->foreground)
      log_err("%s", err);
    return 1;
  }
  if (!opts->foreground && !ntsd_daemonize(d)) {
    log_err("cannot detach from the terminal");
    ntsd_destroy(d);
    return 1;
  }
  int rc = ntsd_run(d);
  ntsd_destroy(d);
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

typedef struct cmdline {
  const char *conf_path;
  ntsd_opts opts;
  bool check;
  int debug;
} cmdline;

/* -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, cmdline *cl)
{
  static const struct option longopts[] = {
      {"config", required_argument, NULL, 'c'}, {"foreground", no_argument, NULL, 'n'},
      {"no-clock", no_argument, NULL, 'x'},     {"debug", no_argument, NULL, 'd'},
      {"socket", required_argument, NULL, 's'}, {"check", no_argument, NULL, 'C'},
      {"version", no_argument, NULL, 'V'},      {"help", no_argument, NULL, 'h'},
      {"virtual-clock", required_argument, NULL, 'v'},
      {"list-directives", no_argument, NULL, 'L'}, /* docs/configuration.md's table */
      {NULL, 0, NULL, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "c:nxds:h", longopts, NULL)) != -1) {
    switch (ch) {
    case 'c': cl->conf_path = optarg; break;
    case 'n': cl->opts.foreground = true; break;
    case 'x': cl->opts.no_clock = true; break;
    case 'd': cl->debug++; break;
    case 's': cl->opts.socket_path = optarg; break;
    case 'C': cl->check = true; break;
    case 'v':
      if (!parse_virtual(optarg, &cl->opts))
        return 2;
      break;
    case 'V': printf("ntsd %s\n", NTSD_VERSION); return 0;
    case 'L': conf_write_directive_table(stdout); return 0;
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
  ntsd_conf *conf = load_conf(cl.conf_path, cl.check, &rc);
  return conf ? run(conf, &cl.opts, cl.debug) : rc;
}
