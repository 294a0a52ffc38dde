/* statsfmt: the lines of NTPsec's statistics files (loopstats, peerstats,
 * rawstats), field for field as NTPsec 1.2 writes them, so that tools
 * reading those files (ntpviz, scripts) read ours.  Pure: the caller passes
 * the wall-clock time of the record and every value; docs/statistics.md
 * describes the fields. */
#ifndef NTSD_PROTO_STATSFMT_H
#define NTSD_PROTO_STATSFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/ntp_time.h"
#include "proto/select.h"

#define STATSFMT_LINE_MAX 400 /* longest line with two IPv6 addresses, plus margin */
#define STATSFMT_ADDR_MAX 64  /* an address as the caller prints it */

/* A UTC time as the files count it: Unix seconds and nanoseconds. */
typedef struct statsfmt_time {
  int64_t sec;
  uint32_t nsec;
} statsfmt_time;

/* Days since 1970-01-01 (UTC, floor) and the YYYYMMDD a daily file of
 * that day is suffixed with. */
int64_t statsfmt_day(int64_t unix_sec);
void statsfmt_day_suffix(int64_t day, char out[9]);

typedef struct statsfmt_loop {
  double offset;     /* s */
  double freq_ppm;   /* frequency offset */
  double jitter;     /* s */
  double wander_ppm; /* frequency's estimated error */
  int time_constant; /* log2 s: the poll the discipline runs at */
} statsfmt_loop;

typedef struct statsfmt_peer {
  char addr[STATSFMT_ADDR_MAX];
  uint16_t status; /* statsfmt_peer_status() */
  double offset, delay, dispersion, jitter; /* s */
} statsfmt_peer;

typedef struct statsfmt_raw {
  char src[STATSFMT_ADDR_MAX], dst[STATSFMT_ADDR_MAX];
  ntp_ts t1, t2, t3, t4; /* origin, receive, transmit, destination */
  uint8_t leap, version, mode, stratum;
  int8_t poll, precision;
  double root_delay, root_disp; /* s */
  uint32_t refid;               /* as on the wire, host order */
  unsigned lost;                /* requests unanswered since the previous reply */
} statsfmt_raw;

/* What goes into a peer status word (RFC 5905's ntpq status, as NTPsec
 * builds it): the association's flags, its selection state and its last
 * event. */
typedef struct statsfmt_peer_state {
  bool configured, auth_enabled, authentic, reachable;
  ntp_sel_state sel;
  uint8_t last_event;  /* STATSFMT_EVNT_* */
  uint8_t event_count; /* times in a row, saturates at 15 */
} statsfmt_peer_state;

#define STATSFMT_EVNT_MOBILIZE 0x1
#define STATSFMT_EVNT_UNREACH 0x3
#define STATSFMT_EVNT_REACH 0x4
#define STATSFMT_EVNT_SYSPEER 0xa

uint16_t statsfmt_peer_status(const statsfmt_peer_state *s);

/* The refid column: ".LOCL." style for stratum 0 and 1 (printable ASCII
 * kept, the rest dropped), dotted quad above. */
void statsfmt_refid(uint8_t stratum, uint32_t refid, char out[16]);

/* Each writes one line ending in '\n' into buf and returns its length,
 * 0 if it does not fit (cap >= STATSFMT_LINE_MAX always does). */
size_t statsfmt_loopstats(char *buf, size_t cap, statsfmt_time now, const statsfmt_loop *l);
size_t statsfmt_peerstats(char *buf, size_t cap, statsfmt_time now, const statsfmt_peer *p);
size_t statsfmt_rawstats(char *buf, size_t cap, statsfmt_time now, const statsfmt_raw *r);

#endif
