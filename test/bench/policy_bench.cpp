// policy_bench: the policy engine at cluster scale, against `nft -f`, in throwaway namespaces.
//
// Not a test: it prints numbers and asserts nothing. Needs root.
//   usage: policy_bench [namespaces=100] [pods_per_namespace=100] [policies_per_namespace=10]
// A synthetic cluster: every namespace has pods labelled app=a0..a9, tier=t0..t2 (one pod per
// namespace is on this node), and policies that select an app and allow it from the next app in
// the namespace and from app/tier pods of a tenth of the namespaces, on a numeric and a named
// port; every fourth policy also isolates egress (DNS to any namespace, an ipBlock with except).
//   1. full sync: compile + plan + commit into an empty namespace; `nft -f` of the same text
//      (the same short set names; POLICY_BENCH_LONG_NAMES=1: the model's names for both)
//      then a restart: a new reconciler's full sync onto the table the first one committed
//   2. incremental changes (pod added/removed, label changed, policy added/removed):
//      event-to-commit p50/p99 over many events
//   3. with KNIT_BINARY set: `knit agent` on the cluster as manifests (and on a small one), from
//      exec until it has applied them (its `wait` op on the directory's digest), and its RSS
#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <signal.h>

#include <algorithm>
#include <cstring>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "core/netlink.hpp"
#include "core/netns.hpp"
#include "core/str.hpp"
#include "nft/nft.hpp"
#include "test/bench/agent_wait.hpp"
#include "watcher/compile.hpp"
#include "watcher/reconciler.hpp"

using namespace knit;
using namespace knit::watcher;
using Clock = std::chrono::steady_clock;

namespace {

double ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

struct Ns {
  explicit Ns(const std::string& tag) {
    static int n = 0;
    name = "knit-t-" + std::to_string(getpid()) + "-pb" + std::to_string(n++) + "-" + tag;
    if (std::system(("ip netns add " + name).c_str()) != 0) {
      std::fprintf(stderr, "policy_bench: cannot create a network namespace (needs root)\n");
      std::exit(2);
    }
  }
  ~Ns() { (void)!std::system(("ip netns del " + name).c_str()); }
  std::string path() const { return "/run/netns/" + name; }
  std::string name;
};

LabelSelector sel(std::initializer_list<std::pair<const char*, std::string>> kv) {
  LabelSelector s;
  for (auto& [k, v] : kv) s.match_labels.emplace(k, v);
  return s;
}

Pod make_pod(uint32_t i, uint32_t j, uint32_t per_ns) {
  Pod p;
  p.namespace_ = str("ns", i);
  p.name = str("pod", j);
  p.labels = {{"app", str("a", j % 10)}, {"tier", str("t", j % 3)}};
  p.node_name = j % per_ns == 0 ? "node1" : str("node", 2 + j % 99);
  p.phase = PodPhase::kRunning;
  uint32_t n = i * per_ns + j;
  p.ips = {IpAddr::v4((10u << 24) | (1u << 16) | n)};
  p.ports = {{"http", 8080, Protocol::kTcp}, {"metrics", 9100, Protocol::kTcp}};
  return p;
}

NetworkPolicy make_policy(uint32_t i, uint32_t k, uint32_t namespaces) {
  NetworkPolicy p;
  p.namespace_ = str("ns", i);
  p.name = str("pol", k);
  p.pod_selector = sel({{"app", str("a", k % 10)}});
  PolicyRule in;
  PolicyPeer same;
  same.pod_selector = sel({{"app", str("a", (k + 1) % 10)}});
  PolicyPeer cross;
  cross.namespace_selector = sel({{"team", str("t", (k + i) % 10)}});
  cross.pod_selector = sel({{"app", str("a", k % 10)}, {"tier", "t0"}});
  in.peers = {same, cross};
  PolicyPort p80;
  p80.port = uint16_t{80};
  PolicyPort http;
  http.port = std::string("http");
  in.ports = {p80, http};
  p.ingress = {in};
  p.ingress_isolation = true;
  if (k % 4 == 0) {
    p.egress_isolation = true;
    PolicyRule dns;
    PolicyPeer any_ns;
    any_ns.namespace_selector = LabelSelector{};
    dns.peers = {any_ns};
    PolicyPort d;
    d.protocol = Protocol::kUdp;
    d.port = uint16_t{53};
    dns.ports = {d};
    PolicyRule block;
    PolicyPeer b;
    b.ip_block = IpBlock{*Prefix::parse("10.0.0.0/8"), {*Prefix::parse("10.99.0.0/16")}};
    block.peers = {b};
    p.egress = {dns, block};
  }
  (void)namespaces;
  return p;
}

ClusterView make_view(uint32_t namespaces, uint32_t per_ns, uint32_t pols) {
  ClusterView v;
  v.node_name = "node1";
  for (uint32_t i = 0; i < namespaces; ++i) {
    Namespace n;
    n.name = str("ns", i);
    n.labels = {{"team", str("t", i % 10)}, {std::string(kNamespaceNameLabel), n.name}};
    v.namespaces[n.name] = n;
    for (uint32_t j = 0; j < per_ns; ++j) {
      Pod p = make_pod(i, j, per_ns);
      v.pods[object_key(p.namespace_, p.name)] = p;
    }
    for (uint32_t k = 0; k < pols; ++k) {
      auto p = make_policy(i, k, namespaces);
      v.policies[object_key(p.namespace_, p.name)] = p;
    }
  }
  return v;
}

struct Stats {
  double p50, p99;
};
Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v[std::min(v.size() - 1, v.size() * 99 / 100)]};
}

/// `rs` under the set names the kernel got from `p` (nft::SetNames), so that `nft -f` loads
/// the names knit loads.
nft::Ruleset kernel_form(nft::Ruleset rs, const nft::Plan& p) {
  for (auto& s : rs.sets) s.name = p.kernel_name(s.name);
  for (auto& c : rs.chains) {
    for (auto& r : c.rules) {
      for (auto& st : r.stmts) {
        if (auto* n = nft::set_named(st)) *n = p.kernel_name(*n);
      }
    }
  }
  return rs;
}

double nft_load(const Ns& ns, const std::string& file) {
  auto t0 = Clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(ns.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) _exit(126);
    execlp("nft", "nft", "-f", file.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? ms(t0, Clock::now()) : -1;
}

std::string labels_json(const Labels& l) {
  std::string out = "{";
  for (const auto& [k, v] : l) out += str(out.size() > 1 ? "," : "", '"', k, "\":\"", v, '"');
  return out + "}";
}

std::string selector_json(const LabelSelector& s) {
  return str("{\"matchLabels\":", labels_json(s.match_labels), "}");
}

std::string rule_json(const PolicyRule& r, bool egress) {
  std::string peers;
  for (const auto& p : r.peers) {
    std::string one;
    if (p.ip_block) {
      std::string ex;
      for (const auto& e : p.ip_block->except) ex += str(ex.empty() ? "" : ",", '"', e.to_string(), '"');
      one = str("\"ipBlock\":{\"cidr\":\"", p.ip_block->cidr.to_string(), "\",\"except\":[", ex, "]}");
    } else {
      if (p.namespace_selector) one += str("\"namespaceSelector\":", selector_json(*p.namespace_selector));
      if (p.pod_selector) one += str(one.empty() ? "" : ",", "\"podSelector\":", selector_json(*p.pod_selector));
    }
    peers += str(peers.empty() ? "" : ",", '{', one, '}');
  }
  std::string ports;
  for (const auto& pp : r.ports) {
    std::string port;
    if (pp.port) {
      if (auto* n = std::get_if<uint16_t>(&*pp.port)) port = str(",\"port\":", *n);
      else port = str(",\"port\":\"", std::get<std::string>(*pp.port), '"');
    }
    ports += str(ports.empty() ? "" : ",", "{\"protocol\":\"", to_string(pp.protocol), '"', port, '}');
  }
  return str("{\"", egress ? "to" : "from", "\":[", peers, "],\"ports\":[", ports, "]}");
}

/// The view as manifests (one JSON List), as a user or the API would give them.
std::string manifests_json(const ClusterView& v) {
  std::string items;
  auto add = [&](const std::string& o) { items += str(items.empty() ? "" : ",\n", o); };
  for (const auto& [name, ns] : v.namespaces) {
    add(str("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"", name,
            "\",\"labels\":", labels_json(ns.labels), "}}"));
  }
  for (const auto& [key, p] : v.pods) {
    std::string ips, ports;
    for (const auto& ip : p.ips) ips += str(ips.empty() ? "" : ",", "{\"ip\":\"", ip.to_string(), "\"}");
    for (const auto& cp : *p.ports) {
      ports += str(ports.empty() ? "" : ",", "{\"name\":\"", cp.name, "\",\"containerPort\":", cp.port, '}');
    }
    add(str("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"", p.name,
            "\",\"namespace\":\"", p.namespace_, "\",\"labels\":", labels_json(p.labels),
            "},\"spec\":{\"nodeName\":\"", p.node_name,
            "\",\"containers\":[{\"name\":\"c\",\"image\":\"i\",\"ports\":[", ports,
            "]}]},\"status\":{\"phase\":\"Running\",\"podIPs\":[", ips, "]}}"));
  }
  for (const auto& [key, p] : v.policies) {
    std::string in, eg, types = "\"Ingress\"";
    for (const auto& r : p.ingress) in += str(in.empty() ? "" : ",", rule_json(r, false));
    for (const auto& r : p.egress) eg += str(eg.empty() ? "" : ",", rule_json(r, true));
    if (p.egress_isolation) types += ",\"Egress\"";
    add(str("{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\",",
            "\"metadata\":{\"name\":\"", p.name, "\",\"namespace\":\"", p.namespace_,
            "\"},\"spec\":{\"podSelector\":", selector_json(p.pod_selector),
            ",\"policyTypes\":[", types, "],\"ingress\":[", in, "],\"egress\":[", eg, "]}}"));
  }
  return str("{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[\n", items, "]}\n");
}

long status_kib(pid_t pid, const char* field) {
  std::ifstream f(str("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(field, 0) == 0) return std::atol(line.c_str() + std::strlen(field));
  }
  return -1;
}

/// Starts `knit agent` on `view` written as manifests, inside a fresh namespace; prints the time
/// from exec to the first applied state and the agent's resident memory then.
void agent_rss(const char* knit, const ClusterView& view, const char* what) {
  Ns ns("agent");
  std::string dir = str("/tmp/knit-pb-", getpid(), "-", ns.name.substr(ns.name.find("-pb") + 1));
  std::string manifests = dir + "/m", socket = dir + "/agent.sock";
  (void)!std::system(("mkdir -p " + manifests).c_str());
  std::ofstream(manifests + "/cluster.json") << manifests_json(view);
  auto t0 = Clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(ns.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) _exit(126);
    int null = open("/dev/null", O_WRONLY);
    if (!std::getenv("POLICY_BENCH_AGENT_LOG")) dup2(null, 2);
    execl(knit, knit, "agent", "--manifests", manifests.c_str(), "--node-name", "node1",
          "--socket", socket.c_str(), "--data-dir", dir.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  std::string error = bench::wait_applied(pid, socket, manifests, std::chrono::minutes(5));
  double t = ms(t0, Clock::now());
  if (error.empty()) {
    usleep(200000);  // let the first sync's transient buffers go
    std::printf("agent (%s: %zu pods, %zu policies): first sync %.0f ms after exec; RSS %.1f MiB, "
                "peak %.1f MiB\n",
                what, view.pods.size(), view.policies.size(), t,
                static_cast<double>(status_kib(pid, "VmRSS:")) / 1024.0,
                static_cast<double>(status_kib(pid, "VmHWM:")) / 1024.0);
  } else {
    std::printf("agent (%s: %zu pods, %zu policies): NOT SYNCED after %.0f ms: %s\n", what,
                view.pods.size(), view.policies.size(), t, error.c_str());
  }
  kill(pid, SIGTERM);
  int st;
  waitpid(pid, &st, 0);
  if (!std::getenv("POLICY_BENCH_KEEP")) (void)!std::system(("rm -rf " + dir).c_str());
}

}  // namespace

int main(int argc, char** argv) try {
  uint32_t namespaces = argc > 1 ? static_cast<uint32_t>(std::atoi(argv[1])) : 100;
  uint32_t per_ns = argc > 2 ? static_cast<uint32_t>(std::atoi(argv[2])) : 100;
  uint32_t pols = argc > 3 ? static_cast<uint32_t>(std::atoi(argv[3])) : 10;

  ClusterView view = make_view(namespaces, per_ns, pols);
  std::printf("cluster: %u namespaces, %zu pods (%u on this node), %zu policies\n", namespaces,
              view.pods.size(), namespaces, view.policies.size());

  // 1. Full sync.
  std::vector<double> t_compile, t_commit, t_plan, t_lower;
  nft::Ruleset rs;
  nft::Plan last;  // for the kernel's set names
  for (int r = 0; r < 3; ++r) {
    Ns ns("full");
    auto sock = nl::Socket::open_in(Netns::open(ns.path()), NETLINK_NETFILTER);
    auto a = Clock::now();
    rs = compile(view);
    auto b = Clock::now();
    // Short kernel set names, as the agent gives them (nft::SetNames);
    // POLICY_BENCH_LONG_NAMES=1 gives the kernel the model's names instead, to compare.
    nft::SetNames names;
    auto plan = nft::plan(std::optional<nft::Ruleset>{}, rs,
                          std::getenv("POLICY_BENCH_LONG_NAMES") ? nullptr : &names);
    auto b1 = Clock::now();
    auto batch = nft::lower(plan);
    auto b2 = Clock::now();
    rusage r0{}, r1{};
    getrusage(RUSAGE_SELF, &r0);
    nft::commit(sock, batch, &plan);
    getrusage(RUSAGE_SELF, &r1);
    auto c = Clock::now();
    if (r == 0) {
      auto us = [](const timeval& t) { return t.tv_sec * 1e6 + t.tv_usec; };
      std::printf("  (commit cpu: sys %.1f ms, user %.1f ms)\n",
                  (us(r1.ru_stime) - us(r0.ru_stime)) / 1000, (us(r1.ru_utime) - us(r0.ru_utime)) / 1000);
    }
    t_compile.push_back(ms(a, b));
    t_plan.push_back(ms(b, b1));
    t_lower.push_back(ms(b1, b2));
    t_commit.push_back(ms(b, c));
    last.new_names = std::move(plan.new_names);  // the rest is freed here, as before
  }
  std::printf("  (plan %.1f ms, lower %.1f ms, kernel commit %.1f ms)\n", stats(t_plan).p50,
              stats(t_lower).p50, stats(t_commit).p50 - stats(t_plan).p50 - stats(t_lower).p50);
  size_t elements = 0, rules = 0;
  for (const auto& s : rs.sets) elements += s.elements.size();
  for (const auto& c : rs.chains) rules += c.rules.size();
  double knit_total = stats(t_compile).p50 + stats(t_commit).p50;
  std::printf("ruleset: %zu sets, %zu chains, %zu rules, %zu elements\n", rs.sets.size(),
              rs.chains.size(), rules, elements);
  std::printf("full sync (knit): %.1f ms = compile %.1f + plan/lower/commit %.1f (median of 3)\n",
              knit_total, stats(t_compile).p50, stats(t_commit).p50);
  std::string file = str("/tmp/knit-policy-bench-", getpid(), ".nft");
  std::ofstream(file) << nft::render(kernel_form(rs, last));
  std::vector<double> t_nft;
  for (int r = 0; r < 3; ++r) {
    Ns ns("nft");
    t_nft.push_back(nft_load(ns, file));
  }
  if (!std::getenv("POLICY_BENCH_KEEP")) unlink(file.c_str());
  std::printf(
      "full sync (nft -f of the same ruleset text, same set names): %.1f ms (knit/nft = %.2f)\n",
      stats(t_nft).p50, knit_total / stats(t_nft).p50);

  if (std::getenv("POLICY_BENCH_FULL_ONLY")) return 0;
  // 2. Incremental: a reconciler on a loaded table, one event at a time.
  Ns ns("incr");
  auto sock = nl::Socket::open_in(Netns::open(ns.path()), NETLINK_NETFILTER);
  Reconciler rec;
  rec.full_sync(sock, view);
  {
    // An agent restarting onto its own table: read it back (short names from the set
    // comments), compile, diff; nothing to commit.
    std::vector<double> t;
    size_t changes = 0;
    for (int r = 0; r < 3; ++r) {
      Reconciler again;
      auto a = Clock::now();
      changes += again.full_sync(sock, view);
      t.push_back(ms(a, Clock::now()));
    }
    std::printf(
        "restart onto its own table (read back, compile, diff; %zu changes): %.1f ms "
        "(median of 3)\n",
        changes, stats(t).p50);
  }
  // POLICY_BENCH_ONLY=<prefix>: only the incremental phases whose name starts with it (profiling).
  const char* only = std::getenv("POLICY_BENCH_ONLY");
  auto measure = [&](const char* what, int n, auto&& change) {
    if (only && std::string_view(what).substr(0, std::strlen(only)) != only) return;
    std::vector<double> t;
    rusage r0{}, r1{};
    getrusage(RUSAGE_SELF, &r0);
    for (int e = 0; e < n; ++e) {
      auto a = Clock::now();
      change(e);
      rec.sync(sock, view);
      t.push_back(ms(a, Clock::now()));
    }
    getrusage(RUSAGE_SELF, &r1);
    auto us = [](const timeval& v) { return v.tv_sec * 1e6 + v.tv_usec; };
    auto s = stats(t);
    std::printf("  %-34s p50 %6.2f ms  p99 %6.2f ms  (%d events; cpu per event: user %.2f, sys %.2f ms)\n",
                what, s.p50, s.p99, n, (us(r1.ru_utime) - us(r0.ru_utime)) / 1000 / n,
                (us(r1.ru_stime) - us(r0.ru_stime)) / 1000 / n);
  };
  std::printf("incremental, event to commit:\n");
  int events = std::getenv("POLICY_BENCH_EVENTS") ? std::atoi(std::getenv("POLICY_BENCH_EVENTS")) : 400;
  // The extra pods get addresses no other pod has (make_pod's would repeat one: two running
  // pods with one address is not a cluster the agent is meant to see).
  measure("pod added / removed (remote)", events, [&](int e) {
    Pod p = make_pod(e % namespaces, per_ns + 1, per_ns);
    p.name = "extra";
    p.ips = {IpAddr::v4((10u << 24) | (2u << 16) | static_cast<uint32_t>(e % namespaces))};
    std::string key = object_key(p.namespace_, p.name);
    if (view.pods.count(key)) {
      view.pods.erase(key);
    } else {
      view.pods[key] = p;
    }
    rec.pods_changed({key});
  });
  measure("local pod added / removed", events, [&](int e) {
    Pod p = make_pod(e % namespaces, 0, per_ns);
    p.name = "extra-local";
    p.ips = {IpAddr::v4((10u << 24) | (3u << 16) | static_cast<uint32_t>(e % namespaces))};
    std::string key = object_key(p.namespace_, p.name);
    if (view.pods.count(key)) {
      view.pods.erase(key);
    } else {
      view.pods[key] = p;
    }
    rec.pods_changed({key});
  });
  measure("pod label changed", events, [&](int e) {
    std::string key = object_key(str("ns", e % namespaces), str("pod", 1 + e % (per_ns - 1)));
    view.pods.at(key).labels.edit([](Labels& l) { l["app"] = l["app"] == "a5" ? "a6" : "a5"; });
    rec.pods_changed({key});
  });
  measure("policy added / removed", events, [&](int e) {
    auto p = make_policy(e % namespaces, pols + 1, namespaces);
    std::string key = object_key(p.namespace_, p.name);
    if (view.policies.count(key)) {
      view.policies.erase(key);
    } else {
      view.policies[key] = p;
    }
    rec.policies_changed({key});
  });
  // 3. The real agent on the same cluster as manifests (as generated: not the view the
  // incremental events left behind): time to first sync, and its memory.
  if (const char* knit = std::getenv("KNIT_BINARY")) {
    agent_rss(knit, make_view(namespaces, per_ns, pols), "this cluster");
    agent_rss(knit, make_view(4, 25, 3), "small cluster");
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "policy_bench: %s\n", e.what());
  return 1;
}
