// test/unit/watcher_print.hpp: operator<< for watcher's value types, so Boost.Test can print
// them in failures. Test-only: the product never links iostreams (it has to_string()).
#pragma once

#include <ostream>

#include "watcher/k8s_decode.hpp"

namespace knit::watcher {
inline std::ostream& operator<<(std::ostream& os, Op v) {
  return os << to_string(v);
}
inline std::ostream& operator<<(std::ostream& os, Protocol v) {
  return os << to_string(v);
}
inline std::ostream& operator<<(std::ostream& os, PodPhase v) {
  return os << to_string(v);
}
inline std::ostream& operator<<(std::ostream& os, EventType v) {
  return os << to_string(v);
}
inline std::ostream& operator<<(std::ostream& os, Kind v) {
  return os << to_string(v);
}
inline std::ostream& operator<<(std::ostream& os, const Requirement& v) {
  return os << to_string(v);
}
inline std::ostream& operator<<(std::ostream& os, const LabelSelector& v) {
  return os << to_string(v);
}
inline std::ostream& operator<<(std::ostream& os, const ContainerPort& v) {
  return os << to_string(v);
}
inline std::ostream& operator<<(std::ostream& os, const PolicyPort& v) {
  return os << to_string(v);
}
inline std::ostream& operator<<(std::ostream& os, const IpBlock& v) {
  return os << to_string(v);
}
inline std::ostream& operator<<(std::ostream& os, const PolicyPeer& v) {
  return os << to_string(v);
}
inline std::ostream& operator<<(std::ostream& os, const PolicyRule& v) {
  return os << to_string(v);
}
inline std::ostream& operator<<(std::ostream& os, const Namespace& v) {
  return os << to_string(v);
}
inline std::ostream& operator<<(std::ostream& os, const Pod& v) {
  return os << to_string(v);
}
inline std::ostream& operator<<(std::ostream& os, const Node& v) {
  return os << to_string(v);
}
inline std::ostream& operator<<(std::ostream& os, const NetworkPolicy& v) {
  return os << to_string(v);
}
}  // namespace knit::watcher
