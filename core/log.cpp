#include "core/log.hpp"

#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

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

}  // namespace knit::log
