// core/unix_socket.hpp: one request line, one reply line, over a unix stream socket.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace knit {

/// Connects to the unix socket at `path`, sends `line` plus a newline, and returns the reply line
/// (without its newline). The whole exchange is bounded by `timeout`. Throws Error(kTryAgainLater)
/// on timeout and Error(kIo) when the socket cannot be reached, naming the path.
std::string unix_request(const std::string& path, std::string_view line,
                         std::chrono::milliseconds timeout);

}  // namespace knit
