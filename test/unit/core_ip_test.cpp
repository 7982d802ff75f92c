#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <string_view>

#include "core/ip.hpp"

using knit::IpAddr;
using knit::Mac;
using knit::Prefix;

BOOST_AUTO_TEST_SUITE(core_ip)

BOOST_AUTO_TEST_CASE(parses_and_prints_both_families) {
  BOOST_TEST(IpAddr::parse("10.1.2.3")->to_string() == "10.1.2.3");
  BOOST_TEST(IpAddr::parse("fd00::1")->to_string() == "fd00::1");
  BOOST_TEST(IpAddr::parse("10.1.2.3")->is_v4());
  BOOST_TEST(!IpAddr::parse("fd00::1")->is_v4());
}

BOOST_DATA_TEST_CASE(rejects_junk,
                     boost::unit_test::data::make({"", "10.1.2", "10.1.2.256", "fd00:::1", "x",
                                                   "10.1.2.3/24", " 10.1.2.3"}),
                     text) {
  BOOST_TEST(!IpAddr::parse(text).has_value());
}

// A NUL byte ends inet_pton's C string; the text after it must not be dropped silently (a
// manifest's cidr "10.0.0.0\u0000junk/8" was read as 10.0.0.0/8).
BOOST_AUTO_TEST_CASE(rejects_embedded_nul) {
  using namespace std::string_view_literals;
  BOOST_TEST(!IpAddr::parse("10.1.2.3\0"sv).has_value());
  BOOST_TEST(!IpAddr::parse("10.1.2.3\0junk"sv).has_value());
  BOOST_TEST(!IpAddr::parse("fd00::1\0:2"sv).has_value());
  BOOST_TEST(!Prefix::parse("10.0.0.0\0junk/8"sv).has_value());
  BOOST_TEST(!Prefix::parse("10.0.0.0\0/8"sv).has_value());
}

BOOST_AUTO_TEST_CASE(prefix_math) {
  auto p = *Prefix::parse("10.22.3.7/16");
  BOOST_TEST(p.network().to_string() == "10.22.0.0/16");
  BOOST_TEST(!p.is_network());
  BOOST_TEST(p.last().to_string() == "10.22.255.255");
  BOOST_TEST(p.contains(*IpAddr::parse("10.22.200.1")));
  BOOST_TEST(!p.contains(*IpAddr::parse("10.23.0.1")));
  BOOST_TEST(!p.contains(*IpAddr::parse("fd00::1")));
  auto v6 = *Prefix::parse("fd00:10::/64");
  BOOST_TEST(v6.last().to_string() == "fd00:10::ffff:ffff:ffff:ffff");
  BOOST_TEST(Prefix::parse("0.0.0.0/0")->contains(*IpAddr::parse("1.2.3.4")));
  BOOST_TEST(!Prefix::parse("10.0.0.0/33").has_value());
  BOOST_TEST(Prefix::parse("fd00::5")->len() == 128);
}

BOOST_AUTO_TEST_CASE(u128_round_trip) {
  auto a = *IpAddr::parse("fd00::ff:1");
  BOOST_TEST(IpAddr::from_u128(a.family(), a.to_u128() + 1).to_string() == "fd00::ff:2");
  auto b = *IpAddr::parse("10.0.0.255");
  BOOST_TEST(IpAddr::from_u128(b.family(), b.to_u128() + 1).to_string() == "10.0.1.0");
}

BOOST_AUTO_TEST_CASE(mac_and_eui64) {
  auto m = *Mac::parse("0a:58:0a:f4:00:01");
  BOOST_TEST(m.to_string() == "0a:58:0a:f4:00:01");
  BOOST_TEST(knit::eui64_link_local(m).to_string() == "fe80::858:aff:fef4:1");
  BOOST_TEST(!Mac::parse("0a:58:0a:f4:00").has_value());
}

BOOST_AUTO_TEST_SUITE_END()
