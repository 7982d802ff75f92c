// core/log.hpp: one-line logs on stderr ("knit[pid] level: message").
//
// stdout belongs to the CNI protocol, so logs only ever go to stderr. The level comes from
// KNIT_LOG (error, warn, info, debug); the default is info for the agent and warn for the plugin.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

namespace knit::log {

enum class Level { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

void set_level(Level l);
/// Applies KNIT_LOG if set; otherwise keeps `fallback`.
void init_from_env(Level fallback);
bool enabled(Level l);
void write(Level l, std::string_view msg);

inline void error(std::string_view m) { write(Level::kError, m); }
inline void warn(std::string_view m) { write(Level::kWarn, m); }
inline void info(std::string_view m) { write(Level::kInfo, m); }
inline void debug(std::string_view m) {
  if (enabled(Level::kDebug)) write(Level::kDebug, m);
}

/// Decides which repeats of a message get through: at most one per `interval` per key. The
/// decision half of every(), with the clock as a parameter.
class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  /// True when a message with `key` may be written at `now`; then `suppressed` is how many were
  /// held back since the last one written. Keys quiet for longer than their interval are
  /// forgotten once more than kMaxKeys are tracked, so memory stays bounded under churn.
  bool allow(std::string_view key, Clock::time_point now, Clock::duration interval,
             uint64_t& suppressed);
  size_t size() const { return keys_.size(); }

  static constexpr size_t kMaxKeys = 1024;

 private:
  struct State {
    Clock::time_point last;
    Clock::duration interval{};
    uint64_t suppressed = 0;
  };
  std::unordered_map<std::string, State> keys_;
};

/// Writes `msg` at `l` unless a message with the same `key` was written less than `interval`
/// ago. The next one written says how many were held back: "<msg> (12 similar suppressed)".
/// For events that repeat under churn or failure: a retried apply, a malformed object seen on
/// every relist, a watch that keeps dropping. Returns whether it was written.
bool every(std::string_view key, std::chrono::milliseconds interval, Level l, std::string_view msg);

}  // namespace knit::log
