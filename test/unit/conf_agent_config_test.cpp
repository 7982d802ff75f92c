#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "conf/agent_config.hpp"
#include "core/error.hpp"
#include "core/str.hpp"

using knit::Code;
using knit::Error;
using knit::Prefix;
using knit::str;
using namespace knit::conf;
using namespace std::chrono_literals;
namespace data = boost::unit_test::data;

namespace {

std::string read(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  BOOST_TEST_REQUIRE(f != nullptr, "cannot open " << path);
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
  std::fclose(f);
  return out;
}

std::string source_dir() {
  std::string d = KNIT_TEST_DATA;
  return d.substr(0, d.size() - std::string("/test/data").size());
}

AgentConfig parse(std::string_view text) {
  AgentConfig c;
  apply_config_text(c, text, "knit.toml");
  return c;
}

/// Fake environment.
struct Env {
  std::map<std::string, std::string> vars;
  Getenv fn() const {
    return [this](const char* k) -> const char* {
      auto it = vars.find(k);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  }
};

FlagsAction flags(AgentConfig& c, std::vector<const char*> argv, const Env& env = {}) {
  return apply_flags(c, static_cast<int>(argv.size()), argv.data(), env.fn());
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

struct BadFile {
  const char* name;
  std::string toml;
  std::string msg;
};
std::ostream& operator<<(std::ostream& os, const BadFile& c) { return os << c.name; }

const BadFile kBadFiles[] = {
    {"unknown top-level key", "node_name = \"a\"\nrevokation = false",
     "knit.toml:2: unknown key \"revokation\" (known at the top level: node_name, kubeconfig, "
     "manifests_dir, socket, data_dir, log_level, resync_interval, [cni], [network], [policy], "
     "[metrics])"},
    {"unknown key in a section", "[metrics]\nadress = \"127.0.0.1:1\"",
     "knit.toml:2: unknown key \"metrics.adress\" (known in [metrics]: address)"},
    {"unknown section", "[cnii]\nmtu = 1", "knit.toml:1: unknown key \"cnii\" (known at the top "
     "level: node_name, kubeconfig, manifests_dir, socket, data_dir, log_level, resync_interval, "
     "[cni], [network], [policy], [metrics])"},
    {"nested table", "[cni.extra]\nx = 1",
     "knit.toml:1: unknown key \"cni.extra\" (known in [cni]: conf_dir, bin_dir, "
     "containerd_config, conflist_name, mtu, agent_mode)"},
    {"section given a value", "network = true", "knit.toml:1: network: expected a table ([network]), got boolean"},
    {"wrong type", "[cni]\nmtu = \"1400\"", "knit.toml:2: cni.mtu: expected an integer, got string"},
    {"mtu out of range", "cni.mtu = 70000", "knit.toml:1: cni.mtu: 70000 is out of range (68 to 65535)"},
    {"bad level", "log_level = \"verbose\"",
     "knit.toml:1: log_level: \"verbose\" is not one of error, warn, info, debug"},
    {"bad duration", "resync_interval = \"5 minutes\"",
     "knit.toml:1: resync_interval: \"5 minutes\" is not a duration (like \"5m\", \"90s\", \"1h\", \"0\")"},
    {"bad agent mode", "[cni]\n\nagent_mode = \"maybe\"",
     "knit.toml:3: cni.agent_mode: \"maybe\" is not one of off, best-effort, required"},
    {"conflist without extension", "[cni]\nconflist_name = \"10-knit.conf\"",
     "knit.toml:2: cni.conflist_name: \"10-knit.conf\" does not end in .conflist (runtimes read it by "
     "that extension)"},
    {"conflist as a path", "cni.conflist_name = \"/etc/cni/net.d/10-knit.conflist\"",
     "knit.toml:1: cni.conflist_name: \"/etc/cni/net.d/10-knit.conflist\" is a path, not a file name"},
    {"empty socket", "socket = \"\"", "knit.toml:1: socket: must not be empty"},
    {"socket too long", str("socket = \"/", std::string(120, 's'), "\""),
     str("knit.toml:1: socket: \"/", std::string(120, 's'),
         "\" is longer than a unix socket path may be (107 bytes)")},
    {"CIDR list not a list", "[network]\nno_masquerade_cidrs = \"10.96.0.0/16\"",
     "knit.toml:2: network.no_masquerade_cidrs: expected an array of CIDR strings, got string"},
    {"CIDR with host bits", "[network]\nno_masquerade_cidrs = [\"10.96.0.0/12\", \"10.96.0.1/16\"]",
     "knit.toml:2: network.no_masquerade_cidrs[1]: \"10.96.0.1/16\" has host bits set (did you mean "
     "10.96.0.0/16?)"},
    {"CIDR without length", "network.no_masquerade_cidrs = [\"10.96.0.1\"]",
     "knit.toml:1: network.no_masquerade_cidrs[0]: \"10.96.0.1\" is not a CIDR"},
    {"host name as metrics address", "[metrics]\naddress = \"localhost:9740\"",
     "knit.toml:2: metrics.address: \"localhost:9740\" is not IP:port or [IPv6]:port (an IP address, "
     "not a host name)"},
    {"boolean as string", "[policy]\nrevocation = \"false\"",
     "knit.toml:2: policy.revocation: expected true or false, got string"},
    {"syntax error", "[cni]\nmtu = 1400 1500", "knit.toml:2: unexpected '1' after a value (one key = value per line)"},
    {"duplicate key", "[cni]\nmtu = 1400\nmtu = 1500", "knit.toml:3: duplicate key mtu (first on line 2)"},
};

struct AddressCase {
  const char* text;
  bool ok;
  const char* ip;
  uint16_t port;
};
std::ostream& operator<<(std::ostream& os, const AddressCase& c) { return os << c.text; }

const AddressCase kAddresses[] = {
    {"127.0.0.1:9740", true, "127.0.0.1", 9740},
    {"0.0.0.0:0", true, "0.0.0.0", 0},
    {"[::1]:9740", true, "::1", 9740},
    {"[fd00::5]:80", true, "fd00::5", 80},
    {"::1:9740", false, "", 0},
    {"[127.0.0.1]:80", false, "", 0},
    {"localhost:9740", false, "", 0},
    {"127.0.0.1", false, "", 0},
    {"127.0.0.1:65536", false, "", 0},
    {"127.0.0.1:", false, "", 0},
    {"[::1]", false, "", 0},
    {"", false, "", 0},
};

struct DurationCase {
  const char* text;
  int64_t ms;  ///< -1: invalid
};
std::ostream& operator<<(std::ostream& os, const DurationCase& c) { return os << c.text; }

const DurationCase kDurations[] = {
    {"0", 0},       {"250ms", 250},    {"90s", 90000}, {"5m", 300000}, {"1h", 3600000},
    {"1m30s", 90000}, {"1h0m5s", 3600000 + 5000}, {"", -1}, {"5", -1}, {"5 m", -1}, {"m", -1},
    {"1.5h", -1},   {"-1s", -1},       {"5d", -1},
};

}  // namespace

BOOST_AUTO_TEST_SUITE(conf_agent_config)

BOOST_AUTO_TEST_CASE(defaults_are_the_documented_ones) {
  AgentConfig c;
  BOOST_TEST(c.socket_path == "/run/knit/agent.sock");
  BOOST_TEST(c.data_dir == "/run/knit");
  BOOST_TEST(c.conflist_name == "10-knit.conflist");
  BOOST_TEST(c.metrics_address == "127.0.0.1:9740");
  BOOST_TEST(c.resync_interval.count() == 300000);
  BOOST_TEST((c.agent_mode == AgentMode::kRequired));
  BOOST_TEST(c.ipv4);
  BOOST_TEST(c.ipv6);
  BOOST_TEST(c.masquerade);
  BOOST_TEST(c.revocation);
  BOOST_TEST(c.cni_conf_dir.empty());
  BOOST_TEST(c.mtu == 0u);
}

// install/knit.toml writes every key with its default: the example and the code agree.
BOOST_AUTO_TEST_CASE(example_file_sets_every_key_to_its_default) {
  std::string path = source_dir() + "/install/knit.toml";
  AgentConfig c = load_agent_config(path);
  BOOST_TEST((c == AgentConfig{}));
  std::string text = read(path);
  std::string usage = agent_usage();
  // Every key of `knit agent --help` appears in the example, in its section.
  for (auto line : knit::split(usage, '\n')) {
    auto eq = line.find(" = ");
    if (eq == std::string_view::npos) continue;
    auto key = line.substr(0, eq);
    key = key.substr(key.rfind(' ') + 1);
    auto dot = key.find('.');
    std::string want = dot == std::string_view::npos
                           ? str(key, " = ")
                           : str(key.substr(dot + 1), " = ");
    BOOST_TEST(text.find(str('\n', want)) != std::string::npos, "example lacks " << key);
  }
}

// README "Configuration (agent)" documents every key.
BOOST_AUTO_TEST_CASE(readme_documents_every_key) {
  std::string readme = read(source_dir() + "/README.md");
  auto start = readme.find("## Configuration (agent)");
  BOOST_TEST_REQUIRE(start != std::string::npos);
  std::string section = readme.substr(start, readme.find("\n## ", start + 1) - start);
  // split() returns views: the text must outlive the loop (a temporary in the range
  // initialiser is destroyed before the first iteration).
  std::string usage = agent_usage();
  for (auto line : knit::split(usage, '\n')) {
    auto eq = line.find(" = ");
    if (eq == std::string_view::npos) continue;
    auto head = line.substr(0, eq);
    auto key = head.substr(head.rfind(' ') + 1);
    auto flag = knit::trim(head).substr(0, knit::trim(head).find(' '));
    BOOST_TEST(section.find(str('`', key, '`')) != std::string::npos, "README lacks key " << key);
    BOOST_TEST(section.find(str('`', flag)) != std::string::npos, "README lacks flag " << flag);
  }
}

BOOST_AUTO_TEST_CASE(reads_every_key) {
  AgentConfig c = parse(R"(
node_name = "kind-worker"
kubeconfig = "/etc/kubernetes/kubelet.conf"
manifests_dir = "/srv/manifests"
socket = "/var/run/knit.sock"
data_dir = "/var/lib/knit"
log_level = "debug"
resync_interval = "90s"

[cni]
conf_dir = "/etc/cni/custom.d"
bin_dir = "/usr/libexec/cni"
containerd_config = "/etc/containerd/other.toml"
conflist_name = "05-knit.conflist"
mtu = 1450
agent_mode = "best-effort"

[network]
ipv4 = true
ipv6 = false
masquerade = false
no_masquerade_cidrs = ["10.96.0.0/16", "172.18.0.0/16", "fd00:10:96::/112"]

[policy]
revocation = false

[metrics]
address = "[::1]:9999"
)");
  BOOST_TEST(c.node_name == "kind-worker");
  BOOST_TEST(c.kubeconfig == "/etc/kubernetes/kubelet.conf");
  BOOST_TEST(c.manifests_dir == "/srv/manifests");
  BOOST_TEST(c.socket_path == "/var/run/knit.sock");
  BOOST_TEST(c.data_dir == "/var/lib/knit");
  BOOST_TEST((c.log_level == knit::log::Level::kDebug));
  BOOST_TEST(c.resync_interval.count() == 90000);
  BOOST_TEST(c.cni_conf_dir == "/etc/cni/custom.d");
  BOOST_TEST(c.cni_bin_dir == "/usr/libexec/cni");
  BOOST_TEST(c.containerd_config == "/etc/containerd/other.toml");
  BOOST_TEST(c.conflist_name == "05-knit.conflist");
  BOOST_TEST(c.mtu == 1450u);
  BOOST_TEST((c.agent_mode == AgentMode::kBestEffort));
  BOOST_TEST(c.ipv4);
  BOOST_TEST(!c.ipv6);
  BOOST_TEST(!c.masquerade);
  BOOST_TEST_REQUIRE(c.no_masquerade_cidrs.size() == 3u);
  BOOST_TEST(c.no_masquerade_cidrs[2].to_string() == "fd00:10:96::/112");
  BOOST_TEST(!c.revocation);
  BOOST_TEST(c.metrics_address == "[::1]:9999");
  // Dotted keys at the top level mean the same as sections.
  AgentConfig d = parse("cni.mtu = 1450\nmetrics.address = \"\"");
  BOOST_TEST(d.mtu == 1450u);
  BOOST_TEST(d.metrics_address.empty());
}

BOOST_DATA_TEST_CASE(rejects_with_file_line_and_key, data::make(kBadFiles), c) {
  BOOST_TEST(error_of([&] { parse(c.toml); }) == c.msg);
}

BOOST_AUTO_TEST_CASE(missing_file_is_an_io_error) {
  try {
    load_agent_config("/nonexistent/knit.toml");
    BOOST_ERROR("no error");
  } catch (const Error& e) {
    BOOST_TEST((e.code() == Code::kIo));
    BOOST_TEST(std::string(e.what()) == "read agent config /nonexistent/knit.toml: No such file or directory");
  }
}

BOOST_AUTO_TEST_CASE(flags_override_environment_override_file) {
  char tmpl[] = "/tmp/knit-agent-config-test.XXXXXX";
  int fd = mkstemp(tmpl);
  BOOST_TEST_REQUIRE(fd >= 0);
  std::string file = tmpl;
  std::string text = "node_name = \"from-file\"\nkubeconfig = \"/file/kubeconfig\"\n"
                     "log_level = \"warn\"\n[cni]\nmtu = 1400\n[metrics]\naddress = \"0.0.0.0:1\"\n";
  BOOST_TEST_REQUIRE(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  ::close(fd);

  Env env{{{"NODE_NAME", "from-env"}, {"KUBECONFIG", ""}, {"KNIT_LOG", "debug"}}};
  AgentConfig c;
  // --config comes last on the command line and still does not override the flags.
  BOOST_TEST((flags(c, {"--node-name", "from-flag", "--mtu=1300", "--metrics-address", "",
                        "--no-masquerade-cidrs", "10.96.0.0/16, 172.18.0.0/16", "--ipv6=false",
                        "--config", file.c_str()},
                    env) == FlagsAction::kRun));
  ::unlink(file.c_str());
  BOOST_TEST(c.node_name == "from-flag");         // flag over env over file
  BOOST_TEST(c.kubeconfig == "/file/kubeconfig");  // empty env does not count
  BOOST_TEST((c.log_level == knit::log::Level::kDebug));  // env over file
  BOOST_TEST(c.mtu == 1300u);
  BOOST_TEST(c.metrics_address.empty());
  BOOST_TEST(c.no_masquerade_cidrs.size() == 2u);
  BOOST_TEST(!c.ipv6);

  AgentConfig d;
  flags(d, {}, env);
  BOOST_TEST(d.node_name == "from-env");
}

BOOST_AUTO_TEST_CASE(flag_errors_name_the_flag) {
  AgentConfig c;
  BOOST_TEST(error_of([&] { flags(c, {"--mtu", "big"}); }) == "--mtu: \"big\" is not a number");
  BOOST_TEST(error_of([&] { flags(c, {"--mtu", "20"}); }) == "--mtu: 20 is out of range (68 to 65535)");
  BOOST_TEST(error_of([&] { flags(c, {"--ipv4", "yes"}); }) == "--ipv4: \"yes\" is not true or false");
  BOOST_TEST(error_of([&] { flags(c, {"--socket"}); }) == "--socket: needs a value");
  BOOST_TEST(error_of([&] { flags(c, {"--frobnicate", "1"}); }) ==
             "unknown argument \"--frobnicate\" (knit agent --help lists them)");
  BOOST_TEST(error_of([&] { flags(c, {"--no-masquerade-cidrs", "10.0.0.0/8,nope"}); }) ==
             "--no-masquerade-cidrs[1]: \"nope\" is not a CIDR");
  BOOST_TEST(error_of([&] { flags(c, {"--ipv4=false", "--ipv6=false"}); }) ==
             "network.ipv4 and network.ipv6 are both false: enable at least one family");
  BOOST_TEST(error_of([&] { flags(c, {}, Env{{{"KNIT_LOG", "loud"}}}); }) ==
             "KNIT_LOG: \"loud\" is not one of error, warn, info, debug");
  BOOST_TEST(error_of([&] { flags(c, {"--config", "/nonexistent.toml"}); }) ==
             "read agent config /nonexistent.toml: No such file or directory");
}

BOOST_AUTO_TEST_CASE(help_wins_and_lists_every_flag) {
  AgentConfig c;
  BOOST_TEST((flags(c, {"--mtu", "big", "--help"}) == FlagsAction::kHelp));
  std::string u = agent_usage();
  for (const char* f : {"--config FILE", "--kubeconfig FILE", "--node-name NAME", "--manifests DIR",
                        "--socket PATH", "--data-dir DIR", "--metrics-address IP:PORT",
                        "--log-level LEVEL", "--cni-conf-dir DIR", "--resync-interval DURATION"}) {
    BOOST_TEST(u.find(f) != std::string::npos, "usage lacks " << f);
  }
  BOOST_TEST(u.find("metrics.address = \"127.0.0.1:9740\"") != std::string::npos);
  BOOST_TEST(u.find("resync_interval = \"5m\"") != std::string::npos);
}

BOOST_DATA_TEST_CASE(listen_addresses, data::make(kAddresses), c) {
  auto a = parse_listen_address(c.text);
  BOOST_TEST(a.has_value() == c.ok);
  if (a && c.ok) {
    BOOST_TEST(a->ip.to_string() == c.ip);
    BOOST_TEST(a->port == c.port);
  }
}

BOOST_DATA_TEST_CASE(durations, data::make(kDurations), c) {
  auto d = parse_duration(c.text);
  BOOST_TEST(d.has_value() == (c.ms >= 0));
  if (d && c.ms >= 0) BOOST_TEST(d->count() == c.ms);
}

BOOST_AUTO_TEST_CASE(describe_names_the_effective_values) {
  AgentConfig c;
  c.node_name = "n1";
  c.no_masquerade_cidrs = {*Prefix::parse("10.96.0.0/16")};
  std::string d = describe(c);
  BOOST_TEST(d.find("node=n1 ") != std::string::npos);
  BOOST_TEST(d.find("kubeconfig=(in-cluster)") != std::string::npos);
  BOOST_TEST(d.find("no_masquerade=[10.96.0.0/16]") != std::string::npos);
  BOOST_TEST(d.find("metrics=127.0.0.1:9740") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
