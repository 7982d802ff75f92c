#include "lab/reconcile.hpp"

#include <algorithm>
#include <set>

#include "core/str.hpp"

namespace knit::lab {

std::vector<WantedPod> wanted_pods(const std::vector<watcher::Pod>& pods,
                                   std::vector<std::string>& warnings) {
  std::map<std::string, WantedPod> by_key;
  for (const auto& p : pods) {
    std::string key = str(p.namespace_, '/', p.name);
    if (p.host_network) {
      warnings.push_back(str("pod ", key, ": hostNetwork pods are not run by the lab; skipped"));
      continue;
    }
    if (by_key.count(key)) {
      warnings.push_back(str("pod ", key, ": declared more than once; the first one is used"));
      continue;
    }
    by_key.emplace(key, WantedPod{p.namespace_, p.name, p.ports});
  }
  std::vector<WantedPod> out;
  for (auto& [key, w] : by_key) out.push_back(std::move(w));
  return out;
}

ReconcilePlan plan_reconcile(const std::map<std::string, LabPod>& current,
                             const std::vector<WantedPod>& wanted, bool keep_missing) {
  ReconcilePlan plan;
  std::set<std::string> wanted_keys;
  for (const auto& w : wanted) {
    std::string key = w.key();
    wanted_keys.insert(key);
    auto it = current.find(key);
    if (it == current.end()) {
      plan.add.push_back(w);
    } else if (!it->second.error.empty()) {
      plan.remove.push_back(key);
      plan.add.push_back(w);
    } else if (it->second.ports != w.ports) {
      plan.reserve.push_back(w);
    }
  }
  if (!keep_missing) {
    for (const auto& [key, pod] : current) {
      if (!wanted_keys.count(key)) plan.remove.push_back(key);
    }
  }
  std::sort(plan.remove.begin(), plan.remove.end());
  return plan;
}

}  // namespace knit::lab
