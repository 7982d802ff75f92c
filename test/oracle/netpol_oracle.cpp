#include "test/oracle/netpol_oracle.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <stdexcept>

namespace knit::test::oracle {
namespace {

// ---- addresses -----------------------------------------------------------------------------

struct Address {
  int family = 4;
  std::array<unsigned char, 16> bytes{};
};

std::optional<Address> parse_address(const std::string& text) {
  Address a;
  if (inet_pton(AF_INET, text.c_str(), a.bytes.data()) == 1) {
    a.family = 4;
    return a;
  }
  if (inet_pton(AF_INET6, text.c_str(), a.bytes.data()) == 1) {
    a.family = 6;
    return a;
  }
  return std::nullopt;
}

Address must_parse(const std::string& text) {
  auto a = parse_address(text);
  if (!a) throw std::invalid_argument("not an IP address: '" + text + "'");
  return *a;
}

/// The first `bits` bits of a and b are equal.
bool same_prefix(const Address& a, const Address& b, int bits) {
  for (int i = 0; i < bits; ++i) {
    int byte = i / 8, shift = 7 - i % 8;
    if (((a.bytes[byte] >> shift) & 1) != ((b.bytes[byte] >> shift) & 1)) return false;
  }
  return true;
}

/// Whether `ip` lies in `cidr` ("addr/len"): same family and the first len bits equal.
bool in_cidr_address(const Address& ip, const std::string& cidr) {
  auto slash = cidr.find('/');
  std::string len_text = slash == std::string::npos ? "" : cidr.substr(slash + 1);
  if (len_text.empty() || len_text.size() > 3 ||
      !std::all_of(len_text.begin(), len_text.end(),
                   [](char ch) { return ch >= '0' && ch <= '9'; })) {
    throw std::invalid_argument("not a CIDR: '" + cidr + "'");
  }
  Address net = must_parse(cidr.substr(0, slash));
  int len = std::stoi(len_text);
  if (len > (net.family == 4 ? 32 : 128)) throw std::invalid_argument("not a CIDR: '" + cidr + "'");
  return ip.family == net.family && same_prefix(ip, net, len);
}

// ---- the cluster ---------------------------------------------------------------------------

const Pod* find_pod(const Cluster& c, const std::string& ref) {
  for (const Pod& p : c.pods) {
    if (p.namespace_ + "/" + p.name == ref) return &p;
  }
  return nullptr;
}

const Pod* pod_by_ip(const Cluster& c, const Address& ip) {
  const Pod* found = nullptr;
  for (const Pod& p : c.pods) {
    if (p.host_network) continue;
    for (const std::string& text : p.ips) {
      auto a = parse_address(text);
      if (!a || a->family != ip.family || a->bytes != ip.bytes) continue;
      if (found != nullptr && found != &p) {
        throw std::invalid_argument("address " + text + " is on two pods: " + found->namespace_ +
                                    "/" + found->name + " and " + p.namespace_ + "/" + p.name);
      }
      found = &p;
    }
  }
  return found;
}

/// Labels of a namespace; a namespace without an object still has its name label.
Labels namespace_labels(const Cluster& c, const std::string& name) {
  for (const Namespace& ns : c.namespaces) {
    if (ns.name == name) return ns.labels;
  }
  return Labels{{kNamespaceNameLabel, name}};
}

/// An endpoint resolved to its address and, when it is one, the pod (nullptr otherwise).
struct Resolved {
  Address ip;
  const Pod* pod = nullptr;
};

Resolved resolve(const Cluster& c, const Endpoint& e, int family) {
  if (e.pod_ref.empty()) {
    Address ip = must_parse(e.ip);
    return Resolved{ip, pod_by_ip(c, ip)};
  }
  const Pod* pod = find_pod(c, e.pod_ref);
  if (!pod) throw std::invalid_argument("no pod " + e.pod_ref);
  for (const std::string& text : pod->ips) {
    Address a = must_parse(text);
    if (a.family == family) return Resolved{a, pod->host_network ? nullptr : pod};
  }
  throw std::invalid_argument("pod " + e.pod_ref + " has no IPv" + std::to_string(family) +
                              " address");
}

// ---- policies ------------------------------------------------------------------------------

enum class Direction { kIngress, kEgress };

bool has_type(const Policy& p, Direction d) {
  const char* name = d == Direction::kIngress ? "Ingress" : "Egress";
  if (!p.policy_types.empty()) {
    return std::find(p.policy_types.begin(), p.policy_types.end(), name) != p.policy_types.end();
  }
  return d == Direction::kIngress || !p.egress.empty();
}

/// Whether `peer` of a policy in `policy_ns` matches the other end of the connection.
bool peer_matches(const Cluster& c, const Peer& peer, const std::string& policy_ns,
                  const Resolved& other) {
  if (peer.ip_block) {
    if (!in_cidr_address(other.ip, peer.ip_block->cidr)) return false;
    for (const std::string& ex : peer.ip_block->except) {
      if (in_cidr_address(other.ip, ex)) return false;
    }
    return true;
  }
  if (!peer.pod_selector && !peer.namespace_selector) return false;  // invalid peer
  if (!other.pod) return false;
  const Pod& pod = *other.pod;
  bool ns_ok = peer.namespace_selector
                   ? matches(*peer.namespace_selector, namespace_labels(c, pod.namespace_))
                   : pod.namespace_ == policy_ns;
  bool pod_ok = !peer.pod_selector || matches(*peer.pod_selector, pod.labels);
  return ns_ok && pod_ok;
}

/// Whether a policy port entry matches a connection to `dst` (for named ports) on protocol/port.
bool port_matches(const Port& entry, Protocol protocol, int port, const Pod* dst) {
  Protocol entry_protocol = entry.protocol.value_or(Protocol::kTcp);
  if (entry_protocol != protocol) return false;
  if (!entry.port) return true;
  if (const int* number = std::get_if<int>(&*entry.port)) {
    if (entry.end_port) return *number <= port && port <= *entry.end_port;
    return port == *number;
  }
  const std::string& name = std::get<std::string>(*entry.port);
  if (!dst) return false;
  for (const ContainerPort& cp : dst->ports) {
    if (cp.name == name && cp.protocol == entry_protocol && cp.port == port) return true;
  }
  return false;
}

bool rule_matches(const Cluster& c, const Rule& rule, const std::string& policy_ns,
                  const Resolved& other, const Pod* dst, Protocol protocol, int port) {
  bool peer_ok = rule.peers.empty();
  for (const Peer& peer : rule.peers) {
    peer_ok = peer_ok || peer_matches(c, peer, policy_ns, other);
  }
  bool port_ok = rule.ports.empty();
  for (const Port& entry : rule.ports) {
    port_ok = port_ok || port_matches(entry, protocol, port, dst);
  }
  return peer_ok && port_ok;
}

/// Whether `target`'s side of the connection allows it in direction `d`; `other` is the far end
/// and `dst` the destination pod (for named ports), if any.
bool side_allows(const Cluster& c, const Pod& target, Direction d, const Resolved& other,
                 const Pod* dst, Protocol protocol, int port) {
  bool isolated = false;
  for (const Policy& p : c.policies) {
    if (p.namespace_ != target.namespace_ || !matches(p.pod_selector, target.labels)) continue;
    if (!has_type(p, d)) continue;
    isolated = true;
    for (const Rule& rule : d == Direction::kIngress ? p.ingress : p.egress) {
      if (rule_matches(c, rule, p.namespace_, other, dst, protocol, port)) return true;
    }
  }
  return !isolated;
}

}  // namespace

bool matches(const Selector& selector, const Labels& labels) {
  for (const auto& [key, value] : selector.match_labels) {
    auto it = labels.find(key);
    if (it == labels.end() || it->second != value) return false;
  }
  for (const Requirement& r : selector.match_expressions) {
    auto it = labels.find(r.key);
    bool has = it != labels.end();
    bool listed = has && std::find(r.values.begin(), r.values.end(), it->second) != r.values.end();
    bool ok = (r.op == "In" && listed) || (r.op == "NotIn" && !listed) ||
              (r.op == "Exists" && has) || (r.op == "DoesNotExist" && !has);
    if (!ok) return false;
  }
  return true;
}

bool in_cidr(const std::string& ip, const std::string& cidr) {
  return in_cidr_address(must_parse(ip), cidr);
}

bool allowed(const Cluster& cluster, const Endpoint& src, const Endpoint& dst, Protocol protocol,
             const PortRef& port, int family) {
  Resolved from = resolve(cluster, src, family);
  Resolved to = resolve(cluster, dst, family);
  int number = 0;
  if (const int* n = std::get_if<int>(&port)) {
    number = *n;
  } else {
    const std::string& name = std::get<std::string>(port);
    if (!to.pod) return false;
    auto it = std::find_if(
        to.pod->ports.begin(), to.pod->ports.end(),
        [&](const ContainerPort& cp) { return cp.name == name && cp.protocol == protocol; });
    if (it == to.pod->ports.end()) return false;
    number = it->port;
  }
  bool egress_ok = !from.pod || side_allows(cluster, *from.pod, Direction::kEgress, to, to.pod,
                                            protocol, number);
  bool ingress_ok =
      !to.pod || side_allows(cluster, *to.pod, Direction::kIngress, from, to.pod, protocol, number);
  return egress_ok && ingress_ok;
}

std::string to_string(Protocol p) {
  switch (p) {
    case Protocol::kTcp:
      return "TCP";
    case Protocol::kUdp:
      return "UDP";
    case Protocol::kSctp:
      return "SCTP";
  }
  return "?";
}

Protocol protocol_from_string(const std::string& s) {
  if (s == "TCP") return Protocol::kTcp;
  if (s == "UDP") return Protocol::kUdp;
  if (s == "SCTP") return Protocol::kSctp;
  throw std::invalid_argument("not a protocol: '" + s + "'");
}

}  // namespace knit::test::oracle
