// watcher/selector.hpp: Kubernetes label-selector matching (pure, allocation-free).
//
// The policy compiler evaluates selectors for every (policy, pod) and (policy, namespace) pair,
// millions of times on a large cluster, so matching walks the selector's terms against the
// object's sorted label map with map lookups only: no allocation, no parsing.
#pragma once

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

}  // namespace knit::watcher
