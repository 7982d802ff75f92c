#include "watcher/metrics.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>

#include "conf/agent_config.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/str.hpp"

namespace knit::watcher {

namespace {

enum Type : int { kCounter = 0, kGauge = 1, kHistogram = 2 };
constexpr std::string_view kTypeNames[] = {"counter", "gauge", "histogram"};

bool valid_name(std::string_view s, bool colon) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':') ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

/// A sample value as Prometheus' parsers read it: integers without a fraction, +Inf, NaN.
std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return str(static_cast<int64_t>(v));
  // Shortest round-trip digits, fixed notation unless the exponent is below -4 or large, as
  // Go's strconv 'g' -1 writes them (so bucket bounds read "0.0005", the form clients use).
  // The shortest of %.1g..%.17g that reads back exactly: glibc's printf, which the binary links
  // anyway, instead of std::to_chars(double) and its ~120 KB of tables.
  char buf[32];
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

void escape_label_value(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
}

std::string escape_help(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

/// `a="x",b="y"` (no braces), with an extra label appended when given (histogram `le`).
std::string label_text(const MetricLabels& labels, std::string_view extra_name = {},
                       std::string_view extra_value = {}) {
  std::string out;
  for (const auto& [k, v] : labels) {
    if (!out.empty()) out += ',';
    out += k;
    out += "=\"";
    escape_label_value(out, v);
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!out.empty()) out += ',';
    out += str(extra_name, "=\"", extra_value, '"');
  }
  return out;
}

void sample(std::string& out, std::string_view name, std::string_view labels, double v) {
  out += name;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  out += ' ';
  out += number(v);
  out += '\n';
}

}  // namespace

// --- values -------------------------------------------------------------------------------------

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  if (!std::is_sorted(bounds_.begin(), bounds_.end()) ||
      std::adjacent_find(bounds_.begin(), bounds_.end()) != bounds_.end()) {
    fail(Code::kInternal, "histogram buckets must increase");
  }
  counts_.assign(bounds_.size() + 1, 0);
}

void Histogram::observe(double v) {
  size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  ++counts_[i];
  sum_ += v;
  ++count_;
}

// --- registry -----------------------------------------------------------------------------------

struct Metrics::Series {
  MetricLabels labels;
  Counter counter;
  Gauge gauge;
  std::optional<Histogram> histogram;
};

struct Metrics::Family {
  std::string name;
  std::string help;
  int type = kCounter;
  std::map<std::string, std::unique_ptr<Series>> series;  ///< by label text
};

Metrics::Metrics() = default;
Metrics::~Metrics() = default;

Metrics::Family& Metrics::family(std::string_view name, std::string_view help, int type) {
  for (auto& f : families_) {
    if (f->name != name) continue;
    if (f->type != type) {
      fail(Code::kInternal, str("metric ", name, " is a ", kTypeNames[f->type], ", not a ",
                                kTypeNames[type]));
    }
    return *f;
  }
  if (!valid_name(name, true)) fail(Code::kInternal, str("invalid metric name \"", name, "\""));
  auto f = std::make_unique<Family>();
  f->name = std::string(name);
  f->help = std::string(help);
  f->type = type;
  families_.push_back(std::move(f));
  return *families_.back();
}

Metrics::Series& Metrics::series(Family& f, const MetricLabels& labels) {
  std::string key = label_text(labels);
  auto it = f.series.find(key);
  if (it != f.series.end()) return *it->second;
  for (const auto& [k, v] : labels) {
    if (!valid_name(k, false) || k.starts_with("__") || (f.type == kHistogram && k == "le")) {
      fail(Code::kInternal, str("invalid label name \"", k, "\" on ", f.name));
    }
  }
  auto s = std::make_unique<Series>();
  s->labels = labels;
  return *f.series.emplace(std::move(key), std::move(s)).first->second;
}

Counter& Metrics::counter(std::string_view name, std::string_view help, const MetricLabels& labels) {
  return series(family(name, help, kCounter), labels).counter;
}

Gauge& Metrics::gauge(std::string_view name, std::string_view help, const MetricLabels& labels) {
  return series(family(name, help, kGauge), labels).gauge;
}

Histogram& Metrics::histogram(std::string_view name, std::string_view help,
                              std::span<const double> bounds, const MetricLabels& labels) {
  Series& s = series(family(name, help, kHistogram), labels);
  if (!s.histogram) s.histogram.emplace(std::vector<double>(bounds.begin(), bounds.end()));
  return *s.histogram;
}

bool Metrics::remove(std::string_view name, const MetricLabels& labels) {
  for (auto& f : families_)
    if (f->name == name) return f->series.erase(label_text(labels)) > 0;
  return false;
}

void Metrics::retain(std::string_view name, const std::vector<MetricLabels>& keep) {
  for (auto& f : families_) {
    if (f->name != name) continue;
    std::vector<std::string> keys;
    keys.reserve(keep.size());
    for (const auto& l : keep) keys.push_back(label_text(l));
    std::sort(keys.begin(), keys.end());
    std::erase_if(f->series, [&](const auto& kv) {
      return !std::binary_search(keys.begin(), keys.end(), kv.first);
    });
  }
}

std::string Metrics::render() const {
  std::string out;
  for (const auto& f : families_) {
    if (f->series.empty()) continue;
    out += str("# HELP ", f->name, ' ', escape_help(f->help), '\n');
    out += str("# TYPE ", f->name, ' ', kTypeNames[f->type], '\n');
    for (const auto& [key, s] : f->series) {
      if (f->type == kCounter) {
        sample(out, f->name, key, s->counter.value());
      } else if (f->type == kGauge) {
        sample(out, f->name, key, s->gauge.value());
      } else {
        const Histogram& h = *s->histogram;
        std::string bucket = str(f->name, "_bucket");
        uint64_t cumulative = 0;
        for (size_t i = 0; i < h.bounds().size(); ++i) {
          cumulative += h.counts()[i];
          sample(out, bucket, label_text(s->labels, "le", number(h.bounds()[i])),
                 static_cast<double>(cumulative));
        }
        sample(out, bucket, label_text(s->labels, "le", "+Inf"), static_cast<double>(h.count()));
        sample(out, str(f->name, "_sum"), key, h.sum());
        sample(out, str(f->name, "_count"), key, static_cast<double>(h.count()));
      }
    }
  }
  return out;
}

// --- the agent's metric set ---------------------------------------------------------------------

namespace {
constexpr std::string_view kSetElementsHelp = "Elements in knit's nftables sets and maps, by kind.";
constexpr std::string_view kWatchRestartsHelp =
    "Watches of the Kubernetes API opened again after they ended or failed, by resource.";
constexpr std::string_view kRelistsHelp =
    "Full lists from the Kubernetes API (start-up, 410 Gone, resync), by resource.";
constexpr std::string_view kPolicyPacketsName = "knit_policy_packets_total";
constexpr std::string_view kPolicyPacketsHelp =
    "Packets by namespace, policy and verdict from nftables counters: allow (a policy's rules "
    "allowed it), drop (no policy allowed it; policy empty).";
}  // namespace

AgentMetrics::AgentMetrics()
    : syncs(registry.counter("knit_syncs_total",
                             "Syncs committed to the kernel, one nftables transaction each.")),
      sync_errors(registry.counter("knit_sync_errors_total",
                                   "Syncs that failed; each is retried with backoff.")),
      sync_duration(registry.histogram("knit_sync_duration_seconds",
                                       "Time to compile, plan and commit one sync.", kSyncBuckets)),
      rules(registry.gauge("knit_rules", "Rules in knit's nftables table.")),
      conntrack_revoked(registry.counter(
          "knit_conntrack_revoked_total",
          "Established connections cut because a policy change no longer allows them.")),
      pods_local(registry.gauge("knit_pods_local", "Pods attached on this node.")),
      policies_refused(registry.gauge(
          "knit_policies_refused",
          "NetworkPolicies the kernel refused; each is enforced as deny-all for the pods it "
          "selects until it changes or the kernel takes it (checked at every resync).")) {
  for (std::string_view kind : {"addrs", "tuples", "ports", "maps"}) set_elements(kind);
  for (std::string_view r : kWatchedResources) {
    api_watch_restarts(r);
    api_relists(r);
  }
}

Gauge& AgentMetrics::set_elements(std::string_view kind) {
  return registry.gauge("knit_set_elements", kSetElementsHelp, {{"kind", std::string(kind)}});
}

Counter& AgentMetrics::api_watch_restarts(std::string_view resource) {
  return registry.counter("knit_api_watch_restarts_total", kWatchRestartsHelp,
                          {{"resource", std::string(resource)}});
}

Counter& AgentMetrics::api_relists(std::string_view resource) {
  return registry.counter("knit_api_relists_total", kRelistsHelp,
                          {{"resource", std::string(resource)}});
}

void AgentMetrics::set_policy_packets(const std::vector<PolicyPackets>& counts) {
  std::vector<MetricLabels> keep;
  keep.reserve(counts.size());
  for (const auto& c : counts) {
    MetricLabels l{{"namespace", c.ns}, {"policy", c.policy}, {"verdict", c.verdict}};
    registry.counter(kPolicyPacketsName, kPolicyPacketsHelp, l).set(static_cast<double>(c.packets));
    keep.push_back(std::move(l));
  }
  registry.retain(kPolicyPacketsName, keep);
}

// --- health -------------------------------------------------------------------------------------

void Health::set_synced(bool synced, std::string waiting_for) {
  synced_ = synced;
  waiting_for_ = std::move(waiting_for);
}

void Health::set_last_apply(std::string error) { last_error_ = std::move(error); }

std::optional<std::string> Health::problem() const {
  if (!synced_) {
    return waiting_for_.empty() ? std::string("not synced yet")
                                : str("not synced: waiting for ", waiting_for_);
  }
  if (!last_error_.empty()) return str("last apply failed: ", last_error_);
  return std::nullopt;
}

// --- HTTP ---------------------------------------------------------------------------------------

std::string HttpResponse::wire() const {
  std::string_view reason = status == 200   ? "OK"
                            : status == 400 ? "Bad Request"
                            : status == 404 ? "Not Found"
                            : status == 405 ? "Method Not Allowed"
                            : status == 431 ? "Request Header Fields Too Large"
                            : status == 503 ? "Service Unavailable"
                                            : "Error";
  std::string out = str("HTTP/1.1 ", status, ' ', reason, "\r\nContent-Type: ", content_type,
                        "\r\nContent-Length: ", body.size(), "\r\n");
  if (status == 405) out += "Allow: GET, HEAD\r\n";
  out += "Connection: close\r\n\r\n";
  if (!head) out += body;
  return out;
}

HttpResponse respond(std::string_view request_head, const Metrics& metrics, const Health& health) {
  HttpResponse r;
  std::string_view line = request_head.substr(0, request_head.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  auto parts = split(line, ' ');
  if (parts.size() != 3 || !parts[2].starts_with("HTTP/1.") || parts[1].empty() ||
      parts[1][0] != '/') {
    r.status = 400;
    r.body = "bad request\n";
    return r;
  }
  std::string_view method = parts[0];
  std::string_view path = parts[1].substr(0, parts[1].find('?'));
  if (method != "GET" && method != "HEAD") {
    r.status = 405;
    r.body = "only GET and HEAD\n";
    return r;
  }
  r.head = method == "HEAD";
  if (path == "/metrics") {
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = metrics.render();
  } else if (path == "/healthz" || path == "/readyz") {
    if (auto p = health.problem()) {
      r.status = 503;
      r.body = str(*p, '\n');
    } else {
      r.body = "ok\n";
    }
  } else if (path == "/livez") {
    r.body = "ok\n";
  } else {
    r.status = 404;
    r.body = "not found (try /metrics, /healthz, /readyz, /livez)\n";
  }
  return r;
}

// --- the server ---------------------------------------------------------------------------------

using Clock = std::chrono::steady_clock;

struct MetricsServer::Conn {
  Fd fd;
  std::string in;
  std::string out;
  size_t sent = 0;
  bool writing = false;
  Clock::time_point deadline;
};

namespace {
void epoll_add(int ep, int fd, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  sys_check(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), "epoll_ctl metrics server");
}
}  // namespace

MetricsServer::MetricsServer(std::string_view address, const Metrics& metrics, const Health& health)
    : metrics_(metrics), health_(health) {
  auto a = conf::parse_listen_address(address);
  if (!a) fail(Code::kInvalidConfig, str("metrics address \"", address, "\" is not IP:port"));
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (a->ip.is_v4()) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(a->port);
    std::memcpy(&sin->sin_addr, a->ip.data(), 4);
    len = sizeof *sin;
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(a->port);
    std::memcpy(&sin6->sin6_addr, a->ip.data(), 16);
    len = sizeof *sin6;
  }
  int family = a->ip.is_v4() ? AF_INET : AF_INET6;
  listen_ = Fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!listen_) fail_errno(Code::kIo, str("socket for metrics on ", address), errno);
  int one = 1;
  setsockopt(listen_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (family == AF_INET6) setsockopt(listen_.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(listen_.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
      ::listen(listen_.get(), 16) != 0) {
    fail_errno(Code::kIo, str("listen on ", address), errno);
  }
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  sys_check(getsockname(listen_.get(), reinterpret_cast<sockaddr*>(&bound), &blen), "getsockname");
  port_ = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                  : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);

  epoll_ = Fd(sys_check(epoll_create1(EPOLL_CLOEXEC), "epoll_create1"));
  timer_ = Fd(sys_check(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC), "timerfd_create"));
  epoll_add(epoll_.get(), listen_.get(), EPOLLIN);
  epoll_add(epoll_.get(), timer_.get(), EPOLLIN);
}

MetricsServer::~MetricsServer() = default;

void MetricsServer::on_readable() {
  epoll_event evs[32];
  int n = epoll_wait(epoll_.get(), evs, 32, 0);
  if (n < 0) {
    if (errno != EINTR) log::every("metrics-epoll", std::chrono::seconds(60), log::Level::kWarn,
                                   str("metrics server: epoll_wait: ", std::strerror(errno)));
    return;
  }
  for (int i = 0; i < n; ++i) {
    int fd = evs[i].data.fd;
    if (fd == listen_.get()) {
      accept_all();
    } else if (fd == timer_.get()) {
      uint64_t ticks;
      (void)::read(timer_.get(), &ticks, sizeof ticks);
      expire();
    } else if (conns_.count(fd) != 0) {  // closed earlier in this round: its event is stale
      on_conn(fd, evs[i].events);
    }
  }
}

void MetricsServer::accept_all() {
  for (;;) {
    int fd = ::accept4(listen_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        log::every("metrics-accept", std::chrono::seconds(60), log::Level::kWarn,
                   str("metrics server: accept: ", std::strerror(errno)));
      }
      break;
    }
    if (conns_.size() >= kMaxConnections) {
      auto oldest = std::min_element(conns_.begin(), conns_.end(), [](const auto& a, const auto& b) {
        return a.second->deadline < b.second->deadline;
      });
      close_conn(oldest->first);
    }
    auto c = std::make_unique<Conn>();
    c->fd = Fd(fd);
    c->deadline = Clock::now() + kIdleTimeout;
    epoll_add(epoll_.get(), fd, EPOLLIN | EPOLLRDHUP);
    conns_.emplace(fd, std::move(c));
  }
  arm_timer();
}

void MetricsServer::on_conn(int fd, uint32_t events) {
  Conn& c = *conns_.at(fd);
  if (c.writing) {
    if (events & (EPOLLERR | EPOLLHUP)) return close_conn(fd);
    return flush(c);
  }
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return close_conn(fd);
    }
    if (n == 0) return close_conn(fd);  // closed before a whole request head
    c.in.append(buf, static_cast<size_t>(n));
    c.deadline = Clock::now() + kIdleTimeout;
    if (c.in.size() > kMaxRequest) break;
  }
  size_t end = c.in.find("\r\n\r\n");
  if (end == std::string::npos) end = c.in.find("\n\n");
  HttpResponse r;
  if (end != std::string::npos) {
    if (before_respond_) before_respond_();
    r = respond(std::string_view(c.in).substr(0, end), metrics_, health_);
  } else if (c.in.size() > kMaxRequest) {
    r.status = 431;
    r.body = "request header too large\n";
  } else {
    return;  // wait for the rest of the head
  }
  c.out = r.wire();
  c.writing = true;
  ::shutdown(fd, SHUT_RD);
  flush(c);
}

void MetricsServer::flush(Conn& c) {
  int fd = c.fd.get();
  while (c.sent < c.out.size()) {
    ssize_t n = ::send(fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        epoll_event ev{};
        ev.events = EPOLLOUT;
        ev.data.fd = fd;
        epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev);
        return;
      }
      return close_conn(fd);
    }
    c.sent += static_cast<size_t>(n);
    c.deadline = Clock::now() + kIdleTimeout;  // idle means no progress, not a slow download
  }
  close_conn(fd);
}

void MetricsServer::close_conn(int fd) {
  epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  conns_.erase(fd);
  arm_timer();
}

void MetricsServer::expire() {
  auto now = Clock::now();
  std::vector<int> doomed;
  for (const auto& [fd, c] : conns_)
    if (c->deadline <= now) doomed.push_back(fd);
  for (int fd : doomed) close_conn(fd);
  arm_timer();
}

void MetricsServer::arm_timer() {
  itimerspec its{};
  if (!conns_.empty()) {
    auto earliest = Clock::time_point::max();
    for (const auto& [fd, c] : conns_) earliest = std::min(earliest, c->deadline);
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(earliest - Clock::now()).count();
    if (ns < 1000000) ns = 1000000;
    its.it_value.tv_sec = static_cast<time_t>(ns / 1000000000);
    its.it_value.tv_nsec = static_cast<long>(ns % 1000000000);
  }
  timerfd_settime(timer_.get(), 0, &its, nullptr);
}

}  // namespace knit::watcher
