// Unit tests for ipam/allocate: host-local defaults and validation, round-robin allocation,
// requested addresses, release and free counts. Pure functions, no disk.
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <ostream>

#include "core/error.hpp"
#include "core/str.hpp"
#include "ipam/allocate.hpp"

namespace bdata = boost::unit_test::data;
using knit::Code;
using knit::Error;
using knit::IpAddr;
using knit::Prefix;
using namespace knit::ipam;

namespace {

using u128 = unsigned __int128;

IpAddr ip(std::string_view s) {
  auto a = IpAddr::parse(s);
  if (!a) throw std::invalid_argument(std::string(s));
  return *a;
}

/// Range sets from a compact text: sets separated by ';', ranges by '|', and each range is
/// "<subnet> [start=<ip>] [end=<ip>] [gw=<ip>]". "" is no sets; an empty piece an empty set.
std::vector<knit::conf::RangeSet> sets(std::string_view text) {
  std::vector<knit::conf::RangeSet> out;
  if (text.empty()) return out;
  for (auto set_text : knit::split(text, ';')) {
    knit::conf::RangeSet set;
    if (!set_text.empty()) {
      for (auto range_text : knit::split(set_text, '|')) {
        knit::conf::IpamRange r;
        auto fields = knit::split(range_text, ' ');
        auto subnet = Prefix::parse(fields[0]);
        if (!subnet) throw std::invalid_argument(std::string(fields[0]));
        r.subnet = *subnet;
        for (size_t i = 1; i < fields.size(); ++i) {
          auto eq = fields[i].find('=');
          auto key = fields[i].substr(0, eq);
          auto value = ip(fields[i].substr(eq + 1));
          if (key == "start") {
            r.range_start = value;
          } else if (key == "end") {
            r.range_end = value;
          } else if (key == "gw") {
            r.gateway = value;
          } else {
            throw std::invalid_argument(std::string(key));
          }
        }
        set.push_back(r);
      }
    }
    out.push_back(set);
  }
  return out;
}

std::vector<Pool> pools(std::string_view text) {
  return resolve_pools(sets(text));
}

std::vector<std::string> strs(const std::vector<IpAddr>& ips) {
  std::vector<std::string> out;
  for (const auto& a : ips) out.push_back(a.to_string());
  return out;
}

std::string u128_text(u128 v) {
  if (v == 0) return "0";
  std::string out;
  while (v) {
    out.insert(out.begin(), static_cast<char>('0' + static_cast<int>(v % 10)));
    v /= 10;
  }
  return out;
}

std::vector<std::string> counts(const std::vector<u128>& v) {
  std::vector<std::string> out;
  for (auto c : v) out.push_back(u128_text(c));
  return out;
}

/// The addresses of a successful decision; fails the test otherwise.
std::vector<IpAddr> granted(const Decision& d) {
  if (auto* ex = std::get_if<Exhausted>(&d)) {
    BOOST_FAIL("unexpected Exhausted{" << ex->pool << "}");
  }
  if (auto* un = std::get_if<Unavailable>(&d)) {
    BOOST_FAIL("unexpected Unavailable{" << un->requested.to_string() << ", " << un->reason << "}");
  }
  return std::get<std::vector<IpAddr>>(d);
}

Attachment attachment(std::string id, std::vector<IpAddr> ips) {
  Attachment a;
  a.container_id = std::move(id);
  a.ifname = "eth0";
  a.ips = std::move(ips);
  return a;
}

/// Allocates for a new attachment `id` and records it; returns its addresses.
std::vector<IpAddr> add(State& state, const std::vector<Pool>& p, std::string id) {
  auto ips = granted(allocate(p, state, {}));
  record(state, attachment(std::move(id), ips), p);
  return ips;
}

/// A table row: a name for the log and the data.
struct Defaults {
  const char* subnet;
  const char* gateway;
  const char* start;
  const char* end;
};
std::ostream& operator<<(std::ostream& os, const Defaults& c) {
  return os << c.subnet;
}

struct Invalid {
  const char* config;
  const char* message;  // the whole expected Error::what()
};
std::ostream& operator<<(std::ostream& os, const Invalid& c) {
  return os << '"' << c.config << '"';
}

struct Sequence {
  const char* config;
  std::vector<std::string> handed_out;  // in order, until exhausted
};
std::ostream& operator<<(std::ostream& os, const Sequence& c) {
  return os << c.config;
}

struct Cursor {
  const char* config;
  const char* last;  // last_reserved[0], "" for none
  std::vector<std::string> in_use;
  const char* expected;
};
std::ostream& operator<<(std::ostream& os, const Cursor& c) {
  return os << c.config << " after " << (*c.last ? c.last : "nothing");
}

struct Request {
  const char* name;
  const char* config;
  std::vector<std::string> requested;
  std::vector<std::string> expected;  // empty: Unavailable expected
  const char* unavailable_ip;
  const char* reason;  // substring of Unavailable::reason
};
std::ostream& operator<<(std::ostream& os, const Request& c) {
  return os << c.name;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(ipam_allocate)

const std::vector<Defaults> kDefaults = {
    {"10.0.0.0/24", "10.0.0.1", "10.0.0.1", "10.0.0.254"},
    {"10.244.0.0/16", "10.244.0.1", "10.244.0.1", "10.244.255.254"},
    {"192.168.7.0/30", "192.168.7.1", "192.168.7.1", "192.168.7.2"},
    {"fd00:10::/64", "fd00:10::1", "fd00:10::1", "fd00:10::ffff:ffff:ffff:ffff"},
    {"fd00::/120", "fd00::1", "fd00::1", "fd00::ff"},
    {"fd00::/126", "fd00::1", "fd00::1", "fd00::3"},
};

BOOST_DATA_TEST_CASE(defaults_follow_host_local, bdata::make(kDefaults), c) {
  auto p = pools(c.subnet);
  BOOST_TEST_REQUIRE(p.size() == 1u);
  BOOST_TEST_REQUIRE(p[0].ranges.size() == 1u);
  const Range& r = p[0].ranges[0];
  BOOST_TEST((p[0].family == r.subnet.family()));
  BOOST_TEST(r.subnet.to_string() == c.subnet);
  BOOST_TEST(r.gateway.to_string() == c.gateway);
  BOOST_TEST(r.start.to_string() == c.start);
  BOOST_TEST(r.end.to_string() == c.end);
}

BOOST_AUTO_TEST_CASE(explicit_values_are_kept) {
  auto p = pools("10.0.0.0/24 start=10.0.0.10 end=10.0.0.20 gw=10.0.0.254;fd00::/64 gw=fd00::fe");
  BOOST_TEST_REQUIRE(p.size() == 2u);
  BOOST_TEST((p[0].family == knit::Family::kV4));
  BOOST_TEST((p[1].family == knit::Family::kV6));
  BOOST_TEST(to_string(p[0].ranges[0]) == "10.0.0.0/24 [10.0.0.10-10.0.0.20] gw 10.0.0.254");
  BOOST_TEST(to_string(p[1].ranges[0]) ==
             "fd00::/64 [fd00::1-fd00::ffff:ffff:ffff:ffff] gw fd00::fe");
}

BOOST_DATA_TEST_CASE(
    accepts_disjoint_ranges,
    bdata::make({
        // One subnet split into disjoint intervals, as host-local allows.
        "10.0.0.0/24 start=10.0.0.10 end=10.0.0.19|10.0.0.0/24 start=10.0.0.20 end=10.0.0.30",
        "10.0.0.0/24|10.0.1.0/24;fd00::/64",
        // Same numbers, different families: no overlap.
        "10.0.0.0/24;::a00:0/120",
        "10.0.0.0/30",
        "fd00::/126",
    }),
    config) {
  BOOST_CHECK_NO_THROW(pools(config));
}

const std::vector<Invalid> kInvalid = {
    {"", "invalid network config: ipam.ranges: no range sets configured"},
    {"10.0.0.0/24;", "invalid network config: ipam.ranges[1]: empty range set"},
    {"10.0.0.1/24",
     "invalid network config: ipam.ranges[0][0]: subnet 10.0.0.1/24 has host bits set"},
    {"fd00::/64;fd00:1::1/64",
     "invalid network config: ipam.ranges[1][0]: subnet fd00:1::1/64 has host bits set"},
    {"10.0.0.0/31",
     "invalid network config: ipam.ranges[0][0]: subnet 10.0.0.0/31 is too small to allocate from"},
    {"10.0.0.0/32",
     "invalid network config: ipam.ranges[0][0]: subnet 10.0.0.0/32 is too small to allocate from"},
    {"fd00::/127",
     "invalid network config: ipam.ranges[0][0]: subnet fd00::/127 is too small to allocate from"},
    {"fd00::/128",
     "invalid network config: ipam.ranges[0][0]: subnet fd00::/128 is too small to allocate from"},
    {"10.0.0.0/24 start=10.0.1.5",
     "invalid network config: ipam.ranges[0][0]: rangeStart 10.0.1.5 is outside subnet "
     "10.0.0.0/24"},
    {"10.0.0.0/24 start=fd00::5",
     "invalid network config: ipam.ranges[0][0]: rangeStart fd00::5 is outside subnet 10.0.0.0/24"},
    {"10.0.0.0/24 end=10.0.1.5",
     "invalid network config: ipam.ranges[0][0]: rangeEnd 10.0.1.5 is outside subnet 10.0.0.0/24"},
    {"10.0.0.0/24|10.0.1.0/24 gw=10.0.0.1",
     "invalid network config: ipam.ranges[0][1]: gateway 10.0.0.1 is outside subnet 10.0.1.0/24"},
    {"10.0.0.0/24 start=10.0.0.100 end=10.0.0.50",
     "invalid network config: ipam.ranges[0][0]: rangeStart 10.0.0.100 is after rangeEnd "
     "10.0.0.50"},
    {"10.0.0.0/24 start=10.0.0.255",
     "invalid network config: ipam.ranges[0][0]: rangeStart 10.0.0.255 is after rangeEnd "
     "10.0.0.254"},
    {"10.0.0.0/24|fd00::/64",
     "invalid network config: ipam.ranges[0][1]: subnet fd00::/64 is IPv6 but ipam.ranges[0][0] "
     "is IPv4; a range set holds one family"},
    {"10.0.0.0/24|10.0.0.0/25",
     "invalid network config: ipam.ranges[0][1]: range 10.0.0.1-10.0.0.126 overlaps "
     "ipam.ranges[0][0] (10.0.0.1-10.0.0.254)"},
    {"10.0.0.0/24;10.0.0.128/25",
     "invalid network config: ipam.ranges[1][0]: range 10.0.0.129-10.0.0.254 overlaps "
     "ipam.ranges[0][0] (10.0.0.1-10.0.0.254)"},
    {"10.0.0.0/24 start=10.0.0.10 end=10.0.0.20|10.0.0.0/24 start=10.0.0.20 end=10.0.0.30",
     "invalid network config: ipam.ranges[0][1]: range 10.0.0.20-10.0.0.30 overlaps "
     "ipam.ranges[0][0] (10.0.0.10-10.0.0.20)"},
    {"10.1.0.0/16;fd00::/64;fd00::/64 start=fd00::100",
     "invalid network config: ipam.ranges[2][0]: range fd00::100-fd00::ffff:ffff:ffff:ffff "
     "overlaps ipam.ranges[1][0] (fd00::1-fd00::ffff:ffff:ffff:ffff)"},
};

BOOST_DATA_TEST_CASE(rejects_invalid_ranges, bdata::make(kInvalid), c) {
  try {
    pools(c.config);
    BOOST_FAIL("accepted");
  } catch (const Error& e) {
    BOOST_TEST(static_cast<int>(e.code()) == static_cast<int>(Code::kInvalidConfig));
    BOOST_TEST(std::string(e.what()) == c.message);
  }
}

// Allocating until exhausted hands out exactly these addresses, in this order: never the
// network, IPv4 broadcast or any gateway.
const std::vector<Sequence> kSequences = {
    {"10.0.0.0/29", {"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"}},
    {"10.0.0.0/29 gw=10.0.0.4", {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.5", "10.0.0.6"}},
    {"10.0.0.0/29 start=10.0.0.0 end=10.0.0.7",
     {"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"}},
    {"10.0.0.0/29 start=10.0.0.0 end=10.0.0.7 gw=10.0.0.6",
     {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"}},
    {"10.0.0.0/29 start=10.0.0.4", {"10.0.0.4", "10.0.0.5", "10.0.0.6"}},
    {"fd00::/125", {"fd00::2", "fd00::3", "fd00::4", "fd00::5", "fd00::6", "fd00::7"}},
    {"fd00::/125 start=fd00:: end=fd00::7",
     {"fd00::2", "fd00::3", "fd00::4", "fd00::5", "fd00::6", "fd00::7"}},
    // Several ranges in one set: each in order, each range's own gateway skipped.
    {"10.0.0.0/29|10.0.1.0/30",
     {"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.1.2"}},
    {"10.0.0.0/29 start=10.0.0.5|10.0.0.0/29 start=10.0.0.1 end=10.0.0.4",
     {"10.0.0.5", "10.0.0.6", "10.0.0.2", "10.0.0.3", "10.0.0.4"}},
    // A gateway of one range inside another range of the same subnet is skipped too.
    {"10.0.0.0/29 start=10.0.0.1 end=10.0.0.3 gw=10.0.0.5|10.0.0.0/29 start=10.0.0.4 end=10.0.0.6",
     {"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.6"}},
};

BOOST_DATA_TEST_CASE(exhausts_exactly_the_usable_addresses, bdata::make(kSequences), c) {
  auto p = pools(c.config);
  State state;
  BOOST_TEST(counts(free_counts(p, state)) ==
             std::vector<std::string>{std::to_string(c.handed_out.size())});
  std::vector<std::string> got;
  for (int i = 0; i < 300; ++i) {
    auto d = allocate(p, state, {});
    if (auto* ex = std::get_if<Exhausted>(&d)) {
      BOOST_TEST(ex->pool == 0u);
      break;
    }
    auto ips = granted(d);
    BOOST_TEST_REQUIRE(ips.size() == 1u);
    got.push_back(ips[0].to_string());
    record(state, attachment(knit::str("c", i), ips), p);
  }
  BOOST_TEST(got == c.handed_out, boost::test_tools::per_element());
  BOOST_TEST(counts(free_counts(p, state)) == std::vector<std::string>{"0"});
}

const std::vector<Cursor> kCursors = {
    {"10.0.0.0/29", "", {}, "10.0.0.2"},
    {"10.0.0.0/29", "10.0.0.4", {}, "10.0.0.5"},
    {"10.0.0.0/29", "10.0.0.4", {"10.0.0.5"}, "10.0.0.6"},
    // Wraps past the end to the start, skipping the gateway.
    {"10.0.0.0/29", "10.0.0.6", {}, "10.0.0.2"},
    {"10.0.0.0/29", "10.0.0.5", {"10.0.0.6", "10.0.0.2"}, "10.0.0.3"},
    // The cursor itself is tried last.
    {"10.0.0.0/29", "10.0.0.4", {"10.0.0.5", "10.0.0.6", "10.0.0.2", "10.0.0.3"}, "10.0.0.4"},
    // A cursor outside the pool (the config changed) restarts at the first range.
    {"10.0.0.0/29", "10.9.9.9", {}, "10.0.0.2"},
    {"10.0.0.0/29", "fd00::3", {}, "10.0.0.2"},
    // Across ranges of one set, in order, wrapping from the last to the first.
    {"10.0.0.0/29|10.0.1.0/29", "10.0.0.6", {}, "10.0.1.2"},
    {"10.0.0.0/29|10.0.1.0/29", "10.0.1.6", {}, "10.0.0.2"},
    {"10.0.0.0/29|10.0.1.0/29", "10.0.0.5", {"10.0.0.6", "10.0.1.2"}, "10.0.1.3"},
    // Huge, nearly empty pools: the walk touches only the candidates it tries.
    {"fd00::/64", "fd00::ffff:ffff:ffff:fffe", {}, "fd00::ffff:ffff:ffff:ffff"},
    {"fd00::/64", "fd00::ffff:ffff:ffff:ffff", {"fd00::2"}, "fd00::3"},
    {"10.0.0.0/8", "10.255.255.254", {}, "10.0.0.2"},
};

BOOST_DATA_TEST_CASE(round_robin_continues_after_the_cursor, bdata::make(kCursors), c) {
  auto p = pools(c.config);
  State state;
  if (*c.last) state.last_reserved = {ip(c.last)};
  for (size_t i = 0; i < c.in_use.size(); ++i) {
    state.attachments.push_back(attachment(knit::str("c", i), {ip(c.in_use[i])}));
  }
  auto got = strs(granted(allocate(p, state, {})));
  BOOST_TEST(got == std::vector<std::string>{c.expected}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_released_address_is_not_reused_at_once) {
  auto p = pools("10.0.0.0/29");
  State state;
  BOOST_TEST(strs(add(state, p, "a")) == std::vector<std::string>{"10.0.0.2"});
  BOOST_TEST(strs(add(state, p, "b")) == std::vector<std::string>{"10.0.0.3"});
  auto gone = release(state, "a", "eth0");
  BOOST_TEST_REQUIRE(gone.has_value());
  BOOST_TEST(gone->container_id == "a");
  BOOST_TEST(strs(gone->ips) == std::vector<std::string>{"10.0.0.2"});
  BOOST_TEST(state.find("a", "eth0") == nullptr);
  BOOST_TEST_REQUIRE(state.attachments.size() == 1u);
  BOOST_TEST(state.attachments[0].container_id == "b");
  BOOST_TEST(strs(add(state, p, "c")) == std::vector<std::string>{"10.0.0.4"});
  BOOST_TEST(strs(add(state, p, "d")) == std::vector<std::string>{"10.0.0.5"});
  BOOST_TEST(strs(add(state, p, "e")) == std::vector<std::string>{"10.0.0.6"});
  // Only after the walk wraps around is the released address handed out again.
  BOOST_TEST(strs(add(state, p, "f")) == std::vector<std::string>{"10.0.0.2"});
}

BOOST_AUTO_TEST_CASE(release_of_an_unknown_attachment_is_nullopt) {
  auto p = pools("10.0.0.0/29");
  State state;
  add(state, p, "a");
  BOOST_TEST(!release(state, "a", "eth1").has_value());
  BOOST_TEST(!release(state, "b", "eth0").has_value());
  BOOST_TEST(state.attachments.size() == 1u);
}

BOOST_AUTO_TEST_CASE(record_replaces_the_same_attachment_and_moves_the_cursor) {
  auto p = pools("10.0.0.0/24;fd00::/64");
  State state;
  record(state, attachment("a", {ip("10.0.0.7"), ip("fd00::7")}), p);
  record(state, attachment("a", {ip("10.0.0.9"), ip("fd00::9")}), p);
  BOOST_TEST_REQUIRE(state.attachments.size() == 1u);
  BOOST_TEST(strs(state.attachments[0].ips) == (std::vector<std::string>{"10.0.0.9", "fd00::9"}));
  BOOST_TEST_REQUIRE(state.last_reserved.size() == 2u);
  BOOST_TEST(state.last_reserved[0]->to_string() == "10.0.0.9");
  BOOST_TEST(state.last_reserved[1]->to_string() == "fd00::9");
  BOOST_TEST(strs(granted(allocate(p, state, {}))) ==
             (std::vector<std::string>{"10.0.0.10", "fd00::a"}));
}

BOOST_AUTO_TEST_CASE(dual_stack_gives_one_address_per_pool) {
  auto p = pools("10.244.1.0/24;fd00:10:244:1::/64");
  State state;
  BOOST_TEST(strs(add(state, p, "a")) ==
             (std::vector<std::string>{"10.244.1.2", "fd00:10:244:1::2"}));
  BOOST_TEST(strs(add(state, p, "b")) ==
             (std::vector<std::string>{"10.244.1.3", "fd00:10:244:1::3"}));
  // The cursors move independently.
  state.last_reserved[1] = ip("fd00:10:244:1::100");
  BOOST_TEST(strs(add(state, p, "c")) ==
             (std::vector<std::string>{"10.244.1.4", "fd00:10:244:1::101"}));
}

const std::vector<Request> kRequests = {
    {"free v4", "10.0.0.0/24;fd00::/64", {"10.0.0.9"}, {"10.0.0.9", "fd00::2"}, "", ""},
    {"free v6", "10.0.0.0/24;fd00::/64", {"fd00::99"}, {"10.0.0.2", "fd00::99"}, "", ""},
    {"both, in any order",
     "10.0.0.0/24;fd00::/64",
     {"fd00::99", "10.0.0.9"},
     {"10.0.0.9", "fd00::99"},
     "",
     ""},
    {"second range of a set", "10.0.0.0/24|10.0.1.0/24", {"10.0.1.200"}, {"10.0.1.200"}, "", ""},
    {"taken", "10.0.0.0/24", {"10.0.0.7"}, {}, "10.0.0.7", "is in use by c7/eth0"},
    {"outside every subnet",
     "10.0.0.0/24;fd00::/64",
     {"10.0.1.5"},
     {},
     "10.0.1.5",
     "is outside every configured range"},
    {"other family",
     "10.0.0.0/24",
     {"fd00::5"},
     {},
     "fd00::5",
     "is outside every configured range"},
    {"in the subnet, outside the range",
     "10.0.0.0/24 start=10.0.0.10 end=10.0.0.20",
     {"10.0.0.30"},
     {},
     "10.0.0.30",
     "is in subnet 10.0.0.0/24 but outside ipam.ranges[0][0] (10.0.0.10-10.0.0.20)"},
    {"default range excludes the network",
     "10.0.0.0/24",
     {"10.0.0.0"},
     {},
     "10.0.0.0",
     "but outside ipam.ranges[0][0]"},
    {"gateway", "10.0.0.0/24", {"10.0.0.1"}, {}, "10.0.0.1", "is the gateway"},
    {"custom gateway",
     "10.0.0.0/24 gw=10.0.0.100",
     {"10.0.0.100"},
     {},
     "10.0.0.100",
     "is the gateway"},
    {"v6 gateway", "fd00::/64", {"fd00::1"}, {}, "fd00::1", "is the gateway"},
    {"network inside an explicit range",
     "10.0.0.0/24 start=10.0.0.0 end=10.0.0.255",
     {"10.0.0.0"},
     {},
     "10.0.0.0",
     "is the network address"},
    {"broadcast inside an explicit range",
     "10.0.0.0/24 start=10.0.0.0 end=10.0.0.255",
     {"10.0.0.255"},
     {},
     "10.0.0.255",
     "is the broadcast address"},
    {"two for the same pool",
     "10.0.0.0/24;fd00::/64",
     {"10.0.0.9", "10.0.0.10"},
     {},
     "10.0.0.10",
     "one address per range set"},
    {"the same address twice",
     "10.0.0.0/24",
     {"10.0.0.9", "10.0.0.9"},
     {},
     "10.0.0.9",
     "one address per range set"},
};

BOOST_DATA_TEST_CASE(requested_addresses, bdata::make(kRequests), c) {
  auto p = pools(c.config);
  State state;
  state.attachments.push_back(attachment("c7", {ip("10.0.0.7")}));
  std::vector<IpAddr> req;
  for (const auto& r : c.requested) req.push_back(ip(r));
  auto d = allocate(p, state, req);
  if (!c.expected.empty()) {
    BOOST_TEST(strs(granted(d)) == c.expected, boost::test_tools::per_element());
    return;
  }
  auto* un = std::get_if<Unavailable>(&d);
  BOOST_TEST_REQUIRE(un != nullptr);
  BOOST_TEST(un->requested.to_string() == c.unavailable_ip);
  BOOST_TEST(un->reason.find(c.reason) != std::string::npos, un->reason);
}

BOOST_AUTO_TEST_CASE(a_requested_address_does_not_move_the_other_pools) {
  auto p = pools("10.0.0.0/24;fd00::/64");
  State state;
  state.last_reserved = {ip("10.0.0.50"), ip("fd00::50")};
  BOOST_TEST(strs(granted(allocate(p, state, std::vector<IpAddr>{ip("10.0.0.9")}))) ==
             (std::vector<std::string>{"10.0.0.9", "fd00::51"}));
}

BOOST_AUTO_TEST_CASE(exhaustion_names_the_full_pool) {
  // The v6 pool has two usable addresses (gateway ::1 is skipped); the v4 pool many.
  auto p = pools("10.0.0.0/24;fd00::/126");
  State state;
  add(state, p, "a");
  add(state, p, "b");
  auto d = allocate(p, state, {});
  auto* ex = std::get_if<Exhausted>(&d);
  BOOST_TEST_REQUIRE(ex != nullptr);
  BOOST_TEST(ex->pool == 1u);
  // A requested address does not help the other, full pool.
  d = allocate(p, state, std::vector<IpAddr>{ip("10.0.0.100")});
  ex = std::get_if<Exhausted>(&d);
  BOOST_TEST_REQUIRE(ex != nullptr);
  BOOST_TEST(ex->pool == 1u);
  BOOST_TEST(counts(free_counts(p, state)) == (std::vector<std::string>{"251", "0"}),
             boost::test_tools::per_element());
  release(state, "a", "eth0");
  BOOST_TEST(counts(free_counts(p, state)) == (std::vector<std::string>{"252", "1"}),
             boost::test_tools::per_element());
  BOOST_TEST(strs(add(state, p, "c")) == (std::vector<std::string>{"10.0.0.4", "fd00::2"}));
}

BOOST_AUTO_TEST_CASE(free_counts_subtract_reserved_and_used_addresses) {
  auto p = pools("10.244.0.0/16;fd00::/64;10.0.0.0/24 start=10.0.0.0 end=10.0.0.255|10.0.1.0/30");
  State state;
  // /16: 65534 in range, minus the gateway. /64: 2^64-1 in range, minus the gateway.
  // /24 explicit: 256 minus network, broadcast, gateway; plus the /30's 2 minus its gateway.
  u128 v6 = (u128{1} << 64) - 2;
  BOOST_TEST(
      counts(free_counts(p, state)) == (std::vector<std::string>{"65533", u128_text(v6), "254"}),
      boost::test_tools::per_element());
  state.attachments.push_back(attachment("a", {ip("10.244.3.3"), ip("fd00::5"), ip("10.0.1.2")}));
  state.attachments.push_back(attachment("b", {ip("10.244.3.4"), ip("fd00::6"), ip("10.0.0.9")}));
  // Addresses outside every range and a (legacy) claim on a gateway are not counted twice.
  state.attachments.push_back(attachment("c", {ip("10.99.0.1"), ip("fd01::1"), ip("10.0.0.1")}));
  BOOST_TEST(counts(free_counts(p, state)) ==
                 (std::vector<std::string>{"65531", u128_text(v6 - 2), "252"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_nearly_full_large_pool_finds_the_last_holes) {
  // 10.1.0.0/22 has 1021 usable addresses; fill all but three scattered ones and make sure the
  // walk from the cursor finds them in round-robin order, then reports exhaustion.
  auto p = pools("10.1.0.0/22");
  State state;
  const std::vector<std::string> holes = {"10.1.2.17", "10.1.3.254", "10.1.0.2"};
  for (uint32_t v = 0x0a010002; v <= 0x0a0103fe; ++v) {
    auto a = IpAddr::v4(v);
    if (std::find(holes.begin(), holes.end(), a.to_string()) != holes.end()) continue;
    state.attachments.push_back(attachment(a.to_string(), {a}));
  }
  state.last_reserved = {ip("10.1.1.0")};
  BOOST_TEST(counts(free_counts(p, state)) == std::vector<std::string>{"3"});
  std::vector<std::string> got;
  for (int i = 0; i < 3; ++i) got.push_back(strs(add(state, p, knit::str("n", i)))[0]);
  BOOST_TEST(got == holes, boost::test_tools::per_element());
  auto d = allocate(p, state, {});
  BOOST_TEST(std::holds_alternative<Exhausted>(d));
}

BOOST_AUTO_TEST_SUITE_END()
