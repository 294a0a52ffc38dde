/* svcnotify: the environment of systemd's notification protocol. */
#include "proto/svcnotify.h"

#include <string.h>

svcnotify_status svcnotify_parse_socket(const char *value, svcnotify_addr *out)
{
  memset(out, 0, sizeof(*out));
  if (!value || !*value)
    return SVCNOTIFY_UNSET;
  if (value[0] != '/' && value[0] != '@')
    return SVCNOTIFY_UNSUPPORTED;
  size_t n = strlen(value);
  /* A path keeps room for its terminating NUL (the kernel reads sun_path
   * as a string); an abstract name is counted by the address length. */
  if (n >= SVCNOTIFY_PATH_MAX + (value[0] == '@'))
    return SVCNOTIFY_TOO_LONG;
  if (n == 1 && value[0] == '@')
    return SVCNOTIFY_INVALID;
  memcpy(out->path, value, n);
  if (out->path[0] == '@')
    out->path[0] = '\0';
  out->len = n;
  return SVCNOTIFY_OK;
}

/* A decimal number, digits only, at most max and not zero. */
static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
  uint64_t v = 0;
  if (!*s)
    return false;
  for (; *s; s++) {
    if (*s < '0' || *s > '9')
      return false;
    unsigned d = (unsigned)(*s - '0');
    if (v > (max - d) / 10)
      return false;
    v = v * 10 + d;
  }
  *out = v;
  return v != 0;
}

svcnotify_status svcnotify_parse_watchdog(const char *usec_value, const char *pid_value,
                                          uint64_t self_pid, uint64_t *usec)
{
  *usec = 0;
  if (!usec_value || !*usec_value)
    return SVCNOTIFY_UNSET;
  uint64_t v, pid;
  if (!parse_u64(usec_value, UINT64_MAX - 1, &v))
    return SVCNOTIFY_INVALID;
  if (pid_value && *pid_value) {
    if (!parse_u64(pid_value, UINT32_MAX, &pid))
      return SVCNOTIFY_INVALID;
    if (pid != self_pid)
      return SVCNOTIFY_OTHER_PID;
  }
  *usec = v;
  return SVCNOTIFY_OK;
}

const char *svcnotify_status_str(svcnotify_status s)
{
  switch (s) {
  case SVCNOTIFY_OK: return "ok";
  case SVCNOTIFY_UNSET: return "not set";
  case SVCNOTIFY_UNSUPPORTED: return "not an absolute path or @abstract name";
  case SVCNOTIFY_TOO_LONG: return "longer than a socket address holds";
  case SVCNOTIFY_INVALID: return "not a positive decimal number in range";
  case SVCNOTIFY_OTHER_PID: return "meant for another process";
  }
  return "?";
}
