// conf/agent_config.hpp: the configuration of `knit agent` (also read by `knit install`).
//
// Four sources, later ones winning: built-in defaults, a TOML file (`--config FILE`; the
// DaemonSet mounts it from a ConfigMap), the environment (NODE_NAME, KUBECONFIG, KNIT_LOG), and
// flags. Every key has a flag, so nothing needs a file. The file is strict: an unknown key, a
// wrong type or a bad value is an error naming the file, the line and the key, because a typo
// that silently falls back to a default (say `revokation = false`) is a misconfiguration nobody
// notices. README "Configuration (agent)" documents every key; install/knit.toml shows them all.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/netconf.hpp"
#include "core/ip.hpp"
#include "core/log.hpp"

namespace knit::conf {

/// Loopback only by default: /metrics names namespaces and policies, so it is not published on
/// the node's addresses unless asked. The kubelet probes a hostNetwork pod from the node's own
/// network namespace, so 127.0.0.1 is reachable by the probes. 9740 is not used by anything that
/// usually runs with the host network on a kind or k3s node (kubelet 10248/10250, kube-proxy
/// 10249/10256, k3s 6443/6444/10010, node-exporter 9100, CoreDNS's 9153 lives in its pod).
inline constexpr std::string_view kDefaultMetricsAddress = "127.0.0.1:9740";

struct AgentConfig {
  // Top level.
  std::string node_name;   ///< node_name: this node's name. Default: $NODE_NAME.
  std::string kubeconfig;  ///< kubeconfig: default $KUBECONFIG, else in-cluster service account
  std::string manifests_dir;  ///< manifests_dir: YAML/JSON objects to enforce. Default: none.
  std::string socket_path = "/run/knit/agent.sock";  ///< socket: the CNI plugin's control socket
  std::string data_dir = "/run/knit";  ///< data_dir: the CNI plugin's state (IPAM stores)
  log::Level log_level = log::Level::kInfo;  ///< log_level: error, warn, info, debug
  /// resync_interval: full re-list and re-check of the kernel state; 0 disables. Default 5m.
  std::chrono::milliseconds resync_interval{std::chrono::minutes(5)};

  // [cni]
  std::string cni_conf_dir;  ///< conf_dir: default from containerd's config, else /etc/cni/net.d
  std::string cni_bin_dir;   ///< bin_dir: default from containerd's config, else /opt/cni/bin
  /// containerd_config: where the two above are read from. Default: k3s's
  /// /var/lib/rancher/k3s/agent/etc/containerd/config.toml, then /etc/containerd/config.toml.
  std::string containerd_config;
  std::string conflist_name = "10-knit.conflist";  ///< conflist_name: sorts first in conf_dir
  uint32_t mtu = 0;  ///< mtu: pod MTU written into the conflist; 0: the node uplink's MTU
  AgentMode agent_mode = AgentMode::kRequired;  ///< agent_mode: the conflist's "agent"

  // [network]
  bool ipv4 = true;  ///< ipv4: use the node's IPv4 podCIDRs (false: ignore them)
  bool ipv6 = true;  ///< ipv6: use the node's IPv6 podCIDRs
  bool masquerade = true;  ///< masquerade: SNAT pod traffic leaving the cluster
  /// no_masquerade_cidrs: destinations never masqueraded, besides every node's podCIDRs (the
  /// service CIDR, the node network, ...). Default: none.
  std::vector<Prefix> no_masquerade_cidrs;

  // [policy]
  bool revocation = true;  ///< revocation: cut established connections a policy change denies

  // [metrics]
  /// address: where /metrics, /healthz, /readyz and /livez listen ("IP:port", "[IPv6]:port");
  /// empty: no HTTP server.
  std::string metrics_address = std::string(kDefaultMetricsAddress);

  friend bool operator==(const AgentConfig&, const AgentConfig&) = default;
};

struct ListenAddress {
  IpAddr ip;
  uint16_t port = 0;
  friend bool operator==(const ListenAddress&, const ListenAddress&) = default;
};

/// Parses "IP:port" or "[IPv6]:port" (port 0 picks a free port). nullopt on anything else,
/// host names included.
std::optional<ListenAddress> parse_listen_address(std::string_view s);

/// Parses a duration: "0", or numbers with units ms, s, m, h ("90s", "1m30s", "250ms").
std::optional<std::chrono::milliseconds> parse_duration(std::string_view s);

/// Applies the keys of TOML `text` over `config`. Throws Error(kInvalidConfig)
/// "<filename>:<line>: <key>: <problem>" for a syntax error, an unknown key (named, with the
/// known keys of its section), a wrong type or a bad value.
void apply_config_text(AgentConfig& config, std::string_view text, std::string_view filename);

/// The defaults with the file at `path` applied. Throws Error(kIo) when it cannot be read (a
/// missing file is an error: it was asked for), else as apply_config_text().
AgentConfig load_agent_config(const std::string& path);

/// NODE_NAME, KUBECONFIG and KNIT_LOG, when set and not empty, override the file. Throws
/// Error(kInvalidConfig) for a KNIT_LOG that is not a level.
void apply_env(AgentConfig& config, const Getenv& getenv);

enum class FlagsAction : uint8_t { kRun, kHelp };

/// Applies `knit agent` arguments (argv[0..argc), the words after "agent"): first the file of
/// `--config FILE` wherever it appears, then the environment (apply_env), then every other flag
/// in order. Flags take `--flag VALUE` or `--flag=VALUE`. Returns kHelp for --help/-h (nothing
/// else is validated then). Throws Error(kInvalidConfig) naming the flag for an unknown flag, a
/// missing or bad value, and as load_agent_config() for the file; finally validate().
FlagsAction apply_flags(AgentConfig& config, int argc, const char* const* argv,
                        const Getenv& getenv);

/// Checks what single keys cannot: at least one address family enabled, the socket path fits
/// a unix socket address. Throws Error(kInvalidConfig).
void validate(const AgentConfig& config);

/// `knit agent --help`: every flag with its key and default.
std::string agent_usage();

/// One line for the start-up log: the effective values that differ between installations.
std::string describe(const AgentConfig& config);

std::string_view to_string(AgentMode m);
std::string_view to_string(log::Level l);

}  // namespace knit::conf
