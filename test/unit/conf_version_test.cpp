#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "conf/version.hpp"

using knit::conf::Version;
namespace data = boost::unit_test::data;

BOOST_AUTO_TEST_SUITE(conf_version)

BOOST_DATA_TEST_CASE(parses_and_prints_x_y_z,
                     data::make({"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0", "10.20.30"}), text) {
  auto v = Version::parse(text);
  BOOST_TEST_REQUIRE(v.has_value());
  BOOST_TEST(v->to_string() == text);
}

BOOST_AUTO_TEST_CASE(components_are_read_as_numbers) {
  auto v = *Version::parse("1.12.003");
  BOOST_TEST(v.major == 1);
  BOOST_TEST(v.minor == 12);
  BOOST_TEST(v.patch == 3);
  BOOST_TEST(v.to_string() == "1.12.3");
}

BOOST_DATA_TEST_CASE(rejects_anything_but_x_y_z,
                     data::make({"", "1", "1.0", "1.0.0.0", "1.0.", ".1.0", "1..0", "v1.0.0",
                                 "1.0.0-rc1", "-1.0.0", "1.-1.0", "+1.0.0", " 1.0.0", "1.0.0 ",
                                 "a.b.c", "1234567890.0.0"}),
                     text) {
  BOOST_TEST(!Version::parse(text).has_value());
}

BOOST_AUTO_TEST_CASE(orders_numerically) {
  BOOST_TEST((*Version::parse("0.10.0") > *Version::parse("0.4.0")));
  BOOST_TEST((knit::conf::kV031 < knit::conf::kV040));
  BOOST_TEST((knit::conf::kV100 < knit::conf::kV110));
  BOOST_TEST((*Version::parse("1.1.0") == knit::conf::kV110));
}

BOOST_AUTO_TEST_CASE(supported_versions_are_exactly_the_five) {
  for (const char* s : {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}) {
    BOOST_TEST(knit::conf::is_supported(*Version::parse(s)), s);
  }
  for (const char* s : {"0.1.0", "0.2.0", "0.3.2", "1.0.1", "1.2.0", "2.0.0"}) {
    BOOST_TEST(!knit::conf::is_supported(*Version::parse(s)), s);
  }
}

BOOST_AUTO_TEST_SUITE_END()
