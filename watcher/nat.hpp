// watcher/nat.hpp: masquerade of pod traffic that leaves the cluster (pure; for `inet knit`).
//
// Pods keep their addresses inside the cluster (pod to pod across nodes is routed, not NATed:
// NetworkPolicy and the conformance tests see the real source) and take the node's address when
// they talk to anything else. One rule per family in a nat chain at srcnat, two interval sets per
// family; the agent's compiler adds them to its table (compile.hpp assemble()):
//
//   set pod_cidrs4      this node's podCIDRs: the sources to masquerade
//   set cluster_cidrs4  every node's podCIDRs and the configured extra CIDRs (Service CIDR, node
//                       network): destinations that never see a masqueraded source
//   chain masquerade  type nat hook postrouting priority srcnat
//     ip saddr @pod_cidrs4 ip daddr != @cluster_cidrs4 masquerade
//     ip6 saddr @pod_cidrs6 ip6 daddr != @cluster_cidrs6 masquerade
//
// The chain runs after the policy chain (srcnat - 5), so policy judges the pod's own address.
// Only a connection's first packet meets a nat chain, so replies to hostPort DNAT and Service
// traffic are untouched; Service traffic is judged after kube-proxy's DNAT, by the backend pod's
// address. A family whose pod CIDRs this node has none of gets its (empty) sets but no rule.
//
// No `oifname != <pod veths>` term: in routed-veth mode a packet towards a local pod has a pod
// address as destination, which is inside this node's podCIDR and so in cluster_cidrs; the
// destination test already excludes it. (nft's "knit*" wildcard is a shorter comparison that
// the nft engine's vocabulary does not have.)
#pragma once

#include <string_view>
#include <vector>

#include "core/ip.hpp"
#include "nft/nft_types.hpp"
#include "watcher/k8s_types.hpp"

namespace knit::watcher {

inline constexpr std::string_view kMasqueradeChain = "masquerade";

struct MasqueradeCidrs {
  std::vector<Prefix> pod_cidrs;      ///< sources masqueraded: this node's podCIDRs
  std::vector<Prefix> cluster_cidrs;  ///< destinations never masqueraded
  friend bool operator==(const MasqueradeCidrs&, const MasqueradeCidrs&) = default;
};

/// The CIDR lists for node `self` (pure): its own podCIDRs as sources; every node's podCIDRs
/// plus `extra` (Service CIDR, node network, ...) as the cluster.
MasqueradeCidrs masquerade_cidrs(const std::vector<Node>& nodes, std::string_view self,
                                 const std::vector<Prefix>& extra);

/// The four interval sets (pod_cidrs4/6, cluster_cidrs4/6), overlapping CIDRs merged.
std::vector<nft::Set> masquerade_sets(const MasqueradeCidrs& c);

/// The nat postrouting chain: one rule per family that has pod CIDRs.
nft::Chain masquerade_chain(const MasqueradeCidrs& c);

}  // namespace knit::watcher
