/* tls: OpenSSL contexts for NTS-KE.  TLS 1.3 only (nothing older is ever
 * negotiated, whatever `nts mintls` says), ALPN "ntske/1" required on both
 * sides, and the RFC 8915 key exporter. */
#ifndef NTSD_DAEMON_TLS_H
#define NTSD_DAEMON_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "daemon/certpair.h"

#define NTS_ALPN "ntske/1"

/* Server context from the bytes of a certificate chain file (leaf first)
 * and a private key file (daemon/certpair).  NULL with a message in err
 * (file, reason) on failure. */
SSL_CTX *tls_server_ctx_pem(const certpair *pair, char *err, size_t errlen);

/* Client context trusting `ca` (a PEM file or a hashed directory), or the
 * system store when ca is NULL or "".  With no_time_check, certificates are
 * verified except for their validity dates (`nocerttimecheck`: a clock that
 * has never been set cannot judge them).  NULL with a message on failure. */
SSL_CTX *tls_client_ctx(const char *ca, bool no_time_check, char *err, size_t errlen);

/* Prepares a client SSL for `host`: SNI (for names), and verification of
 * the certificate's DNS name, or of its IP SAN when host is an address
 * literal.  False on failure. */
bool tls_client_setup(SSL *ssl, const char *host);

/* For a pinned server without a CA: SNI only (for names); neither the chain
 * nor the name is verified, the public key pin is the authentication.
 * TLS 1.3 still proves that the server holds the certificate's key. */
bool tls_client_setup_pinned(SSL *ssl, const char *host);

/* SHA-256 of the DER SubjectPublicKeyInfo of the peer's leaf certificate
 * (what curl's --pinnedpubkey compares).  False without a certificate. */
bool tls_peer_spki_sha256(SSL *ssl, uint8_t out[32]);

/* The same digest for any certificate (false for NULL). */
bool tls_cert_spki_sha256(X509 *cert, uint8_t out[32]);

/* True if the handshake selected ALPN ntske/1. */
bool tls_alpn_ok(const SSL *ssl);

/* RFC 8915 5.1: exports the C2S (dir 0) or S2C (dir 1) key for next
 * protocol NTPv4 and the given AEAD: label "EXPORTER-network-time-security",
 * context = protocol id (2 bytes) || AEAD id (2 bytes) || dir (1 byte). */
bool tls_export_key(SSL *ssl, uint16_t aead_id, int dir, uint8_t *out, size_t len);

/* The notAfter of ctx's certificate (the NTS-KE server's), Unix time. */
bool tls_ctx_not_after(SSL_CTX *ctx, int64_t *out);

/* The last OpenSSL error as text (and clears the queue). */
const char *tls_error_string(char *buf, size_t cap);

#endif
