/* nts_client: per-source NTS keys and cookie jar. */
#include "proto/nts_client.h"

#include <stdlib.h>
#include <string.h>

typedef struct jar_cookie {
  size_t len;
  uint8_t data[NTS_KE_MAX_COOKIE_LEN];
} jar_cookie;

struct nts_client {
  bool have_session;
  uint16_t aead;
  size_t key_len;
  nts_aead_key c2s, s2c; /* expanded once per session */
  jar_cookie jar[NTS_CLIENT_JAR];
  unsigned head, count; /* FIFO: oldest at head */
  size_t pending_len;   /* 0: no request awaits a response */
  uint8_t pending_uid[NTS_CLIENT_MAX_UID];
  uint8_t recent[NTS_CLIENT_RECENT][NTS_CLIENT_RECENT_LEN]; /* ring of sent identifiers */
  unsigned recent_next, recent_n;
};

static const char *const tamper_names[NTS_TAMPER_COUNT] = {
    "bad_auth", "replay", "unexpected", "forged_nak", "malformed", "ke_cert"};

const char *nts_client_tamper_name(nts_client_tamper t)
{
  return (unsigned)t < NTS_TAMPER_COUNT ? tamper_names[t] : "?";
}

nts_client *nts_client_create(void) { return calloc(1, sizeof(nts_client)); }

void nts_client_reset(nts_client *c)
{
  nts_aead_key_wipe(&c->c2s);
  nts_aead_key_wipe(&c->s2c);
  nts_wipe(c->jar, sizeof(c->jar));
  c->have_session = false;
  c->aead = 0;
  c->key_len = 0;
  c->head = c->count = 0;
  nts_client_clear_pending(c);
}

void nts_client_destroy(nts_client *c)
{
  if (!c)
    return;
  nts_client_reset(c);
  free(c);
}

bool nts_client_set_session(nts_client *c, uint16_t aead, const uint8_t *c2s,
                            const uint8_t *s2c, size_t key_len, const uint8_t *cookies,
                            size_t n, size_t cookie_len)
{
  /* Checked before anything changes: a bad session replaces nothing. */
  nts_aead_key k_c2s, k_s2c;
  if (n > NTS_CLIENT_JAR || cookie_len == 0 || cookie_len > NTS_KE_MAX_COOKIE_LEN ||
      key_len != nts_aead_key_len(aead) || !nts_aead_key_set(&k_c2s, aead, c2s, key_len) ||
      !nts_aead_key_set(&k_s2c, aead, s2c, key_len)) {
    nts_aead_key_wipe(&k_c2s);
    nts_aead_key_wipe(&k_s2c);
    return false;
  }
  nts_client_reset(c);
  c->c2s = k_c2s;
  c->s2c = k_s2c;
  nts_aead_key_wipe(&k_c2s);
  nts_aead_key_wipe(&k_s2c);
  c->have_session = true;
  c->aead = aead;
  c->key_len = key_len;
  for (size_t i = 0; i < n; i++)
    nts_client_add_cookie(c, cookies + i * cookie_len, cookie_len);
  return true;
}

bool nts_client_has_session(const nts_client *c) { return c->have_session; }
unsigned nts_client_cookie_count(const nts_client *c) { return c->count; }
uint16_t nts_client_aead(const nts_client *c) { return c->aead; }

size_t nts_client_cookie_len(const nts_client *c)
{
  return c->count ? c->jar[c->head].len : 0;
}

size_t nts_client_take_cookie(nts_client *c, uint8_t *out, size_t cap)
{
  if (c->count == 0)
    return 0;
  jar_cookie *j = &c->jar[c->head];
  size_t len = j->len;
  if (len > cap)
    return 0;
  memcpy(out, j->data, len);
  nts_wipe(j, sizeof(*j));
  c->head = (c->head + 1) % NTS_CLIENT_JAR;
  c->count--;
  return len;
}

bool nts_client_add_cookie(nts_client *c, const uint8_t *cookie, size_t len)
{
  if (len == 0 || len > NTS_KE_MAX_COOKIE_LEN)
    return false;
  if (c->count == NTS_CLIENT_JAR) { /* full: the oldest goes */
    nts_wipe(&c->jar[c->head], sizeof(jar_cookie));
    c->head = (c->head + 1) % NTS_CLIENT_JAR;
    c->count--;
  }
  jar_cookie *j = &c->jar[(c->head + c->count) % NTS_CLIENT_JAR];
  memcpy(j->data, cookie, len);
  j->len = len;
  c->count++;
  return true;
}

const nts_aead_key *nts_client_c2s(const nts_client *c) { return &c->c2s; }
const nts_aead_key *nts_client_s2c(const nts_client *c) { return &c->s2c; }

bool nts_client_set_pending(nts_client *c, const uint8_t *uid, size_t len)
{
  nts_client_clear_pending(c);
  if (len == 0 || len > NTS_CLIENT_MAX_UID)
    return false;
  memcpy(c->pending_uid, uid, len);
  c->pending_len = len;
  /* Remembered by their first bytes: enough to tell our random identifiers
   * apart, and the ring stays small. */
  size_t keep = len < NTS_CLIENT_RECENT_LEN ? len : NTS_CLIENT_RECENT_LEN;
  memset(c->recent[c->recent_next], 0, NTS_CLIENT_RECENT_LEN);
  memcpy(c->recent[c->recent_next], uid, keep);
  c->recent_next = (c->recent_next + 1) % NTS_CLIENT_RECENT;
  if (c->recent_n < NTS_CLIENT_RECENT)
    c->recent_n++;
  return true;
}

bool nts_client_was_sent(const nts_client *c, const uint8_t *uid, size_t len)
{
  if (len == 0 || len > NTS_CLIENT_MAX_UID)
    return false;
  uint8_t key[NTS_CLIENT_RECENT_LEN] = {0};
  memcpy(key, uid, len < sizeof(key) ? len : sizeof(key));
  for (unsigned i = 0; i < c->recent_n; i++)
    if (memcmp(c->recent[i], key, sizeof(key)) == 0)
      return true;
  return false;
}

/* The identifier is not secret (it travels in the clear): plain memcmp. */
bool nts_client_is_pending(const nts_client *c, const uint8_t *uid, size_t len)
{
  return c->pending_len != 0 && len == c->pending_len && memcmp(uid, c->pending_uid, len) == 0;
}

void nts_client_clear_pending(nts_client *c)
{
  memset(c->pending_uid, 0, sizeof(c->pending_uid));
  c->pending_len = 0;
}
