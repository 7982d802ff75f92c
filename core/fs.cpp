#include "core/fs.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <thread>

#include "core/error.hpp"
#include "core/str.hpp"

namespace knit {

void make_dirs(const std::string& path, unsigned mode) {
  if (path.empty()) return;
  size_t pos = 0;
  for (;;) {
    pos = path.find('/', pos + 1);
    std::string prefix = path.substr(0, pos);
    if (mkdir(prefix.c_str(), mode) != 0 && errno != EEXIST) {
      fail_errno(Code::kIo, str("create directory ", prefix), errno);
    }
    if (pos == std::string::npos) return;
  }
}

namespace {
void write_all(int fd, std::string_view content, const std::string& path) {
  while (!content.empty()) {
    ssize_t n = ::write(fd, content.data(), content.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_errno(Code::kIo, str("write ", path), errno);
    }
    content.remove_prefix(static_cast<size_t>(n));
  }
}
}  // namespace

void atomic_write(const std::string& dir, const std::string& name, std::string_view content,
                  unsigned mode) {
  std::string target = str(dir, '/', name);
  std::string tmp = str(dir, '/', '.', name, ".tmp.", static_cast<long>(getpid()));
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd) fail_errno(Code::kIo, str("create ", tmp), errno);
  try {
    write_all(fd.get(), content, tmp);
    if (fsync(fd.get()) != 0) fail_errno(Code::kIo, str("fsync ", tmp), errno);
    fd.reset();
    if (rename(tmp.c_str(), target.c_str()) != 0) {
      fail_errno(Code::kIo, str("rename ", tmp, " to ", target), errno);
    }
  } catch (...) {
    unlink(tmp.c_str());
    throw;
  }
  Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd) fail_errno(Code::kIo, str("open directory ", dir), errno);
  if (fsync(dfd.get()) != 0) fail_errno(Code::kIo, str("fsync directory ", dir), errno);
}

std::optional<std::string> read_file(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return std::nullopt;
    fail_errno(Code::kIo, str("open ", path), errno);
  }
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_errno(Code::kIo, str("read ", path), errno);
    }
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

std::optional<FileLock> FileLock::acquire(const std::string& path,
                                          std::chrono::milliseconds timeout) {
  Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) fail_errno(Code::kIo, str("open lock ", path), errno);
  if (flock(fd.get(), LOCK_EX | LOCK_NB) == 0) return FileLock(std::move(fd));
  if (errno != EWOULDBLOCK) fail_errno(Code::kIo, str("lock ", path), errno);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  // Contention is short (the store is held for well under a millisecond), so poll with a small
  // back-off rather than block forever in flock(LOCK_EX).
  auto pause = std::chrono::microseconds(50);
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(pause);
    if (flock(fd.get(), LOCK_EX | LOCK_NB) == 0) return FileLock(std::move(fd));
    if (errno != EWOULDBLOCK) fail_errno(Code::kIo, str("lock ", path), errno);
    pause = std::min(pause * 2, std::chrono::microseconds(2000));
  }
  return std::nullopt;
}

}  // namespace knit
