#include "conf/agent_proto.hpp"

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/str.hpp"

namespace knit::conf {

namespace {

using nlohmann::json;

constexpr std::pair<AgentRequest::Op, const char*> kOps[] = {
    {AgentRequest::Op::kAttach, "attach"},
    {AgentRequest::Op::kDetach, "detach"},
    {AgentRequest::Op::kStatus, "status"},
    {AgentRequest::Op::kWait, "wait"},
};

json parse(std::string_view line, const char* what) {
  auto j = json::parse(line.begin(), line.end(), nullptr, false);
  if (!j.is_object()) fail(Code::kDecode, str("decode agent ", what, ": not a JSON object"));
  return j;
}

std::string get_str(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  if (!it->is_string()) fail(Code::kDecode, str("decode agent message: ", key, " is not a string"));
  return it->get<std::string>();
}

}  // namespace

std::string encode(const AgentRequest& r) {
  json j;
  for (auto [op, name] : kOps)
    if (op == r.op) j["op"] = name;
  if (!r.pod_namespace.empty()) j["namespace"] = r.pod_namespace;
  if (!r.pod_name.empty()) j["name"] = r.pod_name;
  if (!r.container_id.empty()) j["containerID"] = r.container_id;
  if (!r.ifname.empty()) j["ifname"] = r.ifname;
  if (!r.ips.empty()) {
    json ips = json::array();
    for (const auto& ip : r.ips) ips.push_back(ip.to_string());
    j["ips"] = std::move(ips);
  }
  if (!r.digest.empty()) j["digest"] = r.digest;
  if (r.timeout_ms) j["timeoutMs"] = r.timeout_ms;
  return j.dump();
}

std::string encode(const AgentReply& r) {
  json j;
  j["ok"] = r.ok;
  if (!r.error.empty()) j["error"] = r.error;
  j["synced"] = r.synced;
  j["generation"] = r.generation;
  if (!r.applied_digest.empty()) j["appliedDigest"] = r.applied_digest;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

AgentRequest decode_agent_request(std::string_view line) {
  json j = parse(line, "request");
  AgentRequest r;
  std::string op = get_str(j, "op");
  bool known = false;
  for (auto [o, name] : kOps) {
    if (op == name) {
      r.op = o;
      known = true;
    }
  }
  if (!known) fail(Code::kDecode, str("decode agent request: unknown op \"", op, "\""));
  r.pod_namespace = get_str(j, "namespace");
  r.pod_name = get_str(j, "name");
  r.container_id = get_str(j, "containerID");
  r.ifname = get_str(j, "ifname");
  r.digest = get_str(j, "digest");
  if (auto it = j.find("ips"); it != j.end() && it->is_array()) {
    for (const auto& v : *it) {
      auto ip = v.is_string() ? IpAddr::parse(v.get<std::string>()) : std::nullopt;
      if (!ip) fail(Code::kDecode, str("decode agent request: bad address in ips: ", v.dump()));
      r.ips.push_back(*ip);
    }
  }
  if (auto it = j.find("timeoutMs"); it != j.end() && it->is_number_unsigned()) {
    r.timeout_ms = it->get<uint32_t>();
  }
  return r;
}

AgentReply decode_agent_reply(std::string_view line) {
  json j = parse(line, "reply");
  AgentReply r;
  if (auto it = j.find("ok"); it != j.end() && it->is_boolean()) r.ok = it->get<bool>();
  r.error = get_str(j, "error");
  if (auto it = j.find("synced"); it != j.end() && it->is_boolean()) r.synced = it->get<bool>();
  if (auto it = j.find("generation"); it != j.end() && it->is_number_unsigned()) {
    r.generation = it->get<uint64_t>();
  }
  r.applied_digest = get_str(j, "appliedDigest");
  return r;
}

}  // namespace knit::conf
