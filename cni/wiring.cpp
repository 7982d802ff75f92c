#include "cni/wiring.hpp"

#include <cstdint>

#include "core/str.hpp"

namespace knit::cni {

namespace {

uint64_t fnv1a(std::string_view a, std::string_view b, uint64_t salt) {
  uint64_t h = 1469598103934665603ULL ^ salt;
  auto mix = [&](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ULL;
    }
  };
  mix(a);
  mix(std::string_view("\0", 1));
  mix(b);
  return h;
}

Mac mac_from(uint64_t h, uint8_t first) {
  Mac m;
  m.bytes[0] = first;  // locally administered, unicast
  for (int i = 1; i < 6; ++i) m.bytes[i] = static_cast<uint8_t>(h >> (8 * (i - 1)));
  return m;
}

}  // namespace

std::string host_ifname_for(std::string_view container_id, std::string_view ifname) {
  uint64_t h = fnv1a(container_id, ifname, 0);
  return "knit" + hex(&h, 8).substr(0, 11);
}

std::string link_alias(std::string_view network, std::string_view container_id,
                       std::string_view ifname) {
  return str("knit:", network, ':', container_id, ':', ifname);
}

std::optional<AliasParts> parse_link_alias(std::string_view alias) {
  auto parts = split(alias, ':');
  if (parts.size() != 4 || parts[0] != "knit") return std::nullopt;
  return AliasParts{std::string(parts[1]), std::string(parts[2]), std::string(parts[3])};
}

Wiring plan_wiring(std::string_view container_id, std::string_view ifname,
                   const std::vector<IpAddr>& ips, uint32_t mtu, std::optional<Mac> pod_mac,
                   const std::vector<conf::RouteConf>& extra_routes) {
  Wiring w;
  w.host_ifname = host_ifname_for(container_id, ifname);
  w.host_mac = mac_from(fnv1a(container_id, ifname, 0x686f7374), 0x0e);
  w.pod_ifname = std::string(ifname);
  w.pod_mac = pod_mac ? *pod_mac : mac_from(fnv1a(container_id, ifname, 0x706f64), 0x0a);
  w.mtu = mtu;
  w.pod_ips = ips;
  for (const auto& ip : ips) {
    if (ip.is_v4() && !w.gw4) {
      w.gw4 = *IpAddr::parse(kGatewayV4);
      w.routes.push_back({Prefix(IpAddr::v4(0), 0), *w.gw4});
    } else if (!ip.is_v4() && !w.gw6) {
      w.gw6 = eui64_link_local(w.host_mac);
      w.routes.push_back({Prefix(IpAddr::from_u128(Family::kV6, 0), 0), *w.gw6});
    }
  }
  for (const auto& r : extra_routes) {
    const auto& gw = r.dst.family() == Family::kV4 ? w.gw4 : w.gw6;
    if (!gw) continue;  // no address of that family: nothing can route it
    PodRoute pr{r.dst.network(), *gw};
    bool dup = false;
    for (const auto& existing : w.routes) dup = dup || existing.dst == pr.dst;
    if (!dup) w.routes.push_back(pr);
  }
  return w;
}

conf::Result make_result(const Wiring& w, std::string_view netns,
                         const std::optional<conf::Result>& prev) {
  conf::Result r = prev ? *prev : conf::Result{};
  int base = static_cast<int>(r.interfaces.size());
  r.interfaces.push_back({w.host_ifname, w.host_mac.to_string(), w.mtu, "", "", ""});
  r.interfaces.push_back({w.pod_ifname, w.pod_mac.to_string(), w.mtu, std::string(netns), "", ""});
  for (const auto& ip : w.pod_ips) {
    conf::ResultIp rip;
    rip.address = Prefix::host(ip);
    rip.gateway = ip.is_v4() ? w.gw4 : w.gw6;
    rip.interface = base + 1;
    r.ips.push_back(rip);
  }
  for (const auto& pr : w.routes) {
    conf::ResultRoute rr;
    rr.dst = pr.dst;
    rr.gw = pr.gw;
    r.routes.push_back(rr);
  }
  return r;
}

}  // namespace knit::cni
