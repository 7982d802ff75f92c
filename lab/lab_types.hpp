// lab/lab_types.hpp: the values `knit lab` works with (no I/O).
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "core/ip.hpp"
#include "watcher/k8s_types.hpp"

namespace knit::lab {

using watcher::ContainerPort;
using watcher::PortRef;
using watcher::Protocol;

/// One pod of a lab, as the supervisor wired it.
struct LabPod {
  std::string namespace_;
  std::string name;
  std::string container_id;  ///< CNI_CONTAINERID
  std::string netns;         ///< /run/netns/... of the pod
  std::vector<IpAddr> ips;   ///< from the CNI result, in its order; empty when wiring failed
  std::vector<ContainerPort> ports;  ///< declared containerPorts, each served inside the pod
  std::string error;  ///< why wiring failed (retried on the next change); empty when wired
  /// "namespace/name".
  std::string key() const { return namespace_ + "/" + name; }
  friend bool operator==(const LabPod&, const LabPod&) = default;
};

/// A process the lab started, identified by pid and start time so that a reused pid is never
/// mistaken for it.
struct ProcRef {
  int pid = 0;
  uint64_t start_time = 0;  ///< field 22 of /proc/<pid>/stat (clock ticks since boot)
  friend bool operator==(const ProcRef&, const ProcRef&) = default;
};

/// Everything a lab is: the content of state.json.
struct LabState {
  std::string name;
  std::string dir;         ///< the manifests directory (absolute)
  std::string node_netns;  ///< /run/netns/knit-lab-<name>
  std::vector<IpAddr> node_ips;
  std::string run_dir;  ///< /run/knit/lab/<name>: state, log, sockets, CNI data
  std::string log;
  std::string control_socket;  ///< the supervisor's (lab/control.hpp)
  ProcRef supervisor;
  bool agent = false;  ///< false with --no-agent
  std::string agent_socket;
  ProcRef agent_proc;            ///< pid 0 while the agent is not running
  std::string manifests_digest;  ///< digest of the manifests the supervisor last reconciled
  std::vector<std::string> pod_cidrs;  ///< the ranges pods get addresses from (--pod-cidr)
  std::vector<LabPod> pods;      ///< sorted by key()
  friend bool operator==(const LabState&, const LabState&) = default;
};

enum class Output : uint8_t { kTable, kJson };

/// What one matrix cell says.
enum class Cell : uint8_t {
  kReachable,
  kBlocked,
  kNoPort,     ///< the destination has no port of that name (and protocol)
  kNoAddress,  ///< the destination has no address of the probed family (or was not wired)
};

/// A reachability matrix: rows are sources, columns destinations, both in `pods` order.
struct Matrix {
  PortRef port = uint16_t{80};
  Protocol protocol = Protocol::kTcp;
  int family = 4;
  std::vector<std::string> pods;         ///< "namespace/name"
  std::vector<std::vector<Cell>> cells;  ///< [from][to]
  friend bool operator==(const Matrix&, const Matrix&) = default;
};

}  // namespace knit::lab
