/* ntsctl_ke: the arguments of `ntsctl ke` and the expiry spans it prints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tools/ntsctl_ke.h"

static bool parse(ntsctl_ke_opts *o, char *err, size_t cap, int argc, ...)
{
  char *argv[16];
  va_list ap;
  va_start(ap, argc);
  for (int i = 0; i < argc; i++)
    argv[i] = va_arg(ap, char *);
  va_end(ap);
  return ntsctl_ke_parse(argc, argv, o, err, cap);
}

static void test_defaults(void **state)
{
  (void)state;
  ntsctl_ke_opts o;
  char err[200];
  assert_true(parse(&o, err, sizeof(err), 1, "time.example.com"));
  assert_string_equal(o.host, "time.example.com");
  assert_int_equal(o.port, 4460);
  assert_null(o.ca);
  assert_int_equal(o.pins.n, 0);
  assert_int_equal(o.n_aeads, 2); /* the daemon's default offer: 15, then 17 */
  assert_int_equal(o.aeads[0], 15);
  assert_int_equal(o.aeads[1], 17);
  assert_false(o.export_keys);
  assert_false(o.json);
  assert_null(o.proxy_url);
}

static void test_host_port_forms(void **state)
{
  (void)state;
  ntsctl_ke_opts o;
  char err[200];
  assert_true(parse(&o, err, sizeof(err), 1, "127.0.0.1:14460"));
  assert_string_equal(o.host, "127.0.0.1");
  assert_int_equal(o.port, 14460);
  assert_true(parse(&o, err, sizeof(err), 1, "[::1]:123"));
  assert_string_equal(o.host, "::1");
  assert_int_equal(o.port, 123);
  assert_true(parse(&o, err, sizeof(err), 1, "::1"));
  assert_string_equal(o.host, "::1");
  assert_int_equal(o.port, 4460);
  assert_false(parse(&o, err, sizeof(err), 1, "host:0"));
  assert_false(parse(&o, err, sizeof(err), 1, "host:65536"));
  assert_false(parse(&o, err, sizeof(err), 1, "[::1"));
  assert_false(parse(&o, err, sizeof(err), 0));
  assert_non_null(strstr(err, "HOST"));
  assert_false(parse(&o, err, sizeof(err), 2, "a", "b"));
}

static void test_options(void **state)
{
  (void)state;
  ntsctl_ke_opts o;
  char err[200];
  const char *pin = "sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
  assert_true(parse(&o, err, sizeof(err), 11, "--ca", "/ca.pem", "--pin", pin, "--aead",
                    "AES_SIV_CMAC_512", "--export", "--json", "h", "--aead", "15"));
  assert_string_equal(o.ca, "/ca.pem");
  assert_int_equal(o.pins.n, 1);
  assert_true(o.pins.chain); /* with --ca: the chain is checked too */
  assert_int_equal(o.pins.sha256[0][0], 0xe3);
  assert_int_equal(o.n_aeads, 2);
  assert_int_equal(o.aeads[0], 17);
  assert_int_equal(o.aeads[1], 15);
  assert_true(o.export_keys);
  assert_true(o.json);
  assert_true(parse(&o, err, sizeof(err), 3, "--pin", pin, "h"));
  assert_false(o.pins.chain); /* a pin alone: no CA */
  assert_true(parse(&o, err, sizeof(err), 3, "--proxy", "socks5://127.0.0.1:1080", "h"));
  assert_string_equal(o.proxy_url, "socks5://127.0.0.1:1080");
  assert_true(parse(&o, err, sizeof(err), 3, "--timeout", "2.5", "h"));
  assert_true(o.timeout > 2.4 && o.timeout < 2.6);
}

static void test_bad_options(void **state)
{
  (void)state;
  ntsctl_ke_opts o;
  char err[200];
  assert_false(parse(&o, err, sizeof(err), 3, "--pin", "sha256:short", "h"));
  assert_non_null(strstr(err, "--pin"));
  assert_false(parse(&o, err, sizeof(err), 3, "--pin", "md5:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "h"));
  assert_false(parse(&o, err, sizeof(err), 3, "--aead", "99", "h"));
  assert_non_null(strstr(err, "--aead"));
  assert_false(parse(&o, err, sizeof(err), 3, "--timeout", "0", "h"));
  assert_false(parse(&o, err, sizeof(err), 3, "--timeout", "1x", "h"));
  assert_false(parse(&o, err, sizeof(err), 3, "--bogus", "1", "h"));
  assert_false(parse(&o, err, sizeof(err), 2, "h", "--ca"));
  assert_non_null(strstr(err, "missing value"));
}

static void test_span(void **state)
{
  (void)state;
  char b[48];
  ntsctl_ke_span(0, b, sizeof(b));
  assert_string_equal(b, "0s");
  ntsctl_ke_span(40, b, sizeof(b));
  assert_string_equal(b, "40s");
  ntsctl_ke_span(3 * 60 + 20, b, sizeof(b));
  assert_string_equal(b, "3m 20s");
  ntsctl_ke_span(5 * 3600 + 3 * 60 + 20, b, sizeof(b));
  assert_string_equal(b, "5h 3m 20s");
  ntsctl_ke_span(86400 + 23 * 3600 + 59 * 60 + 59, b, sizeof(b));
  assert_string_equal(b, "1d 23h 59m");
  ntsctl_ke_span(-(2 * 86400 + 60), b, sizeof(b));
  assert_string_equal(b, "-2d 0h 1m");
  ntsctl_ke_span(INT64_MIN, b, sizeof(b)); /* no overflow */
  assert_true(b[0] == '-');
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),   cmocka_unit_test(test_host_port_forms),
      cmocka_unit_test(test_options),    cmocka_unit_test(test_bad_options),
      cmocka_unit_test(test_span),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
