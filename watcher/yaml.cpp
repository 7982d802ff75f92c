#include "watcher/yaml.hpp"

#include <yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>

#include "core/error.hpp"
#include "core/str.hpp"

namespace knit::watcher {

namespace {

using nlohmann::json;

constexpr std::string_view kTagPrefix = "tag:yaml.org,2002:";

// ---------------------------------------------------------------------------------------------
// Plain scalar resolution, after go-yaml v2's resolve() (the parser sigs.k8s.io/yaml uses).

/// Go's strconv.ParseUint(s, 0, 64) without sign: base prefixes 0x, 0o, 0b, and a leading 0 for
/// octal.
std::optional<uint64_t> go_parse_uint(std::string_view s) {
  if (s.empty()) return std::nullopt;
  int base = 10;
  if (s[0] == '0') {
    char p = s.size() >= 3 ? static_cast<char>(s[1] | 0x20) : 0;
    if (p == 'x') {
      base = 16;
      s.remove_prefix(2);
    } else if (p == 'o') {
      base = 8;
      s.remove_prefix(2);
    } else if (p == 'b') {
      base = 2;
      s.remove_prefix(2);
    } else {
      base = 8;
      s.remove_prefix(1);
      if (s.empty()) return 0;
    }
  }
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  // from_chars accepts neither a sign nor a prefix, so whole-string success is Go's success.
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

/// The JSON value of a plain scalar: null, boolean, integer, float or the text itself.
json resolve_plain(std::string_view in) {
  struct Named {
    std::string_view text;
    int value;  // 0 false, 1 true, 2 null, 3 +inf, 4 -inf, 5 nan
  };
  static constexpr Named kNamed[] = {
      {"y", 1},     {"Y", 1},     {"yes", 1},   {"Yes", 1},   {"YES", 1},   {"true", 1},
      {"True", 1},  {"TRUE", 1},  {"on", 1},    {"On", 1},    {"ON", 1},    {"n", 0},
      {"N", 0},     {"no", 0},    {"No", 0},    {"NO", 0},    {"false", 0}, {"False", 0},
      {"FALSE", 0}, {"off", 0},   {"Off", 0},   {"OFF", 0},   {"", 2},      {"~", 2},
      {"null", 2},  {"Null", 2},  {"NULL", 2},  {".inf", 3},  {".Inf", 3},  {".INF", 3},
      {"+.inf", 3}, {"+.Inf", 3}, {"+.INF", 3}, {"-.inf", 4}, {"-.Inf", 4}, {"-.INF", 4},
      {".nan", 5},  {".NaN", 5},  {".NAN", 5},
  };
  if (in.empty()) return nullptr;
  char c = in[0];
  bool sign = c == '+' || c == '-';
  bool digit = c >= '0' && c <= '9';
  bool mapped = std::string_view("yYnNtTfFoO~").find(c) != std::string_view::npos;
  if (!sign && !digit && !mapped && c != '.') return std::string(in);

  for (const auto& n : kNamed) {
    if (n.text != in) continue;
    switch (n.value) {
      case 0:
        return false;
      case 1:
        return true;
      case 2:
        return nullptr;
      case 3:
        return std::numeric_limits<double>::infinity();
      case 4:
        return -std::numeric_limits<double>::infinity();
      default:
        return std::numeric_limits<double>::quiet_NaN();
    }
  }
  if (mapped) return std::string(in);

  double d = 0;
  if (c == '.') {
    // Go's ParseFloat; from_chars rejects what it rejects here (a sign, hex, inf/nan cannot
    // follow a leading dot).
    auto [end, ec] = std::from_chars(in.data(), in.data() + in.size(), d);
    if (ec == std::errc() && end == in.data() + in.size()) return d;
    return std::string(in);
  }

  std::string plain;
  plain.reserve(in.size());
  for (char ch : in) {
    if (ch != '_') plain.push_back(ch);
  }
  std::string_view body = plain;
  bool neg = false;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
    neg = body[0] == '-';
    body.remove_prefix(1);
  }
  if (auto u = go_parse_uint(body)) {
    constexpr uint64_t kMaxI = std::numeric_limits<int64_t>::max();
    if (!neg && *u <= kMaxI) return static_cast<int64_t>(*u);
    if (neg && *u <= kMaxI + 1) return static_cast<int64_t>(0 - *u);
    // ParseUint takes no sign: only an unsigned, unsigned-looking value gets here.
    if (!neg && plain[0] != '+') return *u;
  }
  // go-yaml v2's float pattern: ^[-+]?[0-9]*\.?[0-9]+([eE][-+][0-9]+)?$
  {
    std::string_view s = plain;
    size_t i = 0;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    size_t int_digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++int_digits;
    size_t frac_digits = 0;
    bool dot = i < s.size() && s[i] == '.';
    if (dot) {
      ++i;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++frac_digits;
    }
    bool mantissa_ok = dot ? frac_digits > 0 : int_digits > 0;
    bool ok = mantissa_ok;
    if (ok && i < s.size()) {
      ok = (s[i] == 'e' || s[i] == 'E') && i + 1 < s.size() && (s[i + 1] == '+' || s[i + 1] == '-');
      if (ok) {
        i += 2;
        size_t exp_digits = 0;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++exp_digits;
        ok = exp_digits > 0 && i == s.size();
      }
    }
    if (ok) {
      std::string_view num = s;
      if (num[0] == '+') num.remove_prefix(1);  // from_chars takes '-' only
      auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), d);
      if (ec == std::errc() && end == num.data() + num.size()) return d;
    }
  }
  return std::string(in);
}

/// Go's strconv.FormatFloat(f, 'g', -1, 32) for mapping keys and messages: shortest digits,
/// exponent form when the decimal exponent is below -4 or at least 6 ("1e+06", "123456",
/// "0.0001"). The digits come from nlohmann's shortest formatter, already in the binary:
/// std::to_chars for floating point would pull in ~120 KB of tables for a case no Kubernetes
/// manifest has.
std::string go_format_g32(double f) {
  if (std::isnan(f)) return ".nan";
  if (std::isinf(f)) return f > 0 ? ".inf" : "-.inf";
  std::string text = json(f).dump();
  bool neg = !text.empty() && text[0] == '-';
  std::string digits;
  int point = -1, exp = 0;
  for (size_t i = neg ? 1 : 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '.') {
      point = static_cast<int>(digits.size());
    } else if (c == 'e' || c == 'E') {
      std::from_chars(text.data() + i + 1 + (text[i + 1] == '+'), text.data() + text.size(), exp);
      break;
    } else {
      digits.push_back(c);
    }
  }
  if (point < 0) point = static_cast<int>(digits.size());
  size_t lead = digits.find_first_not_of('0');
  if (lead == std::string::npos) return neg ? "-0" : "0";
  point -= static_cast<int>(lead);
  digits.erase(0, lead);
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  int x = point + exp - 1;  // decimal exponent of the first digit
  std::string out = neg ? "-" : "";
  if (x < -4 || x >= 6) {
    out += digits[0];
    if (digits.size() > 1) out += str('.', std::string_view(digits).substr(1));
    out += str('e', x < 0 ? '-' : '+', (x < 0 ? -x : x) < 10 ? "0" : "", x < 0 ? -x : x);
  } else if (x < 0) {
    out += str("0.", std::string(static_cast<size_t>(-x - 1), '0'), digits);
  } else {
    size_t whole = static_cast<size_t>(x) + 1;
    if (digits.size() <= whole) {
      out += digits + std::string(whole - digits.size(), '0');
    } else {
      out += str(std::string_view(digits).substr(0, whole), '.', std::string_view(digits).substr(whole));
    }
  }
  return out;
}

/// A resolved float as Go's JSON encoder would write it and the API server read it back:
/// integral values become integers.
json json_number(double d) {
  if (d == std::trunc(d) && std::fabs(d) < 1e21) {
    if (d >= -9223372036854775808.0 && d < 9223372036854775808.0) {
      return static_cast<int64_t>(d);
    }
    if (d >= 0 && d < 18446744073709551616.0) return static_cast<uint64_t>(d);
  }
  return d;
}

// ---------------------------------------------------------------------------------------------
// Event-driven conversion

class Converter {
 public:
  explicit Converter(std::string_view text) {
    if (!yaml_parser_initialize(&parser_)) fail(Code::kInternal, "yaml: out of memory");
    yaml_parser_set_input_string(&parser_, reinterpret_cast<const unsigned char*>(text.data()),
                                 text.size());
  }
  ~Converter() {
    if (have_event_) yaml_event_delete(&event_);
    yaml_parser_delete(&parser_);
  }
  Converter(const Converter&) = delete;
  Converter& operator=(const Converter&) = delete;

  std::vector<YamlDocument> run() {
    std::vector<YamlDocument> docs;
    advance();
    expect(YAML_STREAM_START_EVENT, "stream start");
    for (;;) {
      advance();
      if (event_.type == YAML_STREAM_END_EVENT) break;
      expect(YAML_DOCUMENT_START_EVENT, "document start");
      YamlDocument doc;
      doc.line = event_.start_mark.line + 1;
      anchors_.clear();
      nodes_ = 0;
      alias_nodes_ = 0;
      advance();
      doc.value = node(0);
      advance();
      expect(YAML_DOCUMENT_END_EVENT, "document end");
      docs.push_back(std::move(doc));
    }
    return docs;
  }

 private:
  struct Anchor {
    json value;
    size_t size = 0;  // JSON values in it, for the alias budget
  };

  [[noreturn]] void fail_at(const yaml_mark_t& m, std::string_view what) {
    fail(Code::kDecode, str("line ", m.line + 1, ", column ", m.column + 1, ": ", what));
  }

  void advance() {
    if (have_event_) yaml_event_delete(&event_);
    have_event_ = false;
    if (!yaml_parser_parse(&parser_, &event_)) {
      std::string what = parser_.problem ? parser_.problem : "malformed YAML";
      if (parser_.context) what += str(" (", parser_.context, ')');
      if (parser_.error == YAML_READER_ERROR) {
        fail(Code::kDecode, str("byte ", parser_.problem_offset, ": ", what));
      }
      fail_at(parser_.problem_mark, what);
    }
    have_event_ = true;
  }

  void expect(yaml_event_type_t t, std::string_view what) {
    if (event_.type != t) fail_at(event_.start_mark, str("expected ", what));
  }

  static std::string anchor_of(const unsigned char* a) {
    return a ? std::string(reinterpret_cast<const char*>(a)) : std::string();
  }

  void remember(const std::string& anchor, const json& v, size_t nodes_before) {
    if (!anchor.empty()) anchors_[anchor] = Anchor{v, nodes_ - nodes_before};
  }

  /// The value whose first event is the current one; on return the current event is its last.
  json node(int depth) {
    if (depth > kMaxYamlDepth) {
      fail_at(event_.start_mark, str("nesting deeper than ", kMaxYamlDepth, " levels"));
    }
    size_t before = nodes_;
    switch (event_.type) {
      case YAML_SCALAR_EVENT: {
        ++nodes_;
        auto anchor = anchor_of(event_.data.scalar.anchor);
        json v = finite(scalar());
        remember(anchor, v, before);
        return v;
      }
      case YAML_ALIAS_EVENT: {
        auto name = anchor_of(event_.data.alias.anchor);
        auto it = anchors_.find(name);
        if (it == anchors_.end()) {
          fail_at(event_.start_mark, str("alias *", name, " refers to no complete anchor"));
        }
        alias_nodes_ += it->second.size;
        nodes_ += it->second.size;
        if (alias_nodes_ > kMaxAliasNodes) {
          fail_at(event_.start_mark,
                  str("aliases expand to more than ", kMaxAliasNodes, " values"));
        }
        return it->second.value;
      }
      case YAML_SEQUENCE_START_EVENT: {
        ++nodes_;
        auto anchor = anchor_of(event_.data.sequence_start.anchor);
        json v = json::array();
        for (;;) {
          advance();
          if (event_.type == YAML_SEQUENCE_END_EVENT) break;
          v.push_back(node(depth + 1));
        }
        remember(anchor, v, before);
        return v;
      }
      case YAML_MAPPING_START_EVENT: {
        ++nodes_;
        auto anchor = anchor_of(event_.data.mapping_start.anchor);
        json v = mapping(depth);
        remember(anchor, v, before);
        return v;
      }
      default:
        fail_at(event_.start_mark, "unexpected YAML event");
    }
  }

  json mapping(int depth) {
    json obj = json::object();
    for (;;) {
      advance();
      if (event_.type == YAML_MAPPING_END_EVENT) return obj;
      yaml_mark_t key_mark = event_.start_mark;
      bool merge = is_merge_key();
      std::string key;
      if (merge) {
        ++nodes_;
      } else if (event_.type == YAML_SCALAR_EVENT) {
        // Keys keep go-yaml's type (1.0e+6 is the float key "1e+06", not the integer 1000000).
        ++nodes_;
        size_t before = nodes_ - 1;
        auto anchor = anchor_of(event_.data.scalar.anchor);
        json raw = scalar();
        key = key_text(raw, key_mark);
        if (!raw.is_number_float() || std::isfinite(raw.get<double>())) {
          remember(anchor, finite(std::move(raw)), before);
        }
      } else {
        key = key_text(node(depth + 1), key_mark);
      }
      advance();
      yaml_mark_t value_mark = event_.start_mark;
      json value = node(depth + 1);
      if (!merge) {
        obj[key] = std::move(value);
        continue;
      }
      // go-yaml v2: a merge assigns the source's keys in place; with a list, the earlier mapping
      // wins, so apply the list from its end.
      auto apply = [&](const json& src) {
        for (auto it = src.begin(); it != src.end(); ++it) obj[it.key()] = it.value();
      };
      if (value.is_object()) {
        apply(value);
      } else if (value.is_array() && std::all_of(value.begin(), value.end(),
                                                 [](const json& e) { return e.is_object(); })) {
        for (auto it = value.rbegin(); it != value.rend(); ++it) apply(*it);
      } else {
        fail_at(value_mark, "map merge requires a mapping or a list of mappings as the value");
      }
    }
  }

  bool is_merge_key() const {
    if (event_.type != YAML_SCALAR_EVENT) return false;
    const auto& s = event_.data.scalar;
    if (std::string_view(reinterpret_cast<const char*>(s.value), s.length) != "<<") return false;
    if (s.tag) return str(kTagPrefix, "merge") == reinterpret_cast<const char*>(s.tag);
    return s.style == YAML_PLAIN_SCALAR_STYLE;
  }

  /// A mapping key as JSON text, as sigs.k8s.io/yaml converts go-yaml's typed keys.
  [[noreturn]] void bad_key(const yaml_mark_t& m, std::string_view what) {
    fail_at(m, str("unsupported mapping key: ", what));
  }
  std::string key_text(const json& k, const yaml_mark_t& m) {
    switch (k.type()) {
      case json::value_t::string:
        return k.get<std::string>();
      case json::value_t::boolean:
        return k.get<bool>() ? "true" : "false";
      case json::value_t::number_integer:
        return str(k.get<int64_t>());
      case json::value_t::number_unsigned:
        return str(k.get<uint64_t>());
      case json::value_t::number_float:
        return go_format_g32(k.get<double>());
      case json::value_t::null:
        bad_key(m, "null");
      default:
        bad_key(m, k.is_array() ? "a sequence" : "a mapping");
    }
  }

  /// The current scalar as go-yaml resolves it (floats stay floats, .inf and .nan included).
  json scalar() {
    const auto& s = event_.data.scalar;
    std::string_view text(reinterpret_cast<const char*>(s.value), s.length);
    std::string_view tag = s.tag ? reinterpret_cast<const char*>(s.tag) : "";
    if (tag.empty()) {
      if (s.style != YAML_PLAIN_SCALAR_STYLE) return std::string(text);
      return resolve_plain(text);
    }
    if (!tag.starts_with(kTagPrefix)) return std::string(text);  // "!", "!Ref", ...
    std::string_view name = tag.substr(kTagPrefix.size());
    if (name == "str" || name == "binary" || name == "timestamp") return std::string(text);
    if (name != "int" && name != "float" && name != "bool" && name != "null") {
      return std::string(text);
    }
    json v = resolve_plain(text);
    bool ok = (name == "int" && v.is_number_integer()) || (name == "float" && v.is_number()) ||
              (name == "bool" && v.is_boolean()) || (name == "null" && v.is_null());
    if (!ok) fail_at(event_.start_mark, str("cannot decode `", text, "` as a !!", name));
    if (name == "float" && v.is_number_integer()) v = v.get<double>();
    return v;
  }

  /// A resolved value as it reaches JSON: integral floats become integers; .inf/.nan throw.
  json finite(json v) {
    if (!v.is_number_float()) return v;
    double d = v.get<double>();
    if (!std::isfinite(d)) {
      fail_at(event_.start_mark, str(go_format_g32(d), " cannot be represented in JSON"));
    }
    return json_number(d);
  }

  yaml_parser_t parser_{};
  yaml_event_t event_{};
  bool have_event_ = false;
  std::map<std::string, Anchor, std::less<>> anchors_;
  size_t nodes_ = 0;
  size_t alias_nodes_ = 0;
};

}  // namespace

std::vector<YamlDocument> yaml_to_json(std::string_view text) {
  Converter c(text);
  return c.run();
}

}  // namespace knit::watcher
