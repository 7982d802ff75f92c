#include "watcher/evaluate.hpp"

#include <algorithm>
#include <cstring>

namespace knit::watcher {

namespace {

bool in_range(const IpAddr& a, const AddrRange& r) {
  return a.family() == r.lo.family() && r.lo.to_u128() <= a.to_u128() &&
         a.to_u128() <= r.hi.to_u128();
}

bool is_addr(nft::Sel s) {
  return s == nft::Sel::kIpSaddr || s == nft::Sel::kIpDaddr || s == nft::Sel::kIp6Saddr ||
         s == nft::Sel::kIp6Daddr;
}

std::optional<IpAddr> addr_of(nft::Sel s, const Flow& f) {
  switch (s) {
    case nft::Sel::kIpSaddr:
      return f.src.is_v4() ? std::optional(f.src) : std::nullopt;
    case nft::Sel::kIpDaddr:
      return f.dst.is_v4() ? std::optional(f.dst) : std::nullopt;
    case nft::Sel::kIp6Saddr:
      return !f.src.is_v4() ? std::optional(f.src) : std::nullopt;
    case nft::Sel::kIp6Daddr:
      return !f.dst.is_v4() ? std::optional(f.dst) : std::nullopt;
    default:
      return std::nullopt;
  }
}

}  // namespace

Evaluator::Evaluator(const Reconciler& rec, std::set<IpAddr> node_addrs)
    : rec_(rec), node_addrs_(std::move(node_addrs)) {}

std::optional<std::string> Evaluator::dispatch(const char* map, const IpAddr& a) const {
  const nft::Set* m = rec_.dispatch_map(map);
  if (m == nullptr) return std::nullopt;
  auto v = nft::Value::addr(a);
  for (const auto& e : m->elements) {
    if (e.key.size() == v.size() && std::memcmp(e.key.data(), v.data(), v.size()) == 0) {
      return e.verdict.chain;
    }
  }
  return std::nullopt;
}

bool Evaluator::lookup(const nft::Lookup& l, const Flow& f) const {
  const PolicySet* s = rec_.policy_set(l.set);
  if (s == nullptr || l.key.empty()) return l.negate;
  if (s->kind == PolicySet::Kind::kPorts) {
    bool found = false;
    for (const auto& p : s->ports) {
      found = found || (p.proto == f.proto && p.ports.lo <= f.dport && f.dport <= p.ports.hi);
    }
    return found != l.negate;
  }
  if (!is_addr(l.key[0])) return l.negate;
  auto addr = addr_of(l.key[0], f);
  if (!addr) return l.negate;  // the other family's rule
  bool found = false;
  if (s->kind == PolicySet::Kind::kAddrs && !s->interval) {
    found = std::binary_search(s->hosts.begin(), s->hosts.end(), *addr);
  } else if (s->kind == PolicySet::Kind::kAddrs) {
    auto it = std::upper_bound(s->addrs.begin(), s->addrs.end(), *addr,
                               [](const IpAddr& a, const AddrRange& r) { return a < r.lo; });
    found = it != s->addrs.begin() && in_range(*addr, *std::prev(it));
  } else {
    for (const auto& t : s->tuples) {
      if (t.proto == f.proto && t.ports.lo <= f.dport && f.dport <= t.ports.hi &&
          in_range(*addr, t.addr)) {
        found = true;
        break;
      }
    }
  }
  return found != l.negate;
}

bool Evaluator::chain_allows(const std::string& name, const Flow& f, bool egress) const {
  const nft::Chain* c = rec_.chain(name);
  if (c == nullptr) return true;
  for (const auto& r : c->rules) {
    bool match = true;
    std::optional<nft::Verdict> verdict;
    for (const auto& st : r.stmts) {
      if (const auto* lk = std::get_if<nft::Lookup>(&st)) {
        match = lookup(*lk, f);
      } else if (std::holds_alternative<nft::Cmp>(st)) {
        match = false;  // `ct state invalid drop`: a flow being judged is not invalid
      } else if (const auto* v = std::get_if<nft::Verdict>(&st)) {
        verdict = *v;
      }
      if (!match) break;
    }
    if (!match || !verdict) continue;
    switch (verdict->kind) {
      case nft::VerdictKind::kAccept:
        return true;
      case nft::VerdictKind::kReturn:
        return egress;  // egress allowed; the destination's ingress is judged next
      case nft::VerdictKind::kDrop:
        return false;
      default:
        break;
    }
  }
  return true;
}

bool Evaluator::relevant(const Flow& f) const {
  return dispatch(f.src.is_v4() ? "egress4" : "egress6", f.src) ||
         dispatch(f.dst.is_v4() ? "ingress4" : "ingress6", f.dst);
}

bool Evaluator::allows(const Flow& f) const {
  if (node_addrs_.count(f.src)) return true;  // fib saddr type local accept
  if (auto chain = dispatch(f.src.is_v4() ? "egress4" : "egress6", f.src)) {
    if (!chain_allows(*chain, f, true)) return false;
  }
  if (node_addrs_.count(f.dst)) return true;  // input: only the source's egress applies
  if (auto chain = dispatch(f.dst.is_v4() ? "ingress4" : "ingress6", f.dst)) {
    if (!chain_allows(*chain, f, false)) return false;
  }
  return true;
}

}  // namespace knit::watcher
