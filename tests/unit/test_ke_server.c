/* Unit tests for the NTS-KE server and client adapters' failure paths.
 *
 * libevent's allocator is replaced (event_set_mem_functions) by one that can
 * be told to fail its next allocation, so bufferevent_openssl_socket_new
 * fails the way it does when memory runs out.  libevent >= 2.1.9 then frees
 * the SSL itself (BEV_OPT_CLOSE_ON_FREE) and leaves the socket open: the
 * caller must close the socket and must not free the SSL again.  Under the
 * sanitizers (the _san build) a second SSL_free or a leak fails the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daemon/ke_client.h"
#include "daemon/ke_server.h"

static _Atomic int fail_next;  /* fail libevent's next allocation */
static _Atomic int failed;     /* allocations failed so far */

static void *t_malloc(size_t n)
{
  if (atomic_exchange(&fail_next, 0)) {
    atomic_fetch_add(&failed, 1);
    return NULL;
  }
  return malloc(n);
}

static void *t_realloc(void *p, size_t n) { return realloc(p, n); }
static void t_free(void *p) { free(p); }

static void on_ke_done(void *arg, ke_result *r)
{
  (void)arg;
  (void)r;
  fail_msg("the callback of a client that never started was called");
}

/* ke_client_start: the bufferevent cannot be made; NULL, nothing freed twice. */
static void test_client_bufferevent_failure(void **state)
{
  (void)state;
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  struct event_base *base = event_base_new();
  assert_non_null(ctx);
  assert_non_null(base);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(9)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const uint16_t aeads[] = {NTS_KE_AEAD_AES_SIV_CMAC_256};
  int before = atomic_load(&failed);
  atomic_store(&fail_next, 1);
  ke_client *k = ke_client_start(base, ctx, (struct sockaddr *)&sa, sizeof(sa), "localhost",
                                 NULL, aeads, 1, 1.0, on_ke_done, NULL);
  atomic_store(&fail_next, 0);
  assert_null(k);
  assert_int_equal(atomic_load(&failed), before + 1);
  event_base_loop(base, EVLOOP_NONBLOCK);
  event_base_free(base);
  SSL_CTX_free(ctx);
}

/* A TCP port on 127.0.0.1 that was free a moment ago. */
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

static int connect_to(const char *addr_port)
{
  const char *colon = strrchr(addr_port, ':');
  assert_non_null(colon);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  return fd;
}

static double mono_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Seconds until the server closed fd, by the clock (counting poll rounds
 * undercounts on a loaded machine), or -1 after limit. */
static double wait_closed(int fd, double limit)
{
  double start = mono_now();
  while (mono_now() - start < limit) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 10) == 1) {
      char b[16];
      ssize_t n = recv(fd, b, sizeof(b), 0);
      if (n == 0 || (n < 0 && errno == ECONNRESET))
        return mono_now() - start;
      if (n > 0)
        fail_msg("the server sent %zd bytes to a connection that sent nothing", n);
    }
  }
  return -1;
}

/* The counters once refused and serves_bad have reached the values wanted
 * (the server may count a connection just after closing it), or after 1 s. */
static ke_server_stats wait_stats(ke_server *s, uint64_t refused, uint64_t bad)
{
  ke_server_stats st;
  for (int i = 0; i < 100; i++) {
    ke_server_get_stats(s, &st);
    if (st.refused == refused && st.serves_bad == bad)
      break;
    usleep(10000);
  }
  return st;
}

static atomic_int outcomes; /* on_outcome calls (the server's thread) */

static void on_outcome(void *arg)
{
  (void)arg;
  atomic_fetch_add(&outcomes, 1);
}

/* on_accept: the bufferevent cannot be made; the socket is closed at once,
 * the connection counted as refused, and the server goes on serving.  Each
 * outcome is reported through on_outcome (the NTS-KE process sends its
 * counters then). */
static void test_server_bufferevent_failure(void **state)
{
  (void)state;
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  assert_non_null(ctx);
  char listen[32];
  snprintf(listen, sizeof(listen), "127.0.0.1:%u", free_port());
  ke_server_cfg cfg = {.listen = listen, .ctx = ctx, .ntp_port = 123, .timeout = 0.5,
                       .on_outcome = on_outcome};
  char err[256] = "";
  ke_server *s = ke_server_start(&cfg, err, sizeof(err));
  if (!s)
    fail_msg("ke_server_start: %s", err);
  assert_true(ke_server_run(s));
  const char *addr = ke_server_address(s);
  assert_string_equal(addr, listen);

  int before = atomic_load(&failed);
  atomic_store(&fail_next, 1);
  int fd = connect_to(addr);
  double t = wait_closed(fd, 2.0);
  atomic_store(&fail_next, 0);
  close(fd);
  assert_int_equal(atomic_load(&failed), before + 1);
  assert_true(t >= 0 && t < 0.4); /* at once, not at the deadline */
  ke_server_stats st = wait_stats(s, 1, 0);
  assert_int_equal(st.refused, 1);
  assert_int_equal(st.serves_bad, 0);

  /* The next connection is served as usual: held until its deadline. */
  fd = connect_to(addr);
  t = wait_closed(fd, 3.0);
  close(fd);
  assert_true(t >= 0.4);
  st = wait_stats(s, 1, 1);
  assert_int_equal(st.refused, 1);
  assert_int_equal(st.serves_bad, 1);
  assert_int_equal(atomic_load(&outcomes), 2);
  ke_server_stop(s);
  SSL_CTX_free(ctx);
}

static size_t count_lines(const char *path, const char *needle)
{
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char line[1024];
  size_t n = 0;
  while (fgets(line, sizeof(line), f))
    n += strstr(line, needle) != NULL;
  fclose(f);
  return n;
}

/* The summary line comes from the KE thread's own loop, once per interval
 * with traffic, and not in an interval without. */
static void test_periodic_summary(void **state)
{
  (void)state;
  char path[] = "/tmp/ntsd-test-ke-server-XXXXXX";
  int logfd = mkstemp(path);
  assert_true(logfd >= 0);
  fflush(stderr);
  int saved = dup(2);
  assert_true(saved >= 0);
  assert_int_equal(dup2(logfd, 2), 2);

  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  char listen[32];
  snprintf(listen, sizeof(listen), "127.0.0.1:%u", free_port());
  ke_server_cfg cfg = {.listen = listen, .ctx = ctx, .ntp_port = 123, .timeout = 0.5,
                       .hello_timeout = 0.1, .summary_interval = 0.4};
  char err[256] = "";
  ke_server *s = ke_server_start(&cfg, err, sizeof(err));
  bool ran = s && ke_server_run(s);
  int fd = ran ? connect_to(listen) : -1;
  double t = fd >= 0 ? wait_closed(fd, 1.0) : -1;
  if (fd >= 0)
    close(fd);
  usleep(1200 * 1000); /* the summary at 0.4 s, then two quiet intervals */
  fflush(stderr);
  size_t periodic = count_lines(path, "NTSs: NTS-KE in the last");
  size_t hello = count_lines(path, "1 failed (1 hello_timeout)");
  ke_server_stop(s);
  fflush(stderr);
  size_t after_stop = count_lines(path, "NTSs: NTS-KE in the last");
  dup2(saved, 2);
  close(saved);
  close(logfd);
  unlink(path);
  SSL_CTX_free(ctx);

  if (!ran)
    fail_msg("ke_server_start: %s", err);
  assert_true(t >= 0.05 && t < 0.4); /* the ClientHello deadline */
  assert_int_equal(periodic, 1);
  assert_int_equal(hello, 1);
  assert_int_equal(after_stop, 1); /* nothing new to summarise at the stop */
}

static atomic_int served_out; /* ke_server_serve returned */

static void *serve_thread(void *arg)
{
  ke_server_serve(arg);
  atomic_store(&served_out, 1);
  return NULL;
}

static void do_drain(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  ke_server_drain(arg);
}

/* ke_server_drain: no new connection is accepted (it stays in the backlog,
 * for another process sharing the socket), an open one runs to its end
 * (here its ClientHello deadline), and then the loop ends. */
static void test_drain(void **state)
{
  (void)state;
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  char listen[32];
  snprintf(listen, sizeof(listen), "127.0.0.1:%u", free_port());
  ke_server_cfg cfg = {.listen = listen, .ctx = ctx, .ntp_port = 123, .timeout = 0.5,
                       .hello_timeout = 0.3};
  char err[256] = "";
  ke_server *s = ke_server_start(&cfg, err, sizeof(err));
  if (!s)
    fail_msg("ke_server_start: %s", err);
  pthread_t th;
  atomic_store(&served_out, 0);
  assert_int_equal(pthread_create(&th, NULL, serve_thread, s), 0);
  int open_fd = connect_to(listen);
  usleep(100 * 1000); /* accepted */
  struct timeval now = {0, 0};
  assert_int_equal(event_base_once(ke_server_base(s), -1, EV_TIMEOUT, do_drain, s, &now), 0);
  usleep(50 * 1000);
  assert_int_equal(atomic_load(&served_out), 0); /* a connection is still open */
  int later_fd = connect_to(listen); /* the kernel completes it: the backlog */
  double t = wait_closed(open_fd, 2.0);
  assert_true(t >= 0.05 && t < 0.5); /* its ClientHello deadline, not before */
  for (int i = 0; i < 100 && !atomic_load(&served_out); i++)
    usleep(10 * 1000);
  assert_int_equal(atomic_load(&served_out), 1);
  pthread_join(th, NULL);
  assert_true(wait_closed(later_fd, 0.2) < 0); /* never accepted by this server */
  ke_server_stats st;
  ke_server_get_stats(s, &st);
  assert_int_equal(st.serves_bad, 1);
  assert_int_equal(st.refused, 0);
  close(open_fd);
  close(later_fd);
  ke_server_stop(s);
  SSL_CTX_free(ctx);
}

int main(void)
{
  /* Before any other libevent call; threads as in ntsd (the KE server
   * runs its own loop). */
  event_set_mem_functions(t_malloc, t_realloc, t_free);
  evthread_use_pthreads();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_client_bufferevent_failure),
      cmocka_unit_test(test_server_bufferevent_failure),
      cmocka_unit_test(test_periodic_summary),
      cmocka_unit_test(test_drain),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
