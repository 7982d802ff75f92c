#include "lab/unix_socket.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "core/error.hpp"
#include "core/str.hpp"

namespace knit::lab {

Fd listen_unix(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path) {
    fail(Code::kIo, str("bind socket ", path, ": path longer than ", sizeof a.sun_path - 1));
  }
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  Fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) fail_errno(Code::kIo, str("create socket ", path), errno);
  unlink(path.c_str());
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    fail_errno(Code::kIo, str("bind socket ", path), errno);
  }
  if (listen(fd.get(), 16) != 0) fail_errno(Code::kIo, str("listen on ", path), errno);
  return fd;
}

std::optional<std::string> LineReader::next(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  for (;;) {
    if (auto nl = pending_.find('\n'); nl != std::string::npos) {
      std::string line = pending_.substr(0, nl);
      pending_.erase(0, nl + 1);
      return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd_, POLLIN, 0};
    int r = poll(&p, 1, left.count() > 0 ? static_cast<int>(left.count()) : 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return std::nullopt;
    ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return std::nullopt;
    pending_.append(buf, static_cast<size_t>(n));
  }
}

void write_line(int fd, std::string_view line) {
  std::string msg = str(line, '\n');
  (void)send(fd, msg.data(), msg.size(), MSG_NOSIGNAL);
}

}  // namespace knit::lab
