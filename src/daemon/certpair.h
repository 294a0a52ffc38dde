/* certpair: the NTS-KE server's certificate chain and private key, held as
 * the bytes of their files.
 *
 * The main process reads the files (as root at start, before it drops its
 * privileges; as the dropped user on a reload) but never parses them: the
 * NTS-KE process it forks makes its TLS context from these bytes
 * (tls_server_ctx_pem), and certpair_check parses them in a short-lived
 * child process to refuse a bad pair at once and learn the certificate's
 * notAfter.  So OpenSSL's parsers, and the state OpenSSL sets up on first
 * use (some 2 MB of resident memory), stay out of the process that keeps
 * CAP_SYS_TIME unless it is an NTS client itself (docs/security.md,
 * docs/benchmarks.md "Memory"). */
#ifndef NTSD_DAEMON_CERTPAIR_H
#define NTSD_DAEMON_CERTPAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Larger files are refused: a chain and a key are a few kB. */
#define CERTPAIR_FILE_MAX (256 * 1024)

typedef struct certpair certpair;

/* Reads both files whole.  NULL with "nts cert FILE: reason" (or key) in
 * err when one cannot be read, is not a regular file or is too large. */
certpair *certpair_read(const char *cert_file, const char *key_file, char *err, size_t errlen);

/* Wipes the key's bytes and frees.  NULL is fine. */
void certpair_free(certpair *p);

const char *certpair_cert_file(const certpair *p);
const char *certpair_key_file(const certpair *p);
/* The files' bytes, not NUL-terminated. */
const uint8_t *certpair_cert(const certpair *p, size_t *len);
const uint8_t *certpair_key(const certpair *p, size_t *len);

/* Parses the pair as the NTS-KE process will, in a child process that
 * reports and exits (bounded wait).  True if it makes a TLS server
 * context; *not_after is then the certificate's notAfter (Unix time) when
 * *have_not_after.  False with the reason in err. */
bool certpair_check(const certpair *p, int64_t *not_after, bool *have_not_after, char *err,
                    size_t errlen);

#endif
