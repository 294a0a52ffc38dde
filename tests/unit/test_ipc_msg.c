/* Unit tests for src/proto/ipc_msg (the frames between the main and the
 * NTS-KE process) and src/proto/ke_keygate (when a key may retire). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/ipc_msg.h"
#include "proto/ke_keygate.h"

/* ---- ipc_msg ------------------------------------------------------------ */

static void test_keys_bytes(void **state)
{
  (void)state;
  ipc_msg m = {.type = IPC_MSG_KEYS, .u.keys = {.id = 0x01020304, .created = 0x1122334455667788}};
  for (int i = 0; i < IPC_KEY_LEN; i++)
    m.u.keys.key[i] = (uint8_t)(0xa0 + i);
  uint8_t buf[IPC_MSG_MAX_LEN];
  size_t n = ipc_msg_encode(&m, buf, sizeof(buf));
  assert_int_equal(n, IPC_MSG_HDR_LEN + 44);
  const uint8_t head[] = {0, 1, 0, 44, 1, 2, 3, 4, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};
  assert_memory_equal(buf, head, sizeof(head));
  assert_int_equal(buf[16], 0xa0);
  assert_int_equal(buf[n - 1], 0xa0 + 31);
  ipc_msg out;
  assert_int_equal(ipc_msg_decode(buf, n, IPC_FROM_MAIN, &out), IPC_OK);
  assert_int_equal(out.type, IPC_MSG_KEYS);
  assert_int_equal(out.u.keys.id, 0x01020304);
  assert_true(out.u.keys.created == 0x1122334455667788ull);
  assert_memory_equal(out.u.keys.key, m.u.keys.key, IPC_KEY_LEN);
}

static void test_ack_and_stats_round_trip(void **state)
{
  (void)state;
  uint8_t buf[IPC_MSG_MAX_LEN];
  ipc_msg a = {.type = IPC_MSG_KEYS_ACK, .u.ack_id = 0xdeadbeef}, out;
  size_t n = ipc_msg_encode(&a, buf, sizeof(buf));
  assert_int_equal(n, 8);
  assert_int_equal(ipc_msg_decode(buf, n, IPC_FROM_KE, &out), IPC_OK);
  assert_int_equal(out.u.ack_id, 0xdeadbeef);
  ipc_msg s = {.type = IPC_MSG_STATS};
  for (int i = 0; i < IPC_STATS_N; i++)
    s.u.stats[i] = (uint64_t)i << 40 | (uint64_t)i;
  n = ipc_msg_encode(&s, buf, sizeof(buf));
  assert_int_equal(n, IPC_MSG_MAX_LEN);
  assert_int_equal(ipc_msg_decode(buf, n, IPC_FROM_KE, &out), IPC_OK);
  assert_memory_equal(out.u.stats, s.u.stats, sizeof(s.u.stats));
}

/* A STATS frame of the earlier 88-byte layout (11 counters, no handshake
 * histogram) is refused, not read as a partial report. */
static void test_stats_old_length(void **state)
{
  (void)state;
  uint8_t buf[IPC_MSG_HDR_LEN + 88] = {0, 3, 0, 88};
  ipc_msg out;
  assert_int_equal(IPC_STATS_BODY_LEN, 176);
  assert_int_equal(ipc_msg_decode(buf, sizeof(buf), IPC_FROM_KE, &out), IPC_BAD_LENGTH);
}

static void test_encode_refuses(void **state)
{
  (void)state;
  uint8_t buf[IPC_MSG_MAX_LEN];
  ipc_msg m = {.type = (ipc_msg_type)9};
  assert_int_equal(ipc_msg_encode(&m, buf, sizeof(buf)), 0);
  m.type = IPC_MSG_STATS;
  assert_int_equal(ipc_msg_encode(&m, buf, IPC_MSG_MAX_LEN - 1), 0);
}

/* Each direction accepts only its own types. */
static void test_direction(void **state)
{
  (void)state;
  uint8_t buf[IPC_MSG_MAX_LEN];
  ipc_msg m = {.type = IPC_MSG_KEYS}, out;
  size_t n = ipc_msg_encode(&m, buf, sizeof(buf));
  assert_int_equal(ipc_msg_decode(buf, n, IPC_FROM_KE, &out), IPC_BAD_TYPE);
  assert_int_equal(out.type, 0);
  m.type = IPC_MSG_KEYS_ACK;
  n = ipc_msg_encode(&m, buf, sizeof(buf));
  assert_int_equal(ipc_msg_decode(buf, n, IPC_FROM_MAIN, &out), IPC_BAD_TYPE);
}

static void test_malformed(void **state)
{
  (void)state;
  uint8_t buf[IPC_MSG_MAX_LEN + 1];
  ipc_msg m = {.type = IPC_MSG_KEYS_ACK, .u.ack_id = 7}, out;
  size_t n = ipc_msg_encode(&m, buf, sizeof(buf));
  assert_int_equal(ipc_msg_decode(buf, 0, IPC_FROM_KE, &out), IPC_TRUNCATED);
  assert_int_equal(ipc_msg_decode(buf, 3, IPC_FROM_KE, &out), IPC_TRUNCATED);
  assert_int_equal(ipc_msg_decode(buf, n - 1, IPC_FROM_KE, &out), IPC_TRUNCATED);
  buf[n] = 0;
  assert_int_equal(ipc_msg_decode(buf, n + 1, IPC_FROM_KE, &out), IPC_TRAILING);
  buf[3] = 5; /* a length the type does not have */
  assert_int_equal(ipc_msg_decode(buf, n + 1, IPC_FROM_KE, &out), IPC_BAD_LENGTH);
  buf[3] = 4;
  const uint8_t unknown[] = {0, 0, 0, 0};
  assert_int_equal(ipc_msg_decode(unknown, 4, ~0u, &out), IPC_BAD_TYPE);
  const uint8_t big[] = {0x80, 0x02, 0, 4, 0, 0, 0, 0};
  assert_int_equal(ipc_msg_decode(big, sizeof(big), ~0u, &out), IPC_BAD_TYPE);
  assert_string_equal(ipc_status_name(IPC_BAD_LENGTH), "bad length");
  assert_string_equal(ipc_status_name((ipc_status)99), "?");
}

/* ---- ke_keygate --------------------------------------------------------- */

/* Keys before the gate existed are not held back. */
static void test_gate_old_keys(void **state)
{
  (void)state;
  ke_keygate *g = ke_keygate_create(100, 600);
  assert_non_null(g);
  assert_true(ke_keygate_may_drop(g, 93, 100, 0));
  assert_true(ke_keygate_may_drop(g, 99, 107, 0));
  ke_keygate_destroy(g);
}

/* A key retires only a lifetime after a newer one was acknowledged. */
static void test_gate_waits_for_ack_and_lifetime(void **state)
{
  (void)state;
  ke_keygate *g = ke_keygate_create(100, 600);
  ke_keygate_ack(g, 100, 10);
  assert_false(ke_keygate_may_drop(g, 100, 107, 1e9)); /* 101.. never acknowledged */
  ke_keygate_ack(g, 101, 1000);
  ke_keygate_ack(g, 101, 5000); /* a repeat keeps the first time */
  assert_false(ke_keygate_may_drop(g, 100, 107, 1599));
  assert_true(ke_keygate_may_drop(g, 100, 107, 1600));
  assert_true(ke_keygate_acked(g, 101));
  assert_false(ke_keygate_acked(g, 109));
  ke_keygate_destroy(g);
}

/* A restarted KE process may skip a key: the next acknowledged one counts. */
static void test_gate_skipped_key(void **state)
{
  (void)state;
  ke_keygate *g = ke_keygate_create(100, 60);
  ke_keygate_ack(g, 100, 0);
  ke_keygate_ack(g, 103, 500);
  assert_false(ke_keygate_may_drop(g, 100, 107, 559));
  assert_true(ke_keygate_may_drop(g, 100, 107, 560));
  assert_true(ke_keygate_may_drop(g, 102, 107, 560));
  assert_false(ke_keygate_may_drop(g, 103, 107, 1e9));
  ke_keygate_destroy(g);
}

/* Ids wrap at 2^32. */
static void test_gate_wraps(void **state)
{
  (void)state;
  ke_keygate *g = ke_keygate_create(0xfffffffe, 10);
  assert_true(ke_keygate_may_drop(g, 0xfffffffd, 4, 0));
  ke_keygate_ack(g, 0xfffffffe, 0);
  ke_keygate_ack(g, 0xffffffff, 100);
  assert_false(ke_keygate_may_drop(g, 0xfffffffe, 5, 105));
  assert_true(ke_keygate_may_drop(g, 0xfffffffe, 5, 110));
  assert_false(ke_keygate_may_drop(g, 0xffffffff, 5, 1e9));
  ke_keygate_ack(g, 0, 200);
  assert_true(ke_keygate_may_drop(g, 0xffffffff, 5, 210));
  ke_keygate_destroy(g);
}

/* A KE process that stays down holds rotations for one cookie lifetime
 * after it ended, not for ever; one that never held a key, not at all. */
static void test_gate_down(void **state)
{
  (void)state;
  ke_keygate *g = ke_keygate_create(100, 600);
  ke_keygate_ack(g, 100, 10);
  ke_keygate_down(g, 50);
  ke_keygate_down(g, 400); /* a repeat keeps the first time */
  assert_false(ke_keygate_may_drop(g, 100, 107, 649));
  assert_true(ke_keygate_may_drop(g, 100, 107, 650));
  ke_keygate_destroy(g);

  g = ke_keygate_create(100, 600); /* its first process never acknowledged */
  ke_keygate_down(g, 5);
  assert_true(ke_keygate_may_drop(g, 100, 107, 5));
  ke_keygate_destroy(g);
}

/* Processes that keep dying before they acknowledge anything do not move
 * the down time: the last one that sealed decides. */
static void test_gate_restart_loop(void **state)
{
  (void)state;
  ke_keygate *g = ke_keygate_create(100, 600);
  ke_keygate_ack(g, 100, 0);
  ke_keygate_down(g, 20);
  for (double t = 84; t < 5000; t += 64)
    ke_keygate_down(g, t); /* each restart ended before acknowledging */
  assert_false(ke_keygate_may_drop(g, 100, 107, 619));
  assert_true(ke_keygate_may_drop(g, 100, 107, 620));
  ke_keygate_destroy(g);
}

/* After a long down time, the next process's first acknowledgement does
 * not hold the keys it never had for another lifetime. */
static void test_gate_back_up(void **state)
{
  (void)state;
  ke_keygate *g = ke_keygate_create(100, 600);
  ke_keygate_ack(g, 100, 0);
  ke_keygate_ack(g, 101, 10);
  ke_keygate_down(g, 20);
  ke_keygate_ack(g, 115, 800); /* a new process, up again */
  assert_true(ke_keygate_may_drop(g, 108, 115, 900)); /* down since 20: 620 */
  assert_false(ke_keygate_may_drop(g, 115, 122, 1e9)); /* its own key: acks decide */
  ke_keygate_ack(g, 116, 2000);
  assert_false(ke_keygate_may_drop(g, 115, 122, 2599));
  assert_true(ke_keygate_may_drop(g, 115, 122, 2600));
  ke_keygate_destroy(g);

  g = ke_keygate_create(100, 600); /* short down: the earlier rule still holds */
  ke_keygate_ack(g, 100, 0);
  ke_keygate_down(g, 20);
  ke_keygate_ack(g, 101, 30);
  assert_false(ke_keygate_may_drop(g, 100, 107, 619));
  assert_true(ke_keygate_may_drop(g, 100, 107, 620));
  ke_keygate_destroy(g);
}

/* A replaced process that sealed with keys up to 105 until 1000 holds them
 * for a lifetime after, whatever the acknowledgements say. */
static void test_gate_sealed(void **state)
{
  (void)state;
  ke_keygate *g = ke_keygate_create(100, 600);
  ke_keygate_ack(g, 100, 0);
  ke_keygate_ack(g, 106, 10);
  ke_keygate_sealed(g, 105, 1000);
  ke_keygate_sealed(g, 103, 900); /* an older one changes nothing */
  assert_false(ke_keygate_may_drop(g, 100, 107, 1599));
  assert_false(ke_keygate_may_drop(g, 105, 112, 1599));
  assert_true(ke_keygate_may_drop(g, 105, 112, 1600));
  assert_false(ke_keygate_may_drop(g, 106, 113, 1e9)); /* 106: acks decide, none newer */
  ke_keygate_down(g, 1100);
  assert_false(ke_keygate_may_drop(g, 100, 107, 1599)); /* down does not lift the hold */
  ke_keygate_destroy(g);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_keys_bytes),
      cmocka_unit_test(test_ack_and_stats_round_trip),
      cmocka_unit_test(test_stats_old_length),
      cmocka_unit_test(test_encode_refuses),
      cmocka_unit_test(test_direction),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_gate_old_keys),
      cmocka_unit_test(test_gate_waits_for_ack_and_lifetime),
      cmocka_unit_test(test_gate_skipped_key),
      cmocka_unit_test(test_gate_wraps),
      cmocka_unit_test(test_gate_down),
      cmocka_unit_test(test_gate_restart_loop),
      cmocka_unit_test(test_gate_back_up),
      cmocka_unit_test(test_gate_sealed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
