/* transport: how a client request reaches its server and the response
 * comes back, with the times that matter: when the request really left
 * (the kernel's transmit timestamp) and when each response arrived (its
 * kernel receive timestamp), both on the daemon's clock.
 *
 * One transport is one association's path; each exchange opens it, sends
 * one request, hands back every datagram that arrives until it is closed.
 * The ops table is the seam where other paths (a proxy, a stream) plug in;
 * the client glue only calls the transport_* functions below. */
#ifndef NTSD_DAEMON_TRANSPORT_H
#define NTSD_DAEMON_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "daemon/clockctl.h"
#include "proto/ntp_time.h"

struct event_base;
typedef struct transport transport;

typedef struct transport_cbs {
  /* The request's real departure time, when the kernel stamped it. */
  void (*on_sent)(void *arg, ntp_ts t1);
  /* A datagram from the server, received at rx.  The callback may close
   * the transport (the exchange is over): no more are handed back then. */
  void (*on_response)(void *arg, const uint8_t *pkt, size_t len, ntp_ts rx);
  void *arg;
} transport_cbs;

typedef struct transport_ops {
  const char *name;
  /* A fresh path to the server; false with a message in err. */
  bool (*open)(transport *t, const struct sockaddr *sa, socklen_t len, char *err,
               size_t errlen);
  bool (*send)(transport *t, const uint8_t *pkt, size_t len, char *err, size_t errlen);
  void (*close)(transport *t);
} transport_ops;

/* UDP: a new socket per exchange, so every request leaves from a new random
 * source port, connected so that only the server can answer. */
extern const transport_ops transport_udp;

typedef struct transport_cfg {
  const transport_ops *ops;
  struct event_base *base;
  const clockctl *clk; /* the stamps are converted to its time */
  transport_cbs cbs;
} transport_cfg;

transport *transport_create(const transport_cfg *cfg);
void transport_destroy(transport *t);
/* Opens a new path to the server (closing the old one), before the request
 * is built; then sends the request on it.  Each returns false with a
 * message in err, and leaves the transport closed. */
bool transport_open(transport *t, const struct sockaddr *sa, socklen_t len, char *err,
                    size_t errlen);
bool transport_send(transport *t, const uint8_t *pkt, size_t n, char *err, size_t errlen);
/* Ends the exchange: nothing more is received. */
void transport_close(transport *t);
bool transport_is_open(const transport *t);

#endif
