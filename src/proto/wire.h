/* wire: bounds-checked big-endian reader and writer with a sticky error.
 *
 * Every wire format in ntsd is read through a wire_rd and written through a
 * wire_wr.  Once a read or write would cross the end of the buffer the cursor
 * goes into error and every later call is a no-op returning zeros, so parsers
 * can read a whole structure and check wire_*_ok() once.  No pointer casts
 * onto packet bytes anywhere. */
#ifndef NTSD_PROTO_WIRE_H
#define NTSD_PROTO_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Small value types: the caller keeps them on the stack. */
typedef struct wire_rd {
  const uint8_t *buf;
  size_t len;
  size_t pos;
  bool err;
} wire_rd;

typedef struct wire_wr {
  uint8_t *buf;
  size_t cap;
  size_t pos;
  bool err;
} wire_wr;

void wire_rd_init(wire_rd *r, const uint8_t *buf, size_t len);
bool wire_rd_ok(const wire_rd *r);
size_t wire_rd_left(const wire_rd *r);
size_t wire_rd_pos(const wire_rd *r);
uint8_t wire_get_u8(wire_rd *r);
uint16_t wire_get_u16(wire_rd *r);
uint32_t wire_get_u32(wire_rd *r);
uint64_t wire_get_u64(wire_rd *r);
/* Copy n bytes out (out may be NULL to skip them). */
bool wire_get_bytes(wire_rd *r, uint8_t *out, size_t n);
/* Borrow a pointer to the next n bytes and advance; NULL on error. */
const uint8_t *wire_get_span(wire_rd *r, size_t n);
bool wire_skip(wire_rd *r, size_t n);
/* A sub-reader over the next n bytes (advances r past them). */
wire_rd wire_get_sub(wire_rd *r, size_t n);

void wire_wr_init(wire_wr *w, uint8_t *buf, size_t cap);
bool wire_wr_ok(const wire_wr *w);
size_t wire_wr_len(const wire_wr *w);
void wire_put_u8(wire_wr *w, uint8_t v);
void wire_put_u16(wire_wr *w, uint16_t v);
void wire_put_u32(wire_wr *w, uint32_t v);
void wire_put_u64(wire_wr *w, uint64_t v);
void wire_put_bytes(wire_wr *w, const uint8_t *src, size_t n);
void wire_put_zeros(wire_wr *w, size_t n);
/* Reserve n bytes to be filled later; NULL on error. */
uint8_t *wire_reserve(wire_wr *w, size_t n);

#endif
