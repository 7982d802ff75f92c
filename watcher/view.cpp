#include "watcher/view.hpp"

#include "core/str.hpp"

namespace knit::watcher {

std::string object_key(std::string_view ns, std::string_view name) { return str(ns, '/', name); }

const Labels& ClusterView::namespace_labels(std::string_view ns) const {
  static const Labels kNone;
  auto it = namespaces.find(ns);
  return it == namespaces.end() ? kNone : it->second.labels;
}

namespace {

/// The state of `pod` given its attachments on this node (none: not attached here).
PodState state_of(const ClusterView& view, const Pod& pod,
                  const std::vector<const Attachment*>& attachments) {
  PodState s;
  s.pod = &pod;
  s.pod_namespace = pod.namespace_;
  s.labels = pod.labels;
  s.ports = pod.ports;
  if (!attachments.empty()) {
    s.local = true;
    s.attached = true;
    for (const auto* att : attachments) s.ips.insert(s.ips.end(), att->ips.begin(), att->ips.end());
  } else {
    s.local = !view.node_name.empty() && pod.node_name == view.node_name;
    s.ips = pod.ips;
  }
  s.eligible = !pod.host_network && pod.phase != PodPhase::kSucceeded &&
               pod.phase != PodPhase::kFailed && !s.ips.empty();
  return s;
}

}  // namespace

PodState pod_state(const ClusterView& view, const Pod& pod) {
  std::vector<const Attachment*> mine;
  for (const auto& [key, att] : view.attachments) {
    if (att.pod_namespace == pod.namespace_ && att.pod_name == pod.name) mine.push_back(&att);
  }
  return state_of(view, pod, mine);
}

std::map<std::string, PodState, std::less<>> pod_states(const ClusterView& view) {
  // Index attachments by pod once (a pod may have several: one per interface).
  std::map<std::string, std::vector<const Attachment*>, std::less<>> by_pod;
  for (const auto& [key, att] : view.attachments) {
    by_pod[object_key(att.pod_namespace, att.pod_name)].push_back(&att);
  }
  static const std::vector<const Attachment*> kNone;
  std::map<std::string, PodState, std::less<>> out;
  for (const auto& [key, pod] : view.pods) {
    auto it = by_pod.find(key);
    out.emplace(key, state_of(view, pod, it == by_pod.end() ? kNone : it->second));
  }
  return out;
}

}  // namespace knit::watcher
