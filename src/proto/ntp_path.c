/* ntp_path: the transport decision. */
#include "proto/ntp_path.h"

static ntp_path_out no_proxied_way(const ntp_path_in *in, const char *why)
{
  if (in->directfallback)
    return (ntp_path_out){.path = NTP_PATH_UDP, .fallback = true, .why = why};
  return (ntp_path_out){.path = NTP_PATH_NONE, .why = why};
}

ntp_path_out ntp_path_choose(const ntp_path_in *in)
{
  if (!in->proxy)
    return (ntp_path_out){.path = in->want == NTP_PATH_WANT_TCP ? NTP_PATH_TCP : NTP_PATH_UDP};
  /* A forced `tcp` goes to the advertised port or the NTP port: the server
   * may serve TCP without saying so (an older KE server, a relay). */
  if (in->want == NTP_PATH_WANT_TCP ||
      (in->want == NTP_PATH_WANT_AUTO && in->tcp_offered))
    return (ntp_path_out){.path = NTP_PATH_SOCKS_TCP};
  if (!in->udp_refused)
    return (ntp_path_out){.path = NTP_PATH_SOCKS_UDP};
  if (in->want == NTP_PATH_WANT_UDP)
    return no_proxied_way(in, "proxy refuses UDP ASSOCIATE");
  return no_proxied_way(in, "proxy refuses UDP ASSOCIATE and the server does not offer "
                            "NTP over TCP");
}

const char *ntp_path_name(ntp_path p)
{
  static const char *const names[NTP_PATH_COUNT] = {"none", "udp", "tcp", "socks-udp",
                                                    "socks-tcp"};
  return p >= 0 && p < NTP_PATH_COUNT ? names[p] : "none";
}
