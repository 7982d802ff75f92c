// The upstream NetworkPolicy e2e scenarios (test/data/e2e/) against the real kernel, through the
// `knit lab` command line: the CNI ADD path, the agent's incremental path and real probes.
//
// One lab holds the base topology for the whole suite (bringing a lab up takes seconds). Its
// manifests directory keeps one file per object, so a scenario step is file writes (renamed
// into place, so the agent never reads half a file) and removals; afterwards every object the
// scenario touched is put back as the base had it. `knit lab probe` waits until the agent has
// applied the directory as it is, so a probe is never early and nothing is retried here: a
// wrong cell is a wrong cell. Every scenario runs once per address family the lab's pods have.
#include <unistd.h>

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <variant>

#include "test/netns/fixture.hpp"
#include "test/oracle/scenario.hpp"

namespace bdata = boost::unit_test::data;
namespace fs = std::filesystem;
using namespace knit::test;
using namespace knit::test::oracle;
using nlohmann::json;

namespace {

std::string e2e_dir() {
  return std::string(KNIT_TEST_DATA) + "/e2e";
}

std::string arg_list(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) out += (out.empty() ? "" : " ") + a;
  return out;
}

/// The suite's lab. Created once by the suite fixture; scenarios reach it through instance().
class E2eLab {
 public:
  E2eLab() {
    instance_ = this;
    char tmpl[] = "/tmp/knit-e2e-XXXXXX";
    if (!mkdtemp(tmpl)) {
      error_ = "mkdtemp failed";
      return;
    }
    root_ = tmpl;
    fs::create_directories(manifests());
    fs::create_directories(root_ + "/staging");
    try {
      base_ = load_objects(e2e_dir() + "/base");
      for (const auto& [key, obj] : base_) write(key, obj);
    } catch (const std::exception& e) {
      error_ = std::string("base topology: ") + e.what();
      return;
    }
    Proc up = knit({"up", "--dir", manifests(), "--name", name_}, std::chrono::minutes(3));
    if (up.status != 0) {
      error_ = "knit lab up failed (" + std::to_string(up.status) + "): " + up.err + up.out;
      return;
    }
    started_ = true;
    Proc st = knit({"status", "--name", name_, "-o", "json"}, std::chrono::seconds(30));
    try {
      if (st.status != 0) throw std::runtime_error(st.err);
      json status = json::parse(st.out);
      for (const json& pod : status.at("pods")) {
        std::string ref =
            pod.at("namespace").get<std::string>() + "/" + pod.at("name").get<std::string>();
        for (const json& ip : pod.at("ips")) {
          std::string text = ip.get<std::string>();
          int family = text.find(':') == std::string::npos ? 4 : 6;
          ips_.emplace(std::make_pair(ref, family), text);  // the first of each family
        }
      }
    } catch (const std::exception& e) {
      error_ = "knit lab status -o json: " + std::string(e.what());
    }
  }

  ~E2eLab() {
    if (started_) {
      Proc down = knit({"down", "--name", name_}, std::chrono::minutes(1));
      if (down.status != 0) {
        BOOST_TEST_MESSAGE("knit lab down failed: " << down.err << down.out);
      }
    }
    std::error_code ec;
    if (!root_.empty()) fs::remove_all(root_, ec);
    instance_ = nullptr;
  }

  E2eLab(const E2eLab&) = delete;
  E2eLab& operator=(const E2eLab&) = delete;

  static E2eLab& instance() {
    BOOST_REQUIRE_MESSAGE(instance_, "the lab fixture is not set up");
    return *instance_;
  }

  /// Empty when the lab is up and its pods' addresses are known.
  const std::string& error() const { return error_; }
  const Objects& base() const { return base_; }

  /// Whether every base pod has an address of `family`.
  bool has_family(int family) const {
    for (const auto& [key, obj] : base_) {
      if (key.rfind("Pod/", 0) == 0 && !ips_.count({key.substr(4), family})) return false;
    }
    return true;
  }

  std::string ip(const std::string& ref, int family) const {
    auto it = ips_.find({ref, family});
    if (it == ips_.end()) {
      throw std::runtime_error("the lab reports no IPv" + std::to_string(family) + " for " + ref);
    }
    return it->second;
  }

  /// Writes `obj` as the file of `key`, atomically (staged, then renamed into place).
  void write(const std::string& key, const json& obj) const {
    std::string staged = root_ + "/staging/" + file_name(key);
    {
      std::ofstream out(staged);
      out << obj.dump(2) << "\n";
      BOOST_REQUIRE_MESSAGE(out.good(), "write " << staged);
    }
    fs::rename(staged, manifests() + "/" + file_name(key));
  }

  void remove(const std::string& key) const {
    std::error_code ec;
    fs::remove(manifests() + "/" + file_name(key), ec);
    BOOST_REQUIRE_MESSAGE(!ec, "remove " << key << ": " << ec.message());
  }

  /// `knit lab probe` of one port and protocol: the observed table, or a message.
  std::variant<Table, std::string> probe(const Probe& p, int family) const {
    std::vector<std::string> args = {"probe",
                                     "--name",
                                     name_,
                                     "--port",
                                     port_string(p.port),
                                     "--protocol",
                                     to_string(p.protocol),
                                     "--family",
                                     std::to_string(family),
                                     "--timeout",
                                     "500ms",
                                     "-o",
                                     "json"};
    Proc r = knit(args, std::chrono::minutes(2));
    if (r.status != 0) {
      return "knit lab " + arg_list(args) + " exited " + std::to_string(r.status) + ": " + r.err;
    }
    try {
      json j = json::parse(r.out);
      Table t;
      t.pods = j.at("pods").get<std::vector<std::string>>();
      for (const auto& [from, row] : j.at("matrix").items()) {
        for (const auto& [to, reachable] : row.items()) {
          if (from != to) t.cells[{from, to}] = reachable.get<bool>();
        }
      }
      return t;
    } catch (const std::exception& e) {
      return "knit lab " + arg_list(args) + ": unreadable output (" + e.what() + "):\n" + r.out;
    }
  }

 private:
  /// "NetworkPolicy/x/deny-all" -> "networkpolicy_x_deny-all.json" ('_' is in no object name).
  static std::string file_name(const std::string& key) {
    std::string out;
    for (char c : key) out += c == '/' ? '_' : static_cast<char>(std::tolower(c));
    return out + ".json";
  }

  std::string manifests() const { return root_ + "/manifests"; }

  Proc knit(std::vector<std::string> args, std::chrono::milliseconds timeout) const {
    args.insert(args.begin(), {knit_binary(), "lab"});
    return run(args, {}, {}, {}, timeout);
  }

  static inline E2eLab* instance_ = nullptr;
  std::string name_ = "e2e-" + std::to_string(getpid());
  std::string root_;
  std::string error_;
  bool started_ = false;
  Objects base_;
  std::map<std::pair<std::string, int>, std::string> ips_;  ///< (pod, family) -> first address
};

/// A scenario's changes to the lab directory, undone (the base put back) on destruction.
class ScenarioChanges {
 public:
  explicit ScenarioChanges(const E2eLab& lab) : lab_(lab) {}
  ~ScenarioChanges() {
    for (const auto& key : touched_) {
      try {
        auto it = lab_.base().find(key);
        if (it != lab_.base().end()) {
          lab_.write(key, it->second);
        } else {
          lab_.remove(key);
        }
      } catch (const std::exception& e) {
        BOOST_TEST_MESSAGE("restore " << key << ": " << e.what());
      } catch (...) {
        BOOST_TEST_MESSAGE("restore " << key << " failed");
      }
    }
  }
  ScenarioChanges(const ScenarioChanges&) = delete;
  ScenarioChanges& operator=(const ScenarioChanges&) = delete;

  void apply(const Step& step, int family) {
    for (const json& obj : step.apply) {
      std::string key = object_key(obj);
      touched_.insert(key);
      lab_.write(key,
                 substitute(obj, [&](const std::string& ref) { return lab_.ip(ref, family); }));
    }
    for (const std::string& key : step.remove) {
      touched_.insert(key);
      lab_.remove(key);
    }
  }

 private:
  const E2eLab& lab_;
  std::set<std::string> touched_;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(lab_e2e, *boost::unit_test::precondition(NeedsNetns()) *
                                   boost::unit_test::fixture<E2eLab>())

BOOST_DATA_TEST_CASE(upstream_scenario,
                     bdata::make(scenario_files(e2e_dir())) * bdata::make({4, 6}), file, family) {
  E2eLab& lab = E2eLab::instance();
  BOOST_REQUIRE_MESSAGE(lab.error().empty(), lab.error());
  if (!lab.has_family(family)) {
    BOOST_TEST_MESSAGE(file << ": the lab's pods have no IPv" << family << " addresses; skipped");
    return;
  }
  Scenario s = load_scenario(file);
  BOOST_TEST_MESSAGE(s.name << " (IPv" << family << ")");
  ScenarioChanges changes(lab);
  for (size_t i = 0; i < s.steps.size(); ++i) {
    changes.apply(s.steps[i], family);
    for (const Probe& probe : s.steps[i].probes) {
      auto result = lab.probe(probe, family);
      std::string where = s.name + ": step " + std::to_string(i + 1) + ", " +
                          to_string(probe.protocol) + "/" + port_string(probe.port) + ", IPv" +
                          std::to_string(family);
      if (auto* message = std::get_if<std::string>(&result)) {
        BOOST_ERROR(where << ": " << *message);
        continue;
      }
      Table observed = std::get<Table>(result);
      std::vector<std::string> diff = table_diff(probe.expect, observed);
      observed.pods = probe.expect.pods;  // shown in the expected table's order
      std::string lines;
      for (const auto& d : diff) lines += "  " + d + "\n";
      BOOST_TEST(diff.empty(), where << "\nexpected:\n"
                                     << render_table(probe.expect) << "observed:\n"
                                     << render_table(observed) << "differences:\n"
                                     << lines);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
