// core/fs.hpp: crash-safe file replacement and advisory locks.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "core/fd.hpp"

namespace knit {

/// Creates `path` and its parents with `mode` if missing. Throws Error(kIo).
void make_dirs(const std::string& path, unsigned mode = 0700);

/// Replaces `dir`/`name` with `content` so that a crash leaves either the old or the new file:
/// write a temporary file ("."+name+".tmp."+pid), fsync it, rename it over the target, fsync the
/// directory. The file gets exactly `mode` (the umask does not apply). Throws Error(kIo) naming
/// the file.
void atomic_write(const std::string& dir, const std::string& name, std::string_view content,
                  unsigned mode = 0600);

/// The whole file, or nullopt when it does not exist. Throws Error(kIo) on other failures.
std::optional<std::string> read_file(const std::string& path);

/// An exclusive flock(2) on a lock file, released on destruction (and by the kernel when the
/// process dies, so a killed plugin never leaves the store locked).
class FileLock {
 public:
  /// Waits up to `timeout` for the lock on `path` (created if missing). Returns nullopt on
  /// timeout; throws Error(kIo) when the file cannot be opened.
  static std::optional<FileLock> acquire(const std::string& path,
                                         std::chrono::milliseconds timeout);

 private:
  explicit FileLock(Fd fd) : fd_(std::move(fd)) {}
  Fd fd_;
};

}  // namespace knit
