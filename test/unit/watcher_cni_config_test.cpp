// The conflist the agent writes (watcher/cni_config.hpp): golden JSON, what the plugin makes of
// it, and the write-only-when-changed file handling.
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "conf/netconf.hpp"
#include "core/fs.hpp"
#include "test/print.hpp"
#include "watcher/cni_config.hpp"
#include "test/files.hpp"

using knit::test::slurp;

using namespace knit;
using namespace knit::watcher;

namespace {

Prefix pfx(const char* s) { return *Prefix::parse(s); }

Node dual_stack() {
  Node n;
  n.name = "kind-worker";
  n.pod_cidrs = {pfx("10.244.1.0/24"), pfx("fd00:10:244:1::/64")};
  return n;
}

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/knit-cni-config-test.XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string path;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(watcher_cni_config)

BOOST_AUTO_TEST_CASE(golden_dual_stack_conflist) {
  CniConfigOptions o;
  o.mtu = 1450;
  o.agent_socket = "/run/knit/agent.sock";
  o.data_dir = "/run/knit";
  auto text = render_cni_config(dual_stack(), o);
  BOOST_REQUIRE(text.has_value());
  std::string golden = std::string(KNIT_TEST_DATA) + "/golden/conflist-dual-stack.json";
  if (std::getenv("KNIT_UPDATE_GOLDEN")) std::ofstream(golden) << *text;
  BOOST_TEST(*text == slurp(golden));
}

BOOST_AUTO_TEST_CASE(no_pod_cidr_of_an_enabled_family_means_nothing_to_write) {
  Node n = dual_stack();
  CniConfigOptions o;
  o.ipv4 = false;
  auto v6 = render_cni_config(n, o);
  BOOST_REQUIRE(v6.has_value());
  BOOST_TEST(v6->find("10.244.1.0/24") == std::string::npos);
  BOOST_TEST(v6->find("fd00:10:244:1::/64") != std::string::npos);
  o.ipv6 = false;
  BOOST_TEST(!render_cni_config(n, o).has_value());
  n.pod_cidrs.clear();
  BOOST_TEST(!render_cni_config(n, CniConfigOptions{}).has_value());
}

BOOST_AUTO_TEST_CASE(the_written_file_is_what_the_plugin_decodes) {
  TempDir dir;
  CniConfigOptions o;
  o.network = "kindnet-like";
  o.mtu = 1400;
  o.data_dir = dir.path + "/state";
  o.agent_mode = conf::AgentMode::kBestEffort;
  auto text = render_cni_config(dual_stack(), o);
  BOOST_REQUIRE(text.has_value());
  BOOST_TEST(write_cni_config(dir.path + "/net.d", *text));
  std::string path = dir.path + "/net.d/10-knit.conflist";
  auto on_disk = read_file(path);
  BOOST_REQUIRE(on_disk.has_value());

  conf::CniEnv env;
  env.command = conf::Command::kAdd;
  env.container_id = "c";
  env.netns = "/run/netns/x";
  env.ifname = "eth0";
  auto nc = conf::decode_netconf(*on_disk, env);
  BOOST_TEST(nc.name == "kindnet-like");
  BOOST_TEST(nc.type == "knit");
  BOOST_TEST(nc.cni_version.to_string() == "1.1.0");  // the highest of cniVersions
  BOOST_REQUIRE(nc.mtu.has_value());
  BOOST_TEST(*nc.mtu == 1400u);
  BOOST_TEST(nc.data_dir == o.data_dir);
  BOOST_TEST((nc.agent_mode == conf::AgentMode::kBestEffort));
  BOOST_REQUIRE(nc.ipam.ranges.size() == 2u);
  BOOST_TEST(nc.ipam.ranges[0].at(0).subnet == pfx("10.244.1.0/24"));
  BOOST_TEST(nc.ipam.ranges[1].at(0).subnet == pfx("fd00:10:244:1::/64"));

  struct stat st {};
  BOOST_REQUIRE(stat(path.c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 0777) == 0644u);
  // Unchanged content is not rewritten (runtimes reload on every write)...
  BOOST_TEST(!write_cni_config(dir.path + "/net.d", *text));
  struct stat again {};
  stat(path.c_str(), &again);
  BOOST_TEST(again.st_ino == st.st_ino);
  // ...a change is, by rename (a new inode), and no temporary file stays behind.
  o.mtu = 1500;
  BOOST_TEST(write_cni_config(dir.path + "/net.d", *render_cni_config(dual_stack(), o)));
  stat(path.c_str(), &again);
  BOOST_TEST(again.st_ino != st.st_ino);
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path + "/net.d")) {
    (void)e;
    ++files;
  }
  BOOST_TEST(files == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
