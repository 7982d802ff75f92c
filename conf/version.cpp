#include "conf/version.hpp"

#include <charconv>

#include "core/str.hpp"

namespace knit::conf {

namespace {

/// One dotted component: decimal digits only (no sign, no space), at most 9 so it fits an int.
bool parse_component(std::string_view s, int& out) {
  if (s.empty() || s.size() > 9) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  std::from_chars(s.data(), s.data() + s.size(), out);
  return true;
}

}  // namespace

std::optional<Version> Version::parse(std::string_view s) {
  auto d1 = s.find('.');
  if (d1 == std::string_view::npos) return std::nullopt;
  auto d2 = s.find('.', d1 + 1);
  if (d2 == std::string_view::npos) return std::nullopt;
  Version v;
  if (!parse_component(s.substr(0, d1), v.major) ||
      !parse_component(s.substr(d1 + 1, d2 - d1 - 1), v.minor) ||
      !parse_component(s.substr(d2 + 1), v.patch)) {
    return std::nullopt;
  }
  return v;
}

std::string Version::to_string() const {
  return str(major, '.', minor, '.', patch);
}

bool is_supported(const Version& v) {
  for (const auto& s : kSupportedVersions) {
    if (s == v) return true;
  }
  return false;
}

}  // namespace knit::conf
