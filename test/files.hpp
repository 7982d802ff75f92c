// test/files.hpp: reading a whole file in a test.
#pragma once

#include <string>

#include "core/fs.hpp"

namespace knit::test {

/// The file's contents, or "" when it cannot be read (the test's own checks then fail).
inline std::string slurp(const std::string& path) { return read_file(path).value_or(""); }

}  // namespace knit::test
