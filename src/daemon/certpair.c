/* certpair: the NTS-KE server's certificate and key as file bytes. */
#include "daemon/certpair.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/atomicfile.h"
#include "daemon/tls.h"

/* How long the check process may take (OpenSSL's start-up and one parse
 * take milliseconds). */
#define CHECK_WAIT_MS 10000

typedef struct blob {
  char *file;
  uint8_t *data;
  size_t len;
} blob;

struct certpair {
  blob cert, key;
};

/* What the check process writes back, whole, in one pipe write. */
typedef struct check_result {
  int ok, have_not_after;
  int64_t not_after;
  char err[320];
} check_result;

/* The whole file, following symbolic links (certbot's live/ directory is
 * made of them), bounded by CERTPAIR_FILE_MAX. */
static bool read_blob(const char *what, const char *file, blob *b, char *err, size_t errlen)
{
  b->file = strdup(file);
  int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  struct stat st;
  int e = fd < 0 ? errno : fstat(fd, &st) < 0 ? errno : 0;
  if (!e && !S_ISREG(st.st_mode))
    e = EINVAL;
  else if (!e && st.st_size > CERTPAIR_FILE_MAX)
    e = EFBIG;
  size_t cap = e ? 0 : (size_t)st.st_size + 1; /* one more: a file growing while read */
  if (!e && (!b->file || !(b->data = malloc(cap))))
    e = ENOMEM;
  long n = e ? -1 : atomicfile_read_fd(fd, b->data, cap);
  if (!e && n < 0)
    e = errno;
  else if (!e && (size_t)n == cap)
    e = EAGAIN; /* being written: the next look (or SIGHUP) reads it whole */
  if (fd >= 0)
    close(fd);
  if (e)
    snprintf(err, errlen, "%s %s: %s", what, file,
             e == EINVAL ? "not a regular file" : e == EFBIG ? "larger than 256 KiB"
             : e == EAGAIN ? "changed while read" : strerror(e));
  else
    b->len = (size_t)n;
  return !e;
}

static void blob_free(blob *b)
{
  if (b->data)
    explicit_bzero(b->data, b->len);
  free(b->data);
  free(b->file);
}

certpair *certpair_read(const char *cert_file, const char *key_file, char *err, size_t errlen)
{
  certpair *p = calloc(1, sizeof(*p));
  if (!p) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  if (!read_blob("nts cert", cert_file, &p->cert, err, errlen) ||
      !read_blob("nts key", key_file, &p->key, err, errlen)) {
    certpair_free(p);
    return NULL;
  }
  return p;
}

void certpair_free(certpair *p)
{
  if (!p)
    return;
  blob_free(&p->cert);
  blob_free(&p->key);
  free(p);
}

const char *certpair_cert_file(const certpair *p) { return p->cert.file; }
const char *certpair_key_file(const certpair *p) { return p->key.file; }

const uint8_t *certpair_cert(const certpair *p, size_t *len)
{
  *len = p->cert.len;
  return p->cert.data;
}

const uint8_t *certpair_key(const certpair *p, size_t *len)
{
  *len = p->key.len;
  return p->key.data;
}

/* The child: parse, report, exit without running the parent's handlers. */
static void check_child(const certpair *p, int wfd)
{
  check_result r = {0};
  SSL_CTX *ctx = tls_server_ctx_pem(p, r.err, sizeof(r.err));
  if (ctx) {
    r.ok = 1;
    int64_t t;
    r.have_not_after = tls_ctx_not_after(ctx, &t);
    r.not_after = r.have_not_after ? t : 0;
  }
  ssize_t n = write(wfd, &r, sizeof(r));
  _exit(n == (ssize_t)sizeof(r) ? 0 : 1);
}

/* Reads the child's report, waiting at most CHECK_WAIT_MS in all. */
static bool read_result(int rfd, check_result *r)
{
  size_t got = 0;
  struct timespec t0, now;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  while (got < sizeof(*r)) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    long waited = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
    struct pollfd pfd = {.fd = rfd, .events = POLLIN};
    int rc = waited >= CHECK_WAIT_MS ? 0 : poll(&pfd, 1, (int)(CHECK_WAIT_MS - waited));
    if (rc < 0 && errno == EINTR)
      continue;
    if (rc <= 0)
      return false;
    ssize_t n = read(rfd, (char *)r + got, sizeof(*r) - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    got += (size_t)n;
  }
  return true;
}

bool certpair_check(const certpair *p, int64_t *not_after, bool *have_not_after, char *err,
                    size_t errlen)
{
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) {
    snprintf(err, errlen, "cannot check the certificate: pipe: %s", strerror(errno));
    return false;
  }
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    check_child(p, fds[1]);
  }
  close(fds[1]);
  if (pid < 0) {
    snprintf(err, errlen, "cannot check the certificate: fork: %s", strerror(errno));
    close(fds[0]);
    return false;
  }
  check_result r;
  bool got = read_result(fds[0], &r);
  close(fds[0]);
  if (!got)
    kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (!got) {
    snprintf(err, errlen, "the certificate check process %s",
             WIFSIGNALED(status) ? "died" : "did not answer");
    return false;
  }
  r.err[sizeof(r.err) - 1] = '\0';
  if (!r.ok) {
    snprintf(err, errlen, "%s", r.err);
    return false;
  }
  *have_not_after = r.have_not_after != 0;
  *not_after = r.not_after;
  return true;
}
