// core/log.hpp: one-line logs on stderr ("knit[pid] level: message").
//
// stdout belongs to the CNI protocol, so logs only ever go to stderr. The level comes from
// KNIT_LOG (error, warn, info, debug); the default is info for the agent and warn for the plugin.
#pragma once

#include <string_view>

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

}  // namespace knit::log
