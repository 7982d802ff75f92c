// watcher/compile.hpp: NetworkPolicy v1 → one nftables table (pure).
//
// Shape of the table (`inet knit`), static except for set and map elements:
//
//   chain postrouting  filter hook postrouting priority srcnat-5 (95), policy accept
//     ct mark & 0x40000000 == 0x40000000 drop  connections a change revoked (conntrack.hpp)
//     ct state established,related accept
//     icmpv6 type @nd accept                  neighbour discovery always works
//     fib saddr type local accept             the node (kubelet probes, hostNetwork pods)
//     ip saddr vmap @egress4  / ip6 saddr vmap @egress6    egress of local isolated pods
//     ip daddr vmap @ingress4 / ip6 daddr vmap @ingress6   ingress of local isolated pods
//   chain input        filter hook input priority 101, policy accept
//     revoked drop; ct state established,related accept; icmpv6 type @nd accept
//     ip saddr vmap @egress4  / ip6 saddr vmap @egress6    pod -> node is egress too
//   chain ingress/<ns>, egress/<ns>        one per namespace with policies
//     ct state invalid drop
//     one rule per (policy, rule, family), e.g.
//       ip daddr @x/web/pods4 meta l4proto . th dport @ports/<hash>/4 ip saddr @peers/<hash>/4
//         counter name "allow/x/web" accept
//     (numeric ports: a ports set shared by content; named ports: a per-rule
//     `ip daddr . meta l4proto . th dport` set resolved against each target pod)
//     (these are the model's set names; the kernel gets short ones, `_1f`, with the model's
//     name as the set's comment: nft::SetNames)
//     (egress rules `return` to the base chain, so the destination's ingress is checked next)
//     drop
//
// The dispatch maps hold only local pods that some policy isolates, keyed by address, so a pod
// no policy selects costs one failed map lookup per new connection, and an isolated pod's
// packets only meet its own namespace's rules. Everything that changes with pods (who is
// isolated, targets, peers, ports resolved per pod) lives in set and map elements: pod churn and
// label changes never touch a rule. Rules change only when policies (or namespaces holding
// policies) change.
//
// Why postrouting at srcnat-5 and input at 101: postrouting sees every packet leaving towards a
// pod or from a pod, forwarded or locally generated, after DNAT (so Service traffic is judged by
// the backend pod's address, with kube-proxy in iptables, nftables or IPVS mode, where IPVS
// packets never traverse forward) and before SNAT/masquerade (so the source is still the pod).
// Input runs after IPVS's local-in hooks (98, 99) so only traffic really for the node is judged.
//
// One address, several pods. A reused address can show on two pods at once: the old pod's
// object still lists it (terminating, or its delete not seen yet) while the CNI plugin has
// handed it to a new pod, or two attachments report it (a DEL reports its detach after it
// released the address, so a concurrent ADD can report first). The kernel judges addresses,
// not pods, so the compiler decides per address who holds it: when the CNI plugin reported it
// on this node, the attached pods alone (an unattached pod's status is stale: this node's IPAM
// gave the address away); else every eligible pod showing it. One holder: the address is that
// pod's in every set and map. Several: it is in a set (targets, peers, named ports) only when
// every holder would put it there, and isolated in a direction when any holder is; so traffic
// of the address is never allowed more than every holder's policies allow. The agent narrows
// API claims to the newest (watcher/claims.hpp), so several holders last only for moments.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "nft/nft_types.hpp"
#include "watcher/intervals.hpp"
#include "watcher/view.hpp"

namespace knit::watcher {

inline constexpr std::string_view kTableName = "knit";
/// Priority of the postrouting chain: srcnat - 5.
inline constexpr int32_t kPostroutingPriority = 95;
/// Priority of the input chain: after IPVS local-in (NF_IP_PRI_NAT_SRC - 2, - 1).
inline constexpr int32_t kInputPriority = 101;

/// A port range of one protocol: an element of an `inet_proto . inet_service` set.
struct ProtoPorts {
  uint8_t proto = 6;
  PortRange ports;
  friend auto operator<=>(const ProtoPorts&, const ProtoPorts&) = default;
  friend bool operator==(const ProtoPorts&, const ProtoPorts&) = default;
};

/// One of a policy's sets, compactly: disjoint sorted address ranges, `addr . proto . port`
/// tuples, or `proto . port` ranges. A few dozen bytes per element instead of an nft::Element,
/// which matters at 10k pods; to_nft() builds the kernel's form when a change needs it.
struct PolicySet {
  enum class Kind : uint8_t {
    kAddrs,   ///< addresses (interval, or a plain hash set for the pods sets)
    kTuples,  ///< addr . inet_proto . inet_service (interval)
    kPorts,   ///< inet_proto . inet_service (interval)
  };
  /// Where a set comes from, so that a change can recompute just this set.
  enum class Origin : uint8_t {
    kTargets,  ///< the policy's local target pods (pods sets, ingress ports sets)
    kPeers,    ///< a rule's peers (shared between policies with the same peers)
    kNamed,    ///< an egress rule's named ports resolved against its peer pods
    kStatic,   ///< depends on the policy alone (egress numeric ports)
  };
  std::string name;
  Family family = Family::kV4;
  Kind kind = Kind::kAddrs;
  Origin origin = Origin::kStatic;
  bool egress = false;  ///< the rule the set belongs to (kPeers, kNamed)
  uint32_t rule = 0;
  bool interval = true;  ///< kAddrs only: false for pods-only sets (targets, peers without ipBlock)
  std::vector<AddrRange> addrs;  ///< kAddrs with interval
  /// kAddrs without interval: addresses alone, half the size of [a, a] ranges (most of a large
  /// cluster's elements are here: 54k in policy_bench).
  std::vector<IpAddr> hosts;
  std::vector<Tuple> tuples;
  std::vector<ProtoPorts> ports;
  size_t size() const noexcept {
    return addrs.size() + hosts.size() + tuples.size() + ports.size();
  }
  /// This set without its elements (a peer set of every pod has 10k: not copied to be
  /// cleared). Lists every field: a new one left out here is a -Wmissing-field-initializers
  /// error.
  PolicySet without_elements() const {
    return {name, family, kind, origin, egress, rule, interval, {}, {}, {}, {}};
  }
  friend bool operator==(const PolicySet&, const PolicySet&) = default;
};

/// The kernel form of a policy set.
nft::Set to_nft(const PolicySet& s);

/// What one policy contributes: its sets and its rules for the namespace chains. Peer sets are
/// shared between policies whose rules name the same peers (same selectors, same ipBlocks, and
/// the same namespace where a peer depends on it): 250 policies allowing DNS from every pod hold
/// one set of every pod, not 250 copies.
struct PolicyOutput {
  std::vector<std::shared_ptr<const PolicySet>> sets;
  std::vector<nft::Rule> ingress;
  std::vector<nft::Rule> egress;
  friend bool operator==(const PolicyOutput& a, const PolicyOutput& b);
};

/// A memoised shared peer set and the journal position it reflects (compile.cpp).
struct MemoEntry {
  std::shared_ptr<const PolicySet> set;
  std::string peers;  ///< the peers' canonical text (the set's name is only its hash)
  uint64_t seen = 0;
};

/// Addresses of pod refreshes remembered for bringing memoised peer sets up to date; at this
/// length the journal and every memo are dropped, and sets are recomputed when next asked for.
inline constexpr size_t kMaxJournal = size_t{1} << 16;
/// Addresses re-decided one by one before a peer set is rather recomputed whole.
inline constexpr size_t kMaxCatchUp = 2048;

/// How the memoised peer sets were kept up to date: which of the compiler's paths ran, counted
/// since it was made (their results must not differ, so only a count tells them apart).
struct MemoStats {
  uint64_t caught_up = 0;   ///< brought up to date by re-deciding journaled addresses
  uint64_t recomputed = 0;  ///< recomputed whole: more than kMaxCatchUp addresses to re-decide
  uint64_t trimmed = 0;     ///< every memo dropped: the journal reached kMaxJournal
  uint64_t forgotten = 0;   ///< every memo dropped: a namespace changed
  MemoStats& operator+=(const MemoStats& o) noexcept {
    caught_up += o.caught_up, recomputed += o.recomputed;
    trimmed += o.trimmed, forgotten += o.forgotten;
    return *this;
  }
};

/// The compiler with its indexes over a view, kept up to date one pod at a time so that an
/// event costs work proportional to what it touches, not to the cluster.
///
/// The view must outlive the compiler, and its maps must be updated in place (std::map nodes
/// stay put): after changing, adding or erasing pods call refresh_pod() for each, after
/// namespace changes refresh_namespace().
class Compiler {
 public:
  explicit Compiler(const ClusterView& view);

  /// Re-reads the pod `key` (changed, added or erased) from the view. Returns the state it
  /// replaced (none for a new pod), with `pod` cleared: the pod may be gone from the view.
  std::optional<PodState> refresh_pod(std::string_view key);
  /// Re-reads a namespace's labels (changed, added or erased).
  void refresh_namespace(std::string_view name);
  /// Recomputes every pod's locality and addresses (attachments changed).
  void refresh_all();

  /// The sets and rules of one policy.
  PolicyOutput policy(const NetworkPolicy& p) const;
  /// One rule's shared peer set, or its named-ports set (egress), recomputed alone.
  std::shared_ptr<const PolicySet> peer_set(const NetworkPolicy& p, bool egress, uint32_t rule,
                                            Family f) const;
  std::shared_ptr<const PolicySet> named_set(const NetworkPolicy& p, uint32_t rule,
                                             Family f) const;
  /// Address families the node's pods use. A family no local pod has gets no policy rules or
  /// sets at all (there is no traffic of it to judge); the first local pod of a new family
  /// changes rules, which is why the reconciler then does a full sync.
  bool family_active(Family f) const;
  /// The four dispatch maps (dispatch_maps()) with their elements, in address order.
  std::vector<nft::Set> dispatch() const;
  /// The dispatch maps' elements for one address, ingress and egress: none in a direction where
  /// no local pod holding it is isolated. What dispatch() holds for it, for an event that
  /// changes a few local pods.
  std::array<std::optional<nft::Element>, 2> dispatch_of(const IpAddr& ip) const;
  /// The whole table from per-policy outputs (keyed like ClusterView::policies).
  nft::Ruleset assemble(const std::map<std::string, PolicyOutput, std::less<>>& outputs) const;

  /// The compiler's idea of a pod (nullptr when unknown).
  const PodState* state(std::string_view key) const;
  /// Every pod showing `ip` (eligible or not, holder or not: see the top of this file).
  std::vector<const PodState*> claimants(const IpAddr& ip) const;
  /// A namespace's labels (a namespace without an object still has its name label).
  const Labels& namespace_labels(std::string_view ns) const;
  const ClusterView& view() const noexcept { return view_; }
  const MemoStats& memo_stats() const noexcept { return memo_stats_; }

 private:
  /// Whether policies of its namespace isolate `pod`: {ingress, egress}.
  std::pair<bool, bool> isolation(const Pod& pod) const;
  template <class F>
  void for_each_peer_pod(const PolicyPeer& peer, const std::string& policy_ns, F&& f) const;
  std::vector<AddrRange> peer_ranges(const NetworkPolicy& p, const PolicyRule& rule,
                                     Family f) const;
  std::shared_ptr<const PolicySet> peer_set_of(const NetworkPolicy& p, const PolicyRule& rule,
                                               Family f, bool egress, uint32_t k) const;

  /// Whether `ip` has a holder and `pred` is true of every holder (see the top of this file).
  template <class F>
  bool all_holders(const IpAddr& ip, F&& pred) const;
  /// Whether more than one pod shows `ip`. When not, the pod a caller found `ip` on is its
  /// only holder, and all_holders() would only repeat what the caller already decided about
  /// that pod: compiling a set of 1,000 peers asks this of each address.
  bool shared(const IpAddr& ip) const { return !shared_.empty() && shared_.contains(ip); }
  /// Whether an eligible pod is selected by one of `rule`'s pod peers (ipBlocks aside).
  bool peer_pod_selected(const PolicyRule& rule, const std::string& policy_ns,
                         const PodState& st) const;
  /// Brings a memoised peer set up to date with the pods refreshed since it was computed, by
  /// re-deciding only their addresses; false when that is not cheaper than recomputing it.
  bool catch_up(MemoEntry& e, const NetworkPolicy& p, const PolicyRule& rule,
                Family f) const;
  void forget_memo() const;

  const ClusterView& view_;
  std::map<std::string, PodState, std::less<>> states_;
  /// Pods in key order, keyed by views of states_' keys: a sorted vector of 16-byte entries
  /// (a std::map node per pod was 0.56 MB of heap at 10k pods).
  class PodIndex {
   public:
    using Entry = std::pair<std::string_view, const PodState*>;
    void insert(std::string_view key, const PodState* st);
    void erase(std::string_view key);
    bool empty() const noexcept { return v_.empty(); }
    std::vector<Entry>::const_iterator begin() const noexcept { return v_.begin(); }
    std::vector<Entry>::const_iterator end() const noexcept { return v_.end(); }
    void clear() noexcept { v_.clear(); }

   private:
    /// The first entry not before `key`.
    std::vector<Entry>::iterator find(std::string_view key);
    std::vector<Entry> v_;
  };
  /// Pods by namespace, and the local ones.
  std::map<std::string, PodIndex, std::less<>> by_ns_;
  PodIndex local_;
  /// Every pod state by address (a reused address can show on two pods).
  std::multimap<IpAddr, const PodState*> by_ip_;
  /// Addresses by_ip_ holds more than once (usually none).
  std::set<IpAddr> shared_;
  mutable std::map<std::string, Labels, std::less<>> synthetic_;
  /// Shared peer sets by name, kept across pod refreshes: a refreshed pod's old and new
  /// addresses go into the journal, and a set is brought up to date when next asked for by
  /// re-deciding just those addresses (see catch_up). A namespace refresh forgets them all.
  mutable std::map<std::string, MemoEntry, std::less<>> memo_;
  mutable std::vector<IpAddr> journal_;
  mutable uint64_t journal_base_ = 0;  ///< sequence number of journal_[0]
  mutable MemoStats memo_stats_;
};

/// The four dispatch maps without elements: ingress4, ingress6, egress4, egress6.
std::vector<nft::Set> dispatch_maps();
/// Which of dispatch_maps() holds `ip`'s element of a direction.
size_t dispatch_map_index(bool ingress, const IpAddr& ip);

/// The desired `inet knit` table for `view`. Deterministic: the same view gives the same value.
nft::Ruleset compile(const ClusterView& view);

/// The name of the shared peer set of `rule` (of policy `p`) in family `f`.
std::string peer_set_name(const NetworkPolicy& p, const PolicyRule& rule, Family f);

/// 32 hex digits of the SHA-256 of `text`: names derived from what users write (a set shared by
/// content is named by its content's hash). 128 bits: neither a chance collision nor one
/// crafted by someone who may write policies (two policies' sets under one name would hand one
/// policy's rule the other's elements) is within reach; FNV, used before, is easy to collide.
std::string name_hash(std::string_view text);

/// Base name of a policy's sets ("<ns>/<name>", shortened with a hash when very long).
std::string policy_set_base(std::string_view ns, std::string_view name);
/// Names of the namespace chains.
std::string ingress_chain(std::string_view ns);
std::string egress_chain(std::string_view ns);

/// Named counters (for /metrics): packets a policy's rules allowed, "allow/<ns>/<policy>" (its
/// ingress and egress rules together), and packets dropped in a namespace's chains because no
/// policy allowed them, "drop/<ns>" (a drop is the verdict of no policy in particular).
/// Names past the kernel's 255 bytes (a policy name may have 253) are cut and end in
/// '~' and a name_hash of the whole.
std::string allow_counter(std::string_view ns, std::string_view policy);
std::string drop_counter(std::string_view ns);

}  // namespace knit::watcher
