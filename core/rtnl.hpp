// core/rtnl.hpp: rtnetlink requests (links, addresses, routes, neighbours) and dump parsers.
//
// Builders append messages to an nl::Request and do no I/O, so unit tests parse their bytes back
// with libmnl. Parsers turn replies into plain values. Callers send requests on an nl::Socket
// opened in the right namespace (the socket carries the namespace). Used by the CNI plugin's pod
// wiring, the agent's node routes and the lab's sandbox node; nothing here knows about any of
// them.
#pragma once

#include <linux/netlink.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/ip.hpp"
#include "core/netlink.hpp"

namespace knit::rtnl {

/// A veth pair created from the socket's namespace ("host" side), its peer placed straight into
/// another namespace (peer_netns_fd) or kept beside it (-1). Unset MACs, MTU (0) and indexes (0)
/// are left to the kernel.
struct VethSpec {
  std::string host_name;
  std::optional<Mac> host_mac;
  std::string peer_name;
  std::optional<Mac> peer_mac;
  uint32_t mtu = 0;
  int peer_netns_fd = -1;
  int host_index = 0;
  int peer_index = 0;
};

/// RTM_NEWLINK (NLM_F_CREATE|NLM_F_EXCL) of a veth pair.
void new_veth(nl::Request& req, const VethSpec& spec);
/// RTM_GETLINK by name; the reply is an RTM_NEWLINK message (parse with parse_link).
void get_link(nl::Request& req, std::string_view name, bool tolerate_missing);
/// RTM_SETLINK: admin state up, and an alias when `alias` is not empty.
void set_link_up(nl::Request& req, int ifindex, std::string_view name, std::string_view alias = {});
/// RTM_SETLINK: net.ipv4.conf.<name>.route_localnet = 1 (IFLA_AF_SPEC/AF_INET/IFLA_INET_CONF),
/// so that 127.0.0.0/8 may be routed to and from the link.
void enable_route_localnet(nl::Request& req, int ifindex, std::string_view name);
/// RTM_DELLINK by name; a missing link counts as deleted.
void del_link(nl::Request& req, std::string_view name);
/// RTM_DELLINK by index (indexes are never reused soon, names are); a missing link counts as
/// deleted.
void del_link_index(nl::Request& req, int ifindex, std::string_view name);
/// RTM_GETLINK by index.
void get_link_index(nl::Request& req, int ifindex);
/// RTM_GETROUTE lookup of `dst` (like `ip route get`); a missing route is tolerated.
void get_route(nl::Request& req, const IpAddr& dst);
/// RTM_NEWADDR of `addr` (host prefix) on `ifindex`; `nodad` skips duplicate address detection.
void new_addr(nl::Request& req, int ifindex, std::string_view ifname, const Prefix& addr,
              bool nodad);

/// A unicast route of the main table.
struct RouteSpec {
  Prefix dst;
  std::optional<IpAddr> gw;
  int oif = 0;
  std::string oif_name;  ///< for messages only
  bool scope_link = false;
  /// rtm_protocol: who owns the route (RTPROT_*, or a private number). 0 means RTPROT_STATIC
  /// when adding and "any owner" when deleting.
  uint8_t protocol = 0;
  friend bool operator==(const RouteSpec&, const RouteSpec&) = default;
};
/// RTM_NEWROUTE in the main table (NLM_F_CREATE|NLM_F_EXCL): EEXIST when the route exists.
void new_route(nl::Request& req, const RouteSpec& r);
/// RTM_NEWROUTE (NLM_F_CREATE|NLM_F_REPLACE): creates the route or replaces the one with the same
/// destination (and metric) in place, whoever owned it.
void replace_route(nl::Request& req, const RouteSpec& r);
/// RTM_DELROUTE; a missing route counts as deleted. With a protocol set, only a route of that
/// owner matches.
void del_route(nl::Request& req, const RouteSpec& r);
/// RTM_NEWNEIGH, NUD_PERMANENT (replaces an existing entry).
void new_neigh(nl::Request& req, int ifindex, std::string_view ifname, const IpAddr& ip,
               const Mac& mac);

// ---- Dumps and parsed replies ----------------------------------------------------------------

struct LinkInfo {
  int index = 0;
  std::string name;
  std::optional<Mac> mac;
  uint32_t mtu = 0;
  bool up = false;
  std::string alias;
  std::string kind;  ///< IFLA_INFO_KIND ("veth", "dummy", ...), empty if none
  int link = 0;      ///< IFLA_LINK: for a veth, the peer's ifindex (in the peer's namespace)
};
struct AddrInfo {
  int index = 0;
  Prefix prefix;
  uint32_t flags = 0;  ///< IFA_F_*
};
struct RouteInfo {
  Prefix dst;
  std::optional<IpAddr> gw;
  int oif = 0;
  uint8_t scope = 0;
  uint8_t table = 0;
  uint8_t type = 0;
  uint8_t protocol = 0;
};
struct NeighInfo {
  int index = 0;
  IpAddr ip;
  std::optional<Mac> mac;
  uint16_t state = 0;  ///< NUD_*
};

std::optional<LinkInfo> parse_link(const nlmsghdr* msg);
std::optional<AddrInfo> parse_addr(const nlmsghdr* msg);
std::optional<RouteInfo> parse_route(const nlmsghdr* msg);
std::optional<NeighInfo> parse_neigh(const nlmsghdr* msg);

/// The link named `name` in the socket's namespace, or nullopt.
std::optional<LinkInfo> find_link(nl::Socket& sock, std::string_view name);
std::vector<LinkInfo> list_links(nl::Socket& sock);
std::vector<AddrInfo> list_addrs(nl::Socket& sock);
/// Routes of the main table, both families.
std::vector<RouteInfo> list_routes(nl::Socket& sock);
std::vector<NeighInfo> list_neighs(nl::Socket& sock);

}  // namespace knit::rtnl
