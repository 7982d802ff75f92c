#include "watcher/api_source.hpp"

#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <system_error>
#include <thread>

#include "core/error.hpp"
#include "core/fd.hpp"
#include "core/log.hpp"
#include "core/str.hpp"
#include "watcher/http_client.hpp"

namespace knit::watcher {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr size_t kMaxBody = 256u << 20;  // a list page or an error body
constexpr size_t kMaxLine = 64u << 20;   // one watch event
/// Extra time a watch request may take beyond its timeoutSeconds before the client gives up on
/// a server that never ends it.
constexpr milliseconds kWatchGrace{30000};
/// A watch that ends cleanly sooner than this, having sent nothing, counts as a failure (a
/// server that closes at once must not make the worker spin).
constexpr milliseconds kMinWatch{1000};

// ---- JSON scanning for list_continue ------------------------------------------------------

size_t skip_ws(std::string_view s, size_t i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) ++i;
  return i;
}

/// Reads the string starting at s[i] == '"' into *out (when not null); returns the index past
/// the closing quote, or npos.
size_t read_string(std::string_view s, size_t i, std::string* out) {
  for (++i; i < s.size(); ++i) {
    char c = s[i];
    if (c == '"') return i + 1;
    if (c != '\\') {
      if (out) out->push_back(c);
      continue;
    }
    if (++i >= s.size()) return std::string_view::npos;
    if (!out) continue;
    switch (s[i]) {
      case 'b':
        out->push_back('\b');
        break;
      case 'f':
        out->push_back('\f');
        break;
      case 'n':
        out->push_back('\n');
        break;
      case 'r':
        out->push_back('\r');
        break;
      case 't':
        out->push_back('\t');
        break;
      case 'u': {
        unsigned cp = 0;
        if (i + 4 >= s.size()) return std::string_view::npos;
        for (int k = 1; k <= 4; ++k) {
          char h = static_cast<char>(s[i + k] | 0x20);
          cp = cp << 4 | static_cast<unsigned>(h <= '9' ? h - '0' : h - 'a' + 10);
        }
        i += 4;
        if (cp < 0x80) {
          out->push_back(static_cast<char>(cp));
        } else if (cp < 0x800) {
          out->push_back(static_cast<char>(0xc0 | cp >> 6));
          out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
        } else {
          out->push_back(static_cast<char>(0xe0 | cp >> 12));
          out->push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3f)));
          out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
        }
        break;
      }
      default:
        out->push_back(s[i]);  // " \ /
    }
  }
  return std::string_view::npos;
}

/// Skips the JSON value at s[i]; returns the index past it, or npos. Containers are skipped by
/// counting brackets outside strings, without checking what is inside.
size_t skip_value(std::string_view s, size_t i) {
  if (i >= s.size()) return std::string_view::npos;
  if (s[i] == '"') return read_string(s, i, nullptr);
  if (s[i] != '{' && s[i] != '[') {
    while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' &&
           s[i] != '\n' && s[i] != '\r' && s[i] != '\t') {
      ++i;
    }
    return i;
  }
  int depth = 0;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c == '"') {
      i = read_string(s, i, nullptr);
      if (i == std::string_view::npos) return i;
      --i;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if ((c == '}' || c == ']') && --depth == 0) {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

/// Calls `member(key, index of value)` for each member of the object at s[i] until it returns
/// npos-or-an-index-past-the-value; returns false on malformed input or when member stops.
template <class F>
bool for_each_member(std::string_view s, size_t i, F&& member) {
  constexpr size_t npos = std::string_view::npos;
  i = skip_ws(s, i);
  if (i >= s.size() || s[i] != '{') return false;
  i = skip_ws(s, i + 1);
  if (i < s.size() && s[i] == '}') return true;
  for (;;) {
    std::string key;
    if (i >= s.size() || s[i] != '"' || (i = read_string(s, i, &key)) == npos) return false;
    i = skip_ws(s, i);
    if (i >= s.size() || s[i] != ':') return false;
    i = member(key, skip_ws(s, i + 1));
    if (i == npos) return false;
    i = skip_ws(s, i);
    if (i >= s.size() || s[i] != ',') return i < s.size() && s[i] == '}';
    i = skip_ws(s, i + 1);
  }
}

// ---- Kinds --------------------------------------------------------------------------------

/// xorshift64*: jitter needs spread, not quality. `state` must not be 0.
uint64_t next_random(uint64_t& state) {
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return state * 0x2545F4914F6CDD1DULL;
}

uint64_t random_seed() {
  uint64_t s = 0;
  if (getrandom(&s, sizeof s, GRND_NONBLOCK) != sizeof s) {
    s = static_cast<uint64_t>(Clock::now().time_since_epoch().count()) ^ (uint64_t(gettid()) << 32);
  }
  return s | 1;
}

/// "Forbidden: pods is forbidden: ..." from a metav1.Status body, else the body's start.
std::string describe_status_body(std::string_view body) {
  auto j = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_object()) {
    auto reason = j.value("reason", std::string());
    auto message = j.value("message", std::string());
    if (!reason.empty() || !message.empty())
      return str(reason, reason.empty() ? "" : ": ", message);
  }
  return std::string(trim(body.substr(0, 200)));
}

}  // namespace

// ---- Public building blocks ---------------------------------------------------------------

std::string_view to_string(ApiEventType t) {
  switch (t) {
    case ApiEventType::kUpsert:
      return "Upsert";
    case ApiEventType::kDelete:
      return "Delete";
    case ApiEventType::kReplace:
      return "Replace";
    case ApiEventType::kSynced:
      return "Synced";
  }
  return "?";
}

std::string_view api_path(Kind kind) {
  switch (kind) {
    case Kind::kNamespace:
      return "/api/v1/namespaces";
    case Kind::kPod:
      return "/api/v1/pods";
    case Kind::kNetworkPolicy:
      return "/apis/networking.k8s.io/v1/networkpolicies";
    case Kind::kNode:
      return "/api/v1/nodes";
    case Kind::kOther:
      break;
  }
  return {};
}

std::string_view api_resource(Kind kind) {
  auto p = api_path(kind);
  return p.substr(p.rfind('/') + 1);
}

std::string list_continue(std::string_view body) {
  std::string token;
  for_each_member(body, 0, [&](const std::string& key, size_t i) {
    if (key != "metadata") return skip_value(body, i);
    for_each_member(body, i, [&](const std::string& k, size_t j) {
      if (k == "continue" && j < body.size() && body[j] == '"') {
        std::string t;
        if (read_string(body, j, &t) != std::string_view::npos) token = std::move(t);
        return std::string_view::npos;  // done
      }
      return skip_value(body, j);
    });
    return std::string_view::npos;  // metadata read: stop
  });
  return token;
}

Backoff::Backoff(milliseconds min, milliseconds max, uint64_t seed)
    : min_(min), max_(std::max(min, max)), step_(min), state_(seed | 1) {}

milliseconds Backoff::next() {
  uint64_t r = next_random(state_);
  auto d = step_.count();
  step_ = std::min(step_ * 2, max_);
  auto half = d / 2;
  return milliseconds(half + static_cast<int64_t>(r % static_cast<uint64_t>(d - half + 1)));
}

// ---- The source ---------------------------------------------------------------------------

struct ApiSource::Impl {
  class Worker;

  Impl(ApiConfig c, ApiSourceOptions o);
  ~Impl();

  void push(std::vector<ApiEvent>&& events);
  /// The bearer token to send, re-read from config.token_file when due.
  std::string bearer();
  /// After a 401: read the token file again before the next request.
  void token_rejected();
  /// Sleeps for `d` unless stopping; returns false when stopping.
  bool sleep(milliseconds d);
  void stop();

  ApiConfig config;
  ApiSourceOptions options;
  Url url;                                        // config.server
  std::shared_ptr<const TlsContext> tls_context;  // https: one for every worker
  HttpOptions http;
  Fd efd;

  std::mutex queue_mu;
  std::vector<ApiEvent> queue;

  std::atomic<bool> stopping{false};
  std::mutex sleep_mu;
  std::condition_variable sleep_cv;

  std::mutex token_mu;
  std::string token;
  Clock::time_point token_read;

  struct Counters {
    std::atomic<uint64_t> lists{0}, relists{0}, watch_restarts{0}, errors{0}, skipped{0}, events{0};
  };
  Counters counters[4];  // by Kind (kNamespace .. kNode)

  std::vector<std::unique_ptr<Worker>> workers;
};

/// One kind's list-and-watch loop on its own thread and HTTP connection.
class ApiSource::Impl::Worker {
 public:
  Worker(Impl& src, Kind kind);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void start() {
    thread_ = std::thread([this] { run(); });
  }
  void wake() { client_.wake(); }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  enum class WatchEnd { kTimeout, kGone, kFailed, kStopped };
  using Result = HttpResult;

  void run();
  bool list();
  WatchEnd watch();
  /// GETs `target` (path and query): into body_ or, for a 200 stream, line by line into
  /// on_line(). Returns when the transfer ends or stop() is called (kStopped).
  Result get(std::string target, milliseconds timeout, bool stream);
  /// get() in two halves: begin() sends the request when a connection is up (without
  /// waiting), finish() connects if needed and reads the response. In between the response
  /// arrives into the socket's buffer while the worker does something else (list() decodes
  /// the previous page).
  void begin(std::string target, milliseconds timeout, bool stream);
  Result finish();
  /// Ends a begun transfer without waiting for it (nothing when none is in flight).
  void abandon() { client_.abandon(); }
  /// The body callback: false stops the transfer (kAborted).
  bool on_data(std::string_view data);
  void on_line(std::string_view line, std::vector<ApiEvent>& out);
  std::string transfer_error(const Result& r) const;
  Counters& counters() { return src_.counters[static_cast<int>(kind_)]; }
  void count_error() { ++counters().errors; }

  Impl& src_;
  Kind kind_;
  std::string_view what_;  // "pods"
  HttpClient client_;
  Backoff backoff_;
  uint64_t rng_;
  std::thread thread_;

  std::string rv_;       // where the next watch starts; empty: list first
  bool listed_ = false;  // a first list has completed (Synced sent)

  // Per transfer.
  bool stream_ = false;
  bool status_known_ = false;
  int status_ = 0;
  bool too_big_ = false;  // a body over kMaxBody: aborted
  std::string body_;
  std::string line_;
  size_t scanned_ = 0;  // bytes of line_ known to hold no newline
  size_t lines_ = 0;
  bool gone_ = false;    // ERROR 410 seen
  bool failed_ = false;  // ERROR other than 410, or a line too long (logged)
};

ApiSource::Impl::Worker::Worker(Impl& src, Kind kind)
    : src_(src),
      kind_(kind),
      what_(api_resource(kind)),
      client_(src.url, src.tls_context, src.http),
      backoff_(src.options.backoff_min, src.options.backoff_max, random_seed()),
      rng_(random_seed()) {}

ApiSource::Impl::Worker::~Worker() {
  join();
}

bool ApiSource::Impl::Worker::on_data(std::string_view data) {
  if (!status_known_) {
    status_ = client_.status();
    status_known_ = true;
    stream_ = stream_ && status_ == 200;
  }
  if (!stream_) {
    if (body_.size() + data.size() > kMaxBody) {
      too_big_ = true;
      return false;
    }
    body_.append(data);
    return true;
  }
  line_.append(data);
  std::vector<ApiEvent> events;
  size_t start = 0;
  for (;;) {
    auto nl = line_.find('\n', std::max(start, scanned_));
    if (nl == std::string::npos) break;
    ++lines_;
    on_line(std::string_view(line_).substr(start, nl - start), events);
    start = nl + 1;
    if (gone_ || failed_) break;
  }
  line_.erase(0, start);
  scanned_ = line_.size();
  if (!events.empty()) src_.push(std::move(events));
  if (gone_ || failed_) return false;  // abort: the server ends the stream after an ERROR anyway
  if (line_.size() > kMaxLine) {
    log::warn(
        str("api: watch ", what_, ": an event longer than ", kMaxLine, " bytes; reconnecting"));
    count_error();
    failed_ = true;
    return false;
  }
  return true;
}

void ApiSource::Impl::Worker::on_line(std::string_view line, std::vector<ApiEvent>& out) {
  if (trim(line).empty()) return;
  WatchEvent ev;
  try {
    ev = decode_event(line);
  } catch (const Error& e) {
    log::warn(str("api: watch ", what_, ": skipped a line: ", e.what()));
    count_error();
    return;
  }
  switch (ev.type) {
    case EventType::kBookmark:
      if (!ev.resource_version.empty()) rv_ = std::move(ev.resource_version);
      return;
    case EventType::kError:
      if (ev.status.code == 410) {
        gone_ = true;
        log::info(str("api: watch ", what_, " from resourceVersion ", rv_, " expired (",
                      ev.status.reason, "); listing again"));
      } else {
        failed_ = true;
        count_error();
        log::warn(str("api: watch ", what_, ": ERROR event ", ev.status.code, ' ', ev.status.reason,
                      ": ", ev.status.message));
      }
      return;
    case EventType::kAdded:
    case EventType::kModified:
    case EventType::kDeleted:
      break;
  }
  if (ev.ref.kind != kind_) {
    log::warn(str("api: watch ", what_, ": skipped a ", to_string(ev.type), " event for a ",
                  to_string(ev.ref.kind), " object"));
    count_error();
    return;
  }
  ApiEvent a;
  a.kind = kind_;
  a.ref = std::move(ev.ref);
  if (ev.type == EventType::kDeleted) {
    a.type = ApiEventType::kDelete;
  } else if (ev.decoded.size() == 1) {  // of kind_: the decoder picks the type by ref.kind
    a.type = ApiEventType::kUpsert;
    a.objects = std::move(ev.decoded);
  } else {
    // Malformed: absent, as in a list (see the header). The decoder named the field.
    for (const auto& e : ev.decoded.errors) log::warn(str("api: skipped ", e));
    if (ev.decoded.errors.empty()) {
      log::warn(str("api: watch ", what_, ": skipped ", a.ref.namespace_, '/', a.ref.name,
                    ": not a ", to_string(kind_), " of the expected apiVersion"));
    }
    ++counters().skipped;
    a.type = ApiEventType::kDelete;
  }
  if (!ev.resource_version.empty()) rv_ = std::move(ev.resource_version);
  if (!a.ref.name.empty()) out.push_back(std::move(a));
}

ApiSource::Impl::Worker::Result ApiSource::Impl::Worker::get(std::string target,
                                                             milliseconds timeout, bool stream) {
  begin(std::move(target), timeout, stream);
  return finish();
}

void ApiSource::Impl::Worker::begin(std::string target, milliseconds timeout, bool stream) {
  abandon();  // one transfer at a time
  stream_ = stream;
  status_known_ = false;
  status_ = 0;
  too_big_ = false;
  body_.clear();
  line_.clear();
  scanned_ = 0;
  lines_ = 0;
  gone_ = failed_ = false;
  client_.begin({std::move(target), src_.bearer(), timeout});
}

ApiSource::Impl::Worker::Result ApiSource::Impl::Worker::finish() {
  Result r = client_.finish([this](std::string_view data) { return on_data(data); });
  if (r.status == 401) src_.token_rejected();
  return r;
}

std::string ApiSource::Impl::Worker::transfer_error(const Result& r) const {
  if (r.end == HttpResult::End::kFailed) return r.error;
  if (r.status != 200) return str("HTTP ", r.status, ' ', describe_status_body(body_));
  if (too_big_) return str("the response is larger than ", kMaxBody >> 20, " MiB");
  return "interrupted";
}

bool ApiSource::Impl::Worker::list() {
  Decoded all;
  std::string cont, rv;
  size_t pages = 0;
  const std::string base = str(api_path(kind_), "?limit=", src_.options.page_size);
  auto started = Clock::now();
  Clock::duration decoding{};
  size_t bytes = 0;
  // The next page is asked for as soon as its continue token is known, before this one is
  // decoded: the server prepares it and the kernel buffers it meanwhile.
  begin(base, src_.options.list_timeout, false);
  for (;;) {
    Result r = finish();
    if (src_.stopping) return false;
    if (r.end != HttpResult::End::kComplete || r.status != 200) {
      count_error();
      log::warn(str("api: list ", what_, " from ", src_.config.server, ": ", transfer_error(r)));
      return false;
    }
    std::string body = std::exchange(body_, {});
    bytes += body.size();
    cont = list_continue(body);
    if (!cont.empty()) {
      begin(str(base, "&continue=", percent_encode(cont)), src_.options.list_timeout, false);
    }
    Decoded page;
    auto decode_start = Clock::now();
    try {
      page = decode_json(body);
      decoding += Clock::now() - decode_start;
    } catch (const Error& e) {
      abandon();
      count_error();
      log::warn(str("api: list ", what_, ": ", e.what()));
      return false;
    }
    body = {};
    for (const auto& e : page.errors) log::warn(str("api: skipped ", e));
    counters().skipped += page.errors.size();
    page.errors.clear();
    page.ignored = 0;  // objects of other kinds: none on a typed collection
    if (!page.resource_version.empty()) rv = std::move(page.resource_version);
    all.merge(std::move(page));
    ++pages;
    if (cont.empty()) break;
  }
  if (rv.empty()) {
    count_error();
    log::warn(str("api: list ", what_, ": the response has no metadata.resourceVersion"));
    return false;
  }
  auto ms = [](Clock::duration d) { return std::chrono::duration_cast<milliseconds>(d).count(); };
  log::info(str("api: listed ", all.size(), ' ', what_, " at resourceVersion ", rv, " (", pages,
                pages == 1 ? " page, " : " pages, ", (bytes + 512) / 1024, " KiB in ",
                ms(Clock::now() - started), " ms, ", ms(decoding), " ms decoding)"));
  rv_ = std::move(rv);
  ++counters().lists;
  if (listed_) ++counters().relists;
  std::vector<ApiEvent> events(1);
  events[0].kind = kind_;
  events[0].type = ApiEventType::kReplace;
  events[0].objects = std::move(all);
  if (!listed_) {
    events.emplace_back();
    events[1].kind = kind_;
    events[1].type = ApiEventType::kSynced;
  }
  listed_ = true;
  src_.push(std::move(events));
  return true;
}

ApiSource::Impl::Worker::WatchEnd ApiSource::Impl::Worker::watch() {
  // timeoutSeconds in [t, 1.25 t], so that the watches of many agents do not end together.
  auto t = std::max<int64_t>(1, src_.options.watch_timeout.count());
  t += static_cast<int64_t>(next_random(rng_) % static_cast<uint64_t>(t / 4 + 1));
  std::string target = str(api_path(kind_), "?watch=true&allowWatchBookmarks=true&resourceVersion=",
                           percent_encode(rv_), "&timeoutSeconds=", t);
  auto started = Clock::now();
  std::string from = rv_;
  Result r = get(std::move(target), std::chrono::seconds(t) + kWatchGrace, true);
  if (lines_ > 0) backoff_.reset();
  if (src_.stopping) return WatchEnd::kStopped;
  if (gone_) return WatchEnd::kGone;
  if (r.status == 410) {
    log::info(str("api: watch ", what_, " from resourceVersion ", from,
                  " expired (HTTP 410); listing again"));
    return WatchEnd::kGone;
  }
  if (failed_) return WatchEnd::kFailed;  // logged and counted
  if (r.end != HttpResult::End::kComplete || r.status != 200) {
    count_error();
    log::warn(str("api: watch ", what_, " from ", src_.config.server, ": ", transfer_error(r),
                  lines_ ? str(" (after ", lines_, " event(s))") : std::string()));
    return WatchEnd::kFailed;
  }
  if (!line_.empty()) {
    count_error();
    log::warn(str("api: watch ", what_, ": the stream ended in the middle of an event"));
    return WatchEnd::kFailed;
  }
  if (lines_ == 0 && Clock::now() - started < kMinWatch) {
    count_error();
    log::warn(str("api: watch ", what_, ": the server ended the watch at once"));
    return WatchEnd::kFailed;
  }
  log::debug(
      str("api: watch ", what_, " ended after ", lines_, " event(s); watching again from ", rv_));
  return WatchEnd::kTimeout;
}

void ApiSource::Impl::Worker::run() {
  bool just_listed = false;
  while (!src_.stopping) {
    try {
      if (rv_.empty()) {
        if (!list()) {
          src_.sleep(backoff_.next());
          continue;
        }
        backoff_.reset();
        just_listed = true;
      }
      WatchEnd end = watch();
      bool fresh = std::exchange(just_listed, false);
      switch (end) {
        case WatchEnd::kStopped:
          return;
        case WatchEnd::kGone:
          rv_.clear();
          // Expired right after a list, with nothing in between: do not spin on such a server.
          if (fresh && lines_ == 0) src_.sleep(backoff_.next());
          break;
        case WatchEnd::kTimeout:
          ++counters().watch_restarts;
          break;
        case WatchEnd::kFailed:
          ++counters().watch_restarts;
          src_.sleep(backoff_.next());
          break;
      }
    } catch (const std::exception& e) {
      count_error();
      log::error(str("api: ", what_, ": ", e.what()));
      src_.sleep(backoff_.next());
    }
  }
}

ApiSource::Impl::Impl(ApiConfig c, ApiSourceOptions o)
    : config(std::move(c)), options(std::move(o)), url(parse_url(config.server)) {
  if (url.https) {
    tls_context = std::make_shared<TlsContext>(
        TlsConfig{config.ca_pem, config.ca_file, config.cert_pem, config.cert_file, config.key_pem,
                  config.key_file, config.insecure_skip_tls_verify});
  }
  http.connect_timeout = options.connect_timeout;
  // A watch is mostly silent. If the path to the API server dies (its address moved, a node
  // renumbered), nothing tells us: keepalive probes after 15 s of silence, every 5 s, give up
  // after 3, so a dead watch is noticed within ~30 s instead of the kernel's default of 9
  // probes (2 min here), and TCP_USER_TIMEOUT bounds unacknowledged sends alike.
  http.keepalive_idle = std::chrono::seconds(15);
  http.keepalive_interval = std::chrono::seconds(5);
  http.keepalive_count = 3;
  http.user_timeout = milliseconds(30000);
  efd = Fd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!efd) fail_errno(Code::kIo, "create eventfd for the API source", errno);
  token = config.token;
  token_read = token.empty() ? Clock::time_point() : Clock::now();
  for (Kind k : options.kinds) {
    if (api_path(k).empty()) continue;
    workers.push_back(std::make_unique<Worker>(*this, k));
  }
  log::info(str("api: watching ", config.server, " (", config.origin,
                config.origin.empty() ? "" : "; ", tls_context ? tls().version : "plain HTTP",
                ')'));
  try {
    for (auto& w : workers) w->start();
  } catch (const std::system_error& e) {
    stop();
    fail(Code::kIo, str("start the API source's threads: ", e.what()));
  }
}

ApiSource::Impl::~Impl() {
  stop();
}

void ApiSource::Impl::stop() {
  {
    std::lock_guard g(sleep_mu);
    stopping = true;
  }
  sleep_cv.notify_all();
  for (auto& w : workers) w->wake();
  for (auto& w : workers) w->join();
}

bool ApiSource::Impl::sleep(milliseconds d) {
  std::unique_lock l(sleep_mu);
  return !sleep_cv.wait_for(l, d, [&] { return stopping.load(); });
}

void ApiSource::Impl::push(std::vector<ApiEvent>&& events) {
  for (const auto& e : events) ++counters[static_cast<int>(e.kind)].events;
  {
    std::lock_guard g(queue_mu);
    if (queue.empty()) {
      queue = std::move(events);
    } else {
      for (auto& e : events) queue.push_back(std::move(e));
    }
  }
  uint64_t one = 1;
  (void)::write(efd.get(), &one, sizeof one);
}

std::string ApiSource::Impl::bearer() {
  std::lock_guard g(token_mu);
  if (!config.token_file.empty() && Clock::now() - token_read >= options.token_refresh) {
    token_read = Clock::now();
    try {
      token = read_token_file(config.token_file);
    } catch (const Error& e) {
      log::warn(str("api: ", e.what(), "; keeping the last token"));
    }
  }
  return token;
}

void ApiSource::Impl::token_rejected() {
  std::lock_guard g(token_mu);
  token_read = Clock::time_point();
}

ApiSource::ApiSource(ApiConfig config, ApiSourceOptions options)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(options))) {}

ApiSource::~ApiSource() = default;

int ApiSource::fd() const noexcept {
  return impl_->efd.get();
}

std::vector<ApiEvent> ApiSource::drain() {
  uint64_t n;
  (void)::read(impl_->efd.get(), &n, sizeof n);  // first, so that a later push re-arms it
  std::lock_guard g(impl_->queue_mu);
  return std::exchange(impl_->queue, {});
}

ApiStats ApiSource::stats(Kind kind) const {
  if (api_path(kind).empty()) return {};
  const auto& c = impl_->counters[static_cast<int>(kind)];
  return ApiStats{c.lists, c.relists, c.watch_restarts, c.errors, c.skipped, c.events};
}

ApiStats ApiSource::stats() const {
  ApiStats sum;
  for (Kind k : {Kind::kNamespace, Kind::kPod, Kind::kNetworkPolicy, Kind::kNode}) {
    ApiStats s = stats(k);
    sum.lists += s.lists;
    sum.relists += s.relists;
    sum.watch_restarts += s.watch_restarts;
    sum.errors += s.errors;
    sum.skipped += s.skipped;
    sum.events += s.events;
  }
  return sum;
}

void ApiSource::stop() {
  impl_->stop();
}

}  // namespace knit::watcher
