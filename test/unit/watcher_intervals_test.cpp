#include <boost/test/unit_test.hpp>
#include <random>
#include <set>

#include "test/print.hpp"
#include "watcher/intervals.hpp"

using namespace knit;
using namespace knit::watcher;

namespace {
IpAddr a(const char* s) { return *IpAddr::parse(s); }
AddrRange r(const char* lo, const char* hi) { return {a(lo), a(hi)}; }
}  // namespace

namespace knit::watcher {
std::ostream& operator<<(std::ostream& os, const AddrRange& x) {
  return os << x.lo << "-" << x.hi;
}
std::ostream& operator<<(std::ostream& os, const Tuple& t) {
  return os << t.addr << "." << int(t.proto) << "." << t.ports.lo << "-" << t.ports.hi;
}
}  // namespace knit::watcher

BOOST_AUTO_TEST_SUITE(watcher_intervals)

BOOST_AUTO_TEST_CASE(subtract_cuts_holes) {
  auto out = subtract(*Prefix::parse("10.0.0.0/24"),
                      {*Prefix::parse("10.0.0.0/30"), *Prefix::parse("10.0.0.128/25"),
                       *Prefix::parse("10.0.0.8/32")});
  std::vector<AddrRange> want = {r("10.0.0.4", "10.0.0.7"), r("10.0.0.9", "10.0.0.127")};
  BOOST_TEST(out == want, boost::test_tools::per_element());
  // Except covering everything leaves nothing; no except leaves the whole prefix.
  BOOST_TEST(subtract(*Prefix::parse("10.0.0.0/24"), {*Prefix::parse("10.0.0.0/16")}).empty());
  auto all = subtract(*Prefix::parse("0.0.0.0/0"), {});
  BOOST_REQUIRE(all.size() == 1u);
  BOOST_TEST(all[0] == everything(Family::kV4));
  auto v6 = subtract(*Prefix::parse("::/0"), {*Prefix::parse("fd00::/8")});
  BOOST_TEST(v6.size() == 2u);
  BOOST_TEST(v6[1].hi == everything(Family::kV6).hi);
}

BOOST_AUTO_TEST_CASE(normalize_merges_overlaps_only) {
  auto out = normalize(std::vector<AddrRange>{r("10.0.0.5", "10.0.0.5"), r("10.0.0.0", "10.0.0.255"),
                                             r("10.0.1.0", "10.0.1.0"), r("10.0.1.1", "10.0.1.1"),
                                             r("10.0.0.200", "10.0.1.0")});
  std::vector<AddrRange> want = {r("10.0.0.0", "10.0.1.0"), r("10.0.1.1", "10.0.1.1")};
  BOOST_TEST(out == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(tuples_become_disjoint) {
  // A pod inside an ipBlock, overlapping port ranges, two protocols.
  std::vector<Tuple> in = {
      {r("10.0.0.0", "10.0.0.255"), 6, {80, 80}},
      {r("10.0.0.5", "10.0.0.5"), 6, {81, 90}},
      {r("10.0.0.5", "10.0.0.5"), 6, {85, 100}},
      {r("10.0.0.5", "10.0.0.5"), 17, {53, 53}},
  };
  auto out = normalize(in);
  std::vector<Tuple> want = {
      {r("10.0.0.0", "10.0.0.4"), 6, {80, 80}},
      {r("10.0.0.5", "10.0.0.5"), 6, {80, 100}},
      {r("10.0.0.6", "10.0.0.255"), 6, {80, 80}},
      {r("10.0.0.5", "10.0.0.5"), 17, {53, 53}},
  };
  std::sort(want.begin(), want.end());
  BOOST_TEST(out == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(tuples_reaching_the_top_of_the_address_space) {
  std::vector<Tuple> in = {{everything(Family::kV6), 6, {53, 53}},
                           {r("fd00::1", "fd00::1"), 6, {80, 80}}};
  auto out = normalize(in);
  // [::, fd00::] x 53, fd00::1 x 53, fd00::1 x 80, [fd00::2, ffff:...] x 53
  BOOST_REQUIRE(out.size() == 4u);
  BOOST_TEST(out[0].addr.hi == a("fd00::"));
  BOOST_TEST(out[1].addr == r("fd00::1", "fd00::1"));
  BOOST_TEST(out[1].ports.lo == 53);
  BOOST_TEST(out[2].ports.lo == 80);
  BOOST_TEST(out[3].addr.lo == a("fd00::2"));
  BOOST_TEST(out[3].addr.hi == everything(Family::kV6).hi);
}

BOOST_AUTO_TEST_CASE(random_unions_are_preserved_exactly) {
  // Property: a point is covered by the output iff it is covered by the input, and output
  // elements never overlap.
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    std::vector<Tuple> in;
    int n = 1 + static_cast<int>(rng() % 6);
    for (int i = 0; i < n; ++i) {
      uint32_t lo = rng() % 32, hi = lo + rng() % 8;
      uint16_t plo = static_cast<uint16_t>(rng() % 10), phi = static_cast<uint16_t>(plo + rng() % 4);
      in.push_back({{IpAddr::v4(lo), IpAddr::v4(hi)}, static_cast<uint8_t>(rng() % 2 ? 6 : 17),
                    {plo, phi}});
    }
    auto out = normalize(in);
    auto covered = [](const std::vector<Tuple>& v, uint32_t ip, uint8_t pr, uint16_t port) {
      int c = 0;
      for (const auto& t : v) {
        if (t.proto == pr && t.addr.lo.to_u128() <= ip && ip <= t.addr.hi.to_u128() &&
            t.ports.lo <= port && port <= t.ports.hi) {
          ++c;
        }
      }
      return c;
    };
    for (uint32_t ip = 0; ip < 42; ++ip) {
      for (uint8_t pr : {6, 17}) {
        for (uint16_t port = 0; port < 16; ++port) {
          int want = covered(in, ip, pr, port) > 0 ? 1 : 0;
          BOOST_REQUIRE_EQUAL(covered(out, ip, pr, port), want);
        }
      }
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
