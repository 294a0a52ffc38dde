/* client: our upstream servers, one association per address.  The glue
 * between the parts: `resolver` turns `server`/`pool` names into addresses,
 * `transport` carries each request and its responses with their kernel
 * timestamps (UDP: a fresh socket, so a new random source port, per poll),
 * `nts_source` keeps an NTS source's sessions and cookies, and the pure
 * proto/source.c decides when to send and what a response means. */
#ifndef NTSD_DAEMON_CLIENT_H
#define NTSD_DAEMON_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/clockctl.h"
#include "daemon/conf.h"
#include "daemon/netaddr.h"
#include "daemon/nts_source.h"
#include "proto/nts_client.h"
#include "proto/source.h"

struct event_base;
struct evdns_base;
typedef struct ntsd_clients ntsd_clients;

/* Called after every accepted sample (to re-run selection). */
typedef void (*clients_update_fn)(void *arg);

/* A read-only view of one association for reports. */
typedef struct peer_view {
  const char *name;            /* as configured (pool: the pool name) */
  char address[NETADDR_STRLEN + CONF_HOST_MAX]; /* "1.2.3.4:123", "" while unresolved;
                                  proxied: "NAME:PORT" as the proxy gets it */
  const struct sockaddr *sa;   /* NULL while unresolved */
  bool is_pool;
  bool nts;
  unsigned cookies;            /* NTS cookies held (0 for plain NTP) */
  ntp_source_info info;
  const ntp_source *src;       /* its samples: ntp_source_samples() */
  /* "ok", "starting" (no reply yet), "no-reply" (polls unanswered: the path,
   * a firewall, or the server is down), "denied" (DENY/RSTR kiss), and for
   * NTS: "ke" (NTS-KE running), "ke-failed" (the last NTS-KE failed; see
   * ke_error), "ke-wait" (waiting to redo NTS-KE); "no-path" (no allowed
   * way to the server, or the last attempt failed on the way: path_error) */
  const char *state;
  const char *proxy;           /* the proxy's URL without the password, NULL: direct */
  const char *transport;       /* "udp", "tcp", "socks-udp", "socks-tcp"; NULL: none */
  const char *path_error;      /* why the path failed last, "" after an answer */
  uint64_t proxy_errors;       /* proxy failures and malformed relay datagrams */
  const char *proxy_error;     /* the last one, "" if none */
  const char *ke_error;        /* NTS: why the last NTS-KE failed ("" if it did not) */
  double ke_retry;             /* NTS: seconds until the next NTS-KE, -1 if none due */
  unsigned nts_naks;           /* NTS: exchanges in a row that ended with only a NAK */
  uint64_t naks_total;         /* NTS: all exchanges that ended with only a NAK */
  uint64_t ke_good, ke_bad;    /* NTS: NTS-KEs by outcome */
  double last_ke_age;          /* NTS: seconds since the last NTS-KE ended, -1: none */
  uint64_t tamper[NTS_TAMPER_COUNT]; /* NTS: refused, by reason (tamper evidence) */
} peer_view;

/* NTS client counters, as `ntpq -c nts` shows them. */
typedef struct ntsd_client_stats {
  nts_source_stats nts;
  uint64_t tx_timestamps;  /* requests timed by a kernel transmit timestamp */
} ntsd_client_stats;

/* What the client module needs from the configuration: copied by
 * clients_create, nothing of it is kept by reference. */
/* An accepted reply, for the statistics files. */
typedef struct clients_reply {
  const uint8_t *pkt;       /* the NTP header (and what follows) */
  size_t len;
  ntp_ts t1, t4;            /* our request's departure and the reply's arrival */
  const struct sockaddr *src; /* the server (NULL if only a proxy knows it) */
  const struct sockaddr *dst; /* our end of the path, NULL if unknown */
  unsigned lost;            /* requests unanswered since the previous reply */
} clients_reply;

typedef struct clients_cfg {
  struct event_base *base;
  struct evdns_base *dns;
  const clockctl *clk;         /* the daemon's time (borrowed: must outlive the clients) */
  const conf_source *sources;  /* `server` and `pool` lines */
  size_t n_sources;
  const char *nts_ca;          /* `nts ca`: the NTS sources' default CA, "" the system store */
  int nocerttimecheck;         /* NTS-KEs that may skip certificate dates before sync */
  double precision;            /* of reading the clock, seconds */
  clients_update_fn update;    /* after every accepted sample */
  void *update_arg;
  /* Before `update`, for association i (optional; its arg is update_arg). */
  void (*on_reply)(void *arg, size_t i, const clients_reply *r);
} clients_cfg;

ntsd_clients *clients_create(const clients_cfg *cfg);
void clients_destroy(ntsd_clients *c);
size_t clients_count(const ntsd_clients *c);
/* Fills *v for association i at monotonic time now; false if out of range. */
bool clients_view(const ntsd_clients *c, size_t i, double now, peer_view *v);
void clients_get_stats(const ntsd_clients *c, ntsd_client_stats *out);
/* The local clock was stepped: every source forgets its samples. */
void clients_clock_stepped(ntsd_clients *c);
/* The system is synchronised (first time only matters): NTS sessions whose
 * certificates were accepted without their dates (`nocerttimecheck`) are
 * redone with the dates checked. */
void clients_set_synced(ntsd_clients *c);
/* What clients_reconfigure did, counted in configuration lines. */
typedef struct clients_change {
  size_t kept, removed, added;
} clients_change;

/* A reloaded configuration's `server` and `pool` lines: a line the same as
 * a running one (every option alike) keeps its associations with their
 * state (samples, NTS cookies); the associations of a line no longer there
 * (or changed) end; a new (or changed) line starts its own.  Associations
 * keep their order; indices after a removed one shift down.  False when out
 * of memory (some lines may then be missing). */
bool clients_reconfigure(ntsd_clients *c, const conf_source *sources, size_t n,
                         clients_change *out);
/* Peer i's poll from now on (the discipline's ntp_disc_poll()). */
void clients_set_poll(ntsd_clients *c, size_t i, int poll);

#endif
