// test/oracle/k8s_json.hpp: Kubernetes objects (as JSON) to the oracle's input values.
//
// Test-side and independent of watcher/k8s_decode: reads only the fields NetworkPolicy semantics
// depend on, and applies the two pieces of API-server behaviour the oracle relies on (the
// automatic kubernetes.io/metadata.name namespace label; metadata.namespace "default" when
// absent). Absent and null are the same; absent and empty selectors stay distinct.
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

#include "test/oracle/netpol_oracle.hpp"

namespace knit::test::oracle {

/// The Namespaces, Pods and NetworkPolicies among `objects` (a `List` contributes its items;
/// other kinds are ignored). Pod IPs come from status.podIPs / status.podIP when present.
/// Throws std::runtime_error naming the object when a field has the wrong shape.
Cluster cluster_from_objects(const std::vector<nlohmann::json>& objects);

}  // namespace knit::test::oracle
