#include "watcher/k8s_types.hpp"

#include "core/str.hpp"

namespace knit::watcher {

namespace {

template <class T, class F>
void append_list(std::string& out, const std::vector<T>& items, std::string_view sep, F&& f) {
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += sep;
    out += f(items[i]);
  }
}

std::string rules(const std::vector<PolicyRule>& rs) {
  std::string out = "[";
  append_list(out, rs, "; ", [](const PolicyRule& r) { return to_string(r); });
  out += ']';
  return out;
}

std::string name_of(std::string_view ns, std::string_view name) {
  return ns.empty() ? std::string(name) : str(ns, '/', name);
}

}  // namespace

std::string_view to_string(Op op) {
  switch (op) {
    case Op::kIn:
      return "In";
    case Op::kNotIn:
      return "NotIn";
    case Op::kExists:
      return "Exists";
    case Op::kDoesNotExist:
      return "DoesNotExist";
  }
  return "?";
}

std::string_view to_string(Protocol p) {
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

std::string_view to_string(PodPhase p) {
  switch (p) {
    case PodPhase::kPending:
      return "Pending";
    case PodPhase::kRunning:
      return "Running";
    case PodPhase::kSucceeded:
      return "Succeeded";
    case PodPhase::kFailed:
      return "Failed";
    case PodPhase::kUnknown:
      return "Unknown";
  }
  return "?";
}

std::string to_string(const Labels& labels) {
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ',';
    first = false;
    out += k;
    out += '=';
    out += v;
  }
  out += '}';
  return out;
}

std::string to_string(const Requirement& r) {
  switch (r.op) {
    case Op::kExists:
      return r.key;
    case Op::kDoesNotExist:
      return str('!', r.key);
    case Op::kIn:
    case Op::kNotIn: {
      std::string out = str(r.key, r.op == Op::kIn ? " in (" : " notin (");
      append_list(out, r.values, ",", [](const std::string& v) { return v; });
      out += ')';
      return out;
    }
  }
  return r.key;
}

std::string to_string(const LabelSelector& s) {
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : s.match_labels) {
    if (!first) out += ',';
    first = false;
    out += str(k, '=', v);
  }
  for (const auto& r : s.match_expressions) {
    if (!first) out += ',';
    first = false;
    out += to_string(r);
  }
  out += '}';
  return out;
}

std::string to_string(const ContainerPort& p) {
  if (p.name.empty()) return str(p.port, '/', to_string(p.protocol));
  return str(p.name, ':', p.port, '/', to_string(p.protocol));
}

std::string to_string(const PortRef& p) {
  if (auto* n = std::get_if<uint16_t>(&p)) return str(*n);
  return std::get<std::string>(p);
}

std::string to_string(const PolicyPort& p) {
  std::string out(to_string(p.protocol));
  if (p.port) out += str(':', to_string(*p.port));
  if (p.end_port) out += str('-', *p.end_port);
  return out;
}

std::string to_string(const IpBlock& b) {
  std::string out = b.cidr.to_string();
  if (!b.except.empty()) {
    out += " except ";
    append_list(out, b.except, ",", [](const Prefix& p) { return p.to_string(); });
  }
  return out;
}

std::string to_string(const PolicyPeer& p) {
  std::string out;
  if (p.pod_selector) out += str("pod", to_string(*p.pod_selector));
  if (p.namespace_selector) {
    if (!out.empty()) out += '&';
    out += str("ns", to_string(*p.namespace_selector));
  }
  if (p.ip_block) {
    if (!out.empty()) out += '&';
    out += str("ip ", to_string(*p.ip_block));
  }
  return out.empty() ? "<no peer>" : out;
}

std::string to_string(const PolicyRule& r) {
  std::string out = "peers=";
  if (r.peers.empty()) {
    out += "any";
  } else {
    out += '[';
    append_list(out, r.peers, ", ", [](const PolicyPeer& p) { return to_string(p); });
    out += ']';
  }
  out += " ports=";
  if (r.ports.empty()) {
    out += "any";
  } else {
    out += '[';
    append_list(out, r.ports, ", ", [](const PolicyPort& p) { return to_string(p); });
    out += ']';
  }
  return out;
}

std::string to_string(const Namespace& n) {
  return str("Namespace ", n.name, " labels=", to_string(n.labels));
}

std::string to_string(const Pod& p) {
  std::string out = str("Pod ", name_of(p.namespace_, p.name), ' ', to_string(p.phase));
  if (!p.node_name.empty()) out += str(" node=", p.node_name);
  if (p.host_network) out += " hostNetwork";
  out += " ips=[";
  append_list(out, p.ips, ",", [](const IpAddr& a) { return a.to_string(); });
  out += str("] labels=", to_string(p.labels), " ports=[");
  append_list(out, *p.ports, ",", [](const ContainerPort& c) { return to_string(c); });
  out += ']';
  return out;
}

std::string to_string(const Node& n) {
  std::string out = str("Node ", n.name, " podCIDRs=[");
  append_list(out, n.pod_cidrs, ",", [](const Prefix& p) { return p.to_string(); });
  out += "] internalIPs=[";
  append_list(out, n.internal_ips, ",", [](const IpAddr& a) { return a.to_string(); });
  out += str("] labels=", to_string(n.labels));
  return out;
}

std::string to_string(const NetworkPolicy& p) {
  std::string out = str("NetworkPolicy ", name_of(p.namespace_, p.name),
                        " podSelector=", to_string(p.pod_selector), " types=");
  if (p.ingress_isolation) out += "Ingress";
  if (p.ingress_isolation && p.egress_isolation) out += ',';
  if (p.egress_isolation) out += "Egress";
  if (!p.ingress_isolation && !p.egress_isolation) out += "none";
  out += str(" ingress=", rules(p.ingress), " egress=", rules(p.egress));
  return out;
}

}  // namespace knit::watcher
