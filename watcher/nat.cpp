#include "watcher/nat.hpp"

#include "watcher/intervals.hpp"

namespace knit::watcher {

namespace {

std::string set_name(std::string_view base, Family f) {
  return std::string(base) + (f == Family::kV4 ? "4" : "6");
}

bool has_family(const std::vector<Prefix>& v, Family f) {
  for (const auto& p : v)
    if (p.family() == f) return true;
  return false;
}

nft::Set interval_set(std::string name, Family f, const std::vector<Prefix>& cidrs) {
  nft::Set s;
  s.name = std::move(name);
  s.key = {f == Family::kV4 ? nft::Type::kIpv4Addr : nft::Type::kIpv6Addr};
  s.interval = true;
  std::vector<AddrRange> ranges;
  for (const auto& p : cidrs)
    if (p.family() == f) ranges.push_back(AddrRange::of(p));
  for (const auto& r : normalize(std::move(ranges))) {
    s.elements.push_back(
        nft::element({nft::Field(nft::Value::addr(r.lo), nft::Value::addr(r.hi))}));
  }
  return s;
}

}  // namespace

MasqueradeCidrs masquerade_cidrs(const std::vector<Node>& nodes, std::string_view self,
                                 const std::vector<Prefix>& extra) {
  MasqueradeCidrs c;
  for (const auto& n : nodes) {
    if (n.name == self) c.pod_cidrs.insert(c.pod_cidrs.end(), n.pod_cidrs.begin(), n.pod_cidrs.end());
    c.cluster_cidrs.insert(c.cluster_cidrs.end(), n.pod_cidrs.begin(), n.pod_cidrs.end());
  }
  c.cluster_cidrs.insert(c.cluster_cidrs.end(), extra.begin(), extra.end());
  return c;
}

std::vector<nft::Set> masquerade_sets(const MasqueradeCidrs& c) {
  std::vector<nft::Set> out;
  for (Family f : {Family::kV4, Family::kV6}) {
    out.push_back(interval_set(set_name("pod_cidrs", f), f, c.pod_cidrs));
    out.push_back(interval_set(set_name("cluster_cidrs", f), f, c.cluster_cidrs));
  }
  return out;
}

nft::Chain masquerade_chain(const MasqueradeCidrs& c) {
  nft::Chain chain{std::string(kMasqueradeChain),
                   nft::BaseChain{nft::ChainType::kNat, nft::Hook::kPostrouting,
                                  nft::prio::kSrcnat, nft::Policy::kAccept},
                   {}};
  for (Family f : {Family::kV4, Family::kV6}) {
    if (!has_family(c.pod_cidrs, f)) continue;
    bool v4 = f == Family::kV4;
    chain.rules.push_back(
        {{nft::Lookup{{v4 ? nft::Sel::kIpSaddr : nft::Sel::kIp6Saddr}, set_name("pod_cidrs", f),
                      false},
          nft::Lookup{{v4 ? nft::Sel::kIpDaddr : nft::Sel::kIp6Daddr},
                      set_name("cluster_cidrs", f), true},
          nft::Masquerade{}},
         {}});
  }
  return chain;
}

}  // namespace knit::watcher
