/* Unit tests for daemon/netstamp.c: control messages the client and the
 * server read their kernel timestamps and destination addresses from. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <linux/errqueue.h>

#include "daemon/netstamp.h"

typedef union {
  char buf[NETSTAMP_CMSG_SPACE];
  struct cmsghdr align;
} cbuf;

/* Appends one control message to mh (whose msg_controllen is the used
 * length); returns its header so a test can spoil it. */
static struct cmsghdr *add(struct msghdr *mh, int level, int type, const void *data, size_t n)
{
  size_t used = mh->msg_controllen;
  struct cmsghdr *c = (struct cmsghdr *)((char *)mh->msg_control + used);
  memset(c, 0, CMSG_SPACE(n));
  c->cmsg_level = level;
  c->cmsg_type = type;
  c->cmsg_len = CMSG_LEN(n);
  memcpy(CMSG_DATA(c), data, n);
  mh->msg_controllen = used + CMSG_SPACE(n);
  return c;
}

static void init(struct msghdr *mh, cbuf *cb)
{
  memset(mh, 0, sizeof(*mh));
  memset(cb, 0, sizeof(*cb));
  mh->msg_control = cb->buf;
  mh->msg_controllen = 0;
}

static void test_all_kinds(void **state)
{
  (void)state;
  struct msghdr mh;
  cbuf cb;
  init(&mh, &cb);
  struct timespec rx = {.tv_sec = 1700000000, .tv_nsec = 123};
  struct scm_timestamping tx = {.ts = {{.tv_sec = 1700000001, .tv_nsec = 456}}};
  struct in_pktinfo pi = {.ipi_ifindex = 3};
  pi.ipi_addr.s_addr = htonl(0x7f000001);
  add(&mh, SOL_SOCKET, SCM_TIMESTAMPNS, &rx, sizeof(rx));
  add(&mh, SOL_SOCKET, SCM_TIMESTAMPING, &tx, sizeof(tx));
  add(&mh, IPPROTO_IP, IP_PKTINFO, &pi, sizeof(pi));
  netstamp ns;
  netstamp_parse(&mh, &ns);
  assert_true(ns.have_rx);
  assert_int_equal(ns.rx.tv_sec, 1700000000);
  assert_int_equal(ns.rx.tv_nsec, 123);
  assert_true(ns.have_tx);
  assert_int_equal(ns.tx.tv_sec, 1700000001);
  assert_int_equal(ns.tx.tv_nsec, 456);
  assert_int_equal(ns.have_dst, 4);
  assert_int_equal(ntohl(ns.dst4.ipi_addr.s_addr), 0x7f000001);

  init(&mh, &cb);
  struct in6_pktinfo pi6 = {.ipi6_ifindex = 7};
  pi6.ipi6_addr.s6_addr[15] = 1;
  add(&mh, IPPROTO_IPV6, IPV6_PKTINFO, &pi6, sizeof(pi6));
  netstamp_parse(&mh, &ns);
  assert_false(ns.have_rx);
  assert_false(ns.have_tx);
  assert_int_equal(ns.have_dst, 6);
  assert_int_equal(ns.dst6.ipi6_ifindex, 7);
}

static void test_nothing(void **state)
{
  (void)state;
  struct msghdr mh;
  cbuf cb;
  init(&mh, &cb);
  netstamp ns;
  memset(&ns, 0xff, sizeof(ns));
  netstamp_parse(&mh, &ns); /* no control messages at all */
  assert_false(ns.have_rx);
  assert_false(ns.have_tx);
  assert_int_equal(ns.have_dst, 0);
  /* Unknown types and a hardware-only transmit stamp are passed over. */
  int x = 1;
  add(&mh, SOL_SOCKET, SCM_RIGHTS, &x, sizeof(x));
  struct scm_timestamping hw = {.ts = {{0}, {0}, {.tv_sec = 5}}};
  add(&mh, SOL_SOCKET, SCM_TIMESTAMPING, &hw, sizeof(hw));
  netstamp_parse(&mh, &ns);
  assert_false(ns.have_rx);
  assert_false(ns.have_tx);
}

/* A message shorter than its payload, or claiming more than the buffer
 * holds, gives nothing (and reads nothing beyond the buffer). */
static void test_short(void **state)
{
  (void)state;
  struct msghdr mh;
  cbuf cb;
  init(&mh, &cb);
  struct timespec rx = {.tv_sec = 9};
  struct cmsghdr *c = add(&mh, SOL_SOCKET, SCM_TIMESTAMPNS, &rx, sizeof(rx));
  c->cmsg_len = CMSG_LEN(sizeof(rx) - 1);
  netstamp ns;
  netstamp_parse(&mh, &ns);
  assert_false(ns.have_rx);

  init(&mh, &cb);
  add(&mh, SOL_SOCKET, SCM_TIMESTAMPNS, &rx, sizeof(rx));
  mh.msg_controllen = CMSG_LEN(sizeof(rx)) - 4; /* the buffer ends inside the payload */
  netstamp_parse(&mh, &ns);
  assert_false(ns.have_rx);

  init(&mh, &cb);
  c = add(&mh, SOL_SOCKET, SCM_TIMESTAMPNS, &rx, sizeof(rx));
  c->cmsg_len = 1 << 20; /* claims far more than there is */
  netstamp_parse(&mh, &ns);
  assert_false(ns.have_rx);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_all_kinds),
      cmocka_unit_test(test_nothing),
      cmocka_unit_test(test_short),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
