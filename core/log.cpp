#include "core/log.hpp"

#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <mutex>

#include "core/str.hpp"

namespace knit::log {

namespace {
Level g_level = Level::kInfo;
constexpr const char* kNames[] = {"error", "warn", "info", "debug"};
}  // namespace

void set_level(Level l) { g_level = l; }

void init_from_env(Level fallback) {
  g_level = fallback;
  const char* v = std::getenv("KNIT_LOG");
  if (v == nullptr) return;
  for (int i = 0; i < 4; ++i)
    if (std::strcmp(v, kNames[i]) == 0) g_level = static_cast<Level>(i);
}

bool enabled(Level l) { return l <= g_level; }

void write(Level l, std::string_view msg) {
  if (!enabled(l)) return;
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char stamp[32];
  strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &t);
  int ms = static_cast<int>(ts.tv_nsec / 1000000);
  char frac[8] = {'.', static_cast<char>('0' + ms / 100), static_cast<char>('0' + ms / 10 % 10),
                  static_cast<char>('0' + ms % 10), '\0'};
  std::string line = str(stamp, frac, "Z knit[", static_cast<long>(getpid()), "] ",
                         kNames[static_cast<int>(l)], ": ", msg, '\n');
  (void)::write(2, line.data(), line.size());
}

bool RateLimiter::allow(std::string_view key, Clock::time_point now, Clock::duration interval,
                        uint64_t& suppressed) {
  auto it = keys_.find(std::string(key));
  if (it != keys_.end() && now - it->second.last < it->second.interval) {
    ++it->second.suppressed;
    return false;
  }
  if (it == keys_.end()) {
    if (keys_.size() >= kMaxKeys) {
      std::erase_if(keys_, [&](const auto& kv) {
        return now - kv.second.last >= kv.second.interval;
      });
      // Every key is still within its interval: a storm of distinct keys. Forget them all
      // rather than grow: the worst case is one extra line per key.
      if (keys_.size() >= kMaxKeys) keys_.clear();
    }
    it = keys_.emplace(std::string(key), State{}).first;
  }
  suppressed = it->second.suppressed;
  it->second = State{now, interval, 0};
  return true;
}

bool every(std::string_view key, std::chrono::milliseconds interval, Level l, std::string_view msg) {
  if (!enabled(l)) return false;
  static std::mutex mu;
  static RateLimiter limiter;
  uint64_t suppressed = 0;
  {
    std::lock_guard lock(mu);
    if (!limiter.allow(key, RateLimiter::Clock::now(), interval, suppressed)) return false;
  }
  if (suppressed == 0) {
    write(l, msg);
  } else {
    write(l, str(msg, " (", suppressed, " similar suppressed)"));
  }
  return true;
}

}  // namespace knit::log
