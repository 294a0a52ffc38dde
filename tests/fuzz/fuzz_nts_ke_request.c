/* libFuzzer target: bytes a client sent to our NTS-KE server.
 *
 * The input is the TLS plaintext stream.  It goes through the framer (whole
 * and in input-chosen pieces), the server's request parser, and the response
 * or error builder, and the answer goes back through the client's parser.
 * Besides the sanitizers, the target aborts when an invariant does not hold:
 *   - the framer's verdict does not depend on how the stream is split, and a
 *     complete message is a prefix of the stream ending in End of Message;
 *   - the parser's status is a defined value with a name, errors carry code 0
 *     exactly for unknown critical records and 1 otherwise, OK picks an AEAD
 *     that both sides support, hints are printable;
 *   - whatever we answer is a well-framed message that our own client parses
 *     to the matching verdict, and an accepted answer round-trips exactly;
 *   - a request built from input-chosen AEAD IDs gets the expected verdict. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/nts_ke.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint16_t ours[] = {NTS_KE_AEAD_AES_SIV_CMAC_256, NTS_KE_AEAD_AES_SIV_CMAC_512};

/* Big objects live outside the stack; the target runs single-threaded. */
static nts_ke_framer whole, pieces, echo;
static nts_ke_session sess;
static uint8_t out[NTS_KE_MAX_MSG];

static void check_framer(const uint8_t *data, size_t size)
{
  nts_ke_framer_init(&whole);
  nts_ke_framer_init(&pieces);
  nts_ke_frame_status a = nts_ke_framer_feed(&whole, data, size);
  /* Piece sizes 1..16 taken from the data itself. */
  for (size_t pos = 0, i = 0; pos < size; i++) {
    size_t n = 1 + (data[i % size] & 15);
    if (n > size - pos)
      n = size - pos;
    nts_ke_framer_feed(&pieces, data + pos, n);
    pos += n;
  }
  nts_ke_frame_status b = nts_ke_framer_status(&pieces);
  if (a != b || a >= NTS_KE_FRAME_STATUS_COUNT || nts_ke_frame_status_name(a)[0] == '?')
    abort();
  size_t la, lb;
  const uint8_t *ma = nts_ke_framer_msg(&whole, &la);
  const uint8_t *mb = nts_ke_framer_msg(&pieces, &lb);
  if ((a == NTS_KE_FRAME_COMPLETE) != (ma != NULL) || la != lb || (ma == NULL) != (mb == NULL))
    abort();
  if (ma && (la != size || la > NTS_KE_MAX_MSG || memcmp(ma, data, la) != 0 ||
             memcmp(mb, data, lb) != 0))
    abort();
  /* Complete or trailing: the records up to the first End of Message tile the
   * message exactly. */
  if (a == NTS_KE_FRAME_COMPLETE || a == NTS_KE_FRAME_TRAILING) {
    nts_ke_iter it;
    nts_ke_record rec;
    nts_ke_iter_init(&it, data, size);
    size_t end = 0;
    bool found = false;
    while (!found && nts_ke_iter_next(&it, &rec) == NTS_KE_ITER_RECORD) {
      end = (size_t)(rec.body - data) + rec.len;
      found = rec.type == NTS_KE_REC_EOM;
    }
    if (!found || end > NTS_KE_MAX_MSG || (a == NTS_KE_FRAME_COMPLETE) != (end == size))
      abort();
  }
}

static void check_printable(const char *s)
{
  size_t n = strnlen(s, NTS_KE_MAX_SERVER_NAME + 1);
  if (n > NTS_KE_MAX_SERVER_NAME)
    abort();
  for (size_t i = 0; i < n; i++) {
    if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
      abort();
  }
}

static void check_result(const nts_ke_request_result *r)
{
  nts_ke_req_status s = r->status;
  if (s >= NTS_KE_REQ_STATUS_COUNT || nts_ke_req_status_name(s)[0] == '?')
    abort();
  if (nts_ke_req_is_error(s)) {
    uint16_t want = s == NTS_KE_REQ_UNKNOWN_CRITICAL ? NTS_KE_ERR_UNRECOGNIZED_CRITICAL
                                                     : NTS_KE_ERR_BAD_REQUEST;
    if (r->error_code != want || r->aead != 0)
      abort();
  }
  if (s == NTS_KE_REQ_OK && r->aead != ours[0] && r->aead != ours[1])
    abort();
  if (s != NTS_KE_REQ_OK && r->aead != 0)
    abort();
  check_printable(r->server_hint);
}

/* Answers the request as the daemon would and checks our client agrees. */
static void check_answer(const nts_ke_request_result *r, const uint8_t *data, size_t size)
{
  size_t n;
  nts_ke_response_params p = {0};
  if (nts_ke_req_is_error(r->status)) {
    n = nts_ke_build_error(r->error_code, out, sizeof(out));
  } else {
    p.protocol_ok = r->status != NTS_KE_REQ_NO_PROTOCOL;
    p.aead_ok = r->status == NTS_KE_REQ_OK;
    p.aead = r->aead;
    p.n_cookies = 1 + size % NTS_KE_MAX_COOKIES;
    p.cookie_len = 1 + size % 200;
    static uint8_t cookie[200];
    for (size_t i = 0; i < p.n_cookies; i++)
      p.cookies[i] = cookie;
    memset(cookie, size ? data[0] : 0, sizeof(cookie));
    p.server = r->server_hint[0] ? r->server_hint : NULL; /* honour the hint */
    p.port = r->port_hint;
    n = nts_ke_server_build_response(&p, out, sizeof(out));
  }
  if (n == 0)
    abort();
  nts_ke_framer_init(&echo);
  if (nts_ke_framer_feed(&echo, out, n) != NTS_KE_FRAME_COMPLETE)
    abort();
  nts_ke_resp_status s = nts_ke_client_parse_response(out, n, ours, 2, &sess);
  switch (r->status) {
  case NTS_KE_REQ_OK:
    if (s != NTS_KE_RESP_OK || sess.aead != r->aead || sess.n_cookies != p.n_cookies ||
        sess.cookie_len != p.cookie_len ||
        memcmp(sess.cookies[0], p.cookies[0], p.cookie_len) != 0 ||
        strcmp(sess.server, r->server_hint) != 0 || sess.port != r->port_hint)
      abort();
    break;
  case NTS_KE_REQ_NO_PROTOCOL:
    if (s != NTS_KE_RESP_NO_PROTOCOL)
      abort();
    break;
  case NTS_KE_REQ_NO_AEAD:
    if (s != NTS_KE_RESP_NO_AEAD)
      abort();
    break;
  default:
    if (s != NTS_KE_RESP_SERVER_ERROR || sess.error_code != r->error_code)
      abort();
  }
}

/* A request built from the first bytes read as AEAD IDs. */
static void check_built_request(const uint8_t *data, size_t size)
{
  uint16_t ids[8];
  size_t n = size / 2 > 8 ? 8 : size / 2;
  uint16_t want = 0;
  for (size_t i = 0; i < n; i++) {
    ids[i] = (uint16_t)(data[2 * i] << 8 | data[2 * i + 1]) & 0x1f;
    if (!want && (ids[i] == ours[0] || ids[i] == ours[1]))
      want = ids[i];
  }
  size_t len = nts_ke_client_build_request(ids, n, out, sizeof(out));
  if ((len == 0) != (n == 0))
    abort();
  if (n == 0)
    return;
  nts_ke_request_result r;
  nts_ke_req_status s = nts_ke_server_parse_request(out, len, ours, 2, &r);
  if (s != (want ? NTS_KE_REQ_OK : NTS_KE_REQ_NO_AEAD) || r.aead != want)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size > 2 * NTS_KE_MAX_MSG)
    return 0;
  check_framer(data, size);
  nts_ke_request_result r;
  /* The parser is total: it also sees whatever the framer would refuse. */
  nts_ke_server_parse_request(data, size, ours, 2, &r);
  check_result(&r);
  check_answer(&r, data, size);
  /* Our order of preference must not matter for the outcome's kind. */
  const uint16_t rev[] = {ours[1], ours[0]};
  nts_ke_request_result r2;
  nts_ke_server_parse_request(data, size, rev, 2, &r2);
  if (r2.status != r.status || r2.aead != r.aead)
    abort();
  check_built_request(data, size);
  return 0;
}
