/* ke_admit: which connections the NTS-KE server takes, and which it drops
 * to make room for them.
 *
 * A fixed table of connection slots (sized at creation; nothing is
 * allocated per connection).  Each slot holds its client's prefix (IPv4
 * /24, IPv6 /56), the time it was accepted, and its phase.  A newcomer is
 * refused when its prefix already holds `per_prefix` slots, so a few
 * networks cannot take every slot.  Otherwise it gets a free slot or, when
 * there is none, the slot of the oldest connection that has not finished
 * its TLS handshake: idle connections cannot keep anyone out, and the
 * caller never does TLS work for them beyond their deadline.  Only when
 * every slot holds a finished handshake is the newcomer refused.
 *
 * Each phase has its deadline: the whole ClientHello within `hello_timeout`
 * of the accept, the whole exchange within `timeout`.
 *
 * Time is passed in (seconds, any monotonic origin): no clock, no I/O. */
#ifndef NTSD_PROTO_KE_ADMIT_H
#define NTSD_PROTO_KE_ADMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/acl.h"

/* Defaults for ntsd's KE server (docs/nts.md). */
#define KE_ADMIT_SLOTS 256
#define KE_ADMIT_PER_PREFIX 16
#define KE_ADMIT_HELLO_TIMEOUT 1.0
#define KE_ADMIT_TIMEOUT 2.0

typedef enum ke_admit_phase {
  KE_PHASE_FREE = 0,
  KE_PHASE_HELLO,     /* accepted; the ClientHello has not all arrived */
  KE_PHASE_HANDSHAKE, /* ClientHello in; the handshake goes on */
  KE_PHASE_EXCHANGE,  /* handshake finished: request, response, close */
} ke_admit_phase;

typedef struct ke_admit_cfg {
  size_t slots;         /* concurrent connections (0: KE_ADMIT_SLOTS) */
  size_t per_prefix;    /* of them from one /24 or /56 (0: KE_ADMIT_PER_PREFIX) */
  double hello_timeout; /* s from accept to the whole ClientHello (<= 0: default) */
  double timeout;       /* s from accept to the end of the exchange (<= 0: default) */
} ke_admit_cfg;

typedef enum ke_admit_verdict {
  KE_ADMIT_OK = 0,      /* the newcomer has *slot, in phase HELLO */
  KE_ADMIT_EVICT,       /* no free slot: close the connection in *slot
                           (ke_admit_release), then ask again */
  KE_ADMIT_PREFIX_FULL, /* refused: its prefix holds per_prefix slots */
  KE_ADMIT_FULL,        /* refused: every slot has finished its handshake */
} ke_admit_verdict;

typedef struct ke_admit ke_admit;

ke_admit *ke_admit_create(const ke_admit_cfg *cfg);
void ke_admit_destroy(ke_admit *a);
/* The configuration in force (defaults filled in). */
const ke_admit_cfg *ke_admit_config(const ke_admit *a);

/* A new connection from addr (4 or 16 bytes) accepted at `now`. */
ke_admit_verdict ke_admit_open(ke_admit *a, enum acl_family fam, const uint8_t *addr,
                               double now, size_t *slot);
/* Moves a slot forward (HELLO -> HANDSHAKE -> EXCHANGE); never back. */
void ke_admit_advance(ke_admit *a, size_t slot, ke_admit_phase phase);
/* The connection in slot has closed; its slot is free. */
void ke_admit_release(ke_admit *a, size_t slot);

ke_admit_phase ke_admit_phase_of(const ke_admit *a, size_t slot);
/* When the connection in slot must be closed, on the clock of `now`:
 * accept + hello_timeout in phase HELLO, accept + timeout after. */
double ke_admit_deadline(const ke_admit *a, size_t slot);
size_t ke_admit_in_use(const ke_admit *a);
/* Slots held by addr's prefix. */
size_t ke_admit_prefix_count(const ke_admit *a, enum acl_family fam, const uint8_t *addr);

/* addr's prefix (the address with the bits past /24 or /56 cleared, 4 or
 * 16 bytes into out); returns its length in bits. */
unsigned ke_admit_prefix(enum acl_family fam, const uint8_t *addr, uint8_t out[16]);

#endif
