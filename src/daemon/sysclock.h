/* sysclock: reading the system clocks and the kernel's random source.
 * The only place in the daemon that calls clock_gettime or getrandom, so
 * everything above it can be driven by other clocks in tests. */
#ifndef NTSD_DAEMON_SYSCLOCK_H
#define NTSD_DAEMON_SYSCLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "proto/ntp_time.h"

struct timespec sysclock_realtime(void);
ntp_ts sysclock_now_ntp(void);
/* Monotonic seconds (CLOCK_MONOTONIC). */
double sysclock_mono(void);
/* Measured precision of reading the clock, seconds (and its log2). */
double sysclock_precision(int *log2_out);
/* Fills buf from the kernel CSPRNG; aborts if it is unavailable (we never
 * fall back to weak randomness). */
void sysclock_random(void *buf, size_t n);

/* The virtual clock (ntsd --virtual-clock, for tests): the daemon's view of
 * the time is the system time plus an offset that the discipline steps and
 * slews like a real clock, starting at `offset` seconds with a frequency
 * error of `freq_ppm`.  The system clock itself is never touched. */
void sysclock_virtual_enable(double offset, double freq_ppm);
bool sysclock_virtual_on(void);
/* The virtual clock's error: its time minus the system time, seconds. */
double sysclock_virtual_error(void);
void sysclock_virtual_step(double seconds);
/* The correction the discipline applies, on top of the frequency error. */
void sysclock_virtual_set_freq(double ppm);
/* Converts a kernel timestamp (system time) to the daemon's time. */
struct timespec sysclock_local(const struct timespec *kernel);

#endif
