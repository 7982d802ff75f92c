// The lab's pure decisions: which probes a matrix needs (named ports resolved per destination),
// and what the supervisor does when the manifests change.
#include <boost/test/unit_test.hpp>

#include "lab/probe_plan.hpp"
#include "lab/reconcile.hpp"

using namespace knit;
using namespace knit::lab;

namespace {

LabPod pod(std::string ns, std::string name, std::vector<ContainerPort> ports,
           std::vector<std::string> ips = {}) {
  LabPod p;
  p.namespace_ = std::move(ns);
  p.name = std::move(name);
  p.ports = std::move(ports);
  p.netns = "/run/netns/" + p.key();
  for (const auto& ip : ips) p.ips.push_back(*IpAddr::parse(ip));
  return p;
}

const ContainerPort kHttp{"serve-80-tcp", 80, Protocol::kTcp};
const ContainerPort kHttpAlt{"serve-80-tcp", 8080, Protocol::kTcp};
const ContainerPort kDnsUdp{"dns", 53, Protocol::kUdp};
const ContainerPort kDnsTcp{"dns", 5353, Protocol::kTcp};

watcher::Pod k8s_pod(std::string ns, std::string name, std::vector<ContainerPort> ports = {}) {
  watcher::Pod p;
  p.namespace_ = std::move(ns);
  p.name = std::move(name);
  p.ports = std::move(ports);
  return p;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(lab_plan)

BOOST_AUTO_TEST_CASE(named_ports_resolve_per_destination_by_name_and_protocol) {
  BOOST_CHECK(resolve_port(uint16_t{81}, Protocol::kTcp, {kHttp}) == 81);  // numbers as they are
  BOOST_CHECK(resolve_port(std::string("serve-80-tcp"), Protocol::kTcp, {kHttp}) == 80);
  BOOST_CHECK(resolve_port(std::string("serve-80-tcp"), Protocol::kTcp, {kHttpAlt}) == 8080);
  BOOST_CHECK(resolve_port(std::string("dns"), Protocol::kUdp, {kDnsTcp, kDnsUdp}) == 53);
  BOOST_CHECK(resolve_port(std::string("dns"), Protocol::kTcp, {kDnsTcp, kDnsUdp}) == 5353);
  BOOST_CHECK(!resolve_port(std::string("serve-80-tcp"), Protocol::kUdp, {kHttp}));
  BOOST_CHECK(!resolve_port(std::string("nope"), Protocol::kTcp, {kHttp}));
}

BOOST_AUTO_TEST_CASE(plan_probes_every_pair_including_self) {
  std::vector<LabPod> pods = {pod("x", "a", {kHttp}, {"10.77.0.2", "fd00:77::2"}),
                              pod("x", "b", {kHttpAlt}, {"10.77.0.3", "fd00:77::3"})};
  auto plan = plan_probes(pods, std::string("serve-80-tcp"), Protocol::kTcp, 4);
  BOOST_CHECK(plan.matrix.pods == (std::vector<std::string>{"x/a", "x/b"}));
  BOOST_REQUIRE(plan.probes.size() == 4u);
  BOOST_CHECK(plan.probes[0] == (Probe{0, 0, *IpAddr::parse("10.77.0.2"), 80}));
  BOOST_CHECK(plan.probes[1] == (Probe{0, 1, *IpAddr::parse("10.77.0.3"), 8080}));
  BOOST_CHECK(plan.probes[3] == (Probe{1, 1, *IpAddr::parse("10.77.0.3"), 8080}));
  for (const auto& row : plan.matrix.cells)
    for (Cell c : row) BOOST_CHECK(c == Cell::kBlocked);  // until a probe succeeds
  auto v6 = plan_probes(pods, uint16_t{80}, Protocol::kTcp, 6);
  BOOST_CHECK(v6.probes[1].dst == *IpAddr::parse("fd00:77::3"));
}

BOOST_AUTO_TEST_CASE(destinations_without_the_port_or_an_address_are_not_probed) {
  std::vector<LabPod> pods = {pod("x", "a", {kHttp}, {"10.77.0.2"}),
                              pod("x", "b", {kDnsUdp}, {"10.77.0.3"}),
                              pod("x", "c", {kHttp}, {"fd00:77::4"})};
  auto plan = plan_probes(pods, std::string("serve-80-tcp"), Protocol::kTcp, 4);
  const auto& c = plan.matrix.cells;
  BOOST_CHECK(c[0][1] == Cell::kNoPort);     // b has no port of that name
  BOOST_CHECK(c[0][2] == Cell::kNoAddress);  // c has no IPv4 address
  BOOST_CHECK(c[2][0] == Cell::kNoAddress);  // ... so it cannot be a source either
  BOOST_CHECK(c[1][0] == Cell::kBlocked);
  BOOST_TEST(plan.probes.size() == 2u);  // a->a, b->a
  LabPod failed = pod("x", "d", {kHttp}, {"10.77.0.5"});
  failed.error = "CNI ADD failed";
  auto p2 = plan_probes({failed}, uint16_t{80}, Protocol::kTcp, 4);
  BOOST_CHECK(p2.matrix.cells[0][0] == Cell::kNoAddress);
}

BOOST_AUTO_TEST_CASE(wanted_pods_skip_host_network_and_duplicates) {
  std::vector<std::string> warnings;
  auto host = k8s_pod("x", "h");
  host.host_network = true;
  auto w = wanted_pods(
      {k8s_pod("y", "b"), k8s_pod("x", "a", {kHttp}), host, k8s_pod("x", "a", {kDnsUdp})},
      warnings);
  BOOST_REQUIRE(w.size() == 2u);
  BOOST_TEST(w[0].key() == "x/a");                               // sorted
  BOOST_CHECK(w[0].ports == std::vector<ContainerPort>{kHttp});  // the first one wins
  BOOST_TEST(w[1].key() == "y/b");
  BOOST_REQUIRE(warnings.size() == 2u);
  BOOST_TEST(warnings[0].find("x/h: hostNetwork") != std::string::npos, warnings[0]);
  BOOST_TEST(warnings[1].find("x/a: declared more than once") != std::string::npos, warnings[1]);
}

BOOST_AUTO_TEST_CASE(reconcile_adds_removes_retries_and_reserves) {
  std::map<std::string, LabPod> current;
  current["x/a"] = pod("x", "a", {kHttp});
  current["x/b"] = pod("x", "b", {kHttp});
  current["x/c"] = pod("x", "c", {kHttp});
  current["x/c"].error = "CNI ADD: boom";
  current["x/gone"] = pod("x", "gone", {kHttp});
  std::vector<WantedPod> wanted = {
      {"x", "a", {kHttp}}, {"x", "b", {kHttp, kDnsUdp}}, {"x", "c", {kHttp}}, {"x", "new", {}}};
  auto plan = plan_reconcile(current, wanted, false);
  BOOST_CHECK(plan.remove == (std::vector<std::string>{"x/c", "x/gone"}));
  BOOST_REQUIRE(plan.add.size() == 2u);
  BOOST_TEST(plan.add[0].key() == "x/c");  // a failed pod is tried again
  BOOST_TEST(plan.add[1].key() == "x/new");
  BOOST_REQUIRE(plan.reserve.size() == 1u);
  BOOST_TEST(plan.reserve[0].key() == "x/b");
}

BOOST_AUTO_TEST_CASE(reconcile_removes_nothing_while_the_manifests_have_errors) {
  std::map<std::string, LabPod> current;
  current["x/a"] = pod("x", "a", {kHttp});
  auto plan = plan_reconcile(current, {{"x", "n", {}}}, true);
  BOOST_TEST(plan.remove.empty());
  BOOST_TEST(plan.add.size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
