#include "watcher/evaluate.hpp"

#include <cstring>

namespace knit::watcher {

namespace {

/// The packet's value of a selector, in the kernel's register layout.
std::optional<nft::Value> value_of(nft::Sel s, const Flow& f) {
  switch (s) {
    case nft::Sel::kIpSaddr:
      return f.src.is_v4() ? std::optional(nft::Value::addr(f.src)) : std::nullopt;
    case nft::Sel::kIpDaddr:
      return f.dst.is_v4() ? std::optional(nft::Value::addr(f.dst)) : std::nullopt;
    case nft::Sel::kIp6Saddr:
      return !f.src.is_v4() ? std::optional(nft::Value::addr(f.src)) : std::nullopt;
    case nft::Sel::kIp6Daddr:
      return !f.dst.is_v4() ? std::optional(nft::Value::addr(f.dst)) : std::nullopt;
    case nft::Sel::kL4proto:
      return nft::Value::u8(f.proto);
    case nft::Sel::kThDport:
      return nft::Value::port(f.dport);
    default:
      return std::nullopt;
  }
}

bool field_in(const uint8_t* v, const uint8_t* lo, const uint8_t* hi, size_t n) {
  return std::memcmp(lo, v, n) <= 0 && std::memcmp(v, hi, n) <= 0;
}

}  // namespace

Evaluator::Evaluator(const nft::Ruleset& rs, std::set<IpAddr> node_addrs)
    : rs_(rs), node_addrs_(std::move(node_addrs)) {
  for (const auto& s : rs_.sets) sets_[s.name] = &s;
  for (const auto& c : rs_.chains) chains_[c.name] = &c;
}

std::optional<std::string> Evaluator::dispatch(const char* map, const IpAddr& a) const {
  auto it = sets_.find(map);
  if (it == sets_.end()) return std::nullopt;
  auto v = nft::Value::addr(a);
  for (const auto& e : it->second->elements) {
    if (e.key.size() >= v.size() && std::memcmp(e.key.data(), v.data(), v.size()) == 0) {
      return e.verdict.chain;
    }
  }
  return std::nullopt;
}

bool Evaluator::lookup(const nft::Lookup& l, const Flow& f) const {
  auto it = sets_.find(l.set);
  if (it == sets_.end()) return l.negate;
  const nft::Set& s = *it->second;
  // Build the key's fields; a selector the flow lacks (wrong family) never matches.
  std::vector<nft::Value> fields;
  for (auto sel : l.key) {
    auto v = value_of(sel, f);
    if (!v) return l.negate;
    fields.push_back(*v);
  }
  bool found = false;
  for (const auto& e : s.elements) {
    size_t off = 0;
    bool ok = true;
    for (const auto& v : fields) {
      const uint8_t* lo = e.key.data() + off;
      const uint8_t* hi = (s.interval ? e.key_end : e.key).data() + off;
      if (off + v.size() > e.key.size() || !field_in(v.data(), lo, hi, v.size())) {
        ok = false;
        break;
      }
      off += fields.size() > 1 ? (v.size() + 3) / 4 * 4 : v.size();
    }
    if (ok) {
      found = true;
      break;
    }
  }
  return found != l.negate;
}

bool Evaluator::chain_allows(const std::string& name, const Flow& f, bool egress) const {
  auto it = chains_.find(name);
  if (it == chains_.end()) return true;
  for (const auto& r : it->second->rules) {
    bool match = true;
    std::optional<nft::Verdict> verdict;
    for (const auto& st : r.stmts) {
      if (const auto* lk = std::get_if<nft::Lookup>(&st)) {
        match = match && lookup(*lk, f);
      } else if (const auto* c = std::get_if<nft::Cmp>(&st)) {
        // `ct state invalid drop`: a flow being judged is not invalid.
        if (c->sel == nft::Sel::kCtState || c->sel == nft::Sel::kCtMark) match = false;
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
  const char* e = f.src.is_v4() ? "egress4" : "egress6";
  const char* i = f.dst.is_v4() ? "ingress4" : "ingress6";
  return dispatch(e, f.src) || dispatch(i, f.dst);
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
