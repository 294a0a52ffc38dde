/* tls: OpenSSL glue for NTS-KE. */
#include "daemon/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <time.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const unsigned char alpn_wire[] = {7, 'n', 't', 's', 'k', 'e', '/', '1'};

const char *tls_error_string(char *buf, size_t cap)
{
  unsigned long e = ERR_get_error();
  if (e == 0)
    snprintf(buf, cap, "unknown TLS error");
  else
    ERR_error_string_n(e, buf, cap);
  ERR_clear_error();
  return buf;
}

/* Selects ntske/1 or fails the handshake with no_application_protocol. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
  (void)ssl;
  (void)arg;
  unsigned char *sel;
  if (SSL_select_next_proto(&sel, outlen, alpn_wire, sizeof(alpn_wire), in, inlen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

static bool tls13_only(SSL_CTX *ctx)
{
  return SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) == 1 &&
         SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) == 1;
}

/* A daemon has nobody to ask: an encrypted key is refused, never prompted
 * for on a terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *arg)
{
  (void)buf;
  (void)size;
  (void)rwflag;
  (void)arg;
  return -1;
}

/* The leaf certificate and the rest of the chain, in file order, from the
 * PEM bytes of a chain file (as SSL_CTX_use_certificate_chain_file reads
 * one). */
static bool use_chain(SSL_CTX *ctx, const uint8_t *pem, size_t len)
{
  BIO *bio = BIO_new_mem_buf(pem, (int)len);
  X509 *leaf = bio ? PEM_read_bio_X509_AUX(bio, NULL, no_passphrase, NULL) : NULL;
  bool ok = leaf && SSL_CTX_use_certificate(ctx, leaf) == 1 && SSL_CTX_clear_chain_certs(ctx) == 1;
  X509_free(leaf);
  X509 *ca;
  while (ok && (ca = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL)) != NULL) {
    ok = SSL_CTX_add0_chain_cert(ctx, ca) == 1;
    if (!ok)
      X509_free(ca);
  }
  /* The end of the file reads as "no start line": not an error. */
  unsigned long e = ERR_peek_last_error();
  if (ok && ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
    ERR_clear_error();
  else if (ok && e)
    ok = false;
  BIO_free(bio);
  return ok;
}

static bool use_key(SSL_CTX *ctx, const uint8_t *pem, size_t len)
{
  BIO *bio = BIO_new_mem_buf(pem, (int)len);
  EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
  bool ok = key && SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1;
  EVP_PKEY_free(key);
  BIO_free(bio);
  return ok;
}

SSL_CTX *tls_server_ctx_pem(const certpair *pair, char *err, size_t errlen)
{
  char e[256];
  size_t cert_len, key_len;
  const uint8_t *cert = certpair_cert(pair, &cert_len);
  const uint8_t *key = certpair_key(pair, &key_len);
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx || !tls13_only(ctx)) {
    snprintf(err, errlen, "TLS server context: %s", tls_error_string(e, sizeof(e)));
    SSL_CTX_free(ctx);
    return NULL;
  }
  if (!use_chain(ctx, cert, cert_len)) {
    snprintf(err, errlen, "nts cert %s: %s", certpair_cert_file(pair),
             tls_error_string(e, sizeof(e)));
    SSL_CTX_free(ctx);
    return NULL;
  }
  if (!use_key(ctx, key, key_len)) {
    snprintf(err, errlen, "nts key %s: %s", certpair_key_file(pair),
             tls_error_string(e, sizeof(e)));
    SSL_CTX_free(ctx);
    return NULL;
  }
  /* No session tickets or resumption: every KE is a full handshake whose
   * exporter keys are fresh, and the server keeps no per-client state. */
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_num_tickets(ctx, 0);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  /* The chain sent is the file's, as it is: no chain building from a
   * store at each handshake (a leaf-only file would otherwise cost a
   * store look-up per KE). */
  SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
  SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
  return ctx;
}

SSL_CTX *tls_client_ctx(const char *ca, bool no_time_check, char *err, size_t errlen)
{
  char e[256];
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx || !tls13_only(ctx)) {
    snprintf(err, errlen, "TLS client context: %s", tls_error_string(e, sizeof(e)));
    SSL_CTX_free(ctx);
    return NULL;
  }
  int ok;
  if (ca && *ca) {
    struct stat st;
    bool is_dir = stat(ca, &st) == 0 && S_ISDIR(st.st_mode);
    ok = is_dir ? SSL_CTX_load_verify_locations(ctx, NULL, ca)
                : SSL_CTX_load_verify_locations(ctx, ca, NULL);
  } else {
    ok = SSL_CTX_set_default_verify_paths(ctx);
  }
  if (ok != 1) {
    snprintf(err, errlen, "CA %s: %s", ca && *ca ? ca : "(system store)",
             tls_error_string(e, sizeof(e)));
    SSL_CTX_free(ctx);
    return NULL;
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  if (no_time_check)
    X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), X509_V_FLAG_NO_CHECK_TIME);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  if (SSL_CTX_set_alpn_protos(ctx, alpn_wire, sizeof(alpn_wire)) != 0) {
    snprintf(err, errlen, "ALPN: %s", tls_error_string(e, sizeof(e)));
    SSL_CTX_free(ctx);
    return NULL;
  }
  return ctx;
}

bool tls_client_setup(SSL *ssl, const char *host)
{
  unsigned char buf[16];
  bool is_ip = inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
  if (is_ip) {
    /* An address literal: no SNI (RFC 6066 forbids it); the certificate
     * must carry the address as an IP SAN. */
    X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
    return X509_VERIFY_PARAM_set1_ip_asc(vp, host) == 1;
  }
  return SSL_set_tlsext_host_name(ssl, host) == 1 && SSL_set1_host(ssl, host) == 1;
}

/* Accepts any chain, and clears the verdict so a later failure is not
 * reported (and counted) as a bad certificate. */
static int accept_any_chain(int preverify_ok, X509_STORE_CTX *x)
{
  (void)preverify_ok;
  X509_STORE_CTX_set_error(x, X509_V_OK);
  return 1;
}

bool tls_client_setup_pinned(SSL *ssl, const char *host)
{
  unsigned char buf[16];
  SSL_set_verify(ssl, SSL_VERIFY_PEER, accept_any_chain);
  if (inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1)
    return true;
  return SSL_set_tlsext_host_name(ssl, host) == 1;
}

bool tls_cert_spki_sha256(X509 *cert, uint8_t out[32])
{
  unsigned char *der = NULL;
  unsigned int n = 0;
  int len = cert ? i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der) : -1;
  bool ok = len > 0 && EVP_Digest(der, (size_t)len, out, &n, EVP_sha256(), NULL) == 1 && n == 32;
  OPENSSL_free(der);
  return ok;
}

bool tls_peer_spki_sha256(SSL *ssl, uint8_t out[32])
{
  X509 *cert = SSL_get1_peer_certificate(ssl);
  bool ok = tls_cert_spki_sha256(cert, out);
  X509_free(cert);
  return ok;
}

bool tls_alpn_ok(const SSL *ssl)
{
  const unsigned char *p;
  unsigned int n;
  SSL_get0_alpn_selected(ssl, &p, &n);
  return n == sizeof(alpn_wire) - 1 && memcmp(p, alpn_wire + 1, n) == 0;
}

bool tls_export_key(SSL *ssl, uint16_t aead_id, int dir, uint8_t *out, size_t len)
{
  static const char label[] = "EXPORTER-network-time-security";
  const uint8_t ctx[5] = {0, 0, (uint8_t)(aead_id >> 8), (uint8_t)aead_id, (uint8_t)dir};
  return SSL_export_keying_material(ssl, out, len, label, sizeof(label) - 1, ctx, sizeof(ctx),
                                    1) == 1;
}

bool tls_ctx_not_after(SSL_CTX *ctx, int64_t *out)
{
  X509 *cert = SSL_CTX_get0_certificate(ctx);
  const ASN1_TIME *t = cert ? X509_get0_notAfter(cert) : NULL;
  struct tm tm;
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
    return false;
  *out = (int64_t)timegm(&tm);
  return true;
}
