/* ke_server: the NTS-KE server (RFC 8915 section 4) on its own thread with
 * its own event loop, so key-establishment load never delays NTP replies.
 *
 * Per connection: cheap checks first (restrict ignore/noserve, a per-client
 * rate limit, a cap on concurrent connections), then a non-blocking TLS 1.3
 * handshake (ALPN ntske/1 required), one request, one response, close; the
 * whole exchange must finish within the deadline (2 s by default).  The
 * protocol decisions are made by proto/nts_ke; cookies by proto/nts_cookie
 * with the current key set, read through an atomic pointer. */
#ifndef NTSD_DAEMON_KE_SERVER_H
#define NTSD_DAEMON_KE_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "daemon/keystore.h"
#include "proto/acl.h"

#define KE_DEFAULT_PORT 4460

typedef struct ke_server_cfg {
  const char *listen;      /* "PORT", "ADDR:PORT", "[v6]:PORT" or "" (port 4460, all) */
  SSL_CTX *ctx;            /* borrowed; must outlive the server */
  const ntp_acl *acl;      /* borrowed */
  keystore *keys;          /* borrowed: the cookie key set */
  uint16_t ntp_port;       /* our NTP port; advertised when it is not 123 */
  const char *ntp_server;  /* advertised NTPv4 server, NULL for none */
  double timeout;          /* seconds per connection, handshake included */
  int max_connections;
} ke_server_cfg;

/* Counters, as `ntpq -c nts` shows them. */
typedef struct ke_server_stats {
  uint64_t serves_good;     /* completed KEs */
  uint64_t serves_bad;      /* failed after the TCP accept: TLS, ALPN, protocol, timeout */
  uint64_t refused;         /* dropped before the handshake: ACL, rate, connection cap */
  uint64_t tls_failures;
  uint64_t no_alpn;
  uint64_t bad_requests;    /* answered with an Error record */
  uint64_t timeouts;
  uint64_t cookies_made;
} ke_server_stats;

typedef struct ke_server ke_server;

/* Opens the listening sockets (errors reach the caller before the daemon
 * detaches); ke_server_run then starts the thread (after any fork). */
ke_server *ke_server_start(const ke_server_cfg *cfg, char *err, size_t errlen);
bool ke_server_run(ke_server *s);
void ke_server_stop(ke_server *s);
void ke_server_get_stats(const ke_server *s, ke_server_stats *out);
const char *ke_server_address(const ke_server *s);

#endif
