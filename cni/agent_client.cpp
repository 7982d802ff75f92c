#include "cni/agent_client.hpp"

#include "conf/agent_proto.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/str.hpp"
#include "core/unix_socket.hpp"

namespace knit::cni {

std::string agent_socket(const conf::NetConf& c) {
  return c.agent_socket.empty() ? "/run/knit/agent.sock" : c.agent_socket;
}

void report_attach(const conf::NetConf& c, const ipam::Attachment& att) {
  if (c.agent_mode == conf::AgentMode::kOff) return;
  if (att.pod_namespace.empty() || att.pod_name.empty()) return;
  conf::AgentRequest req;
  req.op = conf::AgentRequest::Op::kAttach;
  req.pod_namespace = att.pod_namespace;
  req.pod_name = att.pod_name;
  req.container_id = att.container_id;
  req.ifname = att.ifname;
  req.ips = att.ips;
  req.timeout_ms = c.agent_timeout_ms;
  std::string path = agent_socket(c);
  std::string what = str("report ", att.pod_namespace, "/", att.pod_name, " to agent ", path);
  try {
    auto reply = conf::decode_agent_reply(unix_request(
        path, conf::encode(req), std::chrono::milliseconds(c.agent_timeout_ms + 500)));
    if (!reply.ok) fail(Code::kAgent, str(what, ": ", reply.error));
  } catch (const Error& e) {
    if (c.agent_mode == conf::AgentMode::kRequired) {
      fail(Code::kAgent, e.code() == Code::kAgent ? e.what() : str(what, ": ", e.what()));
    }
    log::warn(str(e.what(), " (agent is best-effort: the pod starts without its policy)"));
  }
}

void report_detach(const conf::NetConf& c, const std::string& container_id,
                   const std::string& ifname) {
  if (c.agent_mode == conf::AgentMode::kOff) return;
  conf::AgentRequest req;
  req.op = conf::AgentRequest::Op::kDetach;
  req.container_id = container_id;
  req.ifname = ifname;
  req.timeout_ms = c.agent_timeout_ms;
  try {
    (void)unix_request(agent_socket(c), conf::encode(req),
                       std::chrono::milliseconds(c.agent_timeout_ms));
  } catch (const Error& e) {
    log::info(str("report detach to agent: ", e.what()));
  }
}

}  // namespace knit::cni
