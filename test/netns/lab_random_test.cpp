// A randomized differential test: random clusters and NetworkPolicies, the real datapath
// (`knit lab`: CNI ADD, the agent, nftables, real probes) against the reference evaluator in
// test/oracle/, which shares no code with knit's compiler.
//
// Each round is a function of its seed alone: 2-3 namespaces and 6-9 pods with random labels
// and containerPorts (TCP, UDP and SCTP; named ports whose numbers and protocols differ between
// pods, sidecars), and 3-5 policies (ingress and egress, pod and namespace selectors with
// matchLabels and matchExpressions, {} also written with empty lists, ipBlock with except and
// cidrs with host bits set, ports with protocols, endPort and names, empty peer and port lists,
// policyTypes written, empty or inferred). The first round brings a fresh lab up (the agent's
// start-up path); the later ones rewrite its directory (the agent's incremental path), so pods,
// labels, ports and policies change under a loaded table. A round goes in three phases, because
// an ipBlock can only name a pod's address once the pod is wired:
//   1. namespaces, pods and the policies without an ipBlock placeholder; probe TCP/80;
//   2. every policy, placeholders replaced by the lab's addresses; probe TCP (numeric and named
//      ports, IPv4, on some rounds IPv6), on some rounds UDP and on some SCTP;
//   3. a namespace and pods relabelled, a pod replaced (an ipBlock may name the gone address),
//      a policy edited (podSelector or policyTypes), one deleted; probe one port.
// Every probe is every pod to every other pod, compared cell by cell with the oracle (a cell is
// reachable when the destination serves the port and the policies allow the connection). On a
// mismatch the message has the seed, the objects as YAML and the differing pairs; replay one
// round in a fresh lab with KNIT_RANDOM_SEED=<seed> (with --log_level=message it prints the
// round's objects). KNIT_RANDOM_SEEDS=<first>:<count> runs other seeds in one lab, for soaks.
//
// The lab's pod ranges are tiny (--pod-cidr 10.77.0.0/28 and fd00:77::/124: 13 and 14
// addresses for up to 9 pods), so the round-robin IPAM hands freed addresses to other pods
// all the time: a pod removed and another added in one rewrite (the supervisor removes first),
// a pod of an earlier round's address in a later one, and in phase 3 an ipBlock or except
// naming the gone pod's address that another pod now has. The rounds count these reuses.
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <thread>
#include <variant>

#include "test/netns/fixture.hpp"
#include "test/oracle/k8s_json.hpp"
#include "test/oracle/scenario.hpp"

namespace fs = std::filesystem;
using namespace knit::test;
using namespace knit::test::oracle;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

/// The rounds of a normal run, in order. Chosen once, never changed: a failure names its seed.
constexpr uint64_t kSeeds[] = {0x5eed0001, 0xc0ffee42, 0x0badf00d, 20240611,
                               777,        0xfeedbeef, 0x1badcafe, 31337};

constexpr const char* kProbeTimeout = "400ms";

// ---- random objects --------------------------------------------------------------------------

/// mt19937_64 is specified bit for bit, and draws go through `% n` (not the library's
/// distributions, which differ between implementations): a seed means the same round anywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed) : g_(seed) {}
  int below(int n) { return static_cast<int>(g_() % static_cast<uint64_t>(n)); }
  int between(int lo, int hi) { return lo + below(hi - lo + 1); }
  bool chance(int percent) { return below(100) < percent; }
  template <class T>
  const T& pick(const std::vector<T>& v) {
    return v[static_cast<size_t>(below(static_cast<int>(v.size())))];
  }

 private:
  std::mt19937_64 g_;
};

using Vocabulary = std::vector<std::pair<std::string, std::vector<std::string>>>;

const Vocabulary kPodLabels = {
    {"app", {"web", "api", "db"}}, {"tier", {"front", "back"}}, {"team", {"red", "blue"}}};
const Vocabulary kNamespaceLabels = {{"env", {"prod", "dev"}}, {"team", {"red", "blue"}}};
const std::vector<std::string> kNamespacePool = {"alpha", "beta", "gamma"};

/// A pod ("ns/name") with its ports as declared, for the generator's own use.
struct GenPod {
  std::string ns;
  std::string name;
  std::string ref() const { return ns + "/" + name; }
};

json labels(Rng& rng, const Vocabulary& vocab, int percent_each) {
  json out = json::object();
  for (const auto& [key, values] : vocab) {
    if (rng.chance(percent_each)) out[key] = rng.pick(values);
  }
  return out;
}

/// A label selector over `vocab` (plus the namespace name label for namespace selectors): {}
/// sometimes, else one or two terms (matchLabels entries or matchExpressions), now and then
/// with a value no object has.
json selector(Rng& rng, const Vocabulary& vocab, const std::vector<std::string>& namespaces) {
  if (rng.chance(20)) {  // everything, also written with empty lists (the same selector)
    switch (rng.below(4)) {
      case 0:
        return {{"matchLabels", json::object()}};
      case 1:
        return {{"matchExpressions", json::array()}};
      default:
        return json::object();
    }
  }
  auto value_of = [&](const std::vector<std::string>& values) {
    return rng.chance(10) ? std::string("none") : rng.pick(values);
  };
  json labels = json::object();
  json exprs = json::array();
  int terms = rng.chance(70) ? 1 : 2;
  for (int i = 0; i < terms; ++i) {
    std::string key;
    std::vector<std::string> values;
    if (!namespaces.empty() && rng.chance(25)) {
      key = kNamespaceNameLabel;
      values = namespaces;
    } else {
      const auto& entry = rng.pick(vocab);
      key = entry.first;
      values = entry.second;
    }
    if (rng.chance(50)) {
      labels[key] = value_of(values);
      continue;
    }
    static const std::vector<std::string> kOps = {"In", "NotIn", "Exists", "DoesNotExist"};
    std::string op = rng.pick(kOps);
    json e = {{"key", key}, {"operator", op}};
    if (op == "In" || op == "NotIn") {
      json vs = json::array();
      int k = rng.between(1, 2);
      std::set<std::string> seen;
      for (int j = 0; j < k; ++j) {
        std::string v = value_of(values);
        if (seen.insert(v).second) vs.push_back(v);
      }
      e["values"] = vs;
    }
    exprs.push_back(e);
  }
  json s = json::object();
  if (!labels.empty()) s["matchLabels"] = labels;
  if (!exprs.empty()) s["matchExpressions"] = exprs;
  return s;
}

/// An ipBlock. Pod addresses exist only once pods are wired, so a block names them by
/// placeholder (test/oracle/scenario.hpp) and carries its family in "x-family", which
/// substitute_blocks() consumes.
json ip_block(Rng& rng, const std::vector<GenPod>& pods) {
  int family = rng.chance(70) ? 4 : 6;
  int bits = family == 4 ? 32 : 128;
  auto anchor = [&] { return rng.pick(pods).ref(); };
  json b = {{"x-family", family}};
  json except = json::array();
  switch (rng.below(5)) {
    case 0:
    case 1: {  // around one pod, maybe with a smaller hole around the same pod
      std::string p = anchor();
      int len = bits - rng.between(0, 6);
      b["cidr"] = "${cidr " + p + " " + std::to_string(len) + "}";
      // The API takes a cidr with host bits set ("10.77.0.5/29") as its network.
      if (len < bits && rng.chance(30)) b["cidr"] = "${ip " + p + "}/" + std::to_string(len);
      if (len < bits && rng.chance(50)) {
        except.push_back("${cidr " + p + " " + std::to_string(rng.between(len + 1, bits)) + "}");
      }
      break;
    }
    case 2: {  // every pod but one or two
      b["cidr"] = family == 4 ? "10.77.0.0/16" : "fd00:77::/64";
      std::string p = anchor(), q = anchor();
      except.push_back("${cidr " + p + "}");
      if (q != p && rng.chance(50))
        except.push_back("${cidr " + q + " " + std::to_string(bits - rng.below(3)) + "}");
      break;
    }
    case 3: {  // the whole family, a hole around a pod
      b["cidr"] = family == 4 ? "0.0.0.0/0" : "::/0";
      if (rng.chance(85)) {
        except.push_back("${cidr " + anchor() + " " + std::to_string(bits - rng.below(5)) + "}");
      }
      break;
    }
    default:  // no pod at all (the lab's node network)
      b["cidr"] = family == 4 ? "10.99.0.0/24" : "fd99::/64";
      break;
  }
  if (!except.empty()) b["except"] = except;
  return b;
}

json peer(Rng& rng, const std::vector<GenPod>& pods, const std::vector<std::string>& namespaces) {
  int kind = rng.below(100);
  json p = json::object();
  if (kind < 25) {
    p["podSelector"] = selector(rng, kPodLabels, {});
  } else if (kind < 45) {
    p["namespaceSelector"] = selector(rng, kNamespaceLabels, namespaces);
  } else if (kind < 65) {
    p["namespaceSelector"] = selector(rng, kNamespaceLabels, namespaces);
    p["podSelector"] = selector(rng, kPodLabels, {});
  } else {
    p["ipBlock"] = ip_block(rng, pods);
  }
  return p;
}

/// A port entry. The ranges have the probed ports (53, 80, 81, 8080, 5353) on and next to
/// their bounds, and names are asked for with either protocol.
json port_entry(Rng& rng) {
  static const std::vector<json> kPorts = {
      {{"port", 80}},
      {{"protocol", "TCP"}, {"port", 8080}},
      {{"port", 81}},
      {{"protocol", "TCP"}, {"port", 53}},
      {{"port", 80}, {"endPort", 8080}},
      {{"port", 79}, {"endPort", 80}},
      {{"port", 8080}, {"endPort", 8081}},
      {{"port", 53}, {"endPort", 81}},
      {{"protocol", "TCP"}, {"port", 81}, {"endPort", 100}},
      {{"port", 8000}, {"endPort", 9000}},
      {{"port", "http"}},
      {{"protocol", "TCP"}, {"port", "dns"}},
      {{"protocol", "TCP"}, {"port", "metrics"}},
      {{"protocol", "UDP"}, {"port", "dns"}},
      {{"protocol", "UDP"}, {"port", "http"}},
      {{"protocol", "UDP"}, {"port", 53}},
      {{"protocol", "UDP"}, {"port", 80}},
      {{"protocol", "UDP"}, {"port", 50}, {"endPort", 60}},
      {{"protocol", "UDP"}, {"port", 53}, {"endPort", 5353}},
      {{"protocol", "UDP"}, {"port", 54}, {"endPort", 6000}},
      {{"protocol", "UDP"}},
      {{"protocol", "TCP"}},
      {{"protocol", "SCTP"}, {"port", 80}},
      {{"protocol", "SCTP"}, {"port", 79}, {"endPort", 81}},
      {{"protocol", "SCTP"}, {"port", "http"}},
      {{"protocol", "SCTP"}, {"port", "sctp"}},
      {{"protocol", "SCTP"}},
  };
  return rng.pick(kPorts);
}

json rule(Rng& rng, const std::vector<GenPod>& pods, const std::vector<std::string>& namespaces,
          const char* peers_key) {
  json r = json::object();
  if (rng.chance(5)) return r;  // everything
  // An empty list is written now and then where a list is left out: the same rule.
  if (rng.chance(85)) {
    json peers = json::array();
    int n = rng.chance(75) ? 1 : 2;
    for (int i = 0; i < n; ++i) peers.push_back(peer(rng, pods, namespaces));
    r[peers_key] = peers;
  } else if (rng.chance(30)) {
    r[peers_key] = json::array();
  }
  if (rng.chance(65)) {
    json ports = json::array();
    int n = rng.chance(75) ? 1 : 2;
    for (int i = 0; i < n; ++i) ports.push_back(port_entry(rng));
    r["ports"] = ports;
  } else if (rng.chance(15)) {
    r["ports"] = json::array();
  }
  return r;
}

json policy(Rng& rng, int index, const std::vector<GenPod>& pods,
            const std::vector<std::string>& namespaces) {
  json spec = json::object();
  spec["podSelector"] = selector(rng, kPodLabels, {});
  bool ingress = true, egress = false;
  switch (rng.below(4)) {
    case 0:  // policyTypes absent or empty: inferred from the rules written
      egress = rng.chance(50);
      if (rng.chance(25)) spec["policyTypes"] = json::array();
      break;
    case 1:
      spec["policyTypes"] = json::array({"Ingress"});
      break;
    case 2:
      spec["policyTypes"] = json::array({"Egress"});
      ingress = false;
      egress = true;
      break;
    default:
      spec["policyTypes"] = json::array({"Ingress", "Egress"});
      egress = true;
      break;
  }
  // Rules of a direction the policy does not have are written now and then: they must be
  // ignored.
  if (ingress || rng.chance(10)) {
    json rules = json::array();
    int n = rng.below(3);
    for (int i = 0; i < n; ++i) rules.push_back(rule(rng, pods, namespaces, "from"));
    if (!rules.empty() || rng.chance(50)) spec["ingress"] = rules;
  }
  if (egress || rng.chance(10)) {
    json rules = json::array();
    int n = rng.below(3);
    if (spec.value("policyTypes", json::array()).empty()) n = std::max(n, 1);  // Egress inferred
    for (int i = 0; i < n; ++i) rules.push_back(rule(rng, pods, namespaces, "to"));
    if (!rules.empty() || rng.chance(50)) spec["egress"] = rules;
  }
  return {
      {"apiVersion", "networking.k8s.io/v1"},
      {"kind", "NetworkPolicy"},
      {"metadata", {{"name", "pol" + std::to_string(index)}, {"namespace", rng.pick(namespaces)}}},
      {"spec", spec}};
}

/// containerPorts: per slot absent, unnamed or named. Names are unique within a pod (given in
/// a random slot order), and the same name means different numbers and protocols on different
/// pods ("http" is TCP 80, TCP 8080, UDP 80 or SCTP 80; "dns" UDP 53, UDP 5353, TCP 53 or
/// TCP 81).
json container_ports(Rng& rng) {
  struct Slot {
    int port;
    const char* protocol;
    std::vector<std::string> names;
  };
  static const std::vector<Slot> kSlots = {
      {80, "TCP", {"http"}}, {8080, "TCP", {"http", "alt"}}, {81, "TCP", {"metrics", "dns"}},
      {53, "TCP", {"dns"}},  {53, "UDP", {"dns"}},           {5353, "UDP", {"dns"}},
      {80, "UDP", {"http"}}, {80, "SCTP", {"sctp", "http"}}};
  std::vector<size_t> order(kSlots.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  for (size_t i = order.size() - 1; i > 0; --i) {
    std::swap(order[i], order[static_cast<size_t>(rng.below(static_cast<int>(i) + 1))]);
  }
  std::vector<json> declared(kSlots.size());
  std::set<std::string> used;
  for (size_t i : order) {
    const Slot& s = kSlots[i];
    if (rng.chance(40)) continue;
    json p = {{"containerPort", s.port}};
    if (rng.chance(50) || std::string(s.protocol) != "TCP") p["protocol"] = s.protocol;
    if (rng.chance(60)) {
      const std::string& name = rng.pick(s.names);
      if (used.insert(name).second) p["name"] = name;
    }
    declared[i] = p;
  }
  json ports = json::array();
  for (const json& p : declared) {
    if (!p.is_null()) ports.push_back(p);
  }
  return ports;
}

json pod_object(Rng& rng, const GenPod& g) {
  json ports = container_ports(rng);
  json containers = json::array();
  json init = json::array();
  json main = {{"name", "main"}, {"image", "agnhost"}, {"ports", json::array()}};
  json second = {{"name", "second"}, {"image", "agnhost"}, {"ports", json::array()}};
  json sidecar = {{"name", "sidecar"},
                  {"image", "agnhost"},
                  {"restartPolicy", "Always"},
                  {"ports", json::array()}};
  for (const json& p : ports) {
    int where = rng.below(10);
    (where < 6 ? main : where < 8 ? second : sidecar)["ports"].push_back(p);
  }
  containers.push_back(main);
  if (!second["ports"].empty()) containers.push_back(second);
  if (!sidecar["ports"].empty()) init.push_back(sidecar);
  if (rng.chance(15)) {  // an init container's port is not the pod's: nobody serves it
    init.push_back({{"name", "setup"},
                    {"image", "agnhost"},
                    {"ports", json::array({{{"containerPort", 9090}, {"name", "setup"}}})}});
  }
  json spec = {{"containers", containers}};
  if (!init.empty()) spec["initContainers"] = init;
  json meta = {{"name", g.name}, {"namespace", g.ns}};
  json l = labels(rng, kPodLabels, 60);
  if (rng.chance(90)) l["app"] = rng.pick(kPodLabels[0].second);
  if (!l.empty()) meta["labels"] = l;
  return {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", meta}, {"spec", spec}};
}

/// The round of `seed`: every object by key, policies with placeholders.
Objects generate(uint64_t seed) {
  Rng rng(seed);
  Objects out;
  std::vector<std::string> namespaces = kNamespacePool;
  if (rng.chance(50)) namespaces.erase(namespaces.begin() + rng.below(3));
  for (const auto& name : namespaces) {
    json meta = {{"name", name}};
    json l = labels(rng, kNamespaceLabels, 60);
    if (!l.empty()) meta["labels"] = l;
    json ns = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", meta}};
    out[object_key(ns)] = ns;
  }
  int npods = rng.between(6, 9);
  std::vector<GenPod> pods;
  std::set<std::string> taken;
  // Every namespace gets a pod, then the rest anywhere; names p0..p4 recur across rounds, so
  // the same pod is relabelled or re-ported by the next round rather than replaced.
  while (static_cast<int>(pods.size()) < npods) {
    std::string ns =
        pods.size() < namespaces.size() ? namespaces[pods.size()] : rng.pick(namespaces);
    GenPod g{ns, "p" + std::to_string(rng.below(5))};
    if (!taken.insert(g.ref()).second) continue;
    pods.push_back(g);
  }
  for (const GenPod& g : pods) {
    json p = pod_object(rng, g);
    out[object_key(p)] = p;
  }
  int npolicies = rng.between(3, 5);
  for (int i = 0; i < npolicies; ++i) {
    json p = policy(rng, i, pods, namespaces);
    std::string key = object_key(p);
    if (!out.count(key)) out[key] = p;
  }
  return out;
}

/// Sets, changes or removes one label of `meta` from `vocab`: a change every time.
void flip_label(Rng& rng, json& meta, const Vocabulary& vocab) {
  json l = meta.value("labels", json::object());
  const auto& [key, values] = rng.pick(vocab);
  if (l.contains(key) && rng.chance(40)) {
    l.erase(key);
  } else {
    std::vector<std::string> others;
    for (const auto& v : values) {
      if (!l.contains(key) || l[key] != v) others.push_back(v);
    }
    l[key] = rng.pick(others);
  }
  if (l.empty()) {
    meta.erase("labels");
  } else {
    meta["labels"] = l;
  }
}

/// Phase 3 of a round: its cluster a moment later, under loaded rules. A namespace and a few
/// pods are relabelled (selectors must be re-evaluated), a pod may go (an ipBlock may still name
/// its address, which the lab's small ranges may have handed to another pod) and another come, a
/// policy's podSelector or policyTypes may be edited and a policy deleted. A function of the seed
/// and the phase 2 objects.
Objects mutate(uint64_t seed, Objects objects) {
  Rng rng(seed ^ 0xd1b54a32d192ed03ULL);
  std::vector<std::string> namespaces, pods, policies;
  for (const auto& [key, obj] : objects) {
    const std::string kind = obj.at("kind");
    (kind == "Namespace" ? namespaces : kind == "Pod" ? pods : policies).push_back(key);
  }
  if (rng.chance(60)) flip_label(rng, objects[rng.pick(namespaces)]["metadata"], kNamespaceLabels);
  for (int i = rng.below(3); i > 0; --i) {
    flip_label(rng, objects[rng.pick(pods)]["metadata"], kPodLabels);
  }
  if (rng.chance(30) && pods.size() > 3) {
    const std::string gone = rng.pick(pods);
    std::string ns = objects[gone]["metadata"]["namespace"];
    objects.erase(gone);
    if (rng.chance(60)) {
      json p = pod_object(rng, GenPod{ns, "q" + std::to_string(rng.below(5))});
      objects[object_key(p)] = p;
    }
  }
  if (rng.chance(30) && !policies.empty()) {  // whom a policy selects, or its types, edited
    json& spec = objects[rng.pick(policies)]["spec"];
    if (rng.chance(50)) {
      spec["podSelector"] = selector(rng, kPodLabels, {});
    } else {
      static const std::vector<json> kTypes = {json::array({"Ingress"}), json::array({"Egress"}),
                                               json::array({"Ingress", "Egress"}), json::array()};
      spec["policyTypes"] = rng.pick(kTypes);
    }
  }
  if (rng.chance(20) && !policies.empty()) objects.erase(rng.pick(policies));
  return objects;
}

bool has_placeholder(const json& obj) {
  return obj.dump().find("${") != std::string::npos;
}

/// Replaces every ipBlock's placeholders with addresses of its family, dropping "x-family".
json substitute_blocks(const json& value,
                       const std::map<std::pair<std::string, int>, std::string>& ips) {
  if (value.is_array()) {
    json out = json::array();
    for (const json& v : value) out.push_back(substitute_blocks(v, ips));
    return out;
  }
  if (!value.is_object()) return value;
  if (value.contains("x-family")) {
    int family = value["x-family"].get<int>();
    json block = value;
    block.erase("x-family");
    return substitute(block, [&](const std::string& ref) {
      auto it = ips.find({ref, family});
      if (it == ips.end()) {
        throw std::runtime_error("the lab reports no IPv" + std::to_string(family) + " for " + ref);
      }
      return it->second;
    });
  }
  json out = json::object();
  for (const auto& [k, v] : value.items()) out[k] = substitute_blocks(v, ips);
  return out;
}

/// The objects without the generator's family tags (for the objects written before phase 2).
json strip_tags(const json& value) {
  return substitute_blocks(value, {});
}

// ---- YAML, for people ------------------------------------------------------------------------

std::string yaml_key(const std::string& k) {
  static const std::regex kPlain(R"([A-Za-z0-9_./-]+)");
  return std::regex_match(k, kPlain) ? k : json(k).dump();
}

void emit_yaml(const json& v, int indent, std::string& out) {
  std::string pad(static_cast<size_t>(indent), ' ');
  auto inline_value = [](const json& x) {
    return (x.is_object() || x.is_array()) && !x.empty() ? std::string() : x.dump();
  };
  if (v.is_object()) {
    for (const auto& [k, x] : v.items()) {
      std::string in = inline_value(x);
      if (!in.empty()) {
        out += pad + yaml_key(k) + ": " + in + "\n";
      } else {
        out += pad + yaml_key(k) + ":\n";
        emit_yaml(x, indent + 2, out);
      }
    }
  } else if (v.is_array()) {
    for (const json& x : v) {
      std::string in = inline_value(x);
      if (!in.empty()) {
        out += pad + "- " + in + "\n";
      } else {
        std::string nested;
        emit_yaml(x, indent + 2, nested);
        out += pad + "- " + nested.substr(static_cast<size_t>(indent) + 2);
      }
    }
  } else {
    out += pad + v.dump() + "\n";
  }
}

std::string to_yaml(const json& obj) {
  std::string out = "---\n";
  emit_yaml(obj, 0, out);
  return out;
}

// ---- the lab ---------------------------------------------------------------------------------

std::string arg_list(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) out += (out.empty() ? "" : " ") + a;
  return out;
}

/// A lab whose directory holds one file per object, rewritten round after round.
class RandomLab {
 public:
  RandomLab() {
    char tmpl[] = "/tmp/knit-random-XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    root_ = tmpl;
    fs::create_directories(manifests());
    fs::create_directories(root_ + "/staging");
  }
  ~RandomLab() {
    if (up_) {
      Proc down = knit({"down", "--name", name_}, std::chrono::minutes(1));
      if (down.status != 0) BOOST_TEST_MESSAGE("knit lab down failed: " << down.err << down.out);
    }
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  RandomLab(const RandomLab&) = delete;
  RandomLab& operator=(const RandomLab&) = delete;

  bool up() const { return up_; }

  /// Makes the directory hold exactly `want` (changed files written, others removed).
  void rewrite(const Objects& want) {
    for (auto it = have_.begin(); it != have_.end();) {
      if (!want.count(it->first)) {
        std::error_code ec;
        fs::remove(manifests() + "/" + file_name(it->first), ec);
        if (ec) throw std::runtime_error("remove " + it->first + ": " + ec.message());
        it = have_.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& [key, obj] : want) {
      auto it = have_.find(key);
      if (it != have_.end() && it->second == obj) continue;
      std::string staged = root_ + "/staging/" + file_name(key);
      {
        std::ofstream out(staged);
        out << obj.dump(2) << "\n";
        if (!out.good()) throw std::runtime_error("write " + staged);
      }
      fs::rename(staged, manifests() + "/" + file_name(key));
      have_[key] = obj;
    }
  }

  /// `knit lab up` on the directory as it is. Empty on success, else why not.
  std::string start() {
    Proc r = knit({"up", "--dir", manifests(), "--name", name_, "--pod-cidr", "10.77.0.0/28",
                   "--pod-cidr", "fd00:77::/124"},
                  std::chrono::minutes(3));
    if (r.status != 0)
      return "knit lab up failed (" + std::to_string(r.status) + "): " + r.err + r.out;
    up_ = true;
    return {};
  }

  /// Waits until the supervisor has wired exactly `pods` ("ns/name"); returns (pod, family) ->
  /// first address, or throws with what it saw last.
  std::map<std::pair<std::string, int>, std::string> wait_wired(const std::set<std::string>& pods) {
    auto deadline = Clock::now() + std::chrono::seconds(60);
    std::string last;
    for (;;) {
      Proc st = knit({"status", "--name", name_, "-o", "json"}, std::chrono::seconds(30));
      std::map<std::pair<std::string, int>, std::string> ips;
      std::set<std::string> seen;
      bool ready = st.status == 0;
      if (ready) {
        json status = json::parse(st.out);
        for (const json& pod : status.at("pods")) {
          std::string ref =
              pod.at("namespace").get<std::string>() + "/" + pod.at("name").get<std::string>();
          seen.insert(ref);
          if (pod.contains("error")) {
            last = ref + ": " + pod["error"].get<std::string>();
            ready = false;
          }
          for (const json& ip : pod.at("ips")) {
            std::string text = ip.get<std::string>();
            ips.emplace(std::make_pair(ref, text.find(':') == std::string::npos ? 4 : 6), text);
          }
        }
        for (const auto& ref : pods) {
          if (!ips.count({ref, 4}) || !ips.count({ref, 6})) ready = false;
        }
        if (seen != pods) ready = false;
      } else {
        last = "knit lab status: " + st.err;
      }
      if (ready) return ips;
      if (Clock::now() > deadline) {
        throw std::runtime_error("the lab did not wire the round's pods within 60 s: " + last +
                                 "\n" + st.out);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  /// `knit lab probe` of one port, protocol and family: the observed table, or a message.
  std::variant<Table, std::string> probe(const PortRef& port, Protocol protocol, int family) {
    std::vector<std::string> args = {"probe",
                                     "--name",
                                     name_,
                                     "--port",
                                     port_string(port),
                                     "--protocol",
                                     to_string(protocol),
                                     "--family",
                                     std::to_string(family),
                                     "--timeout",
                                     kProbeTimeout,
                                     "-o",
                                     "json"};
    Proc r = knit(args, std::chrono::minutes(2));
    if (r.status != 0) {
      return "knit lab " + arg_list(args) + " exited " + std::to_string(r.status) + ": " + r.err;
    }
    try {
      json j = json::parse(r.out);
      Table t;
      t.pods = j.at("pods").get<std::vector<std::string>>();
      for (const auto& [from, row] : j.at("matrix").items()) {
        for (const auto& [to, reachable] : row.items()) {
          if (from != to) t.cells[{from, to}] = reachable.get<bool>();
        }
      }
      return t;
    } catch (const std::exception& e) {
      return "knit lab " + arg_list(args) + ": unreadable output (" + e.what() + "):\n" + r.out;
    }
  }

 private:
  static std::string file_name(const std::string& key) {
    std::string out;
    for (char c : key) out += c == '/' ? '_' : static_cast<char>(std::tolower(c));
    return out + ".json";
  }
  std::string manifests() const { return root_ + "/manifests"; }
  Proc knit(std::vector<std::string> args, std::chrono::milliseconds timeout) const {
    args.insert(args.begin(), {knit_binary(), "lab"});
    return run(args, {}, {}, {}, timeout);
  }

  // t<pid>-...: the pattern cleanup.sh takes down after a killed run.
  std::string name_ = "t" + std::to_string(getpid()) + "-random";
  std::string root_;
  bool up_ = false;
  Objects have_;
};

// ---- expectations ----------------------------------------------------------------------------

/// Whether `pod` serves `port` of `protocol`: a declared number, or a name declared with it.
bool serves(const Pod& pod, const PortRef& port, Protocol protocol) {
  for (const ContainerPort& cp : pod.ports) {
    if (cp.protocol != protocol) continue;
    if (const int* n = std::get_if<int>(&port);
        n ? cp.port == *n : cp.name == std::get<std::string>(port)) {
      return true;
    }
  }
  return false;
}

/// The oracle's table: `to` serves the port (a name resolves per destination) and the
/// policies allow the connection. Counts in `denied` the cells served but not allowed.
Table expected_table(const Cluster& c, const PortRef& port, Protocol protocol, int family,
                     int& denied) {
  Table t;
  for (const Pod& p : c.pods) t.pods.push_back(p.namespace_ + "/" + p.name);
  for (const Pod& from : c.pods) {
    for (const Pod& to : c.pods) {
      if (&from == &to) continue;
      std::string a = from.namespace_ + "/" + from.name, b = to.namespace_ + "/" + to.name;
      bool served = serves(to, port, protocol);
      bool ok = allowed(c, Endpoint::pod(a), Endpoint::pod(b), protocol, port, family);
      t.cells[{a, b}] = served && ok;
      if (served && !ok) ++denied;
    }
  }
  return t;
}

struct ProbeSpec {
  PortRef port;
  Protocol protocol;
  int family;
};

std::string describe(const ProbeSpec& p) {
  return to_string(p.protocol) + "/" + port_string(p.port) + " IPv" + std::to_string(p.family);
}

/// The probes of phase 2 of a round: TCP numeric and named ports always, IPv6 and UDP on some
/// rounds (chosen by the seed, so a replay probes the same).
std::vector<ProbeSpec> final_probes(uint64_t seed) {
  Rng rng(seed ^ 0x9e3779b97f4a7c15ULL);
  const std::vector<PortRef> tcp_extra = {81, std::string("dns"), 53};
  const std::vector<PortRef> udp_extra = {80, std::string("http")};
  std::vector<ProbeSpec> out = {{80, Protocol::kTcp, 4},
                                {8080, Protocol::kTcp, 4},
                                {std::string("http"), Protocol::kTcp, 4},
                                {rng.pick(tcp_extra), Protocol::kTcp, 4}};
  if (rng.chance(50)) {
    out.push_back({std::string("http"), Protocol::kTcp, 6});
    out.push_back({rng.pick(tcp_extra), Protocol::kTcp, 6});
  }
  if (rng.chance(60)) {
    int family = rng.chance(70) ? 4 : 6;
    out.push_back({53, Protocol::kUdp, family});
    out.push_back({std::string("dns"), Protocol::kUdp, family});
    out.push_back({rng.pick(udp_extra), Protocol::kUdp, family});
  }
  if (rng.chance(35)) {  // the raw-socket SCTP INIT probe (lab/sctp.hpp)
    int family = rng.chance(70) ? 4 : 6;
    static const std::vector<PortRef> kSctp = {80, std::string("sctp"), std::string("http")};
    out.push_back({rng.pick(kSctp), Protocol::kSctp, family});
  }
  return out;
}

/// The probe of phase 3: TCP/80 on half the rounds, else one other (one probe, so that the
/// default run takes about as long as before phase 3).
std::vector<ProbeSpec> later_probes(uint64_t seed) {
  Rng rng(seed ^ 0x94d049bb133111ebULL);
  static const std::vector<ProbeSpec> kOther = {{std::string("http"), Protocol::kTcp, 4},
                                                {80, Protocol::kTcp, 6},
                                                {53, Protocol::kUdp, 4},
                                                {80, Protocol::kSctp, 4}};
  if (rng.chance(50)) return {{80, Protocol::kTcp, 4}};
  return {rng.pick(kOther)};
}

/// The objects as the oracle reads them: pods get the lab's addresses as status.podIPs.
Cluster oracle_cluster(const Objects& objects,
                       const std::map<std::pair<std::string, int>, std::string>& ips) {
  std::vector<json> list;
  for (const auto& [key, obj] : objects) {
    json o = obj;
    if (o.at("kind") == "Pod") {
      std::string ref = object_key(o).substr(4);
      json pod_ips = json::array();
      for (int family : {4, 6}) {
        auto it = ips.find({ref, family});
        if (it != ips.end()) pod_ips.push_back({{"ip", it->second}});
      }
      o["status"] = {{"podIPs", pod_ips}};
    }
    list.push_back(o);
  }
  return cluster_from_objects(list);
}

/// The rounds to run in one lab: KNIT_RANDOM_SEED=<n> replays one round in a fresh lab;
/// KNIT_RANDOM_SEEDS=<first>:<count> runs consecutive seeds (a soak of the incremental path
/// between rounds); else kSeeds.
std::vector<uint64_t> seeds() {
  if (const char* s = std::getenv("KNIT_RANDOM_SEED")) return {std::stoull(s, nullptr, 0)};
  if (const char* s = std::getenv("KNIT_RANDOM_SEEDS")) {
    std::string text = s;
    auto colon = text.find(':');
    uint64_t first = std::stoull(text.substr(0, colon), nullptr, 0);
    uint64_t count = colon == std::string::npos ? 1 : std::stoull(text.substr(colon + 1));
    std::vector<uint64_t> out;
    for (uint64_t i = 0; i < count; ++i) out.push_back(first + i);
    return out;
  }
  return {std::begin(kSeeds), std::end(kSeeds)};
}

/// How to replay the round of `seed`: alone, and with the rounds that ran before it in this lab.
std::string replay_hint(uint64_t seed) {
  std::string out = "replay: KNIT_RANDOM_SEED=" + std::to_string(seed);
  auto all = seeds();
  if (all.front() != seed) {
    out += std::getenv("KNIT_RANDOM_SEEDS")
               ? " or KNIT_RANDOM_SEEDS=" + std::to_string(all.front()) + ":" +
                     std::to_string(seed - all.front() + 1)
               : " or the default run";
  }
  return out + " netns_lab --run_test=lab_random";
}

std::string report(uint64_t seed, const std::string& phase, const Objects& objects,
                   const std::map<std::pair<std::string, int>, std::string>& ips,
                   const std::vector<std::string>& differences) {
  std::string out = "seed " + std::to_string(seed) + " (" + replay_hint(seed) + "), " + phase +
                    ": the datapath and the oracle disagree\npods:\n";
  for (const auto& [key, obj] : objects) {
    if (obj.at("kind") != "Pod") continue;
    std::string ref = key.substr(4);
    out += "  " + ref;
    for (int family : {4, 6}) {
      auto it = ips.find({ref, family});
      if (it != ips.end()) out += " " + it->second;
    }
    out += " labels=" + obj["metadata"].value("labels", json::object()).dump() + "\n";
  }
  out += "objects:\n";
  for (const auto& [key, obj] : objects) {
    if (obj.at("kind") != "Pod") out += to_yaml(obj);
  }
  for (const auto& [key, obj] : objects) {
    if (obj.at("kind") == "Pod") out += to_yaml(obj);
  }
  out += "differing pairs (expected is the oracle's, observed the datapath's):\n";
  for (const auto& d : differences) out += "  " + d + "\n";
  return out;
}

/// Cells compared, and how many of them the oracle expects reachable.
struct Tally {
  int cells = 0;
  int reachable = 0;
  int denied = 0;  ///< served, but not allowed by the policies
  int reused = 0;  ///< addresses wired to a pod that another pod had before
  int reused_in_phase3 = 0;  ///< of those, a phase 2 pod's address in phase 3 (ipBlocks name it)
};

/// Counts the addresses of `ips` that another pod had last; remembers the holders.
int count_reuse(const std::map<std::pair<std::string, int>, std::string>& ips,
                std::map<std::string, std::string>& holders) {
  int n = 0;
  for (const auto& [pod_family, ip] : ips) {
    auto [it, fresh] = holders.try_emplace(ip, pod_family.first);
    if (!fresh && it->second != pod_family.first) {
      ++n;
      it->second = pod_family.first;
    }
  }
  return n;
}

/// Probes `probes` and returns one line per cell where the datapath and the oracle differ.
std::vector<std::string> compare(RandomLab& lab, const Cluster& cluster,
                                 const std::vector<ProbeSpec>& probes, Tally& tally) {
  std::vector<std::string> out;
  for (const ProbeSpec& p : probes) {
    auto result = lab.probe(p.port, p.protocol, p.family);
    if (auto* message = std::get_if<std::string>(&result)) {
      out.push_back(describe(p) + ": " + *message);
      continue;
    }
    Table expected = expected_table(cluster, p.port, p.protocol, p.family, tally.denied);
    for (const auto& [pair, reachable] : expected.cells) {
      ++tally.cells;
      tally.reachable += reachable ? 1 : 0;
    }
    for (const auto& d : table_diff(expected, std::get<Table>(result))) {
      out.push_back(describe(p) + ": " + d);
    }
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(lab_random, *boost::unit_test::precondition(NeedsNetns()))

BOOST_AUTO_TEST_CASE(datapath_matches_oracle) {
  auto t0 = Clock::now();
  RandomLab lab;
  Tally total;
  std::map<std::string, std::string> holders;  // address -> the pod that had it last
  for (uint64_t seed : seeds()) {
    Tally tally;
    auto round_start = Clock::now();
    Objects all = generate(seed);
    Objects phase1;
    std::set<std::string> pods;
    for (const auto& [key, obj] : all) {
      if (!has_placeholder(obj)) phase1[key] = strip_tags(obj);
      if (obj.at("kind") == "Pod") pods.insert(key.substr(4));
    }
    std::map<std::pair<std::string, int>, std::string> ips;
    try {
      lab.rewrite(phase1);
      if (!lab.up()) {
        std::string error = lab.start();
        BOOST_REQUIRE_MESSAGE(error.empty(), "seed " << seed << ": " << error);
      }
      ips = lab.wait_wired(pods);
    } catch (const std::exception& e) {
      BOOST_FAIL("seed " << seed << ": " << e.what());
    }
    tally.reused += count_reuse(ips, holders);
    // Phase 1: pods, labels and ports changed (or a fresh agent) under the placeholder-free
    // policies.
    auto diff1 = compare(lab, oracle_cluster(phase1, ips), {{80, Protocol::kTcp, 4}}, tally);
    BOOST_TEST(diff1.empty(),
               report(seed, "phase 1 (before the ipBlock policies)", phase1, ips, diff1));
    // Phase 2: every policy.
    Objects phase2;
    for (const auto& [key, obj] : all) phase2[key] = substitute_blocks(obj, ips);
    lab.rewrite(phase2);
    if (std::getenv("KNIT_RANDOM_SEED")) {  // a replay shows its round (--log_level=message)
      std::string yaml;
      for (const auto& [key, obj] : phase2) yaml += to_yaml(obj);
      BOOST_TEST_MESSAGE("seed " << seed << ":\n" << yaml);
    }
    auto diff2 = compare(lab, oracle_cluster(phase2, ips), final_probes(seed), tally);
    BOOST_TEST(diff2.empty(), report(seed, "phase 2 (every policy)", phase2, ips, diff2));
    // Phase 3: relabelled, a pod replaced, a policy edited, one deleted.
    Objects phase3 = mutate(seed, phase2);
    std::set<std::string> pods3;
    for (const auto& [key, obj] : phase3) {
      if (obj.at("kind") == "Pod") pods3.insert(key.substr(4));
    }
    try {
      lab.rewrite(phase3);
      ips = lab.wait_wired(pods3);
    } catch (const std::exception& e) {
      BOOST_FAIL("seed " << seed << " phase 3: " << e.what());
    }
    int again = count_reuse(ips, holders);
    tally.reused += again;
    tally.reused_in_phase3 += again;
    auto diff3 = compare(lab, oracle_cluster(phase3, ips), later_probes(seed), tally);
    BOOST_TEST(diff3.empty(), report(seed, "phase 3 (relabelled, a pod replaced, policies edited)",
                                     phase3, ips, diff3));
    BOOST_TEST_MESSAGE(
        "seed "
        << seed << ": " << pods.size() << " pods, " << all.size() - pods.size()
        << " namespaces and policies, " << tally.cells << " cells (" << tally.reachable
        << " reachable, " << tally.denied << " denied by policy), " << tally.reused
        << " addresses reused (" << tally.reused_in_phase3 << " in phase 3), "
        << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - round_start).count()
        << " ms");
    total.cells += tally.cells;
    total.reachable += tally.reachable;
    total.denied += tally.denied;
    total.reused += tally.reused;
    total.reused_in_phase3 += tally.reused_in_phase3;
  }
  BOOST_TEST_MESSAGE(
      "lab_random: "
      << total.cells << " cells compared (" << total.reachable << " reachable, " << total.denied
      << " denied by policy), " << total.reused << " addresses reused (" << total.reused_in_phase3
      << " in phase 3) in "
      << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count() << " ms");
}

BOOST_AUTO_TEST_SUITE_END()
