/* ke_server: the NTS-KE server (RFC 8915 section 4) with its own event
 * loop, so key-establishment load never delays NTP replies.  The daemon runs
 * it in a process of its own (daemon/ke_proc); tests run it on a thread.
 *
 * Per connection: cheap checks first (restrict ignore/noserve, a per-client
 * rate limit, then proto/ke_admit: a cap per /24 or /56 and a slot, taken
 * from the oldest unfinished handshake when all are busy), then a
 * non-blocking TLS 1.3 handshake (ALPN ntske/1 required), one request, one
 * response, TLS close_notify, close.  The whole ClientHello must arrive
 * within hello_timeout (1 s by default), the whole exchange finish within
 * timeout (2 s).  The protocol decisions are made by proto/nts_ke; cookies
 * by proto/nts_cookie with the keystore's current key set, read through an
 * atomic pointer.  Per-connection lines are logged at debug level (the first
 * failure of each kind per interval at info), with a summary per interval
 * (proto/ke_summary) at notice level. */
#ifndef NTSD_DAEMON_KE_SERVER_H
#define NTSD_DAEMON_KE_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "daemon/keystore.h"
#include "proto/acl.h"

struct event_base;

#define KE_DEFAULT_PORT 4460
#define KE_MAX_LISTENERS 2
#define KE_MAX_NTP_SERVERS 8

typedef struct ke_server_cfg {
  const char *listen;      /* "PORT", "ADDR:PORT", "[v6]:PORT" or "" (port 4460, all) */
  const int *fds;          /* or listening sockets from ke_server_listen (taken) */
  size_t n_fds;            /* 0: open `listen` */
  SSL_CTX *ctx;            /* borrowed; must outlive the server */
  const ntp_acl *acl;      /* borrowed */
  keystore *keys;          /* borrowed: the cookie key set */
  uint16_t ntp_port;       /* our NTP port; advertised when it is not 123 */
  /* advertised NTPv4 servers, one per response in turn; none: no Server record */
  const char *ntp_servers[KE_MAX_NTP_SERVERS];
  size_t n_ntp_servers;
  uint16_t ntp_tcp_port;   /* our NTP over TCP port, advertised; 0: not served */
  double timeout;          /* seconds per connection, handshake included */
  int max_connections;
  int max_per_prefix;      /* concurrent connections per /24 or /56 (0: 16) */
  double hello_timeout;    /* seconds from accept to the ClientHello (0: 1 s) */
  double summary_interval; /* seconds between summary lines (0: 60 s) */
  void (*on_outcome)(void *arg); /* each connection's outcome, on the server's loop;
                                    the counters settle by the end of the callback
                                    that calls it (NULL: none) */
  void *on_outcome_arg;
} ke_server_cfg;

/* The handshake-time histogram: upper bounds in seconds (the exchange's
 * timeout is 2 s); a last bucket takes what lies above them. */
#define KE_HS_BOUNDS {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5}
#define KE_HS_BUCKETS 10

/* Counters, as `ntpq -c nts` shows them.  Only u64 fields: they travel as
 * one array from the NTS-KE process (proto/ipc_msg STATS). */
typedef struct ke_server_stats {
  uint64_t serves_good;     /* completed KEs */
  uint64_t serves_bad;      /* failed after the TCP accept: TLS, ALPN, protocol, timeout */
  uint64_t refused;         /* dropped before the handshake: ACL, rate, caps */
  uint64_t tls_failures;
  uint64_t no_alpn;
  uint64_t bad_requests;    /* answered with an Error record */
  uint64_t timeouts;
  uint64_t cookies_made;
  uint64_t refused_prefix;  /* of refused: the per-prefix cap */
  uint64_t evicted;         /* of serves_bad: closed to make room for a newer connection */
  uint64_t hello_timeouts;  /* of serves_bad: no ClientHello in time */
  /* Completed KEs by the time from accept to the response, per bucket (not
   * cumulative), and that time summed in microseconds. */
  uint64_t hs_bucket[KE_HS_BUCKETS];
  uint64_t hs_sum_us;
} ke_server_stats;

typedef struct ke_server ke_server;

/* Opens the listening sockets for spec (cfg.listen's syntax) into fds and
 * names the first in name; returns how many, 0 with err on failure. */
size_t ke_server_listen(const char *spec, int fds[KE_MAX_LISTENERS], char *name,
                        size_t namelen, char *err, size_t errlen);

/* Sets the server up on its listening sockets (errors reach the caller
 * before the daemon detaches).  Then either ke_server_run starts a thread,
 * or ke_server_serve runs the loop on the calling thread until
 * event_base_loopexit on ke_server_base. */
ke_server *ke_server_start(const ke_server_cfg *cfg, char *err, size_t errlen);
bool ke_server_run(ke_server *s);
bool ke_server_serve(ke_server *s);
struct event_base *ke_server_base(ke_server *s);
/* Stops accepting (the listening sockets stay open, and another process
 * sharing them takes the new connections) and ends the loop once the open
 * connections are done: each has its deadline, so this is bounded by the
 * timeout.  On the server's loop. */
void ke_server_drain(ke_server *s);
void ke_server_stop(ke_server *s);
void ke_server_get_stats(const ke_server *s, ke_server_stats *out);
const char *ke_server_address(const ke_server *s);

#endif
