// A mutation fuzz of the Kubernetes object decoder (decode_json, decode_event, decode_manifest).
//
// Inputs are the fixtures under test/data/k8s and a few hand-written objects, damaged at random:
// bytes deleted, inserted, flipped, duplicated or cut off; JSON values swapped for other types,
// members dropped, added or duplicated; huge and out-of-range numbers, deep nesting, invalid
// UTF-8, NUL bytes, very long strings. Every input is checked against the decoder's contract
// (k8s_decode.hpp):
//  - nothing crashes, and the only exception is Error(kDecode), thrown exactly when the header
//    says (decode_json: the text is not JSON or not an object; decode_event: not JSON, no known
//    type, no object object);
//  - in a List where one item was damaged, every other item decodes exactly as it does alone.
// Deterministic: the seed is fixed (KNIT_FUZZ_SEED overrides it) and the iteration count is small
// enough for the unit suite; KNIT_FUZZ_ITERATIONS runs more, e.g. under the sanitizers.
#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/str.hpp"
#include "test/files.hpp"
#include "watcher/k8s_decode.hpp"

using knit::Code;
using knit::str;
using nlohmann::json;
using namespace knit::watcher;

namespace {

// ---- Randomness and knobs

uint64_t env_u64(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 0) : fallback;
}

/// splitmix64: the same sequence on every platform and standard library.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return n ? static_cast<size_t>(next() % n) : 0; }
  bool percent(int p) { return below(100) < static_cast<size_t>(p); }
  template <class T>
  const T& pick(const std::vector<T>& v) {
    return v[below(v.size())];
  }
};

// ---- Seeds

std::string fixture(std::string_view name) {
  auto text = knit::test::slurp(str(KNIT_TEST_DATA, "/k8s/", name));
  BOOST_TEST_REQUIRE(!text.empty(), "cannot read " << name);
  return text;
}

/// Objects that exercise the decoders' less common paths (sidecars, endPort, except, named
/// ports, matchExpressions, addresses, podCIDR fallback).
const char* const kHandWritten[] = {
    R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop","labels":{"team":"a","empty":null}}})",
    R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-1","namespace":"shop","uid":"u1",)"
    R"("resourceVersion":"5","labels":{"app":"web"}},"spec":{"nodeName":"n1","hostNetwork":false,)"
    R"("containers":[{"name":"c","ports":[{"name":"http","containerPort":8080,"protocol":"TCP"},)"
    R"({"containerPort":53,"protocol":"UDP"}]}],"initContainers":[{"name":"s","restartPolicy":)"
    R"("Always","ports":[{"name":"metrics","containerPort":9090}]},{"name":"i","ports":)"
    R"([{"containerPort":1}]}]},"status":{"phase":"Running","podIP":"10.244.1.7","podIPs":)"
    R"([{"ip":"10.244.1.7"},{"ip":"fd00::7"}]}})",
    R"({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"np",)"
    R"("namespace":"shop"},"spec":{"podSelector":{"matchLabels":{"app":"web"},"matchExpressions":)"
    R"([{"key":"tier","operator":"In","values":["a","b"]},{"key":"x","operator":"DoesNotExist"}]},)"
    R"("policyTypes":["Ingress","Egress"],"ingress":[{"from":[{"ipBlock":{"cidr":"10.0.0.0/8",)"
    R"("except":["10.1.0.0/16"]}},{"namespaceSelector":{},"podSelector":{"matchLabels":{"a":"b"}}}],)"
    R"("ports":[{"protocol":"TCP","port":8000,"endPort":8080},{"port":"http"},{"protocol":"SCTP"}]}],)"
    R"("egress":[{"to":[{"ipBlock":{"cidr":"fd00::/8"}}],"ports":[{"port":53,"protocol":"UDP"}]},{}]}})",
    R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"n1","labels":{"k":"v"}},"spec":)"
    R"({"podCIDR":"10.244.1.0/24"},"status":{"addresses":[{"type":"InternalIP","address":)"
    R"("172.18.0.2"},{"type":"Hostname","address":"n1"},{"type":"InternalIP","address":"fc00::2"}]}})",
};

/// Every object of the JSON fixtures and the hand-written ones, each a complete object that
/// decodes on its own (items of typed lists get the kind and apiVersion their list implies).
std::vector<json> object_pool() {
  std::vector<json> pool;
  for (const char* f :
       {"namespaces.json", "networkpolicies.json", "node.json", "podlist-api.json", "pods.json"}) {
    json j = json::parse(fixture(f));
    std::string kind = j.value("kind", "");
    if (!j.contains("items")) {
      pool.push_back(j);
      continue;
    }
    for (json item : j["items"]) {
      if (!item.contains("kind")) {
        item["kind"] = kind.substr(0, kind.size() - 4);
        item["apiVersion"] = j["apiVersion"];
      }
      pool.push_back(std::move(item));
    }
  }
  for (const char* h : kHandWritten) pool.push_back(json::parse(h));
  return pool;
}

// ---- Mutations

/// Raw JSON texts (valid or not) put in place of a value through a marker string, for what a
/// DOM cannot hold: numbers out of every range, broken strings, nesting too deep to recurse on.
std::vector<std::string> raw_values() {
  std::vector<std::string> v = {"18446744073709551615",
                                "18446744073709551616",
                                "-9223372036854775808",
                                "-9223372036854775809",
                                "9223372036854775807",
                                "4294967296",
                                "-1",
                                "0",
                                "-0",
                                "80.0",
                                "8e1",
                                "1E2",
                                "1e400",
                                "-1e400",
                                "1e-400",
                                "NaN",
                                "Infinity",
                                "0x50",
                                "012",
                                "+1",
                                ".5",
                                "\"\\u0000\"",
                                "\"a\\u0000b\"",
                                "\"\\ud800\"",
                                "\"\\udc00x\"",
                                "\"\\ud83d\\ude00\"",
                                "\"\xff\"",
                                "\"\xc0\x80\"",
                                "\"\xed\xa0\x80\"",
                                "\"\xf4\x90\x80\x80\"",
                                "\"\xe2\x82\"",
                                "\"\\x41\"",
                                "\"\\/\"",
                                "\"10.0.0.0/33\"",
                                "\"10.0.0.0\\u0000junk/8\"",
                                "\"::ffff:10.0.0.1\"",
                                "\"10.0.0.1/32\"",
                                "\"0.0.0.0/0\"",
                                "\"::/0\"",
                                "\"In\"",
                                "\"Always\"",
                                "\"SCTP\"",
                                "\"Ingress\"",
                                "\"List\"",
                                "\"PodList\"",
                                "\"NetworkPolicy\"",
                                "\"Pod\"",
                                "\"Node\"",
                                "\"Namespace\"",
                                "\"v1\"",
                                "tru",
                                "nul",
                                "[1,]",
                                "{\"a\":}",
                                "{,}",
                                "[",
                                "}"};
  v.push_back(std::string("\"a\0b\"", 5));  // a raw NUL inside a string
  v.push_back(str(std::string(1000, '9')));
  v.push_back(str("0.", std::string(400, '0'), "1"));
  v.push_back(str('"', std::string(100000, 'a'), '"'));
  v.push_back(str('"', std::string(254, 'a'), '"'));
  v.push_back(str('"', std::string(20000, '\\'), std::string(20000, '\\'), '"'));
  for (int depth : {64, 1000, 100000}) {
    v.push_back(str(std::string(depth, '['), std::string(depth, ']')));
    std::string obj;
    for (int i = 0; i < depth; ++i) obj += "{\"a\":";
    obj += "1";
    obj += std::string(depth, '}');
    v.push_back(std::move(obj));
  }
  return v;
}

/// Keys the decoders read, so added and duplicated members hit real fields.
const std::vector<std::string> kKeys = {"kind",
                                        "apiVersion",
                                        "metadata",
                                        "name",
                                        "namespace",
                                        "uid",
                                        "resourceVersion",
                                        "labels",
                                        "spec",
                                        "status",
                                        "items",
                                        "podSelector",
                                        "namespaceSelector",
                                        "matchLabels",
                                        "matchExpressions",
                                        "key",
                                        "operator",
                                        "values",
                                        "ingress",
                                        "egress",
                                        "from",
                                        "to",
                                        "ports",
                                        "port",
                                        "endPort",
                                        "protocol",
                                        "ipBlock",
                                        "cidr",
                                        "except",
                                        "policyTypes",
                                        "containers",
                                        "initContainers",
                                        "restartPolicy",
                                        "containerPort",
                                        "nodeName",
                                        "hostNetwork",
                                        "phase",
                                        "podIPs",
                                        "podIP",
                                        "ip",
                                        "addresses",
                                        "address",
                                        "type",
                                        "podCIDRs",
                                        "podCIDR",
                                        "object",
                                        "code",
                                        "reason",
                                        "message",
                                        "x"};

constexpr std::string_view kRawMarker = "@@raw@@";

/// A random JSON value; a string kRawMarker+index stands for raw_values()[index].
json random_value(Rng& rng, size_t raws, int depth = 0) {
  switch (rng.below(depth > 2 ? 9 : 11)) {
    case 0:
      return nullptr;
    case 1:
      return rng.percent(50);
    case 2:
      return static_cast<int64_t>(rng.below(70000)) - 2;
    case 3:
      return 1.5;
    case 4:
      return "";
    case 5:
      return rng.pick(kKeys);
    case 6:
      return std::string(1 + rng.below(300), static_cast<char>('a' + rng.below(26)));
    case 7:
    case 8:
      return str(kRawMarker, rng.below(raws));
    case 9: {
      json a = json::array();
      for (size_t n = rng.below(4); n > 0; --n) a.push_back(random_value(rng, raws, depth + 1));
      return a;
    }
    default: {
      json o = json::object();
      for (size_t n = rng.below(4); n > 0; --n) {
        o[rng.pick(kKeys)] = random_value(rng, raws, depth + 1);
      }
      return o;
    }
  }
}

/// Pointers to every value in `v` (v itself first), for picking one at random.
void collect(json& v, std::vector<json*>& out) {
  out.push_back(&v);
  if (v.is_structured()) {
    for (auto& c : v) collect(c, out);
  }
}

/// One structural change to `v`: the result is still a JSON value (with markers).
void mutate_tree(json& v, Rng& rng, size_t raws) {
  std::vector<json*> nodes;
  collect(v, nodes);
  json& n = *nodes[rng.below(nodes.size())];
  switch (rng.below(6)) {
    case 0:  // another value, usually of another type
      n = random_value(rng, raws);
      break;
    case 1:  // drop a member or an element
      if (n.is_object() && !n.empty()) {
        auto it = n.begin();
        std::advance(it, static_cast<long>(rng.below(n.size())));
        n.erase(it);
      } else if (n.is_array() && !n.empty()) {
        n.erase(rng.below(n.size()));
      }
      break;
    case 2:  // add a member a decoder reads, or an element
      if (n.is_object()) {
        n[rng.pick(kKeys)] = random_value(rng, raws);
      } else if (n.is_array()) {
        n.push_back(n.empty() ? random_value(rng, raws) : n[rng.below(n.size())]);
      }
      break;
    case 3: {  // a copy of another value of the tree
      json copy = *nodes[rng.below(nodes.size())];
      n = std::move(copy);
      break;
    }
    case 4:  // duplicate key: see dup_marker()
      if (n.is_object() && !n.empty()) {
        auto it = n.begin();
        std::advance(it, static_cast<long>(rng.below(n.size())));
        // Sorted keys: "!" sorts before every key, "~" after, so the duplicate comes first or
        // last in the text, and the parser keeps the last.
        std::string key = str(rng.percent(50) ? "!" : "~", "dup:", it.key());
        n[key] = random_value(rng, raws);
      }
      break;
    default:  // a raw value
      n = str(kRawMarker, rng.below(raws));
      break;
  }
}

/// `text` with markers replaced: raw values, and duplicate-key markers by the key they copy.
std::string render(const json& v, const std::vector<std::string>& raws) {
  std::string t = v.dump();
  std::string out;
  out.reserve(t.size());
  for (size_t i = 0; i < t.size();) {
    if (t.compare(i, 1 + kRawMarker.size(), str('"', kRawMarker)) == 0) {
      size_t end = t.find('"', i + 1);
      size_t idx = std::strtoul(t.c_str() + i + 1 + kRawMarker.size(), nullptr, 10);
      out += raws[idx % raws.size()];
      i = end + 1;
    } else if (t.compare(i, 6, "\"!dup:") == 0 || t.compare(i, 6, "\"~dup:") == 0) {
      out += '"';
      i += 6;
    } else {
      out += t[i++];
    }
  }
  return out;
}

/// Byte-level damage: the result is usually not JSON.
void mutate_bytes(std::string& t, Rng& rng, const std::vector<std::string>& raws) {
  size_t at = rng.below(t.size() + 1);
  switch (rng.below(8)) {
    case 0:
      t.erase(at, 1 + rng.below(8));
      break;
    case 1:
      for (size_t n = 1 + rng.below(4); n > 0; --n) {
        t.insert(t.begin() + static_cast<long>(at), static_cast<char>(rng.below(256)));
      }
      break;
    case 2:
      if (at < t.size()) t[at] = static_cast<char>(t[at] ^ (1 << rng.below(8)));
      break;
    case 3:
      t.resize(at);
      break;
    case 4: {
      size_t len = std::min<size_t>(1 + rng.below(64), t.size() - std::min(at, t.size()));
      t.insert(at, t.substr(at, len));
      break;
    }
    case 5:  // a structural character
      t.insert(at, 1, "{}[],:\"\\"[rng.below(8)]);
      break;
    case 6:  // invalid UTF-8 or NUL, usually inside a string
      t.insert(at, rng.pick(std::vector<std::string>{std::string(1, '\0'), "\xff", "\xc3",
                                                     "\xed\xa0\x80", "\xc0\xaf", "\x80"}));
      break;
    default:
      t.insert(at, raws[rng.below(raws.size())]);
      break;
  }
}

// ---- The contract

/// What the header promises about a text: is it JSON, and is its top level an object.
struct Shape {
  bool json_ok = false;
  bool object = false;
};
Shape shape_of(std::string_view text) {
  Shape s;
  s.json_ok = json::accept(text.begin(), text.end());
  if (s.json_ok) {
    auto first = text.find_first_not_of(" \t\r\n");
    s.object = first != std::string_view::npos && text[first] == '{';
  }
  return s;
}

std::string excerpt(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 400)) {
    auto u = static_cast<unsigned char>(c);
    out += u >= 0x20 && u < 0x7f
               ? std::string(1, c)
               : str("\\x", "0123456789abcdef"[u >> 4], "0123456789abcdef"[u & 15]);
  }
  if (text.size() > 400) out += str("... (", text.size(), " bytes)");
  return out;
}

/// Runs `f`, which may throw only Error(kDecode); returns the failure, or nullopt when the call
/// threw as `may_throw` allows and returned otherwise. `threw` tells which.
template <class F>
std::optional<std::string> contract(F&& f, bool must_throw, bool may_throw, bool& threw) {
  threw = false;
  try {
    f();
  } catch (const knit::Error& e) {
    threw = true;
    if (e.code() != Code::kDecode) return str("Error with code ", int(e.code()), ": ", e.what());
    if (!may_throw) return str("threw Error(kDecode) on an input it must accept: ", e.what());
    return std::nullopt;
  } catch (const std::exception& e) {
    threw = true;
    return str("undocumented exception: ", e.what());
  } catch (...) {
    threw = true;
    return std::string("undocumented exception of unknown type");
  }
  if (must_throw) return std::string("accepted an input it must refuse");
  return std::nullopt;
}

struct Fuzz {
  Rng rng;
  std::vector<std::string> raws = raw_values();
  std::vector<json> pool = object_pool();
  std::vector<Decoded> alone;  // pool[i] decoded as the only item of a List
  std::string last;            // the input of the current case, for the failure message
  size_t refused = 0;          // inputs the decoder threw on (as it must)
  size_t compared = 0;         // lists whose undamaged items were compared

  /// decode_json on `text` (kept in `last` for the failure message): it must throw
  /// Error(kDecode) exactly when `refuse`.
  std::optional<std::string> decode_checked(const std::string& text, bool refuse, Decoded& got,
                                            bool& threw) {
    last = text;
    auto f = contract([&] { got = decode_json(text); }, refuse, refuse, threw);
    refused += threw;
    return f;
  }

  explicit Fuzz(uint64_t seed) : rng{seed} {
    for (const auto& o : pool) {
      alone.push_back(
          decode_json(str(R"({"kind":"List","apiVersion":"v1","items":[)", o.dump(), "]}")));
      BOOST_TEST_REQUIRE(alone.back().errors.empty(), o.dump());
      BOOST_TEST_REQUIRE(alone.back().size() == 1u, o.dump());
    }
  }

  /// A damaged object's text: a few tree changes, sometimes byte damage on top.
  std::string damaged(json v, bool bytes) {
    for (size_t n = 1 + rng.below(3); n > 0; --n) mutate_tree(v, rng, raws.size());
    std::string t = render(v, raws);
    if (bytes) {
      for (size_t n = 1 + rng.below(3); n > 0; --n) mutate_bytes(t, rng, raws);
    }
    return t;
  }

  /// decode_json on a List of 2..8 pool objects, one of them damaged.
  std::optional<std::string> list_case() {
    std::vector<size_t> picks;
    for (size_t n = 2 + rng.below(7); n > 0; --n) picks.push_back(rng.below(pool.size()));
    size_t k = rng.below(picks.size());
    std::string item = damaged(pool[picks[k]], rng.percent(30));
    std::string text = R"({"kind":"List","apiVersion":"v1","metadata":{"resourceVersion":"7"},)"
                       R"("items":[)";
    for (size_t i = 0; i < picks.size(); ++i) {
      if (i) text += ',';
      text += i == k ? item : pool[picks[i]].dump();
    }
    text += "]}";
    Decoded got;
    bool threw;
    auto f = decode_checked(text, !shape_of(text).json_ok, got, threw);
    if (f || threw) return f;
    ++compared;

    // The damaged item alone, then everything in list order, as each item decodes alone.
    Decoded one = decode_json(str(R"({"kind":"List","apiVersion":"v1","items":[)", item, "]}"));
    Decoded want;
    for (size_t i = 0; i < picks.size(); ++i) {
      Decoded d = i == k ? one : alone[picks[i]];
      d.errors.clear();
      want.merge(std::move(d));
    }
    want.resource_version = "7";
    if (got.errors.size() != one.errors.size()) {
      return str("errors differ from the damaged item's own: ", got.errors.size(), " vs ",
                 one.errors.size());
    }
    got.errors.clear();
    if (!(got == want)) return std::string("the undamaged items decoded differently");
    return std::nullopt;
  }

  /// decode_json on one damaged object or fixture, checking exactly when it throws.
  std::optional<std::string> json_case(const std::string& base) {
    std::string text = base;
    if (rng.percent(60)) {
      text = damaged(json::parse(base), rng.percent(40));
    } else {
      for (size_t n = 1 + rng.below(4); n > 0; --n) mutate_bytes(text, rng, raws);
    }
    Decoded got;
    bool threw;
    auto f = decode_checked(text, !shape_of(text).object, got, threw);
    if (f || threw) return f;
    for (const auto& e : got.errors) {
      if (e.empty()) return std::string("an empty error line");
    }
    return std::nullopt;
  }

  /// decode_event on a damaged watch event line.
  std::optional<std::string> event_case() {
    static const std::vector<std::string> kTypes = {"ADDED",    "MODIFIED", "DELETED",
                                                    "BOOKMARK", "ERROR",    "UPSERT"};
    json ev = {{"type", rng.pick(kTypes)}, {"object", rng.pick(pool)}};
    if (rng.percent(20)) {
      ev["object"] = {{"kind", "Status"}, {"code", 410}, {"reason", "Expired"}, {"message", "m"}};
    }
    std::string line = damaged(ev, rng.percent(30));
    last = line;
    Shape s = shape_of(line);
    bool valid = false;
    if (s.object) {
      json j = json::parse(line);
      auto t = j.find("type");
      auto o = j.find("object");
      bool known = t != j.end() && t->is_string() &&
                   std::find(kTypes.begin(), kTypes.end() - 1, *t) != kTypes.end() - 1;
      valid = known && o != j.end() && o->is_object();
    }
    WatchEvent got;
    bool threw;
    auto f = contract([&] { got = decode_event(line); }, !valid, !valid, threw);
    refused += threw;
    return f;
  }

  /// decode_manifest on damaged YAML (or JSON read as a manifest): only Error(kDecode), naming
  /// the file, may escape, and every error line names the file and document.
  std::optional<std::string> manifest_case(const std::string& base) {
    std::string text = base;
    for (size_t n = 1 + rng.below(4); n > 0; --n) {
      if (rng.percent(20)) {
        // A whole document: an object rendered as JSON, which YAML reads too.
        text.insert(std::min(text.size(), text.find("\n---\n", rng.below(text.size() + 1))),
                    str("\n---\n", damaged(rng.pick(pool), false), "\n"));
      } else {
        mutate_bytes(text, rng, raws);
      }
    }
    last = text;
    Decoded got;
    bool threw;
    std::string err;
    auto f = contract(
        [&] {
          try {
            got = decode_manifest(text, "m.yaml");
          } catch (const knit::Error& e) {
            err = e.what();
            throw;
          }
        },
        false, true, threw);
    refused += threw;
    if (f) return f;
    if (threw && !err.starts_with("decode m.yaml: ")) return str("error names no file: ", err);
    for (const auto& e : got.errors) {
      if (!e.starts_with("m.yaml: document ")) return str("error line without its place: ", e);
    }
    return std::nullopt;
  }
};

void run(std::string_view what, uint64_t iterations,
         const std::function<std::optional<std::string>(Fuzz&)>& step) {
  uint64_t seed = env_u64("KNIT_FUZZ_SEED", 20250301);
  Fuzz fz(seed ^ std::hash<std::string_view>{}(what));
  for (uint64_t i = 0; i < iterations; ++i) {
    uint64_t state = fz.rng.s;
    auto failure = step(fz);
    if (failure) {
      BOOST_FAIL(what << " iteration " << i << " (rng state " << state << "): " << *failure
                      << "\ninput: " << excerpt(fz.last));
    }
  }
  BOOST_TEST_MESSAGE(what << ": " << iterations << " inputs, " << fz.refused << " refused, "
                          << fz.compared << " lists compared item by item");
}

uint64_t iterations(uint64_t normal) {
  return env_u64("KNIT_FUZZ_ITERATIONS", normal);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(watcher_fuzz)

BOOST_AUTO_TEST_CASE(list_with_one_damaged_item) {
  run("list", iterations(300), [](Fuzz& fz) { return fz.list_case(); });
}

BOOST_AUTO_TEST_CASE(damaged_json) {
  std::vector<std::string> bases;
  for (const char* f :
       {"namespaces.json", "networkpolicies.json", "node.json", "podlist-api.json", "pods.json"}) {
    bases.push_back(fixture(f));
  }
  for (const char* h : kHandWritten) bases.push_back(h);
  run("json", iterations(400), [&](Fuzz& fz) { return fz.json_case(fz.rng.pick(bases)); });
}

BOOST_AUTO_TEST_CASE(damaged_watch_events) {
  run("event", iterations(300), [](Fuzz& fz) { return fz.event_case(); });
}

BOOST_AUTO_TEST_CASE(damaged_manifests) {
  std::vector<std::string> bases = {fixture("manifest.yaml"), fixture("malformed.yaml"),
                                    fixture("networkpolicies.json")};
  run("manifest", iterations(400), [&](Fuzz& fz) { return fz.manifest_case(fz.rng.pick(bases)); });
}

BOOST_AUTO_TEST_SUITE_END()
