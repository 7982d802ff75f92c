// nft_bench: knit's nftables engine against `nft -f` on a policy-agent-sized ruleset.
//
// Not a test: it prints numbers and asserts nothing. Needs root; works in throwaway namespaces
// (knit-t-bench-*) and deletes them. Usage: nft_bench [namespaces=1000] [elements_per_set=50]
//   1. full sync into an empty namespace: plan + lower + commit (median of 3 fresh namespaces)
//   2. `nft -f` of the same ruleset rendered as text (median of 3 fresh namespaces)
//   3. one-element add/delete commits on the loaded table, p50/p99 over 1000 runs: a hand-built
//      one-change plan, and a full plan() diff of the whole desired ruleset.
#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/netlink.hpp"
#include "core/netns.hpp"
#include "nft/nft.hpp"
#include "test/unit/nft_sample.hpp"

using namespace knit::nft;
using Clock = std::chrono::steady_clock;

namespace {

double ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

int run(const std::string& cmd) {
  return std::system(cmd.c_str());
}

/// A named namespace for the duration of one measurement.
class Ns {
 public:
  explicit Ns(const std::string& tag) {
    static int n = 0;
    name_ = "knit-t-bench-" + std::to_string(getpid()) + "-" + std::to_string(n++) + "-" + tag;
    if (run("ip netns add " + name_) != 0) {
      std::fprintf(stderr, "nft_bench: cannot create a network namespace (needs root)\n");
      std::exit(2);
    }
  }
  ~Ns() { run("ip netns del " + name_); }
  Ns(const Ns&) = delete;
  Ns& operator=(const Ns&) = delete;
  std::string path() const { return "/run/netns/" + name_; }

 private:
  std::string name_;
};

knit::nl::Socket socket_in(const Ns& ns) {
  return knit::nl::Socket::open_in(knit::Netns::open(ns.path()), NETLINK_NETFILTER);
}

/// Runs `nft -f file` inside `ns` (fork, setns, exec: no shell, no `ip netns exec`) and returns
/// the wall time in ms, or -1 when nft failed.
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
  auto t1 = Clock::now();
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? ms(t0, t1) : -1;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

}  // namespace

int main(int argc, char** argv) try {
  uint32_t namespaces = argc > 1 ? static_cast<uint32_t>(std::atoi(argv[1])) : 1000;
  uint32_t per_set = argc > 2 ? static_cast<uint32_t>(std::atoi(argv[2])) : 50;
  constexpr int kRounds = 3;
  constexpr int kSmallRuns = 1000;

  auto t0 = Clock::now();
  const Ruleset rs = knit::test::synthetic_ruleset(namespaces, per_set);
  auto t1 = Clock::now();
  size_t elements = 0, rules = 0;
  for (const auto& s : rs.sets) elements += s.elements.size();
  for (const auto& c : rs.chains) rules += c.rules.size();
  std::printf("ruleset: %zu sets, %zu chains, %zu rules, %zu elements (model built in %.1f ms)\n",
              rs.sets.size(), rs.chains.size(), rules, elements, ms(t0, t1));

  // 1. knit full sync.
  std::vector<double> total, t_plan, t_lower, t_commit;
  size_t messages = 0, bytes = 0;
  for (int r = 0; r < kRounds; ++r) {
    Ns ns("knit");
    auto sock = socket_in(ns);
    auto a = Clock::now();
    Plan p = plan(std::nullopt, rs);
    auto b = Clock::now();
    Batch batch = lower(p);
    auto c = Clock::now();
    commit(sock, batch, &p);
    auto d = Clock::now();
    t_plan.push_back(ms(a, b));
    t_lower.push_back(ms(b, c));
    t_commit.push_back(ms(c, d));
    total.push_back(ms(a, d));
    messages = batch.size();
    bytes = batch.bytes();
  }
  std::printf(
      "knit full sync:   %7.1f ms  (plan %.1f, lower %.1f, commit %.1f; %zu messages, %zu bytes)\n",
      median(total), median(t_plan), median(t_lower), median(t_commit), messages, bytes);

  // 2. nft -f of the same ruleset.
  std::string file = "/tmp/knit-nft-bench-" + std::to_string(getpid()) + ".nft";
  {
    auto a = Clock::now();
    std::string text = render(rs);
    auto b = Clock::now();
    FILE* f = std::fopen(file.c_str(), "w");
    if (!f) throw std::runtime_error("cannot write " + file);
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
    std::printf("render:           %7.1f ms  (%zu bytes of nft syntax)\n", ms(a, b), text.size());
  }
  std::vector<double> nft_times;
  for (int r = 0; r < kRounds; ++r) {
    Ns ns("nft");
    double t = nft_load(ns, file);
    if (t < 0) {
      std::printf("nft -f failed\n");
      break;
    }
    nft_times.push_back(t);
  }
  std::remove(file.c_str());
  if (!nft_times.empty()) {
    std::printf("nft -f:           %7.1f ms  (knit/nft = %.2f)\n", median(nft_times),
                median(total) / median(nft_times));
  }

  // 3. Incremental commits on the loaded table.
  Ns ns("incr");
  auto sock = socket_in(ns);
  apply(sock, plan(std::nullopt, rs));
  {
    auto a = Clock::now();
    auto back = read_table(sock, rs.table.family, rs.table.name);
    auto b = Clock::now();
    std::printf("read back:        %7.1f ms  (%s)\n", ms(a, b),
                back && plan(back, rs).empty() ? "matches" : "DIFFERS");
  }
  const Set& target = rs.sets[0];
  Set one = target;
  one.elements = {element(
      {knit::IpAddr::v4(0x0afe0001), knit::nft::Value::u8(proto::kTcp), port_range(443, 443)})};
  std::vector<double> small;
  for (int i = 0; i < kSmallRuns; ++i) {
    Plan p{rs.table, {}};
    if (i % 2 == 0)
      p.changes.push_back(AddElements{one});
    else
      p.changes.push_back(DeleteElements{one});
    auto a = Clock::now();
    apply(sock, p);
    small.push_back(ms(a, Clock::now()));
  }
  std::printf("1-element commit: p50 %.3f ms, p99 %.3f ms  (hand-built plan, %d runs)\n",
              percentile(small, 0.5), percentile(small, 0.99), kSmallRuns);

  Ruleset with = rs;
  with.sets[0].elements.push_back(one.elements[0]);
  std::vector<double> diffed;
  const Ruleset* cur = &rs;
  for (int i = 0; i < kSmallRuns; ++i) {
    const Ruleset* des = i % 2 == 0 ? &with : &rs;
    auto a = Clock::now();
    Plan p = plan(*cur, *des);
    apply(sock, p);
    diffed.push_back(ms(a, Clock::now()));
    cur = des;
  }
  std::printf(
      "1-element sync:   p50 %.3f ms, p99 %.3f ms  (plan() over all %zu elements + commit)\n",
      percentile(diffed, 0.5), percentile(diffed, 0.99), elements);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "nft_bench: %s\n", e.what());
  return 1;
}
