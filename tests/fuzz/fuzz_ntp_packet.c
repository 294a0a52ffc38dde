/* libFuzzer target: one datagram through every pure NTP packet path.
 *
 * The input is a whole UDP payload.  It is parsed as a header, its extension
 * fields are walked, it is checked as a server response and prepared as a
 * client request.  Besides the sanitizers, the target aborts when an
 * invariant does not hold:
 *   - header parse -> write reproduces the first 48 input bytes;
 *   - the EF walk stays inside the datagram, advances by the declared,
 *     aligned lengths and agrees with ntp_ef_validate;
 *   - an accepted response yields a finite offset and a delay >= 0;
 *   - served as the daemon serves it (proto/ntp_serve, both phases, no
 *     NTS keys), a response is 48 bytes, mode 4, echoes version and poll,
 *     carries org = request xmt, rec = rx and the stamped xmt; a rate-limited
 *     client with `kod` gets a RATE kiss exactly for the requests that
 *     would be answered;
 *   - a timestamp placed in an era by a pivot lands within 2^31 s of it and
 *     converts back to within a nanosecond. */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/ntp_client.h"
#include "proto/ntp_ef.h"
#include "proto/ntp_pkt.h"
#include "proto/ntp_serve.h"
#include "proto/ntp_time.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_roundtrip(const uint8_t *data, size_t size, const ntp_hdr *h)
{
  uint8_t out[NTP_HDR_LEN];
  wire_wr w;
  wire_wr_init(&w, out, sizeof(out));
  ntp_hdr_write(&w, h);
  if (!wire_wr_ok(&w) || wire_wr_len(&w) != NTP_HDR_LEN || size < NTP_HDR_LEN ||
      memcmp(out, data, NTP_HDR_LEN) != 0)
    abort();
}

static void check_ef_walk(const uint8_t *data, size_t size)
{
  ntp_ef_iter it;
  ntp_ef ef;
  ntp_ef_status st;
  size_t n = 0, expect_off = NTP_HDR_LEN;
  ntp_ef_iter_init(&it, data, size);
  while ((st = ntp_ef_next(&it, &ef)) == NTP_EF_FIELD) {
    if (ef.offset != expect_off || ef.len < NTP_EF_MIN_LEN || (ef.len & 3) != 0 ||
        ef.offset + ef.len > size || ef.body != data + ef.offset + 4 ||
        ef.body_len != (size_t)ef.len - 4)
      abort();
    /* Touch the body so ASan sees any out-of-bounds span. */
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < ef.body_len; i++)
      sink ^= ef.body[i];
    (void)sink;
    expect_off += ef.len;
    n++;
  }
  /* Terminal: never another field afterwards. */
  if (ntp_ef_next(&it, &ef) == NTP_EF_FIELD)
    abort();
  if (st == NTP_EF_MAC && (expect_off + it.mac_len != size ||
                           (it.mac_len != 4 && it.mac_len != 20 && it.mac_len != 24)))
    abort();
  if (st == NTP_EF_END && expect_off != size)
    abort();
  size_t vn = 0, vmac = 0;
  if (ntp_ef_validate(data, size, &vn, &vmac) != st || vn != n ||
      vmac != (st == NTP_EF_MAC ? it.mac_len : 0))
    abort();
}

static void check_client(const uint8_t *data, size_t size, const ntp_hdr *h)
{
  /* Answer the request the packet claims to answer so the deeper checks
   * run; local times bracket the server's own timestamps. */
  ntp_ts t1 = ntp_ts_add(h->rec, -0.0125);
  ntp_ts t4 = ntp_ts_add(h->xmt, 0.0125);
  ntp_ts last = (h->poll & 1) ? h->xmt : 0;
  ntp_sample s;
  ntp_kod kod = NTP_KOD_OTHER;
  ntp_drop d = ntp_client_check_response(data, size, h->org, last, t1, t4, 1e-7, &s, &kod);
  if (d >= NTP_DROP_COUNT || ntp_drop_name(d)[0] == '?')
    abort();
  /* Stratum 0 with an informational code (INIT, ...) is "unsync", not a
   * kiss, but still reports the code as OTHER. */
  bool informational = d == NTP_DROP_UNSYNC && kod == NTP_KOD_OTHER && h->stratum == 0;
  if (d != NTP_DROP_KOD && kod != NTP_KOD_NONE && !informational)
    abort();
  if (d == NTP_DROP_KOD && (h->stratum != 0 || kod == NTP_KOD_NONE || kod == NTP_KOD_OTHER))
    abort();
  if (d == NTP_DROP_NONE) {
    if (!isfinite(s.offset) || !isfinite(s.delay) || !(s.delay > 0.0) ||
        !(s.dispersion >= 0.0) || s.stratum == 0 || s.stratum >= NTP_MAX_STRATUM ||
        s.leap == NTP_LEAP_UNSYNC || s.t2 != h->rec || s.t3 != h->xmt)
      abort();
  }
  /* Same packet with arbitrary local times and a mismatched nonce. */
  ntp_ts t1b = h->ref, t4b = h->ref + (h->root_delay | 1u);
  d = ntp_client_check_response(data, size, h->org ^ 1, 0, t1b, t4b, 0.0, &s, NULL);
  if (d == NTP_DROP_NONE)
    abort(); /* origin cannot match */
  d = ntp_client_check_response(data, size, h->org, 0, t1b, t4b, 0.0, &s, NULL);
  if (d == NTP_DROP_NONE && (!isfinite(s.offset) || !(s.delay > 0.0)))
    abort();
}

/* Both phases of the daemon's path; the response length in *n. */
static ntp_serve_result serve(const uint8_t *data, size_t size, const ntp_sysinfo *sys,
                              ntp_serve_admit admit, ntp_ts rx, uint8_t *out, size_t cap,
                              size_t *n)
{
  static ntp_serve *srv; /* created once; lives for the process */
  if (!srv && !(srv = ntp_serve_create()))
    abort();
  ntp_serve_in in = {.req = data, .len = size, .rx = rx, .admit = admit, .sys = sys};
  ntp_serve_result r = ntp_serve_request(srv, &in, out, cap);
  ntp_serve_result f = ntp_serve_finish(srv, rx + 1, out, cap, n);
  if (f != r || r >= NTP_SERVE_RESULT_COUNT || ntp_serve_result_name(r)[0] == '?' ||
      (*n != 0) != ntp_serve_replies(r))
    abort();
  return r;
}

static void check_server(const uint8_t *data, size_t size, const ntp_hdr *h)
{
  ntp_sysinfo sys = {
      .leap = h->leap,
      .stratum = h->stratum,
      .precision = h->precision,
      .refid = h->refid,
      .reftime = h->ref,
      .root_delay = ntp_short_to_double(h->root_delay),
      .root_disp = ntp_short_to_double(h->root_disp),
  };
  ntp_ts rx = h->rec ^ 0x5555555555555555ULL;
  uint8_t out[NTP_MAX_PKT];
  size_t out_len = 0, kn = 0;
  size_t cap = (h->refid & 0x100) ? NTP_HDR_LEN : sizeof(out);
  ntp_serve_result k = serve(data, size, &sys, NTP_SERVE_ADMIT_KOD, rx, out, cap, &kn);
  ntp_serve_result r = serve(data, size, &sys, NTP_SERVE_ADMIT_OK, rx, out, cap, &out_len);
  if ((r == NTP_SERVE_RESPOND) != (k == NTP_SERVE_KOD_RATE) ||
      (k != NTP_SERVE_KOD_RATE && k != NTP_SERVE_DROP_RATE) ||
      kn != (k == NTP_SERVE_KOD_RATE ? NTP_HDR_LEN : 0))
    abort();
  if (r != NTP_SERVE_RESPOND)
    return;
  if (out_len != NTP_HDR_LEN)
    abort();
  ntp_hdr o;
  if (!ntp_hdr_parse(out, out_len, &o) || o.mode != NTP_MODE_SERVER ||
      o.version != h->version || o.poll != h->poll || o.org != h->xmt || o.rec != rx ||
      o.xmt != rx + 1 || o.stratum != h->stratum || o.refid != h->refid)
    abort();
  if (h->mode != NTP_MODE_CLIENT || h->version < 1 || h->version > 4)
    abort();
}

static void check_era(const ntp_hdr *h)
{
  /* A pivot anywhere in 1900..2172 built from the reference timestamp. */
  struct timespec pivot;
  pivot.tv_sec = (time_t)((int64_t)(h->ref >> 32) - (int64_t)NTP_UNIX_OFFSET +
                          (int64_t)(h->ref & 1) * 4294967296LL);
  pivot.tv_nsec = (long)((h->ref & 0xffffffffULL) % 1000000000ULL);
  struct timespec r = ntp_ts_to_timespec(h->xmt, &pivot);
  if (r.tv_nsec < 0 || r.tv_nsec >= 1000000000L)
    abort();
  int64_t dist = (int64_t)r.tv_sec - (int64_t)pivot.tv_sec;
  if (dist < -(1LL << 31) - 1 || dist > (1LL << 31) + 1)
    abort();
  if (fabs(ntp_ts_diff(ntp_ts_from_timespec(&r), h->xmt)) > 1e-9)
    abort();
  char buf[24];
  ntp_refid_str(h->refid, h->stratum, buf, sizeof(buf));
  if (strlen(buf) >= sizeof(buf))
    abort();
  (void)ntp_kod_name(ntp_kod_classify(h));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size > NTP_MAX_PKT * 4)
    return 0;
  ntp_hdr h;
  bool ok = ntp_hdr_parse(data, size, &h);
  if (ok != (size >= NTP_HDR_LEN))
    abort();
  check_ef_walk(data, size);
  if (!ok) {
    /* Short input: every entry point refuses it. */
    uint8_t out[NTP_HDR_LEN];
    size_t out_len;
    ntp_sysinfo sys = {.stratum = 2};
    if (ntp_client_check_response(data, size, 1, 0, 0, 0, 0.0, NULL, NULL) != NTP_DROP_SHORT ||
        serve(data, size, &sys, NTP_SERVE_ADMIT_OK, 0, out, sizeof(out), &out_len) !=
            NTP_SERVE_DROP_SHORT ||
        serve(data, size, &sys, NTP_SERVE_ADMIT_KOD, 0, out, sizeof(out), &out_len) !=
            NTP_SERVE_DROP_RATE)
      abort();
    return 0;
  }
  check_roundtrip(data, size, &h);
  check_client(data, size, &h);
  check_server(data, size, &h);
  check_era(&h);
  return 0;
}
