#include "watcher/compile.hpp"

#include <algorithm>
#include <optional>
#include <set>

#include "core/sha256.hpp"
#include "core/str.hpp"
#include "watcher/conntrack.hpp"
#include "watcher/intervals.hpp"
#include "watcher/selector.hpp"

namespace knit::watcher {

namespace {

using nft::Sel;
using nft::Type;

struct Fam {
  Family family;
  Sel saddr;
  Sel daddr;
  Type addr;
  const char* suffix;
};
constexpr Fam kFams[] = {
    {Family::kV4, Sel::kIpSaddr, Sel::kIpDaddr, Type::kIpv4Addr, "4"},
    {Family::kV6, Sel::kIp6Saddr, Sel::kIp6Daddr, Type::kIpv6Addr, "6"},
};

constexpr size_t kMaxNameBase = 200;    // nft names are at most 255 bytes
constexpr size_t kMaxObjectName = 255;  // NFT_OBJ_MAXNAMELEN less the NUL
constexpr size_t kMaxComment = 120;

uint8_t proto_number(Protocol p) {
  switch (p) {
    case Protocol::kTcp:
      return nft::proto::kTcp;
    case Protocol::kUdp:
      return nft::proto::kUdp;
    case Protocol::kSctp:
      return nft::proto::kSctp;
  }
  return nft::proto::kTcp;
}

/// The port range a policy port allows towards `pod` (nullptr: a destination that is not a
/// pod, where named ports resolve to nothing).
std::optional<PortRange> resolve(const PolicyPort& pp, const Pod* pod) {
  if (!pp.port) return PortRange{0, 65535};
  if (const auto* num = std::get_if<uint16_t>(&*pp.port)) {
    return PortRange{*num, pp.end_port.value_or(*num)};
  }
  if (pod == nullptr) return std::nullopt;
  const auto& name = std::get<std::string>(*pp.port);
  for (const auto& cp : *pod->ports) {
    if (cp.name == name && cp.protocol == pp.protocol) return PortRange{cp.port, cp.port};
  }
  return std::nullopt;
}

/// Puts normalised `ranges` into `s`: as they are for an interval set, as addresses for a hash
/// set (whose ranges are all single addresses).
void set_addrs(PolicySet& s, std::vector<AddrRange> ranges) {
  if (s.interval) {
    s.addrs = std::move(ranges);
    return;
  }
  s.hosts.reserve(ranges.size());
  for (const auto& r : ranges) s.hosts.push_back(r.lo);
}

std::shared_ptr<const PolicySet> addr_set(std::string name, Family f,
                                          std::vector<AddrRange> ranges, bool interval) {
  auto s = std::make_shared<PolicySet>();
  s->name = std::move(name);
  s->family = f;
  s->interval = interval;
  set_addrs(*s, std::move(ranges));
  return s;
}

std::shared_ptr<const PolicySet> tuple_set(std::string name, Family f, std::vector<Tuple> tuples) {
  auto s = std::make_shared<PolicySet>();
  s->name = std::move(name);
  s->family = f;
  s->kind = PolicySet::Kind::kTuples;
  s->tuples = std::move(tuples);
  return s;
}

std::shared_ptr<const PolicySet> ports_set(std::string name, Family f,
                                           std::vector<ProtoPorts> ports) {
  // Sorted, with overlapping or adjacent ranges of a protocol merged.
  std::sort(ports.begin(), ports.end());
  std::vector<ProtoPorts> merged;
  for (const auto& p : ports) {
    if (!merged.empty() && merged.back().proto == p.proto &&
        static_cast<uint32_t>(p.ports.lo) <= static_cast<uint32_t>(merged.back().ports.hi) + 1) {
      merged.back().ports.hi = std::max(merged.back().ports.hi, p.ports.hi);
    } else {
      merged.push_back(p);
    }
  }
  auto s = std::make_shared<PolicySet>();
  s->name = std::move(name);
  s->family = f;
  s->kind = PolicySet::Kind::kPorts;
  s->ports = std::move(merged);
  return s;
}

bool is_named(const PolicyPort& pp) {
  return pp.port && std::holds_alternative<std::string>(*pp.port);
}

/// Canonical text of a rule's peers: policies with the same text share a peer set.
std::string peers_key(const NetworkPolicy& p, const PolicyRule& rule) {
  std::string key;
  for (const auto& peer : rule.peers) {
    if (!key.empty()) key += '|';
    if (peer.ip_block) {
      key += str("ip:", to_string(*peer.ip_block));
      continue;
    }
    key += peer.namespace_selector ? str("ns:", to_string(*peer.namespace_selector))
                                   : str("in:", p.namespace_);
    key += str(";pod:", peer.pod_selector ? to_string(*peer.pod_selector) : std::string("*"));
  }
  return key;
}

nft::Lookup lookup(std::vector<Sel> key, std::string set) {
  return nft::Lookup{std::move(key), std::move(set), false};
}

/// `c` cut to what the kernel keeps of a comment, so that the read-back equals the model.
std::string fit_comment(std::string_view c) { return std::string(c.substr(0, kMaxComment)); }

std::string comment(const NetworkPolicy& p, const char* dir, size_t k) {
  return fit_comment(str(p.namespace_, '/', p.name, ' ', dir, '[', k, ']'));
}

nft::Rule rule(std::vector<nft::Stmt> stmts, std::string c = {}) {
  nft::Rule r;
  r.stmts = std::move(stmts);
  r.comment = std::move(c);
  return r;
}

nft::Chain base_chain(std::string name, nft::Hook hook, int32_t prio) {
  nft::Chain c;
  c.name = std::move(name);
  c.base = nft::BaseChain{nft::ChainType::kFilter, hook, prio, nft::Policy::kAccept};
  return c;
}

}  // namespace

nft::Set to_nft(const PolicySet& ps) {
  Type addr = ps.family == Family::kV4 ? Type::kIpv4Addr : Type::kIpv6Addr;
  nft::Set s;
  s.name = ps.name;
  s.interval = ps.interval || ps.kind != PolicySet::Kind::kAddrs;
  switch (ps.kind) {
    case PolicySet::Kind::kTuples:
      s.key = {addr, Type::kInetProto, Type::kInetService};
      s.elements.reserve(ps.tuples.size());
      for (const auto& t : ps.tuples) {
        s.elements.push_back(nft::element(
            {nft::Field(nft::Value::addr(t.addr.lo), nft::Value::addr(t.addr.hi)),
             nft::Field(nft::Value::u8(t.proto)), nft::port_range(t.ports.lo, t.ports.hi)}));
      }
      break;
    case PolicySet::Kind::kPorts:
      s.key = {Type::kInetProto, Type::kInetService};
      s.elements.reserve(ps.ports.size());
      for (const auto& p : ps.ports) {
        s.elements.push_back(nft::element(
            {nft::Field(nft::Value::u8(p.proto)), nft::port_range(p.ports.lo, p.ports.hi)}));
      }
      break;
    case PolicySet::Kind::kAddrs:
      s.key = {addr};
      s.elements.reserve(ps.addrs.size() + ps.hosts.size());
      for (const auto& r : ps.addrs) {
        s.elements.push_back(
            nft::element({nft::Field(nft::Value::addr(r.lo), nft::Value::addr(r.hi))}));
      }
      for (const auto& a : ps.hosts) s.elements.push_back(nft::element({nft::Field(a)}));
      break;
  }
  return s;
}

std::string name_hash(std::string_view text) {
  auto d = sha256(text);
  return hex(d.data(), 16);
}

namespace {
/// `text` itself when it fits in `max` bytes, else its first bytes, '~' and name_hash(text).
std::string fit_name(std::string text, size_t max) {
  if (text.size() <= max) return text;
  auto h = name_hash(text);
  text.resize(max - h.size() - 1);
  return str(text, '~', h);
}
}  // namespace

std::string ingress_chain(std::string_view ns) {
  return fit_name(str("ingress/", ns), kMaxObjectName);
}
std::string egress_chain(std::string_view ns) { return fit_name(str("egress/", ns), kMaxObjectName); }

std::string policy_set_base(std::string_view ns, std::string_view name) {
  return fit_name(str(ns, '/', name), kMaxNameBase);
}

// ---- Compiler: indexes -------------------------------------------------------------------------

Compiler::Compiler(const ClusterView& view) : view_(view) { refresh_all(); }

std::vector<Compiler::PodIndex::Entry>::iterator Compiler::PodIndex::find(std::string_view key) {
  return std::lower_bound(v_.begin(), v_.end(), key,
                          [](const Entry& e, std::string_view k) { return e.first < k; });
}

void Compiler::PodIndex::insert(std::string_view key, const PodState* st) {
  // refresh_all adds pods in key order: the common case appends.
  if (v_.empty() || v_.back().first < key) {
    v_.emplace_back(key, st);
    return;
  }
  auto it = find(key);
  if (it != v_.end() && it->first == key) {
    it->second = st;
  } else {
    v_.emplace(it, key, st);
  }
}

void Compiler::PodIndex::erase(std::string_view key) {
  auto it = find(key);
  if (it != v_.end() && it->first == key) v_.erase(it);
}

std::optional<PodState> Compiler::refresh_pod(std::string_view key) {
  if (journal_.size() >= kMaxJournal) {
    forget_memo();
    ++memo_stats_.trimmed;
  }
  std::optional<PodState> old;
  // Drop the old state from the indexes, then re-add it from the view. Its old and new
  // addresses are all a peer set can gain or lose through this pod.
  if (auto it = states_.find(key); it != states_.end()) {
    for (const auto& ip : it->second.ips) {
      journal_.push_back(ip);
      auto [lo, hi] = by_ip_.equal_range(ip);
      for (auto b = lo; b != hi; ++b) {
        if (b->second == &it->second) {
          by_ip_.erase(b);
          break;
        }
      }
      if (by_ip_.count(ip) < 2) shared_.erase(ip);
    }
    if (auto n = by_ns_.find(it->second.pod_namespace); n != by_ns_.end()) {
      n->second.erase(key);
      if (n->second.empty()) by_ns_.erase(n);
    }
    local_.erase(key);
    old = std::move(it->second);
    old->pod = nullptr;
    states_.erase(it);
  }
  auto p = view_.pods.find(key);
  if (p == view_.pods.end()) return old;
  auto [it, inserted] = states_.emplace(std::string(key), pod_state(view_, p->second));
  const PodState& st = it->second;
  by_ns_[st.pod_namespace].insert(it->first, &st);
  if (st.local) local_.insert(it->first, &st);
  for (const auto& ip : st.ips) {
    journal_.push_back(ip);
    auto at = by_ip_.emplace(ip, &st);
    if (at != by_ip_.begin() && std::prev(at)->first == ip) shared_.insert(ip);
  }
  return old;
}

void Compiler::refresh_namespace(std::string_view name) {
  forget_memo();  // namespace labels decide whole namespaces' membership
  ++memo_stats_.forgotten;
  if (auto it = synthetic_.find(name); it != synthetic_.end()) synthetic_.erase(it);
}

void Compiler::refresh_all() {
  by_ns_.clear();
  local_.clear();
  by_ip_.clear();
  shared_.clear();
  states_.clear();
  synthetic_.clear();
  for (const auto& [key, pod] : view_.pods) refresh_pod(key);
  forget_memo();
}

void Compiler::forget_memo() const {
  memo_.clear();
  journal_base_ += journal_.size();
  journal_.clear();
}

const PodState* Compiler::state(std::string_view key) const {
  auto it = states_.find(key);
  return it == states_.end() ? nullptr : &it->second;
}

std::vector<const PodState*> Compiler::claimants(const IpAddr& ip) const {
  std::vector<const PodState*> out;
  for (auto [b, end] = by_ip_.equal_range(ip); b != end; ++b) out.push_back(b->second);
  return out;
}

template <class F>
bool Compiler::all_holders(const IpAddr& ip, F&& pred) const {
  auto [lo, hi] = by_ip_.equal_range(ip);
  if (lo == hi) return false;
  if (std::next(lo) == hi) return lo->second->eligible && pred(*lo->second);  // the usual case
  // Of several pods showing it, the ones the CNI plugin reported hold it, if any does.
  bool attached =
      std::any_of(lo, hi, [](const auto& e) { return e.second->eligible && e.second->attached; });
  bool any = false;
  for (auto b = lo; b != hi; ++b) {
    const PodState& st = *b->second;
    if (!st.eligible || (attached && !st.attached)) continue;
    if (!pred(st)) return false;
    any = true;
  }
  return any;
}

const Labels& Compiler::namespace_labels(std::string_view ns) const {
  if (auto it = view_.namespaces.find(ns); it != view_.namespaces.end()) return it->second.labels;
  auto it = synthetic_.find(ns);
  if (it == synthetic_.end()) {
    it = synthetic_.emplace(std::string(ns), Labels{}).first;
    it->second.emplace(std::string(kNamespaceNameLabel), std::string(ns));
  }
  return it->second;
}

/// Eligible pods a peer selects (none for an ipBlock peer).
template <class F>
void Compiler::for_each_peer_pod(const PolicyPeer& peer, const std::string& policy_ns,
                                 F&& f) const {
  if (peer.ip_block) return;
  // The pod selector is asked about ~every pod of the selected namespaces, whose label maps
  // repeat (interned, one per workload): matched once per distinct map.
  std::optional<MatchMemo> selected;
  if (peer.pod_selector) selected.emplace(*peer.pod_selector);
  auto visit_ns = [&](const PodIndex& pods) {
    for (const auto& [key, st] : pods) {
      if (!st->eligible) continue;
      if (selected && !(*selected)(*st->labels)) continue;
      f(*st);
    }
  };
  if (peer.namespace_selector) {
    for (const auto& [ns, pods] : by_ns_) {
      if (matches(*peer.namespace_selector, namespace_labels(ns))) visit_ns(pods);
    }
  } else if (peer.pod_selector) {
    if (auto it = by_ns_.find(policy_ns); it != by_ns_.end()) visit_ns(it->second);
  }
}

// ---- Compiler: policies -------------------------------------------------------------------------

/// The addresses a rule's peers stand for, in family `f`.
std::vector<AddrRange> Compiler::peer_ranges(const NetworkPolicy& p, const PolicyRule& rule,
                                             Family f) const {
  std::vector<AddrRange> out;
  for (const auto& peer : rule.peers) {
    if (peer.ip_block) {
      if (peer.ip_block->cidr.family() != f) continue;
      auto r = subtract(peer.ip_block->cidr, peer.ip_block->except);
      out.insert(out.end(), r.begin(), r.end());
    } else {
      auto selected = [&](const PodState& h) { return peer_pod_selected(rule, p.namespace_, h); };
      for_each_peer_pod(peer, p.namespace_, [&](const PodState& st) {
        for (const auto& ip : st.ips) {
          if (ip.family() == f && (!shared(ip) || all_holders(ip, selected))) {
            out.push_back(AddrRange::host(ip));
          }
        }
      });
    }
  }
  return normalize(std::move(out));
}

namespace {
/// "<kind>/<name_hash of key>/<4|6>": the name of a set shared by content.
std::string shared_set_name(std::string_view kind, std::string_view key, Family f) {
  return str(kind, "/", name_hash(key), f == Family::kV4 ? "/4" : "/6");
}

std::string peer_set_name_of(const std::string& key, Family f) {
  return shared_set_name("peers", key, f);
}

/// A rule's numeric ports as a `protocol . port` set shared by every rule with the same ports
/// (most policies allow one of a few ports: 80, 443, 53/UDP, ...). Named ports are left out.
std::shared_ptr<const PolicySet> numeric_ports_set(const std::vector<PolicyPort>& ports, Family f) {
  std::vector<ProtoPorts> list;
  for (const auto& pp : ports) {
    if (!is_named(pp)) list.push_back({proto_number(pp.protocol), *resolve(pp, nullptr)});
  }
  auto s = ports_set("", f, std::move(list));
  std::string key;
  for (const auto& pp : s->ports) key += str(int{pp.proto}, ':', pp.ports.lo, '-', pp.ports.hi, ',');
  std::const_pointer_cast<PolicySet>(s)->name = shared_set_name("ports", key, f);
  return s;
}
}  // namespace

std::string peer_set_name(const NetworkPolicy& p, const PolicyRule& rule, Family f) {
  return peer_set_name_of(peers_key(p, rule), f);
}

bool Compiler::peer_pod_selected(const PolicyRule& rule, const std::string& policy_ns,
                                 const PodState& st) const {
  // The same choice as for_each_peer_pod, for one pod.
  for (const auto& peer : rule.peers) {
    if (peer.ip_block) continue;
    if (peer.namespace_selector) {
      if (!matches(*peer.namespace_selector, namespace_labels(st.pod_namespace))) continue;
    } else if (!peer.pod_selector || st.pod_namespace != policy_ns) {
      continue;
    }
    if (peer.pod_selector && !matches(*peer.pod_selector, st.labels)) continue;
    return true;
  }
  return false;
}

bool Compiler::catch_up(MemoEntry& e, const NetworkPolicy& p, const PolicyRule& rule,
                        Family f) const {
  const uint64_t now = journal_base_ + journal_.size();
  if (e.seen == now) return true;
  if (e.seen < journal_base_) return false;
  std::vector<IpAddr> touched;
  for (size_t i = e.seen - journal_base_; i < journal_.size(); ++i) {
    if (journal_[i].family() == f) touched.push_back(journal_[i]);
  }
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  const bool hosts = !e.set->interval;
  // Re-deciding an address costs a lookup and a few selector matches; recomputing costs a walk
  // over every pod of the selected namespaces. Sets asked for rarely collect long journals.
  if (touched.size() > kMaxCatchUp) {
    ++memo_stats_.recomputed;
    return false;
  }
  ++memo_stats_.caught_up;
  // The set is normalize(ipBlock ranges + member pods' addresses). The ipBlock ranges do not
  // move with pods, and a pod address outside them is an element of its own ([a, a]: adjacent
  // ranges are not merged). So each touched address outside the ipBlocks is an element exactly
  // when every pod now holding it is a member (all_holders); one inside them changes nothing.
  std::vector<AddrRange> fixed;
  for (const auto& peer : rule.peers) {
    if (!peer.ip_block || peer.ip_block->cidr.family() != f) continue;
    auto r = subtract(peer.ip_block->cidr, peer.ip_block->except);
    fixed.insert(fixed.end(), r.begin(), r.end());
  }
  fixed = normalize(std::move(fixed));
  std::vector<std::pair<IpAddr, bool>> edits;  // (address, add)
  for (const auto& a : touched) {
    auto after = std::upper_bound(fixed.begin(), fixed.end(), a,
                                  [](const IpAddr& x, const AddrRange& r) { return x < r.lo; });
    if (after != fixed.begin() && !(std::prev(after)->hi < a)) continue;  // inside an ipBlock
    bool member =
        all_holders(a, [&](const PodState& h) { return peer_pod_selected(rule, p.namespace_, h); });
    bool present = hosts ? std::binary_search(e.set->hosts.begin(), e.set->hosts.end(), a)
                         : std::binary_search(e.set->addrs.begin(), e.set->addrs.end(),
                                              AddrRange::host(a));
    if (member != present) edits.emplace_back(a, member);
  }
  e.seen = now;
  if (edits.empty()) return true;
  auto s = std::make_shared<PolicySet>(*e.set);
  auto apply = [&](auto& v, auto element) {
    for (const auto& [a, add] : edits) {
      auto h = element(a);
      auto pos = std::lower_bound(v.begin(), v.end(), h);
      if (add) {
        v.insert(pos, h);
      } else {
        v.erase(pos);
      }
    }
  };
  if (hosts) {
    apply(s->hosts, [](const IpAddr& a) { return a; });
  } else {
    apply(s->addrs, [](const IpAddr& a) { return AddrRange::host(a); });
  }
  e.set = std::move(s);
  return true;
}

std::shared_ptr<const PolicySet> Compiler::peer_set_of(const NetworkPolicy& p,
                                                       const PolicyRule& rule, Family f,
                                                       bool egress, uint32_t k) const {
  std::string key = peers_key(p, rule);
  std::string name = peer_set_name_of(key, f);
  if (auto it = memo_.find(name); it != memo_.end()) {
    if (it->second.peers == key && catch_up(it->second, p, rule, f)) return it->second.set;
    memo_.erase(it);
  }
  auto s = std::make_shared<PolicySet>();
  s->name = name;
  s->family = f;
  // Only ipBlocks need ranges. Pods alone make a hash set: adds and deletes stay O(1), where
  // the kernel's interval backend (a red-black tree) walks every element of a set it commits a
  // change to once a second, which for peer sets of thousands of pods dominated pod events.
  s->interval = std::any_of(rule.peers.begin(), rule.peers.end(), [&](const PolicyPeer& peer) {
    return peer.ip_block && peer.ip_block->cidr.family() == f;
  });
  s->origin = PolicySet::Origin::kPeers;
  s->egress = egress;
  s->rule = k;
  set_addrs(*s, peer_ranges(p, rule, f));
  memo_.emplace(std::move(name), MemoEntry{s, std::move(key), journal_base_ + journal_.size()});
  return s;
}

std::shared_ptr<const PolicySet> Compiler::peer_set(const NetworkPolicy& p, bool egress,
                                                    uint32_t rule, Family f) const {
  const auto& rules = egress ? p.egress : p.ingress;
  return peer_set_of(p, rules.at(rule), f, egress, rule);
}

std::shared_ptr<const PolicySet> Compiler::named_set(const NetworkPolicy& p, uint32_t k,
                                                     Family f) const {
  const PolicyRule& rule = p.egress.at(k);
  // Named ports resolve against each destination pod: (peer pod address, protocol, its port).
  // An ipBlock peer's pods are those whose addresses it holds; other addresses never match a
  // name.
  std::vector<Tuple> tuples;
  // A tuple of an address several pods hold needs each holder to be a destination of the rule
  // and to give the name the same number.
  auto in_blocks = [&](const IpAddr& ip) {
    return std::any_of(rule.peers.begin(), rule.peers.end(), [&](const PolicyPeer& peer) {
      return peer.ip_block && peer.ip_block->holds(ip);
    });
  };
  auto add_address = [&](const PodState& st, const IpAddr& ip) {
    for (const auto& pp : rule.ports) {
      if (!is_named(pp)) continue;
      auto range = resolve(pp, st.pod);
      if (!range) continue;
      bool agreed = !shared(ip) || all_holders(ip, [&](const PodState& h) {
        bool peer = rule.peers.empty() || in_blocks(ip) || peer_pod_selected(rule, p.namespace_, h);
        return peer && resolve(pp, h.pod) == range;
      });
      if (agreed) tuples.push_back({AddrRange::host(ip), proto_number(pp.protocol), *range});
    }
  };
  auto add_pod = [&](const PodState& st) {
    for (const auto& ip : st.ips) {
      if (ip.family() == f) add_address(st, ip);
    }
  };
  if (rule.peers.empty()) {
    for (const auto& [key, st] : states_) {
      if (st.eligible && !st.ports->empty()) add_pod(st);
    }
  } else {
    for (const auto& peer : rule.peers) {
      if (!peer.ip_block) {
        for_each_peer_pod(peer, p.namespace_, add_pod);
        continue;
      }
      if (peer.ip_block->cidr.family() != f) continue;
      for (const auto& r : subtract(peer.ip_block->cidr, peer.ip_block->except)) {
        for (auto it = by_ip_.lower_bound(r.lo); it != by_ip_.end() && !(r.hi < it->first); ++it) {
          if (it->second->eligible) add_address(*it->second, it->first);
        }
      }
    }
  }
  auto s = std::make_shared<PolicySet>();
  s->name = str(policy_set_base(p.namespace_, p.name), "/e", k, "/named",
                f == Family::kV4 ? "4" : "6");
  s->family = f;
  s->kind = PolicySet::Kind::kTuples;
  s->origin = PolicySet::Origin::kNamed;
  s->egress = true;
  s->rule = k;
  s->tuples = normalize(std::move(tuples));
  return s;
}

bool Compiler::family_active(Family f) const {
  for (const auto& [key, st] : local_) {
    if (!st->eligible) continue;
    for (const auto& ip : st->ips)
      if (ip.family() == f) return true;
  }
  return false;
}

PolicyOutput Compiler::policy(const NetworkPolicy& p) const {
  PolicyOutput out;
  const std::string base = policy_set_base(p.namespace_, p.name);
  // Targets are local pods: only they are dispatched to the namespace chains on this node.
  std::vector<const PodState*> targets;
  auto is_target = [&](const PodState& st) {
    return st.local && st.eligible && st.pod_namespace == p.namespace_ &&
           matches(p.pod_selector, st.labels);
  };
  if (auto it = by_ns_.find(p.namespace_); it != by_ns_.end()) {
    for (const auto& [key, st] : it->second) {
      if (is_target(*st)) targets.push_back(st);
    }
  }
  auto add_set = [&](std::shared_ptr<const PolicySet> s) {
    std::string name = s->name;
    for (const auto& have : out.sets)
      if (have->name == name) return name;  // two rules with the same peers
    out.sets.push_back(std::move(s));
    return name;
  };
  for (const Fam& fam : kFams) {
    if (!family_active(fam.family)) continue;
    const std::string targets_set = str(base, "/pods", fam.suffix);
    bool targets_used = false;
    if (p.ingress_isolation) {
      for (size_t k = 0; k < p.ingress.size(); ++k) {
        const PolicyRule& rule = p.ingress[k];
        nft::Rule r;
        r.comment = comment(p, "ingress", k);
        if (!rule.ports.empty() && std::none_of(rule.ports.begin(), rule.ports.end(), is_named)) {
          // Numeric ports are the same for every target: the policy's targets set and a
          // ports set shared with every rule that allows the same ports. (A set per rule
          // costs the kernel a name walk over all sets for every set it creates and finds.)
          r.stmts.push_back(lookup({fam.daddr}, targets_set));
          targets_used = true;
          r.stmts.push_back(lookup({Sel::kL4proto, Sel::kThDport},
                                   add_set(numeric_ports_set(rule.ports, fam.family))));
        } else if (!rule.ports.empty()) {
          // Named ports resolve against each destination, i.e. each target pod: the set holds
          // (target address, protocol, port range) for the few local targets.
          std::vector<Tuple> tuples;
          for (const PodState* t : targets) {
            for (const auto& pp : rule.ports) {
              auto range = resolve(pp, t->pod);
              if (!range) continue;
              for (const auto& ip : t->ips) {
                if (ip.family() != fam.family) continue;
                if (!shared(ip) || all_holders(ip, [&](const PodState& h) {
                      return is_target(h) && resolve(pp, h.pod) == range;
                    })) {
                  tuples.push_back({AddrRange::host(ip), proto_number(pp.protocol), *range});
                }
              }
            }
          }
          auto set = tuple_set(str(base, "/i", k, "/ports", fam.suffix), fam.family,
                               normalize(std::move(tuples)));
          std::const_pointer_cast<PolicySet>(set)->origin = PolicySet::Origin::kTargets;
          auto name = add_set(std::move(set));
          r.stmts.push_back(lookup({fam.daddr, Sel::kL4proto, Sel::kThDport}, name));
        } else {
          r.stmts.push_back(lookup({fam.daddr}, targets_set));
          targets_used = true;
        }
        if (!rule.peers.empty()) {
          auto name = add_set(peer_set_of(p, rule, fam.family, false, static_cast<uint32_t>(k)));
          r.stmts.push_back(lookup({fam.saddr}, name));
        }
        r.stmts.push_back(nft::CounterRef{allow_counter(p.namespace_, p.name)});
        r.stmts.push_back(nft::accept());
        out.ingress.push_back(std::move(r));
      }
    }
    if (p.egress_isolation) {
      for (size_t k = 0; k < p.egress.size(); ++k) {
        const PolicyRule& rule = p.egress[k];
        targets_used = true;
        auto start = [&] {
          nft::Rule r;
          r.comment = comment(p, "egress", k);
          r.stmts.push_back(lookup({fam.saddr}, targets_set));
          return r;
        };
        bool any_numeric = rule.ports.empty() ||
                           std::any_of(rule.ports.begin(), rule.ports.end(),
                                       [](const PolicyPort& pp) { return !is_named(pp); });
        if (any_numeric) {
          // Numeric ports (or none) do not depend on the destination: peers and ports are two
          // independent lookups, so no set grows with peers x ports.
          nft::Rule r = start();
          if (!rule.peers.empty()) {
            r.stmts.push_back(lookup(
                {fam.daddr},
                add_set(peer_set_of(p, rule, fam.family, true, static_cast<uint32_t>(k)))));
          }
          if (!rule.ports.empty()) {
            r.stmts.push_back(lookup({Sel::kL4proto, Sel::kThDport},
                                     add_set(numeric_ports_set(rule.ports, fam.family))));
          }
          r.stmts.push_back(nft::CounterRef{allow_counter(p.namespace_, p.name)});
          r.stmts.push_back(nft::ret());
          out.egress.push_back(std::move(r));
        }
        if (std::any_of(rule.ports.begin(), rule.ports.end(), is_named)) {
          nft::Rule r = start();
          auto name = add_set(named_set(p, static_cast<uint32_t>(k), fam.family));
          r.stmts.push_back(lookup({fam.daddr, Sel::kL4proto, Sel::kThDport}, name));
          r.stmts.push_back(nft::CounterRef{allow_counter(p.namespace_, p.name)});
          r.stmts.push_back(nft::ret());
          out.egress.push_back(std::move(r));
        }
      }
    }
    if (targets_used) {
      std::vector<AddrRange> addrs;
      for (const PodState* t : targets) {
        for (const auto& ip : t->ips) {
          if (ip.family() == fam.family && (!shared(ip) || all_holders(ip, is_target))) {
            addrs.push_back(AddrRange::host(ip));
          }
        }
      }
      auto set = addr_set(targets_set, fam.family, normalize(std::move(addrs)), false);
      std::const_pointer_cast<PolicySet>(set)->origin = PolicySet::Origin::kTargets;
      add_set(std::move(set));
    }
  }
  return out;
}

bool operator==(const PolicyOutput& a, const PolicyOutput& b) {
  if (a.ingress != b.ingress || a.egress != b.egress || a.sets.size() != b.sets.size()) {
    return false;
  }
  for (size_t i = 0; i < a.sets.size(); ++i) {
    if (a.sets[i] != b.sets[i] && !(*a.sets[i] == *b.sets[i])) return false;
  }
  return true;
}

// ---- Compiler: dispatch and assembly ------------------------------------------------------------

std::pair<bool, bool> Compiler::isolation(const Pod& pod) const {
  bool in = false, eg = false;
  std::string prefix = str(pod.namespace_, '/');
  for (auto it = view_.policies.lower_bound(prefix);
       it != view_.policies.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    const auto& p = it->second;
    if (!(p.ingress_isolation || p.egress_isolation)) continue;
    if ((in || !p.ingress_isolation) && (eg || !p.egress_isolation)) continue;  // known already
    if (!matches(p.pod_selector, pod.labels)) continue;
    in = in || p.ingress_isolation;
    eg = eg || p.egress_isolation;
  }
  return {in, eg};
}

std::array<std::optional<nft::Element>, 2> Compiler::dispatch_of(const IpAddr& ip) const {
  // One element per address, for its holders (see the top of compile.hpp). A holder that no
  // policy isolates in a direction adds no element there, so of several holders an isolated one
  // is judged, the first by key; that namespace's policies allow the address only where every
  // holder is their target (policy()), so holders in two namespaces get no more than either.
  std::array<std::optional<nft::Element>, 2> out;
  auto [lo, hi] = by_ip_.equal_range(ip);
  // Of several pods showing it, the ones the CNI plugin reported hold it, if any does.
  bool attached =
      std::any_of(lo, hi, [](const auto& e) { return e.second->eligible && e.second->attached; });
  std::string best[2];  // the key of the holder each element is for
  for (auto b = lo; b != hi; ++b) {
    const PodState& st = *b->second;
    if (!st.local || !st.eligible || (attached && !st.attached)) continue;
    auto [in, eg] = isolation(*st.pod);
    if (!in && !eg) continue;
    std::string key = object_key(st.pod->namespace_, st.pod->name);
    const bool dir[2] = {in, eg};
    for (int d = 0; d < 2; ++d) {
      if (!dir[d] || (out[d] && best[d] <= key)) continue;
      const std::string& ns = st.pod->namespace_;
      out[d] = nft::element({ip}, nft::jump(d == 0 ? ingress_chain(ns) : egress_chain(ns)));
      out[d]->comment = fit_comment(key);
      best[d] = key;
    }
  }
  return out;
}

std::vector<nft::Set> Compiler::dispatch() const {
  std::vector<IpAddr> ips;
  for (const auto& [key, st] : local_) {
    if (st->eligible) ips.insert(ips.end(), st->ips.begin(), st->ips.end());
  }
  std::sort(ips.begin(), ips.end());
  ips.erase(std::unique(ips.begin(), ips.end()), ips.end());
  std::vector<nft::Set> maps = dispatch_maps();
  for (const auto& ip : ips) {
    auto elements = dispatch_of(ip);
    for (int d = 0; d < 2; ++d) {
      if (elements[d]) {
        maps[dispatch_map_index(d == 0, ip)].elements.push_back(std::move(*elements[d]));
      }
    }
  }
  return maps;
}

std::vector<nft::Set> dispatch_maps() {
  static constexpr const char* kNames[2][2] = {{"ingress4", "ingress6"}, {"egress4", "egress6"}};
  std::vector<nft::Set> maps;
  for (int d = 0; d < 2; ++d) {
    for (int f = 0; f < 2; ++f) {
      nft::Set m;
      m.name = kNames[d][f];
      m.key = {kFams[f].addr};
      m.data = {Type::kVerdict};
      maps.push_back(std::move(m));
    }
  }
  return maps;
}

size_t dispatch_map_index(bool ingress, const IpAddr& ip) {
  return (ingress ? 0 : 2) + (ip.is_v4() ? 0 : 1);
}

nft::Ruleset Compiler::assemble(
    const std::map<std::string, PolicyOutput, std::less<>>& outputs) const {
  nft::Ruleset rs;
  rs.table = {nft::TableFamily::kInet, std::string(kTableName)};

  // Neighbour discovery (RS, RA, NS, NA, redirect) always passes.
  nft::Set nd;
  nd.name = "nd";
  nd.key = {Type::kIcmpv6Type};
  for (uint8_t t = 133; t <= 137; ++t) nd.elements.push_back(nft::element({nft::Value::u8(t)}));
  rs.sets.push_back(std::move(nd));
  for (auto& m : dispatch()) rs.sets.push_back(std::move(m));

  auto established = nft::match_any(Sel::kCtState, nft::ct::kEstablished | nft::ct::kRelated);
  nft::Cmp revoked{Sel::kCtMark, nft::CmpOp::kEq, nft::Value::u32(kRevokedMark),
                   nft::Value::u32(kRevokedMark)};
  auto revoked_drop = rule({revoked, nft::drop()}, "connection revoked by a policy change");
  auto nd_accept = rule({nft::Lookup{{Sel::kIcmpv6Type}, "nd", false}, nft::accept()});

  nft::Chain post = base_chain("postrouting", nft::Hook::kPostrouting, kPostroutingPriority);
  post.rules.push_back(revoked_drop);
  post.rules.push_back(rule({established, nft::accept()}));
  post.rules.push_back(nd_accept);
  post.rules.push_back(rule({nft::match(Sel::kFibSaddrType, nft::Value::u32(nft::fib::kLocal)),
                             nft::accept()},
                            "from the node"));
  post.rules.push_back(rule({nft::Vmap{{Sel::kIpSaddr}, "egress4"}}));
  post.rules.push_back(rule({nft::Vmap{{Sel::kIp6Saddr}, "egress6"}}));
  post.rules.push_back(rule({nft::Vmap{{Sel::kIpDaddr}, "ingress4"}}));
  post.rules.push_back(rule({nft::Vmap{{Sel::kIp6Daddr}, "ingress6"}}));
  rs.chains.push_back(std::move(post));

  nft::Chain input = base_chain("input", nft::Hook::kInput, kInputPriority);
  input.rules.push_back(revoked_drop);
  input.rules.push_back(rule({established, nft::accept()}));
  input.rules.push_back(nd_accept);
  input.rules.push_back(rule({nft::Vmap{{Sel::kIpSaddr}, "egress4"}}));
  input.rules.push_back(rule({nft::Vmap{{Sel::kIp6Saddr}, "egress6"}}));
  rs.chains.push_back(std::move(input));

  // One ingress and one egress chain per namespace with policies: the policies' rules in policy
  // order (ClusterView::policies is ordered by "ns/name"), then drop.
  auto invalid = rule({nft::match_any(Sel::kCtState, nft::ct::kInvalid), nft::drop()});
  std::map<std::string, std::pair<nft::Chain, nft::Chain>, std::less<>> chains;
  std::set<std::string_view> emitted;  // shared peer sets appear in several outputs
  for (const auto& [key, out] : outputs) {
    const std::string ns = key.substr(0, key.find('/'));
    auto [it, inserted] = chains.try_emplace(ns);
    auto& [in, eg] = it->second;
    if (inserted) {
      in.name = ingress_chain(ns);
      eg.name = egress_chain(ns);
      in.rules.push_back(invalid);
      eg.rules.push_back(invalid);
    }
    in.rules.insert(in.rules.end(), out.ingress.begin(), out.ingress.end());
    eg.rules.insert(eg.rules.end(), out.egress.begin(), out.egress.end());
    for (const auto& ps : out.sets) {
      if (emitted.insert(ps->name).second) rs.sets.push_back(to_nft(*ps));
    }
  }
  for (const auto& [key, out] : outputs) {
    if (out.ingress.empty() && out.egress.empty()) continue;
    auto slash = key.find('/');
    rs.counters.push_back({allow_counter(key.substr(0, slash), key.substr(slash + 1))});
  }
  for (auto& [ns, pair] : chains) {
    rs.counters.push_back({drop_counter(ns)});
    pair.first.rules.push_back(rule({nft::CounterRef{drop_counter(ns)}, nft::drop()}));
    pair.second.rules.push_back(rule({nft::CounterRef{drop_counter(ns)}, nft::drop()}));
    rs.chains.push_back(std::move(pair.first));
    rs.chains.push_back(std::move(pair.second));
  }
  rs.sort();
  return rs;
}

std::string allow_counter(std::string_view ns, std::string_view policy) {
  return fit_name(str("allow/", ns, '/', policy), kMaxObjectName);
}

std::string drop_counter(std::string_view ns) { return fit_name(str("drop/", ns), kMaxObjectName); }

nft::Ruleset compile(const ClusterView& view) {
  Compiler c(view);
  std::map<std::string, PolicyOutput, std::less<>> outputs;
  for (const auto& [key, p] : view.policies) outputs.emplace(key, c.policy(p));
  return c.assemble(outputs);
}

}  // namespace knit::watcher
