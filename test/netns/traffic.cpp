#include "traffic.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace knit::test {

namespace {

/// Switches the calling thread into `netns` for the lifetime of the guard.
struct InNetns {
  explicit InNetns(const std::string& netns) {
    self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    int fd = open(netns.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) throw std::runtime_error("setns " + netns);
    close(fd);
  }
  ~InNetns() {
    setns(self, CLONE_NEWNET);
    close(self);
  }
  int self;
};

int make_socket(const std::string& addr, int port, sockaddr_storage& ss, socklen_t& len) {
  std::memset(&ss, 0, sizeof ss);
  if (addr.find(':') != std::string::npos) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET6, addr.c_str(), &s6->sin6_addr);
    len = sizeof *s6;
    return socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  }
  auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
  s4->sin_family = AF_INET;
  s4->sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, addr.c_str(), &s4->sin_addr);
  len = sizeof *s4;
  return socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
}

int connect_in(const std::string& netns, const std::string& addr, int port,
               std::chrono::milliseconds timeout) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int fd;
  {
    InNetns in(netns);
    fd = make_socket(addr, port, ss, len);
  }
  if (fd < 0) return -1;
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  pollfd p{fd, POLLOUT, 0};
  if (poll(&p, 1, static_cast<int>(timeout.count())) != 1) {
    close(fd);
    return -1;
  }
  int err = 0;
  socklen_t el = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
  if (err != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

TcpEchoServer::TcpEchoServer(const std::string& netns, int port) {
  if (pipe2(wake_, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  int lfd;
  {
    InNetns in(netns);
    lfd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int zero = 0, one = 1;
    setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(static_cast<uint16_t>(port));
    if (bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(lfd, 64) != 0) {
      throw std::runtime_error("listen in " + netns);
    }
  }
  thread_ = std::thread([this, lfd] {
    std::vector<pollfd> fds = {{wake_[0], POLLIN, 0}, {lfd, POLLIN, 0}};
    while (!stop_) {
      if (poll(fds.data(), fds.size(), 200) <= 0) continue;
      for (size_t i = 1; i < fds.size(); ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        if (i == 1) {
          int c = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
          if (c >= 0) fds.push_back({c, POLLIN, 0});
        } else {
          char buf[512];
          ssize_t n = read(fds[i].fd, buf, sizeof buf);
          if (n > 0) {
            (void)!write(fds[i].fd, buf, static_cast<size_t>(n));
          } else if (n == 0 || errno != EAGAIN) {
            close(fds[i].fd);
            fds[i].fd = -1;
          }
        }
      }
      std::erase_if(fds, [](const pollfd& p) { return p.fd < 0; });
      for (auto& f : fds) f.revents = 0;
    }
    for (size_t i = 1; i < fds.size(); ++i) close(fds[i].fd);
  });
}

TcpEchoServer::~TcpEchoServer() {
  stop_ = true;
  (void)!write(wake_[1], "x", 1);
  thread_.join();
  close(wake_[0]);
  close(wake_[1]);
}

bool tcp_connects(const std::string& netns, const std::string& addr, int port,
                  std::chrono::milliseconds timeout) {
  int fd = connect_in(netns, addr, port, timeout);
  if (fd < 0) return false;
  close(fd);
  return true;
}

TcpConn::TcpConn(const std::string& netns, const std::string& addr, int port,
                 std::chrono::milliseconds timeout)
    : fd_(connect_in(netns, addr, port, timeout)) {}

TcpConn::~TcpConn() {
  if (fd_ >= 0) close(fd_);
}

bool TcpConn::echo(std::chrono::milliseconds timeout) {
  if (fd_ < 0) return false;
  if (send(fd_, "x", 1, MSG_NOSIGNAL) != 1) return false;
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(timeout.count())) != 1) return false;
  char c;
  return read(fd_, &c, 1) == 1;
}

// ---- NameServer, ask_tcp, UdpClient -------------------------------------------------------------

namespace {

bool is_v6(const std::string& a) { return a.find(':') != std::string::npos; }

sockaddr_storage sockaddr_of(const std::string& addr, int port, socklen_t& len) {
  sockaddr_storage ss{};
  if (is_v6(addr)) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET6, addr.c_str(), &s6->sin6_addr);
    len = sizeof *s6;
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, addr.c_str(), &s4->sin_addr);
    len = sizeof *s4;
  }
  return ss;
}

int bound_socket(int type, int port) {
  int fd = socket(AF_INET6, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int zero = 0, one = 1;
  setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(static_cast<uint16_t>(port));
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("bind");
  if (type == SOCK_STREAM && listen(fd, 16) != 0) throw std::runtime_error("listen");
  return fd;
}

std::string ask_tcp_once(const std::string& netns, const std::string& addr, int port,
                         const std::string& bind_addr) {
  socklen_t len = 0;
  auto ss = sockaddr_of(addr, port, len);
  int fd;
  {
    InNetns in(netns);
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  }
  timeval tv{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (!bind_addr.empty()) {
    socklen_t bl = 0;
    auto b = sockaddr_of(bind_addr, 0, bl);
    if (bind(fd, reinterpret_cast<sockaddr*>(&b), bl) != 0) {
      close(fd);
      return "bind failed";
    }
  }
  std::string out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0) {
    char buf[256];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

}  // namespace

NameServer::NameServer(const std::string& netns, int port, std::string name)
    : name_(std::move(name)) {
  {
    InNetns in(netns);
    tcp_ = bound_socket(SOCK_STREAM, port);
    udp_ = bound_socket(SOCK_DGRAM, port);
  }
  if (pipe2(wake_, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  thread_ = std::thread([this] { serve(); });
}

NameServer::~NameServer() {
  (void)!write(wake_[1], "x", 1);
  thread_.join();
  for (int fd : {tcp_, udp_, wake_[0], wake_[1]}) close(fd);
}

std::string NameServer::answer(const void* sa) const {
  if (name_ != kPeerAddress) return name_;
  auto* s6 = static_cast<const sockaddr_in6*>(sa);
  char text[INET6_ADDRSTRLEN] = {};
  if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
    inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], text, sizeof text);
  } else {
    inet_ntop(AF_INET6, &s6->sin6_addr, text, sizeof text);
  }
  return text;
}

void NameServer::serve() {
  pollfd fds[3] = {{wake_[0], POLLIN, 0}, {tcp_, POLLIN, 0}, {udp_, POLLIN, 0}};
  for (;;) {
    if (poll(fds, 3, 1000) <= 0) continue;
    if (fds[0].revents) return;
    sockaddr_storage from{};
    socklen_t fl = sizeof from;
    if (fds[1].revents & POLLIN) {
      int c = accept4(tcp_, reinterpret_cast<sockaddr*>(&from), &fl, SOCK_CLOEXEC);
      if (c >= 0) {
        std::string a = answer(&from);
        (void)!write(c, a.data(), a.size());
        close(c);
      }
    }
    if (fds[2].revents & POLLIN) {
      char buf[512];
      fl = sizeof from;
      if (recvfrom(udp_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl) >= 0) {
        std::string a = answer(&from);
        sendto(udp_, a.data(), a.size(), 0, reinterpret_cast<sockaddr*>(&from), fl);
      }
    }
  }
}

std::string ask_tcp(const std::string& netns, const std::string& addr, int port,
                    const std::string& bind_addr) {
  std::string r = ask_tcp_once(netns, addr, port, bind_addr);
  return r.empty() ? ask_tcp_once(netns, addr, port, bind_addr) : r;
}

UdpClient::UdpClient(const std::string& netns, bool v6, int src_port) {
  {
    InNetns in(netns);
    fd_ = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  }
  socklen_t len = 0;
  auto any = sockaddr_of(v6 ? "::" : "0.0.0.0", src_port, len);
  if (bind(fd_, reinterpret_cast<sockaddr*>(&any), len) != 0) throw std::runtime_error("bind");
}

UdpClient::~UdpClient() { close(fd_); }

std::string UdpClient::ask(const std::string& addr, int port) {
  socklen_t len = 0;
  auto ss = sockaddr_of(addr, port, len);
  if (sendto(fd_, "?", 1, 0, reinterpret_cast<sockaddr*>(&ss), len) != 1) return "";
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, 500) != 1) return "";
  char buf[256];
  ssize_t n = recv(fd_, buf, sizeof buf, 0);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

std::string ask_udp(const std::string& netns, const std::string& addr, int port) {
  UdpClient c(netns, is_v6(addr));
  std::string r = c.ask(addr, port);
  return r.empty() ? c.ask(addr, port) : r;
}

bool udp_refused(const std::string& netns, const std::string& addr, int port) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    int fd;
    {
      InNetns in(netns);
      fd = socket(is_v6(addr) ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    }
    socklen_t len = 0;
    auto ss = sockaddr_of(addr, port, len);
    // A connected socket is told of ICMP errors: the next receive fails with ECONNREFUSED.
    bool refused = false;
    if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0 && send(fd, "?", 1, 0) == 1) {
      pollfd p{fd, POLLIN, 0};
      char buf[16];
      refused = poll(&p, 1, 500) == 1 && recv(fd, buf, sizeof buf, 0) < 0 && errno == ECONNREFUSED;
    }
    close(fd);
    if (refused) return true;
  }
  return false;
}

// ---- TcpRelay ------------------------------------------------------------------------------

TcpRelay::TcpRelay(const std::string& listen_netns, const std::string& listen_addr, int listen_port,
                   const std::string& to_netns, const std::string& to_addr, int to_port)
    : to_netns_(to_netns), to_addr_(to_addr), to_port_(to_port) {
  socklen_t len = 0;
  auto a = sockaddr_of(listen_addr, listen_port, len);
  {
    InNetns in(listen_netns);
    listen_ = socket(a.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  }
  int one = 1;
  setsockopt(listen_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (listen_ < 0 || bind(listen_, reinterpret_cast<sockaddr*>(&a), len) != 0 ||
      listen(listen_, 64) != 0) {
    throw std::runtime_error("TcpRelay: listen on " + listen_addr + " in " + listen_netns + ": " +
                             std::strerror(errno));
  }
  if (pipe2(wake_, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  thread_ = std::thread([this] { serve(); });
}

TcpRelay::~TcpRelay() {
  (void)!write(wake_[1], "x", 1);
  thread_.join();
  for (int fd : {listen_, wake_[0], wake_[1]}) close(fd);
}

void TcpRelay::serve() {
  // fds[0]: wake, fds[1]: listener, then pairs (client, upstream) at even/odd positions from 2.
  std::vector<pollfd> fds = {{wake_[0], POLLIN, 0}, {listen_, POLLIN, 0}};
  auto close_pair = [&](size_t i) {
    size_t first = i - (i % 2);  // the pair's client slot (pairs start at index 2)
    for (size_t k : {first, first + 1}) {
      if (fds[k].fd >= 0) close(fds[k].fd);
      fds[k].fd = -1;
    }
  };
  for (;;) {
    for (auto& f : fds) f.revents = 0;
    if (poll(fds.data(), fds.size(), 1000) <= 0) continue;
    if (fds[0].revents) break;
    if (fds[1].revents & POLLIN) {
      int c = accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) {
        socklen_t len = 0;
        auto to = sockaddr_of(to_addr_, to_port_, len);
        int u;
        {
          InNetns in(to_netns_);
          u = socket(to.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        }
        if (u < 0 || connect(u, reinterpret_cast<sockaddr*>(&to), len) != 0) {
          if (u >= 0) close(u);
          close(c);  // upstream down: the client sees its connection closed at once
        } else {
          // Bounded writes: a client that stops reading must not stall the other connections.
          timeval tv{2, 0};
          for (int fd : {c, u}) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
          }
          fds.push_back({c, POLLIN, 0});
          fds.push_back({u, POLLIN, 0});
        }
      }
    }
    for (size_t i = 2; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      int peer = fds[i % 2 ? i - 1 : i + 1].fd;
      char buf[65536];
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      bool ok = n > 0;
      for (ssize_t off = 0; ok && off < n;) {
        ssize_t w = send(peer, buf + off, static_cast<size_t>(n - off), MSG_NOSIGNAL);
        if (w <= 0) {
          ok = false;
        } else {
          off += w;
        }
      }
      if (!ok) close_pair(i);
    }
    // Drop closed pairs (both slots of a pair close together, so pairs stay aligned).
    std::vector<pollfd> keep(fds.begin(), fds.begin() + 2);
    for (size_t i = 2; i + 1 < fds.size(); i += 2) {
      if (fds[i].fd >= 0) {
        keep.push_back(fds[i]);
        keep.push_back(fds[i + 1]);
      }
    }
    fds.swap(keep);
  }
  for (size_t i = 2; i < fds.size(); ++i) {
    if (fds[i].fd >= 0) close(fds[i].fd);
  }
}

Background::Background(const std::vector<std::string>& argv, const std::string& netns,
                       const std::string& log_path, const std::vector<std::string>& env) {
  std::vector<std::string> args = argv, vars = env;
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  pid_ = fork();
  if (pid_ == 0) {
    setpgid(0, 0);
    for (auto& v : vars) putenv(v.data());
    if (!log_path.empty()) {
      int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
    }
    if (!netns.empty()) {
      int fd = open(netns.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) _exit(126);
    }
    execv(cargs[0], cargs.data());
    _exit(127);
  }
}

Background::~Background() {
  if (pid_ > 0) stop(SIGKILL);
}

void Background::stop(int sig) {
  if (pid_ <= 0) return;
  kill(pid_, sig);
  int st;
  waitpid(pid_, &st, 0);
  pid_ = -1;
}

}  // namespace knit::test
