/* ntp_tcp: length-prefixed NTP packets on a stream. */
#include "proto/ntp_tcp.h"

#include <string.h>

size_t ntp_tcp_frame(uint8_t *out, size_t cap, const uint8_t *msg, size_t len)
{
  if (len == 0 || len > NTP_TCP_MSG_MAX || cap < 2 + len)
    return 0;
  out[0] = (uint8_t)(len >> 8);
  out[1] = (uint8_t)len;
  memmove(out + 2, msg, len); /* msg may already sit at out + 2 */
  return 2 + len;
}

ntp_tcp_status ntp_tcp_next(const uint8_t *buf, size_t len, const uint8_t **msg,
                            size_t *msg_len, size_t *consumed)
{
  *msg = NULL;
  *msg_len = 0;
  *consumed = 0;
  if (len < 2)
    return NTP_TCP_NEED_MORE;
  size_t n = ((size_t)buf[0] << 8) | buf[1];
  if (n == 0 || n > NTP_TCP_MSG_MAX)
    return NTP_TCP_BAD_LEN;
  if (len - 2 < n)
    return NTP_TCP_NEED_MORE;
  *msg = buf + 2;
  *msg_len = n;
  *consumed = 2 + n;
  return NTP_TCP_MSG;
}

const char *ntp_tcp_status_name(ntp_tcp_status s)
{
  switch (s) {
  case NTP_TCP_MSG: return "msg";
  case NTP_TCP_NEED_MORE: return "need_more";
  case NTP_TCP_BAD_LEN: return "bad_len";
  }
  return "?";
}
