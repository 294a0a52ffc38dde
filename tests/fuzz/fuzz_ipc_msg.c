/* libFuzzer target: the frames between ntsd's processes (proto/ipc_msg).
 *
 * Input: a mask byte (which types the receiver accepts), then one datagram.
 * The decoder must never read past it, must accept only a type in the mask
 * with that type's exact length and nothing after, and an accepted frame
 * must encode back to the same bytes (one encoding per message).  The input
 * also goes through the encoder as a message of every type into a buffer
 * exactly as long as the mask byte says, so a write past it is caught. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/ipc_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)     \
  do {               \
    if (!(x))        \
      abort();       \
  } while (0)

static void decode_one(unsigned allowed, const uint8_t *buf, size_t len)
{
  uint8_t *copy = malloc(len ? len : 1); /* exact size: ASan sees overreads */
  if (!copy)
    return;
  memcpy(copy, buf, len);
  ipc_msg m;
  ipc_status st = ipc_msg_decode(copy, len, allowed, &m);
  CHECK((unsigned)st < IPC_STATUS_COUNT);
  if (st == IPC_OK) {
    CHECK(allowed & IPC_BIT(m.type));
    uint8_t out[IPC_MSG_MAX_LEN];
    size_t n = ipc_msg_encode(&m, out, sizeof(out));
    CHECK(n == len && memcmp(out, copy, len) == 0);
  }
  free(copy);
}

static void encode_all(size_t cap, const uint8_t *data, size_t size)
{
  static const ipc_msg_type types[] = {IPC_MSG_KEYS, IPC_MSG_KEYS_ACK, IPC_MSG_STATS};
  for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
    ipc_msg m;
    memset(&m, 0, sizeof(m));
    memcpy(&m.u, data, size < sizeof(m.u) ? size : sizeof(m.u));
    m.type = types[t];
    uint8_t *out = malloc(cap ? cap : 1);
    if (!out)
      return;
    size_t n = ipc_msg_encode(&m, out, cap);
    if (n) {
      ipc_msg back;
      CHECK(n <= cap);
      CHECK(ipc_msg_decode(out, n, IPC_BIT(types[t]), &back) == IPC_OK);
      CHECK(back.type == m.type);
    }
    free(out);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  unsigned allowed = data[0] & 0x80 ? ~0u : data[0];
  decode_one(allowed, data + 1, size - 1);
  encode_all(data[0] % (IPC_MSG_MAX_LEN + 8), data + 1, size - 1);
  return 0;
}
