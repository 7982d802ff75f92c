// lab/supervisor.hpp: the process that keeps a lab alive, and the sweep that removes one (I/O).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/fd.hpp"
#include "lab/names.hpp"

namespace knit::lab {

struct SupervisorConfig {
  std::string name;
  std::string dir;  ///< absolute
  bool agent = true;
  std::vector<std::string> pod_cidrs;  ///< as cni_call.hpp's pod_cidrs gives them
};

/// Runs the lab in the calling process (forked by `knit lab up`, already in its own session,
/// stdout and stderr on lab.log) until SIGTERM or SIGINT, then takes it down and exits; never
/// returns. Start-up progress goes to `ready` as lines: "warn <text>" any number of times, then
/// "ok" or "error <text>" (after an error everything is removed again). `lock` is the lab's
/// lock, held until exit.
[[noreturn]] void supervise(const SupervisorConfig& c, Fd ready, Fd lock);

/// Removes whatever the lab left behind, with the caller holding its lock and no supervisor
/// running: stops the recorded agent, CNI DELs every recorded pod (agent "off": there is none
/// to tell), deletes the lab's namespaces (all of "knit-lab-<N>." too, so that one a crash left
/// out of the state goes as well) and the run directory (but its lock file with `keep_lock`).
/// Never throws; returns one line per problem met.
std::vector<std::string> sweep(const Paths& paths, bool keep_lock);

/// The last `n` non-empty lines of the log at `path` (none when it cannot be read).
std::vector<std::string> log_tail(const std::string& path, size_t n);

/// True when something of the lab exists: its state file, or one of its namespaces.
bool has_leftovers(const Paths& paths);

}  // namespace knit::lab
