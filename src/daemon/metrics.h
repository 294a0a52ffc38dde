/* metrics: the Prometheus endpoint (`metrics ADDR:PORT`), served by
 * libevent's evhttp on the daemon's loop.
 *
 * Read-only: GET (and HEAD) of /metrics only; any other path is 404, any
 * other method 405.  The exposition is Prometheus text 0.0.4, or
 * OpenMetrics 1.0.0 when the Accept header asks for it.  A hostile client
 * is bounded: request headers of at most METRICS_MAX_HEADERS bytes, no
 * body, METRICS_TIMEOUT_S per connection, and at most METRICS_MAX_CONNS
 * connections at once (the listener pauses while that many are open).
 * The socket is opened before privileges are dropped. */
#ifndef NTSD_DAEMON_METRICS_H
#define NTSD_DAEMON_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define METRICS_MAX_HEADERS 8192
#define METRICS_TIMEOUT_S 5
#define METRICS_MAX_CONNS 16

struct event_base;

/* The exposition: malloc'd, its length in *len; NULL when out of memory. */
typedef char *(*metrics_render_fn)(void *arg, bool openmetrics, size_t *len);

typedef struct metrics_cfg {
  struct event_base *base;
  const char *listen;        /* "ADDR:PORT" or "[v6]:PORT" */
  metrics_render_fn render;
  void *arg;
} metrics_cfg;

typedef struct metrics metrics;

metrics *metrics_create(const metrics_cfg *cfg, char *err, size_t errlen);
void metrics_destroy(metrics *m);
/* "ADDR:PORT" it listens on (the port the kernel chose for port 0). */
const char *metrics_address(const metrics *m);

/* True when an Accept header value asks for OpenMetrics text. */
bool metrics_wants_openmetrics(const char *accept);

#endif
