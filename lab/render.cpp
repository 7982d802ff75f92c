#include "lab/render.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/str.hpp"
#include "lab/args.hpp"
#include "lab/cni_call.hpp"

namespace knit::lab {

namespace {

using Json = nlohmann::ordered_json;

Json ips_json(const std::vector<IpAddr>& ips) {
  Json a = Json::array();
  for (const auto& ip : ips) a.push_back(ip.to_string());
  return a;
}

Json port_json(const PortRef& p) {
  if (const auto* n = std::get_if<uint16_t>(&p)) return *n;
  return std::get<std::string>(p);
}

Json proc_json(const ProcRef& p) {
  return Json{{"pid", p.pid}, {"startTime", p.start_time}};
}

Json state_json(const LabState& s) {
  Json pods = Json::array();
  for (const auto& p : s.pods) {
    Json ports = Json::array();
    for (const auto& cp : p.ports) {
      ports.push_back(Json{{"name", cp.name},
                           {"port", cp.port},
                           {"protocol", std::string(watcher::to_string(cp.protocol))}});
    }
    Json j{{"namespace", p.namespace_}, {"name", p.name},         {"containerID", p.container_id},
           {"netns", p.netns},          {"ips", ips_json(p.ips)}, {"ports", std::move(ports)}};
    if (!p.error.empty()) j["error"] = p.error;
    pods.push_back(std::move(j));
  }
  Json agent{{"enabled", s.agent},
             {"socket", s.agent_socket},
             {"pid", s.agent_proc.pid},
             {"startTime", s.agent_proc.start_time}};
  return Json{{"name", s.name},
              {"dir", s.dir},
              {"runDir", s.run_dir},
              {"log", s.log},
              {"controlSocket", s.control_socket},
              {"node", Json{{"netns", s.node_netns}, {"ips", ips_json(s.node_ips)}}},
              {"supervisor", proc_json(s.supervisor)},
              {"agent", std::move(agent)},
              {"manifestsDigest", s.manifests_digest},
              {"podCIDRs", s.pod_cidrs},
              {"pods", std::move(pods)}};
}

// ---- decoding ---------------------------------------------------------------------------------

[[noreturn]] void bad(std::string_view where, std::string_view why) {
  fail(Code::kDecode, str("decode lab state: ", where, ": ", why));
}

const Json& member(const Json& j, const char* key, std::string_view where) {
  auto it = j.find(key);
  if (it == j.end()) bad(where, str("missing \"", key, "\""));
  return *it;
}

std::string get_str(const Json& j, const char* key, std::string_view where, bool optional = false) {
  auto it = j.find(key);
  if (it == j.end() && optional) return {};
  const Json& v = member(j, key, where);
  if (!v.is_string()) bad(where, str("\"", key, "\" is not a string"));
  return v.get<std::string>();
}

template <class T>
T get_uint(const Json& j, const char* key, std::string_view where) {
  const Json& v = member(j, key, where);
  if (!v.is_number_unsigned()) bad(where, str("\"", key, "\" is not an unsigned number"));
  return v.get<T>();
}

std::vector<IpAddr> get_ips(const Json& j, std::string_view where) {
  const Json& a = member(j, "ips", where);
  if (!a.is_array()) bad(where, "\"ips\" is not an array");
  std::vector<IpAddr> out;
  for (const auto& v : a) {
    auto ip = v.is_string() ? IpAddr::parse(v.get<std::string>()) : std::nullopt;
    if (!ip) bad(where, str("bad address in \"ips\": ", v.dump()));
    out.push_back(*ip);
  }
  return out;
}

ProcRef get_proc(const Json& j, std::string_view where) {
  return {get_uint<int>(j, "pid", where), get_uint<uint64_t>(j, "startTime", where)};
}

}  // namespace

std::string encode_state(const LabState& s) {
  return state_json(s).dump(2) + "\n";
}

LabState decode_state(std::string_view text) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, false);
  if (!j.is_object()) fail(Code::kDecode, "decode lab state: not a JSON object");
  LabState s;
  s.name = get_str(j, "name", "state");
  s.dir = get_str(j, "dir", "state");
  s.run_dir = get_str(j, "runDir", "state");
  s.log = get_str(j, "log", "state");
  s.control_socket = get_str(j, "controlSocket", "state");
  const Json& node = member(j, "node", "state");
  s.node_netns = get_str(node, "netns", "node");
  s.node_ips = get_ips(node, "node");
  s.supervisor = get_proc(member(j, "supervisor", "state"), "supervisor");
  const Json& agent = member(j, "agent", "state");
  const Json& enabled = member(agent, "enabled", "agent");
  if (!enabled.is_boolean()) bad("agent", "\"enabled\" is not a boolean");
  s.agent = enabled.get<bool>();
  s.agent_socket = get_str(agent, "socket", "agent");
  s.agent_proc = get_proc(agent, "agent");
  s.manifests_digest = get_str(j, "manifestsDigest", "state");
  // Absent in the state of a lab from before --pod-cidr: it used the default ranges.
  s.pod_cidrs = pod_cidrs({});
  if (auto it = j.find("podCIDRs"); it != j.end()) {
    if (!it->is_array()) bad("state", "\"podCIDRs\" is not an array");
    s.pod_cidrs.clear();
    for (const auto& c : *it) {
      if (!c.is_string() || !Prefix::parse(c.get<std::string>())) {
        bad("state", str("bad CIDR in \"podCIDRs\": ", c.dump()));
      }
      s.pod_cidrs.push_back(c.get<std::string>());
    }
  }
  const Json& pods = member(j, "pods", "state");
  if (!pods.is_array()) bad("state", "\"pods\" is not an array");
  for (size_t i = 0; i < pods.size(); ++i) {
    std::string where = str("pods[", i, "]");
    const Json& pj = pods[i];
    if (!pj.is_object()) bad(where, "not an object");
    LabPod p;
    p.namespace_ = get_str(pj, "namespace", where);
    p.name = get_str(pj, "name", where);
    p.container_id = get_str(pj, "containerID", where);
    p.netns = get_str(pj, "netns", where);
    p.ips = get_ips(pj, where);
    p.error = get_str(pj, "error", where, true);
    const Json& ports = member(pj, "ports", where);
    if (!ports.is_array()) bad(where, "\"ports\" is not an array");
    for (const auto& cj : ports) {
      ContainerPort cp;
      cp.name = get_str(cj, "name", where);
      cp.port = get_uint<uint16_t>(cj, "port", where);
      auto proto = parse_protocol(get_str(cj, "protocol", where));
      if (!proto) bad(where, "bad protocol in \"ports\"");
      cp.protocol = *proto;
      p.ports.push_back(std::move(cp));
    }
    s.pods.push_back(std::move(p));
  }
  return s;
}

// ---- status -----------------------------------------------------------------------------------

std::string render_status_json(const LabState& s, bool running) {
  Json j{{"running", running}};
  Json state = state_json(s);
  for (auto& [k, v] : state.items()) j[k] = std::move(v);
  return j.dump(2) + "\n";
}

namespace {

/// Left-aligned columns separated by two spaces; the last column is not padded.
std::string columns(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    if (width.size() < r.size()) width.resize(r.size(), 0);
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line.append(width[i] - r[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string join_words(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += str(out.empty() ? "" : " ", w);
  return out;
}

std::string join_ips(const std::vector<IpAddr>& ips) {
  std::string out;
  for (const auto& ip : ips) out += str(out.empty() ? "" : " ", ip.to_string());
  return out;
}

}  // namespace

std::string render_status_table(const LabState& s, bool running) {
  std::string out = str(
      "lab ", s.name, ": ",
      running ? str("up (supervisor pid ", s.supervisor.pid, ")")
              : str("NOT RUNNING (supervisor gone; knit lab down --name ", s.name, " cleans up)"),
      "\n");
  std::vector<std::vector<std::string>> head = {
      {"  manifests", s.dir},
      {"  node", str(s.node_netns, "  ", join_ips(s.node_ips))},
      {"  pod CIDRs", join_words(s.pod_cidrs)},
      {"  agent", !s.agent           ? std::string("off (--no-agent)")
                  : s.agent_proc.pid ? str("pid ", s.agent_proc.pid, ", socket ", s.agent_socket)
                                     : str("not running, socket ", s.agent_socket)},
      {"  log", s.log},
  };
  out += columns(head);
  out += "\n";
  std::vector<std::vector<std::string>> rows = {{"NAMESPACE", "NAME", "IPS", "NETNS", "PORTS"}};
  for (const auto& p : s.pods) {
    std::string ports;
    for (const auto& cp : p.ports) ports += str(ports.empty() ? "" : " ", watcher::to_string(cp));
    rows.push_back({p.namespace_, p.name,
                    p.error.empty() ? join_ips(p.ips) : str("ERROR: ", p.error),
                    p.netns.empty() ? "-" : p.netns, ports.empty() ? "-" : ports});
  }
  out += columns(rows);
  if (s.pods.empty()) out += "(no pods in the manifests)\n";
  return out;
}

// ---- matrix -----------------------------------------------------------------------------------

std::string describe_port(const PortRef& port, Protocol protocol) {
  return str(watcher::to_string(protocol), " port ", watcher::to_string(port));
}

std::string render_matrix_json(const Matrix& m) {
  Json matrix = Json::object();
  for (size_t i = 0; i < m.pods.size(); ++i) {
    Json row = Json::object();
    for (size_t k = 0; k < m.pods.size(); ++k) row[m.pods[k]] = m.cells[i][k] == Cell::kReachable;
    matrix[m.pods[i]] = std::move(row);
  }
  Json j{{"port", port_json(m.port)},
         {"protocol", std::string(watcher::to_string(m.protocol))},
         {"pods", m.pods},
         {"matrix", std::move(matrix)}};
  return j.dump() + "\n";
}

std::string render_matrix_table(const Matrix& m) {
  const size_t n = m.pods.size();
  std::string out =
      str(describe_port(m.port, m.protocol), " over IPv", m.family, " (rows: from, columns: to)\n");
  if (n == 0) return out + "(no pods)\n";
  // Column headers are the pod names when they are short, else numbers with a key.
  size_t longest = 0;
  for (const auto& p : m.pods) longest = std::max(longest, p.size());
  bool numbered = longest > 12;
  std::vector<std::string> head(n);
  for (size_t i = 0; i < n; ++i) head[i] = numbered ? str(i + 1) : m.pods[i];
  std::vector<std::string> label(n);
  for (size_t i = 0; i < n; ++i) label[i] = numbered ? str(i + 1, "  ", m.pods[i]) : m.pods[i];
  size_t label_w = 0;
  for (const auto& l : label) label_w = std::max(label_w, l.size());

  std::string line(label_w + 2, ' ');
  std::vector<size_t> col_w(n);
  for (size_t i = 0; i < n; ++i) {
    col_w[i] = std::max<size_t>(head[i].size(), 1);
    line += head[i] + "  ";
  }
  while (line.back() == ' ') line.pop_back();
  out += line + "\n";
  size_t reachable = 0, probed = 0;
  bool seen[4] = {};
  for (size_t i = 0; i < n; ++i) {
    line = label[i];
    line.append(label_w + 2 - label[i].size(), ' ');
    for (size_t k = 0; k < n; ++k) {
      Cell c = m.cells[i][k];
      seen[static_cast<int>(c)] = true;
      char g = c == Cell::kReachable ? (i == k ? '-' : '.')
               : c == Cell::kBlocked ? 'X'
               : c == Cell::kNoPort  ? '?'
                                     : '!';
      if (c == Cell::kReachable) ++reachable;
      if (c == Cell::kReachable || c == Cell::kBlocked) ++probed;
      // Centre the glyph under its header.
      size_t left = (col_w[k] - 1) / 2;
      line.append(left, ' ');
      line.push_back(g);
      line.append(col_w[k] - 1 - left + 2, ' ');
    }
    while (line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  out += "\n. reachable   X blocked   - self (reachable)";
  if (seen[static_cast<int>(Cell::kNoPort)]) out += "   ? no such port";
  if (seen[static_cast<int>(Cell::kNoAddress)]) out += str("   ! no IPv", m.family, " address");
  out += str("\n", reachable, " of ", n * n, " reachable");
  if (probed < n * n) out += str(" (", n * n - probed, " not probed)");
  out += "\n";
  // Say why a column is '?' or '!' (once per destination).
  for (size_t k = 0; k < n; ++k) {
    bool no_port = false;
    for (size_t i = 0; i < n; ++i) no_port |= m.cells[i][k] == Cell::kNoPort;
    // A pod without an address is '!' in its row and column, its own cell included.
    bool no_addr = m.cells[k][k] == Cell::kNoAddress;
    if (no_port) {
      out += str(m.pods[k], " has no ", watcher::to_string(m.protocol), " port named ",
                 watcher::to_string(m.port), ": unreachable by that name\n");
    } else if (no_addr) {
      out += str(m.pods[k], " has no IPv", m.family, " address (see knit lab status)\n");
    }
  }
  return out;
}

}  // namespace knit::lab
