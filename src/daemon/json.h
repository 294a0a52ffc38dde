/* json: a small JSON writer into a growable buffer, for the control socket.
 * Commas are inserted automatically; strings are escaped; non-finite
 * numbers become null. */
#ifndef NTSD_DAEMON_JSON_H
#define NTSD_DAEMON_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct json_w json_w;

json_w *json_new(void);
void json_free(json_w *j);
const char *json_str(const json_w *j); /* NUL-terminated */
size_t json_len(const json_w *j);
bool json_ok(const json_w *j); /* false after an allocation failure */

void json_obj_begin(json_w *j);
void json_obj_end(json_w *j);
void json_arr_begin(json_w *j);
void json_arr_end(json_w *j);
void json_key(json_w *j, const char *k);
void json_string(json_w *j, const char *s);
void json_number(json_w *j, double v);
void json_int(json_w *j, int64_t v);
void json_uint(json_w *j, uint64_t v);
void json_bool(json_w *j, bool v);
void json_null(json_w *j);

/* Shorthands for "key": value. */
void json_kv_str(json_w *j, const char *k, const char *v);
void json_kv_num(json_w *j, const char *k, double v);
void json_kv_int(json_w *j, const char *k, int64_t v);
void json_kv_uint(json_w *j, const char *k, uint64_t v);
void json_kv_bool(json_w *j, const char *k, bool v);

#endif
