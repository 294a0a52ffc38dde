/* metrics: the Prometheus endpoint over evhttp. */
#include "daemon/metrics.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "daemon/conf.h"
#include "daemon/log.h"
#include "daemon/netaddr.h"
#include "proto/prom_text.h"

struct metrics {
  struct event_base *base;
  struct evhttp *http;
  struct evconnlistener *listener;
  metrics_render_fn render;
  void *arg;
  unsigned open;      /* connections open */
  bool paused;        /* the listener waits for one to close */
  bool closing;       /* metrics_destroy: the listener is gone */
  struct event *adopt; /* gives new connections their close callback */
  struct bufferevent *pending[METRICS_MAX_CONNS];
  size_t n_pending;
  char name[NETADDR_STRLEN];
};

bool metrics_wants_openmetrics(const char *accept)
{
  return accept && strstr(accept, "application/openmetrics-text") != NULL;
}

static void reply_error(struct evhttp_request *req, int code, const char *reason)
{
  struct evkeyvalq *out = evhttp_request_get_output_headers(req);
  evhttp_add_header(out, "Content-Type", "text/plain; charset=utf-8");
  if (code == HTTP_BADMETHOD)
    evhttp_add_header(out, "Allow", "GET, HEAD");
  struct evbuffer *body = evbuffer_new();
  if (body)
    evbuffer_add_printf(body, "%d %s\n", code, reason);
  evhttp_send_reply(req, code, reason, body);
  if (body)
    evbuffer_free(body);
}

static void on_request(struct evhttp_request *req, void *arg)
{
  metrics *m = arg;
  enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
  const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
  if (!path || strcmp(path, "/metrics") != 0) {
    reply_error(req, HTTP_NOTFOUND, "Not Found");
    return;
  }
  if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
    reply_error(req, HTTP_BADMETHOD, "Method Not Allowed");
    return;
  }
  const char *accept = evhttp_find_header(evhttp_request_get_input_headers(req), "Accept");
  bool om = metrics_wants_openmetrics(accept);
  size_t len = 0;
  char *text = m->render(m->arg, om, &len);
  struct evbuffer *body = text ? evbuffer_new() : NULL;
  if (!body || evbuffer_add_reference(body, text, len, NULL, NULL) < 0) {
    if (body)
      evbuffer_free(body);
    free(text);
    reply_error(req, HTTP_INTERNAL, "Internal Server Error");
    return;
  }
  struct evkeyvalq *out = evhttp_request_get_output_headers(req);
  evhttp_add_header(out, "Content-Type", om ? PROM_CT_OPENMETRICS : PROM_CT_TEXT);
  evhttp_add_header(out, "Cache-Control", "no-store");
  if (cmd == EVHTTP_REQ_HEAD) {
    /* libevent 2.1 would send the body after the headers of a HEAD reply */
    char n[24];
    snprintf(n, sizeof(n), "%zu", len);
    evhttp_add_header(out, "Content-Length", n);
    evhttp_send_reply(req, HTTP_OK, "OK", NULL);
  } else {
    evhttp_send_reply(req, HTTP_OK, "OK", body); /* copies the body out */
  }
  evbuffer_free(body);
  free(text);
}

/* A connection closed: one slot is free again. */
static void on_conn_closed(struct evhttp_connection *evcon, void *arg)
{
  metrics *m = arg;
  (void)evcon;
  m->open--;
  if (m->paused && !m->closing && m->open < METRICS_MAX_CONNS) {
    m->paused = false;
    evconnlistener_enable(m->listener);
  }
}

/* Right after the accept callback: each new connection's evhttp_connection
 * is the argument of its bufferevent's callbacks; it gets the close
 * callback that counts it out.  No read on it has run yet. */
static void on_adopt(evutil_socket_t fd, short what, void *arg)
{
  metrics *m = arg;
  (void)fd;
  (void)what;
  for (size_t i = 0; i < m->n_pending; i++) {
    void *evcon = NULL;
    bufferevent_getcb(m->pending[i], NULL, NULL, NULL, &evcon);
    if (evcon)
      evhttp_connection_set_closecb(evcon, on_conn_closed, m);
    else
      m->open--; /* cannot happen: evhttp sets its callbacks on every connection */
  }
  m->n_pending = 0;
}

/* Each accepted connection's bufferevent: counted, so that the listener
 * pauses at METRICS_MAX_CONNS (libevent 2.1's evhttp has no cap). */
static struct bufferevent *make_bev(struct event_base *base, void *arg)
{
  metrics *m = arg;
  if (m->n_pending >= METRICS_MAX_CONNS)
    return NULL; /* cannot happen: the listener pauses first */
  struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
  if (!bev)
    return NULL;
  m->pending[m->n_pending++] = bev;
  event_active(m->adopt, 0, 0);
  if (++m->open >= METRICS_MAX_CONNS && !m->paused) {
    m->paused = true;
    evconnlistener_disable(m->listener);
  }
  return bev;
}

/* "ADDR:PORT" into a socket address. */
static bool parse_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
  char host[CONF_HOST_MAX];
  uint16_t port;
  return conf_split_host_port(spec, host, sizeof(host), &port) &&
         netaddr_parse(host, port, ss, len);
}

metrics *metrics_create(const metrics_cfg *cfg, char *err, size_t errlen)
{
  struct sockaddr_storage ss;
  socklen_t sl;
  if (!parse_listen(cfg->listen, &ss, &sl)) {
    snprintf(err, errlen, "metrics: cannot parse '%s' (ADDR:PORT)", cfg->listen);
    return NULL;
  }
  metrics *m = calloc(1, sizeof(*m));
  if (!m || !(m->http = evhttp_new(cfg->base))) {
    free(m);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  m->base = cfg->base;
  m->adopt = event_new(cfg->base, -1, 0, on_adopt, m);
  if (!m->adopt) {
    snprintf(err, errlen, "out of memory");
    metrics_destroy(m);
    return NULL;
  }
  m->render = cfg->render;
  m->arg = cfg->arg;
  m->listener = evconnlistener_new_bind(cfg->base, NULL, NULL,
                                        LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE |
                                            LEV_OPT_CLOSE_ON_EXEC,
                                        METRICS_MAX_CONNS, (struct sockaddr *)&ss, (int)sl);
  if (!m->listener) {
    snprintf(err, errlen, "metrics: cannot listen on %s: %s", cfg->listen, strerror(errno));
    metrics_destroy(m);
    return NULL;
  }
  if (!evhttp_bind_listener(m->http, m->listener)) {
    evconnlistener_free(m->listener);
    m->listener = NULL;
    snprintf(err, errlen, "out of memory");
    metrics_destroy(m);
    return NULL;
  }
  evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                          EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                          EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
  evhttp_set_max_headers_size(m->http, METRICS_MAX_HEADERS);
  evhttp_set_max_body_size(m->http, 0);
  evhttp_set_timeout(m->http, METRICS_TIMEOUT_S);
  evhttp_set_bevcb(m->http, make_bev, m);
  evhttp_set_gencb(m->http, on_request, m);
  struct sockaddr_storage bound;
  socklen_t bl = sizeof(bound);
  if (getsockname(evconnlistener_get_fd(m->listener), (struct sockaddr *)&bound, &bl) == 0)
    netaddr_str_port((struct sockaddr *)&bound, m->name, sizeof(m->name));
  log_info("metrics: serving http://%s/metrics", m->name);
  return m;
}

void metrics_destroy(metrics *m)
{
  if (!m)
    return;
  m->closing = true;
  evhttp_free(m->http); /* its listener and connections with it */
  if (m->adopt)
    event_free(m->adopt);
  free(m);
}

const char *metrics_address(const metrics *m) { return m->name; }
