// rtnetlink requests built by core/rtnl.cpp, parsed back with libmnl: no kernel, no privileges.
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sys/socket.h>

#include <boost/test/unit_test.hpp>
#include <cstring>
#include <map>
#include <string>

#include "core/rtnl.hpp"
#include "test/print.hpp"
#include "test/unit/nl_attrs.hpp"

using namespace knit;
namespace rtnl = knit::rtnl;
using namespace knit::test;

BOOST_AUTO_TEST_SUITE(core_rtnl)

BOOST_AUTO_TEST_CASE(veth_puts_the_peer_into_the_pod_namespace) {
  nl::Request req;
  rtnl::VethSpec spec{"knit0123456789a", *Mac::parse("0e:01:02:03:04:05"), "eth0",
                      *Mac::parse("0a:01:02:03:04:05"), 1450, 42};
  rtnl::new_veth(req, spec);
  BOOST_TEST(req.count() == 1u);
  auto* nlh = req.message(0);
  BOOST_TEST(nlh->nlmsg_type == RTM_NEWLINK);
  BOOST_TEST((nlh->nlmsg_flags & (NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK | NLM_F_REQUEST)) ==
             (NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK | NLM_F_REQUEST));
  auto top = attrs(nlh, sizeof(ifinfomsg));
  BOOST_TEST(s(top.at(IFLA_IFNAME)) == "knit0123456789a");
  BOOST_TEST(mnl_attr_get_u32(top.at(IFLA_MTU)) == 1450u);
  BOOST_TEST(std::memcmp(mnl_attr_get_payload(top.at(IFLA_ADDRESS)), spec.host_mac->bytes.data(),
                         6) == 0);
  auto info = nested(top.at(IFLA_LINKINFO));
  BOOST_TEST(s(info.at(IFLA_INFO_KIND)) == "veth");
  auto data = nested(info.at(IFLA_INFO_DATA));
  const nlattr* peer = data.at(VETH_INFO_PEER);
  // The peer payload is an ifinfomsg followed by attributes.
  auto* payload = static_cast<const uint8_t*>(mnl_attr_get_payload(peer));
  size_t len = mnl_attr_get_payload_len(peer);
  BOOST_REQUIRE(len > sizeof(ifinfomsg));
  AttrMap pa;
  auto* a = reinterpret_cast<const nlattr*>(payload + NLMSG_ALIGN(sizeof(ifinfomsg)));
  int left = static_cast<int>(len - NLMSG_ALIGN(sizeof(ifinfomsg)));
  for (; mnl_attr_ok(a, left); left -= MNL_ALIGN(a->nla_len), a = mnl_attr_next(a)) {
    pa[mnl_attr_get_type(a)] = a;
  }
  BOOST_TEST(s(pa.at(IFLA_IFNAME)) == "eth0");
  BOOST_TEST(mnl_attr_get_u32(pa.at(IFLA_NET_NS_FD)) == 42u);
  BOOST_TEST(mnl_attr_get_u32(pa.at(IFLA_MTU)) == 1450u);
  BOOST_TEST(std::memcmp(mnl_attr_get_payload(pa.at(IFLA_ADDRESS)), spec.peer_mac->bytes.data(),
                         6) == 0);
}

BOOST_AUTO_TEST_CASE(ipv6_address_skips_dad) {
  nl::Request req;
  rtnl::new_addr(req, 7, "eth0", *Prefix::parse("fd00::5/128"), true);
  auto* nlh = req.message(0);
  auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(nlh));
  BOOST_TEST(ifa->ifa_family == AF_INET6);
  BOOST_TEST(ifa->ifa_prefixlen == 128);
  BOOST_TEST(ifa->ifa_index == 7u);
  auto m = attrs(nlh, sizeof(ifaddrmsg));
  BOOST_TEST((mnl_attr_get_u32(m.at(IFA_FLAGS)) & IFA_F_NODAD) != 0u);
  BOOST_TEST(m.count(IFA_LOCAL) == 0u);
  BOOST_TEST(mnl_attr_get_payload_len(m.at(IFA_ADDRESS)) == 16u);
}

BOOST_AUTO_TEST_CASE(ipv4_address_sets_local_and_address) {
  nl::Request req;
  rtnl::new_addr(req, 3, "eth0", *Prefix::parse("10.22.0.5/32"), true);
  auto m = attrs(req.message(0), sizeof(ifaddrmsg));
  BOOST_TEST(mnl_attr_get_payload_len(m.at(IFA_LOCAL)) == 4u);
  BOOST_TEST(mnl_attr_get_u32(m.at(IFA_LOCAL)) == mnl_attr_get_u32(m.at(IFA_ADDRESS)));
}

BOOST_AUTO_TEST_CASE(routes_carry_gateway_and_device) {
  nl::Request req;
  rtnl::new_route(req, {*Prefix::parse("0.0.0.0/0"), IpAddr::parse("169.254.1.1"), 9, "eth0",
                        false});
  rtnl::new_route(req, {*Prefix::parse("10.22.0.5/32"), std::nullopt, 4, "knitx", true});
  rtnl::del_route(req, {*Prefix::parse("10.22.0.5/32"), std::nullopt, 0, "knitx", true});
  BOOST_TEST(req.count() == 3u);
  auto* def = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(req.message(0)));
  BOOST_TEST(def->rtm_dst_len == 0);
  BOOST_TEST(def->rtm_scope == RT_SCOPE_UNIVERSE);
  auto dm = attrs(req.message(0), sizeof(rtmsg));
  BOOST_TEST(dm.count(RTA_DST) == 0u);
  BOOST_TEST(mnl_attr_get_u32(dm.at(RTA_OIF)) == 9u);
  BOOST_TEST(dm.count(RTA_GATEWAY) == 1u);
  auto* host = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(req.message(1)));
  BOOST_TEST(host->rtm_scope == RT_SCOPE_LINK);
  BOOST_TEST(host->rtm_dst_len == 32);
  // Deleting tolerates a route that is already gone.
  BOOST_TEST(req.tolerates(2, ESRCH));
  BOOST_TEST(!req.tolerates(1, ESRCH));
  BOOST_TEST(req.what(1) == "add route 10.22.0.5/32 dev knitx");
}

BOOST_AUTO_TEST_CASE(neighbour_is_permanent) {
  nl::Request req;
  rtnl::new_neigh(req, 5, "eth0", *IpAddr::parse("169.254.1.1"), *Mac::parse("0e:00:00:00:00:01"));
  auto* nd = static_cast<const ndmsg*>(mnl_nlmsg_get_payload(req.message(0)));
  BOOST_TEST(nd->ndm_state == NUD_PERMANENT);
  BOOST_TEST(nd->ndm_ifindex == 5);
  auto m = attrs(req.message(0), sizeof(ndmsg));
  BOOST_TEST(mnl_attr_get_payload_len(m.at(NDA_LLADDR)) == 6u);
}

BOOST_AUTO_TEST_CASE(parse_link_reads_back_a_built_message) {
  // A GETLINK reply has the same layout as the request built for set_link_up + alias.
  nl::Request req;
  rtnl::set_link_up(req, 12, "knitabc", "knit:net:cid:eth0");
  auto* nlh = req.message(0);
  nlh->nlmsg_type = RTM_NEWLINK;
  auto l = rtnl::parse_link(nlh);
  BOOST_REQUIRE(l.has_value());
  BOOST_TEST(l->index == 12);
  BOOST_TEST(l->up);
  BOOST_TEST(l->alias == "knit:net:cid:eth0");
}

BOOST_AUTO_TEST_CASE(several_messages_share_one_buffer) {
  nl::Request req;
  for (int i = 0; i < 50; ++i) {
    rtnl::new_neigh(req, i + 1, "x", IpAddr::v4(0x0a000000u + i), *Mac::parse("0e:00:00:00:00:01"));
  }
  auto bytes = req.bytes();
  int len = static_cast<int>(bytes.size());
  int n = 0;
  for (auto* nlh = reinterpret_cast<const nlmsghdr*>(bytes.data()); mnl_nlmsg_ok(nlh, len);
       nlh = mnl_nlmsg_next(nlh, &len)) {
    auto* nd = static_cast<const ndmsg*>(mnl_nlmsg_get_payload(nlh));
    BOOST_TEST(nd->ndm_ifindex == n + 1);
    ++n;
  }
  BOOST_TEST(n == 50);
  BOOST_TEST(len == 0);
}

BOOST_AUTO_TEST_CASE(veth_pair_can_keep_both_ends_here_at_chosen_indexes) {
  nl::Request req;
  rtnl::VethSpec spec;
  spec.host_name = "up0";
  spec.host_index = 2;
  spec.peer_name = "up0peer";
  spec.peer_index = 3;
  rtnl::new_veth(req, spec);
  auto* nlh = req.message(0);
  auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
  BOOST_TEST(ifi->ifi_index == 2);
  auto top = attrs(nlh, sizeof(ifinfomsg));
  BOOST_TEST(s(top.at(IFLA_IFNAME)) == "up0");
  // Unset MTU and MAC are left to the kernel.
  BOOST_TEST(top.count(IFLA_MTU) == 0u);
  BOOST_TEST(top.count(IFLA_ADDRESS) == 0u);
  auto info = nested(top.at(IFLA_LINKINFO));
  auto data = nested(info.at(IFLA_INFO_DATA));
  const nlattr* peer = data.at(VETH_INFO_PEER);
  auto* peer_ifi = static_cast<const ifinfomsg*>(mnl_attr_get_payload(peer));
  BOOST_TEST(peer_ifi->ifi_index == 3);
  // The peer's attributes follow its ifinfomsg; no IFLA_NET_NS_FD: it stays in this namespace.
  const auto* first = reinterpret_cast<const nlattr*>(reinterpret_cast<const char*>(peer_ifi) +
                                                      NLMSG_ALIGN(sizeof(ifinfomsg)));
  BOOST_TEST(mnl_attr_get_type(first) == IFLA_IFNAME);
  BOOST_TEST(s(first) == "up0peer");
  size_t peer_attrs = mnl_attr_get_payload_len(peer) - NLMSG_ALIGN(sizeof(ifinfomsg));
  BOOST_TEST(peer_attrs == MNL_ALIGN(first->nla_len));
}

BOOST_AUTO_TEST_CASE(on_link_default_route_has_no_gateway) {
  nl::Request req;
  rtnl::new_route(req, {*Prefix::parse("::/0"), std::nullopt, 2, "up0", true});
  auto* rtm = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(req.message(0)));
  BOOST_TEST(rtm->rtm_family == AF_INET6);
  BOOST_TEST(rtm->rtm_dst_len == 0);
  BOOST_TEST(rtm->rtm_scope == RT_SCOPE_LINK);
  BOOST_TEST(rtm->rtm_protocol == RTPROT_STATIC);
  auto r = attrs(req.message(0), sizeof(rtmsg));
  BOOST_TEST(mnl_attr_get_u32(r.at(RTA_OIF)) == 2u);
  BOOST_TEST(r.count(RTA_GATEWAY) == 0u);
  BOOST_TEST(req.what(0) == "add route ::/0 dev up0");
}

BOOST_AUTO_TEST_CASE(owned_routes_carry_their_protocol_and_replace_in_place) {
  nl::Request req;
  rtnl::RouteSpec r{*Prefix::parse("10.244.2.0/24"), IpAddr::parse("10.99.0.2"), 0, "", false,
                    0x4b};
  rtnl::replace_route(req, r);
  rtnl::del_route(req, r);
  rtnl::del_route(req, {*Prefix::parse("10.244.2.0/24"), std::nullopt, 0, "", false});
  auto* add = req.message(0);
  BOOST_TEST((add->nlmsg_flags & (NLM_F_CREATE | NLM_F_REPLACE | NLM_F_EXCL)) ==
             (NLM_F_CREATE | NLM_F_REPLACE));
  BOOST_TEST(static_cast<const rtmsg*>(mnl_nlmsg_get_payload(add))->rtm_protocol == 0x4b);
  BOOST_TEST(static_cast<const rtmsg*>(mnl_nlmsg_get_payload(req.message(1)))->rtm_protocol ==
             0x4b);
  // Without a protocol, a delete matches any owner.
  BOOST_TEST(static_cast<const rtmsg*>(mnl_nlmsg_get_payload(req.message(2)))->rtm_protocol == 0);
  // A dump reply has the request's layout: parse_route reads the owner back.
  auto parsed = rtnl::parse_route(add);
  BOOST_REQUIRE(parsed.has_value());
  BOOST_TEST(parsed->protocol == 0x4b);
  BOOST_TEST(parsed->dst == *Prefix::parse("10.244.2.0/24"));
  BOOST_TEST((parsed->gw == IpAddr::parse("10.99.0.2")));
}

BOOST_AUTO_TEST_CASE(route_localnet_is_an_inet_devconf_attribute) {
  nl::Request req;
  rtnl::enable_route_localnet(req, 7, "knitabc");
  auto* nlh = req.message(0);
  BOOST_TEST(nlh->nlmsg_type == RTM_NEWLINK);
  BOOST_TEST(static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh))->ifi_index == 7);
  auto top = attrs(nlh, sizeof(ifinfomsg));
  auto spec = nested(top.at(IFLA_AF_SPEC));
  auto inet = nested(spec.at(AF_INET));
  auto conf = nested(inet.at(IFLA_INET_CONF));
  BOOST_TEST(mnl_attr_get_u32(conf.at(IPV4_DEVCONF_ROUTE_LOCALNET)) == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
