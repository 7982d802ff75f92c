// Node routes (watcher/routes.hpp), pure: the plan from Node objects and the diff against what
// the kernel holds. The netns test (test/netns/watcher_routes_test.cpp) applies them.
#include <linux/rtnetlink.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>

#include "test/print.hpp"
#include "watcher/routes.hpp"

using namespace knit;
using namespace knit::watcher;

namespace {

IpAddr ip(const char* s) { return *IpAddr::parse(s); }
Prefix pfx(const char* s) { return *Prefix::parse(s); }

Node node(const char* name, std::vector<Prefix> cidrs, std::vector<IpAddr> ips) {
  Node n;
  n.name = name;
  n.pod_cidrs = std::move(cidrs);
  n.internal_ips = std::move(ips);
  return n;
}

std::vector<std::string> text(const std::vector<NodeRoute>& rs) {
  std::vector<std::string> out;
  for (const auto& r : rs) out.push_back(to_string(r));
  return out;
}

rtnl::RouteInfo kernel_route(const char* dst, const char* gw, uint8_t protocol) {
  rtnl::RouteInfo r;
  r.dst = pfx(dst);
  if (gw) r.gw = ip(gw);
  r.protocol = protocol;
  r.type = RTN_UNICAST;
  r.table = RT_TABLE_MAIN;
  return r;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(watcher_routes)

BOOST_AUTO_TEST_CASE(every_other_node_via_its_address_of_the_same_family) {
  std::vector<Node> nodes = {
      node("a", {pfx("10.244.1.0/24"), pfx("fd00:1::/64")}, {ip("172.18.0.2"), ip("fc00::2")}),
      node("b", {pfx("10.244.2.0/24"), pfx("fd00:2::/64")}, {ip("fc00::3"), ip("172.18.0.3")}),
      // IPv4 only address: its IPv6 CIDR cannot be routed.
      node("c", {pfx("10.244.3.0/24"), pfx("fd00:3::/64")}, {ip("172.18.0.4")}),
      node("d", {}, {ip("172.18.0.5")}),  // no podCIDRs yet
  };
  std::vector<std::string> want = {"10.244.2.0/24 via 172.18.0.3", "10.244.3.0/24 via 172.18.0.4",
                                   "fd00:2::/64 via fc00::3"};
  BOOST_TEST(text(plan_routes(nodes, "a")) == want, boost::test_tools::per_element());
  // The order of the Node list does not matter.
  std::reverse(nodes.begin(), nodes.end());
  BOOST_TEST(text(plan_routes(nodes, "a")) == want, boost::test_tools::per_element());
  // Another node's view: a is routed, b (itself) is not.
  auto from_b = text(plan_routes(nodes, "b"));
  BOOST_TEST(from_b.size() == 3u);
  BOOST_TEST(from_b[0] == "10.244.1.0/24 via 172.18.0.2");
}

BOOST_AUTO_TEST_CASE(misconfigured_cidrs_never_take_local_traffic_away) {
  std::vector<Node> nodes = {
      node("self", {pfx("10.244.1.0/24")}, {ip("172.18.0.2")}),
      node("overlaps-self", {pfx("10.244.0.0/16")}, {ip("172.18.0.9")}),
      node("x-second-claim", {pfx("10.244.2.0/24")}, {ip("172.18.0.8")}),
      node("b-first-claim", {pfx("10.244.2.0/24")}, {ip("172.18.0.3")}),
  };
  BOOST_TEST(text(plan_routes(nodes, "self")) ==
                 std::vector<std::string>{"10.244.2.0/24 via 172.18.0.3"},
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(diff_touches_only_routes_knit_owns) {
  std::vector<rtnl::RouteInfo> kernel = {
      kernel_route("10.244.2.0/24", "172.18.0.3", kRouteProtocol),  // kept as is
      kernel_route("10.244.3.0/24", "172.18.0.9", kRouteProtocol),  // node moved: replace
      kernel_route("10.244.4.0/24", "172.18.0.5", kRouteProtocol),  // node gone: remove
      kernel_route("10.244.5.0/24", "172.18.0.1", RTPROT_STATIC),   // someone else's: blocked
      kernel_route("172.18.0.0/16", nullptr, RTPROT_KERNEL),        // connected: untouched
      kernel_route("0.0.0.0/0", "172.18.0.1", RTPROT_BOOT),         // default: untouched
  };
  std::vector<NodeRoute> desired = {
      {pfx("10.244.2.0/24"), ip("172.18.0.3")},
      {pfx("10.244.3.0/24"), ip("172.18.0.4")},
      {pfx("10.244.5.0/24"), ip("172.18.0.6")},
      {pfx("fd00:6::/64"), ip("fc00::6")},
  };
  auto c = diff_routes(kernel, desired);
  BOOST_TEST(text(c.add) == std::vector<std::string>{"fd00:6::/64 via fc00::6"},
             boost::test_tools::per_element());
  BOOST_TEST(text(c.change) == std::vector<std::string>{"10.244.3.0/24 via 172.18.0.4"},
             boost::test_tools::per_element());
  BOOST_TEST(text(c.remove) == std::vector<std::string>{"10.244.4.0/24 via 172.18.0.5"},
             boost::test_tools::per_element());
  BOOST_TEST(text(c.blocked) == std::vector<std::string>{"10.244.5.0/24 via 172.18.0.6"},
             boost::test_tools::per_element());
  // Converged: nothing to do.
  std::vector<rtnl::RouteInfo> done;
  for (const auto& d : desired) {
    done.push_back(kernel_route(d.dst.to_string().c_str(), d.via.to_string().c_str(),
                                d.dst.to_string() == "10.244.5.0/24" ? RTPROT_STATIC
                                                                      : kRouteProtocol));
  }
  auto none = diff_routes(done, desired);
  BOOST_TEST(none.empty());
  BOOST_TEST(none.blocked.size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
