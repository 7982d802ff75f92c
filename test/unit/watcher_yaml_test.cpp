// YAML to JSON conversion, held to what sigs.k8s.io/yaml (go-yaml v2) gives kubectl.
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include <string>

#include "core/error.hpp"
#include "core/str.hpp"
#include "watcher/yaml.hpp"

using knit::str;
using knit::watcher::yaml_to_json;
using nlohmann::json;
namespace data = boost::unit_test::data;

namespace {

/// The JSON of the single document `yaml`.
json one(const std::string& yaml) {
  auto docs = yaml_to_json(yaml);
  BOOST_TEST_REQUIRE(docs.size() == 1u, yaml);
  return docs[0].value;
}

/// Checks that yaml_to_json(text) throws Error(kDecode) whose message contains `part`.
void expect_error(const std::string& text, std::string_view part) {
  try {
    yaml_to_json(text);
    BOOST_ERROR("no error for: " << text);
  } catch (const knit::Error& e) {
    BOOST_TEST((e.code() == knit::Code::kDecode));
    BOOST_TEST(std::string_view(e.what()).find(part) != std::string_view::npos,
               "\"" << e.what() << "\" lacks \"" << part << "\" for: " << text);
  }
}

}  // namespace

struct ScalarCase {
  const char* yaml;  // the value of key v
  const char* json;  // what v becomes, as JSON text
};
std::ostream& operator<<(std::ostream& os, const ScalarCase& c) {
  return os << "v: " << c.yaml << " -> " << c.json;
}

const ScalarCase kScalars[] = {
    // Integers, with Go's base prefixes and '_' ignored.
    {"80", "80"},
    {"-7", "-7"},
    {"+5", "5"},
    {"0", "0"},
    {"0x1F", "31"},
    {"0o17", "15"},
    {"017", "15"},
    {"0b101", "5"},
    {"-0b101", "-5"},
    {"-0x10", "-16"},
    {"1_000", "1000"},
    {"9223372036854775807", "9223372036854775807"},
    {"-9223372036854775808", "-9223372036854775808"},
    {"9223372036854775808", "9223372036854775808"},
    {"18446744073709551615", "18446744073709551615"},
    // Floats; integral ones are written as integers, as Go's JSON encoder does.
    {"1.5", "1.5"},
    {"-0.25", "-0.25"},
    {".5", "0.5"},
    {"80.0", "80"},
    {"1.0e+3", "1000"},
    {"1e+3", "1000"},
    {"08", "8"},  // not octal, but a float to go-yaml
    {"18446744073709551616", "1.8446744073709552e+19"},
    // Strings that look almost like numbers stay strings.
    {"1e3", "\"1e3\""},  // go-yaml's float pattern wants a signed exponent
    {"1.", "\"1.\""},
    {"0x", "\"0x\""},
    {"0xZZ", "\"0xZZ\""},
    {"1:20", "\"1:20\""},
    {"2001-12-14", "\"2001-12-14\""},
    {"2001-12-14T21:59:43.10Z", "\"2001-12-14T21:59:43.10Z\""},
    {"+", "\"+\""},
    {"-x", "\"-x\""},
    {"1.2.3", "\"1.2.3\""},
    {"v1", "\"v1\""},
    // YAML 1.1 booleans in go-yaml's spellings.
    {"true", "true"},
    {"True", "true"},
    {"TRUE", "true"},
    {"false", "false"},
    {"yes", "true"},
    {"Yes", "true"},
    {"NO", "false"},
    {"y", "true"},
    {"N", "false"},
    {"on", "true"},
    {"Off", "false"},
    {"tRUE", "\"tRUE\""},
    {"yEs", "\"yEs\""},
    {"enabled", "\"enabled\""},
    // Null.
    {"", "null"},
    {"~", "null"},
    {"null", "null"},
    {"Null", "null"},
    {"NULL", "null"},
    {"nULL", "\"nULL\""},
    // Quoted and block scalars are strings, always.
    {"'80'", "\"80\""},
    {"\"true\"", "\"true\""},
    {"'~'", "\"~\""},
    {"''", "\"\""},
    {"\"a\\tb\"", "\"a\\tb\""},
    {"|\n  line\n", "\"line\\n\""},
    {">-\n  folded\n  text\n", "\"folded text\""},
    // Tags.
    {"!!str 80", "\"80\""},
    {"!!str yes", "\"yes\""},
    {"!!int '7'", "7"},
    {"!!float 2", "2"},
    {"!!bool 'on'", "true"},
    {"!!null ''", "null"},
    {"!Ref web", "\"web\""},
    {"! 80", "\"80\""},
    // Flow collections.
    {"[1, two, 'three', {a: b}]", "[1,\"two\",\"three\",{\"a\":\"b\"}]"},
    {"{}", "{}"},
    {"[]", "[]"},
};

BOOST_AUTO_TEST_SUITE(watcher_yaml)

BOOST_DATA_TEST_CASE(scalar_resolution, data::make(kScalars), c) {
  auto v = one(str("v: ", c.yaml));
  BOOST_TEST(v.dump() == str("{\"v\":", c.json, "}"));
}

BOOST_AUTO_TEST_CASE(integer_kinds) {
  BOOST_TEST(one("v: 80")["v"].is_number_integer());
  BOOST_TEST(one("v: 80.0")["v"].is_number_integer());  // Go writes 80.0 as 80
  BOOST_TEST(one("v: 80.5")["v"].is_number_float());
  BOOST_TEST(one("v: 18446744073709551615")["v"].is_number_unsigned());
}

struct KeyCase {
  const char* yaml;
  const char* json;
};
std::ostream& operator<<(std::ostream& os, const KeyCase& c) {
  return os << c.yaml;
}

const KeyCase kKeys[] = {
    {"on: 1", R"({"true":1})"},  // the famous one: a YAML 1.1 boolean key
    {"no: 1", R"({"false":1})"},          {"'on': 1", R"({"on":1})"},
    {"80: http", R"({"80":"http"})"},     {"0x10: a", R"({"16":"a"})"},
    {"1.5: a", R"({"1.5":"a"})"},         {"1.0e+6: a", R"({"1e+06":"a"})"},
    {"123456.0: a", R"({"123456":"a"})"}, {"0.0001: a", R"({"0.0001":"a"})"},
    {"a: 1\na: 2", R"({"a":2})"},  // a repeated key: the last wins, as in go-yaml v2
};

BOOST_DATA_TEST_CASE(mapping_keys, data::make(kKeys), c) {
  BOOST_TEST(one(c.yaml).dump() == c.json);
}

BOOST_AUTO_TEST_CASE(refused_values) {
  expect_error("v: .inf", "line 1, column 4: .inf cannot be represented in JSON");
  expect_error("v: -.Inf", "cannot be represented in JSON");
  expect_error("v: .nan", "cannot be represented in JSON");
  expect_error("~: 1", "line 1, column 1: unsupported mapping key: null");
  expect_error("? [a, b]\n: 1\n", "unsupported mapping key: a sequence");
  expect_error("? {a: b}\n: 1\n", "unsupported mapping key: a mapping");
  expect_error("v: !!int abc", "line 1, column 4: cannot decode `abc` as a !!int");
  expect_error("v: !!bool 1", "cannot decode `1` as a !!bool");
}

BOOST_AUTO_TEST_CASE(syntax_errors_name_line_and_column) {
  expect_error("a: 1\nb: [x\n", "line 3, column 1: did not find expected ',' or ']'");
  expect_error("a: 1\n b: 2\n", "line 2, column 3: mapping values are not allowed in this context");
  expect_error("a: \"unterminated\n", "found unexpected end of stream");
  expect_error("a:\n  - x\n b: 1\n", "line 3, column 2: ");
  expect_error("a: \xff\xfe\n", "invalid");
}

BOOST_AUTO_TEST_CASE(anchors_and_aliases) {
  auto v = one(R"(
base: &labels {app: web, tier: fe}
copy: *labels
list: [&x 1, *x, *x]
)");
  BOOST_TEST(v["copy"].dump() == R"({"app":"web","tier":"fe"})");
  BOOST_TEST(v["list"].dump() == "[1,1,1]");
}

BOOST_AUTO_TEST_CASE(merge_keys_follow_go_yaml_v2) {
  auto v = one(R"(
defaults: &d {a: 1, b: 1}
extra: &e {b: 2, c: 2}
after: {<<: *d, b: 9}
before: {b: 9, <<: *d}
list: {<<: [*d, *e]}
inline: {<<: {z: 26}}
quoted: {'<<': *d}
)");
  BOOST_TEST(v["after"].dump() == R"({"a":1,"b":9})");       // explicit key after the merge wins
  BOOST_TEST(v["before"].dump() == R"({"a":1,"b":1})");      // go-yaml v2 applies in order
  BOOST_TEST(v["list"].dump() == R"({"a":1,"b":1,"c":2})");  // earlier mapping in a list wins
  BOOST_TEST(v["inline"].dump() == R"({"z":26})");
  BOOST_TEST(v["quoted"].dump() == R"({"<<":{"a":1,"b":1}})");  // a quoted << is a plain key
  expect_error("a: &s x\nb: {<<: *s}\n", "line 2, column 9: map merge requires a mapping");
}

BOOST_AUTO_TEST_CASE(bad_aliases_are_refused) {
  expect_error("a: *nowhere\n", "line 1, column 4: alias *nowhere refers to no complete anchor");
  // A recursive structure cannot be JSON.
  expect_error("a: &loop [*loop]\n", "alias *loop refers to no complete anchor");
  // Anchors do not cross documents.
  expect_error("a: &x 1\n---\nb: *x\n", "line 3, column 4: alias *x");
  // "Billion laughs": each level multiplies the previous one by ten.
  std::string bomb = "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 9; ++i) {
    bomb += str('l', i, ": &l", i, " [");
    for (int j = 0; j < 10; ++j) bomb += str(j ? ", " : "", "*l", i - 1);
    bomb += "]\n";
  }
  expect_error(bomb, "aliases expand to more than 100000 values");
}

BOOST_AUTO_TEST_CASE(nesting_is_bounded) {
  std::string deep(300, '[');
  deep += std::string(300, ']');
  expect_error(deep, "nesting deeper than 200 levels");
  std::string ok(150, '[');
  ok += std::string(150, ']');
  BOOST_TEST(one(ok).is_array());
}

BOOST_AUTO_TEST_CASE(documents_and_their_lines) {
  auto docs = yaml_to_json("# head\na: 1\n---\nb: 2\n---\n---\n# empty\n...\n---\n- c\n");
  BOOST_TEST_REQUIRE(docs.size() == 5u);
  BOOST_TEST(docs[0].line == 2u);  // an implicit document starts at its first token
  BOOST_TEST(docs[0].value.dump() == R"({"a":1})");
  BOOST_TEST(docs[1].line == 3u);
  BOOST_TEST(docs[1].value.dump() == R"({"b":2})");
  BOOST_TEST(docs[2].line == 5u);
  BOOST_TEST(docs[2].value.is_null());
  BOOST_TEST(docs[3].line == 6u);
  BOOST_TEST(docs[3].value.is_null());
  BOOST_TEST(docs[4].line == 9u);
  BOOST_TEST(docs[4].value.dump() == R"(["c"])");
  BOOST_TEST(yaml_to_json("").empty());
  BOOST_TEST(yaml_to_json("# nothing but a comment\n").empty());
}

BOOST_AUTO_TEST_CASE(json_is_yaml) {
  const char* text = R"({"kind": "Pod", "n": [1, -2, 3.5, true, null, "x\u00e9\n"], "o": {}})";
  BOOST_TEST(one(text) == json::parse(text));
}

BOOST_AUTO_TEST_SUITE_END()
