/* tcp_server: NTP over TCP, the server's transport (docs/ntp-over-tcp.md).
 *
 * Listening sockets on the addresses of `listen ADDR[:PORT] tcp`, on the
 * caller's event loop.  Each connection carries NTP packets framed by
 * proto/ntp_tcp; each request goes to the caller's answer function (the
 * daemon's one request path, shared with UDP), and the framed response is
 * written at once.  This module decides only what a transport must:
 *
 *   - at accept: `restrict ignore`/`noserve` for the peer's address close
 *     the connection; then proto/ke_admit gives it a slot, refusing it when
 *     its /24 or /56 holds max_per_prefix connections, and closing the
 *     oldest connection when every slot is taken;
 *   - deadlines: the next request must start within idle_timeout of the
 *     accept or of the last response, and a started request must arrive
 *     whole, and its response be written, within request_timeout;
 *   - a length of 0 or over NTP_TCP_MSG_MAX closes the connection, and so
 *     does the max_requests-th request, once its response is written;
 *   - TCP_NODELAY, the receive time from the kernel's stamp of the read
 *     (SO_TIMESTAMPNS) or the clock read as the read returns, whichever is
 *     earlier; the answer function reads the transmit time last, right
 *     before the write.
 *
 * A connection's buffers (one frame in, one frame out) and events are
 * allocated the first time its admission slot is used and kept for the
 * slot's next connection: once the slots in use have been seen, nothing is
 * allocated per connection or per request (clients may open one connection
 * per request).  While a response cannot be written whole, the connection
 * reads nothing more. */
#ifndef NTSD_DAEMON_TCP_SERVER_H
#define NTSD_DAEMON_TCP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "daemon/clockctl.h"
#include "proto/acl.h"
#include "proto/ntp_time.h"

/* Defaults (docs/ntp-over-tcp.md). */
#define TCP_SERVER_SLOTS 256
#define TCP_SERVER_PER_PREFIX 16
#define TCP_SERVER_IDLE_TIMEOUT 5.0
#define TCP_SERVER_REQUEST_TIMEOUT 2.0
#define TCP_SERVER_MAX_REQUESTS 16

struct event_base;
typedef struct tcp_server tcp_server;

/* One request in, its response into out (cap bytes); returns the
 * response's length, 0 to send nothing.  rx: when the request arrived. */
typedef size_t (*tcp_server_answer_fn)(void *arg, const uint8_t *req, size_t len, ntp_ts rx,
                                       const struct sockaddr *peer, uint8_t *out, size_t cap);

typedef struct tcp_server_cfg {
  struct event_base *base;     /* borrowed; must outlive the server */
  const ntp_acl *acl;          /* borrowed; NULL: no restrict entries */
  const clockctl *clk;         /* borrowed: the receive stamps' clock */
  tcp_server_answer_fn answer;
  void *answer_arg;
  size_t max_connections;      /* 0: TCP_SERVER_SLOTS */
  size_t max_per_prefix;       /* 0: TCP_SERVER_PER_PREFIX */
  double idle_timeout;         /* s; <= 0: TCP_SERVER_IDLE_TIMEOUT */
  double request_timeout;      /* s; <= 0: TCP_SERVER_REQUEST_TIMEOUT */
  unsigned max_requests;       /* per connection; 0: TCP_SERVER_MAX_REQUESTS */
} tcp_server_cfg;

typedef struct tcp_server_stats {
  uint64_t accepted;         /* connections given a slot */
  uint64_t open;             /* connections open now */
  uint64_t refused;          /* closed at accept: restrict, per-prefix cap, errors */
  uint64_t refused_prefix;   /* of refused: the per-prefix cap */
  uint64_t evicted;          /* closed to make room for a newer connection */
  uint64_t requests;         /* frames received (each went to the answer function) */
  uint64_t responses;        /* framed responses written whole */
  uint64_t unanswered;       /* requests the answer function dropped */
  uint64_t bad_length;       /* closed: a frame length of 0 or too long */
  uint64_t idle_timeouts;    /* closed: no next request in time */
  uint64_t request_timeouts; /* closed: a request or its response not through in time */
  uint64_t request_limit;    /* closed after max_requests requests */
  uint64_t write_errors;     /* closed: the write failed (peer gone) */
} tcp_server_stats;

tcp_server *tcp_server_create(const tcp_server_cfg *cfg, char *err, size_t errlen);
/* Listens on sa (SO_REUSEADDR, IPV6_V6ONLY like the UDP sockets). */
bool tcp_server_listen(tcp_server *t, const struct sockaddr *sa, socklen_t len, char *err,
                       size_t errlen);
/* Closes the listeners and every connection. */
void tcp_server_destroy(tcp_server *t);
void tcp_server_get_stats(const tcp_server *t, tcp_server_stats *out);
size_t tcp_server_socket_count(const tcp_server *t);
/* "127.0.0.1:123" of the i-th listener. */
const char *tcp_server_socket_name(const tcp_server *t, size_t i);

#endif
