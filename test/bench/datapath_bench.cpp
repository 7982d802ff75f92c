// datapath_bench: what NetworkPolicy enforcement costs the packets, with 1k policies loaded.
//
// Not a test: it prints numbers and asserts nothing. Needs root. Usage:
//   datapath_bench KNIT_BINARY [seconds_per_run=2] [rounds=3]
// A node namespace, two pods wired by the real CNI ADD (knit), and `knit agent` on a manifests
// directory. Two states, measured interleaved (none, 1k, none, 1k, ...):
//   none: no NetworkPolicy at all;
//   1k:   1000 policies over 100 namespaces, including the server's namespace, where a policy
//         isolates the server and allows the client on the port used (so every new connection
//         walks the dispatch map, the namespace chain and its set lookups).
// Per state: TCP throughput client -> server (one stream, 64 KiB writes) and new TCP
// connections per second (connect, one byte each way, close), each for `seconds`. Every state
// is measured only once the agent has applied it (its `wait` op on the directory's digest).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "test/bench/agent_wait.hpp"

namespace {

using Clock = std::chrono::steady_clock;

int sh(const std::string& cmd) { return std::system(cmd.c_str()); }

std::string capture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

/// Runs `f` with the calling thread inside `netns`.
template <class F>
auto in_netns(const std::string& netns, F&& f) {
  int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  int fd = open(netns.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
    std::perror("setns");
    std::exit(1);
  }
  close(fd);
  auto r = f();
  setns(self, CLONE_NEWNET);
  close(self);
  return r;
}

int listen_on(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 1024) != 0) {
    std::perror("listen");
    std::exit(1);
  }
  return fd;
}

/// Server threads in the server pod: port 5001 sinks data, port 5002 answers one byte.
struct Servers {
  explicit Servers(const std::string& netns) {
    int sink = in_netns(netns, [] { return listen_on(5001); });
    int echo = in_netns(netns, [] { return listen_on(5002); });
    threads.emplace_back([sink, this] {
      std::vector<char> buf(1 << 16);
      while (!stop) {
        int c = accept4(sink, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        while (read(c, buf.data(), buf.size()) > 0) {
        }
        close(c);
      }
    });
    threads.emplace_back([echo, this] {
      while (!stop) {
        int c = accept4(echo, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        char b;
        if (read(c, &b, 1) == 1) (void)!write(c, &b, 1);
        close(c);
      }
    });
    fds = {sink, echo};
  }
  ~Servers() {
    stop = true;
    for (int fd : fds) shutdown(fd, SHUT_RDWR);
    for (auto& t : threads) t.join();
    for (int fd : fds) close(fd);
  }
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  std::vector<int> fds;
};

int connect_to(const std::string& addr, int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, addr.c_str(), &a.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/// Gbit/s of one TCP stream for `secs`.
double throughput(const std::string& client_ns, const std::string& addr, double secs) {
  return in_netns(client_ns, [&] {
    int fd = connect_to(addr, 5001);
    if (fd < 0) return -1.0;
    std::vector<char> buf(1 << 16, 'x');
    uint64_t bytes = 0;
    auto t0 = Clock::now();
    auto end = t0 + std::chrono::duration<double>(secs);
    while (Clock::now() < end) {
      ssize_t n = write(fd, buf.data(), buf.size());
      if (n <= 0) break;
      bytes += static_cast<uint64_t>(n);
    }
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    close(fd);
    return bytes * 8 / s / 1e9;
  });
}

/// New connections per second (connect, 1 byte each way, close) for `secs`.
double conn_rate(const std::string& client_ns, const std::string& addr, double secs) {
  return in_netns(client_ns, [&] {
    uint64_t n = 0;
    auto t0 = Clock::now();
    auto end = t0 + std::chrono::duration<double>(secs);
    while (Clock::now() < end) {
      int fd = connect_to(addr, 5002);
      if (fd < 0) return -1.0;
      char b = 'x';
      if (write(fd, &b, 1) != 1 || read(fd, &b, 1) != 1) {
        close(fd);
        return -1.0;
      }
      close(fd);
      ++n;
    }
    return n / std::chrono::duration<double>(Clock::now() - t0).count();
  });
}

std::string policies_json(int namespaces, int per_ns) {
  std::string items;
  auto add = [&](const std::string& o) { items += (items.empty() ? "" : ",\n") + o; };
  for (int i = 0; i < namespaces; ++i) {
    std::string ns = i == 0 ? "bench" : "ns" + std::to_string(i);
    if (i > 0) add(R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":")" + ns + R"("}})");
    for (int k = 0; k < per_ns; ++k) {
      std::string app = i == 0 && k == 0 ? "server" : "app" + std::to_string(k);
      std::string from = i == 0 && k == 0 ? "client" : "app" + std::to_string((k + 1) % per_ns);
      add(R"({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"p)" +
          std::to_string(k) + R"(","namespace":")" + ns + R"("},"spec":{"podSelector":{"matchLabels":{"app":")" +
          app + R"("}},"policyTypes":["Ingress"],"ingress":[{"from":[{"podSelector":{"matchLabels":{"app":")" +
          from + R"("}}},{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"ns)" +
          std::to_string((i + k) % namespaces) + R"("}}}],"ports":[{"port":5001},{"port":5002},{"port":)" +
          std::to_string(8000 + k) + R"(}]}]}})");
    }
  }
  return R"({"apiVersion":"v1","kind":"List","items":[)" + items + "]}\n";
}

/// Everything the run made, removed on every way out of main.
struct Teardown {
  std::string tag, dir;
  pid_t agent = -1;
  ~Teardown() {
    if (agent > 0) {
      kill(agent, SIGTERM);
      waitpid(agent, nullptr, 0);
    }
    sh("ip netns del " + tag + "-client 2>/dev/null; ip netns del " + tag +
       "-server 2>/dev/null; ip netns del " + tag + "-node 2>/dev/null; rm -rf " + dir);
  }
};

std::string median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v[v.size() / 2]);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: datapath_bench KNIT_BINARY [seconds=2] [rounds=3]\n");
    return 2;
  }
  std::string knit = argv[1];
  double secs = argc > 2 ? std::atof(argv[2]) : 2.0;
  int rounds = argc > 3 ? std::atoi(argv[3]) : 3;
  std::signal(SIGPIPE, SIG_IGN);
  std::string tag = "knit-b-" + std::to_string(getpid());
  std::string node = tag + "-node", dir = "/run/" + tag;
  std::string m = dir + "/manifests", sock = dir + "/agent.sock";
  Teardown teardown{tag, dir};
  sh("mkdir -p " + m + " && ip netns add " + node + " && ip netns add " + tag +
     "-client && ip netns add " + tag + "-server");
  sh("ip -n " + node + " link set lo up; ip -n " + node +
     " link add up0 type veth peer name up0peer; ip -n " + node + " link set up0 up; ip -n " +
     node + " link set up0peer up; ip -n " + node + " addr add 10.99.0.1/24 dev up0");
  std::ofstream(m + "/pods.json")
      << R"({"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"bench"}},)"
      << R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"client","namespace":"bench","labels":{"app":"client"}},"spec":{"containers":[{"name":"c","image":"i"}]}},)"
      << R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"server","namespace":"bench","labels":{"app":"server"}},"spec":{"containers":[{"name":"c","image":"i"}]}}]})"
      << "\n";
  pid_t agent = fork();
  if (agent == 0) {
    int fd = open(("/run/netns/" + node).c_str(), O_RDONLY);
    setns(fd, CLONE_NEWNET);
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 2);
    execl(knit.c_str(), knit.c_str(), "agent", "--manifests", m.c_str(), "--node-name", "bench",
          "--socket", sock.c_str(), "--data-dir", dir.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  teardown.agent = agent;
  // CNI ADD with agent "required" needs the agent to answer.
  if (auto e = knit::bench::wait_applied(agent, sock, m, std::chrono::seconds(60)); !e.empty()) {
    std::fprintf(stderr, "datapath_bench: the agent did not start: %s\n", e.c_str());
    return 1;
  }
  std::string conf = R"({"cniVersion":"1.0.0","name":"bench","type":"knit","agent":"required","agentSocket":")" +
                     sock + R"(","dataDir":")" + dir + R"(","ipam":{"ranges":[[{"subnet":"10.77.0.0/24"}]]}})";
  std::string addr;
  for (const char* pod : {"client", "server"}) {
    std::string out = capture("echo '" + conf + "' | ip netns exec " + node +
                              " env CNI_COMMAND=ADD CNI_CONTAINERID=bench-" + pod + " CNI_NETNS=/run/netns/" +
                              tag + "-" + pod + " CNI_IFNAME=eth0 CNI_ARGS='K8S_POD_NAMESPACE=bench;K8S_POD_NAME=" +
                              pod + "' " + knit);
    auto at = out.find("\"address\":\"");
    if (at == std::string::npos) {
      std::fprintf(stderr, "datapath_bench: ADD %s failed: %s\n", pod, out.c_str());
      return 1;
    }
    if (std::string(pod) == "server") addr = out.substr(at + 11, out.find('/', at) - at - 11);
  }
  Servers servers("/run/netns/" + tag + "-server");
  std::string client = "/run/netns/" + tag + "-client";
  std::string policies = policies_json(100, 10);
  auto wait_applied = [&] {
    if (auto e = knit::bench::wait_applied(agent, sock, m, std::chrono::seconds(60)); !e.empty()) {
      std::fprintf(stderr, "datapath_bench: the agent did not apply %s: %s\n", m.c_str(), e.c_str());
      return false;
    }
    return true;
  };
  std::vector<double> tput[2], conns[2];
  for (int r = 0; r < rounds; ++r) {
    for (int state = 0; state < 2; ++state) {
      if (state == 0) {
        unlink((m + "/policies.json").c_str());
      } else {
        std::ofstream(m + "/.p.tmp") << policies;
        rename((m + "/.p.tmp").c_str(), (m + "/policies.json").c_str());
      }
      if (!wait_applied()) return 1;
      if (state == 1 && r == 0) {
        // Make sure the measurement means something: the server is behind its policy.
        std::string map = capture("ip netns exec " + node + " nft list map inet knit ingress4");
        std::string rules = capture("ip netns exec " + node + " nft list ruleset | grep -c 'accept comment'");
        std::printf("  (check: server %s in the ingress dispatch map; %s policy rules loaded)\n",
                    map.find(addr) != std::string::npos ? "is" : "is NOT", rules.substr(0, rules.find('\n')).c_str());
      }
      tput[state].push_back(throughput(client, addr, secs));
      conns[state].push_back(conn_rate(client, addr, secs));
    }
  }
  std::printf("datapath, client -> server pod on one node, %d runs of %.0f s each, interleaved:\n",
              rounds, secs);
  std::printf("  %-28s %12s %16s\n", "", "TCP Gbit/s", "new conns/s");
  std::printf("  %-28s %12s %16s\n", "no policies", median(tput[0]).c_str(), median(conns[0]).c_str());
  std::printf("  %-28s %12s %16s\n", "1000 policies loaded", median(tput[1]).c_str(),
              median(conns[1]).c_str());
  std::vector<double> t0 = tput[0], t1 = tput[1], c0 = conns[0], c1 = conns[1];
  std::sort(t0.begin(), t0.end());
  std::sort(t1.begin(), t1.end());
  std::sort(c0.begin(), c0.end());
  std::sort(c1.begin(), c1.end());
  std::printf("  ratio (1000 / none): throughput %.1f%%, new connections %.1f%%\n",
              100 * t1[t1.size() / 2] / t0[t0.size() / 2], 100 * c1[c1.size() / 2] / c0[c0.size() / 2]);
  return 0;
}
