#include "core/fs.hpp"

#include <fcntl.h>
#include <signal.h>
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
    // open() filters `mode` through the umask; callers mean the mode they pass (a CNI plugin
    // binary must be 0755, a conflist 0644, whatever the umask of whoever runs knit).
    if (fchmod(fd.get(), mode) != 0) fail_errno(Code::kIo, str("chmod ", tmp), errno);
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

namespace {
void on_lock_timer(int) {}
}  // namespace

std::optional<FileLock> FileLock::acquire(const std::string& path,
                                          std::chrono::milliseconds timeout) {
  Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) fail_errno(Code::kIo, str("open lock ", path), errno);
  if (flock(fd.get(), LOCK_EX | LOCK_NB) == 0) return FileLock(std::move(fd));
  if (errno != EWOULDBLOCK) fail_errno(Code::kIo, str("lock ", path), errno);

  // Block in flock(LOCK_EX) so the kernel hands the lock over the moment it is released (polling
  // costs latency and CPU when 20 plugins queue up). A one-shot timer aimed at this thread
  // interrupts the wait at the deadline; its handler does nothing and has no SA_RESTART.
  const int signo = SIGRTMIN + 4;
  struct sigaction sa {};
  sa.sa_handler = on_lock_timer;
  sigemptyset(&sa.sa_mask);
  struct sigaction old {};
  sigaction(signo, &sa, &old);
  sigevent sev{};
  sev.sigev_notify = SIGEV_THREAD_ID;
  sev.sigev_signo = signo;
  sev._sigev_un._tid = static_cast<pid_t>(gettid());
  timer_t timer{};
  bool have_timer = timer_create(CLOCK_MONOTONIC, &sev, &timer) == 0;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::optional<FileLock> out;
  for (;;) {
    auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::nanoseconds::zero()) break;
    if (have_timer) {
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
      itimerspec its{};
      its.it_value.tv_sec = static_cast<time_t>(ns / 1000000000);
      its.it_value.tv_nsec = static_cast<long>(ns % 1000000000);
      timer_settime(timer, 0, &its, nullptr);
    }
    if (flock(fd.get(), have_timer ? LOCK_EX : (LOCK_EX | LOCK_NB)) == 0) {
      out = FileLock(std::move(fd));
      break;
    }
    if (errno != EINTR && errno != EWOULDBLOCK) {
      int err = errno;
      if (have_timer) timer_delete(timer);
      sigaction(signo, &old, nullptr);
      fail_errno(Code::kIo, str("lock ", path), err);
    }
    if (!have_timer) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  if (have_timer) timer_delete(timer);
  sigaction(signo, &old, nullptr);
  return out;
}

}  // namespace knit
