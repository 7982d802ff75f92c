// test/oracle/yaml_json.hpp: YAML documents as nlohmann::json, for test data only.
//
// Test-side reader of the e2e scenario files and Kubernetes manifests under test/data/, written on
// libyaml independently of the product's decoder. Plain scalars follow YAML 1.2's core schema
// (null, true/false, integers, floats; anything else is a string), and the YAML 1.1 booleans that
// Kubernetes' go-yaml v2 would also read as true/false (y, n, yes, no, on, off in any case) are
// rejected: test data must quote them ("y" is a namespace here), so that every YAML reader,
// knit's own included, sees the same document.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace knit::test::oracle {

/// Every non-empty document of `text`, in order. Throws std::runtime_error naming `origin` and
/// the line on a syntax error, a non-scalar mapping key or an ambiguous plain scalar.
std::vector<nlohmann::json> yaml_documents(std::string_view text, const std::string& origin);

/// yaml_documents() of the file at `path`; throws std::runtime_error when it cannot be read.
std::vector<nlohmann::json> yaml_file(const std::string& path);

}  // namespace knit::test::oracle
