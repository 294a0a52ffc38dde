/* control: Unix control socket. */
#include "daemon/control.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <grp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/json.h"
#include "daemon/log.h"
#include "daemon/sysclock.h"

#define MAX_CONNECTIONS 16
#define REQUEST_TIMEOUT_S 2

struct ntsd_control {
  struct evconnlistener *lis;
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  control_handler_fn fn;
  void *arg;
  int n_conn;
};

static const struct {
  const char *name;
  ctl_cmd cmd;
} commands[] = {{"peers", CTL_PEERS}, {"server", CTL_SERVER}, {"sys", CTL_SYS}, {"nts", CTL_NTS}};

/* The option words after the command; false with err set on an unknown or
 * repeated one. */
static bool parse_opts(char **save, ctl_opts *opts, char *err, size_t errlen)
{
  *opts = (ctl_opts){0};
  for (char *opt; (opt = strtok_r(NULL, " \t", save)) != NULL;) {
    bool *flag = strcmp(opt, "json") == 0      ? &opts->json
                 : strcmp(opt, "numeric") == 0 ? &opts->numeric
                                               : NULL;
    if (!flag || *flag) {
      snprintf(err, errlen, "unexpected '%.32s'", opt);
      return false;
    }
    *flag = true;
  }
  return true;
}

bool control_parse_request(const char *line, size_t len, ctl_cmd *cmd, ctl_opts *opts,
                           char *err, size_t errlen)
{
  if (len > 0 && line[len - 1] == '\n')
    len--;
  if (len > 0 && line[len - 1] == '\r')
    len--;
  if (len == 0 || len >= CONTROL_MAX_REQUEST) {
    snprintf(err, errlen, len ? "request too long" : "empty request");
    return false;
  }
  char buf[CONTROL_MAX_REQUEST];
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)line[i];
    if ((ch < 0x20 && ch != '\t') || ch > 0x7e) {
      snprintf(err, errlen, "request contains a non-printable byte");
      return false;
    }
    buf[i] = (char)ch;
  }
  buf[len] = '\0';
  char *save = NULL;
  char *word = strtok_r(buf, " \t", &save);
  if (!word) {
    *opts = (ctl_opts){0};
    snprintf(err, errlen, "empty request");
    return false;
  }
  if (!parse_opts(&save, opts, err, errlen))
    return false;
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
    if (strcmp(word, commands[i].name) == 0) {
      *cmd = commands[i].cmd;
      return true;
    }
  }
  snprintf(err, errlen, "unknown command '%.32s'", word);
  return false;
}

/* One client connection: the whole exchange (request line in, reply out)
 * must finish within REQUEST_TIMEOUT_S of the accept, so a client that
 * trickles bytes cannot hold one of the few connection slots. */
typedef struct ctl_conn {
  ntsd_control *ctl;
  struct bufferevent *bev;
  struct event *deadline;
} ctl_conn;

static void conn_close(ctl_conn *cc)
{
  cc->ctl->n_conn--;
  event_free(cc->deadline);
  bufferevent_free(cc->bev);
  free(cc);
}

static void on_written(struct bufferevent *bev, void *arg)
{
  if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
    conn_close(arg);
}

static void send_reply(ctl_conn *cc, const char *text, size_t len)
{
  bufferevent_disable(cc->bev, EV_READ);
  bufferevent_setcb(cc->bev, NULL, on_written, NULL, cc);
  bufferevent_write(cc->bev, text, len);
}

char *control_error_reply(const char *msg, bool json)
{
  if (!json) {
    size_t n = strlen("error: \n") + strlen(msg) + 1;
    char *out = malloc(n);
    if (out)
      snprintf(out, n, "error: %s\n", msg);
    return out;
  }
  /* The message quotes request words: escaped by the JSON writer. */
  json_w *j = json_new();
  if (!j)
    return NULL;
  json_obj_begin(j);
  json_kv_str(j, "error", msg);
  json_obj_end(j);
  char *out = json_ok(j) ? malloc(json_len(j) + 2) : NULL;
  if (out)
    snprintf(out, json_len(j) + 2, "%s\n", json_str(j));
  json_free(j);
  return out;
}

static void reply_error(ctl_conn *cc, const char *msg, bool json)
{
  char *out = control_error_reply(msg, json);
  if (!out) {
    conn_close(cc);
    return;
  }
  send_reply(cc, out, strlen(out));
  free(out);
}

static void on_read(struct bufferevent *bev, void *arg)
{
  ctl_conn *cc = arg;
  ntsd_control *c = cc->ctl;
  struct evbuffer *in = bufferevent_get_input(bev);
  size_t avail = evbuffer_get_length(in);
  struct evbuffer_ptr eol = evbuffer_search(in, "\n", 1, NULL);
  if (eol.pos < 0) {
    if (avail >= CONTROL_MAX_REQUEST)
      reply_error(cc, "request too long", false);
    return; /* wait for the rest of the line */
  }
  char line[CONTROL_MAX_REQUEST + 1];
  size_t len = (size_t)eol.pos + 1;
  if (len > CONTROL_MAX_REQUEST) {
    reply_error(cc, "request too long", false);
    return;
  }
  evbuffer_remove(in, line, len);
  line[len] = '\0';
  ctl_cmd cmd;
  ctl_opts opts;
  char err[128];
  if (!control_parse_request(line, len, &cmd, &opts, err, sizeof(err))) {
    bool wants_json = strstr(line, "json") != NULL;
    reply_error(cc, err, wants_json);
    return;
  }
  char *text = c->fn(c->arg, cmd, &opts);
  if (!text) {
    reply_error(cc, "out of memory", opts.json);
    return;
  }
  send_reply(cc, text, strlen(text));
  free(text);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
  (void)bev;
  (void)what;
  conn_close(arg); /* EOF before a full line, or an error */
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  conn_close(arg);
}

static void on_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
  ntsd_control *c = arg;
  struct event_base *base = evconnlistener_get_base(lis);
  (void)sa;
  (void)salen;
  if (c->n_conn >= MAX_CONNECTIONS) {
    close(fd);
    return;
  }
  ctl_conn *cc = calloc(1, sizeof(*cc));
  if (cc)
    cc->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
  if (cc && cc->bev)
    cc->deadline = evtimer_new(base, on_deadline, cc);
  struct timeval tv = {.tv_sec = REQUEST_TIMEOUT_S};
  if (!cc || !cc->bev || !cc->deadline || evtimer_add(cc->deadline, &tv) < 0) {
    if (cc && cc->deadline)
      event_free(cc->deadline);
    if (cc && cc->bev)
      bufferevent_free(cc->bev);
    else
      close(fd);
    free(cc);
    return;
  }
  cc->ctl = c;
  c->n_conn++;
  bufferevent_setwatermark(cc->bev, EV_READ, 0, CONTROL_MAX_REQUEST + 1);
  bufferevent_setcb(cc->bev, on_read, NULL, on_event, cc);
  bufferevent_enable(cc->bev, EV_READ);
}

/* A name for the socket to be bound under before it is ready: in the same
 * directory (so rename() can move it), random, hidden. */
static bool tmp_path(const char *path, char *out, size_t cap)
{
  uint32_t r;
  sysclock_random(&r, sizeof(r));
  const char *slash = strrchr(path, '/');
  int dirlen = slash ? (int)(slash - path) + 1 : 0;
  int n = snprintf(out, cap, "%.*s.ntsd-ctl-%08x", dirlen, path, (unsigned)r);
  return n > 0 && (size_t)n < cap;
}

/* Binds tmp with the final mode (and group) before anyone can connect:
 * bound under umask 0177 (0600, owner only), then given the group and
 * 0660. */
static bool bind_tmp(int fd, const char *tmp, const char *path, const struct group *g,
                     char *err, size_t errlen)
{
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", tmp);
  mode_t old = umask(0177);
  int r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
  umask(old);
  if (r < 0) {
    snprintf(err, errlen, "cannot bind control socket %s (as %s): %s", path, tmp,
             strerror(errno));
    return false;
  }
  if (g && (lchown(tmp, (uid_t)-1, g->gr_gid) < 0 || chmod(tmp, 0660) < 0)) {
    snprintf(err, errlen, "control socket group '%s': %s", g->gr_name, strerror(errno));
    unlink(tmp);
    return false;
  }
  return true;
}

/* The socket appears at path only by a rename, with its final mode and
 * group: no moment when it is reachable with others' permissions.  A
 * stale socket from a previous run is replaced by the same rename. */
static int bind_socket(const char *path, const char *group, char *err, size_t errlen)
{
  char tmp[sizeof(((struct sockaddr_un *)0)->sun_path)];
  if (strlen(path) >= sizeof(tmp) || !tmp_path(path, tmp, sizeof(tmp))) {
    snprintf(err, errlen, "control socket path too long: %s", path);
    return -1;
  }
  struct group *g = NULL;
  if (group && group[0] && !(g = getgrnam(group))) {
    snprintf(err, errlen, "control socket group '%s': no such group", group);
    return -1;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(err, errlen, "control socket: %s", strerror(errno));
    return -1;
  }
  if (!bind_tmp(fd, tmp, path, g, err, errlen)) {
    close(fd);
    return -1;
  }
  if (rename(tmp, path) < 0) {
    snprintf(err, errlen, "cannot bind control socket %s: %s", path, strerror(errno));
    unlink(tmp);
    close(fd);
    return -1;
  }
  return fd;
}

ntsd_control *control_create(struct event_base *base, const char *path, const char *group,
                             control_handler_fn fn, void *arg, char *err, size_t errlen)
{
  ntsd_control *c = calloc(1, sizeof(*c));
  if (!c) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  int fd = bind_socket(path, group, err, errlen);
  if (fd < 0) {
    free(c);
    return NULL;
  }
  snprintf(c->path, sizeof(c->path), "%s", path);
  c->fn = fn;
  c->arg = arg;
  c->lis = evconnlistener_new(base, on_accept, c, LEV_OPT_CLOSE_ON_FREE, 16, fd);
  if (!c->lis) {
    snprintf(err, errlen, "cannot listen on control socket %s", path);
    close(fd);
    unlink(path);
    free(c);
    return NULL;
  }
  return c;
}

void control_destroy(ntsd_control *c)
{
  if (!c)
    return;
  evconnlistener_free(c->lis);
  unlink(c->path);
  free(c);
}
