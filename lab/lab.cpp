#include "lab/lab.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <thread>

#include "conf/agent_proto.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/log.hpp"
#include "core/str.hpp"
#include "core/unix_socket.hpp"
#include "lab/args.hpp"
#include "lab/cni_call.hpp"
#include "lab/control.hpp"
#include "lab/names.hpp"
#include "lab/probe_plan.hpp"
#include "lab/prober.hpp"
#include "lab/process.hpp"
#include "lab/render.hpp"
#include "lab/sandbox.hpp"
#include "lab/supervisor.hpp"
#include "lab/unix_socket.hpp"
#include "watcher/manifests.hpp"

namespace knit::lab {

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kStartTimeout = 300s;  // `up` gives up on a supervisor that never reports
constexpr auto kStopTimeout = 30s;    // `down` SIGKILLs a supervisor that takes longer
constexpr auto kSyncTimeout = 120s;   // supervisor re-reading DIR (CNI calls included)
constexpr uint32_t kAgentWaitMs = 30000;

void write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::write(fd, s.data(), s.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    s.remove_prefix(static_cast<size_t>(n));
  }
}
void out(std::string_view s) {
  write_all(1, s);
}
void err(std::string_view s) {
  write_all(2, s);
}

bool exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

void need_root() {
  if (geteuid() != 0) fail(Code::kIo, "knit lab needs root (it creates network namespaces)");
}

/// The lab's state, or Error(kIo) saying the lab is not up.
LabState read_state(const Paths& paths) {
  auto text = read_file(paths.state);
  if (!text) {
    fail(Code::kIo, str("lab ", paths.name, " is not up (no ", paths.state,
                        "); start it with knit lab up --dir DIR --name ", paths.name));
  }
  return decode_state(*text);
}

void print_problems(const std::vector<std::string>& problems) {
  for (const auto& p : problems) err(str("knit lab: warning: ", p, "\n"));
}

// ---- up ---------------------------------------------------------------------------------------

int cmd_up(const UpArgs& a) {
  need_root();
  char real[PATH_MAX];
  if (realpath(a.dir.c_str(), real) == nullptr)
    fail_errno(Code::kIo, str("open --dir ", a.dir), errno);
  struct stat st {};
  if (stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
    fail(Code::kIo, str("open --dir ", a.dir, ": not a directory"));
  }
  Paths paths = paths_for(a.name);
  make_dirs(paths.run_dir, 0755);
  auto lock = try_lock(paths.lock);
  if (!lock) {
    fail(Code::kIo, str("lab ", a.name, " is already up (knit lab status --name ", a.name,
                        "; knit lab down --name ", a.name, ")"));
  }
  if (has_leftovers(paths)) {
    err(str("knit lab: removing what an earlier lab ", a.name, " left behind\n"));
    print_problems(sweep(paths, true));
  }

  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) fail_errno(Code::kIo, "create pipe", errno);
  pid_t pid = fork();
  if (pid < 0) fail_errno(Code::kIo, "start the lab supervisor", errno);
  if (pid == 0) {
    ::close(ready[0]);
    setsid();
    int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    int log = ::open(paths.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (null < 0 || log < 0) _exit(1);
    dup2(null, 0);
    dup2(log, 1);
    dup2(log, 2);
    supervise({a.name, real, a.agent, pod_cidrs(a.pod_cidrs)}, Fd(ready[1]), std::move(*lock));
  }
  ::close(ready[1]);
  Fd rd(ready[0]);
  lock->reset();  // the supervisor holds its own copy of the lock

  // Progress lines until "ok" or "error ...".
  LineReader lines(rd.get());
  std::string verdict;
  while (verdict.empty()) {
    auto line = lines.next(kStartTimeout);
    if (!line) break;  // the supervisor died, or fell silent
    if (line->starts_with("warn ")) {
      err(str("knit lab: warning: ", line->substr(5), "\n"));
    } else {
      verdict = *line;
    }
  }
  if (verdict != "ok") {
    // After "error" the supervisor removes what it made and exits; one that fell silent is
    // killed. Whatever is left then is swept here.
    if (verdict.empty()) kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    if (exists(paths.run_dir)) {
      if (verdict.empty()) {
        for (const auto& line : log_tail(paths.log, 8)) err(str("knit lab: lab.log: ", line, "\n"));
      }
      if (auto l = try_lock(paths.lock)) print_problems(sweep(paths, false));
    }
    if (verdict.starts_with("error ")) fail(Code::kIo, verdict.substr(6));
    fail(Code::kIo, "the lab supervisor stopped during start-up");
  }
  LabState s = read_state(paths);
  out(render_status_table(s, true));
  out(str("\nprobe: knit lab probe --name ", a.name, "    down: knit lab down --name ", a.name,
          "\n"));
  return 0;
}

// ---- down -------------------------------------------------------------------------------------

int cmd_down(const DownArgs& a) {
  need_root();
  Paths paths = paths_for(a.name);
  bool was_up = exists(paths.run_dir);
  if (was_up) {
    std::optional<ProcRef> supervisor;
    auto start = Clock::now();
    bool killed = false;
    for (;;) {
      if (!exists(paths.run_dir)) break;  // the supervisor removed everything itself
      if (auto lock = try_lock(paths.lock)) {
        print_problems(sweep(paths, false));
        break;
      }
      if (!supervisor) {
        try {
          supervisor = read_state(paths).supervisor;
        } catch (const Error&) {
          supervisor = ProcRef{};
        }
        if (alive(*supervisor)) kill(supervisor->pid, SIGTERM);
      }
      if (!killed && Clock::now() - start > kStopTimeout) {
        err(str("knit lab: the supervisor of lab ", a.name, " did not stop in time; killing it\n"));
        if (alive(*supervisor)) kill(supervisor->pid, SIGKILL);
        killed = true;
      }
      if (Clock::now() - start > kStopTimeout + 10s) {
        fail(Code::kIo,
             str("take lab ", a.name, " down: its lock is still held (", paths.lock, ")"));
      }
      std::this_thread::sleep_for(50ms);
    }
  }
  // Namespaces a crash left without a run directory.
  std::vector<std::string> left = list_netns(pod_netns_prefix(a.name));
  if (exists(paths.node_netns)) left.push_back(paths.node_netns_name);
  for (const auto& n : left) delete_netns(n);
  if (was_up || !left.empty()) {
    out(str("lab ", a.name, " is down\n"));
  } else {
    out(str("lab ", a.name, " was not up\n"));
  }
  return 0;
}

// ---- status -----------------------------------------------------------------------------------

int cmd_status(const StatusArgs& a) {
  Paths paths = paths_for(a.name);
  LabState s = read_state(paths);
  bool running = alive(s.supervisor);
  out(a.output == Output::kJson ? render_status_json(s, running) : render_status_table(s, running));
  return running ? 0 : 1;
}

// ---- probe ------------------------------------------------------------------------------------

int cmd_probe(const ProbeArgs& a) {
  need_root();
  Paths paths = paths_for(a.name);
  LabState s = read_state(paths);
  if (!alive(s.supervisor)) {
    fail(Code::kIo, str("lab ", a.name,
                        " is not running (its supervisor is gone); knit lab down "
                        "--name ",
                        a.name, " and up again"));
  }
  // 1. The supervisor wires or removes pods for DIR as it is now.
  SyncReply sync = decode_sync_reply(unix_request(s.control_socket, kSyncRequest, kSyncTimeout));
  if (!sync.ok) fail(Code::kIo, str("sync lab ", a.name, " with ", s.dir, ": ", sync.error));
  print_problems(sync.warnings);
  s = read_state(paths);
  // 2. The agent has applied DIR as it is now.
  if (s.agent) {
    conf::AgentRequest req;
    req.op = conf::AgentRequest::Op::kWait;
    req.digest = watcher::manifests_digest(s.dir);
    req.timeout_ms = kAgentWaitMs;
    std::string line;
    try {
      line = unix_request(s.agent_socket, conf::encode(req),
                          std::chrono::milliseconds(kAgentWaitMs) + 5s);
    } catch (const Error& e) {
      fail(Code::kIo,
           str("wait for the agent of lab ", a.name, ": ", e.what(), " (see ", s.log, ")"));
    }
    auto reply = conf::decode_agent_reply(line);
    if (!reply.ok) {
      fail(Code::kIo, str("wait for the agent to apply ", s.dir, ": ", reply.error));
    }
  } else {
    err(str("knit lab: lab ", a.name,
            " runs without an agent (--no-agent): no policy is "
            "enforced\n"));
  }
  // 3. Every pod to every pod.
  ProbePlan plan = plan_probes(s.pods, a.port, a.protocol, a.family);
  std::vector<std::string> netns;
  for (const auto& p : s.pods) netns.push_back(p.netns);
  auto ok = run_probes(plan.probes, netns, a.protocol, a.timeout);
  for (size_t i = 0; i < plan.probes.size(); ++i) {
    if (ok[i]) plan.matrix.cells[plan.probes[i].from][plan.probes[i].to] = Cell::kReachable;
  }
  out(a.output == Output::kJson ? render_matrix_json(plan.matrix)
                                : render_matrix_table(plan.matrix));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  log::init_from_env(log::Level::kWarn);
  std::vector<std::string_view> args;
  for (int i = 2; i < argc; ++i) args.emplace_back(argv[i]);
  Args parsed;
  try {
    parsed = parse_args(args);
  } catch (const Error& e) {
    err(str("knit lab: ", e.what(), "\n"));
    return 2;
  }
  try {
    return std::visit(
        [](const auto& a) -> int {
          using T = std::decay_t<decltype(a)>;
          if constexpr (std::is_same_v<T, HelpArgs>) {
            out(kUsage);
            return 0;
          } else if constexpr (std::is_same_v<T, UpArgs>) {
            return cmd_up(a);
          } else if constexpr (std::is_same_v<T, DownArgs>) {
            return cmd_down(a);
          } else if constexpr (std::is_same_v<T, StatusArgs>) {
            return cmd_status(a);
          } else {
            return cmd_probe(a);
          }
        },
        parsed);
  } catch (const std::exception& e) {
    err(str("knit lab: ", e.what(), "\n"));
    return 1;
  }
}

}  // namespace knit::lab
