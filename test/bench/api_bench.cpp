// api_bench: `knit agent` against the test API server at cluster scale, in throwaway namespaces.
//
// Not a test: it prints numbers and asserts nothing. Needs root.
//   usage: api_bench KNIT_BINARY [runs=3]
//   env:   API_BENCH_NAMESPACES (100), API_BENCH_PODS_PER_NS (100), API_BENCH_POLICIES_PER_NS
//          (10), API_BENCH_NODES (100), API_BENCH_BURST (100: pod updates after the sync),
//          API_BENCH_MANAGED_FIELDS (1), API_BENCH_TLS (1: HTTPS;
//          0: plain HTTP), API_BENCH_MANIFESTS (1: also run the manifests source),
//          API_BENCH_LOG_LEVEL (info), API_BENCH_KEEP_LOGS (keep
//          each run's agent log under /tmp and print its path), API_BENCH_WRAP (words to run the
//          agent under, e.g. "valgrind --tool=massif"), API_BENCH_STEADY_HOOK (a shell command
//          run at the steady point, %PID% replaced by the agent's pid).
// The issue's benchmark: agent start-up to first full sync with 10k pods, 1k policies and 100
// nodes, and the agent's RSS in steady state at that size (goals: 1 s, 30 MiB).
//
// Each run: a fresh network namespace (loopback up, an uplink holding this node's InternalIP,
// so that routes to the other nodes' podCIDRs install), the test API server
// (test/apiserver) started as threads of this process inside it and loaded with the synthetic
// cluster of synthetic.hpp (objects shaped as the API server returns them), a kubeconfig, then
// `knit agent` exec'd inside the namespace. The server speaks HTTPS, and the kubeconfig gives
// its CA and a bearer token, as an in-cluster agent has them: the agent loads libssl only for
// an https:// server, so its RSS over plain HTTP would be less than a cluster's. Measured:
//  - first sync: exec (vfork, so that this big process's page tables are not copied inside the
//    measurement) to the "applied generation 1" log line (each stderr line is stamped when it
//    arrives), confirmed by the control socket's status (synced, generation >= 1); the log
//    lines give the breakdown (process start, each kind's list decoded and how long decoding
//    took, all lists consumed by the agent's loop, the reconcile's own duration);
//  - /healthz on the metrics address answering 200 once synced;
//  - RSS (VmRSS) and peak (VmHWM) right after the sync, ~3 s later, and after a burst of 100
//    (API_BENCH_BURST) pod label updates through the watches (settled: no new generation for
//    500 ms);
//  - the committed table: `nft -j list table inet knit` inside the namespace.
// Then the same cluster as a manifests directory (one JSON List), for comparison.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "conf/agent_proto.hpp"
#include "core/str.hpp"
#include "core/netns.hpp"
#include "core/unix_socket.hpp"
#include "test/apiserver/apiserver.hpp"
#include "test/bench/synthetic.hpp"

using namespace knit;
using namespace knit::bench;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr double kGoalSyncMs = 1000;
constexpr double kGoalRssMiB = 30;

double ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

uint32_t env_u32(const char* name, uint32_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? static_cast<uint32_t>(std::strtoul(v, nullptr, 10)) : fallback;
}

int sh(const std::string& cmd) {
  return std::system(cmd.c_str());
}

/// Set by SIGINT and SIGTERM: waits throw, and destructors remove what the run made.
std::atomic<bool> g_interrupted{false};

void nap(Clock::duration d) {
  for (auto until = Clock::now() + d; Clock::now() < until;) {
    if (g_interrupted) throw std::runtime_error("interrupted");
    std::this_thread::sleep_for(std::min<Clock::duration>(until - Clock::now(), 5ms));
  }
}

struct TempDir {
  explicit TempDir(std::string p) : path(std::move(p)) {
    (void)!sh("rm -rf " + path + " && mkdir -p " + path + "/m " + path + "/cni");
  }
  ~TempDir() { (void)!sh("rm -rf " + path); }
  std::string path;
};

/// The agent process: stopped (SIGTERM) and reaped on destruction.
struct Child {
  pid_t pid;
  ~Child() {
    kill(pid, SIGTERM);
    waitpid(pid, nullptr, 0);
  }
};

/// A throwaway node namespace: loopback up, ul0 with this node's InternalIP.
struct Ns {
  explicit Ns(const std::string& tag) {
    static int n = 0;
    name = "knit-t-" + std::to_string(getpid()) + "-ab" + std::to_string(n++) + "-" + tag;
    if (sh("ip netns add " + name) != 0) {
      std::fprintf(stderr, "api_bench: cannot create a network namespace (needs root)\n");
      std::exit(2);
    }
    // A veth pair stands in for the node's uplink (this kernel may lack the dummy driver).
    std::string ip = "ip -n " + name + " ";
    if (sh(ip + "link set lo up && " + ip + "link add ul0 type veth peer name ul1 && " + ip +
           "addr add " + node_ip(0) + "/16 dev ul0 && " + ip + "link set ul1 up && " + ip +
           "link set ul0 up") != 0) {
      std::fprintf(stderr, "api_bench: cannot set up namespace %s\n", name.c_str());
    }
  }
  ~Ns() { (void)!sh("ip netns del " + name); }
  std::string path() const { return "/run/netns/" + name; }
  std::string name;
};

/// The agent's stderr, each line stamped (ms since `t0`) as it arrives.
class LogReader {
 public:
  LogReader(int fd, Clock::time_point t0, std::string copy_to)
      : fd_(fd), t0_(t0), copy_(std::move(copy_to)) {
    thread_ = std::thread([this] { run(); });
  }
  ~LogReader() {
    thread_.join();
    ::close(fd_);
  }
  /// Time of the first line containing `needle` at or after `from` ms (and its text).
  std::optional<std::pair<double, std::string>> find(const std::string& needle,
                                                     double from = -1) const {
    std::lock_guard g(mu_);
    for (const auto& [t, l] : lines_) {
      if (t >= from && l.find(needle) != std::string::npos) return std::pair{t, l};
    }
    return std::nullopt;
  }
  std::vector<std::pair<double, std::string>> all(const std::string& needle,
                                                  double from = -1) const {
    std::lock_guard g(mu_);
    std::vector<std::pair<double, std::string>> out;
    for (const auto& [t, l] : lines_) {
      if (t >= from && l.find(needle) != std::string::npos) out.emplace_back(t, l);
    }
    return out;
  }

 private:
  void run() {
    std::FILE* copy = copy_.empty() ? nullptr : std::fopen(copy_.c_str(), "w");
    std::string buf;
    char chunk[8192];
    for (;;) {
      ssize_t n = ::read(fd_, chunk, sizeof chunk);
      if (n <= 0) break;
      auto now = Clock::now();
      buf.append(chunk, static_cast<size_t>(n));
      size_t start = 0;
      for (size_t nl; (nl = buf.find('\n', start)) != std::string::npos; start = nl + 1) {
        std::string line = buf.substr(start, nl - start);
        double t = ms(t0_, now);
        if (copy) std::fprintf(copy, "%9.1f %s\n", t, line.c_str());
        std::lock_guard g(mu_);
        lines_.emplace_back(t, std::move(line));
      }
      buf.erase(0, start);
    }
    if (copy) std::fclose(copy);
  }

  int fd_;
  Clock::time_point t0_;
  std::string copy_;
  mutable std::mutex mu_;
  std::vector<std::pair<double, std::string>> lines_;
  std::thread thread_;
};

long status_kib(pid_t pid, const char* field) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(field, 0) == 0) return std::atol(line.c_str() + std::strlen(field));
  }
  return -1;
}

struct Mem {
  double rss = -1, hwm = -1;  // MiB
};
Mem mem(pid_t pid) {
  return {static_cast<double>(status_kib(pid, "VmRSS:")) / 1024.0,
          static_cast<double>(status_kib(pid, "VmHWM:")) / 1024.0};
}

std::optional<conf::AgentReply> agent_status(const std::string& sock) {
  try {
    return conf::decode_agent_reply(unix_request(sock, R"({"op":"status"})", 500ms));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

/// HTTP status of GET 127.0.0.1:port/path inside `ns`; -1 when unreachable.
int http_get(const Ns& ns, uint16_t port, const char* path) {
  NetnsGuard in(Netns::open(ns.path()));
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int code = -1;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    std::string req = std::string("GET ") + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    (void)!send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    if (n > 12) {
      buf[n] = 0;
      code = std::atoi(buf + 9);  // "HTTP/1.1 200"
    }
  }
  ::close(fd);
  return code;
}

struct TableCounts {
  size_t chains = 0, rules = 0, sets = 0, maps = 0, elements = 0;
};
TableCounts table_counts(const Ns& ns) {
  TableCounts c;
  std::string out;
  if (std::FILE* p = popen(
          ("ip netns exec " + ns.name + " nft -j list table inet knit 2>/dev/null").c_str(), "r")) {
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    pclose(p);
  }
  auto j = json::parse(out, nullptr, false);
  if (!j.is_object() || !j.contains("nftables")) return c;
  for (const auto& o : j["nftables"]) {
    if (o.contains("chain")) ++c.chains;
    if (o.contains("rule")) ++c.rules;
    for (const char* k : {"set", "map"}) {
      if (!o.contains(k)) continue;
      ++(k[0] == 's' ? c.sets : c.maps);
      if (o[k].contains("elem")) c.elements += o[k]["elem"].size();
    }
  }
  return c;
}

/// One run's numbers (times in ms since exec; -1 when not seen).
struct Run {
  bool synced = false;
  double first_sync = -1;               // "applied generation 1" log line
  double socket_synced = -1;            // the status poll that first saw synced
  double started = -1;                  // "agent started"
  double listed[4] = {-1, -1, -1, -1};  // worker decoded each kind's list
  double pods_decode_ms = -1;           // of the pods list, decoding (the worker's own count)
  double lists_consumed = -1;           // the loop saw every first list
  double reconcile_ms = -1;             // the reconcile's own time (from the log)
  size_t changes = 0;
  int healthz = -1;
  Mem at_sync, steady, after_burst;
  double burst_ms = -1;
  size_t burst_commits = 0;
  TableCounts table;
  size_t warnings = 0;
  std::string log_path;
};

const char* const kKindNames[4] = {"namespaces", "pods", "networkpolicies", "nodes"};

struct Cluster {
  ClusterShape shape;
  std::vector<json> namespaces, nodes, pods, policies;
  size_t bytes[4] = {0, 0, 0, 0};
};

Cluster make_cluster(const ClusterShape& s) {
  Cluster c;
  c.shape = s;
  for (uint32_t i = 0; i < s.namespaces; ++i) c.namespaces.push_back(namespace_object(s, i));
  for (uint32_t k = 0; k < s.nodes; ++k) c.nodes.push_back(node_object(s, k));
  for (uint32_t i = 0; i < s.namespaces; ++i) {
    for (uint32_t j = 0; j < s.pods_per_namespace; ++j) c.pods.push_back(pod_object(s, i, j));
    for (uint32_t k = 0; k < s.policies_per_namespace; ++k) {
      c.policies.push_back(policy_object(s, i, k));
    }
  }
  auto size = [](const std::vector<json>& v) {
    size_t n = 0;
    for (const auto& o : v) n += o.dump().size();
    return n;
  };
  c.bytes[0] = size(c.namespaces);
  c.bytes[1] = size(c.pods);
  c.bytes[2] = size(c.policies);
  c.bytes[3] = size(c.nodes);
  return c;
}

/// Starts the agent in `ns` with `args`; stderr goes to the returned pipe's read end.
pid_t spawn(const std::string& knit, const Ns& ns, const std::vector<std::string>& args,
            int* err_read) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  // API_BENCH_WRAP: words to run the agent under (valgrind --tool=massif, perf record -g, ...).
  std::vector<std::string> wrap;
  if (const char* w = std::getenv("API_BENCH_WRAP")) {
    std::string word;
    for (const char* c = w;; ++c) {
      if (*c == ' ' || *c == '\0') {
        if (!word.empty()) wrap.push_back(std::move(word));
        word.clear();
        if (*c == '\0') break;
      } else {
        word += *c;
      }
    }
  }
  std::vector<char*> argv;
  for (const auto& w : wrap) argv.push_back(const_cast<char*>(w.c_str()));
  argv.push_back(const_cast<char*>(knit.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::string path = ns.path();
  // vfork: this process holds the whole cluster as JSON (hundreds of MiB), and fork() would
  // copy its page tables (tens of ms) inside the measured start-up. The child only makes
  // system calls before exec.
  pid_t pid = vfork();
  if (pid == 0) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) _exit(126);
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (dup2(p[1], 2) < 0 || dup2(null, 1) < 0) _exit(126);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  if (pid < 0) throw std::runtime_error("vfork failed");
  ::close(p[1]);
  *err_read = p[0];
  return pid;
}

double number_after(const std::string& line, const std::string& key) {
  auto p = line.find(key);
  return p == std::string::npos ? -1 : std::atof(line.c_str() + p + key.size());
}

/// Waits until the agent's status says synced with generation >= `min_generation`; returns the
/// reply, or nullopt at the deadline or when the agent has exited.
std::optional<conf::AgentReply> wait_synced(pid_t pid, const std::string& sock,
                                            uint64_t min_generation, Clock::duration timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    siginfo_t info{};
    if (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid == pid) {
      return std::nullopt;  // exited (reaped by Child)
    }
    if (auto r = agent_status(sock); r && r->synced && r->generation >= min_generation) return r;
    nap(5ms);
  }
  return std::nullopt;
}

/// A CA and a certificate for the API server at 127.0.0.1, made once per bench (openssl CLI).
struct ServerTls {
  std::string dir;  // empty: plain HTTP
  std::string ca() const { return dir + "/ca.crt"; }
};

ServerTls make_server_tls(const std::string& dir) {
  ServerTls t;
  t.dir = dir;
  int rc = sh("cd " + t.dir +
              " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
              "-days 1 -subj /CN=bench-ca -keyout ca.key -out ca.crt 2>/dev/null && "
              "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
              "-subj /CN=kube-apiserver -keyout server.key -out server.csr 2>/dev/null && "
              "printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext && "
              "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
              "-days 1 -extfile san.ext -out server.crt 2>/dev/null");
  if (rc != 0) throw std::runtime_error("cannot make the API server's certificate (openssl)");
  return t;
}

constexpr const char* kBenchToken = "api-bench-token";

Run run_agent(const std::string& knit, const Cluster& c, bool api, int index,
              const std::string& log_level, bool keep_logs, const ServerTls& tls) {
  Run run;
  Ns ns(api ? "api" : "man");
  TempDir tmp("/tmp/knit-ab-" + std::to_string(getpid()) + "-" + std::to_string(index) +
              (api ? "-api" : "-man"));
  const std::string& dir = tmp.path;
  std::unique_ptr<test::ApiServer> server;
  std::vector<std::string> args = {
      "agent",       "--node-name", node_name(0),     "--socket",   dir + "/agent.sock",
      "--data-dir",  dir,           "--cni-conf-dir", dir + "/cni", "--metrics-address",
      "127.0.0.1:0", "--log-level", log_level};
  if (api) {
    {
      NetnsGuard in(Netns::open(ns.path()));
      test::ApiServer::Options so;
      if (!tls.dir.empty()) {
        so.cert_file = tls.dir + "/server.crt";
        so.key_file = tls.dir + "/server.key";
        so.token = kBenchToken;
      }
      server = std::make_unique<test::ApiServer>(so);
    }
    for (const auto& o : c.namespaces) server->put(o);
    for (const auto& o : c.nodes) server->put(o);
    for (const auto& o : c.policies) server->put(o);
    for (const auto& o : c.pods) server->put(o);
    std::string ca = tls.dir.empty() ? "" : ", certificate-authority: " + tls.ca();
    std::string user = tls.dir.empty() ? "{}" : std::string("{token: ") + kBenchToken + "}";
    std::ofstream(dir + "/kubeconfig")
        << "apiVersion: v1\nkind: Config\ncurrent-context: bench\n"
           "clusters: [{name: bench, cluster: {server: \""
        << server->url() << "\"" << ca
        << "}}]\n"
           "contexts: [{name: bench, context: {cluster: bench, user: agent}}]\n"
           "users: [{name: agent, user: "
        << user << "}]\n";
    args.insert(args.begin() + 1, {"--kubeconfig", dir + "/kubeconfig"});
  } else {
    // As `kubectl get -o json` prints them: one List (Nodes are not read from manifests).
    std::ofstream f(dir + "/m/cluster.json");
    f << "{\"apiVersion\":\"v1\",\"kind\":\"List\",\"metadata\":{},\"items\":[";
    bool first = true;
    for (const auto* v : {&c.namespaces, &c.policies, &c.pods}) {
      for (const auto& o : *v) {
        f << (first ? "\n" : ",\n") << o.dump();
        first = false;
      }
    }
    f << "]}\n";
    f.close();
    args.insert(args.begin() + 1, {"--manifests", dir + "/m"});
  }
  std::string sock = dir + "/agent.sock";
  if (keep_logs) {
    run.log_path = "/tmp/knit-ab-" + std::to_string(getpid()) + "-" + std::to_string(index) +
                   (api ? "-api" : "-man") + ".log";
  }

  auto t0 = Clock::now();
  int err = -1;
  pid_t pid = spawn(knit, ns, args, &err);
  LogReader log(err, t0, run.log_path);
  Child agent{pid};  // destroyed first: the log then sees the end of the agent's stderr

  auto st = wait_synced(pid, sock, 1, 120s);
  if (st) {
    run.at_sync = mem(pid);
    run.synced = true;
    run.socket_synced = ms(t0, Clock::now());
  }
  if (run.synced) {
    // The log line may trail the status answer by a moment.
    for (int i = 0; i < 100 && !log.find("applied generation 1:"); ++i) nap(2ms);
    if (auto l = log.find("applied generation 1:")) {
      run.first_sync = l->first;
      run.reconcile_ms = number_after(l->second, "change(s) in ") / 1000.0;
      run.changes = static_cast<size_t>(number_after(l->second, "generation 1: "));
    }
    if (auto l = log.find("agent started")) run.started = l->first;
    for (int k = 0; k < 4; ++k) {
      if (auto l = log.find(std::string(" ") + kKindNames[k] + " at resourceVersion")) {
        run.listed[k] = l->first;
        if (k == 1) run.pods_decode_ms = number_after(l->second, " ms, ");
      }
    }
    if (auto l = log.find(api ? "first lists of every kind complete" : "manifests: ")) {
      run.lists_consumed = l->first;
    }
    if (auto l = log.find("metrics and health on")) {
      auto port = static_cast<uint16_t>(number_after(l->second, "(port "));
      run.healthz = http_get(ns, port, "/healthz");
    }

    nap(3s);
    run.steady = mem(pid);
    if (const char* hook = std::getenv("API_BENCH_STEADY_HOOK")) {
      // A command run at the steady point, with %PID% replaced (vgdb --pid=%PID% ...).
      std::string cmd = hook;
      for (size_t p; (p = cmd.find("%PID%")) != std::string::npos;) {
        cmd.replace(p, 5, std::to_string(pid));
      }
      (void)!sh(cmd);
    }
    run.table = table_counts(ns);

    if (api) {
      // A burst of pod updates (100, or API_BENCH_BURST): a label change each, spread over
      // namespaces and nodes.
      const uint32_t burst = env_u32("API_BENCH_BURST", 100);
      auto before = agent_status(sock);
      uint64_t gen0 = before ? before->generation : 0;
      auto b0 = Clock::now();
      for (uint32_t n = 0; n < burst; ++n) {
        uint32_t i = n % c.shape.namespaces;
        uint32_t j = (n * 37 + n / c.shape.namespaces) % c.shape.pods_per_namespace;
        json pod = c.pods[i * c.shape.pods_per_namespace + j];
        auto& labels = pod["metadata"]["labels"];
        labels["tier"] = "t" + std::to_string((j + 1) % 3);
        labels["version"] = "v2";
        server->put(std::move(pod));
      }
      // Settled: status synced, and no new generation for 500 ms. (The agent logs incremental
      // commits at most every 10 s, so the status's generation is what counts them.)
      auto deadline = Clock::now() + 30s;
      uint64_t seen = gen0;
      auto last_change = Clock::now();
      double last_commit = -1;
      while (Clock::now() < deadline) {
        nap(5ms);
        auto s = agent_status(sock);
        if (!s) continue;
        if (s->generation != seen) {
          seen = s->generation;
          last_change = Clock::now();
          last_commit = ms(b0, last_change);
        }
        if (seen > gen0 && s->synced && Clock::now() - last_change > 500ms) break;
      }
      run.burst_commits = seen - gen0;
      if (last_commit >= 0) run.burst_ms = last_commit;
      nap(3s);  // steady again, like the +3 s point after the sync
      run.after_burst = mem(pid);
    }
  }
  run.warnings = log.all(" warn: ").size() + log.all(" error: ").size();
  return run;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? -1 : v[v.size() / 2];
}
double best(const std::vector<double>& v) {
  return v.empty() ? -1 : *std::min_element(v.begin(), v.end());
}

void report(const char* what, const std::vector<Run>& runs, bool api) {
  std::printf("\n%s\n", what);
  if (api) {
    std::printf(
        "  per run, ms since exec: start = \"agent started\"; ns/pods/pols/nodes = that "
        "kind's list decoded by its worker (pods: of which decoding); in = the agent's loop "
        "has every first list; apply = the reconcile's own time; sync = \"applied "
        "generation 1\"; status = first seen synced on the control socket\n");
  } else {
    std::printf(
        "  per run, ms since exec: start = \"agent started\"; in = the manifests read and "
        "decoded; apply = the reconcile's own time; sync = \"applied generation 1\"; status = "
        "first "
        "seen synced on the control socket\n");
  }
  std::string burst =
      api ? str(", after a burst of ", env_u32("API_BENCH_BURST", 100), " pod updates") : "";
  std::printf("  RSS (MiB): at sync, +3 s%s; peak = VmHWM\n", burst.c_str());
  for (size_t r = 0; r < runs.size(); ++r) {
    const Run& x = runs[r];
    if (!x.synced) {
      std::printf("  run %zu: NOT SYNCED within the deadline\n", r + 1);
      continue;
    }
    if (api) {
      std::printf(
          "  run %zu: sync %5.0f (status %5.0f) | start %3.0f  ns %4.0f  pods %4.0f (%3.0f)  pols "
          "%4.0f  "
          "nodes %4.0f  in %4.0f  apply %4.0f | RSS %5.1f %5.1f %5.1f peak %5.1f | burst "
          "applied in %3.0f ms (%zu commits)\n",
          r + 1, x.first_sync, x.socket_synced, x.started, x.listed[0], x.listed[1],
          x.pods_decode_ms, x.listed[2], x.listed[3], x.lists_consumed, x.reconcile_ms,
          x.at_sync.rss, x.steady.rss, x.after_burst.rss,
          std::max({x.at_sync.hwm, x.steady.hwm, x.after_burst.hwm}), x.burst_ms, x.burst_commits);
    } else {
      std::printf(
          "  run %zu: sync %5.0f (status %5.0f) | start %3.0f  in %4.0f  apply %4.0f | RSS %5.1f "
          "%5.1f "
          "peak %5.1f\n",
          r + 1, x.first_sync, x.socket_synced, x.started, x.lists_consumed, x.reconcile_ms,
          x.at_sync.rss, x.steady.rss, std::max(x.at_sync.hwm, x.steady.hwm));
    }
  }
  std::vector<double> sync, rss_sync, rss_steady, rss_burst, hwm;
  for (const auto& x : runs) {
    if (!x.synced) continue;
    sync.push_back(x.first_sync);
    rss_sync.push_back(x.at_sync.rss);
    rss_steady.push_back(x.steady.rss);
    if (api) rss_burst.push_back(x.after_burst.rss);
    hwm.push_back(std::max({x.at_sync.hwm, x.steady.hwm, x.after_burst.hwm}));
  }
  if (sync.empty()) return;
  const Run& last = runs.back();
  std::printf(
      "  committed table: %zu chains, %zu rules, %zu sets, %zu maps, %zu elements "
      "(%zu changes in generation 1); /healthz after sync: %d; warn/error log lines: %zu\n",
      last.table.chains, last.table.rules, last.table.sets, last.table.maps, last.table.elements,
      last.changes, last.healthz, last.warnings);
  auto verdict = [](double v, double goal) { return v <= goal ? "PASS" : "FAIL"; };
  std::printf("  first sync         median %6.0f ms   best %6.0f ms    goal <= %.0f ms: %s\n",
              median(sync), best(sync), kGoalSyncMs, verdict(median(sync), kGoalSyncMs));
  std::printf("  RSS right after    median %6.1f MiB  best %6.1f MiB\n", median(rss_sync),
              best(rss_sync));
  std::printf("  RSS steady (+3 s)  median %6.1f MiB  best %6.1f MiB   goal <= %.0f MiB: %s\n",
              median(rss_steady), best(rss_steady), kGoalRssMiB,
              verdict(median(rss_steady), kGoalRssMiB));
  if (api) {
    std::printf("  RSS after burst    median %6.1f MiB  best %6.1f MiB   goal <= %.0f MiB: %s\n",
                median(rss_burst), best(rss_burst), kGoalRssMiB,
                verdict(median(rss_burst), kGoalRssMiB));
  }
  std::printf("  peak RSS (VmHWM)   median %6.1f MiB  best %6.1f MiB\n", median(hwm), best(hwm));
  for (const auto& x : runs) {
    if (!x.log_path.empty()) std::printf("  agent log: %s\n", x.log_path.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc < 2) {
    std::fprintf(stderr, "usage: api_bench KNIT_BINARY [runs=3]\n");
    return 2;
  }
  std::string knit = argv[1];
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_interrupted = true; };
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  int runs = argc > 2 ? std::atoi(argv[2]) : 3;
  ClusterShape s;
  s.namespaces = env_u32("API_BENCH_NAMESPACES", 100);
  s.pods_per_namespace = env_u32("API_BENCH_PODS_PER_NS", 100);
  s.policies_per_namespace = env_u32("API_BENCH_POLICIES_PER_NS", 10);
  s.nodes = env_u32("API_BENCH_NODES", 100);
  s.managed_fields = env_u32("API_BENCH_MANAGED_FIELDS", 1) != 0;
  bool manifests = env_u32("API_BENCH_MANIFESTS", 1) != 0;
  bool use_tls = env_u32("API_BENCH_TLS", 1) != 0;
  bool keep_logs = env_u32("API_BENCH_KEEP_LOGS", 0) != 0;
  std::string level =
      std::getenv("API_BENCH_LOG_LEVEL") ? std::getenv("API_BENCH_LOG_LEVEL") : "info";
  if (!fits(s)) {
    std::fprintf(stderr,
                 "api_bench: pod addresses do not fit 10.244.<node>.0/24 (at most 1..256 "
                 "nodes and 253 pods per node)\n");
    return 2;
  }

  Cluster c = make_cluster(s);
  uint32_t local = 0;
  for (uint32_t j = 0; j < s.pods_per_namespace; ++j) local += j % s.nodes == 0;
  auto mib = [](size_t b) { return static_cast<double>(b) / (1 << 20); };
  std::printf(
      "cluster: %u namespaces, %u pods (%u on %s), %u policies, %u nodes; "
      "managedFields %s\n",
      s.namespaces, s.pods(), local * s.namespaces, node_name(0).c_str(), s.policies(), s.nodes,
      s.managed_fields ? "on" : "off");
  std::printf(
      "JSON as served: pods %.1f MiB (%.1f KiB each), policies %.1f MiB, nodes %.1f MiB, "
      "namespaces %.2f MiB\n",
      mib(c.bytes[1]), static_cast<double>(c.bytes[1]) / 1024.0 / s.pods(), mib(c.bytes[2]),
      mib(c.bytes[3]), mib(c.bytes[0]));
  std::printf("goals: first sync <= %.0f ms, RSS in steady state <= %.0f MiB\n", kGoalSyncMs,
              kGoalRssMiB);
  std::fflush(stdout);

  std::optional<TempDir> tls_dir;  // removed at exit, interrupted or not
  ServerTls tls;
  if (use_tls) {
    tls_dir.emplace("/tmp/knit-ab-" + std::to_string(getpid()) + "-tls");
    tls = make_server_tls(tls_dir->path);
  }
  std::vector<Run> api_runs;
  for (int r = 0; r < runs; ++r) {
    api_runs.push_back(run_agent(knit, c, true, r, level, keep_logs, tls));
  }
  report(use_tls ? "knit agent on the Kubernetes API (test API server, HTTPS with a CA and a "
                   "bearer token, page size 500)"
                 : "knit agent on the Kubernetes API (test API server, plain HTTP, page size 500)",
         api_runs, true);
  std::fflush(stdout);
  if (manifests) {
    std::vector<Run> man_runs;
    for (int r = 0; r < runs; ++r) {
      man_runs.push_back(run_agent(knit, c, false, r, level, keep_logs, ServerTls{}));
    }
    report("the same cluster from --manifests (one JSON List; no Nodes)", man_runs, false);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "api_bench: %s\n", e.what());
  return 1;
}
