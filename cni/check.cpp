// CNI CHECK: compare what the kernel holds with what ADD set up.
#include <linux/if_addr.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>

#include <algorithm>

#include "core/rtnl.hpp"
#include "cni/hostport.hpp"
#include "cni/verbs.hpp"
#include "cni/wiring.hpp"
#include "core/error.hpp"
#include "core/netns.hpp"
#include "core/str.hpp"
#include "ipam/store.hpp"

namespace knit::cni {

namespace {

[[noreturn]] void differs(std::string msg) { fail(Code::kCheckFailed, str("check: ", msg)); }

bool has_route(const std::vector<rtnl::RouteInfo>& routes, const Prefix& dst,
               const std::optional<IpAddr>& gw, int oif) {
  return std::any_of(routes.begin(), routes.end(), [&](const rtnl::RouteInfo& r) {
    return r.dst == dst && r.gw == gw && r.oif == oif;
  });
}

bool has_neigh(const std::vector<rtnl::NeighInfo>& neighs, int index, const IpAddr& ip,
               const Mac& mac) {
  return std::any_of(neighs.begin(), neighs.end(), [&](const rtnl::NeighInfo& n) {
    return n.index == index && n.ip == ip && n.mac == mac && (n.state & NUD_PERMANENT);
  });
}

}  // namespace

void cmd_check(const conf::Request& req) {
  const auto& c = req.conf;
  const auto& env = req.env;
  ipam::Attachment att;
  {
    ipam::Store store(store_root(c), c.name);
    auto txn = store.begin();
    const auto* found = txn.state().find(env.container_id, env.ifname);
    if (!found) differs(str("no attachment recorded for ", env.container_id, "/", env.ifname));
    att = *found;
  }
  if (c.prev_result) {
    for (const auto& ip : att.ips) {
      bool listed = std::any_of(c.prev_result->ips.begin(), c.prev_result->ips.end(),
                                [&](const conf::ResultIp& r) { return r.address.addr() == ip; });
      if (!listed) differs(str("address ", ip.to_string(), " is missing from prevResult"));
    }
  }
  std::optional<Mac> pod_mac;
  if (c.prev_result) {
    for (const auto& i : c.prev_result->interfaces) {
      if (i.name == env.ifname && i.sandbox == env.netns) pod_mac = Mac::parse(i.mac);
    }
  }
  Wiring w = plan_wiring(env.container_id, env.ifname, att.ips, 0, pod_mac, c.ipam.routes);

  // Pod side.
  Netns pod = Netns::open(env.netns);
  nl::Socket pod_sock = nl::Socket::open_in(pod, NETLINK_ROUTE);
  auto link = rtnl::find_link(pod_sock, env.ifname);
  if (!link) differs(str("interface ", env.ifname, " is missing in ", env.netns));
  if (!link->up) differs(str("interface ", env.ifname, " in ", env.netns, " is down"));
  if (link->mac != w.pod_mac) {
    differs(str("interface ", env.ifname, " has MAC ", link->mac ? link->mac->to_string() : "none",
                ", expected ", w.pod_mac.to_string()));
  }
  auto addrs = rtnl::list_addrs(pod_sock);
  for (const auto& ip : w.pod_ips) {
    bool ok = std::any_of(addrs.begin(), addrs.end(), [&](const rtnl::AddrInfo& a) {
      return a.index == link->index && a.prefix == Prefix::host(ip);
    });
    if (!ok) differs(str("address ", Prefix::host(ip).to_string(), " is missing on ", env.ifname));
  }
  auto routes = rtnl::list_routes(pod_sock);
  if (w.gw4 && !has_route(routes, Prefix::host(*w.gw4), std::nullopt, link->index)) {
    differs(str("route ", w.gw4->to_string(), " dev ", env.ifname, " is missing"));
  }
  for (const auto& r : w.routes) {
    if (!has_route(routes, r.dst, r.gw, link->index)) {
      differs(str("route ", r.dst.to_string(), " via ", r.gw.to_string(), " dev ", env.ifname,
                  " is missing"));
    }
  }
  auto neighs = rtnl::list_neighs(pod_sock);
  for (const auto& gw : {w.gw4, w.gw6}) {
    if (gw && !has_neigh(neighs, link->index, *gw, w.host_mac)) {
      differs(str("neighbour ", gw->to_string(), " on ", env.ifname, " is missing or altered"));
    }
  }

  // Node side.
  nl::Socket host = nl::Socket::open(NETLINK_ROUTE);
  auto hl = rtnl::find_link(host, att.host_ifname);
  if (!hl || hl->alias != link_alias(c.name, env.container_id, env.ifname)) {
    differs(str("host interface ", att.host_ifname, " is missing"));
  }
  if (!hl->up) differs(str("host interface ", att.host_ifname, " is down"));
  auto host_routes = rtnl::list_routes(host);
  for (const auto& ip : w.pod_ips) {
    if (!has_route(host_routes, Prefix::host(ip), std::nullopt, hl->index)) {
      differs(str("host route ", Prefix::host(ip).to_string(), " dev ", att.host_ifname,
                  " is missing"));
    }
  }
  if (auto entries = hostport::entries_for(att, c.name); !entries.empty()) {
    nl::Socket nft = nl::Socket::open(NETLINK_NETFILTER);
    if (auto missing = hostport::check(nft, entries)) differs(*missing);
  }
}

}  // namespace knit::cni
