#include "watcher/agent.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
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
#include "conf/containerd.hpp"
#include "core/error.hpp"
#include "core/fd.hpp"
#include "core/fs.hpp"
#include "core/log.hpp"
#include "core/netlink.hpp"
#include "core/rtnl.hpp"
#include "core/str.hpp"
#include "ipam/store.hpp"
#include "nft/apply.hpp"
#include "nft/plan.hpp"
#include "watcher/api_source.hpp"
#include "watcher/claims.hpp"
#include "watcher/cni_config.hpp"
#include "watcher/compile.hpp"
#include "watcher/conntrack.hpp"
#include "watcher/evaluate.hpp"
#include "watcher/manifests.hpp"
#include "watcher/metrics.hpp"
#include "watcher/nat.hpp"
#include "watcher/reconciler.hpp"
#include "watcher/routes.hpp"

namespace knit::watcher {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kDefaultAttachTimeout{5000};
constexpr milliseconds kRetryMin{100};
constexpr milliseconds kRetryMax{5000};
constexpr size_t kMaxRequest = 64 * 1024;
/// A scrape reads the nftables counters (one dump) at most this often.
constexpr milliseconds kCountersMinInterval{1000};
/// Quiet time after an incremental commit before freed memory is handed back (malloc_trim).
constexpr milliseconds kTrimQuiet{2000};

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
  explicit Agent(const AgentOptions& o) : opt_(o), cfg_(opt_.config) {
    view_.node_name = cfg_.node_name;
  }

  int run();

 private:
  void setup();
  void load_attachments_from_stores();
  void reload_manifests();
  void on_api_events();
  void apply_pods(std::vector<std::string> changed);
  void apply_nodes();
  void update_synced();
  void publish_metrics();
  void read_policy_counters();
  void reconcile();
  bool refuse_culprit();
  void keep_refused(std::vector<std::string>& changed);
  void retry_refused();
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
  const conf::AgentConfig& cfg_;
  ClusterView view_;
  Reconciler rec_;
  nl::Socket nft_ = nl::Socket::open(NETLINK_NETFILTER);
  nl::Socket ct_ = nl::Socket::open(NETLINK_NETFILTER);
  nl::Socket rt_ = nl::Socket::open(NETLINK_ROUTE);
  Fd epoll_, signal_, inotify_, listen_;
  std::unique_ptr<ApiSource> api_;
  std::set<Kind> api_pending_;  ///< kinds whose first list has not completed
  bool manifests_loaded_ = false;
  /// Nodes (API only): routes, masquerade, the conflist.
  std::map<std::string, Node, std::less<>> nodes_;
  bool nodes_dirty_ = false;
  std::optional<MasqueradeCidrs> masq_;
  std::string conf_dir_;
  /// Which API pod each pod address belongs to: the latest claim wins (IP reuse).
  AddressClaims claims_;
  AgentMetrics metrics_;
  Health health_;
  std::unique_ptr<MetricsServer> http_;
  uint64_t revoked_total_ = 0;
  std::map<int, Conn> conns_;
  std::deque<Waiter> waiters_;
  bool synced_ = false;
  bool dirty_ = false;
  uint64_t generation_ = 0;
  std::string loaded_digest_;
  std::string applied_digest_;
  std::string last_error_;
  /// Policies the kernel refused, as their sources show them. The view holds each as deny_all()
  /// until its source shows other content (keep_refused).
  std::map<std::string, NetworkPolicy, std::less<>> refused_;
  std::optional<Clock::time_point> reload_at_, reconcile_at_, nodes_at_, resync_at_;
  /// When to hand freed memory back to the kernel: once things have been quiet for a while.
  std::optional<Clock::time_point> trim_at_;
  std::optional<Clock::time_point> counters_read_;
  milliseconds retry_ = kRetryMin;
  milliseconds nodes_retry_ = kRetryMin;
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

  if (!cfg_.manifests_dir.empty()) {
    inotify_ = Fd(sys_check(inotify_init1(IN_CLOEXEC | IN_NONBLOCK), "inotify_init1"));
    uint32_t events = IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO |
                      IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;
    if (inotify_add_watch(inotify_.get(), cfg_.manifests_dir.c_str(), events) < 0) {
      fail_errno(Code::kIo, str("watch manifests directory ", cfg_.manifests_dir), errno);
    }
    add_fd(epoll_.get(), inotify_.get());
  } else {
    // No manifests: the Kubernetes API (--kubeconfig, $KUBECONFIG, else in-cluster).
    if (cfg_.node_name.empty()) {
      fail(Code::kInvalidConfig,
           "node name unknown: set --node-name, node_name in the config, or NODE_NAME");
    }
    ApiConfig api = select_api_config(cfg_.kubeconfig);
    log::info(str("Kubernetes API ", api.server, " (", api.origin, ")"));
    api_ = std::make_unique<ApiSource>(std::move(api));
    api_pending_ = {Kind::kNamespace, Kind::kPod, Kind::kNetworkPolicy, Kind::kNode};
    add_fd(epoll_.get(), api_->fd());
    if (!cfg_.cni_conf_dir.empty()) {
      conf_dir_ = cfg_.cni_conf_dir;
    } else {
      auto dirs = conf::detect_cni_dirs("", cfg_.containerd_config);
      conf_dir_ = dirs.conf_dir;
      log::info(str("CNI conf dir ", conf_dir_, " (", dirs.origin, ")"));
    }
  }
  if (!cfg_.metrics_address.empty()) {
    http_ = std::make_unique<MetricsServer>(cfg_.metrics_address, metrics_.registry, health_);
    add_fd(epoll_.get(), http_->fd());
    log::info(str("metrics and health on ", cfg_.metrics_address, " (port ", http_->port(), ")"));
    http_->set_before_respond([this] {
      if (!counters_read_ || Clock::now() - *counters_read_ >= kCountersMinInterval) {
        read_policy_counters();
      }
    });
  }

  // The control socket: replace a stale one left by a dead agent.
  auto slash = cfg_.socket_path.rfind('/');
  if (slash != std::string::npos && slash > 0) make_dirs(cfg_.socket_path.substr(0, slash), 0755);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (cfg_.socket_path.size() >= sizeof addr.sun_path) {
    fail(Code::kInvalidConfig, str("agent socket path too long: ", cfg_.socket_path));
  }
  std::memcpy(addr.sun_path, cfg_.socket_path.c_str(), cfg_.socket_path.size() + 1);
  unlink(cfg_.socket_path.c_str());
  listen_ = Fd(sys_check(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), "socket"));
  if (bind(listen_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    fail_errno(Code::kIo, str("bind agent socket ", cfg_.socket_path), errno);
  }
  chmod(cfg_.socket_path.c_str(), 0600);
  sys_check(listen(listen_.get(), 128), "listen");
  add_fd(epoll_.get(), listen_.get());
}

void Agent::load_attachments_from_stores() {
  std::string root = str(cfg_.data_dir, "/ipam");
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
    m = load_manifests(cfg_.manifests_dir);
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
  keep_refused(pol_changed);
  loaded_digest_ = m.digest;
  m = Manifests{};
  malloc_trim(0);
  if (ns_changed.empty() && pods_changed.empty() && pol_changed.empty() && synced_) {
    if (!dirty_) {
      applied_digest_ = loaded_digest_;  // nothing to apply: this content is in force already
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
  manifests_loaded_ = true;
  dirty_ = true;
  update_synced();
}

void Agent::update_synced() {
  bool was = synced_;
  synced_ = (cfg_.manifests_dir.empty() || manifests_loaded_) && api_pending_.empty();
  if (synced_ && !was) {
    dirty_ = true;
    if (api_) log::info("API: first lists of every kind complete; applying");
  }
  if (!synced_) {
    std::string what = "the manifests directory";
    if (!api_pending_.empty()) {
      what = "the first list of";
      for (Kind k : api_pending_) what += str(" ", api_resource(k));
    }
    health_.set_synced(false, what);
  }
}

namespace {

/// Applies one API event of a kind to the agent's map of that kind; appends the changed keys.
/// Objects are copied, not moved, into the map: the API workers decoded them in their own malloc
/// arena among the JSON documents' memory, and a moved string there would pin a page of that
/// garbage for as long as the object lives (17 MiB of it in one run at 10k pods). Copied here,
/// they live in the loop's arena, and the workers' arena empties when the event is dropped.
template <class Map, class Obj, class KeyFn>
void apply_event(Map& have, ApiEventType type, const std::vector<Obj>& objects,
                 const ObjectRef& ref, KeyFn key, std::vector<std::string>& changed) {
  switch (type) {
    case ApiEventType::kReplace: {
      Map want;
      for (const auto& o : objects) want.insert_or_assign(key(o), o);
      auto c = update_in_place(have, std::move(want));
      changed.insert(changed.end(), c.begin(), c.end());
      return;
    }
    case ApiEventType::kUpsert:
      for (const auto& o : objects) {
        std::string k = key(o);
        auto it = have.find(k);
        if (it == have.end()) {
          have.emplace(k, o);
        } else if (!(it->second == o)) {
          it->second = o;
        } else {
          continue;
        }
        changed.push_back(std::move(k));
      }
      return;
    case ApiEventType::kDelete: {
      std::string k = ref.namespace_.empty() ? ref.name : object_key(ref.namespace_, ref.name);
      if (have.erase(k)) changed.push_back(std::move(k));
      return;
    }
    case ApiEventType::kSynced:
      return;
  }
}

uint64_t rv_number(const std::string& rv) {
  uint64_t n = 0;
  for (char c : rv) {
    if (c < '0' || c > '9') return 0;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  return n;
}

}  // namespace

void Agent::on_api_events() {
  std::vector<std::string> ns_changed, pods_changed, pol_changed, nodes_changed;
  for (auto& ev : api_->drain()) {
    switch (ev.kind) {
      case Kind::kNamespace:
        apply_event(view_.namespaces, ev.type, ev.objects.namespaces, ev.ref,
                    [](const Namespace& n) { return n.name; }, ns_changed);
        break;
      case Kind::kPod:
        apply_event(view_.pods, ev.type, ev.objects.pods, ev.ref,
                    [](const Pod& p) { return object_key(p.namespace_, p.name); }, pods_changed);
        break;
      case Kind::kNetworkPolicy:
        apply_event(view_.policies, ev.type, ev.objects.policies, ev.ref,
                    [](const NetworkPolicy& p) { return object_key(p.namespace_, p.name); },
                    pol_changed);
        break;
      case Kind::kNode:
        apply_event(nodes_, ev.type, ev.objects.nodes, ev.ref,
                    [](const Node& n) { return n.name; }, nodes_changed);
        break;
      case Kind::kOther:
        break;
    }
    if (ev.type == ApiEventType::kSynced && api_pending_.erase(ev.kind)) {
      log::info(str("API: ", api_resource(ev.kind), " listed"));
    }
  }
  keep_refused(pol_changed);
  if (!pods_changed.empty()) apply_pods(std::move(pods_changed));
  if (!ns_changed.empty()) rec_.namespaces_changed(ns_changed);
  if (!pol_changed.empty()) rec_.policies_changed(pol_changed);
  if (!nodes_changed.empty()) nodes_dirty_ = true;
  if (!ns_changed.empty() || !pol_changed.empty()) dirty_ = true;
  update_synced();
  if (nodes_dirty_ && !api_pending_.count(Kind::kNode) && !nodes_at_) nodes_at_ = Clock::now();
}

// Addresses the API shows on two pods go to the newest claim (watcher/claims.hpp); the loser's
// copy in the view drops them, so the compiler sees each address on one pod only.
void Agent::apply_pods(std::vector<std::string> changed) {
  size_t n = changed.size();
  // Pods gone first: what they held is free for the reports of the same batch.
  for (size_t i = 0; i < n; ++i) {
    if (!view_.pods.count(changed[i])) claims_.release(changed[i]);
  }
  std::vector<AddressClaims::Loss> lost;
  for (size_t i = 0; i < n; ++i) {
    auto pod = view_.pods.find(changed[i]);
    if (pod == view_.pods.end()) continue;
    static const std::vector<IpAddr> kNone;
    const auto& ips = pod->second.host_network ? kNone : pod->second.ips;
    auto l = claims_.report(changed[i], ips, rv_number(pod->second.resource_version));
    lost.insert(lost.end(), l.begin(), l.end());
  }
  for (const auto& l : lost) {
    auto pod = view_.pods.find(l.pod);
    if (pod == view_.pods.end()) continue;
    auto& ips = pod->second.ips;
    auto pos = std::find(ips.begin(), ips.end(), l.ip);
    if (pos == ips.end()) continue;
    ips.erase(pos);
    changed.push_back(l.pod);
    log::info(str("address ", l.ip.to_string(), " of pod ", l.pod, " is now ", l.holder,
                  "'s: the old claim is dropped"));
  }
  rec_.pods_changed(changed);
  dirty_ = true;
}

void Agent::apply_nodes() {
  nodes_at_.reset();
  nodes_dirty_ = false;
  std::vector<Node> nodes;
  nodes.reserve(nodes_.size());
  for (const auto& [name, n] : nodes_) nodes.push_back(n);
  bool failed = false;
  try {
    auto ch = sync_routes(rt_, plan_routes(nodes, cfg_.node_name));
    for (const auto& r : ch.add) log::info(str("route added: ", to_string(r)));
    for (const auto& r : ch.change) log::info(str("route changed: ", to_string(r)));
    for (const auto& r : ch.remove) log::info(str("route removed: ", to_string(r)));
    for (const auto& r : ch.blocked) {
      log::every(str("blocked ", r.dst.to_string()), std::chrono::minutes(5), log::Level::kWarn,
                 str("route ", to_string(r), " not installed: another owner routes ",
                     r.dst.to_string()));
    }
  } catch (const std::exception& e) {
    failed = true;
    log::every("routes", std::chrono::seconds(30), log::Level::kError,
               str("routes: ", e.what()));
  }
  if (auto self = nodes_.find(cfg_.node_name); self != nodes_.end()) {
    CniConfigOptions o;
    o.mtu = cfg_.mtu;
    o.agent_mode = cfg_.agent_mode;
    if (cfg_.socket_path != conf::AgentConfig{}.socket_path) o.agent_socket = cfg_.socket_path;
    if (cfg_.data_dir != conf::AgentConfig{}.data_dir) o.data_dir = cfg_.data_dir;
    o.ipv4 = cfg_.ipv4;
    o.ipv6 = cfg_.ipv6;
    if (auto content = render_cni_config(self->second, o)) {
      try {
        if (write_cni_config(conf_dir_, *content, cfg_.conflist_name)) {
          log::info(str("wrote ", conf_dir_, "/", cfg_.conflist_name));
        }
      } catch (const std::exception& e) {
        failed = true;
        log::every("conflist", std::chrono::seconds(30), log::Level::kError, e.what());
      }
    } else {
      log::every("no podcidr", std::chrono::minutes(1), log::Level::kWarn,
                 str("node ", cfg_.node_name, " has no podCIDRs yet: no conflist written"));
    }
  } else {
    log::every("no node", std::chrono::minutes(1), log::Level::kWarn,
               str("node ", cfg_.node_name, " not found in the API: no conflist written"));
  }
  if (cfg_.masquerade) {
    auto c = masquerade_cidrs(nodes, cfg_.node_name, cfg_.no_masquerade_cidrs);
    if (!masq_ || *masq_ != c) {
      rec_.set_extra(masquerade_sets(c), {masquerade_chain(c)});
      masq_ = std::move(c);
      dirty_ = true;
    }
  }
  if (failed) {
    nodes_dirty_ = true;
    nodes_at_ = Clock::now() + nodes_retry_;
    nodes_retry_ = std::min(nodes_retry_ * 2, kRetryMax);
  } else {
    nodes_retry_ = kRetryMin;
  }
}

void Agent::reconcile() {
  if (!synced_) return;
  auto t0 = Clock::now();
  std::string digest = loaded_digest_;
  try {
    bool full = !rec_.synced();
    size_t changes = full ? rec_.full_sync(nft_, view_) : rec_.sync(nft_, view_);
    // A full sync and a manifests reload build large transient structures (the whole table,
    // the JSON documents); hand that memory back rather than keep the peak resident. Bursts of
    // events leave freed memory behind too (decoded events, diffs): it goes back once the
    // agent has been quiet for kTrimQuiet, not after every commit (a trim walks the heap).
    if (full) {
      malloc_trim(0);
      trim_at_.reset();
    } else {
      trim_at_ = Clock::now() + kTrimQuiet;
    }
    ++generation_;
    dirty_ = false;
    applied_digest_ = digest;
    last_error_.clear();
    retry_ = kRetryMin;
    auto elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    metrics_.syncs.inc();
    metrics_.sync_duration.observe(elapsed);
    health_.set_last_apply({});
    health_.set_synced(true);
    publish_metrics();
    if (changes) {
      // A full sync always gets its line; incremental commits at most one every 10 s (a
      // churning cluster commits many times a second), with how many were held back. Every
      // commit is a debug line, and knit_syncs_total counts them all.
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
      std::string line = str("applied generation ", generation_, ": ", changes, " change(s) in ",
                             us, " us");
      if (full) {
        log::info(line);
      } else if (!log::every("applied", std::chrono::seconds(10), log::Level::kInfo, line)) {
        log::debug(line);
      }
    }
    answer_waiters(true);
    if (changes) revoke();
  } catch (const std::exception& e) {
    last_error_ = e.what();
    metrics_.sync_errors.inc();
    health_.set_last_apply(last_error_);
    rec_.everything_changed();  // start over from what the kernel holds
    if (refuse_culprit()) {
      reconcile_at_ = Clock::now();  // without it, at once
      return;
    }
    log::every("apply", std::chrono::seconds(10), log::Level::kError,
               str("apply: ", e.what(), "; retrying in ", retry_.count(), " ms"));
    reconcile_at_ = Clock::now() + retry_;
    retry_ = std::min(retry_ * 2, kRetryMax);
  }
}

namespace {

/// Check-only commits (nft::check: nothing changes) of the view as it is at each call, against
/// the kernel's table as read once, with one compiler for them all (the policies are read from
/// the view at each check). Construction throws when the table cannot be read.
class ViewCheck {
 public:
  ViewCheck(nl::Socket& sock, const Reconciler& rec, const ClusterView& view)
      : sock_(sock), rec_(rec), kernel_(Reconciler::read_kernel(sock, &names_)), compiler_(view) {}
  /// Whether the kernel would take the view; when not, why() is what it answered.
  bool passes() {
    try {
      rec_.check(sock_, compiler_, kernel_, names_);
      return true;
    } catch (const std::exception& e) {
      why_ = e.what();
      return false;
    }
  }
  const std::string& why() const noexcept { return why_; }

 private:
  nl::Socket& sock_;
  const Reconciler& rec_;
  nft::SetNames names_;  // before kernel_: read_kernel fills it
  std::optional<nft::Ruleset> kernel_;
  Compiler compiler_;
  std::string why_;
};

/// `p` without its rules: it still isolates the pods it selects in its directions, and allows
/// nothing. A policy the kernel refuses is enforced so: never more open than what it says.
NetworkPolicy deny_all(NetworkPolicy p) {
  p.ingress.clear();
  p.egress.clear();
  return p;
}

}  // namespace

/// After a failed commit: if the kernel refuses the view because of one policy, holds that
/// policy as deny_all() so that everything else is enforced and changes flow again. A refusal
/// stalls every change otherwise (CNI ADDs then time out), and the last table stays in force.
/// Check-only commits (nft::check: nothing changes) of the view with the rules of ever fewer
/// policies dropped find the first policy, in key order, without whose rules the rest passes:
/// a bisection, about log2(policies) checks, each a compile and a check-only commit (the
/// kernel's table is read once). False when the whole view passes the check (the failure was
/// transient) or fails even with no policy's rules (not a policy's doing); the caller then
/// retries as before.
bool Agent::refuse_culprit() {
  std::optional<ViewCheck> check;
  try {
    check.emplace(nft_, rec_, view_);
  } catch (const std::exception&) {
    return false;  // not even that: the caller's retry reports it
  }
  if (check->passes()) return false;
  std::vector<decltype(view_.policies)::iterator> order;  // policies with rules, in key order
  for (auto it = view_.policies.begin(); it != view_.policies.end(); ++it) {
    if (!it->second.ingress.empty() || !it->second.egress.empty()) order.push_back(it);
  }
  // Whether the view passes with the rules of the first k of `order` dropped (the policies'
  // values change in place and back: map nodes stay, as the reconciler's compiler needs).
  auto passes_without_first = [&](size_t k) {
    std::vector<NetworkPolicy> saved;
    saved.reserve(k);
    for (size_t i = 0; i < k; ++i) {
      saved.push_back(std::move(order[i]->second));
      order[i]->second = deny_all(saved.back());
    }
    bool ok = check->passes();
    for (size_t i = 0; i < k; ++i) order[i]->second = std::move(saved[i]);
    return ok;
  };
  std::string refusal = check->why();
  if (order.empty() || !passes_without_first(order.size())) return false;
  size_t fails = 0, ok = order.size();  // without the first `fails`: refused; `ok`: passes
  while (ok - fails > 1) {
    size_t mid = fails + (ok - fails) / 2;
    if (passes_without_first(mid)) {
      ok = mid;
    } else {
      fails = mid;
      refusal = check->why();
    }
  }
  auto it = order[ok - 1];
  log::error(str("policy ", it->first, ": the kernel refused it (", refusal,
                 "); enforcing it as deny-all for the pods it selects until it changes or the ",
                 "kernel takes it (checked at every resync)"));
  refused_.insert_or_assign(it->first, it->second);
  it->second = deny_all(std::move(it->second));
  rec_.policies_changed({it->first});
  metrics_.policies_refused.set(static_cast<double>(refused_.size()));
  return true;
}

/// After a source wrote the policies `changed` into the view: a refused policy that came back
/// with the content the kernel refused is held as deny_all() again, and is no change (the view
/// held that before); one that changed or went away gets its chance.
void Agent::keep_refused(std::vector<std::string>& changed) {
  if (refused_.empty()) return;
  std::erase_if(changed, [&](const std::string& key) {
    auto r = refused_.find(key);
    if (r == refused_.end()) return false;
    auto it = view_.policies.find(key);
    if (it != view_.policies.end() && it->second == r->second) {
      it->second = deny_all(std::move(it->second));
      return true;
    }
    log::info(str("policy ", key, it == view_.policies.end() ? " was deleted" : " changed",
                  ": no longer held as deny-all"));
    refused_.erase(r);
    return false;
  });
  metrics_.policies_refused.set(static_cast<double>(refused_.size()));
}

/// At every resync, each refused policy gets another chance, as its source shows it: what the
/// kernel refuses can depend on more than the policy (its limits, the other objects), and a
/// policy held as deny-all until someone edits it would stay closed for no reason. Each is put
/// back into the view and the whole view is checked (check-only: nothing changes); one that
/// passes is enforced as written from the next commit, one that fails is held as before.
void Agent::retry_refused() {
  if (refused_.empty()) return;
  std::optional<ViewCheck> check;
  try {
    check.emplace(nft_, rec_, view_);
  } catch (const std::exception& e) {
    log::error(str("refused policies: not retried (", e.what(), ")"));
    return;
  }
  for (auto r = refused_.begin(); r != refused_.end();) {
    auto it = view_.policies.find(r->first);
    if (it == view_.policies.end()) {  // keep_refused lets go of deleted ones; in case
      r = refused_.erase(r);
      continue;
    }
    NetworkPolicy held = std::move(it->second);
    it->second = r->second;
    if (!check->passes()) {
      it->second = std::move(held);
      ++r;
      continue;
    }
    log::info(str("policy ", r->first, ": the kernel takes it now; enforced as written"));
    rec_.policies_changed({r->first});
    r = refused_.erase(r);
  }
  metrics_.policies_refused.set(static_cast<double>(refused_.size()));
}

/// The node's own addresses (every address in the agent's namespace).
std::set<IpAddr> node_addresses(nl::Socket& rt) {
  std::set<IpAddr> out;
  for (const auto& a : rtnl::list_addrs(rt)) out.insert(a.prefix.addr());
  return out;
}

void Agent::publish_metrics() {
  auto st = rec_.stats();
  metrics_.set_elements("addrs").set(static_cast<double>(st.addrs));
  metrics_.set_elements("tuples").set(static_cast<double>(st.tuples));
  metrics_.set_elements("ports").set(static_cast<double>(st.ports));
  metrics_.set_elements("maps").set(static_cast<double>(st.maps));
  metrics_.rules.set(static_cast<double>(st.rules));
  metrics_.pods_local.set(static_cast<double>(view_.attachments.size()));
  if (api_) {
    for (Kind k : {Kind::kNamespace, Kind::kPod, Kind::kNetworkPolicy, Kind::kNode}) {
      auto a = api_->stats(k);
      metrics_.api_watch_restarts(api_resource(k)).set(static_cast<double>(a.watch_restarts));
      metrics_.api_relists(api_resource(k)).set(static_cast<double>(a.lists));
    }
  }
}

/// knit_policy_packets_total from the named counters of knit's table: one dump when /metrics is
/// scraped (at most once per kCountersMinInterval), so nothing is read while nobody looks.
void Agent::read_policy_counters() {
  counters_read_ = Clock::now();
  if (!rec_.synced()) return;
  try {
    std::vector<PolicyPackets> out;
    for (auto& [name, packets] : nft::read_counters(nft_, nft::TableFamily::kInet, kTableName)) {
      std::string_view n = name;
      PolicyPackets p;
      p.packets = packets;
      if (n.substr(0, 6) == "allow/") {
        n.remove_prefix(6);
        auto slash = n.find('/');
        if (slash == std::string_view::npos) continue;
        p.ns = n.substr(0, slash);
        p.policy = n.substr(slash + 1);
        p.verdict = "allow";
        // A name too long for the kernel was cut and hashed ('~' is never in a policy name).
        if (p.policy.find('~') != std::string::npos) {
          for (auto it = view_.policies.lower_bound(str(p.ns, '/'));
               it != view_.policies.end() && it->second.namespace_ == p.ns; ++it) {
            if (allow_counter(p.ns, it->second.name) == name) {
              p.policy = it->second.name;
              break;
            }
          }
        }
      } else if (n.substr(0, 5) == "drop/") {
        p.ns = n.substr(5);
        p.verdict = "drop";
      } else {
        continue;
      }
      out.push_back(std::move(p));
    }
    metrics_.set_policy_packets(out);
  } catch (const std::exception& e) {
    log::every("counters", std::chrono::minutes(1), log::Level::kWarn,
               str("read policy counters: ", e.what()));
  }
}

void Agent::revoke() {
  if (!rec_.synced() || !cfg_.revocation) return;
  try {
    Evaluator ev(rec_, node_addresses(rt_));
    std::vector<CtFlow> doomed;
    for (const auto& c : dump_flows(ct_)) {
      Flow f{c.orig_src, c.reply_src, c.proto, c.reply_sport};
      if (ev.relevant(f) && !ev.allows(f)) doomed.push_back(c);
    }
    if (!doomed.empty()) {
      revoke_flows(ct_, doomed);
      metrics_.conntrack_revoked.inc(static_cast<double>(doomed.size()));
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
  consider(nodes_at_);
  consider(resync_at_);
  consider(trim_at_);
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
                "; socket ", cfg_.socket_path));
  load_attachments_from_stores();
  if (!cfg_.manifests_dir.empty()) reload_manifests();
  update_synced();
  if (cfg_.resync_interval.count() > 0) resync_at_ = Clock::now() + cfg_.resync_interval;
  epoll_event events[32];
  for (;;) {
    if (dirty_ && synced_ && !reconcile_at_) reconcile();
    int n = epoll_wait(epoll_.get(), events, 32, next_timeout_ms());
    if (n < 0 && errno != EINTR) fail_errno(Code::kInternal, "epoll_wait", errno);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == signal_.get()) {
        log::info("agent stopping; the kernel keeps enforcing the last applied state");
        unlink(cfg_.socket_path.c_str());
        return 0;
      }
      if (fd == inotify_.get()) {
        char buf[4096];
        while (read(inotify_.get(), buf, sizeof buf) > 0) {
        }
        if (!reload_at_) reload_at_ = Clock::now() + opt_.debounce;
      } else if (api_ && fd == api_->fd()) {
        on_api_events();
      } else if (http_ && fd == http_->fd()) {
        http_->on_readable();
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
    if (nodes_at_ && now >= *nodes_at_) apply_nodes();
    if (trim_at_ && now >= *trim_at_) {
      trim_at_.reset();
      malloc_trim(0);
    }
    if (resync_at_ && now >= *resync_at_) {
      // Start over from what the kernel holds (someone may have changed knit's table or routes).
      resync_at_ = now + cfg_.resync_interval;
      if (synced_) {
        retry_refused();
        rec_.everything_changed();
        dirty_ = true;
      }
      if (api_ && !api_pending_.count(Kind::kNode)) nodes_at_ = now;
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
  // Two malloc arenas (the default is 8 per core): one mostly for the loop, one shared by the
  // API list/watch threads that decode. Measured with api_bench at 10k pods: 8 arenas 50 MiB
  // steady RSS, 2 arenas 46-50 MiB, 1 arena 46 MiB but a first sync ~250 ms slower (the
  // decoding threads and the loop contend for one arena lock).
  mallopt(M_ARENA_MAX, 2);
  log::init_from_env(log::Level::kInfo);
  AgentOptions o;
  try {
    auto action = conf::apply_flags(o.config, argc - 2, argv + 2,
                                    [](const char* k) { return std::getenv(k); });
    if (action == conf::FlagsAction::kHelp) {
      std::string u = conf::agent_usage();
      (void)!write(1, u.data(), u.size());
      return 0;
    }
  } catch (const Error& e) {
    log::error(str("agent: ", e.what()));
    return 2;
  }
  log::set_level(o.config.log_level);
  log::info(str("agent: ", conf::describe(o.config)));
  return run_agent(o);
}

}  // namespace knit::watcher
