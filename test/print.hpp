// test/print.hpp: operator<< for knit's value types, so Boost.Test can print them in failures.
// Test-only: the product itself never links iostreams.
#pragma once

#include <ostream>

#include "core/ip.hpp"

namespace knit {
inline std::ostream& operator<<(std::ostream& os, const IpAddr& a) { return os << a.to_string(); }
inline std::ostream& operator<<(std::ostream& os, const Prefix& p) { return os << p.to_string(); }
inline std::ostream& operator<<(std::ostream& os, const Mac& m) { return os << m.to_string(); }
}  // namespace knit
