// core/str.hpp: small string helpers (g++ 12 has no std::format; iostreams cost start-up time and
// binary size, so knit builds messages by concatenation).
#pragma once

#include <charconv>
#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace knit {

namespace detail {
inline void append(std::string& out, std::string_view s) { out.append(s); }
inline void append(std::string& out, const char* s) { out.append(s); }
inline void append(std::string& out, const std::string& s) { out.append(s); }
inline void append(std::string& out, char c) { out.push_back(c); }
template <std::integral T>
  requires(!std::same_as<T, char> && !std::same_as<T, bool>)
void append(std::string& out, T v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}
inline void append(std::string& out, bool b) { out.append(b ? "true" : "false"); }
}  // namespace detail

/// Concatenates strings, characters and integers: str("eth", 0) == "eth0".
template <class... Args>
std::string str(const Args&... args) {
  std::string out;
  (detail::append(out, args), ...);
  return out;
}

/// Splits `s` at every `sep`; empty fields are kept.
std::vector<std::string_view> split(std::string_view s, char sep);
/// `s` without leading and trailing ASCII whitespace.
std::string_view trim(std::string_view s);
/// Parses a whole decimal unsigned number; nullopt-like false on any junk.
bool parse_uint(std::string_view s, uint64_t& out);
/// `c` in lower case (ASCII letters only; HTTP header names, protocol names).
inline char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
/// Equal but for the case of ASCII letters.
bool iequals(std::string_view a, std::string_view b);
/// Lower-case hex of `n` bytes.
std::string hex(const void* data, size_t n);

}  // namespace knit
