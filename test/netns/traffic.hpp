// test/netns/traffic.hpp: real TCP traffic inside test namespaces, and background processes.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace knit::test {

/// A TCP echo server on `port` (IPv4 and IPv6) inside the namespace at `netns`, on a thread.
class TcpEchoServer {
 public:
  TcpEchoServer(const std::string& netns, int port);
  ~TcpEchoServer();

 private:
  std::atomic<bool> stop_{false};
  int wake_[2] = {-1, -1};
  std::thread thread_;
};

/// True when a TCP connection from inside `netns` to addr:port completes within `timeout`.
bool tcp_connects(const std::string& netns, const std::string& addr, int port,
                  std::chrono::milliseconds timeout = std::chrono::milliseconds(500));

/// A long-lived TCP connection opened from inside `netns`.
class TcpConn {
 public:
  /// Connects; connected() tells whether it worked within `timeout`.
  TcpConn(const std::string& netns, const std::string& addr, int port,
          std::chrono::milliseconds timeout = std::chrono::milliseconds(500));
  ~TcpConn();
  bool connected() const { return fd_ >= 0; }
  /// Sends a byte and waits for its echo; false on timeout or error.
  bool echo(std::chrono::milliseconds timeout = std::chrono::milliseconds(500));

 private:
  int fd_ = -1;
};

/// A server on `port` inside `netns`, TCP and UDP, IPv4 and IPv6, that answers with a name: every
/// TCP connection gets `name` and is closed; every UDP datagram is answered with `name`. With
/// kPeerAddress as the name it answers with the client's address as it sees it ("10.99.0.1",
/// IPv4-mapped addresses unmapped), which shows whether a source was NATed.
class NameServer {
 public:
  static constexpr const char* kPeerAddress = "$peer";
  NameServer(const std::string& netns, int port, std::string name);
  ~NameServer();
  NameServer(const NameServer&) = delete;
  NameServer& operator=(const NameServer&) = delete;

 private:
  void serve();
  std::string answer(const void* sockaddr) const;
  std::string name_;
  int tcp_ = -1, udp_ = -1;
  int wake_[2] = {-1, -1};
  std::thread thread_;
};

/// Connects from `netns` to addr:port (from `bind_addr` when given, like `curl --interface`)
/// and returns what the server sent before closing; "" when the connection fails. Tried twice
/// (a loaded test machine may lose the first attempt to a timeout), one second each.
std::string ask_tcp(const std::string& netns, const std::string& addr, int port,
                    const std::string& bind_addr = "");

/// A UDP client socket in `netns`, bound to `src_port` (0: any).
class UdpClient {
 public:
  UdpClient(const std::string& netns, bool v6, int src_port = 0);
  ~UdpClient();
  UdpClient(const UdpClient&) = delete;
  UdpClient& operator=(const UdpClient&) = delete;
  /// Sends one datagram and returns the answer; "" when none comes within 500 ms.
  std::string ask(const std::string& addr, int port);

 private:
  int fd_ = -1;
};

/// One UDP question from `netns` (tried twice, like ask_tcp).
std::string ask_udp(const std::string& netns, const std::string& addr, int port);

/// True when a datagram from `netns` to addr:port, where nothing listens, comes back refused
/// within 500 ms: the ICMP port-unreachable error of the destination reached the sender (tried
/// twice).
bool udp_refused(const std::string& netns, const std::string& addr, int port);

/// A TCP relay: listens on listen_addr:listen_port inside `listen_netns` and forwards every
/// connection to to_addr:to_port, connecting from inside `to_netns`. It puts a server that only
/// listens on its own namespace's loopback (test/apiserver) on an address other namespaces reach,
/// like the API server's address on a node network. A connection the upstream refuses is closed
/// at once; when either side closes or fails, both are closed. Bytes are relayed as they come
/// (a half-sent event stays half-sent).
class TcpRelay {
 public:
  TcpRelay(const std::string& listen_netns, const std::string& listen_addr, int listen_port,
           const std::string& to_netns, const std::string& to_addr, int to_port);
  ~TcpRelay();
  TcpRelay(const TcpRelay&) = delete;
  TcpRelay& operator=(const TcpRelay&) = delete;

 private:
  void serve();
  std::string to_netns_, to_addr_;
  int to_port_;
  int listen_ = -1;
  int wake_[2] = {-1, -1};
  std::thread thread_;
};

/// A process started in the background (inside `netns` when given), killed on destruction.
/// `env` ("NAME=value") is added to the environment it inherits.
class Background {
 public:
  Background(const std::vector<std::string>& argv, const std::string& netns = {},
             const std::string& log_path = {}, const std::vector<std::string>& env = {});
  ~Background();
  int pid() const { return pid_; }
  /// Sends `sig` and waits for the process to exit.
  void stop(int sig);

 private:
  int pid_ = -1;
};

}  // namespace knit::test
