/* ke_summary: per-interval NTS-KE outcome counts and log decisions. */
#include "proto/ke_summary.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ke_summary {
  uint64_t n[KE_OUT_COUNT];
  uint64_t cookies;
  bool pressure; /* warned about the slots this interval */
};

static const char *const names[KE_OUT_COUNT] = {
    [KE_OUT_SERVED] = "served",
    [KE_OUT_NO_COMMON] = "no_common",
    [KE_OUT_BAD_REQUEST] = "bad_request",
    [KE_OUT_TLS] = "tls",
    [KE_OUT_NO_ALPN] = "no_alpn",
    [KE_OUT_CLOSED] = "closed",
    [KE_OUT_TIMEOUT] = "timeout",
    [KE_OUT_HELLO_TIMEOUT] = "hello_timeout",
    [KE_OUT_EVICTED] = "evicted",
    [KE_OUT_REFUSED_ACL] = "restrict",
    [KE_OUT_REFUSED_RATE] = "rate",
    [KE_OUT_REFUSED_PREFIX] = "prefix_cap",
    [KE_OUT_REFUSED_FULL] = "full",
    [KE_OUT_REFUSED_ERROR] = "error",
};

const char *ke_outcome_name(ke_outcome o) { return o < KE_OUT_COUNT ? names[o] : "?"; }

ke_summary *ke_summary_create(void) { return calloc(1, sizeof(ke_summary)); }

void ke_summary_destroy(ke_summary *s) { free(s); }

static bool is_failure(ke_outcome o) { return o > KE_OUT_SERVED && o <= KE_OUT_EVICTED; }

static bool is_pressure(ke_outcome o)
{
  return o == KE_OUT_EVICTED || o == KE_OUT_REFUSED_PREFIX || o == KE_OUT_REFUSED_FULL;
}

unsigned ke_summary_note(ke_summary *s, ke_outcome o, unsigned cookies)
{
  if (o >= KE_OUT_COUNT)
    return 0;
  unsigned bits = 0;
  if (is_failure(o) && s->n[o] == 0)
    bits |= KE_LOG_DETAIL;
  if (is_pressure(o) && !s->pressure) {
    s->pressure = true;
    bits |= KE_LOG_PRESSURE;
  }
  s->n[o]++;
  if (o == KE_OUT_SERVED)
    s->cookies += cookies;
  return bits;
}

uint64_t ke_summary_count(const ke_summary *s, ke_outcome o)
{
  return o < KE_OUT_COUNT ? s->n[o] : 0;
}

typedef struct out_buf {
  char *p;
  size_t cap, len;
} out_buf;

static void put(out_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out_buf *b, const char *fmt, ...)
{
  if (b->len >= b->cap)
    return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
  va_end(ap);
  if (n > 0)
    b->len = b->len + (size_t)n < b->cap ? b->len + (size_t)n : b->cap;
}

/* "; 12 failed (3 tls, 9 timeout)": the outcomes first..last. */
static void put_group(out_buf *b, const ke_summary *s, ke_outcome first, ke_outcome last,
                      const char *what)
{
  uint64_t total = 0;
  for (int o = first; o <= (int)last; o++)
    total += s->n[o];
  if (total == 0)
    return;
  put(b, "; %" PRIu64 " %s (", total, what);
  const char *sep = "";
  for (int o = first; o <= (int)last; o++) {
    if (s->n[o]) {
      put(b, "%s%" PRIu64 " %s", sep, s->n[o], names[o]);
      sep = ", ";
    }
  }
  put(b, ")");
}

bool ke_summary_take(ke_summary *s, double seconds, char *out, size_t cap)
{
  if (cap)
    out[0] = '\0';
  bool any = false;
  for (int o = 0; o < KE_OUT_COUNT; o++)
    any = any || s->n[o] != 0;
  if (any && cap) {
    out_buf b = {out, cap, 0};
    put(&b, "NTS-KE in the last %.0f s: %" PRIu64 " served (%" PRIu64 " cookies)", seconds,
        s->n[KE_OUT_SERVED], s->cookies);
    put_group(&b, s, KE_OUT_NO_COMMON, KE_OUT_EVICTED, "failed");
    put_group(&b, s, KE_OUT_REFUSED_ACL, KE_OUT_REFUSED_ERROR, "refused");
  }
  memset(s, 0, sizeof(*s));
  return any && cap;
}
