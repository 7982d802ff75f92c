// lab/names.hpp: where a lab keeps its things, and what its namespaces are called (pure).
//
//   /run/netns/knit-lab-<N>                 the node namespace
//   /run/netns/knit-lab-<N>.<ns>.<pod>      one per pod
//   /run/knit/lab/<N>/                      state.json, lab.log, lock, lab.sock, agent.sock,
//                                           cni.json (what CNI gets on stdin), ipam/
//
// Lab names have no '.', Kubernetes namespace names have none either, so "knit-lab-<N>." is a
// prefix no other lab's namespaces share (down sweeps by it after a crash) and the first two
// dots split a pod namespace name unambiguously.
#pragma once

#include <string>
#include <string_view>

namespace knit::lab {

/// Root of every lab's run directory.
inline constexpr std::string_view kRunRoot = "/run/knit/lab";
/// Where named network namespaces live (iproute2's convention).
inline constexpr std::string_view kNetnsDir = "/run/netns";
/// The node namespace's uplink: a veth whose peer stays in the node (no dummy links here).
inline constexpr std::string_view kUplink = "up0";
inline constexpr std::string_view kUplinkPeer = "up0peer";
inline constexpr std::string_view kNodeV4 = "10.99.0.1/24";
inline constexpr std::string_view kNodeV6 = "fd99::1/64";
/// Pod address ranges (each lab has its own node namespace, so labs may share them).
inline constexpr std::string_view kPodRangeV4 = "10.77.0.0/16";
inline constexpr std::string_view kPodRangeV6 = "fd00:77::/64";
/// The CNI network name.
inline constexpr std::string_view kNetwork = "knit-lab";

struct Paths {
  std::string name;             ///< the lab's name
  std::string run_dir;          ///< /run/knit/lab/<N>
  std::string state;            ///< run_dir/state.json
  std::string log;              ///< run_dir/lab.log
  std::string lock;             ///< run_dir/lock: held by the supervisor for its lifetime
  std::string control_socket;   ///< run_dir/lab.sock
  std::string agent_socket;     ///< run_dir/agent.sock
  std::string node_netns_name;  ///< knit-lab-<N>
  std::string node_netns;       ///< /run/netns/knit-lab-<N>
  std::string node_name;        ///< lab-<N>: the agent's --node-name
};

/// Paths of the lab `name` (which must be valid_lab_name).
Paths paths_for(std::string_view name);

/// The name (not the path) of a pod's namespace: "knit-lab-<N>.<ns>.<pod>". Longer than 100
/// characters, the tail is cut and "_<8 hex digits of a hash of ns/pod>" appended ('_' never
/// occurs in Kubernetes names, so a cut name cannot equal an uncut one).
std::string pod_netns_name(std::string_view lab, std::string_view ns, std::string_view pod);
/// Prefix of every pod namespace name of the lab.
std::string pod_netns_prefix(std::string_view lab);

}  // namespace knit::lab
