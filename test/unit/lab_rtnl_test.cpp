// The lab's rtnetlink requests, parsed back with libmnl: no kernel, no privileges.
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sys/socket.h>

#include <boost/test/unit_test.hpp>
#include <string>

#include "lab/rtnl.hpp"
#include "test/unit/nl_attrs.hpp"

using namespace knit;
namespace rtnl = knit::lab::rtnl;
using namespace knit::test;

BOOST_AUTO_TEST_SUITE(lab_rtnl)

BOOST_AUTO_TEST_CASE(uplink_veth_keeps_both_ends_here_at_chosen_indexes) {
  nl::Request req;
  rtnl::new_veth_pair(req, "up0", 2, "up0peer", 3);
  auto* nlh = req.message(0);
  BOOST_TEST(nlh->nlmsg_type == RTM_NEWLINK);
  BOOST_TEST((nlh->nlmsg_flags & (NLM_F_CREATE | NLM_F_EXCL)) == (NLM_F_CREATE | NLM_F_EXCL));
  auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
  BOOST_TEST(ifi->ifi_index == 2);
  auto top = attrs(nlh, sizeof(ifinfomsg));
  BOOST_TEST(s(top.at(IFLA_IFNAME)) == "up0");
  auto info = nested(top.at(IFLA_LINKINFO));
  BOOST_TEST(s(info.at(IFLA_INFO_KIND)) == "veth");
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

BOOST_AUTO_TEST_CASE(addresses_skip_dad_and_default_routes_are_on_link) {
  nl::Request req;
  rtnl::new_addr(req, 2, "up0", *Prefix::parse("10.99.0.1/24"));
  rtnl::new_addr(req, 2, "up0", *Prefix::parse("fd99::1/64"));
  rtnl::new_default_route(req, Family::kV6, 2, "up0");
  BOOST_REQUIRE(req.count() == 3u);
  auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(req.message(0)));
  BOOST_TEST(ifa->ifa_family == AF_INET);
  BOOST_TEST(ifa->ifa_prefixlen == 24);
  auto a4 = attrs(req.message(0), sizeof(ifaddrmsg));
  BOOST_TEST(mnl_attr_get_u32(a4.at(IFA_FLAGS)) == (IFA_F_PERMANENT | IFA_F_NODAD));
  BOOST_TEST(a4.count(IFA_LOCAL) == 1u);
  auto a6 = attrs(req.message(1), sizeof(ifaddrmsg));
  BOOST_TEST(a6.count(IFA_LOCAL) == 0u);
  auto* rtm = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(req.message(2)));
  BOOST_TEST(rtm->rtm_family == AF_INET6);
  BOOST_TEST(rtm->rtm_dst_len == 0);
  auto r = attrs(req.message(2), sizeof(rtmsg));
  BOOST_TEST(mnl_attr_get_u32(r.at(RTA_OIF)) == 2u);
  BOOST_TEST(r.count(RTA_GATEWAY) == 0u);
  BOOST_TEST(req.what(2) == "add default route (IPv6) dev up0");
}

BOOST_AUTO_TEST_SUITE_END()
