#include "install/install.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "conf/agent_config.hpp"
#include "core/error.hpp"
#include "core/fd.hpp"
#include "core/fs.hpp"
#include "core/log.hpp"
#include "core/str.hpp"

namespace knit::install {

namespace {

[[noreturn]] void bad_flag(std::string_view flag, std::string_view problem) {
  fail(Code::kInvalidConfig, str(flag, ": ", problem));
}

void fsync_dir(const std::string& dir) {
  Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d) fail_errno(Code::kIo, str("open directory ", dir), errno);
  if (fsync(d.get()) != 0) fail_errno(Code::kIo, str("fsync directory ", dir), errno);
}

/// True when the file at `path` exists with exactly `content` and `mode`.
bool same_file(const std::string& path, std::string_view content, unsigned mode) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  if ((st.st_mode & 07777) != mode || static_cast<size_t>(st.st_size) != content.size()) return false;
  auto existing = read_file(path);
  return existing && *existing == content;
}

/// Removes ".<name>.tmp.*" left in `dir` by an interrupted install.
void remove_leftovers(const std::string& dir, const std::string& name) {
  std::string prefix = str('.', name, ".tmp.");
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  while (dirent* e = ::readdir(d)) {
    if (std::strncmp(e->d_name, prefix.c_str(), prefix.size()) != 0) continue;
    std::string path = str(dir, '/', e->d_name);
    if (::unlink(path.c_str()) == 0) log::info(str("install: removed leftover ", path));
  }
  ::closedir(d);
}

bool remove_file(const std::string& path) {
  if (::unlink(path.c_str()) == 0) return true;
  if (errno == ENOENT) return false;
  fail_errno(Code::kIo, str("remove ", path), errno);
}

std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

bool install_file(const std::string& source, const std::string& dir, const std::string& name,
                  unsigned mode) {
  // The whole binary in memory (~2 MB) makes "already identical?" one comparison, and what is
  // written is what was compared even if `source` changes meanwhile.
  auto content = read_file(source);
  if (!content) fail_errno(Code::kIo, str("read ", source), ENOENT);
  make_dirs(dir, 0755);
  remove_leftovers(dir, name);
  if (same_file(str(dir, '/', name), *content, mode)) return false;
  // Temporary file, fchmod (exact mode whatever the umask), fsync, rename, fsync of the dir.
  atomic_write(dir, name, *content, mode);
  return true;
}

conf::CniDirs resolve_dirs(const Options& o) {
  if (!o.bin_dir.empty() && !o.conf_dir.empty() && o.containerd_config.empty()) {
    return {o.bin_dir, o.conf_dir, "flags"};
  }
  conf::CniDirs d = conf::detect_cni_dirs(o.root, o.containerd_config);
  if (!o.bin_dir.empty()) d.bin_dir = o.bin_dir;
  if (!o.conf_dir.empty()) d.conf_dir = o.conf_dir;
  return d;
}

Report install(const Options& o) {
  Report r;
  r.dirs = resolve_dirs(o);
  r.binary = str(r.dirs.bin_dir, '/', kBinaryName);
  r.binary_changed = install_file(o.source, conf::under_root(o.root, r.dirs.bin_dir),
                                  std::string(kBinaryName), 0755);
  if (!o.conflist.pod_cidrs.empty()) {
    std::string text = conf::render_conflist(o.conflist);
    std::string dir = conf::under_root(o.root, r.dirs.conf_dir);
    make_dirs(dir, 0755);
    // atomic_write's temporary name (".10-knit.conflist.tmp.<pid>") has an extension runtimes
    // ignore, and containerd reloads on the rename (it ignores Create events).
    atomic_write(dir, o.conflist_name, text, 0644);
    r.conflist = str(r.dirs.conf_dir, '/', o.conflist_name);
  }
  return r;
}

std::vector<std::string> uninstall(const Options& o) {
  conf::CniDirs d = resolve_dirs(o);
  std::vector<std::string> removed;
  std::string conflist = str(d.conf_dir, '/', o.conflist_name);
  std::string binary = str(d.bin_dir, '/', kBinaryName);
  if (remove_file(conf::under_root(o.root, conflist))) {
    fsync_dir(dir_of(conf::under_root(o.root, conflist)));
    removed.push_back(conflist);
  }
  if (remove_file(conf::under_root(o.root, binary))) {
    fsync_dir(dir_of(conf::under_root(o.root, binary)));
    removed.push_back(binary);
  }
  return removed;
}

std::string usage() {
  return "usage: knit install [--config FILE] [--root DIR] [--containerd-config FILE]\n"
         "                    [--cni-bin-dir DIR] [--cni-conf-dir DIR] [--conflist-name NAME]\n"
         "                    [--pod-cidr CIDR]... [--mtu N] [--agent-mode MODE]\n"
         "                    [--source FILE] [--uninstall]\n"
         "\n"
         "Copies this binary to <bin dir>/knit (temporary file + rename, never a partial file)\n"
         "and, when --pod-cidr is given, writes <conf dir>/<conflist name>; otherwise the agent\n"
         "writes the conflist from its Node's podCIDRs. The directories come from the flags,\n"
         "else the [cni] keys of --config, else containerd's config (k3s's\n"
         "/var/lib/rancher/k3s/agent/etc/containerd/config.toml, then\n"
         "/etc/containerd/config.toml), else /opt/cni/bin and /etc/cni/net.d.\n"
         "--uninstall removes the conflist, then the binary.\n"
         "--root DIR: the host's filesystem is seen under DIR (all paths are host paths).\n";
}

std::optional<Options> parse_args(int argc, const char* const* argv) {
  Options o;
  struct Arg {
    std::string_view name;
    std::optional<std::string_view> value;
  };
  auto split_arg = [](std::string_view a) {
    auto eq = a.find('=');
    if (a.substr(0, 2) != "--" || eq == std::string_view::npos) return Arg{a, std::nullopt};
    return Arg{a.substr(0, eq), a.substr(eq + 1)};
  };
  auto value_of = [&](int& i, const Arg& a) -> std::string_view {
    if (a.value) return *a.value;
    if (i + 1 >= argc) bad_flag(a.name, "needs a value");
    return argv[++i];
  };
  for (int i = 0; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") return std::nullopt;
  }
  // --config first: flags override it, wherever they are.
  for (int i = 0; i < argc; ++i) {
    Arg a = split_arg(argv[i]);
    if (a.name != "--config") continue;
    conf::AgentConfig c = conf::load_agent_config(std::string(value_of(i, a)));
    o.containerd_config = c.containerd_config;
    o.bin_dir = c.cni_bin_dir;
    o.conf_dir = c.cni_conf_dir;
    o.conflist_name = c.conflist_name;
    o.conflist.mtu = c.mtu;
    o.conflist.agent_mode = c.agent_mode;
    conf::AgentConfig defaults;
    if (c.data_dir != defaults.data_dir) o.conflist.data_dir = c.data_dir;
    if (c.socket_path != defaults.socket_path) o.conflist.agent_socket = c.socket_path;
  }
  auto path_value = [&](int& i, const Arg& a) {
    std::string v(value_of(i, a));
    if (v.empty()) bad_flag(a.name, "must not be empty");
    return v;
  };
  for (int i = 0; i < argc; ++i) {
    Arg a = split_arg(argv[i]);
    if (a.name == "--config") {
      value_of(i, a);
    } else if (a.name == "--root") {
      o.root = path_value(i, a);
    } else if (a.name == "--containerd-config") {
      o.containerd_config = path_value(i, a);
    } else if (a.name == "--cni-bin-dir") {
      o.bin_dir = path_value(i, a);
    } else if (a.name == "--cni-conf-dir") {
      o.conf_dir = path_value(i, a);
    } else if (a.name == "--conflist-name") {
      o.conflist_name = path_value(i, a);
      if (o.conflist_name.find('/') != std::string::npos ||
          !o.conflist_name.ends_with(".conflist")) {
        bad_flag(a.name, str("\"", o.conflist_name, "\" is not a file name ending in .conflist"));
      }
    } else if (a.name == "--source") {
      o.source = path_value(i, a);
    } else if (a.name == "--pod-cidr") {
      std::string_view v = value_of(i, a);
      auto p = Prefix::parse(v);
      if (!p || v.find('/') == std::string_view::npos || !p->is_network()) {
        bad_flag(a.name, str("\"", v, "\" is not a network CIDR (like 10.244.1.0/24)"));
      }
      o.conflist.pod_cidrs.push_back(*p);
    } else if (a.name == "--mtu") {
      std::string_view v = value_of(i, a);
      uint64_t n = 0;
      if (!parse_uint(v, n) || (n != 0 && (n < 68 || n > 65535))) {
        bad_flag(a.name, str("\"", v, "\" is not 0 or 68 to 65535"));
      }
      o.conflist.mtu = static_cast<uint32_t>(n);
    } else if (a.name == "--agent-mode") {
      std::string_view v = value_of(i, a);
      if (v == "off") o.conflist.agent_mode = conf::AgentMode::kOff;
      else if (v == "best-effort") o.conflist.agent_mode = conf::AgentMode::kBestEffort;
      else if (v == "required") o.conflist.agent_mode = conf::AgentMode::kRequired;
      else bad_flag(a.name, str("\"", v, "\" is not one of off, best-effort, required"));
    } else if (a.name == "--uninstall") {
      o.uninstall = true;
    } else {
      fail(Code::kInvalidConfig, str("unknown argument \"", a.name, "\" (knit install --help)"));
    }
  }
  return o;
}

int main(int argc, char** argv) {
  log::init_from_env(log::Level::kInfo);
  std::optional<Options> o;
  try {
    o = parse_args(argc - 2, argv + 2);
  } catch (const Error& e) {
    log::error(str("install: ", e.what()));
    return 2;
  }
  if (!o) {
    std::string u = usage();
    (void)::write(1, u.data(), u.size());
    return 0;
  }
  try {
    if (o->uninstall) {
      auto removed = uninstall(*o);
      if (removed.empty()) log::info("uninstall: nothing to remove");
      for (const auto& p : removed) log::info(str("uninstall: removed ", p));
      return 0;
    }
    Report r = install(*o);
    log::info(str("install: CNI directories from ", r.dirs.origin, ": bin ", r.dirs.bin_dir,
                  ", conf ", r.dirs.conf_dir));
    log::info(str("install: ", r.binary, r.binary_changed ? " installed" : " already up to date"));
    if (r.conflist) {
      log::info(str("install: wrote ", *r.conflist));
    } else {
      log::info("install: conflist left to the agent (no --pod-cidr)");
    }
    return 0;
  } catch (const Error& e) {
    log::error(str(o->uninstall ? "uninstall: " : "install: ", e.what()));
    return 1;
  }
}

}  // namespace knit::install
