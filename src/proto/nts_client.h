/* nts_client: the client side of NTS for one source — the keys and the
 * cookie jar from the last NTS-KE, and the unique identifier of the request
 * in flight.  Cookies are used first-in first-out, each exactly once
 * (RFC 8915 5.7: reuse would link requests).  proto/nts_ntp builds the
 * requests and checks the responses. */
#ifndef NTSD_PROTO_NTS_CLIENT_H
#define NTSD_PROTO_NTS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/aead.h"
#include "proto/nts_ke_msg.h"

#define NTS_CLIENT_JAR 8 /* cookies a full jar holds */
#define NTS_CLIENT_MAX_UID 256 /* longest unique identifier kept for a request */
#define NTS_CLIENT_RECENT 8    /* identifiers of earlier requests remembered */
#define NTS_CLIENT_RECENT_LEN 32 /* bytes of each remembered (ours are 32) */

/* Why something from a source was refused, for tamper evidence: each is
 * either an attack or a broken path, never a normal event. */
typedef enum nts_client_tamper {
  NTS_TAMPER_BAD_AUTH = 0, /* authenticator missing, misplaced or not verifying */
  NTS_TAMPER_REPLAY,       /* the unique identifier of an earlier request of ours */
  NTS_TAMPER_UNEXPECTED,   /* an identifier we never sent, none, or nothing in flight */
  NTS_TAMPER_FORGED_NAK,   /* a NAK not for the request in flight, or one that an
                              authentic response to the same request contradicted */
  NTS_TAMPER_MALFORMED,    /* extension fields that do not parse */
  NTS_TAMPER_KE_CERT,      /* NTS-KE: the server's certificate did not verify */
  NTS_TAMPER_COUNT
} nts_client_tamper;

/* "bad_auth", "replay", "unexpected", "forged_nak", "malformed", "ke_cert". */
const char *nts_client_tamper_name(nts_client_tamper t);

typedef struct nts_client nts_client;

nts_client *nts_client_create(void);
void nts_client_destroy(nts_client *c); /* wipes keys and cookies */

/* Installs a new NTS-KE session: AEAD, C2S/S2C keys (key_len bytes each)
 * and n cookies of cookie_len bytes (laid out consecutively).  Replaces the
 * previous session and its cookies.  False on bad sizes or AEAD. */
bool nts_client_set_session(nts_client *c, uint16_t aead, const uint8_t *c2s,
                            const uint8_t *s2c, size_t key_len, const uint8_t *cookies,
                            size_t n, size_t cookie_len);
/* Forgets keys and cookies (a new NTS-KE is needed). */
void nts_client_reset(nts_client *c);

bool nts_client_has_session(const nts_client *c);
unsigned nts_client_cookie_count(const nts_client *c);
size_t nts_client_cookie_len(const nts_client *c);
uint16_t nts_client_aead(const nts_client *c);

/* Takes the oldest unused cookie out of the jar (copied to out, cap bytes);
 * returns its length, 0 if the jar is empty. */
size_t nts_client_take_cookie(nts_client *c, uint8_t *out, size_t cap);
/* Adds a cookie received from the server (drops the oldest if full).
 * False if its length is 0 or above NTS_KE_MAX_COOKIE_LEN. */
bool nts_client_add_cookie(nts_client *c, const uint8_t *cookie, size_t len);

/* The session's expanded traffic keys (borrowed; unset, id 0, without a
 * session).  For proto/nts_ntp. */
const nts_aead_key *nts_client_c2s(const nts_client *c);
const nts_aead_key *nts_client_s2c(const nts_client *c);

/* The unique identifier of the request in flight.  Only one request is
 * answered: a response is accepted for the pending identifier, which is then
 * cleared, so a replayed response (with cookies already added once) is
 * refused.  Setting a new one supersedes the previous request.  set fails on
 * an empty or over-long uid (above NTS_CLIENT_MAX_UID); reset and
 * set_session clear it. */
bool nts_client_set_pending(nts_client *c, const uint8_t *uid, size_t len);
bool nts_client_is_pending(const nts_client *c, const uint8_t *uid, size_t len);
void nts_client_clear_pending(nts_client *c);
/* True if uid was one of the last NTS_CLIENT_RECENT identifiers set pending
 * (answered, superseded or still in flight); survives reset and new sessions,
 * so a replay from an older session is still recognised. */
bool nts_client_was_sent(const nts_client *c, const uint8_t *uid, size_t len);

#endif
