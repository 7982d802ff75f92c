// watcher/k8s_types.hpp: the Kubernetes objects knit acts on, as plain comparable values.
//
// The watcher module turns what the API server (or a manifests directory) says into these values;
// the policy compiler and the agent only ever see them, never JSON or YAML. Each type keeps only
// the fields knit needs, already defaulted the way the API server defaults them (protocol TCP,
// policyTypes inferred, the namespace name label present), so that downstream code never has to
// know Kubernetes' defaulting rules. Absent and empty stay distinct where Kubernetes gives them
// different meanings (peer selectors); where it does not (rule peer and port lists), the type
// says which single representation is used.
//
// Decoding lives in k8s_decode.hpp, label-selector matching in selector.hpp.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/ip.hpp"
#include "watcher/intern.hpp"

namespace knit::watcher {

/// Labels of an object, and the matchLabels of a selector. The transparent comparator allows
/// lookups by std::string_view without building a std::string.
using Labels = std::map<std::string, std::string, std::less<>>;

/// The label the API server sets on every Namespace to the namespace's name (immutable; upstream
/// NetworkPolicy e2e tests 41 and 42 select namespaces by it).
inline constexpr std::string_view kNamespaceNameLabel = "kubernetes.io/metadata.name";

// ---- Label selectors ---------------------------------------------------------------------------

/// matchExpressions operators (metav1.LabelSelectorOperator; case-sensitive on the wire).
enum class Op : uint8_t { kIn, kNotIn, kExists, kDoesNotExist };

/// One matchExpressions element. The decoder guarantees what the API server validates: In and
/// NotIn have at least one value, Exists and DoesNotExist have none.
struct Requirement {
  std::string key;
  Op op = Op::kExists;
  std::vector<std::string> values;  ///< in the order given; duplicates are harmless
  friend bool operator==(const Requirement&, const Requirement&) = default;
};

/// metav1.LabelSelector. matchLabels and matchExpressions are ANDed; a selector with neither
/// matches every object. A *null* selector (matches nothing, or "not given" in a peer) is
/// represented by the absence of the LabelSelector, i.e. std::optional<LabelSelector>.
struct LabelSelector {
  Labels match_labels;
  std::vector<Requirement> match_expressions;
  /// True when the selector has no terms and so matches every label set.
  bool selects_all() const noexcept { return match_labels.empty() && match_expressions.empty(); }
  friend bool operator==(const LabelSelector&, const LabelSelector&) = default;
};

// ---- Namespaces, pods, nodes
// ---------------------------------------------------------------------

/// L4 protocols of container ports and policy ports (core/v1 Protocol). TCP is the default.
enum class Protocol : uint8_t { kTcp, kUdp, kSctp };

struct Namespace {
  std::string name;
  /// Always holds kNamespaceNameLabel = name (the decoder adds or corrects it, as the API
  /// server does).
  Labels labels;
  std::string resource_version;  ///< empty for manifests
  friend bool operator==(const Namespace&, const Namespace&) = default;
};

/// One declared container port; named ports in policies resolve against these.
struct ContainerPort {
  std::string name;   ///< IANA_SVC_NAME, or empty when unnamed
  uint16_t port = 0;  ///< containerPort, 1..65535
  Protocol protocol = Protocol::kTcp;
  friend bool operator==(const ContainerPort&, const ContainerPort&) = default;
  friend auto operator<=>(const ContainerPort&, const ContainerPort&) = default;
};

/// status.phase. A pod without status (a manifest) is Pending, as the API server creates it; a
/// phase string this version does not know maps to kUnknown.
enum class PodPhase : uint8_t { kPending, kRunning, kSucceeded, kFailed, kUnknown };

struct Pod {
  std::string namespace_;
  std::string name;
  Shared<Labels> labels;  ///< interned: the replicas of a Deployment share one copy
  std::string node_name;  ///< spec.nodeName; empty until scheduled
  PodPhase phase = PodPhase::kPending;
  bool host_network = false;
  /// status.podIPs in order (the first is the primary), or status.podIP when podIPs is absent
  /// or empty; empty until the sandbox has an address. hostNetwork pods carry node addresses.
  std::vector<IpAddr> ips;
  /// Ports of spec.containers[] and of restartable init containers (spec.initContainers[] with
  /// restartPolicy Always, i.e. sidecars), in declaration order (containers first).
  Shared<std::vector<ContainerPort>> ports;  ///< interned, like labels
  std::string resource_version;
  friend bool operator==(const Pod&, const Pod&) = default;
};

struct Node {
  std::string name;
  Labels labels;
  /// spec.podCIDRs, or spec.podCIDR when podCIDRs is absent or empty. Normalised to the network
  /// address.
  std::vector<Prefix> pod_cidrs;
  /// status.addresses of type InternalIP, in order.
  std::vector<IpAddr> internal_ips;
  std::string resource_version;
  friend bool operator==(const Node&, const Node&) = default;
};

// ---- NetworkPolicy
// -------------------------------------------------------------------------------

/// A port number or an IANA_SVC_NAME that resolves per destination pod against its
/// ContainerPort names (with the same protocol).
using PortRef = std::variant<uint16_t, std::string>;

/// One element of a rule's ports list.
struct PolicyPort {
  Protocol protocol = Protocol::kTcp;  ///< the API server's default when absent
  /// Absent: every port of `protocol`.
  std::optional<PortRef> port;
  /// The inclusive range port..end_port. Only with a numeric port, and end_port >= port.
  std::optional<uint16_t> end_port;
  friend bool operator==(const PolicyPort&, const PolicyPort&) = default;
};

struct IpBlock {
  Prefix cidr;  ///< normalised to the network address (host bits cleared)
  /// Each a strict subset of cidr (validated), normalised like cidr.
  std::vector<Prefix> except;
  /// Whether the block holds `ip`: inside cidr and in no except.
  bool holds(const IpAddr& ip) const {
    if (!cidr.contains(ip)) return false;
    for (const auto& e : except) {
      if (e.contains(ip)) return false;
    }
    return true;
  }
  friend bool operator==(const IpBlock&, const IpBlock&) = default;
};

/// One element of from/to. Exactly as the API server validates it: at least one member is set,
/// and ip_block is never combined with a selector. Absent and empty selectors differ:
///  - pod_selector only:           pods matching it in the policy's own namespace;
///  - namespace_selector only:     every pod in the matching namespaces ({} = all namespaces);
///  - both (one element):          pods matching pod_selector in the matching namespaces (AND);
///  - ip_block:                    addresses in cidr and in no except (pod IPs included).
struct PolicyPeer {
  std::optional<LabelSelector> pod_selector;
  std::optional<LabelSelector> namespace_selector;
  std::optional<IpBlock> ip_block;
  friend bool operator==(const PolicyPeer&, const PolicyPeer&) = default;
};

/// One ingress or egress rule: traffic matching some peer AND some port.
struct PolicyRule {
  /// from (ingress) or to (egress). Empty means every peer: Kubernetes gives an absent and an
  /// empty list the same meaning, so the two are not kept apart.
  std::vector<PolicyPeer> peers;
  /// Empty means every port and protocol (absent and empty alike).
  std::vector<PolicyPort> ports;
  friend bool operator==(const PolicyRule&, const PolicyRule&) = default;
};

struct NetworkPolicy {
  std::string namespace_;
  std::string name;
  std::string uid;  ///< empty for manifests
  /// The pods (of namespace_) the policy applies to; {} selects all of them.
  LabelSelector pod_selector;
  /// Whether the selected pods are isolated for ingress / egress by this policy, with the API
  /// server's policyTypes defaulting already applied: when spec.policyTypes is absent or empty,
  /// Ingress is implied and Egress is implied only if spec.egress has at least one rule
  /// (SetDefaults_NetworkPolicy: `len(spec.Egress) != 0`; `egress: []` does not imply Egress).
  bool ingress_isolation = true;
  bool egress_isolation = false;
  /// The allow rules. An isolated direction with no rules allows nothing; `[{}]` (one empty rule)
  /// allows everything. Rules of a direction whose isolation flag is false have no effect.
  std::vector<PolicyRule> ingress;
  std::vector<PolicyRule> egress;
  std::string resource_version;
  friend bool operator==(const NetworkPolicy&, const NetworkPolicy&) = default;
};

// ---- Printing (logs and test messages)
// ------------------------------------------------------------

std::string_view to_string(Op op);
std::string_view to_string(Protocol p);  ///< "TCP", "UDP", "SCTP"
std::string_view to_string(PodPhase p);  ///< "Pending", "Running", ...
/// "{a=b,c=d}"; "{}" when empty.
std::string to_string(const Labels& labels);
/// Kubernetes selector syntax: "k in (a,b)", "k notin (a)", "k", "!k".
std::string to_string(const Requirement& r);
/// "{app=web,tier in (a,b)}"; "{}" for the match-everything selector.
std::string to_string(const LabelSelector& s);
/// "8080/TCP" or "http:8080/TCP".
std::string to_string(const ContainerPort& p);
/// "TCP" (all ports), "TCP:80", "TCP:8000-8080", "UDP:dns".
std::string to_string(const PortRef& p);
std::string to_string(const PolicyPort& p);
/// "10.0.0.0/8" or "10.0.0.0/8 except 10.1.0.0/16,10.2.0.0/16".
std::string to_string(const IpBlock& b);
/// "pod{app=a}", "ns{}", "pod{app=a}&ns{team=x}", "ip 10.0.0.0/8 except ...".
std::string to_string(const PolicyPeer& p);
/// "peers=[pod{app=a}, ns{}] ports=[TCP:80]"; "any" for an empty list.
std::string to_string(const PolicyRule& r);
std::string to_string(const Namespace& n);
std::string to_string(const Pod& p);
std::string to_string(const Node& n);
std::string to_string(const NetworkPolicy& p);

}  // namespace knit::watcher
