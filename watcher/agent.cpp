#include "watcher/agent.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <set>

#include "conf/agent_proto.hpp"
#include "core/error.hpp"
#include "core/fd.hpp"
#include "core/fs.hpp"
#include "core/log.hpp"
#include "core/netlink.hpp"
#include "core/str.hpp"
#include "ipam/store.hpp"
#include "nft/apply.hpp"
#include "nft/plan.hpp"
#include "watcher/compile.hpp"
#include "watcher/conntrack.hpp"
#include "watcher/evaluate.hpp"
#include "watcher/manifests.hpp"
#include "watcher/reconciler.hpp"

namespace knit::watcher {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kDefaultAttachTimeout{5000};
constexpr milliseconds kRetryMin{100};
constexpr milliseconds kRetryMax{5000};
constexpr size_t kMaxRequest = 64 * 1024;

/// A client connection of the control socket.
struct Conn {
  Fd fd;
  std::string in;
};

/// A request that is answered later: after a commit, or at its deadline.
struct Waiter {
  int fd = -1;
  conf::AgentRequest req;
  Clock::time_point deadline;
};

class Agent {
 public:
  explicit Agent(const AgentOptions& o) : opt_(o) { view_.node_name = o.node_name; }

  int run();

 private:
  void setup();
  void load_attachments_from_stores();
  void reload_manifests();
  void reconcile();
  void revoke();
  void on_control_readable(int fd);
  void accept_clients();
  void handle(int fd, const std::string& line);
  void reply(int fd, const conf::AgentReply& r);
  void answer_waiters(bool after_commit);
  conf::AgentReply status() const;
  int next_timeout_ms() const;
  void close_conn(int fd);

  AgentOptions opt_;
  ClusterView view_;
  Reconciler rec_;
  nl::Socket nft_ = nl::Socket::open(NETLINK_NETFILTER);
  nl::Socket ct_ = nl::Socket::open(NETLINK_NETFILTER);
  nl::Socket rt_ = nl::Socket::open(NETLINK_ROUTE);
  Fd epoll_, signal_, inotify_, listen_;
  std::map<int, Conn> conns_;
  std::deque<Waiter> waiters_;
  bool synced_ = false;
  bool dirty_ = false;
  uint64_t generation_ = 0;
  std::string loaded_digest_;
  std::string applied_digest_;
  std::string last_error_;
  std::optional<Clock::time_point> reload_at_, reconcile_at_;
  milliseconds retry_ = kRetryMin;
};

void add_fd(int ep, int fd) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  sys_check(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), "epoll_ctl");
}

void Agent::setup() {
  epoll_ = Fd(sys_check(epoll_create1(EPOLL_CLOEXEC), "epoll_create1"));
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);
  signal_ = Fd(sys_check(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK), "signalfd"));
  add_fd(epoll_.get(), signal_.get());

  if (!opt_.manifests_dir.empty()) {
    inotify_ = Fd(sys_check(inotify_init1(IN_CLOEXEC | IN_NONBLOCK), "inotify_init1"));
    uint32_t events = IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO |
                      IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;
    if (inotify_add_watch(inotify_.get(), opt_.manifests_dir.c_str(), events) < 0) {
      fail_errno(Code::kIo, str("watch manifests directory ", opt_.manifests_dir), errno);
    }
    add_fd(epoll_.get(), inotify_.get());
  }

  // The control socket: replace a stale one left by a dead agent.
  auto slash = opt_.socket_path.rfind('/');
  if (slash != std::string::npos && slash > 0) make_dirs(opt_.socket_path.substr(0, slash), 0755);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (opt_.socket_path.size() >= sizeof addr.sun_path) {
    fail(Code::kInvalidConfig, str("agent socket path too long: ", opt_.socket_path));
  }
  std::memcpy(addr.sun_path, opt_.socket_path.c_str(), opt_.socket_path.size() + 1);
  unlink(opt_.socket_path.c_str());
  listen_ = Fd(sys_check(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), "socket"));
  if (bind(listen_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    fail_errno(Code::kIo, str("bind agent socket ", opt_.socket_path), errno);
  }
  chmod(opt_.socket_path.c_str(), 0600);
  sys_check(listen(listen_.get(), 128), "listen");
  add_fd(epoll_.get(), listen_.get());
}

void Agent::load_attachments_from_stores() {
  std::string root = str(opt_.cni_data_dir, "/ipam");
  DIR* d = opendir(root.c_str());
  if (d == nullptr) return;  // no CNI state yet
  std::vector<std::string> networks;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.' && e->d_type == DT_DIR) networks.emplace_back(e->d_name);
  }
  closedir(d);
  size_t n = 0;
  for (const auto& net : networks) {
    try {
      ipam::Store store(root, net);
      auto txn = store.begin(std::chrono::seconds(5));
      for (const auto& att : txn.state().attachments) {
        if (att.pod_namespace.empty() || att.pod_name.empty()) continue;
        view_.attachments[str(att.container_id, '/', att.ifname)] =
            Attachment{att.pod_namespace, att.pod_name, att.ips};
        ++n;
      }
    } catch (const Error& e) {
      log::warn(str("read attachments of network ", net, ": ", e.what()));
    }
  }
  if (n) log::info(str("loaded ", n, " attachment(s) from ", root));
}

/// Makes `have` equal to `want` in place (map nodes of unchanged objects stay put, which the
/// compiler's indexes rely on) and returns the keys that changed.
template <class Map>
std::vector<std::string> update_in_place(Map& have, Map&& want) {
  std::vector<std::string> changed;
  for (auto it = have.begin(); it != have.end();) {
    if (!want.count(it->first)) {
      changed.push_back(it->first);
      it = have.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& [key, value] : want) {
    auto it = have.find(key);
    if (it == have.end()) {
      changed.push_back(key);
      have.emplace(key, std::move(value));
    } else if (!(it->second == value)) {
      changed.push_back(key);
      it->second = std::move(value);
    }
  }
  return changed;
}

void Agent::reload_manifests() {
  Manifests m;
  try {
    m = load_manifests(opt_.manifests_dir);
  } catch (const Error& e) {
    log::error(str("load manifests: ", e.what()));
    return;
  }
  for (const auto& err : m.objects.errors) log::warn(str("manifests: skipped ", err));
  decltype(view_.namespaces) namespaces;
  decltype(view_.pods) pods;
  decltype(view_.policies) policies;
  for (auto& ns : m.objects.namespaces) namespaces[ns.name] = std::move(ns);
  for (auto& p : m.objects.pods) pods[object_key(p.namespace_, p.name)] = std::move(p);
  for (auto& p : m.objects.policies) policies[object_key(p.namespace_, p.name)] = std::move(p);
  auto ns_changed = update_in_place(view_.namespaces, std::move(namespaces));
  auto pods_changed = update_in_place(view_.pods, std::move(pods));
  auto pol_changed = update_in_place(view_.policies, std::move(policies));
  loaded_digest_ = m.digest;
  if (ns_changed.empty() && pods_changed.empty() && pol_changed.empty() && synced_) {
    if (!dirty_) {
      applied_digest_ = m.digest;  // nothing to apply: this content is in force already
      answer_waiters(false);
    }
    return;
  }
  log::info(str("manifests: ", view_.namespaces.size(), " namespace(s), ", view_.pods.size(),
                " pod(s), ", view_.policies.size(), " policy(ies); changed: ", ns_changed.size(),
                " namespace(s), ", pods_changed.size(), " pod(s), ", pol_changed.size(),
                " policy(ies)"));
  rec_.namespaces_changed(ns_changed);
  rec_.pods_changed(pods_changed);
  rec_.policies_changed(pol_changed);
  synced_ = true;
  dirty_ = true;
}

void Agent::reconcile() {
  if (!synced_) return;
  auto t0 = Clock::now();
  std::string digest = loaded_digest_;
  try {
    size_t changes = rec_.synced() ? rec_.sync(nft_, view_) : rec_.full_sync(nft_, view_);
    ++generation_;
    dirty_ = false;
    applied_digest_ = digest;
    last_error_.clear();
    retry_ = kRetryMin;
    if (changes) {
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
      log::info(str("applied generation ", generation_, ": ", changes, " change(s) in ", us, " us"));
    }
    answer_waiters(true);
    if (changes) revoke();
  } catch (const std::exception& e) {
    last_error_ = e.what();
    log::error(str("apply: ", e.what(), "; retrying in ", retry_.count(), " ms"));
    rec_.everything_changed();  // start over from what the kernel holds
    reconcile_at_ = Clock::now() + retry_;
    retry_ = std::min(retry_ * 2, kRetryMax);
  }
}

/// The node's own addresses (every address in the agent's namespace).
std::set<IpAddr> node_addresses(nl::Socket& rt) {
  nl::Request req;
  req.begin(RTM_GETADDR, NLM_F_DUMP, "dump addresses");
  req.extra<ifaddrmsg>()->ifa_family = AF_UNSPEC;
  std::set<IpAddr> out;
  rt.dump(
      req,
      [&](const nlmsghdr* m, size_t) {
        if (m->nlmsg_type != RTM_NEWADDR) return;
        auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(m));
        nl::for_each_attr(m, sizeof(ifaddrmsg), [&](const nlattr* a) {
          auto t = mnl_attr_get_type(a);
          if (t != IFA_LOCAL && t != IFA_ADDRESS) return;
          size_t len = mnl_attr_get_payload_len(a);
          if (ifa->ifa_family == AF_INET && len == 4) {
            out.insert(IpAddr::from_bytes(Family::kV4, mnl_attr_get_payload(a)));
          } else if (ifa->ifa_family == AF_INET6 && len == 16) {
            out.insert(IpAddr::from_bytes(Family::kV6, mnl_attr_get_payload(a)));
          }
        });
      },
      [&] { out.clear(); });
  return out;
}

void Agent::revoke() {
  if (!rec_.synced()) return;
  try {
    Evaluator ev(rec_, node_addresses(rt_));
    std::vector<CtFlow> doomed;
    for (const auto& c : dump_flows(ct_)) {
      Flow f{c.orig_src, c.reply_src, c.proto, c.reply_sport};
      if (ev.relevant(f) && !ev.allows(f)) doomed.push_back(c);
    }
    if (!doomed.empty()) {
      revoke_flows(ct_, doomed);
      log::info(str("cut ", doomed.size(), " connection(s) the policy no longer allows"));
    }
  } catch (const std::exception& e) {
    log::warn(str("revoke connections: ", e.what()));
  }
}

conf::AgentReply Agent::status() const {
  conf::AgentReply r;
  r.ok = last_error_.empty();
  r.error = last_error_;
  r.synced = synced_ && !dirty_;
  r.generation = generation_;
  r.applied_digest = applied_digest_;
  return r;
}

void Agent::reply(int fd, const conf::AgentReply& r) {
  std::string line = conf::encode(r) + "\n";
  (void)send(fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  close_conn(fd);
}

void Agent::close_conn(int fd) {
  epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  conns_.erase(fd);
}

void Agent::answer_waiters(bool after_commit) {
  auto now = Clock::now();
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    const auto& w = *it;
    bool done = false;
    conf::AgentReply r = status();
    if (w.req.op == conf::AgentRequest::Op::kWait) {
      done = !dirty_ && applied_digest_ == w.req.digest;
      if (!done && now >= w.deadline) {
        r.ok = false;
        r.error = str("timed out waiting for manifests ", w.req.digest, " (applied ",
                      applied_digest_.empty() ? "none" : applied_digest_, ")");
        done = true;
      }
    } else if (w.req.op == conf::AgentRequest::Op::kAttach) {
      bool known = view_.pods.count(object_key(w.req.pod_namespace, w.req.pod_name)) > 0;
      done = after_commit && !dirty_ && known;
      if (done) r.ok = true, r.error.clear();
      if (!done && now >= w.deadline) {
        r.ok = false;
        r.error = known ? str("pod ", w.req.pod_namespace, "/", w.req.pod_name, " not applied: ",
                              last_error_)
                        : str("pod ", w.req.pod_namespace, "/", w.req.pod_name,
                              " is unknown to the agent");
        done = true;
      }
    } else {  // detach
      done = after_commit && !dirty_;
      if (done) r.ok = true, r.error.clear();
      if (!done && now >= w.deadline) done = true;
    }
    if (done) {
      reply(w.fd, r);
      it = waiters_.erase(it);
    } else {
      ++it;
    }
  }
}

void Agent::handle(int fd, const std::string& line) {
  conf::AgentRequest req;
  try {
    req = conf::decode_agent_request(line);
  } catch (const Error& e) {
    conf::AgentReply r;
    r.error = e.what();
    reply(fd, r);
    return;
  }
  auto timeout = req.timeout_ms ? milliseconds(req.timeout_ms) : kDefaultAttachTimeout;
  switch (req.op) {
    case conf::AgentRequest::Op::kStatus:
      reply(fd, status());
      return;
    case conf::AgentRequest::Op::kWait:
      waiters_.push_back({fd, req, Clock::now() + timeout});
      answer_waiters(false);
      return;
    case conf::AgentRequest::Op::kAttach:
      log::info(str("attach ", req.pod_namespace, "/", req.pod_name, " (", req.container_id, "/",
                    req.ifname, ")"));
      {
        auto& att = view_.attachments[str(req.container_id, '/', req.ifname)];
        if (!att.pod_name.empty()) rec_.pods_changed({object_key(att.pod_namespace, att.pod_name)});
        att = Attachment{req.pod_namespace, req.pod_name, req.ips};
        rec_.pods_changed({object_key(req.pod_namespace, req.pod_name)});
      }
      dirty_ = true;
      waiters_.push_back({fd, req, Clock::now() + timeout});
      return;
    case conf::AgentRequest::Op::kDetach:
      log::info(str("detach ", req.container_id, "/", req.ifname));
      if (auto it = view_.attachments.find(str(req.container_id, '/', req.ifname));
          it != view_.attachments.end()) {
        rec_.pods_changed({object_key(it->second.pod_namespace, it->second.pod_name)});
        view_.attachments.erase(it);
        dirty_ = true;
      }
      waiters_.push_back({fd, req, Clock::now() + timeout});
      if (!dirty_) answer_waiters(true);
      return;
  }
}

void Agent::accept_clients() {
  for (;;) {
    int fd = accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    conns_.emplace(fd, Conn{Fd(fd), {}});
    add_fd(epoll_.get(), fd);
  }
}

void Agent::on_control_readable(int fd) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  char buf[4096];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      it->second.in.append(buf, static_cast<size_t>(n));
      if (it->second.in.size() > kMaxRequest) return close_conn(fd);
      auto nl = it->second.in.find('\n');
      if (nl != std::string::npos) {
        std::string line = it->second.in.substr(0, nl);
        epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);  // one request per connection
        handle(fd, line);
        return;
      }
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    // EOF or error before a full line: drop the connection and any waiter on it.
    for (auto w = waiters_.begin(); w != waiters_.end();) w = w->fd == fd ? waiters_.erase(w) : w + 1;
    close_conn(fd);
    return;
  }
}

int Agent::next_timeout_ms() const {
  std::optional<Clock::time_point> next;
  auto consider = [&](const std::optional<Clock::time_point>& t) {
    if (t && (!next || *t < *next)) next = t;
  };
  consider(reload_at_);
  consider(reconcile_at_);
  for (const auto& w : waiters_) consider(w.deadline);
  if (dirty_ && synced_ && !reconcile_at_) return 0;
  if (!next) return -1;
  auto ms = std::chrono::duration_cast<milliseconds>(*next - Clock::now()).count();
  return ms < 0 ? 0 : static_cast<int>(ms) + 1;
}

int Agent::run() {
  setup();
  bool had_table = nft::read_table(nft_, nft::TableFamily::kInet, kTableName).has_value();
  log::info(str("agent started on node ", view_.node_name.empty() ? "(unnamed)" : view_.node_name,
                "; kernel holds ", had_table ? "a knit table (kept until the first sync)"
                                              : "no knit table",
                "; socket ", opt_.socket_path));
  load_attachments_from_stores();
  if (opt_.manifests_dir.empty()) {
    synced_ = true;
    dirty_ = true;
  } else {
    reload_manifests();
  }
  epoll_event events[32];
  for (;;) {
    if (dirty_ && synced_ && !reconcile_at_) reconcile();
    int n = epoll_wait(epoll_.get(), events, 32, next_timeout_ms());
    if (n < 0 && errno != EINTR) fail_errno(Code::kInternal, "epoll_wait", errno);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == signal_.get()) {
        log::info("agent stopping; the kernel keeps enforcing the last applied state");
        unlink(opt_.socket_path.c_str());
        return 0;
      }
      if (fd == inotify_.get()) {
        char buf[4096];
        while (read(inotify_.get(), buf, sizeof buf) > 0) {
        }
        if (!reload_at_) reload_at_ = Clock::now() + opt_.debounce;
      } else if (fd == listen_.get()) {
        accept_clients();
      } else {
        on_control_readable(fd);
      }
    }
    auto now = Clock::now();
    if (reload_at_ && now >= *reload_at_) {
      reload_at_.reset();
      reload_manifests();
    }
    if (reconcile_at_ && now >= *reconcile_at_) {
      reconcile_at_.reset();
      if (synced_) dirty_ = true;
    }
    answer_waiters(false);
  }
}

int Agent_run_guarded(const AgentOptions& o) {
  try {
    Agent a(o);
    return a.run();
  } catch (const Error& e) {
    log::error(str("agent: ", e.what()));
    return 1;
  }
}

}  // namespace

int run_agent(const AgentOptions& options) { return Agent_run_guarded(options); }

int agent_main(int argc, char** argv) {
  log::init_from_env(log::Level::kInfo);
  AgentOptions o;
  if (const char* n = std::getenv("NODE_NAME")) o.node_name = n;
  for (int i = 2; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= argc) {
        log::error(str("agent: ", a, " needs a value"));
        std::exit(2);
      }
      out = argv[++i];
    };
    if (a == "--manifests") {
      value(o.manifests_dir);
    } else if (a == "--node-name") {
      value(o.node_name);
    } else if (a == "--socket") {
      value(o.socket_path);
    } else if (a == "--data-dir") {
      value(o.cni_data_dir);
    } else {
      log::error(str("agent: unknown argument ", a,
                     " (usage: knit agent [--manifests DIR] [--node-name NAME] [--socket PATH] "
                     "[--data-dir DIR])"));
      return 2;
    }
  }
  return run_agent(o);
}

}  // namespace knit::watcher
