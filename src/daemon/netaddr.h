/* netaddr: socket address helpers shared by the client, server and
 * control code. */
#ifndef NTSD_DAEMON_NETADDR_H
#define NTSD_DAEMON_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "proto/acl.h"

#define NETADDR_STRLEN 64 /* "[v6]:port" fits */

/* Raw address bytes and family for ACL/rate-limit lookups.  IPv4-mapped
 * IPv6 addresses are treated as IPv4. */
bool netaddr_to_acl(const struct sockaddr *sa, enum acl_family *fam, uint8_t addr[16]);
/* "1.2.3.4" or "::1" (no port). */
const char *netaddr_str(const struct sockaddr *sa, char *buf, size_t cap);
/* "1.2.3.4:123" or "[::1]:123". */
const char *netaddr_str_port(const struct sockaddr *sa, char *buf, size_t cap);
uint16_t netaddr_port(const struct sockaddr *sa);
/* Parses an address literal and port into *ss ("" or "*" = IPv4 wildcard). */
bool netaddr_parse(const char *addr, uint16_t port, struct sockaddr_storage *ss,
                   socklen_t *len);
socklen_t netaddr_len(const struct sockaddr *sa);
/* The refid a server advertises for an upstream at this address: the IPv4
 * address, or the first 4 bytes of the MD5 of an IPv6 one (RFC 5905). */
uint32_t netaddr_refid(const struct sockaddr *sa);

#endif
