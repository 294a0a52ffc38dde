/* Unit tests for src/proto/ntp_tcp: NTP packets framed on a TCP stream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/ntp_tcp.h"

static void fill(uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(i * 7 + 3);
}

static void test_bound(void **state)
{
  (void)state;
  /* whatever the UDP path accepts or builds fits one frame */
  assert_true(NTP_TCP_MSG_MAX >= NTP_MAX_PKT);
  assert_true(NTP_TCP_MSG_MAX <= 0xffff);
  assert_int_equal(NTP_TCP_FRAME_MAX, 2 + NTP_TCP_MSG_MAX);
}

static void test_frame(void **state)
{
  (void)state;
  uint8_t msg[NTP_TCP_MSG_MAX + 1], out[NTP_TCP_FRAME_MAX + 8];
  fill(msg, sizeof(msg));
  assert_int_equal(ntp_tcp_frame(out, sizeof(out), msg, 48), 50);
  assert_int_equal(out[0], 0);
  assert_int_equal(out[1], 48);
  assert_memory_equal(out + 2, msg, 48);

  assert_int_equal(ntp_tcp_frame(out, sizeof(out), msg, NTP_TCP_MSG_MAX), NTP_TCP_FRAME_MAX);
  assert_int_equal(out[0], NTP_TCP_MSG_MAX >> 8);
  assert_int_equal(out[1], NTP_TCP_MSG_MAX & 0xff);
  assert_memory_equal(out + 2, msg, NTP_TCP_MSG_MAX);

  /* refused: empty, too long, short buffer (nothing written) */
  memset(out, 0xee, sizeof(out));
  assert_int_equal(ntp_tcp_frame(out, sizeof(out), msg, 0), 0);
  assert_int_equal(ntp_tcp_frame(out, sizeof(out), msg, NTP_TCP_MSG_MAX + 1), 0);
  assert_int_equal(ntp_tcp_frame(out, 49, msg, 48), 0);
  assert_int_equal(ntp_tcp_frame(out, 0, msg, 48), 0);
  assert_int_equal(out[0], 0xee);
  assert_int_equal(ntp_tcp_frame(out, 50, msg, 48), 50);
}

/* Framing in place: the packet already at out + 2. */
static void test_frame_in_place(void **state)
{
  (void)state;
  uint8_t buf[2 + 68], want[68];
  fill(want, sizeof(want));
  memcpy(buf + 2, want, sizeof(want));
  assert_int_equal(ntp_tcp_frame(buf, sizeof(buf), buf + 2, 68), 70);
  assert_int_equal(buf[1], 68);
  assert_memory_equal(buf + 2, want, 68);
}

static void test_next(void **state)
{
  (void)state;
  uint8_t msg[300], buf[NTP_TCP_FRAME_MAX];
  fill(msg, sizeof(msg));
  size_t n = ntp_tcp_frame(buf, sizeof(buf), msg, 300);
  const uint8_t *m;
  size_t ml, used;
  assert_int_equal(ntp_tcp_next(buf, n, &m, &ml, &used), NTP_TCP_MSG);
  assert_ptr_equal(m, buf + 2);
  assert_int_equal(ml, 300);
  assert_int_equal(used, 302);
  assert_memory_equal(m, msg, 300);
  /* every prefix asks for more, and says nothing */
  for (size_t k = 0; k < n; k++) {
    m = buf;
    ml = used = 99;
    assert_int_equal(ntp_tcp_next(buf, k, &m, &ml, &used), NTP_TCP_NEED_MORE);
    assert_null(m);
    assert_int_equal(ml, 0);
    assert_int_equal(used, 0);
  }
}

static void test_back_to_back(void **state)
{
  (void)state;
  uint8_t a[48], b[72], stream[2 * NTP_TCP_FRAME_MAX];
  fill(a, sizeof(a));
  memset(b, 0x5a, sizeof(b));
  size_t n = ntp_tcp_frame(stream, sizeof(stream), a, sizeof(a));
  n += ntp_tcp_frame(stream + n, sizeof(stream) - n, b, sizeof(b));
  n += 1; /* the first byte of a third frame */
  stream[n - 1] = 0;
  const uint8_t *m;
  size_t ml, used, off = 0;
  assert_int_equal(ntp_tcp_next(stream, n, &m, &ml, &used), NTP_TCP_MSG);
  assert_int_equal(ml, 48);
  assert_memory_equal(m, a, 48);
  off += used;
  assert_int_equal(ntp_tcp_next(stream + off, n - off, &m, &ml, &used), NTP_TCP_MSG);
  assert_int_equal(ml, 72);
  assert_memory_equal(m, b, 72);
  off += used;
  assert_int_equal(n - off, 1);
  assert_int_equal(ntp_tcp_next(stream + off, n - off, &m, &ml, &used), NTP_TCP_NEED_MORE);
}

/* A bad length is final as soon as its two bytes are there. */
static void test_bad_len(void **state)
{
  (void)state;
  const uint8_t *m;
  size_t ml, used;
  uint8_t zero[2] = {0, 0};
  assert_int_equal(ntp_tcp_next(zero, 2, &m, &ml, &used), NTP_TCP_BAD_LEN);
  assert_null(m);
  assert_int_equal(used, 0);
  uint8_t big[2] = {(NTP_TCP_MSG_MAX + 1) >> 8, (NTP_TCP_MSG_MAX + 1) & 0xff};
  assert_int_equal(ntp_tcp_next(big, 2, &m, &ml, &used), NTP_TCP_BAD_LEN);
  uint8_t max[2] = {0xff, 0xff};
  assert_int_equal(ntp_tcp_next(max, 2, &m, &ml, &used), NTP_TCP_BAD_LEN);
  /* one byte: not known yet */
  assert_int_equal(ntp_tcp_next(max, 1, &m, &ml, &used), NTP_TCP_NEED_MORE);
  /* the largest allowed length waits for its bytes */
  uint8_t ok[3] = {NTP_TCP_MSG_MAX >> 8, NTP_TCP_MSG_MAX & 0xff, 0};
  assert_int_equal(ntp_tcp_next(ok, 3, &m, &ml, &used), NTP_TCP_NEED_MORE);
  uint8_t one[3] = {0, 1, 0x42};
  assert_int_equal(ntp_tcp_next(one, 3, &m, &ml, &used), NTP_TCP_MSG);
  assert_int_equal(ml, 1);
  assert_int_equal(m[0], 0x42);
}

static void test_names(void **state)
{
  (void)state;
  assert_string_equal(ntp_tcp_status_name(NTP_TCP_MSG), "msg");
  assert_string_equal(ntp_tcp_status_name(NTP_TCP_NEED_MORE), "need_more");
  assert_string_equal(ntp_tcp_status_name(NTP_TCP_BAD_LEN), "bad_len");
  assert_string_equal(ntp_tcp_status_name((ntp_tcp_status)9), "?");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bound),         cmocka_unit_test(test_frame),
      cmocka_unit_test(test_frame_in_place), cmocka_unit_test(test_next),
      cmocka_unit_test(test_back_to_back),  cmocka_unit_test(test_bad_len),
      cmocka_unit_test(test_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
