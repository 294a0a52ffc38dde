/* libFuzzer target: control socket request parser, and the error reply
 * built from its message (which quotes request words): the JSON form must
 * be one well-formed {"error":"..."} object whatever the request held. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether s is exactly {"error":"STRING"}\n with STRING a valid JSON string
 * body (escapes only, no raw quote or control byte). */
static int json_error_ok(const char *s)
{
  static const char head[] = "{\"error\":\"", tail[] = "\"}\n";
  size_t n = strlen(s);
  if (n < sizeof(head) - 1 + sizeof(tail) - 1 || memcmp(s, head, sizeof(head) - 1) != 0 ||
      strcmp(s + n - (sizeof(tail) - 1), tail) != 0)
    return 0;
  for (size_t i = sizeof(head) - 1; i < n - (sizeof(tail) - 1); i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c < 0x20)
      return 0;
    if (c == '\\') {
      char e = s[++i];
      if (e == 'u')
        i += 4;
      else if (!strchr("\"\\/bfnrt", e) || e == '\0')
        return 0;
    }
  }
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  ctl_cmd cmd;
  ctl_opts opts;
  char err[128];
  if (control_parse_request((const char *)data, size, &cmd, &opts, err, sizeof(err)))
    return 0;
  char *r = control_error_reply(err, true);
  if (r && !json_error_ok(r))
    abort();
  free(r);
  r = control_error_reply(err, false);
  if (r && (strncmp(r, "error: ", 7) != 0 || strchr(r, '\n') != r + strlen(r) - 1))
    abort();
  free(r);
  return 0;
}
