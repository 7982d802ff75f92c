// Several nodes for real: a network namespace per node joined by an underlay bridge, the test
// API server (test/apiserver) reachable on the underlay, and on every node its own `knit agent`
// on the Kubernetes API. Pods are wired through the CNI ADD path with the conflist their node's
// agent wrote from its Node's podCIDRs, and published with spec.nodeName and status.podIPs, as
// the kubelet does. Real packets then prove what a cluster's user notices: pods reach each
// other across nodes over IPv4 and IPv6 with their own addresses, nodes and pods reach each
// other, routes follow the Node objects (2500 more of them at once too), a NetworkPolicy from
// the API isolates a pod against pods on another node and follows their labels, an address a
// node's IPAM hands from a deleted pod to a new one keeps none of the old pod's admissions, only
// traffic leaving the cluster is masqueraded, and an API outage (watch streams cut, server
// restarted with its history compacted) changes nothing in force while a change made after it
// converges.
//
//   "ul": the underlay, a router    br0 172.18.0.1/16 fd18::1/64 (the nodes' network)
//                                   ext0 10.200.0.1/24 fd20::1/64 (towards "ext")
//                                   API server on its 127.0.0.1, relayed to [fd18::1]:6443
//   node-a  ul0 172.18.0.2 fd18::2  podCIDRs 10.244.1.0/24 fd00:10:244:1::/64
//   node-b  ul0 172.18.0.3 fd18::3  podCIDRs 10.244.2.0/24 fd00:10:244:2::/64
//   node-c  ul0 172.18.0.4 fd18::4  podCIDRs 10.244.3.0/24 fd00:10:244:3::/64
//   ext     eth0 10.200.0.2 fd20::2 outside the cluster: it has no route to any podCIDR, so only
//           a masqueraded connection gets an answer
//
// Nodes route to each other's podCIDRs only through the routes their agents install; the
// underlay router knows no podCIDR. The agents run with --no-masquerade-cidrs set to the node
// network, as a kind or k3s installation would.
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/results_collector.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/netns.hpp"
#include "harness.hpp"
#include "test/apiserver/apiserver.hpp"
#include "traffic.hpp"
#include "test/files.hpp"

using namespace knit;
using namespace knit::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

auto needs_netns() {
  return boost::unit_test::precondition(NeedsNetns());
}

constexpr int kApiPort = 6443;

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

bool current_test_failed() {
  namespace ut = boost::unit_test;
  return !ut::results_collector.results(ut::framework::current_test_case().p_id).passed();
}

// ---- Kubernetes objects ---------------------------------------------------------------------

json node_object(const std::string& name, const std::vector<std::string>& cidrs,
                 const std::vector<std::string>& internal_ips) {
  json addresses = json::array();
  for (const auto& ip : internal_ips)
    addresses.push_back({{"type", "InternalIP"}, {"address", ip}});
  addresses.push_back({{"type", "Hostname"}, {"address", name}});
  json spec = {{"podCIDRs", cidrs}};
  if (!cidrs.empty()) spec["podCIDR"] = cidrs.front();
  return {{"kind", "Node"},
          {"apiVersion", "v1"},
          {"metadata", {{"name", name}, {"labels", {{"kubernetes.io/hostname", name}}}}},
          {"spec", spec},
          {"status", {{"addresses", addresses}}}};
}

json pod_object(const std::string& ns, const std::string& name, const std::string& node,
                const std::string& app) {
  json port = {{"containerPort", 80}, {"name", "http"}, {"protocol", "TCP"}};
  json container = {{"name", "c"}, {"image", "agnhost"}, {"ports", json::array({port})}};
  return {{"kind", "Pod"},
          {"apiVersion", "v1"},
          {"metadata", {{"name", name}, {"namespace", ns}, {"labels", {{"app", app}}}}},
          {"spec", {{"nodeName", node}, {"containers", json::array({container})}}},
          {"status", {{"phase", "Pending"}}}};
}

json namespace_object(const std::string& name) {
  return {{"kind", "Namespace"},
          {"apiVersion", "v1"},
          {"metadata", {{"name", name}, {"labels", {{"kubernetes.io/metadata.name", name}}}}}};
}

/// x/web: pods app=web accept TCP 80 and 7 only from pods whose app is one of `from_apps`.
json web_policy(const std::vector<std::string>& from_apps) {
  json p = json::parse(R"({
    "kind": "NetworkPolicy", "apiVersion": "networking.k8s.io/v1",
    "metadata": {"name": "web", "namespace": "x"},
    "spec": {
      "podSelector": {"matchLabels": {"app": "web"}},
      "policyTypes": ["Ingress"],
      "ingress": [{
        "from": [{"podSelector": {"matchExpressions": [{"key": "app", "operator": "In"}]}}],
        "ports": [{"protocol": "TCP", "port": 80}, {"protocol": "TCP", "port": 7}]
      }]
    }})");
  p["spec"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][0]["values"] = from_apps;
  return p;
}

// ---- The cluster ----------------------------------------------------------------------------

struct SimNode {
  std::string name;  ///< the Node object's name
  std::unique_ptr<TestNetns> ns;
  std::string dir;                        ///< agent socket, data dir (IPAM stores), conf dir, log
  std::vector<std::string> cidrs;         ///< podCIDRs as published (v4, v6)
  std::vector<std::string> internal_ips;  ///< InternalIPs as published (v4, v6)
  std::unique_ptr<Background> agent;

  std::string log_path() const { return dir + "/agent.log"; }
  std::string conf_dir() const { return dir + "/net.d"; }
  std::string conflist() const { return slurp(conf_dir() + "/10-knit.conflist"); }
  const std::string& path() const { return ns->path(); }
  std::string ip4() const { return internal_ips.at(0); }
  std::string ip6() const { return internal_ips.at(1); }
  /// The routes knit owns here, as `ip route` prints them.
  std::string routes() const {
    return ns->sh("ip route show proto 75; ip -6 route show proto 75").out;
  }
};

/// Waits until the routes knit owns on `n` name every `present` text and no `absent` one.
bool routes_become(const SimNode& n, const std::vector<std::string>& present,
                   const std::vector<std::string>& absent = {}) {
  return eventually(
      [&] {
        auto r = n.routes();
        for (const auto& p : present) {
          if (!contains(r, p)) return false;
        }
        for (const auto& a : absent) {
          if (contains(r, a)) return false;
        }
        return true;
      },
      5s);
}

struct SimPod {
  std::string namespace_, name;
  size_t node = 0;
  json object;  ///< as last published
  std::unique_ptr<TestNetns> ns;
  std::string ip4, ip6;
  const std::string& path() const { return ns->path(); }
  std::string ip(int family) const { return family == 4 ? ip4 : ip6; }
};

class Cluster {
 public:
  /// `node_count` simulated nodes, each with its agent; `more_nodes` are Node objects without a
  /// namespace, in the API before any agent starts (nodes of a larger cluster).
  explicit Cluster(size_t node_count, const std::vector<json>& more_nodes = {})
      : ul_("ul"), ext_("ext") {
    char tmpl[] = "/tmp/knit-t-cluster-XXXXXX";
    BOOST_REQUIRE(mkdtemp(tmpl) != nullptr);
    dir_ = tmpl;
    // No duplicate address detection anywhere (link-local addresses included): neighbour
    // discovery works from the first packet.
    const std::string no_dad =
        "sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0 && ";
    ul_.must(no_dad +
             "sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 && "
             "ip link add br0 type bridge mcast_snooping 0 && ip link set br0 up && "
             "ip addr add 172.18.0.1/16 dev br0 && ip -6 addr add fd18::1/64 dev br0 nodad && "
             "ip link add ext0 type veth peer name eth0 netns " +
             ext_.name() +
             " && "
             "ip link set ext0 up && ip addr add 10.200.0.1/24 dev ext0 && "
             "ip -6 addr add fd20::1/64 dev ext0 nodad");
    ext_.must(no_dad +
              "ip link set eth0 up && ip addr add 10.200.0.2/24 dev eth0 && "
              "ip -6 addr add fd20::2/64 dev eth0 nodad && "
              "ip route add default via 10.200.0.1 && ip -6 route add default via fd20::1");
    // The API server listens on the underlay's loopback (the thread that starts it decides);
    // the relay puts it on the node network, where every node's agent reaches it.
    {
      NetnsGuard in(Netns::open(ul_.path()));
      api_ = std::make_unique<ApiServer>();
    }
    relay_ = std::make_unique<TcpRelay>(ul_.path(), "fd18::1", kApiPort, ul_.path(), "127.0.0.1",
                                        api_->port());
    std::ofstream(dir_ + "/kubeconfig")
        << "apiVersion: v1\nkind: Config\ncurrent-context: sim\n"
           "clusters: [{name: sim, cluster: {server: \"http://[fd18::1]:"
        << kApiPort
        << "\"}}]\n"
           "contexts: [{name: sim, context: {cluster: sim, user: node}}]\n"
           "users: [{name: node, user: {}}]\n";

    api_->put(namespace_object("x"));
    for (size_t i = 0; i < node_count; ++i) {
      auto n = std::make_unique<SimNode>();
      std::string letter(1, static_cast<char>('a' + i));
      std::string self = std::to_string(2 + i);
      n->name = "node-" + letter;
      n->ns = std::make_unique<TestNetns>(n->name);
      n->dir = dir_ + "/" + n->name;
      n->cidrs = {"10.244." + std::to_string(1 + i) + ".0/24",
                  "fd00:10:244:" + std::to_string(1 + i) + "::/64"};
      n->internal_ips = {"172.18.0." + self, "fd18::" + self};
      mkdir(n->dir.c_str(), 0755);
      std::string port = "n" + letter;  // the node's port on the underlay bridge
      n->ns->must(no_dad + "ip link add ul0 type veth peer name " + port + " netns " + ul_.name() +
                  " && ip link set ul0 up && ip addr add " + n->ip4() +
                  "/16 dev ul0 && ip -6 addr add " + n->ip6() +
                  "/64 dev ul0 nodad && ip route add default via 172.18.0.1 && "
                  "ip -6 route add default via fd18::1");
      ul_.must("ip link set " + port + " master br0 && ip link set " + port + " up");
      put_node(*n);
      nodes_.push_back(std::move(n));
    }
    for (const auto& n : more_nodes) api_->put(n);
    for (auto& n : nodes_) start_agent(*n);
    for (auto& n : nodes_) {
      BOOST_REQUIRE_MESSAGE(eventually([&] { return !n->conflist().empty(); }, 10s),
                            n->name << ": the agent wrote no conflist");
    }
  }

  ~Cluster() {
    if (current_test_failed()) dump();
    pods_.clear();
    for (auto& n : nodes_) n->agent.reset();
    relay_.reset();
    api_.reset();
    nodes_.clear();
    knit::test::sh("rm -rf '" + dir_ + "'");
  }

  SimNode& node(size_t i) { return *nodes_.at(i); }
  ApiServer& api() { return *api_; }
  const TestNetns& ext() const { return ext_; }

  void start_agent(SimNode& n) {
    n.agent = std::make_unique<Background>(
        std::vector<std::string>{
            knit_binary(), "agent", "--kubeconfig", dir_ + "/kubeconfig", "--node-name", n.name,
            "--socket", n.dir + "/agent.sock", "--data-dir", n.dir, "--cni-conf-dir", n.conf_dir(),
            "--metrics-address", "127.0.0.1:0", "--no-masquerade-cidrs", "172.18.0.0/16,fd18::/64"},
        n.path(), n.log_path());
  }

  /// Publishes node `n` as it is now (podCIDRs, InternalIPs).
  void put_node(const SimNode& n) { api_->put(node_object(n.name, n.cidrs, n.internal_ips)); }

  /// A pod as the kubelet makes one: the object (scheduled, no address yet), then CNI ADD on its
  /// node with the conflist that node's agent wrote, then the object's status with the addresses.
  SimPod& add_pod(size_t node_index, const std::string& name, const std::string& app,
                  const std::string& ns = "x") {
    SimPod& p = attach_pod(node_index, name, app, ns);
    publish_ips(p);
    return p;
  }

  /// add_pod() up to CNI ADD: the object is in the API without addresses.
  SimPod& attach_pod(size_t node_index, const std::string& name, const std::string& app,
                     const std::string& ns = "x") {
    SimNode& n = node(node_index);
    auto p = std::make_unique<SimPod>();
    p->namespace_ = ns;
    p->name = name;
    p->node = node_index;
    p->object = pod_object(ns, name, n.name, app);
    api_->put(p->object);
    p->ns = std::make_unique<TestNetns>("p-" + name);
    std::string config = conflist_plugin_config(n.conflist());
    BOOST_REQUIRE_MESSAGE(!config.empty(), n.name << ": no conflist:\n" << n.conflist());
    Proc r =
        cni(knit_binary(), *n.ns,
            {"ADD", "cid-" + ns + "-" + name, p->path(), "eth0", pod_cni_args(ns, name), config});
    BOOST_REQUIRE_MESSAGE(r.status == 0, "CNI ADD " << ns << "/" << name << " on " << n.name << ": "
                                                    << r.out << r.err);
    for (const auto& ip : result_ips(r.out))
      (ip.find(':') == std::string::npos ? p->ip4 : p->ip6) = ip;
    BOOST_REQUIRE_MESSAGE(!p->ip4.empty() && !p->ip6.empty(), "not dual-stack: " << r.out);
    pods_.push_back(std::move(p));
    return *pods_.back();
  }

  /// The pod's status in the API shows the addresses CNI ADD gave it, as the kubelet reports them.
  void publish_ips(SimPod& p) {
    p.object["status"] = {{"phase", "Running"},
                          {"podIP", p.ip4},
                          {"podIPs", json::array({{{"ip", p.ip4}}, {{"ip", p.ip6}}})}};
    api_->put(p.object);
  }

  /// CNI DEL of the pod on its node, as the runtime does when it removes the sandbox: the
  /// addresses go back to the node's IPAM. The API object is left as it is.
  void detach_pod(const SimPod& p) {
    const SimNode& n = node(p.node);
    Proc r = cni(knit_binary(), *n.ns,
                 {"DEL", "cid-" + p.namespace_ + "-" + p.name, p.path(), "eth0",
                  pod_cni_args(p.namespace_, p.name), conflist_plugin_config(n.conflist())});
    BOOST_REQUIRE_MESSAGE(r.status == 0, "CNI DEL " << p.namespace_ << "/" << p.name << " on "
                                                    << n.name << ": " << r.out << r.err);
  }

  /// Relabels a pod in the API (app=<app>).
  void relabel(SimPod& p, const std::string& app) {
    p.object["metadata"]["labels"]["app"] = app;
    api_->put(p.object);
  }

  /// Stops the API server: connections refused (by the relay: closed at once).
  void api_stop() { api_->stop(); }
  /// Starts it again on the same port, in the underlay's namespace.
  void api_start() {
    NetnsGuard in(Netns::open(ul_.path()));
    api_->start();
  }

  /// Every agent's log, knit's routes and the table, for a failed test.
  void dump() const {
    for (const auto& n : nodes_) {
      std::cerr << "==== " << n->name << " agent log (" << n->log_path() << ")\n"
                << slurp(n->log_path()) << "==== " << n->name << " routes (proto 75)\n"
                << n->routes() << "==== " << n->name << " nft list table inet knit\n"
                << n->ns->sh("nft list table inet knit").out;
    }
  }

 private:
  std::string dir_;
  TestNetns ul_, ext_;
  std::unique_ptr<ApiServer> api_;
  std::unique_ptr<TcpRelay> relay_;
  std::vector<std::unique_ptr<SimNode>> nodes_;
  std::vector<std::unique_ptr<SimPod>> pods_;
};

/// A new TCP connection from `from` to addr:port completes (a denied one costs `timeout`).
bool reaches(const std::string& from, const std::string& addr, int port,
             std::chrono::milliseconds timeout = 300ms) {
  return tcp_connects(from, addr, port, timeout);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(watcher_cluster, *needs_netns())

BOOST_AUTO_TEST_CASE(pods_and_nodes_reach_each_other_across_nodes_over_ipv4_and_ipv6) {
  Cluster c(2);
  SimNode &a = c.node(0), &b = c.node(1);
  // Each agent wrote its node's conflist from the Node's podCIDRs, for the CNI ADD path.
  for (SimNode* n : {&a, &b}) {
    auto conflist = json::parse(n->conflist());
    auto plugin = conflist["plugins"][0];
    BOOST_TEST(plugin["ipam"]["ranges"][0][0]["subnet"] == n->cidrs[0], n->conflist());
    BOOST_TEST(plugin["ipam"]["ranges"][1][0]["subnet"] == n->cidrs[1], n->conflist());
    BOOST_TEST(plugin["agent"] == "required");
  }
  // Routes to the other node's podCIDRs via its InternalIPs, owned by knit.
  BOOST_TEST_REQUIRE(
      routes_become(a, {"10.244.2.0/24 via 172.18.0.3 dev ul0", "fd00:10:244:2::/64 via fd18::3"}),
      a.routes());
  BOOST_TEST_REQUIRE(
      routes_become(b, {"10.244.1.0/24 via 172.18.0.2 dev ul0", "fd00:10:244:1::/64 via fd18::2"}),
      b.routes());

  SimPod& pa = c.add_pod(0, "pa", "a");
  SimPod& pb = c.add_pod(1, "pb", "b");
  BOOST_TEST(contains(pa.ip4, "10.244.1."));
  BOOST_TEST(contains(pa.ip6, "fd00:10:244:1::"));
  BOOST_TEST(contains(pb.ip4, "10.244.2."));
  BOOST_TEST(contains(pb.ip6, "fd00:10:244:2::"));

  // Every server answers with the source address it sees.
  NameServer who_a(pa.path(), 8080, NameServer::kPeerAddress);
  NameServer who_b(pb.path(), 8080, NameServer::kPeerAddress);
  NameServer node_a(a.path(), 8081, NameServer::kPeerAddress);
  NameServer node_b(b.path(), 8081, NameServer::kPeerAddress);
  for (int f : {4, 6}) {
    // Pod to pod across nodes, both ways: routed, the pod's own address arrives.
    BOOST_TEST(ask_tcp(pa.path(), pb.ip(f), 8080) == pa.ip(f), "pa -> pb IPv" << f);
    BOOST_TEST(ask_tcp(pb.path(), pa.ip(f), 8080) == pb.ip(f), "pb -> pa IPv" << f);
    // Node to pod: a node reaches a pod on the other node from its own address, and its own.
    std::string a_ip = f == 4 ? a.ip4() : a.ip6();
    std::string b_ip = f == 4 ? b.ip4() : b.ip6();
    BOOST_TEST(ask_tcp(a.path(), pb.ip(f), 8080) == a_ip, "node-a -> pb IPv" << f);
    BOOST_TEST(ask_tcp(b.path(), pa.ip(f), 8080) == b_ip, "node-b -> pa IPv" << f);
    BOOST_TEST(!ask_tcp(a.path(), pa.ip(f), 8080).empty(), "node-a -> pa IPv" << f);
    // Pod to node: the other node and its own node, from the pod's address (the node network
    // is not masqueraded).
    BOOST_TEST(ask_tcp(pa.path(), b_ip, 8081) == pa.ip(f), "pa -> node-b IPv" << f);
    BOOST_TEST(ask_tcp(pa.path(), a_ip, 8081) == pa.ip(f), "pa -> node-a IPv" << f);
  }
}

BOOST_AUTO_TEST_CASE(routes_follow_node_updates_and_deletes) {
  Cluster c(3);
  SimNode &a = c.node(0), &b = c.node(1), &n3 = c.node(2);
  BOOST_TEST_REQUIRE(
      routes_become(a, {"10.244.2.0/24 via 172.18.0.3", "10.244.3.0/24 via 172.18.0.4",
                        "fd00:10:244:3::/64 via fd18::4"}),
      a.routes());
  SimPod& pa = c.add_pod(0, "pa", "a");
  SimPod& pb = c.add_pod(1, "pb", "b");
  SimPod& pc = c.add_pod(2, "pc", "c");
  NameServer who_b(pb.path(), 8080, "pb");
  NameServer who_c(pc.path(), 8080, "pc");
  for (int f : {4, 6}) BOOST_TEST(ask_tcp(pa.path(), pc.ip(f), 8080) == "pc", "IPv" << f);

  // node-c is renumbered: its IPv4 InternalIP moves (the old address is gone), its IPv6 one
  // changes (the old address stays: node-c's agent talks to the API from it, and a removed
  // source address would leave its watches hanging until TCP keepalive notices). The other
  // nodes' routes follow the Node object.
  n3.ns->must(
      "sysctl -qw net.ipv4.conf.ul0.promote_secondaries=1 && "
      "ip addr add 172.18.0.14/16 dev ul0 && ip addr del 172.18.0.4/16 dev ul0 && "
      "ip -6 addr add fd18::14/64 dev ul0 nodad");
  n3.internal_ips = {"172.18.0.14", "fd18::14"};
  c.put_node(n3);
  for (SimNode* n : {&a, &b}) {
    BOOST_TEST(routes_become(*n, {"10.244.3.0/24 via 172.18.0.14 dev ul0",
                                  "fd00:10:244:3::/64 via fd18::14 dev ul0"}),
               n->name << ":\n"
                       << n->routes());
    n->ns->must("ip neigh flush dev ul0");  // no cached way to the old address
  }
  BOOST_TEST(!ping(a.path(), "172.18.0.4"));  // the old IPv4 address is really gone
  for (int f : {4, 6}) {
    BOOST_TEST(ask_tcp(pa.path(), pc.ip(f), 8080) == "pc", "after the move, IPv" << f);
    BOOST_TEST(ask_tcp(pb.path(), pc.ip(f), 8080) == "pc", "after the move, IPv" << f);
  }

  // node-c gets other podCIDRs: its agent rewrites its conflist, a new pod lands in the new
  // ranges, and the other nodes route the new CIDRs, not the old ones.
  n3.cidrs = {"10.244.30.0/24", "fd00:10:244:30::/64"};
  c.put_node(n3);
  BOOST_TEST_REQUIRE(eventually([&] { return contains(n3.conflist(), "10.244.30.0/24"); }, 5s),
                     n3.conflist());
  BOOST_TEST(contains(n3.conflist(), "fd00:10:244:30::/64"), n3.conflist());
  BOOST_TEST(!contains(n3.conflist(), "10.244.3.0/24"), n3.conflist());
  BOOST_TEST(
      routes_become(a, {"10.244.30.0/24 via 172.18.0.14", "fd00:10:244:30::/64 via fd18::14"},
                    {"10.244.3.0/24", "fd00:10:244:3::/64"}),
      a.routes());
  SimPod& pc2 = c.add_pod(2, "pc2", "c");
  BOOST_TEST(contains(pc2.ip4, "10.244.30."), pc2.ip4);
  BOOST_TEST(contains(pc2.ip6, "fd00:10:244:30::"), pc2.ip6);
  NameServer who_c2(pc2.path(), 8080, "pc2");
  for (int f : {4, 6}) {
    BOOST_TEST(ask_tcp(pa.path(), pc2.ip(f), 8080) == "pc2", "new CIDR, IPv" << f);
    BOOST_TEST(!reaches(pa.path(), pc.ip(f), 8080), "old CIDR no longer routed, IPv" << f);
  }

  // node-b is deleted: every route to its podCIDRs disappears, its pods are out of reach.
  BOOST_TEST_REQUIRE(c.api().remove("Node", "", b.name) != 0u);
  for (SimNode* n : {&a, &n3}) {
    BOOST_TEST(routes_become(*n, {}, {"10.244.2.0/24", "fd00:10:244:2::/64"}), n->name
                                                                                   << ":\n"
                                                                                   << n->routes());
  }
  BOOST_TEST(contains(a.routes(), "10.244.30.0/24 via 172.18.0.14"), a.routes());
  for (int f : {4, 6}) {
    BOOST_TEST(!reaches(pa.path(), pb.ip(f), 8080), "deleted node's pod, IPv" << f);
    BOOST_TEST(ask_tcp(pa.path(), pc2.ip(f), 8080) == "pc2", "remaining node's pod, IPv" << f);
  }
}

BOOST_AUTO_TEST_CASE(a_large_cluster_is_routed_from_the_first_list) {
  // 2500 more nodes (InternalIPs on the node network, as in one L2 domain): 5002 routes on
  // node-a, installed by the agent's first sync, then removed again when the nodes go.
  const int kMore = 2500;
  std::vector<json> more;
  for (int k = 0; k < kMore; ++k) {
    std::string id = std::to_string(k);  // decimal digits are valid hex digits too
    more.push_back(node_object(
        "far-" + id,
        {"10." + std::to_string(100 + k / 256) + "." + std::to_string(k % 256) + ".0/24",
         "fd00:11:" + id + "::/64"},
        {"172.18." + std::to_string(10 + k / 250) + "." + std::to_string(1 + k % 250),
         "fd18::1:" + id}));
  }
  Cluster c(2, more);
  SimNode &a = c.node(0), &b = c.node(1);
  auto count = [&] {
    return std::stoul(
        a.ns->sh("{ ip route show proto 75; ip -6 route show proto 75; } | wc -l").out);
  };
  BOOST_TEST(eventually([&] { return count() == 2u * (kMore + 1); }, 10s), count());
  BOOST_TEST(contains(a.ns->sh("ip route show 10.109.195.0/24").out, "via 172.18.19.250"));
  BOOST_TEST(contains(a.ns->sh("ip -6 route show fd00:11:2499::/64").out, "via fd18::1:2499"));
  // Right the first time: no failed sync and retry.
  BOOST_TEST(!contains(slurp(a.log_path()), "routes:"), slurp(a.log_path()));
  SimPod& pa = c.add_pod(0, "pa", "a");
  SimPod& pb = c.add_pod(1, "pb", "b");
  NameServer who_b(pb.path(), 8080, NameServer::kPeerAddress);
  for (int f : {4, 6}) BOOST_TEST(ask_tcp(pa.path(), pb.ip(f), 8080) == pa.ip(f), "IPv" << f);

  for (int k = 0; k < kMore; ++k) c.api().remove("Node", "", "far-" + std::to_string(k));
  BOOST_TEST(eventually([&] { return count() == 2u; }, 10s), count());
  BOOST_TEST(contains(a.routes(), "10.244.2.0/24 via 172.18.0.3"), a.routes());
  BOOST_TEST(!contains(slurp(a.log_path()), "routes:"), slurp(a.log_path()));
  (void)b;
}

BOOST_AUTO_TEST_CASE(network_policy_from_the_api_is_enforced_across_nodes) {
  Cluster c(2);
  SimPod& web = c.add_pod(0, "web", "web");
  SimPod& open = c.add_pod(0, "open", "open");
  SimPod& client = c.add_pod(1, "client", "client");
  SimPod& other = c.add_pod(1, "other", "other");
  NameServer web80(web.path(), 80, "web");
  TcpEchoServer web7(web.path(), 7);
  NameServer open80(open.path(), 80, "open");
  // Before any policy every pod reaches web: what follows is the policy's doing.
  BOOST_TEST_REQUIRE(eventually([&] { return ask_tcp(other.path(), web.ip4, 80) == "web"; }, 5s));

  c.api().put(web_policy({"client"}));
  for (int f : {4, 6}) {
    BOOST_TEST(eventually([&] { return !reaches(other.path(), web.ip(f), 80); }, 5s),
               "other -> web IPv" << f << " still allowed");
    BOOST_TEST(ask_tcp(client.path(), web.ip(f), 80) == "web", "client -> web IPv" << f);
    BOOST_TEST(ask_tcp(other.path(), open.ip(f), 80) == "open", "other -> open IPv" << f);
    BOOST_TEST(!reaches(other.path(), web.ip(f), 7), "other -> web:7 IPv" << f);
  }
  TcpConn established(client.path(), web.ip4, 7);
  BOOST_TEST_REQUIRE(established.echo());

  // The remote pods' labels change on the API: node-a's agent follows.
  c.relabel(other, "client");
  for (int f : {4, 6}) {
    BOOST_TEST(eventually([&] { return ask_tcp(other.path(), web.ip(f), 80) == "web"; }, 5s),
               "relabelled other -> web IPv" << f);
  }
  c.relabel(client, "other");
  for (int f : {4, 6}) {
    BOOST_TEST(eventually([&] { return !reaches(client.path(), web.ip(f), 80); }, 5s),
               "relabelled client -> web IPv" << f << " still allowed");
  }
  // Its established connection is cut too, on the node of the isolated pod.
  BOOST_TEST(eventually([&] { return !established.echo(200ms); }, 5s));
  BOOST_TEST(ask_tcp(client.path(), open.ip4, 80) == "open");
}

BOOST_AUTO_TEST_CASE(a_reused_address_loses_the_old_pods_access) {
  Cluster c(2);
  SimPod& web = c.add_pod(0, "web", "web");
  SimPod& client = c.add_pod(1, "client", "client");
  NameServer web80(web.path(), 80, "web");
  c.api().put(web_policy({"client"}));
  for (int f : {4, 6}) {
    BOOST_TEST_REQUIRE(
        eventually([&] { return ask_tcp(client.path(), web.ip(f), 80) == "web"; }, 5s),
        "client -> web IPv" << f);
  }
  // node-b reuses client's addresses for a new pod while the API still shows the old one with
  // them (terminating). The client's namespace keeps the addresses and stands in for the new
  // pod: traffic from them is the new pod's now, and web's policy does not allow it.
  json reused = pod_object("x", "reused", c.node(1).name, "other");
  reused["status"] = client.object["status"];
  c.api().put(reused);
  for (int f : {4, 6}) {
    BOOST_TEST(eventually([&] { return !reaches(client.path(), web.ip(f), 80); }, 5s),
               "the reused IPv" << f << " address still has the old pod's access");
  }
  // The old pod's later updates (still listing the addresses) do not take them back.
  client.object["metadata"]["labels"]["extra"] = "terminating";
  c.api().put(client.object);
  std::this_thread::sleep_for(500ms);
  for (int f : {4, 6}) BOOST_TEST(!reaches(client.path(), web.ip(f), 80), "IPv" << f);
}

BOOST_AUTO_TEST_CASE(an_address_the_node_gives_a_new_pod_loses_the_old_pods_access) {
  Cluster c(2);
  SimNode& a = c.node(0);
  // node-a's IPv4 podCIDR holds one pod address (10.244.1.2: .1 is the range's gateway, .0 and
  // .3 network and broadcast), so its IPAM gives the next pod the address the last one released.
  // (The IPv6 /126 holds two, and round-robin gives the next pod the other one.)
  a.cidrs = {"10.244.1.0/30", "fd00:10:244:1::/126"};
  c.put_node(a);
  BOOST_TEST_REQUIRE(eventually([&] { return contains(a.conflist(), "10.244.1.0/30"); }, 5s),
                     a.conflist());
  BOOST_TEST_REQUIRE(routes_become(c.node(1), {"10.244.1.0/30 via 172.18.0.2"}),
                     c.node(1).routes());
  // x/locked isolates app=locked and admits no one; x/open admits everyone into app=open.
  c.api().put(json::parse(R"({
    "kind": "NetworkPolicy", "apiVersion": "networking.k8s.io/v1",
    "metadata": {"name": "locked", "namespace": "x"},
    "spec": {"podSelector": {"matchLabels": {"app": "locked"}}, "policyTypes": ["Ingress"]}})"));
  c.api().put(json::parse(R"({
    "kind": "NetworkPolicy", "apiVersion": "networking.k8s.io/v1",
    "metadata": {"name": "open", "namespace": "x"},
    "spec": {"podSelector": {"matchLabels": {"app": "open"}}, "policyTypes": ["Ingress"],
             "ingress": [{}]}})"));
  SimPod& old = c.add_pod(0, "old", "open");
  SimPod& client = c.add_pod(1, "client", "client");
  SimPod& peer = c.add_pod(1, "peer", "open");
  NameServer peer80(peer.path(), 80, "peer");
  // x/open's rule is in node-a's table; x/locked came before it on the same watch.
  BOOST_TEST_REQUIRE(
      eventually([&] { return contains(a.ns->sh("nft list table inet knit").out, "x/open"); }, 5s),
      a.ns->sh("nft list table inet knit").out);
  const std::string reused = old.ip4;
  BOOST_TEST_REQUIRE(reused == "10.244.1.2");
  {
    NameServer old80(old.path(), 80, "old");
    BOOST_TEST_REQUIRE(eventually([&] { return ask_tcp(client.path(), reused, 80) == "old"; }, 5s),
                       "client -> old " << reused << " (x/open)");
  }
  // The runtime removes old's sandbox (CNI DEL gives its addresses back), while the API still
  // shows old with them: terminating, and the kubelet has not confirmed its deletion yet.
  c.detach_pod(old);
  old.object["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z";
  old.object["metadata"]["deletionGracePeriodSeconds"] = 30;
  c.api().put(old.object);
  // A new pod on node-a, isolated by x/locked, gets the address; the kubelet has not reported
  // its status yet, so only the CNI plugin's report says whose the address is now.
  SimPod& fresh = c.attach_pod(0, "fresh", "locked");
  BOOST_TEST_REQUIRE(fresh.ip4 == reused, "node-a's IPAM gave " << fresh.ip4);
  NameServer fresh80(fresh.path(), 80, "fresh");
  // The server answers on the address (the node is always admitted), and the client still
  // reaches what x/open admits it to: the probes below can succeed.
  BOOST_TEST(ask_tcp(a.path(), reused, 80) == "fresh", "node-a -> fresh " << reused);
  BOOST_TEST(ask_tcp(client.path(), peer.ip4, 80) == "peer", "client -> peer (x/open)");
  // Once ADD has returned, the address is fresh's alone: x/open's admission went with old.
  bool admitted = reaches(client.path(), reused, 80);
  BOOST_TEST(!admitted, "client -> fresh "
                            << reused << " admitted as the old pod was; node-a: "
                            << (admitted ? a.ns->sh("nft list table inet knit").out : ""));
  BOOST_TEST(!reaches(client.path(), fresh.ip6, 80), "client -> fresh " << fresh.ip6 << " (new)");
  // And so it stays when fresh's status shows the address.
  c.publish_ips(fresh);
  std::this_thread::sleep_for(300ms);
  BOOST_TEST(!reaches(client.path(), reused, 80), "client -> fresh " << reused << " after status");
}

BOOST_AUTO_TEST_CASE(masquerade_only_for_traffic_leaving_the_cluster) {
  Cluster c(2);
  SimNode &a = c.node(0), &b = c.node(1);
  SimPod& pa = c.add_pod(0, "pa", "a");
  SimPod& pb = c.add_pod(1, "pb", "b");
  NameServer outside(c.ext().path(), 80, NameServer::kPeerAddress);
  NameServer who_b(pb.path(), 8080, NameServer::kPeerAddress);
  NameServer node_b(b.path(), 8081, NameServer::kPeerAddress);
  // Leaving the cluster: the node's address (ext has no route back to any podCIDR).
  BOOST_TEST(ask_tcp(pa.path(), "10.200.0.2", 80) == a.ip4());
  BOOST_TEST(ask_tcp(pa.path(), "fd20::2", 80) == a.ip6());
  BOOST_TEST(ask_tcp(pb.path(), "10.200.0.2", 80) == b.ip4());
  BOOST_TEST(ask_tcp(pb.path(), "fd20::2", 80) == b.ip6());
  for (int f : {4, 6}) {
    // A pod on another node, and another node (in --no-masquerade-cidrs): the pod's address.
    BOOST_TEST(ask_tcp(pa.path(), pb.ip(f), 8080) == pa.ip(f), "pa -> pb IPv" << f);
    BOOST_TEST(ask_tcp(pa.path(), f == 4 ? b.ip4() : b.ip6(), 8081) == pa.ip(f),
               "pa -> node-b IPv" << f);
  }
  // The node's own traffic is never masqueraded (it is its own address anyway).
  BOOST_TEST(ask_tcp(a.path(), "10.200.0.2", 80) == a.ip4());
}

BOOST_AUTO_TEST_CASE(api_outage_changes_nothing_in_force_and_later_changes_converge) {
  Cluster c(2);
  SimPod& web = c.add_pod(0, "web", "web");
  SimPod& client = c.add_pod(1, "client", "client");
  SimPod& other = c.add_pod(1, "other", "other");
  NameServer web80(web.path(), 80, "web");
  TcpEchoServer web7(web.path(), 7);
  c.api().put(web_policy({"client"}));
  for (int f : {4, 6}) {
    BOOST_TEST_REQUIRE(eventually([&] { return !reaches(other.path(), web.ip(f), 80); }, 5s));
    BOOST_TEST_REQUIRE(reaches(client.path(), web.ip(f), 80, 1000ms));
  }
  TcpConn established(client.path(), web.ip4, 7);
  BOOST_TEST_REQUIRE(established.echo());

  // Traffic runs all along: new allowed and denied connections of both families, and one
  // established connection, every round.
  struct Traffic {
    std::atomic<bool> stop{false};
    std::atomic<int> rounds{0}, allowed_lost{0}, denied_through{0}, echo_lost{0};
    std::mutex mu;
    std::string trouble;
    std::thread thread;
    void note(const std::string& what) {
      std::lock_guard g(mu);
      trouble += "round " + std::to_string(rounds) + ": " + what + "\n";
    }
    void join() {
      stop = true;
      if (thread.joinable()) thread.join();
    }
    ~Traffic() { join(); }  // also when an assertion below ends the test early
  } t;
  t.thread = std::thread([&] {
    while (!t.stop) {
      for (int f : {4, 6}) {
        std::string fam = "IPv" + std::to_string(f);
        if (!reaches(client.path(), web.ip(f), 80, 1000ms)) {
          ++t.allowed_lost;
          t.note("client -> web " + fam + " lost");
        }
        if (reaches(other.path(), web.ip(f), 80, 200ms)) {
          ++t.denied_through;
          t.note("other -> web " + fam + " through");
        }
      }
      if (!established.echo(1000ms)) {
        ++t.echo_lost;
        t.note("established connection lost");
      }
      ++t.rounds;
      std::this_thread::sleep_for(20ms);  // bounded load, even if every probe answers at once
    }
  });
  auto& rounds = t.rounds;
  auto wait_rounds = [&](int n) {
    int until = rounds + n;
    return eventually([&] { return rounds >= until; }, 10s);
  };
  size_t lists_before = 0;
  for (const auto& r : c.api().requests()) lists_before += r.find("?limit=") != std::string::npos;

  BOOST_TEST(wait_rounds(2));
  // 1. Every watch stream is cut in the middle of its next event.
  BOOST_TEST_REQUIRE(eventually([&] { return c.api().active_watches() == 8; }, 5s));
  c.api().cut_next_event();
  c.api().put(namespace_object("y"));
  c.api().put(pod_object("y", "elsewhere", "node-b", "z"));
  BOOST_TEST(eventually([&] { return c.api().cuts_done() >= 4; }, 5s), c.api().cuts_done());
  // 2. The server goes away, things change meanwhile, and its history is compacted: when it
  // is back, every watch is 410 Gone and every agent lists everything again.
  c.api_stop();
  c.api().put(pod_object("y", "while-down", "node-a", "z"));
  c.api().compact();
  int rounds_down = rounds;
  std::this_thread::sleep_for(2000ms);
  rounds_down = rounds - rounds_down;
  c.api_start();
  BOOST_TEST(eventually([&] { return c.api().active_watches() == 8; }, 15s),
             c.api().active_watches());
  BOOST_TEST(wait_rounds(2));
  t.join();

  BOOST_TEST(rounds_down >= 2);  // traffic did run during the outage
  BOOST_TEST(t.allowed_lost == 0, t.trouble);
  BOOST_TEST(t.denied_through == 0, t.trouble);
  BOOST_TEST(t.echo_lost == 0, t.trouble);
  size_t lists_after = 0;
  for (const auto& r : c.api().requests()) lists_after += r.find("?limit=") != std::string::npos;
  BOOST_TEST(lists_after - lists_before >= 8u);  // both agents re-listed all four kinds

  // A change after the restart converges: the policy now admits `other` and not `client`.
  c.api().put(web_policy({"other"}));
  for (int f : {4, 6}) {
    BOOST_TEST(eventually([&] { return reaches(other.path(), web.ip(f), 80, 1000ms); }, 10s),
               "other -> web IPv" << f << " after the change");
    BOOST_TEST(eventually([&] { return !reaches(client.path(), web.ip(f), 80); }, 10s),
               "client -> web IPv" << f << " after the change");
  }
  BOOST_TEST(eventually([&] { return !established.echo(200ms); }, 5s));
}

BOOST_AUTO_TEST_SUITE_END()
