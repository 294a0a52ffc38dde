/* ntsctl_ke: `ntsctl ke HOST[:PORT]`, one NTS-KE exchange as a diagnostic
 * (what `openssl s_client` is for TLS): the TLS version and cipher, the
 * server's certificates with their expiry and public key pins, the AEAD,
 * the cookies, the NTP server and port it names, and the time taken; with
 * --export the keys and a cookie a load generator (ntpperf -S) can use.
 *
 * The exchange is the daemon's own (daemon/ke_client), on a private event
 * loop.  docs/ntsctl.md describes the output and the exit statuses. */
#ifndef NTSD_TOOLS_NTSCTL_KE_H
#define NTSD_TOOLS_NTSCTL_KE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/conf.h"
#include "daemon/ke_client.h"

/* Exit statuses, one per stage that can fail. */
#define NTSCTL_KE_EXIT_OK 0
#define NTSCTL_KE_EXIT_SETUP 1    /* a local problem: CA file, memory */
#define NTSCTL_KE_EXIT_USAGE 2    /* bad arguments */
#define NTSCTL_KE_EXIT_CONNECT 3  /* no connection (name, refused, proxy, timeout) */
#define NTSCTL_KE_EXIT_TLS 4      /* TLS: certificate, pin, ALPN, handshake */
#define NTSCTL_KE_EXIT_PROTOCOL 5 /* NTS-KE: Error/Warning record, bad response */

#define NTSCTL_KE_MAX_AEADS 4
#define NTSCTL_KE_DEFAULT_PORT 4460

typedef struct ntsctl_ke_opts {
  char host[CONF_HOST_MAX]; /* name or address literal, no brackets */
  uint16_t port;
  const char *ca;           /* NULL: the system store */
  ke_pins pins;
  uint16_t aeads[NTSCTL_KE_MAX_AEADS]; /* offered, most preferred first */
  size_t n_aeads;
  bool export_keys;
  bool json;
  const char *proxy_url;    /* NULL: direct */
  double timeout;           /* seconds, the whole exchange */
} ntsctl_ke_opts;

/* Parses the arguments that follow `ke` (argv[0] is the first of them).
 * False with a message in err on anything malformed. */
bool ntsctl_ke_parse(int argc, char **argv, ntsctl_ke_opts *o, char *err, size_t errlen);

/* A span of seconds as "1d 23h 59m", "5h 3m 20s", "40s"; negative spans
 * (an expired certificate) the same, with "-" in front. */
void ntsctl_ke_span(long long seconds, char *buf, size_t cap);

/* Runs the exchange and prints the report (stdout) or one line saying why
 * it failed (stderr).  Returns an exit status above. */
int ntsctl_ke_run(const ntsctl_ke_opts *o);

#endif
