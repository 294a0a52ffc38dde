/* nts_ntp: the NTS extension fields for NTPv4 (RFC 8915 section 5), server
 * and client side.  docs/nts-ntp.md has the rules and the reasons.
 *
 * An NTS request is the 48-byte header followed by
 *
 *   Unique Identifier EF   (0x0104) >= 32 random bytes, echoed by the server
 *   NTS Cookie EF          (0x0204) one cookie, used once
 *   Cookie Placeholder EFs (0x0304) 0..7, each as long as the cookie EF:
 *                                   "send me this many more cookies"
 *   Authenticator EF       (0x0404) last: nonce length (2), ciphertext length
 *                                   (2), nonce, ciphertext (each zero-padded
 *                                   to 4), zero padding; AEAD with the C2S key
 *                                   over AD = the packet up to this field
 *
 * and the response is the header, the same Unique Identifier EF and an
 * Authenticator EF sealed with the S2C key whose plaintext is NTS Cookie EFs:
 * the new cookies only ever travel encrypted, so they cannot link requests.
 *
 * Trust zones.  Every extension field a receiver parses is tagged with where
 * it came from: untrusted (not covered by a verified authenticator: before
 * verification, or after the authenticator), authenticated (before a
 * verified authenticator: in its associated data) or encrypted (inside its
 * verified plaintext).  A client takes new cookies from the encrypted zone
 * only (nts_ntp_field_is_new_cookie).
 *
 * Pure: random bytes (unique identifiers, nonces) come from the caller;
 * nothing here allocates per packet. */
#ifndef NTSD_PROTO_NTS_NTP_H
#define NTSD_PROTO_NTS_NTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/aead.h"
#include "proto/ntp_pkt.h"
#include "proto/nts_client.h"
#include "proto/nts_cookie.h"

#define NTS_NTP_UID_LEN 32 /* what our client sends; RFC 8915 5.3 minimum */
#define NTS_NTP_MAX_UID_LEN NTS_CLIENT_MAX_UID /* longest accepted and echoed */
#define NTS_NTP_NONCE_LEN 16 /* Authenticator nonce we send */
/* RFC 8915 5.7: a client SHOULD NOT send more than 7 placeholders, so a
 * response carries at most 8 cookies. */
#define NTS_NTP_MAX_PLACEHOLDERS 7
#define NTS_NTP_MAX_COOKIES (1 + NTS_NTP_MAX_PLACEHOLDERS)
/* Bytes of cookie and placeholder EFs a client request may hold: eight
 * 104-byte cookies, as chrony (MAX_TOTAL_COOKIE_LENGTH), so requests and
 * responses stay below common MTUs; with 168-byte cookies that is 5. */
#define NTS_NTP_MAX_COOKIE_BYTES (8 * (4 + 104))
/* Random bytes nts_ntp_server_finish needs: the Authenticator nonce, then
 * one 16-byte nonce per new cookie. */
#define NTS_NTP_SERVER_RAND_LEN \
  (NTS_NTP_NONCE_LEN + NTS_NTP_MAX_COOKIES * NTS_COOKIE_NONCE_LEN) /* 144 */

/* ---- trust zones ---------------------------------------------------- */

typedef enum nts_ntp_zone {
  NTS_NTP_UNTRUSTED = 0,  /* not covered by a verified authenticator */
  NTS_NTP_AUTHENTICATED,  /* in the associated data of a verified authenticator */
  NTS_NTP_ENCRYPTED,      /* inside the plaintext of a verified authenticator */
} nts_ntp_zone;

const char *nts_ntp_zone_name(nts_ntp_zone z);

/* One parsed extension field.  body points into the packet or into the
 * decrypted plaintext, body_len includes any padding. */
typedef struct nts_ntp_field {
  uint16_t type;
  nts_ntp_zone zone;
  size_t offset; /* of the field in the packet (or in the plaintext) */
  size_t len;    /* whole field, header included */
  const uint8_t *body;
  size_t body_len;
} nts_ntp_field;

/* The one rule for taking cookies: an NTS Cookie EF from the encrypted zone.
 * Cookies anywhere else (even authenticated ones) are ignored: sent in the
 * clear, they would let an observer link this request to the next. */
bool nts_ntp_field_is_new_cookie(const nts_ntp_field *f);

/* ---- server ----------------------------------------------------------- */

typedef enum nts_ntp_srv_result {
  NTS_NTP_SRV_NOT_NTS = 0,     /* no cookie, placeholder or authenticator EF:
                                  plain NTP (also shorter than a header) */
  NTS_NTP_SRV_OK,              /* authentic: respond with finish() */
  NTS_NTP_SRV_NAK,             /* cookie not opened: respond with an NTS NAK */
  NTS_NTP_SRV_DROP_MALFORMED,  /* bad NTS structure (see the reason) */
  NTS_NTP_SRV_DROP_AUTH,       /* the authenticator does not verify */
  NTS_NTP_SRV_RESULT_COUNT
} nts_ntp_srv_result;

/* Counter names: "not-nts", "ok", "nak", "malformed", "auth". */
const char *nts_ntp_srv_result_name(nts_ntp_srv_result r);

/* Why, in more detail (debug logs, tests). */
typedef enum nts_ntp_srv_reason {
  NTS_NTP_WHY_NONE = 0,
  NTS_NTP_WHY_TOO_LONG,        /* longer than NTP_MAX_PKT */
  NTS_NTP_WHY_BAD_EF,          /* extension fields do not parse (RFC 7822) */
  NTS_NTP_WHY_NO_UID,          /* no Unique Identifier EF */
  NTS_NTP_WHY_DUP_UID,         /* more than one */
  NTS_NTP_WHY_UID_LEN,         /* shorter than 32 or longer than we keep */
  NTS_NTP_WHY_NO_COOKIE,
  NTS_NTP_WHY_DUP_COOKIE,
  NTS_NTP_WHY_PLACEHOLDER_LEN, /* placeholder body not as long as the cookie */
  NTS_NTP_WHY_NO_AUTH,
  NTS_NTP_WHY_AUTH_NOT_LAST,   /* anything after the authenticator (a MAC too) */
  NTS_NTP_WHY_AUTH_FORMAT,     /* nonce/ciphertext lengths or padding */
  NTS_NTP_WHY_COOKIE,          /* cookie not opened (see the cookie result) */
  NTS_NTP_WHY_AUTH_FAIL,       /* AEAD verification failed */
  NTS_NTP_WHY_PLAINTEXT,       /* decrypted extension fields do not parse */
  NTS_NTP_WHY_COUNT
} nts_ntp_srv_reason;

const char *nts_ntp_srv_reason_name(nts_ntp_srv_reason r);

/* Per-thread scratch and the state between the two phases: the request's
 * unique identifier, the traffic keys from its cookie (S2C expanded), the
 * number of cookies to return.  Large (several KB); create one per packet
 * thread, reuse it for every request. */
typedef struct nts_ntp_srv nts_ntp_srv;

nts_ntp_srv *nts_ntp_srv_create(void);
void nts_ntp_srv_destroy(nts_ntp_srv *st); /* wipes; NULL is fine */

/* Phase 1: any bytes in (the whole datagram, header included).  Checks the
 * NTS fields, opens the cookie, verifies the authenticator with its C2S key
 * and parses the encrypted fields.  On NTS_NTP_SRV_OK, st is ready for
 * finish; on NAK and DROP_AUTH it still holds the unique identifier, so
 * nts_ntp_server_nak() can answer (RFC 8915 5.7: a server that cannot
 * validate the cookie or authenticate the request SHOULD send a NAK;
 * ntp_serve, which runs the server's whole path, does not for DROP_AUTH).
 * The NTP header itself (version, mode) is ntp_server's business. */
nts_ntp_srv_result nts_ntp_server_check(const nts_keyset *ks, const uint8_t *req, size_t len,
                                        nts_ntp_srv *st);

nts_ntp_srv_reason nts_ntp_srv_why(const nts_ntp_srv *st);
/* Result of opening the request's cookie (counters: decoded, decoded-old,
 * too-old, malformed, decode-error); NTS_COOKIE_MALFORMED if no cookie was
 * reached. */
nts_cookie_result nts_ntp_srv_cookie_result(const nts_ntp_srv *st);
uint16_t nts_ntp_srv_aead(const nts_ntp_srv *st);     /* 0 unless OK */
unsigned nts_ntp_srv_cookies(const nts_ntp_srv *st);  /* to return, 0 unless OK */

/* Optional, between the phases: seals the new cookies now, so finish (after
 * the transmit timestamp is stamped) only seals the authenticator.  rand is
 * the same buffer later given to finish (its cookie nonces are used here).
 * False if st is not OK or rand is short. */
bool nts_ntp_server_make_cookies(nts_ntp_srv *st, const nts_keyset *ks, const uint8_t *rand,
                                 size_t rand_len);

/* Phase 2, after ntp_server_prepare wrote the response header (hdr_len
 * bytes, normally 48) into resp and ntp_server_finish stamped its transmit
 * timestamp: appends the echoed Unique Identifier EF and the Authenticator
 * EF whose plaintext holds the new cookies (sealed with the current key of
 * ks, unless made already), sealed with S2C over AD = resp up to that field.
 * rand: NTS_NTP_SERVER_RAND_LEN bytes from the CSPRNG (at least 16 + 16 per
 * cookie).  The response is padded to exactly the request's length, and is
 * never longer: if hdr_len or cap leave less room, fewer cookies are sent
 * (RFC 8915 5.7 and anti-amplification).  Returns the total length, or 0 if
 * st is not OK or not even one field fits.  The keys in st are wiped either
 * way: one response per check. */
size_t nts_ntp_server_finish(nts_ntp_srv *st, const nts_keyset *ks, uint8_t *resp,
                             size_t hdr_len, size_t cap, const uint8_t *rand, size_t rand_len);

/* An NTS NAK: after ntp_server_kod(..., NTP_REFID('N','T','S','N'), ...) wrote
 * the kiss-o'-death header into resp, appends the request's Unique
 * Identifier EF and nothing else (no cookie, no authenticator: RFC 8915
 * 5.7).  Returns the total length, 0 if st holds no identifier (it does
 * after OK, NAK and DROP_AUTH) or cap is too small. */
size_t nts_ntp_server_nak(const nts_ntp_srv *st, uint8_t *resp, size_t hdr_len, size_t cap);

/* ---- client ----------------------------------------------------------- */

/* Builds a request into out: hdr (NTP_HDR_LEN bytes, from
 * ntp_client_build_request; may alias out), the Unique Identifier EF (uid:
 * 32..NTS_NTP_MAX_UID_LEN random bytes), one cookie taken from the jar (so
 * never reused), up to `placeholders` placeholders (clamped to 7 and to
 * NTS_NTP_MAX_COOKIE_BYTES) and the Authenticator EF (empty plaintext, C2S
 * key, the caller's random 16-byte nonce).  Records uid as the request in
 * flight.  Returns the length; 0 with no session, an empty jar, a bad uid
 * or too small a cap (the jar is untouched then). */
size_t nts_ntp_client_request(nts_client *c, const uint8_t *hdr, const uint8_t *uid,
                              size_t uid_len, const uint8_t nonce[NTS_NTP_NONCE_LEN],
                              unsigned placeholders, uint8_t *out, size_t cap);

typedef enum nts_ntp_cli_result {
  NTS_NTP_CLI_OK = 0,   /* authentic; *new_cookies cookies went into the jar */
  NTS_NTP_CLI_NAK,      /* NTS NAK for our request: cookie refused (unauthenticated,
                           so nothing changes; the caller counts it) */
  NTS_NTP_CLI_BAD_UID,  /* unique identifier missing or not the one in flight
                           (stale, replayed or already answered) */
  NTS_NTP_CLI_BAD_AUTH, /* authenticator missing, not last, or not verifying */
  NTS_NTP_CLI_MALFORMED,
  NTS_NTP_CLI_RESULT_COUNT
} nts_ntp_cli_result;

const char *nts_ntp_cli_result_name(nts_ntp_cli_result r);

/* Checks the NTS part of a response (the whole datagram) to the request
 * with unique identifier uid; the header tests stay in ntp_client.  On OK
 * the request is answered (a second response for it is BAD_UID) and the
 * cookies found in the encrypted plaintext are added to the jar; nothing
 * changes otherwise.  new_cookies may be NULL. */
nts_ntp_cli_result nts_ntp_client_response(nts_client *c, const uint8_t *resp, size_t len,
                                           const uint8_t *uid, size_t uid_len,
                                           unsigned *new_cookies);

/* Why a response refused with r (anything but OK) is evidence of tampering
 * or a broken path: a replay of one of our earlier requests' answers, a
 * response to a request we never sent, a forged NAK, a bad authenticator,
 * malformed fields.  NTS_NTP_CLI_NAK itself maps to FORGED_NAK: the caller
 * asks only when an authentic response to the same request followed it. */
nts_client_tamper nts_ntp_client_tamper(const nts_client *c, nts_ntp_cli_result r,
                                        const uint8_t *resp, size_t len);

#endif
