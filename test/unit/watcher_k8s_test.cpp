// Kubernetes object decoding: API responses (test/data/k8s/*.json), watch events, manifests.
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/str.hpp"
#include "test/print.hpp"
#include "test/unit/watcher_print.hpp"
#include "watcher/k8s_decode.hpp"

using knit::Code;
using knit::IpAddr;
using knit::Prefix;
using knit::str;
using namespace knit::watcher;
namespace data = boost::unit_test::data;

namespace {

std::string fixture(const char* name) {
  auto path = str(KNIT_TEST_DATA, "/k8s/", name);
  std::FILE* f = std::fopen(path.c_str(), "rb");
  BOOST_TEST_REQUIRE(f != nullptr, "cannot open " << path);
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
  std::fclose(f);
  return out;
}

IpAddr ip(const char* s) {
  return *IpAddr::parse(s);
}
Prefix pfx(const char* s) {
  return *Prefix::parse(s);
}

template <class T>
const T& by_name(const std::vector<T>& items, std::string_view name) {
  for (const auto& i : items) {
    if (i.name == name) return i;
  }
  BOOST_FAIL("no object named " << name);
  throw 0;  // unreachable
}

std::string errors_of(const Decoded& d) {
  std::string out;
  for (const auto& e : d.errors) out += str(e, '\n');
  return out;
}

/// A generic List holding a good pod, `bad` (one object's JSON), and a good policy.
std::string sandwich(std::string_view bad) {
  return str(R"({"kind":"List","apiVersion":"v1","items":[)",
             R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"good-pod","namespace":"x"}},)",
             bad, R"(,{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",)",
             R"("metadata":{"name":"good-policy","namespace":"x"},"spec":{"podSelector":{}}}]})");
}

/// A NetworkPolicy named `name` in namespace x with `spec` as its spec.
std::string policy(std::string_view name, std::string_view spec) {
  return str(R"({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":)",
             R"({"name":")", name, R"(","namespace":"x"},"spec":)", spec, "}");
}

std::string pod_with_ports(std::string_view name, std::string_view ports) {
  return str(R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":")", name,
             R"(","namespace":"x"},"spec":{"containers":[{"name":"c","ports":)", ports, "}]}}");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(watcher_k8s)

// ---- Pods
// ----------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(kubectl_pod_list) {
  auto d = decode_json(fixture("pods.json"));
  BOOST_TEST(d.errors.empty(), errors_of(d));
  BOOST_TEST(d.pods.size() == 5u);
  BOOST_TEST(d.ignored == 0u);
  BOOST_TEST(d.resource_version == "");  // kubectl's List has an empty resourceVersion

  const auto& proxy = by_name(d.pods, "kube-proxy-x7k2p");
  BOOST_TEST(proxy.namespace_ == "kube-system");
  BOOST_TEST(proxy.host_network);
  BOOST_TEST(proxy.node_name == "kind-worker");
  BOOST_TEST(proxy.ips == std::vector<IpAddr>{ip("172.18.0.3")}, boost::test_tools::per_element());
  BOOST_TEST(proxy.ports->empty());
  BOOST_TEST(proxy.resource_version == "612");

  const auto& web = by_name(d.pods, "web-7d9f8b6c5d-q8w4z");
  BOOST_TEST(web.namespace_ == "prod");
  BOOST_TEST(web.phase == PodPhase::kRunning);
  BOOST_TEST(!web.host_network);
  BOOST_TEST((web.labels ==
              Labels{{"app", "web"}, {"pod-template-hash", "7d9f8b6c5d"}, {"tier", "frontend"}}));
  // Dual stack, primary first.
  BOOST_TEST(web.ips == (std::vector<IpAddr>{ip("10.244.1.5"), ip("fd00:10:244:1::5")}),
             boost::test_tools::per_element());
  // Container ports, then the sidecar's; the ordinary init container's port is not served.
  std::vector<ContainerPort> want{{"http", 80, Protocol::kTcp},
                                  {"", 9113, Protocol::kTcp},
                                  {"envoy-admin", 15000, Protocol::kTcp}};
  BOOST_TEST(*web.ports == want, boost::test_tools::per_element());

  const auto& db = by_name(d.pods, "db-0");
  // No podIPs: podIP is used.
  BOOST_TEST(db.ips == std::vector<IpAddr>{ip("10.244.2.17")}, boost::test_tools::per_element());
  std::vector<ContainerPort> db_ports{{"postgres", 5432, Protocol::kTcp},
                                      {"dns", 53, Protocol::kUdp},
                                      {"dns-tcp", 53, Protocol::kTcp},
                                      {"sctp-probe", 9999, Protocol::kSctp}};
  BOOST_TEST(*db.ports == db_ports, boost::test_tools::per_element());

  BOOST_TEST(by_name(d.pods, "report-28997460-m5r9t").phase == PodPhase::kSucceeded);

  const auto& pending = by_name(d.pods, "unschedulable");
  BOOST_TEST(pending.phase == PodPhase::kPending);
  BOOST_TEST(pending.node_name.empty());
  BOOST_TEST(pending.ips.empty());
}

BOOST_AUTO_TEST_CASE(api_pod_list_items_inherit_kind) {
  auto d = decode_json(fixture("podlist-api.json"));
  BOOST_TEST(d.errors.empty(), errors_of(d));
  BOOST_TEST_REQUIRE(d.pods.size() == 2u);
  BOOST_TEST(d.resource_version == "48213");
  BOOST_TEST(d.pods[0].namespace_ == "x");
  BOOST_TEST(d.pods[0].name == "x-a");
  std::vector<ContainerPort> want{{"serve-80-tcp", 80, Protocol::kTcp},
                                  {"serve-81-udp", 81, Protocol::kUdp}};
  BOOST_TEST(*d.pods[0].ports == want, boost::test_tools::per_element());
  BOOST_TEST(d.pods[1].ips == std::vector<IpAddr>{ip("fd00:10:244:2::8")},
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(pod_phases) {
  auto phase = [](std::string_view p) {
    auto d = decode_json(str(R"({"kind":"Pod","apiVersion":"v1","metadata":{"name":"p"},)",
                             R"("status":{"phase":")", p, R"("}})"));
    BOOST_TEST_REQUIRE(d.pods.size() == 1u);
    return d.pods[0].phase;
  };
  BOOST_TEST(phase("Pending") == PodPhase::kPending);
  BOOST_TEST(phase("Running") == PodPhase::kRunning);
  BOOST_TEST(phase("Succeeded") == PodPhase::kSucceeded);
  BOOST_TEST(phase("Failed") == PodPhase::kFailed);
  BOOST_TEST(phase("Unknown") == PodPhase::kUnknown);
  BOOST_TEST(phase("Hibernating") == PodPhase::kUnknown);  // a future phase
  auto d = decode_json(R"({"kind":"Pod","apiVersion":"v1","metadata":{"name":"p"}})");
  BOOST_TEST_REQUIRE(d.pods.size() == 1u);
  BOOST_TEST(d.pods[0].phase == PodPhase::kPending);  // no status: as created
  BOOST_TEST(d.pods[0].namespace_ == "default");
}

// ---- Namespaces and nodes
// --------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(namespace_list_has_name_label_everywhere) {
  auto d = decode_json(fixture("namespaces.json"));
  BOOST_TEST(d.errors.empty(), errors_of(d));
  BOOST_TEST_REQUIRE(d.namespaces.size() == 4u);
  BOOST_TEST(d.resource_version == "50230");
  for (const auto& ns : d.namespaces) {
    auto it = ns.labels.find(kNamespaceNameLabel);
    BOOST_TEST_REQUIRE((it != ns.labels.end()), ns.name);
    BOOST_TEST(it->second == ns.name);
  }
  const auto& legacy = by_name(d.namespaces, "legacy");  // label missing in the fixture
  BOOST_TEST((legacy.labels == Labels{{"kubernetes.io/metadata.name", "legacy"}, {"team", "ops"}}));
  BOOST_TEST(by_name(d.namespaces, "x").labels.at("team") == "payments");
  BOOST_TEST(by_name(d.namespaces, "x").resource_version == "47990");
}

BOOST_AUTO_TEST_CASE(namespace_name_label_is_corrected) {
  auto d = decode_json(R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"real",)"
                       R"("labels":{"kubernetes.io/metadata.name":"fake"}}})");
  BOOST_TEST_REQUIRE(d.namespaces.size() == 1u);
  BOOST_TEST(d.namespaces[0].labels.at(std::string(kNamespaceNameLabel)) == "real");
}

BOOST_AUTO_TEST_CASE(node_object) {
  auto d = decode_json(fixture("node.json"));
  BOOST_TEST(d.errors.empty(), errors_of(d));
  BOOST_TEST_REQUIRE(d.nodes.size() == 1u);
  const auto& n = d.nodes[0];
  BOOST_TEST(n.name == "kind-worker");
  BOOST_TEST(n.pod_cidrs == (std::vector<Prefix>{pfx("10.244.1.0/24"), pfx("fd00:10:244:1::/64")}),
             boost::test_tools::per_element());
  BOOST_TEST(n.internal_ips == (std::vector<IpAddr>{ip("172.18.0.3"), ip("fc00:f853:ccd:e793::3")}),
             boost::test_tools::per_element());
  BOOST_TEST(n.labels.at("topology.kubernetes.io/zone") == "zone-a");
  BOOST_TEST(d.resource_version == "50188");
}

BOOST_AUTO_TEST_CASE(node_pod_cidr_fallback) {
  auto d = decode_json(R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"},)"
                       R"("spec":{"podCIDR":"10.244.7.1/24"}})");
  BOOST_TEST_REQUIRE(d.nodes.size() == 1u);
  BOOST_TEST(d.nodes[0].pod_cidrs == std::vector<Prefix>{pfx("10.244.7.0/24")},
             boost::test_tools::per_element());
}

// ---- NetworkPolicies
// -------------------------------------------------------------------------------

struct TypesCase {
  const char* policy;
  bool ingress;
  bool egress;
  size_t ingress_rules;
  size_t egress_rules;
};
std::ostream& operator<<(std::ostream& os, const TypesCase& c) {
  return os << c.policy;
}

const TypesCase kFixtureTypes[] = {
    {"default-deny-ingress", true, false, 0, 0},
    {"default-deny-all", true, true, 0, 0},
    {"allow-all-ingress", true, false, 1, 0},
    {"types-absent-ingress-empty", true, false, 0, 0},
    // `egress: []` without policyTypes does not imply Egress (API server defaulting).
    {"types-absent-egress-empty", true, false, 0, 0},
    {"types-absent-egress-rule", true, true, 0, 1},
    {"egress-dns-only", false, true, 0, 1},
    {"port-shapes", true, false, 1, 0},
    {"peers-and-vs-or", true, false, 2, 0},
    {"empty-selectors", true, false, 4, 0},
    {"ipblock-except", false, true, 0, 1},
    {"selector-expressions", true, true, 1, 1},
};

BOOST_DATA_TEST_CASE(policy_list_isolation, data::make(kFixtureTypes), c) {
  static const Decoded d = decode_json(fixture("networkpolicies.json"));
  BOOST_TEST(d.errors.empty(), errors_of(d));
  BOOST_TEST(d.policies.size() == std::size(kFixtureTypes));
  const auto& p = by_name(d.policies, c.policy);
  BOOST_TEST(p.ingress_isolation == c.ingress);
  BOOST_TEST(p.egress_isolation == c.egress);
  BOOST_TEST(p.ingress.size() == c.ingress_rules);
  BOOST_TEST(p.egress.size() == c.egress_rules);
  BOOST_TEST(p.namespace_ == (std::string_view(c.policy) == "selector-expressions" ? "y" : "x"));
}

struct InferCase {
  const char* spec;
  bool ingress;
  bool egress;
};
std::ostream& operator<<(std::ostream& os, const InferCase& c) {
  return os << c.spec;
}

const InferCase kInfer[] = {
    {R"({"podSelector":{}})", true, false},
    {R"({"podSelector":{},"ingress":[{}]})", true, false},
    {R"({"podSelector":{},"egress":[]})", true, false},
    {R"({"podSelector":{},"egress":[{}]})", true, true},
    {R"({"podSelector":{},"policyTypes":[],"egress":[{}]})", true, true},
    {R"({"podSelector":{},"policyTypes":["Egress"]})", false, true},
    {R"({"podSelector":{},"policyTypes":["Egress"],"ingress":[{}]})", false, true},
    {R"({"podSelector":{},"policyTypes":["Ingress"],"egress":[{}]})", true, false},
    {R"({"podSelector":{},"policyTypes":["Egress","Ingress"]})", true, true},
    {R"({})", true, false},
};

BOOST_DATA_TEST_CASE(policy_types_inference, data::make(kInfer), c) {
  auto d = decode_json(policy("p", c.spec));
  BOOST_TEST(d.errors.empty(), errors_of(d));
  BOOST_TEST_REQUIRE(d.policies.size() == 1u);
  BOOST_TEST(d.policies[0].ingress_isolation == c.ingress);
  BOOST_TEST(d.policies[0].egress_isolation == c.egress);
}

BOOST_AUTO_TEST_CASE(policy_port_shapes) {
  auto d = decode_json(fixture("networkpolicies.json"));
  const auto& p = by_name(d.policies, "port-shapes");
  BOOST_TEST_REQUIRE(p.ingress.size() == 1u);
  BOOST_TEST(p.ingress[0].peers.empty());  // no `from`: every peer
  std::vector<PolicyPort> want{
      {Protocol::kTcp, PortRef{uint16_t{80}}, std::nullopt},
      {Protocol::kTcp, PortRef{std::string("serve-81-tcp")}, std::nullopt},
      {Protocol::kUdp, PortRef{uint16_t{81}}, std::nullopt},
      {Protocol::kTcp, PortRef{uint16_t{8000}}, uint16_t{8080}},
      {Protocol::kTcp, std::nullopt, std::nullopt},
      {Protocol::kSctp, PortRef{uint16_t{9999}}, std::nullopt},
      {Protocol::kTcp, PortRef{uint16_t{443}}, std::nullopt},  // protocol defaults to TCP
  };
  BOOST_TEST(p.ingress[0].ports == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(policy_peers_keep_absent_and_empty_apart) {
  auto d = decode_json(fixture("networkpolicies.json"));
  const LabelSelector all;
  const LabelSelector pod_b{{{"pod", "b"}}, {}};

  const auto& andor = by_name(d.policies, "peers-and-vs-or");
  BOOST_TEST_REQUIRE(andor.ingress.size() == 2u);
  // One element with both selectors: AND.
  BOOST_TEST_REQUIRE(andor.ingress[0].peers.size() == 1u);
  const auto& both = andor.ingress[0].peers[0];
  BOOST_TEST((both.namespace_selector == LabelSelector{{{"ns", "y"}}, {}}));
  BOOST_TEST((both.pod_selector == pod_b));
  BOOST_TEST(!both.ip_block);
  BOOST_TEST(andor.ingress[0].ports.empty());
  // Two elements: OR, each with only one selector present.
  BOOST_TEST_REQUIRE(andor.ingress[1].peers.size() == 2u);
  const auto& ns_only = andor.ingress[1].peers[0];
  BOOST_TEST(!ns_only.pod_selector);
  BOOST_TEST(
      (ns_only.namespace_selector == LabelSelector{{}, {Requirement{"ns", Op::kNotIn, {"x"}}}}));
  const auto& pod_only = andor.ingress[1].peers[1];
  BOOST_TEST(!pod_only.namespace_selector);
  BOOST_TEST((pod_only.pod_selector == pod_b));

  const auto& empty = by_name(d.policies, "empty-selectors");
  BOOST_TEST(empty.pod_selector.selects_all());
  BOOST_TEST_REQUIRE(empty.ingress.size() == 4u);
  const auto& own_ns = empty.ingress[0].peers.at(0);  // {podSelector: {}}: own namespace only
  BOOST_TEST((own_ns.pod_selector == all));
  BOOST_TEST(!own_ns.namespace_selector);
  const auto& any_ns = empty.ingress[1].peers.at(0);  // {namespaceSelector: {}}: everywhere
  BOOST_TEST(!any_ns.pod_selector);
  BOOST_TEST((any_ns.namespace_selector == all));
  const auto& everything = empty.ingress[2].peers.at(0);
  BOOST_TEST((everything.pod_selector == all));
  BOOST_TEST((everything.namespace_selector == all));
  // Empty matchLabels and matchExpressions are the empty selector, not a null one.
  BOOST_TEST((empty.ingress[3].peers.at(0).pod_selector == all));
}

BOOST_AUTO_TEST_CASE(policy_ip_blocks) {
  auto d = decode_json(fixture("networkpolicies.json"));
  const auto& p = by_name(d.policies, "ipblock-except");
  BOOST_TEST_REQUIRE(p.egress.size() == 1u);
  const auto& peers = p.egress[0].peers;
  BOOST_TEST_REQUIRE(peers.size() == 3u);
  BOOST_TEST(
      (peers[0].ip_block == IpBlock{pfx("10.0.0.0/8"), {pfx("10.1.0.0/16"), pfx("10.2.3.0/24")}}));
  BOOST_TEST((peers[1].ip_block == IpBlock{pfx("2001:db8::/32"), {pfx("2001:db8:1::/48")}}));
  BOOST_TEST((peers[2].ip_block == IpBlock{pfx("10.244.1.21/32"), {}}));
  for (const auto& peer : peers) BOOST_TEST((!peer.pod_selector && !peer.namespace_selector));
}

BOOST_AUTO_TEST_CASE(policy_selector_expressions) {
  auto d = decode_json(fixture("networkpolicies.json"));
  const auto& p = by_name(d.policies, "selector-expressions");
  LabelSelector want{{{"app", "web"}},
                     {Requirement{"tier", Op::kIn, {"frontend", "edge"}},
                      Requirement{"canary", Op::kDoesNotExist, {}}}};
  BOOST_TEST((p.pod_selector == want));
  BOOST_TEST(to_string(p.pod_selector) == "{app=web,tier in (frontend,edge),!canary}");
  const auto& peer = p.ingress.at(0).peers.at(0);
  BOOST_TEST(to_string(peer) == "pod{pod}&ns{kubernetes.io/metadata.name in (x,z)}");
  BOOST_TEST(to_string(p.ingress.at(0).ports.at(0)) == "TCP:serve-80-tcp");
}

BOOST_AUTO_TEST_CASE(host_bits_are_cleared) {
  auto d = decode_json(policy(
      "p", R"({"egress":[{"to":[{"ipBlock":{"cidr":"10.1.2.3/16","except":["10.1.2.3/24"]}}]}]})"));
  BOOST_TEST(d.errors.empty(), errors_of(d));
  BOOST_TEST_REQUIRE(d.policies.size() == 1u);
  BOOST_TEST((d.policies[0].egress.at(0).peers.at(0).ip_block ==
              IpBlock{pfx("10.1.0.0/16"), {pfx("10.1.2.0/24")}}));
}

// ---- Malformed objects: skipped alone, reported by name
// ----------------------------------------------

struct BadCase {
  const char* what;
  std::string object;
  std::string error;  // the whole error line
};
std::ostream& operator<<(std::ostream& os, const BadCase& c) {
  return os << c.what;
}

const BadCase kBad[] = {
    {"bad cidr",
     policy("bad-cidr", R"({"ingress":[{"from":[{"ipBlock":{"cidr":"10.0.0.0/33"}}]}]})"),
     R"(NetworkPolicy x/bad-cidr: spec.ingress[0].from[0].ipBlock.cidr: "10.0.0.0/33" is not a CIDR (address/length))"},
    {"NUL inside a cidr",
     policy("nul", R"({"ingress":[{"from":[{"ipBlock":{"cidr":"10.0.0.0\u0000junk/8"}}]}]})"),
     R"(NetworkPolicy x/nul: spec.ingress[0].from[0].ipBlock.cidr: "10.0.0.0\u0000junk/8" is not a CIDR (address/length))"},
    {"bare address as cidr",
     policy("bare", R"({"egress":[{"to":[{"ipBlock":{"cidr":"10.0.0.1"}}]}]})"),
     R"(NetworkPolicy x/bare: spec.egress[0].to[0].ipBlock.cidr: "10.0.0.1" is not a CIDR (address/length))"},
    {"except outside cidr",
     policy("ex",
            R"({"egress":[{"to":[{"ipBlock":{"cidr":"10.0.0.0/8","except":["11.0.0.0/16"]}}]}]})"),
     R"(NetworkPolicy x/ex: spec.egress[0].to[0].ipBlock.except[0]: "11.0.0.0/16" is not a strict subset of cidr 10.0.0.0/8)"},
    {"except equal to cidr",
     policy("ex2",
            R"({"egress":[{"to":[{"ipBlock":{"cidr":"10.0.0.0/8","except":["10.0.0.0/8"]}}]}]})"),
     R"(NetworkPolicy x/ex2: spec.egress[0].to[0].ipBlock.except[0]: "10.0.0.0/8" is not a strict subset of cidr 10.0.0.0/8)"},
    {"except of the other family",
     policy("ex3",
            R"({"egress":[{"to":[{"ipBlock":{"cidr":"10.0.0.0/8","except":["fd00::/64"]}}]}]})"),
     R"(NetworkPolicy x/ex3: spec.egress[0].to[0].ipBlock.except[0]: "fd00::/64" is not a strict subset of cidr 10.0.0.0/8)"},
    {"policy port out of range", policy("p0", R"({"ingress":[{"ports":[{"port":65536}]}]})"),
     "NetworkPolicy x/p0: spec.ingress[0].ports[0].port: 65536 is out of range 1..65535"},
    {"policy port zero", policy("pz", R"({"ingress":[{"ports":[{"port":0}]}]})"),
     "NetworkPolicy x/pz: spec.ingress[0].ports[0].port: 0 is out of range 1..65535"},
    {"numeric string port", policy("ps", R"({"ingress":[{"ports":[{"port":"80"}]}]})"),
     R"(NetworkPolicy x/ps: spec.ingress[0].ports[0].port: "80" is not a valid port name (1-15 lower-case letters, digits and '-', with at least one letter))"},
    {"float port", policy("pf", R"({"ingress":[{"ports":[{"port":80.5}]}]})"),
     "NetworkPolicy x/pf: spec.ingress[0].ports[0].port: 80.5 is neither a port number nor a port "
     "name"},
    {"endPort with named port",
     policy("en", R"({"ingress":[{"ports":[{"port":"http","endPort":90}]}]})"),
     "NetworkPolicy x/en: spec.ingress[0].ports[0].endPort: may not be specified when port is a "
     "named port"},
    {"endPort without port", policy("ew", R"({"ingress":[{"ports":[{"endPort":90}]}]})"),
     "NetworkPolicy x/ew: spec.ingress[0].ports[0].endPort: may not be specified without a numeric "
     "port"},
    {"endPort below port", policy("eb", R"({"egress":[{"ports":[{"port":90,"endPort":80}]}]})"),
     "NetworkPolicy x/eb: spec.egress[0].ports[0].endPort: 80 is less than port 90"},
    {"lower-case protocol", policy("pr", R"({"ingress":[{"ports":[{"protocol":"tcp"}]}]})"),
     R"(NetworkPolicy x/pr: spec.ingress[0].ports[0].protocol: "tcp" is not a supported protocol (TCP, UDP, SCTP))"},
    {"unknown operator",
     policy("op",
            R"({"podSelector":{"matchExpressions":[{"key":"a","operator":"in","values":["b"]}]}})"),
     R"(NetworkPolicy x/op: spec.podSelector.matchExpressions[0].operator: "in" is not a valid operator (In, NotIn, Exists, DoesNotExist))"},
    {"In without values",
     policy("iv", R"({"podSelector":{"matchExpressions":[{"key":"a","operator":"In"}]}})"),
     "NetworkPolicy x/iv: spec.podSelector.matchExpressions[0].values: must be non-empty when "
     "operator is In"},
    {"Exists with values",
     policy(
         "ev",
         R"({"podSelector":{"matchExpressions":[{"key":"a","operator":"Exists","values":["b"]}]}})"),
     "NetworkPolicy x/ev: spec.podSelector.matchExpressions[0].values: may not be specified when "
     "operator is Exists"},
    {"empty peer", policy("pe", R"({"ingress":[{"from":[{}]}]})"),
     "NetworkPolicy x/pe: spec.ingress[0].from[0]: must specify a peer (podSelector, "
     "namespaceSelector or ipBlock)"},
    {"ipBlock with selector",
     policy("ps2",
            R"({"ingress":[{"from":[{"podSelector":{},"ipBlock":{"cidr":"10.0.0.0/8"}}]}]})"),
     "NetworkPolicy x/ps2: spec.ingress[0].from[0]: may not specify both ipBlock and another peer"},
    {"unknown policy type", policy("pt", R"({"policyTypes":["ingress"]})"),
     R"(NetworkPolicy x/pt: spec.policyTypes[0]: "ingress" is not a policy type (Ingress, Egress))"},
    {"label value not a string",
     R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"nl","labels":{"v":2}}})",
     "Namespace nl: metadata.labels.v: 2 is not a string"},
    {"selector value not a string",
     policy("sv", R"({"podSelector":{"matchLabels":{"enabled":true}}})"),
     "NetworkPolicy x/sv: spec.podSelector.matchLabels.enabled: true is not a string"},
    {"missing name", R"({"apiVersion":"v1","kind":"Pod","metadata":{"namespace":"x"}})",
     "Pod x/<no name> (items[1]): metadata.name: missing"},
    {"missing metadata", R"({"apiVersion":"v1","kind":"Node"})",
     "Node <no name> (items[1]): metadata: missing"},
    {"container port out of range", pod_with_ports("cp", R"([{"containerPort":70000}])"),
     "Pod x/cp: spec.containers[0].ports[0].containerPort: 70000 is out of range 1..65535"},
    {"container port missing", pod_with_ports("cm", R"([{"name":"http"}])"),
     "Pod x/cm: spec.containers[0].ports[0].containerPort: missing"},
    {"container port name upper-case",
     pod_with_ports("cn", R"([{"name":"HTTP","containerPort":80}])"),
     R"(Pod x/cn: spec.containers[0].ports[0].name: "HTTP" is not a valid port name (1-15 lower-case letters, digits and '-', with at least one letter))"},
    {"containers not a list",
     R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"cl","namespace":"x"},"spec":{"containers":{}}})",
     "Pod x/cl: spec.containers: {} is not a list"},
    {"hostNetwork as string",
     R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"hn","namespace":"x"},"spec":{"hostNetwork":"true"}})",
     R"(Pod x/hn: spec.hostNetwork: "true" is not a boolean)"},
    // A message quotes the first 77 bytes of a value; printing all of it recursed once per
    // level and overflowed the stack.
    {"label value nested 100000 deep",
     str(R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"deep","namespace":"x",)",
         R"("labels":{"a":)", std::string(100000, '['), std::string(100000, ']'), "}}}"),
     str("Pod x/deep: metadata.labels.a: ", std::string(77, '['), "... is not a string")},
    {"bad pod IP",
     R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"ip","namespace":"x"},"status":{"podIPs":[{"ip":"10.0.0.256"}]}})",
     R"(Pod x/ip: status.podIPs[0].ip: "10.0.0.256" is not an IP address)"},
    {"bad node podCIDR",
     R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"n"},"spec":{"podCIDRs":["10.244.0.0/24","nope"]}})",
     R"(Node n: spec.podCIDRs[1]: "nope" is not a CIDR (address/length))"},
    // Names as the API server validates them: they become "ns/name" keys and nftables names.
    {"slash in a policy name", policy("a/b", "{}"),
     "NetworkPolicy x/a/b: metadata.name: not a DNS-1123 subdomain (lower-case letters, digits "
     "and '-', '.' between labels; a letter or digit at each end)"},
    {"policy name too long", policy(std::string(254, 'p'), "{}"),
     str("NetworkPolicy x/", std::string(254, 'p'), ": metadata.name: longer than 253 characters")},
    {"empty label in a pod name", pod_with_ports("a..b", "[]"),
     "Pod x/a..b: metadata.name: not a DNS-1123 subdomain (lower-case letters, digits and '-', "
     "'.' between labels; a letter or digit at each end)"},
    {"upper-case namespace",
     R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"Prod"}})",
     "Namespace Prod: metadata.name: not a DNS-1123 label (lower-case letters, digits and '-'; a "
     "letter or digit at each end)"},
    {"dot in a namespace", R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a.b"}})",
     "Namespace a.b: metadata.name: not a DNS-1123 label (lower-case letters, digits and '-'; a "
     "letter or digit at each end)"},
    {"policy in a namespace with a slash",
     R"({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"p","namespace":"x/y"}})",
     "NetworkPolicy x/y/p: metadata.namespace: not a DNS-1123 label (lower-case letters, digits "
     "and '-'; a letter or digit at each end)"},
    {"namespace name ending in a dash",
     R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"x-"}})",
     "Pod x-/p: metadata.namespace: not a DNS-1123 label (lower-case letters, digits and '-'; a "
     "letter or digit at each end)"},
    {"generic List item without kind", R"({"apiVersion":"v1","metadata":{"name":"k"}})",
     "List items[1]: kind: missing"},
    {"item not an object", R"("just text")", R"(List items[1]: "just text" is not an object)"},
};

BOOST_DATA_TEST_CASE(malformed_object_is_skipped_alone, data::make(kBad), c) {
  auto d = decode_json(sandwich(c.object));
  BOOST_TEST(d.pods.size() == 1u);
  BOOST_TEST(d.policies.size() == 1u);
  BOOST_TEST(d.namespaces.empty());
  BOOST_TEST(d.nodes.empty());
  BOOST_TEST_REQUIRE(d.errors.size() == 1u, errors_of(d));
  BOOST_TEST(d.errors[0] == c.error);
}

BOOST_AUTO_TEST_CASE(unknown_kinds_are_counted_not_errors) {
  auto d = decode_json(sandwich(
      R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"}},)"
      R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},"spec":{"ports":[{"port":"x"}]}},)"
      R"j({"apiVersion":"crd.projectcalico.org/v1","kind":"NetworkPolicy","metadata":{"name":"c"},)j"
      R"j("spec":{"selector":"all()","ingress":[{"action":"Allow"}]}})j"));
  BOOST_TEST(d.errors.empty(), errors_of(d));
  BOOST_TEST(d.ignored == 3u);
  BOOST_TEST(d.size() == 2u);
}

BOOST_AUTO_TEST_CASE(unknown_fields_and_nulls_are_tolerated) {
  auto d = decode_json(R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":null,
      "labels":{"empty":null},"futureField":{"x":1}},"spec":{"containers":null,"nodeName":null,
      "newSpecField":[1,2]},"status":{"podIPs":[],"podIP":"10.0.0.9","extra":true}})");
  BOOST_TEST(d.errors.empty(), errors_of(d));
  BOOST_TEST_REQUIRE(d.pods.size() == 1u);
  BOOST_TEST(d.pods[0].namespace_ == "default");
  BOOST_TEST((d.pods[0].labels == Labels{{"empty", ""}}));  // null decodes as "" in Go
  BOOST_TEST(d.pods[0].ips == std::vector<IpAddr>{ip("10.0.0.9")},
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(default_namespace_applies_to_namespaced_kinds_only) {
  auto d = decode_json(sandwich(R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"n"}},)"
                                R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"w"}})"),
                       "team-a");
  BOOST_TEST_REQUIRE(d.pods.size() == 2u);
  BOOST_TEST(d.pods[0].namespace_ == "x");
  BOOST_TEST(d.pods[1].namespace_ == "team-a");
  BOOST_TEST_REQUIRE(d.nodes.size() == 1u);
  BOOST_TEST(to_string(d.nodes[0]) == "Node w podCIDRs=[] internalIPs=[] labels={}");
}

BOOST_AUTO_TEST_CASE(top_level_that_is_not_an_object) {
  auto d = decode_json(R"({"metadata":{"name":"k","namespace":"x"}})");
  BOOST_TEST_REQUIRE(d.errors.size() == 1u);
  BOOST_TEST(d.errors[0] == "object x/k: kind: missing");
  BOOST_CHECK_EXCEPTION(decode_json("[]"), knit::Error, [](const knit::Error& e) {
    BOOST_TEST((e.code() == Code::kDecode));
    BOOST_TEST(std::string(e.what()) ==
               "decode Kubernetes JSON: top level is a list, not an object");
    return true;
  });
  BOOST_CHECK_EXCEPTION(decode_json("{\"kind\":"), knit::Error, [](const knit::Error& e) {
    BOOST_TEST((e.code() == Code::kDecode));
    BOOST_TEST(std::string_view(e.what()).starts_with("decode Kubernetes JSON: parse error"));
    return true;
  });
}

BOOST_AUTO_TEST_CASE(to_string_of_a_policy) {
  auto d = decode_json(policy(
      "web", R"({"podSelector":{"matchLabels":{"app":"web"}},"ingress":[{"from":[{"podSelector":{}},
      {"ipBlock":{"cidr":"10.0.0.0/8","except":["10.1.0.0/16"]}}],"ports":[{"port":8000,
      "endPort":8080},{"protocol":"UDP"}]}],"egress":[{}]})"));
  BOOST_TEST_REQUIRE(d.policies.size() == 1u);
  BOOST_TEST(to_string(d.policies[0]) ==
             "NetworkPolicy x/web podSelector={app=web} types=Ingress,Egress "
             "ingress=[peers=[pod{}, ip 10.0.0.0/8 except 10.1.0.0/16] ports=[TCP:8000-8080, UDP]] "
             "egress=[peers=any ports=any]");
}

// ---- Watch events
// ----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(watch_added_pod) {
  auto ev = decode_event(
      R"({"type":"ADDED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"x-a",)"
      R"("namespace":"x","uid":"u1","resourceVersion":"901","labels":{"pod":"a"}},)"
      R"("status":{"phase":"Running","podIPs":[{"ip":"10.244.1.21"}]}}})");
  BOOST_TEST(ev.type == EventType::kAdded);
  BOOST_TEST((ev.ref == ObjectRef{Kind::kPod, "x", "x-a", "u1"}));
  BOOST_TEST(ev.resource_version == "901");
  BOOST_TEST_REQUIRE(ev.decoded.pods.size() == 1u);
  BOOST_TEST(ev.decoded.pods[0].ips == std::vector<IpAddr>{ip("10.244.1.21")},
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(watch_modified_policy) {
  auto ev = decode_event(
      str(R"({"type":"MODIFIED","object":)",
          policy("deny", R"({"podSelector":{},"policyTypes":["Ingress","Egress"]})"), "}"));
  BOOST_TEST(ev.type == EventType::kModified);
  BOOST_TEST(ev.ref.kind == Kind::kNetworkPolicy);
  BOOST_TEST_REQUIRE(ev.decoded.policies.size() == 1u);
  BOOST_TEST(ev.decoded.policies[0].egress_isolation);
}

BOOST_AUTO_TEST_CASE(watch_deleted_invalid_object_still_names_it) {
  auto ev = decode_event(
      R"({"type":"DELETED","object":{"kind":"NetworkPolicy","apiVersion":"networking.k8s.io/v1",)"
      R"("metadata":{"name":"np","namespace":"y","uid":"u9","resourceVersion":"77"},)"
      R"("spec":{"ingress":[{"ports":[{"protocol":"QUIC"}]}]}}})");
  BOOST_TEST(ev.type == EventType::kDeleted);
  BOOST_TEST((ev.ref == ObjectRef{Kind::kNetworkPolicy, "y", "np", "u9"}));
  BOOST_TEST(ev.decoded.size() == 0u);
  BOOST_TEST_REQUIRE(ev.decoded.errors.size() == 1u);
  BOOST_TEST(
      ev.decoded.errors[0].starts_with("NetworkPolicy y/np: spec.ingress[0].ports[0].protocol"));
}

BOOST_AUTO_TEST_CASE(watch_event_of_other_kind_is_ignored) {
  auto ev = decode_event(
      R"({"type":"ADDED","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"c","namespace":"x"}}})");
  BOOST_TEST((ev.ref == ObjectRef{Kind::kOther, "x", "c", ""}));
  BOOST_TEST(ev.decoded.ignored == 1u);
  BOOST_TEST(ev.decoded.errors.empty());
}

BOOST_AUTO_TEST_CASE(watch_bookmark_and_error) {
  auto bm = decode_event(
      R"({"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"12345",)"
      R"("annotations":{"k8s.io/initial-events-end":"true"}}}})");
  BOOST_TEST(bm.type == EventType::kBookmark);
  BOOST_TEST(bm.resource_version == "12345");
  BOOST_TEST(bm.decoded.size() == 0u);
  BOOST_TEST(bm.decoded.errors.empty());  // a bookmark has no name and is not an error

  auto er = decode_event(
      R"({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",)"
      R"j("message":"too old resource version: 100 (48213)","reason":"Expired","code":410}})j");
  BOOST_TEST(er.type == EventType::kError);
  BOOST_TEST((er.status == Status{410, "Expired", "too old resource version: 100 (48213)"}));
}

BOOST_AUTO_TEST_CASE(watch_malformed_events_throw) {
  for (const char* line : {R"({"type":"ADDED"})", R"({"type":"UPSERT","object":{}})",
                           R"({"object":{}})", R"({"type":"ADDED","object":[]})", "not json"}) {
    BOOST_CHECK_EXCEPTION(decode_event(line), knit::Error, [&](const knit::Error& e) {
      BOOST_TEST((e.code() == Code::kDecode), line);
      return true;
    });
  }
}

// ---- Manifests
// -------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(user_manifest) {
  auto d = decode_manifest(fixture("manifest.yaml"), "manifest.yaml");
  BOOST_TEST(d.errors.empty(), errors_of(d));
  BOOST_TEST(d.ignored == 2u);  // Deployment, Service
  BOOST_TEST(d.namespaces.size() == 3u);
  BOOST_TEST(d.pods.size() == 3u);
  BOOST_TEST(d.policies.size() == 4u);

  BOOST_TEST(by_name(d.namespaces, "monitoring").labels.at("purpose") == "metrics");
  BOOST_TEST(by_name(d.namespaces, "batch").labels.at("kubernetes.io/metadata.name") == "batch");

  const auto& backend = by_name(d.pods, "backend");
  BOOST_TEST(backend.labels->at("version") == "2");
  std::vector<ContainerPort> want{{"api", 5000, Protocol::kTcp},
                                  {"api-udp", 5001, Protocol::kUdp},
                                  {"fluent-fwd", 24224, Protocol::kTcp}};
  BOOST_TEST(*backend.ports == want, boost::test_tools::per_element());
  BOOST_TEST(by_name(d.pods, "debug").namespace_ == "default");

  const auto& allow = by_name(d.policies, "allow-from-frontend");
  BOOST_TEST(allow.namespace_ == "shop");
  BOOST_TEST((allow.pod_selector == LabelSelector{{{"role", "backend"}}, {}}));
  BOOST_TEST_REQUIRE(allow.ingress.size() == 2u);
  BOOST_TEST(to_string(allow.ingress[0]) == "peers=[pod{role=frontend}] ports=[TCP:api]");
  BOOST_TEST(to_string(allow.ingress[1]) ==
             "peers=[pod{}&ns{kubernetes.io/metadata.name=monitoring}] "
             "ports=[TCP:9090, TCP:5000-5010]");

  const auto& dns = by_name(d.policies, "allow-dns");
  BOOST_TEST(dns.ingress_isolation);  // inferred: no policyTypes
  BOOST_TEST(dns.egress_isolation);

  const auto& deny = by_name(d.policies, "deny-egress");  // from the List document
  BOOST_TEST(!deny.ingress_isolation);
  BOOST_TEST(deny.egress_isolation);
  BOOST_TEST(to_string(deny.pod_selector) == "{role notin (gateway)}");
}

BOOST_AUTO_TEST_CASE(malformed_manifest_keeps_the_good_objects) {
  auto d = decode_manifest(fixture("malformed.yaml"), "malformed.yaml");
  BOOST_TEST(d.namespaces.size() == 1u);
  BOOST_TEST(d.namespaces.at(0).name == "good-ns");
  BOOST_TEST(d.policies.size() == 1u);
  BOOST_TEST(d.policies.at(0).name == "good-policy");
  BOOST_TEST(d.pods.size() == 1u);
  BOOST_TEST(d.pods.at(0).name == "good-pod");
  std::vector<std::string> want{
      R"(malformed.yaml: document 2 (line 6): NetworkPolicy shop/bad-cidr: spec.ingress[0].from[0].ipBlock.cidr: "10.0.0.0/33" is not a CIDR (address/length))",
      "malformed.yaml: document 3 (line 18): Pod shop/bad-port: "
      "spec.containers[0].ports[0].containerPort: 70000 is out of range 1..65535",
      // `yes` is a boolean in YAML 1.1, as for kubectl; the API server refuses it as a label.
      "malformed.yaml: document 5 (line 40): Namespace bad-labels: metadata.labels.enabled: true "
      "is not a string",
      "malformed.yaml: document 6 (line 47): Pod shop/<no name>: metadata.name: missing",
      "malformed.yaml: document 7 (line 55): document is a string, not a Kubernetes object",
  };
  BOOST_TEST(d.errors == want, boost::test_tools::per_element());
}

BOOST_DATA_TEST_CASE(json_fixtures_read_alike_as_json_and_yaml,
                     data::make({"pods.json", "podlist-api.json", "networkpolicies.json",
                                 "namespaces.json", "node.json"}),
                     name) {
  auto text = fixture(name);
  auto as_json = decode_json(text);
  BOOST_TEST(as_json.size() > 0u);
  BOOST_TEST((decode_manifest(text, name) == as_json));
  // Force the YAML path: JSON is YAML, but a leading comment makes it not JSON.
  BOOST_TEST((decode_manifest(str("# yaml\n", text), name) == as_json));
}

BOOST_AUTO_TEST_CASE(manifest_syntax_error_names_file_and_line) {
  BOOST_CHECK_EXCEPTION(
      decode_manifest("apiVersion: v1\nkind: Pod\nmetadata:\n  name: [a\n", "broken.yaml"),
      knit::Error, [](const knit::Error& e) {
        BOOST_TEST((e.code() == Code::kDecode));
        BOOST_TEST(std::string_view(e.what()).starts_with("decode broken.yaml: line 5, column 1: "),
                   e.what());
        return true;
      });
  // A JSON-looking file that is not JSON goes to the YAML parser, which says where it fails.
  BOOST_CHECK_EXCEPTION(
      decode_manifest("{\"kind\": \"Pod\",\n \"metadata\": {\n", "bad.json"), knit::Error,
      [](const knit::Error& e) {
        BOOST_TEST(std::string_view(e.what()).starts_with("decode bad.json: line "), e.what());
        return true;
      });
}

BOOST_AUTO_TEST_CASE(manifest_flow_mapping_and_empty_documents) {
  auto d = decode_manifest(
      "{apiVersion: v1, kind: Namespace, metadata: {name: flow}}\n---\n# nothing\n---\n",
      "flow.yaml");
  BOOST_TEST(d.errors.empty(), errors_of(d));
  BOOST_TEST_REQUIRE(d.namespaces.size() == 1u);
  BOOST_TEST(d.namespaces[0].name == "flow");
  BOOST_TEST(decode_manifest("", "empty.yaml").size() == 0u);
  BOOST_TEST(decode_manifest("# only a comment\n", "c.yaml").errors.empty());
}

BOOST_AUTO_TEST_CASE(manifest_list_document) {
  auto d = decode_manifest(R"(
kind: NetworkPolicyList
apiVersion: networking.k8s.io/v1
items:
  - metadata: {name: a, namespace: q}
    spec: {podSelector: {}}
  - metadata: {name: b}
    spec: {podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 300.0.0.0/8}}]}]}
)",
                           "list.yaml", "ns1");
  BOOST_TEST_REQUIRE(d.policies.size() == 1u);
  BOOST_TEST(d.policies[0].namespace_ == "q");
  BOOST_TEST_REQUIRE(d.errors.size() == 1u);
  BOOST_TEST(
      d.errors[0] ==
      R"(list.yaml: document 1 (line 2): NetworkPolicy ns1/b: spec.ingress[0].from[0].ipBlock.cidr: "300.0.0.0/8" is not a CIDR (address/length))");
}

BOOST_AUTO_TEST_CASE(list_items_decode_alike_streamed_or_whole) {
  // A list's items are decoded as the parser reads them when its kind comes first (as the API
  // server and kubectl write it), and from the whole document otherwise: same result.
  std::string items =
      str(R"([{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"x"}},3,[1],)",
          R"({"metadata":{"name":"no-kind"}},)",
          R"({"kind":"PodList","items":[{"metadata":{"name":"inner","namespace":"y"}}]},)",
          policy("bad", R"({"podSelector":{},"ingress":[{"ports":[{"port":0}]}]})"), ",",
          policy("good", R"({"podSelector":{}})"), "]");
  auto streamed = decode_json(
      str(R"({"kind":"List","apiVersion":"v1","metadata":{"resourceVersion":"9"},"items":)", items,
          "}"));
  auto whole = decode_json(str(R"({"apiVersion":"v1","items":)", items,
                               R"(,"metadata":{"resourceVersion":"9"},)", R"("kind":"List"})"));
  BOOST_TEST((streamed == whole), errors_of(streamed) << "--\n" << errors_of(whole));
  BOOST_TEST(streamed.resource_version == "9");
  BOOST_TEST_REQUIRE(streamed.pods.size() == 2u);
  BOOST_TEST(streamed.pods[1].namespace_ == "y");
  BOOST_TEST(streamed.policies.size() == 1u);
  BOOST_TEST(errors_of(streamed) ==
             "List items[1]: 3 is not an object\n"
             "List items[2]: [1] is not an object\n"
             "List items[3]: kind: missing\n"
             "NetworkPolicy x/bad: spec.ingress[0].ports[0].port: 0 is out of range 1..65535\n");
  BOOST_TEST((decode_manifest(str(R"({"kind":"List","items":)", items, "}"), "f.json") ==
              decode_manifest(str(R"({"items":)", items, R"(,"kind":"List"})"), "f.json")));

  // A "kind" or "items" again after the items: the last one counts, as it does for the parser.
  auto pod = [](const char* name) {
    return str(R"({"kind":"Pod","metadata":{"name":")", name, R"(","namespace":"x"}})");
  };
  auto twice = decode_json(
      str(R"({"kind":"List","items":[)", pod("first"), R"(],"items":[)", pod("second"), "]}"));
  BOOST_TEST_REQUIRE(twice.pods.size() == 1u);
  BOOST_TEST(twice.pods[0].name == "second");
  auto kind_again = decode_json(str(R"({"kind":"List","items":[)", pod("item"),
                                    R"(],"kind":"Pod","metadata":{"name":"p","namespace":"x"}})"));
  BOOST_TEST_REQUIRE(kind_again.pods.size() == 1u);
  BOOST_TEST(kind_again.pods[0].name == "p");
  // The last "kind" before the items is not a string: the list is refused whole, as before.
  auto not_a_kind =
      decode_json(str(R"({"kind":"List","kind":{"a":1},"items":[)", pod("item"), "]}"));
  BOOST_TEST(not_a_kind.pods.empty());
  BOOST_TEST(errors_of(not_a_kind) == "object <no name>: kind: {\"a\":1} is not a kind\n");
}

BOOST_AUTO_TEST_CASE(decoded_merge) {
  auto a = decode_json(fixture("namespaces.json"));
  auto b = decode_json(fixture("node.json"));
  b.errors.push_back("e");
  b.ignored = 2;
  a.merge(std::move(b));
  BOOST_TEST(a.namespaces.size() == 4u);
  BOOST_TEST(a.nodes.size() == 1u);
  BOOST_TEST(a.errors == std::vector<std::string>{"e"}, boost::test_tools::per_element());
  BOOST_TEST(a.ignored == 2u);
  BOOST_TEST(a.resource_version == "50188");
  BOOST_TEST(a.size() == 5u);
}

// ---- What the decoders do not read is skipped, not trusted
// -------------------------------------------------------------------------------------

/// A pod as the API server returns it: mostly members knit never reads, with JSON's corners in
/// them (escapes, surrogate pairs, UTF-8, numbers, deep nesting) and in the members it reads.
/// `json_only` adds what YAML cannot spell (\/, surrogate pairs, 5000 levels of nesting).
std::string noisy_pod(std::string_view name, bool json_only = false) {
  size_t depth = json_only ? 5000 : 150;  // the YAML reader stops at 200 levels
  std::string deep(depth, '[');
  deep += std::string(depth, ']');
  return str(
      R"({"kind":"Pod","apiVersion":"v1","metadata":{"name":")", name,
      R"(","generateName":"web-\u00e9-","namespace":"x","uid":"u-1","resourceVersion":"7",)",
      R"("labels":{"app":"web","caf\u00e9":"cr\u00e8me","e":""},)",
      R"("annotations":{"a":"quote \" backslash \\ \b\f\n\r\t é😀")",
      json_only ? R"(,"j":"\/ \ud83d\ude00 \uDBFF\uDFFF")" : "", "},",
      R"("managedFields":[{"manager":"kubelet",)",
      R"("fieldsV1":{"f:status":{".":{},"k:{\"ip\":\"10.0.0.1\"}":{}}},)",
      R"("time":"2024-01-01T00:00:00Z","n":[-0.5e+10,0,1E3,-0,12.25,true,false,null]}],)",
      R"("ownerReferences":[{"kind":"ReplicaSet","name":"web","controller":true}],"deep":)", deep,
      R"(},"spec":{"volumes":[{"name":"v","projected":{"sources":[{"configMap":{"items":[]}}]}}],)",
      R"("nodeName":"node-1","hostNetwork":false,"containers":[{"name":"c","image":"i",)",
      R"("env":[{"name":"X","valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}}],)",
      R"("ports":[{"name":"http","containerPort":8080,"protocol":"TCP"}],"resources":{}}],)",
      R"("initContainers":[{"name":"s","restartPolicy":"Always","ports":[{"containerPort":9}]},)",
      R"({"name":"init","ports":[{"containerPort":10}]}],"tolerations":[]},)",
      R"("status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}],)",
      R"("podIP":"10.0.0.1","podIPs":[{"ip":"10.0.0.1"},{"ip":"fd00::1"}],)",
      R"("containerStatuses":[{"name":"c","state":{"running":{}}}]}})");
}

BOOST_AUTO_TEST_CASE(api_objects_read_alike_with_and_without_skipping) {
  // The YAML path builds the whole document; the JSON path skips what no decoder reads.
  auto list = str(R"({"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"9"},)",
                  R"("items":[)", noisy_pod("a"), ",", noisy_pod("b"), "]}");
  auto as_json = decode_json(list);
  BOOST_TEST_REQUIRE(as_json.pods.size() == 2u, errors_of(as_json));
  BOOST_TEST((decode_manifest(str("# yaml\n", list), "l") == as_json));
  const Pod& a = as_json.pods[0];
  BOOST_TEST(a.labels->at("caf\xc3\xa9") == "cr\xc3\xa8me");
  BOOST_TEST(a.node_name == "node-1");
  BOOST_TEST(a.ports->size() == 2u);  // the container's and the sidecar's, not the init's
  BOOST_TEST(a.ips.size() == 2u);
  BOOST_TEST(as_json.resource_version == "9");
  BOOST_TEST(
      (decode_json(str(R"({"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"9"},)",
                       R"("items":[)", noisy_pod("a", true), ",", noisy_pod("b", true), "]}")) ==
       as_json));

  auto ev = decode_event(str(R"({"type":"MODIFIED","object":)", noisy_pod("a", true), "}"));
  BOOST_TEST_REQUIRE(ev.decoded.pods.size() == 1u);
  BOOST_TEST((ev.decoded.pods[0] == a));
  // An escaped member name is the name it spells.
  auto escaped = decode_json(
      R"({"kind":"Pod","m\u0065tadata":{"name":"e","namespace":"x"},"spec":{"nodeName":"n"}})");
  BOOST_TEST_REQUIRE(escaped.pods.size() == 1u, errors_of(escaped));
  BOOST_TEST(escaped.pods[0].node_name == "n");
}

BOOST_AUTO_TEST_CASE(malformed_json_in_skipped_members_is_still_refused) {
  for (std::string bad :
       {R"(tru)", R"(01)", R"(1.)", R"(-)", R"("a\qb")", R"("\udc00")", R"("\ud800x")", "\"\x01\"",
        "\"\xff\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", R"({"a":1,})", R"({"a" 1})", R"([1 2])",
        R"([)", R"({"a":})", R"("open)", R"(1e999)"}) {
    auto text = str(R"({"kind":"Pod","metadata":{"name":"p","annotations":{"k":)", bad, "}}}");
    BOOST_CHECK_EXCEPTION(decode_json(text), knit::Error, [&](const knit::Error& e) {
      BOOST_TEST((e.code() == Code::kDecode), bad);
      return true;
    });
    BOOST_CHECK_EXCEPTION(decode_event(str(R"({"type":"ADDED","object":)", text, "}")), knit::Error,
                          [&](const knit::Error& e) {
                            BOOST_TEST((e.code() == Code::kDecode), bad);
                            return true;
                          });
  }
  // Trailing text after the object.
  BOOST_CHECK_THROW(decode_json(R"({"kind":"Pod","metadata":{"name":"p"}} x)"), knit::Error);
}

BOOST_AUTO_TEST_SUITE_END()
