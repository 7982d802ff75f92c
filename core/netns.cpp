#include "core/netns.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <cstdio>
#include <cstdlib>

#include "core/error.hpp"
#include "core/str.hpp"

namespace knit {

Netns::Netns(Fd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {
  struct stat st {};
  if (fstat(fd_.get(), &st) == 0) {
    dev_ = st.st_dev;
    ino_ = st.st_ino;
  }
}

Netns Netns::open(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) fail_errno(Code::kUnknownContainer, str("open netns ", path), errno);
  struct statfs fs {};
  if (fstatfs(fd.get(), &fs) != 0 ||
      (fs.f_type != NSFS_MAGIC && fs.f_type != PROC_SUPER_MAGIC)) {
    fail(Code::kUnknownContainer, str("open netns ", path, ": not a network namespace"));
  }
  return Netns(std::move(fd), path);
}

Netns Netns::current() {
  Fd fd(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!fd) fail_errno(Code::kInternal, "open /proc/thread-self/ns/net", errno);
  return Netns(std::move(fd), "/proc/thread-self/ns/net");
}

NetnsGuard::NetnsGuard(const Netns& target) : original_(Netns::current()) {
  if (setns(target.fd(), CLONE_NEWNET) != 0) {
    fail_errno(Code::kUnknownContainer, str("enter netns ", target.path()), errno);
  }
}

NetnsGuard::~NetnsGuard() {
  if (setns(original_.fd(), CLONE_NEWNET) != 0) {
    std::fputs("knit: fatal: cannot return to the original network namespace\n", stderr);
    std::abort();
  }
}

}  // namespace knit
