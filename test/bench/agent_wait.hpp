// test/bench/agent_wait.hpp: waiting for a `knit agent` the benchmark started to apply a
// manifests directory.
//
// The agent's `wait` op (conf/agent_proto.hpp) answers once the state built from the manifests
// with a given digest is committed, which is the one reliable signal: "synced" in a status only
// says that some state was applied, not which content, and polling it races with inotify.
#pragma once

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "conf/agent_proto.hpp"
#include "core/str.hpp"
#include "core/unix_socket.hpp"
#include "watcher/manifests.hpp"

namespace knit::bench {

/// Why the agent `pid` is gone ("" while it runs). Reaps it when it has exited.
inline std::string agent_exited(pid_t pid) {
  int st = 0;
  if (waitpid(pid, &st, WNOHANG) != pid) return {};
  return WIFEXITED(st) ? str("the agent exited with status ", WEXITSTATUS(st))
                       : str("the agent was killed by signal ", WTERMSIG(st));
}

/// Waits until the agent `pid` answers on `socket` (it binds the socket before it reads its
/// sources). Empty on success, else why not.
inline std::string wait_agent_socket(pid_t pid, const std::string& socket,
                                     std::chrono::steady_clock::time_point deadline) {
  conf::AgentRequest status;
  status.op = conf::AgentRequest::Op::kStatus;
  for (std::string last;;) {
    if (auto e = agent_exited(pid); !e.empty()) return e;
    try {
      unix_request(socket, conf::encode(status), std::chrono::seconds(1));
      return {};
    } catch (const std::exception& e) {
      last = e.what();
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return str("no answer on ", socket, ": ", last);
    }
    usleep(5000);
  }
}

/// Waits until the agent `pid` answers on `socket` and has committed the manifests directory
/// `dir` as it is now. Empty on success, else why not: the wait's own error and, when the agent
/// has one, its status error (an apply that keeps failing).
inline std::string wait_applied(pid_t pid, const std::string& socket, const std::string& dir,
                                std::chrono::milliseconds limit) {
  using Clock = std::chrono::steady_clock;
  auto deadline = Clock::now() + limit;
  std::string digest = watcher::manifests_digest(dir);
  if (auto e = wait_agent_socket(pid, socket, deadline); !e.empty()) return e;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  left = std::max(left, std::chrono::milliseconds(1));
  conf::AgentRequest wait;
  wait.op = conf::AgentRequest::Op::kWait;
  wait.digest = digest;
  wait.timeout_ms = static_cast<uint32_t>(left.count());
  try {
    auto reply = conf::decode_agent_reply(
        unix_request(socket, conf::encode(wait), left + std::chrono::seconds(5)));
    if (reply.ok) return {};
    std::string why = reply.error;
    try {
      conf::AgentRequest status;
      status.op = conf::AgentRequest::Op::kStatus;
      auto st = conf::decode_agent_reply(
          unix_request(socket, conf::encode(status), std::chrono::seconds(2)));
      if (!st.error.empty()) why += str("; agent status: ", st.error);
    } catch (const std::exception&) {
    }
    return why;
  } catch (const std::exception& e) {
    if (auto x = agent_exited(pid); !x.empty()) return x;
    return str("wait for manifests ", digest, ": ", e.what());
  }
}

}  // namespace knit::bench
