#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "nft/render.hpp"
#include "test/unit/nft_sample.hpp"

namespace bdata = boost::unit_test::data;
using namespace knit::nft;
using knit::test::ip;
using knit::test::net;

BOOST_AUTO_TEST_SUITE(nft_render)

BOOST_AUTO_TEST_CASE(sample_matches_golden_file) {
  std::string want = knit::test::read_text(knit::test::golden_path("nft_sample.nft"));
  BOOST_REQUIRE(!want.empty());
  std::string got = render(knit::test::sample_ruleset());
  BOOST_TEST(got == want);
}

BOOST_AUTO_TEST_CASE(render_is_independent_of_input_order) {
  auto a = knit::test::sample_ruleset();
  auto b = a;
  std::reverse(b.sets.begin(), b.sets.end());
  std::reverse(b.chains.begin(), b.chains.end());
  for (auto& s : b.sets) std::reverse(s.elements.begin(), s.elements.end());
  BOOST_TEST(render(a) == render(b));
  // Rule order is meaningful and is kept.
  std::swap(b.chains[0].rules[0], b.chains[0].rules[1]);
  BOOST_TEST(render(a) != render(b));
}

struct ValueCase {
  Type type;
  Value value;
  const char* text;
};
std::ostream& operator<<(std::ostream& os, const ValueCase& c) {
  return os << c.text;
}

BOOST_DATA_TEST_CASE(values,
                     bdata::make(std::vector<ValueCase>{
                         {Type::kIpv4Addr, Value::addr(ip("10.1.2.3")), "10.1.2.3"},
                         {Type::kIpv6Addr, Value::addr(ip("fd00::1")), "fd00::1"},
                         {Type::kInetProto, Value::u8(6), "tcp"},
                         {Type::kInetProto, Value::u8(132), "sctp"},
                         {Type::kInetProto, Value::u8(99), "99"},
                         {Type::kInetService, Value::port(8080), "8080"},
                         {Type::kMark, Value::u32(0x10), "0x00000010"},
                         {Type::kCtState, Value::u32(ct::kEstablished | ct::kRelated),
                          "established,related"},
                         {Type::kCtStatus, Value::u32(ct::kStatusDnat), "dnat"},
                         {Type::kFibAddrType, Value::u32(fib::kLocal), "local"},
                         {Type::kIcmpv6Type, Value::u8(135), "nd-neighbor-solicit"},
                         {Type::kIcmpType, Value::u8(8), "echo-request"},
                         {Type::kNfproto, Value::u8(proto::kIpv6), "ipv6"},
                         {Type::kIfname, Value::ifname("eth0"), "\"eth0\""},
                         {Type::kUid, Value::u32(1000), "1000"},
                     }),
                     c) {
  BOOST_TEST(render_value(c.type, c.value) == c.text);
}

struct PrioCase {
  Hook hook;
  int32_t prio;
  const char* text;
};
std::ostream& operator<<(std::ostream& os, const PrioCase& c) {
  return os << c.text;
}

BOOST_DATA_TEST_CASE(priorities,
                     bdata::make(std::vector<PrioCase>{
                         {Hook::kPostrouting, 95, "srcnat - 5"},
                         {Hook::kPostrouting, 100, "srcnat"},
                         {Hook::kInput, 101, "101"},  // srcnat is postrouting-only
                         {Hook::kPrerouting, -100, "dstnat"},
                         {Hook::kOutput, -100, "-100"},
                         {Hook::kInput, 42, "security - 8"},
                         {Hook::kForward, 0, "filter"},
                         {Hook::kPrerouting, -300, "raw"},
                         {Hook::kInput, -145, "mangle + 5"},
                     }),
                     c) {
  BOOST_TEST(render_priority(c.hook, c.prio) == c.text);
}

BOOST_AUTO_TEST_CASE(interval_elements_render_as_prefixes_or_ranges) {
  Set s{"s", {Type::kIpv4Addr}, {}, true, false, {}};
  BOOST_TEST(render_element(s, element({net("10.0.0.0/8")})) == "10.0.0.0/8");
  BOOST_TEST(render_element(s, element({net("10.0.0.7/32")})) == "10.0.0.7");
  BOOST_TEST(render_element(s, element({net("0.0.0.0/0")})) == "0.0.0.0/0");
  BOOST_TEST(render_element(
                 s, element({Field(Value::addr(ip("10.0.0.1")), Value::addr(ip("10.0.0.2")))})) ==
             "10.0.0.1-10.0.0.2");
  // 10.0.0.0-10.0.1.255 is a /23; 10.0.0.1-10.0.1.0 is not a prefix.
  BOOST_TEST(render_element(s, element({Field(Value::addr(ip("10.0.0.0")),
                                              Value::addr(ip("10.0.1.255")))})) == "10.0.0.0/23");
  BOOST_TEST(render_element(
                 s, element({Field(Value::addr(ip("10.0.0.1")), Value::addr(ip("10.0.1.0")))})) ==
             "10.0.0.1-10.0.1.0");
}

BOOST_AUTO_TEST_CASE(raw_statements_render_visibly) {
  Rule r{{Raw{"[ payload load 2b @ network header + 0 => reg 1 ]"}, accept()}, {}};
  BOOST_TEST(render_rule(r, TableFamily::kInet) ==
             "__raw \"[ payload load 2b @ network header + 0 => reg 1 ]\" accept");
}

BOOST_AUTO_TEST_CASE(dependency_matches_are_not_rendered) {
  // `meta nfproto ipv4` is implied by `ip saddr`; `meta l4proto ipv6-icmp` by `icmpv6 type`.
  Rule r{{match(Sel::kNfproto, Value::u8(proto::kIpv4)),
          match(Sel::kIpSaddr, Value::addr(ip("10.0.0.1"))),
          match(Sel::kL4proto, Value::u8(proto::kIcmpv6)), match(Sel::kIcmpv6Type, Value::u8(135)),
          accept()},
         {}};
  BOOST_TEST(render_rule(r, TableFamily::kInet) ==
             "ip saddr 10.0.0.1 icmpv6 type nd-neighbor-solicit accept");
  // Not implied: kept.
  Rule k{{match(Sel::kNfproto, Value::u8(proto::kIpv6)), match(Sel::kThDport, Value::port(53)),
          accept()},
         {}};
  BOOST_TEST(render_rule(k, TableFamily::kInet) == "meta nfproto ipv6 th dport 53 accept");
}

BOOST_AUTO_TEST_SUITE_END()
