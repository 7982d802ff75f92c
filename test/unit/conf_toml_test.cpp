#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <ostream>
#include <string>

#include "conf/toml.hpp"
#include "core/error.hpp"
#include "core/str.hpp"

using knit::Code;
using knit::Error;
using knit::str;
using knit::conf::parse_toml;
using knit::conf::TomlValue;
using Kind = TomlValue::Kind;
namespace data = boost::unit_test::data;

namespace {

/// A compact, unambiguous rendering: {a=1,b={c="x"}}, arrays [..], dates d"...".
std::string dump(const TomlValue& v) {
  switch (v.kind) {
    case Kind::kString: {
      std::string out = "\"";
      for (char c : v.text) {
        if (c == '\n') out += "\\n";
        else if (c == '"') out += "\\\"";
        else if (c == '\\') out += "\\\\";
        else if (c == '\t') out += "\\t";
        else out += c;
      }
      return out + '"';
    }
    case Kind::kInteger: return str(v.integer);
    case Kind::kFloat:
      if (std::isnan(v.number)) return "nan";
      if (std::isinf(v.number)) return v.number > 0 ? "inf" : "-inf";
      return str("f", static_cast<int64_t>(v.number * 1000));
    case Kind::kBool: return v.boolean ? "true" : "false";
    case Kind::kDatetime: return str("d\"", v.text, '"');
    case Kind::kArray: {
      std::string out = "[";
      for (size_t i = 0; i < v.items.size(); ++i) out += str(i ? "," : "", dump(v.items[i]));
      return out + "]";
    }
    case Kind::kTable: {
      std::string out = "{";
      for (size_t i = 0; i < v.items.size(); ++i) {
        out += str(i ? "," : "", v.items[i].key, '=', dump(v.items[i]));
      }
      return out + "}";
    }
  }
  return "?";
}

struct Good {
  const char* name;
  std::string toml;
  std::string want;
};
std::ostream& operator<<(std::ostream& os, const Good& c) { return os << c.name; }

const Good kGood[] = {
    {"empty", "", "{}"},
    {"comments and blank lines", "# c\n\n  # indented\n", "{}"},
    {"bare keys", "a = 1\nb-c_d = 2\n3 = 3", "{a=1,b-c_d=2,3=3}"},
    {"quoted keys", "\"a.b\" = 1\n'c d' = 2\n\"\" = 3", "{a.b=1,c d=2,=3}"},
    {"dotted keys build tables", "a.b.c = 1\na.b.d = 2\na.e = 3", "{a={b={c=1,d=2},e=3}}"},
    {"whitespace around dots", "a . 'b' . c = 1", "{a={b={c=1}}}"},
    {"tables", "[a]\nx = 1\n[b.c]\ny = 2", "{a={x=1},b={c={y=2}}}"},
    {"implicit table defined later", "[a.b]\nx = 1\n[a]\ny = 2", "{a={b={x=1},y=2}}"},
    {"quoted header keys", "[plugins.\"io.containerd.grpc.v1.cri\".cni]\nbin_dir = \"/b\"",
     "{plugins={io.containerd.grpc.v1.cri={cni={bin_dir=\"/b\"}}}}"},
    {"literal header keys", "[plugins.'io.containerd.cri.v1.runtime'.cni]\nx = 1",
     "{plugins={io.containerd.cri.v1.runtime={cni={x=1}}}}"},
    {"sub-table of a dotted-key table", "[a]\nb.c = 1\n[a.b.d]\ne = 2", "{a={b={c=1,d={e=2}}}}"},
    {"arrays of tables", "[[p]]\nn = 1\n[[p]]\nn = 2\n[p.q]\nm = 3",
     "{p=[{n=1},{n=2,q={m=3}}]}"},
    {"basic string escapes", R"(s = "a\tb\n\"q\" \\ \u00e9 \U0001F600")",
     "{s=\"a\\tb\\n\\\"q\\\" \\\\ \xc3\xa9 \xf0\x9f\x98\x80\"}"},
    {"literal string keeps backslashes", R"(s = 'C:\path\n')", R"({s="C:\\path\\n"})"},
    {"multi-line basic trims the first newline", "s = \"\"\"\nline1\nline2\"\"\"",
     R"({s="line1\nline2"})"},
    {"line-ending backslash", "s = \"\"\"one \\\n     two \\\n\n  three\"\"\"", R"({s="one two three"})"},
    {"quotes before the closing delimiter", "s = \"\"\"a \"quoted\"\"\"\"\"", R"({s="a \"quoted\"\""})"},
    {"multi-line literal", "s = '''\n\\n stays\n'''", R"({s="\\n stays\n"})"},
    {"CRLF line ends", "a = 1\r\nb = \"\"\"x\r\ny\"\"\"\r\n", R"({a=1,b="x\ny"})"},
    {"integers", "a = +42\nb = -17\nc = 1_000\nd = 0xDEAD_beef\ne = 0o755\nf = 0b1010\ng = 0",
     "{a=42,b=-17,c=1000,d=3735928559,e=493,f=10,g=0}"},
    {"integer limits", "a = 9223372036854775807\nb = -9223372036854775808",
     "{a=9223372036854775807,b=-9223372036854775808}"},
    {"floats", "a = 3.5\nb = -0.25\nc = 1e3\nd = 2.5E-1\ne = 1_0.5", "{a=f3500,b=f-250,c=f1000000,d=f250,e=f10500}"},
    {"inf and nan", "a = inf\nb = -inf\nc = nan", "{a=inf,b=-inf,c=nan}"},
    {"booleans", "a = true\nb = false", "{a=true,b=false}"},
    {"dates kept as text",
     "a = 1979-05-27T07:32:00Z\nb = 1979-05-27 07:32:00.5-07:00\nc = 1979-05-27\nd = 07:32:00",
     R"({a=d"1979-05-27T07:32:00Z",b=d"1979-05-27 07:32:00.5-07:00",c=d"1979-05-27",d=d"07:32:00"})"},
    {"arrays over lines with comments and a trailing comma",
     "a = [\n  1, # one\n  \"two\",\n  [3, 4],\n]\nb = []", R"({a=[1,"two",[3,4]],b=[]})"},
    {"inline tables", "a = { x = 1, y.z = \"s\" }\nb = {}", R"({a={x=1,y={z="s"}},b={}})"},
    {"comment after a value", "a = \"# not a comment\" # comment", R"({a="# not a comment"})"},
    {"a key named like a keyword", "true = 1\ninf = 2", "{true=1,inf=2}"},
    {"byte order mark", "\xEF\xBB\xBF" "a = 1", "{a=1}"},
};

struct Bad {
  const char* name;
  std::string toml;
  std::string msg;  ///< the whole message, "f.toml:<line>: ..."
};
std::ostream& operator<<(std::ostream& os, const Bad& c) { return os << c.name; }

const Bad kBad[] = {
    {"duplicate key", "a = 1\nb = 2\na = 3", "f.toml:3: duplicate key a (first on line 1)"},
    {"table twice", "[a]\n[b]\n[a]", "f.toml:3: table a is defined twice (first on line 1)"},
    {"key then table of the same name", "a = 1\n[a]", "f.toml:2: a is already defined as an integer (line 1)"},
    {"dotted key into a header table", "[a.b]\nx = 1\n[a]\nb.y = 2",
     "f.toml:4: cannot add key b.y: b is already defined as a table on line 1"},
    {"extending an inline table", "a = {x = 1}\n[a.b]", "f.toml:2: cannot add to inline table a"},
    {"header through a value", "a = 1\n[a.b]", "f.toml:2: a is not a table (it is an integer defined on line 1)"},
    {"array of tables over a static array", "a = [1]\n[[a]]",
     "f.toml:2: a is already defined as an array, not an array of tables"},
    {"unquoted string", "a = hello", "f.toml:1: invalid value 'hello' (strings need quotes)"},
    {"missing value", "a =\nb = 1", "f.toml:1: expected a value"},
    {"missing equals", "a 1", "f.toml:1: expected '=' after key a"},
    {"two values on a line", "a = 1 b = 2", "f.toml:1: unexpected 'b' after a value (one key = value per line)"},
    {"unterminated string", "a = \"abc\nb = 1", "f.toml:1: unterminated string"},
    {"unterminated multi-line string", "a = 1\nb = \"\"\"abc\n", "f.toml:3: unterminated multi-line string"},
    {"bad escape", R"(a = "\q")", "f.toml:1: invalid escape \\q"},
    {"surrogate escape", R"(a = "\uD800")", "f.toml:1: escape is not a Unicode scalar value"},
    {"control character", "a = \"x\x01y\"", "f.toml:1: control character in string (use an escape)"},
    {"leading zero", "a = 012", "f.toml:1: leading zeros in integer '012'"},
    {"double underscore", "a = 1__0", "f.toml:1: invalid integer '1__0'"},
    {"integer overflow", "a = 9223372036854775808", "f.toml:1: integer '9223372036854775808' is out of range"},
    {"signed hex", "a = -0x10", "f.toml:1: a sign is not allowed on a hex, octal or binary integer"},
    {"bad float", "a = 1.e5", "f.toml:1: invalid float '1.e5'"},
    {"unterminated array", "a = [1, 2", "f.toml:1: unterminated array"},
    {"array without comma", "a = [1 2]", "f.toml:1: expected ',' or ']' in array, got '2'"},
    {"multi-line inline table", "a = {x = 1,\ny = 2}", "f.toml:1: expected a key"},
    {"unclosed header", "[a\nb = 1", "f.toml:1: expected ']'"},
    {"empty bare key", "= 1", "f.toml:1: unexpected '=' where a key should be"},
    {"line counted across multi-line strings", "a = '''\n\n\n'''\nb = 1\nb = 2",
     "f.toml:6: duplicate key b (first on line 5)"},
};

}  // namespace

BOOST_AUTO_TEST_SUITE(conf_toml)

BOOST_DATA_TEST_CASE(parses, data::make(kGood), c) {
  BOOST_TEST(dump(parse_toml(c.toml, "f.toml")) == c.want);
}

BOOST_DATA_TEST_CASE(rejects_with_file_and_line, data::make(kBad), c) {
  try {
    parse_toml(c.toml, "f.toml");
    BOOST_ERROR("no error for " << c.name);
  } catch (const Error& e) {
    BOOST_TEST((e.code() == Code::kInvalidConfig));
    BOOST_TEST(std::string(e.what()) == c.msg);
  }
}

BOOST_AUTO_TEST_CASE(records_lines_and_finds_paths) {
  auto root = parse_toml("# one\n[a]\n\nb = 'x'\n[c.'d.e']\nf = [\n 1,\n 2]\n", "f.toml");
  const TomlValue* b = root.find_path({"a", "b"});
  BOOST_TEST_REQUIRE(b != nullptr);
  BOOST_TEST(b->line == 4u);
  BOOST_TEST(b->kind_name() == "string");
  const TomlValue* f = root.find_path({"c", "d.e", "f"});
  BOOST_TEST_REQUIRE(f != nullptr);
  BOOST_TEST(f->line == 6u);
  BOOST_TEST(f->items.size() == 2u);
  BOOST_TEST(root.find_path({"a", "b", "x"}) == nullptr);  // b is not a table
  BOOST_TEST(root.find_path({"c", "d"}) == nullptr);
  BOOST_TEST(root.find("a")->line == 2u);
}

BOOST_AUTO_TEST_SUITE_END()
