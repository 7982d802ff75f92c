#include "conf/containerd.hpp"

#include "conf/toml.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/str.hpp"

namespace knit::conf {

namespace {

using Kind = TomlValue::Kind;

[[noreturn]] void bad(std::string_view file, const TomlValue& v, std::string_view key,
                      std::string_view problem) {
  fail(Code::kInvalidConfig, str(file, ':', v.line, ": ", key, ": ", problem));
}

std::string string_key(const TomlValue& cni, std::string_view name, std::string_view file) {
  const TomlValue* v = cni.find(name);
  if (v == nullptr) return {};
  if (v->kind != Kind::kString) bad(file, *v, name, str("expected a string, got ", v->kind_name()));
  return v->text;
}

}  // namespace

ContainerdCni parse_containerd_cni(std::string_view text, std::string_view filename) {
  TomlValue root = parse_toml(text, filename);
  int64_t version = 1;
  if (const TomlValue* v = root.find("version")) {
    if (v->kind != Kind::kInteger) bad(filename, *v, "version", "expected an integer");
    version = v->integer;
  }
  const TomlValue* cni = nullptr;
  if (version >= 3) {
    cni = root.find_path({"plugins", "io.containerd.cri.v1.runtime", "cni"});
  } else if (version == 2) {
    cni = root.find_path({"plugins", "io.containerd.grpc.v1.cri", "cni"});
  } else {
    cni = root.find_path({"plugins", "cri", "cni"});
    // A file without `version` that still uses version 2's names: containerd 1.x would read it
    // as version 1 and ignore the section, but the intent is clear and the paths are the same.
    if (cni == nullptr) cni = root.find_path({"plugins", "io.containerd.grpc.v1.cri", "cni"});
  }
  ContainerdCni out;
  if (cni == nullptr || cni->kind != Kind::kTable) return out;
  out.conf_dir = string_key(*cni, "conf_dir", filename);
  std::string bin_dir = string_key(*cni, "bin_dir", filename);
  if (!bin_dir.empty()) {
    out.bin_dirs.push_back(bin_dir);
  } else if (const TomlValue* dirs = cni->find("bin_dirs")) {
    if (dirs->kind != Kind::kArray) {
      bad(filename, *dirs, "bin_dirs", str("expected an array of strings, got ", dirs->kind_name()));
    }
    for (const auto& d : dirs->items) {
      if (d.kind != Kind::kString) bad(filename, d, "bin_dirs", "expected an array of strings");
      if (!d.text.empty()) out.bin_dirs.push_back(d.text);
    }
  }
  return out;
}

std::string under_root(std::string_view root, std::string_view path) {
  while (!root.empty() && root.back() == '/') root.remove_suffix(1);
  if (root.empty()) return std::string(path);
  if (!path.empty() && path.front() == '/') return str(root, path);
  return str(root, '/', path);
}

CniDirs detect_cni_dirs(std::string_view root, std::string_view containerd_config) {
  CniDirs out{std::string(kDefaultCniBinDir), std::string(kDefaultCniConfDir), "defaults"};
  std::vector<std::string_view> candidates;
  if (containerd_config.empty()) {
    candidates = {kK3sContainerdConfig, kContainerdConfig};
  } else {
    candidates = {containerd_config};
  }
  for (auto path : candidates) {
    std::string file = under_root(root, path);
    auto text = read_file(file);
    if (!text) {
      if (!containerd_config.empty()) {
        fail_errno(Code::kIo, str("read containerd config ", file), ENOENT);
      }
      continue;
    }
    ContainerdCni cni = parse_containerd_cni(*text, file);
    if (!cni.bin_dirs.empty()) out.bin_dir = cni.bin_dirs.front();
    if (!cni.conf_dir.empty()) out.conf_dir = cni.conf_dir;
    out.origin = str("containerd config ", path);
    return out;
  }
  return out;
}

}  // namespace knit::conf
