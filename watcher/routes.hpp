// watcher/routes.hpp: direct routing to the other nodes' pod CIDRs (pure plan + thin apply).
//
// Approach (kindnet's): no overlay. Every other node's spec.podCIDRs is routed via that node's
// InternalIP of the same family, which must be on a link this node shares with it. The agent
// recomputes the plan from its Node list on every Node add, update and delete, and converges the
// kernel with one dump and one request of several messages.
//
// Ownership. Routes knit installs carry rtm_protocol kRouteProtocol (0x4b, 75: 'K', unassigned
// in iproute2's rt_protos; `ip route show proto 75` lists them). Only routes with that protocol
// are ever replaced or deleted. A pod CIDR that some other owner already routes (a static route,
// a connected subnet, another CNI) is left alone and reported as blocked, never replaced.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/ip.hpp"
#include "core/netlink.hpp"
#include "core/rtnl.hpp"
#include "watcher/k8s_types.hpp"

namespace knit::watcher {

/// rtm_protocol of the routes knit owns.
inline constexpr uint8_t kRouteProtocol = 0x4b;

/// A route to a node's pod CIDR.
struct NodeRoute {
  Prefix dst;
  IpAddr via;
  friend auto operator<=>(const NodeRoute&, const NodeRoute&) = default;
  friend bool operator==(const NodeRoute&, const NodeRoute&) = default;
};

/// The routes this node (`self`, a Node name) wants (pure): every other node's podCIDRs via its
/// first InternalIP of the same family. Skipped: nodes without podCIDRs, CIDRs whose family the
/// node has no InternalIP of, CIDRs overlapping one of self's own podCIDRs (a misconfiguration
/// that must not take local pods' traffic away), and a CIDR claimed twice (the node first by
/// name keeps it). Sorted by destination; deterministic whatever the order of `nodes`.
std::vector<NodeRoute> plan_routes(const std::vector<Node>& nodes, std::string_view self);

/// What it takes to go from the routes the kernel holds to `desired`.
struct RouteChanges {
  std::vector<NodeRoute> add;      ///< not routed at all yet: created (exclusive)
  std::vector<NodeRoute> change;   ///< ours, with another gateway: replaced in place
  std::vector<NodeRoute> remove;   ///< ours, no longer wanted (via: the gateway it had)
  std::vector<NodeRoute> blocked;  ///< wanted, but another owner routes that destination
  bool empty() const noexcept { return add.empty() && change.empty() && remove.empty(); }
  friend bool operator==(const RouteChanges&, const RouteChanges&) = default;
};

/// The changes from `current` (main-table routes of both families, as rtnl::list_routes returns
/// them) to `desired` (pure). Only unicast routes with protocol kRouteProtocol count as ours.
RouteChanges diff_routes(const std::vector<rtnl::RouteInfo>& current,
                         const std::vector<NodeRoute>& desired);

/// Converges the main table of `rt`'s namespace (a NETLINK_ROUTE socket) to `desired`: one dump,
/// then every delete, replace and add in one request (nl::Socket::transact pages it).
/// Returns what it changed (and what it left blocked). Throws Error(kNetlink) naming the first
/// route the kernel refused (e.g. a gateway that is not on a connected link); every other
/// message still took effect.
RouteChanges sync_routes(nl::Socket& rt, const std::vector<NodeRoute>& desired);

/// "10.244.2.0/24 via 10.99.0.2".
std::string to_string(const NodeRoute& r);

}  // namespace knit::watcher
