#include "watcher/selector.hpp"

#include <algorithm>

namespace knit::watcher {

namespace {

bool contains(const std::vector<std::string>& values, const std::string& v) noexcept {
  return std::find(values.begin(), values.end(), v) != values.end();
}

}  // namespace

bool matches(const Requirement& r, const Labels& labels) noexcept {
  auto it = labels.find(r.key);
  switch (r.op) {
    case Op::kIn:
      return it != labels.end() && contains(r.values, it->second);
    case Op::kNotIn:
      return it == labels.end() || !contains(r.values, it->second);
    case Op::kExists:
      return it != labels.end();
    case Op::kDoesNotExist:
      return it == labels.end();
  }
  return false;
}

bool matches(const LabelSelector& s, const Labels& labels) noexcept {
  if (s.match_labels.size() > labels.size()) return false;
  for (const auto& [key, value] : s.match_labels) {
    auto it = labels.find(key);
    if (it == labels.end() || it->second != value) return false;
  }
  for (const auto& r : s.match_expressions) {
    if (!matches(r, labels)) return false;
  }
  return true;
}

}  // namespace knit::watcher
