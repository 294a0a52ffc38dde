/* Unit tests for src/daemon/conf: the ntp.conf parser.  No test resolves a name or opens
 * a file a directive names; only includefile tests create and read their own files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/conf.h"
#include "daemon/log.h"
#include "proto/acl.h"
#include "proto/select.h"

#define MSGS_MAX 64

/* Per-test state: the config under test and every diagnostic it produced. */
struct tc {
  ntsd_conf *c;
  size_t n, n_err, n_warn;
  bool err[MSGS_MAX];
  char msg[MSGS_MAX][3 * 1024];
};

static void collect(void *ctx, bool is_error, const char *msg)
{
  struct tc *t = ctx;

  if (is_error)
    t->n_err++;
  else
    t->n_warn++;
  if (t->n < MSGS_MAX) {
    t->err[t->n] = is_error;
    snprintf(t->msg[t->n], sizeof t->msg[t->n], "%s", msg);
  }
  t->n++;
}

static int setup(void **state)
{
  struct tc *t = calloc(1, sizeof *t);

  if (!t || !(t->c = conf_new()))
    return -1;
  *state = t;
  return 0;
}

static int teardown(void **state)
{
  struct tc *t = *state;

  conf_free(t->c);
  free(t);
  return 0;
}

/* Fresh config and no messages, for table-driven tests. */
static void reset(struct tc *t)
{
  conf_free(t->c);
  t->c = conf_new();
  assert_non_null(t->c);
  t->n = t->n_err = t->n_warn = 0;
}

static int parse_n(struct tc *t, const char *text, size_t len)
{
  return conf_parse_string(t->c, "t.conf", text, len, collect, t);
}

static int parse(struct tc *t, const char *text) { return parse_n(t, text, strlen(text)); }

/* True if a message of that kind starts with prefix and contains needle. */
static bool has_msg(const struct tc *t, bool is_error, const char *prefix, const char *needle)
{
  for (size_t i = 0; i < t->n && i < MSGS_MAX; i++)
    if (t->err[i] == is_error && strncmp(t->msg[i], prefix, strlen(prefix)) == 0 &&
        strstr(t->msg[i], needle))
      return true;
  return false;
}

static void dump(const struct tc *t)
{
  for (size_t i = 0; i < t->n && i < MSGS_MAX; i++)
    print_message("  %s: %s\n", t->err[i] ? "error" : "warning", t->msg[i]);
}

/* text must give exactly one error, on line 1, containing needle. */
static void expect_error(struct tc *t, const char *text, const char *needle)
{
  reset(t);
  if (parse(t, text) != -1 || t->n_err != 1 || !has_msg(t, true, "t.conf:1: ", needle)) {
    dump(t);
    fail_msg("'%s': expected one error containing \"%s\"", text, needle);
  }
}

/* text must parse without errors and with exactly `warnings` warnings. */
static void expect_ok(struct tc *t, const char *text, unsigned warnings)
{
  reset(t);
  if (parse(t, text) != 0 || t->n_err || t->c->n_warnings != warnings ||
      t->n_warn != warnings) {
    dump(t);
    fail_msg("'%s': expected no error and %u warnings", text, warnings);
  }
}

/* ---- defaults, sources ---------------------------------------------------- */

static void test_defaults(void **state)
{
  struct tc *t = *state;
  const ntsd_conf *c = t->c;

  assert_int_equal(c->n_sources, 0);
  assert_int_equal(c->n_restricts, 0);
  assert_int_equal(c->n_listens, 0);
  assert_int_equal(c->local_stratum, -1);
  assert_true(c->clock_control);
  assert_false(c->interface_ignore_all);
  assert_int_equal(c->tos_minsane, 1);
  assert_int_equal(c->tos_orphan, -1);
  assert_int_equal(c->tos_authselect, NTP_AUTHSEL_MIX);
  assert_int_equal(c->discard_average, 3);
  assert_int_equal(c->discard_minimum, 2);
  assert_false(c->nts_enable);
  assert_true(c->nts_rotate == 86400);
  assert_string_equal(c->driftfile, "");
  assert_string_equal(c->nts_listen, "");
  assert_string_equal(c->control_socket, "");
  assert_int_equal(c->n_warnings, 0);
  assert_int_equal(parse(t, ""), 0);
  assert_int_equal(conf_parse_string(t->c, "t.conf", NULL, 0, collect, t), 0);
  conf_free(NULL);
}

static void test_server_options(void **state)
{
  struct tc *t = *state;
  const conf_source *s;

  expect_ok(t,
            "server a.example iburst prefer minpoll 4 maxpoll 8 version 3\n"
            "server ke.example:4460 nts ca /x.pem aead AES_SIV_CMAC_256 noval burst noselect"
            " true\n",
            2); /* noval is ignored (certificates are always verified); true is stored */
  assert_true(has_msg(t, false, "t.conf:2: ", "'noval' is ignored"));
  assert_true(has_msg(t, false, "t.conf:2: ", "'true' has no effect yet"));
  assert_int_equal(t->c->n_sources, 2);
  s = &t->c->sources[0];
  assert_int_equal(s->kind, CONF_SERVER);
  assert_string_equal(s->host, "a.example");
  assert_int_equal(s->port, 0);
  assert_true(s->iburst && s->prefer);
  assert_false(s->burst || s->noselect || s->trusted || s->nts || s->noval);
  assert_int_equal(s->minpoll, 4);
  assert_int_equal(s->maxpoll, 8);
  assert_int_equal(s->version, 3);
  assert_int_equal(s->line, 1);
  s = &t->c->sources[1];
  assert_string_equal(s->host, "ke.example");
  assert_int_equal(s->port, 4460);
  assert_true(s->nts && s->noval && s->burst && s->noselect && s->trusted);
  assert_string_equal(s->ca, "/x.pem");
  assert_string_equal(s->aead, "AES_SIV_CMAC_256");
  assert_int_equal(s->minpoll, 6);
  assert_int_equal(s->maxpoll, 10);
  assert_int_equal(s->version, 4);
  assert_int_equal(s->line, 2);
}

static void test_server_hosts(void **state)
{
  struct tc *t = *state;
  static const struct {
    const char *line, *host;
    uint16_t port;
  } cases[] = {
      {"server 192.0.2.1", "192.0.2.1", 0},   {"server 192.0.2.1:1123", "192.0.2.1", 1123},
      {"server [2001:db8::1]", "2001:db8::1", 0}, {"server [::1]:4460", "::1", 4460},
      {"server 2001:db8::7", "2001:db8::7", 0}, {"server fe80::1%eth0", "fe80::1%eth0", 0},
      {"server time_1.example", "time_1.example", 0}, {"server 0.0.0.0", "0.0.0.0", 0},
  };

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    expect_ok(t, cases[i].line, 0);
    assert_int_equal(t->c->n_sources, 1);
    assert_string_equal(t->c->sources[0].host, cases[i].host);
    assert_int_equal(t->c->sources[0].port, cases[i].port);
  }
}

static void test_pool_peer(void **state)
{
  struct tc *t = *state;

  expect_ok(t, "pool 0.pool.example iburst\npeer 192.0.2.9\n", 1);
  assert_int_equal(t->c->n_sources, 2);
  assert_int_equal(t->c->sources[0].kind, CONF_POOL);
  assert_int_equal(t->c->sources[1].kind, CONF_PEER);
  assert_true(has_msg(t, false, "t.conf:2: ", "'peer' is served as a client association"));
}

static void test_server_ignored_options(void **state)
{
  struct tc *t = *state;

  expect_ok(t, "server a key 1 xleave ttl 5 mode 1 bias -0.5 maxdelay 0.2\n", 6);
  assert_true(has_msg(t, false, "t.conf:1: ", "'key' ignored: symmetric keys"));
  assert_true(has_msg(t, false, "t.conf:1: ", "'xleave' ignored"));
  assert_int_equal(t->c->n_sources, 1);
  /* NTS-only options without nts: kept, but the user hears about it. */
  expect_ok(t, "server a ca /x.pem\n", 1);
  assert_true(has_msg(t, false, "t.conf:1: ", "'ca' has no effect without 'nts'"));
}

static void test_server_poll_defaults_follow(void **state)
{
  struct tc *t = *state;

  expect_ok(t, "server a minpoll 12\nserver b maxpoll 4\nserver c minpoll 0 maxpoll 17\n", 0);
  assert_int_equal(t->c->sources[0].minpoll, 12);
  assert_int_equal(t->c->sources[0].maxpoll, 12);
  assert_int_equal(t->c->sources[1].minpoll, 4);
  assert_int_equal(t->c->sources[1].maxpoll, 4);
  assert_int_equal(t->c->sources[2].minpoll, 0);
  assert_int_equal(t->c->sources[2].maxpoll, 17);
}

static void test_server_errors(void **state)
{
  struct tc *t = *state;
  static const char *const cases[][2] = {
      {"server", "missing value for 'server'"},
      {"server a minpoll 99", "'minpoll' 99 is out of range (must be 0..17)"},
      {"server a minpoll -1", "'minpoll' -1 is out of range"},
      {"server a minpoll x", "'minpoll' needs an integer, got 'x'"},
      {"server a minpoll 3x", "'minpoll' needs an integer, got '3x'"},
      {"server a minpoll 0x4", "'minpoll' needs an integer, got '0x4'"},
      {"server a minpoll 99999999999999999999", "needs an integer"},
      {"server a minpoll", "missing value for 'minpoll'"},
      {"server a version 5", "'version' 5 is out of range (must be 1..4)"},
      {"server a version 0", "'version' 0 is out of range"},
      {"server a:0", "bad host or port 'a:0' for 'server'"},
      {"server a:99999", "bad host or port 'a:99999'"},
      {"server a:65536", "bad host or port"},
      {"server a:", "bad host or port"},
      {"server a:12x", "bad host or port"},
      {"server :123", "bad host or port"},
      {"server [::1", "bad host or port '[::1'"},
      {"server [::1]x", "bad host or port"},
      {"server [::1]:", "bad host or port"},
      {"server []", "bad host or port"},
      {"server [host.example]", "bad host name 'host.example'"},
      {"server 1:2:3:zz", "bad host name '1:2:3:zz'"},
      {"server (bad", "bad host name '(bad'"},
      {"server -a.example", "bad host name"},
      {"server a bogus", "unknown option 'bogus' for 'server'"},
      {"pool a iburst (x)", "unknown option '(x)' for 'pool'"},
      {"server a minpoll 8 maxpoll 6", "minpoll 8 is greater than maxpoll 6"},
      {"server a ca", "missing value for 'ca'"},
      {"server a nts aead AES_SIV_CMAC_256_WITH_A_NAME_TOO_LONG", "value for 'aead' too long"},
      {"server a key 0", "'key' 0 is out of range"},
      {"server a bias nan", "'bias' needs a number, got 'nan'"},
      {"server a maxdelay 0", "'maxdelay' 0 is out of range (must be > 0 and <= 16)"},
  };

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    expect_error(t, cases[i][0], cases[i][1]);
    assert_int_equal(t->c->n_sources, 0);
  }
}

/* ---- restrict ------------------------------------------------------------- */

static void test_restrict(void **state)
{
  struct tc *t = *state;
  const conf_restrict *r;
  static const uint8_t lo4[4] = {127, 0, 0, 1};
  static const uint8_t db8[4] = {0x20, 0x01, 0x0d, 0xb8};

  expect_ok(t,
            "restrict default kod limited nomodify nopeer noquery\n" /* 1 */
            "restrict -4 default ignore\n"                           /* 2 */
            "restrict -6 default noserve\n"                          /* 3 */
            "restrict source nomodify\n"                             /* 4 */
            "restrict 127.0.0.1\n"                                   /* 5 */
            "restrict 192.0.2.0/24 notrap\n"                         /* 6 */
            "restrict 10.0.0.0 mask 255.0.0.0 nomodify\n"            /* 7 */
            "restrict 2001:db8:: mask ffff:ffff:: noquery\n"         /* 8 */
            "restrict ::1\n"                                         /* 9 */
            "unrestrict 10.0.0.1\n"                                  /* 10 */
            "restrict 10.0.0.0 mask 0.0.0.0\n"                       /* 11 */
            "restrict -6 2001:db8::/32\n",                           /* 12 */
            1); /* restrict source: stored, no effect yet */
  assert_true(has_msg(t, false, "t.conf:4: ", "'restrict source' has no effect yet"));
  assert_int_equal(t->c->n_restricts, 12);
  r = t->c->restricts;
  assert_true(r[0].is_default && !r[0].is_source && !r[0].unrestrict);
  assert_int_equal(r[0].fam, CONF_FAM_ANY);
  assert_int_equal(r[0].prefix, 0);
  assert_int_equal(r[0].flags,
                   ACL_KOD | ACL_LIMITED | ACL_NOMODIFY | ACL_NOPEER | ACL_NOQUERY);
  assert_int_equal(r[1].fam, CONF_FAM_4);
  assert_int_equal(r[1].flags, ACL_IGNORE);
  assert_int_equal(r[2].fam, CONF_FAM_6);
  assert_true(r[3].is_source && !r[3].is_default);
  assert_int_equal(r[3].fam, CONF_FAM_ANY);
  assert_int_equal(r[4].fam, CONF_FAM_4);
  assert_int_equal(r[4].prefix, 32);
  assert_int_equal(r[4].flags, 0);
  assert_memory_equal(r[4].addr, lo4, 4);
  assert_int_equal(r[4].line, 5);
  assert_int_equal(r[5].prefix, 24);
  assert_int_equal(r[5].flags, ACL_NOTRAP);
  assert_int_equal(r[6].prefix, 8);
  assert_int_equal(r[7].fam, CONF_FAM_6);
  assert_int_equal(r[7].prefix, 32);
  assert_memory_equal(r[7].addr, db8, 4);
  assert_int_equal(r[8].prefix, 128);
  assert_true(r[9].unrestrict);
  assert_int_equal(r[10].prefix, 0);
  assert_int_equal(r[11].prefix, 32);
}

static void test_restrict_errors(void **state)
{
  struct tc *t = *state;
  static const char *const cases[][2] = {
      {"restrict", "missing value for 'restrict'"},
      {"restrict -4", "missing value for 'restrict'"},
      {"restrict foo.example", "restrict needs an address literal, got 'foo.example'"},
      {"unrestrict foo.example nomodify", "restrict needs an address literal"},
      {"restrict 10.0.0.0 mask 255.0.255.0", "bad restrict mask '255.0.255.0'"},
      {"restrict 10.0.0.0 mask ffff::", "bad restrict mask 'ffff::'"},
      {"restrict ::1 mask 255.0.0.0", "bad restrict mask '255.0.0.0' (need a contiguous IPv6"},
      {"restrict 10.0.0.0 mask", "missing value for 'mask'"},
      {"restrict 10.0.0.0 mask 255.0.0.0 mask 255.0.0.0", "not both"},
      {"restrict 10.0.0.0/8 mask 255.0.0.0", "not both"},
      {"restrict default mask 255.0.0.0", "'mask' needs an address"},
      {"restrict 10.0.0.1 bogus", "unknown restrict flag 'bogus'"},
      {"restrict default nomodify NOQUERY", "unknown restrict flag 'NOQUERY'"},
      {"restrict 10.0.0.0/33", "'prefix length' 33 is out of range (must be 0..32)"},
      {"restrict ::/129", "'prefix length' 129 is out of range (must be 0..128)"},
      {"restrict 10.0.0.0/", "'prefix length' needs an integer"},
      {"restrict 10.0.0.0/x", "'prefix length' needs an integer, got 'x'"},
      {"restrict -4 ::1", "'::1' is not an IPv4 address"},
      {"restrict -6 10.0.0.1", "'10.0.0.1' is not an IPv6 address"},
      {"restrict 10.1", "restrict needs an address literal"},
  };

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    expect_error(t, cases[i][0], cases[i][1]);
    assert_int_equal(t->c->n_restricts, 0);
  }
}

/* ---- files, inert directives ------------------------------------------- */

static void test_paths(void **state)
{
  struct tc *t = *state;
  char line[CONF_PATH_MAX + 32];

  expect_ok(t,
            "driftfile /var/lib/ntp/ntp.drift\nstatsdir /var/log/ntpstats/\n"
            "logfile /var/log/ntp.log\nleapfile /usr/share/zoneinfo/leap-seconds.list\n",
            1); /* leapfile: stored, but no effect yet */
  assert_true(has_msg(t, false, "t.conf:4: ", "'leapfile' has no effect yet"));
  assert_string_equal(t->c->driftfile, "/var/lib/ntp/ntp.drift");
  assert_string_equal(t->c->statsdir, "/var/log/ntpstats/");
  assert_string_equal(t->c->logfile, "/var/log/ntp.log");
  assert_string_equal(t->c->leapfile, "/usr/share/zoneinfo/leap-seconds.list");
  expect_error(t, "driftfile", "missing value for 'driftfile'");
  expect_error(t, "logfile /a /b", "unexpected '/b' after 'logfile'");
  snprintf(line, sizeof line, "leapfile /%0*d", CONF_PATH_MAX, 0);
  expect_error(t, line, "value for 'leapfile' too long (max 1023 bytes)");
  assert_string_equal(t->c->leapfile, "");
}

static void test_inert_directives(void **state)
{
  struct tc *t = *state;
  static const char *const ok[] = {
      ("statistics loopstats peerstats clockstats rawstats sysstats protostats usestats "
       "ntsstats ntskestats"),
      "filegen clockstats file clockstats type day link enable",
      "tinker panic 0 step 0.5 stepout 900 freq -12.5",
      "mru maxage 64 maxdepth 1000 initmem 4",
      "keys /etc/ntp.keys",
      "trustedkey 1 2 (4 ... 8) 65535",
      "controlkey 1",
      "requestkey 65535",
      "leapsmearinterval 86400",
      "setvar foo = \"bar baz\"",
      "includefile /etc/ntp.d/extra.conf",
  };

  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
    expect_ok(t, ok[i], 1);
  assert_true(has_msg(t, false, "t.conf:1: ", "'includefile' ignored"));
}

static void test_statistics(void **state)
{
  struct tc *t = *state;

  /* Defaults: nothing written; daily files with the link, as NTPsec. */
  for (int i = 0; i < CONF_STATS_N; i++) {
    assert_false(t->c->filegen[i].enabled);
    assert_true(t->c->filegen[i].daily);
    assert_true(t->c->filegen[i].link);
  }
  expect_ok(t, "statsdir /var/log/ntpstats/\nstatistics loopstats rawstats\n", 0);
  assert_string_equal(t->c->statsdir, "/var/log/ntpstats/");
  assert_true(t->c->filegen[CONF_STATS_LOOP].enabled);
  assert_false(t->c->filegen[CONF_STATS_PEER].enabled);
  assert_true(t->c->filegen[CONF_STATS_RAW].enabled);
  expect_ok(t, "filegen peerstats file peers type none nolink enable\n"
               "filegen rawstats disable\n", 0);
  const conf_filegen *g = &t->c->filegen[CONF_STATS_PEER];
  assert_true(g->enabled);
  assert_false(g->daily);
  assert_false(g->link);
  assert_string_equal(g->file, "peers");
  assert_false(t->c->filegen[CONF_STATS_RAW].enabled);
  /* NTPsec's other names and periods: accepted with one warning each line. */
  expect_ok(t, "statistics sysstats protostats loopstats", 1);
  assert_true(has_msg(t, false, "t.conf:1: ",
                      "'sysstats protostats' accepted, not written (written: loopstats, "
                      "peerstats, rawstats)"));
  expect_ok(t, "filegen loopstats type week", 1);
  assert_true(has_msg(t, false, "t.conf:1: ", "'filegen type week' is written as 'type day'"));
  assert_true(t->c->filegen[CONF_STATS_LOOP].daily);
  /* A file name, not a path; a line with an error changes nothing. */
  expect_error(t, "filegen loopstats file ../x", "takes a file name in statsdir, not a path");
  expect_error(t, "filegen loopstats file a/b", "takes a file name in statsdir, not a path");
  expect_error(t, "filegen loopstats file ..", "takes a file name in statsdir, not a path");
  reset(t);
  assert_int_equal(parse(t, "statistics loopstats\nfilegen loopstats disable type none bogus\n"),
                   -1);
  assert_true(t->c->filegen[CONF_STATS_LOOP].enabled);
  assert_true(t->c->filegen[CONF_STATS_LOOP].daily);
}

/* logconfig applies its keywords in order to a mask of 4 items (info,
 * events, status, statistics) per class (sys, peer, clock, sync), status
 * standing for events; logfacility
 * names a syslog facility. */
static void test_logging(void **state)
{
  struct tc *t = *state;

  expect_ok(t, "logfile /var/log/ntsd.log", 0);
  assert_int_equal(t->c->logmask, LOG_MASK_ALL);
  expect_ok(t, "logconfig =syncall +clockall +peerall +sysall", 0);
  assert_int_equal(t->c->logmask, 0xffff);
  expect_ok(t, "logconfig =syncstatus +sysevents", 0);
  assert_int_equal(t->c->logmask, 0x2000 | 0x0002); /* status: as events */
  expect_ok(t, "logconfig =allsync -syncstatus", 0);
  assert_int_equal(t->c->logmask, 0xd000);
  expect_ok(t, "logconfig -allinfo", 0); /* from all: every class's info off */
  assert_int_equal(t->c->logmask, 0xeeee);
  expect_ok(t, "logconfig =peerevents\nlogconfig clockstatistics", 0); /* no prefix: + */
  assert_int_equal(t->c->logmask, 0x0020 | 0x0800);
  expect_ok(t, "logconfig =allall -allpeer", 0);
  assert_int_equal(t->c->logmask, 0xff0f);
  expect_ok(t, "logfacility local3", 0);
  assert_int_equal(t->c->logfacility, LOG_LOCAL3);
  expect_ok(t, "", 0);
  assert_int_equal(t->c->logfacility, LOG_DAEMON);
  expect_error(t, "logfacility", "missing value for 'logfacility'");
  expect_error(t, "logfacility kern", "'logfacility': expected daemon, user or local0");
  expect_error(t, "logfacility local8", "'logfacility': expected daemon");
  expect_error(t, "logfacility user x", "unexpected 'x' after 'logfacility'");
  expect_error(t, "logconfig =syncbogus", "unknown option '=syncbogus' for 'logconfig'");
  expect_error(t, "logconfig all", "unknown option 'all' for 'logconfig'");
  expect_error(t, "logconfig -", "unknown option '-' for 'logconfig'");
}

static void test_inert_directive_errors(void **state)
{
  struct tc *t = *state;
  static const char *const cases[][2] = {
      {"statistics", "missing value for 'statistics'"},
      {"statistics loopstats bogus", "unknown option 'bogus' for 'statistics'"},
      {"filegen", "missing value for 'filegen'"},
      {"filegen bogus", "unknown option 'bogus' for 'filegen'"},
      {"filegen loopstats type century", "unknown option 'century' for 'filegen type'"},
      {"filegen loopstats file", "missing value for 'file'"},
      {"filegen loopstats enable bogus", "unknown option 'bogus' for 'filegen'"},
      {"logconfig", "missing value for 'logconfig'"},
      {"logconfig =bogus", "unknown option '=bogus' for 'logconfig'"},
      {"logconfig +sys", "unknown option '+sys' for 'logconfig'"},
      {"tinker", "missing value for 'tinker'"},
      {"tinker foo 1", "unknown option 'foo' for 'tinker'"},
      {"tinker panic x", "'panic' needs a number, got 'x'"},
      {"tinker step inf", "'step' needs a number"},
      {"mru maxage -1", "'maxage' -1 is out of range"},
      {"mru maxage", "missing value for 'maxage'"},
      {"keys", "missing value for 'keys'"},
      {"keys /a /b", "unexpected '/b' after 'keys'"},
      {"trustedkey", "missing value for 'trustedkey'"},
      {"trustedkey abc", "'trustedkey' needs an integer, got 'abc'"},
      {"trustedkey 1 0", "'trustedkey' 0 is out of range"},
      {"controlkey 1 2", "unexpected '2' after 'controlkey'"},
      {"requestkey 70000", "'requestkey' 70000 is out of range"},
      {"leapsmearinterval -1", "'leapsmearinterval' -1 is out of range"},
      {"leapsmearinterval 1 2", "unexpected '2' after 'leapsmearinterval'"},
      {"setvar", "missing value for 'setvar'"},
      {"includefile", "missing value for 'includefile'"},
      {"includefile a b", "unexpected 'b' after 'includefile'"},
  };

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    expect_error(t, cases[i][0], cases[i][1]);
}

/* ---- tos, discard, enable, interface, listen, local ------------------------- */

static void test_tos_discard(void **state)
{
  struct tc *t = *state;
  const ntsd_conf *c;

  expect_ok(t,
            "tos minsane 2 minclock 4 maxclock 8\n"
            "tos mindist 0.01 maxdist 2 orphan 10 orphanwait 60\n"
            "discard average 5 minimum 1\n",
            2); /* orphan orphanwait: no effect yet */
  c = t->c;
  assert_int_equal(c->tos_minsane, 2);
  assert_int_equal(c->tos_minclock, 4);
  assert_int_equal(c->tos_maxclock, 8);
  assert_true(c->tos_mindist == 0.01);
  assert_true(c->tos_maxdist == 2);
  assert_int_equal(c->tos_orphan, 10);
  assert_true(c->tos_orphanwait == 60);
  assert_int_equal(c->discard_average, 5);
  assert_int_equal(c->discard_minimum, 1);
  expect_ok(t, "tos ceiling 15 floor 1 cohort 1 bcpollbstep 0\ndiscard monitor 3000\n", 5);
  assert_true(has_msg(t, false, "t.conf:1: ", "'cohort' has no effect yet"));
}

static void test_tos_authselect(void **state)
{
  struct tc *t = *state;
  static const struct {
    const char *word;
    int mode;
  } modes[] = {{"require", NTP_AUTHSEL_REQUIRE},
               {"prefer", NTP_AUTHSEL_PREFER},
               {"mix", NTP_AUTHSEL_MIX},
               {"ignore", NTP_AUTHSEL_IGNORE}};
  char line[64];

  for (size_t k = 0; k < sizeof(modes) / sizeof(modes[0]); k++) {
    snprintf(line, sizeof(line), "tos authselect %s\n", modes[k].word);
    expect_ok(t, line, 0);
    assert_int_equal(t->c->tos_authselect, modes[k].mode);
  }
  /* With the other pairs on one line; the last one counts. */
  expect_ok(t, "tos minsane 2 authselect ignore maxclock 8\ntos authselect require\n", 0);
  assert_int_equal(t->c->tos_authselect, NTP_AUTHSEL_REQUIRE);
  assert_int_equal(t->c->tos_minsane, 2);
  assert_int_equal(t->c->tos_maxclock, 8);
}

static void test_tos_discard_errors(void **state)
{
  struct tc *t = *state;
  static const char *const cases[][2] = {
      {"tos", "missing value for 'tos'"},
      {"tos minsane 0", "'minsane' 0 is out of range (must be 1..16)"},
      {"tos minsane 17", "'minsane' 17 is out of range"},
      {"tos maxclock 101", "'maxclock' 101 is out of range"},
      {"tos maxclock", "missing value for 'maxclock'"},
      {"tos maxdist 0", "'maxdist' 0 is out of range (must be > 0 and <= 16)"},
      {"tos mindist -1", "'mindist' -1 is out of range"},
      {"tos mindist 0x10", "'mindist' needs a number, got '0x10'"},
      {"tos mindist 1e999", "'mindist' needs a number"},
      {"tos orphan 17", "'orphan' 17 is out of range"},
      {"tos orphanwait -1", "'orphanwait' -1 is out of range (must be >= 0"},
      {"tos cohort 2", "'cohort' 2 is out of range (must be 0..1)"},
      {"tos bogus 1", "unknown option 'bogus' for 'tos'"},
      {"tos minsane 1 1", "unknown option '1' for 'tos'"},
      {"tos authselect", "missing value for 'authselect'"},
      {"tos authselect always", "'authselect' needs require, prefer, mix or ignore, got 'always'"},
      {"tos authselect MIX", "'authselect' needs require, prefer, mix or ignore, got 'MIX'"},
      {"tos authselect 1", "'authselect' needs require, prefer, mix or ignore, got '1'"},
      {"tos authselect mix ignore", "unknown option 'ignore' for 'tos'"},
      {"tos authselect \"mix\"", "'authselect' needs require, prefer, mix or ignore"},
      {"discard average 17", "'average' 17 is out of range (must be 0..16)"},
      {"discard minimum 3601", "'minimum' 3601 is out of range"},
      {"discard bogus 1", "unknown option 'bogus' for 'discard'"},
      {"discard", "missing value for 'discard'"},
  };

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    expect_error(t, cases[i][0], cases[i][1]);
}

static void test_enable_disable(void **state)
{
  struct tc *t = *state;

  expect_ok(t, "disable ntp\n", 0);
  assert_false(t->c->clock_control);
  expect_ok(t, "disable ntp\nenable ntp\n", 0);
  assert_true(t->c->clock_control);
  expect_ok(t, "enable auth bclient calibrate kernel monitor stats\n", 6);
  assert_true(has_msg(t, false, "t.conf:1: ", "'enable kernel' has no effect yet"));
  expect_error(t, "enable bogus", "unknown option 'bogus' for 'enable'");
  expect_error(t, "disable ntp Kernel", "unknown option 'Kernel' for 'disable'");
  expect_error(t, "disable", "missing value for 'disable'");
}

static void test_interface(void **state)
{
  struct tc *t = *state;

  expect_ok(t, "interface ignore all\n", 0);
  assert_true(t->c->interface_ignore_all);
  expect_ok(t, "nic drop all\n", 0);
  assert_true(t->c->interface_ignore_all);
  /* The last one wins, as in NTPsec. */
  expect_ok(t, "interface ignore all\ninterface listen all\n", 0);
  assert_false(t->c->interface_ignore_all);
  expect_ok(t, "interface listen eth1\ninterface ignore ipv6\nnic drop 192.0.2.1\n", 3);
  assert_false(t->c->interface_ignore_all);
  assert_true(has_msg(t, false, "t.conf:1: ", "'interface listen eth1' has no effect yet"));
  expect_error(t, "interface bogus all", "unknown option 'bogus' for 'interface'");
  expect_error(t, "interface ignore", "missing value for 'interface'");
  expect_error(t, "interface", "missing value for 'interface'");
  expect_error(t, "interface ignore all extra", "unexpected 'extra' after 'interface'");
}

static void test_listen_local(void **state)
{
  struct tc *t = *state;

  expect_ok(t,
            "listen *\nlisten 192.0.2.1:123\nlisten [::1]:4123\nlisten ::\nlisten 0.0.0.0\n"
            "listen *:1123\nlisten fe80::1%eth0\nlocal stratum 10\n",
            0);
  assert_int_equal(t->c->n_listens, 7);
  assert_string_equal(t->c->listens[0].addr, "");
  assert_int_equal(t->c->listens[0].port, 0);
  assert_string_equal(t->c->listens[1].addr, "192.0.2.1");
  assert_int_equal(t->c->listens[1].port, 123);
  assert_string_equal(t->c->listens[2].addr, "::1");
  assert_int_equal(t->c->listens[2].port, 4123);
  assert_string_equal(t->c->listens[3].addr, "::");
  assert_string_equal(t->c->listens[4].addr, "0.0.0.0");
  assert_string_equal(t->c->listens[5].addr, "");
  assert_int_equal(t->c->listens[5].port, 1123);
  assert_string_equal(t->c->listens[6].addr, "fe80::1%eth0");
  assert_int_equal(t->c->local_stratum, 10);

  expect_error(t, "listen host.example", "'listen' needs ADDR[:PORT]");
  expect_error(t, "listen 192.0.2.1:0", "'listen' needs ADDR[:PORT]");
  expect_error(t, "listen [::1", "got '[::1'");
  expect_error(t, "listen fe80::1%", "'listen' needs ADDR[:PORT]");
  expect_error(t, "listen", "missing value for 'listen'");
  expect_error(t, "listen 192.0.2.1 123", "unexpected '123' after 'listen'");
  expect_error(t, "local stratum 0", "'local stratum' 0 is out of range (must be 1..15)");
  expect_error(t, "local stratum 16", "'local stratum' 16 is out of range");
  expect_error(t, "local stratum", "missing value for 'local stratum'");
  expect_error(t, "local foo 1", "unknown option 'foo' for 'local'");
  expect_error(t, "local", "missing value for 'local'");
  expect_error(t, "local stratum 3 x", "unexpected 'x' after 'local stratum'");
}

/* ---- nts, nts-listen-on, controlsocket ----------------------------------- */

static void test_nts(void **state)
{
  struct tc *t = *state;
  const ntsd_conf *c;

  expect_ok(t,
            "nts enable\nnts key /k.pem\nnts cert /c.pem mintls TLSv1.2\nnts cookie /keys\n"
            "nts ca /etc/ssl/certs\nnts rotate 3600\nnts-listen-on [::1]:4460\n",
            1); /* mintls TLSv1.2: TLS 1.3 is used anyway */
  assert_true(has_msg(t, false, "t.conf:3: ", "always uses TLS 1.3"));
  c = t->c;
  assert_true(c->nts_enable);
  assert_string_equal(c->nts_key, "/k.pem");
  assert_string_equal(c->nts_cert, "/c.pem");
  assert_string_equal(c->nts_mintls, "TLS1.2");
  assert_string_equal(c->nts_cookie, "/keys");
  assert_string_equal(c->nts_ca, "/etc/ssl/certs");
  assert_true(c->nts_rotate == 3600);
  assert_string_equal(c->nts_listen, "[::1]:4460");
  assert_string_equal(c->nts_cookie_secret, "");
  expect_ok(t, "nts cookie-secret /etc/ntsd/secret\n", 0);
  assert_string_equal(t->c->nts_cookie_secret, "/etc/ntsd/secret");
  expect_ok(t, "nts enable\nnts disable\nnts mintls TLS1.3\n", 0);
  assert_false(t->c->nts_enable);
  assert_string_equal(t->c->nts_mintls, "TLS1.3");
  expect_ok(t,
            "nts maxtls TLS1.3\nnts tlsciphersuites TLS_AES_256_GCM_SHA384\n"
            "nts tlsecdhcurves X25519:P-256\nnts aead AES_SIV_CMAC_256\nnts tlsciphers X\n",
            5);
  assert_true(has_msg(t, false, "t.conf:2: ", "'nts tlsciphersuites' has no effect yet"));
  expect_ok(t, "nts-listen-on 4460\n", 0);
  assert_string_equal(t->c->nts_listen, "4460");
  expect_ok(t, "nts-listen-on 127.0.0.1:4460\n", 0);
  assert_string_equal(t->c->nts_listen, "127.0.0.1:4460");
}

static void test_nts_errors(void **state)
{
  struct tc *t = *state;
  static const char *const cases[][2] = {
      {"nts", "missing value for 'nts'"},
      {"nts bogus", "unknown option 'bogus' for 'nts'"},
      {"nts enable (Mandatory for NTS)", "unexpected '(Mandatory' after 'nts enable'"},
      {"nts disable now", "unexpected 'now' after 'nts disable'"},
      {"nts key", "missing value for 'nts key'"},
      {"nts key /a /b", "unexpected '/b' after 'nts key'"},
      {"nts cert", "missing value for 'nts cert'"},
      {"nts cert /c.pem mintls", "missing value for 'mintls'"},
      {"nts cert /c.pem mintls TLS1.0", "'mintls' needs TLS1.2 or TLS1.3, got 'TLS1.0'"},
      {"nts cert /c.pem extra", "unexpected 'extra' after 'nts cert'"},
      {"nts cert /c.pem mintls TLS1.3 x", "unexpected 'x' after 'nts cert'"},
      {"nts mintls TLS1.1", "'nts mintls' needs TLS1.2 or TLS1.3, got 'TLS1.1'"},
      {"nts maxtls SSLv3", "'nts maxtls' needs TLS1.2 or TLS1.3"},
      {"nts rotate 10", "'nts rotate' 10 is out of range"},
      {"nts rotate 31536001", "'nts rotate' 31536001 is out of range"},
      {"nts rotate 1h", "'nts rotate' needs a number, got '1h'"},
      {"nts aead", "missing value for 'nts aead'"},
      {"nts-listen-on", "missing value for 'nts-listen-on'"},
      {"nts-listen-on 0", "'nts-listen-on' needs PORT, ADDR:PORT or [ADDR]:PORT, got '0'"},
      {"nts-listen-on 99999", "got '99999'"},
      {"nts-listen-on host.example:4460", "got 'host.example:4460'"},
      {"nts-listen-on 127.0.0.1", "got '127.0.0.1'"},
      {"nts-listen-on [::1]", "got '[::1]'"},
      {"nts-listen-on [::1]:0", "got '[::1]:0'"},
      {"nts-listen-on 4460 4461", "unexpected '4461' after 'nts-listen-on'"},
  };

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    expect_error(t, cases[i][0], cases[i][1]);
}

static void test_controlsocket(void **state)
{
  struct tc *t = *state;

  expect_ok(t, "controlsocket /run/ntsd/control.sock group ntp\n", 0);
  assert_string_equal(t->c->control_socket, "/run/ntsd/control.sock");
  assert_string_equal(t->c->control_group, "ntp");
  expect_ok(t, "controlsocket /run/x.sock\n", 0);
  assert_string_equal(t->c->control_socket, "/run/x.sock");
  assert_string_equal(t->c->control_group, "");
  expect_error(t, "controlsocket", "missing value for 'controlsocket'");
  expect_error(t, "controlsocket /s group", "missing value for 'group'");
  expect_error(t, "controlsocket /s owner ntp", "unexpected 'owner' after 'controlsocket'");
  expect_error(t, "controlsocket /s group ntp x", "unexpected 'x' after 'controlsocket'");
  expect_error(t,
               "controlsocket /s group "
               "a123456789012345678901234567890123456789012345678901234567890123",
               "value for 'group' too long (max 63 bytes)");
  assert_string_equal(t->c->control_socket, "");
}

/* `metrics ADDR:PORT`: an address literal and a non-zero port. */
static void test_metrics(void **state)
{
  struct tc *t = *state;
  expect_ok(t, "metrics 127.0.0.1:9123\n", 0);
  assert_string_equal(t->c->metrics, "127.0.0.1:9123");
  expect_ok(t, "metrics [::1]:9123\n", 0);
  assert_string_equal(t->c->metrics, "[::1]:9123");
  expect_error(t, "metrics", "missing value for 'metrics'");
  expect_error(t, "metrics 9123", "'metrics' needs ADDR:PORT");
  expect_error(t, "metrics localhost:9123", "'metrics' needs ADDR:PORT");
  expect_error(t, "metrics 127.0.0.1:0", "'metrics' needs ADDR:PORT");
  expect_error(t, "metrics 127.0.0.1", "'metrics' needs ADDR:PORT");
  expect_error(t, "metrics 127.0.0.1:9123 x", "unexpected 'x' after 'metrics'");
  assert_string_equal(t->c->metrics, "");
}

static void test_user(void **state)
{
  struct tc *t = *state;

  expect_ok(t, "user ntsd\n", 0);
  assert_string_equal(t->c->user, "ntsd");
  expect_ok(t, "user ntsd:ntsd-keys\n", 0);
  assert_string_equal(t->c->user, "ntsd:ntsd-keys");
  expect_error(t, "user", "missing value for 'user'");
  expect_error(t, "user a b", "unexpected 'b' after 'user'");
  expect_error(t, "user :g", "expected NAME or NAME:GROUP");
  expect_error(t, "user u:", "expected NAME or NAME:GROUP");
  expect_error(t, "user u:g:h", "expected NAME or NAME:GROUP");
  char line[200];
  snprintf(line, sizeof line, "user %0150d", 0);
  expect_error(t, line, "value for 'user' too long (max 127 bytes)");
  assert_string_equal(t->c->user, "");
}

static void test_sandbox(void **state)
{
  struct tc *t = *state;

  assert_int_equal(t->c->sandbox, 1);
  expect_ok(t, "sandbox off\n", 0);
  assert_int_equal(t->c->sandbox, 0);
  expect_ok(t, "sandbox log\n", 0);
  assert_int_equal(t->c->sandbox, -1);
  expect_ok(t, "sandbox on\n", 0);
  assert_int_equal(t->c->sandbox, 1);
  expect_error(t, "sandbox", "missing value for 'sandbox'");
  expect_error(t, "sandbox 0", "'sandbox': expected on, off or log, not '0'");
  expect_error(t, "sandbox On", "expected on, off or log");
  expect_error(t, "sandbox off now", "unexpected 'now' after 'sandbox'");
}

static void test_threads(void **state)
{
  struct tc *t = *state;

  assert_int_equal(t->c->threads, 1);
  expect_ok(t, "threads 4\n", 0);
  assert_int_equal(t->c->threads, 4);
  expect_ok(t, "threads 64\n", 0);
  assert_int_equal(t->c->threads, 64);
  expect_error(t, "threads", "missing value for 'threads'");
  expect_error(t, "threads 0", "out of range");
  expect_error(t, "threads 65", "out of range");
  expect_error(t, "threads two", "threads");
  expect_error(t, "threads 2 3", "unexpected '3' after 'threads'");
}

static void test_ntsprocesses(void **state)
{
  struct tc *t = *state;

  assert_int_equal(t->c->nts_processes, 1);
  expect_ok(t, "ntsprocesses 2\n", 0);
  assert_int_equal(t->c->nts_processes, 2);
  expect_ok(t, "ntsprocesses 16\n", 0);
  assert_int_equal(t->c->nts_processes, 16);
  expect_error(t, "ntsprocesses", "missing value for 'ntsprocesses'");
  expect_error(t, "ntsprocesses 0", "out of range");
  expect_error(t, "ntsprocesses 17", "out of range");
  expect_error(t, "ntsprocesses -1", "ntsprocesses");
  expect_error(t, "ntsprocesses 2 3", "unexpected '3' after 'ntsprocesses'");
}

/* ---- lines, bytes, messages ------------------------------------------------ */

static void test_unknown_directive(void **state)
{
  struct tc *t = *state;

  expect_error(t, "foo bar", "unknown directive 'foo'");
  assert_string_equal(t->msg[0], "t.conf:1: unknown directive 'foo'");
  expect_error(t, "Server a.example", "unknown directive 'Server'");
  expect_error(t, "refclock shm 0", "unknown directive 'refclock'");
}

static void test_docker_stray_words(void **state)
{
  struct tc *t = *state;

  expect_error(t, "nts enable (Mandatory for NTS)\n", "after 'nts enable'");
  assert_string_equal(t->msg[0], "t.conf:1: unexpected '(Mandatory' after 'nts enable'");
  assert_false(t->c->nts_enable);
}

static void test_comments_blanks_crlf(void **state)
{
  struct tc *t = *state;

  expect_ok(t,
            "# comment\n\n   \n\t\n"
            "server\ta.example\t iburst# comment right after a word\r\n"
            "  driftfile   /x  #  \r\n"
            "#server b.example\n"
            "\v\fpool p.example\f",
            0);
  assert_int_equal(t->c->n_sources, 2);
  assert_string_equal(t->c->sources[0].host, "a.example");
  assert_true(t->c->sources[0].iburst);
  assert_int_equal(t->c->sources[0].line, 5);
  assert_int_equal(t->c->sources[1].kind, CONF_POOL);
  assert_int_equal(t->c->sources[1].line, 8);
  assert_string_equal(t->c->driftfile, "/x");
}

static void test_errors_on_many_lines(void **state)
{
  struct tc *t = *state;
  const char *text = "server a.example iburst\n" /* 1 */
                     "bogus\n"                   /* 2: error */
                     "driftfile /x\n"            /* 3 */
                     "tos minsane 0\n"           /* 4: error */
                     "# comment\n"               /* 5 */
                     "nts enable extra\n"        /* 6: error */
                     "server b.example\n"        /* 7 */
                     "server c minpoll 3x maxpoll y\n"; /* 8: one error for the line */

  assert_int_equal(parse(t, text), -1);
  assert_int_equal(t->n_err, 4);
  assert_true(has_msg(t, true, "t.conf:2: ", "unknown directive 'bogus'"));
  assert_true(has_msg(t, true, "t.conf:4: ", "'minsane' 0 is out of range"));
  assert_true(has_msg(t, true, "t.conf:6: ", "unexpected 'extra' after 'nts enable'"));
  assert_true(has_msg(t, true, "t.conf:8: ", "'minpoll' needs an integer, got '3x'"));
  /* The good lines around the errors still count. */
  assert_int_equal(t->c->n_sources, 2);
  assert_string_equal(t->c->driftfile, "/x");
  assert_int_equal(t->c->tos_minsane, 1);
}

static void test_line_length(void **state)
{
  struct tc *t = *state;
  size_t big = 3 * CONF_LINE_MAX;
  char *text = malloc(big + 32);
  size_t n;

  assert_non_null(text);
  /* Exactly CONF_LINE_MAX bytes, packed with one-letter words: accepted. */
  n = (size_t)snprintf(text, 32, "setvar");
  while (n + 2 <= CONF_LINE_MAX)
    n += (size_t)snprintf(text + n, 3, " a");
  assert_int_equal(n, CONF_LINE_MAX);
  expect_ok(t, text, 1);
  /* One more byte: refused, and the next line is still read. */
  memset(text, '#', CONF_LINE_MAX + 1);
  strcpy(text + CONF_LINE_MAX + 1, "\nfoo\n");
  reset(t);
  assert_int_equal(parse(t, text), -1);
  assert_int_equal(t->n_err, 2);
  assert_true(has_msg(t, true, "t.conf:1: ", "line too long (max 4096 bytes)"));
  assert_true(has_msg(t, true, "t.conf:2: ", "unknown directive 'foo'"));
  /* A very long last line without a newline. */
  memset(text, 'x', big);
  reset(t);
  assert_int_equal(parse_n(t, text, big), -1);
  assert_true(has_msg(t, true, "t.conf:1: ", "line too long"));
  free(text);
}

static void test_nul_and_binary_bytes(void **state)
{
  struct tc *t = *state;
  static const char nul_word[] = "server a\0b\ndriftfile /d\n";
  static const char nul_comment[] = "driftfile /x # c\0mment\n";
  static const char binary[] = "\x01\xff\x7f\x80 x\n\xc3\xa9t\xc3\xa9\n";

  reset(t);
  assert_int_equal(parse_n(t, nul_word, sizeof nul_word - 1), -1);
  assert_int_equal(t->n_err, 1);
  assert_true(has_msg(t, true, "t.conf:1: ", "NUL byte in line"));
  assert_int_equal(t->c->n_sources, 0);
  assert_string_equal(t->c->driftfile, "/d");

  reset(t);
  assert_int_equal(parse_n(t, nul_comment, sizeof nul_comment - 1), 0);
  assert_string_equal(t->c->driftfile, "/x");

  /* Raw bytes are shown escaped so messages stay printable. */
  reset(t);
  assert_int_equal(parse_n(t, binary, sizeof binary - 1), -1);
  assert_string_equal(t->msg[0], "t.conf:1: unknown directive '\\x01\\xff\\x7f\\x80'");
  assert_string_equal(t->msg[1], "t.conf:2: unknown directive '\\xc3\\xa9t\\xc3\\xa9'");
}

static void test_long_word_in_message(void **state)
{
  struct tc *t = *state;
  char line[600];

  memset(line, 'z', sizeof line - 1);
  line[sizeof line - 1] = '\0';
  expect_error(t, line, "unknown directive 'zzzz");
  assert_true(strlen(t->msg[0]) < 200);
  assert_non_null(strstr(t->msg[0], "...'"));
}

static void test_not_nul_terminated(void **state)
{
  struct tc *t = *state;
  static const char text[] = "driftfile /abcdef";

  /* Only the first len bytes are text; the parser must not read past them. */
  assert_int_equal(parse_n(t, text, strlen("driftfile /abc")), 0);
  assert_string_equal(t->c->driftfile, "/abc");
}

static void test_null_diag_counts_warnings(void **state)
{
  struct tc *t = *state;
  const char *text = "statistics sysstats\nbogus\n";

  assert_int_equal(conf_parse_string(t->c, "t.conf", text, strlen(text), NULL, NULL), -1);
  assert_int_equal(t->c->n_warnings, 1);
  /* Warnings accumulate over calls on the same config. */
  assert_int_equal(conf_parse_string(t->c, NULL, "keys /k\n", 8, NULL, NULL), 0);
  assert_int_equal(t->c->n_warnings, 2);
}

static void test_many_entries(void **state)
{
  struct tc *t = *state;
  size_t n = 1000, len = 0;
  char *text = malloc(n * 64);

  assert_non_null(text);
  for (size_t i = 0; i < n; i++)
    len += (size_t)sprintf(text + len, "server s%zu.example\nrestrict 10.0.%zu.%zu\n", i,
                           i / 256, i % 256);
  assert_int_equal(parse_n(t, text, len), 0);
  assert_int_equal(t->c->n_sources, n);
  assert_int_equal(t->c->n_restricts, n);
  assert_string_equal(t->c->sources[n - 1].host, "s999.example");
  assert_int_equal(t->c->restricts[n - 1].addr[3], 999 % 256);
  free(text);
}

/* ---- files and includefile ------------------------------------------------- */

static void write_file(const char *dir, const char *name, const char *text)
{
  char path[512];
  FILE *f;

  snprintf(path, sizeof path, "%s/%s", dir, name);
  f = fopen(path, "w");
  assert_non_null(f);
  assert_int_equal(fputs(text, f) >= 0, 1);
  assert_int_equal(fclose(f), 0);
}

static void remove_files(const char *dir, const char *const *names)
{
  char path[512];

  for (; *names; names++) {
    snprintf(path, sizeof path, "%s/%s", dir, *names);
    unlink(path);
  }
  rmdir(dir);
}

static void test_load_file_errors(void **state)
{
  struct tc *t = *state;

  assert_int_equal(conf_load_file(t->c, "/nonexistent/ntp.conf", collect, t), -1);
  assert_int_equal(t->n_err, 1);
  assert_true(has_msg(t, true, "/nonexistent/ntp.conf: cannot open: ", "No such file"));
  reset(t);
  assert_int_equal(conf_load_file(t->c, "/", collect, t), -1);
  assert_true(has_msg(t, true, "/: cannot open: ", "directory"));
}

static void test_includefile(void **state)
{
  struct tc *t = *state;
  static const char *const names[] = {"main.conf", "sub.conf", "loop.conf", NULL};
  char dir[] = "/tmp/test_conf.XXXXXX", path[512], prefix[600];

  assert_non_null(mkdtemp(dir));
  write_file(dir, "main.conf",
             "driftfile /d\nincludefile sub.conf\nincludefile missing.conf\n"
             "server m.example\n");
  write_file(dir, "sub.conf", "server s.example\nbogus\n");
  write_file(dir, "loop.conf", "server l.example\nincludefile loop.conf\n");

  snprintf(path, sizeof path, "%s/main.conf", dir);
  assert_int_equal(conf_load_file(t->c, path, collect, t), -1);
  assert_int_equal(t->n_err, 2);
  snprintf(prefix, sizeof prefix, "%s/sub.conf:2: ", dir);
  assert_true(has_msg(t, true, prefix, "unknown directive 'bogus'"));
  snprintf(prefix, sizeof prefix, "%s:3: ", path);
  assert_true(has_msg(t, true, prefix, "missing.conf': cannot open: No such file"));
  assert_int_equal(t->c->n_sources, 2);
  assert_string_equal(t->c->sources[0].host, "s.example");
  assert_string_equal(t->c->sources[1].host, "m.example");
  assert_string_equal(t->c->driftfile, "/d");

  /* A file that includes itself stops at the depth limit with one error. */
  reset(t);
  snprintf(path, sizeof path, "%s/loop.conf", dir);
  assert_int_equal(conf_load_file(t->c, path, collect, t), -1);
  assert_int_equal(t->n_err, 1);
  assert_true(has_msg(t, true, path, "'includefile' nested too deeply (max 4)"));
  assert_int_equal(t->c->n_sources, CONF_INCLUDE_DEPTH_MAX + 1);
  remove_files(dir, names);
}

/* What a source line decides about its proxy is reported in its own file, and what
 * only the end of the configuration decides never under a wrong file's line. */
static void test_proxy_includefile(void **state)
{
  struct tc *t = *state;
  static const char *const names[] = {"main.conf", "sub.conf", "late.conf", NULL};
  char dir[] = "/tmp/test_conf.XXXXXX", path[512], prefix[600];

  assert_non_null(mkdtemp(dir));
  write_file(dir, "main.conf", "proxy socks5://127.0.0.1:9050\nincludefile sub.conf\n");
  write_file(dir, "sub.conf",
             "# one\n# two\npool pool.example nts\nserver x.onion nts noproxy\n");
  write_file(dir, "late.conf",
             "pool late.example\nincludefile main.conf\n"
             "server b.example noproxy directfallback\n");
  snprintf(path, sizeof path, "%s/main.conf", dir);
  assert_int_equal(conf_load_file(t->c, path, collect, t), -1);
  assert_int_equal(t->n_err, 2);
  snprintf(prefix, sizeof prefix, "%s/sub.conf:3: ", dir);
  assert_true(has_msg(t, true, prefix, "a 'pool' cannot go through a proxy"));
  snprintf(prefix, sizeof prefix, "%s/sub.conf:4: ", dir);
  assert_true(has_msg(t, true, prefix, "'x.onion' is an onion service"));

  /* The proxy comes after the pool, from an included file: no line number
   * (sub.conf's line 3 would be wrong for late.conf), the pool by name. */
  reset(t);
  snprintf(path, sizeof path, "%s/late.conf", dir);
  assert_int_equal(conf_load_file(t->c, path, collect, t), -1);
  snprintf(prefix, sizeof prefix, "%s: 'pool late.example': ", path);
  assert_true(has_msg(t, true, prefix, "a 'pool' cannot go through a proxy"));
  snprintf(prefix, sizeof prefix, "%s: 'server b.example': ", path);
  assert_true(has_msg(t, false, prefix, "'directfallback' has no effect"));
  remove_files(dir, names);
}

/* ---- fixtures ------------------------------------------------------------------ */

/* The source tree: $NTSD_SOURCE_DIR, or (running the binary by hand) found
 * from __FILE__. */
static bool source_dir(char *out, size_t cap)
{
  const char *src = getenv("NTSD_SOURCE_DIR");
  const char *tail = strstr(__FILE__, "/tests/unit/test_conf.c");

  if (src && *src)
    snprintf(out, cap, "%s", src);
  else if (tail && __FILE__[0] == '/')
    snprintf(out, cap, "%.*s", (int)(tail - __FILE__), __FILE__);
  else
    return false;
  return true;
}

/* The project's own fixtures, tests/fixtures/configs: always there. */
static int load_project_fixture(struct tc *t, const char *name, char *path, size_t cap)
{
  char src[512];
  struct stat st;

  assert_true(source_dir(src, sizeof src));
  snprintf(path, cap, "%s/tests/fixtures/configs/%s", src, name);
  if (stat(path, &st) != 0)
    fail_msg("project fixture %s missing", path);
  reset(t);
  return conf_load_file(t->c, path, collect, t);
}

/* One error, on `line` of path, containing needle; nothing else wrong. */
static void expect_refused_at(struct tc *t, int r, const char *path, int line,
                              const char *needle)
{
  char prefix[1300];

  snprintf(prefix, sizeof prefix, "%s:%d: ", path, line);
  if (r != -1 || t->n_err != 1 || !has_msg(t, true, prefix, needle)) {
    dump(t);
    fail_msg("%s: expected one error on line %d with '%s'", path, line, needle);
  }
}

static void test_fixture_stray_words(void **state)
{
  struct tc *t = *state;
  char path[1024];

  /* Line 22 is `nts enable (needed for the NTS server)`: refused, named by
   * file and line; everything on the other lines was read. */
  int r = load_project_fixture(t, "nts-server-stray-words.conf", path, sizeof path);
  expect_refused_at(t, r, path, 22, "unexpected '(needed' after 'nts enable'");
  assert_true(has_msg(t, true, "", "nts-server-stray-words.conf:22: "));
  assert_int_equal(t->c->n_sources, 3);
  assert_int_equal(t->c->sources[0].kind, CONF_POOL);
  assert_true(t->c->sources[0].iburst && t->c->sources[0].prefer);
  assert_false(t->c->sources[1].prefer);
  assert_int_equal(t->c->n_restricts, 2);
  assert_string_equal(t->c->driftfile, "/var/lib/ntsd/ntp.drift");
  assert_string_equal(t->c->nts_key, "/etc/ssl/private/time.example.net.key");
  assert_string_equal(t->c->nts_cert, "/etc/ssl/certs/time.example.net.fullchain.pem");
  assert_string_equal(t->c->nts_cookie, "/var/lib/ntsd/nts-keys");
}

static void test_fixture_nts_server(void **state)
{
  struct tc *t = *state;
  char path[1024];

  if (load_project_fixture(t, "nts-server.conf", path, sizeof path) != 0)
    dump(t);
  assert_int_equal(t->n_err, 0);
  assert_true(t->c->nts_enable);
  assert_string_equal(t->c->nts_mintls, "TLS1.3");
  assert_string_equal(t->c->nts_listen, "4460");
  assert_string_equal(t->c->nts_cookie, "/var/lib/ntsd/nts-keys");
  assert_int_equal(t->c->n_sources, 4);
  assert_string_equal(t->c->sources[0].host, "0.0.0.0");
  assert_true(t->c->sources[0].prefer);
  assert_true(t->c->sources[3].nts);
  assert_string_equal(t->c->sources[3].host, "nts-c.example.com");
  assert_int_equal(t->c->tos_maxclock, 5);
  assert_int_equal(t->c->n_restricts, 2);
  assert_int_equal(t->c->restricts[1].fam, CONF_FAM_6);
  assert_string_equal(t->c->driftfile, "/var/lib/ntsd/ntp.drift");
  assert_string_equal(t->c->statsdir, "/var/log/ntsstats/");
}

static void test_fixture_client_ports(void **state)
{
  struct tc *t = *state;
  char path[1024];

  if (load_project_fixture(t, "nts-client-ports.conf", path, sizeof path) != 0)
    dump(t);
  assert_int_equal(t->n_err, 0);
  assert_int_equal(t->c->n_sources, 5);
  for (size_t i = 0; i < 5; i++)
    assert_true(t->c->sources[i].nts);
  assert_string_equal(t->c->sources[1].host, "nts.example.se");
  assert_int_equal(t->c->sources[1].port, 4443);
  assert_int_equal(t->c->sources[0].port, 0);
}

static void test_fixture_client_ca(void **state)
{
  struct tc *t = *state;
  char path[1024];

  if (load_project_fixture(t, "nts-client-ca.conf", path, sizeof path) != 0)
    dump(t);
  assert_int_equal(t->n_err, 0);
  assert_int_equal(t->c->n_warnings, 0); /* statistics, filegen, logconfig: all active */
  assert_true(t->c->filegen[CONF_STATS_LOOP].enabled);
  assert_int_equal(t->c->n_sources, 3);
  assert_true(t->c->sources[2].nts);
  assert_string_equal(t->c->sources[2].ca, "/etc/ntsd/certs/root-ca.pem");
  assert_string_equal(t->c->statsdir, "/var/log/ntsd/");
  assert_string_equal(t->c->logfile, "/var/log/ntsd/ntsd.log");
  assert_string_equal(t->c->driftfile, "/var/lib/ntsd/drift/ntp.drift");
}

/* ntpd-rs TOML: refused with one error on the first line, naming the
 * format, instead of an error per line. */
static void test_fixture_toml(void **state)
{
  struct tc *t = *state;
  static const char *const files[] = {"ntpd-rs-sources.toml", "ntpd-rs-nts-server.toml"};
  char path[1024];

  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    int r = load_project_fixture(t, files[i], path, sizeof path);
    expect_refused_at(t, r, path, 1, "looks like TOML");
  }
  expect_error(t, "log-level = \"info\"", "looks like TOML");
  expect_error(t, "key=value", "looks like TOML");
}

/* ---- shared real-world samples ------------------------------------------------- */

/* Published configurations kept verbatim beside the source tree, in
 * ../shared/fixtures/configs, where that directory exists.  They are
 * checked in one test, so a tree without them says so in one line. */
static void shared_docker_sample(struct tc *t, const char *dir)
{
  char path[1200];

  /* Line 27 is `nts enable (Mandatory for NTS)`. */
  snprintf(path, sizeof path, "%s/ntpsec-docker-sample.conf", dir);
  reset(t);
  int r = conf_load_file(t->c, path, collect, t);
  expect_refused_at(t, r, path, 27, "unexpected '(Mandatory' after 'nts enable'");
  assert_int_equal(t->c->n_sources, 3);
  assert_int_equal(t->c->sources[0].kind, CONF_POOL);
  assert_true(t->c->sources[0].iburst && t->c->sources[0].prefer);
  assert_int_equal(t->c->n_restricts, 2);
  assert_string_equal(t->c->driftfile, "/var/lib/ntp/ntp.drift");
  assert_string_equal(t->c->nts_cookie, "/var/lib/ntp/nts-keys");
}

static void load_shared(struct tc *t, const char *dir, const char *name)
{
  char path[1200];

  snprintf(path, sizeof path, "%s/%s", dir, name);
  reset(t);
  if (conf_load_file(t->c, path, collect, t) != 0 || t->n_err != 0) {
    dump(t);
    fail_msg("%s: expected no error", path);
  }
}

static void test_shared_fixtures(void **state)
{
  struct tc *t = *state;
  char src[512], dir[1024], path[1100];
  struct stat st;

  assert_true(source_dir(src, sizeof src));
  snprintf(dir, sizeof dir, "%s/../shared/fixtures/configs", src);
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    print_message("%s not found: the checks of the shared real-world samples are skipped "
                  "(the project's own fixtures ran)\n", dir);
    skip();
  }
  shared_docker_sample(t, dir);

  load_shared(t, dir, "ntpsec-nts-server.conf");
  assert_true(t->c->nts_enable);
  assert_string_equal(t->c->nts_mintls, "TLS1.3");
  assert_string_equal(t->c->nts_listen, "4460");
  assert_int_equal(t->c->n_sources, 4);
  assert_string_equal(t->c->sources[0].host, "0.0.0.0");
  assert_true(t->c->sources[3].nts);
  assert_int_equal(t->c->tos_maxclock, 5);
  assert_int_equal(t->c->n_restricts, 2);
  assert_int_equal(t->c->restricts[1].fam, CONF_FAM_6);
  assert_string_equal(t->c->statsdir, "/var/log/ntpstats/");

  load_shared(t, dir, "ntpsec-quickstart-client.conf");
  assert_int_equal(t->c->n_sources, 5);
  for (size_t i = 0; i < 5; i++)
    assert_true(t->c->sources[i].nts);
  assert_string_equal(t->c->sources[1].host, "nts.ntp.se");
  assert_int_equal(t->c->sources[1].port, 4443);
  assert_int_equal(t->c->sources[0].port, 0);

  load_shared(t, dir, "ptb-nts-client.conf");
  assert_int_equal(t->c->n_warnings, 0); /* statistics, filegen, logconfig: all active */
  assert_int_equal(t->c->n_sources, 3);
  assert_true(t->c->sources[2].nts);
  assert_string_equal(t->c->sources[2].ca, "/var/lib/ntp/ssl/isrgrootx1.pem");
  assert_string_equal(t->c->statsdir, "/var/log/ntp/");
  assert_string_equal(t->c->logfile, "/var/log/ntp/ntp.log");
  assert_string_equal(t->c->driftfile, "/var/lib/ntp/drift/ntp.drift");

  static const char *const toml[] = {"ntpd-rs-client-server.toml", "ntpd-rs-nts-server.toml"};
  for (size_t i = 0; i < sizeof toml / sizeof toml[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, toml[i]);
    reset(t);
    int r = conf_load_file(t->c, path, collect, t);
    expect_refused_at(t, r, path, 1, "looks like TOML");
  }
}

static void test_tinker_thresholds(void **state)
{
  struct tc *t = *state;

  assert_true(t->c->tinker_step < 0 && t->c->tinker_panic < 0); /* defaults */
  expect_ok(t, "tinker panic 0 step 0.5 stepout 900\n", 0);
  assert_true(t->c->tinker_panic == 0);
  assert_true(t->c->tinker_step == 0.5);
  assert_true(t->c->tinker_stepout == 900);
  expect_ok(t, "tinker allan 1500\n", 1); /* no counterpart: warns */
  expect_error(t, "tinker panic -1", "out of range");
}

static void test_nts_ntpserver(void **state)
{
  struct tc *t = *state;

  expect_ok(t, "nts ntpserver time.example.net\n", 0);
  assert_string_equal(t->c->nts_ntpserver[0], "time.example.net");
  assert_int_equal(t->c->n_nts_ntpserver, 1);
  expect_ok(t, "nts ntpserver a.example\nnts ntpserver 192.0.2.1\n", 0);
  assert_int_equal(t->c->n_nts_ntpserver, 2);
  assert_string_equal(t->c->nts_ntpserver[1], "192.0.2.1");
  reset(t); /* a ninth line is refused */
  assert_int_equal(parse(t, "nts ntpserver a\nnts ntpserver a\nnts ntpserver a\n"
                            "nts ntpserver a\nnts ntpserver a\nnts ntpserver a\n"
                            "nts ntpserver a\nnts ntpserver a\nnts ntpserver a\n"), -1);
  assert_true(t->n_err == 1 && has_msg(t, true, "t.conf:9: ", "at most 8"));
  expect_ok(t, "nts ntpserver 2001:db8::1\n", 0);
  expect_error(t, "nts ntpserver", "missing value");
  expect_error(t, "nts ntpserver a b", "unexpected 'b'");
  char line[400];
  snprintf(line, sizeof line, "nts ntpserver %0300d", 0);
  expect_error(t, line, "at most 255 bytes");
}

static void test_aead_option(void **state)
{
  struct tc *t = *state;

  expect_ok(t, "server a.example nts aead aes_siv_cmac_512\n", 0);
  assert_int_equal(conf_aead_id(t->c->sources[0].aead), 17);
  assert_int_equal(conf_aead_id("AES_SIV_CMAC_256"), 15);
  assert_int_equal(conf_aead_id("17"), 17);
  assert_int_equal(conf_aead_id("AES_SIV_CMAC_384"), 0);
  assert_int_equal(conf_aead_id(""), 0);
  expect_error(t, "server a.example nts aead AES_SIV_CMAC_384", "unsupported AEAD");
  expect_error(t, "server a.example nts aead AES-128-GCM", "unsupported AEAD");
}

/* sha256("") in base64, and its first and last bytes. */
#define PIN_EMPTY "sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
#define PIN_ZERO "sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

static void test_pin_option(void **state)
{
  struct tc *t = *state;
  const conf_source *s;

  expect_ok(t, "server a.example nts pin " PIN_EMPTY "\n", 0);
  s = &t->c->sources[0];
  assert_int_equal(s->pins.n, 1);
  assert_int_equal(s->pins.sha256[0][0], 0xe3);
  assert_int_equal(s->pins.sha256[0][1], 0xb0);
  assert_int_equal(s->pins.sha256[0][31], 0x55);
  assert_string_equal(s->ca, "");
  /* Several pins (any one may match), next to `ca`. */
  expect_ok(t, "server 192.0.2.1 nts pin " PIN_ZERO " ca /x.pem pin " PIN_EMPTY "\n", 0);
  s = &t->c->sources[0];
  assert_int_equal(s->pins.n, 2);
  assert_int_equal(s->pins.sha256[0][0], 0);
  assert_int_equal(s->pins.sha256[1][0], 0xe3);
  assert_string_equal(s->ca, "/x.pem");
  expect_ok(t, "server a nts pin " PIN_ZERO " pin " PIN_ZERO " pin " PIN_ZERO " pin " PIN_ZERO
               "\n", 0);
  assert_int_equal(t->c->sources[0].pins.n, CONF_PINS_MAX);
}

static void test_pin_errors(void **state)
{
  struct tc *t = *state;
  static const struct {
    const char *line, *needle;
  } bad[] = {
      {"server a nts pin", "missing value for 'pin'"},
      {"server a pin " PIN_EMPTY, "'pin' needs 'nts'"},
      {"server a nts pin 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "bad value"},
      {"server a nts pin sha1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "bad value"},
      {"server a nts pin SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "bad value"},
      {"server a nts pin sha256:", "bad value"},
      /* no padding, two pads, 31 and 33 bytes */
      {"server a nts pin sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU", "bad value"},
      {"server a nts pin sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuF==", "bad value"},
      {"server a nts pin sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", "bad value"},
      {"server a nts pin sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "bad value"},
      /* URL-safe alphabet, a stray character, unused bits set */
      {"server a nts pin sha256:47DEQpj8HBSa-_TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "bad value"},
      {"server a nts pin sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSu.U=", "bad value"},
      {"server a nts pin sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV=", "bad value"},
      {"server a nts pin " PIN_ZERO " pin " PIN_ZERO " pin " PIN_ZERO " pin " PIN_ZERO
       " pin " PIN_ZERO, "too many 'pin' options (max 4)"},
  };

  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    expect_error(t, bad[i].line, bad[i].needle);
  /* The message names the line. */
  reset(t);
  assert_int_equal(parse(t, "server b nts\nserver a nts pin sha256:x\n"), -1);
  assert_true(has_msg(t, true, "t.conf:2: ", "bad value 'sha256:x' for 'pin'"));
}

/* ---- proxy, transport, listen tcp ------------------------------------------------ */

static void test_proxy_url(void **state)
{
  conf_proxy px;
  char err[120];

  (void)state;
  assert_true(conf_parse_proxy_url("socks5://127.0.0.1:9050", &px, err, sizeof err));
  assert_true(px.set);
  assert_false(px.auth);
  assert_string_equal(px.host, "127.0.0.1");
  assert_int_equal(px.port, 9050);
  assert_string_equal(px.url, "socks5://127.0.0.1:9050");
  /* Percent-encoded credentials; the display URL drops the password. */
  assert_true(conf_parse_proxy_url("SOCKS5H://a%40b:p%3Aw@[::1]:1080/", &px, err, sizeof err));
  assert_true(px.auth);
  assert_string_equal(px.user, "a@b");
  assert_string_equal(px.pass, "p:w");
  assert_string_equal(px.host, "::1");
  assert_int_equal(px.port, 1080);
  assert_string_equal(px.url, "socks5://a%40b@[::1]:1080");
  /* A user alone: an empty password, as curl sends it. */
  assert_true(conf_parse_proxy_url("socks5://tor@10.0.0.1:9050", &px, err, sizeof err));
  assert_true(px.auth);
  assert_string_equal(px.user, "tor");
  assert_string_equal(px.pass, "");

  static const char *const bad[] = {
      "", "socks5://", "socks4://1.2.3.4:1", "http://1.2.3.4:8080", "socks5://1.2.3.4",
      "socks5://1.2.3.4:0", "socks5://1.2.3.4:65536", "socks5://::1:1080",
      "socks5://proxy.example:1080", "socks5://[1.2.3.4]:1", "socks5://1.2.3.4:1/x",
      "socks5://@1.2.3.4:1", "socks5://:pw@1.2.3.4:1", "socks5://u%0@1.2.3.4:1",
      "socks5://u%00@1.2.3.4:1", "socks5://u:%4@1.2.3.4:1", "socks5://u:%@1.2.3.4:1",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = '\0';
    assert_false(conf_parse_proxy_url(bad[i], &px, err, sizeof err));
    assert_true(err[0] != '\0');
  }
  /* 255 bytes of user name fit, 256 do not. */
  char url[900];
  snprintf(url, sizeof url, "socks5://%0255d:x@1.2.3.4:5", 0);
  assert_true(conf_parse_proxy_url(url, &px, err, sizeof err));
  assert_int_equal(strlen(px.user), 255);
  snprintf(url, sizeof url, "socks5://%0256d:x@1.2.3.4:5", 0);
  assert_false(conf_parse_proxy_url(url, &px, err, sizeof err));
  /* The display URL reads back as the same user and stays printable: a
   * ':' or '@' in USER must not look like a password or another host, a
   * control byte must not reach a log line as itself. */
  assert_true(conf_parse_proxy_url("socks5://a%3Ab:pw@1.2.3.4:5", &px, err, sizeof err));
  assert_string_equal(px.user, "a:b");
  assert_string_equal(px.url, "socks5://a%3Ab@1.2.3.4:5");
  assert_true(conf_parse_proxy_url("socks5://x%0a%ff_.~-Z9@1.2.3.4:5", &px, err, sizeof err));
  assert_string_equal(px.url, "socks5://x%0A%FF_.~-Z9@1.2.3.4:5");
  /* 255 bytes that all need encoding: cut, still bounded and ending in the host */
  size_t o = (size_t)snprintf(url, sizeof url, "socks5://");
  for (int i = 0; i < 255; i++)
    o += (size_t)snprintf(url + o, sizeof url - o, "%%25");
  snprintf(url + o, sizeof url - o, "@[2001:db8::1]:65535");
  assert_true(conf_parse_proxy_url(url, &px, err, sizeof err));
  assert_int_equal(strlen(px.user), 255);
  assert_true(strlen(px.url) < sizeof px.url);
  assert_non_null(strstr(px.url, "%25...@[2001:db8::1]:65535"));
}

static void test_proxy_sources(void **state)
{
  struct tc *t = *state;
  const conf_source *s;

  /* The directive applies to every source, wherever it stands; a line's own
   * proxy wins; noproxy goes direct. */
  expect_ok(t,
            "server a.example nts\n"
            "server b.example nts noproxy transport tcp\n"
            "server c.example nts proxy socks5://u:p@[::1]:1080 transport udp directfallback\n"
            "server abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuv.onion nts\n"
            "proxy socks5://127.0.0.1:9050\n",
            0);
  s = t->c->sources;
  assert_true(s[0].proxy.set);
  assert_string_equal(s[0].proxy.host, "127.0.0.1");
  assert_int_equal(s[0].transport, CONF_TRANSPORT_AUTO);
  assert_false(s[1].proxy.set);
  assert_int_equal(s[1].transport, CONF_TRANSPORT_TCP);
  assert_true(s[2].proxy.set);
  assert_string_equal(s[2].proxy.host, "::1");
  assert_string_equal(s[2].proxy.pass, "p");
  assert_int_equal(s[2].transport, CONF_TRANSPORT_UDP);
  assert_true(s[2].directfallback);
  assert_true(s[3].proxy.set);
  assert_true(t->c->proxy.set);

  /* Names that would leak: an onion service without a proxy, a pool through one. */
  expect_error(t, "server x.onion nts", "needs a 'proxy'");
  expect_error(t, "server x.onion. nts", "needs a 'proxy'");
  reset(t);
  assert_int_equal(parse(t, "proxy socks5://127.0.0.1:9050\nserver x.onion nts noproxy\n"), -1);
  assert_true(has_msg(t, true, "t.conf:2: ", "needs a 'proxy'"));
  expect_error(t, "pool pool.example nts proxy socks5://127.0.0.1:1", "a 'pool' cannot");
  expect_error(t, "pool pool.example nts\nproxy socks5://127.0.0.1:1", "a 'pool' cannot");
  expect_error(t, "server a proxy socks5://1.2.3.4:5 noproxy", "'proxy' and 'noproxy'");
  expect_error(t, "server a transport quic", "bad value 'quic' for 'transport'");
  expect_error(t, "proxy socks5://1.2.3.4", "bad value for 'proxy'");
  expect_error(t, "proxy socks5://1.2.3.4:5 extra", "unexpected");
  /* A bad URL is reported without echoing a password. */
  reset(t);
  assert_int_equal(parse(t, "proxy socks5://u:s3cret@1.2.3.4\n"), -1);
  assert_false(has_msg(t, true, "", "s3cret"));
  /* Nor where the URL is a stray word: a forgotten `proxy`, a second URL,
   * a password with '@' or '/' in it (the parser splits at the last '@'). */
  static const char *const stray[] = {
      "server a.example nts socks5://u:s3cret@127.0.0.1:9050\n",
      "proxy socks5://127.0.0.1:9050 SOCKS5H://u:s3cret@127.0.0.1:9050\n",
      "server a.example socks5://u:s3cret@x/@127.0.0.1:9050\n",
      "server a.example socks5://u:s3c@ret@127.0.0.1:9050\n",
  };
  for (size_t i = 0; i < sizeof stray / sizeof stray[0]; i++) {
    reset(t);
    assert_int_equal(parse(t, stray[i]), -1);
    assert_true(has_msg(t, true, "t.conf:1: ", "127.0.0.1:9050"));
    if (has_msg(t, true, "", "s3c") || has_msg(t, false, "", "s3c")) {
      dump(t);
      fail_msg("password echoed for: %s", stray[i]);
    }
  }
  /* directfallback only means something with a proxy. */
  expect_ok(t, "server a directfallback\n", 1);
  assert_true(conf_is_onion("x.ONION"));
  assert_false(conf_is_onion("onion"));
  assert_false(conf_is_onion("x.onion.example"));
}

static void test_listen_tcp(void **state)
{
  struct tc *t = *state;

  expect_ok(t, "listen 127.0.0.1:1234 tcp\nlisten [::1]\n", 0);
  assert_int_equal(t->c->n_listens, 2);
  assert_true(t->c->listens[0].tcp);
  assert_int_equal(t->c->listens[0].port, 1234);
  assert_false(t->c->listens[1].tcp);
  expect_error(t, "listen 127.0.0.1 udp", "unexpected 'udp'");
  expect_error(t, "listen 127.0.0.1 tcp tcp", "unexpected 'tcp'");
}

/* ---- conf_split_host_port ------------------------------------------------------ */

static void test_split_host_port(void **state)
{
  static const struct {
    const char *in, *host;
    uint16_t port;
  } good[] = {
      {"host", "host", 0},
      {"host:123", "host", 123},
      {"1.2.3.4:65535", "1.2.3.4", 65535},
      {"[::1]", "::1", 0},
      {"[::1]:4460", "::1", 4460},
      {"::1", "::1", 0},
      {"2001:db8::1", "2001:db8::1", 0},
      {"fe80::1%eth0", "fe80::1%eth0", 0},
      {"h:00123", "h", 123},
      {"*:1", "*", 1},
  };
  static const char *const bad[] = {"",       "host:",  "host:0",   "host:65536", "host:99999",
                                     "host:12a", "host:-1", "host:+1", "[::1",      "[::1]x",
                                     "[::1]:", "[]",     "[]:123",   ":123",       "[::1]:0"};
  char host[CONF_HOST_MAX];
  uint16_t port;

  (void)state;
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    port = 7;
    if (!conf_split_host_port(good[i].in, host, sizeof host, &port))
      fail_msg("'%s' refused", good[i].in);
    assert_string_equal(host, good[i].host);
    assert_int_equal(port, good[i].port);
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (conf_split_host_port(bad[i], host, sizeof host, &port))
      fail_msg("'%s' accepted", bad[i]);
  /* The host must fit with its NUL. */
  assert_false(conf_split_host_port("abcdef:1", host, 6, &port));
  assert_true(conf_split_host_port("abcde:1", host, 6, &port));
  assert_string_equal(host, "abcde");
  assert_false(conf_split_host_port("[::1]", host, 3, &port));
  assert_false(conf_split_host_port(NULL, host, sizeof host, &port));
  assert_false(conf_split_host_port("h", host, 0, &port));
}

/* ---- small per-module configurations -------------------------------------- */

static void test_module_configs(void **state)
{
  struct tc *t = *state;
  conf_tos tos = conf_get_tos(t->c);
  conf_tinker tk = conf_get_tinker(t->c);
  conf_ratelimit rl = conf_get_ratelimit(t->c);

  /* Defaults. */
  assert_int_equal(tos.minsane, 1);
  assert_int_equal(tos.maxclock, 10);
  assert_int_equal(tos.authselect, NTP_AUTHSEL_MIX);
  assert_int_equal(tos.auth_sources, 0);
  assert_true(tk.step < 0 && tk.stepout < 0 && tk.panic < 0);
  assert_int_equal(rl.average_log2, 3);
  assert_int_equal(rl.minimum, 2);
  assert_string_equal(conf_get_nts_client(t->c).ca, "");

  expect_ok(t,
            "tos minsane 2 minclock 4 maxclock 7 mindist 0.01 maxdist 2 authselect require\n"
            "tinker step 0.5 stepout 60 panic 0\ndiscard average 5 minimum 1\n"
            "nts ca /etc/ntsd/ca.pem\nnocerttimecheck 3\n"
            "server a nts\nserver b nts noselect\nserver c\npool d nts\n",
            0);
  tos = conf_get_tos(t->c);
  tk = conf_get_tinker(t->c);
  rl = conf_get_ratelimit(t->c);
  assert_int_equal(tos.minsane, 2);
  assert_int_equal(tos.minclock, 4);
  assert_int_equal(tos.maxclock, 7);
  assert_true(tos.mindist == 0.01 && tos.maxdist == 2);
  assert_int_equal(tos.authselect, NTP_AUTHSEL_REQUIRE);
  assert_int_equal(tos.auth_sources, 2); /* a and d; b has noselect, c is plain */
  assert_true(tk.step == 0.5 && tk.stepout == 60 && tk.panic == 0);
  assert_int_equal(rl.average_log2, 5);
  assert_int_equal(rl.minimum, 1);
  conf_nts_client nc = conf_get_nts_client(t->c);
  assert_string_equal(nc.ca, "/etc/ntsd/ca.pem");
  assert_int_equal(nc.nocerttimecheck, 3);
}

/* ---- statuses: warnings and the docs table come from one table --------- */

/* Lines whose status the daemon's code contradicted before the statuses were
 * one table: each must warn exactly when the directive has no effect. */
static void test_status_disagreements(void **state)
{
  struct tc *t = *state;

  expect_ok(t, "server 192.0.2.1 true\n", 1); /* truechimer marking is not implemented */
  assert_true(has_msg(t, false, "t.conf:1: ", "'true' has no effect yet"));
  expect_ok(t, "server 192.0.2.1 nts aead AES_SIV_CMAC_512\n", 0); /* offered alone */
  expect_ok(t, "nts aead AES_SIV_CMAC_512\n", 1);
  assert_true(has_msg(t, false, "t.conf:1: ", "'nts aead' has no effect yet"));
  expect_ok(t, "tinker step 1 stepout 60 panic 0\n", 0);
  expect_ok(t, "leapfile /usr/share/zoneinfo/leap-seconds.list\n", 1);
  assert_true(has_msg(t, false, "t.conf:1: ", "leap seconds come from the selected sources"));
  expect_ok(t, "restrict default notrust version ntpport\n", 3);
  assert_true(has_msg(t, false, "t.conf:1: ", "'notrust' is ignored"));
  expect_ok(t, "restrict default nomodify notrap nopeer noquery nomrulist noepeer\n", 0);
  expect_ok(t, "restrict source nomodify\n", 1);
}

/* A valid line for each row of the status table, keyed "directive option"
 * ("directive" for the directive's own row, "directive *" for "any other
 * word").  A row without an example fails the test. */
static const struct {
  const char *key, *line;
} examples[] = {
    {"server", "server 192.0.2.1"}, {"pool", "pool pool.example"}, {"peer", "peer 192.0.2.1"},
    {"server iburst", "server 192.0.2.1 iburst"}, {"server burst", "server 192.0.2.1 burst"},
    {"server prefer", "server 192.0.2.1 prefer"},
    {"server noselect", "server 192.0.2.1 noselect"},
    {"server true", "server 192.0.2.1 true"}, {"server nts", "server ke.example nts"},
    {"server noval", "server ke.example nts noval"},
    {"server minpoll", "server 192.0.2.1 minpoll 4"},
    {"server maxpoll", "server 192.0.2.1 maxpoll 12"},
    {"server version", "server 192.0.2.1 version 3"},
    {"server ca", "server ke.example nts ca /ca.pem"},
    {"server aead", "server ke.example nts aead AES_SIV_CMAC_256"},
    {"server pin", "server ke.example nts pin " PIN_EMPTY},
    {"server proxy", "server ke.example nts proxy socks5://127.0.0.1:9050"},
    {"server noproxy", "server ke.example nts noproxy"},
    {"server transport", "server ke.example nts transport tcp"},
    {"server directfallback", "server ke.example nts proxy socks5://127.0.0.1:1 directfallback"},
    {"proxy", "proxy socks5://127.0.0.1:9050"},
    {"server key", "server 192.0.2.1 key 1"}, {"server xleave", "server 192.0.2.1 xleave"},
    {"server ttl", "server 192.0.2.1 ttl 1"}, {"server mode", "server 192.0.2.1 mode 1"},
    {"server bias", "server 192.0.2.1 bias 0.1"},
    {"server maxdelay", "server 192.0.2.1 maxdelay 0.1"},
    {"restrict", "restrict 192.0.2.0/24"}, {"unrestrict", "unrestrict 192.0.2.0/24"},
    {"restrict default", "restrict default"}, {"restrict source", "restrict source"},
    {"restrict ignore", "restrict default ignore"},
    {"restrict noserve", "restrict default noserve"},
    {"restrict limited", "restrict default limited"},
    {"restrict kod", "restrict default kod"},
    {"restrict noquery", "restrict default noquery"},
    {"restrict nomodify", "restrict default nomodify"},
    {"restrict nopeer", "restrict default nopeer"},
    {"restrict noepeer", "restrict default noepeer"},
    {"restrict notrap", "restrict default notrap"},
    {"restrict nomrulist", "restrict default nomrulist"},
    {"restrict notrust", "restrict default notrust"},
    {"restrict version", "restrict default version"},
    {"restrict ntpport", "restrict default ntpport"},
    {"driftfile", "driftfile /d"}, {"statsdir", "statsdir /s"}, {"logfile", "logfile /l"},
    {"leapfile", "leapfile /l"}, {"statistics", "statistics loopstats"},
    {"filegen", "filegen loopstats type day"}, {"logconfig", "logconfig =syncall"},
    {"logfacility", "logfacility local0"},
    {"tos", "tos minsane 1"}, {"tos minsane", "tos minsane 2"},
    {"tos minclock", "tos minclock 2"}, {"tos maxclock", "tos maxclock 5"},
    {"tos mindist", "tos mindist 0.01"}, {"tos maxdist", "tos maxdist 1"},
    {"tos orphan", "tos orphan 10"}, {"tos orphanwait", "tos orphanwait 60"},
    {"tos authselect", "tos authselect require"}, {"tos ceiling", "tos ceiling 15"},
    {"tos floor", "tos floor 1"}, {"tos cohort", "tos cohort 1"},
    {"tos bcpollbstep", "tos bcpollbstep 1"}, {"discard", "discard average 4"},
    {"discard average", "discard average 5"}, {"discard minimum", "discard minimum 1"},
    {"discard monitor", "discard monitor 3000"}, {"tinker", "tinker step 0.2"},
    {"tinker panic", "tinker panic 0"}, {"tinker step", "tinker step 0"},
    {"tinker stepout", "tinker stepout 60"}, {"tinker allan", "tinker allan 1500"},
    {"tinker dispersion", "tinker dispersion 15"}, {"tinker freq", "tinker freq 1"},
    {"tinker huffpuff", "tinker huffpuff 900"}, {"tinker stepback", "tinker stepback 1"},
    {"tinker stepfwd", "tinker stepfwd 1"}, {"tinker tick", "tinker tick 0.01"},
    {"mru", "mru maxage 64"}, {"keys", "keys /etc/ntp.keys"}, {"setvar", "setvar a = b"},
    {"trustedkey", "trustedkey 1"}, {"controlkey", "controlkey 1"},
    {"requestkey", "requestkey 1"}, {"leapsmearinterval", "leapsmearinterval 0"},
    {"enable", "enable ntp"}, {"disable", "disable ntp"}, {"enable ntp", "disable ntp"},
    {"enable auth", "enable auth"}, {"enable bclient", "enable bclient"},
    {"enable calibrate", "disable calibrate"}, {"enable kernel", "enable kernel"},
    {"enable monitor", "disable monitor"}, {"enable stats", "enable stats"},
    {"interface", "interface listen all"}, {"nic", "nic ignore all"},
    {"interface all", "interface drop all"}, {"interface *", "interface listen eth0"},
    {"listen", "listen 127.0.0.1:1123"}, {"local", "local stratum 10"},
    {"nts", "nts enable"}, {"nts enable", "nts enable"}, {"nts disable", "nts disable"},
    {"nts key", "nts key /k.pem"}, {"nts cert", "nts cert /c.pem"},
    {"nts cookie", "nts cookie /keys"},
    {"nts cookie-secret", "nts cookie-secret /etc/ntsd/secret"},
    {"nts ca", "nts ca /etc/ssl/certs"},
    {"nts ntpserver", "nts ntpserver ntp.example"}, {"nts mintls", "nts mintls TLS1.3"},
    {"nts maxtls", "nts maxtls TLS1.3"}, {"nts rotate", "nts rotate 3600"},
    {"nts tlsciphers", "nts tlsciphers X"}, {"nts tlsciphersuites", "nts tlsciphersuites X"},
    {"nts tlsecdhcurves", "nts tlsecdhcurves X25519"}, {"nts aead", "nts aead X"},
    {"nts-listen-on", "nts-listen-on 4461"}, {"controlsocket", "controlsocket /run/c.sock"},
    {"metrics", "metrics 127.0.0.1:9123"},
    {"includefile", "includefile /dev/null"}, {"nocerttimecheck", "nocerttimecheck 1"},
    {"user", "user ntsd"}, {"sandbox", "sandbox off"}, {"threads", "threads 2"},
    {"ntsprocesses", "ntsprocesses 2"},
};

struct rows {
  struct tc *t;
  const char *path;
  size_t n;
};

static const char *example_for(const conf_item *it)
{
  char key[64];

  if (!it->option)
    snprintf(key, sizeof key, "%s", it->directive);
  else
    snprintf(key, sizeof key, "%s %s", it->directive, it->option[0] ? it->option : "*");
  for (size_t i = 0; i < sizeof examples / sizeof examples[0]; i++)
    if (strcmp(examples[i].key, key) == 0)
      return examples[i].line;
  fail_msg("no example line for the status table row '%s'", key);
  return NULL;
}

/* Loads the row's example from a file (so includefile is followed): no error,
 * and a warning carrying the row's note exactly when its status warns. */
static void check_row(void *ctx, const conf_item *it)
{
  struct rows *r = ctx;
  const char *line = example_for(it);
  bool warns = conf_status_warns(it->status);
  FILE *f = fopen(r->path, "w");

  r->n++;
  assert_non_null(f);
  fprintf(f, "%s\n", line);
  fclose(f);
  reset(r->t);
  assert_int_equal(conf_load_file(r->t->c, r->path, collect, r->t), 0);
  if (r->t->n_err || r->t->n_warn != (warns ? 1u : 0u) ||
      (warns && (!it->note || !has_msg(r->t, false, r->path, it->note)))) {
    dump(r->t);
    fail_msg("'%s': status %s, expected %s", line, conf_status_name(it->status),
             warns ? "one warning with the row's note" : "no warning");
  }
}

static void test_status_rows_warn_as_listed(void **state)
{
  char path[] = "/tmp/ntsd-conf-row-XXXXXX";
  int fd = mkstemp(path);
  struct rows r = {*state, path, 0};

  assert_true(fd >= 0);
  close(fd);
  conf_each_item(check_row, &r);
  unlink(path);
  /* One example per row, so no example outlives its row. */
  assert_int_equal(r.n, sizeof examples / sizeof examples[0]);
}

/* docs/configuration.md holds the table between two marker lines, exactly as
 * `ntsd --list-directives` prints it (scripts/update-directive-table). */
static void test_docs_table_matches(void **state)
{
  static const char begin[] = "<!-- BEGIN directive table", end[] = "<!-- END directive table";
  const char *src = getenv("NTSD_SOURCE_DIR");
  char path[1024], *doc = NULL, *want = NULL;
  size_t doc_len = 0, want_len = 0;
  FILE *f, *m;

  (void)state;
  if (!src)
    skip();
  snprintf(path, sizeof path, "%s/docs/configuration.md", src);
  assert_non_null(f = fopen(path, "r"));
  assert_non_null(m = open_memstream(&doc, &doc_len));
  for (char ln[1024], in = 0; fgets(ln, sizeof ln, f);) {
    if (strncmp(ln, end, sizeof end - 1) == 0)
      in = 0;
    if (in)
      fputs(ln, m);
    if (strncmp(ln, begin, sizeof begin - 1) == 0)
      in = 1;
  }
  fclose(f);
  fclose(m);
  assert_non_null(m = open_memstream(&want, &want_len));
  conf_write_directive_table(m);
  fclose(m);
  if (strcmp(doc, want) != 0)
    fail_msg("the directive table in %s differs from `ntsd --list-directives`; run "
             "scripts/update-directive-table", path);
  free(doc);
  free(want);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
  const struct CMUnitTest tests[] = {
      T(test_defaults),
      T(test_server_options),
      T(test_server_hosts),
      T(test_pool_peer),
      T(test_server_ignored_options),
      T(test_server_poll_defaults_follow),
      T(test_server_errors),
      T(test_restrict),
      T(test_restrict_errors),
      T(test_paths),
      T(test_inert_directives),
      T(test_statistics),
      T(test_logging),
      T(test_inert_directive_errors),
      T(test_tos_discard),
      T(test_tos_discard_errors),
      T(test_tos_authselect),
      T(test_enable_disable),
      T(test_interface),
      T(test_listen_local),
      T(test_nts),
      T(test_nts_errors),
      T(test_controlsocket),
      T(test_metrics),
      T(test_user),
      T(test_sandbox),
      T(test_threads),
      T(test_ntsprocesses),
      T(test_unknown_directive),
      T(test_docker_stray_words),
      T(test_comments_blanks_crlf),
      T(test_errors_on_many_lines),
      T(test_line_length),
      T(test_nul_and_binary_bytes),
      T(test_long_word_in_message),
      T(test_not_nul_terminated),
      T(test_null_diag_counts_warnings),
      T(test_many_entries),
      T(test_load_file_errors),
      T(test_includefile),
      T(test_fixture_stray_words),
      T(test_fixture_nts_server),
      T(test_fixture_client_ports),
      T(test_fixture_client_ca),
      T(test_fixture_toml),
      T(test_shared_fixtures),
      T(test_tinker_thresholds),
      T(test_nts_ntpserver),
      T(test_aead_option),
      T(test_pin_option),
      T(test_pin_errors),
      cmocka_unit_test(test_proxy_url),
      T(test_proxy_sources),
      T(test_proxy_includefile),
      T(test_listen_tcp),
      T(test_split_host_port),
      T(test_module_configs),
      T(test_status_disagreements),
      T(test_status_rows_warn_as_listed),
      T(test_docs_table_matches),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
