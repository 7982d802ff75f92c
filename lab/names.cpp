#include "lab/names.hpp"

#include <cstdint>

#include "core/str.hpp"

namespace knit::lab {

namespace {
constexpr size_t kMaxNetnsName = 100;

uint32_t fnv1a(std::string_view s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}
}  // namespace

Paths paths_for(std::string_view name) {
  Paths p;
  p.name = std::string(name);
  p.run_dir = str(kRunRoot, '/', name);
  p.state = p.run_dir + "/state.json";
  p.log = p.run_dir + "/lab.log";
  p.lock = p.run_dir + "/lock";
  p.control_socket = p.run_dir + "/lab.sock";
  p.agent_socket = p.run_dir + "/agent.sock";
  p.node_netns_name = str("knit-lab-", name);
  p.node_netns = str(kNetnsDir, '/', p.node_netns_name);
  p.node_name = str("lab-", name);
  return p;
}

std::string pod_netns_prefix(std::string_view lab) {
  return str("knit-lab-", lab, '.');
}

std::string pod_netns_name(std::string_view lab, std::string_view ns, std::string_view pod) {
  std::string name = str(pod_netns_prefix(lab), ns, '.', pod);
  if (name.size() <= kMaxNetnsName) return name;
  uint32_t h = fnv1a(str(ns, '/', pod));
  name.resize(kMaxNetnsName - 9);
  return str(name, '_', hex(&h, sizeof h));
}

}  // namespace knit::lab
