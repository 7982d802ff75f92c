// conf/toml.hpp: a small TOML 1.0 reader for knit's own configuration and containerd's.
//
// Why not toml11 (the Debian package the design card names): it is measured at +0.76 MB in a
// stripped static-libstdc++ binary, because it reads through iostreams and formats errors with
// them, and knit is one binary that every CNI call execs (README "Performance"). This reader is
// ~600 lines and adds ~20 KB.
//
// What it reads: the whole TOML 1.0 syntax that configuration files use: comments, bare and
// quoted keys, dotted keys, [tables], [[arrays of tables]], basic, literal and multi-line strings
// with every escape, integers (decimal, 0x, 0o, 0b, with `_`), floats (inf, nan), booleans,
// arrays (multi-line, mixed types), inline tables. Dates and times are recognised and kept as
// their text (kDatetime); nothing in knit needs them as values. Redefinitions TOML forbids
// (a key twice, a table twice, extending an inline table) are errors, with the line.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace knit::conf {

/// One TOML value. A table keeps its members in the order they were defined.
struct TomlValue {
  enum class Kind : uint8_t { kString, kInteger, kFloat, kBool, kDatetime, kArray, kTable };
  /// How a table came to exist, which decides what may still be added to it (TOML 1.0 §Table).
  enum class Origin : uint8_t {
    kImplicit,  ///< as a parent of a longer [header]: its own [header] may still come
    kHeader,    ///< by its own [header] (or [[header]] for an array of tables)
    kDotted,    ///< by a dotted key `a.b = 1`: more dotted keys may add to it
    kClosed,    ///< an inline table or a static array: complete as written
  };

  Kind kind = Kind::kTable;
  Origin origin = Origin::kImplicit;
  std::string key;               ///< the key of a table member (empty for array elements)
  std::string text;              ///< kString: the string; kDatetime: as written
  int64_t integer = 0;           ///< kInteger
  double number = 0;             ///< kFloat
  bool boolean = false;          ///< kBool
  std::vector<TomlValue> items;  ///< kArray: the elements; kTable: the members
  uint32_t line = 0;             ///< the line (from 1) where it was defined

  /// The member `key` of a table; nullptr when absent or when this is not a table.
  const TomlValue* find(std::string_view key) const;
  /// find() along a path of keys; nullptr as soon as one is missing or not a table.
  const TomlValue* find_path(std::initializer_list<std::string_view> path) const;
  /// "string", "integer", "float", "boolean", "datetime", "array", "table".
  std::string_view kind_name() const;
};

/// Parses a TOML document into its root table. Throws Error(kInvalidConfig) with a message
/// "<filename>:<line>: <problem>" on the first syntax error or forbidden redefinition.
TomlValue parse_toml(std::string_view text, std::string_view filename);

}  // namespace knit::conf
