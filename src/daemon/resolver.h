/* resolver: a `server` or `pool` name to addresses, asynchronously (evdns).
 * Each address is offered to the caller, who takes it or not, until enough
 * were taken.  While fewer than wanted were taken (the name fails, or gives
 * no new usable address: a pool short of servers), the name is asked again
 * with an exponential backoff, which starts over whenever one was taken. */
#ifndef NTSD_DAEMON_RESOLVER_H
#define NTSD_DAEMON_RESOLVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct evdns_base;
typedef struct resolver resolver;

/* True if the address was taken (a new association). */
typedef bool (*resolver_addr_fn)(void *arg, const struct sockaddr *sa, socklen_t len);

typedef struct resolver_cfg {
  struct event_base *base;
  struct evdns_base *dns;
  const char *host; /* copied */
  uint16_t port;
  int want;         /* addresses to take in all */
  double retry_min; /* s, first backoff step; 0: the default (2 s) */
  resolver_addr_fn fn;
  void *arg;
} resolver_cfg;

/* Starts resolving; a numeric host is resolved (and fn called) before this
 * returns.  NULL on out of memory. */
resolver *resolver_start(const resolver_cfg *cfg);
void resolver_free(resolver *r);

#endif
