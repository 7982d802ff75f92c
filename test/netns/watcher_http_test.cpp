// The agent's HTTP client against servers that misbehave on purpose, inside a throwaway network
// namespace: a connection kept alive across requests and replaced once when the server dropped
// it while idle, Connection: close and HTTP/1.0, chunked bodies delivered as they arrive, the
// request sent by begin() before finish(), a body callback that stops, timeouts that say what
// timed out, wake() interrupting every wait, errors naming their cause; and TLS as a cluster
// does it: the server's certificate checked against the CA and against the name or address of
// the URL, a client certificate sent with its chain, CA and client identity from files.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "core/netns.hpp"
#include "fixture.hpp"
#include "test/apiserver/apiserver.hpp"
#include "watcher/http_client.hpp"
#include "test/files.hpp"

using namespace knit;
using namespace knit::test;
using namespace knit::watcher;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using End = HttpResult::End;

namespace {

auto needs_netns() {
  return boost::unit_test::precondition(NeedsNetns());
}

/// A fresh namespace with lo up, entered by the test's thread for the test's duration.
struct InNetns {
  TestNetns ns{"http"};
  std::unique_ptr<NetnsGuard> guard;
  InNetns() {
    ns.must("ip link set lo up");
    guard = std::make_unique<NetnsGuard>(Netns::open(ns.path()));
  }
  /// Drops every packet to and from `port`: SYNs go unanswered, as on a dead path.
  void blackhole(uint16_t port) {
    std::string p = std::to_string(port);
    ns.must("nft add table inet blackhole");
    ns.must("nft add chain inet blackhole in '{ type filter hook input priority 0; }'");
    ns.must("nft add rule inet blackhole in tcp dport " + p + " drop");
    ns.must("nft add rule inet blackhole in tcp sport " + p + " drop");
  }
};

void write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    s.remove_prefix(static_cast<size_t>(n));
  }
}

/// Blocks until the peer closes the connection (or the server shuts it down).
void wait_for_close(int fd) {
  char buf[4096];
  while (::recv(fd, buf, sizeof buf, 0) > 0) {
  }
}

/// A TCP server on 127.0.0.1 of the namespace of the thread that creates it, running
/// `serve(server, fd, index)` on a thread of its own for each connection (index: accept order
/// from 0). Scripted per test: that is the point.
class RawServer {
 public:
  using Serve = std::function<void(RawServer&, int fd, int index)>;

  explicit RawServer(Serve serve) : serve_(std::move(serve)) {
    listen_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE(::bind(listen_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    BOOST_REQUIRE(::listen(listen_, 16) == 0);
    socklen_t len = sizeof a;
    getsockname(listen_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    BOOST_REQUIRE(pipe2(stop_, O_CLOEXEC) == 0);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~RawServer() { stop(); }

  /// Stops listening and ends every connection (the port then refuses connections).
  void stop() {
    if (stopped_.exchange(true)) return;
    (void)!::write(stop_[1], "x", 1);
    acceptor_.join();
    ::close(listen_);
    {
      std::lock_guard g(mu_);
      for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : threads_) t.join();
    for (int fd : fds_) ::close(fd);
    ::close(stop_[0]);
    ::close(stop_[1]);
  }

  uint16_t port() const { return port_; }
  std::string url(const std::string& path = {}) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int accepted() const { return accepted_; }
  std::vector<std::string> requests() const {
    std::lock_guard g(mu_);
    return requests_;
  }

  /// Reads one request head from `fd` and records it; returns its target ("" at the end of the
  /// connection).
  std::string read_request(int fd, std::string& pending) {
    char buf[4096];
    size_t end;
    while ((end = pending.find("\r\n\r\n")) == std::string::npos) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return "";
      pending.append(buf, static_cast<size_t>(n));
    }
    std::string head = pending.substr(0, end + 4);
    pending.erase(0, end + 4);
    {
      std::lock_guard g(mu_);
      requests_.push_back(head);
    }
    auto sp1 = head.find(' ');
    return head.substr(sp1 + 1, head.find(' ', sp1 + 1) - sp1 - 1);
  }

 private:
  void accept_loop() {
    for (;;) {
      pollfd p[2] = {{listen_, POLLIN, 0}, {stop_[0], POLLIN, 0}};
      if (::poll(p, 2, -1) < 0) continue;
      if (p[1].revents) return;
      int fd = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      int index = accepted_++;
      std::lock_guard g(mu_);
      fds_.push_back(fd);
      threads_.emplace_back([this, fd, index] { serve_(*this, fd, index); });
    }
  }

  Serve serve_;
  int listen_ = -1;
  int stop_[2] = {-1, -1};
  uint16_t port_ = 0;
  std::atomic<bool> stopped_{false};
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::vector<int> fds_;
  std::vector<std::thread> threads_;
  std::vector<std::string> requests_;
};

std::string ok(const std::string& body, const std::string& extra = {}) {
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

/// Answers every request on the connection with 200 and the target as the body.
void echo_targets(RawServer& s, int fd, int) {
  std::string pending;
  for (std::string t; !(t = s.read_request(fd, pending)).empty();) write_all(fd, ok(t));
}

struct Got {
  HttpResult r;
  std::string body;
  int pieces = 0;
};

Got get(HttpClient& c, std::string target, std::chrono::milliseconds timeout = 5000ms) {
  Got g;
  g.r = c.get({std::move(target), "", timeout}, [&](std::string_view d) {
    g.body += d;
    ++g.pieces;
    return true;
  });
  return g;
}

std::string url_of(uint16_t port, const char* host = "127.0.0.1", const char* scheme = "http") {
  return std::string(scheme) + "://" + host + ":" + std::to_string(port);
}

int64_t ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(watcher_http, *needs_netns())

BOOST_AUTO_TEST_CASE(one_connection_carries_every_request) {
  InNetns net;
  RawServer server(echo_targets);
  HttpClient c(parse_url(server.url("/prefix")), nullptr);
  for (const char* t : {"/a?x=1", "/b", "/c?continue=ab%2Bc"}) {
    Got g = get(c, t);
    BOOST_TEST((g.r.end == End::kComplete), g.r.error);
    BOOST_TEST(g.r.status == 200);
    BOOST_TEST(g.body == std::string("/prefix") + t);
  }
  BOOST_TEST(server.accepted() == 1);
  // What the API server is told: no gzip (plain JSON), the token when there is one.
  c.get({"/d", "the-token", 5000ms}, [](std::string_view) { return true; });
  auto reqs = server.requests();
  BOOST_TEST_REQUIRE(reqs.size() == 4u);
  BOOST_TEST(reqs[0] ==
             "GET /prefix/a?x=1 HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(server.port()) +
                 "\r\nUser-Agent: knit-agent\r\nAccept: application/json\r\n\r\n");
  BOOST_TEST(reqs[3].find("\r\nAuthorization: Bearer the-token\r\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_kept_alive_connection_dropped_by_the_server_is_replaced_once) {
  InNetns net;
  // The server closes each connection right after its first response, without saying so:
  // the client learns it only when it sends the next request.
  RawServer server([](RawServer& s, int fd, int) {
    std::string pending;
    if (!s.read_request(fd, pending).empty()) write_all(fd, ok("first"));
    ::shutdown(fd, SHUT_RDWR);
  });
  HttpClient c(parse_url(server.url()), nullptr);
  for (int i = 1; i <= 3; ++i) {
    BOOST_TEST((get(c, "/x").r.end == End::kComplete));
    std::this_thread::sleep_for(50ms);  // the FIN is in
    BOOST_TEST(server.accepted() == i);
  }
  BOOST_TEST(server.requests().size() == 3u);

  // Once only: when the new connection is dropped too, the request fails.
  RawServer closing([](RawServer& s, int fd, int index) {
    std::string pending;
    if (index == 0 && !s.read_request(fd, pending).empty()) write_all(fd, ok("only"));
    ::shutdown(fd, SHUT_RDWR);
  });
  HttpClient d(parse_url(closing.url()), nullptr);
  BOOST_TEST((get(d, "/x").r.end == End::kComplete));
  std::this_thread::sleep_for(50ms);
  Got g = get(d, "/y");
  BOOST_TEST((g.r.end == End::kFailed));
  std::this_thread::sleep_for(100ms);
  BOOST_TEST(closing.accepted() == 2);
  // A new connection closed before any answer is the server's failure: no second try.
  HttpClient e(parse_url(closing.url()), nullptr);
  g = get(e, "/z");
  BOOST_TEST((g.r.end == End::kFailed));
  BOOST_TEST(g.r.error == "read the response: the server closed the connection before responding",
             g.r.error);
  std::this_thread::sleep_for(100ms);
  BOOST_TEST(closing.accepted() == 3);
}

BOOST_AUTO_TEST_CASE(connection_close_and_http_1_0_end_the_connection) {
  InNetns net;
  RawServer server([](RawServer& s, int fd, int) {
    std::string pending;
    for (std::string t; !(t = s.read_request(fd, pending)).empty();) {
      if (t == "/close") {
        write_all(fd, ok("bye", "Connection: close\r\n"));
        wait_for_close(fd);  // the client must close it
        return;
      }
      if (t == "/old") {
        write_all(fd, "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"old\":1}");
        ::shutdown(fd, SHUT_RDWR);  // the end of the connection is the end of the body
        return;
      }
      write_all(fd, ok(t));
    }
  });
  HttpClient c(parse_url(server.url()), nullptr);
  Got g = get(c, "/close");
  BOOST_TEST((g.r.end == End::kComplete));
  BOOST_TEST(g.body == "bye");
  BOOST_TEST(get(c, "/a").body == "/a");
  BOOST_TEST(server.accepted() == 2);
  g = get(c, "/old");
  BOOST_TEST((g.r.end == End::kComplete), g.r.error);
  BOOST_TEST(g.body == "{\"old\":1}");
  BOOST_TEST(server.accepted() == 2);  // it went on the kept connection
  BOOST_TEST(get(c, "/b").body == "/b");
  BOOST_TEST(server.accepted() == 3);
}

BOOST_AUTO_TEST_CASE(a_chunked_body_arrives_as_it_is_sent) {
  InNetns net;
  RawServer server([](RawServer& s, int fd, int) {
    std::string pending;
    for (std::string t; !(t = s.read_request(fd, pending)).empty();) {
      std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
      if (t == "/bytes") {
        // A whole response one byte per segment.
        std::string all = head + "6\r\nline1\n\r\n6;x=y\r\nline2\n\r\n0\r\n\r\n";
        for (char ch : all) write_all(fd, std::string_view(&ch, 1));
        continue;
      }
      write_all(fd, head);
      for (const char* line : {"line1\n", "line2\n", "line3\n"}) {
        std::this_thread::sleep_for(50ms);
        write_all(fd, "6\r\n" + std::string(line) + "\r\n");
      }
      write_all(fd, "0\r\n\r\n");
    }
  });
  HttpClient c(parse_url(server.url()), nullptr);
  Got g = get(c, "/watch");
  BOOST_TEST((g.r.end == End::kComplete), g.r.error);
  BOOST_TEST(g.body == "line1\nline2\nline3\n");
  BOOST_TEST(g.pieces == 3);  // one delivery per chunk, as each arrived
  g = get(c, "/bytes");
  BOOST_TEST((g.r.end == End::kComplete), g.r.error);
  BOOST_TEST(g.body == "line1\nline2\n");
  BOOST_TEST(server.accepted() == 1);
}

BOOST_AUTO_TEST_CASE(begin_sends_on_a_kept_alive_connection_before_finish) {
  InNetns net;
  RawServer server(echo_targets);
  HttpClient c(parse_url(server.url()), nullptr);
  // No connection yet: begin() only records the request; finish() connects.
  c.begin({"/first", "", 5000ms});
  std::this_thread::sleep_for(100ms);
  BOOST_TEST(server.accepted() == 0);
  std::string body;
  auto collect = [&](std::string_view d) {
    body += d;
    return true;
  };
  BOOST_TEST((c.finish(collect).end == End::kComplete));
  BOOST_TEST(body == "/first");
  // Connected: the next request is on the wire before finish() is called.
  body.clear();
  c.begin({"/second", "", 5000ms});
  BOOST_TEST(eventually([&] { return server.requests().size() == 2; }, 2s));
  BOOST_TEST((c.finish(collect).end == End::kComplete));
  BOOST_TEST(body == "/second");
  // A begun request that is abandoned costs the connection (its response would be read as
  // the next one's otherwise).
  c.begin({"/dropped", "", 5000ms});
  c.abandon();
  BOOST_TEST(get(c, "/third").body == "/third");
  BOOST_TEST(server.accepted() == 2);
}

BOOST_AUTO_TEST_CASE(a_body_callback_that_stops_costs_the_connection) {
  InNetns net;
  RawServer server(echo_targets);
  HttpClient c(parse_url(server.url()), nullptr);
  HttpResult r = c.get({"/a", "", 5000ms}, [](std::string_view) { return false; });
  BOOST_TEST((r.end == End::kAborted));
  BOOST_TEST(r.status == 200);
  BOOST_TEST(get(c, "/b").body == "/b");
  BOOST_TEST(server.accepted() == 2);
}

BOOST_AUTO_TEST_CASE(timeouts_say_what_timed_out) {
  InNetns net;
  RawServer server([](RawServer& s, int fd, int) {
    std::string pending;
    std::string t = s.read_request(fd, pending);
    if (t == "/stall")
      write_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab");
    wait_for_close(fd);
  });
  HttpClient c(parse_url(server.url()), nullptr);
  auto t0 = Clock::now();
  Got g = get(c, "/silent", 300ms);
  auto took = ms_since(t0);
  BOOST_TEST((g.r.end == End::kFailed));
  BOOST_TEST(g.r.error == "timed out after 300 ms waiting for the response");
  BOOST_TEST(took >= 290);
  BOOST_TEST(took < 1000);
  g = get(c, "/stall", 300ms);
  BOOST_TEST(g.r.error == "timed out after 300 ms reading the response body");
  BOOST_TEST(g.r.status == 200);
  BOOST_TEST(g.body == "ab");

  // SYNs dropped: the connect timeout.
  net.blackhole(server.port());
  HttpOptions o;
  o.connect_timeout = 200ms;
  HttpClient d(parse_url(server.url()), nullptr, o);
  t0 = Clock::now();
  g = get(d, "/x", 5000ms);
  took = ms_since(t0);
  BOOST_TEST((g.r.end == End::kFailed));
  std::string want = "connect to 127.0.0.1:" + std::to_string(server.port()) + ": timed out after ";
  BOOST_TEST(g.r.error.starts_with(want), g.r.error);
  BOOST_TEST(took >= 190);
  BOOST_TEST(took < 1000);
}

BOOST_AUTO_TEST_CASE(wake_interrupts_every_wait_and_the_next_request) {
  InNetns net;
  RawServer server([](RawServer& s, int fd, int) {
    std::string pending;
    for (std::string t; !(t = s.read_request(fd, pending)).empty();) {
      if (t == "/silent") {
        wait_for_close(fd);
        return;
      }
      write_all(fd, ok(t));
    }
  });
  HttpClient c(parse_url(server.url()), nullptr);
  auto waker = [&](std::chrono::milliseconds after) {
    return std::thread([&c, after] {
      std::this_thread::sleep_for(after);
      c.wake();
    });
  };
  // Waiting for a response.
  auto t0 = Clock::now();
  std::thread w = waker(100ms);
  Got g = get(c, "/silent", 10000ms);
  w.join();
  BOOST_TEST((g.r.end == End::kStopped));
  BOOST_TEST(ms_since(t0) < 500);
  // A wake() between requests stops the next one at once, and only that one.
  c.wake();
  t0 = Clock::now();
  BOOST_TEST((get(c, "/a").r.end == End::kStopped));
  BOOST_TEST(ms_since(t0) < 100);
  BOOST_TEST(get(c, "/b").body == "/b");
  // Connecting to a dead path.
  net.blackhole(server.port());
  HttpClient d(parse_url(server.url()), nullptr);
  t0 = Clock::now();
  w = std::thread([&d] {
    std::this_thread::sleep_for(100ms);
    d.wake();
  });
  g = get(d, "/x", 10000ms);
  w.join();
  BOOST_TEST((g.r.end == End::kStopped));
  BOOST_TEST(ms_since(t0) < 500);
}

BOOST_AUTO_TEST_CASE(errors_name_their_cause) {
  InNetns net;
  uint16_t port;
  {
    RawServer gone(echo_targets);
    port = gone.port();
  }
  HttpClient c(parse_url(url_of(port)), nullptr);
  Got g = get(c, "/x");
  BOOST_TEST((g.r.end == End::kFailed));
  BOOST_TEST(g.r.error == "connect to 127.0.0.1:" + std::to_string(port) + ": Connection refused");

  RawServer odd([](RawServer& s, int fd, int) {
    std::string pending;
    s.read_request(fd, pending);
    write_all(fd, "HTTP/1.1 2OO OK\r\n\r\n");
    wait_for_close(fd);
  });
  HttpClient d(parse_url(odd.url()), nullptr);
  g = get(d, "/x");
  BOOST_TEST(g.r.error == "read the response: malformed status line \"HTTP/1.1 2OO OK\"");

  // Names are resolved (only /etc/hosts answers inside this namespace).
  HttpClient e(parse_url("http://knit-no-such-host.invalid:80"), nullptr);
  g = get(e, "/x");
  BOOST_TEST(g.r.error.starts_with("resolve knit-no-such-host.invalid: "), g.r.error);
  RawServer named(echo_targets);
  HttpClient f(parse_url(url_of(named.port(), "localhost")), nullptr);
  BOOST_TEST(get(f, "/by-name").body == "/by-name");
  BOOST_TEST(named.requests().at(0).find("\r\nHost: localhost:") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(tls_checks_the_server_by_ca_and_by_name_and_sends_the_client_chain) {
  InNetns net;
  char tmpl[] = "/tmp/knit-http-tls-XXXXXX";
  BOOST_TEST_REQUIRE(mkdtemp(tmpl) != nullptr);
  std::string d = tmpl;
  // A root CA and an intermediate one under it; a server certificate naming "localhost" and one
  // naming 127.0.0.1; a client certificate from the intermediate CA, which the server, trusting
  // the root only, accepts when the intermediate comes with it; another CA, trusted by nobody.
  auto ec = [](const std::string& out, const std::string& subj) {
    return "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj " + subj +
           " -keyout " + out + ".key -out " + out + ".csr 2>/dev/null; ";
  };
  auto sign = [](const std::string& out, const std::string& ca, const std::string& ext) {
    return "printf '" + ext + "\\n' > " + out + ".ext; openssl x509 -req -in " + out + ".csr -CA " +
           ca + ".crt -CAkey " + ca + ".key -CAcreateserial -days 1 -extfile " + out +
           ".ext -out " + out + ".crt 2>/dev/null; ";
  };
  Proc p = sh(
      "cd " + d + " && set -e; " +
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
      "-subj /CN=root -keyout root.key -out root.crt 2>/dev/null; " +
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
      "-subj /CN=other -keyout other.key -out other.crt 2>/dev/null; " +
      ec("inter", "/CN=intermediate") + sign("inter", "root", "basicConstraints=critical,CA:TRUE") +
      ec("by-name", "/CN=apiserver") + sign("by-name", "root", "subjectAltName=DNS:localhost") +
      ec("by-ip", "/CN=apiserver") + sign("by-ip", "root", "subjectAltName=IP:127.0.0.1") +
      ec("client", "/CN=system:node:node-1") +
      sign("client", "inter", "extendedKeyUsage=clientAuth") +
      "cat client.crt inter.crt > client-chain.crt");
  BOOST_TEST_REQUIRE(p.status == 0, p.err);
  auto server_with = [&](const std::string& cert) {
    ApiServer::Options so;
    so.cert_file = d + "/" + cert + ".crt";
    so.key_file = d + "/" + cert + ".key";
    so.client_ca_file = d + "/root.crt";
    return std::make_unique<ApiServer>(so);
  };
  auto by_name = server_with("by-name");
  auto by_ip = server_with("by-ip");
  TlsConfig good;
  good.ca_pem = slurp(d + "/root.crt");
  good.cert_pem = slurp(d + "/client-chain.crt");
  good.key_pem = slurp(d + "/client.key");
  auto fetch = [&](uint16_t port, const char* host, const TlsConfig& config) {
    HttpClient c(parse_url(url_of(port, host, "https")),
                 std::make_shared<const TlsContext>(config));
    return get(c, "/api/v1/pods?limit=1").r;
  };
  auto refused = [&](const HttpResult& r, const std::string& why) {
    BOOST_TEST((r.end == End::kFailed));
    BOOST_TEST(r.error.find(why) != std::string::npos, r.error);
  };

  // The certificate names what the URL names, and comes from the CA: trusted.
  BOOST_TEST(fetch(by_name->port(), "localhost", good).status == 200);
  BOOST_TEST(fetch(by_ip->port(), "127.0.0.1", good).status == 200);
  // It names something else: refused, whichever CA signed it.
  std::string at = ": certificate verify failed: ";
  refused(fetch(by_name->port(), "127.0.0.1", good),
          "TLS handshake with 127.0.0.1:" + std::to_string(by_name->port()) + at +
              "IP address mismatch");
  refused(fetch(by_ip->port(), "localhost", good), at + "hostname mismatch");
  // Another CA: refused (the server sends its root along, which the client does not trust);
  // unless verification is off.
  TlsConfig other = good;
  other.ca_pem = slurp(d + "/other.crt");
  refused(fetch(by_ip->port(), "127.0.0.1", other),
          at + "self-signed certificate in certificate chain");
  other.insecure_skip_verify = true;
  BOOST_TEST(fetch(by_name->port(), "127.0.0.1", other).status == 200);
  // Several CAs in the bundle: the right one among them is enough.
  TlsConfig bundle = good;
  bundle.ca_pem = slurp(d + "/other.crt") + slurp(d + "/root.crt");
  BOOST_TEST(fetch(by_ip->port(), "127.0.0.1", bundle).status == 200);
  // The same from files.
  TlsConfig files;
  files.ca_file = d + "/root.crt";
  files.cert_file = d + "/client-chain.crt";
  files.key_file = d + "/client.key";
  BOOST_TEST(fetch(by_ip->port(), "127.0.0.1", files).status == 200);
  // Without its intermediate, or without any certificate, the client is refused by the server.
  TlsConfig leaf = good;
  leaf.cert_pem = slurp(d + "/client.crt");
  HttpResult r = fetch(by_ip->port(), "127.0.0.1", leaf);
  BOOST_TEST((r.end == End::kFailed));
  BOOST_TEST(r.error.find("alert") != std::string::npos, r.error);
  TlsConfig anonymous;
  anonymous.ca_pem = good.ca_pem;
  r = fetch(by_ip->port(), "127.0.0.1", anonymous);
  BOOST_TEST((r.end == End::kFailed));
  BOOST_TEST(r.error.find("alert") != std::string::npos, r.error);
  (void)!system(("rm -rf " + d).c_str());
}

BOOST_AUTO_TEST_SUITE_END()
