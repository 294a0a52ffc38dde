/* wire: bounds-checked big-endian reader and writer. */
#include "proto/wire.h"

#include <string.h>

/* A NULL buffer stands for an empty one; point at a real (never accessed)
 * byte instead so zero-length operations do no arithmetic on NULL and
 * succeed like on any other empty buffer. */
static uint8_t empty_buf[1];

void wire_rd_init(wire_rd *r, const uint8_t *buf, size_t len)
{
  r->buf = buf ? buf : empty_buf;
  r->len = buf ? len : 0;
  r->pos = 0;
  r->err = false;
}

bool wire_rd_ok(const wire_rd *r) { return !r->err; }
size_t wire_rd_left(const wire_rd *r) { return r->err ? 0 : r->len - r->pos; }
size_t wire_rd_pos(const wire_rd *r) { return r->pos; }

/* Returns a pointer to n readable bytes and advances, or NULL (sticky). */
static const uint8_t *take(wire_rd *r, size_t n)
{
  if (r->err || n > r->len - r->pos) {
    r->err = true;
    return NULL;
  }
  const uint8_t *p = r->buf + r->pos;
  r->pos += n;
  return p;
}

uint8_t wire_get_u8(wire_rd *r)
{
  const uint8_t *p = take(r, 1);
  return p ? p[0] : 0;
}

uint16_t wire_get_u16(wire_rd *r)
{
  const uint8_t *p = take(r, 2);
  return p ? (uint16_t)((p[0] << 8) | p[1]) : 0;
}

uint32_t wire_get_u32(wire_rd *r)
{
  const uint8_t *p = take(r, 4);
  if (!p)
    return 0;
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

uint64_t wire_get_u64(wire_rd *r)
{
  uint64_t hi = wire_get_u32(r);
  uint64_t lo = wire_get_u32(r);
  return r->err ? 0 : (hi << 32) | lo;
}

bool wire_get_bytes(wire_rd *r, uint8_t *out, size_t n)
{
  const uint8_t *p = take(r, n);
  if (!p)
    return false;
  if (out && n)
    memcpy(out, p, n);
  return true;
}

const uint8_t *wire_get_span(wire_rd *r, size_t n) { return take(r, n); }

bool wire_skip(wire_rd *r, size_t n) { return take(r, n) != NULL; }

wire_rd wire_get_sub(wire_rd *r, size_t n)
{
  wire_rd sub;
  const uint8_t *p = take(r, n);
  wire_rd_init(&sub, p, p ? n : 0);
  sub.err = (p == NULL);
  return sub;
}

void wire_wr_init(wire_wr *w, uint8_t *buf, size_t cap)
{
  w->buf = buf ? buf : empty_buf;
  w->cap = buf ? cap : 0;
  w->pos = 0;
  w->err = false;
}

bool wire_wr_ok(const wire_wr *w) { return !w->err; }
size_t wire_wr_len(const wire_wr *w) { return w->pos; }

uint8_t *wire_reserve(wire_wr *w, size_t n)
{
  if (w->err || n > w->cap - w->pos) {
    w->err = true;
    return NULL;
  }
  uint8_t *p = w->buf + w->pos;
  w->pos += n;
  return p;
}

void wire_put_u8(wire_wr *w, uint8_t v)
{
  uint8_t *p = wire_reserve(w, 1);
  if (p)
    p[0] = v;
}

void wire_put_u16(wire_wr *w, uint16_t v)
{
  uint8_t *p = wire_reserve(w, 2);
  if (p) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
  }
}

void wire_put_u32(wire_wr *w, uint32_t v)
{
  uint8_t *p = wire_reserve(w, 4);
  if (p) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
  }
}

void wire_put_u64(wire_wr *w, uint64_t v)
{
  wire_put_u32(w, (uint32_t)(v >> 32));
  wire_put_u32(w, (uint32_t)v);
}

void wire_put_bytes(wire_wr *w, const uint8_t *src, size_t n)
{
  uint8_t *p = wire_reserve(w, n);
  if (p && n)
    memcpy(p, src, n);
}

void wire_put_zeros(wire_wr *w, size_t n)
{
  uint8_t *p = wire_reserve(w, n);
  if (p && n)
    memset(p, 0, n);
}
