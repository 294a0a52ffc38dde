/* acl: the `restrict` table.  Entries are address/prefix pairs with flags;
 * a lookup returns the flags of the most specific (longest prefix) entry
 * that matches, as NTPsec does.  Addresses are 4 or 16 raw bytes. */
#ifndef NTSD_PROTO_ACL_H
#define NTSD_PROTO_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum acl_family { ACL_INET = 4, ACL_INET6 = 6 };

/* Flags with an effect on an NTP server. */
#define ACL_IGNORE   (1u << 0) /* drop everything */
#define ACL_NOSERVE  (1u << 1) /* no time service */
#define ACL_NOQUERY  (1u << 2) /* no mode 6/7 queries (we never answer them) */
#define ACL_NOMODIFY (1u << 3) /* no runtime changes over the network */
#define ACL_NOPEER   (1u << 4) /* no symmetric associations */
#define ACL_LIMITED  (1u << 5) /* rate limit per client */
#define ACL_KOD      (1u << 6) /* send RATE kiss when limited */
/* Flags NTPsec knows that have no effect here; kept so `ntsctl` can show
 * them. */
#define ACL_NOTRAP   (1u << 7)
#define ACL_NOTRUST  (1u << 8)
#define ACL_NOMRULIST (1u << 9)
#define ACL_VERSION  (1u << 10)
#define ACL_NTPPORT  (1u << 11)
#define ACL_NOEPEER  (1u << 12)

typedef struct ntp_acl ntp_acl;

ntp_acl *ntp_acl_create(void);
void ntp_acl_destroy(ntp_acl *acl);
/* Adds or replaces the entry for addr/prefix (bits beyond the prefix are
 * ignored).  With `remove`, deletes it instead (NTPsec `unrestrict`).
 * False on bad prefix length or out of memory. */
bool ntp_acl_set(ntp_acl *acl, enum acl_family fam, const uint8_t *addr, unsigned prefix,
                 uint32_t flags, bool remove);
/* Flags for a client address; 0 when nothing matches. */
uint32_t ntp_acl_lookup(const ntp_acl *acl, enum acl_family fam, const uint8_t *addr);
size_t ntp_acl_count(const ntp_acl *acl);
/* Exchanges the entries of a and b: a table built aside (a reloaded
 * configuration) takes the place of one that others borrow. */
void ntp_acl_swap(ntp_acl *a, ntp_acl *b);

/* Flag name <-> bit for the config parser; 0 if unknown. */
uint32_t ntp_acl_flag_from_name(const char *name);

#endif
