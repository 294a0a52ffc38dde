/* ntsd_replay: feeds the samples an `ntsd -x -d -d` log recorded through
 * the discipline again, offline.
 *
 * `ntsd -d -d` logs every sample the discipline gets (source, age,
 * offset, delay, error) and the estimate that followed.  Replayed here
 * through the discipline as built, they show what another version of the
 * code would have estimated from exactly the same real samples; the
 * replay of the version that wrote the log reproduces the logged
 * estimates, which this checks.  For benchmark runs (`scripts/bench --keep
 * --ntsd-debug`), where the client shares the server's clock and the true
 * offset is 0, the RMS of the estimate, taken every second from the
 * client's start, is its error.
 *
 *   ntsd_replay [-p POLL] [-w SECONDS] [-P PRECISION] < client-ntsd.log
 *
 * Not a test: docs/discipline.md ("The envelope") quotes its figures. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/discipline.h"

/* Seconds of the day from a log line's ISO 8601 UTC stamp, or -1. */
static double stamp(const char *line)
{
  int y, mo, d, h, mi;
  double s;
  if (sscanf(line, "%d-%d-%dT%d:%d:%lfZ", &y, &mo, &d, &h, &mi, &s) != 6)
    return -1;
  return h * 3600.0 + mi * 60.0 + s;
}

int main(int argc, char **argv)
{
  int poll = 4, opt;
  double window = 600, precision = 1e-7;
  while ((opt = getopt(argc, argv, "p:w:P:h")) != -1) {
    switch (opt) {
    case 'p': poll = atoi(optarg); break;
    case 'w': window = atof(optarg); break;
    case 'P': precision = atof(optarg); break;
    default:
      fprintf(stderr, "usage: ntsd_replay [-p POLL] [-w SECONDS] [-P PRECISION] < ntsd.log\n");
      return opt == 'h' ? 0 : 2;
    }
  }
  ntp_disc_cfg c;
  ntp_disc_default_cfg(&c);
  c.estimate_only = true;
  c.precision = precision;
  ntp_disc *d = ntp_disc_create(&c, 0);
  if (!d)
    return 1;

  char line[1024];
  double start = -1, next = 0, sq = 0, worst_diff = 0;
  long evals = 0, fed = 0;
  while (fgets(line, sizeof(line), stdin)) {
    double t = stamp(line);
    if (t < 0)
      continue;
    if (start < 0)
      start = t; /* the first line: the daemon starting */
    if (t < start)
      t += 86400; /* past midnight */
    double now = t - start;
    const char *p = strstr(line, "discipline: source ");
    int src;
    double ago, off, delay, err;
    if (!p || sscanf(p, "discipline: source %d sample %lf s ago: offset %lf delay %lf error %lf",
                     &src, &ago, &off, &delay, &err) != 5)
      continue;
    if (now > window)
      break;
    for (; next < now; next += 1.0) {
      if (fed == 0)
        continue; /* no estimate yet */
      double e = ntp_disc_offset_now(d, next);
      sq += e * e;
      evals++;
    }
    ntp_disc_sample s = {.taken = now - ago, .offset = off, .error = err, .delay = delay,
                         .path = src};
    ntp_disc_feed(d, now, &s, poll);
    fed++;
    const char *q = strstr(p, "offset now ");
    if (q)
      worst_diff = fmax(worst_diff, fabs(ntp_disc_offset_now(d, now) - atof(q + 11)));
  }
  for (; fed > 0 && next < window; next += 1.0) {
    double e = ntp_disc_offset_now(d, next);
    sq += e * e;
    evals++;
  }
  ntp_disc_destroy(d);
  if (evals == 0) {
    fprintf(stderr, "ntsd_replay: no discipline samples in the log (ntsd -d -d)\n");
    return 1;
  }
  printf("%ld samples, RMS of the estimate %.1f us over %ld s; largest difference from the "
         "logged estimate %.3f us\n",
         fed, 1e6 * sqrt(sq / (double)evals), evals, 1e6 * worst_diff);
  return 0;
}
