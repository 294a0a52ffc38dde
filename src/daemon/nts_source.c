/* nts_source: NTS-KE scheduling, cookies and NTS checks of one source. */
#define LOG_CLASS LOG_CLASS_PEER /* log.h: the class `logconfig` knows them by */
#include "daemon/nts_source.h"

#include <event2/event.h>
#include <math.h>
#include <netinet/in.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/conf.h"
#include "daemon/ke_client.h"
#include "daemon/log.h"
#include "daemon/netaddr.h"
#include "daemon/socks_conn.h"
#include "daemon/sysclock.h"
#include "daemon/timer.h"
#include "daemon/tls.h"
#include "proto/alert.h"
#include "proto/nts_ntp.h"

#define KE_TIMEOUT 5.0         /* seconds for connect + handshake + exchange */
#define KE_PROXY_TIMEOUT 15.0  /* the same through a proxy: Tor builds a new circuit first */
#define KE_RETRY_MIN 2.0       /* seconds; doubles per failure ... */
#define KE_RETRY_MAX 3600.0    /* ... up to an hour, with +-25 % jitter */
#define NAKS_BEFORE_KE 2       /* consecutive exchanges ended by a NAK that make us redo NTS-KE */
#define ALERT_INTERVAL 60.0    /* seconds between tamper-evidence summaries per source */

/* AEADs offered in NTS-KE, preferred first. */
static const uint16_t offered_aeads[] = {NTS_AEAD_AES_SIV_CMAC_256, NTS_AEAD_AES_SIV_CMAC_512};

/* One client SSL_CTX per CA file (and per certificate-date policy), shared
 * by every source that uses it: the CA store is loaded once. */
typedef struct tls_ctx_entry {
  char ca[CONF_PATH_MAX];
  bool no_time_check;
  SSL_CTX *ctx;
} tls_ctx_entry;

struct nts_sources {
  struct event_base *base;
  tls_ctx_entry *tls;
  size_t n_tls;
  bool synced;        /* the system has been synchronised since start */
  int unchecked_left; /* NTS-KEs that may still skip certificate dates */
  nts_source_stats stats;
};

struct nts_source {
  nts_sources *all;
  nts_source_hooks hooks;
  char host[CONF_HOST_MAX];
  char ca[CONF_PATH_MAX];
  uint16_t aead;
  ke_pins pins;
  struct sockaddr_storage ke_sa; /* direct */
  socklen_t ke_salen;
  uint16_t ke_port;
  bool proxied;
  bool isolate;                  /* new random proxy credentials per NTS-KE */
  transport_proxy proxy;         /* proxied: with the current session's credentials */
  transport_proxy ke_proxy;      /* ... and with those of the NTS-KE running */
  ke_client *ke;
  struct event *ke_timer;
  double ke_at;           /* when ke_timer fires (monotonic) */
  unsigned ke_failures;   /* consecutive failed NTS-KEs */
  unsigned ke_fruitless;  /* consecutive NTS-KE sessions without an authentic response */
  bool need_ke;           /* polling waits for a new NTS-KE */
  bool authentic_since_ke;
  bool ke_unchecked;      /* the running NTS-KE skips certificate dates */
  bool unchecked;         /* the session came from such an NTS-KE */
  char ke_error[200];     /* why the last NTS-KE failed, "" after a success */
  nts_client *ntsc;
  uint8_t uid[NTS_NTP_UID_LEN]; /* of the request in flight */
  uint8_t auth_nonce[NTS_NTP_NONCE_LEN];
  bool nak_seen;                /* the exchange in flight got a NAK with our identifier */
  unsigned naks;                /* consecutive exchanges that ended with only a NAK */
  uint64_t tamper[NTS_TAMPER_COUNT];
  uint64_t ke_good, ke_bad;     /* NTS-KEs with this source, by outcome */
  uint64_t naks_total;          /* exchanges that ended with only a NAK */
  double last_ke;               /* when the last NTS-KE ended (monotonic), -1: none */
  alert alert;                  /* rate limit for the tamper log lines */
};

static void say(nts_source *ns, int level, const char *msg)
{
  ns->hooks.log(ns->hooks.arg, level, msg);
}

/* ---- shared by every NTS source ----------------------------------------- */

nts_sources *nts_sources_create(struct event_base *base, int nocerttimecheck)
{
  nts_sources *all = calloc(1, sizeof(*all));
  if (!all)
    return NULL;
  all->base = base;
  all->unchecked_left = nocerttimecheck;
  return all;
}

void nts_sources_get_stats(const nts_sources *all, nts_source_stats *out) { *out = all->stats; }

void nts_sources_destroy(nts_sources *all)
{
  if (!all)
    return;
  for (size_t i = 0; i < all->n_tls; i++)
    SSL_CTX_free(all->tls[i].ctx);
  free(all->tls);
  free(all);
}

bool nts_sources_set_synced(nts_sources *all)
{
  bool first = !all->synced;
  all->synced = true;
  return first;
}

/* The shared client context for a CA and date policy, made on first use. */
static SSL_CTX *tls_ctx_for(nts_sources *all, const char *ca, bool no_time_check, char *err,
                            size_t errlen)
{
  for (size_t i = 0; i < all->n_tls; i++)
    if (all->tls[i].no_time_check == no_time_check && strcmp(all->tls[i].ca, ca) == 0)
      return all->tls[i].ctx;
  tls_ctx_entry *nt = realloc(all->tls, (all->n_tls + 1) * sizeof(*nt));
  if (!nt) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  all->tls = nt;
  SSL_CTX *ctx = tls_client_ctx(ca, no_time_check, err, errlen);
  if (!ctx)
    return NULL;
  tls_ctx_entry *e = &all->tls[all->n_tls++];
  snprintf(e->ca, sizeof(e->ca), "%s", ca);
  e->no_time_check = no_time_check;
  e->ctx = ctx;
  return ctx;
}

/* ---- NTS-KE scheduling -------------------------------------------------- */

static void schedule_ke(nts_source *ns, double delay)
{
  ns->ke_at = sysclock_mono() + delay;
  timer_arm_in(ns->ke_timer, delay);
}

/* Exponential backoff with +-25 % jitter, so an unreachable KE server is
 * not hammered and many clients do not retry in step. */
static double ke_retry_delay(unsigned failures)
{
  double d = KE_RETRY_MIN * ldexp(1.0, failures > 20 ? 20 : (int)failures - 1);
  if (d > KE_RETRY_MAX)
    d = KE_RETRY_MAX;
  uint16_t r;
  sysclock_random(&r, sizeof(r));
  return d * (0.75 + 0.5 * (r / 65535.0));
}

/* Seconds until the next NTS-KE may start: at once the first time, then
 * backing off over failed KEs and over KEs whose cookies brought no
 * authentic response (the KE server answers but NTP does not), so neither
 * an outage nor a filtered path makes a KE storm. */
static double ke_delay(const nts_source *ns)
{
  unsigned n = ns->ke_failures + ns->ke_fruitless;
  return n ? ke_retry_delay(n) : 0;
}

/* Polling stops until a new NTS-KE succeeds; the session and its cookies
 * stay until then (a KE that fails replaces nothing). */
static void need_ke(nts_source *ns, const char *why)
{
  if (ns->need_ke)
    return;
  ns->need_ke = true;
  if (nts_client_has_session(ns->ntsc) && !ns->authentic_since_ke)
    ns->ke_fruitless++;
  ns->hooks.stop(ns->hooks.arg);
  double delay = ke_delay(ns);
  char msg[200];
  snprintf(msg, sizeof(msg), "%s; NTS-KE again%s", why, delay > 0 ? " after a backoff" : "");
  say(ns, LOG_LVL_NOTICE, msg);
  if (!ns->ke && !evtimer_pending(ns->ke_timer, NULL))
    schedule_ke(ns, delay);
}

/* "ADDR:PORT" of the KE server, or its name and port with a proxy. */
static const char *ke_where(const nts_source *ns, char *buf, size_t size)
{
  if (!ns->proxied)
    return netaddr_str_port((const struct sockaddr *)&ns->ke_sa, buf, size);
  snprintf(buf, size, strchr(ns->host, ':') ? "[%s]:%u via proxy" : "%s:%u via proxy", ns->host,
           ns->ke_port);
  return buf;
}

/* With a proxy, NTP goes to the server named, by name: the proxy resolves
 * it (or to the KE server's name when none is named). */
static void set_proxied_ntp(nts_source *ns, const nts_ke_session *s, char *name, size_t size)
{
  uint16_t port = s->port ? s->port : NTP_PORT;
  const char *host = s->server[0] ? s->server : ns->host;
  nts_source_ntp n = {.host = host, .port = port, .tcp_port = s->tcp_port, .proxy = &ns->proxy};
  ns->hooks.set_ntp(ns->hooks.arg, &n);
  snprintf(name, size, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
}

/* Where NTP goes after NTS-KE: the negotiated server and port, falling back
 * to the KE server's address and port 123 (RFC 8915 4.1.7, 4.1.8).  Told
 * to the association, and written into name for the log. */
static void set_ntp_address(nts_source *ns, const nts_ke_session *s, char *name, size_t size)
{
  if (ns->proxied) {
    set_proxied_ntp(ns, s, name, size);
    return;
  }
  uint16_t port = s->port ? s->port : NTP_PORT;
  struct sockaddr_storage sa;
  socklen_t len;
  if (!s->server[0] || !netaddr_parse(s->server, port, &sa, &len)) {
    if (s->server[0]) /* a name: resolving it is left for later; refuse rather than guess */
      say(ns, LOG_LVL_WARN, "NTS-KE server named an NTP server by name; using the KE "
                            "server's address instead");
    memcpy(&sa, &ns->ke_sa, ns->ke_salen);
    len = ns->ke_salen;
    if (sa.ss_family == AF_INET)
      ((struct sockaddr_in *)&sa)->sin_port = htons(port);
    else
      ((struct sockaddr_in6 *)&sa)->sin6_port = htons(port);
  }
  nts_source_ntp n = {.sa = (struct sockaddr *)&sa, .len = len, .port = port,
                      .tcp_port = s->tcp_port};
  ns->hooks.set_ntp(ns->hooks.arg, &n);
  netaddr_str_port((const struct sockaddr *)&sa, name, size);
}

/* A failed NTS-KE replaces nothing: the old session and its cookies stay,
 * and the next attempt waits for the backoff.  One log line per attempt. */
static void ke_failed(nts_source *ns, const ke_result *r, const char *ke)
{
  nts_sources *all = ns->all;
  all->stats.ke_probes_bad++;
  ns->ke_bad++;
  ns->last_ke = sysclock_mono();
  ns->ke_failures++;
  if (r->verify_result != X509_V_OK)
    ns->tamper[NTS_TAMPER_KE_CERT]++;
  else if (ns->ke_unchecked)
    all->unchecked_left++; /* the certificate was never judged: the attempt is not spent */
  bool dates = r->verify_result == X509_V_ERR_CERT_NOT_YET_VALID ||
               r->verify_result == X509_V_ERR_CERT_HAS_EXPIRED;
  snprintf(ns->ke_error, sizeof(ns->ke_error), "%s", r->ok ? "bad session" : r->why);
  double delay = ke_retry_delay(ns->ke_failures + ns->ke_fruitless);
  log_warn("NTSc: NTS-KE with %s (%s) failed: %s%s; retrying in %.0f s", ns->host, ke,
           ns->ke_error, dates ? " (is this machine's clock wrong? see nocerttimecheck)" : "",
           delay);
  schedule_ke(ns, delay);
}

/* A new session: its cookies in the jar, the exchange state reset. */
static void ke_succeeded(nts_source *ns, const ke_result *r)
{
  const nts_ke_session *s = &r->session;
  for (size_t i = 0; i < s->n_cookies; i++)
    nts_client_add_cookie(ns->ntsc, s->cookies[i], s->cookie_len);
  ns->all->stats.ke_probes_good++;
  ns->ke_good++;
  ns->last_ke = sysclock_mono();
  ns->ke_failures = 0;
  ns->ke_error[0] = '\0';
  ns->need_ke = ns->nak_seen = ns->authentic_since_ke = false;
  ns->naks = 0;
  ns->unchecked = ns->ke_unchecked;
}

static void on_ke_done(void *arg, ke_result *r)
{
  nts_source *ns = arg;
  char ke[NETADDR_STRLEN + CONF_HOST_MAX + 16];
  ke_where(ns, ke, sizeof(ke));
  ns->ke = NULL;
  const nts_ke_session *s = &r->session;
  if (!r->ok || !nts_client_set_session(ns->ntsc, s->aead, r->c2s, r->s2c, r->key_len,
                                        &s->cookies[0][0], 0, s->cookie_len)) {
    ke_failed(ns, r, ke);
    return;
  }
  ke_succeeded(ns, r);
  if (ns->proxied)
    ns->proxy = ns->ke_proxy; /* this session's NTP shares its NTS-KE's circuit */
  char ntp[NETADDR_STRLEN + CONF_HOST_MAX];
  set_ntp_address(ns, s, ntp, sizeof(ntp));
  log_notice("NTSc: NTS-KE with %s (%s) took %.3f s, %s, %zu cookies, length %zu, aead=%u, "
             "NTP at %s%s", ns->host, ke, r->took, r->tls_version, s->n_cookies,
             s->cookie_len, s->aead, ntp, ns->unchecked ? ", certificate dates NOT checked" : "");
  nts_wipe(r->c2s, sizeof(r->c2s));
  nts_wipe(r->s2c, sizeof(r->s2c));
  if (ns->unchecked && ns->all->synced) {
    ns->authentic_since_ke = true; /* redone for its dates, not for want of answers */
    need_ke(ns, "clock synchronised meanwhile: NTS-KE with the certificate's dates checked");
    return;
  }
  ns->hooks.resume(ns->hooks.arg);
}

/* `nocerttimecheck N`: while the clock has never been synchronised, the
 * first N NTS-KEs accept certificates whatever their dates say. */
static bool skip_cert_dates(nts_source *ns)
{
  nts_sources *all = ns->all;
  if (all->synced || all->unchecked_left <= 0)
    return false;
  all->unchecked_left--;
  say(ns, LOG_LVL_WARN, "NTS-KE without checking the certificate's dates "
                        "(nocerttimecheck: the clock has never been synchronised)");
  return true;
}

/* Direct, or through the proxy by name with this NTS-KE's credentials:
 * new random ones each time under stream isolation, so that Tor puts each
 * NTS-KE (and the NTP of its session) on a new circuit. */
static ke_client *start_ke(nts_source *ns, SSL_CTX *ctx, const uint16_t *aeads, size_t n)
{
  if (!ns->proxied)
    return ke_client_start(ns->all->base, ctx, (struct sockaddr *)&ns->ke_sa, ns->ke_salen,
                           ns->host, &ns->pins, aeads, n, KE_TIMEOUT, on_ke_done, ns);
  ns->ke_proxy = ns->proxy;
  if (ns->isolate) {
    char user[SOCKS_ISOLATION_LEN + 1], pass[SOCKS_ISOLATION_LEN + 1];
    socks_conn_isolation_creds(user, pass);
    memcpy(ns->ke_proxy.user, user, SOCKS_ISOLATION_LEN);
    memcpy(ns->ke_proxy.pass, pass, SOCKS_ISOLATION_LEN);
    ns->ke_proxy.user_len = ns->ke_proxy.pass_len = SOCKS_ISOLATION_LEN;
  }
  ke_via via = {.proxy = (const struct sockaddr *)&ns->ke_proxy.sa,
                .proxy_len = ns->ke_proxy.len, .user = ns->ke_proxy.user,
                .user_len = ns->ke_proxy.user_len, .pass = ns->ke_proxy.pass,
                .pass_len = ns->ke_proxy.pass_len};
  char err[200];
  ke_client *k = ke_client_start_via(ns->all->base, ctx, &via, ns->host, ns->ke_port, &ns->pins,
                                     aeads, n, KE_PROXY_TIMEOUT, on_ke_done, ns, err,
                                     sizeof(err));
  if (!k)
    say(ns, LOG_LVL_WARN, err);
  return k;
}

static void on_ke_timer(evutil_socket_t fd, short what, void *arg)
{
  nts_source *ns = arg;
  (void)fd;
  (void)what;
  if (ns->ke)
    return;
  /* `aead NAME` on the server line: offer only that one. */
  const uint16_t *aeads = ns->aead ? &ns->aead : offered_aeads;
  size_t n = ns->aead ? 1 : sizeof(offered_aeads) / sizeof(offered_aeads[0]);
  char err[300];
  /* A pin alone judges no dates, so it spends none of nocerttimecheck. */
  ns->ke_unchecked = ns->pins.n && !ns->pins.chain ? false : skip_cert_dates(ns);
  SSL_CTX *ctx = tls_ctx_for(ns->all, ns->ca, ns->ke_unchecked, err, sizeof(err));
  if (ctx)
    ns->ke = start_ke(ns, ctx, aeads, n);
  else
    say(ns, LOG_LVL_ERR, err);
  if (!ns->ke) {
    /* Failed at once (no route yet, no memory): no certificate was judged,
     * so a nocerttimecheck attempt is not spent. */
    if (ns->ke_unchecked)
      ns->all->unchecked_left++;
    ns->ke_unchecked = false;
    ns->all->stats.ke_probes_bad++;
    ns->ke_bad++;
    ns->last_ke = sysclock_mono();
    double delay = ke_retry_delay(++ns->ke_failures + ns->ke_fruitless);
    snprintf(ns->ke_error, sizeof(ns->ke_error), "%.190s", ctx ? "cannot start the exchange" : err);
    schedule_ke(ns, delay);
  }
}

/* ---- the source --------------------------------------------------------- */

void nts_source_destroy(nts_source *ns)
{
  if (!ns)
    return;
  ke_client_cancel(ns->ke);
  if (ns->ke_timer)
    event_free(ns->ke_timer);
  nts_client_destroy(ns->ntsc);
  nts_wipe(ns->auth_nonce, sizeof(ns->auth_nonce));
  nts_wipe(&ns->proxy, sizeof(ns->proxy));
  nts_wipe(&ns->ke_proxy, sizeof(ns->ke_proxy));
  free(ns);
}

nts_source *nts_source_create(nts_sources *all, const nts_source_cfg *cfg,
                              const struct sockaddr *ke_sa, socklen_t ke_len,
                              const nts_source_hooks *hooks, char *err, size_t errlen)
{
  nts_source *ns = calloc(1, sizeof(*ns));
  if (!ns) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  ns->all = all;
  ns->last_ke = -1;
  ns->hooks = *hooks;
  snprintf(ns->host, sizeof(ns->host), "%s", cfg->host);
  snprintf(ns->ca, sizeof(ns->ca), "%s", cfg->ca);
  ns->aead = cfg->aead;
  ns->pins = cfg->pins;
  ns->need_ke = true; /* nothing to poll with before the first NTS-KE */
  if (cfg->proxy) {
    ns->proxied = true;
    ns->proxy = *cfg->proxy;
    ns->isolate = cfg->isolate;
  } else {
    memcpy(&ns->ke_sa, ke_sa, ke_len);
    ns->ke_salen = ke_len;
  }
  ns->ke_port = cfg->ke_port;
  alert_init(&ns->alert, ALERT_INTERVAL);
  /* The CA store is loaded now, so a bad CA is reported at start. */
  if (!tls_ctx_for(all, ns->ca, false, err, errlen)) {
    free(ns);
    return NULL;
  }
  ns->ntsc = nts_client_create();
  ns->ke_timer = evtimer_new(all->base, on_ke_timer, ns);
  if (!ns->ntsc || !ns->ke_timer) {
    snprintf(err, errlen, "out of memory");
    nts_source_destroy(ns);
    return NULL;
  }
  return ns;
}

void nts_source_start(nts_source *ns) { schedule_ke(ns, 0); }

bool nts_source_polling(const nts_source *ns)
{
  return !ns->need_ke && nts_client_has_session(ns->ntsc);
}

/* Counts (and reports, rate-limited) a refused response or KE. */
static void tamper(nts_source *ns, nts_client_tamper why)
{
  ns->tamper[why]++;
  if (!alert_event(&ns->alert, why, sysclock_mono()))
    return;
  char msg[200];
  snprintf(msg, sizeof(msg), "NTS: refused: %s (tamper evidence; more are summarised every "
                             "%.0f s)", nts_client_tamper_name(why), ALERT_INTERVAL);
  say(ns, LOG_LVL_WARN, msg);
}

void nts_source_summarise(nts_source *ns, double now)
{
  uint64_t n[ALERT_MAX_REASONS];
  if (alert_summary(&ns->alert, now, n) == 0)
    return;
  char msg[320];
  int len = snprintf(msg, sizeof(msg), "NTS: in the last %.0f s also refused:", ALERT_INTERVAL);
  for (int r = 0; r < NTS_TAMPER_COUNT && len > 0 && (size_t)len < sizeof(msg); r++)
    if (n[r])
      len += snprintf(msg + len, sizeof(msg) - (size_t)len, " %s %llu",
                      nts_client_tamper_name((nts_client_tamper)r), (unsigned long long)n[r]);
  say(ns, LOG_LVL_WARN, msg);
}

/* A NAK that no authentic response contradicted counts now (RFC 8915
 * 5.7).  It is unauthenticated, so it only marks the exchange while it
 * lasts, and only NAKS_BEFORE_KE of them in a row make us redo NTS-KE. */
void nts_source_end_exchange(nts_source *ns)
{
  if (!ns->nak_seen)
    return;
  ns->nak_seen = false;
  ns->all->stats.nts_naks++;
  ns->naks_total++;
  if (++ns->naks >= NAKS_BEFORE_KE)
    need_ke(ns, "NTS NAKs: the server refuses our cookies");
  else
    say(ns, LOG_LVL_INFO, "NTS NAK (cookie refused)");
}

bool nts_source_begin(nts_source *ns)
{
  if (nts_client_cookie_count(ns->ntsc) == 0) {
    need_ke(ns, "no NTS cookies left");
    return false;
  }
  sysclock_random(ns->uid, sizeof(ns->uid));
  sysclock_random(ns->auth_nonce, sizeof(ns->auth_nonce));
  return true;
}

/* One unused cookie, and placeholders asking for enough cookies to refill
 * the jar. */
size_t nts_source_seal(nts_source *ns, const uint8_t *hdr, size_t hdr_len, uint8_t *out,
                       size_t cap)
{
  unsigned have = nts_client_cookie_count(ns->ntsc);
  if (have == 0 || hdr_len != NTP_HDR_LEN)
    return 0;
  unsigned placeholders = NTS_CLIENT_JAR - have; /* one cookie leaves, 1 + these come */
  if (placeholders > NTS_NTP_MAX_PLACEHOLDERS)
    placeholders = NTS_NTP_MAX_PLACEHOLDERS;
  size_t n = nts_ntp_client_request(ns->ntsc, hdr, ns->uid, sizeof(ns->uid), ns->auth_nonce,
                                    placeholders, out, cap);
  if (n)
    ns->all->stats.nts_sends++;
  return n;
}

bool nts_source_check(nts_source *ns, const uint8_t *pkt, size_t len)
{
  nts_sources *all = ns->all;
  unsigned fresh = 0;
  nts_ntp_cli_result r = nts_ntp_client_response(ns->ntsc, pkt, len, ns->uid, sizeof(ns->uid),
                                                 &fresh);
  if (r == NTS_NTP_CLI_OK) {
    all->stats.nts_recvs_good++;
    if (ns->nak_seen) { /* an authentic answer to the same request: the NAK was forged */
      all->stats.nts_recvs_bad++;
      tamper(ns, NTS_TAMPER_FORGED_NAK);
    }
    ns->nak_seen = false;
    ns->naks = 0;
    ns->ke_fruitless = 0;
    ns->authentic_since_ke = true;
    return true;
  }
  if (r == NTS_NTP_CLI_NAK) {
    ns->nak_seen = true;
    say(ns, LOG_LVL_DEBUG, "NTS NAK for the request in flight; still waiting");
    return false;
  }
  all->stats.nts_recvs_bad++;
  tamper(ns, nts_ntp_client_tamper(ns->ntsc, r, pkt, len));
  return false;
}

void nts_source_synced(nts_source *ns)
{
  if (ns->unchecked && !ns->need_ke) {
    ns->unchecked = false;
    need_ke(ns, "clock synchronised: NTS-KE again with the certificate's dates checked");
  }
}

void nts_source_get_view(const nts_source *ns, double now, nts_source_view *v)
{
  v->ke_running = ns->ke != NULL;
  v->ke_failed = ns->ke_failures > 0;
  v->has_session = nts_client_has_session(ns->ntsc);
  v->fruitless = ns->ke_fruitless > 0;
  v->need_ke = ns->need_ke;
  v->cookies = nts_client_cookie_count(ns->ntsc);
  v->ke_error = ns->ke_error;
  v->ke_retry = evtimer_pending(ns->ke_timer, NULL) ? fmax(0, ns->ke_at - now) : -1;
  v->naks = ns->naks;
  v->naks_total = ns->naks_total;
  v->ke_good = ns->ke_good;
  v->ke_bad = ns->ke_bad;
  v->last_ke_age = ns->last_ke >= 0 ? fmax(0, now - ns->last_ke) : -1;
  memcpy(v->tamper, ns->tamper, sizeof(v->tamper));
}
