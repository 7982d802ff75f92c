// test/netns/fixture.hpp: throwaway network namespaces and process helpers for root-only tests.
//
// Rules (../shared/docs/testing-in-netns.md): never touch the machine's own namespace; traffic
// only inside namespaces the test made; every namespace is named knit-t-<pid>-<n>-<tag> and
// deleted by its owner's destructor, and the ctest cleanup step (cleanup.sh) removes whatever a
// killed run left behind and fails if anything of knit's appears in the machine's namespace.
#pragma once

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace knit::test {

/// True when this process can create network namespaces (root, `ip netns add` works).
bool netns_available();

/// Boost.Test precondition: the test is skipped, with a message, when namespaces are unavailable.
struct NeedsNetns {
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const;
};

struct Proc {
  int status = -1;  ///< exit code, or 128+signal
  std::string out;
  std::string err;
  bool timed_out = false;
};

/// Runs argv with `env` (replaces the environment when `clear_env`, else adds to it) and `input`
/// on stdin, optionally inside the network namespace at `netns_path`. Kills it after `timeout`.
Proc run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {},
         const std::string& input = {}, const std::string& netns_path = {},
         std::chrono::milliseconds timeout = std::chrono::seconds(30), bool clear_env = false);

/// Runs `/bin/sh -c cmd` (in `netns_path` when given).
Proc sh(const std::string& cmd, const std::string& netns_path = {},
        std::chrono::milliseconds timeout = std::chrono::seconds(30));

/// A named network namespace under /run/netns, deleted on destruction.
class TestNetns {
 public:
  explicit TestNetns(const std::string& tag);
  ~TestNetns();
  TestNetns(const TestNetns&) = delete;
  TestNetns& operator=(const TestNetns&) = delete;

  const std::string& name() const { return name_; }
  const std::string& path() const { return path_; }
  /// Runs a shell command inside this namespace.
  Proc sh(const std::string& cmd) const { return knit::test::sh(cmd, path_); }
  /// Like sh(), but fails the current test when the command fails.
  std::string must(const std::string& cmd) const;
  /// Deletes the namespace now (the destructor then does nothing).
  void remove();

 private:
  std::string name_;
  std::string path_;
  bool removed_ = false;
};

/// The knit binary under test.
std::string knit_binary();

/// A CNI invocation of `plugin` from inside the node namespace `node`.
struct CniCall {
  std::string command;
  std::string container_id;
  std::string netns;
  std::string ifname = "eth0";
  std::string args;  ///< CNI_ARGS
  std::string config;
};
Proc cni(const std::string& plugin, const TestNetns& node, const CniCall& call);

/// Polls `pred` every 10 ms until it is true or `timeout` passes; returns the last value.
bool eventually(const std::function<bool()>& pred,
                std::chrono::milliseconds timeout = std::chrono::seconds(2));

}  // namespace knit::test
