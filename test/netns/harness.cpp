#include "harness.hpp"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "ipam/store.hpp"

namespace knit::test {

Node::Node(const std::string& tag, int uplink_mtu) : ns(tag) {
  data_dir = "/run/knit-t-" + std::to_string(getpid()) + "-" + ns.name();
  // This kernel has no dummy links: the uplink is one end of a veth pair whose peer stays here.
  ns.must("ip link add up0 mtu " + std::to_string(uplink_mtu) +
          " type veth peer name up0peer && ip link set up0peer up && ip link set up0 up && "
          "ip addr add 10.99.0.1/24 dev up0 && "
          "ip -6 addr add fd99::1/64 dev up0 nodad && ip route add default dev up0 && "
          "ip -6 route add default dev up0");
}

Node::~Node() { sh("rm -rf '" + data_dir + "'"); }

std::string Node::config(const std::string& ranges_json, const std::string& version,
                         const std::string& extra) const {
  return R"({"cniVersion":")" + version + R"(","name":")" + net +
         R"(","type":"knit","agent":"off","dataDir":")" + data_dir +
         R"(","ipam":{"type":"knit","ranges":)" + ranges_json + "}" + extra + "}";
}

std::string Node::dual_stack_config(const std::string& version) const {
  return config(R"([[{"subnet":"10.22.0.0/24"}],[{"subnet":"fd00:22::/64"}]])", version);
}

Proc Node::add(const std::string& cid, const TestNetns& pod, const std::string& config,
               const std::string& ifname, const std::string& args) const {
  return cni(knit_binary(), ns, {"ADD", cid, pod.path(), ifname, args, config});
}

Proc Node::del(const std::string& cid, const std::string& netns_path, const std::string& config,
               const std::string& ifname) const {
  return cni(knit_binary(), ns, {"DEL", cid, netns_path, ifname, "", config});
}

Proc Node::check(const std::string& cid, const TestNetns& pod, const std::string& config,
                 const std::string& ifname) const {
  return cni(knit_binary(), ns, {"CHECK", cid, pod.path(), ifname, "", config});
}

Proc Node::verb(const std::string& verb, const std::string& config) const {
  return cni(knit_binary(), ns, {verb, "", "", "", "", config});
}

std::string Node::store_text() const {
  Proc p = sh("cat '" + data_dir + "/ipam/" + net + "/store' 2>/dev/null");
  return p.out;
}

size_t Node::attachments() const {
  ipam::Store store(data_dir + "/ipam", net);
  auto txn = store.begin();
  return txn.state().attachments.size();
}

std::vector<std::string> result_ips(const std::string& result_json) {
  std::vector<std::string> out;
  auto j = nlohmann::json::parse(result_json, nullptr, false);
  if (!j.is_object() || !j.contains("ips")) return out;
  for (const auto& ip : j["ips"]) {
    std::string a = ip.value("address", "");
    out.push_back(a.substr(0, a.find('/')));
  }
  return out;
}

std::string result_host_ifname(const std::string& result_json) {
  auto j = nlohmann::json::parse(result_json, nullptr, false);
  if (!j.is_object() || !j.contains("interfaces")) return {};
  for (const auto& i : j["interfaces"]) {
    if (i.value("sandbox", "").empty()) return i.value("name", "");
  }
  return {};
}

int error_code(const std::string& reply) {
  auto j = nlohmann::json::parse(reply, nullptr, false);
  if (!j.is_object() || !j.contains("code")) return -1;
  return j["code"].get<int>();
}

std::string conflist_plugin_config(const std::string& conflist, size_t index) {
  auto j = nlohmann::json::parse(conflist, nullptr, false);
  if (!j.is_object() || !j.contains("plugins") || !j["plugins"].is_array() ||
      j["plugins"].size() <= index) {
    return {};
  }
  nlohmann::json plugin = j["plugins"][index];
  plugin["name"] = j.value("name", "");
  plugin["cniVersion"] = j.value("cniVersion", "");
  return plugin.dump();
}

std::string pod_cni_args(const std::string& pod_namespace, const std::string& pod_name) {
  return "IgnoreUnknown=1;K8S_POD_NAMESPACE=" + pod_namespace + ";K8S_POD_NAME=" + pod_name;
}

bool ping(const std::string& from_netns, const std::string& addr) {
  bool v6 = addr.find(':') != std::string::npos;
  Proc p = sh(std::string("/bin/busybox ping ") + (v6 ? "-6 " : "") + "-c 1 -W 1 " + addr +
                  " >/dev/null 2>&1",
              from_netns, std::chrono::seconds(5));
  return p.status == 0;
}

}  // namespace knit::test
