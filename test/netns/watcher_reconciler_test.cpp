// The reconciler's incremental path against the full compile, on fixed scenarios.
//
// The agent keeps the kernel's `inet knit` table equal to compile(view) by incremental syncs
// (watcher/reconciler.hpp): it recompiles only what a reported change can affect and commits
// element-level diffs. A change it misjudges leaves the kernel enforcing something the cluster
// no longer says, an over- or under-permit that lasts until a later sync happens to recompute
// the same objects, at the latest the next full sync (agent restart). Here a scenario (a view,
// then steps of changes) is fed to one Reconciler the way the agent feeds it (change the view in
// place, report the keys, sync), and after every step the kernel must hold exactly
// compile(view).
#include <linux/netlink.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "core/netlink.hpp"
#include "core/netns.hpp"
#include "core/str.hpp"
#include "fixture.hpp"
#include "nft/apply.hpp"
#include "nft/plan.hpp"
#include "nft/render.hpp"
#include "watcher/compile.hpp"
#include "watcher/nat.hpp"
#include "watcher/reconciler.hpp"

using namespace knit;
using namespace knit::watcher;
using knit::test::NeedsNetns;
using knit::test::TestNetns;

namespace {

/// This node, in every view.
const char* const kNode = "node1";

// ---- Changes as data ----------------------------------------------------------------------------
// A step is a few changes reported together before one sync. Each change sets an object to a
// whole value or deletes it: a scenario is plain data that replays without whatever made it,
// and any part of it can be dropped leaving a valid scenario.

enum class Kind : uint8_t { kNamespace, kPod, kPolicy, kAttachment, kMasquerade };

struct Change {
  Kind kind;
  std::string key;  ///< as in ClusterView's maps; empty for kMasquerade
  /// The new value; std::monostate deletes (kMasquerade: no extra objects).
  std::variant<std::monostate, Namespace, Pod, NetworkPolicy, Attachment, MasqueradeCidrs> value;
  std::string why;  ///< what the change is, for messages ("labels", "address reused", ...)
};
using Step = std::vector<Change>;

struct Scenario {
  ClusterView initial;
  std::vector<Step> steps;
};

std::string prefixes(const std::vector<Prefix>& ps) {
  std::string out = "[";
  for (size_t i = 0; i < ps.size(); ++i) out += str(i ? "," : "", ps[i].to_string());
  return out + "]";
}

std::string to_string(const Attachment& a) {
  std::string out = str(a.pod_namespace, '/', a.pod_name, " ips=[");
  for (size_t i = 0; i < a.ips.size(); ++i) out += str(i ? "," : "", a.ips[i].to_string());
  return out + "]";
}

std::string describe(const Change& c) {
  static const char* kKinds[] = {"namespace", "pod", "policy", "attachment", "masquerade"};
  std::string out = str(kKinds[static_cast<int>(c.kind)], ' ', c.key);
  if (!c.why.empty()) out = str('[', c.why, "] ", out);
  if (std::holds_alternative<std::monostate>(c.value)) return out + " deleted";
  out += " := ";
  if (auto* n = std::get_if<Namespace>(&c.value)) return out + watcher::to_string(*n);
  if (auto* p = std::get_if<Pod>(&c.value)) return out + watcher::to_string(*p);
  if (auto* p = std::get_if<NetworkPolicy>(&c.value)) return out + watcher::to_string(*p);
  if (auto* a = std::get_if<Attachment>(&c.value)) return out + to_string(*a);
  const auto& m = std::get<MasqueradeCidrs>(c.value);
  return str(out, "pod_cidrs=", prefixes(m.pod_cidrs),
             " cluster_cidrs=", prefixes(m.cluster_cidrs));
}

std::string describe(const Step& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) out += str(i ? "\n      + " : "", describe(s[i]));
  return out;
}

/// Sets or deletes one object of `m` in place: nodes of other objects stay put (the compiler
/// keeps pointers into the view), and a changed object keeps its node too, as in the agent.
template <class Map, class T>
void put(Map& m, const std::string& key, const std::optional<T>& value) {
  auto it = m.find(key);
  if (!value) {
    if (it != m.end()) m.erase(it);
  } else if (it != m.end()) {
    it->second = *value;
  } else {
    m.emplace(key, *value);
  }
}

template <class T>
std::optional<T> value_of(const Change& c) {
  if (auto* v = std::get_if<T>(&c.value)) return *v;
  return std::nullopt;
}

/// Applies a change to a view (kMasquerade is not part of the view).
void apply_to_view(ClusterView& v, const Change& c) {
  switch (c.kind) {
    case Kind::kNamespace:
      put(v.namespaces, c.key, value_of<Namespace>(c));
      break;
    case Kind::kPod:
      put(v.pods, c.key, value_of<Pod>(c));
      break;
    case Kind::kPolicy:
      put(v.policies, c.key, value_of<NetworkPolicy>(c));
      break;
    case Kind::kAttachment:
      put(v.attachments, c.key, value_of<Attachment>(c));
      break;
    case Kind::kMasquerade:
      break;
  }
}

// ---- Comparing rulesets -------------------------------------------------------------------------

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

/// The lines only in `a` ("-") and only in `b` ("+"), in order (a longest-common-subsequence
/// diff: rule order matters in a chain). At most `max` lines.
std::string line_diff(const std::string& a, const std::string& b, size_t max = 60) {
  auto la = lines_of(a), lb = lines_of(b);
  size_t lo = 0;
  while (lo < la.size() && lo < lb.size() && la[lo] == lb[lo]) ++lo;
  size_t ea = la.size(), eb = lb.size();
  while (ea > lo && eb > lo && la[ea - 1] == lb[eb - 1]) --ea, --eb;
  const size_t n = ea - lo, m = eb - lo;
  std::vector<std::vector<uint32_t>> lcs(n + 1, std::vector<uint32_t>(m + 1, 0));
  for (size_t i = n; i-- > 0;) {
    for (size_t j = m; j-- > 0;) {
      lcs[i][j] =
          la[lo + i] == lb[lo + j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  std::string out;
  size_t shown = 0, i = 0, j = 0;
  auto emit = [&](char sign, const std::string& line) {
    if (shown++ < max) out += str("    ", sign, ' ', line, '\n');
  };
  while (i < n || j < m) {
    if (i < n && j < m && la[lo + i] == lb[lo + j]) {
      ++i, ++j;
    } else if (j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j])) {
      emit('+', lb[lo + j++]);
    } else {
      emit('-', la[lo + i++]);
    }
  }
  if (shown > max) out += str("    ... ", shown - max, " more\n");
  return out;
}

// ---- One reconciler, replaying changes ----------------------------------------------------------

/// A Reconciler on its own view in a throwaway namespace, fed the way the agent feeds it. Every
/// check compares three things with compile(view) (plus the extra objects): what the kernel
/// holds, as rendered text and as nft::plan sees it, and what the reconciler believes it
/// committed (Reconciler::applied(): a drift there becomes a kernel difference later).
class Replay {
 public:
  /// Works in `ns`, where it takes over whatever table is there with its first full_sync.
  Replay(const ClusterView& initial, const TestNetns& ns)
      : sock_(nl::Socket::open_in(Netns::open(ns.path()), NETLINK_NETFILTER)), view_(initial) {}
  Replay(const Replay&) = delete;
  Replay& operator=(const Replay&) = delete;

  const ClusterView& view() const { return view_; }

  /// What the steps so far exercised.
  struct Counts {
    size_t steps = 0;
    size_t batched = 0;    ///< steps of several changes
    size_t effective = 0;  ///< steps after which the kernel changed
    size_t changes = 0;    ///< kernel changes committed, in all
    /// Steps after which an address family appeared or went on the node: sync() then starts
    /// over with a full sync, so they test the incremental path only up to that point.
    size_t restarts = 0;
  };
  const Counts& counts() const { return counts_; }

  /// The first sync; the mismatch afterwards, if any.
  std::optional<std::string> start() {
    try {
      rec_.full_sync(sock_, view_);
      families_ = families();
    } catch (const std::exception& e) {
      return str("full_sync threw: ", e.what(), '\n');
    }
    return check();
  }

  /// Applies and reports the step's changes, syncs once; the mismatch afterwards, if any.
  std::optional<std::string> step(const Step& s) {
    for (const auto& c : s) apply(c);
    try {
      size_t n = rec_.sync(sock_, view_);
      ++counts_.steps;
      counts_.batched += s.size() > 1;
      counts_.effective += n > 0;
      counts_.changes += n;
      auto now = families();
      counts_.restarts += now != families_;
      families_ = now;
    } catch (const std::exception& e) {
      return str("sync threw: ", e.what(), '\n');
    }
    return check();
  }

 private:
  void apply(const Change& c) {
    switch (c.kind) {
      case Kind::kNamespace:
        apply_to_view(view_, c);
        rec_.namespaces_changed({c.key});
        return;
      case Kind::kPod:
        apply_to_view(view_, c);
        rec_.pods_changed({c.key});
        return;
      case Kind::kPolicy:
        apply_to_view(view_, c);
        rec_.policies_changed({c.key});
        return;
      case Kind::kAttachment: {
        // As the agent's attach and detach: the pod that held the attachment and the pod that
        // holds it now both changed.
        std::vector<std::string> pods;
        if (auto it = view_.attachments.find(c.key); it != view_.attachments.end()) {
          pods.push_back(object_key(it->second.pod_namespace, it->second.pod_name));
        }
        apply_to_view(view_, c);
        if (auto it = view_.attachments.find(c.key); it != view_.attachments.end()) {
          pods.push_back(object_key(it->second.pod_namespace, it->second.pod_name));
        }
        rec_.pods_changed(pods);
        return;
      }
      case Kind::kMasquerade:
        if (auto m = value_of<MasqueradeCidrs>(c)) {
          extra_sets_ = masquerade_sets(*m);
          extra_chains_ = {masquerade_chain(*m)};
        } else {
          extra_sets_.clear();
          extra_chains_.clear();
        }
        rec_.set_extra(extra_sets_, extra_chains_);
        return;
    }
  }

  std::pair<bool, bool> families() const {
    Compiler c(view_);
    return {c.family_active(Family::kV4), c.family_active(Family::kV6)};
  }

  std::optional<std::string> check() {
    nft::Ruleset want = compile(view_);
    want.sets.insert(want.sets.end(), extra_sets_.begin(), extra_sets_.end());
    want.chains.insert(want.chains.end(), extra_chains_.begin(), extra_chains_.end());
    want.sort();
    std::optional<nft::Ruleset> got;
    try {
      got = nft::read_table(sock_, nft::TableFamily::kInet, kTableName);
    } catch (const std::exception& e) {
      return str("read_table threw: ", e.what(), '\n');
    }
    if (!got) return std::string("the kernel holds no table\n");
    std::string out;
    const std::string should = nft::render(want), have = nft::render(*got);
    if (have != should) {
      out += str("  kernel (-) vs compile(view) (+):\n", line_diff(have, should));
    }
    nft::Plan plan = nft::plan(got, want);
    if (!plan.empty()) {
      out += str("  nft::plan(kernel, compile(view)) has ", plan.changes.size(), " change(s):\n");
      for (size_t i = 0; i < plan.changes.size() && i < 20; ++i) {
        out += str("    ", nft::describe(want.table, plan.changes[i]), '\n');
      }
    }
    const std::string model = nft::render(rec_.applied());
    if (model != should) {
      out += str("  Reconciler::applied() (-) vs compile(view) (+):\n", line_diff(model, should));
    }
    if (out.empty()) return std::nullopt;
    return out;
  }

  nl::Socket sock_;
  ClusterView view_;
  Reconciler rec_;
  std::vector<nft::Set> extra_sets_;
  std::vector<nft::Chain> extra_chains_;
  std::pair<bool, bool> families_;
  Counts counts_;
};

struct Failure {
  size_t step = 0;  ///< 0: after the first full sync; k: after steps[k-1]
  std::string what;
};

/// Replays a whole scenario in `ns`; the first mismatch.
std::optional<Failure> replay(const Scenario& sc, const TestNetns& ns) {
  Replay r(sc.initial, ns);
  if (auto bad = r.start()) return Failure{0, *bad};
  for (size_t i = 0; i < sc.steps.size(); ++i) {
    if (auto bad = r.step(sc.steps[i])) return Failure{i + 1, *bad};
  }
  return std::nullopt;
}

/// Steps 1..n of a scenario in full, each with its changes.
std::string describe_steps(const std::vector<Step>& steps, size_t from = 0) {
  std::string out;
  for (size_t i = from; i < steps.size(); ++i) {
    out += str("    step ", i + 1, ": ", describe(steps[i]), '\n');
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(watcher_reconciler)

// ---- Scenarios ----------------------------------------------------------------------------------

namespace {

auto needs_netns() {
  return boost::unit_test::precondition(NeedsNetns());
}

Pod local_pod(const std::string& ns, const std::string& name, const char* ip, Labels labels = {}) {
  Pod p;
  p.namespace_ = ns;
  p.name = name;
  p.labels = std::move(labels);
  p.node_name = kNode;
  p.phase = PodPhase::kRunning;
  p.ips = {*IpAddr::parse(ip)};
  return p;
}

NetworkPolicy deny_all(const std::string& ns, const std::string& name, LabelSelector targets,
                       bool ingress = true, bool egress = false) {
  NetworkPolicy p;
  p.namespace_ = ns;
  p.name = name;
  p.pod_selector = std::move(targets);
  p.ingress_isolation = ingress;
  p.egress_isolation = egress;
  return p;
}

LabelSelector app(const char* a) {
  return LabelSelector{{{"app", a}}, {}};
}

Change set(const NetworkPolicy& p) {
  return {Kind::kPolicy, object_key(p.namespace_, p.name), p, ""};
}

void add(ClusterView& v, const Pod& p) {
  v.pods[object_key(p.namespace_, p.name)] = p;
}
void add(ClusterView& v, const NetworkPolicy& p) {
  v.policies[object_key(p.namespace_, p.name)] = p;
}

/// Replays a fixed scenario, checking after every step.
void check_scenario(const Scenario& sc) {
  TestNetns ns("recon-case");
  auto fail = replay(sc, ns);
  BOOST_TEST(!fail.has_value(), "fails after step " << (fail ? fail->step : 0) << ":\n"
                                                    << (fail ? fail->what : "") << "  steps:\n"
                                                    << describe_steps(sc.steps));
}

}  // namespace

// A policy's podSelector and policyTypes decide which local pods are isolated, and that lives
// only in the dispatch maps: a deny-all policy has no rules or sets at all, and a policy with
// rules changes only its targets set.
BOOST_AUTO_TEST_CASE(a_policys_new_pod_selector_moves_isolation_to_the_pods_it_now_selects,
                     *needs_netns()) {
  Scenario sc;
  sc.initial.node_name = kNode;
  add(sc.initial, local_pod("x", "a", "10.0.0.1", {{"app", "a"}}));
  add(sc.initial, local_pod("x", "b", "10.0.0.2", {{"app", "b"}}));
  add(sc.initial, deny_all("x", "deny", app("b")));
  sc.steps = {{set(deny_all("x", "deny", app("a")))},  // a isolated, b no longer
              {set(deny_all("x", "deny", {}))}};       // both
  check_scenario(sc);
}

BOOST_AUTO_TEST_CASE(a_policys_new_policy_types_move_isolation_between_directions, *needs_netns()) {
  Scenario sc;
  sc.initial.node_name = kNode;
  add(sc.initial, local_pod("x", "a", "10.0.0.1"));
  add(sc.initial, deny_all("x", "deny", {}, true, false));
  sc.steps = {{set(deny_all("x", "deny", {}, true, true))},    // egress isolated too
              {set(deny_all("x", "deny", {}, false, true))}};  // ingress no longer
  check_scenario(sc);
}

BOOST_AUTO_TEST_CASE(a_new_pod_selector_on_a_policy_with_rules_moves_isolation_too,
                     *needs_netns()) {
  Scenario sc;
  sc.initial.node_name = kNode;
  add(sc.initial, local_pod("x", "a", "10.0.0.1", {{"app", "a"}}));
  add(sc.initial, local_pod("x", "b", "10.0.0.2", {{"app", "b"}}));
  NetworkPolicy allow = deny_all("x", "allow", app("b"));
  PolicyPeer from_c;
  from_c.pod_selector = app("c");
  allow.ingress = {PolicyRule{{from_c}, {PolicyPort{Protocol::kTcp, uint16_t{80}, {}}}}};
  add(sc.initial, allow);
  allow.pod_selector = app("a");
  sc.steps = {{set(allow)}};
  check_scenario(sc);
}

// Two local pods can show one address (a reused address while the old pod's object still lists
// it); the pod the CNI plugin reported holds it in the dispatch maps. Attaching or detaching
// with the same addresses changes that claim.
BOOST_AUTO_TEST_CASE(a_shared_address_is_judged_by_the_pod_attached_to_it, *needs_netns()) {
  Scenario sc;
  sc.initial.node_name = kNode;
  add(sc.initial, local_pod("x", "old", "10.0.0.7"));
  add(sc.initial, local_pod("y", "new", "10.0.0.7"));
  add(sc.initial, deny_all("x", "deny", {}));
  add(sc.initial, deny_all("y", "deny", {}));
  // Without attachments the first by key ("x/old") holds 10.0.0.7; "y/new" is then attached
  // with the address its object already shows, and later detached again.
  sc.steps = {{Change{Kind::kAttachment, "c1/eth0",
                      Attachment{"y", "new", {*IpAddr::parse("10.0.0.7")}}, ""}},
              {Change{Kind::kAttachment, "c1/eth0", std::monostate{}, ""}}};
  check_scenario(sc);
}

BOOST_AUTO_TEST_SUITE_END()
