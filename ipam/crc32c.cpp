#include "ipam/crc32c.hpp"

#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace knit::ipam {

namespace {

constexpr uint32_t kPoly = 0x82f63b78u;  // Castagnoli, bit-reflected

/// t[0] is the classic byte table; t[k] advances a byte that is followed by k more bytes, so one
/// step folds in eight bytes ("slicing by 8", 8 KiB of tables).
struct Tables {
  uint32_t t[8][256];
};

constexpr Tables make_tables() {
  Tables x{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    x.t[0][i] = c;
  }
  for (int k = 1; k < 8; ++k) {
    for (uint32_t i = 0; i < 256; ++i) {
      x.t[k][i] = (x.t[k - 1][i] >> 8) ^ x.t[0][x.t[k - 1][i] & 0xff];
    }
  }
  return x;
}

constexpr Tables kTables = make_tables();

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t crc32c_sse42(const unsigned char* p, size_t n) {
  uint64_t c = ~uint32_t{0};
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    c = _mm_crc32_u64(c, w);
  }
  auto c32 = static_cast<uint32_t>(c);
  for (; n > 0; ++p, --n) c32 = _mm_crc32_u8(c32, *p);
  return ~c32;
}

bool have_sse42() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2");
}
#endif

}  // namespace

uint32_t crc32c_portable(std::string_view s) noexcept {
  auto p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size();
  const auto& t = kTables.t;
  uint32_t c = ~uint32_t{0};
  for (; n >= 8; p += 8, n -= 8) {
    uint32_t lo =
        (uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24) ^ c;
    c = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
        t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
  }
  for (; n > 0; ++p, --n) c = (c >> 8) ^ t[0][(c ^ *p) & 0xff];
  return ~c;
}

uint32_t crc32c(std::string_view s) noexcept {
#if defined(__x86_64__)
  static const bool hw = have_sse42();
  if (hw) return crc32c_sse42(reinterpret_cast<const unsigned char*>(s.data()), s.size());
#endif
  return crc32c_portable(s);
}

}  // namespace knit::ipam
