/* report: control-socket replies. */
#include "daemon/report.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/json.h"
#include "proto/prom_text.h"

/* A growable text buffer for the tables. */
typedef struct textbuf {
  char *s;
  size_t len, cap;
  bool err;
} textbuf;

static void tb_printf(textbuf *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_printf(textbuf *t, const char *fmt, ...)
{
  if (t->err)
    return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = t->cap - t->len;
    int n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? room : 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
      t->err = true;
      return;
    }
    if (t->s && (size_t)n < room) {
      t->len += (size_t)n;
      return;
    }
    size_t nc = t->cap ? t->cap * 2 : 1024;
    while (nc < t->len + (size_t)n + 1)
      nc *= 2;
    char *ns = realloc(t->s, nc);
    if (!ns) {
      t->err = true;
      return;
    }
    t->s = ns;
    t->cap = nc;
  }
}

static char *tb_finish(textbuf *t)
{
  if (t->err || !t->s) {
    free(t->s);
    return t->err ? NULL : strdup("");
  }
  return t->s;
}

static char *json_finish(json_w *j)
{
  if (!j)
    return NULL;
  char *out = json_ok(j) ? malloc(json_len(j) + 2) : NULL;
  if (out) {
    memcpy(out, json_str(j), json_len(j));
    out[json_len(j)] = '\n';
    out[json_len(j) + 1] = '\0';
  }
  json_free(j);
  return out;
}

/* "tamper": {"bad_auth": N, "replay": N, ...}: refused NTS responses and
 * NTS-KE certificate failures by reason. */
static void tamper_json(json_w *j, const uint64_t *t)
{
  json_key(j, "tamper");
  json_obj_begin(j);
  for (int r = 0; r < NTS_TAMPER_COUNT; r++)
    json_kv_uint(j, nts_client_tamper_name((nts_client_tamper)r), t[r]);
  json_obj_end(j);
}

static void peer_json(json_w *j, const peer_view *v, ntp_sel_state st)
{
  const ntp_source_info *i = &v->info;
  char refid[32];
  json_obj_begin(j);
  json_kv_str(j, "remote", v->name);
  json_kv_str(j, "address", v->address);
  json_kv_bool(j, "nts", v->nts);
  json_kv_bool(j, "auth", i->authenticated);
  json_kv_int(j, "cookies", v->cookies);
  json_kv_str(j, "refid", i->have_sample ? ntp_refid_str(i->refid, i->stratum, refid,
                                                          sizeof(refid)) : "");
  json_kv_int(j, "stratum", i->have_sample ? i->stratum : 16);
  json_kv_int(j, "reach", i->reach);
  json_kv_int(j, "poll", i->poll);
  json_key(j, "when");
  if (i->when >= 0)
    json_number(j, i->when);
  else
    json_null(j);
  json_key(j, "offset");
  i->have_sample ? json_number(j, i->offset) : json_null(j);
  json_key(j, "delay");
  i->have_sample ? json_number(j, i->delay) : json_null(j);
  json_key(j, "jitter");
  i->have_sample ? json_number(j, i->jitter) : json_null(j);
  json_kv_num(j, "dispersion", i->dispersion);
  json_kv_str(j, "selection", ntp_sel_name(st));
  json_kv_bool(j, "pool", v->is_pool);
  json_kv_uint(j, "sent", i->sent);
  json_kv_uint(j, "received", i->received);
  json_kv_uint(j, "accepted", i->accepted);
  json_key(j, "dropped");
  json_obj_begin(j);
  for (int d = 1; d < NTP_DROP_COUNT; d++)
    json_kv_uint(j, ntp_drop_name((ntp_drop)d), i->drops[d]);
  json_obj_end(j);
  json_kv_str(j, "kod", ntp_kod_name(i->last_kod));
  json_kv_str(j, "state", v->state ? v->state : "ok");
  json_key(j, "proxy");
  v->proxy ? json_string(j, v->proxy) : json_null(j);
  json_key(j, "transport");
  v->transport ? json_string(j, v->transport) : json_null(j);
  json_kv_str(j, "path_error", v->path_error ? v->path_error : "");
  json_kv_uint(j, "proxy_errors", v->proxy_errors);
  json_kv_str(j, "proxy_error", v->proxy_error ? v->proxy_error : "");
  if (v->nts) {
    json_kv_str(j, "ke_error", v->ke_error ? v->ke_error : "");
    json_key(j, "ke_retry");
    v->ke_retry >= 0 ? json_number(j, v->ke_retry) : json_null(j);
    json_kv_uint(j, "nak_run", v->nts_naks);
    json_kv_uint(j, "naks", v->naks_total);
    json_kv_uint(j, "ke_good", v->ke_good);
    json_kv_uint(j, "ke_bad", v->ke_bad);
    json_key(j, "last_ke_age");
    v->last_ke_age >= 0 ? json_number(j, v->last_ke_age) : json_null(j);
    tamper_json(j, v->tamper);
  }
  json_obj_end(j);
}

/* ntpq -p: remote, refid, st, t, when, poll, reach, delay, offset, jitter
 * (milliseconds).  `t` is u for plain NTP and the cookies held for NTS. */
static void peer_line(textbuf *t, const peer_view *v, ntp_sel_state st, bool numeric)
{
  const ntp_source_info *i = &v->info;
  char refid[32] = "";
  char when[16] = "-";
  char kind[8];
  if (i->have_sample)
    ntp_refid_str(i->refid, i->stratum, refid, sizeof(refid));
  else
    snprintf(refid, sizeof(refid), ".INIT.");
  if (i->when >= 0)
    snprintf(when, sizeof(when), "%.0f", floor(i->when));
  if (v->nts)
    snprintf(kind, sizeof(kind), "%u", v->cookies);
  else
    snprintf(kind, sizeof(kind), "u");
  const char *remote = (numeric || v->is_pool) && v->address[0] ? v->address : v->name;
  tb_printf(t, "%c%-22.22s %-15.15s %2d %1.2s %4s %4.0f  %03o ", ntp_sel_tally(st), remote,
            refid, i->have_sample ? i->stratum : 16, kind, when, ldexp(1.0, i->poll),
            i->reach);
  if (i->have_sample)
    tb_printf(t, "%8.3f %8.3f %8.3f", i->delay * 1e3, i->offset * 1e3, i->jitter * 1e3);
  else
    tb_printf(t, "%8s %8s %8s", "-", "-", "-");
  tb_printf(t, " %s", v->state ? v->state : "ok");
  /* The way only when it is not the plain default: "tcp", "socks-tcp" ... */
  if (v->proxy || !v->transport || strcmp(v->transport, "udp") != 0)
    tb_printf(t, " %s%s", v->transport ? v->transport : "-", v->proxy ? " (proxy)" : "");
  tb_printf(t, "\n");
}

char *report_peers(const ntsd_clients *c, const report_sys *sys, double now, bool json,
                   bool numeric)
{
  size_t n = clients_count(c);
  peer_view v;
  if (json) {
    json_w *j = json_new();
    if (!j)
      return NULL;
    json_arr_begin(j);
    for (size_t i = 0; i < n; i++)
      if (clients_view(c, i, now, &v))
        peer_json(j, &v, i < sys->sel_states_n ? sys->sel_states[i] : NTP_SEL_UNUSABLE);
    json_arr_end(j);
    return json_finish(j);
  }
  textbuf t = {0};
  tb_printf(&t, "     remote              refid           st t when poll reach   delay "
                "  offset   jitter state\n");
  tb_printf(&t, "=============================================================================="
                "===============\n");
  for (size_t i = 0; i < n; i++)
    if (clients_view(c, i, now, &v))
      peer_line(&t, &v, i < sys->sel_states_n ? sys->sel_states[i] : NTP_SEL_UNUSABLE,
                numeric);
  return tb_finish(&t);
}

/* The `dropped` keys in the order of the drop outcomes (a kiss adds to the
 * key of a drop); returns how many. */
static size_t dropped_keys(const char **keys)
{
  size_t n = 0;
  for (int r = 0; r < NTP_SERVE_RESULT_COUNT; r++) {
    const char *k = ntp_serve_dropped_key((ntp_serve_result)r);
    bool seen = !k || ntp_serve_replies((ntp_serve_result)r);
    for (size_t i = 0; i < n && !seen; i++)
      seen = strcmp(keys[i], k) == 0;
    if (!seen)
      keys[n++] = k;
  }
  return n;
}

/* Plain and NTS responses (kisses and NAKs are not). */
static uint64_t responded(const ntp_serve_counters *c)
{
  return c->result[NTP_SERVE_RESPOND] + c->result[NTP_SERVE_RESPOND_NTS];
}

/* NTP over TCP's own counters, by JSON key and text label. */
typedef struct tcp_row {
  const char *key, *label;
  uint64_t v;
} tcp_row;

#define TCP_ROWS 13

static void tcp_rows(const tcp_server_stats *t, tcp_row *rows)
{
  const tcp_row all[] = {
      {"accepted", "accepted", t->accepted},
      {"open", "open", t->open},
      {"refused", "refused", t->refused},
      {"refused_prefix", "refused per prefix", t->refused_prefix},
      {"evicted", "evicted", t->evicted},
      {"requests", "requests", t->requests},
      {"responses", "responses", t->responses},
      {"unanswered", "unanswered", t->unanswered},
      {"bad_length", "bad length", t->bad_length},
      {"idle_timeouts", "idle timeouts", t->idle_timeouts},
      {"request_timeouts", "request timeouts", t->request_timeouts},
      {"request_limit", "request limit", t->request_limit},
      {"write_errors", "write errors", t->write_errors},
  };
  _Static_assert(sizeof(all) / sizeof(all[0]) == TCP_ROWS, "TCP_ROWS");
  memcpy(rows, all, sizeof(all));
}

/* "tcp": {"sockets": [...], counters}; sockets empty when not served. */
static void tcp_json(json_w *j, const ntsd_server *s, const tcp_server_stats *t)
{
  const tcp_server *tcp = s ? server_tcp(s) : NULL;
  tcp_row rows[TCP_ROWS];
  tcp_rows(t, rows);
  json_key(j, "tcp");
  json_obj_begin(j);
  json_key(j, "sockets");
  json_arr_begin(j);
  for (size_t i = 0; tcp && i < tcp_server_socket_count(tcp); i++)
    json_string(j, tcp_server_socket_name(tcp, i));
  json_arr_end(j);
  for (size_t i = 0; i < TCP_ROWS; i++)
    json_kv_uint(j, rows[i].key, rows[i].v);
  json_obj_end(j);
}

static void tcp_text(textbuf *t, const ntsd_server *s, const tcp_server_stats *st)
{
  const tcp_server *tcp = s ? server_tcp(s) : NULL;
  if (!tcp)
    return;
  tb_printf(t, "tcp sockets:      ");
  for (size_t i = 0; i < tcp_server_socket_count(tcp); i++)
    tb_printf(t, "%s%s", i ? " " : "", tcp_server_socket_name(tcp, i));
  tb_printf(t, "\n");
  tcp_row rows[TCP_ROWS];
  tcp_rows(st, rows);
  for (size_t i = 0; i < TCP_ROWS; i++)
    tb_printf(t, "  tcp %-20s%llu\n", rows[i].label, (unsigned long long)rows[i].v);
}

/* `threads N`: each packet thread's own share of the UDP requests. */
static void threads_json(json_w *j, const ntsd_server *s)
{
  json_key(j, "threads");
  json_arr_begin(j);
  for (size_t i = 0; s && i < server_thread_count(s); i++) {
    ntsd_server_stats t;
    server_get_thread_stats(s, i, &t);
    json_obj_begin(j);
    json_kv_uint(j, "received", t.received);
    json_kv_uint(j, "responded", responded(&t.serve));
    json_kv_uint(j, "respond_nts", t.serve.result[NTP_SERVE_RESPOND_NTS]);
    json_obj_end(j);
  }
  json_arr_end(j);
}

/* With `threads N` > 1: "threads:          2 (received 152 / 148)". */
static void threads_text(textbuf *t, const ntsd_server *s)
{
  size_t n = s ? server_thread_count(s) : 1;
  if (n < 2)
    return;
  tb_printf(t, "threads:          %zu (received", n);
  for (size_t i = 0; i < n; i++) {
    ntsd_server_stats one;
    server_get_thread_stats(s, i, &one);
    tb_printf(t, "%s %llu", i ? " /" : "", (unsigned long long)one.received);
  }
  tb_printf(t, ")\n");
}

static void server_json(json_w *j, const ntsd_server *s, const ntsd_server_stats *st,
                        const char **keys, size_t n_keys, uint64_t dropped_total)
{
  const ntp_serve_counters *c = &st->serve;
  json_obj_begin(j);
  json_kv_uint(j, "received", st->received);
  json_kv_uint(j, "responded", responded(c));
  json_kv_uint(j, "dropped_total", dropped_total);
  json_key(j, "dropped");
  json_obj_begin(j);
  for (size_t i = 0; i < n_keys; i++)
    json_kv_uint(j, keys[i], ntp_serve_dropped(c, keys[i]));
  json_obj_end(j);
  json_kv_uint(j, "rate_limited", ntp_serve_dropped(c, "rate_limited"));
  json_kv_uint(j, "kod_sent", c->result[NTP_SERVE_KOD_RATE]);
  json_kv_uint(j, "send_errors", st->send_errors);
  json_key(j, "sockets");
  json_arr_begin(j);
  for (size_t i = 0; s && i < server_socket_count(s); i++)
    json_string(j, server_socket_name(s, i));
  json_arr_end(j);
  threads_json(j, s);
  tcp_json(j, s, &st->tcp);
  json_obj_end(j);
}

char *report_server(const ntsd_server *s, bool json)
{
  ntsd_server_stats st = {0};
  if (s)
    server_get_stats(s, &st);
  const ntp_serve_counters *c = &st.serve;
  const char *keys[NTP_SERVE_RESULT_COUNT];
  size_t n_keys = dropped_keys(keys);
  uint64_t dropped_total = 0;
  for (size_t i = 0; i < n_keys; i++)
    dropped_total += ntp_serve_dropped(c, keys[i]);
  if (json) {
    json_w *j = json_new();
    if (!j)
      return NULL;
    server_json(j, s, &st, keys, n_keys, dropped_total);
    return json_finish(j);
  }
  textbuf t = {0};
  tb_printf(&t, "sockets:          ");
  for (size_t i = 0; s && i < server_socket_count(s); i++)
    tb_printf(&t, "%s%s", i ? " " : "", server_socket_name(s, i));
  tb_printf(&t, "\nreceived:         %llu\n", (unsigned long long)st.received);
  tb_printf(&t, "responded:        %llu\n", (unsigned long long)responded(c));
  tb_printf(&t, "dropped:          %llu\n", (unsigned long long)dropped_total);
  for (size_t i = 0; i < n_keys; i++)
    tb_printf(&t, "  %-18s%llu\n", keys[i], (unsigned long long)ntp_serve_dropped(c, keys[i]));
  tb_printf(&t, "kod sent:         %llu\n", (unsigned long long)c->result[NTP_SERVE_KOD_RATE]);
  tb_printf(&t, "send errors:      %llu\n", (unsigned long long)st.send_errors);
  threads_text(&t, s);
  tcp_text(&t, s, &st.tcp);
  return tb_finish(&t);
}

char *report_system(const report_sys *sys, const clockctl *clk, bool json)
{
  const char *clock = clockctl_name(clk);
  double verr = 0;
  bool virt = clockctl_error(clk, &verr);
  const ntp_sysinfo *si = &sys->info;
  char refid[32];
  ntp_refid_str(si->refid, si->stratum, refid, sizeof(refid));
  if (json) {
    json_w *j = json_new();
    if (!j)
      return NULL;
    json_obj_begin(j);
    json_kv_bool(j, "synced", sys->synced);
    json_kv_num(j, "offset", sys->offset);
    json_kv_num(j, "frequency", sys->frequency);
    json_kv_int(j, "stratum", si->stratum);
    json_kv_str(j, "refid", refid);
    json_kv_int(j, "leap", si->leap);
    json_kv_num(j, "root_delay", si->root_delay);
    json_kv_num(j, "root_dispersion", si->root_disp);
    json_kv_str(j, "system_peer", sys->system_peer);
    json_kv_int(j, "precision", si->precision);
    json_kv_str(j, "clock", clock);
    json_kv_int(j, "tx_timestamps", (int64_t)sys->tx_timestamps);
    json_kv_int(j, "discipline_updates", (int64_t)sys->disc_updates);
    json_kv_int(j, "discipline_steps", (int64_t)sys->disc_steps);
    json_kv_int(j, "selections", (int64_t)sys->core_updates);
    json_kv_int(j, "stats_lines", (int64_t)sys->stats_lines);
    json_kv_int(j, "stats_errors", (int64_t)sys->stats_errors);
    if (virt)
      json_kv_num(j, "virtual_clock_error", verr);
    json_obj_end(j);
    return json_finish(j);
  }
  textbuf t = {0};
  tb_printf(&t, "synchronised:     %s\n", sys->synced ? "yes" : "no");
  tb_printf(&t, "system peer:      %s\n", sys->system_peer[0] ? sys->system_peer : "-");
  tb_printf(&t, "stratum:          %d\n", si->stratum);
  tb_printf(&t, "refid:            %s\n", refid);
  tb_printf(&t, "leap:             %d\n", si->leap);
  tb_printf(&t, "offset:           %+.9f s\n", sys->offset);
  tb_printf(&t, "root delay:       %.6f s\n", si->root_delay);
  tb_printf(&t, "root dispersion:  %.6f s\n", si->root_disp);
  tb_printf(&t, "precision:        2^%d s\n", si->precision);
  tb_printf(&t, "frequency:        %+.3f ppm\n", sys->frequency);
  tb_printf(&t, "clock control:    %s\n",
            strcmp(clock, "none") ? clock : "off (estimates only)");
  tb_printf(&t, "kernel tx stamps: %llu requests\n", (unsigned long long)sys->tx_timestamps);
  tb_printf(&t, "statistics:       %llu records, %llu lost\n",
            (unsigned long long)sys->stats_lines, (unsigned long long)sys->stats_errors);
  if (virt)
    tb_printf(&t, "virtual clock:    %+.9f s from the system clock\n", verr);
  return tb_finish(&t);
}

/* The tamper evidence of every NTS source, added up by reason. */
static void tamper_totals(const ntsd_clients *c, uint64_t *total)
{
  memset(total, 0, NTS_TAMPER_COUNT * sizeof(*total));
  peer_view v;
  for (size_t i = 0; c && i < clients_count(c); i++)
    if (clients_view(c, i, 0, &v) && v.nts)
      for (int r = 0; r < NTS_TAMPER_COUNT; r++)
        total[r] += v.tamper[r];
}

/* "sources": [{"remote", "address", "tamper": {...}}] for the NTS sources. */
static void tamper_sources_json(json_w *j, const ntsd_clients *c)
{
  peer_view v;
  json_key(j, "sources");
  json_arr_begin(j);
  for (size_t i = 0; c && i < clients_count(c); i++) {
    if (!clients_view(c, i, 0, &v) || !v.nts)
      continue;
    json_obj_begin(j);
    json_kv_str(j, "remote", v.name);
    json_kv_str(j, "address", v.address);
    json_kv_str(j, "state", v.state);
    tamper_json(j, v.tamper);
    json_obj_end(j);
  }
  json_arr_end(j);
}

/* The NTS counters: the names of NTPsec's `ntpq -c nts`, as JSON keys. */
/* One NTS counter: its JSON key, its label in the table, its value. */
typedef struct nts_row {
  const char *key, *label;
  uint64_t v;
} nts_row;

#define NTS_ROWS 25

/* The counters of our NTS-KE client and server and NTS-NTP client and
 * server; returns how many rows it wrote (NTS_ROWS). */
static size_t nts_rows(const ntsd_clients *c, const ke_server_stats *ke,
                       const ntsd_server *srv, nts_row *rows)
{
  ntsd_client_stats cs = {0};
  ke_server_stats ks = {0};
  ntsd_server_stats ss = {0};
  if (c)
    clients_get_stats(c, &cs);
  if (ke)
    ks = *ke;
  if (srv)
    server_get_stats(srv, &ss);
  const ntp_serve_counters *sv = &ss.serve;
  const nts_row all[] = {
      {"ke_probes_good", "NTS KE probes good", cs.nts.ke_probes_good},
      {"ke_probes_bad", "NTS KE probes bad", cs.nts.ke_probes_bad},
      {"ke_serves_good", "NTS KE serves good", ks.serves_good},
      {"ke_serves_bad", "NTS KE serves bad", ks.serves_bad},
      {"ke_refused", "NTS KE refused before TLS", ks.refused},
      {"ke_tls_failures", "NTS KE TLS failures", ks.tls_failures},
      {"ke_no_alpn", "NTS KE without ALPN", ks.no_alpn},
      {"ke_bad_requests", "NTS KE bad requests", ks.bad_requests},
      {"ke_timeouts", "NTS KE timeouts", ks.timeouts},
      {"ke_hello_timeouts", "NTS KE ClientHello timeouts", ks.hello_timeouts},
      {"ke_evicted", "NTS KE evicted", ks.evicted},
      {"ke_refused_prefix", "NTS KE refused per prefix", ks.refused_prefix},
      {"cookies_made", "NTS make cookies", ks.cookies_made + sv->cookies_made},
      {"cookies_decoded", "NTS decode cookies", sv->cookies[NTS_COOKIE_OK_CURRENT]},
      {"cookies_decoded_old", "NTS decode cookies old", sv->cookies[NTS_COOKIE_OK_OLD]},
      {"cookies_too_old", "NTS decode cookies too old", sv->cookies[NTS_COOKIE_UNKNOWN_KEY]},
      {"cookie_decode_errors", "NTS decode cookies error",
       sv->cookies[NTS_COOKIE_BAD] + sv->cookies[NTS_COOKIE_MALFORMED]},
      {"client_sends", "NTS client sends", cs.nts.nts_sends},
      {"client_recvs_good", "NTS client recvs good", cs.nts.nts_recvs_good},
      {"client_recvs_bad", "NTS client recvs w error", cs.nts.nts_recvs_bad},
      {"client_naks", "NTS client NAKs received", cs.nts.nts_naks},
      {"server_recvs_good", "NTS server recvs good", sv->result[NTP_SERVE_RESPOND_NTS]},
      {"server_recvs_bad", "NTS server recvs w error",
       sv->result[NTP_SERVE_DROP_NTS_MALFORMED] + sv->result[NTP_SERVE_DROP_NTS_AUTH]},
      {"server_sends", "NTS server sends", sv->result[NTP_SERVE_RESPOND_NTS]},
      {"server_naks", "NTS server NAKs sent", sv->result[NTP_SERVE_NTS_NAK]},
  };
  _Static_assert(sizeof(all) / sizeof(all[0]) == NTS_ROWS, "NTS_ROWS");
  memcpy(rows, all, sizeof(all));
  return NTS_ROWS;
}

char *report_nts(const ntsd_clients *c, const ke_server_stats *ke, const char *ke_addr,
                 unsigned ke_procs, const ntsd_server *srv, bool json)
{
  nts_row rows[NTS_ROWS];
  size_t n = nts_rows(c, ke, srv, rows);
  uint64_t total[NTS_TAMPER_COUNT];
  tamper_totals(c, total);
  if (json) {
    json_w *j = json_new();
    if (!j)
      return NULL;
    json_obj_begin(j);
    json_kv_bool(j, "ke_server", ke != NULL);
    json_kv_uint(j, "ke_processes", ke ? ke_procs : 0);
    for (size_t i = 0; i < n; i++)
      json_kv_uint(j, rows[i].key, rows[i].v);
    tamper_json(j, total);
    tamper_sources_json(j, c);
    json_obj_end(j);
    return json_finish(j);
  }
  textbuf t = {0};
  tb_printf(&t, "%-32s%s\n", "NTS-KE server:", ke && ke_addr ? ke_addr : "off");
  if (ke && ke_procs > 1)
    tb_printf(&t, "%-32s%u\n", "NTS-KE processes:", ke_procs);
  for (size_t i = 0; i < n; i++)
    tb_printf(&t, "%-32s%llu\n", rows[i].label, (unsigned long long)rows[i].v);
  for (int r = 0; r < NTS_TAMPER_COUNT; r++)
    tb_printf(&t, "NTS client refused %-13s%llu\n",
              nts_client_tamper_name((nts_client_tamper)r), (unsigned long long)total[r]);
  return tb_finish(&t);
}

/* ---- metrics: the same numbers, as Prometheus reads them ----------------- */

/* The labels naming a source. */
#define SRC_LABELS(v) {"source", (v)->name}, {"address", (v)->address}

typedef void (*peer_metric_fn)(prom_w *w, const peer_view *v, const prom_label *l);

/* One family over every source the function writes samples for. */
static void per_source(prom_w *w, const report_metrics_in *in, const char *name,
                       prom_type type, const char *help, peer_metric_fn fn)
{
  prom_family(w, name, type, help);
  peer_view v;
  for (size_t i = 0; in->clients && i < clients_count(in->clients); i++) {
    if (!clients_view(in->clients, i, in->mono_now, &v))
      continue;
    const prom_label l[] = {SRC_LABELS(&v)};
    fn(w, &v, l);
  }
}

static void m_offset(prom_w *w, const peer_view *v, const prom_label *l)
{
  if (v->info.have_sample)
    prom_sample(w, l, 2, v->info.offset);
}
static void m_delay(prom_w *w, const peer_view *v, const prom_label *l)
{
  if (v->info.have_sample)
    prom_sample(w, l, 2, v->info.delay);
}
static void m_jitter(prom_w *w, const peer_view *v, const prom_label *l)
{
  if (v->info.have_sample)
    prom_sample(w, l, 2, v->info.jitter);
}
static void m_reach(prom_w *w, const peer_view *v, const prom_label *l)
{
  prom_sample(w, l, 2, v->info.reach);
}
static void m_stratum(prom_w *w, const peer_view *v, const prom_label *l)
{
  prom_sample(w, l, 2, v->info.have_sample ? v->info.stratum : 16);
}
static void m_poll(prom_w *w, const peer_view *v, const prom_label *l)
{
  prom_sample(w, l, 2, ldexp(1.0, v->info.poll));
}
static void m_packets(prom_w *w, const peer_view *v, const prom_label *l)
{
  const char *dir[] = {"sent", "received", "accepted"};
  const uint64_t n[] = {v->info.sent, v->info.received, v->info.accepted};
  for (size_t k = 0; k < 3; k++) {
    const prom_label ll[] = {l[0], l[1], {"kind", dir[k]}};
    prom_sample_u64(w, ll, 3, n[k]);
  }
}
static void m_info(prom_w *w, const peer_view *v, const prom_label *l)
{
  const prom_label ll[] = {l[0], l[1], {"nts", v->nts ? "1" : "0"},
                           {"state", v->state ? v->state : "ok"},
                           {"transport", v->transport ? v->transport : ""}};
  prom_sample(w, ll, 5, 1);
}
static void m_cookies(prom_w *w, const peer_view *v, const prom_label *l)
{
  if (v->nts)
    prom_sample(w, l, 2, v->cookies);
}
static void m_naks(prom_w *w, const peer_view *v, const prom_label *l)
{
  if (v->nts)
    prom_sample_u64(w, l, 2, v->naks_total);
}
static void m_auth_failures(prom_w *w, const peer_view *v, const prom_label *l)
{
  for (int r = 0; v->nts && r < NTS_TAMPER_COUNT; r++) {
    const prom_label ll[] = {l[0], l[1], {"reason", nts_client_tamper_name((nts_client_tamper)r)}};
    prom_sample_u64(w, ll, 3, v->tamper[r]);
  }
}
static void m_ke(prom_w *w, const peer_view *v, const prom_label *l)
{
  if (!v->nts)
    return;
  const prom_label ok[] = {l[0], l[1], {"outcome", "success"}};
  const prom_label bad[] = {l[0], l[1], {"outcome", "failure"}};
  prom_sample_u64(w, ok, 3, v->ke_good);
  prom_sample_u64(w, bad, 3, v->ke_bad);
}

static void sources_metrics(prom_w *w, const report_metrics_in *in)
{
  static const struct {
    const char *name;
    prom_type type;
    const char *help;
    peer_metric_fn fn;
  } fams[] = {
      {"ntsd_source_info", PROM_GAUGE, "Each source (always 1), with its kind and state.",
       m_info},
      {"ntsd_source_offset_seconds", PROM_GAUGE,
       "Offset of the source's selected sample (positive: the source is ahead).", m_offset},
      {"ntsd_source_delay_seconds", PROM_GAUGE, "Round-trip delay of the selected sample.",
       m_delay},
      {"ntsd_source_jitter_seconds", PROM_GAUGE, "Jitter of the source's samples.", m_jitter},
      {"ntsd_source_reach", PROM_GAUGE, "Reachability register (8 bits, last poll lowest).",
       m_reach},
      {"ntsd_source_stratum", PROM_GAUGE, "The source's stratum (16: no sample yet).",
       m_stratum},
      {"ntsd_source_poll_interval_seconds", PROM_GAUGE, "Current poll interval.", m_poll},
      {"ntsd_source_packets", PROM_COUNTER, "NTP packets sent to, received from and accepted "
       "from the source.", m_packets},
      {"ntsd_source_cookies", PROM_GAUGE, "NTS cookies held.", m_cookies},
      {"ntsd_source_naks", PROM_COUNTER, "NTS exchanges that ended with only a NAK.", m_naks},
      {"ntsd_source_auth_failures", PROM_COUNTER,
       "NTS responses refused and NTS-KE certificates not verified, by reason.",
       m_auth_failures},
      {"ntsd_source_ke", PROM_COUNTER, "NTS-KE exchanges with the source, by outcome.", m_ke},
  };
  for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++)
    per_source(w, in, fams[f].name, fams[f].type, fams[f].help, fams[f].fn);
  prom_family(w, "ntsd_source_last_ke_timestamp_seconds", PROM_GAUGE,
              "When the last NTS-KE with the source ended, Unix time.");
  peer_view v;
  for (size_t i = 0; in->clients && i < clients_count(in->clients); i++) {
    if (clients_view(in->clients, i, in->mono_now, &v) && v.nts && v.last_ke_age >= 0) {
      const prom_label l[] = {SRC_LABELS(&v)};
      prom_sample(w, l, 2, floor(in->wall_now - v.last_ke_age));
    }
  }
}

static void gauge(prom_w *w, const char *name, const char *help, double v)
{
  prom_family(w, name, PROM_GAUGE, help);
  prom_sample(w, NULL, 0, v);
}

static void counter(prom_w *w, const char *name, const char *help, uint64_t v)
{
  prom_family(w, name, PROM_COUNTER, help);
  prom_sample_u64(w, NULL, 0, v);
}

static void system_metrics(prom_w *w, const report_sys *s)
{
  gauge(w, "ntsd_system_offset_seconds",
        "The discipline's estimate of the clock's offset (positive: the clock is behind).",
        s->offset);
  gauge(w, "ntsd_system_frequency_ratio",
        "The clock's frequency correction as a ratio (1e-06 is 1 ppm).", s->frequency * 1e-6);
  gauge(w, "ntsd_system_synchronised", "1 when the clock is synchronised.", s->synced);
  gauge(w, "ntsd_system_stratum", "The stratum served to clients.", s->info.stratum);
  gauge(w, "ntsd_system_leap",
        "Leap indicator served (0 none, 1 insert, 2 delete, 3 unsynchronised).", s->info.leap);
  gauge(w, "ntsd_system_root_delay_seconds", "Root delay served.", s->info.root_delay);
  gauge(w, "ntsd_system_root_dispersion_seconds", "Root dispersion served.", s->info.root_disp);
  counter(w, "ntsd_system_discipline_updates", "Samples the discipline has taken.",
          s->disc_updates);
  counter(w, "ntsd_system_clock_steps", "Clock steps commanded.", s->disc_steps);
}

/* The mode a server outcome belongs to: known for responses and NTS
 * checks; the checks before NTS is looked at apply to both ("any"). */
static const char *serve_mode(ntp_serve_result r)
{
  switch (r) {
  case NTP_SERVE_RESPOND: return "plain";
  case NTP_SERVE_RESPOND_NTS:
  case NTP_SERVE_NTS_NAK:
  case NTP_SERVE_DROP_NTS_MALFORMED:
  case NTP_SERVE_DROP_NTS_AUTH: return "nts";
  default: return "any";
  }
}

static void server_metrics(prom_w *w, const ntsd_server *s)
{
  ntsd_server_stats st = {0};
  if (s)
    server_get_stats(s, &st);
  const ntp_serve_counters *c = &st.serve;
  counter(w, "ntsd_server_received", "NTP packets received by the server.", st.received);
  prom_family(w, "ntsd_server_requests", PROM_COUNTER, "NTP requests by outcome and mode.");
  for (int r = 0; r < NTP_SERVE_RESULT_COUNT; r++) {
    const prom_label l[] = {{"mode", serve_mode((ntp_serve_result)r)},
                            {"outcome", ntp_serve_result_name((ntp_serve_result)r)}};
    prom_sample_u64(w, l, 2, c->result[r]);
  }
  prom_family(w, "ntsd_server_responses", PROM_COUNTER, "NTP responses sent, by kind and mode.");
  static const struct {
    const char *mode, *kind;
    ntp_serve_result r;
  } resp[] = {{"plain", "time", NTP_SERVE_RESPOND},
              {"nts", "time", NTP_SERVE_RESPOND_NTS},
              {"nts", "nak", NTP_SERVE_NTS_NAK},
              {"any", "kod", NTP_SERVE_KOD_RATE}};
  for (size_t i = 0; i < sizeof(resp) / sizeof(resp[0]); i++) {
    const prom_label l[] = {{"mode", resp[i].mode}, {"kind", resp[i].kind}};
    prom_sample_u64(w, l, 2, c->result[resp[i].r]);
  }
  counter(w, "ntsd_server_kod_sent", "RATE kisses of death sent.", c->result[NTP_SERVE_KOD_RATE]);
  counter(w, "ntsd_server_rate_limited", "Requests rate limited (kissed or dropped).",
          ntp_serve_dropped(c, "rate_limited"));
  counter(w, "ntsd_server_send_errors", "Responses the socket refused.", st.send_errors);
  prom_family(w, "ntsd_server_cookies", PROM_COUNTER, "NTS cookies opened by the NTP server, "
              "by result.");
  for (int r = 0; r < NTS_COOKIE_RESULT_COUNT; r++) {
    const prom_label l[] = {{"result", nts_cookie_result_name((nts_cookie_result)r)}};
    prom_sample_u64(w, l, 1, c->cookies[r]);
  }
  tcp_row rows[TCP_ROWS];
  tcp_rows(&st.tcp, rows);
  gauge(w, "ntsd_server_tcp_connections", "NTP over TCP connections open.", (double)st.tcp.open);
  prom_family(w, "ntsd_server_tcp_events", PROM_COUNTER, "NTP over TCP events, by kind.");
  for (size_t i = 0; i < TCP_ROWS; i++) {
    if (strcmp(rows[i].key, "open") == 0)
      continue;
    const prom_label l[] = {{"event", rows[i].key}};
    prom_sample_u64(w, l, 1, rows[i].v);
  }
}

static void ke_metrics(prom_w *w, const ke_server_stats *k)
{
  prom_family(w, "ntsd_ke_serves", PROM_COUNTER,
              "NTS-KE connections past the accept, by outcome.");
  const prom_label good[] = {{"outcome", "success"}}, bad[] = {{"outcome", "failure"}};
  prom_sample_u64(w, good, 1, k->serves_good);
  prom_sample_u64(w, bad, 1, k->serves_bad);
  static const char *const why[] = {"tls", "no_alpn", "bad_request", "timeout", "hello_timeout",
                                    "evicted"};
  const uint64_t n[] = {k->tls_failures, k->no_alpn, k->bad_requests, k->timeouts,
                        k->hello_timeouts, k->evicted};
  prom_family(w, "ntsd_ke_failures", PROM_COUNTER, "Failed NTS-KE connections, by reason.");
  for (size_t i = 0; i < sizeof(n) / sizeof(n[0]); i++) {
    const prom_label l[] = {{"reason", why[i]}};
    prom_sample_u64(w, l, 1, n[i]);
  }
  counter(w, "ntsd_ke_timeouts", "NTS-KE connections that ran out of time.",
          k->timeouts + k->hello_timeouts);
  prom_family(w, "ntsd_ke_refused", PROM_COUNTER,
              "NTS-KE connections refused before TLS, by reason.");
  const prom_label pfx[] = {{"reason", "prefix_cap"}}, oth[] = {{"reason", "other"}};
  prom_sample_u64(w, pfx, 1, k->refused_prefix);
  prom_sample_u64(w, oth, 1, k->refused - k->refused_prefix);
  counter(w, "ntsd_ke_cookies_made", "Cookies issued in NTS-KE responses.", k->cookies_made);
  static const double bounds[KE_HS_BUCKETS - 1] = KE_HS_BOUNDS;
  uint64_t cum[KE_HS_BUCKETS - 1], total = 0;
  for (size_t i = 0; i < KE_HS_BUCKETS; i++) {
    total += k->hs_bucket[i];
    if (i < KE_HS_BUCKETS - 1)
      cum[i] = total;
  }
  prom_family(w, "ntsd_ke_handshake_seconds", PROM_HISTOGRAM,
              "Time of completed NTS-KEs, from the accept to the response.");
  prom_histogram(w, NULL, 0, bounds, cum, KE_HS_BUCKETS - 1, total, k->hs_sum_us * 1e-6);
}

static void render_metrics(prom_w *w, const report_metrics_in *in)
{
  const prom_label ver[] = {{"version", NTSD_VERSION}};
  prom_family(w, "ntsd_build_info", PROM_GAUGE, "The running ntsd's version (always 1).");
  prom_sample(w, ver, 1, 1);
  system_metrics(w, in->sys);
  sources_metrics(w, in);
  if (in->server)
    server_metrics(w, in->server);
  if (in->ke) {
    ke_metrics(w, in->ke);
    gauge(w, "ntsd_ke_processes", "NTS-KE processes configured (ntsprocesses).",
          in->ke_procs);
    gauge(w, "ntsd_ke_processes_serving", "NTS-KE processes serving now.", in->ke_serving);
  }
  if (in->have_keys) {
    gauge(w, "ntsd_cookie_key_age_seconds", "Age of the current NTS cookie key.", in->key_age);
    counter(w, "ntsd_cookie_key_rotations", "NTS cookie key rotations since the start.",
            in->key_rotations);
  }
  if (in->have_cert) {
    gauge(w, "ntsd_certificate_expiry_seconds",
          "Seconds until the NTS-KE certificate's notAfter (negative: expired).",
          in->cert_not_after - floor(in->wall_now));
    gauge(w, "ntsd_certificate_not_after_timestamp_seconds",
          "The NTS-KE certificate's notAfter, Unix time.", in->cert_not_after);
  }
  prom_end(w);
}

#define METRICS_MAX_LEN (16u << 20)

char *report_metrics(const report_metrics_in *in, bool openmetrics, size_t *len)
{
  for (size_t cap = 64u << 10; cap <= METRICS_MAX_LEN; cap *= 2) {
    char *buf = malloc(cap);
    if (!buf)
      return NULL;
    prom_w w;
    prom_init(&w, buf, cap - 1, openmetrics);
    render_metrics(&w, in);
    if (!w.overflow) {
      buf[w.len] = '\0';
      *len = w.len;
      return buf;
    }
    free(buf);
  }
  return NULL;
}
