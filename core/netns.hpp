// core/netns.hpp: network namespace handles.
//
// knit never "runs inside" a namespace. Code that needs a namespace opens a netlink socket in it
// (core/netlink.hpp, Socket::open_in), which switches the calling thread in and straight back out
// under a NetnsGuard; from then on the socket carries the namespace.
#pragma once

#include <sys/types.h>

#include <string>

#include "core/fd.hpp"

namespace knit {

class Netns {
 public:
  /// Opens the namespace file at `path` (e.g. /run/netns/x). Throws Error(kUnknownContainer)
  /// naming the path when it cannot be opened or is not a network namespace.
  static Netns open(const std::string& path);
  /// The calling thread's own network namespace.
  static Netns current();

  int fd() const noexcept { return fd_.get(); }
  const std::string& path() const noexcept { return path_; }
  /// Identity of the namespace (device and inode of its nsfs file).
  dev_t dev() const noexcept { return dev_; }
  ino_t ino() const noexcept { return ino_; }
  bool same_as(const Netns& o) const noexcept { return dev_ == o.dev_ && ino_ == o.ino_; }

 private:
  Netns(Fd fd, std::string path);
  Fd fd_;
  std::string path_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

/// Switches the calling thread into `target` and back to the original namespace on destruction.
/// A failure to switch back terminates the process: continuing in the wrong namespace would
/// change the wrong network.
class NetnsGuard {
 public:
  explicit NetnsGuard(const Netns& target);
  ~NetnsGuard();
  NetnsGuard(const NetnsGuard&) = delete;
  NetnsGuard& operator=(const NetnsGuard&) = delete;

 private:
  Netns original_;
};

}  // namespace knit
