/* conf: ntp.conf (NTPsec syntax) parser and the parsed configuration.
 *
 * Text in, a ntsd_conf out, diagnostics as "file:line: message".  Parsing
 * checks syntax and values only: it opens no referenced file (keys, certs,
 * CA files, drift file) and resolves no name, so `ntsd --check` can run it
 * anywhere.  `includefile` is followed (depth-limited) by conf_load_file.
 *
 * Each directive and option carries a status (enum conf_status): what it
 * does in this release.  A valid line whose status is not in force is
 * accepted with a warning; unknown directives, missing or out-of-range
 * values and stray words are errors.  The same entries give the status
 * table of docs/configuration.md (conf_write_directive_table). */
#ifndef NTSD_DAEMON_CONF_H
#define NTSD_DAEMON_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONF_HOST_MAX 256
#define CONF_NTPSERVER_MAX 8 /* `nts ntpserver` lines */
#define CONF_PATH_MAX 1024
#define CONF_LINE_MAX 4096 /* longer lines are an error ("line too long") */
#define CONF_INCLUDE_DEPTH_MAX 4 /* includefile nesting below the top file */
#define CONF_THREADS_MAX 64     /* `threads N` */
#define CONF_NTSPROCS_MAX 16    /* `ntsprocesses N` */

enum conf_source_kind { CONF_SERVER, CONF_POOL, CONF_PEER };

/* `pin sha256:BASE64`: SHA-256 digests of the NTS-KE server's
 * SubjectPublicKeyInfo; any one matching is enough. */
#define CONF_PINS_MAX 4
#define CONF_PIN_LEN 32
typedef struct conf_pins {
  uint8_t sha256[CONF_PINS_MAX][CONF_PIN_LEN];
  unsigned n;
} conf_pins;

/* A SOCKS5 proxy: `proxy socks5://[USER[:PASS]@]HOST:PORT` (docs/anonymity.md). */
#define CONF_PROXY_CRED_MAX 255 /* RFC 1929: a one-byte length */
typedef struct conf_proxy {
  bool set;          /* a proxy applies */
  char host[64];     /* the proxy's address literal (IPv4 or IPv6), no brackets */
  uint16_t port;
  bool auth;         /* USER given: RFC 1929 with user/pass; else "no authentication" */
  char user[CONF_PROXY_CRED_MAX + 1]; /* percent-decoded, 1..255 bytes */
  char pass[CONF_PROXY_CRED_MAX + 1]; /* percent-decoded, 0..255 bytes */
  char url[400];     /* the URL without the password, for display */
} conf_proxy;

/* `transport`: how NTP reaches the server (docs/anonymity.md, "Transports"). */
enum conf_transport { CONF_TRANSPORT_AUTO = 0, CONF_TRANSPORT_UDP, CONF_TRANSPORT_TCP };

typedef struct conf_source {
  enum conf_source_kind kind;
  char host[CONF_HOST_MAX]; /* name or address literal, no brackets */
  uint16_t port;            /* 0: default (123, or 4460 for the KE with nts) */
  bool nts;
  char ca[CONF_PATH_MAX];   /* "" = global `nts ca` or the system store */
  char aead[32];            /* "" = default negotiation */
  conf_pins pins;           /* n == 0: no pin */
  bool noval;               /* NTPsec: do not verify the certificate */
  bool iburst, burst, prefer, noselect, trusted /* `true` */;
  int minpoll, maxpoll;     /* log2 s; defaults 6 and 10; allowed 0..17 */
  int version;              /* 1..4, default 4 */
  /* After parsing, the proxy in force for this source: the line's own
   * `proxy URL`, else the `proxy` directive's unless `noproxy`; proxy.set
   * false: direct. */
  conf_proxy proxy;
  bool noproxy;
  enum conf_transport transport;
  bool directfallback;      /* may fall back to direct UDP when no proxied way works */
  unsigned line;            /* for messages */
} conf_source;

enum conf_family { CONF_FAM_ANY = 0, CONF_FAM_4 = 4, CONF_FAM_6 = 6 };

typedef struct conf_restrict {
  enum conf_family fam;  /* for `default`: ANY unless -4 / -6 given */
  bool is_default;
  bool is_source;        /* `restrict source`: applies to our servers */
  uint8_t addr[16];      /* 4 bytes used for IPv4 */
  unsigned prefix;       /* from `mask` or /len; 32/128 for a host */
  uint32_t flags;        /* ACL_* from proto/acl.h */
  bool unrestrict;       /* `unrestrict ADDR`: remove the entry */
  unsigned line;
} conf_restrict;

typedef struct conf_listen {
  char addr[64]; /* address literal ("" = wildcard) */
  uint16_t port; /* 0 = default */
  bool tcp;      /* `listen ADDR[:PORT] tcp`: NTP over TCP too, same address and port */
} conf_listen;

/* The statistics files written (docs/statistics.md), by their NTPsec names. */
enum conf_stats { CONF_STATS_LOOP, CONF_STATS_PEER, CONF_STATS_RAW, CONF_STATS_N };

/* `statistics` and `filegen` for one of them. */
typedef struct conf_filegen {
  bool enabled;             /* `statistics NAME`, or `filegen NAME enable` */
  bool daily;               /* `type day` (the default): NAME.YYYYMMDD; `type none`: NAME */
  bool link;                /* daily: NAME is a hard link to today's file (`link`, default) */
  char file[CONF_PATH_MAX]; /* `file F`: the name in statsdir ("": NAME) */
} conf_filegen;

typedef struct ntsd_conf {
  conf_source *sources;
  size_t n_sources;
  conf_restrict *restricts;
  size_t n_restricts;
  conf_listen *listens;   /* `listen ADDR[:PORT] [tcp]` */
  size_t n_listens;
  bool interface_ignore_all; /* `interface ignore all`: serve nothing */

  int local_stratum;      /* `local stratum N`; -1 if unset */

  char driftfile[CONF_PATH_MAX];
  char statsdir[CONF_PATH_MAX];
  conf_filegen filegen[CONF_STATS_N];
  char logfile[CONF_PATH_MAX];
  uint32_t logmask;       /* `logconfig`: LOG_MASK_ALL unless set (log.h) */
  int logfacility;        /* `logfacility NAME` (ntsd): syslog's; LOG_DAEMON */
  char leapfile[CONF_PATH_MAX];
  bool clock_control;     /* false after `disable ntp` */

  /* tos */
  int tos_minsane, tos_minclock, tos_maxclock;
  double tos_mindist, tos_maxdist;
  int tos_orphan;         /* -1 unset */
  double tos_orphanwait;
  int tos_authselect;     /* ntp_authsel from proto/select.h; default mix */

  /* tinker: the discipline's thresholds, seconds; -1 = default */
  double tinker_step;     /* step beyond this (0: never after start-up) */
  double tinker_stepout;  /* ... once it has lasted this long */
  double tinker_panic;    /* refuse offsets beyond this (0: no limit) */

  /* discard: rate limit for `restrict ... limited` */
  int discard_average;    /* log2 s, default 3 */
  int discard_minimum;    /* s, default 2 */

  /* `threads N` (ntsd): NTP server threads; 1 serves on the main loop */
  int threads;
  /* `ntsprocesses N` (chrony's directive): NTS-KE processes side by side */
  int nts_processes;

  /* NTS */
  bool nts_enable;
  char nts_key[CONF_PATH_MAX];
  char nts_cert[CONF_PATH_MAX];
  char nts_cookie[CONF_PATH_MAX];
  char nts_cookie_secret[CONF_PATH_MAX]; /* `nts cookie-secret FILE` (ntsd): cookie keys
                                            derived from a shared secret; "" = none */
  char nts_ca[CONF_PATH_MAX];
  char nts_listen[80];    /* `nts-listen-on PORT|ADDR:PORT`; "" = default */
  /* `nts ntpserver NAME` (ntsd), repeatable: the NTP servers NTS-KE names, one
   * per response in turn; none: clients use our address */
  char nts_ntpserver[CONF_NTPSERVER_MAX][256];
  size_t n_nts_ntpserver;
  char nts_mintls[16];
  double nts_rotate;      /* seconds, default 86400 */
  int nocerttimecheck;    /* NTS-KEs that may skip certificate dates before the
                             first synchronisation (0: none) */

  conf_proxy proxy;       /* `proxy URL`: every source's unless its own or `noproxy` */

  /* control socket */
  char control_socket[CONF_PATH_MAX]; /* "" = built-in default */
  char control_group[64];

  char metrics[80];       /* `metrics ADDR:PORT` (ntsd): the Prometheus endpoint; "" = off */

  char user[128];         /* `user NAME[:GROUP]` (ntsd): drop root to it; "" = stay */
  int sandbox;            /* `sandbox on|off|log` (ntsd): the system call filter's
                             level, SANDBOX_ON (default), _OFF or _LOG (sandbox.h);
                             -F overrides it */

  unsigned n_warnings;
} ntsd_conf;

/* Small configurations for single modules, copied out by value: a module
 * keeps its own copy and no pointer into the whole ntsd_conf, which a
 * reload will replace.  The ntsd_conf fields stay the parser's output. */
typedef struct conf_tos { /* selection (`tos`) */
  double mindist, maxdist; /* s */
  int minsane, minclock, maxclock;
  int authselect;          /* ntp_authsel from proto/select.h */
  unsigned auth_sources;   /* `nts` sources without `noselect`: authenticated ones
                              that count as configured, resolved or not */
} conf_tos;

typedef struct conf_tinker { /* the discipline's thresholds, s; < 0: its default */
  double step, stepout, panic;
} conf_tinker;

typedef struct conf_ratelimit { /* `discard`: the rate of `restrict ... limited` */
  int average_log2;             /* one request per 2^this s on average */
  int minimum;                  /* s between two requests at least */
} conf_ratelimit;

typedef struct conf_nts_client {
  char ca[CONF_PATH_MAX]; /* `nts ca`: sources' trust anchors unless their own `ca`;
                             "" = the system store */
  int nocerttimecheck;    /* NTS-KEs that may skip certificate dates before the
                             first synchronisation */
} conf_nts_client;

conf_tos conf_get_tos(const ntsd_conf *c);
conf_tinker conf_get_tinker(const ntsd_conf *c);
conf_ratelimit conf_get_ratelimit(const ntsd_conf *c);
conf_nts_client conf_get_nts_client(const ntsd_conf *c);

/* One diagnostic line, already formatted as "file:line: message". */
typedef void (*conf_diag_fn)(void *ctx, bool is_error, const char *msg);

ntsd_conf *conf_new(void); /* all defaults */
void conf_free(ntsd_conf *c);

/* Parses text (need not be NUL-terminated) named `fname` in messages.
 * Returns 0 if there were no errors, -1 otherwise (all errors reported). */
int conf_parse_string(ntsd_conf *c, const char *fname, const char *text, size_t len,
                      conf_diag_fn diag, void *ctx);
/* Reads and parses a file (and its includefiles); -1 on errors, including an
 * unreadable file ("file: cannot open: reason"). */
int conf_load_file(ntsd_conf *c, const char *path, conf_diag_fn diag, void *ctx);

/* Splits "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6 literal.
 * Returns false on a bad port or an oversized host. */
bool conf_split_host_port(const char *in, char *host, size_t host_cap, uint16_t *port);

/* Parses `socks5://[USER[:PASS]@]HOST:PORT` (or `socks5h://`: both send
 * names to the proxy).  HOST is an address literal, IPv6 in brackets; USER
 * and PASS may be percent-encoded.  False with a message in err. */
bool conf_parse_proxy_url(const char *url, conf_proxy *out, char *err, size_t errlen);

/* Decodes `sha256:BASE64` (a `pin` value) into its 32-byte digest; false
 * if it is anything else. */
bool conf_parse_pin(const char *v, uint8_t out[CONF_PIN_LEN]);

/* True for a name under the `.onion` top-level domain (only Tor resolves it). */
bool conf_is_onion(const char *host);

/* The AEAD id for a `server ... aead NAME` value (AES_SIV_CMAC_256 -> 15,
 * AES_SIV_CMAC_512 -> 17, case-insensitive, or the number); 0 if unsupported. */
uint16_t conf_aead_id(const char *name);

/* What a directive or option does in this release. */
enum conf_status {
  CONF_ACTIVE,  /* in effect */
  CONF_ALWAYS,  /* what it asks for always holds here; accepted silently */
  CONF_PARTIAL, /* in effect in part; warns, saying what differs */
  CONF_STORED,  /* checked and stored, no effect yet; warns */
  CONF_IGNORED, /* checked, then ignored; warns */
};

/* One row of the status table: a directive, or one of its options. */
typedef struct conf_item {
  const char *directive; /* first word ("tos") */
  const char *option;    /* NULL: the directive itself; "": any other word */
  const char *args;      /* what follows it, for the docs ("N", "FILE"); "" if none */
  enum conf_status status;
  const char *note;      /* warns: the warning after the quoted name; else a remark or NULL */
} conf_item;

typedef void (*conf_item_fn)(void *ctx, const conf_item *item);

bool conf_status_warns(enum conf_status s);
const char *conf_status_name(enum conf_status s); /* "active", "stored", ... */
/* Calls fn for every directive and every option the parser knows, in table
 * order; an option table shared by several directives comes once. */
void conf_each_item(conf_item_fn fn, void *ctx);
/* Writes the status table of docs/configuration.md (markdown). */
void conf_write_directive_table(FILE *f);
/* The same as an mdoc tag list, for ntsd.conf(5). */
void conf_write_directive_mdoc(FILE *f);

#endif
