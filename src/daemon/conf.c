/* conf: ntp.conf parser, NTPsec syntax, so existing configurations keep working.
 *
 * What is understood is the tables below, not a list here: `directives[]` and
 * the option tables it points to.  Each entry has a status (conf.h); the
 * parser turns it into the warning for a valid line (note_status), and
 * conf_write_directive_table (`ntsd --list-directives`) into the table in
 * docs/configuration.md, which a unit test compares.
 *
 * Anything else is an error.  The parser never resolves names and never opens the
 * files a directive names (only includefile is read), so `ntsd --check` is safe. */
#include "daemon/conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

#include "daemon/log.h"
#include "daemon/sandbox.h"
#include "proto/acl.h"
#include "proto/select.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define TOKENS_MAX (CONF_LINE_MAX / 2 + 1) /* words need a separator each */
#define FILE_SIZE_MAX (1u << 20)           /* an ntp.conf is a few KiB */
#define ENTRIES_MAX 4096                   /* per list; bounds include fan-out */
#define QUOTE_MAX 120                      /* bytes of a word shown in a message */
#define NO_FIELD SIZE_MAX
#define NOEFFECT "has no effect yet (ignored)"
#define NOSYMKEYS "ignored: symmetric keys are not supported"
#define NOXLEAVE "ignored: interleaved mode is not supported"

struct parser {
  ntsd_conf *c;
  const char *fname;
  unsigned line;     /* 0 before the first line: messages then omit it */
  conf_diag_fn diag;
  void *ctx;
  unsigned errors;
  int depth;         /* includefile nesting; -1 for text, whose includes are ignored */
  bool line_failed;  /* set by an error, so a line is never reported twice */
  bool quiet_opts;   /* the directive warns as a whole: its options do not */
  bool stop;         /* give up on the rest of the file (it is not ntp.conf) */
  bool included;     /* an includefile was read: a source's line may be another file's */
};

struct cursor {
  char **tok;
  size_t n, i;
};

/* A directive's options, for the parser and for the status table. */
enum sub_kind {
  SUB_OPTS,  /* struct opt: OPTION [VALUE] anywhere after the directive */
  SUB_WORDS, /* struct word: a keyword among the directive's words */
  SUB_CMDS,  /* struct directive: the directive's second word picks a handler */
};

struct subtable {
  enum sub_kind kind;
  const void *tab;
  size_t n;
};
/* Directives sharing options share the table (compared by `tab`). */
#define SUBTABLE(kind, tab) (&(const struct subtable){kind, tab, ARRAY_LEN(tab)})

struct directive;
typedef void (*directive_fn)(struct parser *p, struct cursor *cu, const struct directive *d);
struct directive {
  const char *name;
  directive_fn fn;
  size_t arg;       /* handler specific: field offset, kind, flag value */
  const char *args; /* what follows the name, for the docs */
  enum conf_status st;
  const char *note; /* warning text after "'name' " when st warns; else a remark */
  const struct subtable *subs; /* NULL if none */
};
/* name, fn, arg, args, st, note, subs; variadic, as some arguments are macros. */
#define DIRECTIVE(...) {__VA_ARGS__}

/* A keyword with a status of its own (restrict flags, enable flags, interface
 * targets); an entry named NULL, last in its table, matches any other word. */
struct word {
  const char *name;
  const char *args;
  enum conf_status st;
  const char *note;
};

static const struct word *find_word(const struct word *tab, size_t n, const char *name)
{
  for (size_t i = 0; i < n; i++)
    if (!tab[i].name || strcmp(tab[i].name, name) == 0)
      return &tab[i];
  return NULL;
}

/* ---- diagnostics ------------------------------------------------------ */

static void report(struct parser *p, bool is_error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(struct parser *p, bool is_error, const char *fmt, ...)
{
  char msg[512], out[2 * CONF_PATH_MAX + sizeof msg + 32]; /* fname: an include path */
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (is_error) {
    p->errors++;
    p->line_failed = true;
  } else {
    p->c->n_warnings++;
  }
  if (!p->diag)
    return;
  if (p->line)
    snprintf(out, sizeof out, "%s:%u: %s", p->fname, p->line, msg);
  else
    snprintf(out, sizeof out, "%s: %s", p->fname, msg);
  p->diag(p->ctx, is_error, out);
}

/* Words are arbitrary bytes; a message must stay printable (terminals, syslog) and
 * bounded, so control and non-ASCII bytes are shown as \xNN and long words cut. */
struct quoted {
  char s[QUOTE_MAX + 8];
};

/* The PASS of a word that looks like "SCHEME://USER:PASS@...", split at the last '@'
 * as conf_parse_proxy_url does: [*from, *to).  A misplaced proxy URL (a forgotten
 * `proxy` keyword, a second URL) reaches a message as a stray word, and a password
 * must never be logged. */
static bool url_password(const char *w, size_t *from, size_t *to)
{
  const char *auth = strstr(w, "://"), *at, *colon;

  if (!auth)
    return false;
  auth += 3;
  at = strrchr(auth, '@');
  colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
  if (!colon)
    return false;
  *from = (size_t)(colon + 1 - w);
  *to = (size_t)(at - w);
  return true;
}

static const char *quote(struct quoted *q, const char *w)
{
  size_t o = 0, from = 0, to = 0;
  bool masked = url_password(w, &from, &to);

  for (size_t i = 0; w[i]; i++) {
    unsigned char ch = (unsigned char)w[i];
    if (masked && i >= from && i < to) {
      if (i == from && o + 4 <= QUOTE_MAX) {
        memcpy(q->s + o, "***", 3);
        o += 3;
      }
      continue;
    }
    if (o + 4 > QUOTE_MAX) {
      memcpy(q->s + o, "...", 3);
      o += 3;
      break;
    }
    if (ch >= 0x20 && ch < 0x7f)
      q->s[o++] = (char)ch;
    else
      o += (size_t)snprintf(q->s + o, sizeof q->s - o, "\\x%02x", ch);
  }
  q->s[o] = '\0';
  return q->s;
}

bool conf_status_warns(enum conf_status s)
{
  return s != CONF_ACTIVE && s != CONF_ALWAYS;
}

static bool no_effect(enum conf_status s)
{
  return s == CONF_STORED || s == CONF_IGNORED;
}

/* The one place a status becomes a warning: `what` is the directive or
 * option as the user wrote it. */
static void note_status(struct parser *p, const char *what, enum conf_status st,
                        const char *note)
{
  if (conf_status_warns(st))
    report(p, false, "'%s' %s", what, note ? note : NOEFFECT);
}

/* ---- words and values --------------------------------------------------- */

static const char *next_tok(struct cursor *cu)
{
  return cu->i < cu->n ? cu->tok[cu->i++] : NULL;
}

static const char *need_tok(struct parser *p, struct cursor *cu, const char *what)
{
  const char *t = next_tok(cu);

  if (!t)
    report(p, true, "missing value for '%s'", what);
  return t;
}

static bool expect_end(struct parser *p, struct cursor *cu, const char *after)
{
  struct quoted q;

  if (cu->i >= cu->n)
    return true;
  report(p, true, "unexpected '%s' after '%s'", quote(&q, cu->tok[cu->i]), after);
  return false;
}

static void unknown_option(struct parser *p, const char *word, const char *what)
{
  struct quoted q;

  report(p, true, "unknown option '%s' for '%s'", quote(&q, word), what);
}

static bool in_list(const char *const *list, const char *s)
{
  for (; *list; list++)
    if (strcmp(*list, s) == 0)
      return true;
  return false;
}

static bool parse_long(const char *s, long *out)
{
  char *end;
  long v;

  errno = 0;
  v = strtol(s, &end, 10);
  if (end == s || *end || errno)
    return false;
  *out = v;
  return true;
}

/* strtod also takes "inf", "nan" and hex floats; a config wants plain decimals. */
static bool parse_double(const char *s, double *out)
{
  char *end;
  double v;

  if (!*s || s[strspn(s, "0123456789.eE+-")])
    return false;
  errno = 0;
  v = strtod(s, &end);
  if (end == s || *end || errno || !isfinite(v))
    return false;
  *out = v;
  return true;
}

static bool get_int(struct parser *p, const char *what, const char *s, long lo, long hi,
                    int *out)
{
  struct quoted q;
  long v;

  if (!parse_long(s, &v)) {
    report(p, true, "'%s' needs an integer, got '%s'", what, quote(&q, s));
    return false;
  }
  if (v < lo || v > hi) {
    report(p, true, "'%s' %s is out of range (must be %ld..%ld)", what, quote(&q, s), lo, hi);
    return false;
  }
  *out = (int)v;
  return true;
}

static bool get_authsel(struct parser *p, const char *what, const char *s, int *out)
{
  struct quoted q;
  ntp_authsel m;

  if (!ntp_authsel_from_name(s, &m)) {
    report(p, true, "'%s' needs require, prefer, mix or ignore, got '%s'", what, quote(&q, s));
    return false;
  }
  *out = (int)m;
  return true;
}

static bool get_num(struct parser *p, const char *what, const char *s, double lo, double hi,
                    bool lo_open, double *out)
{
  struct quoted q;
  double v;

  if (!parse_double(s, &v)) {
    report(p, true, "'%s' needs a number, got '%s'", what, quote(&q, s));
    return false;
  }
  if (v < lo || (lo_open && v == lo) || v > hi) {
    report(p, true, "'%s' %s is out of range (must be %s%g and <= %g)", what, quote(&q, s),
           lo_open ? "> " : ">= ", lo, hi);
    return false;
  }
  *out = v;
  return true;
}

/* Checks that s fits a field of `cap` bytes; copies it there unless dst is NULL. */
static bool copy_str(struct parser *p, const char *what, const char *s, char *dst, size_t cap)
{
  size_t len = strlen(s);

  if (len >= cap) {
    report(p, true, "value for '%s' too long (max %zu bytes)", what, cap - 1);
    return false;
  }
  if (dst)
    memcpy(dst, s, len + 1);
  return true;
}

static bool parse_port(const char *s, uint16_t *out)
{
  unsigned long v = 0;

  if (!*s)
    return false;
  for (; *s; s++) {
    if (*s < '0' || *s > '9')
      return false;
    v = v * 10 + (unsigned long)(*s - '0');
    if (v > 65535)
      return false;
  }
  if (v == 0)
    return false;
  *out = (uint16_t)v;
  return true;
}

static bool is_name_char(char ch)
{
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         ch == '-' || ch == '.' || ch == '_';
}

/* 4 or 6 for an address literal, 0 otherwise; an IPv6 literal may carry a %scope when
 * allow_scope.  Stores the address bytes in addr (16 bytes) unless it is NULL. */
static int addr_family(const char *s, bool allow_scope, uint8_t *addr)
{
  uint8_t buf[16];
  char tmp[INET6_ADDRSTRLEN + 1];
  const char *pct = allow_scope ? strchr(s, '%') : NULL;
  size_t len = pct ? (size_t)(pct - s) : strlen(s);

  if (!addr)
    addr = buf;
  if (inet_pton(AF_INET, s, addr) == 1)
    return 4;
  if (len >= sizeof tmp || (pct && !pct[1]))
    return 0;
  for (const char *sc = pct ? pct + 1 : ""; *sc; sc++)
    if (!is_name_char(*sc))
      return 0;
  memcpy(tmp, s, len);
  tmp[len] = '\0';
  return inet_pton(AF_INET6, tmp, addr) == 1 ? 6 : 0;
}

/* Names go to the resolver later; refusing what no resolver takes catches typos such as
 * a stray "(" here instead of at run time. */
static bool valid_host(const char *h)
{
  if (strchr(h, ':'))
    return addr_family(h, true, NULL) == 6;
  if (!*h || *h == '-' || *h == '.')
    return false;
  for (; *h; h++)
    if (!is_name_char(*h))
      return false;
  return true;
}

bool conf_split_host_port(const char *in, char *host, size_t host_cap, uint16_t *port)
{
  const char *h = in, *portstr = NULL;
  size_t hlen;
  uint16_t pv = 0;

  if (!in || !host || !host_cap || !port)
    return false;
  if (in[0] == '[') {
    const char *close = strchr(in, ']');
    if (!close)
      return false;
    h = in + 1;
    hlen = (size_t)(close - h);
    if (close[1] == ':')
      portstr = close + 2;
    else if (close[1])
      return false;
  } else {
    const char *colon = strchr(in, ':');
    hlen = strlen(in);
    if (colon && !strchr(colon + 1, ':')) { /* one colon: HOST:PORT; more: bare IPv6 */
      hlen = (size_t)(colon - in);
      portstr = colon + 1;
    }
  }
  if (hlen == 0 || hlen >= host_cap || (portstr && !parse_port(portstr, &pv)))
    return false;
  memcpy(host, h, hlen);
  host[hlen] = '\0';
  *port = pv;
  return true;
}

/* ---- keyword/value options, driven by tables ------------------------------ */

enum opt_kind {
  OPT_FLAG, OPT_INT, OPT_NUM, OPT_STR, OPT_AUTHSEL /* int: ntp_authsel */,
  OPT_PIN /* conf_pins */, OPT_PROXY /* conf_proxy */, OPT_TRANSPORT /* conf_transport */
};

struct opt {
  const char *name;
  enum opt_kind kind;
  size_t off;       /* field in the target struct; NO_FIELD: check the value only */
  size_t cap;       /* OPT_STR: field size */
  double lo, hi;    /* OPT_INT, OPT_NUM */
  bool lo_open;     /* OPT_NUM: lo itself is out of range */
  const char *args; /* the value, for the docs */
  enum conf_status st;
  const char *note; /* as in struct directive */
};
#define FLAG(n, off, st, note) {n, OPT_FLAG, off, 0, 0, 0, false, "", st, note}
#define INT(n, off, lo, hi, st, note) {n, OPT_INT, off, 0, lo, hi, false, "N", st, note}
#define NUM(n, off, lo, hi, lo_open, st, note) \
  {n, OPT_NUM, off, 0, lo, hi, lo_open, "X", st, note}

static const struct opt *find_opt(const struct opt *tab, size_t n, const char *name)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(tab[i].name, name) == 0)
      return &tab[i];
  return NULL;
}

/* One standard base64 character's value, or -1. */
static int b64_value(char ch)
{
  static const char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const char *at = ch ? strchr(alphabet, ch) : NULL;
  return at ? (int)(at - alphabet) : -1;
}

/* Strict base64 of exactly CONF_PIN_LEN bytes: 43 characters and one '=',
 * the last character's unused low bits zero (as curl and openssl print it). */
static bool pin_decode(const char *s, uint8_t out[CONF_PIN_LEN])
{
  enum { CHARS = (CONF_PIN_LEN * 4 + 2) / 3 }; /* 43 */
  uint32_t acc = 0;
  unsigned bits = 0, n = 0;

  if (strlen(s) != CHARS + 1 || s[CHARS] != '=')
    return false;
  for (size_t i = 0; i < CHARS; i++) {
    int v = b64_value(s[i]);
    if (v < 0)
      return false;
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (uint8_t)(acc >> bits);
    }
  }
  return n == CONF_PIN_LEN && (acc & ((1u << bits) - 1)) == 0;
}

bool conf_parse_pin(const char *v, uint8_t out[CONF_PIN_LEN])
{
  static const char prefix[] = "sha256:";
  return strncmp(v, prefix, sizeof prefix - 1) == 0 && pin_decode(v + sizeof prefix - 1, out);
}

/* `pin sha256:BASE64`, added to the line's pins. */
static bool add_pin(struct parser *p, const char *what, const char *v, conf_pins *pins)
{
  struct quoted q;
  uint8_t d[CONF_PIN_LEN];

  if (!conf_parse_pin(v, d)) {
    report(p, true, "bad value '%s' for '%s' (sha256: and the base64 of a SHA-256 digest)",
           quote(&q, v), what);
    return false;
  }
  if (pins->n >= CONF_PINS_MAX) {
    report(p, true, "too many '%s' options (max %d)", what, CONF_PINS_MAX);
    return false;
  }
  memcpy(pins->sha256[pins->n++], d, sizeof d);
  return true;
}

/* ---- proxy URLs ----------------------------------------------------------- */

static int hex_value(char ch)
{
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

/* Percent-decodes in[0..n) into out (cap bytes, NUL-terminated); false on a
 * bad escape, an encoded NUL or an overflow. */
static bool pct_decode(const char *in, size_t n, char *out, size_t cap, size_t *out_len)
{
  size_t o = 0;

  for (size_t i = 0; i < n; i++) {
    int ch = (unsigned char)in[i];
    if (ch == '%') {
      int hi = i + 2 < n ? hex_value(in[i + 1]) : -1;
      int lo = hi >= 0 ? hex_value(in[i + 2]) : -1;
      if (lo < 0 || (ch = hi * 16 + lo) == 0)
        return false;
      i += 2;
    }
    if (o + 1 >= cap)
      return false;
    out[o++] = (char)ch;
  }
  out[o] = '\0';
  *out_len = o;
  return true;
}

/* USER for the display URL: percent-encoded but for RFC 3986's unreserved
 * characters, so the URL reads back as the same user (a raw ':' or '@' would
 * look like a password or another host) and a control byte never reaches a
 * log line as itself.  Cut with "..." where it does not fit. */
static void pct_encode(const char *in, char *out, size_t cap)
{
  static const char hex[] = "0123456789ABCDEF";
  size_t o = 0;

  for (; *in; in++) {
    unsigned char ch = (unsigned char)*in;
    bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                 (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~';
    if (o + (plain ? 1 : 3) + 4 > cap) {
      memcpy(out + o, "...", 3);
      o += 3;
      break;
    }
    if (plain) {
      out[o++] = (char)ch;
    } else {
      out[o++] = '%';
      out[o++] = hex[ch >> 4];
      out[o++] = hex[ch & 15];
    }
  }
  out[o] = '\0';
}

static bool proxy_fail(char *err, size_t errlen, const char *why)
{
  snprintf(err, errlen, "%s", why);
  return false;
}

/* USER[:PASS] of a proxy URL. */
static bool proxy_userinfo(const char *ui, size_t n, conf_proxy *px, char *err, size_t errlen)
{
  const char *colon = memchr(ui, ':', n);
  size_t ulen = colon ? (size_t)(colon - ui) : n, got;

  if (!pct_decode(ui, ulen, px->user, sizeof px->user, &got) || got == 0)
    return proxy_fail(err, errlen, "bad user name (1 to 255 bytes, percent-encoded)");
  if (colon && !pct_decode(colon + 1, n - ulen - 1, px->pass, sizeof px->pass, &got))
    return proxy_fail(err, errlen, "bad password (0 to 255 bytes, percent-encoded)");
  px->auth = true;
  return true;
}

bool conf_parse_proxy_url(const char *url, conf_proxy *out, char *err, size_t errlen)
{
  static const char *const schemes[] = {"socks5://", "socks5h://"};
  conf_proxy px = {.set = true};
  const char *rest = NULL, *at;
  char host[CONF_HOST_MAX], hostport[CONF_HOST_MAX];
  size_t hp_len;
  bool has_port;
  int fam;

  for (size_t i = 0; i < 2 && !rest; i++)
    if (strncasecmp(url, schemes[i], strlen(schemes[i])) == 0)
      rest = url + strlen(schemes[i]);
  if (!rest)
    return proxy_fail(err, errlen, "not a socks5:// URL");
  at = strrchr(rest, '@');
  if (at && !proxy_userinfo(rest, (size_t)(at - rest), &px, err, errlen))
    return false;
  rest = at ? at + 1 : rest;
  hp_len = strcspn(rest, "/");
  if ((rest[hp_len] && strcmp(rest + hp_len, "/") != 0) || hp_len >= sizeof hostport)
    return proxy_fail(err, errlen, "needs HOST:PORT and no path");
  memcpy(hostport, rest, hp_len);
  hostport[hp_len] = '\0';
  has_port = hostport[0] == '[' ? strstr(hostport, "]:") != NULL
                                : strchr(hostport, ':') == strrchr(hostport, ':') &&
                                      strchr(hostport, ':');
  if (!has_port || !conf_split_host_port(hostport, host, sizeof host, &px.port))
    return proxy_fail(err, errlen, "needs HOST:PORT (IPv6 in brackets)");
  fam = addr_family(host, false, NULL);
  if (!fam || (fam == 6) != (hostport[0] == '['))
    return proxy_fail(err, errlen,
                      "the proxy's HOST must be an address literal (no name is resolved)");
  memcpy(px.host, host, strlen(host) + 1);
  /* what the rest of the URL leaves: "socks5://" "@" "[" host "]" ":65535" */
  char user[sizeof px.url - 9 - 1 - 1 - sizeof px.host - 6];
  pct_encode(px.auth ? px.user : "", user, sizeof user);
  snprintf(px.url, sizeof px.url, "socks5://%s%s%s%s%s:%u", user,
           px.auth ? "@" : "", fam == 6 ? "[" : "", px.host, fam == 6 ? "]" : "",
           (unsigned)px.port);
  *out = px;
  return true;
}

bool conf_is_onion(const char *host)
{
  size_t n = strlen(host);

  while (n && host[n - 1] == '.')
    n--;
  return n >= 6 && strncasecmp(host + n - 6, ".onion", 6) == 0;
}

static bool get_proxy(struct parser *p, const char *what, const char *v, conf_proxy *out)
{
  char why[120];
  conf_proxy px;

  if (!conf_parse_proxy_url(v, &px, why, sizeof why)) {
    /* The URL may carry a password: never echo it. */
    report(p, true, "bad value for '%s': %s (socks5://[USER[:PASS]@]HOST:PORT)", what, why);
    return false;
  }
  if (out)
    *out = px;
  return true;
}

static bool get_transport(struct parser *p, const char *what, const char *v, int *out)
{
  static const char *const names[] = {"auto", "udp", "tcp"};
  struct quoted q;

  for (int i = 0; i < 3; i++)
    if (strcmp(v, names[i]) == 0) {
      *out = i;
      return true;
    }
  report(p, true, "bad value '%s' for '%s' (auto, udp or tcp)", quote(&q, v), what);
  return false;
}

static bool apply_opt(struct parser *p, struct cursor *cu, const struct opt *o, void *base)
{
  char *field = o->off == NO_FIELD ? NULL : (char *)base + o->off;
  const char *v = NULL;
  bool yes = true;
  int iv;
  double dv;

  if (o->kind != OPT_FLAG && !(v = need_tok(p, cu, o->name)))
    return false;
  switch (o->kind) {
  case OPT_FLAG:
    if (field)
      memcpy(field, &yes, sizeof yes);
    break;
  case OPT_INT:
    if (!get_int(p, o->name, v, (long)o->lo, (long)o->hi, &iv))
      return false;
    if (field)
      memcpy(field, &iv, sizeof iv);
    break;
  case OPT_NUM:
    if (!get_num(p, o->name, v, o->lo, o->hi, o->lo_open, &dv))
      return false;
    if (field)
      memcpy(field, &dv, sizeof dv);
    break;
  case OPT_STR:
    if (!copy_str(p, o->name, v, field, o->cap))
      return false;
    break;
  case OPT_AUTHSEL:
    if (!get_authsel(p, o->name, v, &iv))
      return false;
    if (field)
      memcpy(field, &iv, sizeof iv);
    break;
  case OPT_PIN:
    if (!add_pin(p, o->name, v, (conf_pins *)(void *)field))
      return false;
    break;
  case OPT_PROXY:
    if (!get_proxy(p, o->name, v, (conf_proxy *)(void *)field))
      return false;
    break;
  case OPT_TRANSPORT:
    if (!get_transport(p, o->name, v, &iv))
      return false;
    if (field) {
      enum conf_transport tv = (enum conf_transport)iv;
      memcpy(field, &tv, sizeof tv);
    }
    break;
  }
  if (!p->quiet_opts)
    note_status(p, o->name, o->st, o->note);
  return true;
}

/* The rest of the line as OPTION [VALUE] ...; at least one option. */
static bool parse_opts(struct parser *p, struct cursor *cu, const char *what,
                       const struct opt *tab, size_t n, void *base)
{
  const char *t;

  if (cu->i >= cu->n) {
    report(p, true, "missing value for '%s'", what);
    return false;
  }
  while ((t = next_tok(cu))) {
    const struct opt *o = find_opt(tab, n, t);
    if (!o) {
      unknown_option(p, t, what);
      return false;
    }
    if (!apply_opt(p, cu, o, base))
      return false;
  }
  return true;
}

/* Grows an array by one slot.  The capacity is implicit (the next power of two >= n,
 * at least 4), so ntsd_conf needs no capacity fields. */
static bool grow(struct parser *p, void **arr, size_t n, size_t size, const char *what)
{
  void *na;

  if (n >= ENTRIES_MAX) {
    report(p, true, "too many '%s' lines (max %d)", what, ENTRIES_MAX);
    return false;
  }
  if (n != 0 && (n < 4 || (n & (n - 1)) != 0))
    return true;
  na = realloc(*arr, (n ? n * 2 : 4) * size);
  if (!na) {
    report(p, true, "out of memory");
    return false;
  }
  *arr = na;
  return true;
}

/* ---- server, pool, peer ----------------------------------------------- */

#define SRC(f) offsetof(conf_source, f)
#define STR(n, f, args, st, note) \
  {n, OPT_STR, SRC(f), sizeof(((conf_source *)0)->f), 0, 0, false, args, st, note}
static const struct opt source_opts[] = {
    FLAG("iburst", SRC(iburst), CONF_ACTIVE, "8 packets 2 s apart while unreachable"),
    FLAG("burst", SRC(burst), CONF_ACTIVE, "8 packets per poll while reachable"),
    FLAG("prefer", SRC(prefer), CONF_ACTIVE,
         "kept by clustering; first choice for system peer, whose offset is then used alone"),
    FLAG("noselect", SRC(noselect), CONF_ACTIVE, "polled and shown, never selected"),
    FLAG("true", SRC(trusted), CONF_STORED,
         "has no effect yet (the source can still be voted a falseticker)"),
    FLAG("nts", SRC(nts), CONF_ACTIVE, "NTS-KE, then authenticated NTP only"),
    FLAG("noval", SRC(noval), CONF_IGNORED,
         "is ignored: NTS-KE certificates are always verified"),
    INT("minpoll", SRC(minpoll), 0, 17, CONF_ACTIVE, "log2 s, default 6"),
    INT("maxpoll", SRC(maxpoll), 0, 17, CONF_ACTIVE, "log2 s, default 10"),
    INT("version", SRC(version), 1, 4, CONF_ACTIVE, "default 4"),
    STR("ca", ca, "FILE", CONF_ACTIVE,
        "CA file for this NTS source; without `nts`, warns"),
    STR("aead", aead, "NAME", CONF_ACTIVE,
        "offer only AES_SIV_CMAC_256 or AES_SIV_CMAC_512 in NTS-KE; without `nts`, warns"),
    {"pin", OPT_PIN, SRC(pins), 0, 0, 0, false, "sha256:BASE64", CONF_ACTIVE,
     "(ntsd) NTS-KE server's public key (SPKI) digest; up to 4, one must match; "
     "without `ca`, the pin alone authenticates; needs `nts`"},
    {"proxy", OPT_PROXY, SRC(proxy), 0, 0, 0, false, "socks5://[USER[:PASS]@]HOST:PORT",
     CONF_ACTIVE, "(ntsd) this source's SOCKS5 proxy, over the `proxy` directive's"},
    FLAG("noproxy", SRC(noproxy), CONF_ACTIVE, "(ntsd) direct, despite the `proxy` directive"),
    {"transport", OPT_TRANSPORT, SRC(transport), 0, 0, 0, false, "auto|udp|tcp", CONF_ACTIVE,
     "(ntsd) NTP over UDP or TCP; auto: UDP, and through a proxy TCP when the server "
     "offers it, else UDP ASSOCIATE"},
    FLAG("directfallback", SRC(directfallback), CONF_ACTIVE,
         "(ntsd) with a proxy: direct UDP when no proxied way works, with a warning each "
         "time"),
    INT("key", NO_FIELD, 1, 65535, CONF_IGNORED, NOSYMKEYS),
    FLAG("xleave", NO_FIELD, CONF_IGNORED, NOXLEAVE),
    INT("ttl", NO_FIELD, 0, 255, CONF_IGNORED, NOEFFECT),
    INT("mode", NO_FIELD, 0, 255, CONF_IGNORED, NOEFFECT),
    NUM("bias", NO_FIELD, -86400, 86400, false, CONF_IGNORED, NOEFFECT),
    NUM("maxdelay", NO_FIELD, 0, 16, true, CONF_IGNORED, NOEFFECT),
};
#undef STR
#undef SRC

static bool source_host(struct parser *p, const char *what, const char *t, conf_source *s)
{
  struct quoted q;

  if (!conf_split_host_port(t, s->host, sizeof s->host, &s->port)) {
    report(p, true, "bad host or port '%s' for '%s'", quote(&q, t), what);
    return false;
  }
  /* Brackets are for IPv6 literals only, as in a URL. */
  if (!valid_host(s->host) || (t[0] == '[' && addr_family(s->host, true, NULL) != 6)) {
    report(p, true, "bad host name '%s' for '%s'", quote(&q, s->host), what);
    return false;
  }
  return true;
}

/* minpoll/maxpoll start at -1 so we know which were given.  Both given and crossed is an
 * error; one given past the other's default moves that default along (as NTPsec does),
 * so `minpoll 12` alone works. */
static bool finish_poll(struct parser *p, conf_source *s)
{
  bool min_set = s->minpoll >= 0, max_set = s->maxpoll >= 0;

  if (!min_set)
    s->minpoll = 6;
  if (!max_set)
    s->maxpoll = 10;
  if (s->minpoll <= s->maxpoll)
    return true;
  if (min_set && max_set) {
    report(p, true, "minpoll %d is greater than maxpoll %d", s->minpoll, s->maxpoll);
    return false;
  }
  if (min_set)
    s->maxpoll = s->minpoll;
  else
    s->minpoll = s->maxpoll;
  return true;
}

static const char *const POOL_PROXY =
    "a 'pool' cannot go through a proxy (its addresses would be looked up here); use "
    "'server' lines";
static const char *const ONION_PROXY =
    "is an onion service: it needs a 'proxy' (Tor's SOCKS port)";

/* What a line decides about its proxy on its own (or with a `proxy` directive
 * above it) is reported at the line, in its own file; finish_sources decides the
 * rest once a `proxy` directive further down can no longer come. */
static bool source_proxy_ok(struct parser *p, const conf_source *s)
{
  bool proxied = s->proxy.set || (!s->noproxy && p->c->proxy.set);

  if (s->proxy.set && s->noproxy)
    report(p, true, "'proxy' and 'noproxy' on one line");
  else if (s->kind == CONF_POOL && proxied)
    report(p, true, "%s", POOL_PROXY);
  else if (s->noproxy && conf_is_onion(s->host))
    report(p, true, "'%s' %s", s->host, ONION_PROXY);
  else
    return true;
  return false;
}

static void do_source(struct parser *p, struct cursor *cu, const struct directive *d)
{
  conf_source s = {.kind = (enum conf_source_kind)d->arg, .minpoll = -1, .maxpoll = -1,
                   .version = 4, .line = p->line};
  const char *t = need_tok(p, cu, d->name), *nts_only;
  void *arr = p->c->sources;

  if (!t || !source_host(p, d->name, t, &s))
    return;
  while ((t = next_tok(cu))) {
    const struct opt *o = find_opt(source_opts, ARRAY_LEN(source_opts), t);
    if (!o) {
      unknown_option(p, t, d->name);
      return;
    }
    if (!apply_opt(p, cu, o, &s))
      return;
  }
  if (!finish_poll(p, &s))
    return;
  nts_only = s.ca[0] ? "ca" : s.aead[0] ? "aead" : NULL;
  if (!s.nts && nts_only)
    report(p, false, "'%s' has no effect without 'nts'", nts_only);
  /* A pin is meant to authenticate: silently sending plain NTP would betray it. */
  if (!s.nts && s.pins.n) {
    report(p, true, "'pin' needs 'nts'");
    return;
  }
  if (!source_proxy_ok(p, &s))
    return;
  if (s.aead[0] && !conf_aead_id(s.aead)) {
    struct quoted q;
    report(p, true, "unsupported AEAD '%s' (AES_SIV_CMAC_256 or AES_SIV_CMAC_512)",
           quote(&q, s.aead));
    return;
  }
  if (!grow(p, &arr, p->c->n_sources, sizeof s, d->name))
    return;
  p->c->sources = arr;
  p->c->sources[p->c->n_sources++] = s;
}

uint16_t conf_aead_id(const char *name)
{
  if (strcasecmp(name, "AES_SIV_CMAC_256") == 0 || strcmp(name, "15") == 0)
    return 15;
  if (strcasecmp(name, "AES_SIV_CMAC_512") == 0 || strcmp(name, "17") == 0)
    return 17;
  return 0;
}

/* ---- restrict, unrestrict ---------------------------------------------- */

/* The targets `default` and `source`, then the flags; a flag needs its bit in
 * proto/acl too. */
#define NEVER_SERVED(what) "nothing here serves " what
static const struct word restrict_words[] = {
    {"default", "", CONF_ACTIVE, "both families unless -4 or -6 is given"},
    {"source", "", CONF_STORED,
     "has no effect yet (our servers' addresses match entries like any client's)"},
    {"ignore", "", CONF_ACTIVE, "drop everything, NTP and NTS-KE"},
    {"noserve", "", CONF_ACTIVE, "no time service, NTP or NTS-KE"},
    {"limited", "", CONF_ACTIVE, "rate limit per client (`discard`)"},
    {"kod", "", CONF_ACTIVE, "a RATE kiss-o'-death when limited, at most once per interval"},
    {"noquery", "", CONF_ALWAYS, NEVER_SERVED("mode 6/7 queries")},
    {"nomodify", "", CONF_ALWAYS, NEVER_SERVED("changes over the network")},
    {"nopeer", "", CONF_ALWAYS, NEVER_SERVED("symmetric associations")},
    {"noepeer", "", CONF_ALWAYS, NEVER_SERVED("symmetric associations")},
    {"notrap", "", CONF_ALWAYS, NEVER_SERVED("traps")},
    {"nomrulist", "", CONF_ALWAYS, NEVER_SERVED("the MRU list")},
    {"notrust", "", CONF_IGNORED,
     "is ignored: there are no symmetric keys, so unauthenticated requests are served"},
    {"version", "", CONF_IGNORED, "is ignored: requests of NTP versions 1 to 4 are served"},
    {"ntpport", "", CONF_IGNORED, "is ignored: entries match any source port"},
};
#undef NEVER_SERVED

static bool restrict_target(struct parser *p, const char *t, conf_restrict *r)
{
  struct quoted q;
  char abuf[INET6_ADDRSTRLEN + 1];
  const char *slash = strchr(t, '/');
  size_t alen = slash ? (size_t)(slash - t) : strlen(t);
  int fam = 0, len;

  if (strcmp(t, "default") == 0 || strcmp(t, "source") == 0) {
    r->is_default = t[0] == 'd';
    r->is_source = !r->is_default;
    return true;
  }
  if (alen < sizeof abuf) {
    memcpy(abuf, t, alen);
    abuf[alen] = '\0';
    fam = addr_family(abuf, false, r->addr);
  }
  if (!fam) {
    report(p, true, "restrict needs an address literal, got '%s'", quote(&q, t));
    return false;
  }
  if (r->fam != CONF_FAM_ANY && (int)r->fam != fam) {
    report(p, true, "'%s' is not an IPv%d address", quote(&q, t), (int)r->fam);
    return false;
  }
  r->fam = (enum conf_family)fam;
  r->prefix = fam == 4 ? 32 : 128;
  if (slash && !get_int(p, "prefix length", slash + 1, 0, (long)r->prefix, &len))
    return false;
  if (slash)
    r->prefix = (unsigned)len;
  return true;
}

/* A mask must be contiguous ones then zeros; returns the number of ones. */
static bool mask_prefix(const uint8_t *b, size_t bytes, unsigned *prefix)
{
  unsigned ones = 0;
  bool zero_seen = false;

  for (size_t i = 0; i < bytes * 8; i++) {
    bool one = (b[i / 8] & (0x80u >> (i % 8))) != 0;
    if (one && zero_seen)
      return false;
    ones += one;
    zero_seen = !one;
  }
  *prefix = ones;
  return true;
}

static bool restrict_mask(struct parser *p, struct cursor *cu, conf_restrict *r,
                          bool *prefix_given)
{
  struct quoted q;
  uint8_t b[16];
  const char *m = need_tok(p, cu, "mask");

  if (!m)
    return false;
  if (r->is_default || r->is_source) {
    report(p, true, "'mask' needs an address, not 'default' or 'source'");
    return false;
  }
  if (*prefix_given) {
    report(p, true, "give either /LEN or one 'mask', not both");
    return false;
  }
  if (inet_pton(r->fam == CONF_FAM_4 ? AF_INET : AF_INET6, m, b) != 1 ||
      !mask_prefix(b, r->fam == CONF_FAM_4 ? 4 : 16, &r->prefix)) {
    report(p, true, "bad restrict mask '%s' (need a contiguous IPv%d mask)", quote(&q, m),
           (int)r->fam);
    return false;
  }
  *prefix_given = true;
  return true;
}

static void do_restrict(struct parser *p, struct cursor *cu, const struct directive *d)
{
  conf_restrict r = {.unrestrict = d->arg != 0, .line = p->line};
  struct quoted q;
  const char *t = need_tok(p, cu, d->name);
  bool prefix_given;
  void *arr = p->c->restricts;

  if (t && (strcmp(t, "-4") == 0 || strcmp(t, "-6") == 0)) {
    r.fam = t[1] == '4' ? CONF_FAM_4 : CONF_FAM_6;
    t = need_tok(p, cu, d->name);
  }
  if (!t || !restrict_target(p, t, &r))
    return;
  prefix_given = strchr(t, '/') != NULL;
  while ((t = next_tok(cu))) {
    uint32_t flag;
    if (strcmp(t, "mask") == 0) { /* NTPsec wants it first; anywhere does no harm */
      if (!restrict_mask(p, cu, &r, &prefix_given))
        return;
      continue;
    }
    const struct word *w = find_word(restrict_words, ARRAY_LEN(restrict_words), t);
    if (!w || !(flag = ntp_acl_flag_from_name(t))) {
      report(p, true, "unknown restrict flag '%s'", quote(&q, t));
      return;
    }
    note_status(p, t, w->st, w->note);
    r.flags |= flag;
  }
  if (!grow(p, &arr, p->c->n_restricts, sizeof r, d->name))
    return;
  p->c->restricts = arr;
  p->c->restricts[p->c->n_restricts++] = r;
  if (r.is_source) {
    char what[32];
    snprintf(what, sizeof what, "%s source", d->name);
    const struct word *w = find_word(restrict_words, ARRAY_LEN(restrict_words), "source");
    note_status(p, what, w->st, w->note);
  }
}

/* ---- files, statistics and other accepted-but-inert directives ---------- */

/* These handlers only check: a valid line's warning comes from the
 * directive's status, in dispatch(). */

static void do_path(struct parser *p, struct cursor *cu, const struct directive *d)
{
  const char *t = need_tok(p, cu, d->name);

  if (t && expect_end(p, cu, d->name))
    copy_str(p, d->name, t, (char *)p->c + d->arg, CONF_PATH_MAX);
}

static const char *const stats_names[] = {"loopstats", "peerstats", "clockstats",
                                          "rawstats", "sysstats", "protostats", "usestats",
                                          "ntsstats", "ntskestats", NULL};

/* The index in ntsd_conf.filegen of a file written, -1 for NTPsec's others. */
static int stats_index(const char *name)
{
  static const char *const written[CONF_STATS_N] = {
      [CONF_STATS_LOOP] = "loopstats", [CONF_STATS_PEER] = "peerstats",
      [CONF_STATS_RAW] = "rawstats"};
  for (int i = 0; i < CONF_STATS_N; i++)
    if (strcmp(written[i], name) == 0)
      return i;
  return -1;
}

static void not_written(struct parser *p, const char *names)
{
  report(p, false, "'%s' accepted, not written (written: loopstats, peerstats, rawstats)",
         names);
}

static void do_statistics(struct parser *p, struct cursor *cu, const struct directive *d)
{
  const char *t;
  char others[128] = "";
  bool on[CONF_STATS_N] = {false};

  if (cu->n == 0) {
    report(p, true, "missing value for '%s'", d->name);
    return;
  }
  while ((t = next_tok(cu))) {
    if (!in_list(stats_names, t)) {
      unknown_option(p, t, d->name);
      return;
    }
    int i = stats_index(t);
    if (i >= 0)
      on[i] = true;
    else /* the names are short and known: they fit */
      snprintf(others + strlen(others), sizeof others - strlen(others), "%s%s",
               others[0] ? " " : "", t);
  }
  for (int i = 0; i < CONF_STATS_N; i++)
    p->c->filegen[i].enabled |= on[i];
  if (others[0])
    not_written(p, others); /* one warning for the line */
}

/* One word (or word and value) of a filegen line into g (NULL: checked only). */
static bool filegen_word(struct parser *p, struct cursor *cu, const char *t, conf_filegen *g)
{
  static const char *const types[] = {"none", "pid", "day", "week", "month", "year", "age",
                                      NULL};
  static const char *const flags[] = {"link", "nolink", "enable", "disable", NULL};
  bool valued = strcmp(t, "file") == 0 || strcmp(t, "type") == 0;
  const char *v = NULL;

  if (!valued && !in_list(flags, t)) {
    unknown_option(p, t, "filegen");
    return false;
  }
  if (valued && !(v = need_tok(p, cu, t)))
    return false;
  if (strcmp(t, "type") == 0) {
    if (!in_list(types, v)) {
      unknown_option(p, v, "filegen type");
      return false;
    }
    if (strcmp(v, "none") != 0 && strcmp(v, "day") != 0)
      report(p, false, "'filegen type %s' is written as 'type day'", v);
    if (g)
      g->daily = strcmp(v, "none") != 0;
  } else if (strcmp(t, "file") == 0) {
    if (strchr(v, '/') || strcmp(v, ".") == 0 || strcmp(v, "..") == 0) {
      report(p, true, "'filegen file' takes a file name in statsdir, not a path");
      return false;
    }
    return copy_str(p, "filegen file", v, g ? g->file : NULL, sizeof g->file);
  } else if (g) {
    if (strcmp(t, "link") == 0 || strcmp(t, "nolink") == 0)
      g->link = strcmp(t, "link") == 0;
    else
      g->enabled = strcmp(t, "enable") == 0;
  }
  return true;
}

static void do_filegen(struct parser *p, struct cursor *cu, const struct directive *d)
{
  const char *t = need_tok(p, cu, d->name);

  if (!t)
    return;
  if (!in_list(stats_names, t)) {
    unknown_option(p, t, d->name);
    return;
  }
  int i = stats_index(t);
  if (i < 0)
    not_written(p, t);
  /* On a copy: a line with an error changes nothing. */
  conf_filegen g = i < 0 ? (conf_filegen){0} : p->c->filegen[i];
  while ((t = next_tok(cu)))
    if (!filegen_word(p, cu, t, i < 0 ? NULL : &g))
      return;
  if (i >= 0)
    p->c->filegen[i] = g;
}

/* NTPsec's keywords: [=+-] then CLASS ITEM, or "all" then ITEM or CLASS;
 * applied in order to the mask (log.c says what each class and item
 * selects). */
static void do_logconfig(struct parser *p, struct cursor *cu, const struct directive *d)
{
  const char *t;
  uint32_t mask = p->c->logmask;

  if (cu->n == 0) {
    report(p, true, "missing value for '%s'", d->name);
    return;
  }
  while ((t = next_tok(cu)))
    if (!log_config_word(&mask, t)) {
      unknown_option(p, t, d->name);
      return;
    }
  p->c->logmask = mask;
}

/* `logfacility NAME` (ntsd): syslog's facility. */
static void do_logfacility(struct parser *p, struct cursor *cu, const struct directive *d)
{
  struct quoted q;
  const char *t = need_tok(p, cu, d->name);

  if (!t || !expect_end(p, cu, d->name))
    return;
  if (!log_facility_parse(t, &p->c->logfacility))
    report(p, true, "'%s': expected daemon, user or local0 ... local7, not '%s'", d->name,
           quote(&q, t));
}

/* `keys FILE`, `setvar ...`: one value, or any words; checked, then ignored. */
static void do_ignored(struct parser *p, struct cursor *cu, const struct directive *d)
{
  const char *t = need_tok(p, cu, d->name);

  if (!t || (d->arg == 1 && !expect_end(p, cu, d->name)))
    return;
  if (d->arg == 1 && !copy_str(p, d->name, t, NULL, CONF_PATH_MAX))
    return;
  cu->i = cu->n;
}

/* trustedkey takes ids and NTPsec's "(1 ... 5)" ranges; controlkey/requestkey one id. */
static void do_keyids(struct parser *p, struct cursor *cu, const struct directive *d)
{
  const char *t = need_tok(p, cu, d->name);
  int id;

  if (!t)
    return;
  do {
    bool range_part = d->arg == 0 && strpbrk(t, "(.)") && !t[strspn(t, "0123456789().")];
    if (!range_part && !get_int(p, d->name, t, 1, 65535, &id))
      return;
  } while (d->arg == 0 && (t = next_tok(cu)));
  expect_end(p, cu, d->name);
}

static void do_leapsmear(struct parser *p, struct cursor *cu, const struct directive *d)
{
  const char *t = need_tok(p, cu, d->name);
  int v;

  if (t && get_int(p, d->name, t, 0, 31536000, &v))
    expect_end(p, cu, d->name);
}

/* ---- tos, discard, tinker, mru: OPTION VALUE pairs ------------------------ */

#define CONF(f) offsetof(ntsd_conf, f)
#define UNUSED_HERE "has no effect (the discipline has no such constant)"
static const struct opt tos_opts[] = {
    INT("minsane", CONF(tos_minsane), 1, 16, CONF_ACTIVE,
        "truechimers needed to count as synchronised, default 1"),
    INT("minclock", CONF(tos_minclock), 1, 100, CONF_ACTIVE,
        "sources clustering keeps at least, default 3"),
    INT("maxclock", CONF(tos_maxclock), 1, 100, CONF_ACTIVE,
        "truechimers considered, default 10, at most 64"),
    NUM("mindist", CONF(tos_mindist), 0, 16, true, CONF_ACTIVE,
        "root distance floor, default 0.001 s"),
    NUM("maxdist", CONF(tos_maxdist), 0, 16, true, CONF_ACTIVE,
        "root distance beyond which a source is no candidate, default 1.5 s"),
    INT("orphan", CONF(tos_orphan), 1, 16, CONF_STORED, NOEFFECT),
    NUM("orphanwait", CONF(tos_orphanwait), 0, 86400, false, CONF_STORED, NOEFFECT),
    {"authselect", OPT_AUTHSEL, CONF(tos_authselect), 0, 0, 0, false,
     "require|prefer|mix|ignore", CONF_ACTIVE,
     "(ntsd) what plain NTP sources may do next to NTS ones, default mix"},
    INT("ceiling", NO_FIELD, 0, 16, CONF_IGNORED, NOEFFECT),
    INT("floor", NO_FIELD, 0, 16, CONF_IGNORED, NOEFFECT),
    INT("cohort", NO_FIELD, 0, 1, CONF_IGNORED, NOEFFECT),
    INT("bcpollbstep", NO_FIELD, 0, 100, CONF_IGNORED, NOEFFECT),
};

static const struct opt discard_opts[] = {
    INT("average", CONF(discard_average), 0, 16, CONF_ACTIVE,
        "`limited`: log2 s between requests on average, default 3"),
    INT("minimum", CONF(discard_minimum), 0, 3600, CONF_ACTIVE,
        "`limited`: s between requests at least, default 2"),
    INT("monitor", NO_FIELD, 0, INT_MAX, CONF_IGNORED, NOEFFECT),
};

/* step, stepout and panic set the discipline's thresholds; the rest of
 * ntpd's loop constants have no counterpart in ours. */
#define TINKER_UNUSED(n) NUM(n, NO_FIELD, -1e9, 1e9, false, CONF_IGNORED, UNUSED_HERE)
static const struct opt tinker_opts[] = {
    NUM("panic", CONF(tinker_panic), 0, 1e9, false, CONF_ACTIVE,
        "refuse offsets beyond this, default 1000 s; 0: no limit"),
    NUM("step", CONF(tinker_step), 0, 1e6, false, CONF_ACTIVE,
        "step beyond this, default 0.128 s; 0: never after start-up"),
    NUM("stepout", CONF(tinker_stepout), 0, 1e6, false, CONF_ACTIVE,
        "... once the offset has lasted this long, default 300 s"),
    TINKER_UNUSED("allan"), TINKER_UNUSED("dispersion"), TINKER_UNUSED("freq"),
    TINKER_UNUSED("huffpuff"), TINKER_UNUSED("stepback"), TINKER_UNUSED("stepfwd"),
    TINKER_UNUSED("tick"),
};
#undef TINKER_UNUSED
#undef UNUSED_HERE
#undef CONF

/* `mru` warns as a whole; its options are only checked. */
#define MRU(n) INT(n, NO_FIELD, 0, INT_MAX, CONF_IGNORED, NOEFFECT)
static const struct opt mru_opts[] = {
    MRU("maxage"),  MRU("minage"),  MRU("maxdepth"), MRU("maxmem"),  MRU("mindepth"),
    MRU("initalloc"), MRU("initmem"), MRU("incalloc"), MRU("incmem"),
};
#undef MRU

static void do_pairs(struct parser *p, struct cursor *cu, const struct directive *d)
{
  p->quiet_opts = no_effect(d->st);
  parse_opts(p, cu, d->name, d->subs->tab, d->subs->n, p->c);
  p->quiet_opts = false;
}

/* ---- enable/disable, interface, listen, local ---------------------------- */

static const struct word enable_words[] = {
    {"ntp", "", CONF_ACTIVE, "clock control; `disable ntp`: none, as `ntsd -x`"},
    {"auth", "", CONF_IGNORED, NOEFFECT},      {"bclient", "", CONF_IGNORED, NOEFFECT},
    {"calibrate", "", CONF_IGNORED, NOEFFECT}, {"kernel", "", CONF_IGNORED, NOEFFECT},
    {"monitor", "", CONF_IGNORED, NOEFFECT},   {"stats", "", CONF_IGNORED, NOEFFECT},
};

static void do_enable(struct parser *p, struct cursor *cu, const struct directive *d)
{
  const char *t = need_tok(p, cu, d->name);
  char what[64];

  for (; t; t = next_tok(cu)) {
    const struct word *w = find_word(enable_words, ARRAY_LEN(enable_words), t);
    if (!w) {
      unknown_option(p, t, d->name);
      return;
    }
    if (strcmp(t, "ntp") == 0)
      p->c->clock_control = d->arg != 0;
    snprintf(what, sizeof what, "%s %s", d->name, t);
    note_status(p, what, w->st, w->note);
  }
}

/* "all" is what we can do: listen on everything (the default) or on nothing. */
static const struct word interface_words[] = {
    {"all", "", CONF_ACTIVE, "`listen`: serve (the default); `ignore`, `drop`: serve nothing"},
    {NULL, "ipv4|ipv6|wildcard|NAME|ADDR", CONF_IGNORED, NOEFFECT},
};

static void do_interface(struct parser *p, struct cursor *cu, const struct directive *d)
{
  static const char *const actions[] = {"listen", "ignore", "drop", NULL};
  struct quoted q;
  char what[64 + sizeof q.s];
  const char *act = need_tok(p, cu, d->name), *t;

  if (!act)
    return;
  if (!in_list(actions, act)) {
    unknown_option(p, act, d->name);
    return;
  }
  if (!(t = need_tok(p, cu, d->name)) || !expect_end(p, cu, d->name))
    return;
  const struct word *w = find_word(interface_words, ARRAY_LEN(interface_words), t);
  if (w->name)
    p->c->interface_ignore_all = strcmp(act, "listen") != 0;
  snprintf(what, sizeof what, "%s %s %s", d->name, act, quote(&q, t));
  note_status(p, what, w->st, w->note);
}

static void do_listen(struct parser *p, struct cursor *cu, const struct directive *d)
{
  struct quoted q;
  conf_listen l = {.port = 0};
  char host[CONF_HOST_MAX];
  const char *t = need_tok(p, cu, d->name);
  bool ok, wild = false;
  void *arr = p->c->listens;

  if (!t)
    return;
  if (cu->i < cu->n && strcmp(cu->tok[cu->i], "tcp") == 0) {
    l.tcp = true;
    cu->i++;
  }
  if (!expect_end(p, cu, d->name))
    return;
  ok = conf_split_host_port(t, host, sizeof host, &l.port);
  wild = ok && strcmp(host, "*") == 0;
  if (!ok || (!wild && !addr_family(host, true, NULL)) || strlen(host) >= sizeof l.addr) {
    report(p, true, "'%s' needs ADDR[:PORT] with an address literal or '*', got '%s'",
           d->name, quote(&q, t));
    return;
  }
  if (!wild)
    memcpy(l.addr, host, strlen(host) + 1);
  if (!grow(p, &arr, p->c->n_listens, sizeof l, d->name))
    return;
  p->c->listens = arr;
  p->c->listens[p->c->n_listens++] = l;
}

static void do_local(struct parser *p, struct cursor *cu, const struct directive *d)
{
  const char *t = need_tok(p, cu, d->name);
  int v;

  if (!t)
    return;
  if (strcmp(t, "stratum") != 0) {
    unknown_option(p, t, d->name);
    return;
  }
  if ((t = need_tok(p, cu, "local stratum")) && get_int(p, "local stratum", t, 1, 15, &v) &&
      expect_end(p, cu, "local stratum"))
    p->c->local_stratum = v;
}

/* ---- nts ------------------------------------------------------------------ */

/* NTPsec writes TLS1.3; OpenSSL users write TLSv1.3.  Stored as TLS1.x. */
static const char *tls_version(const char *v)
{
  if (strcasecmp(v, "TLS1.2") == 0 || strcasecmp(v, "TLSv1.2") == 0)
    return "TLS1.2";
  if (strcasecmp(v, "TLS1.3") == 0 || strcasecmp(v, "TLSv1.3") == 0)
    return "TLS1.3";
  return NULL;
}

static bool get_tls(struct parser *p, const char *what, const char *v, const char **out)
{
  struct quoted q;

  if (!(*out = tls_version(v)))
    report(p, true, "'%s' needs TLS1.2 or TLS1.3, got '%s'", what, quote(&q, v));
  return *out != NULL;
}

static void nts_onoff(struct parser *p, struct cursor *cu, const struct directive *d)
{
  if (expect_end(p, cu, d->name))
    p->c->nts_enable = d->arg != 0;
}

static void nts_cert(struct parser *p, struct cursor *cu, const struct directive *d)
{
  const char *path = need_tok(p, cu, d->name), *t, *tls = NULL;

  if (!path || !copy_str(p, d->name, path, NULL, CONF_PATH_MAX))
    return;
  if (cu->i < cu->n && strcmp(cu->tok[cu->i], "mintls") == 0) {
    cu->i++;
    if (!(t = need_tok(p, cu, "mintls")) || !get_tls(p, "mintls", t, &tls))
      return;
  }
  if (!expect_end(p, cu, d->name))
    return;
  copy_str(p, d->name, path, p->c->nts_cert, sizeof p->c->nts_cert);
  if (tls && copy_str(p, "mintls", tls, p->c->nts_mintls, sizeof p->c->nts_mintls) &&
      strcmp(tls, "TLS1.3") != 0)
    report(p, false, "'mintls %s': NTS-KE always uses TLS 1.3 (RFC 8915); accepted for "
                     "compatibility", tls);
}

/* arg 1: mintls (stored), 0: maxtls (checked only). */
static void nts_tls(struct parser *p, struct cursor *cu, const struct directive *d)
{
  const char *t = need_tok(p, cu, d->name), *tls;

  if (!t || !get_tls(p, d->name, t, &tls) || !expect_end(p, cu, d->name))
    return;
  if (d->arg && copy_str(p, d->name, tls, p->c->nts_mintls, sizeof p->c->nts_mintls) &&
           strcmp(tls, "TLS1.3") != 0)
    report(p, false, "'%s %s': NTS-KE always uses TLS 1.3 (RFC 8915); accepted for "
                     "compatibility", d->name, tls);
}

static void nts_rotate(struct parser *p, struct cursor *cu, const struct directive *d)
{
  const char *t = need_tok(p, cu, d->name);
  double v;

  if (t && get_num(p, d->name, t, 60, 31536000, false, &v) && expect_end(p, cu, d->name))
    p->c->nts_rotate = v;
}

/* An NTPv4 server our KE server names (RFC 8915 4.1.7): an address or
 * host name, printable ASCII without spaces, at most 255 bytes.  Repeated,
 * the KE server names each in turn. */
static void nts_ntpserver(struct parser *p, struct cursor *cu, const struct directive *d)
{
  struct quoted q;
  const char *t = need_tok(p, cu, d->name);

  if (!t || !expect_end(p, cu, d->name))
    return;
  size_t n = strlen(t);
  bool ok = n > 0 && n <= 255;
  for (size_t i = 0; ok && i < n; i++)
    ok = t[i] > 0x20 && t[i] < 0x7f;
  if (!ok) {
    report(p, true, "'%s' needs a host name or address (printable, at most 255 bytes), "
                    "got '%s'", d->name, quote(&q, t));
    return;
  }
  if (p->c->n_nts_ntpserver == CONF_NTPSERVER_MAX) {
    report(p, true, "'%s': at most %d of them", d->name, CONF_NTPSERVER_MAX);
    return;
  }
  memcpy(p->c->nts_ntpserver[p->c->n_nts_ntpserver++], t, n + 1);
}

/* One-word settings we check for presence only (cipher lists, AEAD names). */
static void nts_word(struct parser *p, struct cursor *cu, const struct directive *d)
{
  if (need_tok(p, cu, d->name))
    expect_end(p, cu, d->name);
}

#define NTS_PATH(f) do_path, offsetof(ntsd_conf, f)
#define TLS13 "NTS-KE always uses TLS 1.3, as RFC 8915 requires"
static const struct directive nts_subs[] = {
    DIRECTIVE("enable", nts_onoff, 1, "", CONF_ACTIVE, "the NTS-KE server", NULL),
    DIRECTIVE("disable", nts_onoff, 0, "", CONF_ACTIVE, NULL, NULL),
    DIRECTIVE("key", NTS_PATH(nts_key), "FILE", CONF_ACTIVE, "the server's private key", NULL),
    DIRECTIVE("cert", nts_cert, 0, "FILE [mintls V]", CONF_ACTIVE,
              "the server's certificate chain", NULL),
    DIRECTIVE("cookie", NTS_PATH(nts_cookie), "FILE", CONF_ACTIVE,
              "the cookie keys, kept across restarts", NULL),
    DIRECTIVE("cookie-secret", NTS_PATH(nts_cookie_secret), "FILE", CONF_ACTIVE,
              "(ntsd) cookie keys derived from a secret shared by several servers", NULL),
    DIRECTIVE("ca", NTS_PATH(nts_ca), "FILE|DIR", CONF_ACTIVE,
              "trust anchors for `nts` sources", NULL),
    DIRECTIVE("ntpserver", nts_ntpserver, 0, "NAME|ADDR", CONF_ACTIVE,
              "(ntsd) an NTP server NTS-KE names; repeated: each in turn", NULL),
    DIRECTIVE("mintls", nts_tls, 1, "TLS1.2|TLS1.3", CONF_ALWAYS, TLS13 "; TLS1.2 warns",
              NULL),
    DIRECTIVE("maxtls", nts_tls, 0, "TLS1.2|TLS1.3", CONF_IGNORED, "has no effect (" TLS13 ")",
              NULL),
    DIRECTIVE("rotate", nts_rotate, 0, "SECONDS", CONF_ACTIVE,
              "(ntsd) new cookie key interval, 60 s to a year, default 86400", NULL),
    DIRECTIVE("tlsciphers", nts_word, 0, "LIST", CONF_IGNORED, NOEFFECT, NULL),
    DIRECTIVE("tlsciphersuites", nts_word, 0, "LIST", CONF_IGNORED, NOEFFECT, NULL),
    DIRECTIVE("tlsecdhcurves", nts_word, 0, "LIST", CONF_IGNORED, NOEFFECT, NULL),
    DIRECTIVE("aead", nts_word, 0, "NAME", CONF_IGNORED,
              "has no effect yet (the server accepts AES_SIV_CMAC_256 and AES_SIV_CMAC_512)",
              NULL),
};
#undef TLS13
#undef NTS_PATH

/* Sub-handlers get the two-word name ("nts enable") so messages read naturally. */
static void do_nts(struct parser *p, struct cursor *cu, const struct directive *d)
{
  const char *t = need_tok(p, cu, d->name);
  char name[32];

  if (!t)
    return;
  for (size_t i = 0; i < ARRAY_LEN(nts_subs); i++) {
    if (strcmp(nts_subs[i].name, t) == 0) {
      struct directive sub = nts_subs[i];
      snprintf(name, sizeof name, "%s %s", d->name, sub.name);
      sub.name = name;
      sub.fn(p, cu, &sub);
      if (!p->line_failed)
        note_status(p, name, sub.st, sub.note);
      return;
    }
  }
  unknown_option(p, t, d->name);
}

static void do_nts_listen(struct parser *p, struct cursor *cu, const struct directive *d)
{
  struct quoted q;
  char host[CONF_HOST_MAX];
  uint16_t port = 0;
  const char *t = need_tok(p, cu, d->name);
  bool ok;

  if (!t || !expect_end(p, cu, d->name))
    return;
  if (!t[strspn(t, "0123456789")])
    ok = parse_port(t, &port);
  else
    ok = conf_split_host_port(t, host, sizeof host, &port) && port != 0 &&
         (strcmp(host, "*") == 0 || addr_family(host, true, NULL));
  if (!ok || strlen(t) >= sizeof p->c->nts_listen) {
    report(p, true, "'%s' needs PORT, ADDR:PORT or [ADDR]:PORT, got '%s'", d->name,
           quote(&q, t));
    return;
  }
  memcpy(p->c->nts_listen, t, strlen(t) + 1);
}

/* `metrics ADDR:PORT`: an address literal and a port, both required (the
 * endpoint is meant for loopback or a management network, never a default
 * wildcard). */
static void do_metrics(struct parser *p, struct cursor *cu, const struct directive *d)
{
  struct quoted q;
  char host[CONF_HOST_MAX];
  uint16_t port = 0;
  const char *t = need_tok(p, cu, d->name);

  if (!t || !expect_end(p, cu, d->name))
    return;
  if (!conf_split_host_port(t, host, sizeof host, &port) || port == 0 ||
      !addr_family(host, false, NULL) || strlen(t) >= sizeof p->c->metrics) {
    report(p, true, "'%s' needs ADDR:PORT or [ADDR]:PORT with an address literal, got '%s'",
           d->name, quote(&q, t));
    return;
  }
  memcpy(p->c->metrics, t, strlen(t) + 1);
}

static void do_controlsocket(struct parser *p, struct cursor *cu, const struct directive *d)
{
  const char *path = need_tok(p, cu, d->name), *group = "";

  if (!path || !copy_str(p, d->name, path, NULL, CONF_PATH_MAX))
    return;
  if (cu->i < cu->n && strcmp(cu->tok[cu->i], "group") == 0) {
    cu->i++;
    if (!(group = need_tok(p, cu, "group")) ||
        !copy_str(p, "group", group, NULL, sizeof p->c->control_group))
      return;
  }
  if (!expect_end(p, cu, d->name))
    return;
  copy_str(p, d->name, path, p->c->control_socket, sizeof p->c->control_socket);
  copy_str(p, "group", group, p->c->control_group, sizeof p->c->control_group);
}

/* ---- includefile, lines, files ------------------------------------------- */

static void parse_text(struct parser *p, const char *text, size_t len);

static int read_all(const char *path, char **out, size_t *len)
{
  FILE *f = fopen(path, "rb");
  char *buf = NULL, *nb;
  size_t n = 0, cap = 0, got;
  int err = 0;

  if (!f)
    return errno;
  for (;;) {
    if (n == cap) {
      /* Bounded, so a mistaken /dev/zero does not eat memory. */
      if (cap >= FILE_SIZE_MAX || !(nb = realloc(buf, cap ? cap * 2 : 4096))) {
        err = cap >= FILE_SIZE_MAX ? EFBIG : ENOMEM;
        break;
      }
      buf = nb;
      cap = cap ? cap * 2 : 4096;
    }
    errno = 0;
    got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0) {
      err = ferror(f) ? (errno ? errno : EIO) : 0;
      break;
    }
  }
  fclose(f);
  if (err) {
    free(buf);
    return err;
  }
  *out = buf;
  *len = n;
  return 0;
}

/* Reads p->fname and parses it; returns 0 or the errno of the failed read. */
static int load_into(struct parser *p)
{
  char *text = NULL;
  size_t len = 0;
  int err = read_all(p->fname, &text, &len);

  if (err)
    return err;
  parse_text(p, text, len);
  free(text);
  return 0;
}

/* Relative paths are taken from the including file's directory, so a config tree works
 * wherever it is installed. */
static bool include_path(const char *from, const char *inc, char *out, size_t cap)
{
  const char *slash = strrchr(from, '/');
  int n;

  if (inc[0] == '/' || !slash)
    n = snprintf(out, cap, "%s", inc);
  else
    n = snprintf(out, cap, "%.*s/%s", (int)(slash - from), from, inc);
  return n >= 0 && (size_t)n < cap;
}

static void do_include(struct parser *p, struct cursor *cu, const struct directive *d)
{
  struct quoted q;
  char path[2 * CONF_PATH_MAX];
  const char *t = need_tok(p, cu, d->name);
  struct parser sub = *p;
  int err;

  if (!t || !expect_end(p, cu, d->name))
    return;
  if (p->depth < 0) {
    report(p, false, "'%s' ignored: only followed when loading a file", d->name);
    return;
  }
  if (p->depth >= CONF_INCLUDE_DEPTH_MAX) {
    report(p, true, "'%s' nested too deeply (max %d)", d->name, CONF_INCLUDE_DEPTH_MAX);
    return;
  }
  if (!include_path(p->fname, t, path, sizeof path)) {
    report(p, true, "value for '%s' too long", d->name);
    return;
  }
  sub.fname = path;
  sub.line = 0;
  sub.errors = 0;
  sub.depth = p->depth + 1;
  if ((err = load_into(&sub)))
    report(p, true, "%s '%s': cannot open: %s", d->name, quote(&q, path), strerror(err));
  else
    p->included = true;
  p->errors += sub.errors;
}

/* `nocerttimecheck N` (ntsd, as chrony): the first N NTS-KEs may skip the
 * certificates' validity dates while the clock has never been synchronised. */
static void do_nocerttimecheck(struct parser *p, struct cursor *cu, const struct directive *d)
{
  const char *t = need_tok(p, cu, d->name);
  int v;

  if (t && get_int(p, d->name, t, 0, 1000, &v) && expect_end(p, cu, d->name))
    p->c->nocerttimecheck = v;
}

/* `threads N` (ntsd): threads serving NTP over UDP, each with its own
 * sockets (SO_REUSEPORT); docs/architecture.md. */
static void do_threads(struct parser *p, struct cursor *cu, const struct directive *d)
{
  const char *t = need_tok(p, cu, d->name);
  int v;

  if (t && get_int(p, d->name, t, 1, CONF_THREADS_MAX, &v) && expect_end(p, cu, d->name))
    p->c->threads = v;
}

/* `ntsprocesses N` (chrony's name): NTS-KE server processes side by side,
 * each on its own core when there are enough.  Unlike chrony's, 0 is
 * refused: the KE server never runs in the main process. */
static void do_ntsprocesses(struct parser *p, struct cursor *cu, const struct directive *d)
{
  const char *t = need_tok(p, cu, d->name);
  int v;

  if (t && get_int(p, d->name, t, 1, CONF_NTSPROCS_MAX, &v) && expect_end(p, cu, d->name))
    p->c->nts_processes = v;
}

/* `proxy URL` (ntsd): every source's SOCKS5 proxy unless its line says otherwise. */
static void do_proxy(struct parser *p, struct cursor *cu, const struct directive *d)
{
  const char *t = need_tok(p, cu, d->name);
  conf_proxy px;

  if (t && get_proxy(p, d->name, t, &px) && expect_end(p, cu, d->name))
    p->c->proxy = px;
}

/* `user NAME[:GROUP]` (ntsd, as NTPsec's -u): the names are looked up at
 * start, not here (the parser resolves nothing). */
static void do_user(struct parser *p, struct cursor *cu, const struct directive *d)
{
  struct quoted q;
  const char *t = need_tok(p, cu, d->name), *colon;

  if (!t || !expect_end(p, cu, d->name) || !copy_str(p, d->name, t, NULL, sizeof p->c->user))
    return;
  colon = strchr(t, ':');
  if (t[0] == ':' || (colon && (!colon[1] || strchr(colon + 1, ':')))) {
    report(p, true, "'%s': expected NAME or NAME:GROUP, not '%s'", d->name, quote(&q, t));
    return;
  }
  memcpy(p->c->user, t, strlen(t) + 1);
}

/* `sandbox on|off|log` (ntsd): the system call filter; -F overrides it. */
static void do_sandbox(struct parser *p, struct cursor *cu, const struct directive *d)
{
  static const char *const words[] = {"off", "log", "on"};
  static const int levels[] = {SANDBOX_OFF, SANDBOX_LOG, SANDBOX_ON};
  struct quoted q;
  const char *t = need_tok(p, cu, d->name);

  if (!t || !expect_end(p, cu, d->name))
    return;
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
    if (!strcmp(t, words[i])) {
      p->c->sandbox = levels[i];
      return;
    }
  report(p, true, "'%s': expected on, off or log, not '%s'", d->name, quote(&q, t));
}

/* Every directive with its status; the table in docs/configuration.md is
 * printed from this one (conf_write_directive_table). */
#define PATH(f) do_path, offsetof(ntsd_conf, f)
#define SOURCE_ARGS "HOST[:PORT] [OPTION...]"
#define SOURCE_OPTS SUBTABLE(SUB_OPTS, source_opts)
#define RESTRICT_ARGS "[-4|-6] default|source|ADDR[/LEN] [mask MASK] [FLAG...]"
#define RESTRICT_WORDS SUBTABLE(SUB_WORDS, restrict_words)
#define ENABLE_WORDS SUBTABLE(SUB_WORDS, enable_words)
#define IFACE_ARGS "listen|ignore|drop all|ipv4|ipv6|wildcard|NAME|ADDR"
#define IFACE_WORDS SUBTABLE(SUB_WORDS, interface_words)
#define PAIRS "OPTION VALUE..."
#define NONE CONF_IGNORED, NOEFFECT, NULL
#define NOKEYS CONF_IGNORED, NOSYMKEYS, NULL
static const struct directive directives[] = {
    DIRECTIVE("server", do_source, CONF_SERVER, SOURCE_ARGS, CONF_ACTIVE, NULL, SOURCE_OPTS),
    DIRECTIVE("pool", do_source, CONF_POOL, SOURCE_ARGS, CONF_ACTIVE,
              "up to 4 associations from the name's addresses", SOURCE_OPTS),
    DIRECTIVE("peer", do_source, CONF_PEER, SOURCE_ARGS, CONF_PARTIAL,
              "is served as a client association (symmetric mode is not supported)",
              SOURCE_OPTS),
    DIRECTIVE("proxy", do_proxy, 0, "socks5://[USER[:PASS]@]HOST:PORT", CONF_ACTIVE,
              "(ntsd) every source goes through this SOCKS5 proxy unless its line has "
              "`proxy` or `noproxy`",
              NULL),
    DIRECTIVE("restrict", do_restrict, 0, RESTRICT_ARGS, CONF_ACTIVE,
              "the most specific entry wins", RESTRICT_WORDS),
    DIRECTIVE("unrestrict", do_restrict, 1, RESTRICT_ARGS, CONF_ACTIVE, "removes an entry",
              RESTRICT_WORDS),
    DIRECTIVE("driftfile", PATH(driftfile), "FILE", CONF_ACTIVE,
              "with clock control: read at start, written about hourly", NULL),
    DIRECTIVE("statsdir", PATH(statsdir), "DIR", CONF_ACTIVE,
              "where the statistics files go; writable by the `-u` user", NULL),
    DIRECTIVE("logfile", PATH(logfile), "FILE", CONF_ACTIVE,
              "log lines go to FILE, not syslog or stderr, as `-l`; docs/logging.md", NULL),
    DIRECTIVE("logfacility", do_logfacility, 0, "daemon|user|local0...local7", CONF_ACTIVE,
              "(ntsd) the syslog facility, default daemon", NULL),
    DIRECTIVE("leapfile", PATH(leapfile), "FILE", CONF_STORED,
              "has no effect yet (leap seconds come from the selected sources' majority)",
              NULL),
    DIRECTIVE("statistics", do_statistics, 0, "NAME...", CONF_ACTIVE,
              "loopstats, peerstats, rawstats in NTPsec's formats; other names warn, "
              "not written",
              NULL),
    DIRECTIVE("filegen", do_filegen, 0, "NAME [file F] [type T] [FLAG...]", CONF_ACTIVE,
              "type day (other periods as day) or none; link, enable, disable",
              NULL),
    DIRECTIVE("logconfig", do_logconfig, 0, "[=+-]CLASSITEM...", CONF_ACTIVE,
              "classes sys, peer, clock, sync, all; items info, events, status, statistics, "
              "all; errors and warnings are always logged",
              NULL),
    DIRECTIVE("tos", do_pairs, 0, PAIRS, CONF_ACTIVE, NULL, SUBTABLE(SUB_OPTS, tos_opts)),
    DIRECTIVE("discard", do_pairs, 0, PAIRS, CONF_ACTIVE, NULL,
              SUBTABLE(SUB_OPTS, discard_opts)),
    DIRECTIVE("tinker", do_pairs, 0, PAIRS, CONF_ACTIVE, NULL,
              SUBTABLE(SUB_OPTS, tinker_opts)),
    DIRECTIVE("mru", do_pairs, 0, PAIRS, CONF_IGNORED, NOEFFECT, SUBTABLE(SUB_OPTS, mru_opts)),
    DIRECTIVE("keys", do_ignored, 1, "FILE", NOKEYS),
    DIRECTIVE("setvar", do_ignored, 0, "WORD...", NONE),
    DIRECTIVE("trustedkey", do_keyids, 0, "N...", NOKEYS),
    DIRECTIVE("controlkey", do_keyids, 1, "N", NOKEYS),
    DIRECTIVE("requestkey", do_keyids, 1, "N", NOKEYS),
    DIRECTIVE("leapsmearinterval", do_leapsmear, 0, "N", NONE),
    DIRECTIVE("enable", do_enable, 1, "FLAG...", CONF_ACTIVE, NULL, ENABLE_WORDS),
    DIRECTIVE("disable", do_enable, 0, "FLAG...", CONF_ACTIVE, NULL, ENABLE_WORDS),
    DIRECTIVE("interface", do_interface, 0, IFACE_ARGS, CONF_ACTIVE, NULL, IFACE_WORDS),
    DIRECTIVE("nic", do_interface, 0, IFACE_ARGS, CONF_ACTIVE, "as `interface`", IFACE_WORDS),
    DIRECTIVE("listen", do_listen, 0, "ADDR[:PORT] [tcp]", CONF_ACTIVE,
              "(ntsd) repeatable; ADDR a literal or `*`; `tcp`: NTP over TCP too", NULL),
    DIRECTIVE("threads", do_threads, 0, "N", CONF_ACTIVE,
              "(ntsd) threads serving NTP over UDP, default 1; a restart applies a change",
              NULL),
    DIRECTIVE("local", do_local, 0, "stratum N", CONF_ACTIVE,
              "serve the local clock at stratum N with no usable source", NULL),
    DIRECTIVE("nts", do_nts, 0, "SUBCOMMAND ...", CONF_ACTIVE, NULL,
              SUBTABLE(SUB_CMDS, nts_subs)),
    DIRECTIVE("ntsprocesses", do_ntsprocesses, 0, "N", CONF_ACTIVE,
              "(ntsd, as chrony) NTS-KE server processes, 1 to 16, default 1; a restart "
              "applies a change",
              NULL),
    DIRECTIVE("nts-listen-on", do_nts_listen, 0, "PORT|ADDR:PORT|[IPv6]:PORT", CONF_ACTIVE,
              "the NTS-KE server's address, default port 4460", NULL),
    DIRECTIVE("controlsocket", do_controlsocket, 0, "PATH [group NAME]", CONF_ACTIVE,
              "(ntsd) where `ntsctl` connects", NULL),
    DIRECTIVE("metrics", do_metrics, 0, "ADDR:PORT", CONF_ACTIVE,
              "(ntsd) Prometheus endpoint, http://ADDR:PORT/metrics; off by default; "
              "docs/metrics.md", NULL),
    DIRECTIVE("user", do_user, 0, "NAME[:GROUP]", CONF_ACTIVE,
              "(ntsd) run as this user once set up, as `-u` (which overrides it); "
              "docs/security.md", NULL),
    DIRECTIVE("sandbox", do_sandbox, 0, "on|off|log", CONF_ACTIVE,
              "(ntsd) the system call filter, as `-F 1|0|-1` (which overrides it); "
              "docs/security.md", NULL),
    DIRECTIVE("includefile", do_include, 0, "FILE", CONF_ACTIVE,
              "relative to the including file; nesting at most 4", NULL),
    DIRECTIVE("nocerttimecheck", do_nocerttimecheck, 0, "N", CONF_ACTIVE,
              "(ntsd, as chrony) NTS-KEs that may skip certificate dates before the first "
              "synchronisation", NULL),
};
#undef NOKEYS
#undef NONE
#undef PAIRS
#undef IFACE_WORDS
#undef IFACE_ARGS
#undef ENABLE_WORDS
#undef RESTRICT_WORDS
#undef RESTRICT_ARGS
#undef SOURCE_OPTS
#undef SOURCE_ARGS
#undef PATH

static bool is_blank(char ch)
{
  return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v';
}

/* A TOML table header or `key = value` line: somebody pointed us at an
 * ntpd-rs (or other TOML) configuration.  One clear error beats an
 * "unknown directive" per line. */
static bool looks_like_toml(char **tok, size_t n)
{
  return tok[0][0] == '[' || (n >= 2 && strcmp(tok[1], "=") == 0) ||
         strchr(tok[0], '=') != NULL;
}

static void dispatch(struct parser *p, char **tok, size_t n)
{
  struct quoted q;
  struct cursor cu = {tok + 1, n - 1, 0};

  if (looks_like_toml(tok, n)) {
    report(p, true, "'%s' looks like TOML (an ntpd-rs configuration?); ntsd reads "
                    "ntp.conf syntax: see docs/configuration.md for the equivalents",
           quote(&q, tok[0]));
    p->stop = true;
    return;
  }

  for (size_t i = 0; i < ARRAY_LEN(directives); i++) {
    if (strcmp(directives[i].name, tok[0]) == 0) {
      directives[i].fn(p, &cu, &directives[i]);
      /* Every handler checks its own end; this only guards against one that forgets. */
      if (!p->line_failed)
        expect_end(p, &cu, tok[0]);
      if (!p->line_failed)
        note_status(p, tok[0], directives[i].st, directives[i].note);
      return;
    }
  }
  report(p, true, "unknown directive '%s'", quote(&q, tok[0]));
}

static void parse_line(struct parser *p, const char *s, size_t len)
{
  char buf[CONF_LINE_MAX + 1];
  char *tok[TOKENS_MAX];
  size_t m = 0, n = 0;

  p->line_failed = false;
  if (len > CONF_LINE_MAX) {
    report(p, true, "line too long (max %d bytes)", CONF_LINE_MAX);
    return;
  }
  /* '#' starts a comment anywhere, as in NTPsec; a NUL in a comment does no harm. */
  for (size_t i = 0; i < len && s[i] != '#'; i++) {
    if (s[i] == '\0') {
      report(p, true, "NUL byte in line");
      return;
    }
    buf[m++] = s[i];
  }
  buf[m] = '\0';
  for (char *w = buf; *w && n < TOKENS_MAX;) {
    if (is_blank(*w)) {
      *w++ = '\0';
      continue;
    }
    tok[n++] = w;
    while (*w && !is_blank(*w))
      w++;
  }
  if (n)
    dispatch(p, tok, n);
}

static void parse_text(struct parser *p, const char *text, size_t len)
{
  size_t pos = 0;

  while (pos < len && !p->stop) {
    const char *nl = memchr(text + pos, '\n', len - pos);
    size_t end = nl ? (size_t)(nl - text) : len;
    p->line++;
    parse_line(p, text + pos, end - pos);
    pos = end + 1;
  }
}

/* After the whole configuration: each source's proxy in force, and what only
 * makes sense with or without one.  The global `proxy` may come after the
 * sources, so this cannot all be checked line by line (source_proxy_ok did what
 * it could).  A source's line number is only known to be the top file's when no
 * file was included: otherwise the message names the source instead. */
static void finish_sources(struct parser *p)
{
  ntsd_conf *c = p->c;
  unsigned saved = p->line;

  for (size_t i = 0; i < c->n_sources; i++) {
    conf_source *s = &c->sources[i];
    char who[CONF_HOST_MAX + 16] = "";
    if (p->included)
      snprintf(who, sizeof who, "'%s %s': ",
               s->kind == CONF_POOL ? "pool" : s->kind == CONF_PEER ? "peer" : "server",
               s->host);
    p->line = p->included ? 0 : s->line;
    if (!s->proxy.set && !s->noproxy && c->proxy.set)
      s->proxy = c->proxy;
    if (s->proxy.set && s->kind == CONF_POOL)
      report(p, true, "%s%s", who, POOL_PROXY);
    else if (!s->proxy.set && conf_is_onion(s->host))
      report(p, true, "'%s' %s", s->host, ONION_PROXY);
    else if (!s->proxy.set && s->directfallback)
      report(p, false, "%s'directfallback' has no effect without a proxy", who);
  }
  p->line = saved;
}

/* ---- public API ------------------------------------------------------------ */

ntsd_conf *conf_new(void)
{
  ntsd_conf *c = calloc(1, sizeof *c);

  if (!c)
    return NULL;
  c->local_stratum = -1;
  c->clock_control = true;
  for (int i = 0; i < CONF_STATS_N; i++)
    c->filegen[i] = (conf_filegen){.daily = true, .link = true};
  c->sandbox = SANDBOX_ON;
  c->logmask = LOG_MASK_ALL;
  c->logfacility = LOG_DAEMON;
  /* NTPsec's defaults, so an unchanged config behaves the same. */
  c->tos_minsane = 1;
  c->tos_minclock = 3;
  c->tos_maxclock = 10;
  c->tos_mindist = 0.001;
  c->tos_maxdist = 1.5;
  c->tos_orphan = -1;
  c->tinker_step = c->tinker_stepout = c->tinker_panic = -1;
  c->tos_orphanwait = 300;
  c->tos_authselect = NTP_AUTHSEL_MIX;
  c->discard_average = 3;
  c->discard_minimum = 2;
  c->threads = 1;
  c->nts_processes = 1;
  c->nts_rotate = 86400;
  return c;
}

void conf_free(ntsd_conf *c)
{
  if (!c)
    return;
  free(c->sources);
  free(c->restricts);
  free(c->listens);
  free(c);
}

int conf_parse_string(ntsd_conf *c, const char *fname, const char *text, size_t len,
                      conf_diag_fn diag, void *ctx)
{
  struct parser p = {.c = c, .fname = fname ? fname : "(string)", .diag = diag, .ctx = ctx,
                     .depth = -1};

  if (!c || (!text && len))
    return -1;
  parse_text(&p, text, len);
  finish_sources(&p);
  return p.errors ? -1 : 0;
}

int conf_load_file(ntsd_conf *c, const char *path, conf_diag_fn diag, void *ctx)
{
  struct parser p = {.c = c, .fname = path, .diag = diag, .ctx = ctx, .depth = 0};
  int err;

  if (!c || !path)
    return -1;
  if ((err = load_into(&p)))
    report(&p, true, "cannot open: %s", strerror(err));
  else
    finish_sources(&p);
  return p.errors ? -1 : 0;
}

/* ---- small per-module configurations ---------------------------------------- */

conf_tos conf_get_tos(const ntsd_conf *c)
{
  conf_tos t = {.mindist = c->tos_mindist, .maxdist = c->tos_maxdist,
                .minsane = c->tos_minsane, .minclock = c->tos_minclock,
                .maxclock = c->tos_maxclock, .authselect = c->tos_authselect};

  for (size_t i = 0; i < c->n_sources; i++)
    t.auth_sources += c->sources[i].nts && !c->sources[i].noselect;
  return t;
}

conf_tinker conf_get_tinker(const ntsd_conf *c)
{
  return (conf_tinker){c->tinker_step, c->tinker_stepout, c->tinker_panic};
}

conf_ratelimit conf_get_ratelimit(const ntsd_conf *c)
{
  return (conf_ratelimit){c->discard_average, c->discard_minimum};
}

conf_nts_client conf_get_nts_client(const ntsd_conf *c)
{
  conf_nts_client n = {.nocerttimecheck = c->nocerttimecheck};

  memcpy(n.ca, c->nts_ca, sizeof n.ca);
  return n;
}

/* ---- the status table ------------------------------------------------------ */

const char *conf_status_name(enum conf_status s)
{
  switch (s) {
  case CONF_ACTIVE: return "active";
  case CONF_ALWAYS: return "always";
  case CONF_PARTIAL: return "partial";
  case CONF_STORED: return "stored";
  case CONF_IGNORED: return "ignored";
  }
  return "?";
}

static conf_item sub_item(const struct subtable *s, size_t i, const char *dir)
{
  conf_item it = {.directive = dir};

  if (s->kind == SUB_OPTS) {
    const struct opt *o = (const struct opt *)s->tab + i;
    it = (conf_item){dir, o->name, o->args, o->st, o->note};
  } else if (s->kind == SUB_WORDS) {
    const struct word *w = (const struct word *)s->tab + i;
    it = (conf_item){dir, w->name ? w->name : "", w->args, w->st, w->note};
  } else {
    const struct directive *d = (const struct directive *)s->tab + i;
    it = (conf_item){dir, d->name, d->args, d->st, d->note};
  }
  return it;
}

/* The last directive with this option table lists it; options of a directive
 * without any effect are not listed (they cannot do more than it does). */
static bool lists_subs(size_t di)
{
  const struct directive *d = &directives[di];

  if (!d->subs || no_effect(d->st))
    return false;
  for (size_t i = di + 1; i < ARRAY_LEN(directives); i++)
    if (directives[i].subs && directives[i].subs->tab == d->subs->tab)
      return false;
  return true;
}

/* The first directive with the option table of directives[di]. */
static const char *first_name(size_t di)
{
  for (size_t i = 0; i < di; i++)
    if (directives[i].subs && directives[i].subs->tab == directives[di].subs->tab)
      return directives[i].name;
  return directives[di].name;
}

typedef void (*row_fn)(void *ctx, const conf_item *it, size_t di);

static void walk(row_fn fn, void *ctx)
{
  for (size_t di = 0; di < ARRAY_LEN(directives); di++) {
    const struct directive *d = &directives[di];
    conf_item it = {d->name, NULL, d->args, d->st, d->note};
    fn(ctx, &it, di);
    for (size_t i = 0; lists_subs(di) && i < d->subs->n; i++) {
      it = sub_item(d->subs, i, first_name(di));
      fn(ctx, &it, di);
    }
  }
}

struct each_ctx {
  conf_item_fn fn;
  void *ctx;
};

static void each_row(void *ctx, const conf_item *it, size_t di)
{
  struct each_ctx *e = ctx;

  (void)di;
  e->fn(e->ctx, it);
}

void conf_each_item(conf_item_fn fn, void *ctx)
{
  struct each_ctx e = {fn, ctx};

  walk(each_row, &e);
}

/* Markdown table cells: '|' must be escaped even inside a code span. */
static void put_cell(FILE *f, const char *s)
{
  for (; *s; s++) {
    if (*s == '|')
      fputc('\\', f);
    fputc(*s, f);
  }
}

/* "server|pool|peer": every directive sharing the option table of directives[di]. */
static void put_names(FILE *f, size_t di)
{
  const char *sep = "";

  for (size_t i = 0; i < ARRAY_LEN(directives); i++)
    if (directives[i].subs && directives[i].subs->tab == directives[di].subs->tab) {
      fputs(sep, f);
      put_cell(f, directives[i].name);
      sep = "\\|";
    }
}

static void write_row(void *ctx, const conf_item *it, size_t di)
{
  FILE *f = ctx;

  fputs("| `", f);
  if (!it->option) {
    put_cell(f, it->directive);
  } else {
    put_names(f, di);
    fputs(directives[di].subs->kind == SUB_CMDS ? " " : " ... ", f);
    put_cell(f, it->option);
  }
  if (it->args[0] && (!it->option || it->option[0]))
    fputc(' ', f);
  put_cell(f, it->args);
  fprintf(f, "` | %s | ", conf_status_name(it->status));
  put_cell(f, it->note ? it->note : "");
  fputs(" |\n", f);
}

void conf_write_directive_table(FILE *f)
{
  fputs("| Directive | Status | Notes |\n|---|---|---|\n", f);
  walk(write_row, f);
}

/* mdoc text: backslashes escaped, `code` spans as quotes, and a new line
 * after each sentence (mandoc -Tlint asks for it). */
static void put_roff(FILE *f, const char *s)
{
  bool open = false, bol = true;
  size_t col = 0;

  for (; *s; s++, col++) {
    if (*s == ' ' && col >= 64) { /* and lines of at most 80 bytes */
      fputc('\n', f);
      bol = true;
      col = 0;
      continue;
    }
    if (bol && (*s == '.' || *s == '\''))
      fputs("\\&", f);
    bol = false;
    if (*s == '\\') {
      fputs("\\e", f);
    } else if (*s == '`') {
      fputs(open ? "\\(cq" : "\\(oq", f);
      open = !open;
    } else if (*s == '.' && s[1] == ' ' && !open) {
      fputs(".\n", f);
      s++;
      bol = true;
      col = 0;
    } else {
      fputc(*s, f);
    }
  }
}

/* One .It line: the keywords in Cm, the arguments in Ar; quoted, so no
 * word is taken for a macro. */
static void write_mdoc_item(void *ctx, const conf_item *it, size_t di)
{
  FILE *f = ctx;

  fputs(".It Cm \"", f);
  if (!it->option) {
    fputs(it->directive, f);
  } else {
    for (size_t i = 0, n = 0; i < ARRAY_LEN(directives); i++)
      if (directives[i].subs && directives[i].subs->tab == directives[di].subs->tab)
        fprintf(f, "%s%s", n++ ? "|" : "", directives[i].name);
    fprintf(f, "%s%s", directives[di].subs->kind == SUB_CMDS ? " " : " ... ", it->option);
  }
  fputc('"', f);
  if (it->args[0])
    fprintf(f, " Ar \"%s\"", it->args);
  fprintf(f, "\n.Sy %s", conf_status_name(it->status));
  if (it->note && it->note[0]) {
    fputs(" :\n", f);
    put_roff(f, it->note);
  }
  fputc('\n', f);
}

void conf_write_directive_mdoc(FILE *f)
{
  fputs(".Bl -tag -width Ds\n", f);
  walk(write_mdoc_item, f);
  fputs(".El\n", f);
}
