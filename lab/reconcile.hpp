// lab/reconcile.hpp: from the Pods in the manifests to what the supervisor does (pure).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "lab/lab_types.hpp"
#include "watcher/k8s_types.hpp"

namespace knit::lab {

/// A pod the manifests ask for.
struct WantedPod {
  std::string namespace_;
  std::string name;
  std::vector<ContainerPort> ports;
  std::string key() const { return namespace_ + "/" + name; }
  friend bool operator==(const WantedPod&, const WantedPod&) = default;
};

/// The pods the lab runs for `pods`: one per namespace/name (the first wins; later ones are
/// reported), hostNetwork pods left out (reported: a lab pod always has its own namespace).
/// Sorted by key. Appends one line per skipped pod to `warnings`.
std::vector<WantedPod> wanted_pods(const std::vector<watcher::Pod>& pods,
                                   std::vector<std::string>& warnings);

struct ReconcilePlan {
  std::vector<std::string> remove;  ///< keys of pods to tear down (namespace, CNI DEL)
  std::vector<WantedPod> add;       ///< pods to wire (new, or failed before and retried)
  std::vector<WantedPod> reserve;   ///< wired pods whose declared ports changed
  friend bool operator==(const ReconcilePlan&, const ReconcilePlan&) = default;
};

/// What turns `current` (by key) into `wanted`. A pod whose wiring failed is removed and added
/// again. With `keep_missing` (the manifests had errors: a file may be half-written) nothing is
/// removed: a pod that vanished because its file did not parse keeps running until a clean read
/// says it is gone.
ReconcilePlan plan_reconcile(const std::map<std::string, LabPod>& current,
                             const std::vector<WantedPod>& wanted, bool keep_missing);

}  // namespace knit::lab
