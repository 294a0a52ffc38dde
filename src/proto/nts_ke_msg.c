/* nts_ke_msg: NTS-KE record codec, framer and iterator. */
#include "proto/nts_ke_msg.h"

#include <string.h>

const char *nts_ke_record_name(uint16_t type)
{
  switch (type & NTS_KE_TYPE_MASK) {
  case NTS_KE_REC_EOM: return "end_of_message";
  case NTS_KE_REC_NEXT_PROTO: return "next_protocol";
  case NTS_KE_REC_ERROR: return "error";
  case NTS_KE_REC_WARNING: return "warning";
  case NTS_KE_REC_AEAD: return "aead";
  case NTS_KE_REC_NEW_COOKIE: return "new_cookie";
  case NTS_KE_REC_SERVER: return "server";
  case NTS_KE_REC_PORT: return "port";
  case NTS_KE_REC_NTP_TCP_PORT: return "ntp_tcp_port";
  default: return "unknown";
  }
}

const char *nts_ke_error_name(uint16_t code)
{
  switch (code) {
  case NTS_KE_ERR_UNRECOGNIZED_CRITICAL: return "unrecognized_critical_record";
  case NTS_KE_ERR_BAD_REQUEST: return "bad_request";
  case NTS_KE_ERR_INTERNAL: return "internal_server_error";
  default: return "unknown";
  }
}

const char *nts_ke_aead_name(uint16_t id)
{
  switch (id) {
  case NTS_KE_AEAD_AES_SIV_CMAC_256: return "AEAD_AES_SIV_CMAC_256";
  case NTS_KE_AEAD_AES_SIV_CMAC_384: return "AEAD_AES_SIV_CMAC_384";
  case NTS_KE_AEAD_AES_SIV_CMAC_512: return "AEAD_AES_SIV_CMAC_512";
  default: return "unknown";
  }
}

/* ---- writing ------------------------------------------------------------ */

/* Puts w into its sticky error state without writing anything. */
static bool fail_writer(wire_wr *w)
{
  w->err = true;
  return false;
}

bool nts_ke_put_record(wire_wr *w, bool critical, uint16_t type, const uint8_t *body,
                       size_t len)
{
  if (type > NTS_KE_TYPE_MASK || len > UINT16_MAX || (len > 0 && !body))
    return fail_writer(w);
  wire_put_u16(w, (uint16_t)(type | (critical ? NTS_KE_CRITICAL : 0)));
  wire_put_u16(w, (uint16_t)len);
  wire_put_bytes(w, body, len);
  return wire_wr_ok(w);
}

bool nts_ke_put_u16_list(wire_wr *w, bool critical, uint16_t type, const uint16_t *vals,
                         size_t n)
{
  if (type > NTS_KE_TYPE_MASK || n > UINT16_MAX / 2 || (n > 0 && !vals))
    return fail_writer(w);
  wire_put_u16(w, (uint16_t)(type | (critical ? NTS_KE_CRITICAL : 0)));
  wire_put_u16(w, (uint16_t)(2 * n));
  for (size_t i = 0; i < n; i++)
    wire_put_u16(w, vals[i]);
  return wire_wr_ok(w);
}

bool nts_ke_put_u16(wire_wr *w, bool critical, uint16_t type, uint16_t val)
{
  return nts_ke_put_u16_list(w, critical, type, &val, 1);
}

bool nts_ke_put_eom(wire_wr *w) { return nts_ke_put_record(w, true, NTS_KE_REC_EOM, NULL, 0); }

/* ---- framing ------------------------------------------------------------ */

static const char *const frame_names[NTS_KE_FRAME_STATUS_COUNT] = {
    [NTS_KE_FRAME_NEED_MORE] = "need_more",
    [NTS_KE_FRAME_COMPLETE] = "complete",
    [NTS_KE_FRAME_TOO_LONG] = "too_long",
    [NTS_KE_FRAME_TRAILING] = "trailing",
};

const char *nts_ke_frame_status_name(nts_ke_frame_status s)
{
  return (s >= 0 && s < NTS_KE_FRAME_STATUS_COUNT) ? frame_names[s] : "?";
}

void nts_ke_framer_init(nts_ke_framer *f)
{
  f->len = 0;
  f->next_rec = 0;
  f->msg_len = 0;
  f->status = NTS_KE_FRAME_NEED_MORE;
}

nts_ke_frame_status nts_ke_framer_status(const nts_ke_framer *f) { return f->status; }

/* Advances next_rec over every record wholly held; stops at End of Message.
 * Returns the new status given that `pending` input bytes did not fit. */
static nts_ke_frame_status scan_records(nts_ke_framer *f, size_t pending)
{
  while (f->len - f->next_rec >= NTS_KE_REC_HDR_LEN) {
    wire_rd r;
    wire_rd_init(&r, f->buf + f->next_rec, f->len - f->next_rec);
    uint16_t type = wire_get_u16(&r) & NTS_KE_TYPE_MASK;
    size_t end = f->next_rec + NTS_KE_REC_HDR_LEN + wire_get_u16(&r);
    if (end > NTS_KE_MAX_MSG)
      return NTS_KE_FRAME_TOO_LONG; /* known before the body arrives */
    if (end > f->len)
      break;
    f->next_rec = end;
    if (type == NTS_KE_REC_EOM) {
      f->msg_len = end;
      return (f->len > end || pending > 0) ? NTS_KE_FRAME_TRAILING : NTS_KE_FRAME_COMPLETE;
    }
  }
  /* A full buffer with no End of Message can only grow past the limit. */
  return f->len == NTS_KE_MAX_MSG ? NTS_KE_FRAME_TOO_LONG : NTS_KE_FRAME_NEED_MORE;
}

nts_ke_frame_status nts_ke_framer_feed(nts_ke_framer *f, const uint8_t *data, size_t len)
{
  if (len == 0)
    return f->status;
  if (f->status == NTS_KE_FRAME_COMPLETE)
    f->status = NTS_KE_FRAME_TRAILING;
  if (f->status != NTS_KE_FRAME_NEED_MORE)
    return f->status;
  size_t room = NTS_KE_MAX_MSG - f->len;
  size_t n = len < room ? len : room;
  memcpy(f->buf + f->len, data, n);
  f->len += n;
  f->status = scan_records(f, len - n);
  return f->status;
}

const uint8_t *nts_ke_framer_msg(const nts_ke_framer *f, size_t *len)
{
  if (f->status != NTS_KE_FRAME_COMPLETE) {
    *len = 0;
    return NULL;
  }
  *len = f->msg_len;
  return f->buf;
}

/* ---- reading ------------------------------------------------------------ */

void nts_ke_iter_init(nts_ke_iter *it, const uint8_t *msg, size_t len)
{
  wire_rd_init(&it->rd, msg, len);
  it->malformed = false;
}

nts_ke_iter_status nts_ke_iter_next(nts_ke_iter *it, nts_ke_record *rec)
{
  if (it->malformed)
    return NTS_KE_ITER_MALFORMED;
  if (wire_rd_left(&it->rd) == 0)
    return NTS_KE_ITER_END;
  uint16_t word = wire_get_u16(&it->rd);
  uint16_t len = wire_get_u16(&it->rd);
  const uint8_t *body = wire_get_span(&it->rd, len);
  if (!wire_rd_ok(&it->rd)) {
    it->malformed = true;
    return NTS_KE_ITER_MALFORMED;
  }
  rec->critical = (word & NTS_KE_CRITICAL) != 0;
  rec->type = word & NTS_KE_TYPE_MASK;
  rec->body = body;
  rec->len = len;
  return NTS_KE_ITER_RECORD;
}

size_t nts_ke_iter_left(const nts_ke_iter *it)
{
  return it->malformed ? 0 : wire_rd_left(&it->rd);
}

bool nts_ke_rec_u16_count(const nts_ke_record *rec, size_t *count)
{
  *count = rec->len / 2;
  return (rec->len & 1) == 0;
}

uint16_t nts_ke_rec_u16_at(const nts_ke_record *rec, size_t i)
{
  if (i >= rec->len / 2)
    return 0;
  wire_rd r;
  wire_rd_init(&r, rec->body + 2 * i, 2);
  return wire_get_u16(&r);
}
