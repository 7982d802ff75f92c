// A real CNI client: podman 4 (CNI backend) runs containers on a knit conflist.
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>

#include "harness.hpp"

using namespace knit::test;
namespace fs = std::filesystem;

namespace {

bool podman_available() {
  return netns_available() && sh("command -v podman && test -x /usr/sbin/runc && test -x "
                                 "/bin/busybox").status == 0;
}

struct PodmanPrecondition {
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    boost::test_tools::assertion_result r(podman_available());
    if (!r) r.message() << "needs root, podman, runc and busybox-static (install/deps.sh)";
    return r;
  }
};

struct Podman {
  explicit Podman(Node& node) : node(node) {
    node.net = "knitpod";
    // podman refuses a runroot longer than 50 characters.
    dir = "/run/knit-t-pm-" + std::to_string(getpid());
    fs::create_directories(dir + "/conf");
    fs::create_directories(dir + "/rootfs/bin");
    for (const char* d : {"proc", "sys", "dev", "etc", "tmp"}) {
      fs::create_directories(dir + "/rootfs/" + d);
    }
    fs::copy_file("/bin/busybox", dir + "/rootfs/bin/busybox");
    for (const char* app : {"sh", "ip", "ping", "nc", "sleep", "cat", "echo"}) {
      fs::create_symlink("busybox", dir + "/rootfs/bin/" + app);
    }
    std::ofstream(dir + "/conf/10-knit.conflist")
        << R"({"cniVersion":"0.4.0","name":"knitpod","plugins":[{"type":"knit","agent":"off",)"
        << R"("dataDir":")" << node.data_dir << R"(","ipam":{"ranges":[[{"subnet":"10.30.0.0/24"}]]}}]})";
    std::ofstream(dir + "/containers.conf")
        << "[network]\nnetwork_backend = \"cni\"\ncni_plugin_dirs = [\""
        << fs::path(knit_binary()).parent_path().string() << "\", \"/usr/lib/cni\"]\n"
        << "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n";
  }
  ~Podman() {
    podman("rm -af -t 0");
    sh("rm -rf '" + dir + "'");
  }

  Proc podman(const std::string& args) const {
    return sh("CONTAINERS_CONF=" + dir + "/containers.conf nsenter --net=" + node.ns.path() +
                  " podman --root " + dir + "/root --runroot " + dir + "/runroot --runtime "
                  "/usr/sbin/runc --cni-config-dir " + dir + "/conf " + args,
              {}, std::chrono::seconds(120));
  }

  /// `podman run`; options go before --rootfs, since what follows the rootfs is the command.
  Proc run(const std::string& name, const std::string& opts, const std::string& cmd) const {
    return podman("run --name " + name + " --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "
                  "--network knitpod " + opts + " --rootfs " + dir + "/rootfs " + cmd);
  }

  Node& node;
  std::string dir;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(cni_podman)

BOOST_AUTO_TEST_CASE(podman_containers_get_addresses_and_talk,
                     *boost::unit_test::precondition(PodmanPrecondition())) {
  Node node("podman");
  Podman pm(node);
  // A long-running container, then a second one that reaches it.
  Proc a = pm.run("knit-a", "-d", "/bin/sleep 120");
  BOOST_REQUIRE_MESSAGE(a.status == 0, a.out << a.err);
  Proc ip = pm.podman("inspect -f '{{.NetworkSettings.Networks.knitpod.IPAddress}}' knit-a");
  BOOST_REQUIRE_MESSAGE(ip.status == 0, ip.err);
  std::string a_ip = ip.out.substr(0, ip.out.find('\n'));
  BOOST_TEST(a_ip.rfind("10.30.0.", 0) == 0u, a_ip);
  BOOST_TEST(node.attachments() == 1u);

  Proc b = pm.run("knit-b", "--rm",
                  "/bin/sh -c 'ip -4 -o addr show eth0; ping -c 1 -W 2 " + a_ip + "'");
  BOOST_TEST(b.status == 0, b.out << b.err);
  BOOST_TEST(b.out.find("10.30.0.") != std::string::npos, b.out);
  BOOST_TEST(b.out.find("1 packets received") != std::string::npos, b.out);

  // Removing the containers runs DEL: the store ends empty.
  BOOST_TEST(pm.podman("rm -f -t 0 knit-a").status == 0);
  BOOST_TEST(node.attachments() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
