// watcher/api_source.hpp: Namespaces, Pods, NetworkPolicies and Nodes from the Kubernetes API.
//
// Approach: one worker thread per kind, each running the reflector loop of client-go in plain
// sequential code: list (paginated, limit/continue, at the latest resourceVersion), then watch
// from the list's resourceVersion with bookmarks, re-watching from the last resourceVersion seen
// whenever a watch ends. A thread per kind keeps each loop a straight line of blocking calls
// (list, watch, sleep) that is easy to read and to test; four threads are cheap, and a slow or
// failing kind never delays another. Each worker has its own HTTP client and kept-alive
// connection (http_client.hpp), which stop() wakes at once, even in the middle of an idle
// watch.
//
// The agent's loop is single-threaded: workers hand it ApiEvents through one mutex-protected
// queue and an eventfd that is readable while the queue may hold events. The source keeps no
// copy of the objects: a list becomes one Replace event holding every object of the kind (the
// agent swaps its map), and watch events become Upsert and Delete events. Only decoded objects
// (k8s_types.hpp) travel; JSON never leaves the worker.
//
// Faults, as client-go handles them:
//  - 410 Gone (HTTP status on watch start, or an ERROR event with code 410 in the stream): list
//    again at once and send Replace;
//  - a watch that ends cleanly (the server's timeoutSeconds, drawn from [t, 1.25 t] so that
//    watches of many agents spread out) is restarted at once from the last resourceVersion;
//  - a connection that fails, drops mid-stream (a partial last line is discarded: that event is
//    delivered again by the next watch), or answers 5xx/429/4xx: wait with exponential backoff
//    (backoff_min doubling up to backoff_max, each delay drawn from [d/2, d]), then re-watch from
//    the last resourceVersion (or list again when no list has completed yet);
//  - BOOKMARK events only advance the resourceVersion, so a re-watch after a quiet period starts
//    recent enough not to be expired.
// A malformed object (in a list, or in an ADDED/MODIFIED event) is logged with its name and the
// offending field and treated as absent: left out of Replace, and a Delete of its name in a
// watch, so the agent's view is the same whichever way it learnt of the object. A line that is
// not a watch event is logged and skipped. Nothing stops a stream but the stream itself.
//
// For an https:// server, libssl is loaded at run time (tls_loader.hpp); constructing the
// ApiSource is what loads it. A plain http:// source never does.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "watcher/k8s_decode.hpp"
#include "watcher/kubeconfig.hpp"

namespace knit::watcher {

enum class ApiEventType : uint8_t {
  kUpsert,   ///< an object was added or changed: objects holds it
  kDelete,   ///< the object named by ref is gone (or became malformed): forget it
  kReplace,  ///< a (re)list completed: objects holds every object of the kind; forget the rest
  kSynced,   ///< the kind's first list completed (sent once per kind, right after its Replace)
};

std::string_view to_string(ApiEventType t);  ///< "Upsert", "Delete", "Replace", "Synced"

struct ApiEvent {
  Kind kind = Kind::kOther;
  ApiEventType type = ApiEventType::kUpsert;
  /// Upsert: the object, as the one element of the kind's vector. Replace: every object of the
  /// kind. Delete, Synced: empty. errors and ignored are always empty (they were logged).
  Decoded objects;
  /// Upsert, Delete: the object's identity (namespace_ empty for Namespaces and Nodes).
  ObjectRef ref;
};

/// Counters for /metrics, per kind or summed. Monotonic over the source's life.
struct ApiStats {
  uint64_t lists = 0;           ///< completed lists (first lists included)
  uint64_t relists = 0;         ///< lists after the first of their kind (410 Gone, errors)
  uint64_t watch_restarts = 0;  ///< watches started after one ended, for any reason
  uint64_t errors = 0;          ///< failed requests, HTTP errors, cut streams, unreadable lines
  uint64_t skipped = 0;         ///< malformed objects left out
  uint64_t events = 0;          ///< ApiEvents queued
};

struct ApiSourceOptions {
  /// The kinds to list and watch (the agent needs all four; tests may take fewer).
  std::vector<Kind> kinds = {Kind::kNamespace, Kind::kPod, Kind::kNetworkPolicy, Kind::kNode};
  unsigned page_size = 500;                      ///< limit= of list requests
  std::chrono::seconds watch_timeout{300};       ///< timeoutSeconds, jittered up to +25%
  std::chrono::milliseconds backoff_min{250};    ///< first delay after a failure
  std::chrono::milliseconds backoff_max{30000};  ///< cap of the doubling delay
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds list_timeout{60000};  ///< whole list page request
  std::chrono::seconds token_refresh{60};         ///< re-read of ApiConfig::token_file
};

class ApiSource {
 public:
  /// Starts one worker per kind of `options.kinds`, which connect at once. Throws
  /// Error(kInvalidConfig) when the server URL, the CA, the client certificate or the key cannot
  /// be used (http_client.hpp), Error(kNotAvailable) when an https:// server needs libssl and it
  /// cannot be loaded (tls_loader.hpp), Error(kIo) when an eventfd or a thread cannot be
  /// created. Connection failures, TLS handshakes and certificate checks included, are not
  /// errors of the constructor: workers retry with backoff and log each failure.
  ApiSource(ApiConfig config, ApiSourceOptions options = {});
  /// stop()s.
  ~ApiSource();
  ApiSource(const ApiSource&) = delete;
  ApiSource& operator=(const ApiSource&) = delete;

  /// An eventfd (non-blocking, close-on-exec), readable when events may be queued; poll it for
  /// EPOLLIN and call drain(). Owned by the source; valid until destruction.
  int fd() const noexcept;

  /// Every queued event in order (per kind, the order the API server sent them; kinds
  /// interleave arbitrarily), emptying the queue and resetting fd(). Never blocks; may return
  /// nothing. Thread-safe.
  std::vector<ApiEvent> drain();

  /// The counters of one kind (zero for a kind not watched), or of all kinds. Thread-safe.
  ApiStats stats(Kind kind) const;
  ApiStats stats() const;

  /// Stops and joins the workers, aborting requests in flight (returns within milliseconds).
  /// Idempotent. Events queued before are still returned by drain().
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---- Building blocks (pure; exposed for tests) --------------------------------------------

/// The collection path of `kind` on the API server: "/api/v1/pods",
/// "/apis/networking.k8s.io/v1/networkpolicies", ...; empty for Kind::kOther.
std::string_view api_path(Kind kind);

/// The resource name of `kind`, as in URLs and in the agent's metrics labels: "pods",
/// "namespaces", "networkpolicies", "nodes"; empty for Kind::kOther.
std::string_view api_resource(Kind kind);

/// metadata.continue of a list response body (the token for the next page), or empty when
/// absent, null, or the body is not a JSON object. Reads only the top-level metadata and skips
/// other members without parsing them, so it costs little next to decoding the page.
std::string list_continue(std::string_view body);

/// The exponential backoff of the workers: next() returns a delay in [d/2, d], where d starts
/// at `min` and doubles after each call up to `max`; reset() starts over.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds min, std::chrono::milliseconds max, uint64_t seed);
  std::chrono::milliseconds next();
  void reset() noexcept { step_ = min_; }

 private:
  std::chrono::milliseconds min_, max_, step_;
  uint64_t state_;
};

}  // namespace knit::watcher
