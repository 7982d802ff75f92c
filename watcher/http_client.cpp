#include "watcher/http_client.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <optional>
#include <vector>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/ip.hpp"
#include "core/str.hpp"

namespace knit::watcher {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

int hex_value(char c) {
  if (is_digit(c)) return c - '0';
  c = ascii_lower(c);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/// `s` for a message: quoted, at most 80 bytes, control bytes as '?'.
std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s.substr(0, 80)) out.push_back(c >= 0x20 && c != 0x7f ? c : '?');
  if (s.size() > 80) out += "...";
  out += '"';
  return out;
}

[[noreturn]] void bad_url(std::string_view url, std::string_view why) {
  fail(Code::kInvalidConfig, str("parse URL ", quoted(url), ": ", why));
}

}  // namespace

// ---- Url ----------------------------------------------------------------------------------

Url parse_url(std::string_view url) {
  Url u;
  std::string_view rest;
  if (url.starts_with("https://")) {
    u.https = true;
    rest = url.substr(8);
  } else if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else {
    bad_url(url, "not an http:// or https:// URL");
  }
  auto end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  if (end != std::string_view::npos) {
    std::string_view path = rest.substr(end);
    path = path.substr(0, path.find('#'));
    if (path.starts_with('?')) u.path = "/";
    u.path += path;
  }
  if (authority.find('@') != std::string_view::npos) {
    bad_url(url, "user information in the URL is not supported");
  }
  std::string_view port;
  if (authority.starts_with('[')) {
    auto close = authority.find(']');
    if (close == std::string_view::npos) bad_url(url, "no ']' after the IPv6 address");
    std::string_view ip = authority.substr(1, close - 1);
    auto addr = IpAddr::parse(ip);
    if (!addr || addr->is_v4()) bad_url(url, str(quoted(ip), " is not an IPv6 address"));
    u.host = ip;
    u.host_is_ip = true;
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') bad_url(url, "junk after the IPv6 address");
      port = after.substr(1);
      if (port.empty()) bad_url(url, "empty port");
    }
  } else {
    auto colon = authority.find(':');
    u.host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) bad_url(url, "empty port");
    }
    if (u.host.empty()) bad_url(url, "no host");
    for (char c : u.host) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' ||
                c == '.' || c == '_';
      if (!ok) bad_url(url, str("the host ", quoted(u.host), " is not a name or an address"));
    }
    auto addr = IpAddr::parse(u.host);
    u.host_is_ip = addr.has_value();
  }
  if (port.empty()) {
    u.port = u.https ? 443 : 80;
  } else {
    uint64_t p = 0;
    if (!parse_uint(port, p) || p == 0 || p > 65535) {
      bad_url(url, str("the port ", quoted(port), " is not a number in 1..65535"));
    }
    u.port = static_cast<uint16_t>(p);
  }
  return u;
}

std::string Url::authority() const {
  std::string h = host.find(':') != std::string::npos ? str('[', host, ']') : host;
  if (port != (https ? 443 : 80)) h += str(':', port);
  return h;
}

std::string Url::origin() const {
  std::string h = host.find(':') != std::string::npos ? str('[', host, ']') : host;
  return str(https ? "https://" : "http://", h, ':', port);
}

std::string percent_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' ||
                c == '.' || c == '_' || c == '~';
    if (keep) {
      out.push_back(c);
    } else {
      auto b = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 15]);
    }
  }
  return out;
}

// ---- ResponseParser -----------------------------------------------------------------------

ResponseParser::Step ResponseParser::next(std::string_view in) {
  size_t i = 0;
  for (;;) {
    switch (state_) {
      case State::kDone:
        return {Event::kDone, i, {}};
      case State::kFailed:
        return {Event::kError, i, {}};
      case State::kFixed:
      case State::kChunkData:
      case State::kToClose: {
        if (i == in.size()) return {Event::kNeedMore, i, {}};
        size_t n = in.size() - i;
        if (state_ != State::kToClose) {
          n = static_cast<size_t>(std::min<uint64_t>(n, remaining_));
          remaining_ -= n;
          if (remaining_ == 0) state_ = state_ == State::kFixed ? State::kDone : State::kChunkEnd;
        }
        std::string_view body = in.substr(i, n);
        return {Event::kBody, i + n, body};
      }
      case State::kStatus:
      case State::kHeader:
      case State::kChunkSize:
      case State::kChunkEnd:
      case State::kTrailer: {
        if (i == in.size()) return {Event::kNeedMore, i, {}};
        size_t nl = in.find('\n', i);
        size_t stop = nl == std::string_view::npos ? in.size() : nl + 1;
        size_t take = stop - i;
        bool head = state_ == State::kStatus || state_ == State::kHeader;
        if (state_ == State::kTrailer || head) {
          head_bytes_ += take;
          if (head_bytes_ > max_head_) {
            return fail(str(head ? "the response head" : "the trailer", " is longer than ",
                            max_head_, " bytes"),
                        stop);
          }
        } else if (line_.size() + take > max_head_) {
          return fail(str("a chunk line is longer than ", max_head_, " bytes"), stop);
        }
        line_.append(in.substr(i, take));
        i = stop;
        if (nl == std::string_view::npos) return {Event::kNeedMore, i, {}};
        std::string_view l(line_);
        l.remove_suffix(1);  // '\n'
        if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
        Event e = line(l);
        line_.clear();
        if (e != Event::kNeedMore) return {e, i, {}};
        break;
      }
    }
  }
}

ResponseParser::Step ResponseParser::fail(std::string why, size_t used) {
  state_ = State::kFailed;
  error_ = std::move(why);
  return {Event::kError, used, {}};
}

ResponseParser::Event ResponseParser::line(std::string_view l) {
  auto bad = [&](std::string why) {
    state_ = State::kFailed;
    error_ = std::move(why);
    return Event::kError;
  };
  switch (state_) {
    case State::kStatus: {
      if (l.empty()) return Event::kNeedMore;  // blank lines before a response are skipped
      // HTTP/1.1 200 OK
      bool ok = l.size() >= 12 && l.starts_with("HTTP/1.") && is_digit(l[7]) && l[8] == ' ' &&
                is_digit(l[9]) && is_digit(l[10]) && is_digit(l[11]) &&
                (l.size() == 12 || l[12] == ' ') && l[9] != '0';
      if (!ok) return bad(str("malformed status line ", quoted(l)));
      minor_ = l[7] - '0';
      status_ = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
      state_ = State::kHeader;
      return Event::kNeedMore;
    }
    case State::kHeader:
      return l.empty() ? head_complete() : header(l);
    case State::kChunkSize: {
      // chunk-size [ chunk-ext ]: hex digits, then optional ";name=value" extensions, ignored
      size_t j = 0;
      int digits = 0;  // significant ones
      uint64_t size = 0;
      for (; j < l.size() && hex_value(l[j]) >= 0; ++j) {
        if (size != 0 || l[j] != '0') ++digits;
        size = size << 4 | static_cast<uint64_t>(hex_value(l[j]));
      }
      std::string_view rest = l.substr(j);
      while (!rest.empty() && (rest[0] == ' ' || rest[0] == '\t')) rest.remove_prefix(1);
      if (j == 0 || (!rest.empty() && rest[0] != ';')) {
        return bad(str("malformed chunk size ", quoted(l)));
      }
      if (digits > 15) return bad(str("chunk size ", quoted(l), " too large"));
      if (size == 0) {
        state_ = State::kTrailer;
        head_bytes_ = 0;
      } else {
        remaining_ = size;
        state_ = State::kChunkData;
      }
      return Event::kNeedMore;
    }
    case State::kChunkEnd:
      if (!l.empty()) return bad("no CRLF after chunk data");
      state_ = State::kChunkSize;
      return Event::kNeedMore;
    case State::kTrailer:
      if (!l.empty()) return Event::kNeedMore;  // trailer fields: none that knit reads
      state_ = State::kDone;
      return Event::kDone;
    default:
      return Event::kNeedMore;  // not a line state: unreachable
  }
}

ResponseParser::Event ResponseParser::header(std::string_view l) {
  // A line starting with white space continues the previous one (obsolete line folding): only
  // servers of another age fold, and never the framing fields read here.
  if (l[0] == ' ' || l[0] == '\t') return Event::kNeedMore;
  auto colon = l.find(':');
  std::string_view name = l.substr(0, colon);
  if (colon == std::string_view::npos || name.empty() ||
      name.find_first_of(" \t") != std::string_view::npos) {
    state_ = State::kFailed;
    error_ = str("malformed header line ", quoted(l));
    return Event::kError;
  }
  std::string_view value = trim(l.substr(colon + 1));
  if (iequals(name, "content-length")) {
    uint64_t n = 0;
    if (!parse_uint(value, n) || n > (uint64_t(1) << 62) || (has_length_ && n != length_)) {
      state_ = State::kFailed;
      error_ = str("bad Content-Length ", quoted(value));
      return Event::kError;
    }
    has_length_ = true;
    length_ = n;
  } else if (iequals(name, "transfer-encoding")) {
    has_te_ = true;
    auto comma = value.rfind(',');
    chunked_ =
        iequals(trim(comma == std::string_view::npos ? value : value.substr(comma + 1)), "chunked");
  } else if (iequals(name, "connection")) {
    for (std::string_view token : split(value, ',')) {
      token = trim(token);
      if (iequals(token, "close")) close_ = true;
      if (iequals(token, "keep-alive")) keep_alive_ = true;
    }
  }
  return Event::kNeedMore;
}

ResponseParser::Event ResponseParser::head_complete() {
  if (status_ < 200 && status_ != 101) {
    // An interim response (100 Continue, 103 Early Hints): the real one follows.
    close_ = keep_alive_ = chunked_ = has_te_ = has_length_ = false;
    state_ = State::kStatus;
    return Event::kNeedMore;
  }
  head_done_ = true;
  if (status_ == 101) {
    state_ = State::kFailed;
    error_ = "unexpected 101 Switching Protocols";
    return Event::kError;
  }
  if (status_ == 204 || status_ == 304) {
    state_ = State::kDone;  // never a body
  } else if (has_te_) {
    // A transfer coding other than chunked last: the body ends with the connection.
    state_ = chunked_ ? State::kChunkSize : State::kToClose;
  } else if (has_length_) {
    remaining_ = length_;
    state_ = length_ == 0 ? State::kDone : State::kFixed;
  } else {
    state_ = State::kToClose;
  }
  to_close_ = state_ == State::kToClose;
  return Event::kHead;
}

bool ResponseParser::keep_alive() const noexcept {
  return head_done_ && !to_close_ && state_ != State::kFailed && !close_ &&
         (minor_ >= 1 || keep_alive_);
}

ResponseParser::Event ResponseParser::end() {
  switch (state_) {
    case State::kDone:
      return Event::kDone;
    case State::kToClose:
      state_ = State::kDone;
      return Event::kDone;
    case State::kFailed:
      return Event::kError;
    case State::kFixed:
      error_ = str("the connection closed ", remaining_, " bytes before the end of the body");
      break;
    case State::kChunkSize:
    case State::kChunkData:
    case State::kChunkEnd:
    case State::kTrailer:
      error_ = "the connection closed in the middle of the chunked body";
      break;
    case State::kStatus:
    case State::kHeader:
      error_ = started() ? "the connection closed in the middle of the response head"
                         : "the server closed the connection before responding";
      break;
  }
  state_ = State::kFailed;
  return Event::kError;
}

// ---- TlsContext ---------------------------------------------------------------------------

namespace {

/// Never asks for a pass phrase: OpenSSL's default would prompt on the terminal.
int no_password(char*, int, int, void*) {
  return 0;
}

/// True when the last PEM read failed only because no more PEM blocks follow.
bool at_pem_end(const TlsApi& api) {
  unsigned long e = api.ERR_peek_last_error();
  return ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
}

/// The certificates of PEM text `pem`, in order; throws Error(kInvalidConfig) "<what>: ..." when
/// there is none or one cannot be read.
std::vector<X509Ptr> read_certificates(const TlsApi& api, const std::string& pem,
                                       const std::string& what) {
  api.ERR_clear_error();
  BioPtr bio(api.BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) fail(Code::kInvalidConfig, str("read ", what, ": out of memory"));
  std::vector<X509Ptr> certs;
  while (X509Ptr c{api.PEM_read_bio_X509(bio.get(), nullptr, no_password, nullptr)}) {
    certs.push_back(std::move(c));
  }
  if (!at_pem_end(api) || certs.empty()) {
    std::string why = certs.empty() && at_pem_end(api) ? "no PEM certificate" : tls_errors();
    fail(Code::kInvalidConfig, str("read ", what, ": ", why));
  }
  api.ERR_clear_error();
  return certs;
}

/// `pem`, or the content of `file` when `pem` is empty. `what` names it in errors: "the CA
/// certificates", and with the file "the CA certificates file /etc/k8s/ca.crt".
std::string pem_text(const std::string& pem, const std::string& file, std::string& what) {
  if (!pem.empty()) return pem;
  what += str(" file ", file);
  std::optional<std::string> text;
  int err = ENOENT;
  try {
    text = read_file(file);
  } catch (const Error& e) {
    err = e.sys_errno();
  }
  if (!text) fail(Code::kInvalidConfig, str("read ", what, ": ", strerror(err)));
  return std::move(*text);
}

}  // namespace

TlsContext::TlsContext(const TlsConfig& c) {
  const TlsApi& api = tls();
  api.ERR_clear_error();
  ctx_.reset(api.SSL_CTX_new(api.TLS_client_method()));
  if (!ctx_) fail(Code::kNotAvailable, str("create a TLS context: ", tls_errors()));
  SSL_CTX* ctx = ctx_.get();
  api.SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, nullptr);
  // A watch is idle for minutes: its connection holds no buffers (~34 KiB) while nothing comes.
  api.SSL_CTX_ctrl(ctx, SSL_CTRL_MODE, SSL_MODE_RELEASE_BUFFERS, nullptr);
  // Servers close without close_notify; HTTP's own framing says whether a response is whole.
  api.SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);

  verify_ = !c.insecure_skip_verify;
  if (verify_) {
    if (!c.ca_pem.empty() || !c.ca_file.empty()) {
      std::string what = "the CA certificates";
      std::string pem = pem_text(c.ca_pem, c.ca_file, what);
      X509_STORE* store = api.SSL_CTX_get_cert_store(ctx);
      for (auto& cert : read_certificates(api, pem, what)) {
        // The store takes a reference of its own. The same CA twice is not an error.
        if (api.X509_STORE_add_cert(store, cert.get()) != 1) api.ERR_clear_error();
      }
    } else if (api.SSL_CTX_set_default_verify_paths(ctx) != 1) {
      fail(Code::kInvalidConfig, str("load the system's CA certificates: ", tls_errors()));
    }
    api.SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  } else {
    api.SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }

  bool has_cert = !c.cert_pem.empty() || !c.cert_file.empty();
  if (has_cert) {
    // The first certificate is the client's; any others are its chain, sent along with it.
    std::string what = "the client certificate";
    std::string pem = pem_text(c.cert_pem, c.cert_file, what);
    auto certs = read_certificates(api, pem, what);
    if (api.SSL_CTX_use_certificate(ctx, certs[0].get()) != 1) {
      fail(Code::kInvalidConfig, str("use ", what, ": ", tls_errors()));
    }
    for (size_t i = 1; i < certs.size(); ++i) {
      if (api.SSL_CTX_ctrl(ctx, SSL_CTRL_EXTRA_CHAIN_CERT, 0, certs[i].get()) != 1) {
        fail(Code::kInvalidConfig, str("use ", what, "'s chain: ", tls_errors()));
      }
      (void)certs[i].release();  // owned by the context now
    }
  }
  if (!c.key_pem.empty() || !c.key_file.empty()) {
    std::string what = "the client key";
    std::string pem = pem_text(c.key_pem, c.key_file, what);
    api.ERR_clear_error();
    BioPtr bio(api.BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    EvpPkeyPtr key;
    if (bio) key.reset(api.PEM_read_bio_PrivateKey(bio.get(), nullptr, no_password, nullptr));
    if (!key) {
      std::string why = tls_errors();
      if (pem.find("-----BEGIN ") == std::string::npos || why == "no start line") {
        why = "no PEM private key";
      } else if (pem.find("ENCRYPTED") != std::string::npos) {
        why = "the key is encrypted, and a pass phrase is never asked for";
      }
      fail(Code::kInvalidConfig, str("read ", what, ": ", why));
    }
    if (api.SSL_CTX_use_PrivateKey(ctx, key.get()) != 1) {
      unsigned long e = api.ERR_peek_last_error();
      bool mismatch =
          ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH;
      fail(Code::kInvalidConfig,
           str(mismatch ? "the client key does not match the client certificate: "
                        : "use the client key: ",
               tls_errors()));
    }
    if (has_cert && api.SSL_CTX_check_private_key(ctx) != 1) {
      fail(Code::kInvalidConfig,
           str("the client key does not match the client certificate: ", tls_errors()));
    }
  }
  api.ERR_clear_error();
}

// ---- HttpClient ---------------------------------------------------------------------------

namespace {

/// TLS writes go through write(2), which raises SIGPIPE on a connection the peer reset (there
/// is no MSG_NOSIGNAL for OpenSSL's socket BIO). While a NoSigpipe lives, SIGPIPE is blocked in
/// this thread, and one raised meanwhile is taken off before it is unblocked: the write itself
/// reports EPIPE. The agent ignores SIGPIPE anyway; this keeps the client safe in any process.
class NoSigpipe {
 public:
  explicit NoSigpipe(bool active) : active_(active) {
    if (!active_) return;
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
  }
  ~NoSigpipe() {
    if (!active_) return;
    sigset_t pending;
    if (!was_pending_ && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
      timespec zero{};
      sigtimedwait(&pipe_, nullptr, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  NoSigpipe(const NoSigpipe&) = delete;
  NoSigpipe& operator=(const NoSigpipe&) = delete;

 private:
  bool active_;
  bool was_pending_ = false;
  sigset_t pipe_, old_;
};

/// "10.96.0.1:443", "[fd00::1]:6443".
std::string peer_text(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (sa->sa_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(sa);
    inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    return str('[', buf, "]:", ntohs(a->sin6_port));
  }
  const auto* a = reinterpret_cast<const sockaddr_in*>(sa);
  inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
  return str(buf, ':', ntohs(a->sin_port));
}

int64_t ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - t).count();
}

/// A connection the peer closed or reset: what a kept-alive connection that the server has
/// dropped while idle looks like.
bool dropped(int err) {
  return err == ECONNRESET || err == EPIPE || err == ECONNABORTED;
}

}  // namespace

/// What one read or write did.
struct HttpClient::Io {
  enum Kind : uint8_t { kData, kWant, kEof, kError };
  Kind kind = kData;
  size_t n = 0;       // kData: bytes moved
  short events = 0;   // kWant: POLLIN or POLLOUT
  int err = 0;        // kError: errno, 0 for a TLS protocol error
  std::string error;  // kError: why
};

HttpClient::HttpClient(Url server, std::shared_ptr<const TlsContext> tls, HttpOptions options)
    : server_(std::move(server)), tls_(std::move(tls)), options_(std::move(options)) {
  if (server_.https && !tls_) {
    fail(Code::kInvalidConfig, str("connect to ", server_.origin(), ": no TLS settings"));
  }
  if (!server_.https) tls_.reset();
  wake_ = Fd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake_) fail_errno(Code::kIo, "create eventfd for an HTTP client", errno);
}

HttpClient::~HttpClient() {
  close();
}

void HttpClient::wake() noexcept {
  uint64_t one = 1;
  (void)::write(wake_.get(), &one, sizeof one);
}

void HttpClient::close() noexcept {
  ssl_.reset();
  fd_.reset();
}

void HttpClient::abandon() {
  if (pending_ && (sent_ > 0 || parser_.started())) close();
  pending_ = false;
}

void HttpClient::begin(HttpRequest request) {
  abandon();
  // No Accept-Encoding: the API server then answers plain JSON, never gzip to undo.
  out_ = str("GET ", server_.path, request.target, " HTTP/1.1\r\nHost: ", server_.authority(),
             "\r\nUser-Agent: ", options_.user_agent, "\r\nAccept: application/json\r\n");
  if (!request.bearer.empty()) out_ += str("Authorization: Bearer ", request.bearer, "\r\n");
  out_ += "\r\n";
  sent_ = 0;
  timeout_ = request.timeout;
  deadline_ = Clock::now() + request.timeout;
  parser_.reset();
  pending_ = true;
  // A connection still open between requests is one that completed a response and was kept.
  reused_ = static_cast<bool>(fd_);
  if (reused_) {
    NoSigpipe guard(ssl_ != nullptr);
    Io io = write_some();                                       // once: finish() writes the rest
    if (io.kind == Io::kEof || io.kind == Io::kError) close();  // finish() connects afresh
  }
}

HttpClient::Wait HttpClient::wait(short events, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return Wait::kTimeout;
    pollfd p[2] = {{fd_.get(), events, 0}, {wake_.get(), POLLIN, 0}};
    int n = ::poll(p, 2, static_cast<int>(std::min<int64_t>(left, INT_MAX)));
    if (n < 0 && errno == EINTR) continue;
    if (p[1].revents & POLLIN) {
      uint64_t v;
      (void)::read(wake_.get(), &v, sizeof v);
      return Wait::kWoken;
    }
    if (n != 0) return Wait::kReady;  // ready, or an error that the next read or write reports
  }
}

HttpClient::Io HttpClient::ssl_failure(int ret, int saved_errno) {
  Io io;
  int e = tls().SSL_get_error(ssl_.get(), ret);
  switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      io.kind = Io::kWant;
      io.events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
      return io;
    case SSL_ERROR_ZERO_RETURN:
      io.kind = Io::kEof;
      return io;
    default:
      io.kind = Io::kError;
      io.err = e == SSL_ERROR_SYSCALL ? saved_errno : 0;
      io.error = tls_errors();
      if (io.error.empty() && io.err) io.error = strerror(io.err);
      if (io.error.empty()) io.kind = Io::kEof;  // SSL_ERROR_SYSCALL without a cause: EOF
      return io;
  }
}

HttpClient::Io HttpClient::write_some() {
  Io io;
  const char* data = out_.data() + sent_;
  size_t size = out_.size() - sent_;
  if (ssl_) {
    const TlsApi& api = tls();
    api.ERR_clear_error();
    int n = api.SSL_write(ssl_.get(), data, static_cast<int>(size));
    int saved = errno;
    if (n > 0) {
      sent_ += static_cast<size_t>(n);
      io.n = static_cast<size_t>(n);
      return io;
    }
    return ssl_failure(n, saved);
  }
  for (;;) {
    ssize_t n = ::send(fd_.get(), data, size, MSG_NOSIGNAL);
    if (n >= 0) {
      sent_ += static_cast<size_t>(n);
      io.n = static_cast<size_t>(n);
      return io;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      io.kind = Io::kWant;
      io.events = POLLOUT;
    } else {
      io.kind = Io::kError;
      io.err = errno;
      io.error = strerror(errno);
    }
    return io;
  }
}

HttpClient::Io HttpClient::read_some(char* buf, size_t size) {
  Io io;
  if (ssl_) {
    const TlsApi& api = tls();
    api.ERR_clear_error();
    int n = api.SSL_read(ssl_.get(), buf, static_cast<int>(size));
    int saved = errno;
    if (n > 0) {
      io.n = static_cast<size_t>(n);
      return io;
    }
    return ssl_failure(n, saved);
  }
  for (;;) {
    ssize_t n = ::recv(fd_.get(), buf, size, 0);
    if (n > 0) {
      io.n = static_cast<size_t>(n);
    } else if (n == 0) {
      io.kind = Io::kEof;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      io.kind = Io::kWant;
      io.events = POLLIN;
    } else {
      io.kind = Io::kError;
      io.err = errno;
      io.error = strerror(errno);
    }
    return io;
  }
}

bool HttpClient::connect(HttpResult& r) {
  auto start = Clock::now();
  auto deadline = std::min(start + options_.connect_timeout, deadline_);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (server_.host_is_ip ? AI_NUMERICHOST : 0);
  addrinfo* list = nullptr;
  std::string port = std::to_string(server_.port);
  if (int rc = getaddrinfo(server_.host.c_str(), port.c_str(), &hints, &list); rc != 0) {
    r.error =
        str("resolve ", server_.host, ": ", rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
    return false;
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owner(list, freeaddrinfo);
  size_t count = 0;
  for (addrinfo* a = list; a; a = a->ai_next) ++count;
  std::string last = str("resolve ", server_.host, ": no address");
  for (addrinfo* a = list; a; a = a->ai_next, --count) {
    auto now = Clock::now();
    std::string peer = peer_text(a->ai_addr);
    if (now >= deadline) {
      last = str("connect to ", peer, ": timed out after ", ms_since(start), " ms");
      break;
    }
    // Each address gets an equal share of the time left, the last one all of it: an address
    // that swallows SYNs must not use up the time of the others.
    auto until = now + (deadline - now) / static_cast<int64_t>(count);
    fd_ = Fd(::socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol));
    if (!fd_) {
      last = str("create a socket for ", peer, ": ", strerror(errno));
      continue;
    }
    int fd = fd_.get();
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // Best effort: a socket without them still works, only slower to notice a dead path.
    if (options_.keepalive_idle.count() > 0) {
      int idle = static_cast<int>(options_.keepalive_idle.count());
      int interval = static_cast<int>(std::max<int64_t>(1, options_.keepalive_interval.count()));
      (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
      (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
      (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
      if (options_.keepalive_count > 0) {
        (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &options_.keepalive_count,
                         sizeof options_.keepalive_count);
      }
    }
    if (options_.user_timeout.count() > 0) {
      auto ms = static_cast<unsigned>(options_.user_timeout.count());
      (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms);
    }
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
      last = str("connect to ", peer, ": ", strerror(errno));
      close();
      continue;
    }
    Wait w = wait(POLLOUT, until);
    if (w == Wait::kWoken) {
      close();
      r.end = HttpResult::End::kStopped;
      return false;
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (w == Wait::kTimeout) {
      err = ETIMEDOUT;
    } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
      err = errno;
    }
    if (err != 0) {
      last = err == ETIMEDOUT ? str("connect to ", peer, ": timed out after ", ms_since(now), " ms")
                              : str("connect to ", peer, ": ", strerror(err));
      close();
      continue;
    }
    return !tls_ || handshake(peer, deadline, r);
  }
  r.error = std::move(last);
  return false;
}

bool HttpClient::handshake(const std::string& peer, Clock::time_point deadline, HttpResult& r) {
  const TlsApi& api = tls();
  auto start = Clock::now();
  auto failed = [&](std::string why) {
    r.error = str("TLS handshake with ", peer, ": ", why);
    close();
    return false;
  };
  api.ERR_clear_error();
  ssl_.reset(api.SSL_new(tls_->get()));
  if (!ssl_ || api.SSL_set_fd(ssl_.get(), fd_.get()) != 1) return failed(tls_errors());
  SSL* ssl = ssl_.get();
  char* host = server_.host.data();
  // SNI names the server by name only, never by address (RFC 6066).
  if (!server_.host_is_ip &&
      api.SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, host) != 1) {
    return failed(str("set the server name: ", tls_errors()));
  }
  if (tls_->verify()) {
    // The certificate must name what the URL names: its DNS name, or its IP address.
    int ok = server_.host_is_ip ? api.X509_VERIFY_PARAM_set1_ip_asc(api.SSL_get0_param(ssl), host)
                                : api.SSL_set1_host(ssl, host);
    if (ok != 1) return failed(str("set the name to verify: ", tls_errors()));
  }
  for (;;) {
    api.ERR_clear_error();
    int rc = api.SSL_connect(ssl);
    int saved = errno;
    if (rc == 1) return true;
    int e = api.SSL_get_error(ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      Wait w = wait(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
      if (w == Wait::kWoken) {
        close();
        r.end = HttpResult::End::kStopped;
        return false;
      }
      if (w == Wait::kTimeout) return failed(str("timed out after ", ms_since(start), " ms"));
      continue;
    }
    long verify = api.SSL_get_verify_result(ssl);
    std::string errors = tls_errors();
    if (verify != X509_V_OK) {
      return failed(str("certificate verify failed: ", api.X509_verify_cert_error_string(verify)));
    }
    if (errors.empty()) {
      errors =
          e == SSL_ERROR_SYSCALL && saved ? strerror(saved) : "the server closed the connection";
    }
    return failed(errors);
  }
}

std::string HttpClient::timed_out(const char* doing) const {
  return str("timed out after ", timeout_.count(), " ms ", doing);
}

HttpResult HttpClient::end(HttpResult::End how, std::string error) {
  close();
  pending_ = false;
  return {how, parser_.status(), std::move(error)};
}

HttpResult HttpClient::finish(const OnBody& on_body) {
  HttpResult r;
  if (!pending_) {
    r.error = "no request";
    return r;
  }
  NoSigpipe guard(tls_ != nullptr);
  char buf[16384];  // one TLS record
  for (bool retried = false;;) {
    if (!fd_) {
      if (!connect(r)) return end(r.end, std::move(r.error));
      reused_ = false;
      sent_ = 0;
    }
    // Once, when a kept-alive connection turns out to have been closed by the server before
    // it answered: that is not the server failing this request.
    auto retry = [&](const Io& io) {
      if (!reused_ || retried || parser_.started()) return false;
      if (io.kind != Io::kEof && !(io.kind == Io::kError && dropped(io.err))) return false;
      retried = true;
      close();
      return true;
    };
    bool again = false;
    while (!again && sent_ < out_.size()) {
      Io io = write_some();
      if (io.kind == Io::kData) continue;
      if (io.kind == Io::kWant) {
        Wait w = wait(io.events, deadline_);
        if (w == Wait::kWoken) return end(HttpResult::End::kStopped);
        if (w == Wait::kTimeout) return end(HttpResult::End::kFailed, timed_out("sending"));
        continue;
      }
      again = retry(io);
      if (!again) {
        if (io.kind == Io::kEof) io.error = "the connection closed";
        return end(HttpResult::End::kFailed, str("send the request: ", io.error));
      }
    }
    while (!again) {
      Io io = read_some(buf, sizeof buf);
      if (io.kind == Io::kWant) {
        Wait w = wait(io.events, deadline_);
        if (w == Wait::kWoken) return end(HttpResult::End::kStopped);
        if (w == Wait::kTimeout) {
          return end(HttpResult::End::kFailed,
                     timed_out(parser_.status() ? "reading the response body"
                                                : "waiting for the response"));
        }
        continue;
      }
      if (io.kind == Io::kEof || io.kind == Io::kError) {
        again = retry(io);
        if (again) break;
        if (io.kind == Io::kError) {
          return end(HttpResult::End::kFailed, str("read the response: ", io.error));
        }
        if (parser_.end() != ResponseParser::Event::kDone) {
          return end(HttpResult::End::kFailed, str("read the response: ", parser_.error()));
        }
        return end(HttpResult::End::kComplete);
      }
      std::string_view in(buf, io.n);
      for (bool more = true; more;) {
        auto step = parser_.next(in);
        in.remove_prefix(step.used);
        switch (step.event) {
          case ResponseParser::Event::kNeedMore:
            more = false;
            break;
          case ResponseParser::Event::kHead:
            break;
          case ResponseParser::Event::kBody:
            if (!on_body(step.body)) return end(HttpResult::End::kAborted);
            break;
          case ResponseParser::Event::kDone:
            // Kept for the next request unless the server closes it, or sent more than the
            // response (nothing was asked for).
            if (!parser_.keep_alive() || !in.empty()) return end(HttpResult::End::kComplete);
            pending_ = false;
            return {HttpResult::End::kComplete, parser_.status(), {}};
          case ResponseParser::Event::kError:
            return end(HttpResult::End::kFailed, str("read the response: ", parser_.error()));
        }
      }
    }
  }
}

}  // namespace knit::watcher
