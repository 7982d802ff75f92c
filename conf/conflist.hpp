// conf/conflist.hpp: the network configuration list knit puts in the runtime's CNI conf dir.
//
// One renderer for both writers: `knit install --pod-cidr` (tests, nodes whose podCIDRs are
// known up front) and the agent, once it has read its Node's spec.podCIDRs.
//
// Version: "cniVersion" is 1.0.0 and "cniVersions" lists 0.3.1 to 1.1.0. A runtime on libcni
// 1.2+ (CNI 1.1 aware) picks the highest version of the union, 1.1.0 (GC, STATUS); older libcni
// (containerd 1.6/1.7, podman 4, CRI-O before 1.31) ignores "cniVersions" and uses 1.0.0, which
// every libcni since 1.0 (2021) accepts. A 1.1.0-only "cniVersion" would be refused by those.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "conf/netconf_types.hpp"
#include "core/ip.hpp"

namespace knit::conf {

inline constexpr std::string_view kConflistVersion = "1.0.0";

struct ConflistSpec {
  std::string name = "knit";         ///< the network name
  std::vector<Prefix> pod_cidrs;     ///< the node's podCIDRs: one range set each, in this order
  uint32_t mtu = 0;                  ///< 0: not written (the plugin uses the uplink's MTU)
  AgentMode agent_mode = AgentMode::kRequired;
  std::string data_dir;              ///< empty: not written (the plugin's default /run/knit)
  std::string agent_socket;          ///< empty: not written (default /run/knit/agent.sock)
  friend bool operator==(const ConflistSpec&, const ConflistSpec&) = default;
};

/// The conflist JSON (indented, newline-terminated). Throws Error(kInvalidConfig) when there is
/// no pod CIDR, or one is not a network prefix (host bits set).
std::string render_conflist(const ConflistSpec& spec);

}  // namespace knit::conf
