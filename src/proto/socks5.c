/* socks5: RFC 1928 / RFC 1929 client messages.  See socks5.h. */
#include "proto/socks5.h"

#include <string.h>

#include "proto/wire.h"

static const char *const status_names[SOCKS5_STATUS_COUNT] = {
    [SOCKS5_OK] = "ok",
    [SOCKS5_NEED_MORE] = "need-more",
    [SOCKS5_ERR_VERSION] = "bad-version",
    [SOCKS5_ERR_RESERVED] = "bad-reserved",
    [SOCKS5_ERR_ATYP] = "unknown-address-type",
    [SOCKS5_ERR_NAME_LEN] = "empty-name",
    [SOCKS5_ERR_NO_METHOD] = "no-acceptable-method",
    [SOCKS5_ERR_METHOD] = "method-not-offered",
    [SOCKS5_ERR_AUTH] = "auth-failed",
    [SOCKS5_ERR_FRAG] = "fragment",
    [SOCKS5_ERR_TRUNCATED] = "truncated",
    [SOCKS5_ERR_GENERAL_FAILURE] = "general-failure",
    [SOCKS5_ERR_NOT_ALLOWED] = "not-allowed",
    [SOCKS5_ERR_NETWORK_UNREACHABLE] = "network-unreachable",
    [SOCKS5_ERR_HOST_UNREACHABLE] = "host-unreachable",
    [SOCKS5_ERR_REFUSED] = "connection-refused",
    [SOCKS5_ERR_TTL_EXPIRED] = "ttl-expired",
    [SOCKS5_ERR_COMMAND_NOT_SUPPORTED] = "command-not-supported",
    [SOCKS5_ERR_ATYP_NOT_SUPPORTED] = "address-type-not-supported",
    [SOCKS5_ERR_REP_UNKNOWN] = "unknown-reply",
    [SOCKS5_ERR_ARG] = "bad-argument",
    [SOCKS5_ERR_SPACE] = "no-space",
};

const char *socks5_status_name(socks5_status s)
{
  if ((unsigned)s >= SOCKS5_STATUS_COUNT || !status_names[s])
    return "unknown";
  return status_names[s];
}

socks5_status socks5_rep_status(uint8_t rep)
{
  if (rep == 0)
    return SOCKS5_OK;
  if (rep > 8)
    return SOCKS5_ERR_REP_UNKNOWN;
  /* REP 1..8 map in order onto the failure statuses. */
  return (socks5_status)(SOCKS5_ERR_GENERAL_FAILURE + (rep - 1));
}

/* ---- addresses ---------------------------------------------------------- */

void socks5_addr_ipv4(socks5_addr *a, const uint8_t ip[4], uint16_t port)
{
  memset(a, 0, sizeof(*a));
  a->atyp = SOCKS5_ATYP_IPV4;
  memcpy(a->bytes, ip, 4);
  a->port = port;
}

void socks5_addr_ipv6(socks5_addr *a, const uint8_t ip[16], uint16_t port)
{
  memset(a, 0, sizeof(*a));
  a->atyp = SOCKS5_ATYP_IPV6;
  memcpy(a->bytes, ip, 16);
  a->port = port;
}

socks5_status socks5_addr_name(socks5_addr *a, const char *name, size_t len,
                               uint16_t port)
{
  memset(a, 0, sizeof(*a));
  if (!name || len == 0 || len > SOCKS5_NAME_MAX)
    return SOCKS5_ERR_ARG;
  a->atyp = SOCKS5_ATYP_NAME;
  a->name_len = (uint8_t)len;
  memcpy(a->bytes, name, len);
  a->port = port;
  return SOCKS5_OK;
}

/* ATYP, address and port as RFC 1928 5 lays them out. */
static socks5_status put_addr(wire_wr *w, const socks5_addr *a)
{
  if (!a)
    return SOCKS5_ERR_ARG;
  wire_put_u8(w, a->atyp);
  switch (a->atyp) {
  case SOCKS5_ATYP_IPV4:
    wire_put_bytes(w, a->bytes, 4);
    break;
  case SOCKS5_ATYP_IPV6:
    wire_put_bytes(w, a->bytes, 16);
    break;
  case SOCKS5_ATYP_NAME:
    if (a->name_len == 0)
      return SOCKS5_ERR_ARG;
    wire_put_u8(w, a->name_len);
    wire_put_bytes(w, a->bytes, a->name_len);
    break;
  default:
    return SOCKS5_ERR_ARG;
  }
  wire_put_u16(w, a->port);
  return SOCKS5_OK;
}

/* ATYP, address and port from p[0..len): NEED_MORE while incomplete, an
 * error at the first wrong byte; *used is the length on OK. */
static socks5_status get_addr(const uint8_t *p, size_t len, socks5_addr *a,
                              size_t *used)
{
  if (len < 1)
    return SOCKS5_NEED_MORE;
  size_t alen, hdr = 1;
  switch (p[0]) {
  case SOCKS5_ATYP_IPV4:
    alen = 4;
    break;
  case SOCKS5_ATYP_IPV6:
    alen = 16;
    break;
  case SOCKS5_ATYP_NAME:
    if (len < 2)
      return SOCKS5_NEED_MORE;
    if (p[1] == 0)
      return SOCKS5_ERR_NAME_LEN;
    alen = p[1];
    hdr = 2;
    break;
  default:
    return SOCKS5_ERR_ATYP;
  }
  if (len < hdr + alen + 2)
    return SOCKS5_NEED_MORE;
  wire_rd r;
  wire_rd_init(&r, p + hdr, alen + 2);
  memset(a, 0, sizeof(*a));
  a->atyp = p[0];
  a->name_len = p[0] == SOCKS5_ATYP_NAME ? (uint8_t)alen : 0;
  wire_get_bytes(&r, a->bytes, alen);
  a->port = wire_get_u16(&r);
  *used = hdr + alen + 2;
  return wire_rd_ok(&r) ? SOCKS5_OK : SOCKS5_NEED_MORE;
}

/* ---- builders ----------------------------------------------------------- */

static socks5_status finish(const wire_wr *w, socks5_status st, size_t *out_len)
{
  *out_len = 0;
  if (st != SOCKS5_OK)
    return st;
  if (!wire_wr_ok(w))
    return SOCKS5_ERR_SPACE;
  *out_len = wire_wr_len(w);
  return SOCKS5_OK;
}

socks5_status socks5_build_greeting(uint8_t *out, size_t cap, unsigned offer,
                                    size_t *out_len)
{
  wire_wr w;
  wire_wr_init(&w, out, cap);
  if (offer == 0 || (offer & ~(SOCKS5_OFFER_NONE | SOCKS5_OFFER_USERPASS)))
    return finish(&w, SOCKS5_ERR_ARG, out_len);
  uint8_t n = (offer & SOCKS5_OFFER_NONE ? 1 : 0) +
              (offer & SOCKS5_OFFER_USERPASS ? 1 : 0);
  wire_put_u8(&w, SOCKS5_VERSION);
  wire_put_u8(&w, n);
  if (offer & SOCKS5_OFFER_NONE)
    wire_put_u8(&w, SOCKS5_METHOD_NONE);
  if (offer & SOCKS5_OFFER_USERPASS)
    wire_put_u8(&w, SOCKS5_METHOD_USERPASS);
  return finish(&w, SOCKS5_OK, out_len);
}

socks5_status socks5_build_auth(uint8_t *out, size_t cap, const uint8_t *user,
                                size_t user_len, const uint8_t *pass,
                                size_t pass_len, size_t *out_len)
{
  wire_wr w;
  wire_wr_init(&w, out, cap);
  /* An empty password is valid (PLEN 0: what `user@` in a URL means). */
  if (!user || (!pass && pass_len > 0) || user_len == 0 || user_len > SOCKS5_CRED_MAX ||
      pass_len > SOCKS5_CRED_MAX)
    return finish(&w, SOCKS5_ERR_ARG, out_len);
  wire_put_u8(&w, SOCKS5_AUTH_VERSION);
  wire_put_u8(&w, (uint8_t)user_len);
  wire_put_bytes(&w, user, user_len);
  wire_put_u8(&w, (uint8_t)pass_len);
  if (pass_len > 0)
    wire_put_bytes(&w, pass, pass_len);
  return finish(&w, SOCKS5_OK, out_len);
}

socks5_status socks5_build_request(uint8_t *out, size_t cap, uint8_t cmd,
                                   const socks5_addr *dst, size_t *out_len)
{
  wire_wr w;
  wire_wr_init(&w, out, cap);
  if (cmd != SOCKS5_CMD_CONNECT && cmd != SOCKS5_CMD_UDP_ASSOCIATE)
    return finish(&w, SOCKS5_ERR_ARG, out_len);
  wire_put_u8(&w, SOCKS5_VERSION);
  wire_put_u8(&w, cmd);
  wire_put_u8(&w, 0); /* RSV */
  return finish(&w, put_addr(&w, dst), out_len);
}

socks5_status socks5_build_udp(uint8_t *out, size_t cap, const socks5_addr *dst,
                               const uint8_t *payload, size_t payload_len,
                               size_t *out_len)
{
  wire_wr w;
  wire_wr_init(&w, out, cap);
  if (!payload && payload_len > 0)
    return finish(&w, SOCKS5_ERR_ARG, out_len);
  wire_put_u16(&w, 0); /* RSV */
  wire_put_u8(&w, 0);  /* FRAG: we never fragment */
  socks5_status st = put_addr(&w, dst);
  if (payload_len > 0)
    wire_put_bytes(&w, payload, payload_len);
  return finish(&w, st, out_len);
}

/* ---- parsers ------------------------------------------------------------ */

socks5_status socks5_parse_method(const uint8_t *buf, size_t len,
                                  unsigned offer, uint8_t *method,
                                  size_t *consumed)
{
  *consumed = 0;
  if (len < 1)
    return SOCKS5_NEED_MORE;
  if (buf[0] != SOCKS5_VERSION)
    return SOCKS5_ERR_VERSION;
  if (len < 2)
    return SOCKS5_NEED_MORE;
  if (buf[1] == SOCKS5_METHOD_UNACCEPTABLE)
    return SOCKS5_ERR_NO_METHOD;
  bool offered = (buf[1] == SOCKS5_METHOD_NONE && (offer & SOCKS5_OFFER_NONE)) ||
                 (buf[1] == SOCKS5_METHOD_USERPASS && (offer & SOCKS5_OFFER_USERPASS));
  if (!offered)
    return SOCKS5_ERR_METHOD;
  *method = buf[1];
  *consumed = SOCKS5_METHOD_REPLY_LEN;
  return SOCKS5_OK;
}

socks5_status socks5_parse_auth(const uint8_t *buf, size_t len, size_t *consumed)
{
  *consumed = 0;
  if (len < 1)
    return SOCKS5_NEED_MORE;
  if (buf[0] != SOCKS5_AUTH_VERSION)
    return SOCKS5_ERR_VERSION;
  if (len < 2)
    return SOCKS5_NEED_MORE;
  /* RFC 1929: any status but 0 is a failure. */
  if (buf[1] != 0)
    return SOCKS5_ERR_AUTH;
  *consumed = SOCKS5_AUTH_REPLY_LEN;
  return SOCKS5_OK;
}

socks5_status socks5_parse_reply(const uint8_t *buf, size_t len,
                                 socks5_addr *bound, size_t *consumed)
{
  *consumed = 0;
  if (len < 1)
    return SOCKS5_NEED_MORE;
  if (buf[0] != SOCKS5_VERSION)
    return SOCKS5_ERR_VERSION;
  if (len < 2)
    return SOCKS5_NEED_MORE;
  /* A failure needs nothing after REP; the proxy closes the connection. */
  socks5_status rep = socks5_rep_status(buf[1]);
  if (rep != SOCKS5_OK)
    return rep;
  if (len < 3)
    return SOCKS5_NEED_MORE;
  if (buf[2] != 0)
    return SOCKS5_ERR_RESERVED;
  size_t used = 0;
  socks5_status st = get_addr(buf + 3, len - 3, bound, &used);
  if (st == SOCKS5_OK)
    *consumed = 3 + used;
  return st;
}

socks5_status socks5_parse_udp(const uint8_t *buf, size_t len, socks5_addr *src,
                               size_t *payload_off)
{
  *payload_off = 0;
  /* Bytes in wire order, as in the stream parsers, but the datagram is
   * whole: what would be NEED_MORE there is a truncation here. */
  if (len >= 1 && buf[0] != 0)
    return SOCKS5_ERR_RESERVED;
  if (len >= 2 && buf[1] != 0)
    return SOCKS5_ERR_RESERVED;
  if (len >= 3 && buf[2] != 0)
    return SOCKS5_ERR_FRAG;
  if (len < 3)
    return SOCKS5_ERR_TRUNCATED;
  size_t used = 0;
  socks5_status st = get_addr(buf + 3, len - 3, src, &used);
  if (st == SOCKS5_NEED_MORE)
    return SOCKS5_ERR_TRUNCATED;
  if (st == SOCKS5_OK)
    *payload_off = 3 + used;
  return st;
}
