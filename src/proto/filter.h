/* filter: the per-source clock filter (RFC 5905 10).  It keeps the last
 * NTP_FILTER_LEN samples and offers the minimum-delay one, because the
 * sample with the least queueing delay has the smallest asymmetry error.
 *
 * On top of the RFC's minimum-delay choice (beyond NTP_FILTER_ALLAN, age
 * counts too):
 *  - a sample is used only if it is newer than the one used last, so one
 *    measurement never reaches the clock discipline twice and an old sample
 *    that becomes the minimum when a better one ages out is not replayed;
 *  - popcorn spikes are held back: once jitter is established, a new sample
 *    whose offset differs from the last used one by more than
 *    NTP_FILTER_SGATE x jitter is marked as a spike (never selected, left out
 *    of jitter) unless the sample before it was displaced the same way.  A
 *    lone spike therefore never reaches the output, while a real step (our
 *    clock was stepped, the route changed) gets through one sample later;
 *  - dispersion grows with age at NTP_PHI (15 ppm) and is recomputed when
 *    asked for, so a silent source becomes less attractive by itself.
 *
 * Pure and allocation-free: a value type meant to be embedded (the source
 * owns one).  Treat the members as private and use the functions. */
#ifndef NTSD_PROTO_FILTER_H
#define NTSD_PROTO_FILTER_H

#include <stdbool.h>

#define NTP_FILTER_LEN 8          /* samples kept (RFC 5905 NSTAGE) */
#define NTP_FILTER_SGATE 3.0      /* popcorn spike gate, multiples of jitter */
#define NTP_FILTER_MAXDISP 16.0   /* dispersion of an empty slot, seconds */
/* Allan intercept, seconds: samples older than this are ranked by delay plus
 * aged dispersion instead of delay alone, so at long polls the filter does
 * not keep offering a sample several polls old (ntpd does the same). */
#define NTP_FILTER_ALLAN 2048.0
/* Jitter counts as established (and the spike gate applies) once it was
 * computed over at least this many samples: with two or three samples the
 * RMS is too noisy to call anything a spike. */
#define NTP_FILTER_JITTER_MIN 4
/* Samples before empty register slots stop counting as MAXDISP. */
#define NTP_FILTER_MIN_SAMPLES 2

typedef struct ntp_filter_sample {
  double offset, delay, disp; /* seconds; disp as measured, not yet aged */
  double t;                   /* monotonic time it was taken */
  int displaced;              /* sign of an offset beyond the gate on arrival, else 0 */
  bool spike;                 /* held back: not selected, not in jitter */
} ntp_filter_sample;

typedef struct ntp_filter {
  ntp_filter_sample reg[NTP_FILTER_LEN]; /* ring, reg[pos] is the oldest when full */
  int n, pos;
  double precision;       /* floor for jitter: our clock's precision, seconds */
  bool have_out;
  ntp_filter_sample out;  /* the sample used last */
  double jitter;          /* RMS offset difference to `out` over non-spike samples */
  int jitter_n;           /* samples that jitter was computed over */
  /* The path's minimum delay, remembered longer than the register: the
   * least delay seen, relaxing towards the register's minimum by
   * 1/NTP_FILTER_MIN_RELAX per sample (so a lasting route change is
   * followed in a few dozen samples).  < 0 while empty. */
  double min_delay;
} ntp_filter;

#define NTP_FILTER_MIN_RELAX 32.0

/* What ntp_filter_add() did with the register's best sample. */
typedef enum ntp_filter_result {
  NTP_FILTER_UPDATED = 0, /* a newer minimum-delay sample became the output */
  NTP_FILTER_OLD,         /* the best sample is not newer than the last used: unchanged */
  NTP_FILTER_SPIKE,       /* the new sample is a popcorn spike: unchanged */
} ntp_filter_result;

/* The filter's estimate for selection, evaluated at a given time. */
typedef struct ntp_filter_out {
  double offset, delay; /* of the sample used last */
  double dispersion;    /* of the whole register, aged to the query time */
  double jitter;        /* >= precision */
  double t;             /* monotonic time of the sample used last */
  int n;                /* samples held, 0..NTP_FILTER_LEN */
} ntp_filter_out;

/* Empties the filter.  precision: our clock's precision in seconds (jitter
 * never goes below it). */
void ntp_filter_init(ntp_filter *f, double precision);

/* Adds a sample taken at monotonic time `now` (which must not go backwards)
 * and re-evaluates the output. */
ntp_filter_result ntp_filter_add(ntp_filter *f, double offset, double delay, double disp,
                                 double now);

/* Fills *out as of monotonic time `now`.  Returns false (and dispersion
 * NTP_FILTER_MAXDISP, everything else 0) while no sample was ever used. */
bool ntp_filter_get(const ntp_filter *f, double now, ntp_filter_out *out);

/* Samples held (used or not). */
int ntp_filter_count(const ntp_filter *f);

/* The error floor shared by a source's samples (see ntp_filter_samples):
 *   max(precision, FLOOR * median excess / 2)
 *   + (min delay / 2) * (NTP_FILTER_LEN - seen) / NTP_FILTER_LEN while seen < NTP_FILTER_LEN
 * ex[0..n): the samples' delays beyond min_delay (sorted here, in place;
 * the median of two is the smaller: the other may be a spike); seen: how
 * many samples of the source there are.  Also used by the discipline to
 * re-rate its window. */
double ntp_filter_error_floor(double *ex, int n, double min_delay, unsigned seen,
                              double precision);

/* One measurement for the clock discipline: every sample counts there, each
 * weighted by how much queueing its delay shows (see ntp_filter_samples). */
typedef struct ntp_filter_raw {
  double t;      /* monotonic time it was taken */
  double offset; /* as measured */
  double delay;  /* round-trip delay, as measured */
  double error;  /* error estimate, seconds (see ntp_filter_samples) */
} ntp_filter_raw;

/* Error floor, as a fraction of half the typical (median) delay excess
 * over the path's minimum: a sample at the minimum delay is not exact
 * either, since the minimum is itself only a sample. */
#define NTP_FILTER_ERR_FLOOR 1.0

/* Fills out[] (up to cap) with the samples taken after `after` that are
 * not popcorn spikes, oldest first; returns how many.  The queueing delay
 * beyond the path's minimum is what bounds a sample's asymmetry error, so
 * the discipline weights each sample by it instead of keeping only the
 * minimum-delay sample as the filter's output does:
 *   error = max(precision, FLOOR * median excess / 2) + excess / 2
 *         + (min delay / 2) * (empty slots / NTP_FILTER_LEN)
 * (the median of two samples is the smaller: the other may be a spike),
 * where the last term keeps a young register (which may not have seen the
 * path's minimum yet) from claiming precision it does not have; half the
 * minimum delay is the bound no asymmetry error exceeds. */
int ntp_filter_samples(const ntp_filter *f, double after, ntp_filter_raw *out, int cap);

const char *ntp_filter_result_name(ntp_filter_result r);

#endif
