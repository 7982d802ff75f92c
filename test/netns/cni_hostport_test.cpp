// hostPort (portMappings) end to end: the plugin exec'd in a sandbox node, pods that answer with
// their own name, clients on the node itself and in an "outside" namespace wired to the node's
// uplink. The first case is the scenario of the upstream HostPort conformance test
// (test/e2e/network/hostport.go): one port, three pods, told apart by hostIP and protocol.
#include <linux/netlink.h>

#include <boost/test/unit_test.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cni/hostport.hpp"
#include "core/netlink.hpp"
#include "core/netns.hpp"
#include "harness.hpp"
#include "nft/apply.hpp"
#include "nft/plan.hpp"
#include "nft/render.hpp"
#include "traffic.hpp"
#include "test/files.hpp"

using namespace knit::test;
using nlohmann::json;

namespace {

auto needs_netns() { return boost::unit_test::precondition(NeedsNetns()); }

std::string cid(int i) { return "hp0000" + std::to_string(1000 + i); }

/// A sandbox node whose uplink's other end sits in an "outside" namespace (10.99.0.2,
/// fd99::2): a client on the node's network that is not the node.
struct Site {
  Site(const std::string& tag) : node(tag), outside(tag + "-out") {
    node.ns.must("ip link set up0peer netns " + outside.name());
    outside.must(
        "ip link set up0peer up && ip addr add 10.99.0.2/24 dev up0peer && "
        "ip -6 addr add fd99::2/64 dev up0peer nodad");
  }
  /// A dual-stack plugin config with these runtimeConfig port mappings (JSON array).
  std::string config(const std::string& mappings) const {
    return node.config(R"([[{"subnet":"10.22.0.0/24"}],[{"subnet":"fd00:22::/64"}]])", "1.1.0",
                       R"(,"runtimeConfig":{"portMappings":)" + mappings + "}");
  }
  std::string table() const { return node.ns.sh("nft list table inet knit-hostport").out; }
  Node node;
  TestNetns outside;
};

std::string mapping(int host_port, const std::string& proto, const std::string& host_ip = "",
                    int container_port = 8080) {
  return R"({"hostPort":)" + std::to_string(host_port) + R"(,"containerPort":)" +
         std::to_string(container_port) + R"(,"protocol":")" + proto + R"(","hostIP":")" +
         host_ip + R"("})";
}

constexpr int kPort = 54323;

}  // namespace

BOOST_AUTO_TEST_SUITE(cni_hostport)

BOOST_AUTO_TEST_CASE(conformance_same_port_different_host_ip_and_protocol, *needs_netns()) {
  Site site("hpconf");
  TestNetns p1("p1"), p2("p2"), p3("p3");
  NameServer s1(p1.path(), 8080, "pod1"), s2(p2.path(), 8080, "pod2"), s3(p3.path(), 8080, "pod3");
  Proc r1 = site.node.add(cid(1), p1, site.config("[" + mapping(kPort, "TCP", "127.0.0.1") + "]"));
  BOOST_REQUIRE_MESSAGE(r1.status == 0, r1.out << r1.err);
  Proc r2 = site.node.add(cid(2), p2, site.config("[" + mapping(kPort, "TCP", "10.99.0.1") + "]"));
  BOOST_REQUIRE_MESSAGE(r2.status == 0, r2.out << r2.err);
  Proc r3 = site.node.add(cid(3), p3, site.config("[" + mapping(kPort, "UDP", "10.99.0.1") + "]"));
  BOOST_REQUIRE_MESSAGE(r3.status == 0, r3.out << r3.err);

  // The kernel holds exactly the golden table of the unit test (which plans the same three ADDs).
  {
    auto sock = knit::nl::Socket::open_in(knit::Netns::open(site.node.ns.path()), NETLINK_NETFILTER);
    auto held = knit::nft::read_table(sock, knit::nft::TableFamily::kInet, "knit-hostport");
    BOOST_REQUIRE(held.has_value());
    BOOST_TEST(knit::nft::render(*held) ==
               slurp(std::string(KNIT_TEST_DATA) + "/golden/hostport-conformance.nft"));
  }

  const std::string node = site.node.ns.path();
  // The conformance test's three probes, from the node itself.
  BOOST_TEST(ask_tcp(node, "127.0.0.1", kPort, "10.99.0.1") == "pod1");  // curl --interface
  BOOST_TEST(ask_tcp(node, "10.99.0.1", kPort) == "pod2");
  BOOST_TEST(ask_udp(node, "10.99.0.1", kPort) == "pod3");
  // Plain localhost works too (route_localnet on pod1's veth, localhost masquerade).
  BOOST_TEST(ask_tcp(node, "127.0.0.1", kPort) == "pod1");
  // From outside the node: only the node address mappings.
  BOOST_TEST(ask_tcp(site.outside.path(), "10.99.0.1", kPort) == "pod2");
  BOOST_TEST(ask_udp(site.outside.path(), "10.99.0.1", kPort) == "pod3");
  // Nothing answers for a protocol/address pair nobody mapped.
  BOOST_TEST(ask_udp(node, "127.0.0.1", kPort) == "");
  // Hairpin: pod2 reaching its own hostPort through the node address.
  BOOST_TEST(ask_tcp(p2.path(), "10.99.0.1", kPort) == "pod2");
  // Only the pod that needs it gets route_localnet.
  auto localnet = [&](const std::string& out) {
    return site.node.ns.sh("sysctl -n net.ipv4.conf." + result_host_ifname(out) + ".route_localnet")
        .out;
  };
  BOOST_TEST(localnet(r1.out) == "1\n");
  BOOST_TEST(localnet(r2.out) == "0\n");
}

BOOST_AUTO_TEST_CASE(any_address_mapping_and_ipv6, *needs_netns()) {
  Site site("hpv6");
  TestNetns p1("p1"), p2("p2");
  NameServer s1(p1.path(), 8080, "any"), s2(p2.path(), 8080, "six");
  // hostIP "" maps every address of both families; fd99::1 and ::1 only IPv6.
  Proc r1 = site.node.add(cid(1), p1, site.config("[" + mapping(8081, "tcp") + "]"));
  BOOST_REQUIRE_MESSAGE(r1.status == 0, r1.out << r1.err);
  Proc r2 = site.node.add(cid(2), p2,
                          site.config("[" + mapping(8443, "tcp", "fd99::1") + "," +
                                      mapping(8444, "tcp", "::1") + "]"));
  BOOST_REQUIRE_MESSAGE(r2.status == 0, r2.out << r2.err);
  const std::string node = site.node.ns.path(), out = site.outside.path();
  BOOST_TEST(ask_tcp(out, "10.99.0.1", 8081) == "any");
  BOOST_TEST(ask_tcp(out, "fd99::1", 8081) == "any");
  BOOST_TEST(ask_tcp(node, "10.99.0.1", 8081) == "any");
  BOOST_TEST(ask_tcp(node, "127.0.0.1", 8081) == "any");
  BOOST_TEST(ask_tcp(out, "fd99::1", 8443) == "six");
  BOOST_TEST(ask_tcp(node, "fd99::1", 8443) == "six");
  BOOST_TEST(ask_tcp(out, "10.99.0.1", 8443) == "");
  // IPv6 has no route_localnet: ::1 works for a client bound to a node address, which is what
  // the conformance test does for IPv6.
  BOOST_TEST(ask_tcp(node, "::1", 8444, "fd99::1") == "six");
}

BOOST_AUTO_TEST_CASE(del_and_gc_remove_mappings, *needs_netns()) {
  Site site("hpdel");
  TestNetns p1("p1"), p2("p2"), p3("p3");
  NameServer s1(p1.path(), 8080, "pod1"), s2(p2.path(), 8080, "pod2"), s3(p3.path(), 8080, "pod3");
  auto c1 = site.config("[" + mapping(9001, "tcp") + "]");
  auto c2 = site.config("[" + mapping(9002, "tcp", "10.99.0.1") + "," + mapping(9002, "udp") + "]");
  auto c3 = site.config("[" + mapping(9003, "tcp") + "]");
  BOOST_REQUIRE(site.node.add(cid(1), p1, c1).status == 0);
  BOOST_REQUIRE(site.node.add(cid(2), p2, c2).status == 0);
  BOOST_REQUIRE(site.node.add(cid(3), p3, c3).status == 0);
  const std::string out = site.outside.path();
  BOOST_REQUIRE(ask_tcp(out, "10.99.0.1", 9001) == "pod1");
  BOOST_REQUIRE(ask_tcp(out, "10.99.0.1", 9002) == "pod2");
  BOOST_REQUIRE(ask_udp(out, "10.99.0.1", 9002) == "pod2");
  BOOST_REQUIRE(ask_tcp(out, "10.99.0.1", 9003) == "pod3");

  // DEL works from the record: the pod's namespace may already be gone.
  Proc d = site.node.del(cid(1), "/run/netns/gone", c1);
  BOOST_TEST(d.status == 0, d.out << d.err);
  BOOST_TEST(ask_tcp(out, "10.99.0.1", 9001) == "");
  BOOST_TEST(site.table().find(cid(1)) == std::string::npos, site.table());
  BOOST_TEST(ask_tcp(out, "10.99.0.1", 9002) == "pod2");
  BOOST_TEST(site.node.del(cid(1), "/run/netns/gone", c1).status == 0);  // idempotent

  // GC keeps pod3 only: pod2's TCP and UDP mappings go, pod3's stays.
  auto gc = json::parse(c3);
  gc["cni.dev/valid-attachments"] = json::array({{{"containerID", cid(3)}, {"ifname", "eth0"}}});
  Proc g = site.node.verb("GC", gc.dump());
  BOOST_TEST(g.status == 0, g.out << g.err);
  BOOST_TEST(ask_tcp(out, "10.99.0.1", 9002) == "");
  BOOST_TEST(ask_udp(out, "10.99.0.1", 9002) == "");
  BOOST_TEST(ask_tcp(out, "10.99.0.1", 9003) == "pod3");
  std::string table = site.table();
  BOOST_TEST(table.find(cid(2)) == std::string::npos, table);
  BOOST_TEST(table.find(cid(3)) != std::string::npos, table);
}

BOOST_AUTO_TEST_CASE(conflicting_mappings_are_refused_and_leave_nothing, *needs_netns()) {
  Site site("hpclash");
  TestNetns p1("p1"), p2("p2"), p3("p3"), p4("p4");
  BOOST_REQUIRE(site.node.add(cid(1), p1, site.config("[" + mapping(9100, "tcp") + "]")).status ==
                0);
  std::string before = site.table();
  // A node address inside "every address" of the same protocol and port: refused.
  Proc r2 = site.node.add(cid(2), p2, site.config("[" + mapping(9100, "tcp", "10.99.0.1") + "]"));
  BOOST_TEST(r2.status == 1);
  BOOST_TEST(error_code(r2.out) == 107, r2.out);
  BOOST_TEST(r2.out.find("tcp/9100") != std::string::npos, r2.out);
  BOOST_TEST(r2.out.find(cid(1)) != std::string::npos, r2.out);  // names the holder
  // Nothing of the refused pod stays: no record, no link, no element.
  BOOST_TEST(site.node.attachments() == 1u);
  BOOST_TEST(site.node.ns.sh("ip -o link | grep -c ': knit'").out == "1\n");
  BOOST_TEST(site.table() == before);
  // The same port over UDP is another mapping.
  Proc r3 = site.node.add(cid(3), p3, site.config("[" + mapping(9100, "udp", "10.99.0.1") + "]"));
  BOOST_TEST(r3.status == 0, r3.out);
  // One pod asking twice for the same port with different targets is refused too.
  Proc r4 = site.node.add(cid(4), p4,
                          site.config("[" + mapping(9200, "tcp", "", 80) + "," +
                                      mapping(9200, "tcp", "127.0.0.1", 81) + "]"));
  BOOST_TEST(error_code(r4.out) == 107, r4.out);
  BOOST_TEST(site.node.attachments() == 2u);
}

BOOST_AUTO_TEST_CASE(udp_conntrack_entries_of_a_new_mapping_are_flushed, *needs_netns()) {
  Site site("hpct");
  TestNetns p0("p0"), p1("p1");
  NameServer s1(p1.path(), 8080, "pod1");
  // Another pod's mapping first: the nat chains make the node track connections, as on any
  // real node.
  BOOST_REQUIRE(site.node.add(cid(0), p0, site.config("[" + mapping(9301, "udp") + "]")).status ==
                0);
  // A client keeps one source port: before the mapping exists its datagrams get a conntrack
  // entry that delivers locally (and draws port unreachable).
  UdpClient client(site.outside.path(), false, 40000);
  BOOST_TEST(client.ask("10.99.0.1", 9300) == "");
  BOOST_TEST(site.node.ns.sh("conntrack -L -p udp --dport 9300 2>/dev/null | grep -c 9300").out ==
             "1\n");
  BOOST_REQUIRE(site.node.add(cid(1), p1, site.config("[" + mapping(9300, "udp") + "]")).status ==
                0);
  // Without the flush, this datagram would follow the old entry and never reach the pod.
  BOOST_TEST(client.ask("10.99.0.1", 9300) == "pod1");
}

BOOST_AUTO_TEST_CASE(table_is_created_once_and_churn_only_touches_elements, *needs_netns()) {
  Site site("hpplan");
  TestNetns p1("p1"), p2("p2");
  BOOST_REQUIRE(site.node.add(cid(1), p1, site.config("[" + mapping(9400, "tcp") + "]")).status ==
                0);
  auto ns = knit::Netns::open(site.node.ns.path());
  auto sock = knit::nl::Socket::open_in(ns, NETLINK_NETFILTER);
  auto current = knit::nft::read_table(sock, knit::nft::TableFamily::kInet, "knit-hostport");
  BOOST_REQUIRE(current.has_value());
  // What the kernel holds lifts back to exactly what knit wants: nothing to change.
  auto again = knit::nft::plan(current, knit::cni::hostport::desired(current, {}, {}));
  BOOST_TEST(again.empty());
  for (const auto& c : again.changes) BOOST_TEST_MESSAGE(knit::nft::describe(again.table, c));
  // The next pod is element additions only.
  knit::ipam::Attachment att;
  att.container_id = cid(2);
  att.ifname = "eth0";
  att.ips = {*knit::IpAddr::parse("10.22.0.9")};
  att.port_mappings = {{9401, 80, knit::conf::Protocol::kTcp, std::nullopt}};
  auto entries = knit::cni::hostport::entries_for(att, site.node.net);
  auto next = knit::nft::plan(current, knit::cni::hostport::desired(current, entries, {}));
  BOOST_TEST(!next.empty());
  for (const auto& c : next.changes) {
    BOOST_TEST(std::holds_alternative<knit::nft::AddElements>(c),
               knit::nft::describe(next.table, c));
  }
  // CHECK sees a missing element.
  Proc r2 = site.node.add(cid(2), p2, site.config("[" + mapping(9402, "tcp") + "]"));
  BOOST_REQUIRE(r2.status == 0);
  auto with_prev = json::parse(site.config("[" + mapping(9402, "tcp") + "]"));
  with_prev["prevResult"] = json::parse(r2.out);
  BOOST_TEST(site.node.check(cid(2), p2, with_prev.dump()).status == 0);
  site.node.ns.must("nft delete element inet knit-hostport dnat_any4 '{ tcp . 9402 }'");
  Proc bad = site.node.check(cid(2), p2, with_prev.dump());
  BOOST_TEST(error_code(bad.out) == 106, bad.out);
  BOOST_TEST(bad.out.find("hostPort tcp/9402") != std::string::npos, bad.out);
}

BOOST_AUTO_TEST_CASE(route_localnet_does_not_open_the_nodes_loopback_to_pods, *needs_netns()) {
  Site site("hpguard");
  TestNetns p1("p1");
  NameServer local(site.node.ns.path(), 9999, "node-local");  // listens on every node address
  BOOST_REQUIRE(
      site.node.add(cid(1), p1, site.config("[" + mapping(9500, "tcp", "127.0.0.1") + "]")).status ==
      0);
  // A pod (with NET_ADMIN in its own namespace) that sends to 127.0.0.2 through its gateway and
  // accepts the replies.
  p1.must("ip route del local 127.0.0.0/8 dev lo table local && "
          "ip route add 127.0.0.2/32 via 169.254.1.1 dev eth0 && "
          "sysctl -qw net.ipv4.conf.eth0.route_localnet=1");
  BOOST_TEST(ask_tcp(p1.path(), "127.0.0.2", 9999) == "");
  // The guard is what stops it (CVE-2020-8558): without it the pod reaches the service.
  site.node.ns.must("nft flush chain inet knit-hostport input");
  BOOST_TEST(ask_tcp(p1.path(), "127.0.0.2", 9999) == "node-local");
}

BOOST_AUTO_TEST_SUITE_END()
