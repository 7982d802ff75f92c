#include "watcher/reconciler.hpp"

#include <algorithm>
#include <iterator>
#include <tuple>

#include "core/error.hpp"
#include "core/str.hpp"
#include "nft/apply.hpp"
#include "nft/plan.hpp"
#include "watcher/selector.hpp"

namespace knit::watcher {

namespace {

bool is_namespace_chain(std::string_view name) {
  return name.starts_with("ingress/") || name.starts_with("egress/");
}

/// Whether one of `ips` lies in `b` (its cidr, none of its excepts).
bool holds_any(const IpBlock& b, const std::vector<IpAddr>& ips) {
  return std::any_of(ips.begin(), ips.end(), [&](const IpAddr& ip) { return b.holds(ip); });
}

bool has_named_port(const PolicyRule& r) {
  for (const auto& pp : r.ports) {
    if (pp.port && std::holds_alternative<std::string>(*pp.port)) return true;
  }
  return false;
}

bool has_namespace_selector(const NetworkPolicy& p) {
  for (const auto* rules : {&p.ingress, &p.egress}) {
    for (const auto& r : *rules) {
      for (const auto& peer : r.peers) {
        if (peer.namespace_selector) return true;
      }
    }
  }
  return false;
}

/// One merge pass over two sorted vectors: what only `a` has, and what only `b` has.
template <class T>
void split_difference(const std::vector<T>& a, const std::vector<T>& b, std::vector<T>& only_a,
                      std::vector<T>& only_b) {
  auto i = a.begin(), j = b.begin();
  while (i != a.end() && j != b.end()) {
    if (*i < *j) {
      only_a.push_back(*i++);
    } else if (*j < *i) {
      only_b.push_back(*j++);
    } else {
      ++i, ++j;
    }
  }
  only_a.insert(only_a.end(), i, a.end());
  only_b.insert(only_b.end(), j, b.end());
}

/// The elements only in `a` and only in `b` (both sorted, as the compiler makes them), as two
/// sets of the same name and type.
std::pair<PolicySet, PolicySet> element_difference(const PolicySet& a, const PolicySet& b) {
  PolicySet gone = a.without_elements(), added = b.without_elements();
  split_difference(a.addrs, b.addrs, gone.addrs, added.addrs);
  split_difference(a.hosts, b.hosts, gone.hosts, added.hosts);
  split_difference(a.tuples, b.tuples, gone.tuples, added.tuples);
  split_difference(a.ports, b.ports, gone.ports, added.ports);
  return {std::move(gone), std::move(added)};
}

nft::Rule rule(std::vector<nft::Stmt> stmts) {
  nft::Rule r;
  r.stmts = std::move(stmts);
  return r;
}

}  // namespace

std::optional<Reconciler::Facts> Reconciler::facts_of(const PodState* st) {
  if (st == nullptr) return std::nullopt;
  return Facts{st->pod_namespace, st->labels, st->ips, st->ports, st->local, st->attached,
               st->eligible};
}

void Reconciler::pods_changed(const std::vector<std::string>& keys) {
  dirty_pods_.insert(keys.begin(), keys.end());
}
void Reconciler::policies_changed(const std::vector<std::string>& keys) {
  dirty_policies_.insert(keys.begin(), keys.end());
}
void Reconciler::namespaces_changed(const std::vector<std::string>& names) {
  dirty_namespaces_.insert(names.begin(), names.end());
}
bool Reconciler::pending() const noexcept {
  return everything_ || extra_dirty_ || !dirty_pods_.empty() || !dirty_policies_.empty() ||
         !dirty_namespaces_.empty();
}

void Reconciler::set_extra(std::vector<nft::Set> sets, std::vector<nft::Chain> chains) {
  if (sets == extra_sets_ && chains == extra_chains_) return;
  extra_sets_ = std::move(sets);
  extra_chains_ = std::move(chains);
  extra_dirty_ = true;
}

Reconciler::Stats Reconciler::stats() const {
  Stats st;
  for (const auto& [name, s] : set_index_) {
    switch (s->kind) {
      case PolicySet::Kind::kAddrs: st.addrs += s->size(); break;
      case PolicySet::Kind::kTuples: st.tuples += s->size(); break;
      case PolicySet::Kind::kPorts: st.ports += s->size(); break;
    }
  }
  for (const auto& m : dispatch_) st.maps += m.elements.size();
  for (const auto& [name, c] : chains_) st.rules += c.rules.size();
  return st;
}

void Reconciler::index_sets() {
  set_index_.clear();
  set_users_.clear();
  for (const auto& [key, out] : outputs_) {
    for (const auto& s : out.sets) {
      set_index_.emplace(s->name, s);
      set_users_[s->name].insert(key);
    }
  }
}

nft::Ruleset Reconciler::whole_table(
    const Compiler& compiler,
    const std::map<std::string, PolicyOutput, std::less<>>& outputs) const {
  nft::Ruleset desired = compiler.assemble(outputs);
  desired.sets.insert(desired.sets.end(), extra_sets_.begin(), extra_sets_.end());
  desired.chains.insert(desired.chains.end(), extra_chains_.begin(), extra_chains_.end());
  desired.sort();
  return desired;
}

std::optional<nft::Ruleset> Reconciler::read_kernel(nl::Socket& sock, nft::SetNames* names) {
  return nft::read_table(sock, nft::TableFamily::kInet, kTableName, names);
}

void Reconciler::check(nl::Socket& sock, const Compiler& compiler,
                       const std::optional<nft::Ruleset>& kernel,
                       const nft::SetNames& names) const {
  std::map<std::string, PolicyOutput, std::less<>> outputs;
  for (const auto& [key, p] : compiler.view().policies) outputs.emplace(key, compiler.policy(p));
  nft::Ruleset desired = whole_table(compiler, outputs);
  outputs.clear();
  nft::check(sock, nft::plan_moving_sets(kernel, desired, &names));
}

MemoStats Reconciler::memo_stats() const {
  MemoStats out = retired_memo_;
  if (compiler_) out += compiler_->memo_stats();
  return out;
}

void Reconciler::drop_compiler() {
  if (compiler_) retired_memo_ += compiler_->memo_stats();
  compiler_.reset();
}

size_t Reconciler::full_sync(nl::Socket& sock, const ClusterView& view) {
  drop_compiler();
  peer_names_.clear();
  auto compiler = std::make_unique<Compiler>(view);
  std::map<std::string, PolicyOutput, std::less<>> outputs;
  for (const auto& [key, p] : view.policies) outputs.emplace(key, compiler->policy(p));
  size_t changes = 0;
  {
    nft::Ruleset desired = whole_table(*compiler, outputs);
    auto current = read_kernel(sock, &set_names_);
    nft::Plan plan = nft::plan_moving_sets(current, desired, &set_names_);
    changes = plan.changes.size();
    if (!plan.empty()) nft::apply(sock, plan);
    set_names_.commit(plan);
    chains_.clear();
    for (auto& c : desired.chains) {
      if (is_namespace_chain(c.name)) chains_.emplace(c.name, std::move(c));
    }
  }
  dispatch_ = compiler->dispatch();
  families_[0] = compiler->family_active(Family::kV4);
  families_[1] = compiler->family_active(Family::kV6);
  outputs_ = std::move(outputs);
  compiler_ = std::move(compiler);
  index_sets();
  dirty_pods_.clear();
  dirty_policies_.clear();
  dirty_namespaces_.clear();
  everything_ = false;
  committed_extra_sets_ = extra_sets_;
  committed_extra_chains_ = extra_chains_;
  extra_dirty_ = false;
  return changes;
}

const std::string& Reconciler::peer_set_name_of(const std::string& key, const NetworkPolicy& p,
                                                bool egress, uint32_t k, Family f) const {
  // A pod event scans every policy whose peers select the pod, and hashing each peers text
  // again was a tenth of the event's CPU time. The names depend on the policy alone.
  auto it = peer_names_.find(key);
  if (it == peer_names_.end() || it->second.size() != 2 * (p.ingress.size() + p.egress.size())) {
    std::vector<std::string> names;
    for (const auto* rules : {&p.ingress, &p.egress}) {
      for (const auto& r : *rules) {
        for (Family fa : {Family::kV4, Family::kV6}) names.push_back(peer_set_name(p, r, fa));
      }
    }
    it = peer_names_.insert_or_assign(key, std::move(names)).first;
  }
  size_t at = 2 * ((egress ? p.ingress.size() : 0) + k) + (f == Family::kV4 ? 0 : 1);
  return it->second.at(at);
}

void Reconciler::affected_by_pod(const ClusterView& view, const std::optional<Facts>& old_facts,
                                 const std::optional<Facts>& new_facts, Affected& out) const {
  auto check = [&](const Facts& f) {
    if (!f.eligible) return;  // an ineligible pod is in no set and dispatched nowhere
    if (f.local) out.dispatch_ips.insert(f.ips.begin(), f.ips.end());
    const Labels& ns_labels = compiler_->namespace_labels(f.ns);
    bool fam[2] = {false, false};
    for (const auto& ip : f.ips) fam[ip.is_v4() ? 0 : 1] = true;
    for (const auto& [key, p] : view.policies) {
      if (f.local && p.namespace_ == f.ns && matches(p.pod_selector, *f.labels)) {
        out.policies.insert(key);  // a target: its target-dependent sets change
        continue;
      }
      if (out.policies.count(key)) continue;
      auto scan = [&](const std::vector<PolicyRule>& rules, bool egress) {
        for (uint32_t k = 0; k < rules.size(); ++k) {
          const PolicyRule& r = rules[k];
          bool named = egress && has_named_port(r) && !f.ports->empty();
          bool selected = r.peers.empty();
          bool in_block = false;  // named ports resolve against the pods an ipBlock holds
          for (const auto& peer : r.peers) {
            if (peer.ip_block) {  // its peer set holds addresses: unaffected by pod changes
              in_block = in_block || (named && holds_any(*peer.ip_block, f.ips));
              continue;
            }
            bool ns_ok = peer.namespace_selector
                             ? matches(*peer.namespace_selector, ns_labels)
                             : p.namespace_ == f.ns;
            if (ns_ok && (!peer.pod_selector || matches(*peer.pod_selector, *f.labels))) {
              selected = true;
              break;
            }
          }
          if (!selected && !in_block) continue;
          if (selected && !r.peers.empty()) {
            for (int i = 0; i < 2; ++i) {
              Family fa = i == 0 ? Family::kV4 : Family::kV6;
              if (fam[i]) out.peer_sets.insert(peer_set_name_of(key, p, egress, k, fa));
            }
          }
          if (named) out.named.insert({key, k});
        }
      };
      if (p.ingress_isolation) scan(p.ingress, false);
      if (p.egress_isolation) scan(p.egress, true);
    }
  };
  if (old_facts) check(*old_facts);
  if (new_facts) check(*new_facts);
}

nft::Chain Reconciler::build_chain(const std::string& ns, bool ingress) const {
  nft::Chain c;
  c.name = ingress ? ingress_chain(ns) : egress_chain(ns);
  c.rules.push_back(rule({nft::match_any(nft::Sel::kCtState, nft::ct::kInvalid), nft::drop()}));
  std::string prefix = str(ns, '/');
  for (auto it = outputs_.lower_bound(prefix);
       it != outputs_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    const auto& rules = ingress ? it->second.ingress : it->second.egress;
    c.rules.insert(c.rules.end(), rules.begin(), rules.end());
  }
  c.rules.push_back(rule({nft::CounterRef{drop_counter(ns)}, nft::drop()}));
  return c;
}

size_t Reconciler::sync(nl::Socket& sock, const ClusterView& view) {
  if (!compiler_ || everything_) return full_sync(sock, view);
  if (!pending()) return 0;

  Affected aff;
  aff.policies.insert(dirty_policies_.begin(), dirty_policies_.end());
  for (const auto& key : dirty_policies_) peer_names_.erase(key);
  std::set<std::string>& policies = aff.policies;
  std::set<std::string> chain_namespaces;  // namespace chains to rebuild
  for (const auto& ns : dirty_namespaces_) {
    compiler_->refresh_namespace(ns);
    for (const auto& [key, p] : view.policies) {
      if (has_namespace_selector(p)) policies.insert(key);
    }
  }
  for (const auto& key : dirty_pods_) {
    auto old_state = compiler_->refresh_pod(key);
    auto old_facts = facts_of(old_state ? &*old_state : nullptr);
    auto new_facts = facts_of(compiler_->state(key));
    if (old_facts == new_facts) continue;
    affected_by_pod(view, old_facts, new_facts, aff);
    // Other pods showing one of its addresses: whether they hold it, and whether every holder
    // is a member of a set, can change with this pod (compile.hpp), so what they are targets
    // or peers of is affected too. Usually there are none.
    const PodState* self = compiler_->state(key);
    for (const auto* facts : {&old_facts, &new_facts}) {
      if (!*facts) continue;
      for (const auto& ip : (*facts)->ips) {
        for (const PodState* other : compiler_->claimants(ip)) {
          if (other == self) continue;
          auto f = facts_of(other);
          affected_by_pod(view, f, std::nullopt, aff);
        }
      }
    }
  }
  // A family appearing or disappearing on this node adds or removes rules: start over.
  if (compiler_->family_active(Family::kV4) != families_[0] ||
      compiler_->family_active(Family::kV6) != families_[1]) {
    return full_sync(sock, view);
  }

  nft::Ruleset current, desired;
  current.table = desired.table = {nft::TableFamily::kInet, std::string(kTableName)};
  std::map<std::string, std::optional<PolicyOutput>> updates;
  std::set<std::string> touched_sets;
  for (const auto& key : policies) {
    auto old_it = outputs_.find(key);
    auto p = view.policies.find(key);
    std::optional<PolicyOutput> neu;
    if (p != view.policies.end()) neu = compiler_->policy(p->second);
    const PolicyOutput* old = old_it == outputs_.end() ? nullptr : &old_it->second;
    if ((old && neu && *old == *neu) || (!old && !neu)) continue;
    std::string ns = key.substr(0, key.find('/'));
    if (!old || !neu || old->ingress != neu->ingress || old->egress != neu->egress) {
      chain_namespaces.insert(ns);
    }
    if (old)
      for (const auto& s : old->sets) touched_sets.insert(s->name);
    if (neu)
      for (const auto& s : neu->sets) touched_sets.insert(s->name);
    auto has_rules = [](const PolicyOutput* o) {
      return o != nullptr && (!o->ingress.empty() || !o->egress.empty());
    };
    std::string counter = allow_counter(ns, std::string_view(key).substr(ns.size() + 1));
    if (has_rules(old)) current.counters.push_back({counter});
    if (has_rules(neu ? &*neu : nullptr)) desired.counters.push_back({counter});
    updates[key] = std::move(neu);
  }
  // Single sets: recompute each once; it is swapped into every policy that holds it below, in
  // place (a set of every pod has hundreds of users; copying their outputs would cost more than
  // the change). Policies recompiled whole above already have the new content.
  std::map<std::string, std::shared_ptr<const PolicySet>> swaps;
  auto replace_set = [&](const std::shared_ptr<const PolicySet>& fresh) {
    auto users = set_users_.find(fresh->name);
    if (users == set_users_.end()) return;
    auto cur = set_index_.find(fresh->name);
    if (cur != set_index_.end() && (cur->second == fresh || *cur->second == *fresh)) return;
    touched_sets.insert(fresh->name);
    swaps[fresh->name] = fresh;
  };
  for (const auto& name : aff.peer_sets) {
    auto users = set_users_.find(name);
    auto cur = set_index_.find(name);
    if (users == set_users_.end() || cur == set_index_.end()) continue;
    // Recompute through a user whose rules (as in the view) still name the set: the set's own
    // rule number may be another user's. Users recompiled whole above need nothing here.
    const Family fam = cur->second->family;
    std::shared_ptr<const PolicySet> fresh;
    for (const auto& holder : users->second) {
      if (policies.count(holder)) continue;
      auto p = view.policies.find(holder);
      if (p == view.policies.end()) continue;
      for (bool egress : {false, true}) {
        const auto& rules = egress ? p->second.egress : p->second.ingress;
        for (uint32_t k = 0; k < rules.size() && !fresh; ++k) {
          if (!rules[k].peers.empty() && peer_set_name(p->second, rules[k], fam) == name) {
            fresh = compiler_->peer_set(p->second, egress, k, fam);
          }
        }
      }
      if (fresh) break;
    }
    if (fresh) replace_set(fresh);
  }
  for (const auto& [key, k] : aff.named) {
    if (policies.count(key)) continue;
    auto p = view.policies.find(key);
    if (p == view.policies.end()) continue;
    for (int i = 0; i < 2; ++i) {
      if (families_[i]) replace_set(compiler_->named_set(p->second, k, i == 0 ? Family::kV4 : Family::kV6));
    }
  }
  // Apply the outputs now (build_chain and the index read them); undone if the commit fails.
  std::map<std::string, std::optional<PolicyOutput>> previous;
  for (auto& [key, neu] : updates) {
    auto it = outputs_.find(key);
    previous[key] = it == outputs_.end() ? std::nullopt : std::optional(it->second);
    if (neu) {
      outputs_[key] = std::move(*neu);
    } else if (it != outputs_.end()) {
      outputs_.erase(it);
    }
  }
  // A set's old content is what the index held; its new content is whatever any policy now
  // holds (a shared peer set lives on while one policy still names it). Only sets whose
  // content differs go into the partial tables, where nft::plan diffs their elements.
  std::map<std::string, std::shared_ptr<const PolicySet>> old_sets;
  for (const auto& name : touched_sets) {
    if (auto o = set_index_.find(name); o != set_index_.end()) old_sets.emplace(name, o->second);
  }
  for (const auto& [key, old] : previous) {  // the index follows the changed policies only
    if (old) {
      for (const auto& set : old->sets) {
        auto u = set_users_.find(set->name);
        if (u == set_users_.end()) continue;
        u->second.erase(key);
        if (u->second.empty()) {
          set_users_.erase(u);
          set_index_.erase(set->name);
        }
      }
    }
    if (auto it = outputs_.find(key); it != outputs_.end()) {
      for (const auto& set : it->second.sets) {
        set_users_[set->name].insert(key);
        set_index_[set->name] = set;
      }
    }
  }
  // (policy, set slot, old content): undone if the commit fails.
  std::vector<std::tuple<std::string, size_t, std::shared_ptr<const PolicySet>>> swapped;
  for (const auto& [name, fresh] : swaps) {
    auto users = set_users_.find(name);
    if (users == set_users_.end()) continue;
    for (const auto& key : users->second) {
      auto it = outputs_.find(key);
      if (it == outputs_.end()) continue;
      auto& sets = it->second.sets;
      for (size_t i = 0; i < sets.size(); ++i) {
        if (sets[i]->name != name || sets[i] == fresh) continue;
        swapped.emplace_back(key, i, sets[i]);
        sets[i] = fresh;
      }
    }
    set_index_[name] = fresh;
  }
  for (const auto& name : touched_sets) {
    auto o = old_sets.find(name);
    auto n = set_index_.find(name);
    const PolicySet* os = o == old_sets.end() ? nullptr : o->second.get();
    const PolicySet* ns = n == set_index_.end() ? nullptr : n->second.get();
    if (os && ns && (os == ns || *os == *ns)) continue;
    if (os && ns) {
      // Same set on both sides: hand nft::plan only the elements that differ (a set of every
      // pod changes by one element when one pod comes or goes).
      auto [gone, added] = element_difference(*os, *ns);
      current.sets.push_back(to_nft(gone));
      desired.sets.push_back(to_nft(added));
      continue;
    }
    if (os) current.sets.push_back(to_nft(*os));
    if (ns) desired.sets.push_back(to_nft(*ns));
  }
  std::map<std::string, std::optional<nft::Chain>> new_chains;
  for (const auto& ns : chain_namespaces) {
    bool any = false;
    std::string prefix = str(ns, '/');
    auto it = outputs_.lower_bound(prefix);
    any = it != outputs_.end() && it->first.compare(0, prefix.size(), prefix) == 0;
    if (chains_.count(ingress_chain(ns))) current.counters.push_back({drop_counter(ns)});
    if (any) desired.counters.push_back({drop_counter(ns)});
    for (bool ingress : {true, false}) {
      std::string name = ingress ? ingress_chain(ns) : egress_chain(ns);
      if (auto old = chains_.find(name); old != chains_.end()) current.chains.push_back(old->second);
      if (any) {
        new_chains[name] = build_chain(ns, ingress);
        desired.chains.push_back(*new_chains[name]);
      } else {
        new_chains[name] = std::nullopt;
      }
    }
  }
  // Which local pods a policy isolates, and in which direction (its podSelector and
  // policyTypes), shows in the dispatch maps alone: a deny-all policy compiles to no rules or
  // sets, and a policy with rules changes only its targets set. So a policy change, or a
  // rebuilt chain (it may be new), recomputes the maps whole (a few hundred local addresses);
  // a pod event re-decides only its addresses.
  std::optional<std::vector<nft::Set>> new_dispatch;
  std::vector<DispatchEdit> dispatch_edits;
  if (!dirty_policies_.empty() || !chain_namespaces.empty()) {
    new_dispatch = compiler_->dispatch();
    if (*new_dispatch != dispatch_) {
      current.sets.insert(current.sets.end(), dispatch_.begin(), dispatch_.end());
      desired.sets.insert(desired.sets.end(), new_dispatch->begin(), new_dispatch->end());
    }
  } else if (!aff.dispatch_ips.empty()) {
    dispatch_edits = dispatch_changes(aff.dispatch_ips, current, desired);
  }
  if (extra_dirty_) {
    current.sets.insert(current.sets.end(), committed_extra_sets_.begin(),
                        committed_extra_sets_.end());
    current.chains.insert(current.chains.end(), committed_extra_chains_.begin(),
                          committed_extra_chains_.end());
    desired.sets.insert(desired.sets.end(), extra_sets_.begin(), extra_sets_.end());
    desired.chains.insert(desired.chains.end(), extra_chains_.begin(), extra_chains_.end());
  }
  current.sort();
  desired.sort();
  nft::Plan plan = nft::plan(current, desired, &set_names_);
  try {
    if (!plan.empty()) nft::apply(sock, plan);
  } catch (...) {
    for (auto it = swapped.rbegin(); it != swapped.rend(); ++it) {
      auto& [key, i, old] = *it;
      outputs_.at(key).sets.at(i) = std::move(old);
    }
    for (auto& [key, old] : previous) {
      if (old) {
        outputs_[key] = std::move(*old);
      } else {
        outputs_.erase(key);
      }
    }
    index_sets();
    drop_compiler();  // indexes and facts moved ahead of the kernel: start over next time
    throw;
  }
  for (auto& [name, c] : new_chains) {
    if (c) {
      chains_[name] = std::move(*c);
    } else {
      chains_.erase(name);
    }
  }
  set_names_.commit(plan);
  if (new_dispatch) dispatch_ = std::move(*new_dispatch);
  apply_dispatch_edits(dispatch_edits);
  if (extra_dirty_) {
    committed_extra_sets_ = extra_sets_;
    committed_extra_chains_ = extra_chains_;
    extra_dirty_ = false;
  }
  dirty_pods_.clear();
  dirty_policies_.clear();
  dirty_namespaces_.clear();
  return plan.changes.size();
}

namespace {

/// The element of `v` (sorted by key) with key `k`, or where it would go.
template <class V>
auto find_element(V& v, const nft::Key& k) {
  return std::lower_bound(v.begin(), v.end(), k,
                          [](const nft::Element& e, const nft::Key& key) { return e.key < key; });
}

}  // namespace

std::vector<Reconciler::DispatchEdit> Reconciler::dispatch_changes(const std::set<IpAddr>& ips,
                                                                   nft::Ruleset& current,
                                                                   nft::Ruleset& desired) const {
  std::vector<DispatchEdit> edits;
  std::vector<nft::Set> olds = dispatch_maps(), news = dispatch_maps();
  bool touched[4] = {false, false, false, false};
  for (const auto& ip : ips) {
    auto fresh = compiler_->dispatch_of(ip);
    nft::Key key = nft::element({ip}).key;
    for (int d = 0; d < 2; ++d) {
      size_t m = dispatch_map_index(d == 0, ip);
      const auto& committed = dispatch_.at(m).elements;
      auto it = find_element(committed, key);
      const nft::Element* old = it != committed.end() && it->key == key ? &*it : nullptr;
      if (old == nullptr ? !fresh[d] : fresh[d] && *old == *fresh[d]) continue;
      touched[m] = true;
      if (old != nullptr) olds[m].elements.push_back(*old);
      if (fresh[d]) news[m].elements.push_back(*fresh[d]);
      edits.push_back({m, key, std::move(fresh[d])});
    }
  }
  for (size_t m = 0; m < 4; ++m) {
    if (!touched[m]) continue;  // both sides name the map: nft::plan diffs its elements
    current.sets.push_back(std::move(olds[m]));
    desired.sets.push_back(std::move(news[m]));
  }
  return edits;
}

void Reconciler::apply_dispatch_edits(std::vector<DispatchEdit>& edits) {
  for (auto& e : edits) {
    auto& v = dispatch_.at(e.map).elements;
    auto it = find_element(v, e.key);
    bool found = it != v.end() && it->key == e.key;
    if (e.element && found) {
      *it = std::move(*e.element);
    } else if (e.element) {
      v.insert(it, std::move(*e.element));
    } else if (found) {
      v.erase(it);
    }
  }
  edits.clear();
}

const PolicySet* Reconciler::policy_set(std::string_view name) const {
  auto it = set_index_.find(name);
  return it == set_index_.end() ? nullptr : it->second.get();
}

const nft::Set* Reconciler::dispatch_map(std::string_view name) const {
  for (const auto& m : dispatch_)
    if (m.name == name) return &m;
  return nullptr;
}

const nft::Chain* Reconciler::chain(std::string_view name) const {
  auto it = chains_.find(name);
  return it == chains_.end() ? nullptr : &it->second;
}

nft::Ruleset Reconciler::applied() const {
  if (!compiler_) return {};
  nft::Ruleset rs = compiler_->assemble(outputs_);
  rs.sets.insert(rs.sets.end(), committed_extra_sets_.begin(), committed_extra_sets_.end());
  rs.chains.insert(rs.chains.end(), committed_extra_chains_.begin(),
                   committed_extra_chains_.end());
  rs.sort();
  return rs;
}

}  // namespace knit::watcher
