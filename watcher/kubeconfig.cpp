#include "watcher/kubeconfig.hpp"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <vector>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/str.hpp"
#include "watcher/yaml.hpp"

namespace knit::watcher {

namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& file, std::string_view key, std::string_view cause) {
  fail(Code::kInvalidConfig, str("load kubeconfig ", file, ": ", key, ": ", cause));
}

/// `p` relative to the directory of `file` (client-go resolves kubeconfig paths that way).
std::string resolve(const std::string& file, const std::string& p) {
  if (p.empty() || p[0] == '/') return p;
  auto slash = file.rfind('/');
  return slash == std::string::npos ? p : str(std::string_view(file).substr(0, slash + 1), p);
}

int sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

/// Standard base64 with padding; whitespace (PEM line breaks) is skipped.
std::optional<std::string> base64_decode(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  size_t pad = 0;
  for (char c : in) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      ++pad;
      continue;
    }
    int v = sextet(c);
    if (v < 0 || pad) return std::nullopt;  // not base64, or data after padding
    acc = acc << 6 | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>(acc >> bits & 0xff));
    }
  }
  if (pad > 2 || bits >= 6) return std::nullopt;
  return out;
}

/// One named entry of clusters/users/contexts, with the file that defined it.
struct Entry {
  json value;
  std::string file;
};

struct Merged {
  std::map<std::string, Entry, std::less<>> clusters, users, contexts;
  std::string current_context;
  std::string files;  ///< for messages: the files read, ':'-joined
};

void merge_named(const json& doc, const char* list_key, const char* item_key,
                 const std::string& file, std::map<std::string, Entry, std::less<>>& into) {
  auto it = doc.find(list_key);
  if (it == doc.end() || it->is_null()) return;
  if (!it->is_array()) bad(file, list_key, "not a list");
  for (size_t i = 0; i < it->size(); ++i) {
    const json& e = (*it)[i];
    auto where = str(list_key, '[', i, ']');
    if (!e.is_object()) bad(file, where, "not a mapping");
    auto n = e.find("name");
    if (n == e.end() || !n->is_string() || n->get_ref<const std::string&>().empty()) {
      bad(file, str(where, ".name"), "missing");
    }
    auto v = e.find(item_key);
    json value = v == e.end() || v->is_null() ? json::object() : *v;
    if (!value.is_object()) bad(file, str(where, '.', item_key), "not a mapping");
    into.try_emplace(n->get<std::string>(), Entry{std::move(value), file});  // first one wins
  }
}

/// A string member, or nullopt when absent or null; `bad` when it has another type.
std::optional<std::string> string_at(const Entry& e, std::string_view key, std::string_view path) {
  auto it = e.value.find(key);
  if (it == e.value.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) bad(e.file, str(path, '.', key), "not a string");
  return it->get<std::string>();
}

std::string pem_data(const Entry& e, std::string_view key, std::string_view path) {
  auto v = string_at(e, key, path);
  if (!v || v->empty()) return {};
  auto pem = base64_decode(*v);
  if (!pem || pem->empty()) bad(e.file, str(path, '.', key), "not base64");
  return *pem;
}

std::string pem_file(const Entry& e, std::string_view key, std::string_view path) {
  auto v = string_at(e, key, path);
  if (!v || v->empty()) return {};
  std::string p = resolve(e.file, *v);
  if (access(p.c_str(), R_OK) != 0) {
    bad(e.file, str(path, '.', key), str(p, ": ", std::strerror(errno)));
  }
  return p;
}

std::string normalize_server(const Entry& e, std::string_view path) {
  auto s = string_at(e, "server", path);
  if (!s || s->empty()) bad(e.file, str(path, ".server"), "missing");
  std::string server = *s;
  if (server.find("://") == std::string::npos) server = "https://" + server;
  if (!server.starts_with("https://") && !server.starts_with("http://")) {
    bad(e.file, str(path, ".server"), str('"', *s, "\" is not an http:// or https:// URL"));
  }
  while (server.ends_with('/')) server.pop_back();
  return server;
}

}  // namespace

ApiConfig load_kubeconfig(std::string_view paths, std::string_view context) {
  auto list = split(paths, ':');
  Merged m;
  size_t found = 0;
  for (auto p : list) {
    if (p.empty()) continue;
    std::string file(p);
    auto text = read_file(file);
    if (!text) {
      if (list.size() == 1) {
        fail(Code::kInvalidConfig, str("load kubeconfig ", file, ": ", std::strerror(ENOENT)));
      }
      continue;
    }
    ++found;
    if (!m.files.empty()) m.files += ':';
    m.files += file;
    std::vector<YamlDocument> docs;
    try {
      docs = yaml_to_json(*text);
    } catch (const Error& e) {
      fail(Code::kInvalidConfig, str("load kubeconfig ", file, ": ", e.what()));
    }
    if (docs.empty() || docs[0].value.is_null()) continue;
    const json& doc = docs[0].value;
    if (!doc.is_object()) bad(file, "top level", "not a mapping");
    merge_named(doc, "clusters", "cluster", file, m.clusters);
    merge_named(doc, "users", "user", file, m.users);
    merge_named(doc, "contexts", "context", file, m.contexts);
    if (auto cc = doc.find("current-context");
        m.current_context.empty() && cc != doc.end() && cc->is_string()) {
      m.current_context = cc->get<std::string>();
    }
  }
  if (found == 0) {
    fail(Code::kInvalidConfig, str("load kubeconfig ", paths, ": none of the files exists"));
  }

  std::string name = context.empty() ? m.current_context : std::string(context);
  if (name.empty()) bad(m.files, "current-context", "not set");
  auto ctx = m.contexts.find(name);
  if (ctx == m.contexts.end()) {
    bad(m.files, context.empty() ? "current-context" : "context",
        str("context \"", name, "\" is not defined in contexts"));
  }
  auto ctx_path = str("contexts[\"", name, "\"].context");
  std::string cluster_name = string_at(ctx->second, "cluster", ctx_path).value_or("");
  std::string user_name = string_at(ctx->second, "user", ctx_path).value_or("");
  if (cluster_name.empty()) bad(ctx->second.file, str(ctx_path, ".cluster"), "missing");
  auto cl = m.clusters.find(cluster_name);
  if (cl == m.clusters.end()) {
    bad(ctx->second.file, str(ctx_path, ".cluster"),
        str("cluster \"", cluster_name, "\" is not defined in clusters"));
  }

  ApiConfig c;
  c.origin = str("kubeconfig ", ctx->second.file, " (context ", name, ')');
  auto cl_path = str("clusters[\"", cluster_name, "\"].cluster");
  c.server = normalize_server(cl->second, cl_path);
  c.ca_pem = pem_data(cl->second, "certificate-authority-data", cl_path);
  if (c.ca_pem.empty()) c.ca_file = pem_file(cl->second, "certificate-authority", cl_path);
  if (auto it = cl->second.value.find("insecure-skip-tls-verify"); it != cl->second.value.end()) {
    if (!it->is_boolean() && !it->is_null()) {
      bad(cl->second.file, str(cl_path, ".insecure-skip-tls-verify"), "not a boolean");
    }
    c.insecure_skip_tls_verify = it->is_boolean() && it->get<bool>();
  }

  if (user_name.empty()) return c;  // anonymous, as kubectl allows
  auto us = m.users.find(user_name);
  if (us == m.users.end()) {
    bad(ctx->second.file, str(ctx_path, ".user"),
        str("user \"", user_name, "\" is not defined in users"));
  }
  const Entry& u = us->second;
  auto u_path = str("users[\"", user_name, "\"].user");
  for (const char* key : {"exec", "auth-provider"}) {
    if (auto it = u.value.find(key); it != u.value.end() && !it->is_null()) {
      bad(u.file, str(u_path, '.', key),
          "credential plugins are not supported (use a token or a client certificate)");
    }
  }
  if (string_at(u, "username", u_path) || string_at(u, "password", u_path)) {
    bad(u.file, u_path,
        "basic authentication is not supported (use a token or a client certificate)");
  }
  c.token = string_at(u, "token", u_path).value_or("");
  if (auto tf = string_at(u, "tokenFile", u_path); tf && !tf->empty()) {
    c.token_file = resolve(u.file, *tf);
    try {
      c.token = read_token_file(c.token_file);
    } catch (const Error& e) {
      bad(u.file, str(u_path, ".tokenFile"), e.what());
    }
  }
  c.cert_pem = pem_data(u, "client-certificate-data", u_path);
  if (c.cert_pem.empty()) c.cert_file = pem_file(u, "client-certificate", u_path);
  c.key_pem = pem_data(u, "client-key-data", u_path);
  if (c.key_pem.empty()) c.key_file = pem_file(u, "client-key", u_path);
  bool has_cert = !c.cert_pem.empty() || !c.cert_file.empty();
  bool has_key = !c.key_pem.empty() || !c.key_file.empty();
  if (has_cert != has_key) {
    bad(u.file, u_path,
        has_cert ? "client-certificate without client-key"
                 : "client-key without client-certificate");
  }
  return c;
}

ApiConfig in_cluster_config(const std::string& sa_dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !*host || !port || !*port) {
    fail(Code::kInvalidConfig,
         "load in-cluster configuration: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
         "must be set");
  }
  ApiConfig c;
  std::string_view h = host;
  c.server = h.find(':') != std::string_view::npos ? str("https://[", h, "]:", port)
                                                   : str("https://", h, ':', port);
  c.origin = str("in-cluster (", sa_dir, ')');
  c.token_file = sa_dir + "/token";
  try {
    c.token = read_token_file(c.token_file);
  } catch (const Error& e) {
    fail(Code::kInvalidConfig, str("load in-cluster configuration: ", e.what()));
  }
  std::string ca = sa_dir + "/ca.crt";
  if (access(ca.c_str(), R_OK) == 0) c.ca_file = ca;
  return c;
}

ApiConfig select_api_config(const std::string& kubeconfig, std::string_view context) {
  if (!kubeconfig.empty()) return load_kubeconfig(kubeconfig, context);
  if (const char* env = std::getenv("KUBECONFIG"); env && *env)
    return load_kubeconfig(env, context);
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  if (!host || !*host) {
    fail(Code::kInvalidConfig,
         "find the Kubernetes API: --kubeconfig not given, KUBECONFIG not set, and not in a pod "
         "(KUBERNETES_SERVICE_HOST not set)");
  }
  return in_cluster_config();
}

std::string read_token_file(const std::string& path) {
  std::optional<std::string> text;
  try {
    text = read_file(path);
  } catch (const Error& e) {
    fail(Code::kInvalidConfig, str("read token file ", path, ": ", std::strerror(e.sys_errno())));
  }
  if (!text) fail(Code::kInvalidConfig, str("read token file ", path, ": ", std::strerror(ENOENT)));
  auto t = trim(*text);
  if (t.empty()) fail(Code::kInvalidConfig, str("read token file ", path, ": empty"));
  return std::string(t);
}

bool parse_api_flag(int argc, char** argv, int& i, ApiFlags& flags) {
  std::string_view a = argv[i];
  std::string* out = nullptr;
  std::string_view name;
  for (auto [flag, field] : {std::pair{std::string_view("--kubeconfig"), &flags.kubeconfig},
                             std::pair{std::string_view("--context"), &flags.context}}) {
    if (a == flag || (a.starts_with(flag) && a.size() > flag.size() && a[flag.size()] == '=')) {
      out = field;
      name = flag;
    }
  }
  if (out == nullptr) return false;
  std::string_view value;
  if (a.size() > name.size()) {
    value = a.substr(name.size() + 1);
  } else if (i + 1 < argc) {
    value = argv[++i];
  }
  if (value.empty()) fail(Code::kInvalidConfig, str("parse ", name, ": needs a value"));
  *out = value;
  return true;
}

}  // namespace knit::watcher
