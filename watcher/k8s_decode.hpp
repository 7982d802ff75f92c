// watcher/k8s_decode.hpp: Kubernetes objects from API responses, watch events and manifests.
//
// Approach: decode exactly what the API server returns (objects, typed lists such as PodList
// whose items carry no kind, kubectl's generic List) and what users write in manifests (YAML or
// JSON, several documents per file), into the values of k8s_types.hpp. The decoder is as strict
// as the API server's validation where that validation decides enforcement (CIDRs, ports,
// protocols, selector operators, peer shapes) and as lenient as the API server elsewhere (unknown
// fields are ignored, null counts as absent). One bad object never costs the others: it is
// skipped and reported as one line naming it, and everything else is kept. Objects of kinds knit
// does not use are skipped silently and counted.
//
// YAML is converted to JSON first, as Kubernetes does (sigs.k8s.io/yaml on go-yaml v2), so the
// same document means the same thing to kubectl and to knit; see yaml.hpp for the scalar rules.
// JSON and YAML are seen only by the .cpp files of this module.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "watcher/k8s_types.hpp"

namespace knit::watcher {

/// The namespace manifests' namespaced objects fall back to, as kubectl's default context does.
inline constexpr std::string_view kDefaultNamespace = "default";

/// What one decoding call found.
struct Decoded {
  std::vector<Namespace> namespaces;
  std::vector<Pod> pods;
  std::vector<NetworkPolicy> policies;
  std::vector<Node> nodes;
  /// One line per skipped object: "<Kind> <namespace>/<name>: <field path>: <cause>" (cluster-
  /// scoped objects without the namespace), e.g.
  /// `NetworkPolicy prod/web: spec.ingress[0].from[1].ipBlock.cidr: "10.0.0.0/33" is not a CIDR`.
  /// decode_manifest prefixes "<file>: document <n> (line <l>): ".
  std::vector<std::string> errors;
  /// Objects of other kinds (Deployment, Service, a CRD that reuses a kind name under another
  /// apiVersion such as Calico's NetworkPolicy), skipped without an error.
  size_t ignored = 0;
  /// metadata.resourceVersion of the top-level object or list last decoded (a list's is the one
  /// to start a watch from); empty when there was none.
  std::string resource_version;

  /// Appends everything of `other` (resource_version: other's, when it has one).
  void merge(Decoded&& other);
  /// Number of decoded objects (namespaces + pods + policies + nodes).
  size_t size() const noexcept;
  friend bool operator==(const Decoded&, const Decoded&) = default;
};

/// Decodes one object (kind Namespace, Pod, NetworkPolicy, Node, or any other kind, which is
/// ignored) or a list (List, NamespaceList, PodList, NetworkPolicyList, NodeList, or another
/// <Kind>List): the JSON body of an API GET, or `kubectl get -o json` output. List items without
/// a kind take it from the list's kind (PodList items are Pods); items of a generic List must
/// name their kind. Namespaced objects without metadata.namespace get `default_namespace`.
/// Invalid objects are skipped and reported in errors (see Decoded). Throws Error(kDecode) only
/// when the text is not JSON or its top level is not an object.
Decoded decode_json(std::string_view text, std::string_view default_namespace = kDefaultNamespace);

/// Decodes a manifest file: JSON (when the first non-blank character is `{` or `[` and the text
/// parses as JSON) or YAML with any number of `---`-separated documents, each an object or a list
/// as for decode_json. Empty documents are skipped; a document that is not a mapping is an error
/// in `errors`. Every error line starts with "<file_name>: document <n> (line <l>): " (n and l
/// count from 1; l is where the document starts). Throws Error(kDecode), naming the file, line
/// and column, when the text is not well-formed YAML or uses something JSON cannot represent
/// (see yaml.hpp); no objects of such a file are returned, as kubectl applies none of them.
Decoded decode_manifest(std::string_view text, std::string_view file_name,
                        std::string_view default_namespace = kDefaultNamespace);

// ---- Watch events
// ----------------------------------------------------------------------------------

/// The "type" of a watch event.
enum class EventType : uint8_t { kAdded, kModified, kDeleted, kBookmark, kError };

/// The kinds the watcher decodes; kOther for everything else.
enum class Kind : uint8_t { kNamespace, kPod, kNetworkPolicy, kNode, kOther };

std::string_view to_string(EventType t);  ///< "ADDED", "MODIFIED", ...
std::string_view to_string(Kind k);       ///< "Namespace", ..., "Other"

/// The identity of an event's object, read leniently (it is filled even when the object itself
/// fails to decode, so that a DELETED event for an object knit could not decode still names what
/// to forget).
struct ObjectRef {
  Kind kind = Kind::kOther;
  std::string namespace_;  ///< empty for cluster-scoped kinds
  std::string name;
  std::string uid;
  friend bool operator==(const ObjectRef&, const ObjectRef&) = default;
};

/// A metav1.Status, as carried by an ERROR event.
struct Status {
  int code = 0;         ///< HTTP status, e.g. 410 (Gone: resourceVersion too old, list again)
  std::string reason;   ///< e.g. "Expired", "Gone"
  std::string message;  ///< human-readable
  friend bool operator==(const Status&, const Status&) = default;
};

/// One line of a watch stream: {"type": "...", "object": {...}}.
struct WatchEvent {
  EventType type = EventType::kAdded;
  /// ADDED, MODIFIED, DELETED: the object's identity (see ObjectRef). Default for the others.
  ObjectRef ref;
  /// metadata.resourceVersion of the object; for BOOKMARK the only field that is read.
  std::string resource_version;
  /// ADDED, MODIFIED, DELETED: the decoded object (at most one, in its vector), or one error
  /// line if it is invalid, or `ignored` = 1 if its kind is not one knit uses. Empty otherwise.
  Decoded decoded;
  /// ERROR: the Status object.
  Status status;
  friend bool operator==(const WatchEvent&, const WatchEvent&) = default;
};

/// Decodes one watch event. Throws Error(kDecode) when the line is not JSON, has no known
/// "type", or has no "object" object; an invalid object inside a valid event is not an error of
/// the event (see WatchEvent::decoded).
WatchEvent decode_event(std::string_view line,
                        std::string_view default_namespace = kDefaultNamespace);

}  // namespace knit::watcher
