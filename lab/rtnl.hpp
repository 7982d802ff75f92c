// lab/rtnl.hpp: the few rtnetlink requests the lab's node namespace needs (builders, no I/O).
//
// The CNI plugin has its own pod wiring builders (cni/rtnl.hpp); the lab may not depend on the
// plugin's module, and needs only these four, so they are written here.
#pragma once

#include <string_view>

#include "core/ip.hpp"
#include "core/netlink.hpp"

namespace knit::lab::rtnl {

/// RTM_NEWLINK: admin state up.
void link_up(nl::Request& req, int ifindex, std::string_view name);
/// RTM_NEWLINK (create, exclusive) of a veth pair with both ends in the socket's namespace, at
/// the given ifindexes (a fresh namespace has only lo at 1, so the caller can pick them and
/// send the rest of its setup in the same request).
void new_veth_pair(nl::Request& req, std::string_view name, int index, std::string_view peer,
                   int peer_index);
/// RTM_NEWADDR of `addr` on `ifindex`, permanent, without duplicate address detection.
void new_addr(nl::Request& req, int ifindex, std::string_view ifname, const Prefix& addr);
/// RTM_NEWROUTE of the default route of `family` out of `oif` (no gateway: on-link).
void new_default_route(nl::Request& req, Family family, int oif, std::string_view oif_name);

}  // namespace knit::lab::rtnl
