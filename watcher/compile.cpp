#include "watcher/compile.hpp"

#include <algorithm>
#include <optional>

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

std::string ingress_chain(std::string_view ns) { return str("ingress/", ns); }
std::string egress_chain(std::string_view ns) { return str("egress/", ns); }

/// Everything compile() needs, indexed once.
struct Ctx {
  explicit Ctx(const ClusterView& v) : view(v), states(pod_states(v)) {
    for (const auto& [key, st] : states) by_ns[st.pod->namespace_].push_back(&st);
  }

  /// A namespace's labels; a namespace without an object still carries its name label.
  const Labels& ns_labels(const std::string& ns) {
    if (auto it = view.namespaces.find(ns); it != view.namespaces.end()) return it->second.labels;
    auto [it, inserted] = synthetic.try_emplace(ns);
    if (inserted) it->second.emplace(std::string(kNamespaceNameLabel), ns);
    return it->second;
  }

  const ClusterView& view;
  std::map<std::string, PodState, std::less<>> states;
  std::map<std::string, std::vector<const PodState*>, std::less<>> by_ns;
  std::map<std::string, Labels, std::less<>> synthetic;
};

/// Eligible pods a peer selects (none for an ipBlock peer).
template <class F>
void for_each_peer_pod(Ctx& ctx, const PolicyPeer& peer, const std::string& policy_ns, F&& f) {
  if (peer.ip_block) return;
  auto visit_ns = [&](const std::vector<const PodState*>& pods) {
    for (const PodState* st : pods) {
      if (!st->eligible) continue;
      if (peer.pod_selector && !matches(*peer.pod_selector, st->pod->labels)) continue;
      f(*st);
    }
  };
  if (peer.namespace_selector) {
    for (const auto& [ns, pods] : ctx.by_ns) {
      if (matches(*peer.namespace_selector, ctx.ns_labels(ns))) visit_ns(pods);
    }
  } else if (peer.pod_selector) {
    if (auto it = ctx.by_ns.find(policy_ns); it != ctx.by_ns.end()) visit_ns(it->second);
  }
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
  for (const auto& cp : pod->ports) {
    if (cp.name == name && cp.protocol == pp.protocol) return PortRange{cp.port, cp.port};
  }
  return std::nullopt;
}

nft::Set addr_set(std::string name, Type addr, const std::vector<AddrRange>& ranges,
                  bool interval) {
  nft::Set s;
  s.name = std::move(name);
  s.key = {addr};
  s.interval = interval;
  s.elements.reserve(ranges.size());
  for (const auto& r : ranges) {
    s.elements.push_back(nft::element({nft::Field(nft::Value::addr(r.lo), nft::Value::addr(r.hi))}));
  }
  return s;
}

nft::Set tuple_set(std::string name, Type addr, const std::vector<Tuple>& tuples) {
  nft::Set s;
  s.name = std::move(name);
  s.key = {addr, Type::kInetProto, Type::kInetService};
  s.interval = true;
  s.elements.reserve(tuples.size());
  for (const auto& t : tuples) {
    s.elements.push_back(nft::element({nft::Field(nft::Value::addr(t.addr.lo), nft::Value::addr(t.addr.hi)),
                                       nft::Field(nft::Value::u8(t.proto)),
                                       nft::port_range(t.ports.lo, t.ports.hi)}));
  }
  return s;
}

nft::Lookup lookup(std::vector<Sel> key, std::string set) {
  return nft::Lookup{std::move(key), std::move(set), false};
}

std::string comment(const NetworkPolicy& p, const char* dir, size_t k) {
  std::string c = str(p.namespace_, '/', p.name, ' ', dir, '[', k, ']');
  if (c.size() > kMaxComment) c.resize(kMaxComment);
  return c;
}

void add_ips(std::vector<AddrRange>& out, const std::vector<IpAddr>& ips, Family f) {
  for (const auto& ip : ips)
    if (ip.family() == f) out.push_back(AddrRange::host(ip));
}

/// The addresses a rule's peers stand for, in family `f`.
std::vector<AddrRange> peer_ranges(Ctx& ctx, const NetworkPolicy& p, const PolicyRule& rule,
                                   Family f) {
  std::vector<AddrRange> out;
  for (const auto& peer : rule.peers) {
    if (peer.ip_block) {
      if (peer.ip_block->cidr.family() != f) continue;
      auto r = subtract(peer.ip_block->cidr, peer.ip_block->except);
      out.insert(out.end(), r.begin(), r.end());
    } else {
      for_each_peer_pod(ctx, peer, p.namespace_, [&](const PodState& st) { add_ips(out, st.ips, f); });
    }
  }
  return normalize(std::move(out));
}

struct Compiled {
  std::vector<nft::Set> sets;
  std::vector<nft::Rule> ingress;
  std::vector<nft::Rule> egress;
};

void compile_policy(Ctx& ctx, const NetworkPolicy& p, Compiled& out) {
  const std::string base = policy_set_base(p.namespace_, p.name);
  std::vector<const PodState*> targets;
  if (auto it = ctx.by_ns.find(p.namespace_); it != ctx.by_ns.end()) {
    for (const PodState* st : it->second) {
      if (st->local && st->eligible && matches(p.pod_selector, st->pod->labels)) {
        targets.push_back(st);
      }
    }
  }
  for (const Fam& fam : kFams) {
    const std::string targets_set = str(base, "/pods", fam.suffix);
    bool targets_used = false;
    if (p.ingress_isolation) {
      for (size_t k = 0; k < p.ingress.size(); ++k) {
        const PolicyRule& rule = p.ingress[k];
        nft::Rule r;
        r.comment = comment(p, "ingress", k);
        if (!rule.ports.empty()) {
          // Ports resolve against each destination (target) pod.
          std::vector<Tuple> tuples;
          for (const PodState* t : targets) {
            for (const auto& pp : rule.ports) {
              auto range = resolve(pp, t->pod);
              if (!range) continue;
              for (const auto& ip : t->ips) {
                if (ip.family() == fam.family) {
                  tuples.push_back({AddrRange::host(ip), proto_number(pp.protocol), *range});
                }
              }
            }
          }
          std::string name = str(base, "/i", k, "/ports", fam.suffix);
          out.sets.push_back(tuple_set(name, fam.addr, normalize(std::move(tuples))));
          r.stmts.push_back(lookup({fam.daddr, Sel::kL4proto, Sel::kThDport}, name));
        } else {
          r.stmts.push_back(lookup({fam.daddr}, targets_set));
          targets_used = true;
        }
        if (!rule.peers.empty()) {
          std::string name = str(base, "/i", k, "/peers", fam.suffix);
          out.sets.push_back(addr_set(name, fam.addr, peer_ranges(ctx, p, rule, fam.family), true));
          r.stmts.push_back(lookup({fam.saddr}, name));
        }
        r.stmts.push_back(nft::accept());
        out.ingress.push_back(std::move(r));
      }
    }
    if (p.egress_isolation) {
      for (size_t k = 0; k < p.egress.size(); ++k) {
        const PolicyRule& rule = p.egress[k];
        nft::Rule r;
        r.comment = comment(p, "egress", k);
        r.stmts.push_back(lookup({fam.saddr}, targets_set));
        targets_used = true;
        if (!rule.ports.empty()) {
          // Ports resolve against each destination: a peer pod, or (numeric ports only) any
          // address of an ipBlock or of everywhere.
          std::vector<Tuple> tuples;
          auto is_named = [](const PolicyPort& pp) {
            return pp.port && std::holds_alternative<std::string>(*pp.port);
          };
          // `only_named`: the numeric ports are already covered for every address.
          auto add_pod = [&](const PodState& st, bool only_named) {
            for (const auto& pp : rule.ports) {
              if (only_named && !is_named(pp)) continue;
              auto range = resolve(pp, st.pod);
              if (!range) continue;
              for (const auto& ip : st.ips) {
                if (ip.family() == fam.family) {
                  tuples.push_back({AddrRange::host(ip), proto_number(pp.protocol), *range});
                }
              }
            }
          };
          auto add_ranges = [&](const std::vector<AddrRange>& ranges) {
            for (const auto& pp : rule.ports) {
              auto range = resolve(pp, nullptr);
              if (!range) continue;
              for (const auto& a : ranges) tuples.push_back({a, proto_number(pp.protocol), *range});
            }
          };
          if (rule.peers.empty()) {
            add_ranges({everything(fam.family)});
            if (std::any_of(rule.ports.begin(), rule.ports.end(), is_named)) {
              for (const auto& [key, st] : ctx.states) {
                if (st.eligible) add_pod(st, true);
              }
            }
          } else {
            for (const auto& peer : rule.peers) {
              if (peer.ip_block) {
                if (peer.ip_block->cidr.family() == fam.family) {
                  add_ranges(subtract(peer.ip_block->cidr, peer.ip_block->except));
                }
              } else {
                for_each_peer_pod(ctx, peer, p.namespace_,
                                  [&](const PodState& st) { add_pod(st, false); });
              }
            }
          }
          std::string name = str(base, "/e", k, "/ports", fam.suffix);
          out.sets.push_back(tuple_set(name, fam.addr, normalize(std::move(tuples))));
          r.stmts.push_back(lookup({fam.daddr, Sel::kL4proto, Sel::kThDport}, name));
        } else if (!rule.peers.empty()) {
          std::string name = str(base, "/e", k, "/peers", fam.suffix);
          out.sets.push_back(addr_set(name, fam.addr, peer_ranges(ctx, p, rule, fam.family), true));
          r.stmts.push_back(lookup({fam.daddr}, name));
        }
        r.stmts.push_back(nft::ret());
        out.egress.push_back(std::move(r));
      }
    }
    if (targets_used) {
      std::vector<AddrRange> addrs;
      for (const PodState* t : targets) add_ips(addrs, t->ips, fam.family);
      out.sets.push_back(addr_set(targets_set, fam.addr, normalize(std::move(addrs)), false));
    }
  }
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

std::string policy_set_base(std::string_view ns, std::string_view name) {
  std::string base = str(ns, '/', name);
  if (base.size() <= kMaxNameBase) return base;
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : base) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return str(base.substr(0, kMaxNameBase - 17), '~', hex(&h, 8));
}

nft::Ruleset compile(const ClusterView& view) {
  Ctx ctx(view);
  nft::Ruleset rs;
  rs.table = {nft::TableFamily::kInet, std::string(kTableName)};

  // Neighbour discovery (RS, RA, NS, NA, redirect) always passes.
  nft::Set nd;
  nd.name = "nd";
  nd.key = {Type::kIcmpv6Type};
  for (uint8_t t = 133; t <= 137; ++t) nd.elements.push_back(nft::element({nft::Value::u8(t)}));
  rs.sets.push_back(std::move(nd));

  // Policies, grouped by namespace (ClusterView::policies is ordered by "ns/name").
  std::map<std::string, Compiled, std::less<>> by_ns;
  for (const auto& [key, p] : view.policies) compile_policy(ctx, p, by_ns[p.namespace_]);

  // Dispatch: local pods some policy isolates jump to their namespace's chain.
  std::vector<nft::Element> disp[2][2];  // [ingress=0/egress=1][v4=0/v6=1]
  for (const auto& [key, st] : ctx.states) {
    if (!st.local || !st.eligible) continue;
    const Pod& pod = *st.pod;
    bool in = false, eg = false;
    auto lo = view.policies.lower_bound(str(pod.namespace_, '/'));
    for (auto it = lo; it != view.policies.end() && it->second.namespace_ == pod.namespace_; ++it) {
      const auto& p = it->second;
      if (!(p.ingress_isolation || p.egress_isolation)) continue;
      if (!matches(p.pod_selector, pod.labels)) continue;
      in = in || p.ingress_isolation;
      eg = eg || p.egress_isolation;
    }
    for (const auto& ip : st.ips) {
      int f = ip.is_v4() ? 0 : 1;
      if (in) {
        auto e = nft::element({ip}, nft::jump(ingress_chain(pod.namespace_)));
        e.comment = key;
        disp[0][f].push_back(std::move(e));
      }
      if (eg) {
        auto e = nft::element({ip}, nft::jump(egress_chain(pod.namespace_)));
        e.comment = key;
        disp[1][f].push_back(std::move(e));
      }
    }
  }
  const char* map_names[2][2] = {{"ingress4", "ingress6"}, {"egress4", "egress6"}};
  for (int d = 0; d < 2; ++d) {
    for (int f = 0; f < 2; ++f) {
      nft::Set m;
      m.name = map_names[d][f];
      m.key = {kFams[f].addr};
      m.data = {Type::kVerdict};
      m.elements = std::move(disp[d][f]);
      rs.sets.push_back(std::move(m));
    }
  }

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

  auto invalid = rule({nft::match_any(Sel::kCtState, nft::ct::kInvalid), nft::drop()});
  for (auto& [ns, c] : by_ns) {
    nft::Chain in;
    in.name = ingress_chain(ns);
    in.rules.push_back(invalid);
    for (auto& r : c.ingress) in.rules.push_back(std::move(r));
    in.rules.push_back(rule({nft::drop()}));
    nft::Chain eg;
    eg.name = egress_chain(ns);
    eg.rules.push_back(invalid);
    for (auto& r : c.egress) eg.rules.push_back(std::move(r));
    eg.rules.push_back(rule({nft::drop()}));
    rs.chains.push_back(std::move(in));
    rs.chains.push_back(std::move(eg));
    for (auto& s : c.sets) rs.sets.push_back(std::move(s));
  }
  // Chains referenced by dispatch elements must exist even when a namespace's policies were all
  // removed in the same breath; they do, since dispatch is computed from the same policies.
  rs.sort();
  return rs;
}

}  // namespace knit::watcher
