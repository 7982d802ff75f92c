// watcher/yaml.hpp: YAML documents to JSON values, read the way Kubernetes reads manifests.
//
// Internal to the watcher module (it exposes nlohmann::json, which only watcher's .cpp files and
// tests include); users call decode_manifest() in k8s_decode.hpp.
//
// kubectl converts each YAML document to JSON with sigs.k8s.io/yaml (go-yaml v2 underneath) and
// the API server decodes that JSON into typed objects. Doing the same conversion here means a
// manifest means the same thing to knit as to a cluster, quirks included:
//  - quoted and block scalars (`'80'`, `"on"`, `|`) are always strings;
//  - plain scalars resolve as go-yaml v2 does: null (`~`, `null`, empty), booleans in YAML 1.1
//    spelling (`true`, `yes`, `on`, `y`, and their negatives, in lower, Title or UPPER case),
//    integers with Go's base prefixes (`0x1F`, `0o17`, `017`, `0b101`; `_` ignored), floats
//    (`1.5`, `.5`, `1.0e+3`); anything else is a string (timestamps stay strings too);
//  - a float with an integral value becomes a JSON integer (`80.0` is 80), as Go's JSON encoder
//    writes it; `.inf` and `.nan` cannot be written as JSON and are refused;
//  - mapping keys that resolve to numbers or booleans become their text (`on:` is "true");
//    null and non-scalar keys are refused;
//  - explicit tags: `!!str` makes a string, `!!int`/`!!float`/`!!bool`/`!!null` must agree with
//    the value, other tags (`!Ref`, `!!binary`, ...) keep the text as a string;
//  - anchors, aliases and merge keys (`<<: *base`, `<<: [*a, *b]`) are expanded; entries apply
//    in document order, so a key after a merge overrides the merged one, and within a merge list
//    the earlier mapping wins. An alias to an anchor not yet complete (a cycle) is an error, and
//    alias expansion is capped (kMaxAliasNodes) against "billion laughs" documents.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string_view>
#include <vector>

namespace knit::watcher {

/// Upper bound on JSON values created by expanding aliases, per document.
inline constexpr size_t kMaxAliasNodes = 100000;
/// Upper bound on nesting of sequences and mappings.
inline constexpr int kMaxYamlDepth = 200;

struct YamlDocument {
  nlohmann::json value;  ///< null for an empty document
  size_t line = 0;       ///< where the document starts, counting from 1
};

/// Converts every document of a YAML stream. Throws Error(kDecode) with a message of the form
/// "line <l>, column <c>: <problem>" when the text is not well-formed YAML, or a value cannot be
/// represented as JSON (see above). An empty stream yields no documents.
std::vector<YamlDocument> yaml_to_json(std::string_view text);

}  // namespace knit::watcher
