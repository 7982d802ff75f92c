#include "conf/netconf.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "core/str.hpp"

namespace knit::conf {

namespace {

using nlohmann::json;
// Rendering keeps insertion order so our output reads like libcni's (Go struct field order).
using ojson = nlohmann::ordered_json;

constexpr const char* kDefaultVersion = "1.1.0";

// ---------------------------------------------------------------------------------------------
// Error context

/// Where a decoding failure is reported: the CNI code and the message's lead. Messages read
/// "<lead>: <key path>: <cause>", e.g.
/// `invalid network config: ipam.ranges[0][1].rangeStart: "10.0.0.300" is not an IP address`.
struct Ctx {
  Code code;
  std::string_view lead;
};

constexpr Ctx kConfig{Code::kInvalidConfig, "invalid network config"};
constexpr Ctx kConfigDecode{Code::kDecode, "decode network config"};
constexpr Ctx kResultDecode{Code::kDecode, "decode result"};

[[noreturn]] void bad(const Ctx& c, std::string_view path, std::string_view cause) {
  if (path.empty()) fail(c.code, str(c.lead, ": ", cause));
  fail(c.code, str(c.lead, ": ", path, ": ", cause));
}

std::string join(std::string_view base, std::string_view key) {
  return base.empty() ? std::string(key) : str(base, '.', key);
}

std::string index(std::string_view base, size_t i) {
  return str(base, '[', i, ']');
}

/// `v` as JSON text for a message (strings quoted and escaped), shortened when long.
std::string describe(const json& v) {
  auto s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 80) {
    s.resize(77);
    s += "...";
  }
  return s;
}

std::string quote(std::string_view s) {
  return describe(json(s));
}

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/// Alphanumeric first, then [A-Za-z0-9_.-]: the spec's rule for network names and container ids.
bool is_identifier(std::string_view s) {
  if (s.empty() || !is_alnum(s[0])) return false;
  for (char c : s) {
    if (!is_alnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// JSON access. A key holding null counts as absent, as it does for Go's decoder.

json parse_json(std::string_view text, const Ctx& c) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    // "[json.exception.parse_error.101] parse error at line 1, ...": drop the bracketed id.
    std::string_view what = e.what();
    if (auto p = what.find("] "); p != std::string_view::npos) what.remove_prefix(p + 2);
    fail(c.code, str(c.lead, ": ", what));
  }
}

/// obj[key], or nullptr when absent or null. `obj` must be an object.
const json* member(const json& obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

/// Like member(), but the key matches case-insensitively (an exact match first), as Go's
/// decoder matches keys: containerd sends Go field names ("HostPort"), podman JSON tags.
const json* member_ci(const json& obj, std::string_view key) {
  if (auto* v = member(obj, key)) return v;
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (!it->is_null() && iequals(it.key(), key)) return &*it;
  }
  return nullptr;
}

const json& as_object(const Ctx& c, const json& v, std::string_view path) {
  if (!v.is_object()) bad(c, path, str(describe(v), " is not an object"));
  return v;
}

const json& as_array(const Ctx& c, const json& v, std::string_view path) {
  if (!v.is_array()) bad(c, path, str(describe(v), " is not a list"));
  return v;
}

const std::string& as_string(const Ctx& c, const json& v, std::string_view path) {
  if (!v.is_string()) bad(c, path, str(describe(v), " is not a string"));
  return v.get_ref<const std::string&>();
}

/// An integer in [lo, hi]; floats (even 1500.0), booleans and strings are refused like Go's
/// decoder refuses them for an int field.
int64_t as_int(const Ctx& c, const json& v, std::string_view path, int64_t lo, int64_t hi) {
  if (!v.is_number_integer()) bad(c, path, str(describe(v), " is not an integer"));
  int64_t n = std::numeric_limits<int64_t>::max();
  if (v.is_number_unsigned()) {
    auto u = v.get<uint64_t>();
    if (u < static_cast<uint64_t>(n)) n = static_cast<int64_t>(u);
  } else {
    n = v.get<int64_t>();
  }
  if (n < lo || n > hi) bad(c, path, str(describe(v), " is out of range ", lo, "..", hi));
  return n;
}

uint32_t as_u32(const Ctx& c, const json& v, std::string_view path) {
  return static_cast<uint32_t>(as_int(c, v, path, 0, std::numeric_limits<uint32_t>::max()));
}

IpAddr as_ip(const Ctx& c, const json& v, std::string_view path) {
  auto a = IpAddr::parse(as_string(c, v, path));
  if (!a) bad(c, path, str(describe(v), " is not an IP address"));
  return *a;
}

/// "address/length"; unlike Prefix::parse a bare address is refused, as Go's ParseCIDR does.
Prefix as_cidr(const Ctx& c, const json& v, std::string_view path) {
  const auto& s = as_string(c, v, path);
  auto p = s.find('/') == std::string::npos ? std::nullopt : Prefix::parse(s);
  if (!p) bad(c, path, str(describe(v), " is not a CIDR (address/length)"));
  return *p;
}

std::vector<std::string> as_strings(const Ctx& c, const json& v, std::string_view path) {
  std::vector<std::string> out;
  const auto& a = as_array(c, v, path);
  out.reserve(a.size());
  for (size_t i = 0; i < a.size(); ++i) out.push_back(as_string(c, a[i], index(path, i)));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Results

Result decode_result_value(const json& v, const Ctx& c, std::string_view base) {
  const auto& obj = as_object(c, v, base);
  Result r;
  if (auto* ver = member(obj, "cniVersion")) {
    auto path = join(base, "cniVersion");
    auto parsed = Version::parse(as_string(c, *ver, path));
    if (!parsed || !is_supported(*parsed)) {
      bad(c, path, str(describe(*ver), " is not a supported result version"));
    }
  }
  if (auto* ifs = member(obj, "interfaces")) {
    auto path = join(base, "interfaces");
    const auto& a = as_array(c, *ifs, path);
    for (size_t i = 0; i < a.size(); ++i) {
      auto at = index(path, i);
      const auto& o = as_object(c, a[i], at);
      ResultInterface ri;
      if (auto* x = member(o, "name")) ri.name = as_string(c, *x, join(at, "name"));
      if (auto* x = member(o, "mac")) ri.mac = as_string(c, *x, join(at, "mac"));
      if (auto* x = member(o, "mtu")) ri.mtu = as_u32(c, *x, join(at, "mtu"));
      if (auto* x = member(o, "sandbox")) ri.sandbox = as_string(c, *x, join(at, "sandbox"));
      if (auto* x = member(o, "socketPath")) {
        ri.socket_path = as_string(c, *x, join(at, "socketPath"));
      }
      if (auto* x = member(o, "pciID")) ri.pci_id = as_string(c, *x, join(at, "pciID"));
      r.interfaces.push_back(std::move(ri));
    }
  }
  if (auto* ips = member(obj, "ips")) {
    auto path = join(base, "ips");
    const auto& a = as_array(c, *ips, path);
    for (size_t i = 0; i < a.size(); ++i) {
      auto at = index(path, i);
      const auto& o = as_object(c, a[i], at);
      ResultIp ip;
      // 0.3.x/0.4.0 "version" ("4"/"6") is implied by the address and ignored.
      auto* addr = member(o, "address");
      if (!addr) bad(c, join(at, "address"), "missing");
      ip.address = as_cidr(c, *addr, join(at, "address"));
      if (auto* x = member(o, "gateway")) ip.gateway = as_ip(c, *x, join(at, "gateway"));
      if (auto* x = member(o, "interface")) {
        auto p = join(at, "interface");
        if (!x->is_number_integer()) bad(c, p, str(describe(*x), " is not an integer"));
        if (r.interfaces.empty()) bad(c, p, str(describe(*x), " given but interfaces is empty"));
        ip.interface =
            static_cast<int>(as_int(c, *x, p, 0, static_cast<int64_t>(r.interfaces.size()) - 1));
      }
      r.ips.push_back(ip);
    }
  }
  if (auto* routes = member(obj, "routes")) {
    auto path = join(base, "routes");
    const auto& a = as_array(c, *routes, path);
    for (size_t i = 0; i < a.size(); ++i) {
      auto at = index(path, i);
      const auto& o = as_object(c, a[i], at);
      ResultRoute rt;
      auto* dst = member(o, "dst");
      if (!dst) bad(c, join(at, "dst"), "missing");
      rt.dst = as_cidr(c, *dst, join(at, "dst"));
      if (auto* x = member(o, "gw")) rt.gw = as_ip(c, *x, join(at, "gw"));
      if (auto* x = member(o, "mtu")) rt.mtu = as_u32(c, *x, join(at, "mtu"));
      if (auto* x = member(o, "advmss")) rt.advmss = as_u32(c, *x, join(at, "advmss"));
      if (auto* x = member(o, "priority")) rt.priority = as_u32(c, *x, join(at, "priority"));
      if (auto* x = member(o, "table")) rt.table = as_u32(c, *x, join(at, "table"));
      if (auto* x = member(o, "scope")) rt.scope = as_u32(c, *x, join(at, "scope"));
      r.routes.push_back(rt);
    }
  }
  if (auto* dns = member(obj, "dns")) {
    auto path = join(base, "dns");
    const auto& o = as_object(c, *dns, path);
    if (auto* x = member(o, "nameservers")) {
      r.dns.nameservers = as_strings(c, *x, join(path, "nameservers"));
    }
    if (auto* x = member(o, "domain")) r.dns.domain = as_string(c, *x, join(path, "domain"));
    if (auto* x = member(o, "search")) r.dns.search = as_strings(c, *x, join(path, "search"));
    if (auto* x = member(o, "options")) r.dns.options = as_strings(c, *x, join(path, "options"));
  }
  return r;
}

std::string dump(const ojson& j) {
  return j.dump(-1, ' ', false, ojson::error_handler_t::replace);
}

// ---------------------------------------------------------------------------------------------
// Network configuration

/// The highest supported version among cniVersion and cniVersions (SPEC §1: the runtime picks
/// the highest; libcni's conf.go refuses non-string and malformed entries).
Version select_version(const json& doc, Command cmd) {
  std::optional<Version> highest;  // of everything declared, for the error message
  std::optional<Version> best;     // highest supported
  auto consider = [&](const json& v, std::string_view path) {
    auto parsed = Version::parse(as_string(kConfigDecode, v, path));
    if (!parsed) bad(kConfigDecode, path, str(describe(v), " is not a version (X.Y.Z)"));
    if (!highest || *parsed > *highest) highest = parsed;
    if (is_supported(*parsed) && (!best || *parsed > *best)) best = parsed;
  };
  if (auto* v = member(doc, "cniVersion");
      v && !(v->is_string() && v->get_ref<const std::string&>().empty())) {
    consider(*v, "cniVersion");
  }
  if (auto* vs = member(doc, "cniVersions")) {
    const auto& a = as_array(kConfigDecode, *vs, "cniVersions");
    for (size_t i = 0; i < a.size(); ++i) consider(a[i], index("cniVersions", i));
  }
  if (!highest) bad(kConfig, "cniVersion", "missing");
  if (!best) {
    std::string supported;
    for (const auto& s : kSupportedVersions) {
      supported += supported.empty() ? "\"" : " \"";
      supported += s.to_string();
      supported += '"';
    }
    fail(Code::kIncompatibleVersion,
         str("incompatible CNI versions; config is \"", highest->to_string(),
             "\", plugin supports [", supported, "]"));
  }
  auto require = [&](const Version& min, std::string_view verb) {
    if (*best < min) {
      fail(Code::kIncompatibleVersion,
           str("config version does not allow ", verb, " (config is ", best->to_string(), ", ",
               verb, " needs ", min.to_string(), " or later)"));
    }
  };
  if (cmd == Command::kCheck) require(kV040, "CHECK");
  if (cmd == Command::kGc) require(kV110, "GC");
  if (cmd == Command::kStatus) require(kV110, "STATUS");
  return *best;
}

IpamRange decode_range(const json& obj, std::string_view base) {
  IpamRange r;
  auto* subnet = member(obj, "subnet");
  if (!subnet) bad(kConfig, join(base, "subnet"), "missing");
  r.subnet = as_cidr(kConfig, *subnet, join(base, "subnet"));
  if (auto* x = member(obj, "rangeStart"))
    r.range_start = as_ip(kConfig, *x, join(base, "rangeStart"));
  if (auto* x = member(obj, "rangeEnd")) r.range_end = as_ip(kConfig, *x, join(base, "rangeEnd"));
  if (auto* x = member(obj, "gateway")) r.gateway = as_ip(kConfig, *x, join(base, "gateway"));
  return r;
}

IpamConf decode_ipam(const json* v) {
  IpamConf ipam;
  ipam.type = "knit";
  if (!v) return ipam;
  const auto& obj = as_object(kConfig, *v, "ipam");
  if (auto* t = member(obj, "type")) {
    const auto& type = as_string(kConfig, *t, "ipam.type");
    if (!type.empty() && type != "knit" && type != "host-local") {
      fail(Code::kUnsupportedField,
           str("unsupported field ipam.type: ", describe(*t),
               " (knit allocates addresses itself: use \"knit\" or \"host-local\")"));
    }
    if (!type.empty()) ipam.type = type;
  }
  // host-local's legacy single-range form comes first, as host-local puts it.
  if (member(obj, "subnet")) ipam.ranges.push_back(RangeSet{decode_range(obj, "ipam")});
  if (auto* ranges = member(obj, "ranges")) {
    const auto& sets = as_array(kConfig, *ranges, "ipam.ranges");
    for (size_t i = 0; i < sets.size(); ++i) {
      auto set_path = index("ipam.ranges", i);
      const auto& set = as_array(kConfig, sets[i], set_path);
      if (set.empty()) bad(kConfig, set_path, "empty range set");
      RangeSet rs;
      rs.reserve(set.size());
      for (size_t j = 0; j < set.size(); ++j) {
        auto at = index(set_path, j);
        rs.push_back(decode_range(as_object(kConfig, set[j], at), at));
      }
      ipam.ranges.push_back(std::move(rs));
    }
  }
  if (auto* routes = member(obj, "routes")) {
    const auto& a = as_array(kConfig, *routes, "ipam.routes");
    for (size_t i = 0; i < a.size(); ++i) {
      auto at = index("ipam.routes", i);
      const auto& o = as_object(kConfig, a[i], at);
      RouteConf rc;
      auto* dst = member(o, "dst");
      if (!dst) bad(kConfig, join(at, "dst"), "missing");
      rc.dst = as_cidr(kConfig, *dst, join(at, "dst"));
      if (auto* gw = member(o, "gw")) rc.gw = as_ip(kConfig, *gw, join(at, "gw"));
      ipam.routes.push_back(rc);
    }
  }
  if (auto* d = member(obj, "dataDir")) ipam.data_dir = as_string(kConfig, *d, "ipam.dataDir");
  return ipam;
}

/// "ip" or "ip/len" strings; the address is kept. Empty means "not requested".
std::vector<IpAddr> decode_ips(const Ctx& c, const json& v, std::string_view path) {
  std::vector<IpAddr> out;
  const auto& a = as_array(c, v, path);
  for (size_t i = 0; i < a.size(); ++i) {
    auto at = index(path, i);
    auto p = Prefix::parse(as_string(c, a[i], at));
    if (!p) bad(c, at, str(describe(a[i]), " is not an IP address"));
    out.push_back(p->addr());
  }
  return out;
}

/// A MAC string; "" means "not requested".
std::optional<Mac> decode_mac(const Ctx& c, const json& v, std::string_view path) {
  const auto& s = as_string(c, v, path);
  if (s.empty()) return std::nullopt;
  auto m = Mac::parse(s);
  if (!m) bad(c, path, str(describe(v), " is not a MAC address"));
  return m;
}

std::vector<PortMapping> decode_port_mappings(const json& v) {
  constexpr std::string_view kPath = "runtimeConfig.portMappings";
  std::vector<PortMapping> out;
  const auto& a = as_array(kConfig, v, kPath);
  for (size_t i = 0; i < a.size(); ++i) {
    auto at = index(kPath, i);
    const auto& o = as_object(kConfig, a[i], at);
    auto* hp = member_ci(o, "hostPort");
    constexpr auto kMin = std::numeric_limits<int64_t>::min();
    constexpr auto kMax = std::numeric_limits<int64_t>::max();
    int64_t host = hp ? as_int(kConfig, *hp, join(at, "hostPort"), kMin, kMax) : 0;
    if (host <= 0) continue;  // "no host port", as containerd filters them
    if (host > 65535)
      bad(kConfig, join(at, "hostPort"), str(describe(*hp), " is out of range 1..65535"));
    PortMapping pm;
    pm.host_port = static_cast<uint16_t>(host);
    auto* cp = member_ci(o, "containerPort");
    if (!cp) bad(kConfig, join(at, "containerPort"), "missing");
    pm.container_port =
        static_cast<uint16_t>(as_int(kConfig, *cp, join(at, "containerPort"), 1, 65535));
    if (auto* p = member_ci(o, "protocol")) {
      const auto& proto = as_string(kConfig, *p, join(at, "protocol"));
      if (proto.empty() || iequals(proto, "tcp")) {
        pm.protocol = Protocol::kTcp;
      } else if (iequals(proto, "udp")) {
        pm.protocol = Protocol::kUdp;
      } else if (iequals(proto, "sctp")) {
        pm.protocol = Protocol::kSctp;
      } else {
        bad(kConfig, join(at, "protocol"), str(describe(*p), " is not tcp, udp or sctp"));
      }
    }
    if (auto* ip = member_ci(o, "hostIP")) {
      if (!as_string(kConfig, *ip, join(at, "hostIP")).empty()) {
        pm.host_ip = as_ip(kConfig, *ip, join(at, "hostIP"));
      }
    }
    out.push_back(pm);
  }
  return out;
}

std::vector<NetConf::Attachment> decode_attachments(const json& v, std::string_view key) {
  std::vector<NetConf::Attachment> out;
  const auto& a = as_array(kConfig, v, key);
  out.reserve(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    auto at = index(key, i);
    const auto& o = as_object(kConfig, a[i], at);
    auto* id = member(o, "containerID");
    if (!id) bad(kConfig, join(at, "containerID"), "missing");
    auto* ifname = member(o, "ifname");
    if (!ifname) bad(kConfig, join(at, "ifname"), "missing");
    out.push_back({as_string(kConfig, *id, join(at, "containerID")),
                   as_string(kConfig, *ifname, join(at, "ifname"))});
  }
  return out;
}

[[noreturn]] void bad_env(std::string_view var, std::string_view value, std::string_view cause) {
  fail(Code::kInvalidEnv, str("invalid env variable ", var, ": ", quote(value), ' ', cause));
}

/// Requested IPs and MAC from CNI_ARGS IP= and MAC=, used only when no JSON source gave them.
std::vector<IpAddr> env_ips(const CniEnv& env) {
  std::vector<IpAddr> out;
  auto it = env.args.find("IP");
  if (it == env.args.end()) return out;
  for (auto item : split(it->second, ',')) {
    item = trim(item);
    if (item.empty()) continue;
    auto p = Prefix::parse(item);
    if (!p)
      bad_env("CNI_ARGS", str("IP=", it->second), str("has ", quote(item), ", not an IP address"));
    out.push_back(p->addr());
  }
  return out;
}

std::optional<Mac> env_mac(const CniEnv& env) {
  auto it = env.args.find("MAC");
  if (it == env.args.end() || it->second.empty()) return std::nullopt;
  auto m = Mac::parse(it->second);
  if (!m) bad_env("CNI_ARGS", str("MAC=", it->second), "is not a MAC address");
  return m;
}

void decode_plugin(const json& plugin, const CniEnv& env, NetConf& nc) {
  if (auto* x = member(plugin, "mtu"))
    nc.mtu = static_cast<uint32_t>(as_int(kConfig, *x, "mtu", 68, 65535));
  if (auto* x = member(plugin, "dataDir")) nc.data_dir = as_string(kConfig, *x, "dataDir");
  if (auto* x = member(plugin, "agentSocket"))
    nc.agent_socket = as_string(kConfig, *x, "agentSocket");
  if (auto* x = member(plugin, "agent")) {
    const auto& mode = as_string(kConfig, *x, "agent");
    if (mode == "off") {
      nc.agent_mode = AgentMode::kOff;
    } else if (mode == "best-effort") {
      nc.agent_mode = AgentMode::kBestEffort;
    } else if (mode == "required") {
      nc.agent_mode = AgentMode::kRequired;
    } else {
      bad(kConfig, "agent", str(describe(*x), " is not \"off\", \"best-effort\" or \"required\""));
    }
  }
  if (auto* x = member(plugin, "agentTimeoutMs"))
    nc.agent_timeout_ms = as_u32(kConfig, *x, "agentTimeoutMs");

  nc.ipam = decode_ipam(member(plugin, "ipam"));
  auto cmd = env.command;
  if (nc.ipam.ranges.empty() && (cmd == Command::kAdd || cmd == Command::kCheck ||
                                 cmd == Command::kStatus || cmd == Command::kGc)) {
    bad(kConfig, "ipam.ranges", "at least one range set is required");
  }

  // Capabilities come from runtimeConfig only; keys in any case (see member_ci).
  std::vector<IpAddr> rc_ips, args_ips;
  std::optional<Mac> rc_mac, args_mac;
  if (auto* rc = member(plugin, "runtimeConfig")) {
    const auto& o = as_object(kConfig, *rc, "runtimeConfig");
    if (auto* pm = member_ci(o, "portMappings")) nc.port_mappings = decode_port_mappings(*pm);
    if (auto* ips = member_ci(o, "ips")) rc_ips = decode_ips(kConfig, *ips, "runtimeConfig.ips");
    if (auto* mac = member_ci(o, "mac")) rc_mac = decode_mac(kConfig, *mac, "runtimeConfig.mac");
  }
  if (auto* args = member(plugin, "args")) {
    const auto& o = as_object(kConfig, *args, "args");
    if (auto* cni = member(o, "cni")) {
      const auto& co = as_object(kConfig, *cni, "args.cni");
      if (auto* ips = member(co, "ips")) args_ips = decode_ips(kConfig, *ips, "args.cni.ips");
      if (auto* mac = member(co, "mac")) args_mac = decode_mac(kConfig, *mac, "args.cni.mac");
    }
  }
  // runtimeConfig > args.cni > CNI_ARGS (CONVENTIONS.md: ignore the CNI_ARGS copy of a key
  // that args carries). CNI_ARGS is only parsed when it is the source used.
  if (!rc_ips.empty()) {
    nc.requested_ips = std::move(rc_ips);
  } else if (!args_ips.empty()) {
    nc.requested_ips = std::move(args_ips);
  } else {
    nc.requested_ips = env_ips(env);
  }
  if (rc_mac) {
    nc.requested_mac = rc_mac;
  } else if (args_mac) {
    nc.requested_mac = args_mac;
  } else {
    nc.requested_mac = env_mac(env);
  }

  if (auto* prev = member(plugin, "prevResult")) {
    nc.prev_result = decode_result_value(*prev, kConfigDecode, "prevResult");
  }
  // libcni sends both keys with the same list (cni#1101); the spelled-out one wins.
  if (auto* v = member(plugin, "cni.dev/valid-attachments")) {
    nc.valid_attachments = decode_attachments(*v, "cni.dev/valid-attachments");
  } else if (auto* legacy = member(plugin, "cni.dev/attachments")) {
    nc.valid_attachments = decode_attachments(*legacy, "cni.dev/attachments");
  }
}

// ---------------------------------------------------------------------------------------------
// Environment

void check_container_id(std::string_view id) {
  if (!is_identifier(id)) {
    bad_env("CNI_CONTAINERID", id,
            "must start with a letter or digit and contain only letters, digits, '_', '.' and "
            "'-'");
  }
}

/// IFNAMSIZ and the characters the kernel refuses in a name (dev_valid_name), as skel checks.
void check_ifname(std::string_view name) {
  if (name.size() > 15) bad_env("CNI_IFNAME", name, "is longer than 15 characters");
  if (name == "." || name == "..") bad_env("CNI_IFNAME", name, "is not a valid interface name");
  for (char c : name) {
    if (c == '/' || c == ':' || c == ' ' || (c >= '\t' && c <= '\r')) {
      bad_env("CNI_IFNAME", name, "contains '/', ':' or whitespace");
    }
  }
}

void parse_cni_args(std::string_view text, std::map<std::string, std::string>& out) {
  for (auto seg : split(text, ';')) {
    if (seg.empty()) continue;
    auto eq = seg.find('=');
    if (eq == 0 || eq == std::string_view::npos) {
      fail(Code::kInvalidEnv,
           str("invalid env variable CNI_ARGS: ", quote(seg), " is not KEY=VALUE"));
    }
    out.insert_or_assign(std::string(seg.substr(0, eq)), std::string(seg.substr(eq + 1)));
  }
}

}  // namespace

CniEnv decode_env(const Getenv& getenv) {
  auto get = [&](const char* key) -> std::string_view {
    const char* v = getenv(key);
    return v ? std::string_view(v) : std::string_view();
  };
  static constexpr std::pair<std::string_view, Command> kCommands[] = {
      {"ADD", Command::kAdd}, {"DEL", Command::kDel},       {"CHECK", Command::kCheck},
      {"GC", Command::kGc},   {"STATUS", Command::kStatus}, {"VERSION", Command::kVersion},
  };
  CniEnv env;
  auto cmd = get("CNI_COMMAND");
  if (cmd.empty()) fail(Code::kInvalidEnv, "required env variables [CNI_COMMAND] missing");
  bool known = false;
  for (const auto& [name, c] : kCommands) {
    if (cmd == name) {
      env.command = c;
      known = true;
    }
  }
  if (!known) bad_env("CNI_COMMAND", cmd, "is not ADD, DEL, CHECK, GC, STATUS or VERSION");

  bool attach = env.command == Command::kAdd || env.command == Command::kCheck ||
                env.command == Command::kDel;
  bool netns = env.command == Command::kAdd || env.command == Command::kCheck;
  auto id = get("CNI_CONTAINERID");
  auto ns = get("CNI_NETNS");
  auto ifname = get("CNI_IFNAME");
  std::string missing;
  auto require = [&](bool needed, std::string_view key, std::string_view value) {
    if (!needed || !value.empty()) return;
    if (!missing.empty()) missing += ',';
    missing += key;
  };
  require(attach, "CNI_CONTAINERID", id);
  require(netns, "CNI_NETNS", ns);
  require(attach, "CNI_IFNAME", ifname);
  if (!missing.empty())
    fail(Code::kInvalidEnv, str("required env variables [", missing, "] missing"));
  if (attach) {
    check_container_id(id);
    check_ifname(ifname);
  }
  env.container_id = id;
  env.netns = ns;
  env.ifname = ifname;
  env.path = get("CNI_PATH");
  parse_cni_args(get("CNI_ARGS"), env.args);
  return env;
}

NetConf decode_netconf(std::string_view stdin_text, const CniEnv& env) {
  json doc = parse_json(stdin_text, kConfigDecode);
  if (!doc.is_object()) bad(kConfigDecode, "", str(describe(doc), " is not an object"));
  NetConf nc;
  nc.cni_version = select_version(doc, env.command);
  if (env.command == Command::kVersion) return nc;

  const json* plugin = &doc;
  if (auto* plugins = member(doc, "plugins")) {
    const auto& a = as_array(kConfig, *plugins, "plugins");
    plugin = nullptr;
    for (size_t i = 0; i < a.size() && !plugin; ++i) {
      const auto& p = as_object(kConfig, a[i], index("plugins", i));
      if (auto* t = member(p, "type"); t && t->is_string() && *t == "knit") plugin = &p;
    }
    if (!plugin) bad(kConfig, "plugins", "no plugin of type \"knit\"");
  }

  auto* name = member(doc, "name");
  if (!name) bad(kConfig, "name", "missing");
  nc.name = as_string(kConfig, *name, "name");
  if (!is_identifier(nc.name)) {
    bad(kConfig, "name",
        str(describe(*name),
            " must start with a letter or digit and contain only letters, digits, '_', '.' and "
            "'-'"));
  }
  auto* type = member(*plugin, "type");
  if (!type) bad(kConfig, "type", "missing");
  nc.type = as_string(kConfig, *type, "type");
  if (nc.type != "knit") bad(kConfig, "type", str(describe(*type), " is not \"knit\""));

  decode_plugin(*plugin, env, nc);
  return nc;
}

std::string requested_version(std::string_view stdin_text) {
  try {
    auto doc = json::parse(stdin_text.begin(), stdin_text.end(), nullptr, false);
    if (doc.is_object()) {
      if (auto* v = member(doc, "cniVersion"); v && v->is_string()) {
        const auto& s = v->get_ref<const std::string&>();
        if (Version::parse(s)) return s;
      }
    }
  } catch (...) {
    // Best effort by contract: fall back to the default.
  }
  return kDefaultVersion;
}

Result decode_result(std::string_view json_text) {
  return decode_result_value(parse_json(json_text, kResultDecode), kResultDecode, "");
}

std::string render_result(const Result& r, const Version& v) {
  const bool v110 = v >= kV110;
  const bool legacy = v < kV100;  // 0.3.x/0.4.0: ips[].version
  ojson j = ojson::object();
  j["cniVersion"] = v.to_string();
  if (!r.interfaces.empty()) {
    auto& a = j["interfaces"] = ojson::array();
    for (const auto& i : r.interfaces) {
      ojson o = ojson::object();
      o["name"] = i.name;
      if (!i.mac.empty()) o["mac"] = i.mac;
      if (v110 && i.mtu) o["mtu"] = *i.mtu;
      if (!i.sandbox.empty()) o["sandbox"] = i.sandbox;
      if (v110 && !i.socket_path.empty()) o["socketPath"] = i.socket_path;
      if (v110 && !i.pci_id.empty()) o["pciID"] = i.pci_id;
      a.push_back(std::move(o));
    }
  }
  if (!r.ips.empty()) {
    auto& a = j["ips"] = ojson::array();
    for (const auto& ip : r.ips) {
      ojson o = ojson::object();
      if (legacy) o["version"] = ip.address.addr().is_v4() ? "4" : "6";
      if (ip.interface) o["interface"] = *ip.interface;
      o["address"] = ip.address.to_string();
      if (ip.gateway) o["gateway"] = ip.gateway->to_string();
      a.push_back(std::move(o));
    }
  }
  if (!r.routes.empty()) {
    auto& a = j["routes"] = ojson::array();
    for (const auto& rt : r.routes) {
      ojson o = ojson::object();
      o["dst"] = rt.dst.to_string();
      if (rt.gw) o["gw"] = rt.gw->to_string();
      if (v110) {
        if (rt.mtu) o["mtu"] = *rt.mtu;
        if (rt.advmss) o["advmss"] = *rt.advmss;
        if (rt.priority) o["priority"] = *rt.priority;
        if (rt.table) o["table"] = *rt.table;
        if (rt.scope) o["scope"] = *rt.scope;
      }
      a.push_back(std::move(o));
    }
  }
  // libcni always emits "dns" (omitempty does not apply to a struct), so do we.
  ojson dns = ojson::object();
  if (!r.dns.nameservers.empty()) dns["nameservers"] = r.dns.nameservers;
  if (!r.dns.domain.empty()) dns["domain"] = r.dns.domain;
  if (!r.dns.search.empty()) dns["search"] = r.dns.search;
  if (!r.dns.options.empty()) dns["options"] = r.dns.options;
  j["dns"] = std::move(dns);
  return dump(j);
}

std::string render_error(std::string_view version, const Error& e) {
  ojson j = ojson::object();
  j["cniVersion"] = version.empty() ? std::string_view(kDefaultVersion) : version;
  j["code"] = static_cast<int>(e.code());
  j["msg"] = e.what();
  if (!e.details().empty()) j["details"] = e.details();
  return dump(j);
}

std::string render_version(std::string_view version) {
  ojson j = ojson::object();
  j["cniVersion"] = version.empty() ? std::string_view(kDefaultVersion) : version;
  auto& a = j["supportedVersions"] = ojson::array();
  for (const auto& v : kSupportedVersions) a.push_back(v.to_string());
  return dump(j);
}

}  // namespace knit::conf
