// AddressClaims (watcher/claims.hpp): a reused pod address never keeps the old pod's rules.
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "watcher/claims.hpp"

using namespace knit;
using namespace knit::watcher;

namespace {

IpAddr ip(const char* s) { return *IpAddr::parse(s); }
const IpAddr kA = ip("10.244.1.7");
const IpAddr kB = ip("fd00:10:244:1::7");

std::string holder(const AddressClaims& c, const IpAddr& a) {
  const std::string* h = c.holder(a);
  return h ? *h : "";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(watcher_claims)

BOOST_AUTO_TEST_CASE(a_new_pod_takes_an_address_the_old_pod_still_lists) {
  AddressClaims c;
  BOOST_TEST(c.report("x/old", {kA, kB}, 10).empty());
  // The old pod is terminating but its object still shows kA; the new pod gets kA.
  auto lost = c.report("x/new", {kA}, 20);
  BOOST_TEST((lost == std::vector<AddressClaims::Loss>{{"x/old", kA, "x/new"}}));
  BOOST_TEST(holder(c, kA) == "x/new");
  BOOST_TEST(holder(c, kB) == "x/old");
  // The old pod's next update still lists kA: it does not take it back.
  lost = c.report("x/old", {kA, kB}, 30);
  BOOST_TEST((lost == std::vector<AddressClaims::Loss>{{"x/old", kA, "x/new"}}));
  BOOST_TEST(holder(c, kA) == "x/new");
  // The old pod goes away: the new one keeps kA, kB is free.
  c.release("x/old");
  BOOST_TEST(holder(c, kA) == "x/new");
  BOOST_TEST(holder(c, kB) == "");
}

BOOST_AUTO_TEST_CASE(first_reports_together_go_to_the_newer_resource_version) {
  // A list (start-up, or a relist after 410) reports every pod at once, in name order; in a
  // watch stream reports come in resourceVersion order and the later one wins anyway.
  for (bool newer_first : {true, false}) {
    AddressClaims c;
    std::vector<AddressClaims::Loss> lost;
    if (newer_first) {
      c.report("x/new", {kA}, 20);
      lost = c.report("x/old", {kA}, 10);
    } else {
      c.report("x/old", {kA}, 10);
      lost = c.report("x/new", {kA}, 20);
    }
    BOOST_TEST(holder(c, kA) == "x/new", "newer first: " << newer_first);
    BOOST_TEST((lost == std::vector<AddressClaims::Loss>{{"x/old", kA, "x/new"}}));
  }
}

BOOST_AUTO_TEST_CASE(an_address_a_pod_stops_reporting_is_free) {
  AddressClaims c;
  c.report("x/a", {kA, kB}, 1);
  c.report("x/a", {kB}, 2);
  BOOST_TEST(holder(c, kA) == "");
  BOOST_TEST(c.report("x/b", {kA}, 3).empty());
  BOOST_TEST(holder(c, kA) == "x/b");
  // hostNetwork (reports nothing) frees everything.
  c.report("x/a", {}, 4);
  BOOST_TEST(holder(c, kB) == "");
}

BOOST_AUTO_TEST_CASE(releasing_a_loser_frees_nothing_it_lost) {
  AddressClaims c;
  c.report("x/old", {kA}, 1);
  c.report("x/new", {kA}, 2);
  c.release("x/old");
  c.release("x/unknown");
  BOOST_TEST(holder(c, kA) == "x/new");
  // The holder released: free, and the next first report takes it without a loss.
  c.release("x/new");
  BOOST_TEST(holder(c, kA) == "");
  BOOST_TEST(c.report("x/third", {kA}, 3).empty());
}

BOOST_AUTO_TEST_SUITE_END()
