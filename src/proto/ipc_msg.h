/* ipc_msg: the messages between the main process and the NTS-KE process
 * (docs/security.md, "The NTS-KE process").
 *
 * Each message is one frame, sent as one SOCK_SEQPACKET datagram:
 *
 *   type     u16   IPC_MSG_*
 *   length   u16   of the body; every type has exactly one body length
 *   body     fixed layout per type, big-endian
 *
 *   KEYS      main -> KE   44 bytes: key id u32, created u64, key[32]
 *                          (the current cookie master key only)
 *   KEYS_ACK  KE -> main    4 bytes: the key id now in use
 *   STATS     KE -> main  176 bytes: IPC_STATS_N counters, u64 each (11 counters,
 *                          10 handshake-time buckets, their time summed)
 *
 * The decoder takes the whole datagram and accepts it only when it is
 * exactly one frame of a type the receiver accepts from that peer, with
 * that type's length: anything else is refused with the first problem
 * found, and the receiver drops its peer.  Both directions are treated as
 * untrusted: the KE process faces the network, and the main process only
 * gets to say which key to use.  Pure: no allocation, no I/O.  A decoded
 * KEYS message and the buffers it travelled in hold a master key: wipe them
 * (nts_wipe) after use. */
#ifndef NTSD_PROTO_IPC_MSG_H
#define NTSD_PROTO_IPC_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IPC_MSG_HDR_LEN 4
#define IPC_KEY_LEN 32 /* NTS_COOKIE_MASTER_KEY_LEN */
#define IPC_STATS_N 22
#define IPC_KEYS_BODY_LEN (4 + 8 + IPC_KEY_LEN)
#define IPC_ACK_BODY_LEN 4
#define IPC_STATS_BODY_LEN (8 * IPC_STATS_N)
#define IPC_MSG_MAX_LEN (IPC_MSG_HDR_LEN + IPC_STATS_BODY_LEN) /* 180: the largest */

typedef enum ipc_msg_type {
  IPC_MSG_KEYS = 1,
  IPC_MSG_KEYS_ACK = 2,
  IPC_MSG_STATS = 3,
} ipc_msg_type;

/* Which types a receiver accepts (the `allowed` mask of ipc_msg_decode). */
#define IPC_BIT(t) (1u << (t))
#define IPC_FROM_MAIN IPC_BIT(IPC_MSG_KEYS)
#define IPC_FROM_KE (IPC_BIT(IPC_MSG_KEYS_ACK) | IPC_BIT(IPC_MSG_STATS))

typedef struct ipc_keys {
  uint32_t id;
  uint64_t created; /* wall-clock seconds, as in the key file */
  uint8_t key[IPC_KEY_LEN];
} ipc_keys;

typedef struct ipc_msg {
  ipc_msg_type type;
  union {
    ipc_keys keys;                 /* KEYS */
    uint32_t ack_id;               /* KEYS_ACK */
    uint64_t stats[IPC_STATS_N];   /* STATS, in ke_server_stats order */
  } u;
} ipc_msg;

typedef enum ipc_status {
  IPC_OK = 0,
  IPC_TRUNCATED,   /* shorter than the header or than its length says */
  IPC_BAD_TYPE,    /* unknown, or not accepted from this peer */
  IPC_BAD_LENGTH,  /* not the type's body length */
  IPC_TRAILING,    /* bytes after the frame */
  IPC_STATUS_COUNT
} ipc_status;

const char *ipc_status_name(ipc_status s);

/* Writes m as a frame; returns its length, or 0 for an unknown type or a
 * cap too small. */
size_t ipc_msg_encode(const ipc_msg *m, uint8_t *out, size_t cap);

/* One datagram in; *out zeroed first and filled only on IPC_OK. */
ipc_status ipc_msg_decode(const uint8_t *buf, size_t len, unsigned allowed, ipc_msg *out);

#endif
