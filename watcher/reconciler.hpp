// watcher/reconciler.hpp: keeping the kernel equal to the compiled view, incrementally.
//
// The reconciler remembers what it committed, per policy (compact sets and rules), plus the
// dispatch maps and namespace chains. Sources report what changed (pods, policies, namespaces);
// sync() recompiles only the policies those changes can affect (a pod affects the policies
// that select it as a target or as a peer, old labels or new), diffs just those objects
// against what it committed, and commits the difference as one transaction: set element adds
// and deletes for membership, a chain refill only when a policy's rules changed. full_sync()
// starts over from what the kernel holds; the agent uses it at start and after a failure.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/netlink.hpp"
#include "nft/nft_types.hpp"
#include "nft/plan.hpp"
#include "watcher/compile.hpp"

namespace knit::watcher {

class Reconciler {
 public:
  /// Reads the table the kernel holds, compiles the whole view and commits the difference (no
  /// flush: elements the kernel already has stay). Returns the number of changes committed.
  /// Throws Error; the reconciler is then not synced.
  size_t full_sync(nl::Socket& sock, const ClusterView& view);

  /// Report changes made to the view (keys as in ClusterView) since the last sync.
  void pods_changed(const std::vector<std::string>& keys);
  void policies_changed(const std::vector<std::string>& keys);
  void namespaces_changed(const std::vector<std::string>& names);
  /// Something changed that is not tracked per object: the next sync compiles everything.
  void everything_changed() { everything_ = true; }
  bool pending() const noexcept;

  /// Commits what changed since the last sync as one transaction; returns the number of
  /// changes (0: nothing to do). Needs a prior full_sync with the same view. Throws Error; the
  /// caller should then full_sync.
  size_t sync(nl::Socket& sock, const ClusterView& view);

  bool synced() const noexcept { return compiler_ != nullptr; }
  /// The kernel names of the table's sets as of the last commit.
  const nft::SetNames& set_names() const noexcept { return set_names_; }

  /// What the kernel holds of knit's table (nullopt: no table), under the model's set names;
  /// `names` receives the sets' kernel names (nft::SetNames). Throws Error(kNetlink).
  static std::optional<nft::Ruleset> read_kernel(nl::Socket& sock, nft::SetNames* names = nullptr);

  /// Whether the kernel would take the whole of `compiler`'s view on top of `kernel` (from
  /// read_kernel, with its `names`): compiles every policy, plans, and sends the plan as a
  /// check (nft::check), which changes nothing. Throws what full_sync would. For finding what
  /// a refused commit was about: one compiler and one read serve many checks of the view with
  /// its policies edited in place (the compiler indexes pods and namespaces, not policies).
  void check(nl::Socket& sock, const Compiler& compiler, const std::optional<nft::Ruleset>& kernel,
             const nft::SetNames& names) const;

  /// Objects of knit's table that are not NetworkPolicy (the masquerade sets and chain,
  /// watcher/nat.hpp): committed with the next sync, element-level like the policy sets.
  void set_extra(std::vector<nft::Set> sets, std::vector<nft::Chain> chains);

  /// Sizes of the committed table, for /metrics.
  struct Stats {
    size_t addrs = 0, tuples = 0, ports = 0;  ///< elements of the policy sets, by kind
    size_t maps = 0;                          ///< elements of the dispatch maps
    size_t rules = 0;                         ///< rules of the namespace chains
  };
  Stats stats() const;

  /// How the compilers this reconciler used (a new one per full sync) kept peer sets up to date.
  MemoStats memo_stats() const;

  /// The committed state, for evaluating flows (watcher/evaluate.hpp).
  const PolicySet* policy_set(std::string_view name) const;
  const nft::Set* dispatch_map(std::string_view name) const;
  const nft::Chain* chain(std::string_view name) const;
  /// The whole committed table (builds it: for tests and small views).
  nft::Ruleset applied() const;

 private:
  /// What decides which policies a pod can affect, before and after a change (the compiler
  /// hands back the state a refresh replaced). Labels and ports are the pod's own interned
  /// values (watcher/intern.hpp): a pointer copy, and equal means the same pointer.
  struct Facts {
    std::string ns;
    Shared<Labels> labels;
    std::vector<IpAddr> ips;
    Shared<std::vector<ContainerPort>> ports;
    bool local = false;
    /// The CNI plugin reported it: of two local pods showing one address, the dispatch maps
    /// send it to the attached one's chains (Compiler::dispatch).
    bool attached = false;
    bool eligible = false;
    friend bool operator==(const Facts&, const Facts&) = default;
  };
  static std::optional<Facts> facts_of(const PodState* st);
  /// What a pod change can affect: whole policies (it is, or was, one of their local targets),
  /// shared peer sets and named-port sets (it is, or was, one of their peers), and the
  /// dispatch maps (it is local).
  struct Affected {
    std::set<std::string> policies;
    std::set<std::string> peer_sets;                       // set names
    std::set<std::pair<std::string, uint32_t>> named;      // (policy key, egress rule)
    std::set<IpAddr> dispatch_ips;  ///< addresses of local pods: their dispatch elements
  };
  /// A dispatch map element replaced, added or removed (no `element`), once committed.
  struct DispatchEdit {
    size_t map = 0;  ///< index in dispatch_
    nft::Key key;
    std::optional<nft::Element> element;
  };
  /// The dispatch elements of `ips` that changed: the old ones into `current`, the new ones into
  /// `desired` (partial maps, for nft::plan's element diff), and the edits to make to dispatch_
  /// once committed.
  std::vector<DispatchEdit> dispatch_changes(const std::set<IpAddr>& ips, nft::Ruleset& current,
                                             nft::Ruleset& desired) const;
  void apply_dispatch_edits(std::vector<DispatchEdit>& edits);
  /// The name of policy `key`'s shared peer set of rule `k` (egress or ingress) in family `f`
  /// (peer_set_name), remembered per policy until the policy changes.
  const std::string& peer_set_name_of(const std::string& key, const NetworkPolicy& p, bool egress,
                                      uint32_t k, Family f) const;
  void affected_by_pod(const ClusterView& view, const std::optional<Facts>& old_facts,
                       const std::optional<Facts>& new_facts, Affected& out) const;
  nft::Chain build_chain(const std::string& ns, bool ingress) const;
  /// The desired table: the policies' outputs assembled, with the extra sets and chains.
  nft::Ruleset whole_table(const Compiler& compiler,
                           const std::map<std::string, PolicyOutput, std::less<>>& outputs) const;
  void index_sets();
  /// Drops the compiler; its memo counts go to retired_memo_.
  void drop_compiler();

  std::unique_ptr<Compiler> compiler_;
  MemoStats retired_memo_;
  std::map<std::string, PolicyOutput, std::less<>> outputs_;
  std::vector<nft::Set> dispatch_;
  std::map<std::string, nft::Chain, std::less<>> chains_;  // namespace chains only
  /// Every committed policy set by name (shared peer sets once).
  std::map<std::string, std::shared_ptr<const PolicySet>, std::less<>> set_index_;
  /// Policies holding each set (a shared peer set has several).
  std::map<std::string, std::set<std::string>, std::less<>> set_users_;
  bool families_[2] = {false, false};
  /// peer_set_name_of's names by policy key: ingress rules then egress rules, v4 and v6 each.
  /// Hashed: a pod event looks up every policy whose peers select the pod.
  mutable std::unordered_map<std::string, std::vector<std::string>> peer_names_;
  std::set<std::string, std::less<>> dirty_pods_, dirty_policies_, dirty_namespaces_;
  bool everything_ = false;
  std::vector<nft::Set> extra_sets_, committed_extra_sets_;
  std::vector<nft::Chain> extra_chains_, committed_extra_chains_;
  bool extra_dirty_ = false;
  /// The kernel names of the table's sets (short, see nft::SetNames): read with the table in
  /// full_sync, kept up to date with every commit.
  nft::SetNames set_names_;
};

}  // namespace knit::watcher
