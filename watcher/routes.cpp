#include "watcher/routes.hpp"

#include <linux/rtnetlink.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "core/error.hpp"
#include "core/str.hpp"

namespace knit::watcher {

namespace {

bool overlap(const Prefix& a, const Prefix& b) {
  return a.family() == b.family() && (a.contains(b) || b.contains(a));
}

bool ours(const rtnl::RouteInfo& r) {
  return r.protocol == kRouteProtocol && r.type == RTN_UNICAST;
}

rtnl::RouteSpec spec_of(const NodeRoute& r) {
  return {r.dst, r.via, 0, {}, false, kRouteProtocol};
}

}  // namespace

std::string to_string(const NodeRoute& r) {
  return str(r.dst.to_string(), " via ", r.via.to_string());
}

std::vector<NodeRoute> plan_routes(const std::vector<Node>& nodes, std::string_view self) {
  std::vector<const Node*> sorted;
  std::vector<Prefix> own;
  for (const auto& n : nodes) {
    if (n.name == self) {
      own.insert(own.end(), n.pod_cidrs.begin(), n.pod_cidrs.end());
    } else {
      sorted.push_back(&n);
    }
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const Node* a, const Node* b) { return a->name < b->name; });
  std::map<Prefix, IpAddr> out;
  for (const Node* n : sorted) {
    for (const auto& cidr : n->pod_cidrs) {
      auto ip = std::find_if(n->internal_ips.begin(), n->internal_ips.end(),
                             [&](const IpAddr& a) { return a.family() == cidr.family(); });
      if (ip == n->internal_ips.end()) continue;
      const Prefix dst = cidr.network();
      if (std::any_of(own.begin(), own.end(), [&](const Prefix& p) { return overlap(p, dst); })) {
        continue;
      }
      out.emplace(dst, *ip);  // a CIDR claimed twice keeps its first claimant
    }
  }
  std::vector<NodeRoute> routes;
  routes.reserve(out.size());
  for (const auto& [dst, via] : out) routes.push_back({dst, via});
  return routes;
}

RouteChanges diff_routes(const std::vector<rtnl::RouteInfo>& current,
                         const std::vector<NodeRoute>& desired) {
  // Indexed: a large cluster has thousands of routes on both sides, on every Node event.
  std::map<Prefix, const rtnl::RouteInfo*> mine;  // the first of ours per destination
  std::set<Prefix> taken;                         // every destination routed at all
  for (const auto& r : current) {
    taken.insert(r.dst);
    if (ours(r)) mine.emplace(r.dst, &r);
  }
  std::set<Prefix> wanted;
  RouteChanges c;
  for (const auto& d : desired) {
    wanted.insert(d.dst);
    if (auto m = mine.find(d.dst); m != mine.end()) {
      if (m->second->gw != d.via) c.change.push_back(d);
      continue;
    }
    (taken.count(d.dst) ? c.blocked : c.add).push_back(d);
  }
  for (const auto& r : current) {
    if (!ours(r) || wanted.count(r.dst)) continue;
    c.remove.push_back({r.dst, r.gw.value_or(IpAddr::from_u128(r.dst.family(), 0))});
  }
  return c;
}

RouteChanges sync_routes(nl::Socket& rt, const std::vector<NodeRoute>& desired) {
  RouteChanges c = diff_routes(rtnl::list_routes(rt), desired);
  if (c.empty()) return c;
  nl::Request req;
  for (const auto& r : c.remove) {
    rtnl::RouteSpec s = spec_of(r);
    s.gw.reset();  // whatever its gateway: the owner and the destination identify it
    rtnl::del_route(req, s);
  }
  for (const auto& r : c.change) rtnl::replace_route(req, spec_of(r));
  for (const auto& r : c.add) rtnl::new_route(req, spec_of(r));
  rt.transact(req);  // in pages; every message is sent, the first refusal is thrown
  return c;
}

}  // namespace knit::watcher
