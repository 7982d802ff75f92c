// cni_bench: CNI ADD/DEL latency of knit against the reference plugins, in the same run.
//
// Every plugin is exec'd exactly the way a runtime execs it (fork, execve, config on stdin,
// result on stdout, wait), from inside a throwaway node namespace, against the same number of
// fresh pod namespaces. The floor, exec'ing /bin/true the same way, is measured in the same run
// and subtracted to get each plugin's own time. Not a test: it prints numbers and asserts nothing.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

std::string g_tag;

int run_cmd(const std::string& cmd) { return std::system(cmd.c_str()); }

struct Call {
  double ms = 0;
  int status = 0;
  std::string out;
};

Call exec_plugin(const std::string& path, const std::vector<std::string>& env,
                 const std::string& input) {
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) std::abort();
  std::vector<char*> envp;
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  char* argv[] = {const_cast<char*>(path.c_str()), nullptr};
  auto t0 = Clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 2);
    execve(path.c_str(), argv, envp.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  (void)!write(in[1], input.data(), input.size());
  close(in[1]);
  Call c;
  char buf[8192];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof buf)) > 0) c.out.append(buf, static_cast<size_t>(n));
  close(out[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  c.ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  c.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
  return c;
}

struct Stats {
  double median = 0, p99 = 0;
};

Stats stats(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))]; };
  return {at(0.5), at(0.99)};
}

struct Plugin {
  std::string label;
  std::string binary;
  std::string config;
};

std::vector<std::string> base_env(const std::string& cmd, const std::string& cid,
                                  const std::string& netns) {
  return {"CNI_COMMAND=" + cmd, "CNI_CONTAINERID=" + cid, "CNI_NETNS=" + netns,
          "CNI_IFNAME=eth0",   "CNI_PATH=/usr/lib/cni", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
}

std::string pod_ns(int i) { return "/run/netns/knit-b-" + g_tag + "-p" + std::to_string(i); }

struct Result {
  Stats add, del;
  int failures = 0;
};

/// ADD then DEL for `pods` pods, `parallel` calls at a time.
Result measure(const Plugin& p, int pods, int parallel, int round) {
  std::vector<double> add(pods), del(pods);
  std::vector<int> fail(pods, 0);
  auto work = [&](const std::string& verb, std::vector<double>& out) {
    std::vector<std::thread> threads;
    for (int t = 0; t < parallel; ++t) {
      threads.emplace_back([&, t] {
        for (int i = t; i < pods; i += parallel) {
          std::string cid = "bench" + std::to_string(round) + "x" + std::to_string(i);
          Call c = exec_plugin(p.binary, base_env(verb, cid, pod_ns(i)), p.config);
          out[i] = c.ms;
          if (c.status != 0) {
            fail[i] = 1;
            if (std::getenv("BENCH_VERBOSE")) std::fprintf(stderr, "%s %s: %s\n", p.label.c_str(),
                                                           verb.c_str(), c.out.c_str());
          }
        }
      });
    }
    for (auto& t : threads) t.join();
  };
  work("ADD", add);
  work("DEL", del);
  Result r{stats(add), stats(del), 0};
  for (int f : fail) r.failures += f;
  return r;
}

/// The cost of exec'ing /bin/true exactly like a plugin, `parallel` at a time.
Stats floor_stats(int n, int parallel) {
  std::vector<double> v(n);
  std::vector<std::thread> threads;
  for (int t = 0; t < parallel; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < n; i += parallel) {
        v[i] = exec_plugin("/bin/true", base_env("ADD", "x", pod_ns(0)), "{}").ms;
      }
    });
  }
  for (auto& t : threads) t.join();
  return stats(v);
}

/// Waits until no link of the given prefix is left in the node namespace (async teardown).
void settle() {
  for (int i = 0; i < 500; ++i) {
    if (run_cmd("[ -z \"$(ip -o link show type veth)\" ]") == 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: cni_bench KNIT_BINARY [PODS]\n");
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);  // /bin/true never reads its stdin
  std::string knit = argv[1];
  int pods = argc > 2 ? std::atoi(argv[2]) : 100;
  g_tag = std::to_string(getpid());
  std::string node = "knit-b-" + g_tag + "-node";
  std::string data = "/run/knit-b-" + g_tag;
  // Plugin state lives on tmpfs, as on a real node (/run is tmpfs there; it is not on every
  // build machine). Every plugin gets the same.
  run_cmd("mkdir -p " + data + " && mount -t tmpfs -o size=64m knit-bench " + data);
  run_cmd("ip netns add " + node);
  for (int i = 0; i < pods; ++i) run_cmd("ip netns add knit-b-" + g_tag + "-p" + std::to_string(i));
  {
    int fd = open(("/run/netns/" + node).c_str(), O_RDONLY);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
      std::perror("setns");
      return 1;
    }
    close(fd);
  }
  run_cmd("ip link set lo up; ip link add up0 type veth peer name up0peer; "
          "ip link set up0peer up; ip link set up0 up; "
          "ip addr add 10.99.0.1/24 dev up0; ip route add default dev up0");

  std::string hl = R"("ipam":{"type":"host-local","dataDir":")" + data +
                   R"(/hl","ranges":[[{"subnet":"10.40.0.0/16"}]]})";
  std::vector<Plugin> plugins = {
      {"knit", knit,
       R"({"cniVersion":"1.0.0","name":"bench-knit","type":"knit","agent":"off","dataDir":")" +
           data + R"(","ipam":{"ranges":[[{"subnet":"10.41.0.0/16"}]]}})"},
      {"ptp + host-local", "/usr/lib/cni/ptp",
       R"({"cniVersion":"0.4.0","name":"bench-ptp","type":"ptp",)" + hl + "}"},
      {"bridge + host-local", "/usr/lib/cni/bridge",
       R"({"cniVersion":"0.4.0","name":"bench-br","type":"bridge","bridge":"kbr0","isGateway":true,)" +
           hl + "}"},
  };

  Stats fl_serial = floor_stats(300, 1), fl_parallel = floor_stats(300, 20);
  std::printf("exec floor (/bin/true, same fork/exec/pipes): serial median %.2f ms, 20-way "
              "median %.2f ms\n",
              fl_serial.median, fl_parallel.median);
  std::printf("pods per run: %d\n\n", pods);
  std::printf("%-22s %-9s %10s %10s %10s %10s  %s\n", "plugin", "mode", "ADD p50", "ADD p99",
              "DEL p50", "DEL p99", "failures");
  struct Row {
    std::string label, mode;
    Result r;
  };
  std::vector<Row> rows;
  int round = 0;
  for (int parallel : {1, 20}) {
    for (const auto& p : plugins) {
      settle();
      Result r = measure(p, pods, parallel, round++);
      settle();
      std::string mode = parallel == 1 ? "serial" : "20-way";
      rows.push_back({p.label, mode, r});
      std::printf("%-22s %-9s %8.2fms %8.2fms %8.2fms %8.2fms  %d\n", p.label.c_str(),
                  mode.c_str(), r.add.median, r.add.p99, r.del.median, r.del.p99, r.failures);
    }
  }
  std::printf("\nplugin's own time = median minus the exec floor of the same mode; "
              "ratio = reference / knit:\n");
  std::printf("%-22s %-9s %10s %10s %10s %10s\n", "plugin", "mode", "ADD own", "ratio",
              "DEL own", "ratio");
  for (const auto& row : rows) {
    const Row* k = nullptr;
    for (const auto& r : rows)
      if (r.label == "knit" && r.mode == row.mode) k = &r;
    double floor = row.mode == "serial" ? fl_serial.median : fl_parallel.median;
    auto ratio = [&](double ref, double mine) {
      char buf[32];
      double own_ref = ref - floor, own_mine = mine - floor;
      if (own_mine <= 0.05) {
        std::snprintf(buf, sizeof buf, "knit@floor");
      } else {
        std::snprintf(buf, sizeof buf, "%.1fx", own_ref / own_mine);
      }
      return std::string(buf);
    };
    std::printf("%-22s %-9s %8.2fms %10s %8.2fms %10s\n", row.label.c_str(), row.mode.c_str(),
                row.r.add.median - floor,
                row.label == "knit" ? "" : ratio(row.r.add.median, k->r.add.median).c_str(),
                row.r.del.median - floor,
                row.label == "knit" ? "" : ratio(row.r.del.median, k->r.del.median).c_str());
  }

  // Start-up: VERSION exec-to-exit against /bin/true, interleaved.
  std::vector<double> t_true, t_knit;
  std::vector<std::string> venv = {"CNI_COMMAND=VERSION"};
  for (int i = 0; i < 2000; ++i) {
    t_true.push_back(exec_plugin("/bin/true", venv, R"({"cniVersion":"1.1.0"})").ms);
    t_knit.push_back(exec_plugin(knit, venv, R"({"cniVersion":"1.1.0"})").ms);
  }
  Stats st = stats(t_true), sk = stats(t_knit);
  std::printf("\nstart-up (VERSION, exec to exit): knit median %.3f ms, /bin/true %.3f ms, "
              "difference %.3f ms\n", sk.median, st.median, sk.median - st.median);

  // Stripped size.
  std::string stripped = data + "/knit.stripped";
  run_cmd("strip -o " + stripped + " " + knit);
  struct stat sb {};
  stat(stripped.c_str(), &sb);
  std::printf("stripped binary: %.2f MB (%ld bytes); reference plugins: ", sb.st_size / 1e6,
              static_cast<long>(sb.st_size));
  for (const char* ref : {"ptp", "bridge", "host-local"}) {
    struct stat rs {};
    stat((std::string("/usr/lib/cni/") + ref).c_str(), &rs);
    std::printf("%s %.1f MB  ", ref, rs.st_size / 1e6);
  }
  std::printf("\n");

  // Clean up everything this run created.
  for (int i = 0; i < pods; ++i) run_cmd("ip netns del knit-b-" + g_tag + "-p" + std::to_string(i));
  run_cmd("ip netns del " + node + "; umount " + data + "; rmdir " + data);
  return 0;
}
