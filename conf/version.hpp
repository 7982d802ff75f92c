// conf/version.hpp: CNI spec versions.
#pragma once

#include <compare>
#include <optional>
#include <string>
#include <string_view>

namespace knit::conf {

struct Version {
  int major = 0;
  int minor = 0;
  int patch = 0;

  /// Parses "X.Y.Z"; nullopt on anything else.
  static std::optional<Version> parse(std::string_view s);
  std::string to_string() const;
  friend auto operator<=>(const Version&, const Version&) = default;
};

inline constexpr Version kV030{0, 3, 0};
inline constexpr Version kV031{0, 3, 1};
inline constexpr Version kV040{0, 4, 0};
inline constexpr Version kV100{1, 0, 0};
inline constexpr Version kV110{1, 1, 0};

/// Versions knit accepts and renders, oldest first.
inline constexpr Version kSupportedVersions[] = {kV030, kV031, kV040, kV100, kV110};

bool is_supported(const Version& v);

}  // namespace knit::conf
