/* ntsctl: query a running ntsd over its control socket, or run one NTS-KE
 * exchange with any server as a diagnostic (`ntsctl ke`, tools/ntsctl_ke). */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "daemon/control.h"
#include "tools/ntsctl_ke.h"

#define REPLY_TIMEOUT_MS 5000
#define REPLY_MAX (16u << 20)

static void usage(FILE *f)
{
  fprintf(f,
          "usage: ntsctl [-s SOCKET] [-n] COMMAND [--json]\n"
          "       ntsctl ke HOST[:PORT] [--ca FILE] [--pin sha256:BASE64] [--aead N]\n"
          "                 [--export] [--proxy socks5://...] [--timeout S] [--json]\n"
          "\n"
          "commands:\n"
          "  peers     associations, like `ntpq -p` (t: u = plain NTP, N = NTS cookies held),\n"
          "            by configured name (-n: by address and port; never a reverse lookup)\n"
          "  server    NTP server counters (requests, responses, drops by reason)\n"
          "  sys       system variables (synchronisation, stratum, refid, offset)\n"
          "  nts       NTS counters, like `ntpq -c nts` (NTS-KE served and probed, cookies)\n"
          "  ke        one NTS-KE with HOST (port 4460), as a diagnostic; needs no ntsd:\n"
          "            TLS, certificates (expiry, pin), AEAD, cookies, NTP server and port\n"
          "\n"
          "  -s, --socket PATH  control socket (default " CONTROL_DEFAULT_SOCKET ")\n"
          "  -j, --json         machine-readable output\n"
          "  -n, --numeric      addresses instead of names (peers)\n"
          "  -h, --help         this text\n"
          "\n"
          "ke options:\n"
          "  --ca FILE          trust this CA file or directory (default: the system store)\n"
          "  --pin sha256:B64   the server's public key pin (alone: no CA check)\n"
          "  --aead N           offer only this AEAD (15, 17; repeatable, in preference order)\n"
          "  --export           also print the C2S/S2C keys and a cookie (for `ntpperf -S`)\n"
          "  --proxy URL        through a SOCKS5 proxy (HOST goes to it unresolved)\n"
          "  --timeout S        give up after S seconds (default 10)\n"
          "ke exit status: 0 ok, 2 usage, 3 cannot connect, 4 TLS or certificate,\n"
          "  5 NTS-KE protocol (Error or Warning record, bad response), 1 other\n");
}

static int connect_socket(const char *path)
{
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof(sun.sun_path)) {
    fprintf(stderr, "ntsctl: socket path too long\n");
    return -1;
  }
  strcpy(sun.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
    fprintf(stderr, "ntsctl: cannot connect to %s: %s (is ntsd running?)\n", path,
            strerror(errno));
    if (fd >= 0)
      close(fd);
    return -1;
  }
  return fd;
}

static bool write_all(int fd, const char *s, size_t n)
{
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    s += w;
    n -= (size_t)w;
  }
  return true;
}

/* Copies the reply to stdout; returns 0, or 1 if it was an error reply. */
static int relay_reply(int fd)
{
  char buf[4096];
  size_t total = 0;
  bool first = true, is_error = false;
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, REPLY_TIMEOUT_MS);
    if (r == 0) {
      fprintf(stderr, "ntsctl: no reply from ntsd within %d s\n", REPLY_TIMEOUT_MS / 1000);
      return 1;
    }
    if (r < 0 && errno == EINTR)
      continue;
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    if (first) {
      is_error = (strncmp(buf, "error:", (size_t)n < 6 ? (size_t)n : 6) == 0) ||
                 ((size_t)n >= 9 && strncmp(buf, "{\"error\":", 9) == 0);
      first = false;
    }
    total += (size_t)n;
    if (total > REPLY_MAX) {
      fprintf(stderr, "ntsctl: reply too large\n");
      return 1;
    }
    fwrite(buf, 1, (size_t)n, is_error ? stderr : stdout);
  }
  if (first) {
    fprintf(stderr, "ntsctl: empty reply from ntsd\n");
    return 1;
  }
  return is_error ? 1 : 0;
}

static int ke_main(int argc, char **argv, bool json)
{
  ntsctl_ke_opts o;
  char err[200];
  if (!ntsctl_ke_parse(argc, argv, &o, err, sizeof(err))) {
    fprintf(stderr, "ntsctl: ke: %s (see ntsctl --help)\n", err);
    return NTSCTL_KE_EXIT_USAGE;
  }
  o.json |= json;
  return ntsctl_ke_run(&o);
}

int main(int argc, char **argv)
{
  const char *path = CONTROL_DEFAULT_SOCKET;
  const char *cmd = NULL;
  bool json = false, numeric = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if ((strcmp(a, "-s") == 0 || strcmp(a, "--socket") == 0) && i + 1 < argc) {
      path = argv[++i];
    } else if (strcmp(a, "--json") == 0 || strcmp(a, "-j") == 0) {
      json = true;
    } else if (strcmp(a, "--numeric") == 0 || strcmp(a, "-n") == 0) {
      numeric = true;
    } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "ke") == 0 && !cmd) {
      return ke_main(argc - i - 1, argv + i + 1, json);
    } else if (a[0] != '-' && !cmd) {
      cmd = a;
    } else {
      fprintf(stderr, "ntsctl: unexpected argument '%s'\n", a);
      usage(stderr);
      return 2;
    }
  }
  if (!cmd) {
    usage(stderr);
    return 2;
  }
  char req[CONTROL_MAX_REQUEST];
  int n = snprintf(req, sizeof(req), "%s%s%s\n", cmd, json ? " json" : "",
                   numeric ? " numeric" : "");
  if (n < 0 || (size_t)n >= sizeof(req)) {
    fprintf(stderr, "ntsctl: command too long\n");
    return 2;
  }
  int fd = connect_socket(path);
  if (fd < 0)
    return 1;
  if (!write_all(fd, req, (size_t)n)) {
    fprintf(stderr, "ntsctl: write: %s\n", strerror(errno));
    close(fd);
    return 1;
  }
  shutdown(fd, SHUT_WR);
  int rc = relay_reply(fd);
  close(fd);
  return rc;
}
