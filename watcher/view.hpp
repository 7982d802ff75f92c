// watcher/view.hpp: the cluster as the agent knows it (plain values, no I/O).
//
// Sources (a manifests directory, the Kubernetes API, the CNI plugin's attachment reports) all
// feed one ClusterView; the compiler turns it into the desired nftables table. Pods learn their
// addresses and locality from two places: the object's status (podIPs, nodeName) and, for pods
// on this node, the CNI plugin's report, which arrives first and wins.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/ip.hpp"
#include "watcher/k8s_types.hpp"

namespace knit::watcher {

/// A pod attachment reported by the CNI plugin on this node.
struct Attachment {
  std::string pod_namespace;
  std::string pod_name;
  std::vector<IpAddr> ips;
  friend bool operator==(const Attachment&, const Attachment&) = default;
};

/// "ns/name".
std::string object_key(std::string_view ns, std::string_view name);

struct ClusterView {
  std::string node_name;
  std::map<std::string, Namespace, std::less<>> namespaces;      ///< by name
  std::map<std::string, Pod, std::less<>> pods;                  ///< by "ns/name"
  std::map<std::string, NetworkPolicy, std::less<>> policies;    ///< by "ns/name"
  std::map<std::string, Attachment, std::less<>> attachments;    ///< by "containerID/ifname"

  /// Labels of a namespace; empty labels when the namespace object is unknown (a pod can arrive
  /// before its namespace).
  const Labels& namespace_labels(std::string_view ns) const;
};

/// How the compiler sees one pod.
struct PodState {
  const Pod* pod = nullptr;
  std::string pod_namespace;  ///< a copy: the index must find it after the pod is gone
  /// The pod's labels and ports (shared, not copied): a state taken out of the compiler still
  /// says what the pod was after the view changed.
  Shared<Labels> labels;
  Shared<std::vector<ContainerPort>> ports;
  std::vector<IpAddr> ips;  ///< the attachment's when local, else the pod's status
  bool local = false;       ///< attached on this node (CNI report) or scheduled here
  bool attached = false;    ///< ips come from the CNI plugin's report (the truth on this node)
  /// Subject to policy and selectable as a peer: not hostNetwork, not Succeeded/Failed (their
  /// addresses get reused), and with at least one address.
  bool eligible = false;
};

/// The state of every pod, keyed like ClusterView::pods.
std::map<std::string, PodState, std::less<>> pod_states(const ClusterView& view);
/// The state of one pod.
PodState pod_state(const ClusterView& view, const Pod& pod);

}  // namespace knit::watcher
