// The CNI plugin driven exactly as a runtime drives it: exec'd inside a sandbox node namespace,
// with real pod namespaces and real packets.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "harness.hpp"

using namespace knit::test;
using nlohmann::json;

namespace {
auto needs_netns() { return boost::unit_test::precondition(NeedsNetns()); }

std::string cid(int i) { return "c0ffee" + std::to_string(1000 + i); }

bool link_exists(const TestNetns& ns, const std::string& name) {
  return ns.sh("ip link show dev " + name + " >/dev/null 2>&1").status == 0;
}

std::string routes(const TestNetns& ns) { return ns.sh("ip route; ip -6 route").out; }
}  // namespace

BOOST_AUTO_TEST_SUITE(cni_plugin)

BOOST_AUTO_TEST_CASE(two_pods_talk_over_ipv4_and_ipv6, *needs_netns()) {
  Node node("dual");
  TestNetns a("pa"), b("pb");
  auto conf = node.dual_stack_config();
  Proc ra = node.add(cid(1), a, conf);
  BOOST_REQUIRE_MESSAGE(ra.status == 0, ra.out << ra.err);
  Proc rb = node.add(cid(2), b, conf);
  BOOST_REQUIRE_MESSAGE(rb.status == 0, rb.out << rb.err);
  auto ips_a = result_ips(ra.out), ips_b = result_ips(rb.out);
  BOOST_REQUIRE_EQUAL(ips_a.size(), 2u);
  BOOST_REQUIRE_EQUAL(ips_b.size(), 2u);
  BOOST_TEST(ips_a[0] != ips_b[0]);
  BOOST_TEST(ips_a[0].rfind("10.22.0.", 0) == 0u);
  BOOST_TEST(ips_a[1].rfind("fd00:22::", 0) == 0u);
  // The addresses are really on eth0 in the pod, as host prefixes.
  std::string addrs = a.must("ip -o addr show dev eth0");
  BOOST_TEST(addrs.find(ips_a[0] + "/32") != std::string::npos);
  BOOST_TEST(addrs.find(ips_a[1] + "/128") != std::string::npos);
  BOOST_TEST(addrs.find("tentative") == std::string::npos);
  for (size_t f = 0; f < 2; ++f) {
    BOOST_TEST(ping(a.path(), ips_b[f]), "pod a -> pod b " << ips_b[f]);
    BOOST_TEST(ping(b.path(), ips_a[f]), "pod b -> pod a " << ips_a[f]);
    BOOST_TEST(ping(node.ns.path(), ips_a[f]), "node -> pod a " << ips_a[f]);
  }
  BOOST_TEST(ping(a.path(), "10.99.0.1"), "pod -> node");
  BOOST_TEST(node.del(cid(1), a.path(), conf).status == 0);
  BOOST_TEST(node.del(cid(2), b.path(), conf).status == 0);
}

BOOST_AUTO_TEST_CASE(single_stack_configs_work, *needs_netns()) {
  Node node("single");
  TestNetns a("pa"), b("pb");
  auto v4 = node.config(R"([[{"subnet":"10.23.0.0/24"}]])");
  Proc r4 = node.add(cid(1), a, v4);
  BOOST_REQUIRE_MESSAGE(r4.status == 0, r4.out);
  BOOST_TEST(result_ips(r4.out).size() == 1u);
  BOOST_TEST(a.must("ip -6 route show default").empty());
  BOOST_TEST(ping(node.ns.path(), result_ips(r4.out)[0]));

  node.net = "knit-test6";
  auto v6 = node.config(R"([[{"subnet":"fd00:23::/120"}]])");
  Proc r6 = node.add(cid(2), b, v6);
  BOOST_REQUIRE_MESSAGE(r6.status == 0, r6.out);
  auto ips = result_ips(r6.out);
  BOOST_REQUIRE_EQUAL(ips.size(), 1u);
  BOOST_TEST(ips[0].find(':') != std::string::npos);
  BOOST_TEST(b.must("ip -4 route show default").empty());
  BOOST_TEST(ping(node.ns.path(), ips[0]));
  BOOST_TEST(ping(b.path(), "fd99::1"));
}

BOOST_AUTO_TEST_CASE(mtu_follows_the_uplink_or_the_config, *needs_netns()) {
  Node node("mtu", 1400);
  TestNetns a("pa"), b("pb");
  BOOST_REQUIRE(node.add(cid(1), a, node.dual_stack_config()).status == 0);
  // (Not /sys: it shows the namespace of whoever mounted it, not ours.)
  BOOST_TEST(a.must("ip -o link show eth0").find(" mtu 1400 ") != std::string::npos);
  auto fixed = node.config(R"([[{"subnet":"10.24.0.0/24"}]])", "1.1.0", R"(,"mtu":1280)");
  node.net = "knit-mtu2";
  BOOST_REQUIRE(node.add(cid(2), b, fixed).status == 0);
  BOOST_TEST(b.must("ip -o link show eth0").find(" mtu 1280 ") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(check_passes_then_catches_a_removed_route, *needs_netns()) {
  Node node("check");
  TestNetns a("pa");
  auto conf = node.dual_stack_config();
  Proc r = node.add(cid(1), a, conf);
  BOOST_REQUIRE(r.status == 0);
  auto with_prev = json::parse(conf);
  with_prev["prevResult"] = json::parse(r.out);
  Proc ok = node.check(cid(1), a, with_prev.dump());
  BOOST_TEST(ok.status == 0, ok.out);
  a.must("ip route del default");
  Proc bad = node.check(cid(1), a, with_prev.dump());
  BOOST_TEST(bad.status == 1);
  BOOST_TEST(error_code(bad.out) == 106);
  BOOST_TEST(bad.out.find("0.0.0.0/0") != std::string::npos, bad.out);
  // The host route too.
  a.must("ip route add default via 169.254.1.1 dev eth0");
  BOOST_TEST(node.check(cid(1), a, with_prev.dump()).status == 0);
  std::string host_if = result_host_ifname(r.out);
  node.ns.must("ip route del " + result_ips(r.out)[0] + "/32");
  Proc bad2 = node.check(cid(1), a, with_prev.dump());
  BOOST_TEST(error_code(bad2.out) == 106);
  BOOST_TEST(bad2.out.find("host route") != std::string::npos, bad2.out);
}

BOOST_AUTO_TEST_CASE(del_twice_succeeds_and_the_link_goes_away, *needs_netns()) {
  Node node("del");
  TestNetns a("pa");
  auto conf = node.dual_stack_config();
  Proc r = node.add(cid(1), a, conf);
  BOOST_REQUIRE(r.status == 0);
  std::string host_if = result_host_ifname(r.out);
  std::string ip = result_ips(r.out)[0];
  BOOST_TEST(link_exists(node.ns, host_if));
  Proc d1 = node.del(cid(1), a.path(), conf);
  BOOST_TEST(d1.status == 0, d1.out << d1.err);
  // When DEL returns, the routes are gone and the address is released...
  BOOST_TEST(routes(node.ns).find(ip) == std::string::npos, routes(node.ns));
  BOOST_TEST(node.attachments() == 0u);
  // ...and the link disappears promptly, without DEL waiting for it.
  BOOST_TEST(eventually([&] { return !link_exists(node.ns, host_if); }));
  BOOST_TEST(!link_exists(a, "eth0"));
  Proc d2 = node.del(cid(1), a.path(), conf);
  BOOST_TEST(d2.status == 0, d2.out << d2.err);
  BOOST_TEST(d2.out.empty());
}

BOOST_AUTO_TEST_CASE(del_after_the_netns_is_gone_releases_the_address, *needs_netns()) {
  Node node("gone");
  auto a = std::make_unique<TestNetns>("pa");
  auto conf = node.config(R"([[{"subnet":"10.25.0.0/30"}]])");  // exactly one usable address
  Proc r = node.add(cid(1), *a, conf);
  BOOST_REQUIRE(r.status == 0);
  std::string path = a->path();
  a.reset();  // the runtime deleted the namespace (and with it the veth)
  Proc d = node.del(cid(1), path, conf);
  BOOST_TEST(d.status == 0, d.out << d.err);
  BOOST_TEST(node.attachments() == 0u);
  BOOST_TEST(routes(node.ns).find("10.25.0.") == std::string::npos);
  // The single address is free again.
  TestNetns b("pb");
  Proc r2 = node.add(cid(2), b, conf);
  BOOST_TEST(r2.status == 0, r2.out);
}

BOOST_AUTO_TEST_CASE(fifty_concurrent_adds_get_fifty_addresses, *needs_netns()) {
  Node node("par");
  auto conf = node.dual_stack_config();
  std::vector<std::unique_ptr<TestNetns>> pods;
  for (int i = 0; i < 50; ++i) pods.push_back(std::make_unique<TestNetns>("p" + std::to_string(i)));
  std::vector<Proc> results(50);
  std::vector<std::thread> threads;
  for (int i = 0; i < 50; ++i) {
    threads.emplace_back([&, i] { results[i] = node.add(cid(i), *pods[i], conf); });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> v4, v6;
  for (int i = 0; i < 50; ++i) {
    BOOST_REQUIRE_MESSAGE(results[i].status == 0, i << ": " << results[i].out << results[i].err);
    auto ips = result_ips(results[i].out);
    v4.insert(ips.at(0));
    v6.insert(ips.at(1));
  }
  BOOST_TEST(v4.size() == 50u);
  BOOST_TEST(v6.size() == 50u);
  BOOST_TEST(node.attachments() == 50u);
  BOOST_TEST(ping(pods[0]->path(), *v4.rbegin()));
}

BOOST_AUTO_TEST_CASE(add_fails_cleanly_when_the_interface_exists, *needs_netns()) {
  Node node("exists");
  TestNetns a("pa");
  auto conf = node.dual_stack_config();
  a.must("ip link add eth0 type veth peer name eth0peer");
  Proc r = node.add(cid(1), a, conf);
  BOOST_TEST(r.status == 1);
  BOOST_TEST(error_code(r.out) == 104, r.out);
  BOOST_TEST(r.out.find("eth0") != std::string::npos);
  BOOST_TEST(node.attachments() == 0u);
  BOOST_TEST(node.ns.sh("ip -o link | grep -c knit").out == "0\n");
}

BOOST_AUTO_TEST_CASE(add_failing_half_way_leaves_nothing, *needs_netns()) {
  Node node("half");
  TestNetns a("pa"), b("pb");
  auto conf = node.dual_stack_config();
  // Learn the host-side name of (cid 1, eth0), then take that name with a foreign link: ADD
  // reserves addresses, fails to create the veth, and must give everything back.
  Proc r = node.add(cid(1), a, conf);
  BOOST_REQUIRE(r.status == 0);
  std::string host_if = result_host_ifname(r.out);
  BOOST_REQUIRE(node.del(cid(1), a.path(), conf).status == 0);
  BOOST_REQUIRE(eventually([&] { return !link_exists(node.ns, host_if); }));
  node.ns.must("ip link add " + host_if + " type veth peer name foreignpeer");
  Proc bad = node.add(cid(1), b, conf);
  BOOST_TEST(bad.status == 1);
  BOOST_TEST(error_code(bad.out) == 104, bad.out);
  BOOST_TEST(bad.out.find(host_if) != std::string::npos, bad.out);
  BOOST_TEST(node.attachments() == 0u);
  BOOST_TEST(!link_exists(b, "eth0"));
  BOOST_TEST(routes(node.ns).find("10.22.0.") == std::string::npos);
  // Only the foreign pair and the uplink pair remain.
  BOOST_TEST(node.ns.sh("ip -o link show type veth | wc -l").out == "4\n");
}

BOOST_AUTO_TEST_CASE(add_twice_without_del_is_refused, *needs_netns()) {
  Node node("twice");
  TestNetns a("pa");
  auto conf = node.dual_stack_config();
  BOOST_REQUIRE(node.add(cid(1), a, conf).status == 0);
  Proc again = node.add(cid(1), a, conf);
  BOOST_TEST(again.status == 1);
  BOOST_TEST(error_code(again.out) == 104);
  BOOST_TEST(node.attachments() == 1u);
}

BOOST_AUTO_TEST_CASE(full_pool_is_a_clear_error_and_status_says_so, *needs_netns()) {
  Node node("full");
  TestNetns a("pa"), b("pb"), c("pc");
  auto conf = node.config(R"([[{"subnet":"10.26.0.0/29","rangeStart":"10.26.0.2","rangeEnd":"10.26.0.3"}]])");
  BOOST_TEST(node.verb("STATUS", conf).status == 0);
  BOOST_REQUIRE(node.add(cid(1), a, conf).status == 0);
  BOOST_REQUIRE(node.add(cid(2), b, conf).status == 0);
  Proc full = node.add(cid(3), c, conf);
  BOOST_TEST(full.status == 1);
  BOOST_TEST(error_code(full.out) == 102, full.out);
  BOOST_TEST(full.out.find("10.26.0.0/29") != std::string::npos, full.out);
  BOOST_TEST(!link_exists(c, "eth0"));
  Proc st = node.verb("STATUS", conf);
  BOOST_TEST(st.status == 1);
  BOOST_TEST(error_code(st.out) == 50, st.out);
  BOOST_REQUIRE(node.del(cid(2), b.path(), conf).status == 0);
  BOOST_TEST(node.verb("STATUS", conf).status == 0);
}

BOOST_AUTO_TEST_CASE(status_reports_an_unusable_store, *needs_netns()) {
  Node node("badstore");
  auto conf = node.dual_stack_config();
  sh("mkdir -p '" + node.data_dir + "/ipam/" + node.net + "' && echo 'not a store' > '" +
     node.data_dir + "/ipam/" + node.net + "/store'");
  Proc st = node.verb("STATUS", conf);
  BOOST_TEST(st.status == 1);
  BOOST_TEST(error_code(st.out) == 50, st.out);
  BOOST_TEST(st.out.find("store") != std::string::npos, st.out);
}

BOOST_AUTO_TEST_CASE(gc_releases_attachments_not_listed, *needs_netns()) {
  Node node("gc");
  TestNetns a("pa"), b("pb"), c("pc");
  auto conf = node.dual_stack_config();
  std::vector<std::string> host_ifs;
  for (auto* p : {&a, &b, &c}) {
    Proc r = node.add(cid(static_cast<int>(host_ifs.size())), *p, conf);
    BOOST_REQUIRE(r.status == 0);
    host_ifs.push_back(result_host_ifname(r.out));
  }
  auto gc = json::parse(conf);
  gc["cni.dev/valid-attachments"] = json::array({{{"containerID", cid(0)}, {"ifname", "eth0"}}});
  gc["cni.dev/attachments"] = gc["cni.dev/valid-attachments"];
  Proc r = node.verb("GC", gc.dump());
  BOOST_TEST(r.status == 0, r.out << r.err);
  BOOST_TEST(r.out.empty());
  BOOST_TEST(node.attachments() == 1u);
  BOOST_TEST(link_exists(node.ns, host_ifs[0]));
  BOOST_TEST(!link_exists(node.ns, host_ifs[1]));
  BOOST_TEST(!link_exists(node.ns, host_ifs[2]));
  BOOST_TEST(ping(node.ns.path(), result_ips(node.add(cid(9), b, conf).out).at(0)));
}

BOOST_AUTO_TEST_CASE(kill_9_during_add_leaves_nothing_gc_does_not_clean, *needs_netns()) {
  Node node("kill");
  auto conf = node.dual_stack_config();
  std::vector<std::unique_ptr<TestNetns>> pods;
  // Kill ADDs at spread-out moments, from before the store commit to after the veth exists.
  for (int i = 0; i < 40; ++i) {
    pods.push_back(std::make_unique<TestNetns>("k" + std::to_string(i)));
    int in[2];
    BOOST_REQUIRE(pipe(in) == 0);
    pid_t pid = fork();
    if (pid == 0) {
      dup2(in[0], 0);
      int null = open("/dev/null", O_WRONLY);
      dup2(null, 1);
      dup2(null, 2);
      int fd = open(node.ns.path().c_str(), O_RDONLY);
      setns(fd, CLONE_NEWNET);
      std::string id = cid(i);
      setenv("CNI_COMMAND", "ADD", 1);
      setenv("CNI_CONTAINERID", id.c_str(), 1);
      setenv("CNI_NETNS", pods.back()->path().c_str(), 1);
      setenv("CNI_IFNAME", "eth0", 1);
      setenv("CNI_PATH", "/usr/lib/cni", 1);
      std::string bin = knit_binary();
      execl(bin.c_str(), bin.c_str(), nullptr);
      _exit(127);
    }
    close(in[0]);
    (void)!write(in[1], conf.data(), conf.size());
    close(in[1]);
    std::this_thread::sleep_for(std::chrono::microseconds(100 * i));
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
  }
  auto gc = json::parse(conf);
  gc["cni.dev/valid-attachments"] = json::array();
  Proc r = node.verb("GC", gc.dump());
  BOOST_TEST(r.status == 0, r.out << r.err);
  BOOST_TEST(node.attachments() == 0u);
  BOOST_TEST(node.ns.sh("ip -o link | grep -c knit").out == "0\n");
  BOOST_TEST(routes(node.ns).find("10.22.0.") == std::string::npos, routes(node.ns));
  BOOST_TEST(routes(node.ns).find("fd00:22::") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(older_versions_get_their_result_shape, *needs_netns()) {
  Node node("ver");
  TestNetns a("pa"), b("pb");
  Proc r040 = node.add(cid(1), a, node.dual_stack_config("0.4.0"));
  BOOST_REQUIRE(r040.status == 0);
  auto j = json::parse(r040.out);
  BOOST_TEST(j["cniVersion"] == "0.4.0");
  BOOST_TEST(j["ips"][0]["version"] == "4");
  BOOST_TEST(j["ips"][1]["version"] == "6");
  Proc r100 = node.add(cid(2), b, node.dual_stack_config("1.0.0"));
  BOOST_REQUIRE(r100.status == 0);
  auto k = json::parse(r100.out);
  BOOST_TEST(!k["ips"][0].contains("version"));
}

BOOST_AUTO_TEST_CASE(passes_prev_result_through_when_chained, *needs_netns()) {
  Node node("chain");
  TestNetns a("pa");
  auto conf = json::parse(node.dual_stack_config());
  conf["prevResult"] = json::parse(R"({"cniVersion":"1.1.0","interfaces":[{"name":"lo",
      "sandbox":"/x"}],"ips":[{"address":"127.0.0.1/8","interface":0}],"dns":{"nameservers":["10.0.0.10"]}})");
  Proc r = node.add(cid(1), a, conf.dump());
  BOOST_REQUIRE_MESSAGE(r.status == 0, r.out);
  auto j = json::parse(r.out);
  BOOST_TEST(j["interfaces"].size() == 3u);
  BOOST_TEST(j["interfaces"][0]["name"] == "lo");
  BOOST_TEST(j["ips"][0]["address"] == "127.0.0.1/8");
  BOOST_TEST(j["ips"][1]["interface"] == 2);
  BOOST_TEST(j["dns"]["nameservers"][0] == "10.0.0.10");
}

BOOST_AUTO_TEST_SUITE_END()
