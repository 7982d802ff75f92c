// install/install.hpp: `knit install`: put knit where the node's container runtime looks for it.
//
// Run by the DaemonSet's init container (install/knit.yaml), or by hand on a node. It
//  - finds the CNI directories the runtime really uses: flags, else the agent config's
//    [cni] keys, else containerd's own config (k3s's first, conf/containerd.hpp), else
//    /opt/cni/bin and /etc/cni/net.d;
//  - copies the running binary (/proc/self/exe) to <bin_dir>/knit through a temporary file in
//    the same directory, fsync'd and renamed over the target, then the directory fsync'd. The
//    runtime only ever sees the old binary or the whole new one, and a target being executed
//    right now is no obstacle (rename replaces the directory entry; the running process keeps
//    its inode; writing in place would fail with ETXTBSY or corrupt it). An identical binary is
//    left alone;
//  - writes the conflist the same way, only when the node's pod CIDRs are given (--pod-cidr);
//    otherwise the agent writes it once it has read its Node's spec.podCIDRs.
// `--uninstall` removes the conflist first (the runtime stops choosing knit for new pods) and
// then the binary. It leaves the agent's state (/run/knit, knit's nftables tables, routes)
// alone: install/README.md "Removing knit" says how to clear those once no pod uses knit.
//
// `--root DIR` is where the host's filesystem is seen (containerd's paths are host paths):
// tests install into a temporary directory with it; the DaemonSet mounts the host paths at the
// same paths and needs no root.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "conf/conflist.hpp"
#include "conf/containerd.hpp"
#include "core/ip.hpp"

namespace knit::install {

/// The file name of the plugin in the bin dir: the conflist's "type".
inline constexpr std::string_view kBinaryName = "knit";

struct Options {
  std::string root = "/";                ///< --root
  std::string containerd_config;         ///< --containerd-config (empty: detect)
  std::string bin_dir;                   ///< --cni-bin-dir (empty: detect)
  std::string conf_dir;                  ///< --cni-conf-dir (empty: detect)
  std::string conflist_name = "10-knit.conflist";  ///< --conflist-name
  std::string source = "/proc/self/exe";  ///< --source: the binary to install
  /// --pod-cidr (repeatable), --mtu, --agent-mode, and from --config: data_dir, socket.
  conf::ConflistSpec conflist;
  bool uninstall = false;                ///< --uninstall
  friend bool operator==(const Options&, const Options&) = default;
};

/// Parses `knit install` arguments (the words after "install"). `--config FILE` (an agent
/// config, conf/agent_config.hpp) is read first wherever it appears, so the installer and the
/// agent agree on [cni] keys, data_dir and socket; other flags override it. Returns nullopt for
/// --help. Throws Error(kInvalidConfig) naming the flag, or as load_agent_config().
std::optional<Options> parse_args(int argc, const char* const* argv);

/// The directories to use: the explicit ones, the rest detected (conf::detect_cni_dirs).
conf::CniDirs resolve_dirs(const Options& o);

struct Report {
  conf::CniDirs dirs;
  std::string binary;                  ///< host path of the installed binary
  bool binary_changed = false;         ///< false: an identical file was already there
  std::optional<std::string> conflist; ///< host path of the conflist, when one was written
};

/// Installs (see the top of this file). Throws Error(kIo) naming the file and the system call
/// that failed; a failure leaves the previous binary and conflist as they were.
Report install(const Options& o);

/// Removes the conflist, then the binary; returns the host paths removed (missing ones are not
/// an error). Throws Error(kIo) when one exists and cannot be removed.
std::vector<std::string> uninstall(const Options& o);

/// Copies `source` to `dir`/`name` with `mode` by temporary file, fsync, rename and directory
/// fsync; leftovers of an interrupted copy (".<name>.tmp.*") are removed first. Returns false
/// when `dir`/`name` already had the same content and mode (nothing is written then).
bool install_file(const std::string& source, const std::string& dir, const std::string& name,
                  unsigned mode);

/// `knit install [flags]`; returns the exit code.
int main(int argc, char** argv);

/// The usage text.
std::string usage();

}  // namespace knit::install
