// hostPort planning (cni/hostport.hpp), pure: entries from port mappings, conflicts, the table.
// The golden file test/data/golden/hostport-conformance.nft is also what the netns test finds in
// the kernel after the same three ADDs. Regenerate with KNIT_UPDATE_GOLDEN=1 (and read the diff).
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "cni/hostport.hpp"
#include "nft/plan.hpp"
#include "nft/render.hpp"
#include "test/print.hpp"
#include "test/files.hpp"

using knit::test::slurp;

using namespace knit;
namespace hp = knit::cni::hostport;
using conf::PortMapping;
using conf::Protocol;

namespace {

IpAddr ip(const char* s) { return *IpAddr::parse(s); }

ipam::Attachment attachment(const std::string& cid, std::vector<IpAddr> ips,
                            std::vector<PortMapping> pms) {
  ipam::Attachment a;
  a.container_id = cid;
  a.ifname = "eth0";
  a.ips = std::move(ips);
  a.port_mappings = std::move(pms);
  return a;
}

PortMapping pm(uint16_t host, Protocol p, const char* host_ip = nullptr, uint16_t cport = 8080) {
  return {host, cport, p, host_ip ? IpAddr::parse(host_ip) : std::nullopt};
}

/// The HostPort conformance scenario as the netns test runs it (network knit-test, IPAM's first
/// three addresses).
std::vector<hp::Entry> conformance_entries() {
  std::vector<hp::Entry> all;
  const char* v4[] = {"10.22.0.2", "10.22.0.3", "10.22.0.4"};
  const char* v6[] = {"fd00:22::2", "fd00:22::3", "fd00:22::4"};
  PortMapping maps[] = {pm(54323, Protocol::kTcp, "127.0.0.1"), pm(54323, Protocol::kTcp, "10.99.0.1"),
                        pm(54323, Protocol::kUdp, "10.99.0.1")};
  for (int i = 0; i < 3; ++i) {
    auto a = attachment("hp0000" + std::to_string(1001 + i), {ip(v4[i]), ip(v6[i])}, {maps[i]});
    auto e = hp::entries_for(a, "knit-test");
    all.insert(all.end(), e.begin(), e.end());
  }
  return all;
}

size_t elements(const nft::Ruleset& rs) {
  size_t n = 0;
  for (const auto& s : rs.sets) n += s.elements.size();
  return n;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cni_hostport)

BOOST_AUTO_TEST_CASE(golden_conformance_table) {
  auto entries = conformance_entries();
  BOOST_TEST(entries.size() == 3u);  // each hostIP is IPv4: no IPv6 entries
  std::string text = nft::render(hp::desired(std::nullopt, entries, {}));
  std::string golden = std::string(KNIT_TEST_DATA) + "/golden/hostport-conformance.nft";
  if (std::getenv("KNIT_UPDATE_GOLDEN")) std::ofstream(golden) << text;
  BOOST_TEST(text == slurp(golden));
}

struct EntriesCase {
  const char* name;
  std::vector<IpAddr> ips;
  PortMapping mapping;
  size_t v4, v6;  // entries per family
  bool any;       // the entries map every address of their family
};

std::ostream& operator<<(std::ostream& os, const EntriesCase& c) { return os << c.name; }

const EntriesCase kEntriesCases[] = {
    {"unset hostIP on a dual-stack pod", {ip("10.0.0.2"), ip("fd00::2")}, pm(80, Protocol::kTcp),
     1, 1, true},
    {"0.0.0.0 is every IPv4 address", {ip("10.0.0.2"), ip("fd00::2")},
     pm(80, Protocol::kTcp, "0.0.0.0"), 1, 0, true},
    {":: is every IPv6 address", {ip("10.0.0.2"), ip("fd00::2")}, pm(80, Protocol::kTcp, "::"), 0,
     1, true},
    {"127.0.0.1 is one address", {ip("10.0.0.2"), ip("fd00::2")},
     pm(80, Protocol::kUdp, "127.0.0.1"), 1, 0, false},
    {"an IPv6 hostIP on an IPv4-only pod maps nothing", {ip("10.0.0.2")},
     pm(80, Protocol::kTcp, "fd99::1"), 0, 0, false},
    {"sctp", {ip("fd00::2")}, pm(9, Protocol::kSctp), 0, 1, true},
};

BOOST_DATA_TEST_CASE(entries_follow_the_host_ip_family, boost::unit_test::data::make(kEntriesCases),
                     c) {
  auto es = hp::entries_for(attachment("cid", c.ips, {c.mapping}), "net");
  size_t v4 = 0, v6 = 0;
  for (const auto& e : es) {
    (e.family() == Family::kV4 ? v4 : v6)++;
    BOOST_TEST(e.host_ip.has_value() == !c.any);
    BOOST_TEST(e.owner == "net/cid/eth0");
    BOOST_TEST(e.host_port == c.mapping.host_port);
    BOOST_TEST(e.container_port == 8080);
  }
  BOOST_TEST(v4 == c.v4);
  BOOST_TEST(v6 == c.v6);
}

BOOST_AUTO_TEST_CASE(route_localnet_only_where_localhost_can_reach) {
  auto v4 = std::vector<IpAddr>{ip("10.0.0.2")};
  auto v6 = std::vector<IpAddr>{ip("fd00::2")};
  BOOST_TEST(hp::needs_route_localnet(attachment("c", v4, {pm(80, Protocol::kTcp)})));
  BOOST_TEST(hp::needs_route_localnet(attachment("c", v4, {pm(80, Protocol::kTcp, "0.0.0.0")})));
  BOOST_TEST(hp::needs_route_localnet(attachment("c", v4, {pm(80, Protocol::kTcp, "127.0.0.1")})));
  BOOST_TEST(!hp::needs_route_localnet(attachment("c", v4, {pm(80, Protocol::kTcp, "10.9.9.9")})));
  BOOST_TEST(!hp::needs_route_localnet(attachment("c", v4, {})));
  BOOST_TEST(!hp::needs_route_localnet(attachment("c", v6, {pm(80, Protocol::kTcp)})));
}

struct ConflictCase {
  const char* name;
  PortMapping held, wanted;
  bool clash;
};

std::ostream& operator<<(std::ostream& os, const ConflictCase& c) { return os << c.name; }

const ConflictCase kConflictCases[] = {
    {"same address, protocol and port", pm(80, Protocol::kTcp, "10.99.0.1"),
     pm(80, Protocol::kTcp, "10.99.0.1"), true},
    {"every address covers a node address", pm(80, Protocol::kTcp),
     pm(80, Protocol::kTcp, "10.99.0.1"), true},
    {"a node address inside every address", pm(80, Protocol::kTcp, "10.99.0.1"),
     pm(80, Protocol::kTcp, "0.0.0.0"), true},
    {"other address", pm(80, Protocol::kTcp, "127.0.0.1"), pm(80, Protocol::kTcp, "10.99.0.1"),
     false},
    {"other protocol", pm(80, Protocol::kTcp), pm(80, Protocol::kUdp), false},
    {"other port", pm(80, Protocol::kTcp), pm(81, Protocol::kTcp), false},
    {"other family", pm(80, Protocol::kTcp, "0.0.0.0"), pm(80, Protocol::kTcp, "::"), false},
};

BOOST_DATA_TEST_CASE(conflicts, boost::unit_test::data::make(kConflictCases), c) {
  std::vector<IpAddr> ips = {ip("10.0.0.2"), ip("fd00::2")};
  auto held = hp::entries_for(attachment("holder", ips, {c.held}), "net");
  auto current = hp::desired(std::nullopt, held, {});
  auto wanted = hp::entries_for(attachment("new", {ip("10.0.0.3"), ip("fd00::3")}, {c.wanted}), "net");
  auto clash = hp::find_conflict(wanted, current);
  BOOST_TEST(clash.has_value() == c.clash, (clash ? *clash : "no clash"));
  if (clash) BOOST_TEST(clash->find("taken by net/holder/eth0") != std::string::npos, *clash);
  // An owner never clashes with its own elements (a retried ADD replaces them).
  auto again = hp::entries_for(attachment("holder", ips, {c.held}), "net");
  BOOST_TEST(!hp::find_conflict(again, current).has_value());
}

BOOST_AUTO_TEST_CASE(one_pod_asking_twice_for_a_port) {
  std::vector<IpAddr> ips = {ip("10.0.0.2")};
  auto same = hp::entries_for(
      attachment("c", ips, {pm(80, Protocol::kTcp), pm(80, Protocol::kTcp)}), "net");
  BOOST_TEST(!hp::find_conflict(same, std::nullopt).has_value());
  auto differ = hp::entries_for(
      attachment("c", ips, {pm(80, Protocol::kTcp), pm(80, Protocol::kTcp, "127.0.0.1", 81)}),
      "net");
  auto clash = hp::find_conflict(differ, std::nullopt);
  BOOST_REQUIRE(clash.has_value());
  BOOST_TEST(clash->find("requested twice") != std::string::npos, *clash);
}

BOOST_AUTO_TEST_CASE(pod_churn_is_element_changes_only) {
  auto first = hp::entries_for(
      attachment("a", {ip("10.0.0.2"), ip("fd00::2")}, {pm(80, Protocol::kTcp)}), "net");
  // The first mapping creates everything in one plan.
  auto create = nft::plan(std::nullopt, hp::desired(std::nullopt, first, {}));
  BOOST_REQUIRE(!create.empty());
  BOOST_TEST(std::holds_alternative<nft::AddTable>(create.changes.front()));
  auto current = hp::desired(std::nullopt, first, {});
  // The next pod, and its removal, touch elements only.
  auto second = hp::entries_for(
      attachment("b", {ip("10.0.0.3")}, {pm(81, Protocol::kUdp, "10.99.0.1")}), "net");
  auto add = nft::plan(current, hp::desired(current, second, {}));
  BOOST_TEST(add.changes.size() == 2u);  // the DNAT map and the hairpin set
  for (const auto& c : add.changes) BOOST_TEST(std::holds_alternative<nft::AddElements>(c));
  auto both = hp::desired(current, second, {});
  auto del = nft::plan(both, hp::desired(both, {}, {"net/a/eth0"}));
  for (const auto& c : del.changes) BOOST_TEST(std::holds_alternative<nft::DeleteElements>(c));
  auto after = hp::desired(both, {}, {"net/a/eth0"});
  BOOST_TEST(elements(after) == 2u);  // b's DNAT and hairpin elements
  // An owner's retry replaces its element (same key, new target), never duplicates it.
  auto moved = hp::entries_for(attachment("b", {ip("10.0.0.4")}, {pm(81, Protocol::kUdp, "10.99.0.1")}),
                               "net");
  auto replaced = hp::desired(after, moved, {"net/b/eth0"});
  BOOST_TEST(elements(replaced) == 2u);
  BOOST_TEST(!hp::find_missing(moved, replaced).has_value());
  BOOST_TEST(hp::find_missing(second, replaced).has_value());
}

BOOST_AUTO_TEST_CASE(gc_finds_the_stale_owners_of_its_network_only) {
  auto a = hp::entries_for(attachment("a", {ip("10.0.0.2")}, {pm(80, Protocol::kTcp)}), "net");
  auto b = hp::entries_for(attachment("b", {ip("10.0.0.3")}, {pm(81, Protocol::kTcp)}), "net");
  auto o = hp::entries_for(attachment("o", {ip("10.0.0.4")}, {pm(82, Protocol::kTcp)}), "other");
  std::vector<hp::Entry> all = a;
  all.insert(all.end(), b.begin(), b.end());
  all.insert(all.end(), o.begin(), o.end());
  auto current = hp::desired(std::nullopt, all, {});
  auto stale = hp::stale_owners(current, "net", {"net/a/eth0"});
  BOOST_TEST(stale.size() == 1u);
  BOOST_TEST(stale.count("net/b/eth0") == 1u);
  BOOST_TEST(hp::stale_owners(std::nullopt, "net", {}).empty());
}

BOOST_AUTO_TEST_CASE(owner_tags_fit_an_nftables_comment) {
  BOOST_TEST(hp::owner_tag("net", "cid", "eth0") == "net/cid/eth0");
  std::string long_id(120, 'a');
  auto t = hp::owner_tag("net", long_id, "eth0");
  BOOST_TEST(t.size() <= 127u);
  BOOST_TEST(t.rfind("net/#", 0) == 0u);
  BOOST_TEST(t != hp::owner_tag("net", long_id, "eth1"));
}

BOOST_AUTO_TEST_SUITE_END()
