/* libFuzzer target: the SOCKS5 client messages (proto/socks5).
 *
 * Input: a control byte (the methods offered, and a short output buffer for
 * the builders), a split byte, then the bytes a proxy sends.  Each stream
 * parser reads them whole and cut at the split point: the prefix must give
 * NEED_MORE or exactly the whole input's outcome (split invariance), never
 * NEED_MORE once a message's bound has arrived, and an accepted message must
 * be the same one when given alone and need all of its bytes.  Accepted
 * replies and datagrams are rebuilt with our builders, byte for byte.  The
 * input also feeds the builders (a name, credentials, a payload) whose
 * output goes back through the parsers, and into a buffer exactly as long as
 * the control byte says, so a write past it is caught by ASan. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/socks5.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                              \
  do {                                                                        \
    if (!(x))                                                                 \
      abort();                                                                \
  } while (0)

/* Which stream parser, with a common signature. */
typedef struct outcome {
  socks5_status st;
  size_t consumed;
  uint8_t method;
  socks5_addr addr;
} outcome;

static outcome run(int which, unsigned offer, const uint8_t *buf, size_t len)
{
  outcome o;
  memset(&o, 0, sizeof(o));
  switch (which) {
  case 0:
    o.st = socks5_parse_method(buf, len, offer, &o.method, &o.consumed);
    break;
  case 1:
    o.st = socks5_parse_auth(buf, len, &o.consumed);
    break;
  default:
    o.st = socks5_parse_reply(buf, len, &o.addr, &o.consumed);
    break;
  }
  CHECK(o.consumed <= len);
  CHECK((o.st == SOCKS5_OK) == (o.consumed > 0));
  CHECK(socks5_status_name(o.st) != NULL);
  return o;
}

static bool same(const outcome *a, const outcome *b)
{
  return a->st == b->st && a->consumed == b->consumed && a->method == b->method &&
         memcmp(&a->addr, &b->addr, sizeof(a->addr)) == 0;
}

static void check_stream(int which, unsigned offer, const uint8_t *in, size_t n,
                         size_t k)
{
  static const size_t bound[3] = {SOCKS5_METHOD_REPLY_LEN, SOCKS5_AUTH_REPLY_LEN,
                                  SOCKS5_REPLY_MAX};
  outcome whole = run(which, offer, in, n);
  outcome part = run(which, offer, in, k);
  if (part.st != SOCKS5_NEED_MORE)
    CHECK(same(&part, &whole));
  if (n >= bound[which])
    CHECK(whole.st != SOCKS5_NEED_MORE);
  if (k >= bound[which])
    CHECK(part.st != SOCKS5_NEED_MORE);
  if (whole.st != SOCKS5_OK)
    return;
  CHECK(whole.consumed <= bound[which]);
  outcome alone = run(which, offer, in, whole.consumed);
  CHECK(same(&alone, &whole));
  CHECK(run(which, offer, in, whole.consumed - 1).st == SOCKS5_NEED_MORE);
  /* rebuild what was accepted */
  if (which == 0)
    CHECK(in[0] == SOCKS5_VERSION && in[1] == whole.method);
  else if (which == 1)
    CHECK(in[0] == SOCKS5_AUTH_VERSION && in[1] == 0);
  else {
    uint8_t out[SOCKS5_REQUEST_MAX];
    size_t len;
    CHECK(socks5_build_request(out, sizeof(out), SOCKS5_CMD_CONNECT, &whole.addr, &len) ==
          SOCKS5_OK);
    out[1] = 0; /* CMD in a request is REP in a reply */
    CHECK(len == whole.consumed && memcmp(out, in, len) == 0);
  }
}

static void check_udp(const uint8_t *in, size_t n, size_t k)
{
  socks5_addr src, src2;
  size_t off, off2;
  socks5_status st = socks5_parse_udp(in, n, &src, &off);
  CHECK(off <= n && (st == SOCKS5_OK || off == 0));
  CHECK(st != SOCKS5_NEED_MORE);
  socks5_status st2 = socks5_parse_udp(in, k, &src2, &off2);
  if (st != SOCKS5_OK) {
    CHECK(st2 == st || st2 == SOCKS5_ERR_TRUNCATED);
    return;
  }
  CHECK(off <= SOCKS5_UDP_HDR_MAX);
  if (k >= off)
    CHECK(st2 == SOCKS5_OK && off2 == off && memcmp(&src, &src2, sizeof(src)) == 0);
  else
    CHECK(st2 == SOCKS5_ERR_TRUNCATED);
  uint8_t *out = malloc(n);
  size_t len;
  CHECK(out && socks5_build_udp(out, n, &src, in + off, n - off, &len) == SOCKS5_OK);
  CHECK(len == n && memcmp(out, in, n) == 0);
  free(out);
}

/* The input as a name, credentials and payload through the builders, in a
 * buffer of exactly `cap` bytes, and back through the parsers. */
static void check_builders(const uint8_t *in, size_t n, size_t k, size_t cap)
{
  uint8_t *out = malloc(cap ? cap : 1);
  CHECK(out);
  size_t len;
  socks5_addr a, b;
  size_t name_len = n < SOCKS5_NAME_MAX ? n : SOCKS5_NAME_MAX;
  socks5_status st = socks5_addr_name(&a, (const char *)in, name_len, (uint16_t)(n * 257));
  CHECK((st == SOCKS5_OK) == (name_len > 0));
  if (st != SOCKS5_OK)
    socks5_addr_ipv4(&a, (const uint8_t[]){127, 0, 0, 1}, 9050);

  st = socks5_build_request(out, cap, SOCKS5_CMD_UDP_ASSOCIATE, &a, &len);
  CHECK(st == SOCKS5_OK || st == SOCKS5_ERR_SPACE);
  if (st == SOCKS5_OK) {
    CHECK(len <= cap && len <= SOCKS5_REQUEST_MAX);
    out[1] = 0;
    size_t c;
    CHECK(socks5_parse_reply(out, len, &b, &c) == SOCKS5_OK && c == len);
    CHECK(memcmp(&a, &b, sizeof(a)) == 0);
  } else
    CHECK(len == 0);

  st = socks5_build_udp(out, cap, &a, in, n, &len);
  CHECK(st == SOCKS5_OK || st == SOCKS5_ERR_SPACE);
  if (st == SOCKS5_OK) {
    size_t off;
    CHECK(socks5_parse_udp(out, len, &b, &off) == SOCKS5_OK && off + n == len);
    CHECK(memcmp(&a, &b, sizeof(a)) == 0 && memcmp(out + off, in, n) == 0);
  }

  /* credentials: the input cut at the split point */
  st = socks5_build_auth(out, cap, in, k, in + k, n - k, &len);
  bool valid = k >= 1 && k <= SOCKS5_CRED_MAX && n - k <= SOCKS5_CRED_MAX;
  if (!valid)
    CHECK(st == SOCKS5_ERR_ARG);
  else if (cap < 3 + n)
    CHECK(st == SOCKS5_ERR_SPACE);
  else
    CHECK(st == SOCKS5_OK && len == 3 + n && out[0] == 1 && out[1] == k &&
          memcmp(out + 2, in, k) == 0 && out[2 + k] == n - k &&
          memcmp(out + 3 + k, in + k, n - k) == 0);

  st = socks5_build_greeting(out, cap, (unsigned)(n & 3), &len);
  if ((n & 3) == 0)
    CHECK(st == SOCKS5_ERR_ARG);
  else if (st == SOCKS5_OK) {
    uint8_t m;
    size_t c;
    uint8_t reply[2] = {5, (n & 1) ? SOCKS5_METHOD_NONE : SOCKS5_METHOD_USERPASS};
    CHECK(out[0] == 5 && out[1] == len - 2);
    CHECK(socks5_parse_method(reply, 2, (unsigned)(n & 3), &m, &c) == SOCKS5_OK);
  }
  free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 2)
    return 0;
  unsigned ctl = data[0];
  const uint8_t *in = data + 2;
  size_t n = size - 2;
  size_t k = data[1] % (n + 1);
  unsigned offer = ctl & 3;
  if (offer == 0)
    offer = SOCKS5_OFFER_NONE | SOCKS5_OFFER_USERPASS;
  for (int which = 0; which < 3; which++)
    check_stream(which, offer, in, n, k);
  check_udp(in, n, k);
  /* a short output buffer for one input in four, else a roomy one */
  size_t cap = (ctl & 0x0c) == 0 ? (ctl >> 4) * 17u : SOCKS5_UDP_HDR_MAX + n;
  check_builders(in, n, k, cap);
  return 0;
}
