#include "core/unix_socket.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "core/error.hpp"
#include "core/fd.hpp"
#include "core/str.hpp"

namespace knit {

std::string unix_request(const std::string& path, std::string_view line,
                         std::chrono::milliseconds timeout) {
  using Clock = std::chrono::steady_clock;
  auto deadline = Clock::now() + timeout;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) fail(Code::kIo, str("connect ", path, ": path too long"));
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) fail_errno(Code::kIo, str("connect ", path), errno);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 &&
      errno != EINPROGRESS && errno != EAGAIN) {
    fail_errno(Code::kIo, str("connect ", path), errno);
  }
  auto wait = [&](short events) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) fail(Code::kTryAgainLater, str("talk to ", path, ": timed out"));
    pollfd p{fd.get(), events, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r == 0) fail(Code::kTryAgainLater, str("talk to ", path, ": timed out"));
    if (r < 0 && errno != EINTR) fail_errno(Code::kIo, str("talk to ", path), errno);
  };
  std::string out = str(line, '\n');
  size_t off = 0;
  while (off < out.size()) {
    ssize_t n = ::send(fd.get(), out.data() + off, out.size() - off, MSG_NOSIGNAL);
    if (n >= 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (errno == EAGAIN || errno == EINTR) {
      wait(POLLOUT);
      continue;
    }
    fail_errno(Code::kIo, str("send to ", path), errno);
  }
  std::string in;
  char buf[4096];
  for (;;) {
    auto nl = in.find('\n');
    if (nl != std::string::npos) return in.substr(0, nl);
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n > 0) {
      in.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      if (!in.empty()) return in;
      fail(Code::kIo, str("read from ", path, ": connection closed without a reply"));
    }
    if (errno == EAGAIN || errno == EINTR) {
      wait(POLLIN);
      continue;
    }
    fail_errno(Code::kIo, str("read from ", path), errno);
  }
}

}  // namespace knit
