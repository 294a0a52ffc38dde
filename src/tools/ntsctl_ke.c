/* ntsctl_ke: one NTS-KE exchange as a diagnostic. */
#include "tools/ntsctl_ke.h"

#include <event2/event.h>
#include <netdb.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/json.h"
#include "daemon/netaddr.h"
#include "daemon/socks_conn.h"
#include "daemon/sysclock.h"
#include "daemon/tls.h"

#define MAX_CERTS 8
#define PIN_STRLEN 64 /* "sha256:" and 44 base64 characters, with room */

/* ---- arguments -------------------------------------------------------------- */

static bool fail_arg(char *err, size_t errlen, const char *what, const char *v)
{
  snprintf(err, errlen, "%s: '%.64s'", what, v ? v : "");
  return false;
}

/* One option with a value; false with err set on a bad one. */
static bool parse_value(ntsctl_ke_opts *o, const char *a, const char *v, char *err,
                        size_t errlen)
{
  if (strcmp(a, "--ca") == 0) {
    o->ca = v;
  } else if (strcmp(a, "--pin") == 0) {
    if (o->pins.n >= KE_PINS_MAX)
      return fail_arg(err, errlen, "too many --pin", v);
    if (!conf_parse_pin(v, o->pins.sha256[o->pins.n]))
      return fail_arg(err, errlen, "bad --pin (want sha256:BASE64)", v);
    o->pins.n++;
  } else if (strcmp(a, "--aead") == 0) {
    uint16_t id = conf_aead_id(v);
    if (!id)
      return fail_arg(err, errlen, "unsupported --aead (15, 17 or their names)", v);
    if (o->n_aeads >= NTSCTL_KE_MAX_AEADS)
      return fail_arg(err, errlen, "too many --aead", v);
    o->aeads[o->n_aeads++] = id;
  } else if (strcmp(a, "--proxy") == 0) {
    o->proxy_url = v;
  } else if (strcmp(a, "--timeout") == 0) {
    char *end;
    o->timeout = strtod(v, &end);
    if (*end || end == v || !(o->timeout > 0 && o->timeout <= 300))
      return fail_arg(err, errlen, "bad --timeout (seconds, at most 300)", v);
  } else {
    return fail_arg(err, errlen, "unknown option", a);
  }
  return true;
}

bool ntsctl_ke_parse(int argc, char **argv, ntsctl_ke_opts *o, char *err, size_t errlen)
{
  const char *target = NULL;
  memset(o, 0, sizeof(*o));
  o->timeout = 10;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--export") == 0) {
      o->export_keys = true;
    } else if (strcmp(a, "--json") == 0 || strcmp(a, "-j") == 0) {
      o->json = true;
    } else if (a[0] == '-' && a[1]) {
      if (i + 1 >= argc)
        return fail_arg(err, errlen, "missing value for", a);
      if (!parse_value(o, a, argv[++i], err, errlen))
        return false;
    } else if (!target) {
      target = a;
    } else {
      return fail_arg(err, errlen, "unexpected argument", a);
    }
  }
  if (!target) {
    snprintf(err, errlen, "needs HOST[:PORT]");
    return false;
  }
  if (!conf_split_host_port(target, o->host, sizeof(o->host), &o->port))
    return fail_arg(err, errlen, "bad HOST[:PORT]", target);
  if (o->port == 0)
    o->port = NTSCTL_KE_DEFAULT_PORT;
  /* With --ca as well, the chain and name are checked as well as the pin
   * (the daemon's `pin` with `ca`). */
  o->pins.chain = o->pins.n && o->ca;
  if (o->n_aeads == 0) {
    o->aeads[o->n_aeads++] = NTS_AEAD_AES_SIV_CMAC_256;
    o->aeads[o->n_aeads++] = NTS_AEAD_AES_SIV_CMAC_512;
  }
  return true;
}

void ntsctl_ke_span(long long s, char *buf, size_t cap)
{
  const char *sign = s < 0 ? "-" : "";
  unsigned long long a = s < 0 ? 0ull - (unsigned long long)s : (unsigned long long)s;
  unsigned long long d = a / 86400, h = a % 86400 / 3600, m = a % 3600 / 60, sec = a % 60;
  if (d)
    snprintf(buf, cap, "%s%llud %lluh %llum", sign, d, h, m);
  else if (h)
    snprintf(buf, cap, "%s%lluh %llum %llus", sign, h, m, sec);
  else if (m)
    snprintf(buf, cap, "%s%llum %llus", sign, m, sec);
  else
    snprintf(buf, cap, "%s%llus", sign, sec);
}

/* ---- what the exchange showed ------------------------------------------------ */

typedef struct cert_view {
  char subject[256];
  char issuer[256];
  char not_before[32]; /* "2026-12-07T12:00:00Z" */
  char not_after[32];
  long long expires_in; /* seconds from now to notAfter (negative: expired) */
  char pin[PIN_STRLEN]; /* "sha256:BASE64" of its SubjectPublicKeyInfo */
} cert_view;

typedef struct ke_report {
  bool done;
  ke_result r; /* a copy; r.ssl is cleared */
  cert_view certs[MAX_CERTS];
  size_t n_certs;
  char via[sizeof(((conf_proxy *)0)->url) + 16]; /* "127.0.0.1:4460", or "through URL" */
} ke_report;

static void time_str(const ASN1_TIME *t, char *buf, size_t cap)
{
  struct tm tm;
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1 || strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    snprintf(buf, cap, "?");
}

/* A name in RFC 2253 form ("CN=localhost,O=Example"), cut to cap. */
static void name_str(const X509_NAME *name, char *buf, size_t cap)
{
  BIO *b = BIO_new(BIO_s_mem());
  int n = b ? X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) : -1;
  int got = n >= 0 ? BIO_read(b, buf, (int)cap - 1) : -1;
  buf[got > 0 ? got : 0] = '\0';
  BIO_free(b);
}

static void cert_view_of(X509 *x, cert_view *v)
{
  name_str(X509_get_subject_name(x), v->subject, sizeof(v->subject));
  name_str(X509_get_issuer_name(x), v->issuer, sizeof(v->issuer));
  time_str(X509_get0_notBefore(x), v->not_before, sizeof(v->not_before));
  time_str(X509_get0_notAfter(x), v->not_after, sizeof(v->not_after));
  int days = 0, secs = 0;
  if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)) == 1)
    v->expires_in = (long long)days * 86400 + secs;
  uint8_t d[32];
  char b64[48];
  if (tls_cert_spki_sha256(x, d)) {
    EVP_EncodeBlock((unsigned char *)b64, d, (int)sizeof(d));
    snprintf(v->pin, sizeof(v->pin), "sha256:%s", b64);
  }
}

/* The certificates the server sent, leaf first (also after a failed
 * verification: they show what was wrong). */
static void collect_certs(const SSL *ssl, ke_report *rep)
{
  STACK_OF(X509) *chain = ssl ? SSL_get_peer_cert_chain(ssl) : NULL;
  int n = chain ? sk_X509_num(chain) : 0;
  for (int i = 0; i < n && rep->n_certs < MAX_CERTS; i++)
    cert_view_of(sk_X509_value(chain, i), &rep->certs[rep->n_certs++]);
}

static void on_done(void *arg, ke_result *r)
{
  ke_report *rep = arg;
  rep->done = true;
  collect_certs(r->ssl, rep);
  rep->r = *r;
  rep->r.ssl = NULL;
  nts_wipe(r->c2s, sizeof(r->c2s));
  nts_wipe(r->s2c, sizeof(r->s2c));
}

/* ---- output ------------------------------------------------------------------ */

static void hex(FILE *f, const uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    fprintf(f, "%02X", p[i]);
}

static char *hex_str(const uint8_t *p, size_t n)
{
  char *s = malloc(2 * n + 1);
  if (!s)
    return NULL;
  for (size_t i = 0; i < n; i++)
    snprintf(s + 2 * i, 3, "%02X", p[i]);
  s[2 * n] = '\0';
  return s;
}

static const char *stage_name(ke_fail f)
{
  switch (f) {
  case KE_FAIL_CONNECT: return "connect";
  case KE_FAIL_TLS: return "tls";
  case KE_FAIL_PROTOCOL: return "protocol";
  default: return "setup";
  }
}

static const char *stage_text(ke_fail f)
{
  switch (f) {
  case KE_FAIL_CONNECT: return "cannot connect";
  case KE_FAIL_TLS: return "TLS failure";
  case KE_FAIL_PROTOCOL: return "NTS-KE protocol error";
  default: return "failed";
  }
}

static int exit_status(ke_fail f)
{
  switch (f) {
  case KE_FAIL_CONNECT: return NTSCTL_KE_EXIT_CONNECT;
  case KE_FAIL_TLS: return NTSCTL_KE_EXIT_TLS;
  case KE_FAIL_PROTOCOL: return NTSCTL_KE_EXIT_PROTOCOL;
  default: return NTSCTL_KE_EXIT_SETUP;
  }
}

/* How the server's certificate was judged. */
static const char *auth_text(const ntsctl_ke_opts *o)
{
  if (o->pins.n && !o->pins.chain)
    return "public key pin only (chain and name not checked)";
  if (o->pins.n)
    return "CA, name and public key pin";
  return o->ca ? "CA file and name" : "system CA store and name";
}

static void print_certs_text(const ke_report *rep)
{
  for (size_t i = 0; i < rep->n_certs; i++) {
    const cert_view *c = &rep->certs[i];
    char span[48];
    ntsctl_ke_span(c->expires_in, span, sizeof(span));
    printf("  %zu subject:   %s\n", i, c->subject);
    printf("    issuer:    %s\n", c->issuer);
    printf("    notBefore: %s\n", c->not_before);
    printf("    notAfter:  %s (%s %s)\n", c->not_after,
           c->expires_in < 0 ? "expired" : "expires in", span + (c->expires_in < 0));
    printf("    pin:       %s\n", c->pin);
  }
}

static void print_export_text(const ke_result *r)
{
  const nts_ke_session *s = &r->session;
  printf("C2S key:       ");
  hex(stdout, r->c2s, r->key_len);
  printf("\nS2C key:       ");
  hex(stdout, r->s2c, r->key_len);
  printf("\ncookie:        ");
  hex(stdout, s->cookies[0], s->cookie_len);
  printf("\n");
  if (s->aead != NTS_AEAD_AES_SIV_CMAC_256) {
    printf("ntpperf:       (needs AEAD 15: use --aead 15)\n");
    return;
  }
  printf("ntpperf:       -S ");
  hex(stdout, r->c2s, r->key_len);
  printf(",");
  hex(stdout, s->cookies[0], s->cookie_len);
  printf("\n");
}

static void print_text(const ntsctl_ke_opts *o, const ke_report *rep)
{
  const ke_result *r = &rep->r;
  const nts_ke_session *s = &r->session;
  printf("NTS-KE with %s port %u (%s)\n", o->host, o->port, rep->via);
  printf("TLS:           %s, %s\n", r->tls_version, r->cipher);
  printf("certificates:  %zu, checked by %s\n", rep->n_certs, auth_text(o));
  print_certs_text(rep);
  printf("AEAD:          %u (%s)\n", s->aead, nts_ke_aead_name(s->aead));
  printf("cookies:       %zu of %zu bytes\n", s->n_cookies, s->cookie_len);
  printf("NTP server:    %s%s\n", s->server[0] ? s->server : o->host,
         s->server[0] ? "" : " (no Server record: the NTS-KE server's host)");
  printf("NTP port:      %u%s\n", s->port ? s->port : 123, s->port ? "" : " (no Port record)");
  if (s->tcp_port)
    printf("NTP over TCP:  port %u\n", s->tcp_port);
  else
    printf("NTP over TCP:  not offered\n");
  printf("took:          %.3f s\n", r->took);
  if (o->export_keys)
    print_export_text(r);
}

static void json_certs(json_w *j, const ke_report *rep)
{
  json_key(j, "certificates");
  json_arr_begin(j);
  for (size_t i = 0; i < rep->n_certs; i++) {
    const cert_view *c = &rep->certs[i];
    json_obj_begin(j);
    json_kv_str(j, "subject", c->subject);
    json_kv_str(j, "issuer", c->issuer);
    json_kv_str(j, "not_before", c->not_before);
    json_kv_str(j, "not_after", c->not_after);
    json_kv_int(j, "expires_in", c->expires_in);
    json_kv_str(j, "pin", c->pin);
    json_obj_end(j);
  }
  json_arr_end(j);
}

static void json_hex(json_w *j, const char *k, const uint8_t *p, size_t n)
{
  char *s = hex_str(p, n);
  json_key(j, k);
  s ? json_string(j, s) : json_null(j);
  if (s)
    nts_wipe(s, strlen(s));
  free(s);
}

static void json_session(json_w *j, const ntsctl_ke_opts *o, const ke_result *r)
{
  const nts_ke_session *s = &r->session;
  json_kv_uint(j, "aead", s->aead);
  json_kv_str(j, "aead_name", nts_ke_aead_name(s->aead));
  json_kv_uint(j, "cookies", s->n_cookies);
  json_kv_uint(j, "cookie_length", s->cookie_len);
  json_kv_str(j, "ntp_server", s->server[0] ? s->server : o->host);
  json_kv_bool(j, "server_record", s->server[0] != '\0');
  json_kv_uint(j, "ntp_port", s->port ? s->port : 123);
  json_kv_bool(j, "port_record", s->port != 0);
  json_key(j, "ntp_tcp_port");
  s->tcp_port ? json_uint(j, s->tcp_port) : json_null(j);
  if (o->export_keys) {
    json_hex(j, "c2s", r->c2s, r->key_len);
    json_hex(j, "s2c", r->s2c, r->key_len);
    json_hex(j, "cookie", s->cookies[0], s->cookie_len);
  }
}

/* Failure details: the stage, and the Error or Warning record if any. */
static void json_failure(json_w *j, const ke_result *r)
{
  json_kv_str(j, "stage", stage_name(r->fail));
  json_kv_str(j, "error", r->why);
  json_key(j, "error_record");
  r->resp_status == NTS_KE_RESP_SERVER_ERROR ? json_uint(j, r->session.error_code)
                                             : json_null(j);
  json_key(j, "warning_record");
  r->resp_status == NTS_KE_RESP_WARNING ? json_uint(j, r->session.warning_code) : json_null(j);
}

static bool print_json(const ntsctl_ke_opts *o, const ke_report *rep)
{
  const ke_result *r = &rep->r;
  json_w *j = json_new();
  if (!j)
    return false;
  json_obj_begin(j);
  json_kv_bool(j, "ok", r->ok);
  json_kv_str(j, "host", o->host);
  json_kv_uint(j, "port", o->port);
  json_kv_str(j, "via", rep->via);
  json_kv_str(j, "tls_version", r->tls_version);
  json_kv_str(j, "cipher", r->cipher);
  json_kv_str(j, "checked_by", auth_text(o));
  json_certs(j, rep);
  if (r->ok)
    json_session(j, o, r);
  else
    json_failure(j, r);
  json_kv_num(j, "took", r->took);
  json_obj_end(j);
  bool ok = json_ok(j);
  if (ok)
    printf("%s\n", json_str(j));
  /* The keys were in it. */
  nts_wipe((void *)json_str(j), json_len(j));
  json_free(j);
  return ok;
}

/* ---- the exchange ------------------------------------------------------------ */

/* Where HOST is: a literal as it is, a name through the system's resolver
 * (every address it gives, up to MAX_ADDRS, in its order). */
#define MAX_ADDRS 8
typedef struct addr_list {
  struct sockaddr_storage ss[MAX_ADDRS];
  socklen_t len[MAX_ADDRS];
  size_t n;
} addr_list;

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
  if (ss->ss_family == AF_INET)
    ((struct sockaddr_in *)ss)->sin_port = htons(port);
  else
    ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

static bool resolve(const ntsctl_ke_opts *o, addr_list *out, char *err, size_t errlen)
{
  out->n = 0;
  if (netaddr_parse(o->host, o->port, &out->ss[0], &out->len[0])) {
    out->n = 1;
    return true;
  }
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  struct addrinfo *res = NULL;
  int rc = getaddrinfo(o->host, NULL, &hints, &res);
  for (struct addrinfo *ai = rc == 0 ? res : NULL; ai && out->n < MAX_ADDRS; ai = ai->ai_next) {
    if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
        ai->ai_addrlen > sizeof(out->ss[0]))
      continue;
    memcpy(&out->ss[out->n], ai->ai_addr, ai->ai_addrlen);
    out->len[out->n] = ai->ai_addrlen;
    set_port(&out->ss[out->n++], o->port);
  }
  if (res)
    freeaddrinfo(res);
  if (out->n == 0)
    snprintf(err, errlen, "cannot resolve %.100s: %.60s", o->host, rc ? gai_strerror(rc) : "no address");
  return out->n > 0;
}

/* Runs the event loop until the exchange has called back. */
static void wait_done(struct event_base *base, const ke_report *rep)
{
  /* ke_client's own deadline ends the exchange either way. */
  while (!rep->done && event_base_loop(base, EVLOOP_ONCE) == 0)
    ;
}

/* Through the proxy: HOST goes to it unresolved.  False if it could not
 * start (err and *status set). */
static bool run_via(struct event_base *base, SSL_CTX *ctx, const ntsctl_ke_opts *o,
                    ke_report *rep, int *status, char *err, size_t errlen)
{
  conf_proxy proxy = {0};
  struct sockaddr_storage ss;
  socklen_t len;
  char perr[200] = "the proxy's HOST is not an address literal";
  if (!conf_parse_proxy_url(o->proxy_url, &proxy, perr, sizeof(perr)) ||
      !socks_conn_proxy_from_conf(&proxy, &ss, &len)) {
    snprintf(err, errlen, "bad --proxy: %s", perr);
    *status = NTSCTL_KE_EXIT_USAGE;
    return false;
  }
  snprintf(rep->via, sizeof(rep->via), "through %s", proxy.url);
  socks_creds cr;
  socks_conn_creds(&proxy, &cr);
  ke_via via = {.proxy = (struct sockaddr *)&ss, .proxy_len = len, .user = cr.user,
                .user_len = cr.user_len, .pass = cr.pass, .pass_len = cr.pass_len};
  ke_client *k = ke_client_start_via(base, ctx, &via, o->host, o->port, &o->pins, o->aeads,
                                     o->n_aeads, o->timeout, on_done, rep, err, errlen);
  nts_wipe(&cr, sizeof(cr));
  nts_wipe(&proxy, sizeof(proxy));
  if (k)
    wait_done(base, rep);
  return k != NULL;
}

/* Directly: each of HOST's addresses in turn while the connection itself
 * fails, within the one timeout.  A resolver failure is reported as a
 * failed connection. */
static bool run_direct(struct event_base *base, SSL_CTX *ctx, const ntsctl_ke_opts *o,
                       ke_report *rep, char *err, size_t errlen)
{
  addr_list addrs;
  char why[sizeof(rep->r.why)];
  if (!resolve(o, &addrs, why, sizeof(why))) {
    rep->done = true;
    rep->r.fail = KE_FAIL_CONNECT;
    snprintf(rep->r.why, sizeof(rep->r.why), "%s", why);
    snprintf(rep->via, sizeof(rep->via), "not resolved");
    return true;
  }
  double end = sysclock_mono() + o->timeout;
  for (size_t i = 0; i < addrs.n; i++) {
    double left = end - sysclock_mono();
    if (i > 0 && (rep->r.fail != KE_FAIL_CONNECT || left <= 0))
      break;
    nts_wipe(rep, sizeof(*rep));
    netaddr_str_port((struct sockaddr *)&addrs.ss[i], rep->via, sizeof(rep->via));
    if (!ke_client_start(base, ctx, (struct sockaddr *)&addrs.ss[i], addrs.len[i], o->host,
                         &o->pins, o->aeads, o->n_aeads, left, on_done, rep)) {
      snprintf(err, errlen, "cannot start the exchange");
      return false;
    }
    wait_done(base, rep);
  }
  return true;
}

static int report(const ntsctl_ke_opts *o, const ke_report *rep)
{
  const ke_result *r = &rep->r;
  if (!r->ok) {
    /* "cannot connect: cannot connect: ..." says it once */
    const char *stage = stage_text(r->fail);
    size_t n = strlen(stage);
    bool same = strncmp(r->why, stage, n) == 0 && r->why[n] == ':';
    fprintf(stderr, "ntsctl: ke %s port %u (%s): %s%s%s\n", o->host, o->port, rep->via,
            same ? "" : stage, same ? "" : ": ", r->why);
  }
  bool printed = o->json ? print_json(o, rep) : (r->ok ? (print_text(o, rep), true) : true);
  if (fflush(stdout) != 0 || !printed) {
    fprintf(stderr, "ntsctl: cannot write the report\n");
    return NTSCTL_KE_EXIT_SETUP;
  }
  return r->ok ? NTSCTL_KE_EXIT_OK : exit_status(r->fail);
}

int ntsctl_ke_run(const ntsctl_ke_opts *o)
{
  char err[300];
  signal(SIGPIPE, SIG_IGN);
  SSL_CTX *ctx = tls_client_ctx(o->ca, false, err, sizeof(err));
  if (!ctx) {
    fprintf(stderr, "ntsctl: ke: %s\n", err);
    return NTSCTL_KE_EXIT_SETUP;
  }
  struct event_base *base = event_base_new();
  ke_report *rep = calloc(1, sizeof(*rep));
  int status = NTSCTL_KE_EXIT_SETUP;
  bool ran = false;
  snprintf(err, sizeof(err), "out of memory");
  if (base && rep)
    ran = o->proxy_url ? run_via(base, ctx, o, rep, &status, err, sizeof(err))
                       : run_direct(base, ctx, o, rep, err, sizeof(err));
  if (ran)
    status = rep->done ? report(o, rep) : NTSCTL_KE_EXIT_SETUP;
  else
    fprintf(stderr, "ntsctl: ke %s port %u: %s\n", o->host, o->port, err);
  if (rep)
    nts_wipe(rep, sizeof(*rep));
  free(rep);
  if (base)
    event_base_free(base);
  SSL_CTX_free(ctx);
  return status;
}
