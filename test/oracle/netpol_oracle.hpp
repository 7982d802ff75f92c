// test/oracle/netpol_oracle.hpp: a reference evaluator of Kubernetes NetworkPolicy v1 semantics.
//
// Test code only. It answers one question — is a new connection from A to B on protocol P, port N
// allowed? — straight from the API reference, with no indexing, no caching and no code shared
// with knit's compiler (watcher/): every call walks every policy. It is deliberately slow and
// small, so that it can be read against the spec line by line, and it is the expected value for
// the e2e scenario tables (test/data/e2e/) and for differential tests of the real datapath.
//
// The semantics, in the order the code applies them:
//  - A pod is isolated for a direction when some policy of its namespace selects it (spec.
//    podSelector; {} selects every pod) and has that direction in its policy types. policyTypes
//    as written, or when absent/empty: Ingress, plus Egress if spec.egress has a rule.
//  - An isolated direction allows exactly the union of the rules of those policies; a rule
//    matches when some peer matches (no peers: every peer) and some port matches (no ports:
//    every port of every protocol).
//  - A connection needs both ends: the source's egress and the destination's ingress. An
//    endpoint that is not a pod (an external address) has no side of its own to check.
//  - Peers: ipBlock matches an address in cidr and in no except (pod addresses included);
//    podSelector alone selects pods of the policy's namespace; namespaceSelector alone every pod
//    of the matching namespaces ({} = all); both in one peer: AND.
//  - Ports: protocol defaults to TCP; a port entry without port matches every port of its
//    protocol; endPort makes an inclusive range; a named port matches when the destination pod
//    declares a container port of that name and protocol with the connection's port number.
//  - Selectors: matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist) are ANDed;
//    NotIn and DoesNotExist match objects without the key.
//  - hostNetwork pods are neither isolated by policies nor selected as pod peers: their traffic
//    carries node addresses, which only an ipBlock can match.
//  - An address is one pod's: the oracle is given the cluster as it truly is (a lab's wired
//    pods), and a cluster with an address on two pods is refused (std::invalid_argument). What
//    knit does while its view shows a reused address on two pods is its own fail-safe choice
//    (watcher/compile.hpp), checked by unit tests, not by the oracle.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace knit::test::oracle {

using Labels = std::map<std::string, std::string>;

/// The API server's automatic namespace label.
inline constexpr const char* kNamespaceNameLabel = "kubernetes.io/metadata.name";

struct Requirement {
  std::string key;
  std::string op;  ///< "In", "NotIn", "Exists", "DoesNotExist" (anything else matches nothing)
  std::vector<std::string> values;
};

struct Selector {
  Labels match_labels;
  std::vector<Requirement> match_expressions;
};

enum class Protocol { kTcp, kUdp, kSctp };

/// A port number or a container port name.
using PortRef = std::variant<int, std::string>;

struct ContainerPort {
  std::string name;
  int port = 0;
  Protocol protocol = Protocol::kTcp;
};

struct Namespace {
  std::string name;
  Labels labels;
};

struct Pod {
  std::string namespace_;
  std::string name;
  Labels labels;
  std::vector<std::string> ips;  ///< textual IPv4/IPv6 addresses
  std::vector<ContainerPort> ports;
  bool host_network = false;
};

struct IpBlock {
  std::string cidr;
  std::vector<std::string> except;
};

/// A from/to element; absent and empty selectors differ, as in the API.
struct Peer {
  std::optional<Selector> pod_selector;
  std::optional<Selector> namespace_selector;
  std::optional<IpBlock> ip_block;
};

struct Port {
  std::optional<Protocol> protocol;  ///< absent: TCP
  std::optional<PortRef> port;       ///< absent: every port
  std::optional<int> end_port;
};

struct Rule {
  std::vector<Peer> peers;  ///< from/to; empty (or absent) = every peer
  std::vector<Port> ports;  ///< empty (or absent) = every port and protocol
};

struct Policy {
  std::string namespace_;
  std::string name;
  Selector pod_selector;
  std::vector<std::string> policy_types;  ///< as written; empty = inferred
  std::vector<Rule> ingress;
  std::vector<Rule> egress;
};

struct Cluster {
  std::vector<Namespace> namespaces;
  std::vector<Pod> pods;
  std::vector<Policy> policies;
};

/// One end of a connection: a pod ("ns/name") or a bare address. An address that belongs to a
/// (non-hostNetwork) pod of the cluster is that pod.
struct Endpoint {
  static Endpoint pod(std::string ref) { return Endpoint{std::move(ref), {}}; }
  static Endpoint address(std::string ip) { return Endpoint{{}, std::move(ip)}; }
  std::string pod_ref;
  std::string ip;
};

/// Whether `selector` matches `labels`.
bool matches(const Selector& selector, const Labels& labels);

/// Whether `ip` lies in `cidr` (same family, prefix bits equal). Throws std::invalid_argument on
/// text that is not an address or a CIDR.
bool in_cidr(const std::string& ip, const std::string& cidr);

/// Whether a new connection from `src` to `dst` on `protocol` and `port` is allowed by the
/// policies of `cluster`. A pod endpoint uses its first address of `family` (4 or 6). A named
/// `port` is resolved against the destination pod's container ports of `protocol`; when it
/// does not resolve (or dst is not a pod) nothing listens and the answer is false.
/// Throws std::invalid_argument for an unknown pod, a pod without an address of `family`, or an
/// address of an endpoint that two pods have.
bool allowed(const Cluster& cluster, const Endpoint& src, const Endpoint& dst, Protocol protocol,
             const PortRef& port, int family = 4);

/// "TCP", "UDP", "SCTP"; and back (std::invalid_argument on anything else).
std::string to_string(Protocol p);
Protocol protocol_from_string(const std::string& s);

}  // namespace knit::test::oracle
