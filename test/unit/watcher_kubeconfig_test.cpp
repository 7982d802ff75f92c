// Finding the Kubernetes API: kubeconfig files (as kind, k3s and kubeadm write them, and merged
// KUBECONFIG lists), in-cluster service-account config, the selection order, and the agent's
// --kubeconfig/--context flags.
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/str.hpp"
#include "watcher/kubeconfig.hpp"

using knit::Code;
using knit::str;
using namespace knit::watcher;
namespace data = boost::unit_test::data;

namespace {

/// A temporary directory, removed with its files at the end of the test.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/knit-kubeconfig-XXXXXX";
    BOOST_TEST_REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() { (void)!system(("rm -rf '" + path + "'").c_str()); }
  std::string write(const std::string& name, const std::string& text) const {
    auto p = path + "/" + name;
    auto slash = p.rfind('/');
    (void)!system(("mkdir -p '" + p.substr(0, slash) + "'").c_str());
    std::FILE* f = std::fopen(p.c_str(), "wb");
    BOOST_TEST_REQUIRE(f != nullptr);
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
    return p;
  }
};

/// Sets or unsets environment variables for the scope of a test.
struct Env {
  std::vector<std::pair<std::string, std::string>> saved;
  std::vector<std::string> unset_names;
  void set(const std::string& k, const char* v) {
    if (const char* old = getenv(k.c_str())) {
      saved.emplace_back(k, old);
    } else {
      unset_names.push_back(k);
    }
    if (v) {
      setenv(k.c_str(), v, 1);
    } else {
      unsetenv(k.c_str());
    }
  }
  ~Env() {
    for (auto& [k, v] : saved) setenv(k.c_str(), v.c_str(), 1);
    for (auto& k : unset_names) unsetenv(k.c_str());
  }
};

// "hello" and "world" in base64, standing in for PEM blocks.
constexpr const char* kKindConfig = R"(apiVersion: v1
kind: Config
preferences: {}
current-context: kind-kind
clusters:
- cluster:
    certificate-authority-data: aGVsbG8=
    server: https://127.0.0.1:40123
  name: kind-kind
- cluster:
    server: prod.example.com:6443/
    insecure-skip-tls-verify: true
  name: prod
contexts:
- context:
    cluster: kind-kind
    user: kind-kind
  name: kind-kind
- context:
    cluster: prod
    user: robot
    namespace: kube-system
  name: prod
users:
- name: kind-kind
  user:
    client-certificate-data: d29ybGQ=
    client-key-data: aGVsbG8=
- name: robot
  user:
    token: abc.def
)";

std::string expect_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const knit::Error& e) {
    BOOST_TEST((e.code() == Code::kInvalidConfig));
    return e.what();
  }
  BOOST_ERROR("no error");
  return {};
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_CASE(kind_kubeconfig_with_client_certificate_data) {
  TempDir d;
  auto file = d.write("config", kKindConfig);
  ApiConfig c = load_kubeconfig(file);
  BOOST_TEST(c.server == "https://127.0.0.1:40123");
  BOOST_TEST(c.ca_pem == "hello");
  BOOST_TEST(c.ca_file.empty());
  BOOST_TEST(c.cert_pem == "world");
  BOOST_TEST(c.key_pem == "hello");
  BOOST_TEST(c.token.empty());
  BOOST_TEST(!c.insecure_skip_tls_verify);
  BOOST_TEST(c.origin == str("kubeconfig ", file, " (context kind-kind)"));
}

BOOST_AUTO_TEST_CASE(context_override_token_user_and_server_without_scheme) {
  TempDir d;
  ApiConfig c = load_kubeconfig(d.write("config", kKindConfig), "prod");
  BOOST_TEST(c.server == "https://prod.example.com:6443");  // scheme added, slash dropped
  BOOST_TEST(c.insecure_skip_tls_verify);
  BOOST_TEST(c.token == "abc.def");
  BOOST_TEST(c.cert_pem.empty());
}

BOOST_AUTO_TEST_CASE(relative_files_resolve_against_the_kubeconfig_directory) {
  TempDir d;
  d.write("kube/pki/ca.crt", "CA");
  d.write("kube/pki/client.crt", "CERT");
  d.write("kube/pki/client.key", "KEY");
  d.write("kube/token", "  s3cret\n");
  auto file = d.write("kube/config", R"(
current-context: c
clusters: [{name: k, cluster: {server: "http://127.0.0.1:8080", certificate-authority: pki/ca.crt}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
users: [{name: u, user: {client-certificate: pki/client.crt, client-key: pki/client.key, tokenFile: token}}]
)");
  ApiConfig c = load_kubeconfig(file);
  BOOST_TEST(c.server == "http://127.0.0.1:8080");
  BOOST_TEST(c.ca_file == d.path + "/kube/pki/ca.crt");
  BOOST_TEST(c.cert_file == d.path + "/kube/pki/client.crt");
  BOOST_TEST(c.key_file == d.path + "/kube/pki/client.key");
  BOOST_TEST(c.token_file == d.path + "/kube/token");
  BOOST_TEST(c.token == "s3cret");
}

BOOST_AUTO_TEST_CASE(a_json_kubeconfig_is_read_too) {
  TempDir d;
  auto file = d.write("config.json", R"({"current-context":"c",
    "clusters":[{"name":"k","cluster":{"server":"https://10.0.0.1"}}],
    "contexts":[{"name":"c","context":{"cluster":"k","user":"u"}}],
    "users":[{"name":"u","user":{"token":"t"}}]})");
  ApiConfig c = load_kubeconfig(file);
  BOOST_TEST(c.server == "https://10.0.0.1");
  BOOST_TEST(c.token == "t");
}

BOOST_AUTO_TEST_CASE(a_context_without_user_is_anonymous) {
  TempDir d;
  auto file = d.write("config", R"(current-context: c
clusters: [{name: k, cluster: {server: "https://10.0.0.1"}}]
contexts: [{name: c, context: {cluster: k}}]
)");
  ApiConfig c = load_kubeconfig(file);
  BOOST_TEST(c.token.empty());
  BOOST_TEST(c.cert_file.empty());
}

BOOST_AUTO_TEST_CASE(kubeconfig_lists_merge_first_definition_wins_and_skip_missing_files) {
  TempDir d;
  auto a = d.write("a", R"(current-context: from-a
clusters: [{name: k, cluster: {server: "https://a.example"}}]
users: [{name: u, user: {token: token-a}}]
)");
  auto b = d.write("b", R"(current-context: from-b
clusters: [{name: k, cluster: {server: "https://b.example"}}]
contexts: [{name: from-a, context: {cluster: k, user: u}}]
users: [{name: u, user: {token: token-b}}]
)");
  ApiConfig c = load_kubeconfig(str(d.path, "/missing:", a, ":", b));
  BOOST_TEST(c.server == "https://a.example");
  BOOST_TEST(c.token == "token-a");
  BOOST_TEST(c.origin == str("kubeconfig ", b, " (context from-a)"));
}

struct ErrorCase {
  const char* name;
  const char* config;  // written to <dir>/config; nullptr: no file
  const char* context;
  const char* message;  // after "load kubeconfig <file>: "
};
std::ostream& operator<<(std::ostream& os, const ErrorCase& c) {
  return os << c.name;
}

#define PRELUDE          \
  "current-context: c\n" \
  "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
const ErrorCase kErrors[] = {
    {"missing file", nullptr, "", "No such file or directory"},
    {"not YAML", "clusters: [\n", "", "line "},
    {"no current-context", "clusters: []\n", "", "current-context: not set"},
    {"unknown context", PRELUDE, "nope", "context: context \"nope\" is not defined in contexts"},
    {"unknown cluster", PRELUDE, "",
     "contexts[\"c\"].context.cluster: cluster \"k\" is not defined in clusters"},
    {"no server", PRELUDE "clusters: [{name: k, cluster: {}}]\n", "",
     "clusters[\"k\"].cluster.server: missing"},
    {"ftp server", PRELUDE "clusters: [{name: k, cluster: {server: \"ftp://x\"}}]\n", "",
     "clusters[\"k\"].cluster.server: \"ftp://x\" is not an http:// or https:// URL"},
    {"bad base64",
     PRELUDE "clusters: [{name: k, cluster: {server: x, certificate-authority-data: \"#!\"}}]\n",
     "", "clusters[\"k\"].cluster.certificate-authority-data: not base64"},
    {"missing CA file",
     PRELUDE "clusters: [{name: k, cluster: {server: x, certificate-authority: nope.crt}}]\n", "",
     "clusters[\"k\"].cluster.certificate-authority: "},
    {"unknown user", PRELUDE "clusters: [{name: k, cluster: {server: x}}]\n", "",
     "contexts[\"c\"].context.user: user \"u\" is not defined in users"},
    {"exec plugin",
     PRELUDE "clusters: [{name: k, cluster: {server: x}}]\n"
             "users: [{name: u, user: {exec: {command: aws}}}]\n",
     "", "users[\"u\"].user.exec: credential plugins are not supported"},
    {"auth-provider",
     PRELUDE "clusters: [{name: k, cluster: {server: x}}]\n"
             "users: [{name: u, user: {auth-provider: {name: gcp}}}]\n",
     "", "users[\"u\"].user.auth-provider: credential plugins are not supported"},
    {"basic auth",
     PRELUDE "clusters: [{name: k, cluster: {server: x}}]\n"
             "users: [{name: u, user: {username: a, password: b}}]\n",
     "", "users[\"u\"].user: basic authentication is not supported"},
    {"certificate without key",
     PRELUDE "clusters: [{name: k, cluster: {server: x}}]\n"
             "users: [{name: u, user: {client-certificate-data: aGVsbG8=}}]\n",
     "", "users[\"u\"].user: client-certificate without client-key"},
    {"missing token file",
     PRELUDE "clusters: [{name: k, cluster: {server: x}}]\n"
             "users: [{name: u, user: {tokenFile: gone}}]\n",
     "", "users[\"u\"].user.tokenFile: read token file "},
    {"token not a string",
     PRELUDE "clusters: [{name: k, cluster: {server: x}}]\n"
             "users: [{name: u, user: {token: [1]}}]\n",
     "", "users[\"u\"].user.token: not a string"},
    {"clusters not a list", "current-context: c\nclusters: {a: b}\n", "", "clusters: not a list"},
    {"entry without name", "current-context: c\nclusters: [{cluster: {}}]\n", "",
     "clusters[0].name: missing"},
};

BOOST_DATA_TEST_CASE(errors_name_the_file_and_the_key, data::make(kErrors), c) {
  TempDir d;
  std::string file = d.path + "/config";
  if (c.config) d.write("config", c.config);
  std::string msg = expect_error([&] { load_kubeconfig(file, c.context); });
  BOOST_TEST(contains(msg, str("load kubeconfig ", file, ": ")), msg);
  BOOST_TEST(contains(msg, c.message), msg);
}

BOOST_AUTO_TEST_CASE(in_cluster_config_reads_the_service_account) {
  TempDir d;
  d.write("sa/token", "eyJhbGciOi.payload.sig\n");
  d.write("sa/ca.crt", "CA");
  Env env;
  env.set("KUBERNETES_SERVICE_HOST", "10.96.0.1");
  env.set("KUBERNETES_SERVICE_PORT", "443");
  ApiConfig c = in_cluster_config(d.path + "/sa");
  BOOST_TEST(c.server == "https://10.96.0.1:443");
  BOOST_TEST(c.token == "eyJhbGciOi.payload.sig");
  BOOST_TEST(c.token_file == d.path + "/sa/token");
  BOOST_TEST(c.ca_file == d.path + "/sa/ca.crt");

  env.set("KUBERNETES_SERVICE_HOST", "fd00:10:96::1");
  BOOST_TEST(in_cluster_config(d.path + "/sa").server == "https://[fd00:10:96::1]:443");
}

BOOST_AUTO_TEST_CASE(in_cluster_config_errors) {
  TempDir d;
  Env env;
  env.set("KUBERNETES_SERVICE_HOST", nullptr);
  env.set("KUBERNETES_SERVICE_PORT", "443");
  auto msg = expect_error([&] { in_cluster_config(d.path); });
  BOOST_TEST(contains(msg, "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set"), msg);

  env.set("KUBERNETES_SERVICE_HOST", "10.96.0.1");
  msg = expect_error([&] { in_cluster_config(d.path); });
  BOOST_TEST(contains(msg, str("read token file ", d.path, "/token: No such file")), msg);

  d.write("token", " \n");
  msg = expect_error([&] { in_cluster_config(d.path); });
  BOOST_TEST(contains(msg, "token: empty"), msg);
}

BOOST_AUTO_TEST_CASE(selection_order_flag_then_kubeconfig_env_then_in_cluster) {
  TempDir d;
  auto flag = d.write("flag", R"(current-context: c
clusters: [{name: k, cluster: {server: "https://flag"}}]
contexts: [{name: c, context: {cluster: k}}]
)");
  auto envfile = d.write("env", R"(current-context: c
clusters: [{name: k, cluster: {server: "https://env"}}]
contexts: [{name: c, context: {cluster: k}}]
)");
  Env env;
  env.set("KUBECONFIG", envfile.c_str());
  env.set("KUBERNETES_SERVICE_HOST", "10.96.0.1");
  env.set("KUBERNETES_SERVICE_PORT", "443");
  BOOST_TEST(select_api_config(flag).server == "https://flag");
  BOOST_TEST(select_api_config("").server == "https://env");

  env.set("KUBECONFIG", "");
  // In-cluster is next; this machine has no service account, so it fails naming the token.
  if (access(std::string(kServiceAccountDir).c_str(), F_OK) != 0) {
    auto msg = expect_error([&] { select_api_config(""); });
    BOOST_TEST(contains(msg, "load in-cluster configuration: read token file"), msg);
  }

  env.set("KUBERNETES_SERVICE_HOST", nullptr);
  auto msg = expect_error([&] { select_api_config(""); });
  BOOST_TEST(contains(msg, "--kubeconfig not given, KUBECONFIG not set, and not in a pod"), msg);
}

BOOST_AUTO_TEST_CASE(read_token_file_trims_and_refuses_empty) {
  TempDir d;
  BOOST_TEST(read_token_file(d.write("t", "\tabc\r\n")) == "abc");
  auto msg = expect_error([&] { read_token_file(d.write("e", "")); });
  BOOST_TEST(msg == str("read token file ", d.path, "/e: empty"));
}

BOOST_AUTO_TEST_CASE(agent_flags) {
  std::vector<std::string> args = {"knit",        "agent", "--kubeconfig",  "/k",
                                   "--node-name", "n1",    "--context=dev", "--kubeconfig=/k2",
                                   "--kubeconfig"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  int argc = static_cast<int>(argv.size());
  ApiFlags f;
  int i = 2;
  BOOST_TEST(parse_api_flag(argc, argv.data(), i, f));
  BOOST_TEST(i == 3);
  BOOST_TEST(f.kubeconfig == "/k");
  i = 4;
  BOOST_TEST(!parse_api_flag(argc, argv.data(), i, f));
  BOOST_TEST(i == 4);
  i = 6;
  BOOST_TEST(parse_api_flag(argc, argv.data(), i, f));
  BOOST_TEST(f.context == "dev");
  i = 7;
  BOOST_TEST(parse_api_flag(argc, argv.data(), i, f));
  BOOST_TEST(f.kubeconfig == "/k2");
  i = 8;
  auto msg = expect_error([&] { parse_api_flag(argc, argv.data(), i, f); });
  BOOST_TEST(msg == "parse --kubeconfig: needs a value");
}
