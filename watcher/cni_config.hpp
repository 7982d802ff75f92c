// watcher/cni_config.hpp: the conflist the agent writes for its node, from spec.podCIDRs.
//
// Like kindnet, the agent and not the installer writes the network configuration: the pod CIDRs
// are only known once the Node object has them. The JSON comes from conf::render_conflist (one
// renderer for `knit install --pod-cidr` and the agent): cniVersion 1.0.0 with cniVersions
// 0.3.1-1.1.0, type knit, one range set per podCIDR, capabilities portMappings. The file is
// written as a hidden temporary and renamed over <dir>/10-knit.conflist, so a runtime watching
// the directory (containerd reloads on fsnotify) never reads half a file; an unchanged content
// is not rewritten, so a resync does not make runtimes reload.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "conf/netconf_types.hpp"
#include "watcher/k8s_types.hpp"

namespace knit::watcher {

/// The file name: "10-" sorts before the usual 10-*/20-*/87-podman names; runtimes use the first.
inline constexpr std::string_view kConflistName = "10-knit.conflist";

struct CniConfigOptions {
  std::string network = "knit";  ///< the conflist's (and so the IPAM store's) network name
  uint32_t mtu = 0;              ///< 0: not written (the plugin uses the uplink's MTU)
  conf::AgentMode agent_mode = conf::AgentMode::kRequired;
  std::string agent_socket;  ///< empty: not written (the plugin's default /run/knit/agent.sock)
  std::string data_dir;      ///< empty: not written (the plugin's default /run/knit)
  bool ipv4 = true;          ///< use the node's IPv4 podCIDRs
  bool ipv6 = true;          ///< use the node's IPv6 podCIDRs
  friend bool operator==(const CniConfigOptions&, const CniConfigOptions&) = default;
};

/// The conflist for `node` (pure), its podCIDRs in the node's order (the first is the primary
/// family); nullopt while the node has no podCIDR of an enabled family (nothing to write yet).
std::optional<std::string> render_cni_config(const Node& node, const CniConfigOptions& o);

/// Writes `content` as <dir>/<file> by temp file + rename (mode 0644) unless the file already
/// holds exactly `content`; creates `dir` when missing. Returns true when it wrote. Throws
/// Error(kIo) naming the file.
bool write_cni_config(const std::string& dir, std::string_view content,
                      std::string_view file = kConflistName);

}  // namespace knit::watcher
