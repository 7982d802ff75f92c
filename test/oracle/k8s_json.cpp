#include "test/oracle/k8s_json.hpp"

#include <stdexcept>

namespace knit::test::oracle {
namespace {

using nlohmann::json;

/// j[key] when present and not null.
const json* field(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

const json& list_or_empty(const json& j, const char* key) {
  static const json kEmpty = json::array();
  const json* f = field(j, key);
  return f ? *f : kEmpty;
}

const json& object_or_empty(const json& j, const char* key) {
  static const json kEmpty = json::object();
  const json* f = field(j, key);
  return f ? *f : kEmpty;
}

std::string string_or(const json& j, const char* key, const std::string& fallback) {
  const json* f = field(j, key);
  return f ? f->get<std::string>() : fallback;
}

Labels labels_of(const json& j) {
  const json* f = field(j, "labels");
  return f ? f->get<Labels>() : Labels{};
}

Selector selector_of(const json& j) {
  Selector s;
  if (const json* ml = field(j, "matchLabels")) s.match_labels = ml->get<Labels>();
  for (const json& e : list_or_empty(j, "matchExpressions")) {
    Requirement r;
    r.key = e.at("key").get<std::string>();
    r.op = e.at("operator").get<std::string>();
    for (const json& v : list_or_empty(e, "values")) r.values.push_back(v.get<std::string>());
    s.match_expressions.push_back(std::move(r));
  }
  return s;
}

Peer peer_of(const json& j) {
  Peer p;
  if (const json* s = field(j, "podSelector")) p.pod_selector = selector_of(*s);
  if (const json* s = field(j, "namespaceSelector")) p.namespace_selector = selector_of(*s);
  if (const json* b = field(j, "ipBlock")) {
    IpBlock block;
    block.cidr = b->at("cidr").get<std::string>();
    for (const json& e : list_or_empty(*b, "except")) block.except.push_back(e.get<std::string>());
    p.ip_block = std::move(block);
  }
  return p;
}

Port port_of(const json& j) {
  Port p;
  if (const json* proto = field(j, "protocol"))
    p.protocol = protocol_from_string(proto->get<std::string>());
  if (const json* port = field(j, "port")) {
    if (port->is_number_integer()) {
      p.port = port->get<int>();
    } else {
      p.port = port->get<std::string>();
    }
  }
  if (const json* end = field(j, "endPort")) p.end_port = end->get<int>();
  return p;
}

std::vector<Rule> rules_of(const json& spec, const char* direction, const char* peers_key) {
  std::vector<Rule> rules;
  for (const json& r : list_or_empty(spec, direction)) {
    Rule rule;
    for (const json& peer : list_or_empty(r, peers_key)) rule.peers.push_back(peer_of(peer));
    for (const json& port : list_or_empty(r, "ports")) rule.ports.push_back(port_of(port));
    rules.push_back(std::move(rule));
  }
  return rules;
}

void add_ports(const json& containers, std::vector<ContainerPort>& out) {
  for (const json& c : containers) {
    for (const json& p : list_or_empty(c, "ports")) {
      ContainerPort cp;
      cp.name = string_or(p, "name", "");
      cp.port = p.at("containerPort").get<int>();
      cp.protocol = protocol_from_string(string_or(p, "protocol", "TCP"));
      out.push_back(std::move(cp));
    }
  }
}

void add_object(const json& obj, Cluster& c) {
  std::string kind = string_or(obj, "kind", "");
  const json& meta = object_or_empty(obj, "metadata");
  if (kind == "List") {
    for (const json& item : list_or_empty(obj, "items")) add_object(item, c);
    return;
  }
  const json& spec = object_or_empty(obj, "spec");
  if (kind == "Namespace") {
    Namespace ns{meta.at("name").get<std::string>(), labels_of(meta)};
    ns.labels[kNamespaceNameLabel] = ns.name;
    c.namespaces.push_back(std::move(ns));
  } else if (kind == "Pod") {
    Pod pod;
    pod.namespace_ = string_or(meta, "namespace", "default");
    pod.name = meta.at("name").get<std::string>();
    pod.labels = labels_of(meta);
    if (const json* hn = field(spec, "hostNetwork")) pod.host_network = hn->get<bool>();
    add_ports(list_or_empty(spec, "containers"), pod.ports);
    json sidecars = json::array();
    for (const json& ic : list_or_empty(spec, "initContainers")) {
      if (string_or(ic, "restartPolicy", "") == "Always") sidecars.push_back(ic);
    }
    add_ports(sidecars, pod.ports);
    const json& status = object_or_empty(obj, "status");
    for (const json& ip : list_or_empty(status, "podIPs")) {
      pod.ips.push_back(ip.at("ip").get<std::string>());
    }
    if (const json* ip = field(status, "podIP"); ip && pod.ips.empty()) {
      pod.ips.push_back(ip->get<std::string>());
    }
    c.pods.push_back(std::move(pod));
  } else if (kind == "NetworkPolicy") {
    Policy p;
    p.namespace_ = string_or(meta, "namespace", "default");
    p.name = meta.at("name").get<std::string>();
    if (const json* ps = field(spec, "podSelector")) p.pod_selector = selector_of(*ps);
    for (const json& t : list_or_empty(spec, "policyTypes")) {
      p.policy_types.push_back(t.get<std::string>());
    }
    p.ingress = rules_of(spec, "ingress", "from");
    p.egress = rules_of(spec, "egress", "to");
    c.policies.push_back(std::move(p));
  }
}

}  // namespace

Cluster cluster_from_objects(const std::vector<json>& objects) {
  Cluster c;
  for (const json& obj : objects) {
    try {
      add_object(obj, c);
    } catch (const std::exception& e) {
      std::string what = obj.is_object() ? string_or(obj, "kind", "?") : "?";
      if (const json* meta = field(obj, "metadata")) {
        what += " " + string_or(*meta, "namespace", "") + "/" + string_or(*meta, "name", "");
      }
      throw std::runtime_error(what + ": " + e.what());
    }
  }
  return c;
}

}  // namespace knit::test::oracle
