/* Unit tests for src/proto/wire: bounds-checked big-endian reader/writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/wire.h"

static const uint8_t seq[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                              0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10};

/* ---- reader ------------------------------------------------------------- */

static void test_rd_big_endian(void **state)
{
  (void)state;
  wire_rd r;
  wire_rd_init(&r, seq, sizeof(seq));
  assert_true(wire_rd_ok(&r));
  assert_int_equal(wire_rd_left(&r), 16);
  assert_int_equal(wire_get_u8(&r), 0x01);
  assert_int_equal(wire_get_u16(&r), 0x0203);
  assert_int_equal(wire_get_u8(&r), 0x04);
  assert_int_equal(wire_get_u32(&r), 0x05060708u);
  assert_int_equal(wire_rd_pos(&r), 8);
  assert_true(wire_get_u64(&r) == 0x090a0b0c0d0e0f10ULL);
  assert_int_equal(wire_rd_left(&r), 0);
  assert_int_equal(wire_rd_pos(&r), 16);
  assert_true(wire_rd_ok(&r));
}

static void test_rd_high_bits(void **state)
{
  (void)state;
  /* Values with the top bit set must not sign-extend. */
  static const uint8_t ff[] = {0xff, 0xfe, 0x80, 0x00, 0x00, 0x01, 0xff, 0xff,
                               0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  wire_rd r;
  wire_rd_init(&r, ff, sizeof(ff));
  assert_int_equal(wire_get_u16(&r), 0xfffe);
  assert_int_equal(wire_get_u32(&r), 0x80000001u);
  assert_true(wire_get_u64(&r) == 0xffffffffffffffffULL);
  assert_int_equal(wire_get_u8(&r), 0xff);
  assert_true(wire_rd_ok(&r));
  assert_int_equal(wire_rd_left(&r), 0);
}

static void test_rd_past_end_sticky(void **state)
{
  (void)state;
  wire_rd r;
  wire_rd_init(&r, seq, 3);
  assert_int_equal(wire_get_u16(&r), 0x0102);
  /* Two bytes wanted, one left: error, returns 0, position unchanged. */
  assert_int_equal(wire_get_u16(&r), 0);
  assert_false(wire_rd_ok(&r));
  assert_int_equal(wire_rd_pos(&r), 2);
  assert_int_equal(wire_rd_left(&r), 0);
  /* Sticky: even a read that would fit now fails. */
  assert_int_equal(wire_get_u8(&r), 0);
  assert_int_equal(wire_get_u32(&r), 0);
  assert_true(wire_get_u64(&r) == 0);
  assert_false(wire_skip(&r, 0));
  assert_null(wire_get_span(&r, 0));
  assert_false(wire_rd_ok(&r));
}

static void test_rd_each_width_past_end(void **state)
{
  (void)state;
  static const uint8_t ones[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  wire_rd r;

  wire_rd_init(&r, ones, 0);
  assert_int_equal(wire_get_u8(&r), 0);
  assert_false(wire_rd_ok(&r));

  wire_rd_init(&r, ones, 1);
  assert_int_equal(wire_get_u16(&r), 0);
  assert_false(wire_rd_ok(&r));

  wire_rd_init(&r, ones, 3);
  assert_int_equal(wire_get_u32(&r), 0);
  assert_false(wire_rd_ok(&r));

  /* u64 with only the high half available: no partial value leaks out. */
  wire_rd_init(&r, ones, 7);
  assert_true(wire_get_u64(&r) == 0);
  assert_false(wire_rd_ok(&r));

  wire_rd_init(&r, ones, 4);
  assert_true(wire_get_u64(&r) == 0);
  assert_false(wire_rd_ok(&r));
}

static void test_rd_null_buffer(void **state)
{
  (void)state;
  wire_rd r;
  /* A NULL buffer is treated as empty whatever the length says. */
  wire_rd_init(&r, NULL, 100);
  assert_int_equal(wire_rd_left(&r), 0);
  assert_int_equal(wire_get_u8(&r), 0);
  assert_false(wire_rd_ok(&r));

  /* Zero-length operations on an empty (NULL) buffer succeed without
   * pointer arithmetic on NULL (the _san build would flag it). */
  wire_rd_init(&r, NULL, 0);
  assert_true(wire_skip(&r, 0));
  assert_true(wire_get_bytes(&r, NULL, 0));
  assert_non_null(wire_get_span(&r, 0));
  wire_rd sub = wire_get_sub(&r, 0);
  assert_true(wire_rd_ok(&sub));
  assert_true(wire_rd_ok(&r));
  assert_int_equal(wire_rd_left(&r), 0);
  assert_false(wire_skip(&r, 1));
  assert_false(wire_rd_ok(&r));
}

static void test_rd_bytes(void **state)
{
  (void)state;
  wire_rd r;
  uint8_t out[8];
  wire_rd_init(&r, seq, sizeof(seq));
  memset(out, 0xaa, sizeof(out));
  assert_true(wire_get_bytes(&r, out, 4));
  assert_memory_equal(out, seq, 4);
  assert_int_equal(out[4], 0xaa);
  /* NULL out skips. */
  assert_true(wire_get_bytes(&r, NULL, 4));
  assert_int_equal(wire_rd_pos(&r), 8);
  /* Zero-length copy is fine and does not move. */
  assert_true(wire_get_bytes(&r, out, 0));
  assert_int_equal(wire_rd_pos(&r), 8);
  /* Too many: fails, leaves out untouched, error is sticky. */
  memset(out, 0x55, sizeof(out));
  uint8_t big[16];
  memset(big, 0x55, sizeof(big));
  assert_false(wire_get_bytes(&r, big, 9));
  for (size_t i = 0; i < sizeof(big); i++)
    assert_int_equal(big[i], 0x55);
  assert_false(wire_rd_ok(&r));
  assert_false(wire_get_bytes(&r, out, 1));
}

static void test_rd_skip(void **state)
{
  (void)state;
  wire_rd r;
  wire_rd_init(&r, seq, sizeof(seq));
  assert_true(wire_skip(&r, 15));
  assert_int_equal(wire_get_u8(&r), 0x10);
  assert_true(wire_skip(&r, 0));
  assert_false(wire_skip(&r, 1));
  assert_false(wire_rd_ok(&r));

  /* A huge skip must not wrap the position. */
  wire_rd_init(&r, seq, sizeof(seq));
  assert_true(wire_skip(&r, 1));
  assert_false(wire_skip(&r, SIZE_MAX));
  assert_int_equal(wire_rd_pos(&r), 1);
  assert_int_equal(wire_rd_left(&r), 0);
}

static void test_rd_span(void **state)
{
  (void)state;
  wire_rd r;
  wire_rd_init(&r, seq, sizeof(seq));
  assert_int_equal(wire_get_u16(&r), 0x0102);
  const uint8_t *p = wire_get_span(&r, 4);
  /* A span borrows the caller's buffer (no copy). */
  assert_ptr_equal(p, seq + 2);
  assert_int_equal(wire_rd_pos(&r), 6);
  const uint8_t *rest = wire_get_span(&r, 10);
  assert_ptr_equal(rest, seq + 6);
  assert_int_equal(wire_rd_left(&r), 0);
  assert_true(wire_rd_ok(&r));
  /* Past the end: NULL and error. */
  assert_null(wire_get_span(&r, 1));
  assert_false(wire_rd_ok(&r));

  wire_rd_init(&r, seq, 4);
  assert_null(wire_get_span(&r, 5));
  assert_false(wire_rd_ok(&r));
  assert_int_equal(wire_rd_pos(&r), 0);
  assert_null(wire_get_span(&r, (size_t)-1));
}

static void test_rd_sub(void **state)
{
  (void)state;
  wire_rd r;
  wire_rd_init(&r, seq, sizeof(seq));
  assert_int_equal(wire_get_u8(&r), 0x01);
  wire_rd sub = wire_get_sub(&r, 4);
  /* Parent advanced past the sub-range. */
  assert_int_equal(wire_rd_pos(&r), 5);
  assert_int_equal(wire_get_u8(&r), 0x06);
  assert_true(wire_rd_ok(&sub));
  assert_int_equal(wire_rd_left(&sub), 4);
  assert_int_equal(wire_rd_pos(&sub), 0);
  assert_int_equal(wire_get_u32(&sub), 0x02030405u);
  /* The sub-reader is bounded by its own length, not the parent's. */
  assert_int_equal(wire_get_u8(&sub), 0);
  assert_false(wire_rd_ok(&sub));
  /* An error in the sub-reader does not touch the parent. */
  assert_true(wire_rd_ok(&r));
  assert_int_equal(wire_get_u8(&r), 0x07);
}

static void test_rd_sub_past_end(void **state)
{
  (void)state;
  wire_rd r;
  wire_rd_init(&r, seq, 6);
  assert_int_equal(wire_get_u16(&r), 0x0102);
  wire_rd sub = wire_get_sub(&r, 5);
  assert_false(wire_rd_ok(&sub));
  assert_int_equal(wire_rd_left(&sub), 0);
  assert_int_equal(wire_get_u8(&sub), 0);
  assert_false(wire_rd_ok(&r));
  /* From a reader already in error, the sub-reader is in error too. */
  wire_rd sub2 = wire_get_sub(&r, 0);
  assert_false(wire_rd_ok(&sub2));
}

static void test_rd_sub_empty(void **state)
{
  (void)state;
  wire_rd r;
  wire_rd_init(&r, seq, 4);
  wire_rd sub = wire_get_sub(&r, 0);
  assert_true(wire_rd_ok(&sub));
  assert_int_equal(wire_rd_left(&sub), 0);
  assert_int_equal(wire_get_u8(&sub), 0);
  assert_false(wire_rd_ok(&sub));
  assert_int_equal(wire_rd_pos(&r), 0);

  /* Nested sub-readers. */
  wire_rd outer = wire_get_sub(&r, 4);
  wire_rd inner = wire_get_sub(&outer, 2);
  assert_int_equal(wire_get_u16(&inner), 0x0102);
  assert_int_equal(wire_get_u16(&outer), 0x0304);
  assert_true(wire_rd_ok(&outer));
  assert_false(wire_skip(&inner, 1));
  assert_true(wire_rd_ok(&outer));
}

/* ---- writer ------------------------------------------------------------- */

static void test_wr_big_endian(void **state)
{
  (void)state;
  uint8_t buf[16];
  wire_wr w;
  memset(buf, 0xee, sizeof(buf));
  wire_wr_init(&w, buf, sizeof(buf));
  assert_true(wire_wr_ok(&w));
  assert_int_equal(wire_wr_len(&w), 0);
  wire_put_u8(&w, 0x01);
  wire_put_u16(&w, 0x0203);
  wire_put_u8(&w, 0x04);
  wire_put_u32(&w, 0x05060708u);
  wire_put_u64(&w, 0x090a0b0c0d0e0f10ULL);
  assert_true(wire_wr_ok(&w));
  assert_int_equal(wire_wr_len(&w), 16);
  assert_memory_equal(buf, seq, 16);
}

static void test_wr_past_cap(void **state)
{
  (void)state;
  uint8_t buf[8];
  wire_wr w;
  memset(buf, 0xee, sizeof(buf));
  wire_wr_init(&w, buf, 6);
  wire_put_u32(&w, 0x11223344u);
  assert_true(wire_wr_ok(&w));
  /* 4 more bytes do not fit in the 2 left: error, nothing written. */
  wire_put_u32(&w, 0x55667788u);
  assert_false(wire_wr_ok(&w));
  assert_int_equal(wire_wr_len(&w), 4);
  assert_int_equal(buf[4], 0xee);
  assert_int_equal(buf[5], 0xee);
  /* Sticky: a write that would fit is refused too. */
  wire_put_u8(&w, 0x99);
  assert_int_equal(buf[4], 0xee);
  assert_int_equal(wire_wr_len(&w), 4);
  assert_false(wire_wr_ok(&w));
  /* Never beyond the cap. */
  assert_int_equal(buf[6], 0xee);
  assert_int_equal(buf[7], 0xee);
}

static void test_wr_each_width_past_cap(void **state)
{
  (void)state;
  uint8_t buf[8];
  wire_wr w;

  wire_wr_init(&w, buf, 0);
  wire_put_u8(&w, 1);
  assert_false(wire_wr_ok(&w));

  wire_wr_init(&w, buf, 1);
  wire_put_u16(&w, 1);
  assert_false(wire_wr_ok(&w));
  assert_int_equal(wire_wr_len(&w), 0);

  wire_wr_init(&w, buf, 3);
  wire_put_u32(&w, 1);
  assert_false(wire_wr_ok(&w));

  /* u64 into 7 bytes: fails (the high half may land, the length says 4). */
  wire_wr_init(&w, buf, 7);
  wire_put_u64(&w, 1);
  assert_false(wire_wr_ok(&w));
  assert_true(wire_wr_len(&w) <= 7);

  wire_wr_init(&w, NULL, 100);
  wire_put_u8(&w, 1);
  assert_false(wire_wr_ok(&w));
  assert_int_equal(wire_wr_len(&w), 0);

  /* Zero-length writes into an empty (NULL) buffer are fine. */
  wire_wr_init(&w, NULL, 0);
  wire_put_zeros(&w, 0);
  wire_put_bytes(&w, NULL, 0);
  assert_non_null(wire_reserve(&w, 0));
  assert_true(wire_wr_ok(&w));
  assert_int_equal(wire_wr_len(&w), 0);
}

static void test_wr_bytes_zeros(void **state)
{
  (void)state;
  uint8_t buf[12];
  wire_wr w;
  memset(buf, 0xee, sizeof(buf));
  wire_wr_init(&w, buf, 10);
  wire_put_bytes(&w, seq, 3);
  wire_put_zeros(&w, 4);
  wire_put_bytes(&w, seq, 0);
  wire_put_zeros(&w, 0);
  assert_true(wire_wr_ok(&w));
  assert_int_equal(wire_wr_len(&w), 7);
  static const uint8_t want[] = {1, 2, 3, 0, 0, 0, 0, 0xee};
  assert_memory_equal(buf, want, sizeof(want));
  wire_put_bytes(&w, seq, 4);
  assert_false(wire_wr_ok(&w));
  assert_int_equal(buf[7], 0xee);

  wire_wr_init(&w, buf, 10);
  wire_put_zeros(&w, 11);
  assert_false(wire_wr_ok(&w));
  assert_int_equal(wire_wr_len(&w), 0);
  wire_wr_init(&w, buf, 10);
  wire_put_u8(&w, 1);
  wire_put_zeros(&w, SIZE_MAX);
  assert_false(wire_wr_ok(&w));
  assert_int_equal(wire_wr_len(&w), 1);
}

static void test_wr_reserve(void **state)
{
  (void)state;
  uint8_t buf[8];
  wire_wr w;
  memset(buf, 0, sizeof(buf));
  wire_wr_init(&w, buf, sizeof(buf));
  wire_put_u16(&w, 0xabcd);
  uint8_t *len_field = wire_reserve(&w, 2);
  assert_ptr_equal(len_field, buf + 2);
  wire_put_u32(&w, 0x01020304u);
  /* Fill the reserved bytes afterwards (length-prefix pattern). */
  len_field[0] = 0x00;
  len_field[1] = 0x08;
  assert_int_equal(wire_wr_len(&w), 8);
  static const uint8_t want[] = {0xab, 0xcd, 0x00, 0x08, 1, 2, 3, 4};
  assert_memory_equal(buf, want, 8);
  assert_null(wire_reserve(&w, 1));
  assert_false(wire_wr_ok(&w));
  assert_null(wire_reserve(&w, 0));
}

static void test_roundtrip(void **state)
{
  (void)state;
  uint8_t buf[15];
  wire_wr w;
  wire_wr_init(&w, buf, sizeof(buf));
  wire_put_u8(&w, 0xfe);
  wire_put_u16(&w, 0x8001);
  wire_put_u32(&w, 0xdeadbeefu);
  wire_put_u64(&w, 0x8000000000000001ULL);
  assert_true(wire_wr_ok(&w));
  assert_int_equal(wire_wr_len(&w), 15);

  wire_rd r;
  wire_rd_init(&r, buf, wire_wr_len(&w));
  assert_int_equal(wire_get_u8(&r), 0xfe);
  assert_int_equal(wire_get_u16(&r), 0x8001);
  assert_int_equal(wire_get_u32(&r), 0xdeadbeefu);
  assert_true(wire_get_u64(&r) == 0x8000000000000001ULL);
  assert_true(wire_rd_ok(&r));
  assert_int_equal(wire_rd_left(&r), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rd_big_endian),
      cmocka_unit_test(test_rd_high_bits),
      cmocka_unit_test(test_rd_past_end_sticky),
      cmocka_unit_test(test_rd_each_width_past_end),
      cmocka_unit_test(test_rd_null_buffer),
      cmocka_unit_test(test_rd_bytes),
      cmocka_unit_test(test_rd_skip),
      cmocka_unit_test(test_rd_span),
      cmocka_unit_test(test_rd_sub),
      cmocka_unit_test(test_rd_sub_past_end),
      cmocka_unit_test(test_rd_sub_empty),
      cmocka_unit_test(test_wr_big_endian),
      cmocka_unit_test(test_wr_past_cap),
      cmocka_unit_test(test_wr_each_width_past_cap),
      cmocka_unit_test(test_wr_bytes_zeros),
      cmocka_unit_test(test_wr_reserve),
      cmocka_unit_test(test_roundtrip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
