/* Unit tests for src/proto/ntp_pkt: NTPv4 header codec, kiss codes, refids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/ntp_pkt.h"

/* A header with every byte distinct, and its decoded form. */
static const uint8_t sample_pkt[NTP_HDR_LEN] = {
    0xe4,                   /* leap 3, version 4, mode 4 */
    0x02,                   /* stratum 2 */
    0xfa,                   /* poll -6 */
    0xec,                   /* precision -20 */
    0x00, 0x01, 0x80, 0x00, /* root delay 1.5 s */
    0x00, 0x00, 0x40, 0x00, /* root dispersion 0.25 s */
    0xc0, 0x00, 0x02, 0x01, /* refid 192.0.2.1 */
    0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, /* ref */
    0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, /* org */
    0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, /* rec */
    0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, /* xmt */
};

static void assert_hdr_equal(const ntp_hdr *a, const ntp_hdr *b)
{
  assert_int_equal(a->leap, b->leap);
  assert_int_equal(a->version, b->version);
  assert_int_equal(a->mode, b->mode);
  assert_int_equal(a->stratum, b->stratum);
  assert_int_equal(a->poll, b->poll);
  assert_int_equal(a->precision, b->precision);
  assert_int_equal(a->root_delay, b->root_delay);
  assert_int_equal(a->root_disp, b->root_disp);
  assert_int_equal(a->refid, b->refid);
  assert_true(a->ref == b->ref);
  assert_true(a->org == b->org);
  assert_true(a->rec == b->rec);
  assert_true(a->xmt == b->xmt);
}

static void test_parse_fields(void **state)
{
  (void)state;
  ntp_hdr h;
  assert_true(ntp_hdr_parse(sample_pkt, sizeof(sample_pkt), &h));
  assert_int_equal(h.leap, NTP_LEAP_UNSYNC);
  assert_int_equal(h.version, 4);
  assert_int_equal(h.mode, NTP_MODE_SERVER);
  assert_int_equal(h.stratum, 2);
  assert_int_equal(h.poll, -6);
  assert_int_equal(h.precision, -20);
  assert_int_equal(h.root_delay, 0x00018000u);
  assert_int_equal(h.root_disp, 0x00004000u);
  assert_int_equal(h.refid, NTP_REFID(192, 0, 2, 1));
  assert_true(h.ref == 0x1112131415161718ULL);
  assert_true(h.org == 0x2122232425262728ULL);
  assert_true(h.rec == 0x3132333435363738ULL);
  assert_true(h.xmt == 0xf1f2f3f4f5f6f7f8ULL);
}

static void test_write_bytes(void **state)
{
  (void)state;
  ntp_hdr h = {
      .leap = NTP_LEAP_UNSYNC,
      .version = 4,
      .mode = NTP_MODE_SERVER,
      .stratum = 2,
      .poll = -6,
      .precision = -20,
      .root_delay = 0x00018000u,
      .root_disp = 0x00004000u,
      .refid = NTP_REFID(192, 0, 2, 1),
      .ref = 0x1112131415161718ULL,
      .org = 0x2122232425262728ULL,
      .rec = 0x3132333435363738ULL,
      .xmt = 0xf1f2f3f4f5f6f7f8ULL,
  };
  uint8_t buf[64];
  memset(buf, 0xee, sizeof(buf));
  wire_wr w;
  wire_wr_init(&w, buf, sizeof(buf));
  ntp_hdr_write(&w, &h);
  assert_true(wire_wr_ok(&w));
  assert_int_equal(wire_wr_len(&w), NTP_HDR_LEN);
  assert_memory_equal(buf, sample_pkt, NTP_HDR_LEN);
  assert_int_equal(buf[NTP_HDR_LEN], 0xee);
}

static void test_roundtrip_all_fields(void **state)
{
  (void)state;
  ntp_hdr h = {
      .leap = NTP_LEAP_DELETE,
      .version = 3,
      .mode = NTP_MODE_SYM_PASSIVE,
      .stratum = 255,
      .poll = 17,
      .precision = -128,
      .root_delay = 0xffffffffu,
      .root_disp = 0x80000001u,
      .refid = NTP_REFID('X', 'F', 'A', 'C'),
      .ref = 0xffffffffffffffffULL,
      .org = 1,
      .rec = 0x8000000000000000ULL,
      .xmt = 0x0123456789abcdefULL,
  };
  uint8_t buf[NTP_HDR_LEN];
  wire_wr w;
  wire_wr_init(&w, buf, sizeof(buf));
  ntp_hdr_write(&w, &h);
  assert_true(wire_wr_ok(&w));
  ntp_hdr back;
  assert_true(ntp_hdr_parse(buf, sizeof(buf), &back));
  assert_hdr_equal(&h, &back);

  /* And from bytes: parse -> write reproduces the input exactly. */
  uint8_t out[NTP_HDR_LEN];
  assert_true(ntp_hdr_parse(sample_pkt, sizeof(sample_pkt), &back));
  wire_wr_init(&w, out, sizeof(out));
  ntp_hdr_write(&w, &back);
  assert_true(wire_wr_ok(&w));
  assert_memory_equal(out, sample_pkt, NTP_HDR_LEN);
}

static void test_roundtrip_first_byte(void **state)
{
  (void)state;
  /* Every leap/version/mode combination survives parse -> write. */
  for (unsigned b = 0; b < 256; b++) {
    uint8_t in[NTP_HDR_LEN] = {0}, out[NTP_HDR_LEN];
    in[0] = (uint8_t)b;
    ntp_hdr h;
    assert_true(ntp_hdr_parse(in, sizeof(in), &h));
    assert_int_equal(h.leap, b >> 6);
    assert_int_equal(h.version, (b >> 3) & 7);
    assert_int_equal(h.mode, b & 7);
    wire_wr w;
    wire_wr_init(&w, out, sizeof(out));
    ntp_hdr_write(&w, &h);
    assert_memory_equal(in, out, NTP_HDR_LEN);
  }
}

static void test_write_masks_out_of_range(void **state)
{
  (void)state;
  /* Oversized leap/version/mode values cannot spill into other bits. */
  ntp_hdr h = {.leap = 0xff, .version = 0x0c, .mode = 0x0b};
  uint8_t buf[NTP_HDR_LEN];
  wire_wr w;
  wire_wr_init(&w, buf, sizeof(buf));
  ntp_hdr_write(&w, &h);
  assert_int_equal(buf[0], (3 << 6) | (4 << 3) | 3);
}

static void test_parse_short(void **state)
{
  (void)state;
  ntp_hdr h;
  for (size_t len = 0; len < NTP_HDR_LEN; len++)
    assert_false(ntp_hdr_parse(sample_pkt, len, &h));
  assert_false(ntp_hdr_parse(NULL, 0, &h));
  assert_false(ntp_hdr_parse(NULL, NTP_HDR_LEN, &h));
  assert_true(ntp_hdr_parse(sample_pkt, NTP_HDR_LEN, &h));
}

static void test_parse_longer(void **state)
{
  (void)state;
  /* Extra bytes (extension fields, MAC) are ignored by the header parser. */
  uint8_t buf[NTP_HDR_LEN + 20];
  memcpy(buf, sample_pkt, NTP_HDR_LEN);
  memset(buf + NTP_HDR_LEN, 0x77, 20);
  ntp_hdr a, b;
  assert_true(ntp_hdr_parse(buf, sizeof(buf), &a));
  assert_true(ntp_hdr_parse(sample_pkt, NTP_HDR_LEN, &b));
  assert_hdr_equal(&a, &b);
}

static void test_write_small_buffer(void **state)
{
  (void)state;
  ntp_hdr h;
  assert_true(ntp_hdr_parse(sample_pkt, sizeof(sample_pkt), &h));
  uint8_t buf[NTP_HDR_LEN];
  memset(buf, 0xee, sizeof(buf));
  wire_wr w;
  wire_wr_init(&w, buf, NTP_HDR_LEN - 1);
  ntp_hdr_write(&w, &h);
  assert_false(wire_wr_ok(&w));
  assert_true(wire_wr_len(&w) < NTP_HDR_LEN);
  assert_int_equal(buf[NTP_HDR_LEN - 1], 0xee);
}

static void test_set_xmt(void **state)
{
  (void)state;
  uint8_t buf[NTP_HDR_LEN + 4];
  memcpy(buf, sample_pkt, NTP_HDR_LEN);
  memset(buf + NTP_HDR_LEN, 0xee, 4);
  ntp_hdr_set_xmt(buf, 0x0102030405060708ULL);
  assert_memory_equal(buf, sample_pkt, NTP_XMT_OFFSET);
  static const uint8_t want[] = {1, 2, 3, 4, 5, 6, 7, 8, 0xee, 0xee, 0xee, 0xee};
  assert_memory_equal(buf + NTP_XMT_OFFSET, want, sizeof(want));
  ntp_hdr h;
  assert_true(ntp_hdr_parse(buf, NTP_HDR_LEN, &h));
  assert_true(h.xmt == 0x0102030405060708ULL);
  assert_true(h.rec == 0x3132333435363738ULL);
}

static ntp_kod classify(uint8_t stratum, uint32_t refid)
{
  ntp_hdr h = {.leap = NTP_LEAP_UNSYNC, .version = 4, .mode = NTP_MODE_SERVER};
  h.stratum = stratum;
  h.refid = refid;
  return ntp_kod_classify(&h);
}

static void test_kod_classify(void **state)
{
  (void)state;
  assert_int_equal(classify(0, NTP_REFID('D', 'E', 'N', 'Y')), NTP_KOD_DENY);
  assert_int_equal(classify(0, NTP_REFID('R', 'S', 'T', 'R')), NTP_KOD_RSTR);
  assert_int_equal(classify(0, NTP_REFID('R', 'A', 'T', 'E')), NTP_KOD_RATE);
  assert_int_equal(classify(0, NTP_REFID('N', 'T', 'S', 'N')), NTP_KOD_NTSN);
  assert_int_equal(classify(0, NTP_REFID('A', 'C', 'S', 'T')), NTP_KOD_OTHER);
  assert_int_equal(classify(0, NTP_REFID('I', 'N', 'I', 'T')), NTP_KOD_OTHER);
  assert_int_equal(classify(0, 0), NTP_KOD_OTHER);
  /* Case matters: "rate" is not RATE. */
  assert_int_equal(classify(0, NTP_REFID('r', 'a', 't', 'e')), NTP_KOD_OTHER);
  /* Byte order matters. */
  assert_int_equal(classify(0, NTP_REFID('E', 'T', 'A', 'R')), NTP_KOD_OTHER);
}

static void test_kod_nonzero_stratum(void **state)
{
  (void)state;
  /* A kiss code in the refid of a stratum >= 1 packet is just a refid. */
  static const uint8_t strata[] = {1, 2, 15, 16, 255};
  for (size_t i = 0; i < sizeof(strata); i++) {
    assert_int_equal(classify(strata[i], NTP_REFID('D', 'E', 'N', 'Y')), NTP_KOD_NONE);
    assert_int_equal(classify(strata[i], NTP_REFID('R', 'A', 'T', 'E')), NTP_KOD_NONE);
    assert_int_equal(classify(strata[i], 0), NTP_KOD_NONE);
  }
}

static void test_kod_name(void **state)
{
  (void)state;
  assert_string_equal(ntp_kod_name(NTP_KOD_NONE), "none");
  assert_string_equal(ntp_kod_name(NTP_KOD_DENY), "DENY");
  assert_string_equal(ntp_kod_name(NTP_KOD_RSTR), "RSTR");
  assert_string_equal(ntp_kod_name(NTP_KOD_RATE), "RATE");
  assert_string_equal(ntp_kod_name(NTP_KOD_NTSN), "NTSN");
  assert_string_equal(ntp_kod_name(NTP_KOD_OTHER), "other");
  assert_string_equal(ntp_kod_name((ntp_kod)99), "?");
}

static void test_refid_str_text(void **state)
{
  (void)state;
  char buf[32];
  assert_string_equal(ntp_refid_str(NTP_REFID('G', 'P', 'S', 0), 1, buf, sizeof(buf)),
                      ".GPS.");
  assert_string_equal(buf, ".GPS.");
  assert_string_equal(ntp_refid_str(NTP_REFID('P', 'P', 'S', 'x'), 1, buf, sizeof(buf)),
                      ".PPSx.");
  /* Kiss codes (stratum 0) are text too. */
  assert_string_equal(ntp_refid_str(NTP_REFID('R', 'A', 'T', 'E'), 0, buf, sizeof(buf)),
                      ".RATE.");
  assert_string_equal(ntp_refid_str(NTP_REFID('N', 'T', 'S', 'N'), 0, buf, sizeof(buf)),
                      ".NTSN.");
  /* NUL padding ends the text; a single character is fine. */
  assert_string_equal(ntp_refid_str(NTP_REFID('A', 0, 0, 0), 1, buf, sizeof(buf)), ".A.");
  /* Printable text goes through verbatim, never as a format string. */
  assert_string_equal(ntp_refid_str(NTP_REFID('%', 's', '%', 'n'), 1, buf, sizeof(buf)),
                      ".%s%n.");
  assert_string_equal(ntp_refid_str(NTP_REFID(' ', '~', 0, 0), 0, buf, sizeof(buf)), ". ~.");
  char tiny[3];
  memset(tiny, 'z', sizeof(tiny));
  ntp_refid_str(NTP_REFID('L', 'O', 'C', 'L'), 1, tiny, sizeof(tiny));
  assert_string_equal(tiny, ".L");
}

static void test_refid_str_not_text(void **state)
{
  (void)state;
  char buf[32];
  /* At stratum 0/1, a refid that is not 1-4 printable characters followed
   * by NUL padding is shown as an address, never as raw bytes. */
  assert_string_equal(ntp_refid_str(0, 0, buf, sizeof(buf)), "0.0.0.0");
  assert_string_equal(ntp_refid_str(0, 1, buf, sizeof(buf)), "0.0.0.0");
  /* Leading NUL. */
  assert_string_equal(ntp_refid_str(NTP_REFID(0, 'G', 'P', 'S'), 1, buf, sizeof(buf)),
                      "0.71.80.83");
  /* Text after a NUL. */
  assert_string_equal(ntp_refid_str(NTP_REFID('A', 0, 'B', 'C'), 1, buf, sizeof(buf)),
                      "65.0.66.67");
  /* Control and non-ASCII bytes. */
  assert_string_equal(ntp_refid_str(NTP_REFID('A', 0x07, 'B', 'C'), 1, buf, sizeof(buf)),
                      "65.7.66.67");
  assert_string_equal(ntp_refid_str(NTP_REFID('G', 'P', 'S', 0xff), 0, buf, sizeof(buf)),
                      "71.80.83.255");
  assert_string_equal(ntp_refid_str(NTP_REFID('%', 's', '\n', ' '), 1, buf, sizeof(buf)),
                      "37.115.10.32");
  /* chrony's local reference 127.127.1.1 (0x7f is DEL, not text). */
  assert_string_equal(ntp_refid_str(NTP_REFID(127, 127, 1, 1), 1, buf, sizeof(buf)),
                      "127.127.1.1");
}

static void test_refid_str_address(void **state)
{
  (void)state;
  char buf[32];
  assert_string_equal(ntp_refid_str(NTP_REFID(192, 0, 2, 1), 2, buf, sizeof(buf)),
                      "192.0.2.1");
  assert_string_equal(ntp_refid_str(0xffffffffu, 15, buf, sizeof(buf)), "255.255.255.255");
  assert_string_equal(ntp_refid_str(0, 16, buf, sizeof(buf)), "0.0.0.0");
  /* Letters at stratum 2 are still shown as an address (hash of IPv6). */
  assert_string_equal(ntp_refid_str(NTP_REFID('G', 'P', 'S', 0), 2, buf, sizeof(buf)),
                      "71.80.83.0");
}

static void test_refid_str_small_buffer(void **state)
{
  (void)state;
  char buf[8];
  memset(buf, 'z', sizeof(buf));
  /* Truncated and NUL-terminated, no write past cap. */
  assert_string_equal(ntp_refid_str(NTP_REFID('R', 'A', 'T', 'E'), 0, buf, 4), ".RA");
  assert_int_equal(buf[4], 'z');
  memset(buf, 'z', sizeof(buf));
  assert_string_equal(ntp_refid_str(NTP_REFID(192, 0, 2, 1), 2, buf, 6), "192.0");
  assert_int_equal(buf[6], 'z');
  memset(buf, 'z', sizeof(buf));
  assert_string_equal(ntp_refid_str(NTP_REFID(192, 0, 2, 1), 2, buf, 1), "");
  assert_int_equal(buf[1], 'z');
  /* cap 0 / NULL: nothing written, an empty string returned. */
  memset(buf, 'z', sizeof(buf));
  assert_string_equal(ntp_refid_str(NTP_REFID('R', 'A', 'T', 'E'), 0, buf, 0), "");
  assert_int_equal(buf[0], 'z');
  assert_string_equal(ntp_refid_str(NTP_REFID('R', 'A', 'T', 'E'), 0, NULL, 16), "");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_fields),
      cmocka_unit_test(test_write_bytes),
      cmocka_unit_test(test_roundtrip_all_fields),
      cmocka_unit_test(test_roundtrip_first_byte),
      cmocka_unit_test(test_write_masks_out_of_range),
      cmocka_unit_test(test_parse_short),
      cmocka_unit_test(test_parse_longer),
      cmocka_unit_test(test_write_small_buffer),
      cmocka_unit_test(test_set_xmt),
      cmocka_unit_test(test_kod_classify),
      cmocka_unit_test(test_kod_nonzero_stratum),
      cmocka_unit_test(test_kod_name),
      cmocka_unit_test(test_refid_str_text),
      cmocka_unit_test(test_refid_str_not_text),
      cmocka_unit_test(test_refid_str_address),
      cmocka_unit_test(test_refid_str_small_buffer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
