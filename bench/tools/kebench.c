/* ntsd_kebench: an NTS-KE load generator.  It keeps C exchanges with one
 * server open at all times for T seconds (or until N have started), each a
 * new TCP connection with a full TLS 1.3 handshake (the client context
 * caches no session, the server offers no tickets), one NTS-KE request, the
 * whole response read and checked, then closed; and prints the completed
 * exchanges per second, the failures by kind and the percentiles of the
 * exchange's latency (connect to the response's last byte).
 *
 *   ntsd_kebench [-c CA | -k CERT] [-n NAME] [-C CONNS] [-T SECONDS]
 *                [-N COUNT] [-t TIMEOUT] [-a AEAD] [-s NET/LEN] [-j] ADDR [PORT]
 *
 * -c checks the server's chain against CA and its name against NAME
 * (default ADDR, an IP SAN then); -k instead pins the public key of the
 * first certificate in CERT and leaves the chain unchecked, which saves
 * the client one signature verification per exchange (TLS 1.3 still proves
 * that the server holds the key).  -j prints one JSON object instead of
 * text.  -s binds each connection to the next address of an IPv4 prefix
 * in turn (they must be local: `ip route add local NET/LEN dev lo`), so
 * that a server's limits per client address do not throttle the run.
 * Exit 0 if every exchange succeeded, 1 if any failed, 2 on usage.
 *
 * Each exchange is the daemon's own client (ke_client: tls, the proto KE
 * request builder, framer and response parser), so a bad reply is a
 * counted failure, never a crash.  A benchmark tool (bench/kebench.py):
 * not installed. */
#include <arpa/inet.h>
#include <event2/event.h>
#include <getopt.h>
#include <math.h>
#include <openssl/pem.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/ke_client.h"
#include "daemon/netaddr.h"
#include "daemon/sysclock.h"
#include "daemon/tls.h"

#define CONNS_MAX 1000
#define SECONDS_MAX 3600
/* Latencies in buckets 2 % wide from 1 us up (1200 reach 5 hours): bounded
 * memory whatever the run's length, percentiles within 2 %. */
#define HIST_N 1200
#define HIST_BASE 1e-6
#define HIST_STEP 1.02

enum fail_kind { F_CONNECT, F_TLS, F_PROTOCOL, F_TIMEOUT, F_START, F_N };
static const char *const fail_names[F_N] = {"connect", "tls", "protocol", "timeout", "start"};

typedef struct bench {
  struct event_base *base;
  SSL_CTX *ctx;
  struct sockaddr_storage ss;
  socklen_t salen;
  const char *host;
  ke_pins pins;
  uint16_t aead;
  uint32_t src_net, src_n; /* -s: the prefix (host order) and its size; 0: off */
  double timeout;
  double t0, end;       /* start, and when no new exchange starts */
  double t_last;        /* when the last exchange finished */
  long conns, limit;    /* concurrency; 0 or the most exchanges to start */
  long active, started, ok;
  long fail[F_N];
  char first_why[200];  /* the first failure's reason, for a diagnosis */
  struct event *refill;
  uint32_t hist[HIST_N];
  double lat_max;
} bench;

static void hist_add(bench *b, double t)
{
  double x = t > HIST_BASE ? log(t / HIST_BASE) / log(HIST_STEP) : 0;
  int i = x < HIST_N - 1 ? (int)x : HIST_N - 1;
  b->hist[i]++;
  if (t > b->lat_max)
    b->lat_max = t;
}

/* The upper edge of the bucket holding quantile q, in seconds (0: none). */
static double hist_quantile(const bench *b, double q)
{
  if (b->ok == 0)
    return 0;
  long want = (long)ceil(q * (double)b->ok), seen = 0;
  for (int i = 0; i < HIST_N; i++) {
    seen += b->hist[i];
    if (seen >= want && seen > 0)
      return fmin(HIST_BASE * pow(HIST_STEP, i + 1), b->lat_max);
  }
  return b->lat_max;
}

static void count_failure(bench *b, enum fail_kind kind, const char *why)
{
  b->fail[kind]++;
  if (!b->first_why[0])
    snprintf(b->first_why, sizeof(b->first_why), "%s", why);
}

static void on_done(void *arg, ke_result *r)
{
  bench *b = arg;
  b->active--;
  b->t_last = sysclock_mono();
  if (r->ok && r->session.n_cookies > 0) {
    b->ok++;
    hist_add(b, r->took);
  } else if (r->ok) {
    count_failure(b, F_PROTOCOL, "a response without cookies");
  } else if (strstr(r->why, "timed out")) {
    count_failure(b, F_TIMEOUT, r->why);
  } else {
    count_failure(b, r->fail == KE_FAIL_CONNECT ? F_CONNECT
                     : r->fail == KE_FAIL_TLS   ? F_TLS
                                                : F_PROTOCOL,
                  r->why);
  }
  nts_wipe(r->c2s, sizeof(r->c2s));
  nts_wipe(r->s2c, sizeof(r->s2c));
  /* New exchanges start from the loop, not from inside this callback. */
  event_active(b->refill, EV_TIMEOUT, 0);
}

/* -1 without -s (ke_client makes its own socket); else a socket bound to
 * the prefix's next address, or -2 if that fails. */
static int bound_socket(bench *b)
{
  if (b->src_n == 0)
    return -1;
  struct sockaddr_in src = {.sin_family = AF_INET};
  /* Successive connections far apart in the prefix (an odd stride near
   * 0.618 of it walks all of it), so no /24 holds many of them at once. */
  uint32_t stride = (uint32_t)((double)b->src_n * 0.618) | 1;
  uint32_t host = b->src_n > 2 ? (uint32_t)(((uint64_t)b->started * stride) % b->src_n) : 0;
  if (b->src_n > 2 && (host == 0 || host == b->src_n - 1))
    host = 1;
  src.sin_addr.s_addr = htonl(b->src_net + host);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -2;
  if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
    close(fd);
    return -2;
  }
  return fd;
}

static bool may_start(const bench *b)
{
  return b->active < b->conns && (b->limit == 0 || b->started < b->limit) &&
         sysclock_mono() < b->end;
}

static void refill(evutil_socket_t unused, short what, void *arg)
{
  bench *b = arg;
  (void)unused;
  (void)what;
  /* A failure to start (out of descriptors, say) is counted and retried on
   * the next completion, or after a short pause when nothing is open. */
  while (may_start(b)) {
    int fd = bound_socket(b);
    b->started++;
    ke_client *k = fd == -2 ? NULL
                            : ke_client_start_fd(b->base, b->ctx, fd, (struct sockaddr *)&b->ss,
                                                 b->salen, b->host, b->pins.n ? &b->pins : NULL,
                                                 &b->aead, 1, b->timeout, on_done, b);
    if (!k) {
      count_failure(b, F_START, "cannot start an exchange");
      if (b->active == 0) {
        struct timeval tv = {0, 10000};
        event_add(b->refill, &tv);
      }
      return;
    }
    b->active++;
  }
}

/* Ends the loop once nothing is open and nothing more may start. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
  bench *b = arg;
  (void)fd;
  (void)what;
  if (b->active == 0 && !may_start(b))
    event_base_loopbreak(b->base);
  else if (b->active < b->conns && may_start(b))
    event_active(b->refill, EV_TIMEOUT, 0);
}

static void print_text(const bench *b, double elapsed)
{
  printf("ntsd_kebench: %ld exchanges in %.2f s with %ld connections: %ld ok (%.1f/s), "
         "%ld failed\n",
         b->started, elapsed, b->conns, b->ok, elapsed > 0 ? (double)b->ok / elapsed : 0,
         b->started - b->ok);
  printf("failures:");
  for (int i = 0; i < F_N; i++)
    printf(" %s %ld", fail_names[i], b->fail[i]);
  printf("\nlatency ms: p50 %.2f p90 %.2f p99 %.2f max %.2f\n", 1e3 * hist_quantile(b, 0.5),
         1e3 * hist_quantile(b, 0.9), 1e3 * hist_quantile(b, 0.99), 1e3 * b->lat_max);
  if (b->first_why[0])
    printf("first failure: %s\n", b->first_why);
}

static void print_json(const bench *b, double elapsed)
{
  printf("{\"seconds\": %.3f, \"connections\": %ld, \"started\": %ld, \"ok\": %ld, "
         "\"kes_per_s\": %.2f, \"failures\": {",
         elapsed, b->conns, b->started, b->ok, elapsed > 0 ? (double)b->ok / elapsed : 0);
  for (int i = 0; i < F_N; i++)
    printf("%s\"%s\": %ld", i ? ", " : "", fail_names[i], b->fail[i]);
  printf("}, \"latency_ms\": {\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"max\": %.3f}",
         1e3 * hist_quantile(b, 0.5), 1e3 * hist_quantile(b, 0.9),
         1e3 * hist_quantile(b, 0.99), 1e3 * b->lat_max);
  /* The reason is the library's text or ours: no quote or backslash in it
   * can break the object, but be sure. */
  printf(", \"first_failure\": \"");
  for (const char *p = b->first_why; *p; p++)
    putchar(*p == '"' || *p == '\\' || (unsigned char)*p < 0x20 ? '?' : *p);
  printf("\"}\n");
}

/* The pin of the first certificate in a PEM file. */
static bool pin_from_cert(const char *file, ke_pins *pins)
{
  FILE *f = fopen(file, "r");
  X509 *cert = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
  bool ok = tls_cert_spki_sha256(cert, pins->sha256[0]);
  X509_free(cert);
  if (f)
    fclose(f);
  pins->n = ok ? 1 : 0;
  pins->chain = false;
  return ok;
}

static int usage(void)
{
  fprintf(stderr, "usage: ntsd_kebench [-c CA | -k CERT] [-n NAME] [-C CONNS] [-T SECONDS]\n"
                  "                    [-N COUNT] [-t TIMEOUT] [-a AEAD] [-s NET/LEN] [-j]\n"
                  "                    ADDR [PORT]\n");
  return 2;
}

typedef struct opts {
  const char *ca, *cert, *name, *src;
  long conns, limit, aead;
  double seconds, timeout;
  bool json;
} opts;

static bool parse_opts(int argc, char **argv, opts *o)
{
  *o = (opts){.conns = 32, .aead = NTS_AEAD_AES_SIV_CMAC_256, .seconds = 10, .timeout = 10};
  int opt;
  while ((opt = getopt(argc, argv, "c:k:n:C:T:N:t:a:s:jh")) != -1) {
    switch (opt) {
    case 'c': o->ca = optarg; break;
    case 'k': o->cert = optarg; break;
    case 'n': o->name = optarg; break;
    case 'C': o->conns = strtol(optarg, NULL, 10); break;
    case 'T': o->seconds = strtod(optarg, NULL); break;
    case 'N': o->limit = strtol(optarg, NULL, 10); break;
    case 't': o->timeout = strtod(optarg, NULL); break;
    case 'a': o->aead = strtol(optarg, NULL, 10); break;
    case 's': o->src = optarg; break;
    case 'j': o->json = true; break;
    default: return false;
    }
  }
  return optind < argc && argc - optind <= 2 && !(o->ca && o->cert) && o->conns >= 1 &&
         o->conns <= CONNS_MAX && o->seconds > 0 && o->seconds <= SECONDS_MAX &&
         o->limit >= 0 && o->timeout > 0 && o->timeout <= 300 && o->aead > 0 &&
         o->aead <= 0xffff;
}

/* NET/LEN, LEN 8..32, into b. */
static bool parse_prefix(bench *b, const char *s)
{
  char net[INET_ADDRSTRLEN];
  const char *slash = strchr(s, '/');
  struct in_addr a;
  char *end;
  long len = slash ? strtol(slash + 1, &end, 10) : -1;
  if (!slash || (size_t)(slash - s) >= sizeof(net) || *end || len < 8 || len > 32)
    return false;
  memcpy(net, s, (size_t)(slash - s));
  net[slash - s] = '\0';
  if (inet_pton(AF_INET, net, &a) != 1)
    return false;
  b->src_n = len == 32 ? 1 : (uint32_t)1 << (32 - len);
  b->src_net = ntohl(a.s_addr) & ~(b->src_n - 1);
  return true;
}

/* The client context, the target and the pin: false after saying why. */
static bool setup(bench *b, const opts *o, const char *addr, long port)
{
  char err[300];
  if (port < 1 || port > 65535 || !netaddr_parse(addr, (uint16_t)port, &b->ss, &b->salen)) {
    fprintf(stderr, "ntsd_kebench: bad address or port: %s %ld\n", addr, port);
    return false;
  }
  if (o->src && (!parse_prefix(b, o->src) || b->ss.ss_family != AF_INET)) {
    fprintf(stderr, "ntsd_kebench: bad -s %s (an IPv4 NET/LEN, LEN 8..32, to an IPv4 ADDR)\n",
            o->src);
    return false;
  }
  if (!nts_aead_supported((uint16_t)o->aead)) {
    fprintf(stderr, "ntsd_kebench: AEAD %ld is not supported\n", o->aead);
    return false;
  }
  if (o->cert && !pin_from_cert(o->cert, &b->pins)) {
    fprintf(stderr, "ntsd_kebench: no certificate in %s\n", o->cert);
    return false;
  }
  /* With a pin, the chain is not verified but OpenSSL still looks for its
   * issuers: in CERT's file, not in the system store's hashed directory
   * (files opened for every handshake). */
  b->ctx = tls_client_ctx(o->ca ? o->ca : o->cert, false, err, sizeof(err));
  if (!b->ctx) {
    fprintf(stderr, "ntsd_kebench: %s\n", err);
    return false;
  }
  b->host = o->name ? o->name : addr;
  b->aead = (uint16_t)o->aead;
  b->conns = o->conns;
  b->limit = o->limit;
  b->timeout = o->timeout;
  return true;
}

int main(int argc, char **argv)
{
  opts o;
  if (!parse_opts(argc, argv, &o))
    return usage();
  static bench b; /* the histogram: too big for the stack */
  long port = optind + 1 < argc ? strtol(argv[optind + 1], NULL, 10) : 4460;
  if (!setup(&b, &o, argv[optind], port))
    return 2;
  signal(SIGPIPE, SIG_IGN);
  b.base = event_base_new();
  b.refill = b.base ? event_new(b.base, -1, 0, refill, &b) : NULL;
  struct event *tick = b.base ? event_new(b.base, -1, EV_PERSIST, on_tick, &b) : NULL;
  if (!b.refill || !tick) {
    fprintf(stderr, "ntsd_kebench: cannot create the event loop\n");
    return 1;
  }
  struct timeval tv = {0, 50000};
  event_add(tick, &tv);
  b.t0 = b.t_last = sysclock_mono();
  b.end = b.t0 + o.seconds;
  event_active(b.refill, EV_TIMEOUT, 0);
  /* Bounded: nothing starts after end, and every exchange has a deadline. */
  event_base_dispatch(b.base);
  double elapsed = b.t_last - b.t0;
  if (o.json)
    print_json(&b, elapsed);
  else
    print_text(&b, elapsed);
  event_free(tick);
  event_free(b.refill);
  event_base_free(b.base);
  SSL_CTX_free(b.ctx);
  return b.ok == b.started && fflush(stdout) == 0 ? 0 : 1;
}
