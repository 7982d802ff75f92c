// watcher/manifests.hpp: a directory of Kubernetes manifests as a source of objects.
//
// Every regular file directly in the directory whose name ends in .yaml, .yml or .json (and does
// not start with '.') is read, in name order. A file that cannot be parsed is reported and
// contributes nothing; an invalid object is reported and skipped; everything else is kept. The
// digest identifies the directory's contents, so `knit lab probe` can wait until the agent has
// applied exactly what the directory holds now.
#pragma once

#include <string>
#include <vector>

#include "watcher/k8s_decode.hpp"

namespace knit::watcher {

struct Manifests {
  Decoded objects;  ///< errors: one line per skipped file or object
  std::string digest;
};

/// Loads `dir`. Throws Error(kIo) when the directory itself cannot be read.
Manifests load_manifests(const std::string& dir);

/// The digest of the manifest files of `dir` (names and contents), as load_manifests computes it.
std::string manifests_digest(const std::string& dir);

}  // namespace knit::watcher
