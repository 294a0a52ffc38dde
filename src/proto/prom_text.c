/* prom_text: Prometheus / OpenMetrics text. */
#include "proto/prom_text.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void put_mem(prom_w *w, const char *s, size_t n)
{
  if (w->overflow || n > w->cap - w->len) {
    w->overflow = true;
    return;
  }
  memcpy(w->buf + w->len, s, n);
  w->len += n;
}

static void put(prom_w *w, const char *s) { put_mem(w, s, strlen(s)); }

/* Escapes backslash and newline, and the double quote when quoted (label
 * values; OpenMetrics escapes it in help texts too). */
static void put_escaped(prom_w *w, const char *s, bool quote)
{
  for (; *s; s++) {
    if (*s == '\\')
      put(w, "\\\\");
    else if (*s == '\n')
      put(w, "\\n");
    else if (*s == '"' && quote)
      put(w, "\\\"");
    else
      put_mem(w, s, 1);
  }
}

/* A float as both formats read it; OpenMetrics wants a bucket bound with a
 * fraction ("1.0"), and takes it from Prometheus's own output. */
static void put_double(prom_w *w, double v, bool fraction)
{
  char tmp[40];
  if (isnan(v))
    put(w, "NaN");
  else if (isinf(v))
    put(w, v > 0 ? "+Inf" : "-Inf");
  else {
    snprintf(tmp, sizeof(tmp), "%.15g", v);
    put(w, tmp);
    if (fraction && !strpbrk(tmp, ".eE"))
      put(w, ".0");
  }
}

static void put_u64(prom_w *w, uint64_t v)
{
  char tmp[24];
  snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
  put(w, tmp);
}

void prom_init(prom_w *w, char *buf, size_t cap, bool openmetrics)
{
  memset(w, 0, sizeof(*w));
  w->buf = buf;
  w->cap = cap;
  w->openmetrics = openmetrics;
}

bool prom_name_ok(const char *name, bool label)
{
  if (!name || !*name || (*name >= '0' && *name <= '9'))
    return false;
  for (const char *c = name; *c; c++) {
    bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
              (*c >= '0' && *c <= '9') || *c == '_' || (*c == ':' && !label);
    if (!ok)
      return false;
  }
  return true;
}

static const char *type_name(prom_type t)
{
  return t == PROM_COUNTER ? "counter" : t == PROM_HISTOGRAM ? "histogram" : "gauge";
}

/* The family's name on its HELP and TYPE lines. */
static void put_family_name(prom_w *w)
{
  put(w, w->family);
  if (w->type == PROM_COUNTER && !w->openmetrics)
    put(w, "_total");
}

void prom_family(prom_w *w, const char *name, prom_type type, const char *help)
{
  snprintf(w->family, sizeof(w->family), "%s", name);
  w->type = type;
  put(w, "# HELP ");
  put_family_name(w);
  put(w, " ");
  put_escaped(w, help, w->openmetrics);
  put(w, "\n# TYPE ");
  put_family_name(w);
  put(w, " ");
  put(w, type_name(type));
  put(w, "\n");
}

/* NAME{labels,extra="..."} up to the space before the value. */
static void put_series(prom_w *w, const char *suffix, const prom_label *labels, size_t n,
                       const char *extra_name, double extra_value)
{
  put(w, w->family);
  put(w, suffix);
  if (n || extra_name) {
    put(w, "{");
    for (size_t i = 0; i < n; i++) {
      put(w, i ? ",": "");
      put(w, labels[i].name);
      put(w, "=\"");
      put_escaped(w, labels[i].value ? labels[i].value : "", true);
      put(w, "\"");
    }
    if (extra_name) {
      put(w, n ? "," : "");
      put(w, extra_name);
      put(w, "=\"");
      put_double(w, extra_value, w->openmetrics);
      put(w, "\"");
    }
    put(w, "}");
  }
  put(w, " ");
}

static const char *sample_suffix(const prom_w *w)
{
  return w->type == PROM_COUNTER ? "_total" : "";
}

void prom_sample(prom_w *w, const prom_label *labels, size_t n_labels, double v)
{
  put_series(w, sample_suffix(w), labels, n_labels, NULL, 0);
  put_double(w, v, false);
  put(w, "\n");
}

void prom_sample_u64(prom_w *w, const prom_label *labels, size_t n_labels, uint64_t v)
{
  put_series(w, sample_suffix(w), labels, n_labels, NULL, 0);
  put_u64(w, v);
  put(w, "\n");
}

void prom_histogram(prom_w *w, const prom_label *labels, size_t n_labels, const double *bounds,
                    const uint64_t *counts, size_t n_bounds, uint64_t count, double sum)
{
  for (size_t i = 0; i < n_bounds; i++) {
    put_series(w, "_bucket", labels, n_labels, "le", bounds[i]);
    put_u64(w, counts[i]);
    put(w, "\n");
  }
  put_series(w, "_bucket", labels, n_labels, "le", INFINITY);
  put_u64(w, count);
  put(w, "\n");
  put_series(w, "_sum", labels, n_labels, NULL, 0);
  put_double(w, sum, false);
  put(w, "\n");
  put_series(w, "_count", labels, n_labels, NULL, 0);
  put_u64(w, count);
  put(w, "\n");
}

bool prom_end(prom_w *w)
{
  if (w->openmetrics)
    put(w, "# EOF\n");
  return !w->overflow;
}
