#include "fixture.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>

extern char** environ;

namespace knit::test {

bool netns_available() {
  static int cached = -1;
  if (cached < 0) {
    cached = 0;
    if (geteuid() == 0) {
      Proc p = sh("ip netns add knit-t-probe-$$ && ip netns del knit-t-probe-$$");
      cached = p.status == 0 ? 1 : 0;
    }
  }
  return cached == 1;
}

boost::test_tools::assertion_result NeedsNetns::operator()(boost::unit_test::test_unit_id) const {
  boost::test_tools::assertion_result r(netns_available());
  if (!r) r.message() << "needs root and network namespaces; skipped";
  return r;
}

namespace {
void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }
}  // namespace

Proc run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
         const std::string& input, const std::string& netns_path,
         std::chrono::milliseconds timeout, bool clear_env) {
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) {
    BOOST_FAIL("pipe: " << std::strerror(errno));
  }
  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    auto k = kv.substr(0, kv.find('='));
    // A cleared environment still passes the sanitizers' options, so that a sanitized child
    // reports where the test run asked (log_path) rather than on a stderr nobody reads.
    bool sanitizer = k == "ASAN_OPTIONS" || k == "UBSAN_OPTIONS" || k == "LSAN_OPTIONS";
    if ((!clear_env || sanitizer) && !env.count(k)) envs.push_back(kv);
  }
  for (auto& [k, v] : env) envs.push_back(k + "=" + v);
  std::vector<char*> cenv, cargv;
  for (auto& s : envs) cenv.push_back(s.data());
  cenv.push_back(nullptr);
  std::vector<std::string> args = argv;
  for (auto& s : args) cargv.push_back(s.data());
  cargv.push_back(nullptr);

  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    if (!netns_path.empty()) {
      int fd = open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) _exit(126);
    }
    execve(cargv[0], cargv.data(), cenv.data());
    if (cargv[0][0] != '/') execvpe(cargv[0], cargv.data(), cenv.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  Proc p;
  // Write stdin in a thread so a large input cannot deadlock against a full output pipe.
  std::thread writer([fd = in[1], &input] {
    size_t off = 0;
    while (off < input.size()) {
      ssize_t n = write(fd, input.data() + off, input.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    close(fd);
  });
  set_nonblock(out[0]);
  set_nonblock(err[0]);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool out_open = true, err_open = true;
  char buf[65536];
  while (out_open || err_open) {
    pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      p.timed_out = true;
      kill(-pid, SIGKILL);
      break;
    }
    int r = poll(fds, 2, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    for (int i = 0; i < 2; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        (i == 0 ? p.out : p.err).append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EAGAIN) {
        (i == 0 ? out_open : err_open) = false;
      }
    }
  }
  close(out[0]);
  close(err[0]);
  writer.join();
  int st = 0;
  waitpid(pid, &st, 0);
  p.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return p;
}

Proc sh(const std::string& cmd, const std::string& netns_path,
        std::chrono::milliseconds timeout) {
  return run({"/bin/sh", "-c", cmd}, {}, {}, netns_path, timeout);
}

namespace {
std::atomic<int> g_counter{0};
}

TestNetns::TestNetns(const std::string& tag) {
  name_ = "knit-t-" + std::to_string(getpid()) + "-" + std::to_string(g_counter++) + "-" + tag;
  if (name_.size() > 60) name_.resize(60);
  path_ = "/run/netns/" + name_;
  Proc p = knit::test::sh("ip netns add " + name_ + " && ip -n " + name_ + " link set lo up");
  if (p.status != 0) BOOST_FAIL("ip netns add " << name_ << ": " << p.err);
}

TestNetns::~TestNetns() { remove(); }

void TestNetns::remove() {
  if (removed_) return;
  removed_ = true;
  knit::test::sh("ip netns del " + name_);
}

std::string TestNetns::must(const std::string& cmd) const {
  Proc p = sh(cmd);
  BOOST_REQUIRE_MESSAGE(p.status == 0, "in " << name_ << ": " << cmd << " -> " << p.status
                                             << "\n" << p.out << p.err);
  return p.out;
}

std::string knit_binary() { return KNIT_BINARY; }

Proc cni(const std::string& plugin, const TestNetns& node, const CniCall& call) {
  std::map<std::string, std::string> env = {
      {"CNI_COMMAND", call.command},
      {"CNI_PATH", "/usr/lib/cni"},
  };
  if (!call.container_id.empty()) env["CNI_CONTAINERID"] = call.container_id;
  if (!call.netns.empty()) env["CNI_NETNS"] = call.netns;
  if (!call.ifname.empty()) env["CNI_IFNAME"] = call.ifname;
  if (!call.args.empty()) env["CNI_ARGS"] = call.args;
  return run({plugin}, env, call.config, node.path(), std::chrono::seconds(30), true);
}

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace knit::test
