// Node networking across two simulated nodes: namespaces joined by an underlay veth pair
// (172.18.0.0/24, fd18::/64), each with pods wired by the knit CNI plugin in its own podCIDR.
// The agent's pieces are applied by hand here: routes from plan_routes()/sync_routes(), and the
// masquerade chain of watcher/nat.hpp in an `inet knit` table.
#include <linux/netlink.h>

#include <boost/test/unit_test.hpp>

#include "core/netlink.hpp"
#include "core/netns.hpp"
#include "harness.hpp"
#include "nft/apply.hpp"
#include "nft/plan.hpp"
#include "traffic.hpp"
#include "watcher/nat.hpp"
#include "watcher/routes.hpp"

using namespace knit::test;
namespace w = knit::watcher;
using knit::IpAddr;
using knit::Prefix;

namespace {

auto needs_netns() { return boost::unit_test::precondition(NeedsNetns()); }

Prefix pfx(const char* s) { return *Prefix::parse(s); }
IpAddr ip(const char* s) { return *IpAddr::parse(s); }

/// Two nodes, a pod on each, and an "internet" host on node a's uplink (10.99.0.2).
struct Cluster {
  Cluster()
      : a("rta"), b("rtb"), internet("rtinet"), pa("pa"), pb("pb") {
    // No duplicate address detection on the underlay (link-local addresses included), so that
    // neighbour discovery works from the first packet.
    a.ns.must("ip link add ul0 type veth peer name ul0 netns " + b.ns.name());
    for (Node* n : {&a, &b}) {
      std::string self = n == &a ? "2" : "3";
      n->ns.must("sysctl -qw net.ipv6.conf.ul0.accept_dad=0 && ip link set ul0 up && "
                 "ip addr add 172.18.0." + self + "/24 dev ul0 && "
                 "ip -6 addr add fd18::" + self + "/64 dev ul0 nodad");
    }
    a.ns.must("ip link set up0peer netns " + internet.name());
    internet.must("ip link set up0peer up && ip addr add 10.99.0.2/24 dev up0peer");
    node_a = {"a", {}, {pfx("10.244.1.0/24"), pfx("fd00:10:244:1::/64")},
              {ip("172.18.0.2"), ip("fd18::2")}, ""};
    node_b = {"b", {}, {pfx("10.244.2.0/24"), pfx("fd00:10:244:2::/64")},
              {ip("172.18.0.3"), ip("fd18::3")}, ""};
    Proc ra = a.add("pod-a", pa, a.config(R"([[{"subnet":"10.244.1.0/24"}],)"
                                          R"([{"subnet":"fd00:10:244:1::/64"}]])"));
    BOOST_REQUIRE_MESSAGE(ra.status == 0, ra.out << ra.err);
    Proc rb = b.add("pod-b", pb, b.config(R"([[{"subnet":"10.244.2.0/24"}],)"
                                          R"([{"subnet":"fd00:10:244:2::/64"}]])"));
    BOOST_REQUIRE_MESSAGE(rb.status == 0, rb.out << rb.err);
    ips_a = result_ips(ra.out);
    ips_b = result_ips(rb.out);
    BOOST_REQUIRE(ips_a.size() == 2u && ips_b.size() == 2u);
  }

  /// What the agent on `self` does on a Node event: plan from the Node list, converge.
  w::RouteChanges sync(Node& self, const std::string& name, const std::vector<w::Node>& nodes) {
    auto sock = knit::nl::Socket::open_in(knit::Netns::open(self.ns.path()), NETLINK_ROUTE);
    return w::sync_routes(sock, w::plan_routes(nodes, name));
  }
  void sync_both() {
    sync(a, "a", {node_a, node_b});
    sync(b, "b", {node_a, node_b});
  }
  /// The routes knit owns on a node, as `ip route` prints them.
  static std::string owned(const Node& n) {
    return n.ns.sh("ip route show proto 75; ip -6 route show proto 75").out;
  }

  Node a, b;
  TestNetns internet, pa, pb;
  w::Node node_a, node_b;
  std::vector<std::string> ips_a, ips_b;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(watcher_routes)

BOOST_AUTO_TEST_CASE(cross_node_pod_to_pod_over_ipv4_and_ipv6, *needs_netns()) {
  Cluster c;
  BOOST_TEST(!ping(c.pa.path(), c.ips_b[0]));  // no route to node b's pods yet
  c.sync_both();
  BOOST_TEST(Cluster::owned(c.a).find("10.244.2.0/24 via 172.18.0.3 dev ul0") != std::string::npos,
             Cluster::owned(c.a));
  BOOST_TEST(Cluster::owned(c.a).find("fd00:10:244:2::/64 via fd18::3 dev ul0") != std::string::npos,
             Cluster::owned(c.a));
  for (size_t f = 0; f < 2; ++f) {
    BOOST_TEST(ping(c.pa.path(), c.ips_b[f]), "pod a -> pod b " << c.ips_b[f]);
    BOOST_TEST(ping(c.pb.path(), c.ips_a[f]), "pod b -> pod a " << c.ips_a[f]);
  }
  // Routed, not NATed: pod b sees pod a's own address.
  NameServer who(c.pb.path(), 8080, NameServer::kPeerAddress);
  BOOST_TEST(ask_tcp(c.pa.path(), c.ips_b[0], 8080) == c.ips_a[0]);
  BOOST_TEST(ask_tcp(c.pa.path(), c.ips_b[1], 8080) == c.ips_a[1]);
  // Converged: a second sync changes nothing.
  BOOST_TEST(c.sync(c.a, "a", {c.node_a, c.node_b}).empty());
}

BOOST_AUTO_TEST_CASE(routes_follow_node_updates_and_deletes, *needs_netns()) {
  Cluster c;
  c.sync_both();
  BOOST_REQUIRE(ping(c.pa.path(), c.ips_b[0]));
  // Node b's InternalIP changes: the route is replaced in place.
  c.b.ns.must("ip addr del 172.18.0.3/24 dev ul0 && ip addr add 172.18.0.30/24 dev ul0");
  c.node_b.internal_ips = {ip("172.18.0.30"), ip("fd18::3")};
  auto changed = c.sync(c.a, "a", {c.node_a, c.node_b});
  BOOST_TEST(changed.change.size() == 1u);
  BOOST_TEST(changed.add.empty());
  BOOST_TEST(changed.remove.empty());
  BOOST_TEST(Cluster::owned(c.a).find("10.244.2.0/24 via 172.18.0.30") != std::string::npos,
             Cluster::owned(c.a));
  c.sync(c.b, "b", {c.node_a, c.node_b});  // b's own view is unchanged: a did not move
  BOOST_TEST(ping(c.pa.path(), c.ips_b[0]));
  // Node b loses its IPv6 podCIDR: that route goes, IPv4 stays.
  c.node_b.pod_cidrs = {pfx("10.244.2.0/24")};
  auto shrunk = c.sync(c.a, "a", {c.node_a, c.node_b});
  BOOST_TEST(shrunk.remove.size() == 1u);
  BOOST_TEST(c.a.ns.sh("ip -6 route show proto 75").out.empty());
  BOOST_TEST(!ping(c.pa.path(), c.ips_b[1]));
  BOOST_TEST(ping(c.pa.path(), c.ips_b[0]));
  // Node b deleted: nothing of knit's is left.
  c.sync(c.a, "a", {c.node_a});
  BOOST_TEST(Cluster::owned(c.a).empty(), Cluster::owned(c.a));
}

BOOST_AUTO_TEST_CASE(routes_knit_does_not_own_are_untouched, *needs_netns()) {
  Cluster c;
  // Someone else's routes: an unrelated static route, and one to a pod CIDR knit would want.
  c.a.ns.must("ip route add 10.250.0.0/24 via 172.18.0.3 && "
              "ip route add 10.244.3.0/24 via 172.18.0.3 proto static");
  std::string before = c.a.ns.sh("ip route show 10.250.0.0/24; ip route show 10.244.3.0/24").out;
  w::Node node_c{"c", {}, {pfx("10.244.3.0/24")}, {ip("172.18.0.4")}, ""};
  auto r = c.sync(c.a, "a", {c.node_a, c.node_b, node_c});
  BOOST_TEST(r.blocked.size() == 1u);
  BOOST_TEST(r.add.size() == 2u);  // node b's two CIDRs
  BOOST_TEST(c.a.ns.sh("ip route show 10.250.0.0/24; ip route show 10.244.3.0/24").out == before);
  // Removing every node removes knit's routes only.
  c.sync(c.a, "a", {});
  BOOST_TEST(Cluster::owned(c.a).empty());
  BOOST_TEST(c.a.ns.sh("ip route show 10.250.0.0/24; ip route show 10.244.3.0/24").out == before);
}

BOOST_AUTO_TEST_CASE(masquerade_only_for_traffic_leaving_the_cluster, *needs_netns()) {
  Cluster c;
  c.sync_both();
  // The masquerade chain and sets of watcher/nat.hpp, applied as the agent's table would carry
  // them (the node network 172.18.0.0/24 is the configured extra CIDR).
  auto cidrs = w::masquerade_cidrs({c.node_a, c.node_b}, "a", {pfx("172.18.0.0/24")});
  knit::nft::Ruleset rs;
  rs.table = {knit::nft::TableFamily::kInet, "knit"};
  rs.sets = w::masquerade_sets(cidrs);
  rs.chains = {w::masquerade_chain(cidrs)};
  auto nft = knit::nl::Socket::open_in(knit::Netns::open(c.a.ns.path()), NETLINK_NETFILTER);
  knit::nft::apply(nft, knit::nft::plan(std::nullopt, rs));
  auto held = knit::nft::read_table(nft, knit::nft::TableFamily::kInet, "knit");
  BOOST_REQUIRE(held.has_value());
  rs.sort();
  BOOST_TEST(knit::nft::plan(*held, rs).empty());  // the kernel holds exactly that

  NameServer outside(c.internet.path(), 80, NameServer::kPeerAddress);
  NameServer pod_b(c.pb.path(), 8080, NameServer::kPeerAddress);
  NameServer node_b(c.b.ns.path(), 8081, NameServer::kPeerAddress);
  // Leaving the cluster: the node's address.
  BOOST_TEST(ask_tcp(c.pa.path(), "10.99.0.2", 80) == "10.99.0.1");
  // Another node's pod, and another node: the pod's own address.
  BOOST_TEST(ask_tcp(c.pa.path(), c.ips_b[0], 8080) == c.ips_a[0]);
  BOOST_TEST(ask_tcp(c.pa.path(), "172.18.0.3", 8081) == c.ips_a[0]);
  // The node itself is not masqueraded either (its traffic is not from a pod CIDR).
  BOOST_TEST(ask_tcp(c.a.ns.path(), "10.99.0.2", 80) == "10.99.0.1");
}

BOOST_AUTO_TEST_SUITE_END()
