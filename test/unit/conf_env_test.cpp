#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <map>
#include <ostream>
#include <string>

#include "conf/netconf.hpp"

using knit::Code;
using knit::conf::CniEnv;
using knit::conf::Command;
namespace data = boost::unit_test::data;

namespace {

using Vars = std::map<std::string, std::string>;

CniEnv decode(const Vars& vars) {
  return knit::conf::decode_env([&](const char* key) -> const char* {
    auto it = vars.find(key);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

/// A complete ADD environment with `changes` applied ("" values stay set but empty).
Vars add_env(const Vars& changes = {}) {
  Vars v{{"CNI_COMMAND", "ADD"},
         {"CNI_CONTAINERID", "0f6b2a1c9d"},
         {"CNI_NETNS", "/var/run/netns/cni-1234"},
         {"CNI_IFNAME", "eth0"},
         {"CNI_PATH", "/opt/cni/bin"}};
  for (const auto& [k, val] : changes) v[k] = val;
  return v;
}

struct EnvError {
  const char* name;
  Vars vars;
  const char* msg;
};

std::ostream& operator<<(std::ostream& os, const EnvError& c) {
  return os << c.name;
}

const EnvError kEnvErrors[] = {
    {"no command", {}, "required env variables [CNI_COMMAND] missing"},
    {"empty command", {{"CNI_COMMAND", ""}}, "required env variables [CNI_COMMAND] missing"},
    {"unknown command",
     {{"CNI_COMMAND", "ATTACH"}},
     "invalid env variable CNI_COMMAND: \"ATTACH\" is not ADD, DEL, CHECK, GC, STATUS or VERSION"},
    {"lower-case command",
     {{"CNI_COMMAND", "add"}},
     "invalid env variable CNI_COMMAND: \"add\" is not ADD, DEL, CHECK, GC, STATUS or VERSION"},
    {"ADD with nothing",
     {{"CNI_COMMAND", "ADD"}},
     "required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME] missing"},
    {"ADD without netns and ifname",
     {{"CNI_COMMAND", "ADD"}, {"CNI_CONTAINERID", "abc"}},
     "required env variables [CNI_NETNS,CNI_IFNAME] missing"},
    {"ADD with empty netns", add_env({{"CNI_NETNS", ""}}),
     "required env variables [CNI_NETNS] missing"},
    {"CHECK with nothing",
     {{"CNI_COMMAND", "CHECK"}},
     "required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME] missing"},
    {"DEL with nothing",
     {{"CNI_COMMAND", "DEL"}},
     "required env variables [CNI_CONTAINERID,CNI_IFNAME] missing"},
    {"DEL without ifname",
     {{"CNI_COMMAND", "DEL"}, {"CNI_CONTAINERID", "abc"}, {"CNI_NETNS", "/x"}},
     "required env variables [CNI_IFNAME] missing"},
    {"container id starts with dash", add_env({{"CNI_CONTAINERID", "-abc"}}),
     "invalid env variable CNI_CONTAINERID: \"-abc\" must start with a letter or digit and "
     "contain only letters, digits, '_', '.' and '-'"},
    {"container id with slash", add_env({{"CNI_CONTAINERID", "ab/../c"}}),
     "invalid env variable CNI_CONTAINERID: \"ab/../c\" must start with a letter or digit and "
     "contain only letters, digits, '_', '.' and '-'"},
    {"container id with space", add_env({{"CNI_CONTAINERID", "ab c"}}),
     "invalid env variable CNI_CONTAINERID: \"ab c\" must start with a letter or digit and "
     "contain only letters, digits, '_', '.' and '-'"},
    {"DEL validates the container id too",
     {{"CNI_COMMAND", "DEL"}, {"CNI_CONTAINERID", "_x"}, {"CNI_IFNAME", "eth0"}},
     "invalid env variable CNI_CONTAINERID: \"_x\" must start with a letter or digit and "
     "contain only letters, digits, '_', '.' and '-'"},
    {"ifname of 16 characters", add_env({{"CNI_IFNAME", "eth0123456789abc"}}),
     "invalid env variable CNI_IFNAME: \"eth0123456789abc\" is longer than 15 characters"},
    {"ifname dot", add_env({{"CNI_IFNAME", "."}}),
     "invalid env variable CNI_IFNAME: \".\" is not a valid interface name"},
    {"ifname dot dot", add_env({{"CNI_IFNAME", ".."}}),
     "invalid env variable CNI_IFNAME: \"..\" is not a valid interface name"},
    {"ifname with slash", add_env({{"CNI_IFNAME", "eth/0"}}),
     "invalid env variable CNI_IFNAME: \"eth/0\" contains '/', ':' or whitespace"},
    {"ifname with colon", add_env({{"CNI_IFNAME", "eth0:1"}}),
     "invalid env variable CNI_IFNAME: \"eth0:1\" contains '/', ':' or whitespace"},
    {"ifname with space", add_env({{"CNI_IFNAME", "eth 0"}}),
     "invalid env variable CNI_IFNAME: \"eth 0\" contains '/', ':' or whitespace"},
    {"ifname with tab", add_env({{"CNI_IFNAME", "eth\t0"}}),
     "invalid env variable CNI_IFNAME: \"eth\\t0\" contains '/', ':' or whitespace"},
    {"CNI_ARGS segment without =",
     add_env({{"CNI_ARGS", "IgnoreUnknown=1;garbage;K8S_POD_NAME=x"}}),
     "invalid env variable CNI_ARGS: \"garbage\" is not KEY=VALUE"},
    {"CNI_ARGS segment with empty key", add_env({{"CNI_ARGS", "=1"}}),
     "invalid env variable CNI_ARGS: \"=1\" is not KEY=VALUE"},
};

}  // namespace

BOOST_AUTO_TEST_SUITE(conf_env)

BOOST_DATA_TEST_CASE(rejects_with_code_4, data::make(kEnvErrors), c) {
  try {
    decode(c.vars);
    BOOST_ERROR("no error for " << c.name);
  } catch (const knit::Error& e) {
    BOOST_TEST(static_cast<int>(e.code()) == static_cast<int>(Code::kInvalidEnv));
    BOOST_TEST(std::string(e.what()) == c.msg);
  }
}

BOOST_AUTO_TEST_CASE(reads_a_containerd_add) {
  auto env = decode(add_env({{"CNI_ARGS",
                              "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;"
                              "K8S_POD_INFRA_CONTAINER_ID=0f6b2a1c9d;K8S_POD_UID=5e1f"}}));
  BOOST_TEST((env.command == Command::kAdd));
  BOOST_TEST(env.container_id == "0f6b2a1c9d");
  BOOST_TEST(env.netns == "/var/run/netns/cni-1234");
  BOOST_TEST(env.ifname == "eth0");
  BOOST_TEST(env.path == "/opt/cni/bin");
  std::map<std::string, std::string> want{{"IgnoreUnknown", "1"},
                                          {"K8S_POD_NAMESPACE", "default"},
                                          {"K8S_POD_NAME", "web-0"},
                                          {"K8S_POD_INFRA_CONTAINER_ID", "0f6b2a1c9d"},
                                          {"K8S_POD_UID", "5e1f"}};
  BOOST_TEST((env.args == want));
}

BOOST_AUTO_TEST_CASE(cni_args_tolerates_empty_segments_and_keeps_later_duplicates) {
  auto env = decode(add_env({{"CNI_ARGS", ";IP=10.0.0.5,fd00::5;;MAC=;K=a=b;IP=10.0.0.6;"}}));
  std::map<std::string, std::string> want{{"IP", "10.0.0.6"}, {"MAC", ""}, {"K", "a=b"}};
  BOOST_TEST((env.args == want));
  BOOST_TEST(decode(add_env({{"CNI_ARGS", ""}})).args.empty());
}

struct CommandCase {
  const char* text;
  Command command;
};
std::ostream& operator<<(std::ostream& os, const CommandCase& c) {
  return os << c.text;
}

BOOST_DATA_TEST_CASE(maps_every_verb,
                     data::make({CommandCase{"ADD", Command::kAdd},
                                 {"DEL", Command::kDel},
                                 {"CHECK", Command::kCheck},
                                 {"GC", Command::kGc},
                                 {"STATUS", Command::kStatus},
                                 {"VERSION", Command::kVersion}}),
                     c) {
  BOOST_TEST((decode(add_env({{"CNI_COMMAND", c.text}})).command == c.command));
}

BOOST_AUTO_TEST_CASE(del_does_not_need_netns) {
  auto env = decode({{"CNI_COMMAND", "DEL"}, {"CNI_CONTAINERID", "abc"}, {"CNI_IFNAME", "eth0"}});
  BOOST_TEST((env.command == Command::kDel));
  BOOST_TEST(env.netns == "");
}

BOOST_DATA_TEST_CASE(gc_status_version_need_nothing_and_check_nothing,
                     data::make({"GC", "STATUS", "VERSION"}), cmd) {
  BOOST_CHECK_NO_THROW(decode({{"CNI_COMMAND", cmd}}));
  // libcni sets the per-attachment variables empty for these verbs; junk is not looked at.
  auto env = decode({{"CNI_COMMAND", cmd}, {"CNI_CONTAINERID", "-"}, {"CNI_IFNAME", "a/b"}});
  BOOST_TEST(env.container_id == "-");
}

BOOST_AUTO_TEST_CASE(cni_path_is_not_required) {
  auto vars = add_env();
  vars.erase("CNI_PATH");
  BOOST_TEST(decode(vars).path == "");
}

BOOST_DATA_TEST_CASE(accepts_valid_names,
                     data::make({"e", "eth0", "eth0123456789ab", "net-1_a.b", "veth.a-b_c"}),
                     ifname) {
  BOOST_TEST(decode(add_env({{"CNI_IFNAME", ifname}})).ifname == ifname);
}

BOOST_DATA_TEST_CASE(accepts_valid_container_ids,
                     data::make({"a", "0f6b2a1c9d", "cnitool-77383ca0a0715733ca6f", "Ab9_x.y-z"}),
                     id) {
  BOOST_TEST(decode(add_env({{"CNI_CONTAINERID", id}})).container_id == id);
}

BOOST_AUTO_TEST_SUITE_END()
