// lab/cni_call.hpp: what the lab hands to knit's CNI path, and what it reads back (pure).
//
// Every pod goes through the real plugin: the supervisor execs knit with the CNI_* variables a
// container runtime sets (K8S_POD_NAMESPACE and K8S_POD_NAME in CNI_ARGS, as the kubelet's
// runtimes pass them) and the network configuration on stdin, inside the node namespace.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/ip.hpp"
#include "lab/names.hpp"

namespace knit::lab {

/// The lab's pod ranges: `given` (at most one per family, as --pod-cidr checks), the other
/// family's from kPodRangeV4 and kPodRangeV6. IPv4 first.
std::vector<std::string> pod_cidrs(const std::vector<std::string>& given);

/// The network configuration (a runtime's flattened conflist entry): one range set per entry of
/// `cidrs` (pod_cidrs), dataDir = the lab's run dir, and agent "required" with the lab's agent
/// socket, or "off".
std::string cni_config(const Paths& paths, bool agent, const std::vector<std::string>& cidrs);

/// The CNI_* environment of one call ("KEY=value"). `command` is ADD or DEL.
std::vector<std::string> cni_env(std::string_view command, std::string_view container_id,
                                 std::string_view netns, std::string_view pod_namespace,
                                 std::string_view pod_name);

/// The addresses of a CNI ADD result, in order. Throws Error(kDecode) when it is not a result.
std::vector<IpAddr> cni_result_ips(std::string_view result);
/// The message of a CNI error reply ("<msg> (code N)"), or `reply` itself when it is not one.
std::string cni_error_text(std::string_view reply);

}  // namespace knit::lab
