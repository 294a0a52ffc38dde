/* libFuzzer target: the arguments of `ntsctl ke` (the input split at NUL
 * bytes into argv) and the expiry spans it prints.  Whatever the input,
 * a parse that succeeds leaves a usable set of options. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/aead.h"
#include "tools/ntsctl_ke.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size > 4096)
    return 0;
  char *buf = malloc(size + 1);
  if (!buf)
    return 0;
  memcpy(buf, data, size);
  buf[size] = '\0';
  char *argv[MAX_ARGS];
  int argc = 0;
  for (size_t i = 0; i <= size && argc < MAX_ARGS; i += strlen(buf + i) + 1)
    argv[argc++] = buf + i;
  ntsctl_ke_opts o;
  char err[200];
  if (ntsctl_ke_parse(argc, argv, &o, err, sizeof(err))) {
    if (!o.host[0] || o.port == 0 || o.n_aeads == 0 || o.n_aeads > NTSCTL_KE_MAX_AEADS ||
        o.pins.n > KE_PINS_MAX || !(o.timeout > 0 && o.timeout <= 300) ||
        (o.pins.chain && (!o.pins.n || !o.ca)))
      abort();
    for (size_t i = 0; i < o.n_aeads; i++)
      if (!nts_aead_supported(o.aeads[i]))
        abort();
  } else if (!memchr(err, '\0', sizeof(err)) || !err[0]) {
    abort();
  }
  int64_t s = 0;
  memcpy(&s, data, size < sizeof(s) ? size : sizeof(s));
  char span[48];
  ntsctl_ke_span(s, span, sizeof(span));
  if (!(span[0] == '-' || (span[0] >= '0' && span[0] <= '9')))
    abort();
  free(buf);
  return 0;
}
