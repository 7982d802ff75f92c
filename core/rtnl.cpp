#include "core/rtnl.hpp"

#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sys/socket.h>

#include <cstring>

#include "core/str.hpp"

namespace knit::rtnl {

namespace {

uint8_t af(Family f) { return f == Family::kV4 ? AF_INET : AF_INET6; }

void put_addr(nlmsghdr* nlh, uint16_t type, const IpAddr& a) {
  mnl_attr_put(nlh, type, a.size(), a.data());
}

std::string route_text(const RouteSpec& r) {
  std::string s = r.dst.to_string();
  if (r.gw) s += str(" via ", r.gw->to_string());
  if (!r.oif_name.empty()) s += str(" dev ", r.oif_name);
  return s;
}

}  // namespace

// RTM_NEWLINK
//   ifinfomsg (host_index)
//   IFLA_IFNAME host_name, [IFLA_ADDRESS host_mac], [IFLA_MTU mtu]
//   IFLA_LINKINFO
//     IFLA_INFO_KIND "veth"
//     IFLA_INFO_DATA
//       VETH_INFO_PEER
//         ifinfomsg (raw, not an attribute; peer_index)
//         IFLA_IFNAME peer_name, [IFLA_ADDRESS peer_mac], [IFLA_MTU mtu], [IFLA_NET_NS_FD fd]
void new_veth(nl::Request& req, const VethSpec& s) {
  auto* nlh = req.begin(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
                        str("create veth ", s.host_name, " with peer ", s.peer_name));
  auto* ifi = req.extra<ifinfomsg>();
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = s.host_index;
  auto put_end = [&](const std::string& name, const std::optional<Mac>& mac) {
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
    if (mac) mnl_attr_put(nlh, IFLA_ADDRESS, 6, mac->bytes.data());
    if (s.mtu > 0) mnl_attr_put_u32(nlh, IFLA_MTU, s.mtu);
  };
  put_end(s.host_name, s.host_mac);
  auto* linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
  auto* data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
  auto* peer = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
  auto* peer_ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  peer_ifi->ifi_family = AF_UNSPEC;
  peer_ifi->ifi_index = s.peer_index;
  put_end(s.peer_name, s.peer_mac);
  if (s.peer_netns_fd >= 0) {
    mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, static_cast<uint32_t>(s.peer_netns_fd));
  }
  mnl_attr_nest_end(nlh, peer);
  mnl_attr_nest_end(nlh, data);
  mnl_attr_nest_end(nlh, linkinfo);
}

void get_link(nl::Request& req, std::string_view name, bool tolerate_missing) {
  std::string n(name);
  auto* nlh = req.begin(RTM_GETLINK, 0, str("get link ", n),
                        tolerate_missing ? std::initializer_list<int>{ENODEV}
                                         : std::initializer_list<int>{});
  req.extra<ifinfomsg>()->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, n.c_str());
}

void set_link_up(nl::Request& req, int ifindex, std::string_view name, std::string_view alias) {
  auto* nlh = req.begin(RTM_NEWLINK, 0, str("set link ", name, " up"));
  auto* ifi = req.extra<ifinfomsg>();
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = ifindex;
  ifi->ifi_flags = IFF_UP;
  ifi->ifi_change = IFF_UP;
  if (!alias.empty()) mnl_attr_put(nlh, IFLA_IFALIAS, alias.size(), alias.data());
}

// RTM_NEWLINK
//   ifinfomsg (index)
//   IFLA_AF_SPEC
//     AF_INET
//       IFLA_INET_CONF
//         IPV4_DEVCONF_ROUTE_LOCALNET u32 1     (attribute type = devconf index)
void enable_route_localnet(nl::Request& req, int ifindex, std::string_view name) {
  auto* nlh = req.begin(RTM_NEWLINK, 0, str("set route_localnet on ", name));
  auto* ifi = req.extra<ifinfomsg>();
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = ifindex;
  auto* spec = mnl_attr_nest_start(nlh, IFLA_AF_SPEC);
  auto* inet = mnl_attr_nest_start(nlh, AF_INET);
  auto* conf = mnl_attr_nest_start(nlh, IFLA_INET_CONF);
  mnl_attr_put_u32(nlh, IPV4_DEVCONF_ROUTE_LOCALNET, 1);
  mnl_attr_nest_end(nlh, conf);
  mnl_attr_nest_end(nlh, inet);
  mnl_attr_nest_end(nlh, spec);
}

void del_link(nl::Request& req, std::string_view name) {
  std::string n(name);
  auto* nlh = req.begin(RTM_DELLINK, 0, str("delete link ", n), {ENODEV});
  req.extra<ifinfomsg>()->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, n.c_str());
}

void del_link_index(nl::Request& req, int ifindex, std::string_view name) {
  req.begin(RTM_DELLINK, 0, str("delete link ", name), {ENODEV});
  auto* ifi = req.extra<ifinfomsg>();
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = ifindex;
}

void get_link_index(nl::Request& req, int ifindex) {
  req.begin(RTM_GETLINK, 0, str("get link ", ifindex), {ENODEV});
  auto* ifi = req.extra<ifinfomsg>();
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = ifindex;
}

void get_route(nl::Request& req, const IpAddr& dst) {
  auto* nlh = req.begin(RTM_GETROUTE, 0, str("get route to ", dst.to_string()),
                        {ENETUNREACH, EHOSTUNREACH, ESRCH});
  auto* rtm = req.extra<rtmsg>();
  rtm->rtm_family = af(dst.family());
  rtm->rtm_dst_len = static_cast<uint8_t>(dst.bits());
  put_addr(nlh, RTA_DST, dst);
}

void new_addr(nl::Request& req, int ifindex, std::string_view ifname, const Prefix& addr,
              bool nodad) {
  auto* nlh = req.begin(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL,
                        str("add address ", addr.to_string(), " to ", ifname));
  auto* ifa = req.extra<ifaddrmsg>();
  ifa->ifa_family = af(addr.family());
  ifa->ifa_prefixlen = addr.len();
  ifa->ifa_index = static_cast<uint32_t>(ifindex);
  ifa->ifa_scope = addr.addr().is_link_local() ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
  uint32_t flags = IFA_F_PERMANENT | (nodad ? IFA_F_NODAD : 0);
  ifa->ifa_flags = static_cast<uint8_t>(flags);
  if (addr.family() == Family::kV4) put_addr(nlh, IFA_LOCAL, addr.addr());
  put_addr(nlh, IFA_ADDRESS, addr.addr());
  mnl_attr_put_u32(nlh, IFA_FLAGS, flags);
}

namespace {
void route_body(nl::Request& req, nlmsghdr* nlh, const RouteSpec& r) {
  auto* rtm = req.extra<rtmsg>();
  rtm->rtm_family = af(r.dst.family());
  rtm->rtm_dst_len = r.dst.len();
  rtm->rtm_table = RT_TABLE_MAIN;
  rtm->rtm_protocol = r.protocol != 0 ? r.protocol : RTPROT_STATIC;
  rtm->rtm_type = RTN_UNICAST;
  rtm->rtm_scope = (r.scope_link && !r.gw) ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
  if (r.dst.len() > 0) put_addr(nlh, RTA_DST, r.dst.addr());
  if (r.gw) put_addr(nlh, RTA_GATEWAY, *r.gw);
  if (r.oif > 0) mnl_attr_put_u32(nlh, RTA_OIF, static_cast<uint32_t>(r.oif));
}
}  // namespace

void new_route(nl::Request& req, const RouteSpec& r) {
  auto* nlh = req.begin(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, str("add route ", route_text(r)));
  route_body(req, nlh, r);
}

void replace_route(nl::Request& req, const RouteSpec& r) {
  auto* nlh =
      req.begin(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, str("replace route ", route_text(r)));
  route_body(req, nlh, r);
}

void del_route(nl::Request& req, const RouteSpec& r) {
  auto* nlh = req.begin(RTM_DELROUTE, 0, str("delete route ", route_text(r)), {ESRCH, ENODEV});
  route_body(req, nlh, r);
  // Match any scope, and any owner unless one is named.
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_get_payload(nlh));
  rtm->rtm_scope = RT_SCOPE_NOWHERE;
  rtm->rtm_protocol = r.protocol;
}

void new_neigh(nl::Request& req, int ifindex, std::string_view ifname, const IpAddr& ip,
               const Mac& mac) {
  auto* nlh = req.begin(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE,
                        str("add neighbour ", ip.to_string(), " lladdr ", mac.to_string(), " dev ",
                            ifname));
  auto* nd = req.extra<ndmsg>();
  nd->ndm_family = af(ip.family());
  nd->ndm_ifindex = ifindex;
  nd->ndm_state = NUD_PERMANENT;
  put_addr(nlh, NDA_DST, ip);
  mnl_attr_put(nlh, NDA_LLADDR, 6, mac.bytes.data());
}

// ---- Parsing ---------------------------------------------------------------------------------

namespace {

template <size_t N>
struct Attrs {
  const nlattr* tb[N + 1] = {};
  const nlattr* operator[](int i) const { return i >= 0 && i <= int(N) ? tb[i] : nullptr; }
};

template <size_t N>
int collect(const nlattr* attr, void* data) {
  auto* a = static_cast<Attrs<N>*>(data);
  int type = mnl_attr_get_type(attr);
  if (type >= 0 && type <= int(N)) a->tb[type] = attr;
  return MNL_CB_OK;
}

template <size_t N>
Attrs<N> parse_attrs(const nlmsghdr* nlh, size_t hdr) {
  Attrs<N> a;
  mnl_attr_parse(nlh, static_cast<unsigned>(hdr), collect<N>, &a);
  return a;
}

template <size_t N>
Attrs<N> parse_nested(const nlattr* nest) {
  Attrs<N> a;
  mnl_attr_parse_nested(nest, collect<N>, &a);
  return a;
}

std::optional<IpAddr> get_ip(const nlattr* a, uint8_t family) {
  if (a == nullptr) return std::nullopt;
  size_t want = family == AF_INET ? 4 : 16;
  if (mnl_attr_get_payload_len(a) != want) return std::nullopt;
  return IpAddr::from_bytes(family == AF_INET ? Family::kV4 : Family::kV6,
                            mnl_attr_get_payload(a));
}

std::optional<Mac> get_mac(const nlattr* a) {
  if (a == nullptr || mnl_attr_get_payload_len(a) != 6) return std::nullopt;
  Mac m;
  std::memcpy(m.bytes.data(), mnl_attr_get_payload(a), 6);
  return m;
}

std::string get_str(const nlattr* a) {
  if (a == nullptr) return {};
  auto* p = static_cast<const char*>(mnl_attr_get_payload(a));
  return std::string(p, strnlen(p, mnl_attr_get_payload_len(a)));
}

}  // namespace

std::optional<LinkInfo> parse_link(const nlmsghdr* nlh) {
  if (nlh->nlmsg_type != RTM_NEWLINK) return std::nullopt;
  auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
  auto tb = parse_attrs<IFLA_MAX>(nlh, sizeof(ifinfomsg));
  LinkInfo l;
  l.index = ifi->ifi_index;
  l.up = (ifi->ifi_flags & IFF_UP) != 0;
  l.name = get_str(tb[IFLA_IFNAME]);
  l.mac = get_mac(tb[IFLA_ADDRESS]);
  if (tb[IFLA_MTU]) l.mtu = mnl_attr_get_u32(tb[IFLA_MTU]);
  l.alias = get_str(tb[IFLA_IFALIAS]);
  if (tb[IFLA_LINK]) l.link = static_cast<int>(mnl_attr_get_u32(tb[IFLA_LINK]));
  if (tb[IFLA_LINKINFO]) {
    auto info = parse_nested<IFLA_INFO_MAX>(tb[IFLA_LINKINFO]);
    l.kind = get_str(info[IFLA_INFO_KIND]);
  }
  return l;
}

std::optional<AddrInfo> parse_addr(const nlmsghdr* nlh) {
  if (nlh->nlmsg_type != RTM_NEWADDR) return std::nullopt;
  auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(nlh));
  auto tb = parse_attrs<IFA_MAX>(nlh, sizeof(ifaddrmsg));
  auto ip = get_ip(tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS], ifa->ifa_family);
  if (!ip) return std::nullopt;
  AddrInfo a;
  a.index = static_cast<int>(ifa->ifa_index);
  a.prefix = Prefix(*ip, ifa->ifa_prefixlen);
  a.flags = tb[IFA_FLAGS] ? mnl_attr_get_u32(tb[IFA_FLAGS]) : ifa->ifa_flags;
  return a;
}

std::optional<RouteInfo> parse_route(const nlmsghdr* nlh) {
  if (nlh->nlmsg_type != RTM_NEWROUTE) return std::nullopt;
  auto* rtm = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(nlh));
  if (rtm->rtm_family != AF_INET && rtm->rtm_family != AF_INET6) return std::nullopt;
  auto tb = parse_attrs<RTA_MAX>(nlh, sizeof(rtmsg));
  RouteInfo r;
  Family fam = rtm->rtm_family == AF_INET ? Family::kV4 : Family::kV6;
  auto dst = get_ip(tb[RTA_DST], rtm->rtm_family);
  r.dst = Prefix(dst ? *dst : IpAddr::from_u128(fam, 0), rtm->rtm_dst_len);
  r.gw = get_ip(tb[RTA_GATEWAY], rtm->rtm_family);
  if (tb[RTA_OIF]) r.oif = static_cast<int>(mnl_attr_get_u32(tb[RTA_OIF]));
  r.scope = rtm->rtm_scope;
  r.table = tb[RTA_TABLE] ? static_cast<uint8_t>(mnl_attr_get_u32(tb[RTA_TABLE])) : rtm->rtm_table;
  r.type = rtm->rtm_type;
  r.protocol = rtm->rtm_protocol;
  return r;
}

std::optional<NeighInfo> parse_neigh(const nlmsghdr* nlh) {
  if (nlh->nlmsg_type != RTM_NEWNEIGH) return std::nullopt;
  auto* nd = static_cast<const ndmsg*>(mnl_nlmsg_get_payload(nlh));
  auto tb = parse_attrs<NDA_MAX>(nlh, sizeof(ndmsg));
  auto ip = get_ip(tb[NDA_DST], nd->ndm_family);
  if (!ip) return std::nullopt;
  NeighInfo n;
  n.index = nd->ndm_ifindex;
  n.ip = *ip;
  n.mac = get_mac(tb[NDA_LLADDR]);
  n.state = nd->ndm_state;
  return n;
}

// ---- Dumps -----------------------------------------------------------------------------------

std::optional<LinkInfo> find_link(nl::Socket& sock, std::string_view name) {
  nl::Request req;
  get_link(req, name, true);
  std::optional<LinkInfo> out;
  sock.transact(req, [&](const nlmsghdr* m, size_t) { out = parse_link(m); });
  return out;
}

namespace {
template <class Info, class Hdr, class Parse>
std::vector<Info> dump_all(nl::Socket& sock, uint16_t type, uint8_t family, const char* what,
                           Parse parse) {
  nl::Request req;
  req.begin(type, NLM_F_DUMP, what);
  req.extra<Hdr>();
  // Every rtnetlink dump header starts with a one-byte family field.
  *reinterpret_cast<uint8_t*>(mnl_nlmsg_get_payload(req.message(0))) = family;
  std::vector<Info> out;
  sock.dump(
      req,
      [&](const nlmsghdr* m, size_t) {
        if (auto v = parse(m)) out.push_back(std::move(*v));
      },
      [&] { out.clear(); });
  return out;
}
}  // namespace

std::vector<LinkInfo> list_links(nl::Socket& sock) {
  return dump_all<LinkInfo, ifinfomsg>(sock, RTM_GETLINK, AF_UNSPEC, "dump links", parse_link);
}

std::vector<AddrInfo> list_addrs(nl::Socket& sock) {
  return dump_all<AddrInfo, ifaddrmsg>(sock, RTM_GETADDR, AF_UNSPEC, "dump addresses",
                                       parse_addr);
}

std::vector<RouteInfo> list_routes(nl::Socket& sock) {
  auto all = dump_all<RouteInfo, rtmsg>(sock, RTM_GETROUTE, AF_UNSPEC, "dump routes", parse_route);
  std::erase_if(all, [](const RouteInfo& r) { return r.table != RT_TABLE_MAIN; });
  return all;
}

std::vector<NeighInfo> list_neighs(nl::Socket& sock) {
  return dump_all<NeighInfo, ndmsg>(sock, RTM_GETNEIGH, AF_UNSPEC, "dump neighbours", parse_neigh);
}

}  // namespace knit::rtnl
