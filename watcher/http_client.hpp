// watcher/http_client.hpp: the agent's HTTP/1.1 client for the Kubernetes API.
//
// Approach: what the API source needs and nothing more. One client talks to one server origin
// over one kept-alive connection and is driven by one worker thread: a GET, its response's body
// handed to a callback as it arrives (a watch is an endless chunked body), the next GET on the
// same connection. Sockets are non-blocking and every wait is a poll() on the socket and an
// eventfd, so a transfer ends at its deadline, and wake() (the source's stop) interrupts it at
// once, whatever it waits for. TLS is OpenSSL's libssl, loaded at run time (tls_loader.hpp),
// so a plain http:// agent and every CNI exec of the same binary never load it. The agent used
// libcurl before; libcurl's dependency tree cost +8.5 MiB of RSS for the little it did here.
//
// Three pieces, by layer: Url, percent_encode and ResponseParser are pure (bytes in, events
// out; unit-tested at every split point without sockets); TlsContext holds the TLS settings
// (CA, client certificate, verification) once per API source, shared by its workers;
// HttpClient is the thin I/O around them.
//
// Not supported, by design: HTTP proxies (HTTPS_PROXY and NO_PROXY are not read, where libcurl
// and client-go honour them: the agent talks to its cluster's API server directly), content
// codings (no Accept-Encoding is sent, so the API server answers plain JSON: lists are not
// gzipped on the wire), HTTP/2, request bodies, redirects. Host names are resolved with
// getaddrinfo(), which blocks: a stop() while a name is being resolved waits for the resolver
// (in-cluster, the API server is an address, and kubeconfigs of kind and kubeadm name one too).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/fd.hpp"
#include "watcher/tls_loader.hpp"

namespace knit::watcher {

// ---- Building blocks (pure; exposed for tests) --------------------------------------------

/// An http:// or https:// URL, split as the client needs it.
struct Url {
  bool https = false;
  std::string host;  ///< a name, an IPv4 address, or an IPv6 address without its brackets
  bool host_is_ip = false;
  uint16_t port = 0;  ///< as given, else 80 or 443
  std::string path;   ///< from the first '/' on, query included, fragment dropped; may be empty

  /// The Host header's value: host (IPv6 in brackets), with ":port" unless it is the default.
  std::string authority() const;
  /// "https://host:port", IPv6 in brackets, for messages.
  std::string origin() const;

  friend bool operator==(const Url&, const Url&) = default;
};

/// Parses `url`. Throws Error(kInvalidConfig) `parse URL "<url>": <cause>` for another scheme,
/// user info, an empty or malformed host, a malformed IPv6 literal, or a port out of 1..65535.
Url parse_url(std::string_view url);

/// `s` with every byte but the unreserved ones (A-Z a-z 0-9 - . _ ~) as %XX, upper-case hex: a
/// query parameter's value.
std::string percent_encode(std::string_view s);

/// An HTTP/1.x response read incrementally (RFC 9112): status line, headers (at most
/// `max_head` bytes), then the body framed by Transfer-Encoding: chunked (chunk extensions and
/// trailers skipped), by Content-Length, or by the end of the connection; none after 1xx, 204
/// and 304. Interim 1xx responses are skipped. Bytes in, events out: next() consumes a prefix
/// of what it is given and says what happened; the caller calls it again with the rest, until
/// kNeedMore, and at the end of the connection calls end(). Body bytes are views into the
/// input, never copied.
class ResponseParser {
 public:
  static constexpr size_t kMaxHead = 64 * 1024;

  enum class Event : uint8_t {
    kNeedMore,  ///< every byte given was consumed; nothing to report
    kHead,      ///< the status line and headers are complete: status(), keep_alive()
    kBody,      ///< Step::body holds body bytes (a view into the input)
    kDone,      ///< the response is complete; bytes after it are not part of it
    kError,     ///< malformed: error() says how; the connection is unusable
  };
  struct Step {
    Event event = Event::kNeedMore;
    size_t used = 0;        ///< bytes of the input consumed by this step
    std::string_view body;  ///< kBody: body bytes, never empty
  };

  explicit ResponseParser(size_t max_head = kMaxHead) : max_head_(max_head) {}

  /// Consumes a prefix of `in`. After kDone or kError, returns the same event again, using
  /// nothing.
  Step next(std::string_view in);
  /// The connection ended: kDone when the body ran to the end of the connection, kDone again
  /// after kDone, else kError ("... in the middle of the response body", or "... before
  /// responding" when no byte came: started() is false).
  Event end();
  /// Forgets everything, for the next response.
  void reset() { *this = ResponseParser(max_head_); }

  /// Any byte of the response consumed (empty lines before the status line do not count).
  bool started() const noexcept { return state_ != State::kStatus || !line_.empty(); }
  /// The status code, 0 before the head is complete.
  int status() const noexcept { return head_done_ ? status_ : 0; }
  /// After the head: whether the connection may carry another request once this response is
  /// done (HTTP/1.1 without "Connection: close", or HTTP/1.0 with "Connection: keep-alive",
  /// and a body not delimited by the end of the connection).
  bool keep_alive() const noexcept;
  /// Why kError: "malformed status line \"...\"", "malformed chunk size \"...\"", ...
  const std::string& error() const noexcept { return error_; }

 private:
  enum class State : uint8_t {
    kStatus,     // the status line (blank lines before it skipped)
    kHeader,     // header lines, up to the blank line
    kChunkSize,  // a chunk-size line
    kChunkData,  // remaining_ bytes of chunk data
    kChunkEnd,   // the CRLF after chunk data
    kTrailer,    // trailer lines, up to the blank line
    kFixed,      // remaining_ bytes of a Content-Length body
    kToClose,    // body up to the end of the connection
    kDone,
    kFailed,
  };

  Step fail(std::string why, size_t used);
  /// Handles one complete line (without CR LF); returns an event to report, or kNeedMore.
  Event line(std::string_view l);
  Event header(std::string_view l);
  Event head_complete();

  size_t max_head_;
  State state_ = State::kStatus;
  std::string line_;  // the line being assembled
  size_t head_bytes_ = 0;
  bool head_done_ = false;
  int status_ = 0;
  int minor_ = 1;
  bool close_ = false;       // Connection: close
  bool keep_alive_ = false;  // Connection: keep-alive
  bool chunked_ = false;     // Transfer-Encoding ends with chunked
  bool has_te_ = false;
  bool to_close_ = false;  // the body ends with the connection
  bool has_length_ = false;
  uint64_t length_ = 0;
  uint64_t remaining_ = 0;
  std::string error_;
};

// ---- TLS settings -------------------------------------------------------------------------

/// Where the trust and the client's identity come from. PEM text wins over a file of the same.
struct TlsConfig {
  std::string ca_pem;     ///< one or more CA certificates; with ca_file empty too, the system's
  std::string ca_file;    ///< a PEM bundle
  std::string cert_pem;   ///< client certificate, then any intermediates (sent as its chain)
  std::string cert_file;  ///< the same, as a file
  std::string key_pem;    ///< client key
  std::string key_file;
  bool insecure_skip_verify = false;  ///< no check of the server's certificate at all
};

/// An OpenSSL client context (SSL_CTX) built from a TlsConfig: TLS 1.2 or newer, the server's
/// certificate verified against the CA unless insecure_skip_verify. Immutable once built and
/// shared by the clients of an API source (OpenSSL makes connections from it thread-safely);
/// a CA bundle is parsed once, not per worker. Files are read when it is built: a client
/// certificate file rotated later is used from the agent's next start (libcurl read it again
/// for every new connection).
class TlsContext {
 public:
  /// Loads libssl (Error(kNotAvailable) when it cannot, tls_loader.hpp). Throws
  /// Error(kInvalidConfig) naming the part and OpenSSL's reason when the CA, the certificate or
  /// the key cannot be read or do not match: "load the client key: bad decrypt".
  explicit TlsContext(const TlsConfig& config);

  SSL_CTX* get() const noexcept { return ctx_.get(); }
  bool verify() const noexcept { return verify_; }

 private:
  SslCtxPtr ctx_;
  bool verify_ = true;
};

// ---- The client ---------------------------------------------------------------------------

struct HttpOptions {
  std::chrono::milliseconds connect_timeout{10000};  ///< TCP connect and TLS handshake
  /// TCP keepalive and TCP_USER_TIMEOUT of the connection (0: the kernel's default).
  std::chrono::seconds keepalive_idle{0};
  std::chrono::seconds keepalive_interval{0};
  int keepalive_count = 0;
  std::chrono::milliseconds user_timeout{0};
  std::string user_agent = "knit-agent";
};

struct HttpRequest {
  /// Path and query, appended to the server URL's own path: "/api/v1/pods?limit=500".
  std::string target;
  std::string bearer;  ///< sent as "Authorization: Bearer <bearer>" when not empty
  /// The whole exchange, from begin(): connecting, sending, the response to its last byte.
  std::chrono::milliseconds timeout{60000};
};

struct HttpResult {
  enum class End : uint8_t {
    kComplete,  ///< the whole response arrived (whatever its status)
    kAborted,   ///< the body callback asked to stop
    kStopped,   ///< wake() interrupted it
    kFailed,    ///< error says why
  };
  End end = End::kFailed;
  int status = 0;  ///< 0 when no response head arrived
  /// kFailed: "connect to 10.96.0.1:443: Connection refused", "TLS handshake with
  /// api.example:6443: certificate verify failed: hostname mismatch", "timed out after 60000 ms
  /// reading the response body", "read the response: malformed chunk size \"zz\"".
  std::string error;
};

/// One origin, one connection, one thread (wake() excepted). GET only.
class HttpClient {
 public:
  using OnBody = std::function<bool(std::string_view)>;

  /// A client for `server` (its path, if any, prefixes every request's target). `tls` must be
  /// set for an https:// server (Error(kInvalidConfig) otherwise). Throws Error(kIo) when the
  /// eventfd cannot be created. Connects only when a request needs it.
  HttpClient(Url server, std::shared_ptr<const TlsContext> tls, HttpOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  /// Starts a GET: when a kept-alive connection is up, writes the request at once (without
  /// waiting), so the server prepares the response while the caller does something else;
  /// otherwise finish() connects. A request begun and not finished is abandoned first.
  void begin(HttpRequest request);
  /// Completes the request begun: connects if needed, sends what is left, reads the response,
  /// passing body bytes to `on_body` as they arrive (return false to stop: kAborted). Never
  /// throws for network or protocol errors: they are kFailed with a cause. A kept-alive
  /// connection that turns out closed before any byte of the response (the server dropped it
  /// while idle) is replaced by a new one once, and the request sent again. The connection is
  /// kept for the next request after a complete response the server did not close; it is
  /// closed after any other end.
  HttpResult finish(const OnBody& on_body);
  HttpResult get(HttpRequest request, const OnBody& on_body) {
    begin(std::move(request));
    return finish(on_body);
  }
  /// Drops a begun request (and its connection when a byte of it has been exchanged).
  void abandon();
  /// The status of the response being read: 0 before its head. For the body callback.
  int status() const noexcept { return parser_.status(); }
  /// Interrupts finish() within a poll(): it returns kStopped. A wake() outside finish()
  /// interrupts the next one. Thread-safe.
  void wake() noexcept;

 private:
  enum class Wait : uint8_t { kReady, kTimeout, kWoken };
  struct Io;

  Wait wait(short events, std::chrono::steady_clock::time_point deadline);
  /// Connects (and shakes hands) by the earlier of the connect timeout and the request's
  /// deadline, trying each address of the host in turn. On failure returns false with `r`
  /// set (kFailed with a cause, or kStopped) and no connection.
  bool connect(HttpResult& r);
  bool handshake(const std::string& peer, std::chrono::steady_clock::time_point deadline,
                 HttpResult& r);
  Io write_some();
  /// What a TLS read or write that returned `ret` <= 0 means.
  Io ssl_failure(int ret, int saved_errno);
  Io read_some(char* buf, size_t n);
  void close() noexcept;
  /// Ends the request with the connection closed.
  HttpResult end(HttpResult::End how, std::string error = {});
  std::string timed_out(const char* doing) const;

  Url server_;
  std::shared_ptr<const TlsContext> tls_;
  HttpOptions options_;
  Fd wake_;  // eventfd

  Fd fd_;
  SslPtr ssl_;

  bool pending_ = false;  // a request is begun and not finished
  bool reused_ = false;   // it went out on a connection that had completed a response
  std::string out_;       // the request's bytes
  size_t sent_ = 0;
  std::chrono::milliseconds timeout_{0};
  std::chrono::steady_clock::time_point deadline_;
  ResponseParser parser_;
};

}  // namespace knit::watcher
