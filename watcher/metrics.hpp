// watcher/metrics.hpp: the agent's metrics, its health, and the small HTTP server for both.
//
// Three layers, as elsewhere: values (Metrics: counters, gauges and histograms in a registry,
// rendered in the Prometheus text exposition format 0.0.4), a pure decision (respond(): one
// request head in, one response out), and a thin server that owns sockets and nothing else.
//
// The server is single-threaded and never blocks: it hands the agent one file descriptor (its
// own epoll instance, holding the listening socket, the client connections and an idle timer)
// to add to the agent's epoll loop, and does its work in on_readable(). It answers one request
// per connection and closes it; a client that makes no progress for kIdleTimeout (sends nothing,
// or reads none of the answer), or sends more than kMaxRequest bytes of header, is dropped, and beyond kMaxConnections the oldest connection is
// closed, so a slow or hostile client costs a few kilobytes and never stalls the agent.
//
//   GET /metrics   Prometheus text format 0.0.4
//   GET /healthz   200 "ok" when the agent has synced and its last apply succeeded, else 503
//   GET /readyz    the same (the DaemonSet's readiness probe)
//   GET /livez     200 "ok" whenever the event loop answers (the liveness probe: restarting
//                  the agent does not help when the API server is away, so liveness must not
//                  depend on it)
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/fd.hpp"

namespace knit::watcher {

/// Label name/value pairs, in the order they are rendered.
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

/// A value that only goes up (or is reset when a kernel counter it mirrors is recreated).
class Counter {
 public:
  void inc(double by = 1) { value_ += by; }
  /// Mirrors an absolute count read elsewhere (an nftables named counter).
  void set(double v) { value_ = v; }
  double value() const { return value_; }

 private:
  double value_ = 0;
};

class Gauge {
 public:
  void set(double v) { value_ = v; }
  void add(double by) { value_ += by; }
  double value() const { return value_; }

 private:
  double value_ = 0;
};

class Histogram {
 public:
  /// `bounds`: the buckets' upper bounds, increasing; +Inf is implicit.
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  /// Per bucket, not cumulative; the last is the +Inf bucket.
  const std::vector<uint64_t>& counts() const { return counts_; }
  double sum() const { return sum_; }
  uint64_t count() const { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;
  double sum_ = 0;
  uint64_t count_ = 0;
};

/// Latency buckets for one sync (compile + plan + commit), in seconds: 0.5 ms to 10 s.
inline constexpr double kSyncBuckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                          0.1,    0.25,  0.5,    1,     2.5,  5,     10};

/// The registry. Series are created on first use and returned by reference; references stay
/// valid until remove() of that series or the registry's end. Families render in the order they
/// were declared, series within a family sorted by labels.
class Metrics {
 public:
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  /// The series `labels` of counter family `name`, created at 0 if new. Throws Error(kInternal)
  /// when `name` or a label name is not a valid Prometheus name, or `name` is already a family
  /// of another type (programming errors, found by the first test that runs the code).
  Counter& counter(std::string_view name, std::string_view help, const MetricLabels& labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, const MetricLabels& labels = {});
  /// `bounds` is used when the series is created (buckets of an existing series never change).
  Histogram& histogram(std::string_view name, std::string_view help,
                       std::span<const double> bounds, const MetricLabels& labels = {});

  /// Removes one series (a policy that is gone); the family stays. True when it existed.
  bool remove(std::string_view name, const MetricLabels& labels);
  /// Removes every series of family `name` whose labels are not in `keep`.
  void retain(std::string_view name, const std::vector<MetricLabels>& keep);

  /// The whole registry in the Prometheus text exposition format 0.0.4.
  std::string render() const;

 private:
  struct Family;
  struct Series;
  Family& family(std::string_view name, std::string_view help, int type);
  Series& series(Family& f, const MetricLabels& labels);
  std::vector<std::unique_ptr<Family>> families_;
};

/// One per-policy packet count, read from an nftables named counter.
struct PolicyPackets {
  std::string ns;
  std::string policy;
  std::string verdict;  ///< "accept" or "drop"
  uint64_t packets = 0;
};

/// The agent's metric set, declared up front so every series exists (at 0) from start-up, as
/// Prometheus expects of known label values.
class AgentMetrics {
 public:
  AgentMetrics();

  Metrics registry;
  Counter& syncs;              ///< knit_syncs_total: committed syncs
  Counter& sync_errors;        ///< knit_sync_errors_total: failed syncs (each retried)
  Histogram& sync_duration;    ///< knit_sync_duration_seconds
  Gauge& rules;                ///< knit_rules: rules in knit's table
  Counter& conntrack_revoked;  ///< knit_conntrack_revoked_total: connections cut
  Gauge& pods_local;           ///< knit_pods_local: pods attached on this node
  /// knit_policies_refused: policies the kernel refused, enforced as deny-all until they change
  Gauge& policies_refused;

  /// knit_set_elements{kind}: elements in knit's sets of one kind ("addrs", "tuples", "ports",
  /// "maps"; those four are pre-declared).
  Gauge& set_elements(std::string_view kind);
  /// knit_api_watch_restarts_total{resource}: watches re-opened (stream ended or failed).
  Counter& api_watch_restarts(std::string_view resource);
  /// knit_api_relists_total{resource}: full lists (start-up, 410 Gone, resync).
  Counter& api_relists(std::string_view resource);
  /// knit_policy_packets_total{namespace,policy,verdict}: replaces the whole family with
  /// `counts`, so a policy that is gone disappears from /metrics.
  void set_policy_packets(const std::vector<PolicyPackets>& counts);
};

/// Resources the agent watches: their watch and relist counters are pre-declared.
inline constexpr std::string_view kWatchedResources[] = {"pods", "namespaces", "networkpolicies",
                                                         "nodes"};

/// What /healthz and /readyz report.
class Health {
 public:
  /// Synced: every source delivered its first complete state and it was applied. While not,
  /// `waiting_for` says what for (e.g. "the first list of pods").
  void set_synced(bool synced, std::string waiting_for = {});
  /// The last apply's outcome: empty when it succeeded, else its error.
  void set_last_apply(std::string error);
  /// nullopt when healthy, else why not.
  std::optional<std::string> problem() const;

 private:
  bool synced_ = false;
  std::string waiting_for_;
  std::string last_error_;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  bool head = false;  ///< a HEAD request: the body is not sent, its length is
  /// The bytes on the wire: status line, headers (Content-Length, Connection: close), body.
  std::string wire() const;
};

/// The response to one request head (request line and headers, without the body). Pure.
HttpResponse respond(std::string_view request_head, const Metrics& metrics, const Health& health);

class MetricsServer {
 public:
  static constexpr std::chrono::milliseconds kIdleTimeout{5000};
  static constexpr size_t kMaxRequest = 8192;
  static constexpr size_t kMaxConnections = 16;

  /// Listens on `address` ("127.0.0.1:9740", "[::1]:9740"; port 0 picks one, see port()).
  /// `metrics` and `health` must outlive the server. Throws Error(kInvalidConfig) for a bad
  /// address, Error(kIo) when it cannot listen (the message names the address and errno, e.g.
  /// "listen on 127.0.0.1:9740: Address already in use").
  MetricsServer(std::string_view address, const Metrics& metrics, const Health& health);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  /// Readable (EPOLLIN) whenever on_readable() has work: add it to the agent's epoll set.
  int fd() const { return epoll_.get(); }
  /// Accepts, reads, answers and times out whatever is ready; never blocks.
  void on_readable();
  /// The port listened on.
  uint16_t port() const { return port_; }
  /// Called before each request is answered, to refresh values read on demand (the agent's
  /// nftables counters; it rate-limits the reads itself).
  void set_before_respond(std::function<void()> f) { before_respond_ = std::move(f); }

 private:
  struct Conn;
  void accept_all();
  void on_conn(int fd, uint32_t events);
  void flush(Conn& c);
  void close_conn(int fd);
  void expire();
  void arm_timer();

  const Metrics& metrics_;
  const Health& health_;
  std::function<void()> before_respond_;
  Fd epoll_, listen_, timer_;
  uint16_t port_ = 0;
  std::map<int, std::unique_ptr<Conn>> conns_;
};

}  // namespace knit::watcher
