/* ntp_ef: extension-field walking and writing. */
#include "proto/ntp_ef.h"

#include "proto/ntp_pkt.h"

void ntp_ef_iter_init(ntp_ef_iter *it, const uint8_t *pkt, size_t len)
{
  it->pkt = pkt;
  it->len = len;
  it->pos = NTP_HDR_LEN;
  it->mac_len = 0;
  it->done = (len < NTP_HDR_LEN);
  it->malformed = false;
}

static bool is_mac_size(size_t n) { return n == 4 || n == 20 || n == 24; }

ntp_ef_status ntp_ef_next(ntp_ef_iter *it, ntp_ef *ef)
{
  if (it->done)
    return it->malformed || it->len < NTP_HDR_LEN ? NTP_EF_MALFORMED : NTP_EF_END;
  size_t left = it->len - it->pos;
  if (left == 0) {
    it->done = true;
    return NTP_EF_END;
  }
  if (is_mac_size(left)) {
    it->done = true;
    it->mac_len = left;
    return NTP_EF_MAC;
  }
  wire_rd r;
  wire_rd_init(&r, it->pkt + it->pos, left);
  uint16_t type = wire_get_u16(&r);
  uint16_t flen = wire_get_u16(&r);
  if (!wire_rd_ok(&r) || flen < NTP_EF_MIN_LEN || (flen & 3) != 0 || flen > left ||
      (flen == left && flen < NTP_EF_MIN_LAST_LEN)) {
    it->done = true;
    it->malformed = true;
    return NTP_EF_MALFORMED;
  }
  ef->type = type;
  ef->len = flen;
  ef->offset = it->pos;
  ef->body = it->pkt + it->pos + 4;
  ef->body_len = (size_t)flen - 4;
  it->pos += flen;
  return NTP_EF_FIELD;
}

ntp_ef_status ntp_ef_validate(const uint8_t *pkt, size_t len, size_t *n_fields, size_t *mac_len)
{
  ntp_ef_iter it;
  ntp_ef ef;
  ntp_ef_status st;
  size_t n = 0;
  ntp_ef_iter_init(&it, pkt, len);
  while ((st = ntp_ef_next(&it, &ef)) == NTP_EF_FIELD)
    n++;
  if (n_fields)
    *n_fields = n;
  if (mac_len)
    *mac_len = it.mac_len;
  return st;
}

bool ntp_ef_append(wire_wr *w, uint16_t type, const uint8_t *body, size_t body_len,
                   size_t min_len)
{
  if (body_len > 0xfffc - 4) {
    w->err = true;
    return false;
  }
  size_t total = 4 + body_len;
  total = (total + 3) & ~(size_t)3;
  if (total < min_len)
    total = (min_len + 3) & ~(size_t)3;
  if (total > 0xfffc) {
    w->err = true;
    return false;
  }
  wire_put_u16(w, type);
  wire_put_u16(w, (uint16_t)total);
  wire_put_bytes(w, body, body_len);
  wire_put_zeros(w, total - 4 - body_len);
  return wire_wr_ok(w);
}
