// Masquerade (watcher/nat.hpp) against a golden ruleset: test/data/golden/nat-masquerade.nft.
// Regenerate after an intended change with KNIT_UPDATE_GOLDEN=1 (and read the diff!).
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "nft/render.hpp"
#include "test/print.hpp"
#include "watcher/nat.hpp"
#include "test/files.hpp"

using knit::test::slurp;

using namespace knit;
using namespace knit::watcher;

namespace {

Prefix pfx(const char* s) { return *Prefix::parse(s); }

Node node(const char* name, std::vector<Prefix> cidrs) {
  Node n;
  n.name = name;
  n.pod_cidrs = std::move(cidrs);
  return n;
}

const std::vector<Node> kNodes = {
    node("node1", {pfx("10.244.1.0/24"), pfx("fd00:10:244:1::/64")}),
    node("node2", {pfx("10.244.2.0/24"), pfx("fd00:10:244:2::/64")}),
    node("node3", {pfx("10.244.3.0/24")}),
};

nft::Ruleset table(const MasqueradeCidrs& c) {
  nft::Ruleset rs;
  rs.table = {nft::TableFamily::kInet, "knit"};
  rs.sets = masquerade_sets(c);
  rs.chains = {masquerade_chain(c)};
  rs.sort();
  return rs;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(watcher_nat)

BOOST_AUTO_TEST_CASE(golden_dual_stack) {
  // Service CIDRs and the node network are extra; 10.244.4.0/22 overlaps nothing and
  // 10.244.2.128/25 lies inside node2's CIDR (merged away).
  auto c = masquerade_cidrs(kNodes, "node1",
                            {pfx("10.96.0.0/16"), pfx("172.18.0.0/16"), pfx("fd00:10:96::/112"),
                             pfx("10.244.2.128/25")});
  BOOST_TEST(c.pod_cidrs.size() == 2u);
  std::string text = nft::render(table(c));
  std::string golden = std::string(KNIT_TEST_DATA) + "/golden/nat-masquerade.nft";
  if (std::getenv("KNIT_UPDATE_GOLDEN")) std::ofstream(golden) << text;
  BOOST_TEST(text == slurp(golden));
}

BOOST_AUTO_TEST_CASE(a_family_without_pod_cidrs_gets_no_rule) {
  auto c = masquerade_cidrs(kNodes, "node3", {});
  auto chain = masquerade_chain(c);
  BOOST_TEST(chain.rules.size() == 1u);  // node3 is IPv4 only
  BOOST_TEST(chain.base.has_value());
  BOOST_TEST(chain.base->priority == nft::prio::kSrcnat);
  // A node without podCIDRs yet masquerades nothing.
  BOOST_TEST(masquerade_chain(masquerade_cidrs(kNodes, "unknown", {})).rules.empty());
  // The sets are there all the same, so the table's shape does not depend on the families.
  BOOST_TEST(masquerade_sets(c).size() == 4u);
}

BOOST_AUTO_TEST_SUITE_END()
