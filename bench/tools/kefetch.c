/* ntsd_kefetch: one NTS-KE exchange with a server, printing what a load
 * generator needs to send authenticated NTP requests in that server's
 * name: the AEAD, the C2S key and one cookie.
 *
 *   ntsd_kefetch [-c CA] [-n NAME] [-a AEAD] [-t SECONDS] ADDR [PORT]
 *
 * ADDR is an address literal (no name resolution), PORT the NTS-KE port
 * (default 4460).  The certificate is checked against NAME (default ADDR,
 * then as an IP SAN) and the CA file or directory (default the system
 * store).  AEAD is the only algorithm offered (default 15,
 * AEAD_AES_SIV_CMAC_256).  On success it prints one line,
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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/ke_client.h"
#include "daemon/netaddr.h"
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

static int usage(void)
{
  fprintf(stderr, "usage: ntsd_kefetch [-c CA] [-n NAME] [-a AEAD] [-t SECONDS] ADDR [PORT]\n");
  return 2;
}

int main(int argc, char **argv)
{
  const char *ca = NULL, *name = NULL;
  long aead = NTS_AEAD_AES_SIV_CMAC_256;
  double timeout = 10;
  int opt;
  while ((opt = getopt(argc, argv, "c:n:a:t:h")) != -1) {
    switch (opt) {
    case 'c': ca = optarg; break;
    case 'n': name = optarg; break;
    case 'a': aead = strtol(optarg, NULL, 10); break;
    case 't': timeout = strtod(optarg, NULL); break;
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
  if (port < 1 || port > 65535 || !netaddr_parse(addr, (uint16_t)port, &ss, &salen)) {
    fprintf(stderr, "ntsd_kefetch: bad address or port: %s %ld\n", addr, port);
    return 2;
  }
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
  ke_client *k = ke_client_start(base, ctx, (struct sockaddr *)&ss, salen, name ? name : addr,
                                 NULL, &offer, 1, timeout, on_done, &f);
  if (!k) {
    fprintf(stderr, "ntsd_kefetch: cannot start the exchange\n");
    return 1;
  }
  /* ke_client's own deadline ends the exchange either way. */
  while (!f.done && event_base_loop(base, EVLOOP_ONCE) == 0)
    ;
  event_base_free(base);
  SSL_CTX_free(ctx);
  return f.ok ? 0 : 1;
}
