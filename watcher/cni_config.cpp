#include "watcher/cni_config.hpp"

#include "conf/conflist.hpp"
#include "core/fs.hpp"
#include "core/str.hpp"

namespace knit::watcher {

std::optional<std::string> render_cni_config(const Node& node, const CniConfigOptions& o) {
  conf::ConflistSpec spec;
  spec.name = o.network;
  for (const auto& p : node.pod_cidrs) {
    if (p.family() == Family::kV4 ? o.ipv4 : o.ipv6) spec.pod_cidrs.push_back(p.network());
  }
  if (spec.pod_cidrs.empty()) return std::nullopt;
  spec.mtu = o.mtu;
  spec.agent_mode = o.agent_mode;
  spec.agent_socket = o.agent_socket;
  spec.data_dir = o.data_dir;
  return conf::render_conflist(spec);
}

bool write_cni_config(const std::string& dir, std::string_view content, std::string_view file) {
  const std::string name(file);
  if (auto cur = read_file(str(dir, '/', name)); cur && *cur == content) return false;
  make_dirs(dir, 0755);
  atomic_write(dir, name, content, 0644);
  return true;
}

}  // namespace knit::watcher
