#include "lab/probe_plan.hpp"

namespace knit::lab {

std::optional<uint16_t> resolve_port(const PortRef& port, Protocol protocol,
                                     const std::vector<ContainerPort>& ports) {
  if (const auto* n = std::get_if<uint16_t>(&port)) return *n;
  const auto& name = std::get<std::string>(port);
  for (const auto& cp : ports) {
    if (cp.name == name && cp.protocol == protocol) return cp.port;
  }
  return std::nullopt;
}

std::optional<IpAddr> probe_address(const LabPod& pod, int family) {
  if (!pod.error.empty()) return std::nullopt;
  for (const auto& ip : pod.ips) {
    if (ip.is_v4() == (family == 4)) return ip;
  }
  return std::nullopt;
}

ProbePlan plan_probes(const std::vector<LabPod>& pods, const PortRef& port, Protocol protocol,
                      int family) {
  ProbePlan plan;
  Matrix& m = plan.matrix;
  m.port = port;
  m.protocol = protocol;
  m.family = family;
  const size_t n = pods.size();
  std::vector<std::optional<IpAddr>> addr(n);
  std::vector<std::optional<uint16_t>> target(n);
  for (size_t i = 0; i < n; ++i) {
    m.pods.push_back(pods[i].key());
    addr[i] = probe_address(pods[i], family);
    target[i] = resolve_port(port, protocol, pods[i].ports);
  }
  m.cells.resize(n);
  for (size_t i = 0; i < n; ++i) {
    m.cells[i].resize(n);
    for (size_t k = 0; k < n; ++k) {
      m.cells[i][k] = Cell::kBlocked;
      if (!addr[i] || !addr[k]) {
        m.cells[i][k] = Cell::kNoAddress;
      } else if (!target[k]) {
        m.cells[i][k] = Cell::kNoPort;
      } else {
        plan.probes.push_back({i, k, *addr[k], *target[k]});
      }
    }
  }
  return plan;
}

}  // namespace knit::lab
