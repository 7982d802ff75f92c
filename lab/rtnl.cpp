#include "lab/rtnl.hpp"

#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sys/socket.h>

#include <string>

#include "core/str.hpp"

namespace knit::lab::rtnl {

namespace {
uint8_t af(Family f) {
  return f == Family::kV4 ? AF_INET : AF_INET6;
}
}  // namespace

void link_up(nl::Request& req, int ifindex, std::string_view name) {
  req.begin(RTM_NEWLINK, 0, str("set link ", name, " up"));
  auto* ifi = req.extra<ifinfomsg>();
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = ifindex;
  ifi->ifi_flags = IFF_UP;
  ifi->ifi_change = IFF_UP;
}

// RTM_NEWLINK
//   ifinfomsg (index)
//   IFLA_IFNAME name
//   IFLA_LINKINFO
//     IFLA_INFO_KIND "veth"
//     IFLA_INFO_DATA
//       VETH_INFO_PEER
//         ifinfomsg (raw, peer index)
//         IFLA_IFNAME peer
void new_veth_pair(nl::Request& req, std::string_view name, int index, std::string_view peer,
                   int peer_index) {
  std::string n(name), p(peer);
  auto* nlh =
      req.begin(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, str("create veth ", n, " with peer ", p));
  auto* ifi = req.extra<ifinfomsg>();
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = index;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, n.c_str());
  auto* linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
  auto* data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
  auto* peer_nest = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
  auto* peer_ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  peer_ifi->ifi_family = AF_UNSPEC;
  peer_ifi->ifi_index = peer_index;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, p.c_str());
  mnl_attr_nest_end(nlh, peer_nest);
  mnl_attr_nest_end(nlh, data);
  mnl_attr_nest_end(nlh, linkinfo);
}

void new_addr(nl::Request& req, int ifindex, std::string_view ifname, const Prefix& addr) {
  auto* nlh = req.begin(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL,
                        str("add address ", addr.to_string(), " to ", ifname));
  auto* ifa = req.extra<ifaddrmsg>();
  ifa->ifa_family = af(addr.family());
  ifa->ifa_prefixlen = addr.len();
  ifa->ifa_index = static_cast<uint32_t>(ifindex);
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  uint32_t flags = IFA_F_PERMANENT | IFA_F_NODAD;
  ifa->ifa_flags = static_cast<uint8_t>(flags);
  if (addr.family() == Family::kV4) mnl_attr_put(nlh, IFA_LOCAL, 4, addr.addr().data());
  mnl_attr_put(nlh, IFA_ADDRESS, addr.addr().size(), addr.addr().data());
  mnl_attr_put_u32(nlh, IFA_FLAGS, flags);
}

void new_default_route(nl::Request& req, Family family, int oif, std::string_view oif_name) {
  auto* nlh =
      req.begin(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL,
                str("add default route (IPv", family == Family::kV4 ? 4 : 6, ") dev ", oif_name));
  auto* rtm = req.extra<rtmsg>();
  rtm->rtm_family = af(family);
  rtm->rtm_table = RT_TABLE_MAIN;
  rtm->rtm_protocol = RTPROT_STATIC;
  rtm->rtm_type = RTN_UNICAST;
  rtm->rtm_scope = RT_SCOPE_LINK;
  mnl_attr_put_u32(nlh, RTA_OIF, static_cast<uint32_t>(oif));
}

}  // namespace knit::lab::rtnl
