#include "lab/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

#include "core/error.hpp"
#include "core/fd.hpp"
#include "core/fs.hpp"
#include "core/netns.hpp"
#include "core/str.hpp"

namespace knit::lab {

namespace {

/// Forks and execs /proc/self/exe with `stdin_fd` and (when >= 0) `stdout_fd`.
pid_t start(const Spawn& s, int stdin_fd, int stdout_fd) {
  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  std::optional<Netns> ns;
  if (!s.netns.empty()) ns = Netns::open(s.netns);
  std::vector<char*> argv, envp;
  for (const auto& a : s.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : s.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const int ns_fd = ns ? ns->fd() : -1;
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) fail_errno(Code::kIo, str("start ", s.argv.empty() ? "knit" : s.argv[0]), errno);
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    if (s.die_with_parent) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != parent) _exit(1);
    }
    if (ns_fd >= 0 && setns(ns_fd, CLONE_NEWNET) != 0) _exit(126);
    if (dup2(stdin_fd, 0) < 0) _exit(126);
    if (stdout_fd >= 0 && dup2(stdout_fd, 1) < 0) _exit(126);
    execve("/proc/self/exe", argv.data(), envp.data());
    _exit(127);
  }
  return pid;
}

int exit_code(int st) {
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/// Fields of /proc/<pid>/stat after the command name: state (field 3) and start time (22).
bool read_stat(pid_t pid, char& state, uint64_t& start_time) {
  std::optional<std::string> text;
  try {
    text = read_file(str("/proc/", pid, "/stat"));
  } catch (const Error&) {
    return false;
  }
  if (!text) return false;
  auto close = text->rfind(')');
  if (close == std::string::npos || close + 2 >= text->size()) return false;
  auto fields = split(std::string_view(*text).substr(close + 2), ' ');
  // fields[0] is field 3 (state); field 22 is fields[19].
  if (fields.size() < 20 || fields[0].empty()) return false;
  state = fields[0][0];
  return parse_uint(fields[19], start_time);
}

}  // namespace

pid_t spawn(const Spawn& s) {
  Fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!null) fail_errno(Code::kIo, "open /dev/null", errno);
  return start(s, null.get(), -1);
}

Finished run(const Spawn& s, std::string_view input, std::chrono::milliseconds timeout) {
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0) fail_errno(Code::kIo, "create pipe", errno);
  Fd in_r(in[0]), in_w(in[1]);
  if (pipe2(out, O_CLOEXEC) != 0) fail_errno(Code::kIo, "create pipe", errno);
  Fd out_r(out[0]), out_w(out[1]);
  pid_t pid = start(s, in_r.get(), out_w.get());
  in_r.reset();
  out_w.reset();
  fcntl(in_w.get(), F_SETFL, O_NONBLOCK);
  fcntl(out_r.get(), F_SETFL, O_NONBLOCK);
  if (input.empty()) in_w.reset();

  Finished f;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[16384];
  while (out_r) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      f.timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    pollfd fds[2] = {{out_r.get(), POLLIN, 0}, {in_w ? in_w.get() : -1, POLLOUT, 0}};
    int r = poll(fds, 2, static_cast<int>(left.count()));
    if (r < 0 && errno != EINTR) fail_errno(Code::kIo, "wait for child output", errno);
    if (r <= 0) continue;
    if (fds[1].revents & (POLLOUT | POLLERR | POLLHUP)) {
      ssize_t n = ::write(in_w.get(), input.data(), input.size());
      if (n > 0) input.remove_prefix(static_cast<size_t>(n));
      if (n < 0 && errno != EAGAIN && errno != EINTR) input = {};  // reader gone
      if (input.empty()) in_w.reset();
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::read(out_r.get(), buf, sizeof buf);
      if (n > 0) {
        f.out.append(buf, static_cast<size_t>(n));
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        out_r.reset();
      }
    }
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  f.status = exit_code(st);
  return f;
}

ProcRef proc_ref(pid_t pid) {
  char state = 0;
  uint64_t start = 0;
  if (pid <= 0 || !read_stat(pid, state, start) || state == 'Z') return {};
  return {pid, start};
}

bool alive(const ProcRef& p) {
  if (p.pid <= 0) return false;
  ProcRef now = proc_ref(p.pid);
  return now.pid == p.pid && now.start_time == p.start_time;
}

void terminate(const ProcRef& p, std::chrono::milliseconds grace) {
  if (!alive(p)) return;
  kill(p.pid, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + grace;
  for (;;) {
    int st = 0;
    pid_t r = waitpid(p.pid, &st, WNOHANG);  // reaps it when it is our child
    if (r == p.pid || !alive(p)) return;
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(p.pid, SIGKILL);
  waitpid(p.pid, nullptr, 0);
}

std::vector<std::string> base_env() {
  std::vector<std::string> env;
  for (const char* k : {"PATH", "KNIT_LOG"}) {
    if (const char* v = std::getenv(k)) env.push_back(str(k, '=', v));
  }
  return env;
}

}  // namespace knit::lab
