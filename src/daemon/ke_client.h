/* ke_client: one NTS-KE exchange as a client (RFC 8915 section 4): TCP
 * connect, TLS 1.3 handshake with ALPN ntske/1 and certificate/host-name
 * (or IP SAN) verification and/or a public key pin, one request, one
 * response, the exported keys.
 * Non-blocking on the caller's event loop, with one deadline for all of it. */
#ifndef NTSD_DAEMON_KE_CLIENT_H
#define NTSD_DAEMON_KE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "proto/aead.h"
#include "proto/nts_ke.h"

struct event_base;
typedef struct ke_client ke_client;

/* Public key pins (`pin sha256:...`): SHA-256 of the server's
 * SubjectPublicKeyInfo, checked before the request is sent. */
#define KE_PINS_MAX 4
typedef struct ke_pins {
  uint8_t sha256[KE_PINS_MAX][32];
  size_t n;   /* 0: no pin, the CA verifies as usual */
  bool chain; /* with pins: also verify the chain and name (the line has `ca`) */
} ke_pins;

/* Where a failed exchange stopped, for a diagnostic's exit status. */
typedef enum ke_fail {
  KE_FAIL_NONE = 0,
  KE_FAIL_CONNECT,  /* no connection: refused, unreachable, timed out, the proxy */
  KE_FAIL_TLS,      /* the TLS handshake: certificate, pin, ALPN, alerts */
  KE_FAIL_PROTOCOL, /* NTS-KE itself: a bad response, an Error or Warning record,
                       no response in time, the key exporter */
} ke_fail;

typedef struct ke_result {
  bool ok;
  ke_fail fail;           /* on failure: which stage */
  nts_ke_resp_status resp_status; /* KE_FAIL_PROTOCOL on a response: why it was refused
                                     (session.error_code / warning_code say more) */
  char why[200];          /* on failure: what went wrong, for the log */
  long verify_result;     /* on failure: X509_V_OK, or why the certificate failed */
  nts_ke_session session; /* on success: AEAD, cookies, server, port */
  uint8_t c2s[NTS_AEAD_MAX_KEY_LEN];
  uint8_t s2c[NTS_AEAD_MAX_KEY_LEN];
  size_t key_len;
  double took;            /* seconds, connect to last byte */
  char tls_version[16];
  char cipher[64];
  /* During the callback only: the connection, for a diagnostic to read the
   * server's certificates from (NULL if TLS never started). */
  const SSL *ssl;
} ke_result;

/* Called once with the outcome; the ke_client is freed right after it
 * returns (the caller must forget its pointer).  r may be modified (e.g.
 * its keys wiped). */
typedef void (*ke_client_done_fn)(void *arg, ke_result *r);

/* host: the configured name or address literal, for SNI and verification.
 * pins: NULL or n == 0 for none; copied.  A pin mismatch fails with
 * verify_result X509_V_ERR_APPLICATION_VERIFICATION. */
ke_client *ke_client_start(struct event_base *base, SSL_CTX *ctx, const struct sockaddr *sa,
                           socklen_t salen, const char *host, const ke_pins *pins,
                           const uint16_t *aeads, size_t n_aeads, double timeout,
                           ke_client_done_fn fn, void *arg);
/* As ke_client_start on fd, a socket of sa's family not yet connected
 * (bound to a chosen source address, say), or -1 for a new one.  fd is the
 * client's from then on: closed when it ends, or at once on failure. */
ke_client *ke_client_start_fd(struct event_base *base, SSL_CTX *ctx, int fd,
                              const struct sockaddr *sa, socklen_t salen, const char *host,
                              const ke_pins *pins, const uint16_t *aeads, size_t n_aeads,
                              double timeout, ke_client_done_fn fn, void *arg);
/* Through a SOCKS5 proxy (CONNECT): its address and the credentials to
 * give it (user_len 0: "no authentication" only).  Pointers are used only
 * during ke_client_start_via. */
typedef struct ke_via {
  const struct sockaddr *proxy;
  socklen_t proxy_len;
  const uint8_t *user;
  size_t user_len;
  const uint8_t *pass;
  size_t pass_len;
  const char *target; /* NULL: ask the proxy for host; else for this (a name
                         or literal) while TLS still checks host */
} ke_via;

/* As ke_client_start, through a proxy: host and port are the KE server.  A
 * name goes to the proxy as a name and is never resolved here; an address
 * literal goes as an address.  SNI and verification use host as above.
 * The one deadline covers the proxy's handshake too; a proxy's failure
 * comes back in why as "proxy ADDR:PORT: ...".  NULL with err set when it
 * cannot start. */
ke_client *ke_client_start_via(struct event_base *base, SSL_CTX *ctx, const ke_via *via,
                               const char *host, uint16_t port, const ke_pins *pins,
                               const uint16_t *aeads, size_t n_aeads, double timeout,
                               ke_client_done_fn fn, void *arg, char *err, size_t errlen);
/* Abandons an exchange; the callback is not called. */
void ke_client_cancel(ke_client *k);

#endif
