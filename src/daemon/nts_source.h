/* nts_source: the NTS state of one upstream source (RFC 8915): its NTS-KE
 * sessions (scheduled, retried with backoff, redone when the cookies run
 * out, when NAKs say the server refuses them, or to check certificate dates
 * skipped under `nocerttimecheck`), its cookies, the sealing of requests
 * and the checks of responses, and the tamper evidence it counts and logs.
 * docs/nts.md ("When things go wrong") describes the behaviour.
 *
 * The association that owns it polls; this module tells it, through hooks,
 * when polling must stop, where NTP goes after NTS-KE, and when polling may
 * resume.  What every NTS source shares (TLS contexts, the
 * `nocerttimecheck` budget, counters) is an nts_sources. */
#ifndef NTSD_DAEMON_NTS_SOURCE_H
#define NTSD_DAEMON_NTS_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "daemon/ke_client.h"
#include "daemon/transport.h"
#include "proto/nts_client.h"

struct event_base;
typedef struct nts_sources nts_sources;
typedef struct nts_source nts_source;

typedef struct nts_source_stats {
  uint64_t ke_probes_good;
  uint64_t ke_probes_bad;
  uint64_t nts_sends;      /* authenticated requests sent */
  uint64_t nts_recvs_good; /* authentic responses */
  uint64_t nts_recvs_bad;  /* responses dropped by NTS checks */
  uint64_t nts_naks;       /* NTS NAKs with our unique identifier */
} nts_source_stats;

/* nocerttimecheck: NTS-KEs that may skip certificate dates while the clock
 * has never been synchronised. */
nts_sources *nts_sources_create(struct event_base *base, int nocerttimecheck);
void nts_sources_destroy(nts_sources *all);
void nts_sources_get_stats(const nts_sources *all, nts_source_stats *out);

/* Where NTP goes after an NTS-KE: the server it named (RFC 8915 4.1.7,
 * 4.1.8), else the KE server. */
typedef struct nts_source_ntp {
  const struct sockaddr *sa;    /* direct: its address and UDP port */
  socklen_t len;
  const char *host;             /* with a proxy: its name or literal, for the proxy */
  uint16_t port;                /* NTP's UDP port */
  uint16_t tcp_port;            /* NTP over TCP as advertised; 0: not offered */
  const transport_proxy *proxy; /* with a proxy: it, with this session's credentials */
} nts_source_ntp;

typedef struct nts_source_hooks {
  void *arg;
  void (*log)(void *arg, int level, const char *msg);
  /* Polling stops: the exchange in flight is abandoned. */
  void (*stop)(void *arg);
  /* NTS-KE named where NTP goes. */
  void (*set_ntp)(void *arg, const nts_source_ntp *ntp);
  /* A new session: polling may (re)start. */
  void (*resume)(void *arg);
} nts_source_hooks;

typedef struct nts_source_cfg {
  const char *host; /* the KE server's name, for TLS (SNI, certificate); copied */
  const char *ca;   /* CA file or directory, "" for the system store; copied */
  uint16_t aead;    /* the only AEAD to offer, 0 for our default list */
  ke_pins pins;     /* `pin`: n == 0 for none; without chain, ca is not used */
  uint16_t ke_port; /* with a proxy: the KE server's port */
  /* NULL: direct.  Otherwise NTS-KE goes through this proxy, to host by
   * name (never resolved here); copied. */
  const transport_proxy *proxy;
  /* With a proxy: each NTS-KE gives it new random credentials (stream
   * isolation); the session's NTP uses the same ones (set_ntp). */
  bool isolate;
} nts_source_cfg;

/* NULL with a message in err (a CA that cannot be loaded, out of memory).
 * ke_sa is the KE server's address (NULL with a proxy).  Nothing runs
 * before nts_source_start. */
nts_source *nts_source_create(nts_sources *all, const nts_source_cfg *cfg,
                              const struct sockaddr *ke_sa, socklen_t ke_len,
                              const nts_source_hooks *hooks, char *err, size_t errlen);
void nts_source_destroy(nts_source *ns);
/* The first NTS-KE, at once. */
void nts_source_start(nts_source *ns);

/* True while there is a session to poll with. */
bool nts_source_polling(const nts_source *ns);
/* The exchange in flight ends (a new poll is due): a NAK that no authentic
 * response contradicted counts now. */
void nts_source_end_exchange(nts_source *ns);
/* Before a request is built: false (and NTS-KE is due) without a cookie;
 * else the request's unique identifier and nonce are drawn. */
bool nts_source_begin(nts_source *ns);
/* Seals the NTP header hdr into out: the request begun; 0 on failure. */
size_t nts_source_seal(nts_source *ns, const uint8_t *hdr, size_t hdr_len, uint8_t *out,
                       size_t cap);
/* The NTS checks on a response: true if it is authentic and time may be
 * taken from it.  Anything else leaves the exchange open: a forged packet
 * must not end it before the real answer. */
bool nts_source_check(nts_source *ns, const uint8_t *pkt, size_t len);
/* Logs the tamper evidence summarised since the last summary, if any. */
void nts_source_summarise(nts_source *ns, double now);
/* The clock has been synchronised: a session whose certificate dates were
 * not checked is redone with them checked.  Call after
 * nts_sources_set_synced. */
bool nts_sources_set_synced(nts_sources *all); /* true the first time */
void nts_source_synced(nts_source *ns);

typedef struct nts_source_view {
  bool ke_running;       /* an NTS-KE is in progress */
  bool ke_failed;        /* the last NTS-KE failed */
  bool has_session;
  bool fruitless;        /* the last session brought no authentic response */
  bool need_ke;          /* polling waits for a new NTS-KE */
  unsigned cookies;
  const char *ke_error;  /* "" if the last NTS-KE did not fail */
  double ke_retry;       /* seconds until the next NTS-KE, -1 if none due */
  unsigned naks;         /* exchanges in a row that ended with only a NAK */
  uint64_t naks_total;   /* all exchanges that ended with only a NAK */
  uint64_t ke_good, ke_bad; /* NTS-KEs, by outcome */
  double last_ke_age;    /* seconds since the last NTS-KE ended, -1 if none has */
  uint64_t tamper[NTS_TAMPER_COUNT];
} nts_source_view;

void nts_source_get_view(const nts_source *ns, double now, nts_source_view *v);

#endif
