// watcher/selector.hpp: Kubernetes label-selector matching (pure, allocation-free).
//
// The policy compiler evaluates selectors for every (policy, pod) and (policy, namespace) pair,
// millions of times on a large cluster, so matching walks the selector's terms against the
// object's sorted label map with map lookups only: no allocation, no parsing.
#pragma once

#include <array>
#include <cstdint>

#include "watcher/k8s_types.hpp"

namespace knit::watcher {

/// True when `labels` satisfy the requirement:
///   In:           key present and its value is one of values;
///   NotIn:        key absent, or its value is none of values;
///   Exists:       key present (any value, including "");
///   DoesNotExist: key absent.
bool matches(const Requirement& r, const Labels& labels) noexcept;

/// True when `labels` satisfy every matchLabels pair (key present with exactly that value) and
/// every matchExpressions requirement. A selector with no terms matches every label set,
/// including the empty one. Never throws, never allocates.
bool matches(const LabelSelector& s, const Labels& labels) noexcept;

/// One selector matched against many label maps that repeat: the replicas of a workload share
/// one interned map (watcher/intern.hpp), so a namespace of 100 pods holds a handful of distinct
/// maps and most answers are a pointer compare. Remembers the answers for the last maps seen
/// (direct-mapped by address), so it must not outlive the maps it was asked about: a map freed
/// and another allocated at its address would get the old answer. Make one per loop.
class MatchMemo {
 public:
  explicit MatchMemo(const LabelSelector& s) noexcept : s_(s) {}
  bool operator()(const Labels& labels) noexcept {
    Slot& slot = slots_[(reinterpret_cast<uintptr_t>(&labels) >> 4) % kSlots];
    if (slot.labels != &labels) slot = {&labels, matches(s_, labels)};
    return slot.match;
  }

 private:
  static constexpr size_t kSlots = 64;
  struct Slot {
    const Labels* labels = nullptr;
    bool match = false;
  };
  const LabelSelector& s_;
  std::array<Slot, kSlots> slots_{};
};

}  // namespace knit::watcher
