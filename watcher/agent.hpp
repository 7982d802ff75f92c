// watcher/agent.hpp: `knit agent`, the resident policy agent.
//
// One thread, one epoll loop. Sources feed one ClusterView: either the Kubernetes API
// (watcher/api_source.hpp: its worker threads hand decoded objects to the loop through an
// eventfd) or a manifests directory (inotify), plus the CNI plugin's attachment reports (a unix
// socket; conf/agent_proto.hpp) and, at start-up, the attachments already recorded in the CNI
// plugin's IPAM stores. With the API the agent also follows the Nodes: routes to the other
// nodes' pod CIDRs (watcher/routes.hpp), the masquerade sets (watcher/nat.hpp) and the conflist
// written from its own Node's podCIDRs (watcher/cni_config.hpp). After every change the agent
// compiles the view (watcher/compile.hpp), diffs it against what the kernel holds (nft::plan:
// element-level, never flush-and-refill) and commits the difference as one nftables
// transaction. A CNI ADD is answered only after the commit that contains the new pod, so a pod
// an isolating policy selects is isolated from its first packet.
//
// Start-up: the agent reads the table the kernel holds and commits nothing until every source
// has delivered its first complete state, so a restart never opens traffic or empties a set.
// If the agent dies, the kernel keeps enforcing the last committed state.
#pragma once

#include <chrono>

#include "conf/agent_config.hpp"

namespace knit::watcher {

struct AgentOptions {
  /// Everything from the TOML file, the environment and the flags (conf/agent_config.hpp). The
  /// source is the manifests directory when manifests_dir is set, else the Kubernetes API
  /// (kubeconfig, $KUBECONFIG, or in-cluster).
  conf::AgentConfig config;
  std::chrono::milliseconds debounce{15};  ///< coalescing window for bursts of file events
};

/// Runs the agent until SIGTERM or SIGINT; returns the process exit code.
int run_agent(const AgentOptions& options);

/// `knit agent [--config FILE] [flags]` (knit agent --help).
int agent_main(int argc, char** argv);

}  // namespace knit::watcher
