/* fuzz_conf: the ntp.conf parser on arbitrary bytes.  Besides "no crash, no leak" it
 * checks the promises the daemon relies on: every message is "fuzz:LINE: ..." and
 * printable, and a config that parsed without errors holds only in-range values. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_diag(void *ctx, bool is_error, const char *msg)
{
  (void)ctx;
  (void)is_error;
  if (strncmp(msg, "fuzz:", 5) != 0)
    abort();
  for (const char *m = msg; *m; m++)
    if ((unsigned char)*m < 0x20 || (unsigned char)*m >= 0x7f)
      abort();
}

static bool terminated(const char *s, size_t cap) { return memchr(s, '\0', cap) != NULL; }

/* A proxy in force is an address and a port, and its display URL is printable and
 * reads back as the same proxy and user (it has no password to read back). */
static void check_proxy(const conf_proxy *px)
{
  conf_proxy back;
  char err[200];

  if (!px->set)
    return;
  if (!terminated(px->host, sizeof px->host) || !px->host[0] || !px->port ||
      !terminated(px->user, sizeof px->user) || !terminated(px->pass, sizeof px->pass) ||
      px->auth != (px->user[0] != '\0') || !terminated(px->url, sizeof px->url))
    abort();
  for (const char *m = px->url; *m; m++)
    if ((unsigned char)*m < 0x20 || (unsigned char)*m >= 0x7f)
      abort();
  if (!strstr(px->url, "...@") &&
      (!conf_parse_proxy_url(px->url, &back, err, sizeof err) || back.port != px->port ||
       strcmp(back.host, px->host) != 0 || strcmp(back.user, px->user) != 0 || back.pass[0]))
    abort();
}

static void check_conf(const ntsd_conf *c)
{
  check_proxy(&c->proxy);
  for (size_t i = 0; i < c->n_sources; i++) {
    const conf_source *s = &c->sources[i];
    if (!terminated(s->host, sizeof s->host) || !s->host[0] || s->minpoll < 0 ||
        s->minpoll > s->maxpoll || s->maxpoll > 17 || s->version < 1 || s->version > 4)
      abort();
    check_proxy(&s->proxy);
  }
  for (size_t i = 0; i < c->n_restricts; i++) {
    const conf_restrict *r = &c->restricts[i];
    if (r->prefix > (r->fam == CONF_FAM_4 ? 32u : 128u))
      abort();
  }
  for (size_t i = 0; i < c->n_listens; i++)
    if (!terminated(c->listens[i].addr, sizeof c->listens[i].addr))
      abort();
  if (!terminated(c->nts_listen, sizeof c->nts_listen) || c->nts_rotate < 60)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  ntsd_conf *c = conf_new();
  char host[CONF_HOST_MAX], word[CONF_LINE_MAX + 1];
  uint16_t port;
  size_t wlen = size < CONF_LINE_MAX ? size : CONF_LINE_MAX;

  if (!c)
    return 0;
  if (conf_parse_string(c, "fuzz", (const char *)data, size, check_diag, NULL) == 0)
    check_conf(c);
  conf_free(c);

  /* The same bytes as one host[:port] word (cut at the first NUL, as a C string is). */
  memcpy(word, data, wlen);
  word[wlen] = '\0';
  if (conf_split_host_port(word, host, sizeof host, &port) && !terminated(host, sizeof host))
    abort();
  return 0;
}
