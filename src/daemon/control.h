/* control: the local control socket that ntsctl talks to.
 *
 * Protocol: the client sends one line, "COMMAND [json] [numeric]\n" (at most
 * CONTROL_MAX_REQUEST bytes), and reads the reply until the daemon closes
 * the connection.  Replies are text tables or JSON; errors are a line
 * starting with "error: " (JSON requests get {"error": "..."}).  The socket
 * is a Unix socket with mode 0600, or 0660 with a configured group. */
#ifndef NTSD_DAEMON_CONTROL_H
#define NTSD_DAEMON_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

#define CONTROL_MAX_REQUEST 256
#define CONTROL_DEFAULT_SOCKET "/run/ntsd/ntsd.sock"

typedef enum ctl_cmd { CTL_PEERS, CTL_SERVER, CTL_SYS, CTL_NTS } ctl_cmd;

/* A request's options, each word at most once, in any order. */
typedef struct ctl_opts {
  bool json;    /* "json": JSON instead of a text table */
  bool numeric; /* "numeric": addresses instead of the configured names (text) */
} ctl_opts;

/* Parses one request line (without or with its trailing newline).
 * Returns false with a message in err for anything malformed. */
bool control_parse_request(const char *line, size_t len, ctl_cmd *cmd, ctl_opts *opts,
                           char *err, size_t errlen);

/* The error reply carrying msg: "error: MSG\n", or with json
 * {"error":"MSG"}\n with MSG escaped (it may quote the request's words).
 * A malloc'd string; NULL when out of memory. */
char *control_error_reply(const char *msg, bool json);

/* Produces the reply to a valid request; returns a malloc'd string. */
typedef char *(*control_handler_fn)(void *arg, ctl_cmd cmd, const ctl_opts *opts);

struct event_base;
typedef struct ntsd_control ntsd_control;

ntsd_control *control_create(struct event_base *base, const char *path, const char *group,
                             control_handler_fn fn, void *arg, char *err, size_t errlen);
void control_destroy(ntsd_control *c);

#endif
