#include "test/oracle/scenario.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>

#include "test/oracle/yaml_json.hpp"

namespace knit::test::oracle {
namespace {

using nlohmann::json;

std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

void only_keys(const json& j, const std::set<std::string>& allowed, const std::string& what) {
  if (!j.is_object()) throw std::runtime_error(what + ": expected a mapping");
  for (const auto& [key, _] : j.items()) {
    if (!allowed.count(key)) throw std::runtime_error(what + ": unknown key '" + key + "'");
  }
}

/// The prefix of length `len` containing `ip`, host bits cleared, as "addr/len".
std::string prefix_of(const std::string& ip, int len) {
  std::array<unsigned char, 16> bytes{};
  int family = AF_INET;
  if (inet_pton(AF_INET, ip.c_str(), bytes.data()) != 1) {
    family = AF_INET6;
    if (inet_pton(AF_INET6, ip.c_str(), bytes.data()) != 1) {
      throw std::runtime_error("not an IP address: '" + ip + "'");
    }
  }
  int bits = family == AF_INET ? 32 : 128;
  if (len < 0) len = bits;
  if (len > bits) throw std::runtime_error("prefix length " + std::to_string(len) + " too long");
  for (int i = len; i < bits; ++i) bytes[i / 8] &= static_cast<unsigned char>(~(0x80 >> (i % 8)));
  char text[INET6_ADDRSTRLEN];
  inet_ntop(family, bytes.data(), text, sizeof text);
  return std::string(text) + "/" + std::to_string(len);
}

std::string substitute_string(const std::string& s, const IpOf& ip_of) {
  static const std::regex kPlaceholder(R"(\$\{([^}]*)\})");
  static const std::regex kForm(R"((ip|cidr) ([a-z0-9.-]+/[a-z0-9.-]+)( [0-9]{1,3})?)");
  std::string out;
  auto begin = std::sregex_iterator(s.begin(), s.end(), kPlaceholder);
  size_t last = 0;
  for (auto it = begin; it != std::sregex_iterator(); ++it) {
    const std::smatch& m = *it;
    std::smatch form;
    std::string body = m[1].str();
    if (!std::regex_match(body, form, kForm) || (form[1] == "ip" && form[3].matched)) {
      throw std::runtime_error("malformed placeholder '" + m[0].str() + "'");
    }
    std::string ip = ip_of(form[2].str());
    out += s.substr(last, m.position(0) - last);
    if (form[1] == "ip") {
      out += ip;
    } else {
      out += prefix_of(ip, form[3].matched ? std::stoi(form[3].str().substr(1)) : -1);
    }
    last = m.position(0) + m.length(0);
  }
  return out + s.substr(last);
}

Probe probe_of(const json& j, const std::string& what) {
  only_keys(j, {"port", "protocol", "expect"}, what);
  Probe p;
  const json& port = j.at("port");
  if (port.is_number_integer()) {
    p.port = port.get<int>();
  } else {
    p.port = port.get<std::string>();
  }
  p.protocol = protocol_from_string(j.value("protocol", std::string("TCP")));
  p.expect = parse_table(j.at("expect").get<std::string>());
  return p;
}

}  // namespace

Table parse_table(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::vector<std::string>> rows;
  for (std::string line; std::getline(in, line);) {
    auto w = words(line);
    if (!w.empty()) rows.push_back(std::move(w));
  }
  if (rows.empty() || rows[0].size() < 2 || rows[0][0] != "from\\to") {
    throw std::runtime_error("table: the header must be 'from\\to <pod>...'");
  }
  Table t;
  t.pods.assign(rows[0].begin() + 1, rows[0].end());
  if (rows.size() != t.pods.size() + 1) {
    throw std::runtime_error("table: " + std::to_string(t.pods.size()) + " pods in the header, " +
                             std::to_string(rows.size() - 1) + " rows");
  }
  for (size_t r = 0; r < t.pods.size(); ++r) {
    const auto& row = rows[r + 1];
    if (row[0] != t.pods[r]) {
      throw std::runtime_error("table: row " + std::to_string(r + 1) + " is '" + row[0] +
                               "', expected '" + t.pods[r] + "' (header order)");
    }
    if (row.size() != t.pods.size() + 1) {
      throw std::runtime_error("table: row " + row[0] + " has " + std::to_string(row.size() - 1) +
                               " cells");
    }
    for (size_t c = 0; c < t.pods.size(); ++c) {
      const std::string& cell = row[c + 1];
      bool self = r == c;
      if (self ? cell != "-" : cell != "." && cell != "X") {
        throw std::runtime_error("table: cell " + t.pods[r] + " -> " + t.pods[c] + " is '" + cell +
                                 "', expected " + (self ? "'-'" : "'.' or 'X'"));
      }
      if (!self) t.cells[{t.pods[r], t.pods[c]}] = cell == ".";
    }
  }
  return t;
}

std::string render_table(const Table& t) {
  size_t col = 1;
  for (const auto& p : t.pods) col = std::max(col, p.size());
  size_t first = std::max(col, std::string("from\\to").size());
  auto pad = [](const std::string& s, size_t w) { return s + std::string(w - s.size(), ' '); };
  auto line = [&](const std::string& head, const std::vector<std::string>& cells) {
    std::string out = pad(head, first);
    for (const auto& c : cells) out += " " + pad(c, col);
    while (out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string out = line("from\\to", t.pods);
  for (const auto& from : t.pods) {
    std::vector<std::string> cells;
    for (const auto& to : t.pods) {
      auto it = t.cells.find({from, to});
      cells.push_back(from == to ? "-" : it == t.cells.end() ? "?" : it->second ? "." : "X");
    }
    out += line(from, cells);
  }
  return out;
}

std::vector<std::string> table_diff(const Table& expected, const Table& observed) {
  std::vector<std::string> out;
  for (const auto& from : expected.pods) {
    for (const auto& to : expected.pods) {
      if (from == to) continue;
      bool want = expected.cells.at({from, to});
      auto it = observed.cells.find({from, to});
      std::string cell = from + " -> " + to + ": expected " + (want ? "." : "X");
      if (it == observed.cells.end()) {
        out.push_back(cell + ", not observed");
      } else if (it->second != want) {
        out.push_back(cell + ", observed " + (it->second ? "." : "X"));
      }
    }
  }
  return out;
}

std::string object_key(const json& object) {
  if (!object.is_object() || !object.contains("kind") || !object.contains("metadata") ||
      !object["metadata"].contains("name")) {
    throw std::runtime_error("object without kind or metadata.name: " + object.dump());
  }
  std::string kind = object["kind"].get<std::string>();
  std::string name = object["metadata"]["name"].get<std::string>();
  if (kind == "Namespace" || kind == "Node") return kind + "/" + name;
  return kind + "/" + object["metadata"].value("namespace", std::string("default")) + "/" + name;
}

std::string port_string(const PortRef& port) {
  if (const int* n = std::get_if<int>(&port)) return std::to_string(*n);
  return std::get<std::string>(port);
}

Scenario load_scenario(const std::string& path) {
  try {
    auto docs = yaml_file(path);
    if (docs.size() != 1) throw std::runtime_error("expected exactly one YAML document");
    const json& doc = docs[0];
    only_keys(doc, {"name", "upstream", "topology", "notes", "steps"}, "scenario");
    Scenario s;
    s.file = path;
    s.name = doc.at("name").get<std::string>();
    s.upstream = doc.at("upstream").get<std::string>();
    const json& steps = doc.at("steps");
    if (!steps.is_array() || steps.empty()) throw std::runtime_error("steps: none");
    for (size_t i = 0; i < steps.size(); ++i) {
      std::string what = "steps[" + std::to_string(i) + "]";
      only_keys(steps[i], {"apply", "delete", "probes", "notes"}, what);
      Step step;
      for (const json& obj : steps[i].value("apply", json::array())) {
        object_key(obj);
        step.apply.push_back(obj);
      }
      for (const json& key : steps[i].value("delete", json::array())) {
        step.remove.push_back(key.get<std::string>());
      }
      const json& probes = steps[i].value("probes", json::array());
      if (probes.empty()) throw std::runtime_error(what + ": no probes");
      for (size_t p = 0; p < probes.size(); ++p) {
        step.probes.push_back(probe_of(probes[p], what + ".probes[" + std::to_string(p) + "]"));
      }
      s.steps.push_back(std::move(step));
    }
    return s;
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

std::vector<std::string> scenario_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.is_regular_file() && entry.path().extension() == ".yaml") {
      out.push_back(entry.path().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

Objects load_objects(const std::string& dir) {
  Objects out;
  for (const std::string& file : scenario_files(dir)) {
    for (json& obj : yaml_file(file)) {
      std::string key = object_key(obj);
      if (!out.emplace(key, std::move(obj)).second) {
        throw std::runtime_error(file + ": " + key + " defined twice");
      }
    }
  }
  return out;
}

void apply_step(Objects& objects, const Step& step) {
  for (const json& obj : step.apply) objects[object_key(obj)] = obj;
  for (const std::string& key : step.remove) {
    if (!objects.erase(key)) throw std::runtime_error("delete " + key + ": no such object");
  }
}

json substitute(const json& value, const IpOf& ip_of) {
  if (value.is_string()) return substitute_string(value.get<std::string>(), ip_of);
  if (value.is_array() || value.is_object()) {
    json out = value;
    for (auto it = out.begin(); it != out.end(); ++it) *it = substitute(*it, ip_of);
    return out;
  }
  return value;
}

}  // namespace knit::test::oracle
