// The upstream NetworkPolicy e2e scenarios (test/data/e2e/) against the reference evaluator
// (test/oracle/), and the evaluator against the edge cases of NetworkPolicy semantics.
//
// The scenario tables were transcribed from upstream's Reachability calls; the oracle was written
// from the API reference. Each checks the other: a disagreement is either a transcription error
// or an oracle bug, and is settled by reading upstream's source, never by editing one to match.
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <set>
#include <sstream>

#include "test/oracle/k8s_json.hpp"
#include "test/oracle/netpol_oracle.hpp"
#include "test/oracle/scenario.hpp"
#include "test/oracle/yaml_json.hpp"

namespace bdata = boost::unit_test::data;
using namespace knit::test::oracle;
using nlohmann::json;

namespace {

std::string e2e_dir() {
  return std::string(KNIT_TEST_DATA) + "/e2e";
}

/// Addresses the scenario pods get in this test: x/a 10.244.0.10, y/b 10.244.1.11, ...; for
/// IPv6 fd00:10:244:1::11. All lie in one /4, as scenarios 35 and 36 assume (one pod range).
std::string pod_ip(const std::string& ref, int family) {
  auto slash = ref.find('/');
  BOOST_REQUIRE(slash == 1 && ref.size() == 3);
  int ns = ref[0] - 'x', pod = ref[2] - 'a';
  BOOST_REQUIRE(ns >= 0 && ns < 3 && pod >= 0 && pod < 3);
  std::ostringstream out;
  if (family == 4) {
    out << "10.244." << ns << "." << 10 + pod;
  } else {
    out << "fd00:10:244:" << ns << "::" << 10 + pod;
  }
  return out.str();
}

/// The oracle's table for `probe` over the objects of one step.
Table oracle_table(const Objects& objects, const Probe& probe, int family) {
  std::vector<json> list;
  for (const auto& [key, obj] : objects) {
    list.push_back(substitute(obj, [&](const std::string& ref) { return pod_ip(ref, family); }));
  }
  Cluster cluster = cluster_from_objects(list);
  for (Pod& p : cluster.pods) p.ips = {pod_ip(p.namespace_ + "/" + p.name, family)};
  Table t;
  t.pods = probe.expect.pods;
  for (const auto& from : t.pods) {
    for (const auto& to : t.pods) {
      if (from == to) continue;
      t.cells[{from, to}] = allowed(cluster, Endpoint::pod(from), Endpoint::pod(to), probe.protocol,
                                    probe.port, family);
    }
  }
  return t;
}

std::string join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += "  " + l + "\n";
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(watcher_e2e_oracle)

// ---- the scenario set ----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(scenario_set_covers_every_upstream_test) {
  auto files = scenario_files(e2e_dir());
  std::set<std::string> upstream_names;
  int tcp = 0, udp = 0, sctp = 0;
  for (const auto& f : files) {
    Scenario s = load_scenario(f);
    BOOST_TEST(upstream_names.insert(s.upstream).second, "duplicate upstream test " << s.upstream);
    if (s.upstream.find(" using UDP ") != std::string::npos) {
      ++udp;
    } else if (s.upstream.find(" using SCTP ") != std::string::npos) {
      ++sctp;
    } else {
      ++tcp;
    }
  }
  // network_policy.go: 42 tests in "NetworkPolicy between server and client", 3 using UDP, 3
  // using SCTP.
  BOOST_TEST(tcp == 42);
  BOOST_TEST(udp == 3);
  BOOST_TEST(sctp == 3);
}

BOOST_AUTO_TEST_CASE(base_topology_is_upstreams_model) {
  Objects base = load_objects(e2e_dir() + "/base");
  std::vector<json> list;
  for (const auto& [key, obj] : base) list.push_back(obj);
  Cluster c = cluster_from_objects(list);
  BOOST_TEST(c.namespaces.size() == 3u);
  BOOST_TEST(c.pods.size() == 9u);
  BOOST_TEST(c.policies.empty());
  for (const Namespace& ns : c.namespaces) {
    BOOST_TEST(ns.labels == (Labels{{"ns", ns.name}, {kNamespaceNameLabel, ns.name}}));
  }
  for (const Pod& p : c.pods) {
    BOOST_TEST(p.labels == (Labels{{"pod", p.name}}));
    std::set<std::string> names;
    for (const ContainerPort& cp : p.ports) {
      std::string proto = to_string(cp.protocol);
      for (auto& ch : proto) ch = static_cast<char>(std::tolower(ch));
      BOOST_TEST(cp.name == "serve-" + std::to_string(cp.port) + "-" + proto);
      names.insert(cp.name);
    }
    BOOST_TEST(names.size() == 6u, p.namespace_ << "/" << p.name << ": ports 80, 81 x 3 protocols");
  }
}

BOOST_DATA_TEST_CASE(scenario_tables_match_the_oracle,
                     bdata::make(scenario_files(e2e_dir())) * bdata::make({4, 6}), file, family) {
  Scenario s = load_scenario(file);
  Objects objects = load_objects(e2e_dir() + "/base");
  std::vector<std::string> all_pods;
  for (const auto& [key, obj] : objects) {
    if (key.rfind("Pod/", 0) == 0) all_pods.push_back(key.substr(4));
  }
  for (size_t i = 0; i < s.steps.size(); ++i) {
    apply_step(objects, s.steps[i]);
    for (const Probe& probe : s.steps[i].probes) {
      std::vector<std::string> header = probe.expect.pods;
      std::sort(header.begin(), header.end());
      BOOST_TEST(header == all_pods, "step " << i + 1 << ": the table must list every base pod");
      Table got = oracle_table(objects, probe, family);
      auto diff = table_diff(probe.expect, got);
      BOOST_TEST(diff.empty(), s.name << ": step " << i + 1 << ", " << to_string(probe.protocol)
                                      << "/" << port_string(probe.port) << ", IPv" << family
                                      << "\nexpected:\n"
                                      << render_table(probe.expect) << "oracle:\n"
                                      << render_table(got) << "differences:\n"
                                      << join(diff));
    }
  }
}

// ---- the format's own machinery ------------------------------------------------------------

BOOST_AUTO_TEST_CASE(table_round_trips_and_rejects_malformed_tables) {
  std::string text = "from\\to x/a x/b\nx/a     -   X\nx/b     .   -\n";
  Table t = parse_table(text);
  BOOST_TEST(t.cells.size() == 2u);
  BOOST_TEST(!t.cells.at({"x/a", "x/b"}));
  BOOST_TEST(t.cells.at({"x/b", "x/a"}));
  BOOST_TEST(render_table(t) == text);
  BOOST_CHECK_THROW(parse_table("x/a x/b\nx/a - X\nx/b . -\n"), std::runtime_error);
  BOOST_CHECK_THROW(parse_table("from\\to x/a x/b\nx/b - X\nx/a . -\n"), std::runtime_error);
  BOOST_CHECK_THROW(parse_table("from\\to x/a x/b\nx/a . X\nx/b . -\n"), std::runtime_error);
  BOOST_CHECK_THROW(parse_table("from\\to x/a x/b\nx/a - o\nx/b . -\n"), std::runtime_error);
  BOOST_CHECK_THROW(parse_table("from\\to x/a x/b\nx/a - X\n"), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(placeholders_expand_to_pod_addresses) {
  auto v4 = [](const std::string& ref) { return pod_ip(ref, 4); };
  auto v6 = [](const std::string& ref) { return pod_ip(ref, 6); };
  json in = {{"cidr", "${cidr x/b 4}"}, {"except", {"${cidr x/b}"}}, {"ip", "at ${ip y/c}."}};
  BOOST_TEST(
      substitute(in, v4) ==
      (json{{"cidr", "0.0.0.0/4"}, {"except", {"10.244.0.11/32"}}, {"ip", "at 10.244.1.12."}}));
  BOOST_TEST(substitute(in, v6) == (json{{"cidr", "f000::/4"},
                                         {"except", {"fd00:10:244::11/128"}},
                                         {"ip", "at fd00:10:244:1::12."}}));
  BOOST_CHECK_THROW(substitute(json("${ip x/b 4}"), v4), std::runtime_error);
  BOOST_CHECK_THROW(substitute(json("${addr x/b}"), v4), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(yaml_reader_rejects_yaml11_booleans_and_keeps_quoted_strings) {
  BOOST_CHECK_THROW(yaml_documents("ns: y\n", "t"), std::runtime_error);
  BOOST_CHECK_THROW(yaml_documents("a: 1\na: 2\n", "t"), std::runtime_error);
  auto docs =
      yaml_documents("ns: \"y\"\nport: 80\nname: '80'\nlist: [on2, null]\n---\n---\nb: 1\n", "t");
  BOOST_REQUIRE(docs.size() == 2u);
  BOOST_TEST(docs[0] ==
             (json{{"ns", "y"}, {"port", 80}, {"name", "80"}, {"list", {"on2", nullptr}}}));
  BOOST_TEST(docs[1] == (json{{"b", 1}}));
}

// ---- the oracle on the edge cases (netpol-prior-art.md §5) -----------------------------------

namespace {

/// A small cluster with what the edge cases need: labels that differ per namespace and pod, the
/// same port name on different numbers, a sidecar port, IPv4 and IPv6, a hostNetwork pod.
const char* kEdgeCluster = R"(
kind: Namespace
metadata: {name: x, labels: {team: blue}}
---
kind: Namespace
metadata: {name: "y", labels: {team: red}}
---
kind: Namespace
metadata: {name: z}
---
kind: Pod
metadata: {name: a, namespace: x, labels: {pod: a, app: web}}
spec:
  containers:
    - name: main
      ports: [{name: http, containerPort: 8080}, {name: dns, containerPort: 53, protocol: UDP}]
status: {podIPs: [{ip: 10.0.0.1}, {ip: "fd00::1"}]}
---
kind: Pod
metadata: {name: b, namespace: x, labels: {pod: b}}
spec:
  containers:
    - name: main
      ports: [{name: http, containerPort: 9090}]
  initContainers:
    - {name: sidecar, restartPolicy: Always, ports: [{name: metrics, containerPort: 9100}]}
    - {name: setup, ports: [{name: setup, containerPort: 7000}]}
status: {podIPs: [{ip: 10.0.0.2}, {ip: "fd00::2"}]}
---
kind: Pod
metadata: {name: c, namespace: x, labels: {pod: c, tier: db}}
status: {podIP: 10.0.0.3}
---
kind: Pod
metadata: {name: a, namespace: "y", labels: {pod: a}}
spec:
  containers:
    - name: main
      ports: [{name: http, containerPort: 8080}]
status: {podIPs: [{ip: 10.0.1.1}, {ip: "fd00:1::1"}]}
---
kind: Pod
metadata: {name: b, namespace: "y", labels: {pod: b, app: web}}
status: {podIP: 10.0.1.2}
---
kind: Pod
metadata: {name: a, namespace: z, labels: {pod: a}}
status: {podIPs: [{ip: 10.0.2.1}, {ip: "fd00:2::1"}]}
---
kind: Pod
metadata: {name: h, namespace: x, labels: {pod: h}}
spec: {hostNetwork: true}
status: {podIP: 192.168.1.10}
)";

/// One connection and the verdict the spec gives it. An endpoint is a pod ("x/a") or an address.
struct Check {
  const char* src;
  const char* dst;
  Protocol protocol;
  PortRef port;
  bool want;
  int family = 4;
};

struct EdgeCase {
  const char* name;
  const char* policies;  ///< YAML, added to kEdgeCluster
  std::vector<Check> checks;
};

std::ostream& operator<<(std::ostream& os, const EdgeCase& c) {
  return os << c.name;
}

Endpoint endpoint(const std::string& text) {
  bool pod = text.find('/') != std::string::npos && text.find('.') == std::string::npos &&
             text.find(':') == std::string::npos;
  return pod ? Endpoint::pod(text) : Endpoint::address(text);
}

Cluster edge_cluster(const std::string& policies) {
  auto objects = yaml_documents(kEdgeCluster, "edge-cluster");
  for (auto& p : yaml_documents(policies, "edge-policies")) objects.push_back(p);
  return cluster_from_objects(objects);
}

constexpr auto kTcp = Protocol::kTcp;
constexpr auto kUdp = Protocol::kUdp;
constexpr auto kSctp = Protocol::kSctp;

const std::vector<EdgeCase> kEdgeCases = {
    {"no policy: everything is allowed",
     "",
     {{"x/a", "y/a", kTcp, 80, true}, {"192.0.2.1", "x/b", kUdp, 53, true}}},

    // §5.1 empty vs missing selectors
    {"spec podSelector {} isolates every pod of its namespace only",
     R"(kind: NetworkPolicy
metadata: {name: deny, namespace: x}
spec: {podSelector: {}, policyTypes: [Ingress]})",
     {{"y/a", "x/a", kTcp, 80, false},
      {"y/a", "x/c", kTcp, 80, false},
      {"x/a", "y/b", kTcp, 80, true},
      {"x/a", "z/a", kTcp, 80, true}}},
    {"peer with podSelector {} alone selects the policy's namespace only",
     R"(kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec: {podSelector: {}, ingress: [{from: [{podSelector: {}}]}]})",
     {{"x/b", "x/a", kTcp, 80, true},
      {"y/a", "x/a", kTcp, 80, false},
      {"192.0.2.1", "x/a", kTcp, 80, false}}},
    {"peer with namespaceSelector {} alone selects every pod of every namespace",
     R"(kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec: {podSelector: {}, ingress: [{from: [{namespaceSelector: {}}]}]})",
     {{"y/a", "x/a", kTcp, 80, true},
      {"z/a", "x/a", kTcp, 80, true},
      {"192.0.2.1", "x/a", kTcp, 80, false}}},
    {"peer with both selectors empty selects every pod, but no external address",
     R"(kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec: {podSelector: {}, ingress: [{from: [{podSelector: {}, namespaceSelector: {}}]}]})",
     {{"z/a", "x/a", kTcp, 80, true},
      {"x/b", "x/a", kTcp, 80, true},
      {"192.0.2.1", "x/a", kTcp, 80, false}}},

    // §5.2 the rule list
    {"ingress [{}] allows everything, external addresses included",
     R"(kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec: {podSelector: {}, ingress: [{}]})",
     {{"y/a", "x/a", kUdp, 5353, true}, {"192.0.2.1", "x/a", kSctp, 81, true}}},
    {"an empty ingress list with policyTypes Ingress allows nothing",
     R"(kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec: {podSelector: {}, policyTypes: [Ingress], ingress: []})",
     {{"x/b", "x/a", kTcp, 80, false}, {"192.0.2.1", "x/a", kTcp, 80, false}}},
    {"an absent ingress list without policyTypes isolates ingress",
     R"(kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec: {podSelector: {matchLabels: {pod: a}}})",
     {{"x/b", "x/a", kTcp, 80, false}, {"x/a", "x/b", kTcp, 80, true}}},

    // §5.3 policyTypes inference
    {"egress rules without policyTypes isolate both directions",
     R"(kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  egress: [{to: [{podSelector: {matchLabels: {pod: b}}}]}])",
     {{"y/a", "x/a", kTcp, 80, false},
      {"x/a", "x/b", kTcp, 80, true},
      {"x/a", "y/a", kTcp, 80, false}}},
    {"egress: [] without policyTypes does not isolate egress",
     R"(kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec: {podSelector: {matchLabels: {pod: a}}, egress: []})",
     {{"x/a", "y/a", kTcp, 80, true}, {"y/a", "x/a", kTcp, 80, false}}},
    {"rules of a direction missing from policyTypes have no effect",
     R"(kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]
  egress: [{}])",
     {{"y/a", "x/a", kTcp, 80, true}, {"x/a", "z/a", kTcp, 80, true}}},

    // §5.4 AND vs OR
    {"both selectors in one peer are ANDed",
     R"(kind: NetworkPolicy
metadata: {name: p, namespace: "y"}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from: [{namespaceSelector: {matchLabels: {team: blue}}, podSelector: {matchLabels: {app: web}}}])",
     {{"x/a", "y/a", kTcp, 80, true},
      {"x/b", "y/a", kTcp, 80, false},
      {"y/b", "y/a", kTcp, 80, false}}},
    {"separate peers are ORed",
     R"(kind: NetworkPolicy
metadata: {name: p, namespace: "y"}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from: [{namespaceSelector: {matchLabels: {team: blue}}}, {podSelector: {matchLabels: {app: web}}}])",
     {{"x/a", "y/a", kTcp, 80, true},
      {"x/b", "y/a", kTcp, 80, true},
      {"y/b", "y/a", kTcp, 80, true},
      {"z/a", "y/a", kTcp, 80, false}}},

    // §5.5 union
    {"policies add up: a broad allow beats a narrow one",
     R"(kind: NetworkPolicy
metadata: {name: narrow, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {team: red}}}], ports: [{port: 80}]}]
---
kind: NetworkPolicy
metadata: {name: broad, namespace: x}
spec:
  podSelector: {}
  ingress: [{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: z}}}]}])",
     {{"y/a", "x/a", kTcp, 80, true},
      {"y/a", "x/a", kTcp, 81, false},
      {"z/a", "x/a", kTcp, 81, true},
      {"y/a", "x/b", kTcp, 80, false}}},
    {"an except removes addresses from its own peer only",
     R"(kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
    - to:
        - ipBlock: {cidr: 10.0.0.0/8, except: [10.0.1.0/24]}
        - namespaceSelector: {matchLabels: {team: red}})",
     {{"x/a", "y/a", kTcp, 80, true},
      {"x/a", "y/b", kTcp, 80, true},
      {"x/a", "z/a", kTcp, 80, true},
      {"x/a", "192.0.2.1", kTcp, 80, false}}},
    {"an except in one policy does not override another policy's allow",
     R"(kind: NetworkPolicy
metadata: {name: wide, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/16, except: [10.0.1.1/32]}}]}]
---
kind: NetworkPolicy
metadata: {name: host, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress: [{to: [{ipBlock: {cidr: 10.0.1.1/32}}]}])",
     {{"x/a", "y/a", kTcp, 80, true}, {"x/a", "y/b", kTcp, 80, true}}},

    // §5.6 both ends must allow
    {"a connection needs the client's egress and the server's ingress",
     R"(kind: NetworkPolicy
metadata: {name: out, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress: [{to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: z}}}]}]
---
kind: NetworkPolicy
metadata: {name: in, namespace: "y"}
spec:
  podSelector: {}
  ingress: [{from: [{namespaceSelector: {}}]}]
---
kind: NetworkPolicy
metadata: {name: in, namespace: z}
spec:
  podSelector: {}
  ingress: [{from: [{namespaceSelector: {matchLabels: {team: red}}}]}])",
     {{"x/a", "y/a", kTcp, 80, false},
      {"x/a", "z/a", kTcp, 80, false},
      {"x/b", "y/a", kTcp, 80, true},
      {"y/a", "z/a", kTcp, 80, true},
      {"x/a", "192.0.2.1", kTcp, 80, false},
      {"192.0.2.1", "y/a", kTcp, 80, false}}},

    // §5.7 named ports
    {"an ingress named port resolves per destination pod, with its protocol",
     R"(kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec: {podSelector: {}, ingress: [{ports: [{port: http}]}]})",
     {{"y/a", "x/a", kTcp, 8080, true},
      {"y/a", "x/a", kTcp, 9090, false},
      {"y/a", "x/b", kTcp, 9090, true},
      {"y/a", "x/b", kTcp, 8080, false},
      {"y/a", "x/a", kUdp, 8080, false},
      {"y/a", "x/c", kTcp, 8080, false},
      {"y/a", "x/b", kTcp, std::string("http"), true}}},
    {"a named port must match the protocol too",
     R"(kind: NetworkPolicy
metadata: {name: tcp, namespace: x}
spec: {podSelector: {}, ingress: [{ports: [{port: dns}]}]})",
     {{"y/a", "x/a", kUdp, 53, false}, {"y/a", "x/a", kTcp, 53, false}}},
    {"a named port with its protocol",
     R"(kind: NetworkPolicy
metadata: {name: udp, namespace: x}
spec: {podSelector: {}, ingress: [{ports: [{port: dns, protocol: UDP}]}]})",
     {{"y/a", "x/a", kUdp, 53, true}, {"y/a", "x/a", kTcp, 53, false}}},
    {"sidecar (restartable init container) ports count, other init containers' do not",
     R"(kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec: {podSelector: {}, ingress: [{ports: [{port: metrics}, {port: setup}]}]})",
     {{"y/a", "x/b", kTcp, 9100, true}, {"y/a", "x/b", kTcp, 7000, false}}},
    {"an egress named port resolves against the destination, not the source",
     R"(kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec:
  podSelector: {matchLabels: {pod: b}}
  policyTypes: [Egress]
  egress: [{ports: [{port: http}]}])",
     {{"x/b", "y/a", kTcp, 8080, true},
      {"x/b", "y/a", kTcp, 9090, false},
      {"x/b", "x/a", kTcp, 8080, true},
      {"x/b", "z/a", kTcp, 8080, false}}},
    {"a named probe port that the destination does not declare reaches nothing",
     "",
     {{"x/a", "x/c", kTcp, std::string("http"), false},
      {"x/a", "x/b", kTcp, std::string("http"), true},
      {"x/b", "x/a", kUdp, std::string("http"), false}}},

    // §5.8 protocols and port ranges
    {"a port without protocol is TCP",
     R"(kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec: {podSelector: {}, ingress: [{ports: [{port: 80}]}]})",
     {{"y/a", "x/a", kTcp, 80, true},
      {"y/a", "x/a", kUdp, 80, false},
      {"y/a", "x/a", kSctp, 80, false}}},
    {"a protocol-only entry allows every port of that protocol only",
     R"(kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec: {podSelector: {}, ingress: [{ports: [{protocol: UDP}]}]})",
     {{"y/a", "x/a", kUdp, 5353, true},
      {"y/a", "x/a", kUdp, 1, true},
      {"y/a", "x/a", kTcp, 5353, false}}},
    {"SCTP and UDP rules never open TCP",
     R"(kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec:
  podSelector: {}
  ingress: [{ports: [{protocol: SCTP, port: 81}, {protocol: UDP, port: 81}]}])",
     {{"y/a", "x/a", kSctp, 81, true},
      {"y/a", "x/a", kUdp, 81, true},
      {"y/a", "x/a", kTcp, 81, false}}},
    {"endPort makes an inclusive range",
     R"(kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec: {podSelector: {}, ingress: [{ports: [{port: 8000, endPort: 8080}]}]})",
     {{"y/a", "x/a", kTcp, 7999, false},
      {"y/a", "x/a", kTcp, 8000, true},
      {"y/a", "x/a", kTcp, 8080, true},
      {"y/a", "x/a", kTcp, 8081, false},
      {"y/a", "x/a", kUdp, 8000, false}}},

    // §5.9 ipBlock
    {"an egress ipBlock matches pod addresses and external ones, per family",
     R"(kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress: [{to: [{ipBlock: {cidr: 10.0.1.0/24}}, {ipBlock: {cidr: 192.0.2.0/24}}, {ipBlock: {cidr: "fd00:2::/64"}}]}])",
     {{"x/a", "y/a", kTcp, 80, true},
      {"x/a", "z/a", kTcp, 80, false},
      {"x/a", "192.0.2.1", kTcp, 80, true},
      {"x/a", "198.51.100.1", kTcp, 80, false},
      {"x/a", "z/a", kTcp, 80, true, 6},
      {"x/a", "y/a", kTcp, 80, false, 6},
      {"x/a", "2001:db8::1", kTcp, 80, false, 6}}},
    {"an ingress ipBlock matches the source address, pods included",
     R"(kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec:
  podSelector: {}
  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/16, except: [10.0.0.0/24]}}, {ipBlock: {cidr: "2001:db8::/32"}}]}])",
     {{"y/a", "x/a", kTcp, 80, true},
      {"x/b", "x/a", kTcp, 80, false},
      {"10.0.200.7", "x/a", kTcp, 80, true},
      {"2001:db8::1", "x/a", kTcp, 80, true, 6},
      {"y/a", "x/a", kTcp, 80, false, 6}}},

    // §5.11 hostNetwork pods
    {"hostNetwork pods are not isolated and match only as addresses",
     R"(kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec: {podSelector: {}, ingress: [{from: [{podSelector: {}}]}]}
---
kind: NetworkPolicy
metadata: {name: nodes, namespace: x}
spec:
  podSelector: {matchLabels: {pod: b}}
  ingress: [{from: [{ipBlock: {cidr: 192.168.1.0/24}}]}])",
     {{"y/a", "x/h", kTcp, 80, true},
      {"x/h", "x/a", kTcp, 80, false},
      {"x/h", "x/b", kTcp, 80, true},
      {"x/a", "x/c", kTcp, 80, true}}},

    // selectors: matchExpressions and the default namespace label (§5.16)
    {"NotIn and DoesNotExist match objects without the key",
     R"(kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec:
  podSelector: {matchExpressions: [{key: app, operator: DoesNotExist}]}
  ingress: [{from: [{namespaceSelector: {matchExpressions: [{key: team, operator: NotIn, values: [blue]}]}}]}])",
     {{"y/a", "x/b", kTcp, 80, true},
      {"z/a", "x/b", kTcp, 80, true},
      {"x/c", "x/b", kTcp, 80, false},
      {"x/b", "x/a", kTcp, 80, true}}},
    {"In and Exists",
     R"(kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec:
  podSelector: {matchExpressions: [{key: pod, operator: In, values: [a, c]}]}
  ingress: [{from: [{namespaceSelector: {}, podSelector: {matchExpressions: [{key: app, operator: Exists}]}}]}])",
     {{"y/b", "x/a", kTcp, 80, true},
      {"y/a", "x/a", kTcp, 80, false},
      {"y/a", "x/c", kTcp, 80, false},
      {"y/a", "x/b", kTcp, 80, true}}},
    {"the namespace name label exists on namespaces that were not given it",
     R"(kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec:
  podSelector: {}
  ingress: [{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: z}}}]}])",
     {{"z/a", "x/a", kTcp, 80, true}, {"y/a", "x/a", kTcp, 80, false}}},
};

}  // namespace

BOOST_DATA_TEST_CASE(oracle_edge_cases, bdata::make(kEdgeCases), c) {
  Cluster cluster = edge_cluster(c.policies);
  for (const Check& check : c.checks) {
    bool got = allowed(cluster, endpoint(check.src), endpoint(check.dst), check.protocol,
                       check.port, check.family);
    BOOST_TEST(got == check.want, check.src << " -> " << check.dst << " "
                                            << to_string(check.protocol) << "/"
                                            << port_string(check.port) << " IPv" << check.family);
  }
}

BOOST_AUTO_TEST_CASE(oracle_follows_label_changes) {
  const char* policy = R"(kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{from: [{podSelector: {matchLabels: {role: client}}}]}])";
  Cluster c = edge_cluster(policy);
  auto x_c_to_b = [&] { return allowed(c, Endpoint::pod("x/c"), Endpoint::pod("x/b"), kTcp, 80); };
  BOOST_TEST(x_c_to_b());  // x/b is not selected yet
  for (Pod& p : c.pods) {
    if (p.namespace_ == "x" && p.name == "b") p.labels["app"] = "web";
  }
  BOOST_TEST(!x_c_to_b());  // now isolated, and x/c is not a client
  for (Pod& p : c.pods) {
    if (p.namespace_ == "x" && p.name == "c") p.labels["role"] = "client";
  }
  BOOST_TEST(x_c_to_b());
}

BOOST_AUTO_TEST_CASE(oracle_rejects_what_it_cannot_answer) {
  Cluster c = edge_cluster("");
  BOOST_CHECK_THROW(allowed(c, Endpoint::pod("x/nope"), Endpoint::pod("x/a"), kTcp, 80),
                    std::invalid_argument);
  BOOST_CHECK_THROW(allowed(c, Endpoint::pod("y/b"), Endpoint::pod("x/a"), kTcp, 80, 6),
                    std::invalid_argument);
  BOOST_CHECK_THROW(in_cidr("10.0.0.1", "10.0.0.0/33"), std::invalid_argument);
  BOOST_CHECK_THROW(in_cidr("10.0.0.1", "10.0.0.0"), std::invalid_argument);
  BOOST_TEST(!in_cidr("fd00::1", "0.0.0.0/0"));
  BOOST_TEST(in_cidr("fd00::1", "::/0"));
}

BOOST_AUTO_TEST_SUITE_END()
