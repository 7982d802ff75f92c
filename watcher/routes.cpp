#include "watcher/routes.hpp"

#include <linux/rtnetlink.h>

#include <algorithm>
#include <map>

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
  RouteChanges c;
  for (const auto& d : desired) {
    auto mine = std::find_if(current.begin(), current.end(), [&](const rtnl::RouteInfo& r) {
      return ours(r) && r.dst == d.dst;
    });
    if (mine != current.end()) {
      if (mine->gw != d.via) c.change.push_back(d);
      continue;
    }
    bool taken = std::any_of(current.begin(), current.end(),
                             [&](const rtnl::RouteInfo& r) { return r.dst == d.dst; });
    (taken ? c.blocked : c.add).push_back(d);
  }
  for (const auto& r : current) {
    if (!ours(r)) continue;
    bool wanted = std::any_of(desired.begin(), desired.end(),
                              [&](const NodeRoute& d) { return d.dst == r.dst; });
    if (!wanted) c.remove.push_back({r.dst, r.gw.value_or(IpAddr::from_u128(r.dst.family(), 0))});
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
  rt.transact(req);
  return c;
}

}  // namespace knit::watcher
