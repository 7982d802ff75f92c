// `knit lab` end to end, as a person uses it: up on a manifests directory, status, probes over
// TCP, UDP and SCTP (numeric and named ports), pods added and removed as files, two labs at once,
// a crashed supervisor, and down leaving nothing behind. Every lab is named t<pid>-<tag> and
// taken down by its fixture, pass or fail.
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test/netns/fixture.hpp"

namespace fs = std::filesystem;
using namespace knit::test;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

bool exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

/// Two namespaces, four pods. Every pod serves 80/TCP, 81/UDP and 82/SCTP under e2e-style names;
/// "web" is a named port that means 8080 on x/a and y/b, 80 on x/b (a second name for a served
/// port), and nothing on y/a, whose sidecar (a restartable init container) serves 9090.
/// Namespace "y" is quoted: unquoted it is YAML 1.1's true, as kubectl reads it too.
constexpr const char* kPods = R"(apiVersion: v1
kind: Namespace
metadata: {name: x}
---
apiVersion: v1
kind: Namespace
metadata: {name: "y"}
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {namespace: x, name: a, labels: {pod: a}}
  spec:
    containers:
    - name: c
      image: busybox
      ports:
      - {name: serve-80-tcp, containerPort: 80}
      - {name: serve-81-udp, containerPort: 81, protocol: UDP}
      - {name: serve-82-sctp, containerPort: 82, protocol: SCTP}
      - {name: web, containerPort: 8080}
- apiVersion: v1
  kind: Pod
  metadata: {namespace: x, name: b, labels: {pod: b}}
  spec:
    containers:
    - name: c
      image: busybox
      ports:
      - {name: serve-80-tcp, containerPort: 80}
      - {name: serve-81-udp, containerPort: 81, protocol: UDP}
      - {name: serve-82-sctp, containerPort: 82, protocol: SCTP}
      - {name: web, containerPort: 80}
)"
                              R"(---
{"apiVersion": "v1", "kind": "Pod",
 "metadata": {"namespace": "y", "name": "a", "labels": {"pod": "a"}},
 "spec": {
   "initContainers": [{"name": "sidecar", "image": "busybox", "restartPolicy": "Always",
                       "ports": [{"name": "sidecar", "containerPort": 9090}]}],
   "containers": [{"name": "c", "image": "busybox", "ports": [
     {"name": "serve-80-tcp", "containerPort": 80},
     {"name": "serve-81-udp", "containerPort": 81, "protocol": "UDP"},
     {"name": "serve-82-sctp", "containerPort": 82, "protocol": "SCTP"}]}]}}
---
apiVersion: v1
kind: Pod
metadata: {namespace: "y", name: b, labels: {pod: b}}
spec:
  containers:
  - name: c
    image: busybox
    ports:
    - {name: serve-80-tcp, containerPort: 80}
    - {name: serve-81-udp, containerPort: 81, protocol: UDP}
    - {name: serve-82-sctp, containerPort: 82, protocol: SCTP}
    - {name: web, containerPort: 8080}
)";

constexpr const char* kPodC = R"({"apiVersion": "v1", "kind": "Pod",
 "metadata": {"namespace": "x", "name": "c"},
 "spec": {"containers": [{"name": "c", "image": "busybox",
                          "ports": [{"name": "serve-80-tcp", "containerPort": 80}]}]}}
)";

const std::vector<std::string> kFour = {"x/a", "x/b", "y/a", "y/b"};

/// One lab: a temporary manifests directory and `knit lab` commands on it; down on destruction.
class Lab {
 public:
  explicit Lab(const std::string& tag) : name_("t" + std::to_string(getpid()) + "-" + tag) {
    char tmpl[] = "/tmp/knit-t-lab-XXXXXX";
    BOOST_REQUIRE(mkdtemp(tmpl) != nullptr);
    dir_ = tmpl;
  }
  ~Lab() {
    Proc down = knit({"down", "--name", name_}, 60s);
    if (down.status != 0) BOOST_TEST_MESSAGE("knit lab down --name " << name_ << ": " << down.err);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  Lab(const Lab&) = delete;
  Lab& operator=(const Lab&) = delete;

  const std::string& name() const { return name_; }
  const std::string& dir() const { return dir_; }
  std::string run_dir() const { return "/run/knit/lab/" + name_; }
  std::string node_netns() const { return "/run/netns/knit-lab-" + name_; }

  /// Writes a manifest file the way an editor that saves atomically does.
  void write(const std::string& file, const std::string& text) const {
    std::string tmp = dir_ + "/." + file + ".tmp";
    {
      std::ofstream out(tmp);
      out << text;
    }
    fs::rename(tmp, dir_ + "/" + file);
  }
  void remove(const std::string& file) const { fs::remove(dir_ + "/" + file); }

  Proc knit(std::vector<std::string> args, std::chrono::milliseconds timeout = 120s) const {
    args.insert(args.begin(), {knit_binary(), "lab"});
    return run(args, {}, {}, {}, timeout);
  }
  /// `knit lab up` with --no-agent unless `agent`; fails the test when it fails.
  void up(bool agent = false) const {
    std::vector<std::string> args = {"up", "--dir", dir_, "--name", name_};
    if (!agent) args.push_back("--no-agent");
    Proc p = knit(args, 180s);
    BOOST_REQUIRE_MESSAGE(p.status == 0, "knit lab up: " << p.status << "\n" << p.err << p.out);
  }
  json status() const {
    Proc p = knit({"status", "--name", name_, "-o", "json"});
    BOOST_REQUIRE_MESSAGE(p.status == 0, "knit lab status: " << p.status << "\n" << p.err);
    return json::parse(p.out);
  }
  /// `knit lab probe -o json`.
  json probe(const std::string& port, const std::string& protocol, int family = 4) const {
    Proc p = knit({"probe", "--name", name_, "--port", port, "--protocol", protocol, "--family",
                   std::to_string(family), "--timeout", "300ms", "-o", "json"});
    BOOST_REQUIRE_MESSAGE(p.status == 0, "knit lab probe: " << p.status << "\n" << p.err);
    return json::parse(p.out);
  }

 private:
  std::string name_;
  std::string dir_;
};

/// "namespace/name" of every pod in a status.
std::vector<std::string> pod_keys(const json& status) {
  std::vector<std::string> out;
  for (const auto& p : status.at("pods")) {
    out.push_back(p.at("namespace").get<std::string>() + "/" + p.at("name").get<std::string>());
  }
  return out;
}

/// The cells of a probe's matrix that differ from `expect(from, to)`, one line each.
std::string wrong_cells(const json& m,
                        const std::function<bool(const std::string&, const std::string&)>& expect) {
  std::string out;
  for (const auto& from : m.at("pods")) {
    for (const auto& to : m.at("pods")) {
      bool got = m.at("matrix").at(from.get<std::string>()).at(to.get<std::string>()).get<bool>();
      if (got != expect(from, to)) {
        out += from.get<std::string>() + " -> " + to.get<std::string>() + ": " +
               (got ? "reachable" : "blocked") + "\n";
      }
    }
  }
  return out;
}

auto all = [](const std::string&, const std::string&) { return true; };

/// The names (not paths) in /run/netns that belong to lab `name`.
std::vector<std::string> lab_namespaces(const std::string& name) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/run/netns", ec)) {
    std::string n = e.path().filename();
    if (n == "knit-lab-" + name || n.rfind("knit-lab-" + name + ".", 0) == 0) out.push_back(n);
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(lab_sandbox, *boost::unit_test::precondition(NeedsNetns()))

BOOST_AUTO_TEST_CASE(up_status_and_probes_over_every_protocol_and_named_ports) {
  Lab lab("main");
  lab.write("pods.yaml", kPods);
  lab.up();

  json st = lab.status();
  BOOST_TEST(st.at("running") == true);
  BOOST_CHECK(pod_keys(st) == kFour);
  BOOST_TEST(st.at("node").at("netns") == lab.node_netns());
  BOOST_TEST(exists(lab.node_netns()));
  for (const auto& p : st.at("pods")) {
    std::string netns = p.at("netns");
    BOOST_TEST(netns.rfind("/run/netns/knit-lab-" + lab.name() + ".", 0) == 0u, netns);
    BOOST_TEST(exists(netns), netns);
    BOOST_REQUIRE(p.at("ips").size() == 2u);
    BOOST_TEST(p.at("ips")[0].get<std::string>().rfind("10.77.", 0) == 0u);
    BOOST_TEST(p.at("ips")[1].get<std::string>().rfind("fd00:77:", 0) == 0u);
    // The pod's own view agrees: its eth0 holds the address the lab reports.
    Proc ip = sh("ip -o addr show dev eth0", netns);
    BOOST_TEST(ip.out.find(p.at("ips")[0].get<std::string>() + "/32") != std::string::npos, ip.out);
  }

  for (auto [port, proto] : {std::pair{"80", "TCP"}, {"81", "UDP"}, {"82", "SCTP"}}) {
    for (int family : {4, 6}) {
      json m = lab.probe(port, proto, family);
      BOOST_TEST(m.at("port") == std::stoi(port));
      BOOST_TEST(m.at("protocol") == proto);
      BOOST_CHECK(m.at("pods").get<std::vector<std::string>>() == kFour);
      BOOST_TEST(wrong_cells(m, all).empty(), proto << "/" << port << " IPv" << family << ":\n"
                                                    << wrong_cells(m, all));
    }
  }
  // Named ports resolve per destination; a destination without the name is unreachable by it.
  json web = lab.probe("web", "TCP");
  BOOST_TEST(web.at("port") == "web");
  auto not_y_a = [](const std::string&, const std::string& to) { return to != "y/a"; };
  BOOST_TEST(wrong_cells(web, not_y_a).empty(), wrong_cells(web, not_y_a));
  json udp_name = lab.probe("serve-81-udp", "UDP");
  BOOST_TEST(wrong_cells(udp_name, all).empty(), wrong_cells(udp_name, all));
  // The sidecar's port is served, and only by the pod that has it.
  json sidecar = lab.probe("9090", "TCP");
  auto to_y_a = [](const std::string&, const std::string& to) { return to == "y/a"; };
  BOOST_TEST(wrong_cells(sidecar, to_y_a).empty(), wrong_cells(sidecar, to_y_a));
  // A port nobody serves is reported blocked, for every protocol: the probes can fail.
  for (const char* proto : {"TCP", "UDP", "SCTP"}) {
    json none = lab.probe("83", proto);
    auto nothing = [](const std::string&, const std::string&) { return false; };
    BOOST_TEST(wrong_cells(none, nothing).empty(), proto << ":\n" << wrong_cells(none, nothing));
  }
  // The table says why a column is unreachable by name.
  Proc table = lab.knit({"probe", "--name", lab.name(), "--port", "web", "--timeout", "300ms"});
  BOOST_TEST(table.status == 0);
  BOOST_TEST(table.out.find("y/a has no TCP port named web") != std::string::npos, table.out);
  BOOST_TEST(table.out.find("x/a   -    .    ?    .") != std::string::npos, table.out);
}

BOOST_AUTO_TEST_CASE(pods_follow_the_files_of_the_directory) {
  Lab lab("files");
  lab.write("pods.yaml", kPods);
  lab.up();
  lab.write("c.json", kPodC);
  // The supervisor sees the file by itself (inotify)...
  BOOST_TEST(eventually([&] { return lab.status().at("pods").size() == 5u; }, 10s));
  // ... and a probe always sees the directory as it is now.
  json m = lab.probe("80", "TCP");
  BOOST_CHECK(m.at("pods").get<std::vector<std::string>>() ==
              (std::vector<std::string>{"x/a", "x/b", "x/c", "y/a", "y/b"}));
  BOOST_TEST(wrong_cells(m, all).empty(), wrong_cells(m, all));
  std::string c_netns = "/run/netns/knit-lab-" + lab.name() + ".x.c";
  BOOST_TEST(exists(c_netns));

  // A changed port list is served as it is now, the kept port included.
  std::string c2 = kPodC;
  c2.replace(c2.find("}]}]}}"), 6, "}, {\"containerPort\": 8081}]}]}}");
  lab.write("c.json", c2);
  auto only_to_c = [](const std::string&, const std::string& to) { return to == "x/c"; };
  json m8081 = lab.probe("8081", "TCP");
  BOOST_TEST(wrong_cells(m8081, only_to_c).empty(), wrong_cells(m8081, only_to_c));
  json m80 = lab.probe("80", "TCP");
  BOOST_TEST(wrong_cells(m80, all).empty(), wrong_cells(m80, all));

  lab.remove("c.json");
  BOOST_TEST(eventually([&] { return lab.status().at("pods").size() == 4u; }, 10s));
  BOOST_TEST(!exists(c_netns));
  json after = lab.probe("80", "TCP");
  BOOST_CHECK(after.at("pods").get<std::vector<std::string>>() == kFour);
  // Its node-side veth went with it.
  auto host_veths = [&] {
    return sh("ip -o link show | grep -c '^[0-9]*: knit' || true", lab.node_netns()).out;
  };
  BOOST_TEST(eventually([&] { return host_veths() == "4\n"; }, 5s), host_veths());
}

BOOST_AUTO_TEST_CASE(two_labs_at_once_and_down_leaves_nothing) {
  std::optional<Lab> one(std::in_place, "one");
  Lab two("two");
  one->write("pods.yaml", kPods);
  two.write("pods.yaml", kPods);
  one->up();
  two.up();
  // Same pod addresses, different node namespaces.
  BOOST_CHECK(one->status().at("pods")[0].at("ips") == two.status().at("pods")[0].at("ips"));
  BOOST_TEST(wrong_cells(one->probe("80", "TCP"), all).empty());
  BOOST_TEST(wrong_cells(two.probe("80", "TCP"), all).empty());
  // A second lab of the same name is refused.
  Proc again = one->knit({"up", "--dir", one->dir(), "--name", one->name(), "--no-agent"});
  BOOST_TEST(again.status == 1);
  BOOST_TEST(again.err.find("already up") != std::string::npos, again.err);

  std::string name = one->name(), run_dir = one->run_dir();
  Proc down = one->knit({"down", "--name", name});
  BOOST_TEST(down.status == 0, down.err);
  BOOST_TEST(down.out == "lab " + name + " is down\n");
  BOOST_TEST(lab_namespaces(name).empty());
  BOOST_TEST(!exists(run_dir));
  Proc down2 = one->knit({"down", "--name", name});
  BOOST_TEST(down2.status == 0);
  BOOST_TEST(down2.out == "lab " + name + " was not up\n");
  Proc status = one->knit({"status", "--name", name});
  BOOST_TEST(status.status == 1);
  BOOST_TEST(status.err.find("is not up") != std::string::npos, status.err);
  one.reset();
  // The other lab did not notice.
  BOOST_TEST(wrong_cells(two.probe("80", "TCP"), all).empty());
  BOOST_TEST(lab_namespaces(two.name()).size() == 5u);
  // Nothing of either reached the machine's own namespace.
  Proc host = sh("ip -o link show | grep -E ': (knit|up0)' || true");
  BOOST_TEST(host.out.empty(), host.out);
}

BOOST_AUTO_TEST_CASE(down_cleans_up_after_a_crashed_supervisor) {
  Lab lab("crash");
  lab.write("pods.yaml", kPods);
  lab.up();
  int pid = lab.status().at("supervisor").at("pid");
  BOOST_REQUIRE(kill(pid, SIGKILL) == 0);
  BOOST_TEST(eventually(
      [&] {
        return lab.knit({"status", "--name", lab.name()}).status == 1;
      },
      5s));
  Proc st = lab.knit({"status", "--name", lab.name()});
  BOOST_TEST(st.out.find("NOT RUNNING") != std::string::npos, st.out);
  Proc probe = lab.knit({"probe", "--name", lab.name()});
  BOOST_TEST(probe.status == 1);
  BOOST_TEST(probe.err.find("not running") != std::string::npos, probe.err);
  // up refuses nothing: the stale lab is swept first.
  lab.up();
  BOOST_TEST(wrong_cells(lab.probe("80", "TCP"), all).empty());
  pid = lab.status().at("supervisor").at("pid");
  BOOST_REQUIRE(kill(pid, SIGKILL) == 0);
  Proc down = lab.knit({"down", "--name", lab.name()});
  BOOST_TEST(down.status == 0, down.err);
  BOOST_TEST(lab_namespaces(lab.name()).empty());
  BOOST_TEST(!exists(lab.run_dir()));
}

BOOST_AUTO_TEST_CASE(a_failed_up_says_why_and_leaves_nothing) {
  Lab lab("fail");
  lab.write("pods.yaml", kPods);
  Proc nodir = lab.knit({"up", "--dir", lab.dir() + "/nope", "--name", lab.name()});
  BOOST_TEST(nodir.status == 1);
  BOOST_TEST(nodir.err.find("open --dir " + lab.dir() + "/nope") != std::string::npos, nodir.err);
  // A directory where the agent's socket belongs: the agent cannot bind it and exits.
  fs::create_directories(lab.run_dir() + "/agent.sock/x");
  Proc up = lab.knit({"up", "--dir", lab.dir(), "--name", lab.name()});
  BOOST_TEST(up.status == 1);
  BOOST_TEST(up.err.find("start knit agent: it exited") != std::string::npos, up.err);
  BOOST_TEST(up.err.find("lab.log: ") != std::string::npos, up.err);  // the agent's own words
  BOOST_TEST(lab_namespaces(lab.name()).empty());
  BOOST_TEST(!exists(lab.run_dir()));
}

BOOST_AUTO_TEST_CASE(sctp_probes_really_cross_the_node) {
  Lab lab("sctp");
  lab.write("pods.yaml", kPods);
  lab.up();
  // Pod-to-pod traffic is forwarded by the node namespace; drop SCTP there.
  Proc nft =
      sh("nft add table inet t && "
         "nft add chain inet t pass '{ type filter hook forward priority 0; }' && "
         "nft add rule inet t pass meta l4proto sctp drop",
         lab.node_netns());
  BOOST_REQUIRE_MESSAGE(nft.status == 0, nft.err);
  auto self_only = [](const std::string& from, const std::string& to) { return from == to; };
  for (int family : {4, 6}) {
    json sctp = lab.probe("82", "SCTP", family);
    BOOST_TEST(wrong_cells(sctp, self_only).empty(), "IPv" << family << ":\n"
                                                           << wrong_cells(sctp, self_only));
  }
  json tcp = lab.probe("80", "TCP");
  BOOST_TEST(wrong_cells(tcp, all).empty(), wrong_cells(tcp, all));
  // The port is matched too: dropping another SCTP port changes nothing.
  BOOST_REQUIRE(sh("nft flush chain inet t pass && nft add rule inet t pass sctp dport 83 drop",
                   lab.node_netns())
                    .status == 0);
  json other = lab.probe("82", "SCTP");
  BOOST_TEST(wrong_cells(other, all).empty(), wrong_cells(other, all));
}

BOOST_AUTO_TEST_CASE(with_the_agent_a_probe_sees_the_policy_just_written) {
  Lab lab("agent");
  lab.write("pods.yaml", kPods);
  lab.up(/*agent=*/true);
  json st = lab.status();
  BOOST_TEST(st.at("agent").at("enabled") == true);
  BOOST_TEST(st.at("agent").at("pid").get<int>() > 0);
  BOOST_TEST(wrong_cells(lab.probe("80", "TCP"), all).empty());
  // No sleep: probe waits until the agent has applied the directory as it is.
  lab.write("deny.yaml", R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: x, name: deny-ingress}
spec:
  podSelector: {}
)");
  auto into_x_denied = [](const std::string& from, const std::string& to) {
    return from == to || to.rfind("x/", 0) != 0;
  };
  for (const char* proto : {"TCP", "SCTP"}) {
    json m = lab.probe(proto == std::string("TCP") ? "80" : "82", proto);
    BOOST_TEST(wrong_cells(m, into_x_denied).empty(), proto << ":\n"
                                                            << wrong_cells(m, into_x_denied));
  }
  lab.remove("deny.yaml");
  json back = lab.probe("80", "TCP");
  BOOST_TEST(wrong_cells(back, all).empty(), wrong_cells(back, all));
}

BOOST_AUTO_TEST_SUITE_END()
