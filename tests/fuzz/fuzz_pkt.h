/* A packet the NTS fuzz targets build by hand, field by field: an NTP
 * header and extension fields, including malformed ones the project's own
 * builders would refuse to write. */
#ifndef NTSD_TESTS_FUZZ_PKT_H
#define NTSD_TESTS_FUZZ_PKT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PAD4(n) (((size_t)(n) + 3) & ~(size_t)3)

typedef struct pkt {
  uint8_t b[4096]; /* up to 900 fuzz bytes and 8 cookies of 168, or 2 datagrams */
  size_t len;
} pkt;

/* Appends an extension field: type, length (4 + body zero-padded to 4). */
static inline void put_ef(pkt *p, uint16_t type, const uint8_t *body, size_t n)
{
  size_t flen = 4 + PAD4(n);
  p->b[p->len] = (uint8_t)(type >> 8);
  p->b[p->len + 1] = (uint8_t)type;
  p->b[p->len + 2] = (uint8_t)(flen >> 8);
  p->b[p->len + 3] = (uint8_t)flen;
  memset(p->b + p->len + 4, 0, flen - 4);
  if (n)
    memcpy(p->b + p->len + 4, body, n);
  p->len += flen;
}

#endif
