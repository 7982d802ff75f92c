// lab/random.hpp: unpredictable 32-bit values (SCTP tags, probe source ports).
#pragma once

#include <sys/random.h>
#include <time.h>

#include <cstdint>

namespace knit::lab {

/// A random non-zero value from getrandom(2); never fails (falls back to the clock).
inline uint32_t random_u32() {
  uint32_t v = 0;
  if (getrandom(&v, sizeof v, 0) != sizeof v) {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    v = static_cast<uint32_t>(ts.tv_nsec) * 2654435761u;
  }
  return v ? v : 1;
}

}  // namespace knit::lab
