// lab/probe_plan.hpp: which probes a reachability matrix needs (pure).
#pragma once

#include <optional>
#include <vector>

#include "lab/lab_types.hpp"

namespace knit::lab {

/// One probe: from pod `from` to `dst`:`port` (pod `to`), indexes into the matrix.
struct Probe {
  size_t from = 0;
  size_t to = 0;
  IpAddr dst;
  uint16_t port = 0;
  friend bool operator==(const Probe&, const Probe&) = default;
};

struct ProbePlan {
  /// Every cell that needs a probe is kBlocked until the probe succeeds; the others say why
  /// there is nothing to probe (kNoPort, kNoAddress).
  Matrix matrix;
  std::vector<Probe> probes;
};

/// The port number `port` means on a pod with `ports`: a number as it is (served or not, like
/// a policy's numeric port), a name looked up among the ports of `protocol` (Kubernetes
/// resolves named ports per destination pod, by name and protocol). nullopt: no such name.
std::optional<uint16_t> resolve_port(const PortRef& port, Protocol protocol,
                                     const std::vector<ContainerPort>& ports);

/// The address of `family` (4 or 6) a pod is probed at: its first one of that family.
std::optional<IpAddr> probe_address(const LabPod& pod, int family);

/// Plans the all-pairs matrix over `pods` (in their order; self pairs included).
ProbePlan plan_probes(const std::vector<LabPod>& pods, const PortRef& port, Protocol protocol,
                      int family);

}  // namespace knit::lab
