// Where a lab keeps its things, what it hands to the CNI plugin, and its control protocol.
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "lab/cni_call.hpp"
#include "lab/control.hpp"
#include "lab/names.hpp"

using namespace knit;
using namespace knit::lab;

BOOST_AUTO_TEST_SUITE(lab_names)

BOOST_AUTO_TEST_CASE(paths_of_a_lab) {
  Paths p = paths_for("demo");
  BOOST_TEST(p.run_dir == "/run/knit/lab/demo");
  BOOST_TEST(p.state == "/run/knit/lab/demo/state.json");
  BOOST_TEST(p.agent_socket == "/run/knit/lab/demo/agent.sock");
  BOOST_TEST(p.node_netns == "/run/netns/knit-lab-demo");
  BOOST_TEST(p.node_name == "lab-demo");
}

BOOST_AUTO_TEST_CASE(pod_namespaces_are_prefixed_unambiguous_and_bounded) {
  BOOST_TEST(pod_netns_name("demo", "x", "a") == "knit-lab-demo.x.a");
  // '-' is in lab, namespace and pod names alike; '.' is in none but pod names, so these differ.
  BOOST_TEST(pod_netns_name("demo", "x-a", "b") != pod_netns_name("demo", "x", "a-b"));
  BOOST_TEST(pod_netns_name("demo", "x", "a").starts_with(pod_netns_prefix("demo")));
  BOOST_TEST(!pod_netns_name("demo-2", "x", "a").starts_with(pod_netns_prefix("demo")));
  std::string pod(200, 'p');
  std::string cut = pod_netns_name("demo", "x", pod);
  BOOST_TEST(cut.size() == 100u);
  BOOST_TEST(cut.starts_with("knit-lab-demo.x.ppp"));
  BOOST_TEST(cut[91] == '_');
  BOOST_TEST(cut != pod_netns_name("demo", "x", std::string(201, 'p')));  // the hash differs
}

BOOST_AUTO_TEST_CASE(cni_config_is_dual_stack_and_points_at_the_labs_agent) {
  Paths p = paths_for("demo");
  auto on = nlohmann::json::parse(cni_config(p, true, pod_cidrs({})));
  BOOST_TEST(on["type"] == "knit");
  BOOST_TEST(on["dataDir"] == "/run/knit/lab/demo");
  BOOST_TEST(on["agent"] == "required");
  BOOST_TEST(on["agentSocket"] == "/run/knit/lab/demo/agent.sock");
  BOOST_TEST(on["ipam"]["ranges"][0][0]["subnet"] == "10.77.0.0/16");
  BOOST_TEST(on["ipam"]["ranges"][1][0]["subnet"] == "fd00:77::/64");
  auto off = nlohmann::json::parse(cni_config(p, false, pod_cidrs({})));
  BOOST_TEST(off["agent"] == "off");
  BOOST_TEST(!off.contains("agentSocket"));
}

BOOST_AUTO_TEST_CASE(a_pod_cidr_replaces_its_familys_range_alone) {
  Paths p = paths_for("demo");
  auto v4 = nlohmann::json::parse(cni_config(p, true, pod_cidrs({"10.1.2.0/28"})));
  BOOST_TEST(v4["ipam"]["ranges"][0][0]["subnet"] == "10.1.2.0/28");
  BOOST_TEST(v4["ipam"]["ranges"][1][0]["subnet"] == "fd00:77::/64");
  auto both = pod_cidrs({"fd00:1::/120", "10.1.2.0/28"});
  BOOST_TEST((both == std::vector<std::string>{"10.1.2.0/28", "fd00:1::/120"}));
}

BOOST_AUTO_TEST_CASE(cni_env_is_what_a_runtime_sets) {
  auto env = cni_env("ADD", "knit-lab-demo.x.a", "/run/netns/knit-lab-demo.x.a", "x", "a");
  auto has = [&](const std::string& kv) {
    return std::find(env.begin(), env.end(), kv) != env.end();
  };
  BOOST_TEST(has("CNI_COMMAND=ADD"));
  BOOST_TEST(has("CNI_CONTAINERID=knit-lab-demo.x.a"));
  BOOST_TEST(has("CNI_NETNS=/run/netns/knit-lab-demo.x.a"));
  BOOST_TEST(has("CNI_IFNAME=eth0"));
  BOOST_TEST(has("CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=x;K8S_POD_NAME=a"));
}

BOOST_AUTO_TEST_CASE(cni_results_and_errors) {
  auto ips = cni_result_ips(
      R"({"cniVersion":"1.1.0","ips":[{"address":"10.77.0.2/32"},{"address":"fd00:77::2/128"}]})");
  BOOST_REQUIRE(ips.size() == 2u);
  BOOST_TEST(ips[0].to_string() == "10.77.0.2");
  BOOST_TEST(ips[1].to_string() == "fd00:77::2");
  BOOST_CHECK_THROW(cni_result_ips(R"({"code":7,"msg":"bad"})"), Error);
  BOOST_TEST(
      cni_error_text(R"({"cniVersion":"1.1.0","code":105,"msg":"agent","details":"down"})") ==
      "agent: down (code 105)");
  BOOST_TEST(cni_error_text("  not json\n") == "not json");
}

BOOST_AUTO_TEST_CASE(control_protocol_round_trips) {
  BOOST_TEST(is_sync_request(kSyncRequest));
  BOOST_TEST(!is_sync_request(R"({"op":"status"})"));
  BOOST_TEST(!is_sync_request("garbage"));
  SyncReply r{true, "", "abc", {"pods.yaml: document 2: bad"}};
  BOOST_CHECK(decode_sync_reply(encode(r)) == r);
  SyncReply bad{false, "read manifests: gone", "", {}};
  BOOST_CHECK(decode_sync_reply(encode(bad)) == bad);
  BOOST_CHECK_THROW(decode_sync_reply("{}"), Error);
}

BOOST_AUTO_TEST_SUITE_END()
