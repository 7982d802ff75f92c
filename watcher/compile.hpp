// watcher/compile.hpp: NetworkPolicy v1 → one nftables table (pure).
//
// Shape of the table (`inet knit`), static except for set and map elements:
//
//   chain postrouting  filter hook postrouting priority srcnat-5 (95), policy accept
//     ct mark & 0x40000000 == 0x40000000 drop  connections a change revoked (conntrack.hpp)
//     ct state established,related accept
//     icmpv6 type @nd accept                  neighbour discovery always works
//     fib saddr type local accept             the node (kubelet probes, hostNetwork pods)
//     ip saddr vmap @egress4  / ip6 saddr vmap @egress6    egress of local isolated pods
//     ip daddr vmap @ingress4 / ip6 daddr vmap @ingress6   ingress of local isolated pods
//   chain input        filter hook input priority 101, policy accept
//     revoked drop; ct state established,related accept; icmpv6 type @nd accept
//     ip saddr vmap @egress4  / ip6 saddr vmap @egress6    pod -> node is egress too
//   chain ingress/<ns>, egress/<ns>        one per namespace with policies
//     ct state invalid drop
//     one rule per (policy, rule, family), e.g.
//       ip daddr . meta l4proto . th dport @x/web/i0/ports4 ip saddr @x/web/i0/peers4 accept
//     (egress rules `return` to the base chain, so the destination's ingress is checked next)
//     drop
//
// The dispatch maps hold only local pods that some policy isolates, keyed by address, so a pod
// no policy selects costs one failed map lookup per new connection, and an isolated pod's
// packets only meet its own namespace's rules. Everything that changes with pods (who is
// isolated, targets, peers, ports resolved per pod) lives in set and map elements: pod churn and
// label changes never touch a rule. Rules change only when policies (or namespaces holding
// policies) change.
//
// Why postrouting at srcnat-5 and input at 101: postrouting sees every packet leaving towards a
// pod or from a pod, forwarded or locally generated, after DNAT (so Service traffic is judged by
// the backend pod's address, with kube-proxy in iptables, nftables or IPVS mode, where IPVS
// packets never traverse forward) and before SNAT/masquerade (so the source is still the pod).
// Input runs after IPVS's local-in hooks (98, 99) so only traffic really for the node is judged.
#pragma once

#include <string>
#include <string_view>

#include "nft/nft_types.hpp"
#include "watcher/view.hpp"

namespace knit::watcher {

inline constexpr std::string_view kTableName = "knit";
/// Priority of the postrouting chain: srcnat - 5.
inline constexpr int32_t kPostroutingPriority = 95;
/// Priority of the input chain: after IPVS local-in (NF_IP_PRI_NAT_SRC - 2, - 1).
inline constexpr int32_t kInputPriority = 101;

/// The desired `inet knit` table for `view`. Deterministic: the same view gives the same value.
nft::Ruleset compile(const ClusterView& view);

/// Base name of a policy's sets ("<ns>/<name>", shortened with a hash when very long).
std::string policy_set_base(std::string_view ns, std::string_view name);

}  // namespace knit::watcher
