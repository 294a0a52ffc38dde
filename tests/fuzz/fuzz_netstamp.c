/* libFuzzer target: control messages (kernel timestamps, packet info) as
 * the client and the server read them. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/netstamp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  /* Exactly as long as the input, so reading past it is caught. */
  struct cmsghdr *buf = malloc(size ? size : 1);
  if (!buf)
    return 0;
  memcpy(buf, data, size);
  struct msghdr mh = {.msg_control = buf, .msg_controllen = size};
  netstamp ns;
  netstamp_parse(&mh, &ns);
  /* What was found was in the input, and nothing else was made up. */
  if ((ns.have_rx && !memmem(data, size, &ns.rx, sizeof(ns.rx))) ||
      (ns.have_tx && !memmem(data, size, &ns.tx, sizeof(ns.tx))) ||
      (ns.have_dst != 0 && ns.have_dst != 4 && ns.have_dst != 6))
    abort();
  free(buf);
  return 0;
}
