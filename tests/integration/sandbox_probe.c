/* Preloaded into ntsd by test_sandbox.py (LD_PRELOAD): every NTS-KE
 * exchange that exports its keys first makes one system call that neither
 * filter allows, then exports them as usual.  The call is personality's
 * read-only query, harmless where it is allowed (-F 0, -F -1).  It shows
 * how a refusal looks in a real daemon: which process logs what, and what
 * carries on. */
#include <dlfcn.h>
#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <openssl/ssl.h>

typedef int (*export_fn)(SSL *, unsigned char *, size_t, const char *, size_t,
                         const unsigned char *, size_t, int);
static export_fn real_export;

/* Resolved at load, long before any filter. */
__attribute__((constructor)) static void probe_init(void)
{
  void *sym = dlsym(RTLD_NEXT, "SSL_export_keying_material");
  memcpy(&real_export, &sym, sizeof(sym));
}

int SSL_export_keying_material(SSL *s, unsigned char *out, size_t olen, const char *label,
                               size_t llen, const unsigned char *context, size_t contextlen,
                               int use_context)
{
  syscall(SYS_personality, 0xffffffffUL); /* query only */
  if (!real_export)
    return 0;
  return real_export(s, out, olen, label, llen, context, contextlen, use_context);
}
