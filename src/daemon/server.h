/* server: the NTP server's sockets.  Receives with kernel timestamps
 * (SO_TIMESTAMPNS), applies `restrict` and rate limits, lets the pure core
 * build the response in a per-server buffer (no allocation per packet) and
 * stamps the transmit time just before sending. */
#ifndef NTSD_DAEMON_SERVER_H
#define NTSD_DAEMON_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/clockctl.h"
#include "daemon/conf.h"
#include "daemon/keystore.h"
#include "proto/acl.h"
#include "proto/ntp_server.h"
#include "proto/nts_ntp.h"

struct event_base;
typedef struct ntsd_server ntsd_server;

typedef struct ntsd_server_stats {
  uint64_t received;
  uint64_t responded;
  uint64_t dropped[NTP_SRV_RESULT_COUNT]; /* by ntp_srv_result (index 0 unused) */
  uint64_t acl_ignore;   /* restrict ignore */
  uint64_t acl_noserve;  /* restrict noserve */
  uint64_t rate_limited; /* restrict limited */
  uint64_t kod_sent;     /* RATE kisses sent */
  uint64_t send_errors;
  /* NTS (RFC 8915 5) */
  uint64_t nts_recvs_good;  /* authentic requests */
  uint64_t nts_recvs_bad;   /* dropped: malformed or not authentic */
  uint64_t nts_sends;       /* authenticated responses */
  uint64_t nts_naks;        /* NTS NAKs sent (cookie not accepted) */
  uint64_t nts_cookies_made; /* new cookies sent in responses */
  uint64_t nts_cookies[NTS_COOKIE_RESULT_COUNT]; /* cookie opening outcomes */
  uint64_t nts_drops[NTS_NTP_WHY_COUNT];         /* drops by reason */
} ntsd_server_stats;

/* Opens the sockets from conf (`listen`, or wildcard port 123; none with
 * `interface ignore all`).  acl is borrowed and must outlive the server;
 * so are keys, the NTS cookie keys (NULL: no NTS service), and clk, whose
 * time the server stamps.
 * Returns NULL with a message in err on failure. */
ntsd_server *server_create(struct event_base *base, const ntsd_conf *conf, const ntp_acl *acl,
                           keystore *keys, const clockctl *clk, int precision_log2, char *err,
                           size_t errlen);
void server_destroy(ntsd_server *s);
void server_set_sysinfo(ntsd_server *s, const ntp_sysinfo *sys);
void server_get_stats(const ntsd_server *s, ntsd_server_stats *out);
size_t server_socket_count(const ntsd_server *s);
/* "127.0.0.1:123" of the i-th socket (for logs and ntsctl). */
const char *server_socket_name(const ntsd_server *s, size_t i);

#endif
