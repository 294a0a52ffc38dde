/* acl: longest-prefix restrict table.  Lookups run on the server's hot
 * path: the table is a small array kept sorted by prefix length (longest
 * first), so the first match wins and nothing is allocated. */
#include "proto/acl.h"

#include <stdlib.h>
#include <string.h>

typedef struct acl_entry {
  uint8_t fam;
  uint8_t prefix;
  uint8_t addr[16];
  uint32_t flags;
} acl_entry;

struct ntp_acl {
  acl_entry *e;
  size_t n, cap;
};

ntp_acl *ntp_acl_create(void) { return calloc(1, sizeof(ntp_acl)); }

void ntp_acl_destroy(ntp_acl *acl)
{
  if (!acl)
    return;
  free(acl->e);
  free(acl);
}

static void mask_addr(uint8_t *out, const uint8_t *in, unsigned prefix, size_t alen)
{
  for (size_t i = 0; i < alen; i++) {
    unsigned bits = prefix > i * 8 ? prefix - (unsigned)i * 8 : 0;
    uint8_t m = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));
    out[i] = in[i] & m;
  }
}

static bool match(const acl_entry *e, const uint8_t *addr, size_t alen)
{
  uint8_t m[16];
  mask_addr(m, addr, e->prefix, alen);
  return memcmp(m, e->addr, alen) == 0;
}

bool ntp_acl_set(ntp_acl *acl, enum acl_family fam, const uint8_t *addr, unsigned prefix,
                 uint32_t flags, bool remove)
{
  size_t alen = fam == ACL_INET ? 4 : 16;
  if ((fam != ACL_INET && fam != ACL_INET6) || prefix > alen * 8)
    return false;
  acl_entry ne = {.fam = (uint8_t)fam, .prefix = (uint8_t)prefix, .flags = flags};
  mask_addr(ne.addr, addr, prefix, alen);

  for (size_t i = 0; i < acl->n; i++) {
    acl_entry *e = &acl->e[i];
    if (e->fam == ne.fam && e->prefix == ne.prefix && memcmp(e->addr, ne.addr, alen) == 0) {
      if (remove) {
        memmove(e, e + 1, (acl->n - i - 1) * sizeof(*e));
        acl->n--;
      } else {
        e->flags = flags;
      }
      return true;
    }
  }
  if (remove)
    return true;
  if (acl->n == acl->cap) {
    size_t nc = acl->cap ? acl->cap * 2 : 8;
    acl_entry *ne2 = realloc(acl->e, nc * sizeof(*ne2));
    if (!ne2)
      return false;
    acl->e = ne2;
    acl->cap = nc;
  }
  /* Insert keeping longest prefix first. */
  size_t pos = 0;
  while (pos < acl->n && acl->e[pos].prefix >= ne.prefix)
    pos++;
  memmove(&acl->e[pos + 1], &acl->e[pos], (acl->n - pos) * sizeof(acl_entry));
  acl->e[pos] = ne;
  acl->n++;
  return true;
}

uint32_t ntp_acl_lookup(const ntp_acl *acl, enum acl_family fam, const uint8_t *addr)
{
  size_t alen = fam == ACL_INET ? 4 : 16;
  for (size_t i = 0; i < acl->n; i++) {
    const acl_entry *e = &acl->e[i];
    if (e->fam == (uint8_t)fam && match(e, addr, alen))
      return e->flags;
  }
  return 0;
}

size_t ntp_acl_count(const ntp_acl *acl) { return acl->n; }

void ntp_acl_swap(ntp_acl *a, ntp_acl *b)
{
  ntp_acl t = *a;
  *a = *b;
  *b = t;
}

static const struct {
  const char *name;
  uint32_t bit;
} flag_names[] = {
    {"ignore", ACL_IGNORE},     {"noserve", ACL_NOSERVE},   {"noquery", ACL_NOQUERY},
    {"nomodify", ACL_NOMODIFY}, {"nopeer", ACL_NOPEER},     {"limited", ACL_LIMITED},
    {"kod", ACL_KOD},           {"notrap", ACL_NOTRAP},     {"notrust", ACL_NOTRUST},
    {"nomrulist", ACL_NOMRULIST}, {"version", ACL_VERSION}, {"ntpport", ACL_NTPPORT},
    {"noepeer", ACL_NOEPEER},
};

uint32_t ntp_acl_flag_from_name(const char *name)
{
  for (size_t i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++)
    if (strcmp(flag_names[i].name, name) == 0)
      return flag_names[i].bit;
  return 0;
}
