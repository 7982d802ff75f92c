#include "lab/supervisor.hpp"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <thread>

#include "conf/agent_proto.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/log.hpp"
#include "core/netns.hpp"
#include "core/str.hpp"
#include "core/unix_socket.hpp"
#include "lab/cni_call.hpp"
#include "lab/control.hpp"
#include "lab/process.hpp"
#include "lab/reconcile.hpp"
#include "lab/render.hpp"
#include "lab/sandbox.hpp"
#include "lab/servers.hpp"
#include "lab/unix_socket.hpp"
#include "watcher/manifests.hpp"

namespace knit::lab {

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kCniTimeout = 30s;
constexpr auto kAgentReady = 10s;     // from exec to an answer on its socket
constexpr auto kAgentSynced = 30s;    // from then to "synced"
constexpr auto kRescanDelay = 100ms;  // lets a burst of file events settle into one read

/// A CNI call of knit itself inside the node namespace.
Finished cni(const Paths& paths, const std::string& config, std::string_view command,
             const LabPod& p) {
  Spawn s;
  s.argv = {"knit"};
  s.env = base_env();
  for (auto& e : cni_env(command, p.container_id, p.netns, p.namespace_, p.name))
    s.env.push_back(std::move(e));
  s.netns = paths.node_netns;
  return run(s, config, kCniTimeout);
}

void arm(int timer_fd, std::chrono::milliseconds after) {
  itimerspec its{};
  its.it_value.tv_sec = static_cast<time_t>(after.count() / 1000);
  its.it_value.tv_nsec = static_cast<long>(after.count() % 1000) * 1000000;
  timerfd_settime(timer_fd, 0, &its, nullptr);
}

bool armed(int timer_fd) {
  itimerspec its{};
  timerfd_gettime(timer_fd, &its);
  return its.it_value.tv_sec != 0 || its.it_value.tv_nsec != 0;
}

void drain(int fd) {
  char buf[4096];
  while (::read(fd, buf, sizeof buf) > 0) {
  }
}

class Supervisor {
 public:
  Supervisor(const SupervisorConfig& c, Fd ready, Fd lock)
      : c_(c),
        paths_(paths_for(c.name)),
        ready_(std::move(ready)),
        lock_(std::move(lock)),
        epoll_(epoll_create1(EPOLL_CLOEXEC)),
        servers_(epoll_.get()) {}

  int run() {
    try {
      setup();
    } catch (const std::exception& e) {
      // The log goes with the run directory: hand its end to the user.
      for (const auto& line : log_tail(paths_.log, 8)) report(str("warn lab.log: ", line));
      log::error(str("start lab ", c_.name, ": ", e.what()));
      report(str("error ", e.what()));
      ready_.reset();
      shutdown();
      return 1;
    }
    report("ok");
    ready_.reset();
    log::info(str("lab ", c_.name, " is up with ", pods_.size(), " pods"));
    loop();
    shutdown();
    return 0;
  }

 private:
  // ---- start-up ----------------------------------------------------------------------------

  void setup() {
    if (!epoll_) fail_errno(Code::kIo, "create epoll", errno);
    // Signals arrive as reads on a signalfd in the loop; children get a clean mask back
    // before exec (lab/process.cpp).
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaddset(&set, s);
    sigprocmask(SIG_BLOCK, &set, nullptr);
    signal(SIGPIPE, SIG_IGN);
    signals_ = Fd(signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
    rescan_ = Fd(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    agent_timer_ = Fd(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    if (!signals_ || !rescan_ || !agent_timer_) fail_errno(Code::kIo, "create event fds", errno);

    state_.name = c_.name;
    state_.dir = c_.dir;
    state_.node_netns = paths_.node_netns;
    state_.node_ips = {Prefix::parse(kNodeV4)->addr(), Prefix::parse(kNodeV6)->addr()};
    state_.run_dir = paths_.run_dir;
    state_.log = paths_.log;
    state_.control_socket = paths_.control_socket;
    state_.supervisor = proc_ref(getpid());
    state_.agent = c_.agent;
    state_.agent_socket = c_.agent ? paths_.agent_socket : "";
    state_.pod_cidrs = c_.pod_cidrs;
    write_state();  // from here on, `knit lab down` knows what to remove

    create_netns(paths_.node_netns_name);
    node_created_ = true;
    setup_uplink(Netns::open(paths_.node_netns));
    cni_config_ = cni_config(paths_, c_.agent, c_.pod_cidrs);
    atomic_write(paths_.run_dir, "cni.json", cni_config_ + "\n", 0644);

    control_ = listen_unix(paths_.control_socket);
    inotify_ = Fd(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (!inotify_) fail_errno(Code::kIo, "create inotify", errno);
    // Watch before the first read, so that no change in between is missed.
    if (inotify_add_watch(inotify_.get(), c_.dir.c_str(),
                          IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE |
                              IN_DELETE_SELF | IN_MOVE_SELF) < 0) {
      fail_errno(Code::kIo, str("watch ", c_.dir), errno);
    }
    for (int fd :
         {signals_.get(), rescan_.get(), agent_timer_.get(), control_.get(), inotify_.get()}) {
      watch(fd);
    }

    if (c_.agent) {
      start_agent();
      wait_agent_ready();
    }
    SyncReply r = sync();
    for (const auto& w : r.warnings) report(str("warn ", w));
    std::string failed;
    for (const auto& [key, p] : pods_) {
      if (!p.error.empty()) failed += str("\n  ", key, ": ", p.error);
    }
    if (!failed.empty()) fail(Code::kIo, str("wire pods:", failed));
    if (c_.agent) wait_agent_synced();
  }

  void watch(int fd) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) fail_errno(Code::kIo, "epoll", errno);
  }

  void report(std::string_view line) {
    if (!ready_) return;
    std::string l = str(line, '\n');
    (void)::write(ready_.get(), l.data(), l.size());
  }

  // ---- the agent -----------------------------------------------------------------------------

  void start_agent() {
    Spawn s;
    s.argv = {"knit",           "agent",    "--manifests",       c_.dir,       "--node-name",
              paths_.node_name, "--socket", paths_.agent_socket, "--data-dir", paths_.run_dir};
    s.env = base_env();
    s.netns = paths_.node_netns;
    s.die_with_parent = true;
    pid_t pid = spawn(s);
    state_.agent_proc = proc_ref(pid);
    if (state_.agent_proc.pid == 0) state_.agent_proc.pid = pid;  // already gone; reaped below
    agent_started_ = Clock::now();
    log::info(str("started knit agent, pid ", pid));
    write_state();
  }

  /// Reaps children; returns the agent's exit code when it was among them.
  std::optional<int> reap() {
    std::optional<int> agent;
    int st = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
      if (pid == state_.agent_proc.pid) {
        agent = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        state_.agent_proc = {};
      }
    }
    return agent;
  }

  conf::AgentReply agent_status() {
    conf::AgentRequest req;
    req.op = conf::AgentRequest::Op::kStatus;
    return conf::decode_agent_reply(unix_request(paths_.agent_socket, conf::encode(req), 2s));
  }

  void wait_agent_ready() {
    auto deadline = Clock::now() + kAgentReady;
    std::string last;
    for (;;) {
      if (auto code = reap()) {
        fail(Code::kIo,
             str("start knit agent: it exited with status ", *code, " before answering on ",
                 paths_.agent_socket, " (without an agent: knit lab up --no-agent)"));
      }
      try {
        if (agent_status().ok) return;
      } catch (const Error& e) {
        last = e.what();
      }
      if (Clock::now() >= deadline) {
        fail(Code::kIo, str("start knit agent: no answer on ", paths_.agent_socket, " within ",
                            std::chrono::duration_cast<std::chrono::seconds>(kAgentReady).count(),
                            " s: ", last));
      }
      std::this_thread::sleep_for(50ms);
    }
  }

  void wait_agent_synced() {
    auto deadline = Clock::now() + kAgentSynced;
    std::string last = "not synced";
    for (;;) {
      if (auto code = reap()) fail(Code::kIo, str("knit agent exited with status ", *code));
      try {
        auto r = agent_status();
        if (r.ok && r.synced) return;
        if (!r.error.empty()) last = r.error;
      } catch (const Error& e) {
        last = e.what();
      }
      if (Clock::now() >= deadline) {
        fail(Code::kIo, str("wait for knit agent to sync: ", last));
      }
      std::this_thread::sleep_for(50ms);
    }
  }

  void on_agent_exit(int code) {
    // Restart with backoff; an agent that ran for a while starts again at 1 s.
    if (Clock::now() - agent_started_ > 30s) agent_failures_ = 0;
    auto delay = std::chrono::milliseconds(1000 << std::min(agent_failures_++, 5));
    log::error(str("knit agent exited with status ", code, "; restarting in ", delay.count(),
                   " ms (the kernel keeps enforcing the last ruleset meanwhile)"));
    write_state();
    arm(agent_timer_.get(), delay);
  }

  // ---- pods ------------------------------------------------------------------------------------

  SyncReply sync() {
    SyncReply r;
    watcher::Manifests m;
    try {
      m = watcher::load_manifests(c_.dir);
    } catch (const Error& e) {
      r.error = e.what();
      log::error(str("read manifests: ", e.what()));
      return r;
    }
    r.warnings = m.objects.errors;
    auto wanted = wanted_pods(m.objects.pods, r.warnings);
    auto plan = plan_reconcile(pods_, wanted, !m.objects.errors.empty());
    for (const auto& key : plan.remove) unwire(key);
    for (const auto& w : plan.add) wire(w);
    for (const auto& w : plan.reserve) {
      auto& p = pods_.at(w.key());
      try {
        servers_.serve(p.key(), p.netns, w.ports);
        p.ports = w.ports;
        log::info(str("pod ", p.key(), ": serving its new ports"));
      } catch (const Error& e) {
        r.warnings.push_back(str("pod ", p.key(), ": ", e.what()));
      }
    }
    for (const auto& [key, p] : pods_) {
      if (!p.error.empty()) r.warnings.push_back(str("pod ", key, ": ", p.error));
    }
    for (const auto& w : r.warnings) log::warn(w);
    state_.manifests_digest = m.digest;
    write_state();
    r.ok = true;
    r.digest = m.digest;
    return r;
  }

  void wire(const WantedPod& w) {
    LabPod p;
    p.namespace_ = w.namespace_;
    p.name = w.name;
    p.ports = w.ports;
    std::string ns_name = pod_netns_name(c_.name, w.namespace_, w.name);
    p.container_id = ns_name;
    p.netns = str(kNetnsDir, '/', ns_name);
    bool added = false;
    try {
      delete_netns(ns_name);  // a leftover of an interrupted removal
      create_netns(ns_name);
      Finished f = cni(paths_, cni_config_, "ADD", p);
      if (f.timed_out) fail(Code::kIo, "CNI ADD: timed out");
      if (f.status != 0) fail(Code::kIo, str("CNI ADD: ", cni_error_text(f.out)));
      added = true;
      p.ips = cni_result_ips(f.out);
      servers_.serve(p.key(), p.netns, p.ports);
      std::string ips;
      for (const auto& ip : p.ips) ips += str(' ', ip.to_string());
      log::info(str("pod ", p.key(), ": wired,", ips));
    } catch (const std::exception& e) {
      p.error = e.what();
      log::error(str("pod ", p.key(), ": ", e.what()));
      if (added) del(p);
      try {
        delete_netns(ns_name);
      } catch (const Error& e2) {
        log::warn(e2.what());
      }
      p.ips.clear();
      p.netns.clear();
    }
    pods_[p.key()] = std::move(p);
  }

  void del(const LabPod& p) {
    try {
      Finished f = cni(paths_, cni_config_, "DEL", p);
      if (f.status != 0 || f.timed_out) {
        log::warn(str("pod ", p.key(), ": CNI DEL: ",
                      f.timed_out ? std::string("timed out") : cni_error_text(f.out)));
      }
    } catch (const Error& e) {
      log::warn(str("pod ", p.key(), ": CNI DEL: ", e.what()));
    }
  }

  void unwire(const std::string& key) {
    auto it = pods_.find(key);
    if (it == pods_.end()) return;
    const LabPod& p = it->second;
    servers_.stop(key);  // the sockets hold the namespace
    if (p.error.empty()) {
      del(p);
      try {
        delete_netns(pod_netns_name(c_.name, p.namespace_, p.name));
      } catch (const Error& e) {
        log::warn(e.what());
      }
      log::info(str("pod ", key, ": removed"));
    }
    pods_.erase(it);
  }

  void write_state() {
    state_.pods.clear();
    for (const auto& [key, p] : pods_) state_.pods.push_back(p);
    try {
      atomic_write(paths_.run_dir, "state.json", encode_state(state_), 0644);
    } catch (const Error& e) {
      log::error(e.what());
    }
  }

  // ---- the loop --------------------------------------------------------------------------------

  void loop() {
    epoll_event events[64];
    while (!stopping_) {
      int n = epoll_wait(epoll_.get(), events, 64, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        log::error(str("epoll_wait: ", std::strerror(errno)));
        return;
      }
      for (int i = 0; i < n && !stopping_; ++i) {
        int fd = events[i].data.fd;
        if (fd == signals_.get()) {
          on_signal();
        } else if (fd == inotify_.get()) {
          on_dir_event();
        } else if (fd == rescan_.get()) {
          drain(fd);
          sync();
        } else if (fd == agent_timer_.get()) {
          drain(fd);
          if (!stopping_ && state_.agent_proc.pid == 0) start_agent();
        } else if (fd == control_.get()) {
          on_control();
        } else {
          servers_.handle(fd);
        }
      }
    }
  }

  void on_signal() {
    signalfd_siginfo si{};
    while (::read(signals_.get(), &si, sizeof si) == sizeof si) {
      if (si.ssi_signo == SIGCHLD) {
        if (auto code = reap()) on_agent_exit(*code);
      } else {
        log::info(str("signal ", si.ssi_signo, ": taking lab ", c_.name, " down"));
        stopping_ = true;
      }
    }
  }

  void on_dir_event() {
    alignas(inotify_event) char buf[4096];
    ssize_t n;
    while ((n = ::read(inotify_.get(), buf, sizeof buf)) > 0) {
      for (char* p = buf; p < buf + n;) {
        auto* ev = reinterpret_cast<inotify_event*>(p);
        if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
          log::error(
              str("manifests directory ", c_.dir, " was removed or moved: pods stay as they are"));
        }
        p += sizeof(inotify_event) + ev->len;
      }
    }
    if (!armed(rescan_.get())) arm(rescan_.get(), kRescanDelay);
  }

  void on_control() {
    for (;;) {
      Fd conn(accept4(control_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn) return;
      std::string line = LineReader(conn.get()).next(2s).value_or("");
      SyncReply r;
      if (is_sync_request(line)) {
        r = sync();
      } else {
        r.error = str("unknown request: ", line);
      }
      write_line(conn.get(), encode(r));
    }
  }

  // ---- shutdown --------------------------------------------------------------------------------

  void shutdown() {
    stopping_ = true;
    std::vector<std::string> keys;
    for (const auto& [key, p] : pods_) keys.push_back(key);
    // Pods first, while the agent can still hear about the DELs.
    for (const auto& key : keys) unwire(key);
    if (state_.agent_proc.pid) terminate(state_.agent_proc, 5s);
    control_.reset();
    if (node_created_) {
      try {
        delete_netns(paths_.node_netns_name);
      } catch (const Error& e) {
        log::warn(e.what());
      }
    }
    std::error_code ec;
    std::filesystem::remove_all(paths_.run_dir, ec);
    log::info(str("lab ", c_.name, " is down"));
  }

  SupervisorConfig c_;
  Paths paths_;
  Fd ready_;
  Fd lock_;
  Fd epoll_;
  Fd signals_, rescan_, agent_timer_, control_, inotify_;
  Servers servers_;
  std::string cni_config_;
  std::map<std::string, LabPod> pods_;
  LabState state_;
  bool node_created_ = false;
  bool stopping_ = false;
  int agent_failures_ = 0;
  Clock::time_point agent_started_{};
};

}  // namespace

void supervise(const SupervisorConfig& c, Fd ready, Fd lock) {
  log::init_from_env(log::Level::kInfo);
  int rc = 1;
  try {
    Supervisor s(c, std::move(ready), std::move(lock));
    rc = s.run();
  } catch (const std::exception& e) {
    log::error(str("lab supervisor: ", e.what()));
  }
  _exit(rc);
}

std::vector<std::string> log_tail(const std::string& path, size_t n) {
  std::vector<std::string> out;
  try {
    auto text = read_file(path);
    if (!text) return out;
    for (auto line : split(*text, '\n')) {
      if (line.empty()) continue;
      out.emplace_back(line);
      if (out.size() > n) out.erase(out.begin());
    }
  } catch (const Error&) {
  }
  return out;
}

bool has_leftovers(const Paths& paths) {
  struct stat st {};
  return stat(paths.state.c_str(), &st) == 0 || stat(paths.node_netns.c_str(), &st) == 0 ||
         !list_netns(pod_netns_prefix(paths.name)).empty();
}

std::vector<std::string> sweep(const Paths& paths, bool keep_lock) {
  std::vector<std::string> problems;
  auto attempt = [&](auto&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      problems.push_back(e.what());
    }
  };
  std::optional<LabState> st;
  attempt([&] {
    if (auto text = read_file(paths.state)) st = decode_state(*text);
  });
  struct stat sb {};
  if (st) {
    attempt([&] { terminate(st->agent_proc, 5s); });
    if (stat(paths.node_netns.c_str(), &sb) == 0) {
      std::string config = cni_config(paths, false, st->pod_cidrs);
      for (const auto& p : st->pods) {
        if (!p.error.empty()) continue;
        attempt([&] {
          Finished f = cni(paths, config, "DEL", p);
          if (f.status != 0 || f.timed_out) {
            problems.push_back(str("CNI DEL of ", p.key(), ": ",
                                   f.timed_out ? std::string("timed out") : cni_error_text(f.out)));
          }
        });
      }
    }
  }
  attempt([&] {
    for (const auto& name : list_netns(pod_netns_prefix(paths.name))) delete_netns(name);
    delete_netns(paths.node_netns_name);
  });
  attempt([&] {
    std::error_code ec;
    if (!keep_lock) {
      std::filesystem::remove_all(paths.run_dir, ec);
    } else if (std::filesystem::exists(paths.run_dir, ec)) {
      for (const auto& e : std::filesystem::directory_iterator(paths.run_dir, ec)) {
        if (e.path().filename() != "lock") std::filesystem::remove_all(e.path(), ec);
      }
    }
    if (ec) fail(Code::kIo, str("remove ", paths.run_dir, ": ", ec.message()));
  });
  return problems;
}

}  // namespace knit::lab
