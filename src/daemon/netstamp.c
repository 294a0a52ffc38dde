/* netstamp: kernel timestamps and packet info from control messages. */
#include "daemon/netstamp.h"

#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <string.h>

/* The payload of c if it holds at least size bytes inside the buffer;
 * NULL otherwise (the kernel never sends a short one, but nothing here
 * trusts that). */
static const void *payload(const struct msghdr *mh, const struct cmsghdr *c, size_t size)
{
  const unsigned char *end = (const unsigned char *)mh->msg_control + mh->msg_controllen;
  const unsigned char *data = CMSG_DATA(c);
  if (c->cmsg_len < CMSG_LEN(size) || data > end || (size_t)(end - data) < size ||
      (size_t)(end - (const unsigned char *)c) < c->cmsg_len)
    return NULL;
  return data;
}

static void parse_one(const struct msghdr *mh, const struct cmsghdr *c, netstamp *out)
{
  const void *p;
  if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
    if ((p = payload(mh, c, sizeof(out->rx)))) {
      memcpy(&out->rx, p, sizeof(out->rx));
      out->have_rx = true;
    }
  } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPING) {
    struct scm_timestamping ts;
    if ((p = payload(mh, c, sizeof(ts)))) {
      memcpy(&ts, p, sizeof(ts));
      /* ts[0] is the software stamp; zero when only a hardware one came */
      if (ts.ts[0].tv_sec != 0 || ts.ts[0].tv_nsec != 0) {
        out->tx = ts.ts[0];
        out->have_tx = true;
      }
    }
  } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
    if ((p = payload(mh, c, sizeof(out->dst4)))) {
      memcpy(&out->dst4, p, sizeof(out->dst4));
      out->have_dst = 4;
    }
  } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
    if ((p = payload(mh, c, sizeof(out->dst6)))) {
      memcpy(&out->dst6, p, sizeof(out->dst6));
      out->have_dst = 6;
    }
  }
}

void netstamp_parse(const struct msghdr *mh, netstamp *out)
{
  memset(out, 0, sizeof(*out));
  struct msghdr m = *mh; /* CMSG_NXTHDR wants a mutable header */
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
    parse_one(&m, c, out);
}

void netstamp_enable(int fd, bool tx)
{
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
  if (!tx)
    return;
  /* Software transmit stamps on the error queue; the receive stamp still
   * comes from SO_TIMESTAMPNS. */
  int flags = SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE |
              SOF_TIMESTAMPING_OPT_TSONLY;
  setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof(flags));
}
