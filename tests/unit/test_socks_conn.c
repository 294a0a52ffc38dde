/* Unit tests for src/daemon/socks_conn: the SOCKS5 handshake on a real
 * event loop against a scripted proxy on loopback.
 *
 * The proxy is a forked child that follows a script of steps (read so many
 * bytes, write these, write them one byte at a time, sleep, close) and
 * sends what it read back through a pipe, so the test checks both sides:
 * the bytes socks_conn sent and what it made of the replies.  Real proxies
 * (microsocks, dante) and a hostile one are exercised by the integration
 * tests test_ke_proxy.py and test_socks_hostile.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/conf.h"
#include "daemon/ke_client.h"
#include "daemon/socks_conn.h"
#include "daemon/tls.h"

typedef struct step {
  char op; /* 'r' read len bytes, 'w' write, 'd' drip (one byte per ms), 's' sleep ms, 'c' close */
  const uint8_t *data;
  size_t len;
  int ms;
} step;

#define R(n) {'r', NULL, (n), 0}
#define W(...) {'w', (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__}), 0}
#define DRIP(ms, ...)                                                                       \
  {'d', (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__}), (ms)}
#define SLEEP(ms) {'s', NULL, 0, (ms)}
#define CLOSE {'c', NULL, 0, 0}
#define END {0, NULL, 0, 0}

typedef struct proxy {
  pid_t pid;
  int pipe_rd; /* what the proxy read, in order */
  struct sockaddr_in addr;
} proxy;

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void run_script(int fd, int out, const step *s)
{
  for (; s->op; s++) {
    if (s->op == 'r') {
      uint8_t buf[600];
      size_t got = 0;
      while (got < s->len) {
        ssize_t n = read(fd, buf + got, s->len - got);
        if (n <= 0)
          return;
        got += (size_t)n;
      }
      if (write(out, buf, got) != (ssize_t)got)
        return;
    } else if (s->op == 'w') {
      if (write(fd, s->data, s->len) != (ssize_t)s->len)
        return;
    } else if (s->op == 'd') {
      for (size_t i = 0; i < s->len; i++) {
        if (write(fd, s->data + i, 1) != 1)
          return;
        sleep_ms(s->ms);
      }
    } else if (s->op == 's') {
      sleep_ms(s->ms);
    } else if (s->op == 'c') {
      return;
    }
  }
  /* hold the connection until the client closes it */
  uint8_t sink[256];
  while (read(fd, sink, sizeof(sink)) > 0)
    ;
}

static proxy start_proxy(const step *script)
{
  proxy p;
  memset(&p, 0, sizeof(p));
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(ls >= 0);
  p.addr.sin_family = AF_INET;
  p.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(ls, (struct sockaddr *)&p.addr, sizeof(p.addr)), 0);
  socklen_t len = sizeof(p.addr);
  assert_int_equal(getsockname(ls, (struct sockaddr *)&p.addr, &len), 0);
  assert_int_equal(listen(ls, 1), 0);
  int pfd[2];
  assert_int_equal(pipe(pfd), 0);
  p.pid = fork();
  assert_true(p.pid >= 0);
  if (p.pid == 0) {
    alarm(10); /* never outlives a broken test */
    close(pfd[0]);
    int fd = accept(ls, NULL, NULL);
    if (fd >= 0)
      run_script(fd, pfd[1], script);
    _exit(0);
  }
  close(ls);
  close(pfd[1]);
  p.pipe_rd = pfd[0];
  return p;
}

/* What the proxy read, after it is done. */
static size_t stop_proxy(proxy *p, uint8_t *buf, size_t cap)
{
  kill(p->pid, SIGTERM);
  waitpid(p->pid, NULL, 0);
  size_t got = 0;
  ssize_t n;
  while (got < cap && (n = read(p->pipe_rd, buf + got, cap - got)) > 0)
    got += (size_t)n;
  close(p->pipe_rd);
  return got;
}

typedef struct outcome {
  int calls;
  socks_conn_result r;
  double took;
} outcome;

static void on_done(void *arg, socks_conn_result *r)
{
  outcome *o = arg;
  o->calls++;
  o->r = *r;
}

static socks_conn_cfg base_cfg(struct event_base *base, const proxy *p)
{
  socks_conn_cfg cfg;
  memset(&cfg, 0, sizeof(cfg));
  cfg.base = base;
  cfg.proxy = (const struct sockaddr *)&p->addr;
  cfg.proxy_len = sizeof(p->addr);
  cfg.cmd = SOCKS5_CMD_CONNECT;
  assert_int_equal(socks5_addr_name(&cfg.dst, "nts.example", 11, 4460), SOCKS5_OK);
  cfg.timeout = 3;
  return cfg;
}

static outcome run(const socks_conn_cfg *cfg)
{
  outcome o;
  memset(&o, 0, sizeof(o));
  char err[200];
  double t0 = now();
  socks_conn *c = socks_conn_start(cfg, on_done, &o, err, sizeof(err));
  assert_non_null(c);
  assert_int_equal(o.calls, 0); /* never from within start */
  while (o.calls == 0 && now() - t0 < 10)
    event_base_loop(cfg->base, EVLOOP_ONCE);
  o.took = now() - t0;
  assert_int_equal(o.calls, 1);
  if (!o.r.ok) {
    assert_int_equal(o.r.fd, -1);
    assert_true(strncmp(o.r.why, "proxy 127.0.0.1:", 16) == 0);
  }
  return o;
}

/* One script, one handshake: the outcome, and what the proxy read. */
static outcome run_script_cfg(const step *script, socks_conn_cfg *cfg_opt, uint8_t *seen,
                              size_t *seen_len)
{
  struct event_base *base = event_base_new();
  proxy p = start_proxy(script);
  socks_conn_cfg cfg = base_cfg(base, &p);
  if (cfg_opt) {
    cfg_opt->base = base;
    cfg_opt->proxy = cfg.proxy;
    cfg_opt->proxy_len = cfg.proxy_len;
    cfg = *cfg_opt;
  }
  outcome o = run(&cfg);
  uint8_t tmp[600];
  size_t n = stop_proxy(&p, seen ? seen : tmp, seen ? 600 : sizeof(tmp));
  if (seen_len)
    *seen_len = n;
  event_base_free(base);
  return o;
}

static outcome fails_with(const step *script, socks5_status st, const char *why_part)
{
  outcome o = run_script_cfg(script, NULL, NULL, NULL);
  assert_false(o.r.ok);
  assert_int_equal(o.r.status, st);
  if (!strstr(o.r.why, why_part))
    fail_msg("why %s does not say %s", o.r.why, why_part);
  return o;
}

/* Every block socks_conn frees is searched for a secret: CMakeLists.txt
 * links this test (not its _san twin) with -Wl,--wrap=free.  A memset
 * before free is a dead store the optimizer may drop, so only a wipe it
 * cannot drop passes. */
void __real_free(void *p) __attribute__((weak));
void __wrap_free(void *p);
static bool free_wrapped;
static const char *free_secret;
static int free_secret_seen;

void __wrap_free(void *p)
{
  free_wrapped = true;
  if (p && free_secret &&
      memmem(p, malloc_usable_size(p), free_secret, strlen(free_secret)) != NULL)
    free_secret_seen++;
  __real_free(p);
}

/* ---- success ------------------------------------------------------------- */

static void test_connect_name_no_auth(void **state)
{
  (void)state;
  /* the reply and the server's first bytes in one segment */
  const step script[] = {R(3), W(5, 0), R(18),
                         W(5, 0, 0, 1, 10, 0, 0, 9, 0x11, 0x6c, 'H', 'E', 'L', 'L', 'O'), END};
  uint8_t seen[600];
  size_t n;
  outcome o = run_script_cfg(script, NULL, seen, &n);
  assert_true(o.r.ok);
  assert_true(o.r.fd >= 0);
  assert_int_equal(o.r.status, SOCKS5_OK);
  assert_int_equal(o.r.bound.atyp, SOCKS5_ATYP_IPV4);
  assert_memory_equal(o.r.bound.bytes, ((const uint8_t[]){10, 0, 0, 9}), 4);
  assert_int_equal(o.r.bound.port, 4460);
  /* nothing after the reply was taken from the stream */
  char data[8] = {0};
  struct pollfd pfd = {o.r.fd, POLLIN, 0};
  assert_int_equal(poll(&pfd, 1, 2000), 1);
  assert_int_equal(recv(o.r.fd, data, sizeof(data), 0), 5);
  assert_string_equal(data, "HELLO");
  close(o.r.fd);
  /* greeting: no authentication only; the name went as ATYP 3 */
  const uint8_t want[] = {5, 1, 0, 5, 1, 0, 3, 11, 'n', 't', 's', '.', 'e', 'x', 'a', 'm',
                          'p', 'l', 'e', 0x11, 0x6c};
  assert_int_equal(n, sizeof(want));
  assert_memory_equal(seen, want, sizeof(want));
}

static void test_userpass_empty_password(void **state)
{
  (void)state;
  const step script[] = {R(4), W(5, 2), R(4), W(1, 0), R(10),
                         W(5, 0, 0, 4, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
                           0, 123),
                         END};
  socks_conn_cfg cfg;
  memset(&cfg, 0, sizeof(cfg));
  cfg.user = (const uint8_t *)"u";
  cfg.user_len = 1;
  cfg.cmd = SOCKS5_CMD_CONNECT;
  assert_int_equal(socks_conn_dst(&cfg.dst, "192.0.2.1", 4460), SOCKS5_OK);
  cfg.timeout = 3;
  uint8_t seen[600];
  size_t n;
  outcome o = run_script_cfg(script, &cfg, seen, &n);
  assert_true(o.r.ok);
  close(o.r.fd);
  assert_int_equal(o.r.bound.atyp, SOCKS5_ATYP_IPV6);
  assert_int_equal(o.r.bound.port, 123);
  /* both methods offered; RFC 1929 with PLEN 0; an IP literal as ATYP 1 */
  const uint8_t want[] = {5, 2, 0, 2, 1, 1, 'u', 0, 5, 1, 0, 1, 192, 0, 2, 1, 0x11, 0x6c};
  assert_int_equal(n, sizeof(want));
  assert_memory_equal(seen, want, sizeof(want));
}

static void test_drip_and_name_reply(void **state)
{
  (void)state;
  /* every byte in its own segment, a bound name; its last byte and the
   * first of the data together (the proxy is gone once the handshake ends) */
  const step script[] = {R(3), DRIP(5, 5, 0), R(18),
                         DRIP(5, 5, 0, 0, 3, 3, 'a', 'b', 'c', 0), W(80, 'X'), END};
  outcome o = run_script_cfg(script, NULL, NULL, NULL);
  assert_true(o.r.ok);
  assert_int_equal(o.r.bound.atyp, SOCKS5_ATYP_NAME);
  assert_int_equal(o.r.bound.name_len, 3);
  assert_memory_equal(o.r.bound.bytes, "abc", 3);
  char x = 0;
  struct pollfd pfd = {o.r.fd, POLLIN, 0};
  assert_int_equal(poll(&pfd, 1, 2000), 1);
  assert_int_equal(recv(o.r.fd, &x, 1, 0), 1);
  assert_int_equal(x, 'X');
  close(o.r.fd);
}

static void test_udp_associate(void **state)
{
  (void)state;
  const step script[] = {R(3), W(5, 0), R(10), W(5, 0, 0, 1, 0, 0, 0, 0, 0x30, 0x39), END};
  socks_conn_cfg cfg;
  memset(&cfg, 0, sizeof(cfg));
  cfg.cmd = SOCKS5_CMD_UDP_ASSOCIATE;
  socks5_addr_ipv4(&cfg.dst, (const uint8_t[]){0, 0, 0, 0}, 0);
  cfg.timeout = 3;
  uint8_t seen[600];
  size_t n;
  outcome o = run_script_cfg(script, &cfg, seen, &n);
  assert_true(o.r.ok);
  close(o.r.fd);
  assert_int_equal(o.r.bound.port, 12345);
  const uint8_t want[] = {5, 1, 0, 5, 3, 0, 1, 0, 0, 0, 0, 0, 0};
  assert_int_equal(n, sizeof(want));
  assert_memory_equal(seen, want, sizeof(want));
}

/* A 255-byte bound name followed by an endless stream: the reply is read
 * to its end and not a byte further. */
static void test_longest_reply_then_stream(void **state)
{
  (void)state;
  static uint8_t reply[5 + 255 + 2 + 64];
  memcpy(reply, (const uint8_t[]){5, 0, 0, 3, 255}, 5);
  memset(reply + 5, 'n', 255);
  reply[260] = 0;
  reply[261] = 1;
  memset(reply + 262, 0xee, 64);
  const step script[] = {R(3), W(5, 0), R(18), {'w', reply, sizeof(reply), 0}, END};
  outcome o = run_script_cfg(script, NULL, NULL, NULL);
  assert_true(o.r.ok);
  assert_int_equal(o.r.bound.name_len, 255);
  assert_int_equal(o.r.bound.port, 1);
  uint8_t rest[128];
  size_t got = 0;
  struct pollfd pfd = {o.r.fd, POLLIN, 0};
  while (got < 64 && poll(&pfd, 1, 2000) == 1) {
    ssize_t n = recv(o.r.fd, rest + got, sizeof(rest) - got, 0);
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  assert_int_equal(got, 64);
  assert_int_equal(rest[0], 0xee);
  close(o.r.fd);
}

/* ---- failures ------------------------------------------------------------ */

static void test_failure_replies(void **state)
{
  (void)state;
  fails_with((const step[]){R(3), W(4, 0), END}, SOCKS5_ERR_VERSION,
             "not a SOCKS5 server (version 4");
  fails_with((const step[]){R(3), W(0, 0x5b), END}, SOCKS5_ERR_VERSION, "a SOCKS4 reply");
  fails_with((const step[]){R(3), W(5, 0xff), END}, SOCKS5_ERR_NO_METHOD,
             "accepts none of the offered methods (no authentication)");
  fails_with((const step[]){R(3), W(5, 2), END}, SOCKS5_ERR_METHOD,
             "chose method 0x02, which was not offered");
  fails_with((const step[]){R(3), W(5, 0), R(18), W(5, 5, 0, 1, 0, 0, 0, 0, 0, 0), END},
             SOCKS5_ERR_REFUSED, "CONNECT failed: reply 5 (connection refused)");
  fails_with((const step[]){R(3), W(5, 0), R(18), W(5, 1), CLOSE}, SOCKS5_ERR_GENERAL_FAILURE,
             "reply 1 (general SOCKS server failure)");
  fails_with((const step[]){R(3), W(5, 0), R(18), W(5, 0x42), CLOSE}, SOCKS5_ERR_REP_UNKNOWN,
             "reply 66 (unknown reply code)");
  fails_with((const step[]){R(3), W(5, 0), R(18), W(5, 0xf6), CLOSE}, SOCKS5_ERR_REP_UNKNOWN,
             "reply 246 (Tor: invalid onion service address)");
  fails_with((const step[]){R(3), W(5, 0), R(18), W(5, 0xf8), CLOSE}, SOCKS5_ERR_REP_UNKNOWN,
             "reply 248 (unknown reply code)");
  fails_with((const step[]){R(3), W(5, 0), R(18), W(5, 0, 0, 9), END}, SOCKS5_ERR_ATYP,
             "unknown address type 9");
  fails_with((const step[]){R(3), W(5, 0), R(18), W(5, 0, 7), END}, SOCKS5_ERR_RESERVED,
             "reserved byte 0x07");
  fails_with((const step[]){R(3), W(5, 0), R(18), W(5, 0, 0, 3, 0), END}, SOCKS5_ERR_NAME_LEN,
             "empty bound name");
  fails_with((const step[]){R(3), W(5, 0), R(18), W(5, 0, 0), CLOSE}, SOCKS5_OK,
             "connection closed after 3 bytes of the reply to CONNECT");
  fails_with((const step[]){R(3), CLOSE}, SOCKS5_OK,
             "connection closed waiting for the method reply");
}

static void test_auth_refused(void **state)
{
  (void)state;
  socks_conn_cfg cfg;
  memset(&cfg, 0, sizeof(cfg));
  cfg.user = (const uint8_t *)"user";
  cfg.user_len = 4;
  cfg.pass = (const uint8_t *)"pw";
  cfg.pass_len = 2;
  cfg.cmd = SOCKS5_CMD_CONNECT;
  assert_int_equal(socks_conn_dst(&cfg.dst, "[2001:db8::1]", 4460), SOCKS5_OK);
  assert_int_equal(cfg.dst.atyp, SOCKS5_ATYP_IPV6);
  cfg.timeout = 3;
  outcome o = run_script_cfg((const step[]){R(4), W(5, 2), R(9), W(1, 1), CLOSE}, &cfg, NULL,
                             NULL);
  assert_false(o.r.ok);
  assert_int_equal(o.r.status, SOCKS5_ERR_AUTH);
  assert_non_null(strstr(o.r.why, "authentication refused (status 1)"));
  o = run_script_cfg((const step[]){R(4), W(5, 0xff), END}, &cfg, NULL, NULL);
  assert_non_null(strstr(o.r.why, "(no authentication, username/password)"));
}

/* The password is gone from memory when the handshake's state is freed,
 * after success and after a failure alike. */
static void test_credentials_wiped(void **state)
{
  (void)state;
  free(malloc(1));
  if (!free_wrapped)
    skip(); /* the _san build: ASan owns free */
  socks_conn_cfg cfg;
  memset(&cfg, 0, sizeof(cfg));
  cfg.user = (const uint8_t *)"user";
  cfg.user_len = 4;
  cfg.pass = (const uint8_t *)"Pw-0f-7he-Pr0xy";
  cfg.pass_len = 15;
  cfg.cmd = SOCKS5_CMD_CONNECT;
  assert_int_equal(socks_conn_dst(&cfg.dst, "nts.example", 4460), SOCKS5_OK);
  cfg.timeout = 3;
  free_secret = "Pw-0f-7he";
  free_secret_seen = 0;
  outcome o = run_script_cfg((const step[]){R(4), W(5, 2), R(22), W(1, 0), R(18),
                                            W(5, 0, 0, 1, 10, 0, 0, 9, 0x11, 0x6c), END},
                             &cfg, NULL, NULL);
  assert_true(o.r.ok);
  close(o.r.fd);
  o = run_script_cfg((const step[]){R(4), W(5, 2), R(22), W(1, 1), CLOSE}, &cfg, NULL, NULL);
  assert_int_equal(o.r.status, SOCKS5_ERR_AUTH);
  free_secret = NULL;
  assert_int_equal(free_secret_seen, 0);
}

static void test_deadline(void **state)
{
  (void)state;
  socks_conn_cfg cfg;
  memset(&cfg, 0, sizeof(cfg));
  cfg.cmd = SOCKS5_CMD_CONNECT;
  assert_int_equal(socks_conn_dst(&cfg.dst, "nts.example", 4460), SOCKS5_OK);
  cfg.timeout = 0.3;
  /* silent */
  outcome o = run_script_cfg((const step[]){R(3), END}, &cfg, NULL, NULL);
  assert_false(o.r.ok);
  assert_non_null(strstr(o.r.why, "timed out after 0.3 s waiting for the method reply"));
  assert_true(o.took >= 0.29 && o.took < 1.5);
  /* a byte at a time, too slowly: the deadline covers the whole handshake */
  o = run_script_cfg((const step[]){R(3), W(5, 0), R(18), DRIP(100, 5, 0, 0, 1, 1, 2, 3, 4, 0, 1),
                                    END},
                     &cfg, NULL, NULL);
  assert_false(o.r.ok);
  assert_non_null(strstr(o.r.why, "timed out after 0.3 s waiting for the reply to CONNECT"));
  assert_true(o.took < 1.5);
}

static void test_connect_refused_and_cancel(void **state)
{
  (void)state;
  struct event_base *base = event_base_new();
  /* a port nobody listens on: bind, learn it, close */
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
  assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
  close(s);
  proxy p = {.addr = a};
  socks_conn_cfg cfg = base_cfg(base, &p);
  outcome o = run(&cfg);
  assert_false(o.r.ok);
  assert_non_null(strstr(o.r.why, "cannot connect: Connection refused"));

  /* cancelled: no callback, no leak (the _san build checks) */
  outcome o2;
  memset(&o2, 0, sizeof(o2));
  char err[200];
  socks_conn *c = socks_conn_start(&cfg, on_done, &o2, err, sizeof(err));
  assert_non_null(c);
  socks_conn_cancel(c);
  event_base_loop(base, EVLOOP_NONBLOCK);
  assert_int_equal(o2.calls, 0);

  /* arguments it refuses at once */
  socks_conn_cfg bad = cfg;
  bad.cmd = 2; /* BIND */
  assert_null(socks_conn_start(&bad, on_done, &o2, err, sizeof(err)));
  assert_non_null(strstr(err, "command"));
  bad = cfg;
  static const uint8_t big[256];
  bad.user = big;
  bad.user_len = 256;
  assert_null(socks_conn_start(&bad, on_done, &o2, err, sizeof(err)));
  bad = cfg;
  bad.timeout = 0;
  assert_null(socks_conn_start(&bad, on_done, &o2, err, sizeof(err)));
  event_base_free(base);
}

/* ---- random replies against the pure parsers ------------------------------ */

/* What the parsers say about a whole stream of proxy bytes: the status of
 * the first message that is not OK (NEED_MORE if the stream ends inside
 * one), and on success how many bytes the handshake took. */
static socks5_status expect(const uint8_t *in, size_t len, unsigned offer, size_t *took)
{
  uint8_t method;
  size_t used, off = 0;
  socks5_addr bound;
  socks5_status st = socks5_parse_method(in, len, offer, &method, &used);
  if (st != SOCKS5_OK)
    return st;
  off += used;
  if (method == SOCKS5_METHOD_USERPASS) {
    st = socks5_parse_auth(in + off, len - off, &used);
    if (st != SOCKS5_OK)
      return st;
    off += used;
  }
  st = socks5_parse_reply(in + off, len - off, &bound, &used);
  *took = off + used;
  return st;
}

/* A stream that is often nearly right: good messages with one byte
 * changed, cut short, or followed by random data. */
static size_t random_stream(uint8_t *out, size_t cap, unsigned *seed)
{
  size_t n = 0;
  bool auth = rand_r(seed) % 2;
  out[n++] = 5;
  out[n++] = auth ? 2 : 0;
  if (auth) {
    out[n++] = 1;
    out[n++] = 0;
  }
  out[n++] = 5;
  out[n++] = 0;
  out[n++] = 0;
  static const uint8_t atyps[] = {1, 3, 4};
  uint8_t atyp = atyps[rand_r(seed) % 3];
  out[n++] = atyp;
  size_t alen = atyp == 1 ? 4 : atyp == 4 ? 16 : (size_t)(rand_r(seed) % 256);
  if (atyp == 3)
    out[n++] = (uint8_t)alen;
  for (size_t i = 0; i < alen + 2 + (size_t)(rand_r(seed) % 40); i++)
    out[n++] = (uint8_t)rand_r(seed);
  if (rand_r(seed) % 2) /* one byte wrong */
    out[rand_r(seed) % 12] = (uint8_t)rand_r(seed);
  if (rand_r(seed) % 4 == 0) /* cut short */
    n = (size_t)rand_r(seed) % n;
  (void)cap;
  return n;
}

/* socks_conn agrees with the parsers on every stream, reports exactly
 * once, and leaves every byte after the reply in the socket. */
static void test_random_replies(void **state)
{
  (void)state;
  unsigned seed = 20260101;
  struct event_base *base = event_base_new();
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof(a);
  assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
  assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &alen), 0);
  assert_int_equal(listen(ls, 4), 0);
  proxy p = {.addr = a};
  int n_ok = 0, n_fail = 0;
  for (int iter = 0; iter < 300; iter++) {
    uint8_t stream[600];
    size_t len = random_stream(stream, sizeof(stream), &seed);
    socks_conn_cfg cfg = base_cfg(base, &p);
    bool user = rand_r(&seed) % 2;
    cfg.user = (const uint8_t *)"u";
    cfg.user_len = user ? 1 : 0;
    unsigned offer = SOCKS5_OFFER_NONE | (user ? SOCKS5_OFFER_USERPASS : 0);
    size_t took = 0;
    socks5_status want = expect(stream, len, offer, &took);

    outcome o;
    memset(&o, 0, sizeof(o));
    char err[200];
    socks_conn *c = socks_conn_start(&cfg, on_done, &o, err, sizeof(err));
    assert_non_null(c);
    int fd = accept(ls, NULL, NULL);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, stream, len), (ssize_t)len);
    shutdown(fd, SHUT_WR);
    double t0 = now();
    while (o.calls == 0 && now() - t0 < 5)
      event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(o.calls, 1);
    if (want == SOCKS5_OK) {
      if (!o.r.ok)
        fail_msg("iteration %d: failed (%s), the parsers accept it", iter, o.r.why);
      uint8_t rest[600];
      size_t got = 0;
      ssize_t n;
      struct pollfd pfd = {o.r.fd, POLLIN, 0};
      while (poll(&pfd, 1, 2000) == 1 && (n = recv(o.r.fd, rest + got, sizeof(rest) - got, 0)) > 0)
        got += (size_t)n;
      n_ok++;
      assert_int_equal(got, len - took);
      assert_memory_equal(rest, stream + took, got);
      close(o.r.fd);
    } else {
      assert_false(o.r.ok);
      n_fail++;
      /* a stream that ends inside a message is a close, not a status */
      assert_int_equal(o.r.status, want == SOCKS5_NEED_MORE ? SOCKS5_OK : want);
      if (want == SOCKS5_NEED_MORE && !strstr(o.r.why, "connection closed"))
        fail_msg("iteration %d: %s", iter, o.r.why);
    }
    close(fd);
  }
  /* both outcomes well represented */
  assert_true(n_ok >= 50 && n_fail >= 50);
  close(ls);
  event_base_free(base);
}

/* ---- NTS-KE through the proxy ---------------------------------------------- */

typedef struct ke_outcome {
  int calls;
  bool ok;
  char why[200];
} ke_outcome;

static void on_ke(void *arg, ke_result *r)
{
  ke_outcome *o = arg;
  o->calls++;
  o->ok = r->ok;
  snprintf(o->why, sizeof(o->why), "%s", r->why);
}

/* The KE's deadline covers the proxy's handshake and the proxy's failure
 * comes back in why; a cancel while the proxy is still answering frees
 * everything (the _san build checks for leaks). */
static void test_ke_via(void **state)
{
  (void)state;
  char err[300];
  SSL_CTX *ctx = tls_client_ctx(NULL, false, err, sizeof(err));
  assert_non_null(ctx);
  struct event_base *base = event_base_new();
  const uint16_t aead = NTS_AEAD_AES_SIV_CMAC_256;

  proxy p = start_proxy((const step[]){R(3), END});
  ke_via via = {.proxy = (const struct sockaddr *)&p.addr, .proxy_len = sizeof(p.addr)};
  ke_outcome o = {0};
  double t0 = now();
  ke_client *k = ke_client_start_via(base, ctx, &via, "nts.example", 4460, NULL, &aead, 1, 0.3,
                                     on_ke, &o, err, sizeof(err));
  assert_non_null(k);
  while (o.calls == 0 && now() - t0 < 5)
    event_base_loop(base, EVLOOP_ONCE);
  assert_int_equal(o.calls, 1);
  assert_false(o.ok);
  if (!strstr(o.why, "timed out after 0.3 s waiting for the method reply"))
    fail_msg("why: %s", o.why);
  assert_true(now() - t0 < 1.5);
  stop_proxy(&p, NULL, 0);

  p = start_proxy((const step[]){R(3), END});
  k = ke_client_start_via(base, ctx, &via, "nts.example", 4460, NULL, &aead, 1, 5, on_ke, &o,
                          err, sizeof(err));
  assert_non_null(k);
  event_base_loop(base, EVLOOP_NONBLOCK);
  ke_client_cancel(k);
  event_base_loop(base, EVLOOP_NONBLOCK);
  assert_int_equal(o.calls, 1);
  stop_proxy(&p, NULL, 0);

  assert_null(ke_client_start_via(base, ctx, &via, "", 4460, NULL, &aead, 1, 5, on_ke, &o, err,
                                  sizeof(err)));
  event_base_free(base);
  SSL_CTX_free(ctx);
}

/* ---- helpers ------------------------------------------------------------- */

static void test_helpers(void **state)
{
  (void)state;
  char u1[SOCKS_ISOLATION_LEN + 1], p1[SOCKS_ISOLATION_LEN + 1];
  char u2[SOCKS_ISOLATION_LEN + 1], p2[SOCKS_ISOLATION_LEN + 1];
  socks_conn_isolation_creds(u1, p1);
  socks_conn_isolation_creds(u2, p2);
  assert_int_equal(strlen(u1), 32);
  assert_int_equal(strspn(u1, "0123456789abcdef"), 32);
  assert_int_equal(strspn(p1, "0123456789abcdef"), 32);
  assert_string_not_equal(u1, u2);
  assert_string_not_equal(u1, p1);

  struct sockaddr_storage ss;
  socklen_t len;
  assert_true(socks_conn_proxy_addr("127.0.0.1", 9050, &ss, &len));
  assert_int_equal(ss.ss_family, AF_INET);
  assert_true(socks_conn_proxy_addr("::1", 1080, &ss, &len));
  assert_int_equal(ss.ss_family, AF_INET6);
  assert_false(socks_conn_proxy_addr("proxy.example", 1080, &ss, &len));
  assert_false(socks_conn_proxy_addr("", 1080, &ss, &len));
  assert_false(socks_conn_proxy_addr("127.0.0.1", 0, &ss, &len));

  /* from the configuration: its credentials if it has a USER, else random */
  conf_proxy cp;
  char err[200];
  assert_true(conf_parse_proxy_url("socks5://alice:s%3Acret@[::1]:1080", &cp, err, sizeof(err)));
  assert_true(socks_conn_proxy_from_conf(&cp, &ss, &len));
  assert_int_equal(ss.ss_family, AF_INET6);
  socks_creds cr, cr2;
  socks_conn_creds(&cp, &cr);
  assert_false(cr.random);
  assert_int_equal(cr.user_len, 5);
  assert_memory_equal(cr.user, "alice", 5);
  assert_int_equal(cr.pass_len, 6);
  assert_memory_equal(cr.pass, "s:cret", 6);
  assert_true(conf_parse_proxy_url("socks5://bob@127.0.0.1:9050", &cp, err, sizeof(err)));
  socks_conn_creds(&cp, &cr);
  assert_int_equal(cr.pass_len, 0);
  assert_true(conf_parse_proxy_url("socks5://127.0.0.1:9050", &cp, err, sizeof(err)));
  socks_conn_creds(&cp, &cr);
  socks_conn_creds(&cp, &cr2);
  assert_true(cr.random && cr2.random);
  assert_int_equal(cr.user_len, SOCKS_ISOLATION_LEN);
  assert_memory_not_equal(cr.user, cr2.user, SOCKS_ISOLATION_LEN);
  cp.set = false;
  assert_false(socks_conn_proxy_from_conf(&cp, &ss, &len));

  socks5_addr d;
  assert_int_equal(socks_conn_dst(&d, "192.0.2.1", 1), SOCKS5_OK);
  assert_int_equal(d.atyp, SOCKS5_ATYP_IPV4);
  assert_int_equal(socks_conn_dst(&d, "2001:db8::1", 1), SOCKS5_OK);
  assert_int_equal(d.atyp, SOCKS5_ATYP_IPV6);
  assert_int_equal(socks_conn_dst(&d, "abcdefghijklmnop.onion", 1), SOCKS5_OK);
  assert_int_equal(d.atyp, SOCKS5_ATYP_NAME);
  assert_int_equal(d.name_len, 22);
  assert_int_equal(socks_conn_dst(&d, "", 1), SOCKS5_ERR_ARG);
}

int main(void)
{
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_connect_name_no_auth),
      cmocka_unit_test(test_userpass_empty_password),
      cmocka_unit_test(test_drip_and_name_reply),
      cmocka_unit_test(test_udp_associate),
      cmocka_unit_test(test_longest_reply_then_stream),
      cmocka_unit_test(test_failure_replies),
      cmocka_unit_test(test_auth_refused),
      cmocka_unit_test(test_credentials_wiped),
      cmocka_unit_test(test_deadline),
      cmocka_unit_test(test_connect_refused_and_cancel),
      cmocka_unit_test(test_random_replies),
      cmocka_unit_test(test_ke_via),
      cmocka_unit_test(test_helpers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
