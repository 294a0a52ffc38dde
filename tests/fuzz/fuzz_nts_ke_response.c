/* libFuzzer target: bytes an NTS-KE server sent to our client.
 *
 * The input is the TLS plaintext stream.  It goes through the framer (whole
 * and byte by byte) and the client's response parser.  Besides the
 * sanitizers, the target aborts when an invariant does not hold:
 *   - the framer gives the same verdict and message for both feeding styles;
 *   - the parser's status is a defined value with a name, and a failure
 *     leaves no cookies or AEAD behind;
 *   - an accepted response has NTPv4, an AEAD we offered, 1..8 cookies of one
 *     length within bounds, a printable server name, and is "sound": rebuilt
 *     by our server code it parses to the same session;
 *   - an accepted response stops being accepted when cut short or when the
 *     AEAD it chose is no longer on offer;
 *   - the NTP TCP Port offer survives the rebuild, and is 0 after a failure. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/nts_ke.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint16_t offered[] = {NTS_KE_AEAD_AES_SIV_CMAC_512, NTS_KE_AEAD_AES_SIV_CMAC_256};

static nts_ke_framer whole, bytewise;
static nts_ke_session sess, again;
static uint8_t out[NTS_KE_MAX_MSG];

static void check_framer(const uint8_t *data, size_t size)
{
  nts_ke_framer_init(&whole);
  nts_ke_framer_init(&bytewise);
  nts_ke_frame_status a = nts_ke_framer_feed(&whole, data, size);
  for (size_t i = 0; i < size; i++) {
    if (nts_ke_framer_feed(&bytewise, data + i, 1) != NTS_KE_FRAME_NEED_MORE)
      break; /* terminal: later bytes cannot change TOO_LONG; COMPLETE -> TRAILING */
  }
  nts_ke_frame_status b = nts_ke_framer_status(&bytewise);
  /* Stopping at COMPLETE early means more bytes follow: TRAILING for whole. */
  size_t la, lb;
  const uint8_t *ma = nts_ke_framer_msg(&whole, &la);
  const uint8_t *mb = nts_ke_framer_msg(&bytewise, &lb);
  if (a >= NTS_KE_FRAME_STATUS_COUNT || nts_ke_frame_status_name(a)[0] == '?')
    abort();
  if (b == NTS_KE_FRAME_COMPLETE && lb < size) {
    if (a != NTS_KE_FRAME_TRAILING)
      abort();
  } else if (a != b || la != lb) {
    abort();
  }
  if (ma && (la != size || memcmp(ma, data, la) != 0))
    abort();
  if (mb && memcmp(mb, data, lb) != 0)
    abort();
}

static void check_session(nts_ke_resp_status s, const nts_ke_session *x)
{
  if (s >= NTS_KE_RESP_STATUS_COUNT || nts_ke_resp_status_name(s)[0] == '?')
    abort();
  if (s != NTS_KE_RESP_OK) {
    if (x->n_cookies != 0 || x->aead != 0 || x->cookie_len != 0 || x->server[0] != '\0' ||
        x->tcp_port != 0)
      abort();
    return;
  }
  if (x->next_proto != NTS_KE_PROTO_NTPV4 || (x->aead != offered[0] && x->aead != offered[1]))
    abort();
  if (x->n_cookies < 1 || x->n_cookies > NTS_KE_MAX_COOKIES || x->cookie_len < 1 ||
      x->cookie_len > NTS_KE_MAX_COOKIE_LEN)
    abort();
  size_t n = strnlen(x->server, sizeof(x->server));
  if (n > NTS_KE_MAX_SERVER_NAME)
    abort();
  for (size_t i = 0; i < n; i++) {
    if ((unsigned char)x->server[i] < 0x21 || (unsigned char)x->server[i] > 0x7e)
      abort();
  }
}

/* Serialize the session with the server code and parse it again. */
static void check_sound(void)
{
  nts_ke_response_params p = {.protocol_ok = true, .aead_ok = true, .aead = sess.aead};
  for (size_t i = 0; i < sess.n_cookies; i++)
    p.cookies[i] = sess.cookies[i];
  p.n_cookies = sess.n_cookies;
  p.cookie_len = sess.cookie_len;
  p.server = sess.server[0] ? sess.server : NULL;
  p.port = sess.port;
  p.tcp_port = sess.tcp_port;
  size_t n = nts_ke_server_build_response(&p, out, sizeof(out));
  if (n == 0)
    abort();
  if (nts_ke_client_parse_response(out, n, offered, 2, &again) != NTS_KE_RESP_OK ||
      again.aead != sess.aead || again.n_cookies != sess.n_cookies ||
      again.cookie_len != sess.cookie_len || strcmp(again.server, sess.server) != 0 ||
      again.port != sess.port || again.tcp_port != sess.tcp_port)
    abort();
  for (size_t i = 0; i < sess.n_cookies; i++) {
    if (memcmp(again.cookies[i], sess.cookies[i], sess.cookie_len) != 0)
      abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size > 2 * NTS_KE_MAX_MSG)
    return 0;
  check_framer(data, size);
  nts_ke_resp_status s = nts_ke_client_parse_response(data, size, offered, 2, &sess);
  check_session(s, &sess);
  if (s != NTS_KE_RESP_OK)
    return 0;
  /* Only an exact message with End of Message last can be accepted; the
   * parser itself sets no size limit, the framer does. */
  if (nts_ke_framer_status(&whole) !=
      (size <= NTS_KE_MAX_MSG ? NTS_KE_FRAME_COMPLETE : NTS_KE_FRAME_TOO_LONG))
    abort();
  check_sound();
  if (size == 0 || nts_ke_client_parse_response(data, size - 1, offered, 2, &again) ==
                       NTS_KE_RESP_OK)
    abort();
  const uint16_t other = sess.aead == offered[0] ? offered[1] : offered[0];
  if (nts_ke_client_parse_response(data, size, &other, 1, &again) !=
      NTS_KE_RESP_AEAD_NOT_OFFERED)
    abort();
  return 0;
}
