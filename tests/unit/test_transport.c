/* Unit tests for daemon/transport.c: the UDP transport over loopback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <netinet/in.h>

#include "daemon/clockctl.h"
#include "daemon/sysclock.h"
#include "daemon/transport.h"

typedef struct seen {
  int ready, errors, sent, responses;
  char why[200];
  bool closed;
  ntp_ts t1, rx;
  uint8_t pkt[64];
  size_t len;
  transport *close_on_response;
} seen;

static void on_sent(void *arg, ntp_ts t1)
{
  seen *s = arg;
  s->sent++;
  s->t1 = t1;
}

static void on_ready(void *arg) { ((seen *)arg)->ready++; }

static void on_error(void *arg, const transport_error *e)
{
  seen *s = arg;
  s->errors++;
  s->closed = e->closed;
  snprintf(s->why, sizeof(s->why), "%s", e->why);
}

static void on_response(void *arg, const uint8_t *pkt, size_t len, ntp_ts rx)
{
  seen *s = arg;
  s->responses++;
  s->rx = rx;
  s->len = len < sizeof(s->pkt) ? len : sizeof(s->pkt);
  memcpy(s->pkt, pkt, s->len);
  if (s->close_on_response)
    transport_close(s->close_on_response);
}

/* A UDP socket on 127.0.0.1 and an ephemeral port, its address in *sa. */
static int server_socket(struct sockaddr_in *sa)
{
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_true(fd >= 0);
  *sa = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(*sa);
  assert_int_equal(bind(fd, (struct sockaddr *)sa, len), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)sa, &len), 0);
  struct timeval tv = {.tv_sec = 2};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

/* Receives the request; returns the client's address. */
static struct sockaddr_in take_request(int fd, const char *want)
{
  char buf[64];
  struct sockaddr_in from;
  socklen_t fl = sizeof(from);
  ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
  assert_int_equal(n, (ssize_t)strlen(want));
  assert_memory_equal(buf, want, (size_t)n);
  return from;
}

static void run_loop(struct event_base *base)
{
  struct timeval tv = {.tv_usec = 200000};
  event_base_loopexit(base, &tv);
  event_base_dispatch(base);
}

static void test_udp_exchange(void **state)
{
  (void)state;
  struct event_base *base = event_base_new();
  char err[200];
  clockctl_cfg cc = {.kind = CLOCKCTL_VIRTUAL, .virtual_offset = 1000};
  clockctl *clk = clockctl_open(&cc, err, sizeof(err));
  seen s = {0};
  transport_cfg tc = {.base = base, .clk = clk,
                      .cbs = {.on_ready = on_ready, .on_sent = on_sent,
                              .on_response = on_response, .on_error = on_error, .arg = &s}};
  transport *t = transport_create(&tc);
  assert_non_null(t);
  s.close_on_response = t;
  struct sockaddr_in srv;
  int sfd = server_socket(&srv);
  struct sockaddr_in other;
  int ofd = server_socket(&other);

  assert_false(transport_is_open(t));
  transport_dest d = {.sa = (struct sockaddr *)&srv, .len = sizeof(srv), .timeout = 1};
  assert_true(transport_open(t, &transport_udp, &d, err, sizeof(err)));
  assert_true(transport_ready(t)); /* UDP is up at once */
  assert_true(transport_send(t, (const uint8_t *)"ping", 4, err, sizeof(err)));
  struct sockaddr_in from = take_request(sfd, "ping");
  /* Only the server can answer: a datagram from elsewhere never arrives. */
  sendto(ofd, "forged", 6, 0, (struct sockaddr *)&from, sizeof(from));
  sendto(sfd, "pong", 4, 0, (struct sockaddr *)&from, sizeof(from));
  sendto(sfd, "late", 4, 0, (struct sockaddr *)&from, sizeof(from));
  run_loop(base);
  assert_int_equal(s.responses, 1); /* the callback closed it: "late" is not handed back */
  assert_memory_equal(s.pkt, "pong", 4);
  assert_false(transport_is_open(t));
  /* The stamps are on the transport's clock: the virtual one, 1000 s ahead. */
  struct timespec now = sysclock_system();
  ntp_ts sys = ntp_ts_from_timespec(&now);
  assert_true(ntp_ts_diff(s.rx, sys) > 999 && ntp_ts_diff(s.rx, sys) < 1001);
  print_message("kernel transmit stamps: %d\n", s.sent);
  if (s.sent) /* a kernel without software transmit stamps sends none */
    assert_true(ntp_ts_diff(s.rx, s.t1) >= 0 && ntp_ts_diff(s.rx, s.t1) < 1);

  /* The next exchange leaves from a new port. */
  s.close_on_response = NULL;
  assert_true(transport_open(t, &transport_udp, &d, err, sizeof(err)));
  assert_true(transport_send(t, (const uint8_t *)"again", 5, err, sizeof(err)));
  struct sockaddr_in from2 = take_request(sfd, "again");
  assert_int_not_equal(from.sin_port, from2.sin_port);
  transport_close(t);

  transport_destroy(t);
  clockctl_close(clk);
  close(sfd);
  close(ofd);
  event_base_free(base);
}

/* A listening TCP socket on 127.0.0.1 and an ephemeral port. */
static int tcp_listener(struct sockaddr_in *sa)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  *sa = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(*sa);
  assert_int_equal(bind(fd, (struct sockaddr *)sa, len), 0);
  assert_int_equal(listen(fd, 4), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)sa, &len), 0);
  return fd;
}

static void run_until(struct event_base *base, const int *counter, int want)
{
  for (int i = 0; i < 40 && *counter < want; i++) {
    struct timeval tv = {.tv_usec = 25000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
  }
}

static void test_tcp_exchange(void **state)
{
  (void)state;
  struct event_base *base = event_base_new();
  char err[200];
  clockctl_cfg cc = {.kind = CLOCKCTL_NONE};
  clockctl *clk = clockctl_open(&cc, err, sizeof(err));
  seen s = {0};
  transport_cfg tc = {.base = base, .clk = clk,
                      .cbs = {.on_ready = on_ready, .on_sent = on_sent,
                              .on_response = on_response, .on_error = on_error, .arg = &s}};
  transport *t = transport_create(&tc);
  struct sockaddr_in srv;
  int lfd = tcp_listener(&srv);
  transport_dest d = {.sa = (struct sockaddr *)&srv, .len = sizeof(srv), .timeout = 1};
  assert_true(transport_open(t, &transport_tcp, &d, err, sizeof(err)));
  if (!transport_ready(t))
    run_until(base, &s.ready, 1);
  assert_true(transport_ready(t));
  int cfd = accept(lfd, NULL, NULL);
  assert_true(cfd >= 0);
  assert_true(transport_send(t, (const uint8_t *)"ping", 4, err, sizeof(err)));
  struct timeval tv = {.tv_sec = 2};
  setsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  uint8_t req[16];
  assert_int_equal(recv(cfd, req, 6, MSG_WAITALL), 6); /* framed: 2 + 4 bytes */
  assert_memory_equal(req, "\x00\x04ping", 6);
  /* Two responses in one segment, the second split: both handed back. */
  assert_int_equal(send(cfd, "\x00\x04pong\x00\x05", 8, 0), 8);
  run_until(base, &s.responses, 1);
  assert_int_equal(s.responses, 1);
  assert_memory_equal(s.pkt, "pong", 4);
  assert_int_equal(send(cfd, "late!", 5, 0), 5);
  run_until(base, &s.responses, 2);
  assert_int_equal(s.responses, 2);
  assert_memory_equal(s.pkt, "late!", 5);
  print_message("TCP: kernel transmit stamps: %d\n", s.sent);
  struct timespec now = sysclock_system();
  ntp_ts sys = ntp_ts_from_timespec(&now);
  assert_true(ntp_ts_diff(sys, s.rx) >= 0 && ntp_ts_diff(sys, s.rx) < 1);
  /* A frame length of 0 is not this protocol: the path closes, said why. */
  assert_int_equal(send(cfd, "\x00\x00", 2, 0), 2);
  run_until(base, &s.errors, 1);
  assert_int_equal(s.errors, 1);
  assert_true(s.closed);
  assert_non_null(strstr(s.why, "frame length"));
  assert_false(transport_is_open(t));
  close(cfd);
  close(lfd);

  /* Nobody listening: the connect fails and says so. */
  assert_true(transport_open(t, &transport_tcp, &d, err, sizeof(err)) || strstr(err, "refused"));
  run_until(base, &s.errors, 2);
  assert_int_equal(s.errors, 2);
  assert_non_null(strstr(s.why, "refused"));
  assert_false(transport_is_open(t));
  transport_destroy(t);
  clockctl_close(clk);
  event_base_free(base);
}

/* Reads exactly n bytes from a blocking socket (with a receive timeout). */
static void read_exact(int fd, uint8_t *buf, size_t n)
{
  assert_int_equal(recv(fd, buf, n, MSG_WAITALL), (ssize_t)n);
}

/* A scripted proxy: accepts the greeting (no authentication) and a UDP
 * ASSOCIATE, answers with BND 0.0.0.0 and the relay's port (so the proxy's
 * own address, RFC 1928 7); returns the control connection. */
static int fake_associate(struct event_base *base, int lfd, uint16_t relay_port)
{
  struct timeval tv = {.tv_usec = 50000};
  event_base_loopexit(base, &tv);
  event_base_dispatch(base); /* the connect and the greeting go out */
  int cfd = accept(lfd, NULL, NULL);
  assert_true(cfd >= 0);
  struct timeval to = {.tv_sec = 2};
  setsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &to, sizeof(to));
  uint8_t g[4];
  read_exact(cfd, g, 2);
  read_exact(cfd, g + 2, g[1]);
  assert_int_equal(send(cfd, "\x05\x00", 2, 0), 2);
  run_loop(base);
  uint8_t req[10];
  read_exact(cfd, req, sizeof(req)); /* VER CMD RSV, 0.0.0.0:0 */
  assert_int_equal(req[1], 3);
  uint8_t rep[10] = {5, 0, 0, 1, 0, 0, 0, 0, (uint8_t)(relay_port >> 8), (uint8_t)relay_port};
  assert_int_equal(send(cfd, rep, sizeof(rep), 0), (ssize_t)sizeof(rep));
  return cfd;
}

static void test_socks_udp(void **state)
{
  (void)state;
  struct event_base *base = event_base_new();
  char err[200];
  clockctl_cfg cc = {.kind = CLOCKCTL_NONE};
  clockctl *clk = clockctl_open(&cc, err, sizeof(err));
  seen s = {0};
  transport_cfg tc = {.base = base, .clk = clk,
                      .cbs = {.on_ready = on_ready, .on_sent = on_sent,
                              .on_response = on_response, .on_error = on_error, .arg = &s}};
  transport *t = transport_create(&tc);
  struct sockaddr_in psa, rsa;
  int lfd = tcp_listener(&psa);
  int rfd = server_socket(&rsa); /* the relay, on the proxy's address */
  transport_proxy px = {.len = sizeof(psa)};
  memcpy(&px.sa, &psa, sizeof(psa));
  socks5_addr name;
  assert_int_equal(socks5_addr_name(&name, "ntp.example.test", 16, 123), SOCKS5_OK);
  transport_dest d = {.name = &name, .proxy = &px, .timeout = 2};
  assert_true(transport_open(t, &transport_socks_udp, &d, err, sizeof(err)));
  assert_false(transport_ready(t));
  int cfd = fake_associate(base, lfd, ntohs(rsa.sin_port));
  run_until(base, &s.ready, 1);
  assert_true(transport_ready(t));
  assert_true(transport_send(t, (const uint8_t *)"ping", 4, err, sizeof(err)));
  /* The relay gets the name (ATYP 3) and the request. */
  uint8_t buf[64];
  struct sockaddr_in from;
  socklen_t fl = sizeof(from);
  ssize_t n = recvfrom(rfd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
  assert_int_equal(n, 3 + 2 + 16 + 2 + 4);
  assert_memory_equal(buf, "\x00\x00\x00\x03\x10" "ntp.example.test\x00\x7b" "ping", (size_t)n);
  /* A fragment is dropped and counted; the real answer comes through. */
  struct sockaddr *to = (struct sockaddr *)&from;
  sendto(rfd, "\x00\x00\x01\x01\x7f\x00\x00\x01\x00\x7b" "bad", 13, 0, to, fl);
  sendto(rfd, "\x00\x00\x00\x01\x7f\x00\x00\x01\x00\x7b" "pong", 14, 0, to, fl);
  run_until(base, &s.responses, 1);
  assert_int_equal(s.errors, 1);
  assert_false(s.closed);
  assert_non_null(strstr(s.why, "malformed"));
  assert_int_equal(s.responses, 1);
  assert_memory_equal(s.pkt, "pong", 4);
  /* The proxy closes the control connection: the association is over. */
  close(cfd);
  run_until(base, &s.errors, 2);
  assert_true(s.closed);
  assert_non_null(strstr(s.why, "ended the UDP association"));
  assert_false(transport_is_open(t));
  transport_destroy(t);
  clockctl_close(clk);
  close(lfd);
  close(rfd);
  event_base_free(base);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_udp_exchange),
      cmocka_unit_test(test_tcp_exchange),
      cmocka_unit_test(test_socks_udp),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
