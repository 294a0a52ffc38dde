/* ntsd_kefetch: one NTS-KE exchange with a server, printing what a load
 * generator needs to send authenticated NTP requests in that server's
 * name: the AEAD, the C2S key and one cookie.
 *
 *   ntsd_kefetch [-c CA] [-n NAME] [-a AEAD] [-t SECONDS]
 *                [--proxy socks5://[USER[:PASS]@]HOST:PORT] ADDR [PORT]
 *
 * ADDR is an address literal (no name resolution), PORT the NTS-KE port
 * (default 4460).  With --proxy the exchange goes through that SOCKS5
 * proxy (CONNECT), as the daemon's does: ADDR may then be a name, which
 * goes to the proxy unresolved, and without a USER in the URL each run
 * gives the proxy fresh random credentials (stream isolation).  The
 * certificate is checked against NAME (default ADDR, then as an IP SAN)
 * and the CA file or directory (default the system store).  AEAD is the
 * only algorithm offered (default 15, AEAD_AES_SIV_CMAC_256).  On success
 * it prints one line,
 *
 *   AEAD C2S,COOKIE
 *
 * with the key and cookie in hexadecimal (`ntpperf -S` takes the second
 * field as it is), and the NTP server and port the server named on
 * stderr.  Exit 1 with the reason on stderr otherwise.
 *
 * The exchange is the daemon's own (ke_client, tls, the proto KE code), on
 * a private event loop.  A benchmark tool (`make soak`): not installed. */
#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/conf.h"
#include "daemon/ke_client.h"
#include "daemon/netaddr.h"
#include "daemon/socks_conn.h"
#include "daemon/tls.h"

typedef struct fetch {
  bool done;
  bool ok;
} fetch;

static void print_hex(const uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    printf("%02X", p[i]);
}

static void on_done(void *arg, ke_result *r)
{
  fetch *f = arg;
  f->done = true;
  if (!r->ok) {
    fprintf(stderr, "ntsd_kefetch: NTS-KE failed: %s\n", r->why);
    return;
  }
  const nts_ke_session *s = &r->session;
  printf("%u ", s->aead);
  print_hex(r->c2s, r->key_len);
  printf(",");
  print_hex(s->cookies[0], s->cookie_len);
  printf("\n");
  fprintf(stderr, "ntsd_kefetch: %s %s, %.3f s, %zu cookies of %zu bytes, NTP at %s port %u\n",
          r->tls_version, r->cipher, r->took, s->n_cookies, s->cookie_len,
          s->server[0] ? s->server : "(the KE address)", s->port ? s->port : 123);
  f->ok = fflush(stdout) == 0;
  nts_wipe(r->c2s, sizeof(r->c2s));
  nts_wipe(r->s2c, sizeof(r->s2c));
}

/* Through the proxy: it is asked for ADDR; NAME (default ADDR) is for SNI
 * and the certificate. */
static ke_client *start_via(struct event_base *base, SSL_CTX *ctx, const conf_proxy *proxy,
                            const struct sockaddr *sa, socklen_t salen, const char *addr,
                            const char *name, uint16_t port, uint16_t aead, double timeout,
                            fetch *f, char *err, size_t errlen)
{
  socks_creds cr;
  socks_conn_creds(proxy, &cr);
  ke_via via = {.proxy = sa,
                .proxy_len = salen,
                .user = cr.user,
                .user_len = cr.user_len,
                .pass = cr.pass,
                .pass_len = cr.pass_len,
                .target = addr};
  fprintf(stderr, "ntsd_kefetch: through proxy %s%s\n", proxy->url,
          cr.random ? " with random credentials" : "");
  ke_client *k = ke_client_start_via(base, ctx, &via, name ? name : addr, port, NULL, &aead, 1,
                                     timeout, on_done, f, err, errlen);
  nts_wipe(&cr, sizeof(cr));
  return k;
}

/* Where to connect: with --proxy, to the proxy (ADDR then goes to it
 * unresolved), else to ADDR, an address literal.  False, after saying why,
 * on a bad one. */
static bool parse_target(const char *proxy_url, conf_proxy *proxy, const char *addr, long port,
                         struct sockaddr_storage *ss, socklen_t *salen)
{
  if (proxy_url) {
    char perr[200] = "not an address literal";
    if (!conf_parse_proxy_url(proxy_url, proxy, perr, sizeof(perr)) ||
        !socks_conn_proxy_from_conf(proxy, ss, salen)) {
      fprintf(stderr, "ntsd_kefetch: bad --proxy: %s\n", perr);
      return false;
    }
    if (port < 1 || port > 65535 || !addr[0] || strlen(addr) > SOCKS5_NAME_MAX) {
      fprintf(stderr, "ntsd_kefetch: bad server or port: %s %ld\n", addr, port);
      return false;
    }
  } else if (port < 1 || port > 65535 || !netaddr_parse(addr, (uint16_t)port, ss, salen)) {
    fprintf(stderr, "ntsd_kefetch: bad address or port: %s %ld\n", addr, port);
    return false;
  }
  return true;
}

static int usage(void)
{
  fprintf(stderr, "usage: ntsd_kefetch [-c CA] [-n NAME] [-a AEAD] [-t SECONDS]\n"
                  "                    [--proxy socks5://[USER[:PASS]@]HOST:PORT] ADDR [PORT]\n");
  return 2;
}

int main(int argc, char **argv)
{
  const char *ca = NULL, *name = NULL, *proxy_url = NULL;
  static const struct option longopts[] = {{"proxy", required_argument, NULL, 'p'},
                                           {NULL, 0, NULL, 0}};
  long aead = NTS_AEAD_AES_SIV_CMAC_256;
  double timeout = 10;
  int opt;
  while ((opt = getopt_long(argc, argv, "c:n:a:t:h", longopts, NULL)) != -1) {
    switch (opt) {
    case 'c': ca = optarg; break;
    case 'n': name = optarg; break;
    case 'a': aead = strtol(optarg, NULL, 10); break;
    case 't': timeout = strtod(optarg, NULL); break;
    case 'p': proxy_url = optarg; break;
    default: return usage();
    }
  }
  if (optind >= argc || argc - optind > 2 || !(timeout > 0 && timeout <= 300))
    return usage();
  if (aead <= 0 || aead > 0xffff || !nts_aead_supported((uint16_t)aead)) {
    fprintf(stderr, "ntsd_kefetch: AEAD %ld is not supported\n", aead);
    return 2;
  }
  const char *addr = argv[optind];
  long port = optind + 1 < argc ? strtol(argv[optind + 1], NULL, 10) : 4460;
  struct sockaddr_storage ss;
  socklen_t salen;
  conf_proxy proxy = {0};
  if (!parse_target(proxy_url, &proxy, addr, port, &ss, &salen))
    return 2;
  signal(SIGPIPE, SIG_IGN);

  char err[300];
  SSL_CTX *ctx = tls_client_ctx(ca, false, err, sizeof(err));
  struct event_base *base = event_base_new();
  if (!ctx || !base) {
    fprintf(stderr, "ntsd_kefetch: %s\n", ctx ? "cannot create the event loop" : err);
    return 1;
  }
  fetch f = {0};
  const uint16_t offer = (uint16_t)aead;
  ke_client *k;
  if (proxy_url) {
    k = start_via(base, ctx, &proxy, (struct sockaddr *)&ss, salen, addr, name, (uint16_t)port,
                  offer, timeout, &f, err, sizeof(err));
  } else {
    k = ke_client_start(base, ctx, (struct sockaddr *)&ss, salen, name ? name : addr, NULL,
                        &offer, 1, timeout, on_done, &f);
    snprintf(err, sizeof(err), "cannot start the exchange");
  }
  if (!k) {
    fprintf(stderr, "ntsd_kefetch: %s\n", err);
    return 1;
  }
  /* ke_client's own deadline ends the exchange either way. */
  while (!f.done && event_base_loop(base, EVLOOP_ONCE) == 0)
    ;
  event_base_free(base);
  SSL_CTX_free(ctx);
  return f.ok ? 0 : 1;
}
