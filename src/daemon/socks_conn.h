/* socks_conn: the client side of a SOCKS5 handshake (RFC 1928, with
 * RFC 1929 username/password) on the caller's event loop: TCP connect to
 * the proxy, method selection, authentication, then CONNECT or UDP
 * ASSOCIATE, and the proxy's reply.
 *
 * Non-blocking, with one deadline for the whole handshake.  It reads
 * exactly the bytes each reply takes, never more (the reply's own bound,
 * SOCKS5_*_MAX, caps what a proxy can make it read), so whatever the proxy
 * relays after its reply (the start of the server's data) stays in the
 * socket for the caller.  Names go to the proxy as names (ATYP 3) and are
 * never resolved here.  The messages themselves are proto/socks5. */
#ifndef NTSD_DAEMON_SOCKS_CONN_H
#define NTSD_DAEMON_SOCKS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "proto/socks5.h"

struct event_base;
typedef struct socks_conn socks_conn;

typedef struct socks_conn_cfg {
  struct event_base *base;
  const struct sockaddr *proxy; /* IPv4 or IPv6 */
  socklen_t proxy_len;
  /* user_len 0: offer only "no authentication".  Otherwise offer both
   * "no authentication" and username/password, as curl does: a proxy that
   * wants no credentials picks the first, Tor picks the second (and keys
   * its circuit isolation on them). */
  const uint8_t *user;
  size_t user_len;
  const uint8_t *pass; /* may be empty (PLEN 0) when user_len > 0 */
  size_t pass_len;
  uint8_t cmd;         /* SOCKS5_CMD_CONNECT or SOCKS5_CMD_UDP_ASSOCIATE */
  socks5_addr dst;     /* CONNECT: the target; ASSOCIATE: where datagrams
                          will come from (0.0.0.0:0 allowed) */
  double timeout;      /* seconds, the whole handshake */
} socks_conn_cfg;

typedef struct socks_conn_result {
  bool ok;
  int fd;               /* on ok: the stream, handshake consumed; the callee owns it */
  socks5_addr bound;    /* BND.ADDR/BND.PORT (ASSOCIATE: the relay's UDP address;
                           0.0.0.0 or :: means the proxy's own address) */
  socks5_status status; /* on failure from the proxy: its code; SOCKS5_OK otherwise */
  char why[200];        /* on failure: one line for the log, "proxy ADDR:PORT: ..." */
} socks_conn_result;

/* Called once; the socks_conn is freed right after it returns. */
typedef void (*socks_conn_done_fn)(void *arg, socks_conn_result *r);

/* NULL with err set when it cannot even start (bad argument, no socket);
 * otherwise fn is called later, never from within this call. */
socks_conn *socks_conn_start(const socks_conn_cfg *cfg, socks_conn_done_fn fn, void *arg,
                             char *err, size_t errlen);
/* Abandons a handshake and closes its socket; the callback is not called. */
void socks_conn_cancel(socks_conn *c);

/* Random credentials for stream isolation (Tor's IsolateSOCKSAuth puts
 * streams with different credentials on different circuits): 16 bytes from
 * the kernel's CSPRNG, hex-encoded, NUL-terminated. */
#define SOCKS_ISOLATION_LEN 32
void socks_conn_isolation_creds(char user[SOCKS_ISOLATION_LEN + 1],
                                char pass[SOCKS_ISOLATION_LEN + 1]);

/* The proxy's socket address from a configured proxy (conf.h); false if
 * none is set or its host is not an address literal. */
struct conf_proxy;
bool socks_conn_proxy_from_conf(const struct conf_proxy *p, struct sockaddr_storage *ss,
                                socklen_t *len);

/* The credentials one connection uses: the configured ones if the proxy's
 * URL has a USER, else fresh random ones (stream isolation), so every
 * source and every new NTS-KE gets its own circuit from Tor. */
typedef struct socks_creds {
  uint8_t user[SOCKS5_CRED_MAX], pass[SOCKS5_CRED_MAX];
  size_t user_len, pass_len;
  bool random; /* drawn here, not configured */
} socks_creds;
void socks_conn_creds(const struct conf_proxy *p, socks_creds *out);

/* The proxy's socket address from its address literal (no brackets, IPv4
 * or IPv6) and port; false if host is not a literal or port is 0. */
bool socks_conn_proxy_addr(const char *host, uint16_t port, struct sockaddr_storage *ss,
                           socklen_t *len);

/* dst for a host given as configured: an IPv4 or IPv6 literal (brackets
 * allowed) becomes an address, anything else a name for the proxy to
 * resolve.  SOCKS5_ERR_ARG for an empty or over-long name. */
socks5_status socks_conn_dst(socks5_addr *dst, const char *host, uint16_t port);

#endif
