#include "conf/agent_config.hpp"

#include <sys/un.h>

#include <cmath>

#include "conf/toml.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/str.hpp"

namespace knit::conf {

namespace {

using Kind = TomlValue::Kind;

/// Where a value came from, for messages: "knit.toml:7: cni.mtu" or "--mtu".
struct Where {
  std::string prefix;
  [[noreturn]] void bad(std::string_view problem) const {
    fail(Code::kInvalidConfig, str(prefix, ": ", problem));
  }
};

/// How a flag's text becomes a value.
enum class Type : uint8_t { kString, kInteger, kBool, kList };

struct Key {
  std::string_view section;  ///< "" for the top level
  std::string_view name;
  std::string_view flag;
  Type type;
  std::string_view placeholder;  ///< for the usage text
  void (*set)(AgentConfig&, const TomlValue&, const Where&);
  std::string (*get)(const AgentConfig&);  ///< the value as TOML, for the usage text
};

std::string quoted(std::string_view s) { return str('"', s, '"'); }

std::string want_string(const TomlValue& v, const Where& w) {
  if (v.kind != Kind::kString) w.bad(str("expected a string, got ", v.kind_name()));
  return v.text;
}

std::string want_path(const TomlValue& v, const Where& w, bool may_be_empty) {
  std::string s = want_string(v, w);
  if (s.empty() && !may_be_empty) w.bad("must not be empty");
  if (s.find('\0') != std::string::npos) w.bad("contains a NUL character");
  return s;
}

bool want_bool(const TomlValue& v, const Where& w) {
  if (v.kind != Kind::kBool) w.bad(str("expected true or false, got ", v.kind_name()));
  return v.boolean;
}

int64_t want_integer(const TomlValue& v, const Where& w, int64_t lo, int64_t hi) {
  if (v.kind != Kind::kInteger) w.bad(str("expected an integer, got ", v.kind_name()));
  if (v.integer < lo || v.integer > hi) {
    w.bad(str(v.integer, " is out of range (", lo, " to ", hi, ")"));
  }
  return v.integer;
}

constexpr std::string_view kLevels[] = {"error", "warn", "info", "debug"};

std::optional<log::Level> parse_level(std::string_view s) {
  for (size_t i = 0; i < std::size(kLevels); ++i)
    if (s == kLevels[i]) return static_cast<log::Level>(i);
  return std::nullopt;
}

// The keys, in the order of the documentation. Setters validate; getters print defaults.
const Key kKeys[] = {
    {"", "node_name", "--node-name", Type::kString, "NAME",
     [](AgentConfig& c, const TomlValue& v, const Where& w) { c.node_name = want_string(v, w); },
     [](const AgentConfig& c) { return quoted(c.node_name); }},
    {"", "kubeconfig", "--kubeconfig", Type::kString, "FILE",
     [](AgentConfig& c, const TomlValue& v, const Where& w) { c.kubeconfig = want_path(v, w, true); },
     [](const AgentConfig& c) { return quoted(c.kubeconfig); }},
    {"", "manifests_dir", "--manifests", Type::kString, "DIR",
     [](AgentConfig& c, const TomlValue& v, const Where& w) {
       c.manifests_dir = want_path(v, w, true);
     },
     [](const AgentConfig& c) { return quoted(c.manifests_dir); }},
    {"", "socket", "--socket", Type::kString, "PATH",
     [](AgentConfig& c, const TomlValue& v, const Where& w) {
       c.socket_path = want_path(v, w, false);
       if (c.socket_path.size() >= sizeof(sockaddr_un{}.sun_path)) {
         w.bad(str("\"", c.socket_path, "\" is longer than a unix socket path may be (",
                   sizeof(sockaddr_un{}.sun_path) - 1, " bytes)"));
       }
     },
     [](const AgentConfig& c) { return quoted(c.socket_path); }},
    {"", "data_dir", "--data-dir", Type::kString, "DIR",
     [](AgentConfig& c, const TomlValue& v, const Where& w) { c.data_dir = want_path(v, w, false); },
     [](const AgentConfig& c) { return quoted(c.data_dir); }},
    {"", "log_level", "--log-level", Type::kString, "LEVEL",
     [](AgentConfig& c, const TomlValue& v, const Where& w) {
       std::string s = want_string(v, w);
       auto l = parse_level(s);
       if (!l) w.bad(str("\"", s, "\" is not one of error, warn, info, debug"));
       c.log_level = *l;
     },
     [](const AgentConfig& c) { return quoted(to_string(c.log_level)); }},
    {"", "resync_interval", "--resync-interval", Type::kString, "DURATION",
     [](AgentConfig& c, const TomlValue& v, const Where& w) {
       std::string s = want_string(v, w);
       auto d = parse_duration(s);
       if (!d) w.bad(str("\"", s, "\" is not a duration (like \"5m\", \"90s\", \"1h\", \"0\")"));
       c.resync_interval = *d;
     },
     [](const AgentConfig& c) {
       auto ms = c.resync_interval.count();
       if (ms == 0) return quoted("0");
       if (ms % 60000 == 0) return quoted(str(ms / 60000, 'm'));
       if (ms % 1000 == 0) return quoted(str(ms / 1000, 's'));
       return quoted(str(ms, "ms"));
     }},

    {"cni", "conf_dir", "--cni-conf-dir", Type::kString, "DIR",
     [](AgentConfig& c, const TomlValue& v, const Where& w) { c.cni_conf_dir = want_path(v, w, true); },
     [](const AgentConfig& c) { return quoted(c.cni_conf_dir); }},
    {"cni", "bin_dir", "--cni-bin-dir", Type::kString, "DIR",
     [](AgentConfig& c, const TomlValue& v, const Where& w) { c.cni_bin_dir = want_path(v, w, true); },
     [](const AgentConfig& c) { return quoted(c.cni_bin_dir); }},
    {"cni", "containerd_config", "--containerd-config", Type::kString, "FILE",
     [](AgentConfig& c, const TomlValue& v, const Where& w) {
       c.containerd_config = want_path(v, w, true);
     },
     [](const AgentConfig& c) { return quoted(c.containerd_config); }},
    {"cni", "conflist_name", "--conflist-name", Type::kString, "NAME",
     [](AgentConfig& c, const TomlValue& v, const Where& w) {
       std::string s = want_path(v, w, false);
       if (s.find('/') != std::string::npos) w.bad(str("\"", s, "\" is a path, not a file name"));
       if (s.size() <= 9 || s.compare(s.size() - 9, 9, ".conflist") != 0) {
         w.bad(str("\"", s, "\" does not end in .conflist (runtimes read it by that extension)"));
       }
       c.conflist_name = s;
     },
     [](const AgentConfig& c) { return quoted(c.conflist_name); }},
    {"cni", "mtu", "--mtu", Type::kInteger, "BYTES",
     [](AgentConfig& c, const TomlValue& v, const Where& w) {
       if (v.kind == Kind::kInteger && v.integer == 0) {
         c.mtu = 0;
         return;
       }
       c.mtu = static_cast<uint32_t>(want_integer(v, w, 68, 65535));
     },
     [](const AgentConfig& c) { return str(c.mtu); }},
    {"cni", "agent_mode", "--agent-mode", Type::kString, "MODE",
     [](AgentConfig& c, const TomlValue& v, const Where& w) {
       std::string s = want_string(v, w);
       if (s == "off") c.agent_mode = AgentMode::kOff;
       else if (s == "best-effort") c.agent_mode = AgentMode::kBestEffort;
       else if (s == "required") c.agent_mode = AgentMode::kRequired;
       else w.bad(str("\"", s, "\" is not one of off, best-effort, required"));
     },
     [](const AgentConfig& c) { return quoted(to_string(c.agent_mode)); }},

    {"network", "ipv4", "--ipv4", Type::kBool, "BOOL",
     [](AgentConfig& c, const TomlValue& v, const Where& w) { c.ipv4 = want_bool(v, w); },
     [](const AgentConfig& c) { return str(c.ipv4); }},
    {"network", "ipv6", "--ipv6", Type::kBool, "BOOL",
     [](AgentConfig& c, const TomlValue& v, const Where& w) { c.ipv6 = want_bool(v, w); },
     [](const AgentConfig& c) { return str(c.ipv6); }},
    {"network", "masquerade", "--masquerade", Type::kBool, "BOOL",
     [](AgentConfig& c, const TomlValue& v, const Where& w) { c.masquerade = want_bool(v, w); },
     [](const AgentConfig& c) { return str(c.masquerade); }},
    {"network", "no_masquerade_cidrs", "--no-masquerade-cidrs", Type::kList, "CIDR,...",
     [](AgentConfig& c, const TomlValue& v, const Where& w) {
       if (v.kind != Kind::kArray) w.bad(str("expected an array of CIDR strings, got ", v.kind_name()));
       std::vector<Prefix> out;
       for (size_t i = 0; i < v.items.size(); ++i) {
         const TomlValue& e = v.items[i];
         Where at{str(w.prefix, '[', i, ']')};
         std::string s = want_string(e, at);
         auto p = Prefix::parse(s);
         if (!p || s.find('/') == std::string::npos) at.bad(str("\"", s, "\" is not a CIDR"));
         if (!p->is_network()) {
           at.bad(str("\"", s, "\" has host bits set (did you mean ", p->network().to_string(), "?)"));
         }
         out.push_back(*p);
       }
       c.no_masquerade_cidrs = std::move(out);
     },
     [](const AgentConfig& c) {
       std::string out = "[";
       for (const auto& p : c.no_masquerade_cidrs) {
         if (out.size() > 1) out += ", ";
         out += quoted(p.to_string());
       }
       return out + "]";
     }},

    {"policy", "revocation", "--revocation", Type::kBool, "BOOL",
     [](AgentConfig& c, const TomlValue& v, const Where& w) { c.revocation = want_bool(v, w); },
     [](const AgentConfig& c) { return str(c.revocation); }},

    {"metrics", "address", "--metrics-address", Type::kString, "IP:PORT",
     [](AgentConfig& c, const TomlValue& v, const Where& w) {
       std::string s = want_string(v, w);
       if (!s.empty() && !parse_listen_address(s)) {
         w.bad(str("\"", s, "\" is not IP:port or [IPv6]:port (an IP address, not a host name)"));
       }
       c.metrics_address = s;
     },
     [](const AgentConfig& c) { return quoted(c.metrics_address); }},
};

std::string key_name(const Key& k) {
  return k.section.empty() ? std::string(k.name) : str(k.section, '.', k.name);
}

const Key* find_key(std::string_view section, std::string_view name) {
  for (const auto& k : kKeys)
    if (k.section == section && k.name == name) return &k;
  return nullptr;
}

bool is_section(std::string_view s) {
  for (const auto& k : kKeys)
    if (!k.section.empty() && k.section == s) return true;
  return false;
}

std::string known_keys(std::string_view section) {
  std::string out;
  for (const auto& k : kKeys) {
    if (k.section != section) continue;
    if (!out.empty()) out += ", ";
    out += k.name;
  }
  if (section.empty()) {
    for (std::string_view s : {"cni", "network", "policy", "metrics"}) out += str(", [", s, ']');
  }
  return out;
}

void unknown(std::string_view file, const TomlValue& v, std::string_view section,
             std::string_view name) {
  std::string where = section.empty() ? std::string("at the top level") : str("in [", section, ']');
  std::string full = section.empty() ? std::string(name) : str(section, '.', name);
  fail(Code::kInvalidConfig, str(file, ':', v.line, ": unknown key \"", full, "\" (known ", where,
                                 ": ", known_keys(section), ")"));
}

/// A flag's text as the TOML value its key expects.
TomlValue flag_value(const Key& k, std::string_view text, const Where& w) {
  TomlValue v;
  switch (k.type) {
    case Type::kString:
      v.kind = Kind::kString;
      v.text = std::string(text);
      break;
    case Type::kInteger: {
      uint64_t n = 0;
      if (!parse_uint(text, n) || n > static_cast<uint64_t>(INT64_MAX)) {
        w.bad(str("\"", text, "\" is not a number"));
      }
      v.kind = Kind::kInteger;
      v.integer = static_cast<int64_t>(n);
      break;
    }
    case Type::kBool:
      if (text != "true" && text != "false") w.bad(str("\"", text, "\" is not true or false"));
      v.kind = Kind::kBool;
      v.boolean = text == "true";
      break;
    case Type::kList:
      v.kind = Kind::kArray;
      if (!text.empty()) {
        for (auto part : split(text, ',')) {
          TomlValue e;
          e.kind = Kind::kString;
          e.text = std::string(trim(part));
          v.items.push_back(std::move(e));
        }
      }
      break;
  }
  return v;
}

}  // namespace

std::string_view to_string(AgentMode m) {
  switch (m) {
    case AgentMode::kOff: return "off";
    case AgentMode::kBestEffort: return "best-effort";
    case AgentMode::kRequired: return "required";
  }
  return "required";
}

std::string_view to_string(log::Level l) {
  auto i = static_cast<size_t>(l);
  return i < std::size(kLevels) ? kLevels[i] : "info";
}

std::optional<ListenAddress> parse_listen_address(std::string_view s) {
  std::string_view host, port;
  if (!s.empty() && s[0] == '[') {
    auto close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return std::nullopt;
    }
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return std::nullopt;  // IPv6 needs brackets
  }
  auto ip = IpAddr::parse(host);
  uint64_t p = 0;
  if (!ip || !parse_uint(port, p) || p > 65535) return std::nullopt;
  if (s[0] == '[' && ip->is_v4()) return std::nullopt;
  return ListenAddress{*ip, static_cast<uint16_t>(p)};
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view s) {
  if (s == "0") return std::chrono::milliseconds(0);
  if (s.empty()) return std::nullopt;
  uint64_t total = 0;
  while (!s.empty()) {
    size_t n = 0;
    while (n < s.size() && s[n] >= '0' && s[n] <= '9') ++n;
    uint64_t value = 0;
    if (n == 0 || !parse_uint(s.substr(0, n), value) || value > 1000000000) return std::nullopt;
    s.remove_prefix(n);
    uint64_t unit;
    if (s.substr(0, 2) == "ms") {
      unit = 1;
      s.remove_prefix(2);
    } else if (!s.empty() && (s[0] == 's' || s[0] == 'm' || s[0] == 'h')) {
      unit = s[0] == 's' ? 1000 : s[0] == 'm' ? 60000 : 3600000;
      s.remove_prefix(1);
    } else {
      return std::nullopt;
    }
    total += value * unit;
  }
  return std::chrono::milliseconds(static_cast<int64_t>(total));
}

void apply_config_text(AgentConfig& config, std::string_view text, std::string_view filename) {
  TomlValue root = parse_toml(text, filename);
  auto apply = [&](std::string_view section, const TomlValue& v) {
    const Key* k = find_key(section, v.key);
    if (k == nullptr) unknown(filename, v, section, v.key);
    k->set(config, v, Where{str(filename, ':', v.line, ": ", key_name(*k))});
  };
  for (const auto& top : root.items) {
    if (top.kind == Kind::kTable && is_section(top.key)) {
      for (const auto& v : top.items) apply(top.key, v);
    } else if (is_section(top.key)) {
      fail(Code::kInvalidConfig, str(filename, ':', top.line, ": ", top.key,
                                     ": expected a table ([", top.key, "]), got ", top.kind_name()));
    } else {
      apply("", top);
    }
  }
}

AgentConfig load_agent_config(const std::string& path) {
  auto text = read_file(path);
  if (!text) fail_errno(Code::kIo, str("read agent config ", path), ENOENT);
  AgentConfig c;
  apply_config_text(c, *text, path);
  return c;
}

void apply_env(AgentConfig& config, const Getenv& getenv) {
  auto get = [&](const char* name) -> std::string_view {
    const char* v = getenv(name);
    return v == nullptr ? std::string_view() : std::string_view(v);
  };
  if (auto v = get("NODE_NAME"); !v.empty()) config.node_name = std::string(v);
  if (auto v = get("KUBECONFIG"); !v.empty()) config.kubeconfig = std::string(v);
  if (auto v = get("KNIT_LOG"); !v.empty()) {
    auto l = parse_level(v);
    if (!l) {
      fail(Code::kInvalidConfig, str("KNIT_LOG: \"", v, "\" is not one of error, warn, info, debug"));
    }
    config.log_level = *l;
  }
}

FlagsAction apply_flags(AgentConfig& config, int argc, const char* const* argv,
                        const Getenv& getenv) {
  struct Flag {
    std::string_view name;
    std::optional<std::string_view> value;  ///< from --flag=value
  };
  auto split_flag = [](std::string_view a) {
    auto eq = a.find('=');
    if (a.substr(0, 2) != "--" || eq == std::string_view::npos) return Flag{a, std::nullopt};
    return Flag{a.substr(0, eq), a.substr(eq + 1)};
  };
  // The value of flag i (advancing i past a separate value).
  auto value_of = [&](int& i, const Flag& f) -> std::string_view {
    if (f.value) return *f.value;
    if (i + 1 >= argc) fail(Code::kInvalidConfig, str(f.name, ": needs a value"));
    return argv[++i];
  };

  for (int i = 0; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") return FlagsAction::kHelp;
  }
  for (int i = 0; i < argc; ++i) {
    Flag f = split_flag(argv[i]);
    if (f.name != "--config") continue;
    std::string path(value_of(i, f));
    if (path.empty()) fail(Code::kInvalidConfig, "--config: needs a file");
    auto text = read_file(path);
    if (!text) fail_errno(Code::kIo, str("read agent config ", path), ENOENT);
    apply_config_text(config, *text, path);
  }
  apply_env(config, getenv);
  for (int i = 0; i < argc; ++i) {
    Flag f = split_flag(argv[i]);
    if (f.name == "--config") {
      value_of(i, f);
      continue;
    }
    const Key* key = nullptr;
    for (const auto& k : kKeys)
      if (k.flag == f.name) key = &k;
    if (key == nullptr) {
      fail(Code::kInvalidConfig, str("unknown argument \"", f.name, "\" (knit agent --help lists them)"));
    }
    Where w{std::string(f.name)};
    key->set(config, flag_value(*key, value_of(i, f), w), w);
  }
  validate(config);
  return FlagsAction::kRun;
}

void validate(const AgentConfig& config) {
  if (!config.ipv4 && !config.ipv6) {
    fail(Code::kInvalidConfig, "network.ipv4 and network.ipv6 are both false: enable at least one family");
  }
  if (config.socket_path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    fail(Code::kInvalidConfig, str("socket: \"", config.socket_path, "\" is too long for a unix socket"));
  }
}

std::string agent_usage() {
  AgentConfig defaults;
  std::string out =
      "usage: knit agent [--config FILE] [flags]\n"
      "\n"
      "Runs the NetworkPolicy agent. Settings come from the defaults, then the TOML file of\n"
      "--config, then NODE_NAME, KUBECONFIG and KNIT_LOG, then these flags (--flag VALUE or\n"
      "--flag=VALUE). Each flag sets the config key shown; README \"Configuration (agent)\".\n"
      "\n";
  for (const auto& k : kKeys) {
    std::string left = str("  ", k.flag, ' ', k.placeholder);
    if (left.size() < 36) left.append(36 - left.size(), ' ');
    out += str(left, key_name(k), " = ", k.get(defaults), '\n');
  }
  out += "  --config FILE                     the TOML configuration file\n";
  out += "  --help                            this text\n";
  return out;
}

std::string describe(const AgentConfig& c) {
  std::string cidrs;
  for (const auto& p : c.no_masquerade_cidrs) cidrs += str(cidrs.empty() ? "" : ",", p.to_string());
  return str("node=", c.node_name.empty() ? "(unset)" : c.node_name,
             " kubeconfig=", c.kubeconfig.empty() ? "(in-cluster)" : c.kubeconfig,
             " manifests=", c.manifests_dir.empty() ? "(none)" : c.manifests_dir,
             " socket=", c.socket_path, " data_dir=", c.data_dir,
             " cni.conf_dir=", c.cni_conf_dir.empty() ? "(detect)" : c.cni_conf_dir,
             " cni.conflist=", c.conflist_name, " cni.mtu=", c.mtu == 0 ? std::string("auto") : str(c.mtu),
             " cni.agent_mode=", to_string(c.agent_mode), " ipv4=", c.ipv4, " ipv6=", c.ipv6,
             " masquerade=", c.masquerade, " no_masquerade=[", cidrs, "] revocation=", c.revocation,
             " metrics=", c.metrics_address.empty() ? "(off)" : c.metrics_address,
             " log_level=", to_string(c.log_level));
}

}  // namespace knit::conf
