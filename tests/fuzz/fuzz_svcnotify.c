/* libFuzzer target: NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID as a
 * service manager (or anyone who starts the daemon) may set them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/svcnotify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  /* Three NUL-terminated strings cut from the input at its first two NULs. */
  char *buf = malloc(size + 3);
  if (!buf)
    return 0;
  memcpy(buf, data, size);
  memset(buf + size, 0, 3);
  const char *sock = buf;
  const char *usec = sock + strlen(sock) + 1;
  const char *pid = usec + strlen(usec) + 1;
  svcnotify_addr a;
  if (svcnotify_parse_socket(sock, &a) == SVCNOTIFY_OK &&
      (a.len == 0 || a.len > SVCNOTIFY_PATH_MAX || (a.path[0] != '/' && a.path[0] != '\0') ||
       memcmp(a.path + 1, sock + 1, a.len - 1) != 0))
    abort();
  uint64_t v;
  svcnotify_status st = svcnotify_parse_watchdog(usec, pid, 4242, &v);
  if ((st == SVCNOTIFY_OK) != (v != 0))
    abort();
  free(buf);
  return 0;
}
