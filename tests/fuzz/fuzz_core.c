/* libFuzzer target: the engine (proto/core) under hostile source data.
 *
 * The input is a script of runs: the number of sources, for each its info
 * and raw samples (offsets, delays, errors, times: any double, NaN and
 * infinities included, as a broken filter or a forged reply might give),
 * the time step and the `tos` minsane/authselect; each run is an
 * ntp_core_update, sometimes followed by a tick.  The actions must stay
 * sane: a finite frequency within the bound, polls within 0..17 or -1, a
 * system peer among the sources given. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/core.h"
#include "proto/ntp_pkt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct cur {
  const uint8_t *p;
  size_t n;
} cur;

static uint8_t byte(cur *c)
{
  if (!c->n)
    return 0;
  c->n--;
  return *c->p++;
}

/* Mostly modest values, sometimes the awkward ones. */
static double num(cur *c, double scale)
{
  uint8_t sel = byte(c);
  switch (sel) {
  case 0: return NAN;
  case 1: return INFINITY;
  case 2: return -INFINITY;
  case 3: return 1e300;
  default: break;
  }
  uint16_t hi = byte(c), lo = byte(c);
  return (int16_t)(uint16_t)(hi << 8 | lo) * scale;
}

static void one_source(ntp_core *core, size_t i, cur *c, double now)
{
  ntp_source_info info;
  memset(&info, 0, sizeof(info));
  uint8_t f = byte(c);
  info.have_sample = f & 1;
  info.authenticated = f & 2;
  info.prefer = f & 4;
  info.noselect = f & 8;
  info.reach = byte(c);
  info.stratum = byte(c) & 31;
  info.leap = byte(c) & 3;
  info.poll = (int8_t)byte(c);
  info.offset = num(c, 1e-4);
  info.delay = num(c, 1e-5);
  info.jitter = num(c, 1e-6);
  info.dispersion = num(c, 1e-5);
  info.root_delay = num(c, 1e-5);
  info.root_disp = num(c, 1e-5);
  info.sample_age = info.when = num(c, 0.1);
  ntp_filter_raw raw[NTP_FILTER_LEN];
  int k = byte(c) % (NTP_FILTER_LEN + 1);
  for (int j = 0; j < k; j++)
    raw[j] = (ntp_filter_raw){.t = now - fabs(num(c, 0.1)), .offset = num(c, 1e-4),
                              .delay = num(c, 1e-5), .error = num(c, 1e-6)};
  ntp_core_set_source(core, i, (f & 16) ? NULL : &info, raw, k, 0x7f000001);
}

static void check(const ntp_core *core, const ntp_core_actions *a, size_t n, double max_freq)
{
  if (a->adjust && !(fabs(a->freq_ppm) <= max_freq + 1e-9))
    abort();
  if (a->adjust && !isfinite(a->step))
    abort();
  for (size_t i = 0; i < a->n_poll; i++)
    if (a->poll[i] < -1 || a->poll[i] > 17)
      abort();
  int p = ntp_core_get_sys(core)->sys_peer;
  if (p >= (int)n || p < -1)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  cur c = {data, size};
  ntp_core_cfg cfg;
  ntp_core_default_cfg(&cfg);
  uint8_t g = byte(&c);
  cfg.select.minsane = 1 + (g & 3);
  cfg.select.authsel = (ntp_authsel)((g >> 2) & 3);
  cfg.select.auth_configured = (g >> 4) & 1;
  cfg.disc.estimate_only = (g >> 5) & 1;
  cfg.disc.algo = (g >> 6) & 1 ? NTP_DISC_PLL : NTP_DISC_REGRESSION;
  cfg.local_stratum = (g >> 7) ? 5 : 0;
  ntp_core *core = ntp_core_create(&cfg, 0.0);
  if (!core)
    return 0;
  double now = 1.0;
  for (int run = 0; run < 64 && c.n; run++) {
    size_t n = byte(&c) % 6;
    double dt = fabs(num(&c, 0.01));
    now += dt < 1e6 ? dt : 1.0;
    for (size_t i = 0; i < n; i++)
      one_source(core, i, &c, now);
    ntp_core_actions a;
    ntp_core_update(core, now, n, &a);
    check(core, &a, n, cfg.disc.max_freq_ppm);
    if (byte(&c) & 1 && isfinite(a.slew_until) && a.slew_until > now) {
      now = a.slew_until;
      ntp_core_tick(core, now, &a);
      check(core, &a, n, cfg.disc.max_freq_ppm);
    }
  }
  ntp_core_destroy(core);
  return 0;
}
