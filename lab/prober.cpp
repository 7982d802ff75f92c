#include "lab/prober.hpp"

#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <cstring>
#include <map>
#include <optional>
#include <unordered_map>

#include "core/error.hpp"
#include "core/fd.hpp"
#include "core/netns.hpp"
#include "core/str.hpp"
#include "lab/random.hpp"
#include "lab/sctp.hpp"

namespace knit::lab {

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::string_view kPayload = "knit-lab-probe";

sockaddr_storage sockaddr_of(const IpAddr& ip, uint16_t port, socklen_t& len) {
  sockaddr_storage ss{};
  if (ip.is_v4()) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    std::memcpy(&a->sin_addr, ip.data(), 4);
    len = sizeof(sockaddr_in);
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    std::memcpy(&a->sin6_addr, ip.data(), 16);
    len = sizeof(sockaddr_in6);
  }
  return ss;
}

/// Raises the soft limit on open files to the hard one; returns how many sockets a round may
/// hold open at once.
size_t socket_budget() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    if (rl.rlim_cur < rl.rlim_max) {
      rl.rlim_cur = rl.rlim_max;
      setrlimit(RLIMIT_NOFILE, &rl);
      getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur > 128 && rl.rlim_cur != RLIM_INFINITY) return rl.rlim_cur - 64;
    if (rl.rlim_cur == RLIM_INFINITY) return 65536;
  }
  return 64;
}

/// Namespaces of the sources, opened once per run.
class Namespaces {
 public:
  explicit Namespaces(const std::vector<std::string>& paths) : paths_(paths) {}
  const Netns& of(size_t pod) {
    auto it = open_.find(pod);
    if (it == open_.end()) it = open_.emplace(pod, Netns::open(paths_.at(pod))).first;
    return it->second;
  }

 private:
  const std::vector<std::string>& paths_;
  std::map<size_t, Netns> open_;
};

int ms_left(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

/// One round of TCP or UDP probes: `todo` indexes into `probes`; sets ok[i] for successes.
void stream_round(const std::vector<Probe>& probes, const std::vector<size_t>& todo, Namespaces& ns,
                  bool tcp, std::chrono::milliseconds timeout, std::vector<bool>& ok) {
  struct Pending {
    size_t probe;
    Fd fd;
  };
  std::vector<Pending> pending;
  for (size_t k = 0; k < todo.size();) {
    size_t from = probes[todo[k]].from;
    NetnsGuard in(ns.of(from));
    for (; k < todo.size() && probes[todo[k]].from == from; ++k) {
      const Probe& p = probes[todo[k]];
      int family = p.dst.is_v4() ? AF_INET : AF_INET6;
      Fd fd(socket(family, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (!fd) fail_errno(Code::kIo, "create probe socket", errno);
      socklen_t len = 0;
      sockaddr_storage to = sockaddr_of(p.dst, p.port, len);
      int r = connect(fd.get(), reinterpret_cast<sockaddr*>(&to), len);
      if (tcp) {
        if (r == 0) {
          ok[todo[k]] = true;
        } else if (errno == EINPROGRESS) {
          pending.push_back({todo[k], std::move(fd)});
        }
      } else if (r == 0 && send(fd.get(), kPayload.data(), kPayload.size(), 0) >= 0) {
        pending.push_back({todo[k], std::move(fd)});
      }
    }
  }
  auto deadline = Clock::now() + timeout;
  std::vector<pollfd> fds;
  while (!pending.empty()) {
    fds.clear();
    const short events = tcp ? POLLOUT : POLLIN;
    for (const auto& p : pending) fds.push_back({p.fd.get(), events, 0});
    int r = poll(fds.data(), fds.size(), ms_left(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    std::vector<Pending> still;
    for (size_t i = 0; i < pending.size(); ++i) {
      if (fds[i].revents == 0) {
        still.push_back(std::move(pending[i]));
        continue;
      }
      int fd = pending[i].fd.get();
      if (tcp) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        ok[pending[i].probe] = err == 0;
        // Reset rather than close: no TIME_WAIT left behind in the pod per probe.
        linger lg{1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      } else {
        char buf[64];
        ok[pending[i].probe] = recv(fd, buf, sizeof buf, 0) >= 0;
      }
    }
    pending = std::move(still);
  }
}

/// One round of SCTP probes: per source and family one raw socket sends every INIT and reads
/// the INIT-ACKs, which are matched to probes by verification tag and ports.
void sctp_round(const std::vector<Probe>& probes, const std::vector<size_t>& todo, Namespaces& ns,
                std::chrono::milliseconds timeout, std::vector<bool>& ok) {
  struct Expect {
    size_t probe;
    uint16_t src_port;
    uint16_t dst_port;
  };
  struct Raw {
    Fd fd;
    bool v4;
    std::unordered_map<uint32_t, Expect> by_tag;
  };
  std::map<std::pair<size_t, bool>, Raw> raws;  // (source, v4)
  for (size_t i : todo) {
    const Probe& p = probes[i];
    bool v4 = p.dst.is_v4();
    auto it = raws.find({p.from, v4});
    if (it == raws.end()) {
      NetnsGuard in(ns.of(p.from));
      Fd fd(socket(v4 ? AF_INET : AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
                   sctp::kProtocol));
      if (!fd) fail_errno(Code::kIo, "create SCTP probe socket", errno);
      it = raws.emplace(std::pair{p.from, v4}, Raw{std::move(fd), v4, {}}).first;
    }
    Raw& raw = it->second;
    uint32_t tag = random_u32();
    while (raw.by_tag.count(tag)) tag = random_u32();
    auto src_port = static_cast<uint16_t>(32768 + random_u32() % 28000);
    raw.by_tag.emplace(tag, Expect{i, src_port, p.port});
    auto init = sctp::build_init(src_port, p.port, tag, random_u32());
    socklen_t len = 0;
    sockaddr_storage to = sockaddr_of(p.dst, 0, len);
    (void)sendto(raw.fd.get(), init.data(), init.size(), 0, reinterpret_cast<sockaddr*>(&to), len);
  }
  auto deadline = Clock::now() + timeout;
  std::vector<Raw*> order;
  std::vector<pollfd> fds;
  for (auto& [k, raw] : raws) order.push_back(&raw);
  auto waiting = [&] {
    for (auto* r : order)
      if (!r->by_tag.empty()) return true;
    return false;
  };
  while (waiting()) {
    fds.clear();
    for (auto* r : order) fds.push_back({r->by_tag.empty() ? -1 : r->fd.get(), POLLIN, 0});
    int n = poll(fds.data(), fds.size(), ms_left(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (size_t i = 0; i < order.size(); ++i) {
      if (!(fds[i].revents & POLLIN)) continue;
      Raw& raw = *order[i];
      uint8_t buf[2048];
      ssize_t got;
      while ((got = recv(raw.fd.get(), buf, sizeof buf, 0)) > 0) {
        std::span<const uint8_t> bytes(buf, static_cast<size_t>(got));
        if (raw.v4) bytes = sctp::strip_ipv4(bytes);
        auto pkt = sctp::parse(bytes);
        if (!pkt || pkt->chunk_type != sctp::kInitAck || !pkt->checksum_ok) continue;
        auto e = raw.by_tag.find(pkt->vtag);
        if (e == raw.by_tag.end() || e->second.src_port != pkt->dst_port ||
            e->second.dst_port != pkt->src_port) {
          continue;
        }
        ok[e->second.probe] = true;
        raw.by_tag.erase(e);
      }
    }
  }
}

}  // namespace

std::vector<bool> run_probes(const std::vector<Probe>& probes,
                             const std::vector<std::string>& netns, Protocol protocol,
                             std::chrono::milliseconds timeout, int attempts) {
  std::vector<bool> ok(probes.size(), false);
  Namespaces ns(netns);
  const size_t budget = socket_budget();
  for (int round = 0; round < attempts; ++round) {
    std::vector<size_t> todo;
    for (size_t i = 0; i < probes.size(); ++i)
      if (!ok[i]) todo.push_back(i);
    if (todo.empty()) break;
    // TCP and UDP hold one socket per probe: run them in batches that fit the fd limit.
    size_t batch = protocol == Protocol::kSctp ? todo.size() : budget;
    for (size_t start = 0; start < todo.size(); start += batch) {
      std::vector<size_t> part(
          todo.begin() + static_cast<long>(start),
          todo.begin() + static_cast<long>(std::min(todo.size(), start + batch)));
      if (protocol == Protocol::kSctp) {
        sctp_round(probes, part, ns, timeout, ok);
      } else {
        stream_round(probes, part, ns, protocol == Protocol::kTcp, timeout, ok);
      }
    }
  }
  return ok;
}

}  // namespace knit::lab
