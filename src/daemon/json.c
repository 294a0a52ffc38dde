/* json: writer. */
#include "daemon/json.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 16

struct json_w {
  char *buf;
  size_t len, cap;
  bool err;
  int depth;
  bool need_comma[JSON_MAX_DEPTH];
  bool after_key;
};

json_w *json_new(void)
{
  json_w *j = calloc(1, sizeof(*j));
  if (!j)
    return NULL;
  j->cap = 1024;
  j->buf = malloc(j->cap);
  if (!j->buf) {
    free(j);
    return NULL;
  }
  j->buf[0] = '\0';
  return j;
}

void json_free(json_w *j)
{
  if (!j)
    return;
  free(j->buf);
  free(j);
}

const char *json_str(const json_w *j) { return j->buf; }
size_t json_len(const json_w *j) { return j->len; }
bool json_ok(const json_w *j) { return !j->err; }

static void put(json_w *j, const char *s, size_t n)
{
  if (j->err)
    return;
  if (j->len + n + 1 > j->cap) {
    size_t nc = j->cap;
    while (j->len + n + 1 > nc)
      nc *= 2;
    char *nb = realloc(j->buf, nc);
    if (!nb) {
      j->err = true;
      return;
    }
    j->buf = nb;
    j->cap = nc;
  }
  memcpy(j->buf + j->len, s, n);
  j->len += n;
  j->buf[j->len] = '\0';
}

static void putf(json_w *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(json_w *j, const char *fmt, ...)
{
  char tmp[64];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  if (n > 0)
    put(j, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* Emits the separator a value needs at this point. */
static void value_start(json_w *j)
{
  if (j->after_key) {
    j->after_key = false;
    return;
  }
  if (j->need_comma[j->depth])
    put(j, ",", 1);
  j->need_comma[j->depth] = true;
}

static void open_(json_w *j, char c)
{
  value_start(j);
  put(j, &c, 1);
  if (j->depth + 1 < JSON_MAX_DEPTH)
    j->depth++;
  else
    j->err = true;
  j->need_comma[j->depth] = false;
}

static void close_(json_w *j, char c)
{
  if (j->depth > 0)
    j->depth--;
  put(j, &c, 1);
}

void json_obj_begin(json_w *j) { open_(j, '{'); }
void json_obj_end(json_w *j) { close_(j, '}'); }
void json_arr_begin(json_w *j) { open_(j, '['); }
void json_arr_end(json_w *j) { close_(j, ']'); }

static void put_escaped(json_w *j, const char *s)
{
  put(j, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') {
      char e[2] = {'\\', (char)*p};
      put(j, e, 2);
    } else if (*p < 0x20 || *p == 0x7f) {
      putf(j, "\\u%04x", *p);
    } else {
      put(j, (const char *)p, 1);
    }
  }
  put(j, "\"", 1);
}

void json_key(json_w *j, const char *k)
{
  value_start(j);
  put_escaped(j, k);
  put(j, ":", 1);
  j->after_key = true;
}

void json_string(json_w *j, const char *s)
{
  value_start(j);
  put_escaped(j, s ? s : "");
}

void json_number(json_w *j, double v)
{
  value_start(j);
  if (isfinite(v))
    putf(j, "%.9g", v);
  else
    put(j, "null", 4);
}

void json_int(json_w *j, int64_t v)
{
  value_start(j);
  putf(j, "%" PRId64, v);
}

void json_uint(json_w *j, uint64_t v)
{
  value_start(j);
  putf(j, "%" PRIu64, v);
}

void json_bool(json_w *j, bool v)
{
  value_start(j);
  put(j, v ? "true" : "false", v ? 4 : 5);
}

void json_null(json_w *j)
{
  value_start(j);
  put(j, "null", 4);
}

void json_kv_str(json_w *j, const char *k, const char *v) { json_key(j, k); json_string(j, v); }
void json_kv_num(json_w *j, const char *k, double v) { json_key(j, k); json_number(j, v); }
void json_kv_int(json_w *j, const char *k, int64_t v) { json_key(j, k); json_int(j, v); }
void json_kv_uint(json_w *j, const char *k, uint64_t v) { json_key(j, k); json_uint(j, v); }
void json_kv_bool(json_w *j, const char *k, bool v) { json_key(j, k); json_bool(j, v); }
