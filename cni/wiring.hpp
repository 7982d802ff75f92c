// cni/wiring.hpp: the pure plan of one pod attachment (routed veth, no bridge).
//
//   node ns:  <host_ifname> up, MAC host_mac      route <pod ip>/32 dev <host_ifname>
//             fe80::(EUI-64 of host_mac) nodad    neigh <pod ip> lladdr pod_mac permanent
//   pod ns:   <ifname> <pod ip>/32, <pod ip6>/128 nodad, accept_dad=0
//             route 169.254.1.1 dev <ifname> scope link
//             neigh 169.254.1.1 and fe80::gw lladdr host_mac permanent
//             default via 169.254.1.1 / via fe80::gw dev <ifname>
//
// Both sides pin their neighbour entries, so no ARP or NDP is needed before the first packet and
// no address waits on duplicate address detection. Names and MACs derive from a hash of
// (container id, ifname), so CHECK, DEL and GC can find everything again without the netns.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/netconf_types.hpp"
#include "core/ip.hpp"

namespace knit::cni {

/// The IPv4 gateway every pod uses: link-local, pinned by a permanent neighbour entry.
inline constexpr std::string_view kGatewayV4 = "169.254.1.1";

struct PodRoute {
  Prefix dst;
  IpAddr gw;
  friend bool operator==(const PodRoute&, const PodRoute&) = default;
};

struct Wiring {
  std::string host_ifname;
  Mac host_mac;
  std::string pod_ifname;
  Mac pod_mac;
  uint32_t mtu = 1500;
  std::vector<IpAddr> pod_ips;  ///< one per pool; each gets a host prefix
  std::optional<IpAddr> gw4;    ///< set when the pod has an IPv4 address
  std::optional<IpAddr> gw6;    ///< the host veth's link-local address, when IPv6
  std::vector<PodRoute> routes; ///< default routes per family first, then configured ones
};

/// "knit" + 11 hex digits of a hash of (container_id, ifname): 15 characters, IFNAMSIZ-safe.
std::string host_ifname_for(std::string_view container_id, std::string_view ifname);
/// The alias knit puts on host veths: "knit:<network>:<container_id>:<ifname>".
std::string link_alias(std::string_view network, std::string_view container_id,
                       std::string_view ifname);
/// Splits a link alias made by link_alias; nullopt for anything else.
struct AliasParts {
  std::string network, container_id, ifname;
};
std::optional<AliasParts> parse_link_alias(std::string_view alias);

/// Plans the wiring of `ips` for (container_id, ifname).
Wiring plan_wiring(std::string_view container_id, std::string_view ifname,
                   const std::vector<IpAddr>& ips, uint32_t mtu, std::optional<Mac> pod_mac,
                   const std::vector<conf::RouteConf>& extra_routes);

/// The CNI result for a planned wiring: the host veth, the pod interface (with sandbox), one ip
/// per address (host prefix, gateway, interface index), and the pod's routes. When `prev` is set
/// (knit is not first in the chain), knit's entries are appended to it.
conf::Result make_result(const Wiring& w, std::string_view netns,
                         const std::optional<conf::Result>& prev);

}  // namespace knit::cni
