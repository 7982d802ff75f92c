#include "apiserver.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace knit::test {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

struct Resource {
  const char* path;
  const char* kind;
  const char* api_version;
  bool namespaced;
};

constexpr Resource kResources[4] = {
    {"/api/v1/namespaces", "Namespace", "v1", false},
    {"/api/v1/pods", "Pod", "v1", true},
    {"/apis/networking.k8s.io/v1/networkpolicies", "NetworkPolicy", "networking.k8s.io/v1", true},
    {"/api/v1/nodes", "Node", "v1", false},
};

int resource_of_kind(std::string_view kind) {
  for (int i = 0; i < 4; ++i) {
    if (kind == kResources[i].kind) return i;
  }
  throw std::invalid_argument("ApiServer: unknown kind " + std::string(kind));
}

int resource_of_path(std::string_view path) {
  for (int i = 0; i < 4; ++i) {
    if (path == kResources[i].path) return i;
  }
  return -1;
}

std::string key_of(const json& obj) {
  auto m = obj.value("metadata", json::object());
  return m.value("namespace", std::string()) + "/" + m.value("name", std::string());
}

/// A watch event line as the API server writes it: type first.
std::string event_line(const char* type, const json& object) {
  return std::string("{\"type\":\"") + type + "\",\"object\":" + object.dump() + "}";
}

std::string status_body(int code, const std::string& reason, const std::string& message) {
  return json{{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", json::object()},
              {"status", "Failure"}, {"message", message}, {"reason", reason},
              {"code", code}}
      .dump();
}

const char* reason_phrase(int code) {
  switch (code) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 410:
      return "Gone";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

std::string url_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i] == '+' ? ' ' : s[i]);
    }
  }
  return out;
}

std::map<std::string, std::string> parse_query(std::string_view q) {
  std::map<std::string, std::string> out;
  while (!q.empty()) {
    auto amp = q.find('&');
    auto kv = q.substr(0, amp);
    auto eq = kv.find('=');
    out[url_decode(kv.substr(0, eq))] =
        eq == std::string_view::npos ? std::string() : url_decode(kv.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return out;
}

uint64_t to_u64(const std::string& s, uint64_t fallback) {
  try {
    return s.empty() ? fallback : std::stoull(s);
  } catch (const std::exception&) {
    return fallback;
  }
}

}  // namespace

struct ApiServer::Conn {
  int fd = -1;
  SSL* ssl = nullptr;
  std::atomic<bool> closing{false};
  std::atomic<bool> done{false};
  std::thread thread;
  std::string in;

  ~Conn() {
    if (ssl) SSL_free(ssl);
    if (fd >= 0) ::close(fd);
  }
  ssize_t read(char* buf, size_t n) {
    if (ssl) return SSL_read(ssl, buf, static_cast<int>(n));
    return ::recv(fd, buf, n, 0);
  }
  bool write(std::string_view s) {
    while (!s.empty()) {
      ssize_t n = ssl ? SSL_write(ssl, s.data(), static_cast<int>(s.size()))
                      : ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
      if (n <= 0) {
        if (!ssl && n < 0 && errno == EINTR) continue;
        return false;
      }
      s.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  bool chunk(std::string_view s) {
    char head[24];
    snprintf(head, sizeof head, "%zx\r\n", s.size());
    return write(std::string(head) + std::string(s) + "\r\n");
  }
  /// True when the client has closed its side (or the socket failed).
  bool peer_gone() const {
    pollfd p{fd, POLLRDHUP, 0};
    return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
  }
  void abort() {
    closing = true;
    ::shutdown(fd, SHUT_RDWR);
  }
};

ApiServer::ApiServer() : ApiServer(Options{}) {}

ApiServer::ApiServer(Options options) : opt_(std::move(options)) {
  signal(SIGPIPE, SIG_IGN);
  if (!opt_.cert_file.empty()) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, opt_.cert_file.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, opt_.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      throw std::runtime_error("ApiServer: cannot load the TLS certificate or key");
    }
    if (!opt_.client_ca_file.empty()) {
      if (SSL_CTX_load_verify_locations(ctx, opt_.client_ca_file.c_str(), nullptr) != 1) {
        throw std::runtime_error("ApiServer: cannot load the client CA");
      }
      SSL_CTX_set_client_CA_list(ctx, SSL_load_client_CA_file(opt_.client_ca_file.c_str()));
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    ssl_ctx_ = ctx;
  }
  if (pipe2(wake_, O_CLOEXEC) != 0) throw std::runtime_error("ApiServer: pipe failed");
  port_ = opt_.port;
  start();
}

ApiServer::~ApiServer() {
  stop();
  if (ssl_ctx_) SSL_CTX_free(static_cast<SSL_CTX*>(ssl_ctx_));
  ::close(wake_[0]);
  ::close(wake_[1]);
}

std::string ApiServer::url() const {
  return std::string(ssl_ctx_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_);
}

void ApiServer::listen_now() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port_);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 64) != 0) {
    int err = errno;
    ::close(fd);
    throw std::runtime_error(std::string("ApiServer: listen on 127.0.0.1: ") + strerror(err));
  }
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  listen_fd_ = fd;
}

void ApiServer::start() {
  if (running_) return;
  listen_now();
  running_ = true;
  acceptor_ = std::thread([this] { accept_loop(); });
}

void ApiServer::stop() {
  if (!running_) return;
  running_ = false;
  char c = 1;
  (void)!::write(wake_[1], &c, 1);
  acceptor_.join();
  (void)!::read(wake_[0], &c, 1);
  ::close(listen_fd_);
  listen_fd_ = -1;
  close_all_connections();
}

void ApiServer::drop_connections() {
  close_all_connections();
}

void ApiServer::close_all_connections() {
  std::list<std::unique_ptr<Conn>> conns;
  {
    std::lock_guard g(mu_);
    for (auto& c : conns_) c->abort();
    conns.swap(conns_);
  }
  cv_.notify_all();
  for (auto& c : conns) c->thread.join();
}

void ApiServer::accept_loop() {
  for (;;) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) continue;
    if (p[1].revents) return;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::list<std::unique_ptr<Conn>> finished;
    std::lock_guard g(mu_);
    for (auto it = conns_.begin(); it != conns_.end();) {
      if ((*it)->done) {
        finished.push_back(std::move(*it));
        it = conns_.erase(it);
      } else {
        ++it;
      }
    }
    auto c = std::make_unique<Conn>();
    c->fd = fd;
    Conn* raw = c.get();
    conns_.push_back(std::move(c));
    raw->thread = std::thread([this, raw] {
      serve(*raw);
      raw->done = true;
    });
    for (auto& f : finished) f->thread.join();  // already ended
  }
}

void ApiServer::serve(Conn& c) {
  if (ssl_ctx_) {
    c.ssl = SSL_new(static_cast<SSL_CTX*>(ssl_ctx_));
    SSL_set_fd(c.ssl, c.fd);
    if (SSL_accept(c.ssl) != 1) return;
  }
  char buf[16384];
  for (;;) {
    size_t end;
    while ((end = c.in.find("\r\n\r\n")) == std::string::npos) {
      ssize_t n = c.read(buf, sizeof buf);
      if (n <= 0 || c.closing) return;
      c.in.append(buf, static_cast<size_t>(n));
      if (c.in.size() > 65536) return;
    }
    std::string head = c.in.substr(0, end);
    c.in.erase(0, end + 4);
    auto line_end = head.find("\r\n");
    std::string request_line = head.substr(0, line_end);
    auto sp1 = request_line.find(' ');
    auto sp2 = request_line.find(' ', sp1 + 1);
    if (sp1 == std::string::npos || sp2 == std::string::npos) return;
    std::string auth;
    size_t pos = line_end;
    while (pos != std::string::npos && pos < head.size()) {
      auto next = head.find("\r\n", pos + 2);
      std::string h =
          head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
      auto colon = h.find(':');
      if (colon != std::string::npos) {
        std::string name = h.substr(0, colon);
        std::transform(name.begin(), name.end(), name.begin(), ::tolower);
        if (name == "authorization") {
          auth = h.substr(colon + 1);
          auth.erase(0, auth.find_first_not_of(' '));
        }
      }
      pos = next;
    }
    if (!handle(c, request_line.substr(0, sp1), request_line.substr(sp1 + 1, sp2 - sp1 - 1),
                auth)) {
      return;
    }
  }
}

namespace {
bool respond(ApiServer*, auto& c, int code, const std::string& body) {
  std::string head =
      "HTTP/1.1 " + std::to_string(code) + " " + reason_phrase(code) +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n";
  return c.write(head + body);
}
}  // namespace

bool ApiServer::handle(Conn& c, const std::string& method, const std::string& target,
                       const std::string& auth) {
  {
    std::lock_guard g(mu_);
    requests_.push_back(target);
  }
  if (auto d = header_delay_.load(); d > 0) {
    auto until = Clock::now() + std::chrono::milliseconds(d);
    while (Clock::now() < until && !c.closing) std::this_thread::sleep_for(5ms);
  }
  if (c.closing) return false;
  {
    std::unique_lock l(mu_);
    if (!opt_.token.empty() && auth != "Bearer " + opt_.token) {
      l.unlock();
      return respond(this, c, 401, status_body(401, "Unauthorized", "Unauthorized"));
    }
    if (fail_count_ > 0) {
      --fail_count_;
      int code = fail_status_;
      l.unlock();
      return respond(this, c, code, status_body(code, "InternalError", "injected failure"));
    }
  }
  auto q = target.find('?');
  int res = resource_of_path(std::string_view(target).substr(0, q));
  if (res < 0)
    return respond(
        this, c, 404,
        status_body(404, "NotFound", "the server could not find the requested resource"));
  if (method != "GET") return respond(this, c, 405, status_body(405, "MethodNotAllowed", method));
  auto query = parse_query(q == std::string::npos ? std::string_view()
                                                  : std::string_view(target).substr(q + 1));
  auto w = query.find("watch");
  if (w != query.end() && (w->second == "true" || w->second == "1")) return watch(c, res, query);
  return list(c, res, query);
}

bool ApiServer::list(Conn& c, int res, const std::map<std::string, std::string>& q) {
  const Resource& r = kResources[res];
  uint64_t limit = to_u64(q.count("limit") ? q.at("limit") : "", 0);
  std::string cont = q.count("continue") ? q.at("continue") : "";
  std::string body;
  {
    std::lock_guard g(mu_);
    Snapshot fresh;
    const Snapshot* s = nullptr;
    uint64_t offset = 0;
    if (!cont.empty()) {
      auto colon = cont.find(':');
      uint64_t id = to_u64(cont.substr(0, colon), 0);
      offset = colon == std::string::npos ? 0 : to_u64(cont.substr(colon + 1), 0);
      auto it = snapshots_.find(id);
      if (it == snapshots_.end() || it->second.rv < compacted_ || it->second.resource != res) {
        body = status_body(410, "Expired",
                           "The provided continue parameter is too old to display a consistent "
                           "list result. You can start a new list without the continue parameter.");
      } else {
        s = &it->second;
      }
    } else {
      fresh.rv = rv_;
      fresh.resource = res;
      fresh.items.reserve(objects_[res].size());
      for (const auto& [key, stored] : objects_[res]) fresh.items.push_back(stored.item);
      s = &fresh;
    }
    if (!s) return respond(this, c, 410, body);
    uint64_t end =
        limit == 0 ? s->items.size() : std::min<uint64_t>(s->items.size(), offset + limit);
    std::string next;
    if (end < s->items.size()) {
      uint64_t id;
      if (s == &fresh) {
        id = next_snapshot_++;
        s = &(snapshots_[id] = std::move(fresh));
      } else {
        id = to_u64(cont.substr(0, cont.find(':')), 0);
      }
      next = std::to_string(id) + ":" + std::to_string(end);
    }
    // Members in the order the real server writes them: metadata before items.
    json meta{{"resourceVersion", std::to_string(s->rv)}};
    if (!next.empty()) {
      meta["continue"] = next;
      meta["remainingItemCount"] = s->items.size() - end;
    }
    body = std::string("{\"kind\":\"") + r.kind + "List\",\"apiVersion\":\"" + r.api_version +
           "\",\"metadata\":" + meta.dump() + ",\"items\":[";
    size_t size = body.size() + 2;
    for (uint64_t i = offset; i < end; ++i) size += s->items[i]->size() + 1;
    body.reserve(size);
    for (uint64_t i = offset; i < end; ++i) {
      if (i > offset) body += ',';
      body += *s->items[i];
    }
    body += "]}";
  }
  return respond(this, c, 200, body);
}

bool ApiServer::watch(Conn& c, int res, const std::map<std::string, std::string>& q) {
  const Resource& r = kResources[res];
  bool bookmarks = q.count("allowWatchBookmarks") && q.at("allowWatchBookmarks") == "true";
  auto timeout =
      std::chrono::seconds(to_u64(q.count("timeoutSeconds") ? q.at("timeoutSeconds") : "", 3600));
  const std::string chunked =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
  size_t idx;
  uint64_t my_bookmark, my_cut;
  {
    std::unique_lock l(mu_);
    uint64_t from = to_u64(q.count("resourceVersion") ? q.at("resourceVersion") : "", rv_);
    if (from < compacted_) {
      std::string msg = "too old resource version: " + std::to_string(from) + " (" +
                        std::to_string(compacted_) + ")";
      l.unlock();
      if (!gone_as_event_) return respond(this, c, 410, status_body(410, "Gone", msg));
      auto ev = event_line("ERROR", json::parse(status_body(410, "Expired", msg)));
      return c.write(chunked) && c.chunk(ev + "\n") && c.write("0\r\n\r\n");
    }
    idx =
        static_cast<size_t>(std::upper_bound(history_.begin(), history_.end(), from,
                                             [](uint64_t v, const Event& e) { return v < e.rv; }) -
                            history_.begin());
    my_bookmark = bookmark_epoch_;
    my_cut = cut_epoch_;
    ++watches_[res];
  }
  struct Leave {
    ApiServer* s;
    int res;
    bool cut = false;
    ~Leave() {
      {
        std::lock_guard g(s->mu_);
        --s->watches_[res];
      }
      if (cut) ++s->cuts_done_;
    }
  } leave{this, res};
  if (!c.write(chunked)) return false;
  auto deadline = Clock::now() + timeout;
  bool cut = false;
  for (;;) {
    std::vector<std::string> lines;
    {
      std::unique_lock l(mu_);
      cv_.wait_until(l, std::min(deadline, Clock::now() + 100ms), [&] {
        return idx < history_.size() || bookmark_epoch_ != my_bookmark || cut_epoch_ != my_cut ||
               c.closing;
      });
      for (; idx < history_.size(); ++idx) {
        if (history_[idx].resource == res) lines.push_back(history_[idx].line);
      }
      if (bookmark_epoch_ != my_bookmark) {
        my_bookmark = bookmark_epoch_;
        if (bookmarks) {
          json obj{{"kind", r.kind},
                   {"apiVersion", r.api_version},
                   {"metadata", {{"resourceVersion", std::to_string(rv_)}}}};
          lines.push_back(event_line("BOOKMARK", obj));
        }
      }
      if (cut_epoch_ != my_cut) {
        my_cut = cut_epoch_;
        cut = true;
      }
    }
    for (auto& line : lines) {
      if (auto d = line_delay_.load(); d > 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(d));
      if (c.closing) return false;
      line += '\n';
      if (cut) {
        // A chunk announced whole, half of it sent, then the connection closed.
        char head[24];
        snprintf(head, sizeof head, "%zx\r\n", line.size());
        c.write(std::string(head) + line.substr(0, line.size() / 2));
        std::this_thread::sleep_for(20ms);  // let the half arrive on its own
        c.abort();
        leave.cut = true;
        return false;
      }
      if (!c.chunk(line)) return false;
      if (line.starts_with("{\"type\":\"BOOKMARK\"")) ++bookmarks_sent_;
    }
    if (c.closing || c.peer_gone()) return false;
    if (Clock::now() >= deadline) return c.write("0\r\n\r\n");
  }
}

uint64_t ApiServer::record(int res, const char* type, const json& object) {
  history_.push_back({rv_, res, event_line(type, object)});
  cv_.notify_all();
  return rv_;
}

uint64_t ApiServer::put(json object) {
  int res = resource_of_kind(object.value("kind", std::string()));
  std::lock_guard g(mu_);
  auto& meta = object["metadata"];
  if (!meta.is_object()) meta = json::object();
  meta["resourceVersion"] = std::to_string(++rv_);
  if (!meta.contains("uid")) meta["uid"] = "uid-" + std::to_string(rv_);
  std::string key = key_of(object);
  auto& slot = objects_[res][key];
  const char* type = slot.object.is_null() ? "ADDED" : "MODIFIED";
  json item = object;
  item.erase("kind");
  item.erase("apiVersion");
  slot.item = std::make_shared<const std::string>(item.dump());
  slot.object = object;
  return record(res, type, object);
}

uint64_t ApiServer::remove(std::string_view kind, std::string_view ns, std::string_view name) {
  int res = resource_of_kind(kind);
  std::lock_guard g(mu_);
  auto it = objects_[res].find(std::string(ns) + "/" + std::string(name));
  if (it == objects_[res].end()) return 0;
  json object = std::move(it->second.object);
  objects_[res].erase(it);
  object["metadata"]["resourceVersion"] = std::to_string(++rv_);
  return record(res, "DELETED", object);
}

std::vector<json> ApiServer::objects(std::string_view kind) const {
  int res = resource_of_kind(kind);
  std::lock_guard g(mu_);
  std::vector<json> out;
  for (const auto& [k, v] : objects_[res]) out.push_back(v.object);
  return out;
}

uint64_t ApiServer::resource_version() const {
  std::lock_guard g(mu_);
  return rv_;
}

void ApiServer::compact() {
  std::lock_guard g(mu_);
  compacted_ = rv_;
}

void ApiServer::bookmark() {
  {
    std::lock_guard g(mu_);
    ++bookmark_epoch_;
  }
  cv_.notify_all();
}

void ApiServer::send_raw(std::string_view kind, std::string line) {
  int res = resource_of_kind(kind);
  std::lock_guard g(mu_);
  ++rv_;
  history_.push_back({rv_, res, std::move(line)});
  cv_.notify_all();
}

void ApiServer::cut_next_event() {
  {
    std::lock_guard g(mu_);
    ++cut_epoch_;
  }
  cv_.notify_all();
}

void ApiServer::set_token(std::string token) {
  std::lock_guard g(mu_);
  opt_.token = std::move(token);
}

void ApiServer::fail_next(int n, int status) {
  std::lock_guard g(mu_);
  fail_count_ = n;
  fail_status_ = status;
}

std::vector<std::string> ApiServer::requests() const {
  std::lock_guard g(mu_);
  return requests_;
}

size_t ApiServer::active_watches(std::string_view kind) const {
  std::lock_guard g(mu_);
  if (!kind.empty()) return watches_[resource_of_kind(kind)];
  return watches_[0] + watches_[1] + watches_[2] + watches_[3];
}

}  // namespace knit::test
