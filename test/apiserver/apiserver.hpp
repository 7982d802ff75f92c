// test/apiserver/apiserver.hpp: a Kubernetes API server for tests, speaking the real protocol.
//
// What the agent's API source relies on, served from memory over HTTP/1.1 (or HTTPS with a
// client-certificate check) on 127.0.0.1 of the namespace of the thread that creates it:
//  - GET <collection>?limit=&continue=: a list at a consistent snapshot (kind FooList,
//    metadata.resourceVersion, metadata.continue while items remain), items without kind and
//    apiVersion as typed lists have them; an expired continue token (snapshot older than the
//    last compact()) is 410 ResourceExpired;
//  - GET <collection>?watch=true&resourceVersion=R&timeoutSeconds=T&allowWatchBookmarks=true: a
//    chunked stream of {"type":...,"object":{...}} lines with every change after R, ended
//    cleanly after T; R older than the last compact() is 410 Gone, either as the HTTP status or
//    as an ERROR event in a 200 stream (gone_as_event), as the real server does either way;
//  - a global resourceVersion bumped by every change (like etcd's revision), objects stamped
//    with it, uid defaulted.
// Collections: /api/v1/namespaces, /api/v1/pods, /apis/networking.k8s.io/v1/networkpolicies,
// /api/v1/nodes. A watch without resourceVersion starts at "now" (no synthetic ADDED events).
//
// Faults a test can inject: cut every open watch in the middle of its next event
// (cut_next_event), drop every connection, stop and start again on the same port (with or
// without compact()), delay responses before the headers and between watch lines, fail the next
// N requests with a status, send a raw line, require a bearer token. requests() records every
// request target, so a test can check what a client asked for.
//
// Thread-per-connection and blocking sockets: simple, and plenty for tests.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace knit::test {

class ApiServer {
 public:
  struct Options {
    /// HTTPS: PEM files of the server's certificate (chain) and key. Empty: plain HTTP.
    std::string cert_file;
    std::string key_file;
    /// HTTPS: when set, clients must present a certificate signed by this CA.
    std::string client_ca_file;
    /// When set, requests must carry "Authorization: Bearer <token>" (else 401).
    std::string token;
    uint16_t port = 0;  ///< 0: any free port
  };

  ApiServer();
  explicit ApiServer(Options options);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  uint16_t port() const { return port_; }
  /// "http://127.0.0.1:<port>" or "https://...".
  std::string url() const;

  // ---- State ------------------------------------------------------------------------------
  /// Creates or replaces `object` (its kind picks the collection; namespaced kinds need
  /// metadata.namespace). Stamps a new resourceVersion (returned) and a uid when absent, and
  /// sends ADDED or MODIFIED to the watches. The object is not validated: malformed objects are
  /// what some tests need.
  uint64_t put(nlohmann::json object);
  /// Deletes an object (DELETED with its last state and a new resourceVersion). Returns the new
  /// resourceVersion, or 0 when there was no such object.
  uint64_t remove(std::string_view kind, std::string_view namespace_, std::string_view name);
  /// The objects of `kind` now, as stored (with kind and apiVersion), sorted by namespace/name.
  std::vector<nlohmann::json> objects(std::string_view kind) const;
  /// The current global resourceVersion.
  uint64_t resource_version() const;
  /// From now on, watches from resourceVersions older than the current one, and continue
  /// tokens of earlier lists, are 410 Gone (etcd compaction).
  void compact();
  /// Sends a BOOKMARK at the current resourceVersion to every watch that allowed bookmarks.
  void bookmark();
  /// Sends `line` (plus "\n") verbatim to every watch of `kind`, as if it were an event, and
  /// bumps the resourceVersion (so a re-watch from before it sends it again).
  void send_raw(std::string_view kind, std::string line);

  // ---- Faults -----------------------------------------------------------------------------
  /// Every watch open now sends only the first half of its next event, then closes the
  /// connection abruptly (no terminating chunk).
  void cut_next_event();
  /// Closes every client connection now (the listener stays).
  void drop_connections();
  /// Stops listening and closes every connection: clients see "connection refused".
  void stop();
  /// Listens again on the same port.
  void start();
  /// Waits this long before sending response headers (every request).
  void set_header_delay(std::chrono::milliseconds d) { header_delay_ = d.count(); }
  /// Waits this long before each line of a watch stream.
  void set_line_delay(std::chrono::milliseconds d) { line_delay_ = d.count(); }
  /// Requires "Authorization: Bearer <token>" from now on (empty: no check).
  void set_token(std::string token);
  /// The next `n` requests are answered with HTTP `status` (a Status body).
  void fail_next(int n, int status);
  /// 410 on watch start as an ERROR event in a 200 stream (true) or as HTTP 410 (false).
  void set_gone_as_event(bool v) { gone_as_event_ = v; }

  // ---- Observation ------------------------------------------------------------------------
  /// Every request target ("/api/v1/pods?limit=500"), in arrival order.
  std::vector<std::string> requests() const;
  /// Watches being served now for `kind` (all kinds when empty).
  size_t active_watches(std::string_view kind = {}) const;
  /// Watches cut by cut_next_event() so far (counted once the watch has ended).
  size_t cuts_done() const { return cuts_done_; }
  /// BOOKMARK lines written to clients so far.
  size_t bookmarks_sent() const { return bookmarks_sent_; }

 private:
  struct Conn;
  struct Event {
    uint64_t rv;
    int resource;
    std::string line;  // the whole event line, without "\n"
  };
  struct Snapshot {
    uint64_t rv;
    int resource;
    std::vector<std::shared_ptr<const std::string>> items;  // serialized list items
  };
  /// An object as stored, and as a list item (without kind and apiVersion), serialized once at
  /// put(), so that a list of 10k pods copies pointers, not documents.
  struct Stored {
    nlohmann::json object;
    std::shared_ptr<const std::string> item;
  };

  void listen_now();
  void accept_loop();
  void serve(Conn& c);
  bool handle(Conn& c, const std::string& method, const std::string& target,
              const std::string& auth);
  bool watch(Conn& c, int resource, const std::map<std::string, std::string>& q);
  bool list(Conn& c, int resource, const std::map<std::string, std::string>& q);
  uint64_t record(int resource, const char* type, const nlohmann::json& object);
  void close_all_connections();

  Options opt_;
  void* ssl_ctx_ = nullptr;  // SSL_CTX*
  uint16_t port_ = 0;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  std::thread acceptor_;
  bool running_ = false;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Stored> objects_[4];  // per resource, by "ns/name"
  std::vector<Event> history_;
  uint64_t rv_ = 1000;
  uint64_t compacted_ = 0;
  uint64_t bookmark_epoch_ = 0;
  uint64_t cut_epoch_ = 0;
  uint64_t next_snapshot_ = 1;
  std::map<uint64_t, Snapshot> snapshots_;
  std::vector<std::string> requests_;
  int fail_count_ = 0;
  int fail_status_ = 500;
  size_t watches_[4] = {0, 0, 0, 0};
  std::list<std::unique_ptr<Conn>> conns_;

  std::atomic<int64_t> header_delay_{0};
  std::atomic<int64_t> line_delay_{0};
  std::atomic<bool> gone_as_event_{false};
  std::atomic<size_t> bookmarks_sent_{0};
  std::atomic<size_t> cuts_done_{0};
};

}  // namespace knit::test
