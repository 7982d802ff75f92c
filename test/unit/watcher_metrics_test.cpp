// The agent's /metrics and /healthz: the exposition text (pure), the responses (pure), and the
// non-blocking server on a loopback socket, driven the way the agent's epoll loop drives it.
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "core/error.hpp"
#include "core/str.hpp"
#include "watcher/metrics.hpp"

using knit::Code;
using knit::Error;
using knit::str;
using namespace knit::watcher;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

/// `rcvbuf`: a small receive buffer (set before connecting, so the window is small from the
/// start) makes the server's sends block part-way.
int connect_to(uint16_t port, int rcvbuf = 0) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  BOOST_TEST_REQUIRE(fd >= 0);
  if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_TEST_REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0);
  return fd;
}

void send_all(int fd, const std::string& s) {
  BOOST_TEST_REQUIRE(::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size()));
}

/// Runs the server's loop (as the agent would: poll its fd, call on_readable) until the client
/// socket has the whole response and was closed; returns what the client read.
std::string drive(MetricsServer& server, int client, int max_ms = 3000) {
  std::string got;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(max_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd fds[2] = {{server.fd(), POLLIN, 0}, {client, POLLIN, 0}};
    ::poll(fds, 2, 50);
    if (fds[0].revents & POLLIN) server.on_readable();
    if (fds[1].revents & (POLLIN | POLLHUP)) {
      char buf[65536];
      ssize_t n = ::recv(client, buf, sizeof buf, MSG_DONTWAIT);
      if (n == 0) return got;
      if (n > 0) got.append(buf, static_cast<size_t>(n));
    }
  }
  return got + "(timeout)";
}

std::string get(MetricsServer& server, const std::string& request) {
  int c = connect_to(server.port());
  send_all(c, request);
  std::string r = drive(server, c);
  ::close(c);
  return r;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(watcher_metrics)

BOOST_AUTO_TEST_CASE(renders_prometheus_text_format) {
  Metrics m;
  m.counter("knit_a_total", "A counter.").inc();
  m.counter("knit_a_total", "A counter.").inc(2);
  m.gauge("knit_g", "A gauge\nwith \\ escapes.", {{"kind", "x\"y\\z\nw"}}).set(1.5);
  m.gauge("knit_g", "", {{"kind", "b"}}).set(-2);
  auto& h = m.histogram("knit_h_seconds", "A histogram.", std::vector<double>{0.01, 0.1, 1});
  h.observe(0.005);
  h.observe(0.01);  // upper bounds are inclusive
  h.observe(0.5);
  h.observe(7);
  std::string want =
      "# HELP knit_a_total A counter.\n"
      "# TYPE knit_a_total counter\n"
      "knit_a_total 3\n"
      "# HELP knit_g A gauge\\nwith \\\\ escapes.\n"
      "# TYPE knit_g gauge\n"
      "knit_g{kind=\"b\"} -2\n"
      "knit_g{kind=\"x\\\"y\\\\z\\nw\"} 1.5\n"
      "# HELP knit_h_seconds A histogram.\n"
      "# TYPE knit_h_seconds histogram\n"
      "knit_h_seconds_bucket{le=\"0.01\"} 2\n"
      "knit_h_seconds_bucket{le=\"0.1\"} 2\n"
      "knit_h_seconds_bucket{le=\"1\"} 3\n"
      "knit_h_seconds_bucket{le=\"+Inf\"} 4\n"
      "knit_h_seconds_sum 7.515\n"
      "knit_h_seconds_count 4\n";
  BOOST_TEST(m.render() == want);
}

BOOST_AUTO_TEST_CASE(histogram_with_labels_puts_le_last) {
  Metrics m;
  m.histogram("knit_x_seconds", "x", std::vector<double>{1}, {{"op", "sync"}}).observe(2);
  std::string r = m.render();
  BOOST_TEST(contains(r, "knit_x_seconds_bucket{op=\"sync\",le=\"1\"} 0\n"));
  BOOST_TEST(contains(r, "knit_x_seconds_bucket{op=\"sync\",le=\"+Inf\"} 1\n"));
  BOOST_TEST(contains(r, "knit_x_seconds_sum{op=\"sync\"} 2\n"));
}

BOOST_AUTO_TEST_CASE(misuse_is_refused) {
  Metrics m;
  m.counter("knit_c_total", "c");
  BOOST_CHECK_THROW(m.gauge("knit_c_total", "c"), Error);  // type clash
  BOOST_CHECK_THROW(m.counter("knit-bad", "c"), Error);
  BOOST_CHECK_THROW(m.counter("knit_c_total", "c", {{"0bad", "v"}}), Error);
  BOOST_CHECK_THROW(m.counter("knit_c_total", "c", {{"__reserved", "v"}}), Error);
  BOOST_CHECK_THROW(m.histogram("knit_h", "h", std::vector<double>{1, 1}), Error);
  BOOST_CHECK_THROW(m.histogram("knit_h2", "h", std::vector<double>{1}, {{"le", "x"}}), Error);
}

BOOST_AUTO_TEST_CASE(agent_metrics_are_declared_from_the_start) {
  AgentMetrics am;
  std::string r = am.registry.render();
  for (const char* line :
       {"knit_syncs_total 0\n", "knit_sync_errors_total 0\n",
        "knit_sync_duration_seconds_count 0\n",
        "knit_sync_duration_seconds_bucket{le=\"0.0005\"} 0\n", "knit_rules 0\n",
        "knit_conntrack_revoked_total 0\n", "knit_pods_local 0\n", "knit_policies_refused 0\n",
        "knit_set_elements{kind=\"addrs\"} 0\n", "knit_set_elements{kind=\"maps\"} 0\n",
        "knit_api_watch_restarts_total{resource=\"pods\"} 0\n",
        "knit_api_relists_total{resource=\"networkpolicies\"} 0\n",
        "# TYPE knit_sync_duration_seconds histogram\n"}) {
    BOOST_TEST(contains(r, line), "missing: " << line);
  }
  BOOST_TEST(!contains(r, "knit_policy_packets_total"));  // no policy yet, no family

  am.syncs.inc();
  am.sync_duration.observe(0.003);
  am.api_watch_restarts("pods").inc();
  am.set_elements("addrs").set(42);
  am.set_policy_packets({{"shop", "web", "accept", 10}, {"shop", "web", "drop", 3}, {"db", "x", "drop", 1}});
  r = am.registry.render();
  BOOST_TEST(contains(r, "knit_syncs_total 1\n"));
  BOOST_TEST(contains(r, "knit_sync_duration_seconds_bucket{le=\"0.0025\"} 0\n"));
  BOOST_TEST(contains(r, "knit_sync_duration_seconds_bucket{le=\"0.005\"} 1\n"));
  BOOST_TEST(contains(r, "knit_api_watch_restarts_total{resource=\"pods\"} 1\n"));
  BOOST_TEST(contains(r, "knit_set_elements{kind=\"addrs\"} 42\n"));
  BOOST_TEST(contains(r, "knit_policy_packets_total{namespace=\"shop\",policy=\"web\",verdict=\"accept\"} 10\n"));
  BOOST_TEST(contains(r, "knit_policy_packets_total{namespace=\"db\",policy=\"x\",verdict=\"drop\"} 1\n"));

  // A policy that is gone disappears; counts are mirrored, not added.
  am.set_policy_packets({{"shop", "web", "accept", 12}});
  r = am.registry.render();
  BOOST_TEST(contains(r, "verdict=\"accept\"} 12\n"));
  BOOST_TEST(!contains(r, "policy=\"x\""));
  BOOST_TEST(!contains(r, "verdict=\"drop\""));
}

BOOST_AUTO_TEST_CASE(health_says_why) {
  Health h;
  BOOST_TEST(h.problem().value() == "not synced yet");
  h.set_synced(false, "the first list of pods");
  BOOST_TEST(h.problem().value() == "not synced: waiting for the first list of pods");
  h.set_synced(true);
  BOOST_TEST(!h.problem().has_value());
  h.set_last_apply("commit: Operation not permitted");
  BOOST_TEST(h.problem().value() == "last apply failed: commit: Operation not permitted");
  h.set_last_apply("");
  BOOST_TEST(!h.problem().has_value());
}

BOOST_AUTO_TEST_CASE(responds_per_path_and_method) {
  Metrics m;
  m.counter("knit_syncs_total", "s").inc();
  Health h;
  auto r = respond("GET /healthz HTTP/1.1\r\nHost: x\r\n", m, h);
  BOOST_TEST(r.status == 503);
  BOOST_TEST(r.body == "not synced yet\n");
  h.set_synced(true);
  BOOST_TEST(respond("GET /healthz HTTP/1.1", m, h).body == "ok\n");
  BOOST_TEST(respond("GET /readyz HTTP/1.0", m, h).status == 200);
  h.set_last_apply("boom");
  BOOST_TEST(respond("GET /readyz HTTP/1.1", m, h).status == 503);
  BOOST_TEST(respond("GET /livez HTTP/1.1", m, h).status == 200);  // liveness ignores sync state

  r = respond("GET /metrics?x=1 HTTP/1.1\r\n", m, h);
  BOOST_TEST(r.status == 200);
  BOOST_TEST(r.content_type == "text/plain; version=0.0.4; charset=utf-8");
  BOOST_TEST(contains(r.body, "knit_syncs_total 1\n"));

  BOOST_TEST(respond("GET /nope HTTP/1.1", m, h).status == 404);
  auto post = respond("POST /metrics HTTP/1.1", m, h);
  BOOST_TEST(post.status == 405);
  BOOST_TEST(contains(post.wire(), "Allow: GET, HEAD\r\n"));
  BOOST_TEST(respond("garbage", m, h).status == 400);
  BOOST_TEST(respond("GET metrics HTTP/1.1", m, h).status == 400);
  BOOST_TEST(respond("GET /metrics SPDY/3", m, h).status == 400);

  auto head = respond("HEAD /livez HTTP/1.1", m, h);
  BOOST_TEST(head.wire() ==
             "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n"
             "Connection: close\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(serves_over_tcp_without_blocking) {
  AgentMetrics am;
  Health health;
  MetricsServer server("127.0.0.1:0", am.registry, health);
  BOOST_TEST_REQUIRE(server.port() != 0);

  std::string r = get(server, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  BOOST_TEST(r.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0) == 0u, r);
  BOOST_TEST(contains(r, "\r\n\r\nnot synced yet\n"));

  health.set_synced(true);
  am.syncs.inc();
  r = get(server, "GET /healthz HTTP/1.1\r\n\r\n");
  BOOST_TEST(r.rfind("HTTP/1.1 200 OK\r\n", 0) == 0u, r);

  r = get(server, "GET /metrics HTTP/1.1\r\nAccept: text/plain\r\n\r\n");
  BOOST_TEST(contains(r, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
  BOOST_TEST(contains(r, "\nknit_syncs_total 1\n"));
  auto body_at = r.find("\r\n\r\n");
  BOOST_TEST(contains(r, str("Content-Length: ", r.size() - body_at - 4, "\r\n")));
}

// A /metrics larger than the socket's send buffer (loopback grows it to a few MB) goes out in
// pieces on EPOLLOUT, never blocking the loop, and arrives whole.
BOOST_AUTO_TEST_CASE(large_responses_are_sent_whole) {
  AgentMetrics am;
  std::vector<PolicyPackets> counts;
  for (int i = 0; i < 60000; ++i) counts.push_back({str("ns", i), str("policy-", i), "drop", 1});
  am.set_policy_packets(counts);
  Health health;
  MetricsServer server("127.0.0.1:0", am.registry, health);
  int c = connect_to(server.port(), 4096);
  send_all(c, "GET /metrics HTTP/1.1\r\n\r\n");
  std::string r = drive(server, c);
  ::close(c);
  std::string body = r.substr(r.find("\r\n\r\n") + 4);
  BOOST_TEST(r.substr(0, 200).find("200 OK") != std::string::npos, r.substr(0, 200));
  BOOST_TEST(body.size() == am.registry.render().size(), r.substr(r.size() - 100));
  BOOST_TEST(body == am.registry.render());
  BOOST_TEST(body.size() > 4000000u);
}

// A client that connects and says nothing, or sends a huge head, costs the agent nothing.
BOOST_AUTO_TEST_CASE(slow_and_oversized_clients_are_dropped) {
  Metrics m;
  Health h;
  MetricsServer server("127.0.0.1:0", m, h);
  int idle = connect_to(server.port());
  send_all(idle, "GET /metr");  // half a request, then silence

  // Meanwhile another client is served at once.
  std::string r = get(server, "GET /livez HTTP/1.1\r\n\r\n");
  BOOST_TEST(r.rfind("HTTP/1.1 200 OK", 0) == 0u, r);

  int big = connect_to(server.port());
  send_all(big, "GET /metrics HTTP/1.1\r\nX-Junk: " + std::string(MetricsServer::kMaxRequest, 'j'));
  r = drive(server, big);
  ::close(big);
  BOOST_TEST(r.rfind("HTTP/1.1 431 ", 0) == 0u, r.substr(0, 40));

  // The idle client is closed by the server after kIdleTimeout.
  auto start = std::chrono::steady_clock::now();
  r = drive(server, idle, static_cast<int>(MetricsServer::kIdleTimeout.count()) + 2000);
  auto waited = std::chrono::steady_clock::now() - start;
  ::close(idle);
  BOOST_TEST(r.empty(), r);
  BOOST_TEST(waited >= MetricsServer::kIdleTimeout - std::chrono::milliseconds(200));
}

BOOST_AUTO_TEST_CASE(connections_beyond_the_limit_evict_the_oldest) {
  Metrics m;
  Health h;
  MetricsServer server("127.0.0.1:0", m, h);
  std::vector<int> idle;
  for (size_t i = 0; i < MetricsServer::kMaxConnections + 4; ++i) {
    idle.push_back(connect_to(server.port()));
    server.on_readable();
  }
  // The first ones were closed by the server to make room.
  char c;
  ::usleep(10000);
  BOOST_TEST(::recv(idle[0], &c, 1, MSG_DONTWAIT) == 0);
  BOOST_TEST(::recv(idle.back(), &c, 1, MSG_DONTWAIT) == -1);  // still open, nothing to read
  for (int fd : idle) ::close(fd);
  std::string r = get(server, "GET /livez HTTP/1.1\r\n\r\n");
  BOOST_TEST(r.rfind("HTTP/1.1 200 OK", 0) == 0u, r);
}

BOOST_AUTO_TEST_CASE(bad_or_busy_addresses_are_clear_errors) {
  Metrics m;
  Health h;
  try {
    MetricsServer s("localhost:9740", m, h);
    BOOST_ERROR("no error");
  } catch (const Error& e) {
    BOOST_TEST((e.code() == Code::kInvalidConfig));
  }
  MetricsServer first("127.0.0.1:0", m, h);
  std::string taken = str("127.0.0.1:", first.port());
  try {
    MetricsServer second(taken, m, h);
    BOOST_ERROR("no error");
  } catch (const Error& e) {
    BOOST_TEST((e.code() == Code::kIo));
    BOOST_TEST(std::string(e.what()) == str("listen on ", taken, ": Address already in use"));
  }
  MetricsServer v6("[::1]:0", m, h);
  BOOST_TEST(v6.port() != 0);
}

BOOST_AUTO_TEST_SUITE_END()
