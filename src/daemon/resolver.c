/* resolver: names to addresses with evdns. */
#define LOG_CLASS LOG_CLASS_PEER /* log.h: the class `logconfig` knows them by */
#include "daemon/resolver.h"

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/conf.h"
#include "daemon/log.h"

#define RETRY_MIN 2.0 /* seconds; doubles up to the max */
#define RETRY_MAX 300.0

struct resolver {
  struct evdns_base *dns;
  char host[CONF_HOST_MAX];
  char port[8];
  int want;
  resolver_addr_fn fn;
  void *arg;
  struct evdns_getaddrinfo_request *req;
  struct event *retry;
  double retry_min;
  double backoff;
  int taken;
};

static void start(resolver *r);

static void retry_later(resolver *r)
{
  struct timeval tv = {.tv_sec = (time_t)r->backoff,
                       .tv_usec = (suseconds_t)(fmod(r->backoff, 1.0) * 1e6)};
  evtimer_add(r->retry, &tv);
  r->backoff = fmin(r->backoff * 2, RETRY_MAX);
}

static void on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
  resolver *r = arg;
  int added = 0;

  r->req = NULL;
  if (result != 0) {
    if (result == EVUTIL_EAI_CANCEL)
      return;
    log_warn("cannot resolve %s: %s (retrying in %.0f s)", r->host, evutil_gai_strerror(result),
             r->backoff);
    retry_later(r);
    return;
  }
  for (struct evutil_addrinfo *ai = res; ai && r->taken < r->want; ai = ai->ai_next)
    if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
        r->fn(r->arg, ai->ai_addr, (socklen_t)ai->ai_addrlen)) {
      added++;
      r->taken++;
    }
  evutil_freeaddrinfo(res);
  if (r->taken >= r->want)
    return;
  /* Short of addresses: ask again later, sooner if this answer helped. */
  if (added)
    r->backoff = r->retry_min;
  else
    log_info("%s: no new usable address (asking again in %.0f s)", r->host, r->backoff);
  retry_later(r);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  start(arg);
}

static void start(resolver *r)
{
  struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM,
                                  .ai_protocol = IPPROTO_UDP,
                                  .ai_flags = EVUTIL_AI_ADDRCONFIG};
  r->req = evdns_getaddrinfo(r->dns, r->host, r->port, &hints, on_resolved, r);
}

resolver *resolver_start(const resolver_cfg *cfg)
{
  resolver *r = calloc(1, sizeof(*r));
  if (!r)
    return NULL;
  r->dns = cfg->dns;
  snprintf(r->host, sizeof(r->host), "%s", cfg->host);
  snprintf(r->port, sizeof(r->port), "%u", cfg->port);
  r->want = cfg->want;
  r->fn = cfg->fn;
  r->arg = cfg->arg;
  r->retry_min = cfg->retry_min > 0 ? cfg->retry_min : RETRY_MIN;
  r->backoff = r->retry_min;
  r->retry = evtimer_new(cfg->base, on_retry, r);
  if (!r->retry) {
    free(r);
    return NULL;
  }
  start(r);
  return r;
}

void resolver_free(resolver *r)
{
  if (!r)
    return;
  if (r->req)
    evdns_getaddrinfo_cancel(r->req);
  event_free(r->retry);
  free(r);
}
