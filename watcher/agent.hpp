// watcher/agent.hpp: `knit agent`, the resident policy agent.
//
// One thread, one epoll loop. Sources feed one ClusterView: a manifests directory (inotify), the
// CNI plugin's attachment reports (a unix socket; conf/agent_proto.hpp), and at start-up the
// attachments already recorded in the CNI plugin's IPAM stores. After every change the agent
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
#include <string>

namespace knit::watcher {

struct AgentOptions {
  std::string manifests_dir;                   ///< --manifests DIR (empty: none)
  std::string node_name;                       ///< --node-name, or NODE_NAME
  std::string socket_path = "/run/knit/agent.sock";
  std::string cni_data_dir = "/run/knit";      ///< where the CNI plugin keeps its IPAM stores
  std::chrono::milliseconds debounce{15};      ///< coalescing window for bursts of file events
};

/// Runs the agent until SIGTERM or SIGINT; returns the process exit code.
int run_agent(const AgentOptions& options);

/// `knit agent [--manifests DIR] [--node-name NAME] [--socket PATH] [--data-dir DIR]`.
int agent_main(int argc, char** argv);

}  // namespace knit::watcher
