/* libFuzzer target: NTP over TCP framing (proto/ntp_tcp).
 *
 * Input: a split byte, then a byte stream as a peer sends it.  The stream is
 * cut into frames with ntp_tcp_next until it ends or a frame is refused;
 * each accepted frame must lie inside the stream, hold 1..NTP_TCP_MSG_MAX
 * bytes and rebuild byte for byte with ntp_tcp_frame.  The same stream
 * delivered in two pieces (cut at the split byte), with the unparsed rest
 * carried over as a server does, must give the same frames and the same end.
 * A buffer exactly as long as a frame catches writes past it. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/ntp_tcp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                              \
  do {                                                                        \
    if (!(x))                                                                 \
      abort();                                                                \
  } while (0)

#define MAX_FRAMES 4096

typedef struct frames {
  size_t off[MAX_FRAMES], len[MAX_FRAMES]; /* packet offsets in the stream */
  size_t n;
  ntp_tcp_status end; /* NEED_MORE (stream ended) or BAD_LEN */
} frames;

/* Cuts in[0..n) whole. */
static void cut(const uint8_t *in, size_t n, frames *f)
{
  size_t off = 0;
  f->n = 0;
  for (;;) {
    const uint8_t *m;
    size_t ml, used;
    ntp_tcp_status st = ntp_tcp_next(in + off, n - off, &m, &ml, &used);
    if (st != NTP_TCP_MSG) {
      CHECK(m == NULL && ml == 0 && used == 0);
      CHECK(st == NTP_TCP_NEED_MORE || st == NTP_TCP_BAD_LEN);
      CHECK(st != NTP_TCP_NEED_MORE || n - off < NTP_TCP_FRAME_MAX);
      f->end = st;
      return;
    }
    CHECK(ml >= 1 && ml <= NTP_TCP_MSG_MAX && used == ml + 2 && used <= n - off);
    CHECK(m == in + off + 2);
    CHECK(f->n < MAX_FRAMES);
    f->off[f->n] = (size_t)(m - in);
    f->len[f->n] = ml;
    f->n++;
    /* rebuild into a buffer exactly the frame's size */
    uint8_t *out = malloc(used);
    CHECK(out);
    CHECK(ntp_tcp_frame(out, used, m, ml) == used);
    CHECK(memcmp(out, in + off, used) == 0);
    CHECK(ntp_tcp_frame(out, used - 1, m, ml) == 0);
    free(out);
    off += used;
  }
}

/* The stream arriving in two reads, into a connection buffer of one frame. */
static void cut_split(const uint8_t *in, size_t n, size_t k, const frames *whole)
{
  uint8_t buf[2 * NTP_TCP_FRAME_MAX];
  size_t held = 0, fed = 0, seen = 0;
  size_t reads[2] = {k, n - k};
  for (int r = 0; r < 2; r++) {
    size_t left = reads[r];
    while (left > 0) {
      /* a server reads at most what its buffer has room for */
      size_t room = NTP_TCP_FRAME_MAX - held;
      size_t take = left < room ? left : room;
      memcpy(buf + held, in + fed, take);
      held += take;
      fed += take;
      left -= take;
      for (;;) {
        const uint8_t *m;
        size_t ml, used;
        ntp_tcp_status st = ntp_tcp_next(buf, held, &m, &ml, &used);
        if (st == NTP_TCP_BAD_LEN) {
          CHECK(whole->end == NTP_TCP_BAD_LEN && seen == whole->n);
          return;
        }
        if (st == NTP_TCP_NEED_MORE) {
          CHECK(held < NTP_TCP_FRAME_MAX); /* a full buffer always decides */
          break;
        }
        CHECK(seen < whole->n && ml == whole->len[seen]);
        CHECK(memcmp(m, in + whole->off[seen], ml) == 0);
        seen++;
        memmove(buf, buf + used, held - used);
        held -= used;
      }
    }
  }
  CHECK(whole->end == NTP_TCP_NEED_MORE && seen == whole->n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  const uint8_t *in = data + 1;
  size_t n = size - 1;
  size_t k = n ? ((size_t)data[0] * 257u) % (n + 1) : 0;
  static frames whole;
  cut(in, n, &whole);
  cut_split(in, n, k, &whole);
  CHECK(ntp_tcp_status_name(whole.end)[0] != '?');
  return 0;
}
