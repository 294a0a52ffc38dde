/* Unit tests for daemon/resolver.c against a DNS server on loopback (libevent's
 * evdns server port), so the retries and their backoff run for real. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <event2/dns.h>
#include <event2/dns_struct.h>
#include <event2/event.h>
#include <netinet/in.h>

#include "daemon/resolver.h"

#define STEP 0.05 /* s: the first backoff step in these tests */
#define MAX_QUERIES 8

/* What the server answers to the n-th A query: 0 NXDOMAIN, else 127.0.0.x. */
typedef struct script {
  int answers[MAX_QUERIES];
  int n_a;                   /* A queries seen */
  double at[MAX_QUERIES];    /* when each came, monotonic s */
  int offered[MAX_QUERIES];  /* last octet of each address offered to the caller */
  int n_offered;
} script;

static double mono(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void on_query(struct evdns_server_request *req, void *arg)
{
  script *sc = arg;
  const struct evdns_server_question *q = req->questions[0];

  if (req->nquestions != 1 || q->type != EVDNS_TYPE_A) {
    evdns_server_request_respond(req, 0); /* AAAA: no data */
    return;
  }
  int i = sc->n_a++;
  if (i < MAX_QUERIES)
    sc->at[i] = mono();
  if (i >= MAX_QUERIES || sc->answers[i] == 0) {
    evdns_server_request_respond(req, DNS_ERR_NOTEXIST);
    return;
  }
  uint32_t a = htonl(0x7f000000u | (uint32_t)sc->answers[i]);
  evdns_server_request_add_a_reply(req, q->name, 1, &a, 60);
  evdns_server_request_respond(req, 0);
}

static bool on_address(void *arg, const struct sockaddr *sa, socklen_t len)
{
  script *sc = arg;
  const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;

  assert_int_equal(sa->sa_family, AF_INET);
  assert_int_equal(len, sizeof(*sin));
  assert_int_equal(ntohs(sin->sin_port), 4460);
  int octet = (int)(ntohl(sin->sin_addr.s_addr) & 0xff);
  bool dup = false;
  for (int i = 0; i < sc->n_offered && i < MAX_QUERIES; i++)
    dup |= sc->offered[i] == octet;
  if (sc->n_offered < MAX_QUERIES)
    sc->offered[sc->n_offered] = octet;
  sc->n_offered++;
  return !dup; /* a duplicate is refused, as the client refuses a known address */
}

typedef struct fixture {
  struct event_base *base;
  struct evdns_base *dns;
  struct evdns_server_port *port;
  int fd;
} fixture;

static void fixture_up(fixture *f, script *sc)
{
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(sa);
  char ns[64];

  f->base = event_base_new();
  assert_non_null(f->base);
  f->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  assert_true(f->fd >= 0);
  assert_int_equal(bind(f->fd, (struct sockaddr *)&sa, len), 0);
  assert_int_equal(getsockname(f->fd, (struct sockaddr *)&sa, &len), 0);
  f->port = evdns_add_server_port_with_base(f->base, f->fd, 0, on_query, sc);
  assert_non_null(f->port);
  f->dns = evdns_base_new(f->base, 0); /* no resolv.conf: only our server */
  assert_non_null(f->dns);
  snprintf(ns, sizeof(ns), "127.0.0.1:%u", ntohs(sa.sin_port));
  assert_int_equal(evdns_base_nameserver_ip_add(f->dns, ns), 0);
}

static void fixture_down(fixture *f)
{
  evdns_base_free(f->dns, 0);
  evdns_close_server_port(f->port);
  close(f->fd);
  event_base_free(f->base);
}

static void run_for(fixture *f, double s)
{
  struct timeval tv = {.tv_sec = (time_t)s, .tv_usec = (suseconds_t)((s - (time_t)s) * 1e6)};
  event_base_loopexit(f->base, &tv);
  event_base_dispatch(f->base);
}

static resolver *start(fixture *f, script *sc, int want)
{
  resolver_cfg rc = {.base = f->base, .dns = f->dns, .host = "ke.example.test", .port = 4460,
                     .want = want, .retry_min = STEP, .fn = on_address, .arg = sc};
  resolver *r = resolver_start(&rc);
  assert_non_null(r);
  return r;
}

/* A failing name is asked again with a doubling backoff until it answers;
 * then nothing more is asked. */
static void test_retries_until_answered(void **state)
{
  script sc = {.answers = {0, 0, 5}};
  fixture f;
  (void)state;

  fixture_up(&f, &sc);
  resolver *r = start(&f, &sc, 1);
  run_for(&f, 12 * STEP);
  assert_int_equal(sc.n_a, 3);
  assert_int_equal(sc.n_offered, 1);
  assert_int_equal(sc.offered[0], 5);
  /* 1 step, then 2 steps (timers are not early; allow scheduling slack) */
  assert_true(sc.at[1] - sc.at[0] >= STEP * 0.9);
  assert_true(sc.at[2] - sc.at[1] >= 2 * STEP * 0.9);
  resolver_free(r);
  fixture_down(&f);
}

/* Short of addresses (a pool, or an answer that brought nothing new): the
 * name is asked again; an answer that helped starts the backoff over. */
static void test_asks_again_while_short(void **state)
{
  /* NXDOMAIN, then .5 (taken), .5 again (refused: nothing new), then .6 */
  script sc = {.answers = {0, 5, 5, 6}};
  fixture f;
  (void)state;

  fixture_up(&f, &sc);
  resolver *r = start(&f, &sc, 2);
  run_for(&f, 14 * STEP);
  resolver_free(r);
  fixture_down(&f);
  assert_int_equal(sc.n_a, 4);
  assert_int_equal(sc.n_offered, 3);
  assert_int_equal(sc.offered[2], 6);
  /* NXDOMAIN: 1 step.  .5 taken: the backoff starts over, 1 step again (not
   * 2).  Nothing new: 2 steps. */
  assert_true(sc.at[1] - sc.at[0] >= 0.9 * STEP);
  assert_true(sc.at[2] - sc.at[1] < 1.8 * STEP);
  assert_true(sc.at[3] - sc.at[2] >= 1.8 * STEP);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_retries_until_answered),
      cmocka_unit_test(test_asks_again_while_short),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
