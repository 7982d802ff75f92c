#include "watcher/reconciler.hpp"

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

nft::Rule rule(std::vector<nft::Stmt> stmts) {
  nft::Rule r;
  r.stmts = std::move(stmts);
  return r;
}

}  // namespace

std::optional<Reconciler::Facts> Reconciler::facts_of(const PodState* st) {
  if (st == nullptr) return std::nullopt;
  return Facts{st->pod_namespace, st->pod->labels, st->ips, st->pod->ports, st->local,
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
  return everything_ || !dirty_pods_.empty() || !dirty_policies_.empty() ||
         !dirty_namespaces_.empty();
}

void Reconciler::index_sets() {
  set_index_.clear();
  for (const auto& [key, out] : outputs_) {
    for (const auto& s : out.sets) set_index_[s.name] = &s;
  }
}

size_t Reconciler::full_sync(nl::Socket& sock, const ClusterView& view) {
  compiler_.reset();
  auto compiler = std::make_unique<Compiler>(view);
  std::map<std::string, PolicyOutput, std::less<>> outputs;
  for (const auto& [key, p] : view.policies) outputs.emplace(key, compiler->policy(p));
  size_t changes = 0;
  {
    nft::Ruleset desired = compiler->assemble(outputs);
    auto current = nft::read_table(sock, nft::TableFamily::kInet, kTableName);
    nft::Plan plan = nft::plan(current, desired);
    changes = plan.changes.size();
    if (!plan.empty()) nft::apply(sock, plan);
    chains_.clear();
    for (auto& c : desired.chains) {
      if (is_namespace_chain(c.name)) chains_.emplace(c.name, std::move(c));
    }
  }
  dispatch_ = compiler->dispatch();
  outputs_ = std::move(outputs);
  facts_.clear();
  for (const auto& [key, pod] : view.pods) facts_.emplace(key, facts_of(compiler->state(key)));
  compiler_ = std::move(compiler);
  index_sets();
  dirty_pods_.clear();
  dirty_policies_.clear();
  dirty_namespaces_.clear();
  everything_ = false;
  return changes;
}

void Reconciler::affected_by_pod(const ClusterView& view, const std::optional<Facts>& old_facts,
                                 const std::optional<Facts>& new_facts,
                                 std::set<std::string>& policies,
                                 std::set<std::string>& namespaces) const {
  auto check = [&](const Facts& f) {
    if (!f.eligible) return;  // an ineligible pod is in no set and dispatched nowhere
    if (f.local) namespaces.insert(f.ns);
    for (const auto& [key, p] : view.policies) {
      if (policies.count(key)) continue;
      bool hit = f.local && p.namespace_ == f.ns && matches(p.pod_selector, f.labels);
      auto scan = [&](const std::vector<PolicyRule>& rules, bool egress) {
        for (const auto& r : rules) {
          if (hit) return;
          if (r.peers.empty()) {
            // "to everywhere" with a named port resolves against every pod with ports.
            if (egress && !f.ports.empty() && has_named_port(r)) hit = true;
            continue;
          }
          for (const auto& peer : r.peers) {
            if (peer.ip_block) continue;  // addresses, not pods: unaffected by pod changes
            bool ns_ok = peer.namespace_selector
                             ? matches(*peer.namespace_selector, compiler_->namespace_labels(f.ns))
                             : p.namespace_ == f.ns;
            if (ns_ok && (!peer.pod_selector || matches(*peer.pod_selector, f.labels))) {
              hit = true;
              return;
            }
          }
        }
      };
      if (!hit && p.ingress_isolation) scan(p.ingress, false);
      if (!hit && p.egress_isolation) scan(p.egress, true);
      if (hit) policies.insert(key);
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
  c.rules.push_back(rule({nft::drop()}));
  return c;
}

size_t Reconciler::sync(nl::Socket& sock, const ClusterView& view) {
  if (!compiler_ || everything_) return full_sync(sock, view);
  if (!pending()) return 0;

  std::set<std::string> policies(dirty_policies_.begin(), dirty_policies_.end());
  std::set<std::string> chain_namespaces;  // namespace chains to rebuild
  std::set<std::string> dispatch_namespaces;
  for (const auto& ns : dirty_namespaces_) {
    compiler_->refresh_namespace(ns);
    for (const auto& [key, p] : view.policies) {
      if (has_namespace_selector(p)) policies.insert(key);
    }
  }
  for (const auto& key : dirty_pods_) {
    std::optional<Facts> old_facts;
    if (auto it = facts_.find(key); it != facts_.end()) old_facts = it->second;
    compiler_->refresh_pod(key);
    auto new_facts = facts_of(compiler_->state(key));
    if (old_facts == new_facts) continue;
    affected_by_pod(view, old_facts, new_facts, policies, dispatch_namespaces);
    if (new_facts) {
      facts_[key] = std::move(new_facts);
    } else {
      facts_.erase(key);
    }
  }

  nft::Ruleset current, desired;
  current.table = desired.table = {nft::TableFamily::kInet, std::string(kTableName)};
  std::map<std::string, std::optional<PolicyOutput>> updates;
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
      dispatch_namespaces.insert(ns);
    }
    // Only the sets that differ go into the partial tables: nft::plan then diffs their elements.
    std::map<std::string_view, const PolicySet*> old_sets, new_sets;
    if (old)
      for (const auto& s : old->sets) old_sets[s.name] = &s;
    if (neu)
      for (const auto& s : neu->sets) new_sets[s.name] = &s;
    for (auto [name, s] : old_sets) {
      auto n = new_sets.find(name);
      if (n == new_sets.end() || !(*n->second == *s)) current.sets.push_back(to_nft(*s));
    }
    for (auto [name, s] : new_sets) {
      auto o = old_sets.find(name);
      if (o == old_sets.end() || !(*o->second == *s)) desired.sets.push_back(to_nft(*s));
    }
    updates[key] = std::move(neu);
  }
  // Apply the outputs now (build_chain reads them); undone below if the commit fails.
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
  std::map<std::string, std::optional<nft::Chain>> new_chains;
  for (const auto& ns : chain_namespaces) {
    bool any = false;
    std::string prefix = str(ns, '/');
    auto it = outputs_.lower_bound(prefix);
    any = it != outputs_.end() && it->first.compare(0, prefix.size(), prefix) == 0;
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
  std::vector<nft::Set> new_dispatch = dispatch_;
  if (!dispatch_namespaces.empty() || !chain_namespaces.empty()) {
    new_dispatch = compiler_->dispatch();
    if (new_dispatch != dispatch_) {
      current.sets.insert(current.sets.end(), dispatch_.begin(), dispatch_.end());
      desired.sets.insert(desired.sets.end(), new_dispatch.begin(), new_dispatch.end());
    }
  }
  current.sort();
  desired.sort();
  nft::Plan plan = nft::plan(current, desired);
  try {
    if (!plan.empty()) nft::apply(sock, plan);
  } catch (...) {
    for (auto& [key, old] : previous) {
      if (old) {
        outputs_[key] = std::move(*old);
      } else {
        outputs_.erase(key);
      }
    }
    compiler_.reset();  // indexes and facts moved ahead of the kernel: start over next time
    throw;
  }
  for (auto& [name, c] : new_chains) {
    if (c) {
      chains_[name] = std::move(*c);
    } else {
      chains_.erase(name);
    }
  }
  dispatch_ = std::move(new_dispatch);
  if (!updates.empty()) index_sets();
  dirty_pods_.clear();
  dirty_policies_.clear();
  dirty_namespaces_.clear();
  return plan.changes.size();
}

const PolicySet* Reconciler::policy_set(std::string_view name) const {
  auto it = set_index_.find(name);
  return it == set_index_.end() ? nullptr : it->second;
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
  return compiler_->assemble(outputs_);
}

}  // namespace knit::watcher
