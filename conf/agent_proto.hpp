// conf/agent_proto.hpp: the local control protocol of `knit agent`.
//
// A unix stream socket (default /run/knit/agent.sock). Each connection carries one request line
// and gets one response line, both JSON objects. The CNI plugin uses it to report attachments
// and waits for the answer, so a pod selected by an isolating policy is isolated from its first
// packet; `knit lab` uses it to wait until the agent has applied a manifests directory.
//
//   {"op":"attach","namespace":"x","name":"a","containerID":"...","ifname":"eth0",
//    "ips":["10.0.0.5","fd00::5"]}              -> {"ok":true} once the ips are in the kernel
//   {"op":"detach","containerID":"...","ifname":"eth0"}  -> {"ok":true}
//   {"op":"status"}                             -> {"ok":true,"synced":true,"generation":7,
//                                                   "appliedDigest":"...","error":""}
//   {"op":"wait","digest":"...","timeoutMs":5000} -> {"ok":true,...status} once the state built
//                                                   from manifests with that digest is applied
// Any failure: {"ok":false,"error":"<message>"}.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/ip.hpp"

namespace knit::conf {

struct AgentRequest {
  enum class Op : uint8_t { kAttach, kDetach, kStatus, kWait };
  Op op = Op::kStatus;
  std::string pod_namespace;
  std::string pod_name;
  std::string container_id;
  std::string ifname;
  std::vector<IpAddr> ips;
  std::string digest;
  uint32_t timeout_ms = 0;
  friend bool operator==(const AgentRequest&, const AgentRequest&) = default;
};

struct AgentReply {
  bool ok = false;
  std::string error;
  bool synced = false;
  uint64_t generation = 0;
  std::string applied_digest;
  friend bool operator==(const AgentReply&, const AgentReply&) = default;
};

/// One line of JSON (no trailing newline).
std::string encode(const AgentRequest& r);
std::string encode(const AgentReply& r);
/// Throws Error(kDecode) naming what is wrong.
AgentRequest decode_agent_request(std::string_view line);
AgentReply decode_agent_reply(std::string_view line);

}  // namespace knit::conf
