#include "watcher/k8s_decode.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <limits>
#include <optional>
#include <utility>

#include "core/error.hpp"
#include "core/str.hpp"
#include "watcher/yaml.hpp"

namespace knit::watcher {

namespace {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Field paths and per-object errors

constexpr size_t kNoIndex = std::numeric_limits<size_t>::max();

/// A field path as a chain of stack frames, rendered only when an error needs it, so decoding
/// 10k pods builds no path strings. Chain with `/` only inside one full expression (or from a
/// named Path), since each link points at its parent.
struct Path {
  const Path* parent = nullptr;
  std::string_view key;
  size_t index = kNoIndex;
};

Path operator/(const Path& p, std::string_view key) {
  return Path{&p, key, kNoIndex};
}
Path operator/(const Path& p, size_t i) {
  return Path{&p, {}, i};
}

std::string render(const Path& p) {
  std::vector<const Path*> chain;
  for (const Path* q = &p; q; q = q->parent) chain.push_back(q);
  std::string out;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    const Path& q = **it;
    if (!q.key.empty()) {
      if (!out.empty()) out += '.';
      out += q.key;
    } else if (q.index != kNoIndex) {
      out += str('[', q.index, ']');
    }
  }
  return out;
}

/// Thrown inside one object's decoder; the object is skipped and reported.
struct Invalid {
  std::string path;
  std::string cause;
};

[[noreturn]] void bad(const Path& p, std::string cause) {
  throw Invalid{render(p), std::move(cause)};
}

/// Appends `v` as compact JSON text to `out`, stopping once `out` is longer than `limit`. Each
/// level adds a byte before it descends, so the recursion is at most `limit` deep: json::dump
/// recurses once per level and overflowed the stack on a value nested ~100k deep.
void dump_prefix(const json& v, std::string& out, size_t limit) {
  constexpr auto kReplace = json::error_handler_t::replace;
  if (v.is_object()) {
    out += '{';
    for (auto it = v.begin(); it != v.end() && out.size() <= limit; ++it) {
      if (it != v.begin()) out += ',';
      out += json(it.key()).dump(-1, ' ', false, kReplace);
      out += ':';
      dump_prefix(*it, out, limit);
    }
    out += '}';
  } else if (v.is_array()) {
    out += '[';
    for (auto it = v.begin(); it != v.end() && out.size() <= limit; ++it) {
      if (it != v.begin()) out += ',';
      dump_prefix(*it, out, limit);
    }
    out += ']';
  } else {
    out += v.dump(-1, ' ', false, kReplace);
  }
}

/// `v` as JSON text for a message (strings quoted and escaped), shortened when long.
std::string describe(const json& v) {
  std::string s;
  dump_prefix(v, s, 80);
  if (s.size() > 80) {
    s.resize(77);
    s += "...";
  }
  return s;
}

std::string quote(std::string_view s) {
  return describe(json(s));
}

// ---------------------------------------------------------------------------------------------
// Pruning: only what the decoders read reaches the JSON parser.
//
// An API object is mostly what knit never reads: a pod is ~4 KiB of JSON (managedFields,
// ownerReferences, container specs, conditions, container statuses) of which ~0.6 KiB is read,
// and a node's kubelet-written status (images, conditions, nodeInfo) is larger still. Building a
// DOM of all of it ran at ~20 MiB/s and made a 10k-pod list take seconds and tens of MiB. So the
// text is first copied with only the members the decoders below read, per kind of JSON object
// (an object, its metadata, spec, containers, status), and the rest is skipped by a scanner that
// still checks it is well-formed JSON (RFC 8259, as strictly as the parser: escapes, surrogate
// pairs, UTF-8, numbers, literals) but allocates nothing. Malformed text makes prune() return
// false and the caller parses the original, so errors read exactly as before. A member kept
// verbatim (a policy's ingress rules, labels, a list of addresses) is copied as it is, and a
// member of an unexpected type is always kept verbatim, so type errors describe the same value.
//
// The member lists below must name every member a decoder reads: one more is harmless, one
// fewer loses a field silently. watcher_k8s_test decodes every JSON fixture, and API objects full
// of members knit does not read, both as JSON (pruned) and as YAML (which is not), and expects
// the same objects.

class Pruner {
 public:
  Pruner(std::string_view in, std::string& out) : s_(in), out_(out) {}

  bool run() {
    out_.clear();
    out_.reserve(s_.size() / 4);
    ws();
    if (!value(Ctx::kObject, 0)) return false;
    ws();
    return i_ == s_.size();
  }

 private:
  /// What the value at hand is to the decoders.
  enum class Ctx : uint8_t {
    kVerbatim,    ///< read as it is (or not at all): copied whole
    kObject,      ///< a Kubernetes object, list, watch event or Status
    kObjects,     ///< items: a list of kObject
    kMeta,        ///< metadata
    kSpec,        ///< spec of any kind
    kContainers,  ///< spec.containers / spec.initContainers: a list of kContainer
    kContainer,
    kStatus,  ///< status of any kind
  };
  /// Lists nest lists (items of a List may be lists) only this deep before being copied whole.
  static constexpr int kMaxDepth = 8;

  /// The context of member `key` of an object in context `ctx`; nullopt: not read, skip it.
  static std::optional<Ctx> member_ctx(Ctx ctx, std::string_view key) {
    using namespace std::string_view_literals;
    auto any = [&](std::initializer_list<std::string_view> keys) {
      return std::find(keys.begin(), keys.end(), key) != keys.end();
    };
    switch (ctx) {
      case Ctx::kObject:
        if (key == "metadata"sv) return Ctx::kMeta;
        if (key == "spec"sv) return Ctx::kSpec;
        if (key == "status"sv) return Ctx::kStatus;
        if (key == "items"sv) return Ctx::kObjects;
        if (key == "object"sv) return Ctx::kObject;  // a watch event's
        // kind and apiVersion; a watch event's type; a Status's code, reason and message.
        if (any({"kind"sv, "apiVersion"sv, "type"sv, "code"sv, "reason"sv, "message"sv})) {
          return Ctx::kVerbatim;
        }
        return std::nullopt;
      case Ctx::kMeta:
        if (any({"name"sv, "namespace"sv, "uid"sv, "resourceVersion"sv, "labels"sv})) {
          return Ctx::kVerbatim;
        }
        return std::nullopt;
      case Ctx::kSpec:
        if (key == "containers"sv || key == "initContainers"sv) return Ctx::kContainers;
        if (any({"nodeName"sv, "hostNetwork"sv,                              // Pod
                 "podSelector"sv, "ingress"sv, "egress"sv, "policyTypes"sv,  // NetworkPolicy
                 "podCIDRs"sv, "podCIDR"sv})) {                              // Node
          return Ctx::kVerbatim;
        }
        return std::nullopt;
      case Ctx::kContainer:
        if (key == "ports"sv || key == "restartPolicy"sv) return Ctx::kVerbatim;
        return std::nullopt;
      case Ctx::kStatus:
        if (any({"phase"sv, "podIPs"sv, "podIP"sv, "addresses"sv})) return Ctx::kVerbatim;
        return std::nullopt;
      case Ctx::kVerbatim:
      case Ctx::kObjects:
      case Ctx::kContainers:
        break;
    }
    return Ctx::kVerbatim;
  }

  // knit is built with -Os, which would leave these two as calls on every byte.
  [[gnu::always_inline]] void ws() {
    while (i_ < s_.size() &&
           (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) {
      ++i_;
    }
  }
  [[gnu::always_inline]] bool at(char c) const { return i_ < s_.size() && s_[i_] == c; }

  /// Bytes that end the plain run of a string: '"', '\\', control characters, non-ASCII.
  static constexpr auto kStringStop = [] {
    std::array<bool, 256> t{};
    for (int c = 0; c < 256; ++c) t[c] = c == '"' || c == '\\' || c < 0x20 || c >= 0x80;
    return t;
  }();

  bool value(Ctx ctx, int depth) {
    if (i_ >= s_.size()) return false;
    char c = s_[i_];
    bool object_ctx = ctx == Ctx::kObject || ctx == Ctx::kMeta || ctx == Ctx::kSpec ||
                      ctx == Ctx::kContainer || ctx == Ctx::kStatus;
    bool list_ctx = ctx == Ctx::kObjects || ctx == Ctx::kContainers;
    if (depth < kMaxDepth && c == '{' && object_ctx) return object(ctx, depth);
    if (depth < kMaxDepth && c == '[' && list_ctx) {
      return array(ctx == Ctx::kObjects ? Ctx::kObject : Ctx::kContainer, depth);
    }
    size_t start = i_;
    if (!skip()) return false;
    out_.append(s_.substr(start, i_ - start));
    return true;
  }

  bool object(Ctx ctx, int depth) {
    ++i_;  // {
    out_ += '{';
    ws();
    bool first = true;
    if (at('}')) {
      ++i_;
      out_ += '}';
      return true;
    }
    for (;;) {
      size_t key_start = i_;
      bool escaped = false;
      if (!string(&escaped)) return false;
      std::string_view raw = s_.substr(key_start + 1, i_ - key_start - 2);
      std::string unescaped;
      if (escaped) {
        // Rare: compare the key as the parser will read it.
        auto j = json::parse(s_.substr(key_start, i_ - key_start), nullptr, false);
        if (!j.is_string()) return false;
        unescaped = j.get<std::string>();
        raw = unescaped;
      }
      auto child = member_ctx(ctx, raw);
      ws();
      if (!at(':')) return false;
      ++i_;
      ws();
      if (child) {
        if (!first) out_ += ',';
        first = false;
        out_.append(s_.substr(key_start, i_ - key_start));  // "key" (and the colon, spaces)
        if (!value(*child, depth + 1)) return false;
      } else if (!skip()) {
        return false;
      }
      ws();
      if (at(',')) {
        ++i_;
        ws();
        continue;
      }
      if (!at('}')) return false;
      ++i_;
      out_ += '}';
      return true;
    }
  }

  bool array(Ctx element, int depth) {
    ++i_;  // [
    out_ += '[';
    ws();
    if (at(']')) {
      ++i_;
      out_ += ']';
      return true;
    }
    for (bool first = true;; first = false) {
      if (!first) out_ += ',';
      if (!value(element, depth + 1)) return false;
      ws();
      if (at(',')) {
        ++i_;
        ws();
        continue;
      }
      if (!at(']')) return false;
      ++i_;
      out_ += ']';
      return true;
    }
  }

  /// Skips one well-formed value without recursion (any depth).
  bool skip() {
    std::string stack;  // open containers: '{' or '['; allocates only past 15 levels
    for (;;) {
      // A value.
      ws();
      if (i_ >= s_.size()) return false;
      char c = s_[i_];
      if (c == '{' || c == '[') {
        ++i_;
        ws();
        if (!at(c == '{' ? '}' : ']')) {
          stack.push_back(c);
          if (c == '{' && !key_colon()) return false;
          continue;  // the first member's value, or the first element
        }
        ++i_;
      } else if (!scalar()) {
        return false;
      }
      // After a value: close containers, or a comma and the next member or element.
      for (;;) {
        if (stack.empty()) return true;
        ws();
        if (i_ >= s_.size()) return false;
        char d = s_[i_];
        if (d == ',') {
          ++i_;
          if (stack.back() == '{') {
            ws();
            if (!key_colon()) return false;
          }
          break;
        }
        if (d != (stack.back() == '{' ? '}' : ']')) return false;
        ++i_;
        stack.pop_back();
      }
    }
  }

  bool key_colon() {
    if (!string(nullptr)) return false;
    ws();
    if (!at(':')) return false;
    ++i_;
    return true;
  }

  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  /// \uXXXX at s_[i_] (past the backslash and 'u'); returns the code unit or -1.
  int u16() {
    if (i_ + 4 > s_.size()) return -1;
    int v = 0;
    for (int k = 0; k < 4; ++k) {
      int h = hex(s_[i_ + k]);
      if (h < 0) return -1;
      v = v << 4 | h;
    }
    i_ += 4;
    return v;
  }

  /// Skips a string at s_[i_] == '"'; `escaped` (when given) tells whether it had escapes.
  bool string(bool* escaped) {
    if (!at('"')) return false;
    ++i_;
    const size_t n = s_.size();
    while (i_ < n) {
      while (i_ < n && !kStringStop[static_cast<unsigned char>(s_[i_])]) ++i_;
      if (i_ >= n) break;
      auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        if (escaped) *escaped = true;
        if (++i_ >= n) return false;
        char e = s_[i_++];
        if (e == 'u') {
          int u = u16();
          if (u < 0 || (u >= 0xDC00 && u <= 0xDFFF)) return false;
          if (u >= 0xD800 && u <= 0xDBFF) {  // a high surrogate needs its low half
            if (i_ + 2 > n || s_[i_] != '\\' || s_[i_ + 1] != 'u') return false;
            i_ += 2;
            int lo = u16();
            if (lo < 0xDC00 || lo > 0xDFFF) return false;
          }
        } else if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' &&
                   e != 'r' && e != 't') {
          return false;
        }
        continue;
      }
      if (c < 0x80) {
        ++i_;
        continue;
      }
      if (!utf8()) return false;
    }
    return false;
  }

  /// One multi-byte UTF-8 sequence (RFC 3629: no overlongs, surrogates or > U+10FFFF).
  bool utf8() {
    auto b = [&](size_t k) { return static_cast<unsigned char>(s_[i_ + k]); };
    auto cont = [&](size_t k, unsigned lo = 0x80, unsigned hi = 0xBF) {
      return i_ + k < s_.size() && b(k) >= lo && b(k) <= hi;
    };
    unsigned c = b(0);
    size_t len;
    if (c >= 0xC2 && c <= 0xDF) {
      len = cont(1) ? 2 : 0;
    } else if (c == 0xE0) {
      len = cont(1, 0xA0) && cont(2) ? 3 : 0;
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
      len = cont(1) && cont(2) ? 3 : 0;
    } else if (c == 0xED) {
      len = cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
    } else if (c == 0xF0) {
      len = cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
    } else if (c >= 0xF1 && c <= 0xF3) {
      len = cont(1) && cont(2) && cont(3) ? 4 : 0;
    } else if (c == 0xF4) {
      len = cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
    } else {
      len = 0;
    }
    i_ += len;
    return len != 0;
  }

  bool digits() {
    size_t start = i_;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    return i_ > start;
  }

  bool scalar() {
    if (at('"')) return string(nullptr);
    using namespace std::string_view_literals;
    for (std::string_view lit : {"true"sv, "false"sv, "null"sv}) {
      if (s_.substr(i_, lit.size()) == lit) {
        i_ += lit.size();
        return true;
      }
    }
    size_t start = i_;
    bool big = false;
    if (at('-')) ++i_;
    if (at('0')) {
      ++i_;
    } else if (!digits()) {
      return false;
    }
    if (at('.')) {
      ++i_;
      if (!digits()) return false;
    }
    if (at('e') || at('E')) {
      ++i_;
      if (at('+') || at('-')) ++i_;
      if (!digits()) return false;
      big = true;
    }
    // The parser refuses a number beyond double's range ("number overflow"); only an exponent
    // or a very long number can be one.
    if (big || i_ - start > 300) {
      std::string n(s_.substr(start, i_ - start));
      if (!std::isfinite(std::strtod(n.c_str(), nullptr))) return false;
    }
    return true;
  }

  std::string_view s_;
  std::string& out_;
  size_t i_ = 0;
};

/// `text` with only the members the decoders read, into `out`; false when `text` is not
/// well-formed JSON (out is then unspecified).
bool prune(std::string_view text, std::string& out) {
  return Pruner(text, out).run();
}

json parse_json(std::string_view text, std::string_view what,
                json::parser_callback_t each = nullptr) {
  try {
    return json::parse(text.begin(), text.end(), std::move(each));
  } catch (const json::exception& e) {
    // "[json.exception.parse_error.101] parse error at line 1, ...": drop the bracketed id.
    std::string_view msg = e.what();
    if (auto p = msg.find("] "); p != std::string_view::npos) msg.remove_prefix(p + 2);
    fail(Code::kDecode, str("decode ", what, ": ", msg));
  }
}

// ---------------------------------------------------------------------------------------------
// Typed access. A key holding null counts as absent, as it does for Go's decoder.

const json* member(const json& obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

const json& as_object(const json& v, const Path& p) {
  if (!v.is_object()) bad(p, str(describe(v), " is not an object"));
  return v;
}

const json& as_array(const json& v, const Path& p) {
  if (!v.is_array()) bad(p, str(describe(v), " is not a list"));
  return v;
}

const std::string& as_string(const json& v, const Path& p) {
  if (!v.is_string()) bad(p, str(describe(v), " is not a string"));
  return v.get_ref<const std::string&>();
}

bool as_bool(const json& v, const Path& p) {
  if (!v.is_boolean()) bad(p, str(describe(v), " is not a boolean"));
  return v.get<bool>();
}

/// An integer in [lo, hi]. Floats (even 80.0 in JSON), booleans and strings are refused, as Go's
/// decoder refuses them for an integer field.
int64_t as_int(const json& v, const Path& p, int64_t lo, int64_t hi) {
  if (!v.is_number_integer()) bad(p, str(describe(v), " is not an integer"));
  int64_t n = std::numeric_limits<int64_t>::max();
  if (v.is_number_unsigned()) {
    auto u = v.get<uint64_t>();
    if (u < static_cast<uint64_t>(n)) n = static_cast<int64_t>(u);
  } else {
    n = v.get<int64_t>();
  }
  if (n < lo || n > hi) bad(p, str(describe(v), " is out of range ", lo, "..", hi));
  return n;
}

uint16_t as_port(const json& v, const Path& p) {
  return static_cast<uint16_t>(as_int(v, p, 1, 65535));
}

/// The optional string at obj[key]; empty when absent.
std::string opt_string(const json& obj, std::string_view key, const Path& p) {
  auto* v = member(obj, key);
  return v ? as_string(*v, p / key) : std::string();
}

/// validation.IsValidPortName (IANA_SVC_NAME): 1-15 of [a-z0-9-], at least one letter, no
/// leading, trailing or doubled '-'.
bool is_port_name(std::string_view s) {
  if (s.empty() || s.size() > 15 || s.front() == '-' || s.back() == '-') return false;
  bool letter = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c >= 'a' && c <= 'z') {
      letter = true;
    } else if (c == '-') {
      if (s[i - 1] == '-') return false;
    } else if (c < '0' || c > '9') {
      return false;
    }
  }
  return letter;
}

std::string as_port_name(const json& v, const Path& p) {
  const auto& s = as_string(v, p);
  if (!is_port_name(s)) {
    bad(p, str(describe(v),
               " is not a valid port name (1-15 lower-case letters, digits and "
               "'-', with at least one letter)"));
  }
  return s;
}

Protocol as_protocol(const json& v, const Path& p) {
  const auto& s = as_string(v, p);
  if (s == "TCP") return Protocol::kTcp;
  if (s == "UDP") return Protocol::kUdp;
  if (s == "SCTP") return Protocol::kSctp;
  bad(p, str(describe(v), " is not a supported protocol (TCP, UDP, SCTP)"));
}

IpAddr as_ip(const json& v, const Path& p) {
  auto a = IpAddr::parse(as_string(v, p));
  if (!a) bad(p, str(describe(v), " is not an IP address"));
  return *a;
}

/// "address/length" as Go's net.ParseCIDR reads it (a bare address is refused), normalised to
/// the network address like the *IPNet ParseCIDR returns.
Prefix as_cidr(const json& v, const Path& p) {
  const auto& s = as_string(v, p);
  auto pfx = s.find('/') == std::string::npos ? std::nullopt : Prefix::parse(s);
  if (!pfx) bad(p, str(describe(v), " is not a CIDR (address/length)"));
  return pfx->network();
}

/// metadata.labels or matchLabels: string values; null stands for "" as Go decodes it into a
/// map[string]string.
Labels as_labels(const json& v, const Path& p) {
  const auto& obj = as_object(v, p);
  Labels out;
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (it->is_null()) {
      out.emplace(it.key(), std::string());
    } else {
      out.emplace(it.key(), as_string(*it, p / std::string_view(it.key())));
    }
  }
  return out;
}

Requirement as_requirement(const json& v, const Path& p) {
  const auto& obj = as_object(v, p);
  Requirement r;
  auto* key = member(obj, "key");
  if (!key) bad(p / "key", "missing");
  r.key = as_string(*key, p / "key");
  if (r.key.empty()) bad(p / "key", "empty");
  auto* op = member(obj, "operator");
  if (!op) bad(p / "operator", "missing");
  const auto& ops = as_string(*op, p / "operator");
  if (ops == "In") {
    r.op = Op::kIn;
  } else if (ops == "NotIn") {
    r.op = Op::kNotIn;
  } else if (ops == "Exists") {
    r.op = Op::kExists;
  } else if (ops == "DoesNotExist") {
    r.op = Op::kDoesNotExist;
  } else {
    bad(p / "operator", str(describe(*op),
                            " is not a valid operator (In, NotIn, Exists, "
                            "DoesNotExist)"));
  }
  if (auto* vals = member(obj, "values")) {
    auto vp = p / "values";
    const auto& a = as_array(*vals, vp);
    r.values.reserve(a.size());
    for (size_t i = 0; i < a.size(); ++i) r.values.push_back(as_string(a[i], vp / i));
  }
  bool set_op = r.op == Op::kIn || r.op == Op::kNotIn;
  if (set_op && r.values.empty()) {
    bad(p / "values", str("must be non-empty when operator is ", ops));
  }
  if (!set_op && !r.values.empty()) {
    bad(p / "values", str("may not be specified when operator is ", ops));
  }
  return r;
}

LabelSelector as_selector(const json& v, const Path& p) {
  const auto& obj = as_object(v, p);
  LabelSelector s;
  if (auto* ml = member(obj, "matchLabels")) s.match_labels = as_labels(*ml, p / "matchLabels");
  if (auto* me = member(obj, "matchExpressions")) {
    auto ep = p / "matchExpressions";
    const auto& a = as_array(*me, ep);
    s.match_expressions.reserve(a.size());
    for (size_t i = 0; i < a.size(); ++i)
      s.match_expressions.push_back(as_requirement(a[i], ep / i));
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Kinds and metadata

struct KindInfo {
  Kind kind;
  std::string_view name;
  std::string_view api_version;
  bool namespaced;
};

constexpr KindInfo kKinds[] = {
    {Kind::kNamespace, "Namespace", "v1", false},
    {Kind::kPod, "Pod", "v1", true},
    {Kind::kNetworkPolicy, "NetworkPolicy", "networking.k8s.io/v1", true},
    {Kind::kNode, "Node", "v1", false},
};

const KindInfo* find_kind(std::string_view name) {
  for (const auto& k : kKinds) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

/// A string member of obj.metadata, or empty when anything on the way is missing or mistyped.
std::string lenient_meta(const json& obj, std::string_view key) {
  auto* m = member(obj, "metadata");
  if (!m || !m->is_object()) return {};
  auto* v = member(*m, key);
  return v && v->is_string() ? v->get<std::string>() : std::string();
}

/// The object's identity, read without failing (to name it in errors and events).
ObjectRef read_ref(const json& obj, const KindInfo* k, std::string_view default_ns) {
  ObjectRef r;
  r.kind = k ? k->kind : Kind::kOther;
  r.name = lenient_meta(obj, "name");
  r.uid = lenient_meta(obj, "uid");
  if (!k || k->namespaced) {
    r.namespace_ = lenient_meta(obj, "namespace");
    if (r.namespace_.empty() && k) r.namespace_ = default_ns;
  }
  return r;
}

struct Meta {
  std::string namespace_;
  std::string name;
  std::string uid;
  std::string resource_version;
  Labels labels;
};

/// The API server's name rules (apimachinery validation): a DNS-1123 label (namespaces, at most
/// 63) or subdomain (pods, policies, nodes, at most 253): lower-case letters, digits, '-', and
/// '.' between labels. The API never serves anything else; manifests might, and knit builds
/// "ns/name" keys and nftables names from these, so a '/' or 300 bytes must not get through.
std::optional<std::string> bad_name(std::string_view n, bool subdomain) {
  size_t max = subdomain ? 253 : 63;
  if (n.size() > max) return str("longer than ", max, " characters");
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  for (size_t i = 0; i < n.size(); ++i) {
    char c = n[i];
    bool edge = i == 0 || i + 1 == n.size() || (subdomain && (n[i - 1] == '.' || n[i + 1] == '.'));
    if (alnum(c) || (!edge && (c == '-' || (subdomain && c == '.')))) continue;
    return str("not a DNS-1123 ", subdomain ? "subdomain" : "label",
               " (lower-case letters, digits and '-'", subdomain ? ", '.' between labels" : "",
               "; a letter or digit at each end)");
  }
  return std::nullopt;
}

Meta decode_meta(const json& obj, const KindInfo& k, std::string_view default_ns) {
  Path root;
  auto mp = root / "metadata";
  auto* m = member(obj, "metadata");
  if (!m) bad(mp, "missing");
  as_object(*m, mp);
  Meta meta;
  auto* name = member(*m, "name");
  if (!name) bad(mp / "name", "missing");
  meta.name = as_string(*name, mp / "name");
  if (meta.name.empty()) bad(mp / "name", "empty");
  if (auto why = bad_name(meta.name, k.kind != Kind::kNamespace)) bad(mp / "name", *why);
  if (k.namespaced) {
    meta.namespace_ = opt_string(*m, "namespace", mp);
    if (meta.namespace_.empty()) meta.namespace_ = default_ns;
    if (auto why = bad_name(meta.namespace_, false)) bad(mp / "namespace", *why);
  }
  meta.uid = opt_string(*m, "uid", mp);
  meta.resource_version = opt_string(*m, "resourceVersion", mp);
  if (auto* l = member(*m, "labels")) meta.labels = as_labels(*l, mp / "labels");
  return meta;
}

// ---------------------------------------------------------------------------------------------
// Objects

Namespace decode_namespace(const json&, Meta&& m) {
  Namespace ns;
  ns.name = std::move(m.name);
  ns.labels = std::move(m.labels);
  // The API server sets (and corrects) this label on create and keeps it immutable.
  ns.labels.insert_or_assign(std::string(kNamespaceNameLabel), ns.name);
  ns.resource_version = std::move(m.resource_version);
  return ns;
}

void container_ports(const json& containers, const Path& p, bool sidecars_only,
                     std::vector<ContainerPort>& out) {
  const auto& a = as_array(containers, p);
  for (size_t i = 0; i < a.size(); ++i) {
    auto cp = p / i;
    const auto& c = as_object(a[i], cp);
    if (sidecars_only) {
      // Restartable init containers (sidecars) run for the pod's lifetime and serve like
      // regular containers; other init containers have exited before the pod serves.
      if (opt_string(c, "restartPolicy", cp) != "Always") continue;
    }
    auto* ports = member(c, "ports");
    if (!ports) continue;
    auto pp = cp / "ports";
    const auto& pa = as_array(*ports, pp);
    for (size_t j = 0; j < pa.size(); ++j) {
      auto at = pp / j;
      const auto& po = as_object(pa[j], at);
      ContainerPort port;
      auto* num = member(po, "containerPort");
      if (!num) bad(at / "containerPort", "missing");
      port.port = as_port(*num, at / "containerPort");
      if (auto* n = member(po, "name")) port.name = as_port_name(*n, at / "name");
      if (auto* pr = member(po, "protocol")) port.protocol = as_protocol(*pr, at / "protocol");
      out.push_back(std::move(port));
    }
  }
}

PodPhase phase_of(std::string_view s) {
  if (s == "Pending" || s.empty()) return PodPhase::kPending;
  if (s == "Running") return PodPhase::kRunning;
  if (s == "Succeeded") return PodPhase::kSucceeded;
  if (s == "Failed") return PodPhase::kFailed;
  return PodPhase::kUnknown;
}

Pod decode_pod(const json& obj, Meta&& m) {
  Path root;
  Pod pod;
  pod.namespace_ = std::move(m.namespace_);
  pod.name = std::move(m.name);
  pod.labels = std::move(m.labels);
  pod.resource_version = std::move(m.resource_version);
  if (auto* spec = member(obj, "spec")) {
    auto sp = root / "spec";
    as_object(*spec, sp);
    pod.node_name = opt_string(*spec, "nodeName", sp);
    if (auto* hn = member(*spec, "hostNetwork"))
      pod.host_network = as_bool(*hn, sp / "hostNetwork");
    std::vector<ContainerPort> ports;
    if (auto* c = member(*spec, "containers")) {
      container_ports(*c, sp / "containers", false, ports);
    }
    if (auto* c = member(*spec, "initContainers")) {
      container_ports(*c, sp / "initContainers", true, ports);
    }
    pod.ports = std::move(ports);
  }
  if (auto* status = member(obj, "status")) {
    auto st = root / "status";
    as_object(*status, st);
    pod.phase = phase_of(opt_string(*status, "phase", st));
    if (auto* ips = member(*status, "podIPs")) {
      auto ip = st / "podIPs";
      const auto& a = as_array(*ips, ip);
      for (size_t i = 0; i < a.size(); ++i) {
        auto at = ip / i;
        const auto& o = as_object(a[i], at);
        auto* addr = member(o, "ip");
        if (!addr) bad(at / "ip", "missing");
        pod.ips.push_back(as_ip(*addr, at / "ip"));
      }
    }
    if (pod.ips.empty()) {
      if (auto* addr = member(*status, "podIP")) pod.ips.push_back(as_ip(*addr, st / "podIP"));
    }
  }
  return pod;
}

PolicyPort decode_policy_port(const json& v, const Path& p) {
  const auto& obj = as_object(v, p);
  PolicyPort port;
  if (auto* pr = member(obj, "protocol")) port.protocol = as_protocol(*pr, p / "protocol");
  if (auto* num = member(obj, "port")) {
    if (num->is_string()) {
      port.port = as_port_name(*num, p / "port");
    } else if (num->is_number_integer()) {
      port.port = as_port(*num, p / "port");
    } else {
      bad(p / "port", str(describe(*num), " is neither a port number nor a port name"));
    }
  }
  if (auto* end = member(obj, "endPort")) {
    auto ep = p / "endPort";
    // Check the type and range first, as validation does, then the relation to port.
    auto e = as_port(*end, ep);
    if (!port.port) bad(ep, "may not be specified without a numeric port");
    auto* start = std::get_if<uint16_t>(&*port.port);
    if (!start) bad(ep, "may not be specified when port is a named port");
    if (e < *start) bad(ep, str(e, " is less than port ", *start));
    port.end_port = e;
  }
  return port;
}

IpBlock decode_ip_block(const json& v, const Path& p) {
  const auto& obj = as_object(v, p);
  IpBlock b;
  auto* cidr = member(obj, "cidr");
  if (!cidr) bad(p / "cidr", "missing");
  b.cidr = as_cidr(*cidr, p / "cidr");
  if (auto* ex = member(obj, "except")) {
    auto xp = p / "except";
    const auto& a = as_array(*ex, xp);
    for (size_t i = 0; i < a.size(); ++i) {
      auto e = as_cidr(a[i], xp / i);
      if (!b.cidr.contains(e) || e.len() <= b.cidr.len()) {
        bad(xp / i, str(describe(a[i]), " is not a strict subset of cidr ", b.cidr.to_string()));
      }
      b.except.push_back(e);
    }
  }
  return b;
}

PolicyPeer decode_peer(const json& v, const Path& p) {
  const auto& obj = as_object(v, p);
  PolicyPeer peer;
  if (auto* s = member(obj, "podSelector")) peer.pod_selector = as_selector(*s, p / "podSelector");
  if (auto* s = member(obj, "namespaceSelector")) {
    peer.namespace_selector = as_selector(*s, p / "namespaceSelector");
  }
  if (auto* b = member(obj, "ipBlock")) peer.ip_block = decode_ip_block(*b, p / "ipBlock");
  if (!peer.pod_selector && !peer.namespace_selector && !peer.ip_block) {
    bad(p, "must specify a peer (podSelector, namespaceSelector or ipBlock)");
  }
  if (peer.ip_block && (peer.pod_selector || peer.namespace_selector)) {
    bad(p, "may not specify both ipBlock and another peer");
  }
  return peer;
}

std::vector<PolicyRule> decode_rules(const json& v, const Path& p, std::string_view peers_key) {
  const auto& a = as_array(v, p);
  std::vector<PolicyRule> rules;
  rules.reserve(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    auto rp = p / i;
    const auto& obj = as_object(a[i], rp);
    PolicyRule r;
    if (auto* peers = member(obj, peers_key)) {
      auto pp = rp / peers_key;
      const auto& pa = as_array(*peers, pp);
      r.peers.reserve(pa.size());
      for (size_t j = 0; j < pa.size(); ++j) r.peers.push_back(decode_peer(pa[j], pp / j));
    }
    if (auto* ports = member(obj, "ports")) {
      auto pp = rp / "ports";
      const auto& pa = as_array(*ports, pp);
      r.ports.reserve(pa.size());
      for (size_t j = 0; j < pa.size(); ++j) r.ports.push_back(decode_policy_port(pa[j], pp / j));
    }
    rules.push_back(std::move(r));
  }
  return rules;
}

NetworkPolicy decode_policy(const json& obj, Meta&& m) {
  Path root;
  NetworkPolicy np;
  np.namespace_ = std::move(m.namespace_);
  np.name = std::move(m.name);
  np.uid = std::move(m.uid);
  np.resource_version = std::move(m.resource_version);
  const json empty = json::object();
  const json* spec = member(obj, "spec");
  auto sp = root / "spec";
  if (spec) as_object(*spec, sp);
  const json& s = spec ? *spec : empty;
  if (auto* ps = member(s, "podSelector")) np.pod_selector = as_selector(*ps, sp / "podSelector");
  if (auto* in = member(s, "ingress")) np.ingress = decode_rules(*in, sp / "ingress", "from");
  if (auto* eg = member(s, "egress")) np.egress = decode_rules(*eg, sp / "egress", "to");
  std::vector<std::string_view> types;
  if (auto* pt = member(s, "policyTypes")) {
    auto tp = sp / "policyTypes";
    const auto& a = as_array(*pt, tp);
    if (a.size() > 2) bad(tp, "may not specify more than two policyTypes");
    for (size_t i = 0; i < a.size(); ++i) {
      const auto& t = as_string(a[i], tp / i);
      if (t != "Ingress" && t != "Egress") {
        bad(tp / i, str(quote(t), " is not a policy type (Ingress, Egress)"));
      }
      types.push_back(t);
    }
  }
  if (types.empty()) {
    // SetDefaults_NetworkPolicy (pkg/apis/networking/v1/defaults.go): Ingress always, Egress
    // only when there is at least one egress rule.
    np.ingress_isolation = true;
    np.egress_isolation = !np.egress.empty();
  } else {
    np.ingress_isolation = std::find(types.begin(), types.end(), "Ingress") != types.end();
    np.egress_isolation = std::find(types.begin(), types.end(), "Egress") != types.end();
  }
  return np;
}

Node decode_node(const json& obj, Meta&& m) {
  Path root;
  Node node;
  node.name = std::move(m.name);
  node.labels = std::move(m.labels);
  node.resource_version = std::move(m.resource_version);
  if (auto* spec = member(obj, "spec")) {
    auto sp = root / "spec";
    as_object(*spec, sp);
    if (auto* cidrs = member(*spec, "podCIDRs")) {
      auto cp = sp / "podCIDRs";
      const auto& a = as_array(*cidrs, cp);
      for (size_t i = 0; i < a.size(); ++i) node.pod_cidrs.push_back(as_cidr(a[i], cp / i));
    }
    if (node.pod_cidrs.empty()) {
      if (auto* c = member(*spec, "podCIDR")) node.pod_cidrs.push_back(as_cidr(*c, sp / "podCIDR"));
    }
  }
  if (auto* status = member(obj, "status")) {
    auto st = root / "status";
    as_object(*status, st);
    if (auto* addrs = member(*status, "addresses")) {
      auto ap = st / "addresses";
      const auto& a = as_array(*addrs, ap);
      for (size_t i = 0; i < a.size(); ++i) {
        auto at = ap / i;
        const auto& o = as_object(a[i], at);
        if (opt_string(o, "type", at) != "InternalIP") continue;
        auto* addr = member(o, "address");
        if (!addr) bad(at / "address", "missing");
        node.internal_ips.push_back(as_ip(*addr, at / "address"));
      }
    }
  }
  return node;
}

// ---------------------------------------------------------------------------------------------
// Objects and lists

/// "ns/name", "name" (cluster-scoped), or with "<no name>" and the list position when unnamed.
std::string object_label(const ObjectRef& r, std::string_view where) {
  std::string out = r.namespace_.empty() ? std::string() : str(r.namespace_, '/');
  if (!r.name.empty()) return out + r.name;
  out += "<no name>";
  if (!where.empty()) out += str(" (", where, ')');
  return out;
}

bool is_list(std::string_view kind, const json& obj) {
  return kind == "List" || (kind.ends_with("List") && obj.contains("items"));
}

void decode_any(const json& obj, std::string_view kind, std::string_view default_ns,
                std::string_view where, int depth, Decoded& out);

/// Item `i` of a list of kind `kind` (at `depth`) whose items are `item`.
void decode_item(const json& item, size_t i, std::string_view kind, std::string_view default_ns,
                 int depth, Decoded& out) {
  auto where = str("items[", i, ']');
  if (!item.is_object()) {
    out.errors.push_back(str(kind, ' ', where, ": ", describe(item), " is not an object"));
    return;
  }
  std::string_view k;
  if (kind != "List") k = kind.substr(0, kind.size() - 4);
  if (auto* ik = member(item, "kind"); ik && ik->is_string()) {
    k = ik->get_ref<const std::string&>();
  }
  if (k.empty()) {
    out.errors.push_back(str(kind, ' ', where, ": kind: missing"));
    return;
  }
  decode_any(item, k, default_ns, where, depth + 1, out);
}

void decode_list(const json& list, std::string_view kind, std::string_view default_ns, int depth,
                 Decoded& out) {
  auto* items = member(list, "items");
  if (!items) return;
  if (!items->is_array()) {
    out.errors.push_back(str(kind, ": items: ", describe(*items), " is not a list"));
    return;
  }
  for (size_t i = 0; i < items->size(); ++i)
    decode_item((*items)[i], i, kind, default_ns, depth, out);
}

void decode_any(const json& obj, std::string_view kind, std::string_view default_ns,
                std::string_view where, int depth, Decoded& out) {
  if (is_list(kind, obj)) {
    if (depth > 3) {
      out.errors.push_back(str(kind, ' ', where, ": lists nested too deeply"));
      return;
    }
    decode_list(obj, kind, default_ns, depth, out);
    return;
  }
  const KindInfo* k = find_kind(kind);
  if (!k) {
    ++out.ignored;
    return;
  }
  // Another API group reusing the kind name (crd.projectcalico.org/v1 NetworkPolicy, ...) is a
  // different object. Items of typed lists carry no apiVersion and are what they say.
  if (auto* av = member(obj, "apiVersion");
      av && av->is_string() && av->get_ref<const std::string&>() != k->api_version) {
    ++out.ignored;
    return;
  }
  try {
    Meta m = decode_meta(obj, *k, default_ns);
    switch (k->kind) {
      case Kind::kNamespace:
        out.namespaces.push_back(decode_namespace(obj, std::move(m)));
        break;
      case Kind::kPod:
        out.pods.push_back(decode_pod(obj, std::move(m)));
        break;
      case Kind::kNetworkPolicy:
        out.policies.push_back(decode_policy(obj, std::move(m)));
        break;
      case Kind::kNode:
        out.nodes.push_back(decode_node(obj, std::move(m)));
        break;
      case Kind::kOther:
        break;
    }
  } catch (const Invalid& e) {
    auto ref = read_ref(obj, k, default_ns);
    out.errors.push_back(str(k->name, ' ', object_label(ref, where), ": ", e.path, ": ", e.cause));
  }
}

/// A top-level object or list (an API response body, a manifest document, a watch object).
void decode_top(const json& obj, std::string_view default_ns, Decoded& out) {
  auto rv = lenient_meta(obj, "resourceVersion");
  if (!rv.empty()) out.resource_version = std::move(rv);
  auto* kind = member(obj, "kind");
  if (!kind || !kind->is_string() || kind->get_ref<const std::string&>().empty()) {
    auto ref = read_ref(obj, nullptr, default_ns);
    out.errors.push_back(str("object ", object_label(ref, {}), ": kind: ",
                             kind ? str(describe(*kind), " is not a kind") : "missing"));
    return;
  }
  decode_any(obj, kind->get_ref<const std::string&>(), default_ns, {}, 0, out);
}

/// Parses `text`, a top-level object or list, and decodes it into `out` as decode_top() does.
/// The items of a top-level list are decoded as the parser completes each one and then dropped
/// from the DOM, so a list is never held whole: the DOM of a 10k-pod list was 18 MB, a third of
/// the agent's peak memory at its first sync. That needs the list's kind before its items, as
/// the API server and kubectl write them; otherwise (or when a top-level "kind" or "items" comes
/// again after the items: the last one counts) the whole DOM is decoded as before, so the result
/// is the same either way. Returns the DOM that is left (the list without its items), or a
/// discarded value when `text` is not JSON and `allow_exceptions` is false.
json parse_top(std::string_view text, std::string_view default_ns, bool allow_exceptions,
               Decoded& out) {
  using Event = json::parse_event_t;
  std::string kind, key;  // the top level's "kind" so far; its member being parsed
  bool streaming = false, streamed = false, again = false;
  size_t index = 0;
  Decoded items;
  auto each = [&](int depth, Event e, json& v) {
    if (depth == 1) {
      if (e == Event::key) {
        key = v.get<std::string>();
        again = again || (streamed && (key == "kind" || key == "items"));
        if (key == "kind") kind.clear();  // set again below only when it is a string
      } else if (e == Event::value && key == "kind") {
        kind = v.is_string() ? v.get<std::string>() : std::string();
      } else if (e == Event::array_start && key == "items" && !streamed && !kind.empty() &&
                 kind.ends_with("List")) {
        streaming = streamed = true;
      } else if (e == Event::array_end) {
        streaming = false;
      }
      return true;
    }
    if (depth != 2 || !streaming ||
        (e != Event::object_end && e != Event::array_end && e != Event::value)) {
      return true;
    }
    decode_item(v, index++, kind, default_ns, 0, items);
    return false;  // decoded: the parser drops it
  };
  json j = allow_exceptions ? parse_json(text, "Kubernetes JSON", each)
                            : json::parse(text.begin(), text.end(), each, false);
  if (j.is_discarded()) return j;
  if (again) {  // the items decoded may not be the ones that count: start over, whole
    j = parse_json(text, "Kubernetes JSON");
    items = {};
  }
  if (!j.is_object()) return j;
  out.merge(std::move(items));
  decode_top(j, default_ns, out);
  return j;
}

std::string_view type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::array:
      return "a list";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    default:
      return v.is_number() ? "a number" : "not an object";
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------

void Decoded::merge(Decoded&& other) {
  auto move_all = [](auto& to, auto& from) {
    if (to.empty()) {
      to = std::move(from);
    } else {
      to.insert(to.end(), std::make_move_iterator(from.begin()),
                std::make_move_iterator(from.end()));
    }
  };
  move_all(namespaces, other.namespaces);
  move_all(pods, other.pods);
  move_all(policies, other.policies);
  move_all(nodes, other.nodes);
  move_all(errors, other.errors);
  ignored += other.ignored;
  if (!other.resource_version.empty()) resource_version = std::move(other.resource_version);
}

size_t Decoded::size() const noexcept {
  return namespaces.size() + pods.size() + policies.size() + nodes.size();
}

Decoded decode_json(std::string_view text, std::string_view default_namespace) {
  std::string pruned;
  Decoded out;
  json j = parse_top(prune(text, pruned) ? std::string_view(pruned) : text, default_namespace, true,
                     out);
  if (!j.is_object()) {
    fail(Code::kDecode,
         str("decode Kubernetes JSON: top level is ", type_name(j), ", not an object"));
  }
  return out;
}

Decoded decode_manifest(std::string_view text, std::string_view file_name,
                        std::string_view default_namespace) {
  Decoded out;
  // `d` holds what was decoded of `v` already (a JSON list's items, see parse_top).
  auto document = [&](const json& v, size_t n, size_t line, bool decoded, Decoded&& d) {
    if (v.is_null()) return;
    if (!v.is_object()) {
      d.errors.push_back(str("document is ", type_name(v), ", not a Kubernetes object"));
    } else if (!decoded) {
      decode_top(v, default_namespace, d);
    }
    for (auto& e : d.errors) e = str(file_name, ": document ", n, " (line ", line, "): ", e);
    out.merge(std::move(d));
  };

  std::string_view body = text;
  if (body.starts_with("\xEF\xBB\xBF")) body.remove_prefix(3);
  auto first = body.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && (body[first] == '{' || body[first] == '[')) {
    std::string pruned;
    if (prune(body, pruned)) body = pruned;
    Decoded d;
    json j = parse_top(body, default_namespace, /*allow_exceptions=*/false, d);
    // Not JSON after all (a YAML flow mapping, a syntax error): YAML reads it, or says where.
    if (!j.is_discarded()) {
      document(j, 1, 1, true, std::move(d));
      return out;
    }
  }
  std::vector<YamlDocument> docs;
  try {
    docs = yaml_to_json(text);
  } catch (const Error& e) {
    fail(Code::kDecode, str("decode ", file_name, ": ", e.what()));
  }
  for (size_t i = 0; i < docs.size(); ++i) document(docs[i].value, i + 1, docs[i].line, false, {});
  return out;
}

// ---------------------------------------------------------------------------------------------

std::string_view to_string(EventType t) {
  switch (t) {
    case EventType::kAdded:
      return "ADDED";
    case EventType::kModified:
      return "MODIFIED";
    case EventType::kDeleted:
      return "DELETED";
    case EventType::kBookmark:
      return "BOOKMARK";
    case EventType::kError:
      return "ERROR";
  }
  return "?";
}

std::string_view to_string(Kind k) {
  for (const auto& info : kKinds) {
    if (info.kind == k) return info.name;
  }
  return "Other";
}

WatchEvent decode_event(std::string_view line, std::string_view default_namespace) {
  std::string pruned;
  json j = parse_json(prune(line, pruned) ? std::string_view(pruned) : line, "watch event");
  if (!j.is_object()) fail(Code::kDecode, "decode watch event: not an object");
  auto* type = member(j, "type");
  if (!type || !type->is_string()) fail(Code::kDecode, "decode watch event: type: missing");
  WatchEvent ev;
  const auto& t = type->get_ref<const std::string&>();
  if (t == "ADDED") {
    ev.type = EventType::kAdded;
  } else if (t == "MODIFIED") {
    ev.type = EventType::kModified;
  } else if (t == "DELETED") {
    ev.type = EventType::kDeleted;
  } else if (t == "BOOKMARK") {
    ev.type = EventType::kBookmark;
  } else if (t == "ERROR") {
    ev.type = EventType::kError;
  } else {
    fail(Code::kDecode, str("decode watch event: type: ", quote(t), " is not an event type"));
  }
  auto* obj = member(j, "object");
  if (!obj || !obj->is_object()) {
    fail(Code::kDecode, str("decode watch event: ", t, ": object: missing or not an object"));
  }

  switch (ev.type) {
    case EventType::kBookmark:
      ev.resource_version = lenient_meta(*obj, "resourceVersion");
      break;
    case EventType::kError:
      if (auto* c = member(*obj, "code"); c && c->is_number_integer()) {
        ev.status.code = c->get<int>();
      }
      if (auto* r = member(*obj, "reason"); r && r->is_string())
        ev.status.reason = r->get<std::string>();
      if (auto* m = member(*obj, "message"); m && m->is_string())
        ev.status.message = m->get<std::string>();
      break;
    default: {
      auto* kind = member(*obj, "kind");
      const KindInfo* k = nullptr;
      if (kind && kind->is_string()) k = find_kind(kind->get_ref<const std::string&>());
      ev.ref = read_ref(*obj, k, default_namespace);
      ev.resource_version = lenient_meta(*obj, "resourceVersion");
      decode_top(*obj, default_namespace, ev.decoded);
      break;
    }
  }
  return ev;
}

}  // namespace knit::watcher
