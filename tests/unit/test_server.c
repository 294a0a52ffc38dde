/* Unit tests for the NTP server's packet threads (src/daemon/server with
 * `threads N`), on 127.0.0.1: clients spread over the threads' sockets,
 * every request counted once, and the main thread's changes (served system
 * info, cookie key rotation, `restrict` swaps) made while the threads
 * serve.  Built with -fsanitize=thread it checks those for data races
 * (docs/testing.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daemon/server.h"

#define CLIENTS 64
#define ROUNDS 20

typedef struct rig {
  struct event_base *base;
  clockctl *clk;
  keystore *keys;
  ntp_acl *acl;
  ntsd_server *srv;
  conf_listen listen;
} rig;

static unsigned free_port(void)
{
  struct sockaddr_in sa = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sa);
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
  close(fd);
  return ntohs(sa.sin_port);
}

static void rig_up(rig *r, int threads)
{
  memset(r, 0, sizeof(*r));
  r->base = event_base_new();
  char err[256] = "";
  clockctl_cfg cc = {.kind = CLOCKCTL_NONE};
  r->clk = clockctl_open(&cc, err, sizeof(err));
  r->keys = keystore_open(NULL, 60, (uint64_t)time(NULL), err, sizeof(err));
  r->acl = ntp_acl_create();
  assert_non_null(r->base);
  assert_non_null(r->clk);
  assert_non_null(r->keys);
  assert_non_null(r->acl);
  snprintf(r->listen.addr, sizeof(r->listen.addr), "127.0.0.1");
  r->listen.port = (uint16_t)free_port();
  server_cfg cfg = {.base = r->base, .acl = r->acl, .keys = r->keys, .clk = r->clk,
                    .listens = &r->listen, .n_listens = 1, .discard_average = 3,
                    .discard_minimum = 2, .precision_log2 = -20, .threads = threads};
  r->srv = server_create(&cfg, err, sizeof(err));
  if (!r->srv)
    fail_msg("server_create: %s", err);
  keystore_set_grace(r->keys, server_quiesce, r->srv);
  assert_true(server_start(r->srv, 0, err, sizeof(err)));
}

static void rig_down(rig *r)
{
  server_destroy(r->srv);
  keystore_close(r->keys);
  ntp_acl_destroy(r->acl);
  clockctl_close(r->clk);
  event_base_free(r->base);
}

/* One plain request from fd; the stratum of the answer, -1 for none. */
static int ask(int fd, unsigned port)
{
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  uint8_t req[48] = {0x23}, resp[128];
  if (sendto(fd, req, sizeof(req), 0, (struct sockaddr *)&to, sizeof(to)) != sizeof(req))
    return -1;
  struct pollfd p = {.fd = fd, .events = POLLIN};
  if (poll(&p, 1, 2000) != 1)
    return -1;
  ssize_t n = recv(fd, resp, sizeof(resp), 0);
  return n >= 48 ? resp[1] : -1;
}

static int client_socket(void)
{
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  return fd;
}

/* Clients on their own source ports, a request each per round, while the
 * main thread changes what the packet threads read. */
typedef struct load {
  unsigned port;
  atomic_int answered, lost;
} load;

static void *run_load(void *arg)
{
  load *l = arg;
  int fds[CLIENTS];
  for (int i = 0; i < CLIENTS; i++)
    fds[i] = client_socket();
  for (int round = 0; round < ROUNDS; round++)
    for (int i = 0; i < CLIENTS; i++)
      atomic_fetch_add(ask(fds[i], l->port) >= 0 ? &l->answered : &l->lost, 1);
  for (int i = 0; i < CLIENTS; i++)
    close(fds[i]);
  return NULL;
}

static void test_threads_spread_and_count(void **state)
{
  (void)state;
  rig r;
  rig_up(&r, 2);
  assert_int_equal(server_thread_count(r.srv), 2);
  assert_int_equal(server_socket_count(r.srv), 1);
  load l = {.port = r.listen.port};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, run_load, &l), 0);
  /* the main thread's side, as the daemon's loop does it, while they serve */
  uint64_t now = (uint64_t)time(NULL);
  for (int i = 1; i <= 50; i++) {
    ntp_sysinfo sys = {.leap = 0, .stratum = (uint8_t)(1 + i % 3), .precision = -20};
    server_set_sysinfo(r.srv, &sys);
    assert_true(keystore_rotate_if_due(r.keys, now + 61 * (uint64_t)i)); /* frees one */
    server_pause(r.srv);
    ntp_acl *fresh = ntp_acl_create();
    ntp_acl_swap(r.acl, fresh);
    server_resume(r.srv);
    ntp_acl_destroy(fresh);
    ntsd_server_stats st;
    server_get_stats(r.srv, &st);
    usleep(2000);
  }
  pthread_join(t, NULL);
  assert_int_equal(atomic_load(&l.lost), 0);
  ntsd_server_stats all, t0, t1, main_loop;
  server_get_stats(r.srv, &all);
  server_get_thread_stats(r.srv, 0, &t0);
  server_get_thread_stats(r.srv, 1, &t1);
  server_get_thread_stats(r.srv, 2, &main_loop);
  assert_int_equal(all.received, CLIENTS * ROUNDS);
  assert_int_equal(all.serve.result[NTP_SERVE_RESPOND], CLIENTS * ROUNDS);
  assert_int_equal(t0.received + t1.received, CLIENTS * ROUNDS);
  assert_int_equal(main_loop.received, 0);
  /* 64 source ports on 2 sockets: each gets some (all on one: 2^-63) */
  assert_true(t0.received > 0 && t1.received > 0);
  /* the last system info is served */
  ntp_sysinfo sys = {.leap = 0, .stratum = 7, .precision = -20};
  server_set_sysinfo(r.srv, &sys);
  int fd = client_socket();
  assert_int_equal(ask(fd, r.listen.port), 7);
  close(fd);
  rig_down(&r);
}

/* A second server cannot join the port through SO_REUSEPORT. */
static void test_threads_port_taken(void **state)
{
  (void)state;
  rig r;
  rig_up(&r, 2);
  char err[256] = "";
  server_cfg cfg = {.base = r.base, .acl = r.acl, .clk = r.clk, .listens = &r.listen,
                    .n_listens = 1, .threads = 2};
  ntsd_server *second = server_create(&cfg, err, sizeof(err));
  assert_null(second);
  assert_non_null(strstr(err, "cannot listen on 127.0.0.1:"));
  cfg.threads = 1;
  assert_null(server_create(&cfg, err, sizeof(err)));
  rig_down(&r);
}

/* One thread: the sockets are the main loop's, as before `threads`. */
static void test_one_thread_on_main_loop(void **state)
{
  (void)state;
  rig r;
  rig_up(&r, 1);
  assert_int_equal(server_thread_count(r.srv), 1);
  int fd = client_socket();
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(r.listen.port)};
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  uint8_t req[48] = {0x23}, resp[128];
  assert_int_equal(sendto(fd, req, sizeof(req), 0, (struct sockaddr *)&to, sizeof(to)), 48);
  struct pollfd p = {.fd = fd, .events = POLLIN};
  for (int i = 0; i < 200 && poll(&p, 1, 10) == 0; i++)
    event_base_loop(r.base, EVLOOP_NONBLOCK); /* nothing is served without the loop */
  assert_true(recv(fd, resp, sizeof(resp), MSG_DONTWAIT) >= 48);
  ntsd_server_stats st;
  server_get_thread_stats(r.srv, 0, &st);
  assert_int_equal(st.received, 1);
  close(fd);
  rig_down(&r);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_threads_spread_and_count),
      cmocka_unit_test(test_threads_port_taken),
      cmocka_unit_test(test_one_thread_on_main_loop),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
