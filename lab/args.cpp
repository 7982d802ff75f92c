#include "lab/args.hpp"

#include <cctype>
#include <utility>

#include "core/error.hpp"
#include "core/str.hpp"

namespace knit::lab {

const std::string_view kUsage =
    "knit lab: a NetworkPolicy sandbox on this machine (real kernel, no cluster)\n"
    "\n"
    "  knit lab up --dir DIR [--name N] [--no-agent] [--pod-cidr CIDR]...\n"
    "      Reads Namespaces, Pods and NetworkPolicies from DIR (YAML or JSON), creates a node\n"
    "      network namespace, wires every Pod through knit's CNI ADD, serves every declared\n"
    "      containerPort (TCP, UDP, SCTP) inside each pod and runs `knit agent` on DIR. Files\n"
    "      added, changed or removed in DIR take effect while the lab is up. --pod-cidr (one\n"
    "      per family) replaces that family's pod range (10.77.0.0/16, fd00:77::/64), e.g.\n"
    "      when it collides with a network of this machine's.\n"
    "  knit lab status [--name N] [-o table|json]\n"
    "      Pods with their addresses and network namespaces (nsenter --net=PATH ...).\n"
    "  knit lab probe [--name N] [--port P] [--protocol TCP|UDP|SCTP] [--family 4|6]\n"
    "                 [--timeout 1s] [-o table|json]\n"
    "      Waits until the agent has applied DIR as it is now, then probes every pod from every\n"
    "      pod and prints the reachability matrix. P is a number (default 80) or a port name\n"
    "      resolved per destination pod.\n"
    "  knit lab down [--name N]\n"
    "      Removes everything the lab made. Safe to repeat, and after a crash.\n"
    "\n"
    "The default lab name is \"default\". Needs root. Nothing is changed in the machine's own\n"
    "network namespace.\n";

bool valid_lab_name(std::string_view name) {
  if (name.empty() || name.size() > 32 || name[0] == '-') return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

std::optional<PortRef> parse_port_ref(std::string_view s) {
  uint64_t n = 0;
  if (parse_uint(s, n)) {
    if (n == 0 || n > 65535) return std::nullopt;
    return PortRef(static_cast<uint16_t>(n));
  }
  if (s.empty() || s.size() > 15 || s.front() == '-' || s.back() == '-' ||
      s.find("--") != std::string_view::npos) {
    return std::nullopt;
  }
  bool letter = false;
  for (char c : s) {
    if (c >= 'a' && c <= 'z') {
      letter = true;
    } else if (!((c >= '0' && c <= '9') || c == '-')) {
      return std::nullopt;
    }
  }
  if (!letter) return std::nullopt;
  return PortRef(std::string(s));
}

std::optional<Protocol> parse_protocol(std::string_view s) {
  std::string up;
  for (char c : s) up.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  if (up == "TCP") return Protocol::kTcp;
  if (up == "UDP") return Protocol::kUdp;
  if (up == "SCTP") return Protocol::kSctp;
  return std::nullopt;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view s) {
  uint64_t scale = 1000;  // milliseconds per unit
  if (s.size() > 2 && s.substr(s.size() - 2) == "ms") {
    scale = 1;
    s.remove_suffix(2);
  } else if (s.size() > 1 && s.back() == 's') {
    s.remove_suffix(1);
  }
  // Fixed point with up to three decimals, so "1.5s" needs no floating point parsing.
  auto dot = s.find('.');
  uint64_t whole = 0, frac = 0, frac_scale = 1;
  if (!parse_uint(s.substr(0, dot), whole)) return std::nullopt;
  if (dot != std::string_view::npos) {
    auto f = s.substr(dot + 1);
    if (f.empty() || f.size() > 3 || !parse_uint(f, frac)) return std::nullopt;
    for (size_t i = 0; i < f.size(); ++i) frac_scale *= 10;
  }
  if (whole > 600000) return std::nullopt;
  uint64_t ms = whole * scale + frac * scale / frac_scale;
  if (ms == 0 || ms > 600000) return std::nullopt;
  return std::chrono::milliseconds(ms);
}

namespace {

[[noreturn]] void usage_error(std::string msg) {
  fail(Code::kInvalidConfig, str(msg, " (see knit lab help)"));
}

/// Walks the arguments; splits "--opt=value" and "-ovalue".
class Cursor {
 public:
  explicit Cursor(const std::vector<std::string_view>& args) : args_(args) {}
  bool done() const { return i_ >= args_.size(); }
  /// The next option name ("--name", "-o"); its inline value, if any, is kept for value().
  std::string_view next_option() {
    std::string_view a = args_[i_++];
    inline_.reset();
    if (a.starts_with("--")) {
      if (auto eq = a.find('='); eq != std::string_view::npos) {
        inline_ = a.substr(eq + 1);
        return a.substr(0, eq);
      }
    } else if (a.starts_with("-o") && a.size() > 2) {
      inline_ = a.substr(2);
      return a.substr(0, 2);
    }
    return a;
  }
  std::string_view value(std::string_view opt) {
    if (inline_) return *std::exchange(inline_, std::nullopt);
    if (done()) usage_error(str("option ", opt, " needs a value"));
    return args_[i_++];
  }
  void no_value(std::string_view opt) {
    if (inline_) usage_error(str("option ", opt, " takes no value"));
  }

 private:
  const std::vector<std::string_view>& args_;
  size_t i_ = 0;
  std::optional<std::string_view> inline_;
};

std::string lab_name(std::string_view v) {
  if (!valid_lab_name(v)) {
    usage_error(str("--name \"", v,
                    "\": a lab name is 1 to 32 of a-z, 0-9 and '-', starting with a letter or "
                    "digit"));
  }
  return std::string(v);
}

Output output(std::string_view v) {
  if (v == "table") return Output::kTable;
  if (v == "json") return Output::kJson;
  usage_error(str("-o \"", v, "\": expected table or json"));
}

}  // namespace

Args parse_args(const std::vector<std::string_view>& args) {
  if (args.empty()) usage_error("missing subcommand: up, down, status or probe");
  std::string_view sub = args[0];
  if (sub == "help" || sub == "-h" || sub == "--help") return HelpArgs{};
  std::vector<std::string_view> rest(args.begin() + 1, args.end());
  Cursor c(rest);
  UpArgs up;
  DownArgs down;
  StatusArgs status;
  ProbeArgs probe;
  bool is_up = sub == "up", is_down = sub == "down", is_status = sub == "status",
       is_probe = sub == "probe";
  if (!is_up && !is_down && !is_status && !is_probe) {
    usage_error(str("unknown subcommand \"", sub, "\": expected up, down, status or probe"));
  }
  while (!c.done()) {
    std::string_view opt = c.next_option();
    if (opt == "-h" || opt == "--help") return HelpArgs{};
    if (opt == "--name") {
      std::string n = lab_name(c.value(opt));
      up.name = down.name = status.name = probe.name = n;
    } else if (is_up && opt == "--dir") {
      up.dir = std::string(c.value(opt));
      if (up.dir.empty()) usage_error("--dir: empty path");
    } else if (is_up && opt == "--pod-cidr") {
      auto v = c.value(opt);
      auto p = Prefix::parse(v);
      if (!p) usage_error(str("--pod-cidr \"", v, "\": not a CIDR"));
      // Network, gateway (the first address) and broadcast are never handed out: a pod needs a
      // fourth. The lab's node is on 10.99.0.0/24 and fd99::/64.
      if (p->len() > p->addr().bits() - 2) {
        usage_error(str("--pod-cidr \"", v, "\": too small (/", p->addr().bits() - 2, " at most)"));
      }
      for (const auto& have : up.pod_cidrs) {
        if (Prefix::parse(have)->addr().family() == p->addr().family()) {
          usage_error(str("--pod-cidr \"", v, "\": one range per address family"));
        }
      }
      up.pod_cidrs.push_back(p->network().to_string());
    } else if (is_up && opt == "--no-agent") {
      c.no_value(opt);
      up.agent = false;
    } else if ((is_status || is_probe) && (opt == "-o" || opt == "--output")) {
      status.output = probe.output = output(c.value(opt));
    } else if (is_probe && opt == "--port") {
      auto v = c.value(opt);
      auto p = parse_port_ref(v);
      if (!p) usage_error(str("--port \"", v, "\": expected 1-65535 or a port name"));
      probe.port = *p;
    } else if (is_probe && opt == "--protocol") {
      auto v = c.value(opt);
      auto p = parse_protocol(v);
      if (!p) usage_error(str("--protocol \"", v, "\": expected TCP, UDP or SCTP"));
      probe.protocol = *p;
    } else if (is_probe && opt == "--family") {
      auto v = c.value(opt);
      if (v == "4" || v == "ipv4") {
        probe.family = 4;
      } else if (v == "6" || v == "ipv6") {
        probe.family = 6;
      } else {
        usage_error(str("--family \"", v, "\": expected 4 or 6"));
      }
    } else if (is_probe && opt == "--timeout") {
      auto v = c.value(opt);
      auto d = parse_duration(v);
      if (!d) usage_error(str("--timeout \"", v, "\": expected a duration such as 500ms or 2s"));
      probe.timeout = *d;
    } else {
      usage_error(str("knit lab ", sub, ": unknown option \"", opt, "\""));
    }
  }
  if (is_up) {
    if (up.dir.empty()) usage_error("knit lab up: --dir DIR is required");
    return up;
  }
  if (is_down) return down;
  if (is_status) return status;
  return probe;
}

}  // namespace knit::lab
