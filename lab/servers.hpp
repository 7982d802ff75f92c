// lab/servers.hpp: what answers inside each pod (I/O).
//
// Every declared containerPort is served from a socket opened inside the pod's namespace (the
// socket carries the namespace; the supervisor's thread only visits to create it): TCP listens
// and accepts, UDP echoes each datagram, and SCTP, which this kernel cannot do, is a raw
// IPPROTO_SCTP socket per family that answers an INIT to a served port with an INIT-ACK
// (lab/sctp.hpp). All sockets are non-blocking and driven by the supervisor's one epoll loop.
#pragma once

#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/fd.hpp"
#include "lab/lab_types.hpp"

namespace knit::lab {

class Servers {
 public:
  /// Sockets are added to `epoll_fd` (EPOLLIN, data.fd); the owner passes their events to
  /// handle().
  explicit Servers(int epoll_fd) : epoll_fd_(epoll_fd) {}
  Servers(const Servers&) = delete;
  Servers& operator=(const Servers&) = delete;

  /// Serves each distinct (port, protocol) of `ports` inside the namespace at `netns`, in place
  /// of whatever `key` served before (closed first). On failure nothing of `key` stays open.
  /// Throws Error(kIo) "serve 80/TCP in <netns>: <cause>".
  void serve(const std::string& key, const std::string& netns,
             const std::vector<ContainerPort>& ports);
  /// Closes every socket of `key` (nothing to do is fine).
  void stop(const std::string& key);
  /// Handles readiness of `fd`. Returns false when `fd` is not one of ours.
  bool handle(int fd);

 private:
  enum class Kind : uint8_t { kTcp, kUdp, kSctp4, kSctp6 };
  struct Socket {
    Fd fd;
    Kind kind;
    std::string key;
  };
  struct Pod {
    std::vector<int> fds;
    std::set<uint16_t> sctp_ports;
  };
  void answer_sctp(const Socket& s);

  int epoll_fd_;
  std::unordered_map<int, Socket> sockets_;
  std::map<std::string, Pod> pods_;
};

}  // namespace knit::lab
