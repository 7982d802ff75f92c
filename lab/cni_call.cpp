#include "lab/cni_call.hpp"

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/str.hpp"

namespace knit::lab {

using nlohmann::json;

std::vector<std::string> pod_cidrs(const std::vector<std::string>& given) {
  std::string v4(kPodRangeV4), v6(kPodRangeV6);
  for (const auto& c : given) {
    auto p = Prefix::parse(c);
    if (!p) fail(Code::kInvalidConfig, str("pod CIDR \"", c, "\": not a CIDR"));
    (p->addr().is_v4() ? v4 : v6) = c;
  }
  return {v4, v6};
}

std::string cni_config(const Paths& paths, bool agent, const std::vector<std::string>& cidrs) {
  json ranges = json::array();
  for (const auto& c : cidrs) ranges.push_back(json::array({{{"subnet", c}}}));
  json c = {{"cniVersion", "1.1.0"},
            {"name", std::string(kNetwork)},
            {"type", "knit"},
            {"dataDir", paths.run_dir},
            {"agent", agent ? "required" : "off"},
            {"ipam", {{"type", "knit"}, {"ranges", std::move(ranges)}}}};
  if (agent) c["agentSocket"] = paths.agent_socket;
  return c.dump();
}

std::vector<std::string> cni_env(std::string_view command, std::string_view container_id,
                                 std::string_view netns, std::string_view pod_namespace,
                                 std::string_view pod_name) {
  return {str("CNI_COMMAND=", command),
          str("CNI_CONTAINERID=", container_id),
          str("CNI_NETNS=", netns),
          "CNI_IFNAME=eth0",
          "CNI_PATH=/opt/cni/bin",
          str("CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=", pod_namespace,
              ";K8S_POD_NAME=", pod_name)};
}

std::vector<IpAddr> cni_result_ips(std::string_view result) {
  json j = json::parse(result.begin(), result.end(), nullptr, false);
  if (!j.is_object() || !j.contains("ips") || !j["ips"].is_array()) {
    fail(Code::kDecode, str("decode CNI result: no \"ips\" in ", result));
  }
  std::vector<IpAddr> out;
  for (const auto& ip : j["ips"]) {
    std::string a = ip.is_object() && ip.contains("address") && ip["address"].is_string()
                        ? ip["address"].get<std::string>()
                        : std::string();
    auto p = Prefix::parse(a);
    if (!p) fail(Code::kDecode, str("decode CNI result: bad address \"", a, "\""));
    out.push_back(p->addr());
  }
  return out;
}

std::string cni_error_text(std::string_view reply) {
  json j = json::parse(reply.begin(), reply.end(), nullptr, false);
  if (!j.is_object() || !j.contains("msg") || !j["msg"].is_string()) {
    return std::string(trim(reply));
  }
  std::string out = j["msg"].get<std::string>();
  if (j.contains("details") && j["details"].is_string() && !j["details"].get<std::string>().empty())
    out += str(": ", j["details"].get<std::string>());
  if (j.contains("code") && j["code"].is_number_integer())
    out += str(" (code ", j["code"].get<int>(), ")");
  return out;
}

}  // namespace knit::lab
