// cni/agent_client.hpp: reporting attachments to `knit agent` (conf/agent_proto.hpp).
#pragma once

#include "conf/netconf_types.hpp"
#include "ipam/ipam_types.hpp"

namespace knit::cni {

/// The agent socket a netconf names (default /run/knit/agent.sock).
std::string agent_socket(const conf::NetConf& c);

/// Reports a new attachment and waits (up to agentTimeoutMs) until the agent confirms its
/// addresses are in the kernel. With agent "required", failure is Error(kAgent) naming the cause;
/// with "best-effort" it is logged and ADD goes on; with "off", or for a sandbox that is not a
/// Kubernetes pod (no K8S_POD_NAMESPACE/K8S_POD_NAME), nothing is sent.
void report_attach(const conf::NetConf& c, const ipam::Attachment& att);

/// Tells the agent an attachment is gone (best effort whatever the mode: DEL must not fail
/// because the agent is down; the agent also learns deletions from its other sources).
void report_detach(const conf::NetConf& c, const std::string& container_id,
                   const std::string& ifname);

}  // namespace knit::cni
