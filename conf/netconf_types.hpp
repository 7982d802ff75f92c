// conf/netconf_types.hpp: what a CNI invocation asks for, as plain values.
//
// cni::decode turns the environment and stdin into a Request; everything downstream works on
// these types and never sees JSON.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "conf/result_types.hpp"
#include "conf/version.hpp"
#include "core/ip.hpp"

namespace knit::conf {

/// One range of host-local's `ranges` form.
struct IpamRange {
  Prefix subnet;                      ///< network prefix, host bits zero
  std::optional<IpAddr> range_start;  ///< default: first usable address
  std::optional<IpAddr> range_end;    ///< default: last usable address
  std::optional<IpAddr> gateway;      ///< never handed out; default network+1
  friend bool operator==(const IpamRange&, const IpamRange&) = default;
};

/// A range set yields one address; several ranges in a set form one pool.
using RangeSet = std::vector<IpamRange>;

struct RouteConf {
  Prefix dst;
  std::optional<IpAddr> gw;
  friend bool operator==(const RouteConf&, const RouteConf&) = default;
};

struct IpamConf {
  std::string type;              ///< "knit" (or "host-local": same form, handled by knit)
  std::vector<RangeSet> ranges;  ///< one set per address the pod gets (one per family, usually)
  std::vector<RouteConf> routes; ///< extra routes for the pod; default routes are always added
  std::string data_dir;          ///< store directory; default /run/knit/ipam
  friend bool operator==(const IpamConf&, const IpamConf&) = default;
};

enum class Protocol : uint8_t { kTcp, kUdp, kSctp };

struct PortMapping {
  uint16_t host_port = 0;
  uint16_t container_port = 0;
  Protocol protocol = Protocol::kTcp;
  std::optional<IpAddr> host_ip;  ///< unset or unspecified: every node address
  friend bool operator==(const PortMapping&, const PortMapping&) = default;
};

/// What ADD does about the policy agent (see README "Policy agent").
enum class AgentMode : uint8_t {
  kOff,         ///< never contact the agent (no NetworkPolicy on this network)
  kBestEffort,  ///< report the pod; if the agent is unreachable, log and continue (the pod runs
                ///< without its policy until the agent is back)
  kRequired,    ///< report the pod and fail ADD with code 105 unless the agent confirms its
                ///< addresses are in the kernel's sets (the default: isolation from the first
                ///< packet, never a pod that slipped past its policy)
};

struct NetConf {
  Version cni_version;      ///< the version requests and results use
  std::string name;         ///< network name
  std::string type;         ///< "knit"
  std::optional<uint32_t> mtu;  ///< default: the node's uplink MTU
  IpamConf ipam;
  std::string data_dir;     ///< attachment records and store root; default /run/knit
  std::string agent_socket; ///< default /run/knit/agent.sock
  AgentMode agent_mode = AgentMode::kRequired;
  uint32_t agent_timeout_ms = 2000;

  // runtimeConfig capabilities (both key casings accepted)
  std::vector<PortMapping> port_mappings;
  std::vector<IpAddr> requested_ips;  ///< `ips` capability, args.cni.ips, CNI_ARGS IP=
  std::optional<Mac> requested_mac;   ///< `mac` capability, args.cni.mac, CNI_ARGS MAC=

  /// The chain's previous result, when knit is not the first plugin.
  std::optional<Result> prev_result;
  /// GC: attachments still valid (cni.dev/valid-attachments or cni.dev/attachments).
  struct Attachment {
    std::string container_id;
    std::string ifname;
    friend auto operator<=>(const Attachment&, const Attachment&) = default;
  };
  std::vector<Attachment> valid_attachments;
};

enum class Command : uint8_t { kAdd, kDel, kCheck, kVersion, kGc, kStatus };

/// The CNI_* environment of one invocation.
struct CniEnv {
  Command command = Command::kVersion;
  std::string container_id;
  std::string netns;
  std::string ifname;
  std::string path;
  /// CNI_ARGS as key/value pairs (IgnoreUnknown, K8S_POD_NAMESPACE, K8S_POD_NAME, IP, ...).
  std::map<std::string, std::string> args;
};

struct Request {
  CniEnv env;
  NetConf conf;
};

}  // namespace knit::conf
