/* netaddr: sockaddr helpers. */
#include "daemon/netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <nettle/md5.h>
#include <stdio.h>
#include <string.h>

bool netaddr_to_acl(const struct sockaddr *sa, enum acl_family *fam, uint8_t addr[16])
{
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
    *fam = ACL_INET;
    memcpy(addr, &s4->sin_addr, 4);
    return true;
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
    if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
      *fam = ACL_INET;
      memcpy(addr, s6->sin6_addr.s6_addr + 12, 4);
    } else {
      *fam = ACL_INET6;
      memcpy(addr, s6->sin6_addr.s6_addr, 16);
    }
    return true;
  }
  return false;
}

const char *netaddr_str(const struct sockaddr *sa, char *buf, size_t cap)
{
  const void *a = NULL;
  if (sa->sa_family == AF_INET)
    a = &((const struct sockaddr_in *)sa)->sin_addr;
  else if (sa->sa_family == AF_INET6)
    a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
  if (!a || !inet_ntop(sa->sa_family, a, buf, (socklen_t)cap))
    snprintf(buf, cap, "?");
  return buf;
}

uint16_t netaddr_port(const struct sockaddr *sa)
{
  if (sa->sa_family == AF_INET)
    return ntohs(((const struct sockaddr_in *)sa)->sin_port);
  if (sa->sa_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
  return 0;
}

const char *netaddr_str_port(const struct sockaddr *sa, char *buf, size_t cap)
{
  char a[INET6_ADDRSTRLEN];
  netaddr_str(sa, a, sizeof(a));
  if (sa->sa_family == AF_INET6)
    snprintf(buf, cap, "[%s]:%u", a, netaddr_port(sa));
  else
    snprintf(buf, cap, "%s:%u", a, netaddr_port(sa));
  return buf;
}

bool netaddr_parse(const char *addr, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
  memset(ss, 0, sizeof(*ss));
  struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
  if (addr[0] == '\0' || strcmp(addr, "*") == 0) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    s4->sin_addr.s_addr = htonl(INADDR_ANY);
    *len = sizeof(*s4);
    return true;
  }
  if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    *len = sizeof(*s4);
    return true;
  }
  if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    *len = sizeof(*s6);
    return true;
  }
  return false;
}

socklen_t netaddr_len(const struct sockaddr *sa)
{
  return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

uint32_t netaddr_refid(const struct sockaddr *sa)
{
  enum acl_family fam;
  uint8_t a[16];
  if (!netaddr_to_acl(sa, &fam, a))
    return 0;
  if (fam == ACL_INET)
    return ((uint32_t)a[0] << 24) | ((uint32_t)a[1] << 16) | ((uint32_t)a[2] << 8) | a[3];
  struct md5_ctx ctx;
  uint8_t digest[MD5_DIGEST_SIZE];
  md5_init(&ctx);
  md5_update(&ctx, 16, a);
  md5_digest(&ctx, sizeof(digest), digest);
  return ((uint32_t)digest[0] << 24) | ((uint32_t)digest[1] << 16) |
         ((uint32_t)digest[2] << 8) | digest[3];
}
