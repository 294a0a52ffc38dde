/* Unit tests for the NTP over TCP transport (src/daemon/tcp_server) with a
 * stand-in request path, on 127.0.0.1: the paths an NTP server on loopback
 * cannot reach, chiefly a client that reads its answers slowly or never. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daemon/tcp_server.h"
#include "proto/ntp_tcp.h"

/* The stand-in request path: answers resp_len bytes whose first 4 are the
 * request's first 4 (so the order shows), or nothing when resp_len is 0. */
typedef struct fake {
  size_t resp_len;
  unsigned calls;
  ntp_ts last_rx;
} fake;

static size_t fake_answer(void *arg, const uint8_t *req, size_t len, ntp_ts rx,
                          const struct sockaddr *peer, uint8_t *out, size_t cap)
{
  fake *f = arg;
  (void)peer;
  f->calls++;
  f->last_rx = rx;
  if (f->resp_len == 0 || f->resp_len > cap)
    return 0;
  memset(out, 0xab, f->resp_len);
  memcpy(out, req, len < 4 ? len : 4);
  return f->resp_len;
}

typedef struct rig {
  struct event_base *base;
  clockctl *clk;
  tcp_server *srv;
  fake f;
  struct sockaddr_in sa;
} rig;

static unsigned free_port(void)
{
  struct sockaddr_in sa = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sa);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
  close(fd);
  return ntohs(sa.sin_port);
}

static void rig_up(rig *r, const tcp_server_cfg *over)
{
  memset(r, 0, sizeof(*r));
  r->base = event_base_new();
  assert_non_null(r->base);
  char err[256] = "";
  clockctl_cfg cc = {.kind = CLOCKCTL_NONE};
  r->clk = clockctl_open(&cc, err, sizeof(err));
  assert_non_null(r->clk);
  tcp_server_cfg cfg = *over;
  cfg.base = r->base;
  cfg.clk = r->clk;
  cfg.answer = fake_answer;
  cfg.answer_arg = &r->f;
  r->srv = tcp_server_create(&cfg, err, sizeof(err));
  if (!r->srv)
    fail_msg("tcp_server_create: %s", err);
  r->sa.sin_family = AF_INET;
  r->sa.sin_port = htons((uint16_t)free_port());
  r->sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (!tcp_server_listen(r->srv, (struct sockaddr *)&r->sa, sizeof(r->sa), err, sizeof(err)))
    fail_msg("tcp_server_listen: %s", err);
  assert_int_equal(tcp_server_socket_count(r->srv), 1);
}

static void rig_down(rig *r)
{
  tcp_server_destroy(r->srv);
  clockctl_close(r->clk);
  event_base_free(r->base);
}

static tcp_server_stats stats(const rig *r)
{
  tcp_server_stats st;
  tcp_server_get_stats(r->srv, &st);
  return st;
}

/* Runs the server's loop for about ms milliseconds. */
static void pump(rig *r, int ms)
{
  for (int i = 0; i < ms; i++) {
    event_base_loop(r->base, EVLOOP_NONBLOCK);
    usleep(1000);
  }
  event_base_loop(r->base, EVLOOP_NONBLOCK);
}

/* A client; rcvbuf > 0 shrinks its receive buffer (before the handshake,
 * so the window stays small). */
static int client(rig *r, int rcvbuf)
{
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  assert_true(fd >= 0);
  if (rcvbuf > 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  int rc = connect(fd, (struct sockaddr *)&r->sa, sizeof(r->sa));
  assert_true(rc == 0 || errno == EINPROGRESS);
  pump(r, 5);
  return fd;
}

/* The server's end of the client connection fd (the test process holds
 * both), given a small send buffer: SO_SNDBUF set by hand turns the
 * kernel's autotuning off, so a client that does not read fills it. */
static void shrink_server_sndbuf(int fd)
{
  struct sockaddr_in peer, want;
  socklen_t len = sizeof(want);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&want, &len), 0);
  for (int s = 3; s < 1024; s++) {
    len = sizeof(peer);
    if (s == fd || getpeername(s, (struct sockaddr *)&peer, &len) != 0 ||
        peer.sin_family != AF_INET || peer.sin_port != want.sin_port)
      continue;
    int v = 4096;
    assert_int_equal(setsockopt(s, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)), 0);
    return;
  }
  fail_msg("the server's end of the connection not found");
}

static void send_all(rig *r, int fd, const uint8_t *p, size_t n)
{
  size_t off = 0;
  for (int tries = 0; off < n && tries < 1000; tries++) {
    ssize_t k = send(fd, p + off, n - off, MSG_NOSIGNAL);
    if (k > 0)
      off += (size_t)k;
    else
      pump(r, 1);
  }
  assert_int_equal(off, n);
}

/* n requests of 48 bytes, the i-th starting with i (4 bytes, big-endian). */
static void send_requests(rig *r, int fd, unsigned first, unsigned n)
{
  static uint8_t buf[256 * 50];
  size_t len = 0;
  assert_true(n <= 256);
  for (unsigned i = 0; i < n; i++) {
    uint8_t req[48] = {0};
    uint32_t v = htonl(first + i);
    memcpy(req, &v, 4);
    len += ntp_tcp_frame(buf + len, sizeof(buf) - len, req, sizeof(req));
  }
  send_all(r, fd, buf, len);
}

/* Reads what the server sent, pumping it meanwhile, for about ms: appends
 * to buf; returns true once the server closed. */
static bool drain(rig *r, int fd, uint8_t *buf, size_t cap, size_t *len, int ms)
{
  for (int i = 0; i < ms; i++) {
    pump(r, 0);
    ssize_t k = recv(fd, buf + *len, cap - *len, MSG_DONTWAIT);
    if (k == 0 || (k < 0 && errno == ECONNRESET))
      return true;
    if (k > 0)
      *len += (size_t)k;
    else
      usleep(1000);
  }
  return false;
}

/* Checks buf holds n framed answers of resp_len bytes for requests
 * first..first+n-1, in order. */
static void check_answers(const uint8_t *buf, size_t len, unsigned first, unsigned n,
                          size_t resp_len)
{
  size_t off = 0;
  for (unsigned i = 0; i < n; i++) {
    const uint8_t *msg;
    size_t ml, used;
    assert_int_equal(ntp_tcp_next(buf + off, len - off, &msg, &ml, &used), NTP_TCP_MSG);
    assert_int_equal(ml, resp_len);
    uint32_t v;
    memcpy(&v, msg, 4);
    assert_int_equal(ntohl(v), first + i);
    off += used;
  }
  assert_int_equal(off, len);
}

/* Pipelined requests are answered in order, with a receive time from this
 * read; the request limit closes the connection after its answer. */
static void test_pipelined(void **state)
{
  (void)state;
  rig r;
  rig_up(&r, &(tcp_server_cfg){.max_requests = 4});
  r.f.resp_len = 48;
  int fd = client(&r, 0);
  struct timespec t0;
  clock_gettime(CLOCK_REALTIME, &t0);
  send_requests(&r, fd, 7, 3);
  static uint8_t buf[8192];
  size_t len = 0;
  assert_false(drain(&r, fd, buf, sizeof(buf), &len, 100));
  check_answers(buf, len, 7, 3, 48);
  double rx = (double)(r.f.last_rx >> 32) - 2208988800.0 +
              (double)(uint32_t)r.f.last_rx / 4294967296.0;
  double sent = (double)t0.tv_sec + t0.tv_nsec / 1e9;
  assert_true(rx >= sent - 0.001 && rx < sent + 1.0);
  send_requests(&r, fd, 10, 1); /* the 4th: answered, then closed */
  len = 0;
  assert_true(drain(&r, fd, buf, sizeof(buf), &len, 500));
  check_answers(buf, len, 10, 1, 48);
  close(fd);
  tcp_server_stats st = stats(&r);
  assert_int_equal(st.requests, 4);
  assert_int_equal(st.responses, 4);
  assert_int_equal(st.request_limit, 1);
  assert_int_equal(st.open, 0);
  rig_down(&r);
}

/* A client that does not read: the server stops writing when the socket is
 * full, reads no more requests meanwhile, and finishes once the client
 * reads; every answer arrives whole and in order. */
static void test_backpressure(void **state)
{
  (void)state;
  enum { N = 200 };
  rig r;
  rig_up(&r, &(tcp_server_cfg){.max_requests = N, .request_timeout = 2.0});
  r.f.resp_len = NTP_TCP_MSG_MAX;
  int fd = client(&r, 2048);
  shrink_server_sndbuf(fd);
  send_requests(&r, fd, 0, N);
  pump(&r, 200);
  tcp_server_stats mid = stats(&r);
  assert_true(mid.responses < N); /* ~200 KB cannot all be in flight */
  assert_true(mid.requests < N);  /* nothing read while an answer waits */
  assert_int_equal(mid.open, 1);
  static uint8_t buf[N * NTP_TCP_FRAME_MAX];
  size_t len = 0;
  assert_true(drain(&r, fd, buf, sizeof(buf), &len, 5000));
  check_answers(buf, len, 0, N, NTP_TCP_MSG_MAX);
  close(fd);
  tcp_server_stats st = stats(&r);
  assert_int_equal(st.requests, N);
  assert_int_equal(st.responses, N);
  assert_int_equal(st.request_limit, 1);
  assert_int_equal(st.request_timeouts, 0);
  rig_down(&r);
}

/* ... and one that never reads is closed at the request deadline. */
static void test_write_stall(void **state)
{
  (void)state;
  rig r;
  rig_up(&r, &(tcp_server_cfg){.max_requests = 200, .request_timeout = 1.0});
  r.f.resp_len = NTP_TCP_MSG_MAX;
  int fd = client(&r, 2048);
  shrink_server_sndbuf(fd);
  send_requests(&r, fd, 0, 200);
  pump(&r, 100);
  assert_int_equal(stats(&r).open, 1);
  pump(&r, 1500);
  tcp_server_stats st = stats(&r);
  assert_int_equal(st.open, 0);
  assert_int_equal(st.request_timeouts, 1);
  assert_true(st.responses < 200);
  close(fd);
  rig_down(&r);
}

/* Deadlines: idle from the accept, per request from its first byte (a byte
 * at a time does not extend it); a bad length closes at once; a dropped
 * request gets no frame and the connection goes on. */
static void test_deadlines_and_lengths(void **state)
{
  (void)state;
  rig r;
  rig_up(&r, &(tcp_server_cfg){.idle_timeout = 0.3, .request_timeout = 0.2});
  int idle = client(&r, 0);
  int slow = client(&r, 0);
  uint8_t frame[50] = {0, 48};
  for (int i = 0; i < 10; i++) { /* one byte every 40 ms: 0.4 s for the first 10 */
    (void)send(slow, frame + i, 1, MSG_NOSIGNAL); /* fails once closed */
    pump(&r, 40);
  }
  tcp_server_stats st = stats(&r);
  assert_int_equal(st.request_timeouts, 1);
  assert_int_equal(st.idle_timeouts, 1);
  assert_int_equal(st.open, 0);
  close(idle);
  close(slow);

  const uint8_t bad[][2] = {{0, 0}, {0x04, 0x01}, {0xff, 0xff}};
  for (size_t i = 0; i < 3; i++) {
    int fd = client(&r, 0);
    send_all(&r, fd, bad[i], 2);
    uint8_t buf[64];
    size_t len = 0;
    assert_true(drain(&r, fd, buf, sizeof(buf), &len, 100));
    assert_int_equal(len, 0);
    close(fd);
  }
  assert_int_equal(stats(&r).bad_length, 3);

  r.f.resp_len = 0; /* the request path drops it */
  int fd = client(&r, 0);
  send_requests(&r, fd, 1, 1);
  pump(&r, 20);
  r.f.resp_len = 48;
  send_requests(&r, fd, 2, 1);
  uint8_t buf[256];
  size_t len = 0;
  assert_false(drain(&r, fd, buf, sizeof(buf), &len, 50));
  check_answers(buf, len, 2, 1, 48);
  st = stats(&r);
  assert_int_equal(st.unanswered, 1);
  assert_int_equal(st.responses, 1);
  close(fd);
  rig_down(&r);
}

/* The slots: per-prefix cap, then the oldest closed for a newcomer. */
static void test_slots(void **state)
{
  (void)state;
  rig r;
  rig_up(&r, &(tcp_server_cfg){.max_connections = 3, .max_per_prefix = 2});
  int a = client(&r, 0), b = client(&r, 0);
  int c = client(&r, 0); /* third from 127.0.0.0/24 */
  uint8_t buf[64];
  size_t len = 0;
  assert_true(drain(&r, c, buf, sizeof(buf), &len, 100));
  assert_int_equal(stats(&r).refused_prefix, 1);
  /* another prefix (127.0.1.1): the third slot, then a fourth evicts a */
  int d[2];
  for (int i = 0; i < 2; i++) {
    d[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl(0x7f000101u + (uint32_t)(i << 8));
    assert_int_equal(bind(d[i], (struct sockaddr *)&src, sizeof(src)), 0);
    int rc = connect(d[i], (struct sockaddr *)&r.sa, sizeof(r.sa));
    assert_true(rc == 0 || errno == EINPROGRESS);
    pump(&r, 5);
  }
  len = 0;
  assert_true(drain(&r, a, buf, sizeof(buf), &len, 100));
  tcp_server_stats st = stats(&r);
  assert_int_equal(st.evicted, 1);
  assert_int_equal(st.open, 3);
  assert_int_equal(st.accepted, 4);
  close(a);
  close(b);
  close(c);
  close(d[0]);
  close(d[1]);
  pump(&r, 20);
  assert_int_equal(stats(&r).open, 0);
  rig_down(&r);
}

/* libevent's own allocations, counted: event_set_mem_functions is set in
 * main before any libevent call. */
static size_t ev_allocs;
static void *count_malloc(size_t n)
{
  ev_allocs++;
  return malloc(n);
}
static void *count_realloc(void *p, size_t n)
{
  ev_allocs++;
  return realloc(p, n);
}
static void count_free(void *p) { free(p); }

/* A connection per request, as ntsd's client opens them: once a slot has
 * held a connection, the next one in it allocates nothing (no events, no
 * buffers), so the server's hot path stays allocation-free over TCP too. */
static void test_no_alloc_per_connection(void **state)
{
  (void)state;
  rig r;
  rig_up(&r, &(tcp_server_cfg){0});
  r.f.resp_len = 48;
  size_t before = 0;
  for (unsigned i = 0; i < 21; i++) {
    if (i == 1)
      before = ev_allocs; /* the first connection sets the slot up */
    int fd = client(&r, 0);
    send_requests(&r, fd, i, 1);
    uint8_t buf[128];
    size_t len = 0;
    for (int tries = 0; len < 50 && tries < 20; tries++)
      drain(&r, fd, buf, sizeof(buf), &len, 10);
    check_answers(buf, len, i, 1, 48);
    close(fd);
    pump(&r, 5);
    assert_int_equal(stats(&r).open, 0);
  }
  assert_int_equal(ev_allocs - before, 0);
  tcp_server_stats st = stats(&r);
  assert_int_equal(st.accepted, 21);
  assert_int_equal(st.responses, 21);
  rig_down(&r);
}

/* libevent's warnings, counted (and kept off the test's output). */
static unsigned ev_warnings;
static void count_log(int severity, const char *msg)
{
  (void)msg;
  ev_warnings += severity >= EVENT_LOG_WARN;
}

/* Out of descriptors: accept() fails while the connection waits in the
 * backlog, so the listener stays readable.  The server must rest rather
 * than spin (each turn of the loop, with a 20 ms cap, must wait), and
 * take the connection once descriptors are back. */
static void test_out_of_descriptors(void **state)
{
  (void)state;
  rig r;
  rig_up(&r, &(tcp_server_cfg){0});
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  assert_true(fd >= 0);
  int rc = connect(fd, (struct sockaddr *)&r.sa, sizeof(r.sa));
  assert_true(rc == 0 || errno == EINPROGRESS);
  struct rlimit old, low;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
  int next = dup(0); /* the lowest free descriptor: none from it on */
  assert_true(next >= 0);
  close(next);
  low = old;
  low.rlim_cur = (rlim_t)next;
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
  event_set_log_callback(count_log);
  unsigned turns = 0;
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  do {
    struct timeval cap = {.tv_usec = 20000};
    event_base_loopexit(r.base, &cap);
    event_base_loop(r.base, EVLOOP_ONCE);
    turns++;
    clock_gettime(CLOCK_MONOTONIC, &t);
  } while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < 300 &&
           turns < 100000);
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
  event_set_log_callback(NULL);
  assert_int_equal(stats(&r).accepted, 0);
  assert_true(turns <= 30);       /* ~15 turns of 20 ms; a spinning loop makes thousands */
  assert_true(ev_warnings <= 1); /* no warning per turn either */
  pump(&r, 1200);
  assert_int_equal(stats(&r).accepted, 1);
  close(fd);
  rig_down(&r);
}

int main(void)
{
  event_set_mem_functions(count_malloc, count_realloc, count_free);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pipelined),
      cmocka_unit_test(test_backpressure),
      cmocka_unit_test(test_write_stall),
      cmocka_unit_test(test_deadlines_and_lengths),
      cmocka_unit_test(test_slots),
      cmocka_unit_test(test_no_alloc_per_connection),
      cmocka_unit_test(test_out_of_descriptors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
