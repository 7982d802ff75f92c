#include "conf/toml.hpp"

#include <charconv>
#include <cmath>
#include <limits>

#include "core/error.hpp"
#include "core/str.hpp"

namespace knit::conf {

using Kind = TomlValue::Kind;
using Origin = TomlValue::Origin;

const TomlValue* TomlValue::find(std::string_view k) const {
  if (kind != Kind::kTable) return nullptr;
  for (const auto& m : items)
    if (m.key == k) return &m;
  return nullptr;
}

const TomlValue* TomlValue::find_path(std::initializer_list<std::string_view> path) const {
  const TomlValue* v = this;
  for (auto k : path) {
    v = v->find(k);
    if (v == nullptr) return nullptr;
  }
  return v;
}

std::string_view TomlValue::kind_name() const {
  switch (kind) {
    case Kind::kString: return "string";
    case Kind::kInteger: return "integer";
    case Kind::kFloat: return "float";
    case Kind::kBool: return "boolean";
    case Kind::kDatetime: return "datetime";
    case Kind::kArray: return "array";
    case Kind::kTable: return "table";
  }
  return "value";
}

namespace {

bool is_bare_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

std::string dotted(const std::vector<std::string>& path) {
  std::string out;
  for (const auto& k : path) {
    if (!out.empty()) out += '.';
    bool bare = !k.empty();
    for (char c : k) bare = bare && is_bare_key_char(c);
    out += bare ? k : str('"', k, '"');
  }
  return out;
}

/// "an integer", "a table": the kind with its article, for messages.
std::string a_kind(const TomlValue& v) {
  std::string_view k = v.kind_name();
  return str(k[0] == 'a' || k[0] == 'i' ? "an " : "a ", k);
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class Parser {
 public:
  Parser(std::string_view text, std::string_view filename) : s_(text), file_(filename) {
    if (s_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;
  }

  TomlValue parse() {
    TomlValue root;
    root.origin = Origin::kHeader;
    root.line = 1;
    TomlValue* current = &root;
    for (;;) {
      skip_blank_lines();
      if (at_end()) return root;
      if (peek() == '[') {
        current = table_header(root);
      } else {
        key_value(*current);
      }
      end_of_line();
    }
  }

 private:
  [[noreturn]] void error(std::string_view what) const {
    fail(Code::kInvalidConfig, str(file_, ':', line_, ": ", what));
  }

  bool at_end() const { return pos_ >= s_.size(); }
  char peek(size_t ahead = 0) const {
    return pos_ + ahead < s_.size() ? s_[pos_ + ahead] : '\0';
  }
  bool starts(std::string_view p) const { return s_.substr(pos_, p.size()) == p; }

  void skip_ws() {
    while (!at_end() && (peek() == ' ' || peek() == '\t')) ++pos_;
  }
  void skip_comment() {
    if (peek() != '#') return;
    while (!at_end() && peek() != '\n') {
      unsigned char c = static_cast<unsigned char>(peek());
      if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7F) error("control character in comment");
      ++pos_;
    }
  }
  /// Consumes a newline (LF or CRLF); false when there is none here.
  bool newline() {
    if (peek() == '\n') {
      ++pos_;
      ++line_;
      return true;
    }
    if (peek() == '\r' && peek(1) == '\n') {
      pos_ += 2;
      ++line_;
      return true;
    }
    return false;
  }
  void skip_blank_lines() {
    for (;;) {
      skip_ws();
      skip_comment();
      if (!newline()) return;
    }
  }
  /// Whitespace, comments and newlines, as allowed between array elements.
  void skip_array_space() {
    for (;;) {
      skip_ws();
      skip_comment();
      if (!newline()) return;
    }
  }
  void end_of_line() {
    skip_ws();
    skip_comment();
    if (at_end() || newline()) return;
    error(str("unexpected '", peek(), "' after a value (one key = value per line)"));
  }

  // --- keys -----------------------------------------------------------------------------------

  std::string simple_key() {
    char c = peek();
    if (c == '"') {
      if (starts("\"\"\"")) error("a key cannot be a multi-line string");
      return basic_string();
    }
    if (c == '\'') {
      if (starts("'''")) error("a key cannot be a multi-line string");
      return literal_string();
    }
    size_t start = pos_;
    while (!at_end() && is_bare_key_char(peek())) ++pos_;
    if (pos_ == start) {
      if (at_end() || peek() == '\n' || peek() == '\r') error("expected a key");
      error(str("unexpected '", peek(), "' where a key should be"));
    }
    return std::string(s_.substr(start, pos_ - start));
  }

  std::vector<std::string> key() {
    std::vector<std::string> path;
    for (;;) {
      skip_ws();
      path.push_back(simple_key());
      skip_ws();
      if (peek() != '.') return path;
      ++pos_;
    }
  }

  // --- tables ---------------------------------------------------------------------------------

  static TomlValue* member(TomlValue& table, std::string_view k) {
    for (auto& m : table.items)
      if (m.key == k) return &m;
    return nullptr;
  }

  TomlValue& add_table(TomlValue& parent, std::string k, Origin origin) {
    TomlValue t;
    t.kind = Kind::kTable;
    t.origin = origin;
    t.key = std::move(k);
    t.line = line_;
    parent.items.push_back(std::move(t));
    return parent.items.back();
  }

  /// Walks the parents of a [header] path, creating implicit tables.
  TomlValue* header_parent(TomlValue& root, const std::vector<std::string>& path) {
    TomlValue* t = &root;
    for (size_t i = 0; i + 1 < path.size(); ++i) {
      TomlValue* next = member(*t, path[i]);
      std::vector<std::string> so_far(path.begin(), path.begin() + static_cast<long>(i) + 1);
      if (next == nullptr) {
        next = &add_table(*t, path[i], Origin::kImplicit);
      } else if (next->kind == Kind::kArray && next->origin == Origin::kHeader) {
        next = &next->items.back();  // [[a]] then [a.b]: b goes into the last a
      } else if (next->kind != Kind::kTable) {
        error(str(dotted(so_far), " is not a table (it is ", a_kind(*next), " defined on line ",
                  next->line, ")"));
      } else if (next->origin == Origin::kClosed) {
        error(str("cannot add to inline table ", dotted(so_far)));
      }
      t = next;
    }
    return t;
  }

  TomlValue* table_header(TomlValue& root) {
    bool array = starts("[[");
    pos_ += array ? 2 : 1;
    auto path = key();
    if (array ? !starts("]]") : peek() != ']') error(str("expected '", array ? "]]" : "]", "'"));
    pos_ += array ? 2 : 1;
    TomlValue* parent = header_parent(root, path);
    const std::string& last = path.back();
    TomlValue* t = member(*parent, last);
    if (array) {
      if (t == nullptr) {
        TomlValue a;
        a.kind = Kind::kArray;
        a.origin = Origin::kHeader;
        a.key = last;
        a.line = line_;
        parent->items.push_back(std::move(a));
        t = &parent->items.back();
      } else if (t->kind != Kind::kArray || t->origin != Origin::kHeader) {
        error(str(dotted(path), " is already defined as ", a_kind(*t), ", not an array of tables"));
      }
      return &add_table(*t, {}, Origin::kHeader);
    }
    if (t == nullptr) return &add_table(*parent, last, Origin::kHeader);
    if (t->kind != Kind::kTable) {
      error(str(dotted(path), " is already defined as ", a_kind(*t), " (line ", t->line, ")"));
    }
    if (t->origin != Origin::kImplicit) {
      error(str("table ", dotted(path), " is defined twice (first on line ", t->line, ")"));
    }
    t->origin = Origin::kHeader;
    t->line = line_;
    return t;
  }

  /// `a.b.c = value` into `table`: a and b become (or must be) dotted-key tables.
  void key_value(TomlValue& table) {
    uint32_t line = line_;
    auto path = key();
    skip_ws();
    if (peek() != '=') error(str("expected '=' after key ", dotted(path)));
    ++pos_;
    skip_ws();
    TomlValue v = value();
    v.line = line;
    insert(table, path, std::move(v));
  }

  void insert(TomlValue& table, const std::vector<std::string>& path, TomlValue v) {
    TomlValue* t = &table;
    for (size_t i = 0; i + 1 < path.size(); ++i) {
      TomlValue* next = member(*t, path[i]);
      if (next == nullptr) {
        next = &add_table(*t, path[i], Origin::kDotted);
      } else if (next->kind != Kind::kTable || next->origin != Origin::kDotted) {
        std::vector<std::string> so_far(path.begin(), path.begin() + static_cast<long>(i) + 1);
        error(str("cannot add key ", dotted(path), ": ", dotted(so_far), " is already defined",
                  next->kind == Kind::kTable ? " as a table" : "", " on line ", next->line));
      }
      t = next;
    }
    if (const TomlValue* old = member(*t, path.back())) {
      error(str("duplicate key ", dotted(path), " (first on line ", old->line, ")"));
    }
    v.key = path.back();
    t->items.push_back(std::move(v));
  }

  // --- values ---------------------------------------------------------------------------------

  TomlValue value() {
    TomlValue v;
    v.line = line_;
    char c = peek();
    if (c == '"') {
      v.kind = Kind::kString;
      v.text = starts("\"\"\"") ? multiline_basic_string() : basic_string();
    } else if (c == '\'') {
      v.kind = Kind::kString;
      v.text = starts("'''") ? multiline_literal_string() : literal_string();
    } else if (c == '[') {
      array(v);
    } else if (c == '{') {
      inline_table(v);
    } else if (starts("true") && !is_bare_key_char(peek(4))) {
      v.kind = Kind::kBool;
      v.boolean = true;
      pos_ += 4;
    } else if (starts("false") && !is_bare_key_char(peek(5))) {
      v.kind = Kind::kBool;
      pos_ += 5;
    } else if (at_end() || c == '\n' || c == '\r' || c == '#') {
      error("expected a value");
    } else {
      scalar(v);
    }
    return v;
  }

  void array(TomlValue& v) {
    v.kind = Kind::kArray;
    v.origin = Origin::kClosed;
    ++pos_;
    for (;;) {
      skip_array_space();
      if (peek() == ']') {
        ++pos_;
        return;
      }
      if (at_end()) error("unterminated array");
      v.items.push_back(value());
      skip_array_space();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() != ']') {
        error(at_end() ? "unterminated array" : str("expected ',' or ']' in array, got '", peek(), "'"));
      }
    }
  }

  void inline_table(TomlValue& v) {
    v.kind = Kind::kTable;
    v.origin = Origin::kDotted;  // dotted keys inside may add to it while it is being read
    ++pos_;
    skip_ws();
    if (peek() == '}') {
      ++pos_;
      v.origin = Origin::kClosed;
      return;
    }
    for (;;) {
      key_value(v);
      skip_ws();
      if (peek() == '}') {
        ++pos_;
        break;
      }
      if (peek() != ',') error("expected ',' or '}' in inline table (inline tables are one line)");
      ++pos_;
    }
    close(v);
  }

  static void close(TomlValue& v) {
    if (v.kind != Kind::kTable && v.kind != Kind::kArray) return;
    v.origin = Origin::kClosed;
    for (auto& m : v.items) close(m);
  }

  void check_char(char c, bool multiline) const {
    unsigned char u = static_cast<unsigned char>(c);
    if ((u < 0x20 && u != '\t' && !(multiline && (c == '\n' || c == '\r'))) || u == 0x7F) {
      error("control character in string (use an escape)");
    }
  }

  uint32_t hex_escape(int digits) {
    uint32_t cp = 0;
    for (int i = 0; i < digits; ++i) {
      char c = peek();
      uint32_t d;
      if (c >= '0' && c <= '9') d = static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') d = static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') d = static_cast<uint32_t>(c - 'A' + 10);
      else error(str("\\", digits == 4 ? 'u' : 'U', " needs ", digits, " hex digits"));
      cp = cp * 16 + d;
      ++pos_;
    }
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) error("escape is not a Unicode scalar value");
    return cp;
  }

  void escape(std::string& out) {
    ++pos_;  // backslash
    char c = peek();
    ++pos_;
    switch (c) {
      case 'b': out += '\b'; break;
      case 't': out += '\t'; break;
      case 'n': out += '\n'; break;
      case 'f': out += '\f'; break;
      case 'r': out += '\r'; break;
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case 'u': append_utf8(out, hex_escape(4)); break;
      case 'U': append_utf8(out, hex_escape(8)); break;
      default: error(str("invalid escape \\", c == '\0' ? ' ' : c));
    }
  }

  std::string basic_string() {
    ++pos_;
    std::string out;
    for (;;) {
      if (at_end() || peek() == '\n') error("unterminated string");
      char c = peek();
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c == '\\') {
        escape(out);
        continue;
      }
      check_char(c, false);
      out += c;
      ++pos_;
    }
  }

  std::string literal_string() {
    ++pos_;
    std::string out;
    for (;;) {
      if (at_end() || peek() == '\n') error("unterminated string");
      char c = peek();
      ++pos_;
      if (c == '\'') return out;
      check_char(c, false);
      out += c;
    }
  }

  /// Closing delimiter of a multi-line string at pos_: up to two extra quotes belong to the
  /// content (`""""` is one quote, then the end). Returns the count of content quotes, or -1.
  int closing(char q) const {
    int n = 0;
    while (peek(static_cast<size_t>(n)) == q && n < 5) ++n;
    return n >= 3 ? n - 3 : -1;
  }

  std::string multiline_basic_string() {
    pos_ += 3;
    newline();  // a newline right after the opening delimiter is trimmed
    std::string out;
    for (;;) {
      if (at_end()) error("unterminated multi-line string");
      char c = peek();
      if (c == '"') {
        int extra = closing('"');
        if (extra >= 0) {
          out.append(static_cast<size_t>(extra), '"');
          pos_ += static_cast<size_t>(extra) + 3;
          return out;
        }
      }
      if (c == '\\') {
        // A backslash at the end of a line trims it and all whitespace up to the next text.
        size_t p = pos_ + 1;
        while (p < s_.size() && (s_[p] == ' ' || s_[p] == '\t')) ++p;
        if (p < s_.size() && (s_[p] == '\n' || (s_[p] == '\r' && p + 1 < s_.size() && s_[p + 1] == '\n'))) {
          pos_ = p;
          for (;;) {
            skip_ws();
            if (!newline()) break;
          }
          continue;
        }
        escape(out);
        continue;
      }
      if (newline()) {
        out += '\n';
        continue;
      }
      check_char(c, true);
      out += c;
      ++pos_;
    }
  }

  std::string multiline_literal_string() {
    pos_ += 3;
    newline();
    std::string out;
    for (;;) {
      if (at_end()) error("unterminated multi-line string");
      char c = peek();
      if (c == '\'') {
        int extra = closing('\'');
        if (extra >= 0) {
          out.append(static_cast<size_t>(extra), '\'');
          pos_ += static_cast<size_t>(extra) + 3;
          return out;
        }
      }
      if (newline()) {
        out += '\n';
        continue;
      }
      check_char(c, true);
      out += c;
      ++pos_;
    }
  }

  /// Numbers and dates: everything up to a delimiter.
  void scalar(TomlValue& v) {
    size_t start = pos_;
    auto delimiter = [](char c) {
      return c == ' ' || c == '\t' || c == ',' || c == ']' || c == '}' || c == '#' || c == '\n' ||
             c == '\r' || c == '\0';
    };
    while (!at_end() && !delimiter(peek())) ++pos_;
    // A date and a time may be separated by one space: "1979-05-27 07:32:00Z".
    std::string_view tok = s_.substr(start, pos_ - start);
    if (tok.size() == 10 && tok[4] == '-' && tok[7] == '-' && peek() == ' ' && peek(1) >= '0' &&
        peek(1) <= '9' && peek(3) == ':') {
      ++pos_;
      while (!at_end() && !delimiter(peek())) ++pos_;
      tok = s_.substr(start, pos_ - start);
    }
    if (number(tok, v)) return;
    if (looks_like_datetime(tok)) {
      v.kind = Kind::kDatetime;
      v.text = std::string(tok);
      return;
    }
    error(str("invalid value '", tok, "' (strings need quotes)"));
  }

  static bool looks_like_datetime(std::string_view t) {
    bool date = t.size() >= 10 && t[4] == '-' && t[7] == '-';
    bool time = t.size() >= 8 && t[2] == ':' && t[5] == ':';
    if (!date && !time) return false;
    for (char c : t) {
      if (!((c >= '0' && c <= '9') || c == '-' || c == ':' || c == '.' || c == 'T' || c == 't' ||
            c == 'Z' || c == 'z' || c == '+' || c == ' ')) {
        return false;
      }
    }
    return true;
  }

  /// Digits with single underscores between them; false on anything else.
  static bool digits(std::string_view t, bool (*is_digit)(char), std::string& out) {
    if (t.empty() || t.front() == '_' || t.back() == '_') return false;
    char prev = 0;
    for (char c : t) {
      if (c == '_') {
        if (prev == '_') return false;
      } else if (!is_digit(c)) {
        return false;
      } else {
        out += c;
      }
      prev = c;
    }
    return true;
  }

  bool number(std::string_view t, TomlValue& v) const {
    static constexpr auto dec = [](char c) { return c >= '0' && c <= '9'; };
    std::string_view body = t;
    bool negative = false;
    if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
      negative = body[0] == '-';
      body.remove_prefix(1);
    }
    if (body == "inf" || body == "nan") {
      v.kind = Kind::kFloat;
      v.number = body == "inf" ? std::numeric_limits<double>::infinity()
                               : std::numeric_limits<double>::quiet_NaN();
      if (negative) v.number = -v.number;
      return true;
    }
    // Prefixed integers: 0x, 0o, 0b (no sign).
    if (body.size() > 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'o' || body[1] == 'b')) {
      if (body.size() != t.size()) error("a sign is not allowed on a hex, octal or binary integer");
      int base = body[1] == 'x' ? 16 : body[1] == 'o' ? 8 : 2;
      std::string clean;
      bool ok = base == 16   ? digits(body.substr(2), [](char c) {
                                 return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                                        (c >= 'A' && c <= 'F');
                               }, clean)
                : base == 8 ? digits(body.substr(2), [](char c) { return c >= '0' && c <= '7'; }, clean)
                            : digits(body.substr(2), [](char c) { return c == '0' || c == '1'; }, clean);
      if (!ok) error(str("invalid integer '", t, "'"));
      uint64_t u = 0;
      auto [p, ec] = std::from_chars(clean.data(), clean.data() + clean.size(), u, base);
      if (ec != std::errc() || p != clean.data() + clean.size() ||
          u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        error(str("integer '", t, "' is out of range"));
      }
      v.kind = Kind::kInteger;
      v.integer = static_cast<int64_t>(u);
      return true;
    }
    if (body.empty() || !dec(body[0])) return false;
    size_t split = body.find_first_of(".eE");
    if (split == std::string_view::npos) {
      std::string clean;
      if (!digits(body, dec, clean)) {
        // "1979-05-27" and "07:32:00" start with digits too.
        if (looks_like_datetime(t)) return false;
        error(str("invalid integer '", t, "'"));
      }
      if (clean.size() > 1 && clean[0] == '0') error(str("leading zeros in integer '", t, "'"));
      uint64_t u = 0;
      auto [p, ec] = std::from_chars(clean.data(), clean.data() + clean.size(), u);
      uint64_t limit = static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + (negative ? 1 : 0);
      if (ec != std::errc() || u > limit) error(str("integer '", t, "' is out of range"));
      v.kind = Kind::kInteger;
      v.integer = negative ? static_cast<int64_t>(0 - u) : static_cast<int64_t>(u);
      return true;
    }
    // Float: int-part, then .frac and/or e[sign]exp.
    std::string clean;
    std::string_view int_part = body.substr(0, split);
    if (!digits(int_part, dec, clean)) return false;
    if (clean.size() > 1 && clean[0] == '0') error(str("leading zeros in float '", t, "'"));
    std::string_view rest = body.substr(split);
    if (rest[0] == '.') {
      size_t e = rest.find_first_of("eE");
      std::string frac;
      if (!digits(rest.substr(1, e == std::string_view::npos ? std::string_view::npos : e - 1),
                  dec, frac)) {
        error(str("invalid float '", t, "'"));
      }
      clean += '.';
      clean += frac;
      rest = e == std::string_view::npos ? std::string_view() : rest.substr(e);
    }
    if (!rest.empty()) {
      std::string_view ex = rest.substr(1);
      clean += 'e';
      if (!ex.empty() && (ex[0] == '+' || ex[0] == '-')) {
        clean += ex[0];
        ex.remove_prefix(1);
      }
      std::string exp;
      if (!digits(ex, dec, exp)) error(str("invalid float '", t, "'"));
      clean += exp;
    }
    double d = 0;
    auto [p, ec] = std::from_chars(clean.data(), clean.data() + clean.size(), d);
    if (ec != std::errc() || p != clean.data() + clean.size()) error(str("invalid float '", t, "'"));
    v.kind = Kind::kFloat;
    v.number = negative ? -d : d;
    return true;
  }

  std::string_view s_;
  std::string_view file_;
  size_t pos_ = 0;
  uint32_t line_ = 1;
};

}  // namespace

TomlValue parse_toml(std::string_view text, std::string_view filename) {
  return Parser(text, filename).parse();
}

}  // namespace knit::conf
