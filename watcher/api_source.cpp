#include "watcher/api_source.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
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
#include "watcher/curl_loader.hpp"

namespace knit::watcher {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr size_t kMaxBody = 256u << 20;  // a list page or an error body
constexpr size_t kMaxLine = 64u << 20;   // one watch event
/// Extra time a watch request may take beyond its timeoutSeconds before libcurl gives up on a
/// server that never ends it.
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
  const CurlApi& api;
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

/// One kind's list-and-watch loop on its own thread and libcurl handles.
class ApiSource::Impl::Worker {
 public:
  Worker(Impl& src, Kind kind);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void start() {
    thread_ = std::thread([this] { run(); });
  }
  void wake() { api_.multi_wakeup(multi_); }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  enum class WatchEnd { kTimeout, kGone, kFailed, kStopped };
  struct Result {
    CURLcode code = CURLE_OK;
    long status = 0;
  };

  void run();
  bool list();
  WatchEnd watch();
  /// GETs `url`: into body_ or, for a 200 stream, line by line into on_line(). Returns when the
  /// transfer ends or stop() is called (code CURLE_ABORTED_BY_CALLBACK).
  Result get(const std::string& url, milliseconds timeout, bool stream);
  /// get() in two halves: begin() sends the request (as far as libcurl gets without waiting),
  /// finish() waits for the response. In between the response arrives into the socket's
  /// buffer while the worker does something else (list() decodes the previous page).
  void begin(const std::string& url, milliseconds timeout, bool stream);
  Result finish();
  /// Ends a begun transfer without waiting for it (nothing when none is in flight).
  void abandon();
  static size_t on_data(char* data, size_t size, size_t n, void* self);
  size_t on_data(std::string_view data);
  void on_line(std::string_view line, std::vector<ApiEvent>& out);
  std::string escape(const std::string& s);
  std::string transfer_error(const Result& r) const;
  Counters& counters() { return src_.counters[static_cast<int>(kind_)]; }
  void count_error() { ++counters().errors; }

  // One function per argument type that libcurl reads (long, pointer, callback): the
  // variadic curl_easy_setopt must get exactly that type.
  void set(CURLoption o, long v) { check(o, api_.easy_setopt(easy_, o, v)); }
  void set(CURLoption o, const void* v) { check(o, api_.easy_setopt(easy_, o, v)); }
  void set(CURLoption o, curl_write_callback v) { check(o, api_.easy_setopt(easy_, o, v)); }
  void set(CURLoption o, curl_sockopt_callback v) { check(o, api_.easy_setopt(easy_, o, v)); }
  static int on_socket(void* self, curl_socket_t fd, curlsocktype purpose);
  void set_blob(CURLoption o, const std::string& pem) {
    curl_blob blob{const_cast<char*>(pem.data()), pem.size(), CURL_BLOB_COPY};
    set(o, &blob);
  }
  void check(CURLoption o, CURLcode rc) const;

  Impl& src_;
  const CurlApi& api_;
  Kind kind_;
  std::string_view what_;  // "pods"
  CURL* easy_ = nullptr;
  CURLM* multi_ = nullptr;
  char errbuf_[CURL_ERROR_SIZE] = {};
  Backoff backoff_;
  uint64_t rng_;
  std::thread thread_;

  std::string rv_;       // where the next watch starts; empty: list first
  bool listed_ = false;  // a first list has completed (Synced sent)

  // Per transfer.
  curl_slist* headers_ = nullptr;
  bool in_flight_ = false;  // begun and not yet finished
  bool stream_ = false;
  bool status_known_ = false;
  long status_ = 0;
  std::string body_;
  std::string line_;
  size_t scanned_ = 0;  // bytes of line_ known to hold no newline
  size_t lines_ = 0;
  bool gone_ = false;    // ERROR 410 seen
  bool failed_ = false;  // ERROR other than 410, or a line too long (logged)
};

ApiSource::Impl::Worker::Worker(Impl& src, Kind kind)
    : src_(src),
      api_(src.api),
      kind_(kind),
      what_(api_resource(kind)),
      backoff_(src.options.backoff_min, src.options.backoff_max, random_seed()),
      rng_(random_seed()) {
  easy_ = api_.easy_init();
  multi_ = api_.multi_init();
  if (!easy_ || !multi_) fail(Code::kNotAvailable, "create libcurl handles: out of memory");
  const ApiConfig& c = src_.config;
  const ApiSourceOptions& o = src_.options;
  set(CURLOPT_NOSIGNAL, 1L);
  set(CURLOPT_ERRORBUFFER, errbuf_);
  set(CURLOPT_WRITEFUNCTION, static_cast<curl_write_callback>(&Worker::on_data));
  set(CURLOPT_WRITEDATA, static_cast<const void*>(this));
  set(CURLOPT_USERAGENT, "knit-agent");
  set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(o.connect_timeout.count()));
  // A watch is mostly silent. If the path to the API server dies (its address moved, a node
  // renumbered), nothing tells us: keepalive probes after 15 s of silence, every 5 s, give up
  // after 3 (on_socket), so a dead watch is noticed within ~30 s instead of the kernel's
  // default of 9 probes (2 min here), and TCP_USER_TIMEOUT bounds unacknowledged sends alike.
  set(CURLOPT_TCP_KEEPALIVE, 1L);
  set(CURLOPT_TCP_KEEPIDLE, 15L);
  set(CURLOPT_TCP_KEEPINTVL, 5L);
  set(CURLOPT_SOCKOPTFUNCTION, static_cast<curl_sockopt_callback>(&Worker::on_socket));
  set(CURLOPT_ACCEPT_ENCODING, "");  // whatever this libcurl can decode (gzip for big lists)
  if (!c.ca_pem.empty()) {
    set_blob(CURLOPT_CAINFO_BLOB, c.ca_pem);
  } else if (!c.ca_file.empty()) {
    set(CURLOPT_CAINFO, c.ca_file.c_str());
  }
  if (c.insecure_skip_tls_verify) {
    set(CURLOPT_SSL_VERIFYPEER, 0L);
    set(CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (!c.cert_pem.empty()) {
    set(CURLOPT_SSLCERTTYPE, "PEM");
    set_blob(CURLOPT_SSLCERT_BLOB, c.cert_pem);
  } else if (!c.cert_file.empty()) {
    set(CURLOPT_SSLCERT, c.cert_file.c_str());
  }
  if (!c.key_pem.empty()) {
    set(CURLOPT_SSLKEYTYPE, "PEM");
    set_blob(CURLOPT_SSLKEY_BLOB, c.key_pem);
  } else if (!c.key_file.empty()) {
    set(CURLOPT_SSLKEY, c.key_file.c_str());
  }
}

void ApiSource::Impl::Worker::check(CURLoption o, CURLcode rc) const {
  if (rc != CURLE_OK) {
    fail(Code::kNotAvailable, str("configure libcurl option ", static_cast<int>(o), " for ",
                                  src_.config.server, ": ", api_.easy_strerror(rc)));
  }
}

ApiSource::Impl::Worker::~Worker() {
  join();
  if (in_flight_) api_.multi_remove_handle(multi_, easy_);
  if (easy_) api_.easy_cleanup(easy_);
  if (headers_) api_.slist_free_all(headers_);
  if (multi_) api_.multi_cleanup(multi_);
}

std::string ApiSource::Impl::Worker::escape(const std::string& s) {
  char* e = api_.easy_escape(easy_, s.data(), static_cast<int>(s.size()));
  if (!e) fail(Code::kInternal, "escape URL parameter: out of memory");
  std::string out(e);
  api_.free(e);
  return out;
}

int ApiSource::Impl::Worker::on_socket(void*, curl_socket_t fd, curlsocktype purpose) {
  if (purpose != CURLSOCKTYPE_IPCXN) return CURL_SOCKOPT_OK;
  int count = 3;
  unsigned int user_timeout_ms = 30000;
  // Best effort: a socket without them still works, only slower to notice a dead path.
  (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
  (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof user_timeout_ms);
  return CURL_SOCKOPT_OK;
}

size_t ApiSource::Impl::Worker::on_data(char* data, size_t size, size_t n, void* self) {
  return static_cast<Worker*>(self)->on_data(std::string_view(data, size * n));
}

size_t ApiSource::Impl::Worker::on_data(std::string_view data) {
  if (!status_known_) {
    api_.easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &status_);
    status_known_ = true;
    stream_ = stream_ && status_ == 200;
  }
  if (!stream_) {
    if (body_.size() + data.size() > kMaxBody) return 0;
    body_.append(data);
    return data.size();
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
  if (gone_ || failed_) return 0;  // abort: the server ends the stream after an ERROR anyway
  if (line_.size() > kMaxLine) {
    log::warn(
        str("api: watch ", what_, ": an event longer than ", kMaxLine, " bytes; reconnecting"));
    count_error();
    failed_ = true;
    return 0;
  }
  return data.size();
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

ApiSource::Impl::Worker::Result ApiSource::Impl::Worker::get(const std::string& url,
                                                             milliseconds timeout, bool stream) {
  begin(url, timeout, stream);
  return finish();
}

void ApiSource::Impl::Worker::begin(const std::string& url, milliseconds timeout, bool stream) {
  abandon();  // one transfer at a time; also frees headers left by a begin() that threw
  stream_ = stream;
  status_known_ = false;
  status_ = 0;
  body_.clear();
  line_.clear();
  scanned_ = 0;
  lines_ = 0;
  gone_ = failed_ = false;
  errbuf_[0] = '\0';

  headers_ = api_.slist_append(nullptr, "Accept: application/json");
  if (std::string token = src_.bearer(); !token.empty() && headers_) {
    auto h = api_.slist_append(headers_, str("Authorization: Bearer ", token).c_str());
    if (h) headers_ = h;
  }
  set(CURLOPT_URL, url.c_str());
  set(CURLOPT_HTTPHEADER, headers_);
  set(CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  api_.multi_add_handle(multi_, easy_);
  in_flight_ = true;
  // On a kept-alive connection one call writes the request; on a new one it starts connecting
  // and finish() does the rest.
  int running = 0;
  api_.multi_perform(multi_, &running);
}

ApiSource::Impl::Worker::Result ApiSource::Impl::Worker::finish() {
  Result r;
  for (bool done = false; !done;) {
    int running = 0;
    if (CURLMcode mc = api_.multi_perform(multi_, &running); mc != CURLM_OK) {
      log::warn(str("api: ", what_, ": libcurl: ", api_.multi_strerror(mc)));
      r.code = CURLE_FAILED_INIT;
      break;
    }
    int queued = 0;
    while (CURLMsg* m = api_.multi_info_read(multi_, &queued)) {
      if (m->msg == CURLMSG_DONE) {
        r.code = m->data.result;
        done = true;
      }
    }
    if (done) break;
    if (src_.stopping) {
      r.code = CURLE_ABORTED_BY_CALLBACK;
      break;
    }
    api_.multi_poll(multi_, nullptr, 0, 1000, nullptr);
  }
  abandon();
  api_.easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &r.status);
  if (r.status == 401) src_.token_rejected();
  return r;
}

void ApiSource::Impl::Worker::abandon() {
  if (in_flight_) api_.multi_remove_handle(multi_, easy_);
  in_flight_ = false;
  if (headers_) {
    set(CURLOPT_HTTPHEADER, static_cast<const void*>(nullptr));
    api_.slist_free_all(headers_);
    headers_ = nullptr;
  }
}

std::string ApiSource::Impl::Worker::transfer_error(const Result& r) const {
  if (r.code != CURLE_OK && r.code != CURLE_WRITE_ERROR) {
    return errbuf_[0] ? std::string(errbuf_) : std::string(api_.easy_strerror(r.code));
  }
  if (r.status != 200) return str("HTTP ", r.status, ' ', describe_status_body(body_));
  return api_.easy_strerror(r.code);
}

bool ApiSource::Impl::Worker::list() {
  Decoded all;
  std::string cont, rv;
  size_t pages = 0;
  const std::string base =
      str(src_.config.server, api_path(kind_), "?limit=", src_.options.page_size);
  auto started = Clock::now();
  Clock::duration decoding{};
  size_t bytes = 0;
  // The next page is asked for as soon as its continue token is known, before this one is
  // decoded: the server prepares it and the kernel buffers it meanwhile.
  begin(base, src_.options.list_timeout, false);
  for (;;) {
    Result r = finish();
    if (src_.stopping) return false;
    if (r.code != CURLE_OK || r.status != 200) {
      count_error();
      log::warn(str("api: list ", what_, " from ", src_.config.server, ": ", transfer_error(r)));
      return false;
    }
    std::string body = std::exchange(body_, {});
    bytes += body.size();
    cont = list_continue(body);
    if (!cont.empty()) {
      begin(str(base, "&continue=", escape(cont)), src_.options.list_timeout, false);
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
  std::string url = str(src_.config.server, api_path(kind_),
                        "?watch=true&allowWatchBookmarks=true&resourceVersion=", escape(rv_),
                        "&timeoutSeconds=", t);
  auto started = Clock::now();
  std::string from = rv_;
  Result r = get(url, std::chrono::seconds(t) + kWatchGrace, true);
  if (lines_ > 0) backoff_.reset();
  if (src_.stopping) return WatchEnd::kStopped;
  if (gone_) return WatchEnd::kGone;
  if (r.status == 410) {
    log::info(str("api: watch ", what_, " from resourceVersion ", from,
                  " expired (HTTP 410); listing again"));
    return WatchEnd::kGone;
  }
  if (failed_) return WatchEnd::kFailed;  // logged and counted
  if (r.code != CURLE_OK || r.status != 200) {
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
    : config(std::move(c)), options(std::move(o)), api(curl()) {
  efd = Fd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!efd) fail_errno(Code::kIo, "create eventfd for the API source", errno);
  token = config.token;
  token_read = token.empty() ? Clock::time_point() : Clock::now();
  for (Kind k : options.kinds) {
    if (api_path(k).empty()) continue;
    workers.push_back(std::make_unique<Worker>(*this, k));
  }
  log::info(str("api: watching ", config.server, " (", config.origin,
                config.origin.empty() ? "" : "; ", api.version, ')'));
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
