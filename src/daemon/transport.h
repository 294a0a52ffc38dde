/* transport: how a client request reaches its server and the response
 * comes back, with the times that matter: when the request really left
 * (the kernel's transmit timestamp) and when each response arrived (its
 * kernel receive timestamp), both on the daemon's clock.
 *
 * One transport is one association's path; each exchange opens it (with
 * the ops of the way chosen for this poll), sends one request, and hands
 * back every response that arrives until it is closed.  Ways that need a
 * connection first (TCP, a SOCKS5 proxy) come up asynchronously: the
 * request is built and sent only when on_ready says the path is up, so its
 * t1 (and so the measured delay) never includes the TCP or proxy
 * handshakes.  The client glue only calls the transport_* functions below;
 * docs/anonymity.md ("Transports", "NTP over TCP") describes the ways. */
#ifndef NTSD_DAEMON_TRANSPORT_H
#define NTSD_DAEMON_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "daemon/clockctl.h"
#include "proto/ntp_time.h"
#include "proto/socks5.h"

struct event_base;
typedef struct transport transport;

/* Why a path failed or dropped something. */
typedef struct transport_error {
  const char *why;      /* one line for the log */
  bool proxy;           /* the proxy failed, refused or sent something malformed */
  socks5_status status; /* the proxy's reply code, SOCKS5_OK when it gave none */
  bool closed;          /* the path is closed: this exchange is over */
} transport_error;

typedef struct transport_cbs {
  /* The path came up after transport_open said it was pending: build the
   * request now and transport_send it.  May close the transport. */
  void (*on_ready)(void *arg);
  /* The request's real departure time, when the kernel stamped it. */
  void (*on_sent)(void *arg, ntp_ts t1);
  /* A response from the server, received at rx.  The callback may close
   * the transport (the exchange is over): no more are handed back then. */
  void (*on_response)(void *arg, const uint8_t *pkt, size_t len, ntp_ts rx);
  /* The path failed (closed is set), or a proxy datagram was dropped. */
  void (*on_error)(void *arg, const transport_error *e);
  void *arg;
} transport_cbs;

/* A SOCKS5 proxy and the credentials to give it (user_len 0: none). */
typedef struct transport_proxy {
  struct sockaddr_storage sa;
  socklen_t len;
  uint8_t user[SOCKS5_CRED_MAX];
  size_t user_len;
  uint8_t pass[SOCKS5_CRED_MAX];
  size_t pass_len;
} transport_proxy;

/* Where an exchange goes: a socket address for the direct ways, or a name
 * (or address literal) and port that only the proxy resolves. */
typedef struct transport_dest {
  const struct sockaddr *sa; /* direct */
  socklen_t len;
  const socks5_addr *name;   /* proxied */
  const transport_proxy *proxy;
  double timeout;            /* seconds for the path to come up */
} transport_dest;

typedef struct transport_ops {
  const char *name; /* as `ntsctl peers` shows it */
  /* Starts a fresh path; false with a message in err. */
  bool (*open)(transport *t, const transport_dest *d, char *err, size_t errlen);
  bool (*send)(transport *t, const uint8_t *pkt, size_t len, char *err, size_t errlen);
  void (*close)(transport *t);
} transport_ops;

/* UDP: a new socket per exchange, so every request leaves from a new random
 * source port, connected so that only the server can answer. */
extern const transport_ops transport_udp;
/* NTP over TCP (proto/ntp_tcp framing), a new connection per exchange,
 * TCP_NODELAY, kernel timestamps where the kernel gives them. */
extern const transport_ops transport_tcp;
/* The same over a stream the proxy CONNECTs to the named server. */
extern const transport_ops transport_socks_tcp;
/* UDP through the proxy's relay (RFC 1928 7), its control connection held
 * open for the exchange; a new association per exchange. */
extern const transport_ops transport_socks_udp;

typedef struct transport_cfg {
  struct event_base *base;
  const clockctl *clk; /* the stamps are converted to its time */
  transport_cbs cbs;
} transport_cfg;

transport *transport_create(const transport_cfg *cfg);
void transport_destroy(transport *t);
/* Opens a new path with ops to d (closing the old one).  False with a
 * message in err when it cannot even start.  The path is up at once when
 * transport_ready says so (UDP); otherwise on_ready or on_error follows. */
bool transport_open(transport *t, const transport_ops *ops, const transport_dest *d, char *err,
                    size_t errlen);
bool transport_ready(const transport *t);
/* Sends the request on a ready path; false with a message in err, and the
 * transport closed. */
bool transport_send(transport *t, const uint8_t *pkt, size_t n, char *err, size_t errlen);
/* Ends the exchange: nothing more is received. */
void transport_close(transport *t);
bool transport_is_open(const transport *t);
/* The local address of the open path's socket (for the statistics files);
 * false if closed or unknown. */
bool transport_local_addr(const transport *t, struct sockaddr_storage *ss, socklen_t *len);

#endif
