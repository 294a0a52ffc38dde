/* Unit tests for src/daemon/certpair (the NTS-KE certificate and key as
 * file bytes, checked in a child process) and tls_server_ctx_pem. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/certpair.h"
#include "daemon/tls.h"

static char dir[] = "/tmp/ntsd-test-certpair-XXXXXX";

static const char *path(const char *name)
{
  static char buf[4][256];
  static int i;
  i = (i + 1) % 4;
  snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
  return buf[i];
}

__attribute__((format(printf, 1, 2))) static int sh(const char *fmt, ...)
{
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof(cmd), fmt, ap);
  va_end(ap);
  return system(cmd);
}

/* A CA, a leaf it signed (valid 2 days), the chain file (leaf, CA), a key
 * that matches no certificate, an encrypted copy of the leaf's key. */
static int make_pki(void **state)
{
  (void)state;
  if (!mkdtemp(dir))
    return -1;
  const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
  int rc = sh("cd %s && openssl req -x509 %s -keyout ca.key -out ca.pem -days 2 "
              "-subj /CN=ca 2>/dev/null && "
              "openssl req %s -keyout leaf.key -out leaf.csr -subj /CN=leaf 2>/dev/null && "
              "openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -set_serial 1 "
              "-days 2 -out leaf.pem 2>/dev/null && cat leaf.pem ca.pem > chain.pem && "
              "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
              "-out other.key 2>/dev/null && "
              "openssl pkey -in leaf.key -aes256 -passout pass:secret -out enc.key 2>/dev/null && "
              "echo 'not a certificate' > junk.pem",
              dir, ec, ec);
  return rc == 0 ? 0 : -1;
}

static int remove_pki(void **state)
{
  (void)state;
  return sh("rm -rf %s", dir) == 0 ? 0 : -1;
}

static void test_check_good_pair(void **state)
{
  (void)state;
  char err[320] = "";
  certpair *p = certpair_read(path("chain.pem"), path("leaf.key"), err, sizeof(err));
  assert_non_null(p);
  assert_string_equal(certpair_cert_file(p), path("chain.pem"));
  int64_t not_after = 0;
  bool have = false;
  assert_true(certpair_check(p, &not_after, &have, err, sizeof(err)));
  assert_true(have);
  int64_t now = (int64_t)time(NULL);
  assert_true(not_after > now + 86400 && not_after <= now + 2 * 86400 + 60);
  /* The context the NTS-KE process makes: the leaf, and the CA as chain. */
  SSL_CTX *ctx = tls_server_ctx_pem(p, err, sizeof(err));
  assert_non_null(ctx);
  STACK_OF(X509) *chain = NULL;
  assert_int_equal(SSL_CTX_get0_chain_certs(ctx, &chain), 1);
  assert_int_equal(sk_X509_num(chain), 1);
  SSL_CTX_free(ctx);
  certpair_free(p);
}

static void expect_check_fails(const char *cert, const char *key, const char *want)
{
  char err[320] = "";
  certpair *p = certpair_read(path(cert), path(key), err, sizeof(err));
  assert_non_null(p);
  int64_t t;
  bool have;
  assert_false(certpair_check(p, &t, &have, err, sizeof(err)));
  if (strncmp(err, want, strlen(want)) != 0)
    fail_msg("error '%s', expected it to start with '%s'", err, want);
  certpair_free(p);
}

static void test_check_refuses(void **state)
{
  (void)state;
  char want[300];
  snprintf(want, sizeof(want), "nts key %s: ", path("other.key"));
  expect_check_fails("chain.pem", "other.key", want); /* not the certificate's key */
  snprintf(want, sizeof(want), "nts cert %s: ", path("junk.pem"));
  expect_check_fails("junk.pem", "leaf.key", want);
  snprintf(want, sizeof(want), "nts key %s: ", path("junk.pem"));
  expect_check_fails("chain.pem", "junk.pem", want);
  /* An encrypted key is refused at once, never prompted for. */
  time_t t0 = time(NULL);
  snprintf(want, sizeof(want), "nts key %s: ", path("enc.key"));
  expect_check_fails("chain.pem", "enc.key", want);
  assert_true(time(NULL) - t0 < 5);
}

static void test_read_refuses(void **state)
{
  (void)state;
  char err[320] = "", want[300];
  assert_null(certpair_read(path("missing.pem"), path("leaf.key"), err, sizeof(err)));
  snprintf(want, sizeof(want), "nts cert %s: No such file or directory", path("missing.pem"));
  assert_string_equal(err, want);
  assert_null(certpair_read(path("chain.pem"), dir, err, sizeof(err)));
  snprintf(want, sizeof(want), "nts key %s: not a regular file", dir);
  assert_string_equal(err, want);
  FILE *f = fopen(path("big.pem"), "w");
  assert_non_null(f);
  assert_int_equal(ftruncate(fileno(f), CERTPAIR_FILE_MAX + 1), 0);
  fclose(f);
  assert_null(certpair_read(path("big.pem"), path("leaf.key"), err, sizeof(err)));
  snprintf(want, sizeof(want), "nts cert %s: larger than 256 KiB", path("big.pem"));
  assert_string_equal(err, want);
  certpair_free(NULL);
}

/* The bytes are the files' own, so the NTS-KE process parses exactly what
 * was read. */
static void test_bytes(void **state)
{
  (void)state;
  char err[320] = "";
  certpair *p = certpair_read(path("chain.pem"), path("leaf.key"), err, sizeof(err));
  assert_non_null(p);
  struct stat st;
  assert_int_equal(stat(path("chain.pem"), &st), 0);
  size_t n;
  const uint8_t *b = certpair_cert(p, &n);
  assert_int_equal(n, (size_t)st.st_size);
  assert_memory_equal(b, "-----BEGIN CERTIFICATE-----", 27);
  b = certpair_key(p, &n);
  assert_true(n > 0 && memcmp(b, "-----BEGIN", 10) == 0);
  certpair_free(p);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_check_good_pair),
      cmocka_unit_test(test_check_refuses),
      cmocka_unit_test(test_read_refuses),
      cmocka_unit_test(test_bytes),
  };
  return cmocka_run_group_tests(tests, make_pki, remove_pki);
}
