#include "lab/servers.hpp"

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cstring>

#include "core/error.hpp"
#include "core/log.hpp"
#include "core/netns.hpp"
#include "core/str.hpp"
#include "lab/random.hpp"
#include "lab/sctp.hpp"

namespace knit::lab {

namespace {

/// A dual-stack socket bound to [::]:port (IPv4 arrives v4-mapped).
Fd bound_socket(int type, uint16_t port, std::string_view what) {
  Fd fd(socket(AF_INET6, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) fail_errno(Code::kIo, what, errno);
  int zero = 0, one = 1;
  setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(port);
  a.sin6_addr = in6addr_any;
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    fail_errno(Code::kIo, what, errno);
  }
  if (type == SOCK_STREAM && listen(fd.get(), 128) != 0) fail_errno(Code::kIo, what, errno);
  return fd;
}

Fd raw_sctp(int family, std::string_view what) {
  Fd fd(socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, sctp::kProtocol));
  if (!fd) fail_errno(Code::kIo, what, errno);
  return fd;
}

}  // namespace

void Servers::serve(const std::string& key, const std::string& netns,
                    const std::vector<ContainerPort>& ports) {
  // The old sockets go first: a port kept across the change is bound again right away.
  stop(key);
  std::vector<std::pair<Fd, Kind>> opened;
  Pod pod;
  {
    Netns ns = Netns::open(netns);
    NetnsGuard in(ns);
    std::set<std::pair<uint16_t, Protocol>> seen;
    for (const auto& cp : ports) {
      if (!seen.insert({cp.port, cp.protocol}).second) continue;
      std::string what =
          str("serve ", cp.port, '/', watcher::to_string(cp.protocol), " in ", netns);
      switch (cp.protocol) {
        case Protocol::kTcp:
          opened.emplace_back(bound_socket(SOCK_STREAM, cp.port, what), Kind::kTcp);
          break;
        case Protocol::kUdp:
          opened.emplace_back(bound_socket(SOCK_DGRAM, cp.port, what), Kind::kUdp);
          break;
        case Protocol::kSctp:
          if (pod.sctp_ports.empty()) {
            opened.emplace_back(raw_sctp(AF_INET, what), Kind::kSctp4);
            opened.emplace_back(raw_sctp(AF_INET6, what), Kind::kSctp6);
          }
          pod.sctp_ports.insert(cp.port);
          break;
      }
    }
  }
  for (auto& [fd, kind] : opened) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd.get();
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd.get(), &ev) != 0) {
      int err = errno;
      for (int f : pod.fds) {
        epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, f, nullptr);
        sockets_.erase(f);
      }
      fail_errno(Code::kIo, str("serve ports of ", key, ": epoll"), err);
    }
    pod.fds.push_back(fd.get());
    int raw = fd.get();
    sockets_.emplace(raw, Socket{std::move(fd), kind, key});
  }
  pods_[key] = std::move(pod);
}

void Servers::stop(const std::string& key) {
  auto it = pods_.find(key);
  if (it == pods_.end()) return;
  for (int fd : it->second.fds) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    sockets_.erase(fd);  // closes it
  }
  pods_.erase(it);
}

bool Servers::handle(int fd) {
  auto it = sockets_.find(fd);
  if (it == sockets_.end()) return false;
  const Socket& s = it->second;
  switch (s.kind) {
    case Kind::kTcp:
      // The handshake is what a probe checks; the connection itself is closed at once.
      for (;;) {
        int c = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) break;
        ::close(c);
      }
      break;
    case Kind::kUdp:
      for (;;) {
        char buf[2048];
        sockaddr_in6 from{};
        socklen_t len = sizeof from;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
        if (n < 0) break;
        (void)sendto(fd, buf, static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&from), len);
      }
      break;
    case Kind::kSctp4:
    case Kind::kSctp6:
      answer_sctp(s);
      break;
  }
  return true;
}

void Servers::answer_sctp(const Socket& s) {
  const auto& served = pods_[s.key].sctp_ports;
  for (;;) {
    uint8_t buf[2048];
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    ssize_t n = recvfrom(s.fd.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) return;
    std::span<const uint8_t> bytes(buf, static_cast<size_t>(n));
    // An AF_INET raw socket delivers the IP header too; an AF_INET6 one does not.
    if (s.kind == Kind::kSctp4) bytes = sctp::strip_ipv4(bytes);
    auto p = sctp::parse(bytes);
    if (!p || p->chunk_type != sctp::kInit || p->vtag != 0 || !p->checksum_ok ||
        !served.count(p->dst_port)) {
      continue;
    }
    auto ack =
        sctp::build_init_ack(p->dst_port, p->src_port, p->initiate_tag, random_u32(), random_u32());
    // A raw socket reads the port field of the address as a protocol number: 0 is its own.
    if (from.ss_family == AF_INET) reinterpret_cast<sockaddr_in*>(&from)->sin_port = 0;
    if (from.ss_family == AF_INET6) reinterpret_cast<sockaddr_in6*>(&from)->sin6_port = 0;
    if (sendto(s.fd.get(), ack.data(), ack.size(), 0, reinterpret_cast<sockaddr*>(&from), len) <
        0) {
      log::debug(str("answer SCTP INIT on ", s.key, ": ", std::strerror(errno)));
    }
  }
}

}  // namespace knit::lab
