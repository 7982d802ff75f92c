#include <boost/test/unit_test.hpp>

#include "cni/wiring.hpp"
#include "test/print.hpp"

using namespace knit;
using knit::cni::plan_wiring;

BOOST_AUTO_TEST_SUITE(cni_wiring)

BOOST_AUTO_TEST_CASE(host_names_are_stable_short_and_distinct) {
  auto a = cni::host_ifname_for("abc", "eth0");
  BOOST_TEST(a.size() == 15u);
  BOOST_TEST(a.rfind("knit", 0) == 0u);
  BOOST_TEST(a == cni::host_ifname_for("abc", "eth0"));
  BOOST_TEST(a != cni::host_ifname_for("abc", "eth1"));
  BOOST_TEST(a != cni::host_ifname_for("abd", "eth0"));
  // The separator matters: ("ab","ceth0") must not collide with ("abc","eth0").
  BOOST_TEST(a != cni::host_ifname_for("ab", "ceth0"));
}

BOOST_AUTO_TEST_CASE(dual_stack_gets_both_gateways_and_default_routes) {
  auto w = plan_wiring("cid", "eth0", {*IpAddr::parse("10.22.0.5"), *IpAddr::parse("fd00::5")},
                       1400, std::nullopt, {});
  BOOST_REQUIRE(w.gw4.has_value());
  BOOST_REQUIRE(w.gw6.has_value());
  BOOST_TEST(w.gw4->to_string() == "169.254.1.1");
  BOOST_TEST(*w.gw6 == eui64_link_local(w.host_mac));
  BOOST_TEST(w.routes.size() == 2u);
  BOOST_TEST(w.routes[0].dst.to_string() == "0.0.0.0/0");
  BOOST_TEST(w.routes[1].dst.to_string() == "::/0");
  BOOST_TEST((w.host_mac.bytes[0] & 0x03) == 0x02);  // locally administered unicast
  BOOST_TEST((w.pod_mac.bytes[0] & 0x03) == 0x02);
  BOOST_TEST(w.host_mac != w.pod_mac);
}

BOOST_AUTO_TEST_CASE(single_stack_has_one_gateway) {
  auto v6 = plan_wiring("cid", "eth0", {*IpAddr::parse("fd00::5")}, 1500, std::nullopt, {});
  BOOST_TEST(!v6.gw4.has_value());
  BOOST_TEST(v6.gw6.has_value());
  auto v4 = plan_wiring("cid", "eth0", {*IpAddr::parse("10.0.0.5")}, 1500, std::nullopt, {});
  BOOST_TEST(v4.gw4.has_value());
  BOOST_TEST(!v4.gw6.has_value());
}

BOOST_AUTO_TEST_CASE(configured_routes_use_the_family_gateway_and_skip_duplicates) {
  std::vector<conf::RouteConf> extra = {{*Prefix::parse("0.0.0.0/0"), std::nullopt},
                                        {*Prefix::parse("192.168.0.0/16"), std::nullopt},
                                        {*Prefix::parse("fd99::/48"), std::nullopt}};
  auto w = plan_wiring("cid", "eth0", {*IpAddr::parse("10.0.0.5")}, 1500, std::nullopt, extra);
  BOOST_TEST(w.routes.size() == 2u);  // default once; the IPv6 route has no IPv6 address to use
  BOOST_TEST(w.routes[1].dst.to_string() == "192.168.0.0/16");
  BOOST_TEST(w.routes[1].gw == *w.gw4);
}

BOOST_AUTO_TEST_CASE(requested_mac_is_used) {
  auto mac = *Mac::parse("02:42:ac:11:00:02");
  auto w = plan_wiring("cid", "eth0", {*IpAddr::parse("10.0.0.5")}, 1500, mac, {});
  BOOST_TEST(w.pod_mac == mac);
}

BOOST_AUTO_TEST_CASE(result_lists_host_and_pod_interfaces) {
  auto w = plan_wiring("cid", "eth0", {*IpAddr::parse("10.0.0.5"), *IpAddr::parse("fd00::5")},
                       1500, std::nullopt, {});
  auto r = cni::make_result(w, "/run/netns/p", std::nullopt);
  BOOST_REQUIRE(r.interfaces.size() == 2u);
  BOOST_TEST(r.interfaces[0].sandbox.empty());
  BOOST_TEST(r.interfaces[1].sandbox == "/run/netns/p");
  BOOST_TEST(r.interfaces[1].mac == w.pod_mac.to_string());
  BOOST_REQUIRE(r.ips.size() == 2u);
  BOOST_TEST(r.ips[0].address.to_string() == "10.0.0.5/32");
  BOOST_TEST(r.ips[1].address.to_string() == "fd00::5/128");
  BOOST_TEST(*r.ips[0].interface == 1);
}

BOOST_AUTO_TEST_CASE(result_appends_to_a_previous_result) {
  conf::Result prev;
  prev.interfaces.push_back({"lo", "", std::nullopt, "/run/netns/p", "", ""});
  prev.ips.push_back({*Prefix::parse("10.1.0.1/24"), std::nullopt, 0});
  auto w = plan_wiring("cid", "eth1", {*IpAddr::parse("10.0.0.5")}, 1500, std::nullopt, {});
  auto r = cni::make_result(w, "/run/netns/p", prev);
  BOOST_TEST(r.interfaces.size() == 3u);
  BOOST_TEST(r.ips.size() == 2u);
  BOOST_TEST(*r.ips[0].interface == 0);
  BOOST_TEST(*r.ips[1].interface == 2);
}

BOOST_AUTO_TEST_CASE(alias_round_trips) {
  auto a = cni::link_alias("kind-net", "0123abc", "eth0");
  auto p = cni::parse_link_alias(a);
  BOOST_REQUIRE(p.has_value());
  BOOST_TEST(p->network == "kind-net");
  BOOST_TEST(p->container_id == "0123abc");
  BOOST_TEST(p->ifname == "eth0");
  BOOST_TEST(!cni::parse_link_alias("something else").has_value());
}

BOOST_AUTO_TEST_SUITE_END()
