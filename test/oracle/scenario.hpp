// test/oracle/scenario.hpp: the NetworkPolicy e2e scenario format (see test/data/e2e/README.md).
//
// A scenario is the base topology (test/data/e2e/base/) plus steps; each step applies objects
// (policies, or Pods/Namespaces with changed labels), deletes objects, then probes one port and
// protocol across every pod pair and expects a reachability table. The oracle's unit test and the
// lab runner both read scenarios through this header, so the format has one definition.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "test/oracle/netpol_oracle.hpp"

namespace knit::test::oracle {

/// Reachability between pods ("ns/name"). Only pairs of distinct pods have a cell: loopback is
/// ignored, as upstream does (kubernetes#95879).
struct Table {
  std::vector<std::string> pods;                              ///< header order
  std::map<std::pair<std::string, std::string>, bool> cells;  ///< (from, to) -> reachable
};

/// Parses a table: a header `from\to <pod>...` and one row per pod in the header's order, with
/// `.` (reachable), `X` (blocked) and `-` on the diagonal only. Throws std::runtime_error.
Table parse_table(const std::string& text);

/// The table as parse_table() reads it, columns aligned.
std::string render_table(const Table& t);

/// One line per cell of `expected` that `observed` lacks or disagrees with, e.g.
/// "x/a -> y/b: expected X, observed .".
std::vector<std::string> table_diff(const Table& expected, const Table& observed);

struct Probe {
  PortRef port;  ///< a number, or a named port resolved per destination pod
  Protocol protocol = Protocol::kTcp;
  Table expect;
};

struct Step {
  std::vector<nlohmann::json> apply;
  std::vector<std::string> remove;  ///< object keys, see object_key()
  std::vector<Probe> probes;
};

struct Scenario {
  std::string file;  ///< path it was loaded from
  std::string name;
  std::string upstream;  ///< the upstream e2e test's full name
  std::vector<Step> steps;
};

/// Loads and validates one scenario file (unknown keys, steps without probes, malformed tables
/// and objects without kind/name are errors). Throws std::runtime_error naming the file.
Scenario load_scenario(const std::string& path);

/// The scenario files (*.yaml directly in `dir`), sorted by name.
std::vector<std::string> scenario_files(const std::string& dir);

/// "Namespace/y", "Pod/x/a", "NetworkPolicy/x/deny-all" (metadata.namespace "default" when
/// absent for namespaced kinds). Throws std::runtime_error without kind or metadata.name.
std::string object_key(const nlohmann::json& object);

/// "80" or "serve-80-tcp".
std::string port_string(const PortRef& port);

/// The objects a lab directory holds, by object_key().
using Objects = std::map<std::string, nlohmann::json>;

/// Every object of the *.yaml files in `dir` (the base topology). Throws on duplicates.
Objects load_objects(const std::string& dir);

/// Applies a step's changes: `apply` adds or replaces by key, `remove` erases (a key that is
/// not there is an error: std::runtime_error).
void apply_step(Objects& objects, const Step& step);

/// Pod ref ("x/b") -> the address a placeholder stands for.
using IpOf = std::function<std::string(const std::string& pod_ref)>;

/// `value` with every placeholder in its strings replaced:
///   ${ip x/b}        the pod's address
///   ${cidr x/b}      its host prefix (/32 or /128)
///   ${cidr x/b 4}    the prefix of that length containing it, host bits cleared
/// Throws std::runtime_error on a malformed placeholder.
nlohmann::json substitute(const nlohmann::json& value, const IpOf& ip_of);

}  // namespace knit::test::oracle
