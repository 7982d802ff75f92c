// lab/unix_socket.hpp: line-oriented reading and the server side of the supervisor's control
// socket (I/O): one request line, one reply line, as the agent's protocol. Clients use
// core/unix_socket.hpp.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "core/fd.hpp"

namespace knit::lab {

/// A listening, non-blocking, close-on-exec unix stream socket at `path` (a stale socket file
/// there is replaced). Throws Error(kIo).
Fd listen_unix(const std::string& path);

/// Lines from a socket or pipe; bytes after a line are kept for the next one.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}
  /// The next line without its newline; nullopt on timeout, end of file or error.
  std::optional<std::string> next(std::chrono::milliseconds timeout);

 private:
  int fd_;
  std::string pending_;
};

/// Writes `line` and a newline; errors are ignored (the client went away).
void write_line(int fd, std::string_view line);

}  // namespace knit::lab
