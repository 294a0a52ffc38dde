/* Unit tests for the control request parser and the JSON writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/control.h"
#include "daemon/json.h"

static bool parse(const char *s, ctl_cmd *cmd, bool *json, char *err)
{
  ctl_opts o;
  bool ok = control_parse_request(s, strlen(s), cmd, &o, err, 128);
  *json = o.json;
  return ok;
}

static void test_numeric_option(void **state)
{
  (void)state;
  ctl_cmd cmd;
  ctl_opts o;
  char err[128];
  assert_true(control_parse_request("peers numeric\n", 14, &cmd, &o, err, sizeof(err)));
  assert_true(o.numeric);
  assert_false(o.json);
  assert_true(control_parse_request("peers", 5, &cmd, &o, err, sizeof(err)));
  assert_false(o.numeric);
  const char *both = "peers numeric json";
  assert_true(control_parse_request(both, strlen(both), &cmd, &o, err, sizeof(err)));
  assert_true(o.numeric && o.json);
  both = "peers json numeric";
  assert_true(control_parse_request(both, strlen(both), &cmd, &o, err, sizeof(err)));
  assert_true(o.numeric && o.json);
  const char *twice = "peers numeric numeric";
  assert_false(control_parse_request(twice, strlen(twice), &cmd, &o, err, sizeof(err)));
  assert_non_null(strstr(err, "unexpected 'numeric'"));
  twice = "peers json json";
  assert_false(control_parse_request(twice, strlen(twice), &cmd, &o, err, sizeof(err)));
}

static void test_valid_requests(void **state)
{
  (void)state;
  ctl_cmd cmd;
  bool json;
  char err[128];
  assert_true(parse("peers\n", &cmd, &json, err));
  assert_int_equal(cmd, CTL_PEERS);
  assert_false(json);
  assert_true(parse("peers json\n", &cmd, &json, err));
  assert_true(json);
  assert_true(parse("server json\r\n", &cmd, &json, err));
  assert_int_equal(cmd, CTL_SERVER);
  assert_true(parse("sys", &cmd, &json, err));
  assert_int_equal(cmd, CTL_SYS);
  assert_true(parse("  sys \t json ", &cmd, &json, err));
  assert_true(json);
  assert_true(parse("nts json\n", &cmd, &json, err));
  assert_int_equal(cmd, CTL_NTS);
}

static void test_bad_requests(void **state)
{
  (void)state;
  ctl_cmd cmd;
  bool json;
  char err[128];
  assert_false(parse("", &cmd, &json, err));
  assert_false(parse("\n", &cmd, &json, err));
  assert_false(parse("   \n", &cmd, &json, err));
  assert_false(parse("reboot\n", &cmd, &json, err));
  assert_non_null(strstr(err, "unknown command"));
  assert_false(parse("peers xml\n", &cmd, &json, err));
  assert_false(parse("peers json extra\n", &cmd, &json, err));
  assert_false(parse("pe\x01rs\n", &cmd, &json, err));
  ctl_opts o;
  assert_false(control_parse_request("peers\0json", 10, &cmd, &o, err, sizeof(err)));
  char big[CONTROL_MAX_REQUEST + 10];
  memset(big, 'a', sizeof(big));
  assert_false(control_parse_request(big, sizeof(big), &cmd, &o, err, sizeof(err)));
  assert_non_null(strstr(err, "too long"));
}

/* Error replies quote the request's words: in JSON they are escaped. */
static void test_error_reply(void **state)
{
  (void)state;
  ctl_cmd cmd;
  bool json;
  char err[128];
  assert_false(parse("x\"y json\n", &cmd, &json, err));
  char *r = control_error_reply(err, true);
  assert_string_equal(r, "{\"error\":\"unknown command 'x\\\"y'\"}\n");
  free(r);
  assert_false(parse("peers a\\\"}b\n", &cmd, &json, err));
  r = control_error_reply(err, true);
  assert_string_equal(r, "{\"error\":\"unexpected 'a\\\\\\\"}b'\"}\n");
  free(r);
  r = control_error_reply(err, false);
  assert_string_equal(r, "error: unexpected 'a\\\"}b'\n");
  free(r);
  r = control_error_reply("tab\there", true);
  assert_string_equal(r, "{\"error\":\"tab\\u0009here\"}\n");
  free(r);
}

static void test_json_writer(void **state)
{
  (void)state;
  json_w *j = json_new();
  json_arr_begin(j);
  json_obj_begin(j);
  json_kv_str(j, "remote", "a\"b\\c\n");
  json_kv_int(j, "reach", 255);
  json_kv_bool(j, "nts", false);
  json_kv_num(j, "offset", -0.5);
  json_kv_num(j, "nan", 0.0 / 0.0);
  json_key(j, "list");
  json_arr_begin(j);
  json_uint(j, 1);
  json_uint(j, 2);
  json_arr_end(j);
  json_obj_end(j);
  json_obj_begin(j);
  json_obj_end(j);
  json_arr_end(j);
  assert_true(json_ok(j));
  assert_string_equal(json_str(j), "[{\"remote\":\"a\\\"b\\\\c\\u000a\",\"reach\":255,"
                                   "\"nts\":false,\"offset\":-0.5,\"nan\":null,"
                                   "\"list\":[1,2]},{}]");
  json_free(j);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_requests),
      cmocka_unit_test(test_bad_requests),
      cmocka_unit_test(test_numeric_option),
      cmocka_unit_test(test_error_reply),
      cmocka_unit_test(test_json_writer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
