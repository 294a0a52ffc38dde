/* prom_text: the Prometheus text exposition format (version 0.0.4) and
 * OpenMetrics 1.0.0, written into a caller's buffer.
 *
 * A family is announced once (HELP and TYPE lines), then its samples
 * follow.  Counters are named without `_total` in prom_family; the writer
 * appends it to the samples (and, in the 0.0.4 format, to the HELP and TYPE
 * lines, where the family is named as its samples are).  Label values and
 * help texts are escaped (backslash, double quote, newline).  OpenMetrics
 * ends with `# EOF` (prom_end).  Pure: no allocation, no I/O; a full buffer
 * sets `overflow`, and the caller retries with a larger one. */
#ifndef NTSD_PROTO_PROM_TEXT_H
#define NTSD_PROTO_PROM_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum prom_type { PROM_GAUGE, PROM_COUNTER, PROM_HISTOGRAM } prom_type;

typedef struct prom_w {
  char *buf;
  size_t cap, len;
  bool overflow;
  bool openmetrics;
  prom_type type;   /* of the family being written */
  char family[96];  /* its name */
} prom_w;

/* A label: name (a valid label name, not escaped) and value (escaped). */
typedef struct prom_label {
  const char *name, *value;
} prom_label;

#define PROM_CT_TEXT "text/plain; version=0.0.4; charset=utf-8"
#define PROM_CT_OPENMETRICS "application/openmetrics-text; version=1.0.0; charset=utf-8"

void prom_init(prom_w *w, char *buf, size_t cap, bool openmetrics);
/* A valid metric or label name: [a-zA-Z_:][a-zA-Z0-9_:]* (labels: no ':'). */
bool prom_name_ok(const char *name, bool label);
void prom_family(prom_w *w, const char *name, prom_type type, const char *help);
/* One sample of the current family: gauges and counters. */
void prom_sample(prom_w *w, const prom_label *labels, size_t n_labels, double v);
void prom_sample_u64(prom_w *w, const prom_label *labels, size_t n_labels, uint64_t v);
/* A whole histogram sample set: n_bounds upper bounds (ascending, seconds)
 * with cumulative counts in counts[0..n_bounds-1], then +Inf = count. */
void prom_histogram(prom_w *w, const prom_label *labels, size_t n_labels, const double *bounds,
                    const uint64_t *counts, size_t n_bounds, uint64_t count, double sum);
/* Closes the exposition (OpenMetrics: `# EOF`); returns false on overflow. */
bool prom_end(prom_w *w);

#endif
