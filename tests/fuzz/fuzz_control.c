/* libFuzzer target: control socket request parser. */
#include <stddef.h>
#include <stdint.h>

#include "daemon/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  ctl_cmd cmd;
  bool json;
  char err[128];
  control_parse_request((const char *)data, size, &cmd, &json, err, sizeof(err));
  return 0;
}
