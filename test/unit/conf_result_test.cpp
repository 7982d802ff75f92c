#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <ostream>
#include <string>

#include "conf/netconf.hpp"
#include "core/str.hpp"

using knit::Code;
using knit::Error;
using knit::IpAddr;
using knit::Prefix;
using knit::str;
using knit::conf::decode_result;
using knit::conf::render_result;
using knit::conf::Result;
namespace data = boost::unit_test::data;

namespace {

std::string fixture(const char* name) {
  auto path = str(KNIT_TEST_DATA, "/netconf/", name);
  std::FILE* f = std::fopen(path.c_str(), "rb");
  BOOST_TEST_REQUIRE(f != nullptr, "cannot open " << path);
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
  std::fclose(f);
  return out;
}

// The 0.4.0 fixture, rendered back at 0.4.0 and 1.0.0: identical but for ips[].version.
const char* const kR040At040 =
    R"({"cniVersion":"0.4.0","interfaces":[{"name":"knit0a1b2c3d","mac":"6e:1a:2b:3c:4d:5e"},)"
    R"({"name":"eth0","mac":"0a:58:0a:f4:00:07","sandbox":"/var/run/netns/cni-1234"}],)"
    R"("ips":[{"version":"4","interface":1,"address":"10.244.0.7/24","gateway":"10.244.0.1"},)"
    R"({"version":"6","interface":1,"address":"fd00:10:244::7/64","gateway":"fd00:10:244::1"}],)"
    R"("routes":[{"dst":"0.0.0.0/0","gw":"10.244.0.1"},{"dst":"::/0"}],)"
    R"("dns":{"nameservers":["10.96.0.10"],"domain":"cluster.local",)"
    R"("search":["default.svc.cluster.local","svc.cluster.local"],"options":["ndots:5"]}})";
const char* const kR040At100 =
    R"({"cniVersion":"1.0.0","interfaces":[{"name":"knit0a1b2c3d","mac":"6e:1a:2b:3c:4d:5e"},)"
    R"({"name":"eth0","mac":"0a:58:0a:f4:00:07","sandbox":"/var/run/netns/cni-1234"}],)"
    R"("ips":[{"interface":1,"address":"10.244.0.7/24","gateway":"10.244.0.1"},)"
    R"({"interface":1,"address":"fd00:10:244::7/64","gateway":"fd00:10:244::1"}],)"
    R"("routes":[{"dst":"0.0.0.0/0","gw":"10.244.0.1"},{"dst":"::/0"}],)"
    R"("dns":{"nameservers":["10.96.0.10"],"domain":"cluster.local",)"
    R"("search":["default.svc.cluster.local","svc.cluster.local"],"options":["ndots:5"]}})";

// The 1.1.0 fixture at 1.1.0 (everything), 1.0.0 (no 1.1.0 fields) and 0.3.1 (plus version).
const char* const kR110At110 =
    R"({"cniVersion":"1.1.0","interfaces":[)"
    R"({"name":"knit0a1b2c3d","mac":"6e:1a:2b:3c:4d:5e","mtu":1450},)"
    R"({"name":"eth0","mac":"0a:58:0a:f4:00:07","mtu":1450,"sandbox":"/var/run/netns/cni-1234",)"
    R"("socketPath":"/run/vhost/eth0.sock","pciID":"0000:00:1f.6"}],)"
    R"("ips":[{"interface":1,"address":"10.244.0.7/24","gateway":"10.244.0.1"}],)"
    R"("routes":[{"dst":"0.0.0.0/0","gw":"10.244.0.1","mtu":1400,"advmss":1360,"priority":100,)"
    R"("table":254,"scope":0},{"dst":"10.244.0.1/32","scope":253}],"dns":{}})";
const char* const kR110At100 =
    R"({"cniVersion":"1.0.0","interfaces":[{"name":"knit0a1b2c3d","mac":"6e:1a:2b:3c:4d:5e"},)"
    R"({"name":"eth0","mac":"0a:58:0a:f4:00:07","sandbox":"/var/run/netns/cni-1234"}],)"
    R"("ips":[{"interface":1,"address":"10.244.0.7/24","gateway":"10.244.0.1"}],)"
    R"("routes":[{"dst":"0.0.0.0/0","gw":"10.244.0.1"},{"dst":"10.244.0.1/32"}],"dns":{}})";
const char* const kR110At031 =
    R"({"cniVersion":"0.3.1","interfaces":[{"name":"knit0a1b2c3d","mac":"6e:1a:2b:3c:4d:5e"},)"
    R"({"name":"eth0","mac":"0a:58:0a:f4:00:07","sandbox":"/var/run/netns/cni-1234"}],)"
    R"("ips":[{"version":"4","interface":1,"address":"10.244.0.7/24","gateway":"10.244.0.1"}],)"
    R"("routes":[{"dst":"0.0.0.0/0","gw":"10.244.0.1"},{"dst":"10.244.0.1/32"}],"dns":{}})";

struct ResultError {
  const char* name;
  const char* json;
  const char* msg;
};
std::ostream& operator<<(std::ostream& os, const ResultError& c) {
  return os << c.name;
}

const ResultError kResultErrors[] = {
    {"not an object", "[]", "decode result: [] is not an object"},
    {"interfaces not a list", R"({"interfaces":{}})",
     "decode result: interfaces: {} is not a list"},
    {"interface name not a string", R"({"interfaces":[{"name":1}]})",
     "decode result: interfaces[0].name: 1 is not a string"},
    {"interface mtu negative", R"({"interfaces":[{"name":"eth0","mtu":-1}]})",
     "decode result: interfaces[0].mtu: -1 is out of range 0..4294967295"},
    {"ip without address", R"({"ips":[{"gateway":"10.0.0.1"}]})",
     "decode result: ips[0].address: missing"},
    {"ip address without length", R"({"ips":[{"address":"10.0.0.5"}]})",
     R"(decode result: ips[0].address: "10.0.0.5" is not a CIDR (address/length))"},
    {"ip gateway malformed", R"({"ips":[{"address":"10.0.0.5/24","gateway":"10.0.0.256"}]})",
     R"(decode result: ips[0].gateway: "10.0.0.256" is not an IP address)"},
    {"interface index past the end",
     R"({"interfaces":[{"name":"eth0"}],"ips":[{"address":"10.0.0.5/24","interface":1}]})",
     "decode result: ips[0].interface: 1 is out of range 0..0"},
    {"interface index negative",
     R"({"interfaces":[{"name":"eth0"}],"ips":[{"address":"10.0.0.5/24","interface":-1}]})",
     "decode result: ips[0].interface: -1 is out of range 0..0"},
    {"interface index without interfaces", R"({"ips":[{"address":"10.0.0.5/24","interface":0}]})",
     "decode result: ips[0].interface: 0 given but interfaces is empty"},
    {"interface index as string",
     R"({"interfaces":[{"name":"eth0"}],"ips":[{"address":"10.0.0.5/24","interface":"0"}]})",
     R"(decode result: ips[0].interface: "0" is not an integer)"},
    {"route without dst", R"({"routes":[{"gw":"10.0.0.1"}]})",
     "decode result: routes[0].dst: missing"},
    {"route dst not a CIDR", R"({"routes":[{"dst":"default"}]})",
     R"(decode result: routes[0].dst: "default" is not a CIDR (address/length))"},
    {"route table as float", R"({"routes":[{"dst":"0.0.0.0/0","table":254.5}]})",
     "decode result: routes[0].table: 254.5 is not an integer"},
    {"0.2.0 result", R"({"cniVersion":"0.2.0","ip4":{"ip":"10.0.0.5/24"}})",
     R"(decode result: cniVersion: "0.2.0" is not a supported result version)"},
    {"dns nameservers not a list", R"({"dns":{"nameservers":"10.96.0.10"}})",
     R"(decode result: dns.nameservers: "10.96.0.10" is not a list)"},
    {"dns search entry not a string", R"({"dns":{"search":["a",1]}})",
     "decode result: dns.search[1]: 1 is not a string"},
};

}  // namespace

BOOST_AUTO_TEST_SUITE(conf_result)

BOOST_AUTO_TEST_CASE(decodes_a_0_4_0_result) {
  auto r = decode_result(fixture("result-0.4.0.json"));
  BOOST_TEST_REQUIRE(r.interfaces.size() == 2u);
  BOOST_TEST(r.interfaces[1].name == "eth0");
  BOOST_TEST(r.interfaces[1].mac == "0a:58:0a:f4:00:07");
  BOOST_TEST(r.interfaces[1].sandbox == "/var/run/netns/cni-1234");
  BOOST_TEST(r.interfaces[0].sandbox == "");
  BOOST_TEST_REQUIRE(r.ips.size() == 2u);
  BOOST_TEST(r.ips[0].address.to_string() == "10.244.0.7/24");
  BOOST_TEST(r.ips[1].gateway->to_string() == "fd00:10:244::1");
  BOOST_TEST(*r.ips[1].interface == 1);
  BOOST_TEST_REQUIRE(r.routes.size() == 2u);
  BOOST_TEST(!r.routes[1].gw.has_value());
  BOOST_TEST(r.dns.domain == "cluster.local");
  BOOST_TEST(r.dns.search.size() == 2u);
}

BOOST_AUTO_TEST_CASE(round_trips_0_4_0) {
  auto r = decode_result(fixture("result-0.4.0.json"));
  BOOST_TEST(render_result(r, knit::conf::kV040) == kR040At040);
  BOOST_TEST((decode_result(kR040At040) == r));
  // From 1.0.0 on there is no ips[].version; nothing else changes.
  BOOST_TEST(render_result(r, knit::conf::kV100) == kR040At100);
  BOOST_TEST((decode_result(kR040At100) == r));
}

BOOST_AUTO_TEST_CASE(round_trips_1_1_0) {
  auto r = decode_result(fixture("result-1.1.0.json"));
  BOOST_TEST(*r.interfaces[1].mtu == 1450u);
  BOOST_TEST(r.interfaces[1].socket_path == "/run/vhost/eth0.sock");
  BOOST_TEST(r.interfaces[1].pci_id == "0000:00:1f.6");
  BOOST_TEST(*r.routes[0].advmss == 1360u);
  BOOST_TEST(*r.routes[0].scope == 0u);
  BOOST_TEST(!r.routes[1].table.has_value());

  BOOST_TEST(render_result(r, knit::conf::kV110) == kR110At110);
  BOOST_TEST((decode_result(kR110At110) == r));
  BOOST_TEST(render_result(r, knit::conf::kV100) == kR110At100);
  BOOST_TEST(render_result(r, knit::conf::kV031) == kR110At031);
}

BOOST_AUTO_TEST_CASE(renders_minimal_results) {
  BOOST_TEST(render_result(Result{}, knit::conf::kV110) == R"({"cniVersion":"1.1.0","dns":{}})");
  Result r;
  r.ips.push_back({*Prefix::parse("fd00::5/64"), {}, {}});
  r.interfaces.push_back({"eth0", "", {}, "", "", ""});
  BOOST_TEST(render_result(r, knit::conf::kV030) ==
             R"({"cniVersion":"0.3.0","interfaces":[{"name":"eth0"}],)"
             R"("ips":[{"version":"6","address":"fd00::5/64"}],"dns":{}})");
  r.dns.options = {"ndots:2"};
  BOOST_TEST(render_result(r, knit::conf::kV100) ==
             R"({"cniVersion":"1.0.0","interfaces":[{"name":"eth0"}],)"
             R"("ips":[{"address":"fd00::5/64"}],"dns":{"options":["ndots:2"]}})");
}

BOOST_AUTO_TEST_CASE(decode_is_lenient_about_what_it_does_not_use) {
  auto r = decode_result(
      R"({"ips":[{"version":"6","address":"10.0.0.5/24","extra":1}],"interfaces":null,)"
      R"("dns":{"domain":null},"somethingNew":{"a":[1]}})");
  BOOST_TEST(r.ips.size() == 1u);
  BOOST_TEST(r.ips[0].address.to_string() == "10.0.0.5/24");  // "version" is not checked
  BOOST_TEST(r.interfaces.empty());
  BOOST_TEST((decode_result("{}") == Result{}));
}

BOOST_DATA_TEST_CASE(decode_errors_are_code_6, data::make(kResultErrors), c) {
  try {
    decode_result(c.json);
    BOOST_ERROR("no error");
  } catch (const Error& e) {
    BOOST_TEST(static_cast<int>(e.code()) == static_cast<int>(Code::kDecode));
    BOOST_TEST(std::string(e.what()) == c.msg);
  }
}

BOOST_AUTO_TEST_CASE(decode_rejects_bad_json) {
  try {
    decode_result("{\"ips\":");
    BOOST_ERROR("no error");
  } catch (const Error& e) {
    BOOST_TEST(static_cast<int>(e.code()) == static_cast<int>(Code::kDecode));
    BOOST_TEST(std::string(e.what()).rfind("decode result: parse error at line 1", 0) == 0u);
  }
}

BOOST_AUTO_TEST_CASE(renders_errors) {
  BOOST_TEST(knit::conf::render_error(
                 "0.4.0", Error(Code::kInvalidConfig, "invalid network config: name: missing")) ==
             R"({"cniVersion":"0.4.0","code":7,"msg":"invalid network config: name: missing"})");
  BOOST_TEST(
      knit::conf::render_error("1.1.0", Error(Code::kAgent, R"(confirm pod "web-0": timed out)", 0,
                                              "waited 2000 ms on /run/knit/agent.sock")) ==
      R"({"cniVersion":"1.1.0","code":105,"msg":"confirm pod \"web-0\": timed out",)"
      R"("details":"waited 2000 ms on /run/knit/agent.sock"})");
  BOOST_TEST(knit::conf::render_error("", Error(Code::kInvalidEnv, "x")) ==
             R"({"cniVersion":"1.1.0","code":4,"msg":"x"})");
  // Bytes from the environment may not be UTF-8; rendering must not throw.
  BOOST_TEST(knit::conf::render_error("1.0.0", Error(Code::kInvalidEnv, "bad \xff name")) ==
             "{\"cniVersion\":\"1.0.0\",\"code\":4,\"msg\":\"bad \xef\xbf\xbd name\"}");
}

BOOST_AUTO_TEST_CASE(renders_version_reply) {
  BOOST_TEST(
      knit::conf::render_version("0.4.0") ==
      R"({"cniVersion":"0.4.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]})");
  BOOST_TEST(
      knit::conf::render_version("") ==
      R"({"cniVersion":"1.1.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]})");
}

struct AskedCase {
  const char* stdin_text;
  const char* want;
};
std::ostream& operator<<(std::ostream& os, const AskedCase& c) {
  return os << c.stdin_text;
}

BOOST_DATA_TEST_CASE(requested_version_is_best_effort,
                     data::make({
                         AskedCase{R"({"cniVersion":"0.4.0","name":"x"})", "0.4.0"},
                         {R"({"cniVersion":"0.2.0"})", "0.2.0"},
                         {R"({"cniVersion":"1.0.0","plugins":[]})", "1.0.0"},
                         {"", "1.1.0"},
                         {"not json", "1.1.0"},
                         {R"({"cniVersion":"0.4.0",)", "1.1.0"},
                         {R"({"cniVersion":4})", "1.1.0"},
                         {R"({"cniVersion":"four"})", "1.1.0"},
                         {R"(["0.4.0"])", "1.1.0"},
                         {R"({"cniVersions":["1.0.0"]})", "1.1.0"},
                         {R"({"name":"x"})", "1.1.0"},
                     }),
                     c) {
  BOOST_TEST(knit::conf::requested_version(c.stdin_text) == c.want);
}

BOOST_AUTO_TEST_SUITE_END()
