/* libFuzzer target: drift file parser. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "daemon/driftfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  double v;
  if (driftfile_parse((const char *)data, size, &v) && !(fabs(v) <= DRIFT_MAX_PPM))
    abort(); /* accepted values are always in range */
  return 0;
}
