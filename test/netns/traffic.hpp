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

/// A process started in the background (inside `netns` when given), killed on destruction.
class Background {
 public:
  Background(const std::vector<std::string>& argv, const std::string& netns = {},
             const std::string& log_path = {});
  ~Background();
  int pid() const { return pid_; }
  /// Sends `sig` and waits for the process to exit.
  void stop(int sig);

 private:
  int pid_ = -1;
};

}  // namespace knit::test
