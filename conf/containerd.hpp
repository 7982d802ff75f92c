// conf/containerd.hpp: where containerd looks for CNI plugins and network configurations.
//
// k3s does not use /opt/cni/bin and /etc/cni/net.d: depending on its version and flags it
// renders containerd's config with /var/lib/rancher/k3s/data/cni (or a versioned data dir) and
// /var/lib/rancher/k3s/agent/etc/cni/net.d, or leaves containerd's defaults. Guessing is how
// CNIs end up "installed" where the runtime never looks, so knit reads containerd's own config.
//
// The CNI section by config version (containerd's `version` key):
//   3 (containerd 2.x)   [plugins.'io.containerd.cri.v1.runtime'.cni]  bin_dirs = [...] (2.1+)
//                                                                        or bin_dir = "..."
//   2 (containerd 1.x)   [plugins."io.containerd.grpc.v1.cri".cni]     bin_dir, conf_dir
//   1 or none (1.0-1.2)  [plugins.cri.cni]                              bin_dir, conf_dir
// A key that is absent or empty keeps containerd's default. containerd refuses bin_dir and
// bin_dirs together; knit takes bin_dir then, as containerd 2.1 moves it into bin_dirs.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace knit::conf {

inline constexpr std::string_view kK3sContainerdConfig =
    "/var/lib/rancher/k3s/agent/etc/containerd/config.toml";
inline constexpr std::string_view kContainerdConfig = "/etc/containerd/config.toml";
inline constexpr std::string_view kDefaultCniBinDir = "/opt/cni/bin";
inline constexpr std::string_view kDefaultCniConfDir = "/etc/cni/net.d";

/// The CNI settings of a containerd config; empty members were not set (containerd's default).
struct ContainerdCni {
  std::vector<std::string> bin_dirs;  ///< searched in order; plugins are installed in the first
  std::string conf_dir;
  friend bool operator==(const ContainerdCni&, const ContainerdCni&) = default;
};

/// Reads the CNI section of containerd config `text` for its version (see above). Throws
/// Error(kInvalidConfig) "<filename>:<line>: ..." when the file is not TOML or a CNI key has the
/// wrong type; everything else in the file is ignored.
ContainerdCni parse_containerd_cni(std::string_view text, std::string_view filename);

/// Where the CNI binary and conflist go on this host.
struct CniDirs {
  std::string bin_dir;
  std::string conf_dir;
  std::string origin;  ///< "containerd config <path>" or "defaults", for logs
  friend bool operator==(const CniDirs&, const CniDirs&) = default;
};

/// Reads `containerd_config` (a host path; empty: kK3sContainerdConfig, then kContainerdConfig,
/// whichever exists first) under `root` (a prefix where the host's filesystem is seen, "/" or ""
/// normally; tests use a temporary directory) and returns its directories, containerd's
/// defaults for what it leaves unset. The returned paths are host paths, without `root`.
/// Throws Error(kIo) when an explicitly named file does not exist or cannot be read, and as
/// parse_containerd_cni().
CniDirs detect_cni_dirs(std::string_view root, std::string_view containerd_config);

/// `root` + `path` with exactly one slash between ("/" and "" mean no prefix).
std::string under_root(std::string_view root, std::string_view path);

}  // namespace knit::conf
