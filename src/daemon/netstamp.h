/* netstamp: what the kernel says about a datagram in its control messages,
 * read in one place for the client and the server: the receive timestamp
 * (SO_TIMESTAMPNS), the software transmit timestamp from the error queue
 * (SO_TIMESTAMPING), and the local address a datagram reached
 * (IP_PKTINFO, IPV6_PKTINFO).  The stamps are the system clock's: the
 * daemon's clock backend turns them into its own time (clockctl_local). */
#ifndef NTSD_DAEMON_NETSTAMP_H
#define NTSD_DAEMON_NETSTAMP_H

#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <time.h>

/* Room for every control message parsed here, for msg_control. */
#define NETSTAMP_CMSG_SPACE 256

typedef struct netstamp {
  bool have_rx;
  struct timespec rx;   /* SCM_TIMESTAMPNS */
  bool have_tx;
  struct timespec tx;   /* SCM_TIMESTAMPING, the software stamp */
  int have_dst;         /* 0, 4 (dst4) or 6 (dst6) */
  struct in_pktinfo dst4;
  struct in6_pktinfo dst6;
} netstamp;

/* Reads mh's control messages into *out; anything short, truncated or
 * unknown is ignored (a missing stamp is the caller's to replace). */
void netstamp_parse(const struct msghdr *mh, netstamp *out);

/* Best-effort socket options: receive timestamps, and with tx also
 * software transmit timestamps on the error queue.  Nothing on failure:
 * the caller falls back to reading the clock. */
void netstamp_enable(int fd, bool tx);

#endif
