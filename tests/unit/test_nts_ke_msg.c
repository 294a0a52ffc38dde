/* Unit tests for src/proto/nts_ke_msg: NTS-KE records, framer, iterator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/nts_ke_msg.h"

/* Deterministic PRNG (splitmix64) so a failure replays. */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static size_t rng_below(size_t n) { return n ? (size_t)(rng_next() % n) : 0; }

typedef struct msg {
  uint8_t b[NTS_KE_MAX_MSG + 64];
  wire_wr w;
} msg;

static void msg_init(msg *m)
{
  memset(m->b, 0xee, sizeof(m->b));
  wire_wr_init(&m->w, m->b, sizeof(m->b));
}

static size_t msg_len(const msg *m) { return wire_wr_len(&m->w); }

/* A typical response: Next Protocol, AEAD, 8 cookies of 100 bytes, Server,
 * Port, End of Message (880-odd bytes). */
static void msg_response(msg *m)
{
  msg_init(m);
  uint8_t cookie[100];
  assert_true(nts_ke_put_u16(&m->w, true, NTS_KE_REC_NEXT_PROTO, NTS_KE_PROTO_NTPV4));
  assert_true(nts_ke_put_u16(&m->w, true, NTS_KE_REC_AEAD, NTS_KE_AEAD_AES_SIV_CMAC_256));
  for (int i = 0; i < 8; i++) {
    memset(cookie, 0x30 + i, sizeof(cookie));
    assert_true(
        nts_ke_put_record(&m->w, false, NTS_KE_REC_NEW_COOKIE, cookie, sizeof(cookie)));
  }
  assert_true(nts_ke_put_record(&m->w, true, NTS_KE_REC_SERVER, (const uint8_t *)"ntp.example",
                                11));
  assert_true(nts_ke_put_u16(&m->w, true, NTS_KE_REC_PORT, 1123));
  assert_true(nts_ke_put_eom(&m->w));
}

/* ---- names and writers -------------------------------------------------- */

static void test_names(void **state)
{
  (void)state;
  assert_string_equal(nts_ke_record_name(NTS_KE_REC_EOM), "end_of_message");
  assert_string_equal(nts_ke_record_name(NTS_KE_REC_NEXT_PROTO), "next_protocol");
  assert_string_equal(nts_ke_record_name(NTS_KE_REC_ERROR), "error");
  assert_string_equal(nts_ke_record_name(NTS_KE_REC_WARNING), "warning");
  assert_string_equal(nts_ke_record_name(NTS_KE_REC_AEAD), "aead");
  assert_string_equal(nts_ke_record_name(NTS_KE_REC_NEW_COOKIE), "new_cookie");
  assert_string_equal(nts_ke_record_name(NTS_KE_REC_SERVER), "server");
  assert_string_equal(nts_ke_record_name(NTS_KE_REC_PORT), "port");
  assert_string_equal(nts_ke_record_name(NTS_KE_REC_NTP_TCP_PORT), "ntp_tcp_port");
  assert_int_equal(NTS_KE_REC_NTP_TCP_PORT & 0xc000, 0x4000); /* private/experimental */
  assert_string_equal(nts_ke_record_name(NTS_KE_REC_AEAD | NTS_KE_CRITICAL), "aead");
  assert_string_equal(nts_ke_record_name(8), "unknown");
  assert_string_equal(nts_ke_record_name(0x7fff), "unknown");
  assert_string_equal(nts_ke_error_name(0), "unrecognized_critical_record");
  assert_string_equal(nts_ke_error_name(1), "bad_request");
  assert_string_equal(nts_ke_error_name(2), "internal_server_error");
  assert_string_equal(nts_ke_error_name(3), "unknown");
  assert_string_equal(nts_ke_aead_name(15), "AEAD_AES_SIV_CMAC_256");
  assert_string_equal(nts_ke_aead_name(16), "AEAD_AES_SIV_CMAC_384");
  assert_string_equal(nts_ke_aead_name(17), "AEAD_AES_SIV_CMAC_512");
  assert_string_equal(nts_ke_aead_name(30), "unknown");
  for (int s = 0; s < NTS_KE_FRAME_STATUS_COUNT; s++)
    assert_string_not_equal(nts_ke_frame_status_name((nts_ke_frame_status)s), "?");
  assert_string_equal(nts_ke_frame_status_name(NTS_KE_FRAME_STATUS_COUNT), "?");
}

static void test_put_record_bytes(void **state)
{
  (void)state;
  msg m;
  msg_init(&m);
  const uint8_t body[] = {'a', 'b', 'c'};
  assert_true(nts_ke_put_record(&m.w, true, NTS_KE_REC_SERVER, body, 3));
  assert_true(nts_ke_put_record(&m.w, false, 0x1234, NULL, 0));
  assert_true(nts_ke_put_eom(&m.w));
  const uint8_t want[] = {0x80, 0x06, 0x00, 0x03, 'a', 'b', 'c', 0x12, 0x34,
                          0x00, 0x00, 0x80, 0x00, 0x00, 0x00};
  assert_int_equal(msg_len(&m), sizeof(want));
  assert_memory_equal(m.b, want, sizeof(want));
}

static void test_put_u16_list_bytes(void **state)
{
  (void)state;
  msg m;
  msg_init(&m);
  const uint16_t ids[] = {17, 15, 0xabcd};
  assert_true(nts_ke_put_u16_list(&m.w, true, NTS_KE_REC_AEAD, ids, 3));
  assert_true(nts_ke_put_u16_list(&m.w, true, NTS_KE_REC_NEXT_PROTO, NULL, 0));
  assert_true(nts_ke_put_u16(&m.w, false, NTS_KE_REC_PORT, 4123));
  const uint8_t want[] = {0x80, 0x04, 0x00, 0x06, 0x00, 0x11, 0x00, 0x0f, 0xab, 0xcd,
                          0x80, 0x01, 0x00, 0x00, 0x00, 0x07, 0x00, 0x02, 0x10, 0x1b};
  assert_int_equal(msg_len(&m), sizeof(want));
  assert_memory_equal(m.b, want, sizeof(want));
}

static void test_put_rejects(void **state)
{
  (void)state;
  msg m;
  /* Type with the critical bit already in it. */
  msg_init(&m);
  assert_false(nts_ke_put_record(&m.w, false, 0x8000, NULL, 0));
  assert_false(wire_wr_ok(&m.w));
  assert_int_equal(msg_len(&m), 0);
  /* Body longer than the length field. */
  msg_init(&m);
  assert_false(nts_ke_put_record(&m.w, false, 9, m.b, 65536));
  assert_int_equal(msg_len(&m), 0);
  static const uint16_t vals[1];
  msg_init(&m);
  assert_false(nts_ke_put_u16_list(&m.w, false, 9, vals, 32768));
  assert_int_equal(msg_len(&m), 0);
  msg_init(&m);
  assert_false(nts_ke_put_u16_list(&m.w, false, 0xffff, NULL, 0));
  /* NULL body with a length. */
  msg_init(&m);
  assert_false(nts_ke_put_record(&m.w, false, 9, NULL, 1));
  msg_init(&m);
  assert_false(nts_ke_put_u16_list(&m.w, false, 9, NULL, 1));
  /* Sticky: nothing gets written after an error. */
  assert_false(nts_ke_put_eom(&m.w));
  assert_int_equal(msg_len(&m), 0);
  /* 65535 is the largest body. */
  static uint8_t body[65535], big[65535 + 8];
  wire_wr w;
  wire_wr_init(&w, big, sizeof(big));
  assert_true(nts_ke_put_record(&w, false, 9, body, 65535));
  assert_int_equal(wire_wr_len(&w), 65539);
}

static void test_put_overflow(void **state)
{
  (void)state;
  uint8_t buf[16];
  const uint16_t ids[] = {15, 17};
  /* A request-like message of 4+2 + 4+4 + 4 = 18 bytes; every cap below fails. */
  for (size_t cap = 0; cap < 18; cap++) {
    wire_wr w;
    wire_wr_init(&w, cap ? buf : NULL, cap);
    nts_ke_put_u16(&w, true, NTS_KE_REC_NEXT_PROTO, 0);
    nts_ke_put_u16_list(&w, true, NTS_KE_REC_AEAD, ids, 2);
    assert_false(nts_ke_put_eom(&w));
    assert_true(wire_wr_len(&w) <= cap);
  }
}

/* ---- iterator ----------------------------------------------------------- */

static void test_iter_records(void **state)
{
  (void)state;
  msg m;
  msg_response(&m);
  nts_ke_iter it;
  nts_ke_record rec;
  nts_ke_iter_init(&it, m.b, msg_len(&m));
  size_t count;
  assert_int_equal(nts_ke_iter_left(&it), msg_len(&m));

  assert_int_equal(nts_ke_iter_next(&it, &rec), NTS_KE_ITER_RECORD);
  assert_true(rec.critical);
  assert_int_equal(rec.type, NTS_KE_REC_NEXT_PROTO);
  assert_int_equal(rec.len, 2);
  assert_ptr_equal(rec.body, m.b + 4);
  assert_true(nts_ke_rec_u16_count(&rec, &count));
  assert_int_equal(count, 1);
  assert_int_equal(nts_ke_rec_u16_at(&rec, 0), 0);

  assert_int_equal(nts_ke_iter_left(&it), msg_len(&m) - 6);
  assert_int_equal(nts_ke_iter_next(&it, &rec), NTS_KE_ITER_RECORD);
  assert_int_equal(rec.type, NTS_KE_REC_AEAD);
  assert_int_equal(nts_ke_rec_u16_at(&rec, 0), 15);
  assert_int_equal(nts_ke_rec_u16_at(&rec, 1), 0); /* out of range */

  for (int i = 0; i < 8; i++) {
    assert_int_equal(nts_ke_iter_next(&it, &rec), NTS_KE_ITER_RECORD);
    assert_false(rec.critical);
    assert_int_equal(rec.type, NTS_KE_REC_NEW_COOKIE);
    assert_int_equal(rec.len, 100);
    assert_int_equal(rec.body[0], 0x30 + i);
    assert_int_equal(rec.body[99], 0x30 + i);
  }
  assert_int_equal(nts_ke_iter_next(&it, &rec), NTS_KE_ITER_RECORD);
  assert_int_equal(rec.type, NTS_KE_REC_SERVER);
  assert_memory_equal(rec.body, "ntp.example", 11);
  assert_int_equal(nts_ke_iter_next(&it, &rec), NTS_KE_ITER_RECORD);
  assert_int_equal(rec.type, NTS_KE_REC_PORT);
  assert_int_equal(nts_ke_rec_u16_at(&rec, 0), 1123);
  assert_int_equal(nts_ke_iter_next(&it, &rec), NTS_KE_ITER_RECORD);
  assert_int_equal(rec.type, NTS_KE_REC_EOM);
  assert_true(rec.critical);
  assert_int_equal(rec.len, 0);
  assert_int_equal(nts_ke_iter_left(&it), 0);
  assert_int_equal(nts_ke_iter_next(&it, &rec), NTS_KE_ITER_END);
  assert_int_equal(nts_ke_iter_next(&it, &rec), NTS_KE_ITER_END);
}

static void test_iter_empty(void **state)
{
  (void)state;
  nts_ke_iter it;
  nts_ke_record rec;
  nts_ke_iter_init(&it, NULL, 0);
  assert_int_equal(nts_ke_iter_next(&it, &rec), NTS_KE_ITER_END);
  uint8_t b[1] = {0};
  nts_ke_iter_init(&it, b, 0);
  assert_int_equal(nts_ke_iter_next(&it, &rec), NTS_KE_ITER_END);
}

/* Every prefix of a message ends either at a record boundary (END after the
 * records so far) or inside a record (MALFORMED, and it stays so). */
static void test_iter_truncations(void **state)
{
  (void)state;
  msg m;
  msg_response(&m);
  size_t full = msg_len(&m);
  size_t bounds[16], nb = 0;
  {
    nts_ke_iter it;
    nts_ke_record rec;
    nts_ke_iter_init(&it, m.b, full);
    bounds[nb++] = 0;
    while (nts_ke_iter_next(&it, &rec) == NTS_KE_ITER_RECORD)
      bounds[nb++] = (size_t)(rec.body - m.b) + rec.len;
    assert_int_equal(bounds[nb - 1], full);
  }
  for (size_t len = 0; len <= full; len++) {
    /* Copy to an exact-size heap buffer so ASan sees any overread. */
    uint8_t *b = malloc(len ? len : 1);
    assert_non_null(b);
    memcpy(b, m.b, len);
    nts_ke_iter it;
    nts_ke_record rec;
    nts_ke_iter_init(&it, b, len);
    size_t n = 0;
    nts_ke_iter_status st;
    while ((st = nts_ke_iter_next(&it, &rec)) == NTS_KE_ITER_RECORD) {
      assert_true((size_t)(rec.body - b) + rec.len <= len);
      n++;
    }
    bool boundary = false;
    for (size_t i = 0; i < nb; i++)
      boundary |= bounds[i] == len;
    assert_int_equal(st, boundary ? NTS_KE_ITER_END : NTS_KE_ITER_MALFORMED);
    assert_int_equal(nts_ke_iter_left(&it), 0);
    assert_int_equal(nts_ke_iter_next(&it, &rec), st);
    free(b);
  }
}

static void test_iter_length_beyond_end(void **state)
{
  (void)state;
  /* A header claiming 65535 bytes with 3 present. */
  const uint8_t b[] = {0x00, 0x05, 0xff, 0xff, 1, 2, 3};
  nts_ke_iter it;
  nts_ke_record rec;
  nts_ke_iter_init(&it, b, sizeof(b));
  assert_int_equal(nts_ke_iter_next(&it, &rec), NTS_KE_ITER_MALFORMED);
  /* Half a header. */
  nts_ke_iter_init(&it, b, 3);
  assert_int_equal(nts_ke_iter_next(&it, &rec), NTS_KE_ITER_MALFORMED);
}

static void test_u16_helpers(void **state)
{
  (void)state;
  const uint8_t body[] = {0x12, 0x34, 0x56};
  nts_ke_record rec = {.type = NTS_KE_REC_AEAD, .body = body, .len = 3};
  size_t n = 99;
  assert_false(nts_ke_rec_u16_count(&rec, &n));
  assert_int_equal(n, 1);
  assert_int_equal(nts_ke_rec_u16_at(&rec, 0), 0x1234);
  assert_int_equal(nts_ke_rec_u16_at(&rec, 1), 0); /* the odd byte is no value */
  rec.len = 0;
  assert_true(nts_ke_rec_u16_count(&rec, &n));
  assert_int_equal(n, 0);
  assert_int_equal(nts_ke_rec_u16_at(&rec, 0), 0);
  assert_int_equal(nts_ke_rec_u16_at(&rec, SIZE_MAX), 0);
}

/* ---- framer ------------------------------------------------------------- */

static nts_ke_framer framer; /* 16 KB: keep it off the stack */

static void assert_complete(const nts_ke_framer *f, const msg *m)
{
  size_t len = 0;
  const uint8_t *p = nts_ke_framer_msg(f, &len);
  assert_int_equal(nts_ke_framer_status(f), NTS_KE_FRAME_COMPLETE);
  assert_non_null(p);
  assert_int_equal(len, msg_len(m));
  assert_memory_equal(p, m->b, len);
}

static void test_framer_whole(void **state)
{
  (void)state;
  msg m;
  msg_response(&m);
  nts_ke_framer_init(&framer);
  size_t len = 1;
  assert_null(nts_ke_framer_msg(&framer, &len));
  assert_int_equal(len, 0);
  assert_int_equal(nts_ke_framer_feed(&framer, NULL, 0), NTS_KE_FRAME_NEED_MORE);
  assert_int_equal(nts_ke_framer_feed(&framer, m.b, msg_len(&m)), NTS_KE_FRAME_COMPLETE);
  assert_complete(&framer, &m);
  /* An empty feed changes nothing. */
  assert_int_equal(nts_ke_framer_feed(&framer, NULL, 0), NTS_KE_FRAME_COMPLETE);
  assert_complete(&framer, &m);
}

static void test_framer_bytewise(void **state)
{
  (void)state;
  msg m;
  msg_response(&m);
  size_t full = msg_len(&m);
  nts_ke_framer_init(&framer);
  for (size_t i = 0; i + 1 < full; i++) {
    assert_int_equal(nts_ke_framer_feed(&framer, m.b + i, 1), NTS_KE_FRAME_NEED_MORE);
    size_t len = 1;
    assert_null(nts_ke_framer_msg(&framer, &len));
  }
  assert_int_equal(nts_ke_framer_feed(&framer, m.b + full - 1, 1), NTS_KE_FRAME_COMPLETE);
  assert_complete(&framer, &m);
}

/* Every way to cut a request-sized message into three pieces. */
static void test_framer_every_split(void **state)
{
  (void)state;
  msg m;
  msg_init(&m);
  const uint16_t ids[] = {17, 15};
  nts_ke_put_u16(&m.w, true, NTS_KE_REC_NEXT_PROTO, 0);
  nts_ke_put_u16_list(&m.w, true, NTS_KE_REC_AEAD, ids, 2);
  nts_ke_put_record(&m.w, false, NTS_KE_REC_SERVER, (const uint8_t *)"192.0.2.1", 9);
  nts_ke_put_record(&m.w, false, 0x4321, NULL, 0);
  nts_ke_put_eom(&m.w);
  size_t full = msg_len(&m);
  size_t runs = 0;
  for (size_t i = 0; i <= full; i++) {
    for (size_t j = i; j <= full; j++) {
      nts_ke_framer_init(&framer);
      nts_ke_frame_status a = nts_ke_framer_feed(&framer, m.b, i);
      nts_ke_frame_status b = nts_ke_framer_feed(&framer, m.b + i, j - i);
      nts_ke_frame_status c = nts_ke_framer_feed(&framer, m.b + j, full - j);
      assert_int_equal(a, i == full ? NTS_KE_FRAME_COMPLETE : NTS_KE_FRAME_NEED_MORE);
      assert_int_equal(b, j == full ? NTS_KE_FRAME_COMPLETE : NTS_KE_FRAME_NEED_MORE);
      assert_int_equal(c, NTS_KE_FRAME_COMPLETE);
      assert_complete(&framer, &m);
      runs++;
    }
  }
  assert_int_equal(runs, (full + 1) * (full + 2) / 2);
}

static void test_framer_random_splits(void **state)
{
  (void)state;
  msg m;
  msg_response(&m);
  size_t full = msg_len(&m);
  rng_state = 0x6e74736b65ULL;
  for (int iter = 0; iter < 2000; iter++) {
    nts_ke_framer_init(&framer);
    size_t pos = 0;
    while (pos < full) {
      size_t n = 1 + rng_below(iter % 2 ? 8 : full - pos);
      if (n > full - pos)
        n = full - pos;
      nts_ke_frame_status s = nts_ke_framer_feed(&framer, m.b + pos, n);
      pos += n;
      assert_int_equal(s, pos == full ? NTS_KE_FRAME_COMPLETE : NTS_KE_FRAME_NEED_MORE);
    }
    assert_complete(&framer, &m);
  }
}

/* A peer streaming 1 MB of well-formed records without End of Message is cut
 * off at the limit and nothing it sends afterwards changes that. */
static void test_framer_oversized_stream(void **state)
{
  (void)state;
  uint8_t rec[104];
  memset(rec, 0x5a, sizeof(rec));
  rec[0] = 0x40; /* unknown non-critical type 0x4000 */
  rec[1] = 0x00;
  rec[2] = 0x00;
  rec[3] = 100;
  nts_ke_framer_init(&framer);
  size_t fed = 0, first_too_long = 0;
  while (fed < 1024 * 1024) {
    nts_ke_frame_status s = nts_ke_framer_feed(&framer, rec, sizeof(rec));
    fed += sizeof(rec);
    if (s == NTS_KE_FRAME_TOO_LONG && first_too_long == 0)
      first_too_long = fed;
    if (first_too_long == 0)
      assert_int_equal(s, NTS_KE_FRAME_NEED_MORE);
    else
      assert_int_equal(s, NTS_KE_FRAME_TOO_LONG);
  }
  /* 157 records (16328 bytes) fit; the 158th record's header already says it
   * would end past 16384. */
  assert_int_equal(first_too_long, 158 * sizeof(rec));
  size_t len;
  assert_null(nts_ke_framer_msg(&framer, &len));
  /* Even a valid End of Message no longer helps. */
  const uint8_t eom[] = {0x80, 0, 0, 0};
  assert_int_equal(nts_ke_framer_feed(&framer, eom, 4), NTS_KE_FRAME_TOO_LONG);
}

static void test_framer_record_65535(void **state)
{
  (void)state;
  const uint8_t hdr[] = {0x00, NTS_KE_REC_NEW_COOKIE, 0xff, 0xff};
  nts_ke_framer_init(&framer);
  assert_int_equal(nts_ke_framer_feed(&framer, hdr, 3), NTS_KE_FRAME_NEED_MORE);
  /* Refused on its header: the body is never waited for. */
  assert_int_equal(nts_ke_framer_feed(&framer, hdr + 3, 1), NTS_KE_FRAME_TOO_LONG);
  /* The same after a valid first record. */
  msg m;
  msg_init(&m);
  nts_ke_put_u16(&m.w, true, NTS_KE_REC_NEXT_PROTO, 0);
  wire_put_bytes(&m.w, hdr, sizeof(hdr));
  nts_ke_framer_init(&framer);
  assert_int_equal(nts_ke_framer_feed(&framer, m.b, msg_len(&m)), NTS_KE_FRAME_TOO_LONG);
}

/* Builds a message of exactly `total` bytes (a multiple of 4, >= 8): one
 * filler record, then End of Message. */
static void msg_of_size(msg *m, size_t total)
{
  msg_init(m);
  static uint8_t filler[NTS_KE_MAX_MSG];
  memset(filler, 0x11, sizeof(filler));
  size_t left = total - 4;
  while (left > 0) {
    size_t body = left - 4 > 60000 ? 60000 : left - 4;
    assert_true(nts_ke_put_record(&m->w, false, 0x2000, filler, body));
    left -= body + 4;
  }
  assert_true(nts_ke_put_eom(&m->w));
  assert_int_equal(msg_len(m), total);
}

static void test_framer_exact_limit(void **state)
{
  (void)state;
  static msg m;
  msg_of_size(&m, NTS_KE_MAX_MSG);
  nts_ke_framer_init(&framer);
  assert_int_equal(nts_ke_framer_feed(&framer, m.b, msg_len(&m)), NTS_KE_FRAME_COMPLETE);
  assert_complete(&framer, &m);
  /* Bytewise too: the buffer is full exactly when End of Message ends. */
  nts_ke_framer_init(&framer);
  for (size_t i = 0; i < msg_len(&m); i++)
    nts_ke_framer_feed(&framer, m.b + i, 1);
  assert_complete(&framer, &m);

  /* Four bytes more: the filler still ends within the limit, End of
   * Message does not. */
  static msg big;
  msg_of_size(&big, NTS_KE_MAX_MSG + 4);
  nts_ke_framer_init(&framer);
  assert_int_equal(nts_ke_framer_feed(&framer, big.b, NTS_KE_MAX_MSG - 1),
                   NTS_KE_FRAME_NEED_MORE);
  assert_int_equal(nts_ke_framer_feed(&framer, big.b + NTS_KE_MAX_MSG - 1, 5),
                   NTS_KE_FRAME_TOO_LONG);
  /* Eight bytes more: the filler's header already gives it away. */
  msg_of_size(&big, NTS_KE_MAX_MSG + 8);
  nts_ke_framer_init(&framer);
  assert_int_equal(nts_ke_framer_feed(&framer, big.b, 4), NTS_KE_FRAME_TOO_LONG);
}

static void test_framer_full_without_eom(void **state)
{
  (void)state;
  /* A record ending 2 bytes before the limit, then 2 bytes of a header:
   * the buffer is full and no End of Message can fit any more. */
  static uint8_t b[NTS_KE_MAX_MSG];
  memset(b, 0, sizeof(b));
  size_t body = NTS_KE_MAX_MSG - 2 - 4;
  b[0] = 0x20;
  b[2] = (uint8_t)(body >> 8);
  b[3] = (uint8_t)body;
  nts_ke_framer_init(&framer);
  assert_int_equal(nts_ke_framer_feed(&framer, b, NTS_KE_MAX_MSG - 2), NTS_KE_FRAME_NEED_MORE);
  assert_int_equal(nts_ke_framer_feed(&framer, b, 1), NTS_KE_FRAME_NEED_MORE);
  assert_int_equal(nts_ke_framer_feed(&framer, b, 1), NTS_KE_FRAME_TOO_LONG);
}

static void test_framer_missing_eom(void **state)
{
  (void)state;
  msg m;
  msg_response(&m);
  size_t without_eom = msg_len(&m) - 4;
  nts_ke_framer_init(&framer);
  assert_int_equal(nts_ke_framer_feed(&framer, m.b, without_eom), NTS_KE_FRAME_NEED_MORE);
  size_t len;
  assert_null(nts_ke_framer_msg(&framer, &len));
  /* The peer closing now is the caller's NO_EOM; the framer just waits. */
  assert_int_equal(nts_ke_framer_status(&framer), NTS_KE_FRAME_NEED_MORE);
}

static void test_framer_trailing(void **state)
{
  (void)state;
  msg m;
  msg_response(&m);
  size_t full = msg_len(&m);
  wire_put_u8(&m.w, 0x00);
  size_t len;
  /* In the same chunk. */
  nts_ke_framer_init(&framer);
  assert_int_equal(nts_ke_framer_feed(&framer, m.b, full + 1), NTS_KE_FRAME_TRAILING);
  assert_null(nts_ke_framer_msg(&framer, &len));
  /* In a later chunk. */
  nts_ke_framer_init(&framer);
  assert_int_equal(nts_ke_framer_feed(&framer, m.b, full), NTS_KE_FRAME_COMPLETE);
  assert_int_equal(nts_ke_framer_feed(&framer, m.b + full, 1), NTS_KE_FRAME_TRAILING);
  assert_null(nts_ke_framer_msg(&framer, &len));
  assert_int_equal(nts_ke_framer_feed(&framer, m.b, 1), NTS_KE_FRAME_TRAILING);
  /* A second whole message after the first is trailing data too. */
  nts_ke_framer_init(&framer);
  assert_int_equal(nts_ke_framer_feed(&framer, m.b, full), NTS_KE_FRAME_COMPLETE);
  assert_int_equal(nts_ke_framer_feed(&framer, m.b, full), NTS_KE_FRAME_TRAILING);
  /* Input larger than the buffer, End of Message inside it. */
  static uint8_t huge[NTS_KE_MAX_MSG * 2];
  memset(huge, 0, sizeof(huge));
  memcpy(huge, m.b, full);
  nts_ke_framer_init(&framer);
  assert_int_equal(nts_ke_framer_feed(&framer, huge, sizeof(huge)), NTS_KE_FRAME_TRAILING);
}

static void test_framer_eom_forms(void **state)
{
  (void)state;
  /* End of Message without the critical bit still ends the message (the
   * parser decides whether to accept it); one with a body ends it too. */
  const uint8_t plain[] = {0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  nts_ke_framer_init(&framer);
  assert_int_equal(nts_ke_framer_feed(&framer, plain, sizeof(plain)), NTS_KE_FRAME_COMPLETE);
  const uint8_t with_body[] = {0x80, 0x00, 0x00, 0x02, 0xaa, 0xbb};
  nts_ke_framer_init(&framer);
  assert_int_equal(nts_ke_framer_feed(&framer, with_body, 5), NTS_KE_FRAME_NEED_MORE);
  assert_int_equal(nts_ke_framer_feed(&framer, with_body + 5, 1), NTS_KE_FRAME_COMPLETE);
  size_t len;
  assert_non_null(nts_ke_framer_msg(&framer, &len));
  assert_int_equal(len, sizeof(with_body));
  /* A lone End of Message is a (useless) complete message. */
  const uint8_t eom[] = {0x80, 0x00, 0x00, 0x00};
  nts_ke_framer_init(&framer);
  assert_int_equal(nts_ke_framer_feed(&framer, eom, 4), NTS_KE_FRAME_COMPLETE);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_put_record_bytes),
      cmocka_unit_test(test_put_u16_list_bytes),
      cmocka_unit_test(test_put_rejects),
      cmocka_unit_test(test_put_overflow),
      cmocka_unit_test(test_iter_records),
      cmocka_unit_test(test_iter_empty),
      cmocka_unit_test(test_iter_truncations),
      cmocka_unit_test(test_iter_length_beyond_end),
      cmocka_unit_test(test_u16_helpers),
      cmocka_unit_test(test_framer_whole),
      cmocka_unit_test(test_framer_bytewise),
      cmocka_unit_test(test_framer_every_split),
      cmocka_unit_test(test_framer_random_splits),
      cmocka_unit_test(test_framer_oversized_stream),
      cmocka_unit_test(test_framer_record_65535),
      cmocka_unit_test(test_framer_exact_limit),
      cmocka_unit_test(test_framer_full_without_eom),
      cmocka_unit_test(test_framer_missing_eom),
      cmocka_unit_test(test_framer_trailing),
      cmocka_unit_test(test_framer_eom_forms),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
