// `knit install` into a temporary root: the binary lands whole (mode 0755, same bytes) by
// rename, even over a file that is being executed; the conflist is one the plugin accepts.
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "conf/netconf.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/str.hpp"
#include "install/install.hpp"

extern char** environ;

using knit::Code;
using knit::Error;
using knit::str;
namespace install = knit::install;

namespace {

class TempRoot {
 public:
  TempRoot() {
    char tmpl[] = "/tmp/knit-install-test.XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempRoot() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& host_path) const { return path_ + host_path; }

 private:
  std::string path_;
};

std::string self() {
  auto s = knit::read_file("/proc/self/exe");
  BOOST_TEST_REQUIRE(s.has_value());
  return *s;
}

struct stat stat_of(const std::string& path) {
  struct stat st {};
  BOOST_TEST_REQUIRE(::stat(path.c_str(), &st) == 0, "stat " << path);
  return st;
}

std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

install::Options options(const TempRoot& root) {
  install::Options o;
  o.root = root.path();
  return o;
}

/// Sets the umask for the scope: the installer must not depend on it.
struct Umask {
  explicit Umask(mode_t m) : old(::umask(m)) {}
  ~Umask() { ::umask(old); }
  mode_t old;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(install_install)

BOOST_AUTO_TEST_CASE(copies_the_running_binary_whole_and_executable) {
  TempRoot root;
  Umask strict(077);
  install::Report r = install::install(options(root));
  BOOST_TEST(r.binary == "/opt/cni/bin/knit");
  BOOST_TEST(r.binary_changed);
  BOOST_TEST(r.dirs.origin == "defaults");
  BOOST_TEST(!r.conflist.has_value());
  std::string target = root / "/opt/cni/bin/knit";
  struct stat st = stat_of(target);
  BOOST_TEST((st.st_mode & 07777) == 0755u);
  BOOST_TEST(knit::read_file(target).value() == self());
  BOOST_TEST(names_in(root / "/opt/cni/bin") == std::vector<std::string>{"knit"},
             boost::test_tools::per_element());
  BOOST_TEST(!std::filesystem::exists(root / "/etc/cni/net.d/10-knit.conflist"));
}

BOOST_AUTO_TEST_CASE(an_identical_binary_is_left_alone) {
  TempRoot root;
  install::install(options(root));
  ino_t before = stat_of(root / "/opt/cni/bin/knit").st_ino;
  install::Report r = install::install(options(root));
  BOOST_TEST(!r.binary_changed);
  BOOST_TEST(stat_of(root / "/opt/cni/bin/knit").st_ino == before);
}

// A runtime may be executing the old plugin right now. Writing into it would fail (ETXTBSY) or
// corrupt it; rename swaps the directory entry and the running process keeps its inode.
BOOST_AUTO_TEST_CASE(replaces_a_binary_that_is_running) {
  TempRoot root;
  std::string dir = root / "/opt/cni/bin";
  std::filesystem::create_directories(dir);
  std::string target = dir + "/knit";
  std::filesystem::copy_file("/bin/sleep", target);
  std::string old_content = knit::read_file(target).value();
  ino_t old_inode = stat_of(target).st_ino;

  pid_t pid = 0;
  const char* argv[] = {target.c_str(), "30", nullptr};
  BOOST_TEST_REQUIRE(posix_spawn(&pid, target.c_str(), nullptr, nullptr,
                                 const_cast<char* const*>(argv), environ) == 0);
  int old_fd = ::open(target.c_str(), O_RDONLY | O_CLOEXEC);
  BOOST_TEST_REQUIRE(old_fd >= 0);

  // Writing in place is what the kernel forbids while it runs (the reason for rename).
  int w = ::open(target.c_str(), O_WRONLY | O_CLOEXEC);
  bool busy = w < 0 && errno == ETXTBSY;
  if (w >= 0) ::close(w);

  install::Report r = install::install(options(root));
  BOOST_TEST(r.binary_changed);
  BOOST_TEST(knit::read_file(target).value() == self());
  BOOST_TEST(stat_of(target).st_ino != old_inode);
  BOOST_TEST((stat_of(target).st_mode & 07777) == 0755u);
  // The old file was never written to: a reader that had it open still sees all of it.
  std::string seen;
  char buf[65536];
  for (ssize_t n; (n = ::read(old_fd, buf, sizeof buf)) > 0;) seen.append(buf, static_cast<size_t>(n));
  ::close(old_fd);
  BOOST_TEST(seen == old_content);
  BOOST_TEST(::kill(pid, 0) == 0);  // still running
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  // Kernels have refused it with ETXTBSY; should one allow it, rename is still what keeps a
  // runtime from exec'ing a half-written plugin, and the checks above stand.
  if (!busy) BOOST_TEST_MESSAGE("this kernel lets a running binary be opened for writing");
}

BOOST_AUTO_TEST_CASE(leftovers_of_an_interrupted_install_are_removed) {
  TempRoot root;
  std::string dir = root / "/opt/cni/bin";
  std::filesystem::create_directories(dir);
  knit::atomic_write(dir, ".knit.tmp.12345", "half a binary", 0700);
  knit::atomic_write(dir, "ptp", "another plugin", 0755);
  install::install(options(root));
  BOOST_TEST(names_in(dir) == (std::vector<std::string>{"knit", "ptp"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_failed_install_leaves_the_old_binary) {
  TempRoot root;
  install::install(options(root));
  install::Options o = options(root);
  o.source = root / "/no/such/binary";
  try {
    install::install(o);
    BOOST_ERROR("no error");
  } catch (const Error& e) {
    BOOST_TEST((e.code() == Code::kIo));
    BOOST_TEST(std::string(e.what()) == str("read ", o.source, ": No such file or directory"));
  }
  BOOST_TEST(knit::read_file(root / "/opt/cni/bin/knit").value() == self());
}

BOOST_AUTO_TEST_CASE(writes_a_conflist_the_plugin_accepts_when_pod_cidrs_are_known) {
  TempRoot root;
  Umask strict(077);
  const char* argv[] = {"--root",          root.path().c_str(), "--pod-cidr", "10.244.1.0/24",
                        "--pod-cidr",      "fd00:10:244:1::/64", "--mtu",     "1450",
                        "--agent-mode=best-effort"};
  auto o = install::parse_args(9, argv);
  BOOST_TEST_REQUIRE(o.has_value());
  install::Report r = install::install(*o);
  BOOST_TEST(r.conflist.value() == "/etc/cni/net.d/10-knit.conflist");
  std::string path = root / "/etc/cni/net.d/10-knit.conflist";
  BOOST_TEST((stat_of(path).st_mode & 07777) == 0644u);
  BOOST_TEST(names_in(root / "/etc/cni/net.d") == std::vector<std::string>{"10-knit.conflist"},
             boost::test_tools::per_element());

  knit::conf::CniEnv env;
  env.command = knit::conf::Command::kAdd;
  knit::conf::NetConf nc = knit::conf::decode_netconf(knit::read_file(path).value(), env);
  BOOST_TEST(nc.name == "knit");
  BOOST_TEST(nc.type == "knit");
  BOOST_TEST(nc.cni_version.to_string() == "1.1.0");  // the highest of cniVersion(s)
  BOOST_TEST(nc.mtu.value() == 1450u);
  BOOST_TEST((nc.agent_mode == knit::conf::AgentMode::kBestEffort));
  BOOST_TEST_REQUIRE(nc.ipam.ranges.size() == 2u);
  BOOST_TEST(nc.ipam.ranges[0][0].subnet.to_string() == "10.244.1.0/24");
  BOOST_TEST(nc.ipam.ranges[1][0].subnet.to_string() == "fd00:10:244:1::/64");
}

BOOST_AUTO_TEST_CASE(installs_where_k3s_containerd_looks) {
  TempRoot root;
  std::filesystem::create_directories(root / "/var/lib/rancher/k3s/agent/etc/containerd");
  std::filesystem::copy_file(str(KNIT_TEST_DATA, "/install/k3s-1.32-v3.toml"),
                             root / std::string(knit::conf::kK3sContainerdConfig));
  install::Options o = options(root);
  o.conflist.pod_cidrs = {*knit::Prefix::parse("10.42.0.0/24")};
  install::Report r = install::install(o);
  BOOST_TEST(r.binary == "/var/lib/rancher/k3s/data/cni/knit");
  BOOST_TEST(r.conflist.value() == "/var/lib/rancher/k3s/agent/etc/cni/net.d/10-knit.conflist");
  BOOST_TEST(std::filesystem::exists(root / "/var/lib/rancher/k3s/data/cni/knit"));
  BOOST_TEST(std::filesystem::exists(root / "/var/lib/rancher/k3s/agent/etc/cni/net.d/10-knit.conflist"));
  BOOST_TEST(!std::filesystem::exists(root / "/opt/cni/bin"));
}

BOOST_AUTO_TEST_CASE(uninstall_removes_what_install_wrote) {
  TempRoot root;
  install::Options o = options(root);
  o.conflist.pod_cidrs = {*knit::Prefix::parse("10.244.0.0/24")};
  install::install(o);
  knit::atomic_write(root / "/etc/cni/net.d", "20-other.conflist", "{}", 0644);
  auto removed = install::uninstall(o);
  BOOST_TEST(removed == (std::vector<std::string>{"/etc/cni/net.d/10-knit.conflist", "/opt/cni/bin/knit"}),
             boost::test_tools::per_element());
  BOOST_TEST(names_in(root / "/etc/cni/net.d") == std::vector<std::string>{"20-other.conflist"},
             boost::test_tools::per_element());
  BOOST_TEST(names_in(root / "/opt/cni/bin").empty());
  BOOST_TEST(install::uninstall(o).empty());
}

BOOST_AUTO_TEST_CASE(arguments_take_the_agent_config_then_flags) {
  TempRoot root;
  knit::atomic_write(root.path(), "knit.toml",
                     "data_dir = \"/var/lib/knit\"\n[cni]\nconf_dir = \"/etc/cni/x.d\"\n"
                     "bin_dir = \"/usr/libexec/cni\"\nconflist_name = \"05-knit.conflist\"\nmtu = 1400\n",
                     0644);
  std::string config = root / "/knit.toml";
  const char* argv[] = {"--cni-bin-dir=/opt/cni/bin", "--config", config.c_str(), "--uninstall"};
  auto o = install::parse_args(4, argv);
  BOOST_TEST_REQUIRE(o.has_value());
  BOOST_TEST(o->bin_dir == "/opt/cni/bin");
  BOOST_TEST(o->conf_dir == "/etc/cni/x.d");
  BOOST_TEST(o->conflist_name == "05-knit.conflist");
  BOOST_TEST(o->conflist.mtu == 1400u);
  BOOST_TEST(o->conflist.data_dir == "/var/lib/knit");
  BOOST_TEST(o->conflist.agent_socket.empty());
  BOOST_TEST(o->uninstall);

  auto error_of = [](std::vector<const char*> a) -> std::string {
    try {
      install::parse_args(static_cast<int>(a.size()), a.data());
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  BOOST_TEST(error_of({"--pod-cidr", "10.244.1.1/24"}) ==
             "--pod-cidr: \"10.244.1.1/24\" is not a network CIDR (like 10.244.1.0/24)");
  BOOST_TEST(error_of({"--mtu", "9"}) == "--mtu: \"9\" is not 0 or 68 to 65535");
  BOOST_TEST(error_of({"--root"}) == "--root: needs a value");
  BOOST_TEST(error_of({"--force"}) == "unknown argument \"--force\" (knit install --help)");
  const char* help[] = {"--force", "-h"};
  BOOST_TEST(!install::parse_args(2, help).has_value());
}

BOOST_AUTO_TEST_SUITE_END()
