/* ntp_time: NTP timestamps (64-bit 32.32 fixed point) and short format (16.16).
 *
 * An ntp_ts counts seconds since 1900 modulo 2^32 (one NTP era).  The era is
 * never stored: differences are taken in signed 64-bit arithmetic and a
 * timestamp is placed in an era by its distance to a pivot time, so the code
 * works unchanged across the 2036 rollover as long as the clocks involved
 * are within 68 years of each other. */
#ifndef NTSD_PROTO_NTP_TIME_H
#define NTSD_PROTO_NTP_TIME_H

#include <stdint.h>
#include <time.h>

typedef uint64_t ntp_ts;    /* 32.32 seconds since 1900, modulo 2^32 s */
typedef uint32_t ntp_short; /* 16.16 seconds */

/* Seconds from 1900-01-01 to 1970-01-01. */
#define NTP_UNIX_OFFSET 2208988800ULL

ntp_ts ntp_ts_from_timespec(const struct timespec *ts);
/* Converts to a timespec in the era closest to pivot. */
struct timespec ntp_ts_to_timespec(ntp_ts t, const struct timespec *pivot);
/* a - b in seconds; correct across an era boundary (|a - b| < 68 years). */
double ntp_ts_diff(ntp_ts a, ntp_ts b);
ntp_ts ntp_ts_add(ntp_ts t, double seconds);
/* Seconds-of-era as a double, for logs only. */
double ntp_ts_to_double(ntp_ts t);

ntp_short ntp_short_from_double(double seconds); /* rounds up, clamps to [0, 65536) */
double ntp_short_to_double(ntp_short s);

/* 2^x for the log2 fields (poll, precision). */
double ntp_log2_to_double(int x);

#endif
