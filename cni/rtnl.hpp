// cni/rtnl.hpp: the rtnetlink requests knit's pod wiring needs, and the dumps CHECK reads.
//
// Builders append messages to an nl::Request and do no I/O, so unit tests parse their bytes back
// with libmnl. Parsers turn replies into plain values. Callers send requests on an nl::Socket
// opened in the right namespace (the socket carries the namespace).
#pragma once

#include <linux/netlink.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/ip.hpp"
#include "core/netlink.hpp"

namespace knit::cni::rtnl {

/// A veth pair created from the host side with its peer placed straight into the pod namespace.
struct VethSpec {
  std::string host_name;
  Mac host_mac;
  std::string peer_name;
  Mac peer_mac;
  uint32_t mtu = 1500;
  int peer_netns_fd = -1;
};

/// RTM_NEWLINK (NLM_F_CREATE|NLM_F_EXCL) of a veth pair.
void new_veth(nl::Request& req, const VethSpec& spec);
/// RTM_GETLINK by name; the reply is an RTM_NEWLINK message (parse with parse_link).
void get_link(nl::Request& req, std::string_view name, bool tolerate_missing);
/// RTM_SETLINK: admin state up, and an alias when `alias` is not empty.
void set_link_up(nl::Request& req, int ifindex, std::string_view name, std::string_view alias);
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

struct RouteSpec {
  Prefix dst;
  std::optional<IpAddr> gw;
  int oif = 0;
  std::string oif_name;  ///< for messages only
  bool scope_link = false;
  friend bool operator==(const RouteSpec&, const RouteSpec&) = default;
};
/// RTM_NEWROUTE in the main table (NLM_F_CREATE|NLM_F_EXCL).
void new_route(nl::Request& req, const RouteSpec& r);
/// RTM_DELROUTE; a missing route counts as deleted.
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

}  // namespace knit::cni::rtnl
