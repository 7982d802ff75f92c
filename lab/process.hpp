// lab/process.hpp: starting knit itself inside a namespace, and recognising processes (I/O).
//
// The lab runs two kinds of children, both /proc/self/exe: CNI calls (short, stdin in, result
// out) and the agent (long-lived). Each child enters the node namespace before exec, starts with
// a clean signal mask and the environment it is given, and writes its logs to the lab's stderr
// (the supervisor's is lab.log).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "lab/lab_types.hpp"

namespace knit::lab {

struct Spawn {
  std::vector<std::string> argv;  ///< argv[0] is what the program sees; /proc/self/exe runs
  std::vector<std::string> env;   ///< "KEY=value", the whole environment
  std::string netns;              ///< namespace path to enter, empty for the caller's
  bool die_with_parent = false;   ///< PR_SET_PDEATHSIG: SIGTERM when the parent dies
};

/// Starts knit as described; stdin is /dev/null. Returns its pid. Throws Error(kIo).
pid_t spawn(const Spawn& s);

struct Finished {
  int status = -1;  ///< exit code, or 128 + signal
  std::string out;  ///< stdout
  bool timed_out = false;
};
/// Runs knit as described with `input` on stdin until it exits or `timeout` passes (then kills
/// it). Throws Error(kIo) when it cannot be started.
Finished run(const Spawn& s, std::string_view input, std::chrono::milliseconds timeout);

/// The ProcRef of a live process, or pid 0 when it does not exist.
ProcRef proc_ref(pid_t pid);
/// True when `p` is still the process it was recorded as (same pid, same start time).
bool alive(const ProcRef& p);
/// Sends SIGTERM, waits up to `grace` for the process to go, then SIGKILLs it. Reaps it when it
/// is our child. Does nothing when `p` is not alive.
void terminate(const ProcRef& p, std::chrono::milliseconds grace);

/// Environment variables passed on to every child: PATH and KNIT_LOG when set.
std::vector<std::string> base_env();

}  // namespace knit::lab
