// The policy agent for real: golden rulesets in a kernel, a pod isolated from its first packet,
// connections cut when a change revokes them, restarts under traffic, bad input skipped,
// Services behind kube-proxy's DNAT and masquerade.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "conf/agent_proto.hpp"
#include "core/netns.hpp"
#include "core/unix_socket.hpp"
#include "harness.hpp"
#include "nft/apply.hpp"
#include "nft/render.hpp"
#include "traffic.hpp"
#include "watcher/compile.hpp"
#include "watcher/manifests.hpp"
#include "test/files.hpp"

using namespace knit;
using namespace knit::test;
using namespace std::chrono_literals;

namespace {

auto needs_netns() { return boost::unit_test::precondition(NeedsNetns()); }

/// A node with a running agent watching a manifests directory.
struct AgentNode : Node {
  explicit AgentNode(const std::string& tag) : Node(tag) {
    manifests = data_dir + "/manifests";
    socket = data_dir + "/agent.sock";
    sh("mkdir -p '" + manifests + "'");
  }

  /// Starts the agent; `env` ("NAME=value") is added to its environment, `args` to its flags.
  void start(const std::vector<std::string>& env = {}, const std::vector<std::string>& args = {}) {
    std::vector<std::string> argv{knit_binary(), "agent", "--manifests", manifests,
                                  "--node-name", "node1", "--socket",    socket,
                                  "--data-dir",  data_dir};
    argv.insert(argv.end(), args.begin(), args.end());
    agent = std::make_unique<Background>(argv, ns.path(), data_dir + "/agent.log", env);
    BOOST_REQUIRE_MESSAGE(eventually([&] { return status().synced; }, 5s),
                          "agent did not start:\n" << slurp(data_dir + "/agent.log"));
  }

  conf::AgentReply status() {
    try {
      return conf::decode_agent_reply(unix_request(socket, R"({"op":"status"})", 500ms));
    } catch (const std::exception&) {
      return {};
    }
  }

  /// Writes a manifest file atomically (as editors and kubectl-style tools do: rename).
  void write(const std::string& name, const std::string& yaml) {
    std::string tmp = manifests + "/." + name + ".tmp";
    std::ofstream(tmp) << yaml;
    BOOST_REQUIRE(rename(tmp.c_str(), (manifests + "/" + name).c_str()) == 0);
  }
  void remove(const std::string& name) { unlink((manifests + "/" + name).c_str()); }

  /// Waits until the agent has applied the directory as it is now.
  void applied() {
    conf::AgentRequest r;
    r.op = conf::AgentRequest::Op::kWait;
    r.digest = watcher::manifests_digest(manifests);
    r.timeout_ms = 5000;
    auto reply = conf::decode_agent_reply(unix_request(socket, conf::encode(r), 6s));
    BOOST_REQUIRE_MESSAGE(reply.ok, reply.error << "\n" << slurp(data_dir + "/agent.log"));
  }

  Proc add_pod(const std::string& pod_ns, const std::string& name, const TestNetns& pod,
               const std::string& mode = "required") {
    std::string c = config(R"([[{"subnet":"10.22.0.0/24"}]])", "1.1.0",
                           R"(,"agentSocket":")" + socket + R"(")");
    // config() says "agent":"off"; switch it to the requested mode.
    auto pos = c.find(R"("agent":"off")");
    c.replace(pos, std::string(R"("agent":"off")").size(), R"("agent":")" + mode + R"(")");
    return Node::add("c-" + pod_ns + "-" + name, pod, c, "eth0",
                     "IgnoreUnknown=1;K8S_POD_NAMESPACE=" + pod_ns + ";K8S_POD_NAME=" + name);
  }

  /// add_pod() that must succeed; the agent's log otherwise.
  Proc must_add_pod(const std::string& pod_ns, const std::string& name, const TestNetns& pod) {
    Proc r = add_pod(pod_ns, name, pod);
    BOOST_REQUIRE_MESSAGE(r.status == 0, r.out << slurp(data_dir + "/agent.log"));
    return r;
  }

  std::string manifests, socket;
  std::unique_ptr<Background> agent;
};

const char* kPods = R"(apiVersion: v1
kind: Namespace
metadata: {name: x}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x, labels: {app: web}}
spec: {containers: [{name: c, image: i, ports: [{containerPort: 80, name: http}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: x, labels: {app: client}}
spec: {containers: [{name: c, image: i}]}
---
apiVersion: v1
kind: Pod
metadata: {name: c, namespace: x, labels: {app: other}}
spec: {containers: [{name: c, image: i}]}
)";

std::string allow_from(const std::string& apps) {
  return R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: x}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {matchExpressions: [{key: app, operator: In, values: [)" +
         apps + R"(]}]}}]
    ports: [{port: http}]
)";
}

std::string ip_of(const Proc& add) { return result_ips(add.out).at(0); }

const char* kGoldenCases[] = {"deny-and-allow-all", "selectors-and-or", "ipblock-except",
                              "named-ports",        "egress",           "dual-stack",
                              "long-names"};

}  // namespace

BOOST_AUTO_TEST_SUITE(watcher_agent)

BOOST_DATA_TEST_CASE(kernel_holds_the_golden_ruleset, boost::unit_test::data::make(kGoldenCases),
                     case_name) {
  if (!netns_available()) return;
  // The same golden file as the compiler's unit test, this time read back from a kernel.
  auto m = watcher::load_manifests(std::string(KNIT_TEST_DATA) + "/policy/" + case_name);
  watcher::ClusterView v;
  v.node_name = "node1";
  for (auto& n : m.objects.namespaces) v.namespaces[n.name] = n;
  for (auto& p : m.objects.pods) v.pods[watcher::object_key(p.namespace_, p.name)] = p;
  for (auto& p : m.objects.policies) v.policies[watcher::object_key(p.namespace_, p.name)] = p;
  auto desired = watcher::compile(v);
  TestNetns ns("golden");
  auto sock = nl::Socket::open_in(Netns::open(ns.path()), NETLINK_NETFILTER);
  nft::apply(sock, nft::plan(std::optional<nft::Ruleset>{}, desired));
  auto back = nft::read_table(sock, nft::TableFamily::kInet, "knit");
  BOOST_REQUIRE(back.has_value());
  BOOST_TEST(nft::render(*back) ==
             slurp(std::string(KNIT_TEST_DATA) + "/golden/policy-" + case_name + ".nft"));
  BOOST_TEST(nft::plan(back, desired).empty());
}

BOOST_AUTO_TEST_CASE(a_new_pod_is_isolated_from_its_first_packet, *needs_netns()) {
  AgentNode node("first");
  node.write("pods.yaml", kPods);
  node.write("policy.yaml", allow_from("client"));
  node.start();
  TestNetns a("a"), b("b"), c("c");
  Proc rb = node.add_pod("x", "b", b);
  BOOST_REQUIRE_MESSAGE(rb.status == 0, rb.out);
  Proc rc = node.add_pod("x", "c", c);
  BOOST_REQUIRE(rc.status == 0);
  Proc ra = node.add_pod("x", "a", a);
  BOOST_REQUIRE_MESSAGE(ra.status == 0, ra.out);
  // ADD returned: a's address must already be behind its policy, before a sends or receives
  // anything. The first connection attempt from c is the first packet and must be dropped.
  TcpEchoServer server(a.path(), 80);
  BOOST_TEST(!tcp_connects(c.path(), ip_of(ra), 80, 300ms));
  BOOST_TEST(tcp_connects(b.path(), ip_of(ra), 80));
  // The node itself (kubelet probes) always reaches its pods.
  BOOST_TEST(tcp_connects(node.ns.path(), ip_of(ra), 80));
}

BOOST_AUTO_TEST_CASE(add_fails_when_a_required_agent_is_down, *needs_netns()) {
  AgentNode node("down");
  node.write("pods.yaml", kPods);
  TestNetns a("a"), b("b");
  Proc r = node.add_pod("x", "a", a, "required");
  BOOST_TEST(r.status == 1);
  BOOST_TEST(error_code(r.out) == 105, r.out);
  BOOST_TEST(node.attachments() == 0u);  // undone: no address held, no link left
  Proc best = node.add_pod("x", "b", b, "best-effort");
  BOOST_TEST(best.status == 0, best.out << best.err);
}

BOOST_AUTO_TEST_CASE(revoked_connections_are_cut_and_allowed_ones_kept, *needs_netns()) {
  AgentNode node("revoke");
  node.write("pods.yaml", kPods);
  node.write("policy.yaml", allow_from("client, other"));
  node.start();
  TestNetns a("a"), b("b"), c("c");
  Proc ra = node.add_pod("x", "a", a);
  BOOST_REQUIRE(ra.status == 0);
  BOOST_REQUIRE(node.add_pod("x", "b", b).status == 0);
  BOOST_REQUIRE(node.add_pod("x", "c", c).status == 0);
  TcpEchoServer server(a.path(), 80);
  TcpConn from_b(b.path(), ip_of(ra), 80), from_c(c.path(), ip_of(ra), 80);
  BOOST_REQUIRE(from_b.connected());
  BOOST_REQUIRE(from_c.connected());
  BOOST_REQUIRE(from_b.echo());
  BOOST_REQUIRE(from_c.echo());
  // c is no longer allowed: its established connection is cut within a second; b's survives.
  node.write("policy.yaml", allow_from("client"));
  node.applied();
  BOOST_TEST(eventually([&] { return !from_c.echo(100ms); }, 1s),
             "connection not cut; agent log:\n" << slurp(node.data_dir + "/agent.log")
                                                << node.ns.sh("conntrack -L 2>&1").out);
  BOOST_TEST(from_b.echo());
  BOOST_TEST(!tcp_connects(c.path(), ip_of(ra), 80, 300ms));
}

BOOST_AUTO_TEST_CASE(churn_does_not_flood_the_log, *needs_netns()) {
  // Every policy edit is a commit, but the log gets a line for the full sync and at most one
  // incremental line per 10 s (with how many were held back).
  AgentNode node("churn");
  node.write("pods.yaml", kPods);
  node.write("policy.yaml", allow_from("client"));
  node.start();
  TestNetns a("a");
  BOOST_REQUIRE(node.add_pod("x", "a", a).status == 0);
  node.applied();
  uint64_t gen0 = node.status().generation;
  for (int i = 0; i < 20; ++i) {
    node.write("policy.yaml", allow_from(i % 2 ? "client" : "client, other"));
    node.applied();
  }
  BOOST_TEST(node.status().generation >= gen0 + 20);  // the edits were commits
  std::string log = slurp(node.data_dir + "/agent.log");
  size_t lines = 0;
  for (size_t at = log.find("applied generation"); at != std::string::npos;
       at = log.find("applied generation", at + 1)) {
    ++lines;
  }
  BOOST_TEST(lines <= 4u, log);
}

BOOST_AUTO_TEST_CASE(agent_restart_under_traffic, *needs_netns()) {
  AgentNode node("restart");
  node.write("pods.yaml", kPods);
  node.write("policy.yaml", allow_from("client"));
  node.start();
  TestNetns a("a"), b("b"), c("c");
  Proc ra = node.add_pod("x", "a", a);
  BOOST_REQUIRE(ra.status == 0);
  BOOST_REQUIRE(node.add_pod("x", "b", b).status == 0);
  BOOST_REQUIRE(node.add_pod("x", "c", c).status == 0);
  TcpEchoServer server(a.path(), 80);
  TcpConn conn(b.path(), ip_of(ra), 80);
  BOOST_REQUIRE(conn.echo());
  // Traffic flows while the agent dies and comes back; nothing denied gets through meanwhile.
  std::atomic<bool> stop{false};
  std::atomic<int> lost{0}, leaked{0};
  std::thread traffic([&] {
    while (!stop) {
      if (!conn.echo(500ms)) ++lost;
      if (tcp_connects(c.path(), ip_of(ra), 80, 50ms)) ++leaked;
    }
  });
  node.agent->stop(SIGKILL);
  std::this_thread::sleep_for(300ms);
  node.start();
  std::this_thread::sleep_for(300ms);
  node.agent->stop(SIGTERM);
  node.start();
  std::this_thread::sleep_for(300ms);
  stop = true;
  traffic.join();
  BOOST_TEST(lost == 0);
  BOOST_TEST(leaked == 0);
  BOOST_TEST(tcp_connects(b.path(), ip_of(ra), 80));
}

BOOST_AUTO_TEST_CASE(a_malformed_object_is_skipped_and_the_rest_enforced, *needs_netns()) {
  AgentNode node("bad");
  node.write("pods.yaml", kPods);
  node.write("policy.yaml", allow_from("client"));
  node.write("bad.yaml", R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: broken, namespace: x}
spec:
  podSelector: {}
  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/33}}]}]
)");
  node.write("garbage.yaml", "this: [is: not yaml");
  node.start();
  TestNetns a("a"), c("c");
  Proc ra = node.add_pod("x", "a", a);
  BOOST_REQUIRE(ra.status == 0);
  BOOST_REQUIRE(node.add_pod("x", "c", c).status == 0);
  TcpEchoServer server(a.path(), 80);
  BOOST_TEST(!tcp_connects(c.path(), ip_of(ra), 80, 300ms));
  std::string log = slurp(node.data_dir + "/agent.log");
  BOOST_TEST(log.find("x/broken") != std::string::npos, log);
  BOOST_TEST(log.find("garbage.yaml") != std::string::npos, log);
}

BOOST_AUTO_TEST_SUITE_END()

namespace {

/// GET `path` from the agent's metrics server (127.0.0.1:9740, the default) inside `ns`.
std::string http_get(const TestNetns& ns, const std::string& path) {
  Proc p = ns.sh("bash -c 'exec 3<>/dev/tcp/127.0.0.1/9740 && printf \"GET " + path +
                 " HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n\" >&3 && cat <&3'");
  return p.out + p.err;
}

/// The value of the first /metrics line starting with `series` (-1 when absent).
double metric(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, series.size(), series) == 0 && line.size() > series.size() &&
        line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return -1;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(watcher_agent_metrics)

BOOST_AUTO_TEST_CASE(metrics_count_syncs_and_per_policy_packets, *needs_netns()) {
  // Bash's /dev/tcp does the HTTP: the metrics server listens on the node's loopback.
  AgentNode node("metrics");
  node.ns.must("ip link set lo up");
  node.write("pods.yaml", kPods);
  node.write("policy.yaml", allow_from("client"));
  // A second policy with a name as long as the API allows (253): too long for a kernel counter
  // name as it is, so its counter is cut and hashed, and /metrics still shows the whole name.
  const std::string long_name = std::string(62, 'l') + "." + std::string(62, 'l') + "." +
                                std::string(62, 'l') + "." + std::string(64, 'l');
  node.write("long.yaml", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                          "metadata: {name: " + long_name + ", namespace: x}\n"
                          "spec:\n  podSelector: {matchLabels: {app: web}}\n"
                          "  ingress: [{ports: [{port: 81}]}]\n");
  node.start();
  BOOST_TEST(http_get(node.ns, "/livez").find("200 OK") != std::string::npos);
  TestNetns a("a"), b("b"), c("c");
  Proc ra = node.add_pod("x", "a", a);
  BOOST_REQUIRE_MESSAGE(ra.status == 0, ra.out);
  BOOST_REQUIRE(node.add_pod("x", "b", b).status == 0);
  BOOST_REQUIRE(node.add_pod("x", "c", c).status == 0);
  std::string health = http_get(node.ns, "/healthz");
  BOOST_TEST(health.find("200 OK") != std::string::npos, health);

  const std::string allow = R"(knit_policy_packets_total{namespace="x",policy="web",verdict="allow"})";
  const std::string drop = R"(knit_policy_packets_total{namespace="x",policy="",verdict="drop"})";
  std::this_thread::sleep_for(1100ms);  // counters are read at most once a second
  std::string before = http_get(node.ns, "/metrics");
  BOOST_TEST(metric(before, "knit_syncs_total") >= 1, before);
  BOOST_TEST(metric(before, "knit_pods_local") == 3, before);
  BOOST_TEST(metric(before, R"(knit_set_elements{kind="maps"})") >= 1, before);
  BOOST_TEST(metric(before, allow) == 0, before);
  BOOST_TEST(metric(before, drop) == 0, before);
  BOOST_TEST(metric(before, R"(knit_policy_packets_total{namespace="x",policy=")" + long_name +
                                R"(",verdict="allow"})") == 0,
             before);

  TcpEchoServer server(a.path(), 80);
  BOOST_REQUIRE(tcp_connects(b.path(), ip_of(ra), 80));       // one SYN allowed
  BOOST_REQUIRE(!tcp_connects(c.path(), ip_of(ra), 80, 300ms));  // SYNs dropped
  std::this_thread::sleep_for(1100ms);  // counters are read at most once a second
  std::string after = http_get(node.ns, "/metrics");
  BOOST_TEST(metric(after, allow) >= 1, after);
  BOOST_TEST(metric(after, drop) >= 1, after);

  // The policy gone: its series goes with it.
  node.remove("policy.yaml");
  node.applied();
  std::this_thread::sleep_for(1100ms);
  std::string gone = http_get(node.ns, "/metrics");
  BOOST_TEST(metric(gone, allow) == -1, gone);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(watcher_agent_related)

BOOST_AUTO_TEST_CASE(icmp_errors_of_an_allowed_flow_reach_an_isolated_pod, *needs_netns()) {
  // An ICMP error is a packet of its own, from the host that sends it: to a pod whose ingress
  // admits nothing it must still come through when it is about a flow the pod was allowed to
  // start (conntrack: related), or path MTU discovery and "port unreachable" break for every
  // isolated pod.
  AgentNode node("related");
  node.ns.must("ip link set lo up");
  node.write("pods.yaml", kPods);
  node.write("policy.yaml", R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: client-closed, namespace: x}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Ingress]
)");
  node.start();
  TestNetns a("a"), b("b");
  Proc ra = node.must_add_pod("x", "a", a);
  Proc rb = node.must_add_pod("x", "b", b);
  TcpEchoServer server_b(b.path(), 80);
  // b is closed to everyone, a included...
  BOOST_TEST(!tcp_connects(a.path(), ip_of(rb), 80, 300ms));
  // ...yet a's "port unreachable" for b's datagram (nothing listens on a's 9999) reaches b.
  BOOST_TEST(udp_refused(b.path(), ip_of(ra), 9999));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(watcher_agent_refused)

BOOST_AUTO_TEST_CASE(a_policy_the_kernel_refuses_fails_closed_and_the_rest_is_enforced,
                     *needs_netns()) {
  // The kernel refuses every set of policy x/refuse-me (test/netns/refuse_shim.cpp, preloaded
  // into the agent). Without the agent's answer to that, no commit would go through: the pods'
  // CNI ADDs (agent "required") would time out and nothing of the directory would be enforced.
  AgentNode node("refused");
  node.ns.must("ip link set lo up");
  node.write("pods.yaml", kPods);
  node.write("policy.yaml", allow_from("client"));
  // It would allow b (app: client) into c; refused, it must allow nothing into c.
  const std::string refused = R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: refuse-me, namespace: x}
spec:
  podSelector: {matchLabels: {app: other}}
  ingress: [{from: [{podSelector: {matchLabels: {app: client}}}]%s}]
)";
  auto with_ports = [&](const std::string& ports) {
    std::string y = refused;
    y.replace(y.find("%s"), 2, ports);
    return y;
  };
  node.write("refused.yaml", with_ports(""));
  // A second one, found after the first: egress from a (nothing below connects out of a but
  // to c, which is closed anyway).
  node.write("refused-2.yaml", R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: refuse-me-2, namespace: x}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  egress: [{to: [{podSelector: {}}]}]
)");
  node.start(
      {std::string("LD_PRELOAD=") + KNIT_TEST_REFUSE_SHIM, "KNIT_TEST_REFUSE_SET=refuse-me"});
  TestNetns a("a"), b("b"), c("c");
  Proc ra = node.must_add_pod("x", "a", a);
  node.must_add_pod("x", "b", b);
  Proc rc = node.must_add_pod("x", "c", c);
  TcpEchoServer server_a(a.path(), 80), server_c(c.path(), 80);

  // The other policy is enforced; the refused one is deny-all for c.
  BOOST_TEST(tcp_connects(b.path(), ip_of(ra), 80));
  BOOST_TEST(!tcp_connects(c.path(), ip_of(ra), 80, 300ms));
  BOOST_TEST(!tcp_connects(b.path(), ip_of(rc), 80, 300ms));
  BOOST_TEST(!tcp_connects(a.path(), ip_of(rc), 80, 300ms));
  std::string log = slurp(node.data_dir + "/agent.log");
  BOOST_TEST(log.find("policy x/refuse-me: the kernel refused it") != std::string::npos, log);
  BOOST_TEST(log.find("policy x/refuse-me-2: the kernel refused it") != std::string::npos, log);
  std::string m = http_get(node.ns, "/metrics");
  BOOST_TEST(metric(m, "knit_policies_refused") == 2, m);

  // Changed, it gets another chance, and is refused again: still closed, still counted once.
  node.write("refused.yaml", with_ports(", ports: [{port: 80}]"));
  node.applied();
  BOOST_TEST(!tcp_connects(b.path(), ip_of(rc), 80, 300ms));
  BOOST_TEST(metric(http_get(node.ns, "/metrics"), "knit_policies_refused") == 2);

  // Other changes flow meanwhile: the first policy now allows c into a as well.
  node.write("policy.yaml", allow_from("client, other"));
  node.applied();
  BOOST_TEST(tcp_connects(c.path(), ip_of(ra), 80));

  // Deleted, it is gone from the count and c is open again (no policy selects it).
  node.remove("refused.yaml");
  node.applied();
  BOOST_TEST(tcp_connects(b.path(), ip_of(rc), 80));
  BOOST_TEST(metric(http_get(node.ns, "/metrics"), "knit_policies_refused") == 1);
}

BOOST_AUTO_TEST_CASE(a_refused_policy_is_retried_at_every_resync_and_enforced_once_taken,
                     *needs_netns()) {
  // What the kernel refuses can change without the policy changing (its limits, the other
  // objects). Here the shim refuses x/refuse-me's sets while a file says so; the agent resyncs
  // every second and must then enforce the policy as written, not hold it closed until an edit.
  AgentNode node("retried");
  node.ns.must("ip link set lo up");
  node.write("pods.yaml", kPods);
  node.write("refused.yaml", R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: refuse-me, namespace: x}
spec:
  podSelector: {matchLabels: {app: other}}
  ingress: [{from: [{podSelector: {matchLabels: {app: client}}}]}]
)");
  const std::string control = node.data_dir + "/refuse";
  std::ofstream(control) << "refuse-me\n";
  node.start(
      {std::string("LD_PRELOAD=") + KNIT_TEST_REFUSE_SHIM, "KNIT_TEST_REFUSE_SET_FILE=" + control},
      {"--resync-interval", "1s"});
  TestNetns a("a"), b("b"), c("c");
  node.must_add_pod("x", "a", a);
  node.must_add_pod("x", "b", b);
  Proc rc = node.must_add_pod("x", "c", c);
  TcpEchoServer server_c(c.path(), 80);
  auto refused = [&] { return metric(http_get(node.ns, "/metrics"), "knit_policies_refused"); };

  // Refused: c is closed to b and a alike, and resyncs keep it so while the kernel refuses.
  BOOST_TEST_REQUIRE(eventually([&] { return refused() == 1; }, 5s));
  BOOST_TEST(!tcp_connects(b.path(), ip_of(rc), 80, 300ms));
  std::this_thread::sleep_for(2500ms);  // two resyncs, each a check the kernel refuses
  BOOST_TEST(refused() == 1);
  BOOST_TEST(!tcp_connects(b.path(), ip_of(rc), 80, 300ms));
  BOOST_TEST(!tcp_connects(a.path(), ip_of(rc), 80, 300ms));

  // The kernel takes it now: within a resync or two it is enforced as written (b in, a not).
  std::ofstream(control, std::ios::trunc) << "";
  BOOST_TEST(eventually([&] { return refused() == 0; }, 5s));
  BOOST_TEST(eventually([&] { return tcp_connects(b.path(), ip_of(rc), 80, 300ms); }, 5s),
             slurp(node.data_dir + "/agent.log"));
  BOOST_TEST(!tcp_connects(a.path(), ip_of(rc), 80, 300ms));
  std::string log = slurp(node.data_dir + "/agent.log");
  BOOST_TEST(log.find("policy x/refuse-me: the kernel takes it now") != std::string::npos, log);
}

BOOST_AUTO_TEST_SUITE_END()

namespace {

/// kube-proxy's part of a Service, emulated in the node's namespace the three ways it is done
/// on a node (the hooks and priorities are kube-proxy's; IPVS mode is not covered: this
/// kernel has no IPVS): `svc_a` and `svc_c` (port 8000) go to pods a and c (port 80), and
/// every packet to a pod is masqueraded afterwards (kube-proxy's masqueradeAll), so the pods
/// see the node as the source.
void emulate_kube_proxy(Node& node, const std::string& mode, const std::string& a,
                        const std::string& c) {
  const std::string svc_a = "10.96.0.10", svc_c = "10.96.0.11";
  if (mode == "nftables") {
    node.ns.must(
        "nft -f - <<'EOF'\n"
        "table ip kube-proxy {\n"
        "  chain services {\n"
        "    ip daddr " +
        svc_a + " tcp dport 8000 dnat to " + a +
        ":80\n"
        "    ip daddr " +
        svc_c + " tcp dport 8000 dnat to " + c +
        ":80\n"
        "  }\n"
        "  chain nat-prerouting { type nat hook prerouting priority -100; jump services; }\n"
        "  chain nat-output { type nat hook output priority -100; jump services; }\n"
        "  chain nat-postrouting {\n"
        "    type nat hook postrouting priority 100; ip daddr 10.22.0.0/24 masquerade\n"
        "  }\n"
        "}\n"
        "EOF");
    return;
  }
  const std::string ipt = mode == "iptables" ? "iptables-nft" : "iptables-legacy";
  for (const auto& [svc, to] : {std::pair{svc_a, a}, std::pair{svc_c, c}}) {
    for (const char* chain : {"PREROUTING", "OUTPUT"}) {
      node.ns.must(ipt + " -t nat -A " + chain + " -d " + svc + " -p tcp --dport 8000 -j DNAT " +
                   "--to-destination " + to + ":80");
    }
  }
  node.ns.must(ipt + " -t nat -A POSTROUTING -d 10.22.0.0/24 -j MASQUERADE");
}

const char* kKubeProxyModes[] = {"nftables", "iptables", "iptables-legacy"};

}  // namespace

BOOST_AUTO_TEST_SUITE(watcher_agent_services)

BOOST_DATA_TEST_CASE(a_service_is_judged_by_its_backend_pod_and_the_client_pod,
                     boost::unit_test::data::make(kKubeProxyModes), mode) {
  BOOST_TEST_REQUIRE(netns_available());
  // Policies see pod addresses on both ends: after kube-proxy's DNAT (the backend, not the
  // Service address) and before its masquerade (the client pod, not the node). Judged before
  // the DNAT, c would reach a through the Service (nothing isolates a Service address) and b
  // would be refused by its own egress; judged after the masquerade, every client would be
  // "the node", which is always allowed in.
  AgentNode node(std::string("svc-") + mode);
  node.write("pods.yaml", kPods);
  node.write("policy.yaml", allow_from("client"));
  node.write("egress.yaml", R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: client-out, namespace: x}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Egress]
  egress: [{to: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: 80}]}]
)");
  node.start();
  TestNetns a("a"), b("b"), c("c");
  Proc ra = node.add_pod("x", "a", a);
  BOOST_REQUIRE_MESSAGE(ra.status == 0, ra.out);
  BOOST_REQUIRE(node.add_pod("x", "b", b).status == 0);
  Proc rc = node.add_pod("x", "c", c);
  BOOST_REQUIRE(rc.status == 0);
  emulate_kube_proxy(node, mode, ip_of(ra), ip_of(rc));
  TcpEchoServer server_a(a.path(), 80), server_c(c.path(), 80);

  // b (client) reaches web through its Service: a's ingress allows clients, b's egress allows
  // web on 80 (both judged against a's address).
  BOOST_TEST(tcp_connects(b.path(), "10.96.0.10", 8000));
  // c (other) may not reach a, through the Service or not.
  BOOST_TEST(!tcp_connects(c.path(), "10.96.0.10", 8000, 300ms));
  BOOST_TEST(!tcp_connects(c.path(), ip_of(ra), 80, 300ms));
  // b's egress allows only web: the Service of c is refused (c itself admits anyone).
  BOOST_TEST(!tcp_connects(b.path(), "10.96.0.11", 8000, 300ms));
  BOOST_TEST(tcp_connects(a.path(), "10.96.0.11", 8000));
  // The node itself reaches a through the Service (kubelet, hostNetwork pods).
  BOOST_TEST(tcp_connects(node.ns.path(), "10.96.0.10", 8000));
  // A pod reaching itself through its own Service (hairpin) is judged like any other client,
  // by its own address on both ends: c admits anyone, a admits only clients (a is web).
  BOOST_TEST(tcp_connects(c.path(), "10.96.0.11", 8000));
  BOOST_TEST(!tcp_connects(a.path(), "10.96.0.10", 8000, 300ms));
}

BOOST_AUTO_TEST_SUITE_END()
