// What `knit lab` prints and stores: matrices, status, state.json.
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "lab/render.hpp"

using namespace knit;
using namespace knit::lab;

namespace {

constexpr Cell R = Cell::kReachable, X = Cell::kBlocked, P = Cell::kNoPort, A = Cell::kNoAddress;

Matrix three_by_three() {
  Matrix m;
  m.port = uint16_t{80};
  m.protocol = Protocol::kTcp;
  m.pods = {"x/a", "x/b", "y/c"};
  m.cells = {{R, R, X}, {R, R, X}, {R, X, R}};
  return m;
}

LabPod pod(std::string ns, std::string name, std::vector<std::string> ips) {
  LabPod p;
  p.namespace_ = std::move(ns);
  p.name = std::move(name);
  p.container_id = "knit-lab-t." + p.namespace_ + "." + p.name;
  p.netns = "/run/netns/" + p.container_id;
  for (const auto& ip : ips) p.ips.push_back(*IpAddr::parse(ip));
  p.ports = {{"serve-80-tcp", 80, Protocol::kTcp}, {"", 81, Protocol::kUdp}};
  return p;
}

LabState state() {
  LabState s;
  s.name = "t";
  s.dir = "/tmp/m";
  s.node_netns = "/run/netns/knit-lab-t";
  s.node_ips = {*IpAddr::parse("10.99.0.1"), *IpAddr::parse("fd99::1")};
  s.run_dir = "/run/knit/lab/t";
  s.log = "/run/knit/lab/t/lab.log";
  s.control_socket = "/run/knit/lab/t/lab.sock";
  s.supervisor = {1234, 99887766};
  s.agent = true;
  s.agent_socket = "/run/knit/lab/t/agent.sock";
  s.agent_proc = {1240, 99887770};
  s.manifests_digest = "00ff";
  s.pods = {pod("x", "a", {"10.77.0.2", "fd00:77::2"}), pod("y", "b", {"10.77.0.3"})};
  s.pods[1].error = "CNI ADD: no free address";
  s.pods[1].ips.clear();
  s.pods[1].netns.clear();
  return s;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(lab_render)

BOOST_AUTO_TEST_CASE(matrix_json_is_exactly_the_documented_shape) {
  BOOST_TEST(render_matrix_json(three_by_three()) ==
             R"({"port":80,"protocol":"TCP","pods":["x/a","x/b","y/c"],"matrix":{)"
             R"("x/a":{"x/a":true,"x/b":true,"y/c":false},)"
             R"("x/b":{"x/a":true,"x/b":true,"y/c":false},)"
             R"("y/c":{"x/a":true,"x/b":false,"y/c":true}}})"
             "\n");
}

BOOST_AUTO_TEST_CASE(matrix_json_names_a_named_port_and_reports_missing_ports_as_false) {
  Matrix m;
  m.port = std::string("serve-81-udp");
  m.protocol = Protocol::kUdp;
  m.pods = {"x/a", "x/b"};
  m.cells = {{R, P}, {R, P}};
  auto j = nlohmann::json::parse(render_matrix_json(m));
  BOOST_TEST(j["port"] == "serve-81-udp");
  BOOST_TEST(j["protocol"] == "UDP");
  BOOST_TEST(j["matrix"]["x/a"]["x/b"] == false);
  BOOST_TEST(j["matrix"]["x/b"]["x/a"] == true);
}

BOOST_AUTO_TEST_CASE(matrix_table_reads_at_a_glance) {
  BOOST_TEST(render_matrix_table(three_by_three()) ==
             "TCP port 80 over IPv4 (rows: from, columns: to)\n"
             "     x/a  x/b  y/c\n"
             "x/a   -    .    X\n"
             "x/b   .    -    X\n"
             "y/c   .    X    -\n"
             "\n"
             ". reachable   X blocked   - self (reachable)\n"
             "6 of 9 reachable\n");
}

BOOST_AUTO_TEST_CASE(matrix_table_explains_missing_ports_and_addresses) {
  Matrix m;
  m.port = std::string("serve-81-udp");
  m.protocol = Protocol::kUdp;
  m.family = 6;
  m.pods = {"x/a", "x/b", "x/c"};
  m.cells = {{R, P, A}, {R, P, A}, {A, A, A}};
  std::string t = render_matrix_table(m);
  BOOST_TEST(t.find("UDP port serve-81-udp over IPv6") == 0u);
  BOOST_TEST(t.find("x/a   -    ?    !\n") != std::string::npos, t);
  BOOST_TEST(t.find("? no such port   ! no IPv6 address") != std::string::npos, t);
  BOOST_TEST(t.find("2 of 9 reachable (7 not probed)") != std::string::npos, t);
  BOOST_TEST(t.find("x/b has no UDP port named serve-81-udp") != std::string::npos, t);
  BOOST_TEST(t.find("x/c has no IPv6 address") != std::string::npos, t);
}

BOOST_AUTO_TEST_CASE(long_pod_names_become_numbered_columns) {
  Matrix m;
  m.pods = {"frontend/web-server-0", "backend/db"};
  m.cells = {{R, X}, {R, R}};
  std::string t = render_matrix_table(m);
  BOOST_TEST(t.find("\n                          1  2\n"
                    "1  frontend/web-server-0  -  X\n"
                    "2  backend/db             .  -\n") != std::string::npos,
             t);
}

BOOST_AUTO_TEST_CASE(state_round_trips) {
  LabState s = state();
  BOOST_CHECK(decode_state(encode_state(s)) == s);
  LabState empty = state();
  empty.pods.clear();
  empty.agent = false;
  empty.agent_socket.clear();
  empty.agent_proc = {};
  BOOST_CHECK(decode_state(encode_state(empty)) == empty);
}

BOOST_AUTO_TEST_CASE(state_decode_names_what_is_wrong) {
  BOOST_CHECK_THROW(decode_state("[]"), Error);
  auto j = nlohmann::json::parse(encode_state(state()));
  j["pods"][0]["ips"][0] = "10.77.0.300";
  try {
    decode_state(j.dump());
    BOOST_FAIL("no error");
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).find("pods[0]") != std::string::npos, e.what());
  }
}

BOOST_AUTO_TEST_CASE(status_json_says_whether_it_runs_and_where_everything_is) {
  auto j = nlohmann::ordered_json::parse(render_status_json(state(), true));
  BOOST_TEST(j.begin().key() == "running");
  BOOST_TEST(j["running"] == true);
  BOOST_TEST(j["node"]["netns"] == "/run/netns/knit-lab-t");
  BOOST_TEST(j["pods"][0]["namespace"] == "x");
  BOOST_TEST(j["pods"][0]["name"] == "a");
  BOOST_TEST(j["pods"][0]["netns"] == "/run/netns/knit-lab-t.x.a");
  BOOST_TEST(j["pods"][0]["ips"] == nlohmann::ordered_json::array({"10.77.0.2", "fd00:77::2"}));
  BOOST_TEST(j["pods"][1]["error"] == "CNI ADD: no free address");
}

BOOST_AUTO_TEST_CASE(status_table_lists_pods_and_namespaces) {
  std::string t = render_status_table(state(), true);
  BOOST_TEST(t.find("lab t: up (supervisor pid 1234)") == 0u, t);
  BOOST_TEST(t.find("  node       /run/netns/knit-lab-t  10.99.0.1 fd99::1\n") != std::string::npos,
             t);
  BOOST_TEST(t.find("pid 1240, socket /run/knit/lab/t/agent.sock") != std::string::npos, t);
  BOOST_TEST(t.find("x          a     10.77.0.2 fd00:77::2") != std::string::npos, t);
  BOOST_TEST(t.find("/run/netns/knit-lab-t.x.a  serve-80-tcp:80/TCP 81/UDP") != std::string::npos,
             t);
  BOOST_TEST(t.find("ERROR: CNI ADD: no free address  -  ") != std::string::npos, t);
  BOOST_TEST(render_status_table(state(), false).find("NOT RUNNING") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
