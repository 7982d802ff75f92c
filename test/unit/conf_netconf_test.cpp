#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "conf/netconf.hpp"
#include "core/str.hpp"

using knit::Code;
using knit::IpAddr;
using knit::Prefix;
using knit::str;
using knit::conf::AgentMode;
using knit::conf::CniEnv;
using knit::conf::Command;
using knit::conf::IpamRange;
using knit::conf::NetConf;
using knit::conf::PortMapping;
using knit::conf::Protocol;
using knit::conf::RouteConf;
using knit::conf::Version;
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

CniEnv env_for(Command c, std::map<std::string, std::string> args = {}) {
  CniEnv env;
  env.command = c;
  env.container_id = "0f6b2a1c9d";
  env.netns = "/var/run/netns/cni-1234";
  env.ifname = "eth0";
  env.args = std::move(args);
  return env;
}

NetConf decode(const std::string& text, Command c = Command::kAdd,
               std::map<std::string, std::string> args = {}) {
  return knit::conf::decode_netconf(text, env_for(c, std::move(args)));
}

constexpr const char* kIpam = R"("ipam":{"ranges":[[{"subnet":"10.0.0.0/24"}]]})";

/// A 1.1.0 plugin config with name and type, plus `extra` members (no ipam).
std::string bare(std::string_view extra = {}, std::string_view version = "1.1.0") {
  return str(R"({"cniVersion":")", version, R"(","name":"net1","type":"knit")",
             extra.empty() ? "" : ",", extra, "}");
}

/// Like bare(), with one IPv4 range set so that ADD is satisfied.
std::string conf(std::string_view extra = {}, std::string_view version = "1.1.0") {
  return bare(extra.empty() ? std::string(kIpam) : str(kIpam, ',', extra), version);
}

IpAddr ip(const char* s) {
  return *IpAddr::parse(s);
}
Prefix pfx(const char* s) {
  return *Prefix::parse(s);
}

std::vector<std::string> strings(const std::vector<IpAddr>& ips) {
  std::vector<std::string> out;
  for (const auto& a : ips) out.push_back(a.to_string());
  return out;
}

/// "8080->80/tcp" or "5353->53/udp@192.168.1.10".
std::vector<std::string> strings(const std::vector<PortMapping>& pms) {
  std::vector<std::string> out;
  for (const auto& p : pms) {
    const char* proto = p.protocol == Protocol::kTcp   ? "tcp"
                        : p.protocol == Protocol::kUdp ? "udp"
                                                       : "sctp";
    auto s = str(p.host_port, "->", p.container_port, '/', proto);
    if (p.host_ip) s += str('@', p.host_ip->to_string());
    out.push_back(s);
  }
  return out;
}

void expect_error(const std::string& text, Command cmd, Code code, const std::string& msg,
                  std::map<std::string, std::string> args = {}) {
  try {
    decode(text, cmd, std::move(args));
    BOOST_ERROR("no error for " << text);
  } catch (const knit::Error& e) {
    BOOST_TEST(static_cast<int>(e.code()) == static_cast<int>(code));
    BOOST_TEST(std::string(e.what()) == msg);
  }
}

struct ConfError {
  const char* name;
  Command command;
  std::string json;
  Code code;
  std::string msg;
};

std::ostream& operator<<(std::ostream& os, const ConfError& c) {
  return os << c.name;
}

const std::string kSupported = R"(["0.3.0" "0.3.1" "0.4.0" "1.0.0" "1.1.0"])";
const std::string kUseKnit = R"((knit allocates addresses itself: use "knit" or "host-local"))";
const std::string kNameRule =
    " must start with a letter or digit and contain only letters, digits, '_', '.' and '-'";

const ConfError kConfErrors[] = {
    // 6: not decodable
    {"top level is a list", Command::kAdd, "[]", Code::kDecode,
     "decode network config: [] is not an object"},
    {"cniVersion is a number", Command::kAdd, R"({"cniVersion":1,"name":"n","type":"knit"})",
     Code::kDecode, "decode network config: cniVersion: 1 is not a string"},
    {"cniVersion is not X.Y.Z", Command::kAdd, bare({}, "1.0"), Code::kDecode,
     R"(decode network config: cniVersion: "1.0" is not a version (X.Y.Z))"},
    {"cniVersions is not a list", Command::kAdd, conf(R"("cniVersions":"1.1.0")"), Code::kDecode,
     R"(decode network config: cniVersions: "1.1.0" is not a list)"},
    {"cniVersions entry is not a string", Command::kAdd, conf(R"("cniVersions":["1.1.0",1])"),
     Code::kDecode, "decode network config: cniVersions[1]: 1 is not a string"},
    {"cniVersions entry is not X.Y.Z", Command::kAdd, conf(R"("cniVersions":["1.1.0","1.1"])"),
     Code::kDecode, R"(decode network config: cniVersions[1]: "1.1" is not a version (X.Y.Z))"},
    {"prevResult is not an object", Command::kAdd, conf(R"("prevResult":[])"), Code::kDecode,
     "decode network config: prevResult: [] is not an object"},
    {"prevResult address has no length", Command::kDel,
     conf(R"("prevResult":{"ips":[{"address":"10.0.0.5"}]})"), Code::kDecode,
     R"(decode network config: prevResult.ips[0].address: "10.0.0.5" )"
     "is not a CIDR (address/length)"},

    // 1: versions
    {"version older than 0.3.0", Command::kAdd, conf({}, "0.2.0"), Code::kIncompatibleVersion,
     R"(incompatible CNI versions; config is "0.2.0", plugin supports )" + kSupported},
    {"nothing supported in cniVersion and cniVersions", Command::kAdd,
     conf(R"("cniVersions":["0.1.0","1.2.0"])", "2.0.0"), Code::kIncompatibleVersion,
     R"(incompatible CNI versions; config is "2.0.0", plugin supports )" + kSupported},
    {"CHECK at 0.3.1", Command::kCheck, conf({}, "0.3.1"), Code::kIncompatibleVersion,
     "config version does not allow CHECK (config is 0.3.1, CHECK needs 0.4.0 or later)"},
    {"GC at 1.0.0", Command::kGc, conf({}, "1.0.0"), Code::kIncompatibleVersion,
     "config version does not allow GC (config is 1.0.0, GC needs 1.1.0 or later)"},
    {"GC at 0.4.0", Command::kGc, conf({}, "0.4.0"), Code::kIncompatibleVersion,
     "config version does not allow GC (config is 0.4.0, GC needs 1.1.0 or later)"},
    {"STATUS at 1.0.0", Command::kStatus, conf({}, "1.0.0"), Code::kIncompatibleVersion,
     "config version does not allow STATUS (config is 1.0.0, STATUS needs 1.1.0 or later)"},

    // 2: unsupported field value
    {"ipam type dhcp", Command::kAdd, bare(R"("ipam":{"type":"dhcp"})"), Code::kUnsupportedField,
     R"(unsupported field ipam.type: "dhcp" )" + kUseKnit},
    {"ipam type static (DEL too)", Command::kDel,
     bare(R"("ipam":{"type":"static","addresses":[]})"), Code::kUnsupportedField,
     R"(unsupported field ipam.type: "static" )" + kUseKnit},

    // 7: invalid network config
    {"no cniVersion", Command::kAdd, str(R"({"name":"n","type":"knit",)", kIpam, "}"),
     Code::kInvalidConfig, "invalid network config: cniVersion: missing"},
    {"empty cniVersion and cniVersions", Command::kAdd, conf(R"("cniVersions":[])", ""),
     Code::kInvalidConfig, "invalid network config: cniVersion: missing"},
    {"no name", Command::kAdd, str(R"({"cniVersion":"1.1.0","type":"knit",)", kIpam, "}"),
     Code::kInvalidConfig, "invalid network config: name: missing"},
    {"name is a number", Command::kAdd, str(R"({"cniVersion":"1.1.0","name":5,"type":"knit"})"),
     Code::kInvalidConfig, "invalid network config: name: 5 is not a string"},
    {"name with slash", Command::kAdd, str(R"({"cniVersion":"1.1.0","name":"a/b","type":"knit"})"),
     Code::kInvalidConfig, R"(invalid network config: name: "a/b")" + kNameRule},
    {"name starting with dot", Command::kAdd,
     str(R"({"cniVersion":"1.1.0","name":".net","type":"knit"})"), Code::kInvalidConfig,
     R"(invalid network config: name: ".net")" + kNameRule},
    {"no type", Command::kAdd, R"({"cniVersion":"1.1.0","name":"n"})", Code::kInvalidConfig,
     "invalid network config: type: missing"},
    {"foreign type", Command::kAdd, R"({"cniVersion":"1.1.0","name":"n","type":"bridge"})",
     Code::kInvalidConfig, R"(invalid network config: type: "bridge" is not "knit")"},
    {"plugins is not a list", Command::kAdd, R"({"cniVersion":"1.1.0","name":"n","plugins":{}})",
     Code::kInvalidConfig, "invalid network config: plugins: {} is not a list"},
    {"conflist without knit", Command::kAdd,
     R"({"cniVersion":"1.1.0","name":"n","plugins":[{"type":"bridge"},{"type":"portmap"}]})",
     Code::kInvalidConfig, R"(invalid network config: plugins: no plugin of type "knit")"},
    {"conflist plugin is not an object", Command::kAdd,
     R"({"cniVersion":"1.1.0","name":"n","plugins":["knit"]})", Code::kInvalidConfig,
     R"(invalid network config: plugins[0]: "knit" is not an object)"},
    {"mtu below 68", Command::kAdd, conf(R"("mtu":67)"), Code::kInvalidConfig,
     "invalid network config: mtu: 67 is out of range 68..65535"},
    {"mtu above 65535", Command::kAdd, conf(R"("mtu":65536)"), Code::kInvalidConfig,
     "invalid network config: mtu: 65536 is out of range 68..65535"},
    {"mtu fractional", Command::kAdd, conf(R"("mtu":1500.5)"), Code::kInvalidConfig,
     "invalid network config: mtu: 1500.5 is not an integer"},
    {"mtu written as float", Command::kAdd, conf(R"("mtu":1500.0)"), Code::kInvalidConfig,
     "invalid network config: mtu: 1500.0 is not an integer"},
    {"mtu as string", Command::kAdd, conf(R"("mtu":"1500")"), Code::kInvalidConfig,
     R"(invalid network config: mtu: "1500" is not an integer)"},
    {"mtu as bool", Command::kAdd, conf(R"("mtu":true)"), Code::kInvalidConfig,
     "invalid network config: mtu: true is not an integer"},
    {"dataDir not a string", Command::kAdd, conf(R"("dataDir":["/run/knit"])"),
     Code::kInvalidConfig, R"(invalid network config: dataDir: ["/run/knit"] is not a string)"},
    {"agentSocket not a string", Command::kAdd, conf(R"("agentSocket":1)"), Code::kInvalidConfig,
     "invalid network config: agentSocket: 1 is not a string"},
    {"agent mode unknown", Command::kAdd, conf(R"("agent":"sometimes")"), Code::kInvalidConfig,
     R"(invalid network config: agent: "sometimes" is not "off", "best-effort" or "required")"},
    {"agent mode wrong case", Command::kAdd, conf(R"("agent":"Required")"), Code::kInvalidConfig,
     R"(invalid network config: agent: "Required" is not "off", "best-effort" or "required")"},
    {"agentTimeoutMs negative", Command::kAdd, conf(R"("agentTimeoutMs":-1)"), Code::kInvalidConfig,
     "invalid network config: agentTimeoutMs: -1 is out of range 0..4294967295"},
    {"ipam not an object", Command::kAdd, bare(R"("ipam":"knit")"), Code::kInvalidConfig,
     R"(invalid network config: ipam: "knit" is not an object)"},
    {"ipam type not a string", Command::kAdd, bare(R"("ipam":{"type":1})"), Code::kInvalidConfig,
     "invalid network config: ipam.type: 1 is not a string"},
    {"ranges not a list", Command::kAdd, bare(R"("ipam":{"ranges":{}})"), Code::kInvalidConfig,
     "invalid network config: ipam.ranges: {} is not a list"},
    {"range set not a list", Command::kAdd, bare(R"("ipam":{"ranges":[{"subnet":"10.0.0.0/24"}]})"),
     Code::kInvalidConfig,
     R"(invalid network config: ipam.ranges[0]: {"subnet":"10.0.0.0/24"} is not a list)"},
    {"empty range set", Command::kAdd, bare(R"("ipam":{"ranges":[[{"subnet":"10.0.0.0/24"}],[]]})"),
     Code::kInvalidConfig, "invalid network config: ipam.ranges[1]: empty range set"},
    {"range not an object", Command::kAdd, bare(R"("ipam":{"ranges":[["10.0.0.0/24"]]})"),
     Code::kInvalidConfig,
     R"(invalid network config: ipam.ranges[0][0]: "10.0.0.0/24" is not an object)"},
    {"range without subnet", Command::kAdd, bare(R"("ipam":{"ranges":[[{"gateway":"10.0.0.1"}]]})"),
     Code::kInvalidConfig, "invalid network config: ipam.ranges[0][0].subnet: missing"},
    {"subnet without length", Command::kAdd, bare(R"("ipam":{"ranges":[[{"subnet":"10.0.0.0"}]]})"),
     Code::kInvalidConfig,
     R"(invalid network config: ipam.ranges[0][0].subnet: "10.0.0.0" )"
     "is not a CIDR (address/length)"},
    {"subnet length too long", Command::kAdd,
     bare(R"("ipam":{"ranges":[[{"subnet":"10.0.0.0/33"}]]})"), Code::kInvalidConfig,
     R"(invalid network config: ipam.ranges[0][0].subnet: "10.0.0.0/33" )"
     "is not a CIDR (address/length)"},
    {"rangeStart octet out of range", Command::kAdd,
     bare(R"("ipam":{"ranges":[[{"subnet":"10.0.1.0/24"},)"
          R"({"subnet":"10.0.0.0/24","rangeStart":"10.0.0.300"}]]})"),
     Code::kInvalidConfig,
     R"(invalid network config: ipam.ranges[0][1].rangeStart: "10.0.0.300" is not an IP address)"},
    {"rangeEnd with a length", Command::kAdd,
     bare(R"("ipam":{"ranges":[[{"subnet":"fd00::/64","rangeEnd":"fd00::ff/64"}]]})"),
     Code::kInvalidConfig,
     R"(invalid network config: ipam.ranges[0][0].rangeEnd: "fd00::ff/64" is not an IP address)"},
    {"gateway not a string", Command::kAdd,
     bare(R"("ipam":{"ranges":[[{"subnet":"10.0.0.0/24","gateway":1}]]})"), Code::kInvalidConfig,
     "invalid network config: ipam.ranges[0][0].gateway: 1 is not a string"},
    {"legacy subnet malformed", Command::kAdd, bare(R"("ipam":{"subnet":"x"})"),
     Code::kInvalidConfig,
     R"(invalid network config: ipam.subnet: "x" is not a CIDR (address/length))"},
    {"legacy rangeStart malformed", Command::kAdd,
     bare(R"("ipam":{"subnet":"10.0.0.0/24","rangeStart":"nope"})"), Code::kInvalidConfig,
     R"(invalid network config: ipam.rangeStart: "nope" is not an IP address)"},
    {"route without dst", Command::kAdd,
     bare(R"("ipam":{"ranges":[[{"subnet":"10.0.0.0/24"}]],"routes":[{"gw":"10.0.0.1"}]})"),
     Code::kInvalidConfig, "invalid network config: ipam.routes[0].dst: missing"},
    {"route gw malformed", Command::kAdd,
     bare(R"("ipam":{"ranges":[[{"subnet":"10.0.0.0/24"}]],)"
          R"("routes":[{"dst":"0.0.0.0/0"},{"dst":"10.96.0.0/12","gw":"10.0.0"}]})"),
     Code::kInvalidConfig,
     R"(invalid network config: ipam.routes[1].gw: "10.0.0" is not an IP address)"},
    {"ipam dataDir not a string", Command::kAdd,
     bare(R"("ipam":{"ranges":[[{"subnet":"10.0.0.0/24"}]],"dataDir":false})"),
     Code::kInvalidConfig, "invalid network config: ipam.dataDir: false is not a string"},
    {"ADD without ipam", Command::kAdd, bare(), Code::kInvalidConfig,
     "invalid network config: ipam.ranges: at least one range set is required"},
    {"ADD with ipam but no ranges", Command::kAdd, bare(R"("ipam":{"type":"knit","ranges":[]})"),
     Code::kInvalidConfig,
     "invalid network config: ipam.ranges: at least one range set is required"},
    {"CHECK without ranges", Command::kCheck, bare(), Code::kInvalidConfig,
     "invalid network config: ipam.ranges: at least one range set is required"},
    {"STATUS without ranges", Command::kStatus, bare(), Code::kInvalidConfig,
     "invalid network config: ipam.ranges: at least one range set is required"},
    {"GC without ranges", Command::kGc, bare(), Code::kInvalidConfig,
     "invalid network config: ipam.ranges: at least one range set is required"},
    {"runtimeConfig not an object", Command::kAdd, conf(R"("runtimeConfig":[])"),
     Code::kInvalidConfig, "invalid network config: runtimeConfig: [] is not an object"},
    {"portMappings not a list", Command::kAdd, conf(R"("runtimeConfig":{"portMappings":{}})"),
     Code::kInvalidConfig, "invalid network config: runtimeConfig.portMappings: {} is not a list"},
    {"portMapping not an object", Command::kAdd, conf(R"("runtimeConfig":{"portMappings":[8080]})"),
     Code::kInvalidConfig,
     "invalid network config: runtimeConfig.portMappings[0]: 8080 is not an object"},
    {"hostPort above 65535", Command::kAdd,
     conf(R"("runtimeConfig":{"portMappings":[{"hostPort":65536,"containerPort":80}]})"),
     Code::kInvalidConfig,
     "invalid network config: runtimeConfig.portMappings[0].hostPort: 65536 is out of range "
     "1..65535"},
    {"hostPort as string", Command::kAdd,
     conf(R"("runtimeConfig":{"portMappings":[{"hostPort":"8080","containerPort":80}]})"),
     Code::kInvalidConfig,
     R"(invalid network config: runtimeConfig.portMappings[0].hostPort: "8080" is not an integer)"},
    {"containerPort missing", Command::kAdd,
     conf(R"("runtimeConfig":{"portMappings":[{"hostPort":8080}]})"), Code::kInvalidConfig,
     "invalid network config: runtimeConfig.portMappings[0].containerPort: missing"},
    {"containerPort zero", Command::kAdd,
     conf(R"("runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":0}]})"),
     Code::kInvalidConfig,
     "invalid network config: runtimeConfig.portMappings[0].containerPort: 0 is out of range "
     "1..65535"},
    {"Go-cased containerPort out of range", Command::kAdd,
     conf(R"("runtimeConfig":{"PortMappings":[{"HostPort":8080,"ContainerPort":70000}]})"),
     Code::kInvalidConfig,
     "invalid network config: runtimeConfig.portMappings[0].containerPort: 70000 is out of range "
     "1..65535"},
    {"protocol unknown", Command::kAdd,
     conf(R"("runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,)"
          R"("protocol":"icmp"}]})"),
     Code::kInvalidConfig,
     R"(invalid network config: runtimeConfig.portMappings[0].protocol: "icmp" )"
     "is not tcp, udp or sctp"},
    {"hostIP malformed", Command::kAdd,
     conf(R"("runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,)"
          R"("hostIP":"localhost"}]})"),
     Code::kInvalidConfig,
     R"(invalid network config: runtimeConfig.portMappings[0].hostIP: "localhost" )"
     "is not an IP address"},
    {"ips not a list", Command::kAdd, conf(R"("runtimeConfig":{"ips":"10.0.0.5"})"),
     Code::kInvalidConfig,
     R"(invalid network config: runtimeConfig.ips: "10.0.0.5" is not a list)"},
    {"ips entry malformed", Command::kAdd,
     conf(R"("runtimeConfig":{"ips":["10.0.0.5","10.0.0.300"]})"), Code::kInvalidConfig,
     R"(invalid network config: runtimeConfig.ips[1]: "10.0.0.300" is not an IP address)"},
    {"mac malformed", Command::kAdd, conf(R"("runtimeConfig":{"mac":"0a:58:0a:f4:00"})"),
     Code::kInvalidConfig,
     R"(invalid network config: runtimeConfig.mac: "0a:58:0a:f4:00" is not a MAC address)"},
    {"args not an object", Command::kAdd, conf(R"("args":"x")"), Code::kInvalidConfig,
     R"(invalid network config: args: "x" is not an object)"},
    {"args.cni not an object", Command::kAdd, conf(R"("args":{"cni":1})"), Code::kInvalidConfig,
     "invalid network config: args.cni: 1 is not an object"},
    {"args.cni.ips malformed", Command::kAdd, conf(R"("args":{"cni":{"ips":["x"]}})"),
     Code::kInvalidConfig, R"(invalid network config: args.cni.ips[0]: "x" is not an IP address)"},
    {"args.cni.mac malformed", Command::kAdd, conf(R"("args":{"cni":{"mac":"0a-58"}})"),
     Code::kInvalidConfig, R"(invalid network config: args.cni.mac: "0a-58" is not a MAC address)"},
    {"valid-attachments not a list", Command::kGc, conf(R"("cni.dev/valid-attachments":{})"),
     Code::kInvalidConfig, "invalid network config: cni.dev/valid-attachments: {} is not a list"},
    {"attachment without ifname", Command::kGc,
     conf(R"("cni.dev/valid-attachments":[{"containerID":"abc"}])"), Code::kInvalidConfig,
     "invalid network config: cni.dev/valid-attachments[0].ifname: missing"},
    {"legacy attachment without containerID", Command::kGc,
     conf(R"("cni.dev/attachments":[{"ifname":"eth0"}])"), Code::kInvalidConfig,
     "invalid network config: cni.dev/attachments[0].containerID: missing"},
};

}  // namespace

BOOST_AUTO_TEST_SUITE(conf_netconf)

BOOST_DATA_TEST_CASE(rejects_with_the_spec_code_and_names_the_key, data::make(kConfErrors), c) {
  expect_error(c.json, c.command, c.code, c.msg);
}

BOOST_DATA_TEST_CASE(invalid_json_is_code_6,
                     data::make({"", "{", R"({"cniVersion":"1.1.0",})", "cniVersion: 1.1.0",
                                 R"({"cniVersion":"1.1.0"} trailing)"}),
                     text) {
  try {
    decode(text);
    BOOST_ERROR("no error");
  } catch (const knit::Error& e) {
    BOOST_TEST(static_cast<int>(e.code()) == static_cast<int>(Code::kDecode));
    std::string msg = e.what();
    BOOST_TEST(msg.rfind("decode network config: parse error at line 1, column ", 0) == 0, msg);
    BOOST_TEST(msg.find("json.exception") == std::string::npos, msg);
  }
}

BOOST_AUTO_TEST_CASE(decodes_what_containerd_sends) {
  auto nc = decode(fixture("add-containerd.json"));
  BOOST_TEST((nc.cni_version == knit::conf::kV110));
  BOOST_TEST(nc.name == "knit");
  BOOST_TEST(nc.type == "knit");
  BOOST_TEST_REQUIRE(nc.mtu.has_value());
  BOOST_TEST(*nc.mtu == 1450u);
  BOOST_TEST(nc.data_dir == "/run/knit");
  BOOST_TEST(nc.agent_socket == "/run/knit/agent.sock");
  BOOST_TEST((nc.agent_mode == AgentMode::kRequired));
  BOOST_TEST(nc.agent_timeout_ms == 1500u);

  BOOST_TEST(nc.ipam.type == "knit");
  BOOST_TEST(nc.ipam.data_dir == "/run/knit/ipam");
  BOOST_TEST_REQUIRE(nc.ipam.ranges.size() == 2u);
  BOOST_TEST(
      (nc.ipam.ranges[0] == knit::conf::RangeSet{IpamRange{pfx("10.244.1.0/24"), ip("10.244.1.10"),
                                                           ip("10.244.1.200"), ip("10.244.1.1")}}));
  BOOST_TEST((nc.ipam.ranges[1] ==
              knit::conf::RangeSet{IpamRange{pfx("fd00:10:244:1::/64"), {}, {}, {}}}));
  std::vector<RouteConf> routes{
      {pfx("0.0.0.0/0"), {}}, {pfx("::/0"), {}}, {pfx("10.96.0.0/12"), ip("10.244.1.254")}};
  BOOST_TEST((nc.ipam.routes == routes));

  // Go field names; the HostPort 0 entry is dropped.
  BOOST_TEST(strings(nc.port_mappings) ==
                 (std::vector<std::string>{"8080->80/tcp", "5353->53/udp@192.168.1.10"}),
             boost::test_tools::per_element());
  BOOST_TEST(nc.requested_ips.empty());
  BOOST_TEST(!nc.requested_mac.has_value());
  BOOST_TEST(!nc.prev_result.has_value());
  BOOST_TEST(nc.valid_attachments.empty());
}

BOOST_AUTO_TEST_CASE(decodes_what_podman_sends) {
  auto nc = decode(fixture("add-podman.json"));
  BOOST_TEST((nc.cni_version == knit::conf::kV040));
  BOOST_TEST(nc.name == "podman-knit");
  BOOST_TEST(nc.ipam.type == "host-local");
  BOOST_TEST((nc.ipam.ranges == std::vector<knit::conf::RangeSet>{
                                    {IpamRange{pfx("10.88.0.0/16"), {}, {}, ip("10.88.0.1")}}}));
  BOOST_TEST(strings(nc.port_mappings) ==
                 (std::vector<std::string>{"8080->80/tcp", "8443->443/sctp@127.0.0.1"}),
             boost::test_tools::per_element());
  BOOST_TEST(strings(nc.requested_ips) == std::vector<std::string>{"10.88.0.42"},
             boost::test_tools::per_element());
  BOOST_TEST_REQUIRE(nc.requested_mac.has_value());
  BOOST_TEST(nc.requested_mac->to_string() == "92:d0:c6:0a:29:33");
}

BOOST_AUTO_TEST_CASE(defaults_when_keys_are_absent_or_null) {
  for (const auto& text :
       {conf(), conf(R"("mtu":null,"dataDir":null,"agent":null,"runtimeConfig":null,)"
                     R"("args":null,"prevResult":null,"unknownKey":{"x":[1,2]})")}) {
    auto nc = decode(text);
    BOOST_TEST(!nc.mtu.has_value());
    BOOST_TEST(nc.data_dir == "");
    BOOST_TEST(nc.agent_socket == "");
    BOOST_TEST((nc.agent_mode == AgentMode::kRequired));
    BOOST_TEST(nc.agent_timeout_ms == 2000u);
    BOOST_TEST(nc.ipam.type == "knit");
    BOOST_TEST(nc.ipam.routes.empty());
    BOOST_TEST(nc.port_mappings.empty());
    BOOST_TEST(!nc.prev_result.has_value());
  }
}

BOOST_AUTO_TEST_CASE(agent_modes) {
  BOOST_TEST((decode(conf(R"("agent":"off")")).agent_mode == AgentMode::kOff));
  BOOST_TEST((decode(conf(R"("agent":"best-effort")")).agent_mode == AgentMode::kBestEffort));
  BOOST_TEST((decode(conf(R"("agent":"required")")).agent_mode == AgentMode::kRequired));
  BOOST_TEST(decode(conf(R"("agentTimeoutMs":0)")).agent_timeout_ms == 0u);
}

BOOST_AUTO_TEST_CASE(mtu_bounds_are_inclusive) {
  BOOST_TEST(*decode(conf(R"("mtu":68)")).mtu == 68u);
  BOOST_TEST(*decode(conf(R"("mtu":65535)")).mtu == 65535u);
}

struct VersionCase {
  const char* name;
  std::string members;  // cniVersion / cniVersions members
  const char* want;
};
std::ostream& operator<<(std::ostream& os, const VersionCase& c) {
  return os << c.name;
}

BOOST_DATA_TEST_CASE(
    picks_the_highest_supported_version,
    data::make({
        VersionCase{"cniVersion only", R"("cniVersion":"0.3.1")", "0.3.1"},
        {"cniVersions raises it", R"("cniVersion":"0.4.0","cniVersions":["1.0.0"])", "1.0.0"},
        {"unknown newer versions are skipped",
         R"("cniVersion":"0.4.0","cniVersions":["1.0.0","9.9.9","1.2.0"])", "1.0.0"},
        {"unsupported cniVersion, supported cniVersions",
         R"("cniVersion":"2.0.0","cniVersions":["0.4.0"])", "0.4.0"},
        {"cniVersions only", R"("cniVersions":["1.1.0","0.3.0"])", "1.1.0"},
        {"cniVersion higher than cniVersions", R"("cniVersion":"1.1.0","cniVersions":["0.3.0"])",
         "1.1.0"},
        {"too old cniVersion, 0.3.1 in cniVersions",
         R"("cniVersion":"0.2.0","cniVersions":["0.3.1"])", "0.3.1"},
        {"empty cniVersion, cniVersions", R"("cniVersion":"","cniVersions":["1.0.0"])", "1.0.0"},
    }),
    c) {
  auto text = str("{", c.members, R"(,"name":"n","type":"knit",)", kIpam, "}");
  BOOST_TEST(decode(text).cni_version.to_string() == c.want);
}

BOOST_AUTO_TEST_CASE(verbs_at_their_first_version) {
  BOOST_TEST((decode(conf({}, "0.4.0"), Command::kCheck).cni_version == knit::conf::kV040));
  BOOST_TEST((decode(conf({}, "1.1.0"), Command::kGc).cni_version == knit::conf::kV110));
  BOOST_TEST((decode(conf({}, "1.1.0"), Command::kStatus).cni_version == knit::conf::kV110));
  // GC allowed because cniVersions offers 1.1.0.
  BOOST_TEST((decode(conf(R"("cniVersions":["1.1.0"])", "0.4.0"), Command::kGc).cni_version ==
              knit::conf::kV110));
  BOOST_TEST((decode(conf({}, "0.3.0"), Command::kAdd).cni_version == knit::conf::kV030));
}

BOOST_AUTO_TEST_CASE(del_needs_no_ranges) {
  auto nc = decode(bare(), Command::kDel);
  BOOST_TEST(nc.ipam.ranges.empty());
  BOOST_TEST(nc.ipam.type == "knit");
  auto with_ipam = decode(bare(R"("ipam":{"type":"host-local"})"), Command::kDel);
  BOOST_TEST(with_ipam.ipam.type == "host-local");
}

BOOST_AUTO_TEST_CASE(version_reads_only_the_version) {
  auto nc = decode(R"({"cniVersion":"0.4.0"})", Command::kVersion);
  BOOST_TEST((nc.cni_version == knit::conf::kV040));
  BOOST_TEST(nc.name == "");
}

BOOST_AUTO_TEST_CASE(takes_the_knit_plugin_of_a_conflist) {
  auto nc = decode(fixture("conflist.json"));
  BOOST_TEST((nc.cni_version == knit::conf::kV110));
  BOOST_TEST(nc.name == "kindnet");
  BOOST_TEST(nc.type == "knit");
  BOOST_TEST(*nc.mtu == 1400u);
  BOOST_TEST((nc.ipam.ranges ==
              std::vector<knit::conf::RangeSet>{{IpamRange{pfx("10.244.0.0/24"), {}, {}, {}}}}));

  // Not first in the list; plugin-level cniVersion and name are the list's business.
  auto second =
      decode(R"({"cniVersion":"0.4.0","name":"outer","plugins":[{"type":"bridge","mtu":9000},)"
             R"({"type":"knit","cniVersion":"1.1.0","name":"inner","mtu":1300,)"
             R"("ipam":{"ranges":[[{"subnet":"10.1.0.0/16"}]]}}]})");
  BOOST_TEST((second.cni_version == knit::conf::kV040));
  BOOST_TEST(second.name == "outer");
  BOOST_TEST(*second.mtu == 1300u);
}

BOOST_AUTO_TEST_CASE(legacy_ipam_form_is_the_first_range_set) {
  auto nc = decode(fixture("legacy-ipam.json"));
  BOOST_TEST((nc.cni_version == knit::conf::kV031));
  BOOST_TEST(nc.ipam.type == "host-local");
  BOOST_TEST(nc.ipam.data_dir == "/run/cni-ipam-state");
  std::vector<knit::conf::RangeSet> want{
      {IpamRange{pfx("10.22.0.0/16"), ip("10.22.0.10"), ip("10.22.0.99"), ip("10.22.0.1")}},
      {IpamRange{pfx("fd00:22::/64"), {}, {}, {}}}};
  BOOST_TEST((nc.ipam.ranges == want));
}

BOOST_AUTO_TEST_CASE(ranges_are_parsed_not_validated) {
  // Host bits, a start outside the subnet, a gateway of the other family: ipam's business.
  auto nc = decode(bare(R"("ipam":{"ranges":[[{"subnet":"10.0.0.7/24",)"
                        R"("rangeStart":"10.9.9.9","gateway":"fd00::1"}]]})"));
  BOOST_TEST(
      (nc.ipam.ranges[0][0] == IpamRange{pfx("10.0.0.7/24"), ip("10.9.9.9"), {}, ip("fd00::1")}));
}

struct PortCase {
  const char* name;
  std::string runtime_config;
  std::vector<std::string> want;
};
std::ostream& operator<<(std::ostream& os, const PortCase& c) {
  return os << c.name;
}

const PortCase kPortCases[] = {
    {"containerd: Go field names",
     R"({"portMappings":[{"HostPort":8080,"ContainerPort":80,"Protocol":"tcp","HostIP":""}]})",
     {"8080->80/tcp"}},
    {"capability key in Go case too",
     R"({"PortMappings":[{"HostPort":8080,"ContainerPort":80,)"
     R"("Protocol":"udp","HostIP":"10.1.2.3"}]})",
     {"8080->80/udp@10.1.2.3"}},
    {"podman: JSON tags",
     R"({"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"sctp","hostIP":"::1"}]})",
     {"8080->80/sctp@::1"}},
    {"any case at all",
     R"({"PORTMAPPINGS":[{"hostport":1,"CONTAINERPORT":65535,"pRoToCoL":"Udp","hostip":""}]})",
     {"1->65535/udp"}},
    {"protocol default and case",
     R"({"portMappings":[{"hostPort":81,"containerPort":80},)"
     R"({"hostPort":82,"containerPort":80,"protocol":""},)"
     R"({"hostPort":83,"containerPort":80,"protocol":"UDP"},)"
     R"({"hostPort":84,"containerPort":80,"protocol":"SCTP"},)"
     R"({"hostPort":85,"containerPort":80,"protocol":"Tcp"}]})",
     {"81->80/tcp", "82->80/tcp", "83->80/udp", "84->80/sctp", "85->80/tcp"}},
    {"no host port: dropped without further checks",
     R"({"portMappings":[{"hostPort":0,"containerPort":0},{"hostPort":-1,"protocol":"icmp"},)"
     R"({"containerPort":80},{"hostPort":null,"containerPort":80},)"
     R"({"hostPort":8080,"containerPort":80}]})",
     {"8080->80/tcp"}},
    {"unspecified host IPs are kept",
     R"({"portMappings":[{"hostPort":80,"containerPort":80,"hostIP":"0.0.0.0"},)"
     R"({"hostPort":80,"containerPort":80,"hostIP":"::"}]})",
     {"80->80/tcp@0.0.0.0", "80->80/tcp@::"}},
    {"exact key wins over a case variant",
     R"({"portMappings":[{"HostPort":9090,"hostPort":8080,"containerPort":80}]})",
     {"8080->80/tcp"}},
    {"empty list", R"({"portMappings":[]})", {}},
};

BOOST_DATA_TEST_CASE(port_mappings_in_every_casing, data::make(kPortCases), c) {
  auto nc = decode(conf(str(R"("runtimeConfig":)", c.runtime_config)));
  BOOST_TEST(strings(nc.port_mappings) == c.want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(capabilities_outside_runtime_config_are_ignored) {
  auto nc = decode(conf(
      R"("portMappings":[{"hostPort":8080,"containerPort":80}],"ips":["10.0.0.9"],)"
      R"("mac":"0a:58:0a:f4:00:01","capabilities":{"portMappings":true,"ips":true,"mac":true})"));
  BOOST_TEST(nc.port_mappings.empty());
  BOOST_TEST(nc.requested_ips.empty());
  BOOST_TEST(!nc.requested_mac.has_value());
}

struct IpsCase {
  const char* name;
  const char* runtime_config;  // the runtimeConfig object, or nullptr
  const char* args_cni;        // the args.cni object, or nullptr
  const char* cni_args_ip;     // CNI_ARGS IP=, or nullptr
  std::vector<std::string> want;
};
std::ostream& operator<<(std::ostream& os, const IpsCase& c) {
  return os << c.name;
}

const IpsCase kIpsCases[] = {
    {"runtimeConfig wins over both",
     R"({"ips":["10.0.0.1"]})",
     R"({"ips":["10.0.0.2"]})",
     "10.0.0.3",
     {"10.0.0.1"}},
    {"args.cni wins over CNI_ARGS",
     nullptr,
     R"({"ips":["10.0.0.2","fd00::2"]})",
     "10.0.0.3",
     {"10.0.0.2", "fd00::2"}},
    {"CNI_ARGS when alone", nullptr, nullptr, "10.0.0.3, fd00::3/64,", {"10.0.0.3", "fd00::3"}},
    {"no source", nullptr, nullptr, nullptr, {}},
    {"empty runtimeConfig list falls through",
     R"({"ips":[]})",
     R"({"ips":["10.0.0.2"]})",
     nullptr,
     {"10.0.0.2"}},
    {"prefix lengths are dropped",
     R"({"ips":["10.0.0.7/24","fd00::7/64"]})",
     nullptr,
     nullptr,
     {"10.0.0.7", "fd00::7"}},
    {"Go-cased IPs key", R"({"IPs":["10.0.0.8"]})", nullptr, nullptr, {"10.0.0.8"}},
    {"an ignored CNI_ARGS copy is not parsed",
     nullptr,
     R"({"ips":["10.0.0.2"]})",
     "junk",
     {"10.0.0.2"}},
    {"other args.cni keys do not count",
     nullptr,
     R"({"mac":"0a:58:0a:f4:00:01"})",
     "10.0.0.3",
     {"10.0.0.3"}},
};

BOOST_DATA_TEST_CASE(requested_ips_precedence, data::make(kIpsCases), c) {
  std::string extra;
  if (c.runtime_config) extra += str(R"("runtimeConfig":)", c.runtime_config);
  if (c.args_cni) extra += str(extra.empty() ? "" : ",", R"("args":{"cni":)", c.args_cni, "}");
  std::map<std::string, std::string> args{{"IgnoreUnknown", "1"}};
  if (c.cni_args_ip) args["IP"] = c.cni_args_ip;
  auto nc = decode(conf(extra), Command::kAdd, args);
  BOOST_TEST(strings(nc.requested_ips) == c.want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(requested_mac_precedence) {
  std::map<std::string, std::string> env_mac{{"MAC", "0a:58:00:00:00:03"}};
  auto mac_of = [&](const std::string& extra) {
    auto m = decode(conf(extra), Command::kAdd, env_mac).requested_mac;
    return m ? m->to_string() : std::string("none");
  };
  BOOST_TEST(mac_of(R"("runtimeConfig":{"mac":"0A:58:00:00:00:01"},)"
                    R"("args":{"cni":{"mac":"0a:58:00:00:00:02"}})") == "0a:58:00:00:00:01");
  BOOST_TEST(mac_of(R"("runtimeConfig":{"Mac":"0a:58:00:00:00:01"})") == "0a:58:00:00:00:01");
  BOOST_TEST(mac_of(R"("runtimeConfig":{"mac":""},"args":{"cni":{"mac":"0a:58:00:00:00:02"}})") ==
             "0a:58:00:00:00:02");
  BOOST_TEST(mac_of("") == "0a:58:00:00:00:03");
  BOOST_TEST(!decode(conf()).requested_mac.has_value());
  BOOST_TEST(!decode(conf(), Command::kAdd, {{"MAC", ""}}).requested_mac.has_value());
}

BOOST_AUTO_TEST_CASE(malformed_cni_args_is_code_4_when_used) {
  expect_error(
      conf(), Command::kAdd, Code::kInvalidEnv,
      R"(invalid env variable CNI_ARGS: "IP=10.0.0.5,bogus" has "bogus", not an IP address)",
      {{"IP", "10.0.0.5,bogus"}});
  expect_error(conf(), Command::kAdd, Code::kInvalidEnv,
               R"(invalid env variable CNI_ARGS: "MAC=zz" is not a MAC address)", {{"MAC", "zz"}});
  // Unused: args.cni carries the key.
  BOOST_TEST(
      decode(conf(R"("args":{"cni":{"mac":"0a:58:00:00:00:02"}})"), Command::kAdd, {{"MAC", "zz"}})
          .requested_mac->to_string() == "0a:58:00:00:00:02");
}

BOOST_AUTO_TEST_CASE(gc_reads_valid_attachments) {
  auto nc = decode(fixture("gc-both-keys.json"), Command::kGc);
  std::vector<NetConf::Attachment> want{{"0f6b2a1c9d", "eth0"}, {"7c1e55aa02", "net1"}};
  BOOST_TEST((nc.valid_attachments == want));
}

BOOST_AUTO_TEST_CASE(gc_reads_the_legacy_misspelling) {
  auto nc = decode(fixture("gc-legacy-key.json"), Command::kGc);
  std::vector<NetConf::Attachment> want{{"0f6b2a1c9d", "eth0"}};
  BOOST_TEST((nc.valid_attachments == want));
}

BOOST_AUTO_TEST_CASE(gc_prefers_the_spelled_out_key) {
  auto nc = decode(conf(R"("cni.dev/valid-attachments":[{"containerID":"a1","ifname":"eth0"}],)"
                        R"("cni.dev/attachments":[{"containerID":"b2","ifname":"eth1"}])"),
                   Command::kGc);
  std::vector<NetConf::Attachment> want{{"a1", "eth0"}};
  BOOST_TEST((nc.valid_attachments == want));
  // An empty list is a real answer: nothing is valid any more.
  auto none = decode(conf(R"("cni.dev/valid-attachments":[])"), Command::kGc);
  BOOST_TEST(none.valid_attachments.empty());
}

BOOST_AUTO_TEST_CASE(prev_result_0_4_0_on_del) {
  auto nc = decode(fixture("del-prev-result-0.4.0.json"), Command::kDel);
  BOOST_TEST((nc.cni_version == knit::conf::kV040));
  BOOST_TEST_REQUIRE(nc.prev_result.has_value());
  BOOST_TEST(nc.prev_result->ips.size() == 2u);
  BOOST_TEST((*nc.prev_result == knit::conf::decode_result(fixture("result-0.4.0.json"))));
}

BOOST_AUTO_TEST_CASE(prev_result_1_1_0_on_check) {
  auto nc = decode(fixture("check-prev-result-1.1.0.json"), Command::kCheck);
  BOOST_TEST_REQUIRE(nc.prev_result.has_value());
  BOOST_TEST(nc.prev_result->routes.size() == 2u);
  BOOST_TEST((*nc.prev_result == knit::conf::decode_result(fixture("result-1.1.0.json"))));
  BOOST_TEST(knit::conf::render_result(*nc.prev_result, nc.cni_version) ==
             knit::conf::render_result(knit::conf::decode_result(fixture("result-1.1.0.json")),
                                       knit::conf::kV110));
}

BOOST_AUTO_TEST_CASE(the_shipped_example_conflist_decodes) {
  // install/examples/10-knit.conflist is what the README tells people to start from.
  auto path = str(KNIT_TEST_DATA, "/../../install/examples/10-knit.conflist");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  BOOST_TEST_REQUIRE(f != nullptr, "cannot open " << path);
  std::string text;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
  std::fclose(f);
  NetConf nc = decode(text);
  BOOST_TEST(nc.name == "knit");
  BOOST_TEST(nc.cni_version.to_string() == "1.1.0");
  BOOST_TEST(nc.ipam.ranges.size() == 2u);
  BOOST_TEST(nc.mtu.value_or(0) == 1450u);
}

BOOST_AUTO_TEST_SUITE_END()
