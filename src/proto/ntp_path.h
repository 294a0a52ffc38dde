/* ntp_path: which way a source's NTP requests go, given what it is
 * configured to use (`transport`, `proxy`, `directfallback`), what its
 * NTS-KE server offered (NTP over TCP), and what the proxy answered to UDP
 * ASSOCIATE.  docs/anonymity.md ("Transports") states the rules.
 *
 * With a proxy nothing goes direct, unless the source opted in with
 * `directfallback` and no proxied way is left: then the answer is direct
 * UDP, flagged so that the caller warns every time it is used.  When no way
 * is left, the source is not polled and the reason is given.
 *
 * Pure: the caller keeps the state (e.g. when the proxy refused UDP
 * ASSOCIATE) and asks again before each poll. */
#ifndef NTSD_PROTO_NTP_PATH_H
#define NTSD_PROTO_NTP_PATH_H

#include <stdbool.h>

typedef enum ntp_path {
  NTP_PATH_NONE = 0,   /* no allowed way: the source is not polled */
  NTP_PATH_UDP,        /* direct UDP */
  NTP_PATH_TCP,        /* direct NTP over TCP */
  NTP_PATH_SOCKS_UDP,  /* through the proxy's UDP ASSOCIATE relay */
  NTP_PATH_SOCKS_TCP,  /* NTP over TCP through the proxy's CONNECT */
  NTP_PATH_COUNT
} ntp_path;

/* `transport auto|udp|tcp`. */
typedef enum ntp_path_want { NTP_PATH_WANT_AUTO = 0, NTP_PATH_WANT_UDP, NTP_PATH_WANT_TCP }
    ntp_path_want;

typedef struct ntp_path_in {
  ntp_path_want want;
  bool proxy;          /* a proxy applies to the source */
  bool tcp_offered;    /* its NTS-KE server advertised NTP over TCP */
  bool udp_refused;    /* the proxy refused UDP ASSOCIATE (recently) */
  bool directfallback; /* `directfallback`: may go direct when no proxied way is left */
} ntp_path_in;

typedef struct ntp_path_out {
  ntp_path path;
  bool fallback;       /* direct UDP only because of directfallback: warn */
  const char *why;     /* NTP_PATH_NONE or fallback: why no proxied way is left */
} ntp_path_out;

ntp_path_out ntp_path_choose(const ntp_path_in *in);

/* "none", "udp", "tcp", "socks-udp", "socks-tcp" ("none" out of range). */
const char *ntp_path_name(ntp_path p);

#endif
