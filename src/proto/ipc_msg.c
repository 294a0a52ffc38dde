/* ipc_msg: typed, length-checked frames between ntsd's processes. */
#include "proto/ipc_msg.h"

#include <string.h>

#include "proto/wire.h"

static const char *const status_names[IPC_STATUS_COUNT] = {
    "ok", "truncated", "bad type", "bad length", "trailing bytes"};

const char *ipc_status_name(ipc_status s)
{
  return (unsigned)s < IPC_STATUS_COUNT ? status_names[s] : "?";
}

/* The one body length of a known type; 0 for an unknown one. */
static size_t body_len(unsigned type)
{
  switch (type) {
  case IPC_MSG_KEYS: return IPC_KEYS_BODY_LEN;
  case IPC_MSG_KEYS_ACK: return IPC_ACK_BODY_LEN;
  case IPC_MSG_STATS: return IPC_STATS_BODY_LEN;
  }
  return 0;
}

size_t ipc_msg_encode(const ipc_msg *m, uint8_t *out, size_t cap)
{
  size_t blen = body_len(m->type);
  wire_wr w;
  if (blen == 0)
    return 0;
  wire_wr_init(&w, out, cap);
  wire_put_u16(&w, (uint16_t)m->type);
  wire_put_u16(&w, (uint16_t)blen);
  if (m->type == IPC_MSG_KEYS) {
    wire_put_u32(&w, m->u.keys.id);
    wire_put_u64(&w, m->u.keys.created);
    wire_put_bytes(&w, m->u.keys.key, IPC_KEY_LEN);
  } else if (m->type == IPC_MSG_KEYS_ACK) {
    wire_put_u32(&w, m->u.ack_id);
  } else {
    for (size_t i = 0; i < IPC_STATS_N; i++)
      wire_put_u64(&w, m->u.stats[i]);
  }
  return wire_wr_ok(&w) ? wire_wr_len(&w) : 0;
}

/* The body of a frame whose type and length have been checked. */
static void read_body(wire_rd *r, ipc_msg *out)
{
  if (out->type == IPC_MSG_KEYS) {
    out->u.keys.id = wire_get_u32(r);
    out->u.keys.created = wire_get_u64(r);
    wire_get_bytes(r, out->u.keys.key, IPC_KEY_LEN);
  } else if (out->type == IPC_MSG_KEYS_ACK) {
    out->u.ack_id = wire_get_u32(r);
  } else {
    for (size_t i = 0; i < IPC_STATS_N; i++)
      out->u.stats[i] = wire_get_u64(r);
  }
}

ipc_status ipc_msg_decode(const uint8_t *buf, size_t len, unsigned allowed, ipc_msg *out)
{
  memset(out, 0, sizeof(*out));
  if (len < IPC_MSG_HDR_LEN)
    return IPC_TRUNCATED;
  wire_rd r;
  wire_rd_init(&r, buf, len);
  unsigned type = wire_get_u16(&r);
  size_t blen = wire_get_u16(&r);
  size_t want = body_len(type);
  if (want == 0 || type >= 32 || !(allowed & IPC_BIT(type)))
    return IPC_BAD_TYPE;
  if (blen != want)
    return IPC_BAD_LENGTH;
  if (wire_rd_left(&r) < blen)
    return IPC_TRUNCATED;
  if (wire_rd_left(&r) > blen)
    return IPC_TRAILING;
  out->type = (ipc_msg_type)type;
  read_body(&r, out);
  if (!wire_rd_ok(&r)) { /* cannot happen: the length was checked */
    memset(out, 0, sizeof(*out));
    return IPC_TRUNCATED;
  }
  return IPC_OK;
}
