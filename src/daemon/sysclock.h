/* sysclock: reading the system clocks and the kernel's random source.
 * The only place in the daemon that calls clock_gettime or getrandom, so
 * everything above it can be driven by other clocks in tests. */
#ifndef NTSD_DAEMON_SYSCLOCK_H
#define NTSD_DAEMON_SYSCLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* The system clock (CLOCK_REALTIME) as the kernel keeps it.  The daemon's
 * own time is clockctl_now(): under --virtual-clock they differ. */
struct timespec sysclock_system(void);
/* Monotonic seconds (CLOCK_MONOTONIC). */
double sysclock_mono(void);
/* Measured precision of reading the clock, seconds (and its log2). */
double sysclock_precision(int *log2_out);
/* Fills buf from the kernel CSPRNG; aborts if it is unavailable (we never
 * fall back to weak randomness). */
void sysclock_random(void *buf, size_t n);

#endif
