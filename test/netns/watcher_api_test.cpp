// The Kubernetes API source against a test API server that speaks the real protocol, inside a
// throwaway network namespace: list and watch of every kind, pagination, bookmarks, and the
// faults of issue 4 (watch stream cut mid-event, 410 Gone on reconnect and in-stream, server
// restart, slow server, HTTP errors, malformed objects), HTTPS with a client certificate, bearer
// token rotation. Every fault test ends by comparing the source's resulting object set with the
// server's truth: nothing missed, nothing stale, nothing delivered twice.
#include <poll.h>

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include "core/netns.hpp"
#include "core/str.hpp"
#include "fixture.hpp"
#include "test/apiserver/apiserver.hpp"
#include "watcher/api_source.hpp"
#include "watcher/kubeconfig.hpp"
#include "test/files.hpp"

using namespace knit;
using namespace knit::test;
using namespace knit::watcher;
using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace data = boost::unit_test::data;

namespace {

auto needs_netns() {
  return boost::unit_test::precondition(NeedsNetns());
}

/// A fresh namespace with lo up, entered by the test's thread for the test's duration: the
/// server's and the source's threads are created inside it and stay there.
struct InNetns {
  TestNetns ns{"api"};
  std::unique_ptr<NetnsGuard> guard;
  InNetns() {
    ns.must("ip link set lo up");
    guard = std::make_unique<NetnsGuard>(Netns::open(ns.path()));
  }
};

void spit(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// ---- Object sets --------------------------------------------------------------------------

/// Per kind, "ns/name" -> a printable form that includes the resourceVersion.
using ObjectSet = std::map<Kind, std::map<std::string, std::string>>;

template <class F>
void for_each_object(const Decoded& d, F&& f) {
  for (const auto& o : d.namespaces)
    f(Kind::kNamespace, "/" + o.name, to_string(o), o.resource_version);
  for (const auto& o : d.pods)
    f(Kind::kPod, o.namespace_ + "/" + o.name, to_string(o), o.resource_version);
  for (const auto& o : d.policies)
    f(Kind::kNetworkPolicy, o.namespace_ + "/" + o.name, to_string(o), o.resource_version);
  for (const auto& o : d.nodes) f(Kind::kNode, "/" + o.name, to_string(o), o.resource_version);
}

/// What the server holds, as the decoder sees it (malformed objects are absent).
ObjectSet truth(const ApiServer& server, const std::vector<Kind>& kinds) {
  ObjectSet out;
  for (Kind k : kinds) {
    out[k];
    for (const auto& obj : server.objects(to_string(k))) {
      for_each_object(decode_json(obj.dump()),
                      [&](Kind kind, std::string key, std::string repr, const std::string& rv) {
                        out[kind][key] = repr + " rv=" + rv;
                      });
    }
  }
  return out;
}

/// The agent's side: applies ApiEvents the way the agent must, and checks their order.
struct Mirror {
  ObjectSet objects;
  std::set<Kind> synced;
  std::map<Kind, int> replaces;
  int duplicates = 0;    // an Upsert of the resourceVersion already held
  int regressions = 0;   // an Upsert older than what is held
  int early_synced = 0;  // Synced before any Replace of the kind
  std::vector<ApiEvent> log;

  void apply(ApiEvent e) {
    auto& m = objects[e.kind];
    switch (e.type) {
      case ApiEventType::kReplace:
        m.clear();
        ++replaces[e.kind];
        for_each_object(e.objects, [&](Kind, std::string key, std::string repr,
                                       const std::string& rv) { m[key] = repr + " rv=" + rv; });
        break;
      case ApiEventType::kUpsert:
        for_each_object(e.objects,
                        [&](Kind, std::string key, std::string repr, const std::string& rv) {
                          if (auto it = m.find(key); it != m.end()) {
                            auto held = std::stoull(it->second.substr(it->second.rfind("rv=") + 3));
                            if (held == std::stoull(rv)) ++duplicates;
                            if (held > std::stoull(rv)) ++regressions;
                          }
                          m[key] = repr + " rv=" + rv;
                        });
        break;
      case ApiEventType::kDelete:
        m.erase(e.ref.namespace_ + "/" + e.ref.name);
        break;
      case ApiEventType::kSynced:
        if (!replaces[e.kind]) ++early_synced;
        synced.insert(e.kind);
        break;
    }
    log.push_back(std::move(e));
  }

  /// Applies what the source has queued, waiting up to `wait` for it to become readable.
  void pump(ApiSource& src, std::chrono::milliseconds wait) {
    pollfd p{src.fd(), POLLIN, 0};
    poll(&p, 1, static_cast<int>(wait.count()));
    for (auto& e : src.drain()) apply(std::move(e));
  }

  /// Pumps until every kind of `want` is synced and the objects equal `want`.
  bool converge(ApiSource& src, const ObjectSet& want, std::chrono::milliseconds timeout = 10s) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
      bool all_synced = true;
      for (auto& [k, _] : want) all_synced = all_synced && synced.count(k);
      bool same = true;
      for (auto& [k, objs] : want) same = same && objects[k] == objs;
      if (all_synced && same) return true;
      if (Clock::now() >= deadline) return false;
      pump(src, 20ms);
    }
  }

  std::string diff(const ObjectSet& want) {
    std::string out;
    for (auto& [k, objs] : want) {
      for (auto& [key, repr] : objs) {
        auto it = objects[k].find(key);
        if (it == objects[k].end())
          out += "missing " + key + "\n";
        else if (it->second != repr)
          out += "stale " + it->second + "\n  want " + repr + "\n";
      }
      for (auto& [key, repr] : objects[k]) {
        if (!objs.count(key)) out += "extra " + key + "\n";
      }
    }
    return out;
  }
};

#define REQUIRE_CONVERGED(mirror, src, want, ...)                              \
  do {                                                                         \
    auto want_ = (want);                                                       \
    bool ok_ = (mirror).converge((src), want_ __VA_OPT__(, ) __VA_ARGS__);     \
    BOOST_REQUIRE_MESSAGE(ok_, "did not converge:\n" << (mirror).diff(want_)); \
  } while (0)

// ---- Fixtures -----------------------------------------------------------------------------

json pod(const std::string& ns, const std::string& name, const std::string& ip,
         const std::string& app = "web") {
  return json{{"kind", "Pod"},
              {"apiVersion", "v1"},
              {"metadata", {{"name", name}, {"namespace", ns}, {"labels", {{"app", app}}}}},
              {"spec",
               {{"nodeName", "node-1"},
                {"containers",
                 {{{"name", "c"}, {"image", "agnhost"}, {"ports", {{{"containerPort", 80}}}}}}}}},
              {"status", {{"phase", "Running"}, {"podIP", ip}, {"podIPs", {{{"ip", ip}}}}}}};
}

json bad_pod(const std::string& ns, const std::string& name) {
  json p = pod(ns, name, "10.0.0.99");
  p["spec"]["containers"][0]["ports"][0]["containerPort"] = 70000;
  return p;
}

json namespace_(const std::string& name, const std::string& team) {
  return json{{"kind", "Namespace"},
              {"apiVersion", "v1"},
              {"metadata", {{"name", name}, {"labels", {{"team", team}}}}}};
}

/// Puts every object of test/data/k8s's API responses (typed lists get their items' kind).
void load_fixtures(ApiServer& server) {
  for (const char* file :
       {"namespaces.json", "podlist-api.json", "pods.json", "networkpolicies.json", "node.json"}) {
    json doc = json::parse(slurp(std::string(KNIT_TEST_DATA) + "/k8s/" + file));
    std::string kind = doc.value("kind", "");
    if (!doc.contains("items")) {
      server.put(doc);
      continue;
    }
    std::string item_kind =
        kind.ends_with("List") && kind != "List" ? kind.substr(0, kind.size() - 4) : "";
    for (json item : doc["items"]) {
      if (!item.contains("kind")) item["kind"] = item_kind;
      if (!item.contains("apiVersion")) item["apiVersion"] = doc.value("apiVersion", "v1");
      if (item["kind"] == "Namespace" || item["kind"] == "Pod" || item["kind"] == "NetworkPolicy" ||
          item["kind"] == "Node") {
        server.put(item);
      }
    }
  }
}

const std::vector<Kind> kAllKinds = {Kind::kNamespace, Kind::kPod, Kind::kNetworkPolicy,
                                     Kind::kNode};

ApiSourceOptions fast(std::vector<Kind> kinds = kAllKinds) {
  ApiSourceOptions o;
  o.kinds = std::move(kinds);
  o.backoff_min = 20ms;
  o.backoff_max = 500ms;
  o.connect_timeout = 2000ms;
  o.list_timeout = 10000ms;
  return o;
}

ApiConfig plain(const ApiServer& server) {
  ApiConfig c;
  c.server = server.url();
  c.origin = "test";
  return c;
}

size_t count_requests(const ApiServer& server, const std::string& part) {
  size_t n = 0;
  for (const auto& r : server.requests()) n += r.find(part) != std::string::npos;
  return n;
}

std::string last_request(const ApiServer& server, const std::string& prefix) {
  std::string last;
  for (const auto& r : server.requests()) {
    if (r.starts_with(prefix)) last = r;
  }
  return last;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(watcher_api, *needs_netns())

BOOST_AUTO_TEST_CASE(knit_binary_does_not_link_libssl) {
  // libssl (and libcrypto through it) is dlopen'ed by the agent only, for an https:// API
  // server; every CNI exec would pay for it otherwise.
  Proc p = sh(std::string("readelf -d '") + KNIT_BINARY + "' | grep NEEDED");
  BOOST_TEST_REQUIRE(p.status == 0, p.err);
  BOOST_TEST(p.out.find("libc.so") != std::string::npos, p.out);
  BOOST_TEST(p.out.find("libssl") == std::string::npos, p.out);
  BOOST_TEST(p.out.find("libcrypto") == std::string::npos, p.out);
  BOOST_TEST(p.out.find("curl") == std::string::npos, p.out);
}

BOOST_AUTO_TEST_CASE(lists_and_watches_every_kind) {
  InNetns net;
  ApiServer server;
  load_fixtures(server);
  ApiSource src(plain(server), fast());
  Mirror m;
  REQUIRE_CONVERGED(m, src, truth(server, kAllKinds));
  BOOST_TEST(m.objects[Kind::kPod].size() >= 4u);
  BOOST_TEST(m.objects[Kind::kNode].size() == 1u);
  BOOST_TEST(m.early_synced == 0);
  for (Kind k : kAllKinds) BOOST_TEST(m.replaces[k] == 1);

  // Changes of every kind arrive as Upsert and Delete.
  BOOST_TEST_REQUIRE(eventually([&] { return server.active_watches() == 4; }, 5s));
  size_t logged = m.log.size();
  server.put(pod("x", "new-pod", "10.244.1.50"));
  server.put(namespace_("x", "renamed-team"));
  auto policies = server.objects("NetworkPolicy");
  BOOST_TEST_REQUIRE(!policies.empty());
  auto victim = policies.front()["metadata"];
  server.remove("NetworkPolicy", victim["namespace"].get<std::string>(),
                victim["name"].get<std::string>());
  json node = server.objects("Node").front();
  node["metadata"]["labels"]["extra"] = "yes";
  server.put(node);
  REQUIRE_CONVERGED(m, src, truth(server, kAllKinds));
  std::set<std::string> kinds_seen;
  for (size_t i = logged; i < m.log.size(); ++i) {
    kinds_seen.insert(str(to_string(m.log[i].kind), ' ', to_string(m.log[i].type)));
  }
  BOOST_TEST((kinds_seen == std::set<std::string>{"Pod Upsert", "Namespace Upsert",
                                                  "NetworkPolicy Delete", "Node Upsert"}));

  for (Kind k : kAllKinds) {
    BOOST_TEST(src.stats(k).lists == 1u);
    BOOST_TEST(src.stats(k).events >= 3u);  // Replace, Synced, and at least one change
  }
  auto s = src.stats();
  BOOST_TEST(s.lists == 4u);
  BOOST_TEST(s.relists == 0u);
  BOOST_TEST(s.errors == 0u);
  // Every pod of the cluster (no fieldSelector), paginated, watched with bookmarks from the
  // list's resourceVersion.
  BOOST_TEST(count_requests(server, "/api/v1/pods?limit=500") == 1u);
  BOOST_TEST(count_requests(server, "fieldSelector") == 0u);
  auto w = last_request(server, "/api/v1/pods?watch=true");
  BOOST_TEST(w.find("allowWatchBookmarks=true") != std::string::npos, w);
  BOOST_TEST(w.find("&resourceVersion=") != std::string::npos, w);
  BOOST_TEST(w.find("&timeoutSeconds=") != std::string::npos, w);
  BOOST_TEST(count_requests(server, "/apis/networking.k8s.io/v1/networkpolicies?watch=true") == 1u);
}

BOOST_AUTO_TEST_CASE(paginated_list_is_one_consistent_replace) {
  InNetns net;
  ApiServer server;
  for (int i = 0; i < 1234; ++i) {
    server.put(pod("ns" + std::to_string(i % 7), "p" + std::to_string(i),
                   "10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250)));
  }
  server.set_header_delay(20ms);  // pages take a while: changes land between them
  auto o = fast({Kind::kPod});
  o.page_size = 100;
  ApiSource src(plain(server), o);
  std::thread churn([&] {
    for (int i = 0; i < 30; ++i) {
      std::this_thread::sleep_for(10ms);
      server.put(pod("late", "l" + std::to_string(i), "10.2.0." + std::to_string(i)));
      server.remove("Pod", "ns" + std::to_string(i % 7), "p" + std::to_string(i));
    }
  });
  churn.join();
  Mirror m;
  REQUIRE_CONVERGED(m, src, truth(server, {Kind::kPod}), 20s);
  BOOST_TEST(m.replaces[Kind::kPod] == 1);
  BOOST_TEST(m.log.front().objects.pods.size() >= 1204u);  // the Replace: one snapshot, 13 pages
  BOOST_TEST(count_requests(server, "/api/v1/pods?limit=100") == 13u);
  BOOST_TEST(count_requests(server, "&continue=") == 12u);
  BOOST_TEST(m.duplicates == 0);
  BOOST_TEST(m.regressions == 0);
  BOOST_TEST(src.stats().relists == 0u);
}

BOOST_AUTO_TEST_CASE(bookmarks_advance_the_resource_version) {
  InNetns net;
  ApiServer server;
  server.put(pod("a", "p1", "10.0.0.1"));
  ApiSource src(plain(server), fast({Kind::kPod}));
  Mirror m;
  REQUIRE_CONVERGED(m, src, truth(server, {Kind::kPod}));
  BOOST_TEST_REQUIRE(eventually([&] { return server.active_watches("Pod") == 1; }, 5s));

  // Other kinds move the global resourceVersion; the pod watch hears only the bookmark.
  for (int i = 0; i < 5; ++i) server.put(namespace_("n" + std::to_string(i), "t"));
  uint64_t rv = server.resource_version();
  server.bookmark();
  BOOST_TEST_REQUIRE(eventually([&] { return server.bookmarks_sent() == 1; }, 5s));
  // Compacting at the bookmark: a watch from before it would be 410 and force a relist.
  server.compact();
  server.drop_connections();
  BOOST_TEST_REQUIRE(eventually([&] { return server.active_watches("Pod") == 1; }, 5s));
  auto w = last_request(server, "/api/v1/pods?watch=true");
  BOOST_TEST(w.find("resourceVersion=" + std::to_string(rv) + "&") != std::string::npos, w);
  server.put(pod("a", "p2", "10.0.0.2"));
  REQUIRE_CONVERGED(m, src, truth(server, {Kind::kPod}));
  BOOST_TEST(src.stats().relists == 0u);
  BOOST_TEST(m.replaces[Kind::kPod] == 1);
}

BOOST_AUTO_TEST_CASE(stream_cut_mid_event_converges_without_loss_or_duplicates) {
  InNetns net;
  ApiServer server;
  for (int i = 0; i < 20; ++i)
    server.put(pod("a", "p" + std::to_string(i), "10.0.1." + std::to_string(i)));
  ApiSource src(plain(server), fast({Kind::kPod, Kind::kNamespace}));
  Mirror m;
  REQUIRE_CONVERGED(m, src, truth(server, {Kind::kPod, Kind::kNamespace}));
  const int kRounds = 12;
  for (int round = 0; round < kRounds; ++round) {
    BOOST_TEST_REQUIRE(eventually([&] { return server.active_watches("Pod") == 1; }, 5s));
    size_t cuts = server.cuts_done();
    server.cut_next_event();
    // The first change is cut in half; the rest land on the next watch (or are replayed by it).
    server.put(pod("a", "p" + std::to_string(round), "10.0.2." + std::to_string(round), "v2"));
    server.remove("Pod", "a", "p" + std::to_string(19 - round));
    server.put(pod("b", "q" + std::to_string(round), "10.0.3." + std::to_string(round)));
    BOOST_TEST_REQUIRE(eventually(
        [&] {
          m.pump(src, 5ms);
          return server.cuts_done() == cuts + 1;
        },
        5s));
  }
  REQUIRE_CONVERGED(m, src, truth(server, {Kind::kPod, Kind::kNamespace}));
  auto s = src.stats();
  BOOST_TEST(m.duplicates == 0);
  BOOST_TEST(m.regressions == 0);
  BOOST_TEST(s.relists == 0u);                             // history was kept: re-watch, no relist
  BOOST_TEST(s.errors == static_cast<uint64_t>(kRounds));  // each cut was seen, once
  BOOST_TEST(s.watch_restarts == static_cast<uint64_t>(kRounds));
}

BOOST_DATA_TEST_CASE(gone_on_reconnect_relists_and_replaces, data::make({false, true}), as_event) {
  InNetns net;
  ApiServer server;
  server.set_gone_as_event(as_event);
  for (int i = 0; i < 10; ++i)
    server.put(pod("a", "p" + std::to_string(i), "10.0.1." + std::to_string(i)));
  ApiSource src(plain(server), fast({Kind::kPod}));
  Mirror m;
  REQUIRE_CONVERGED(m, src, truth(server, {Kind::kPod}));

  // Down, changed while down, history compacted: the watch cannot resume.
  server.stop();
  server.remove("Pod", "a", "p3");
  server.put(pod("a", "p4", "10.0.9.4", "changed"));
  server.put(pod("a", "new", "10.0.9.99"));
  server.compact();
  server.start();
  REQUIRE_CONVERGED(m, src, truth(server, {Kind::kPod}));
  BOOST_TEST(m.replaces[Kind::kPod] == 2);
  BOOST_TEST(src.stats(Kind::kPod).relists == 1u);
  BOOST_TEST(src.stats(Kind::kPod).lists == 2u);
  BOOST_TEST(src.stats(Kind::kNode).lists == 0u);  // not watched
  // The second Replace carried the whole set, not a difference.
  const ApiEvent* last_replace = nullptr;
  for (const auto& e : m.log) {
    if (e.type == ApiEventType::kReplace) last_replace = &e;
  }
  BOOST_TEST_REQUIRE(last_replace != nullptr);
  BOOST_TEST(last_replace->objects.pods.size() == 10u);
  BOOST_TEST(count_requests(server, "/api/v1/pods?limit=500") == 2u);
}

BOOST_AUTO_TEST_CASE(error_410_in_an_open_stream_relists) {
  InNetns net;
  ApiServer server;
  server.put(pod("a", "p1", "10.0.0.1"));
  ApiSource src(plain(server), fast({Kind::kPod}));
  Mirror m;
  REQUIRE_CONVERGED(m, src, truth(server, {Kind::kPod}));
  BOOST_TEST_REQUIRE(eventually([&] { return server.active_watches("Pod") == 1; }, 5s));
  server.send_raw("Pod",
                  R"J({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},)J"
                  R"J("status":"Failure","message":"too old resource version: 1 (2)",)J"
                  R"J("reason":"Expired","code":410}})J");
  BOOST_TEST_REQUIRE(eventually(
      [&] {
        m.pump(src, 10ms);
        return m.replaces[Kind::kPod] == 2;
      },
      5s));
  server.put(pod("a", "p2", "10.0.0.2"));
  REQUIRE_CONVERGED(m, src, truth(server, {Kind::kPod}));
  BOOST_TEST(src.stats().relists == 1u);
}

BOOST_AUTO_TEST_CASE(server_restart_reconnects_with_backoff_and_converges) {
  InNetns net;
  ApiServer server;
  load_fixtures(server);
  ApiSource src(plain(server), fast());
  Mirror m;
  REQUIRE_CONVERGED(m, src, truth(server, kAllKinds));
  auto before = src.stats();

  server.stop();
  server.put(pod("x", "while-down", "10.244.1.77"));
  server.put(namespace_("y", "moved"));
  std::this_thread::sleep_for(1500ms);
  auto during = src.stats();
  server.start();
  REQUIRE_CONVERGED(m, src, truth(server, kAllKinds));

  auto failures = during.errors - before.errors;
  // Four kinds retrying for 1.5 s: backoff from 20 ms doubling to 500 ms is about 7 attempts
  // each; retrying without backoff would be hundreds.
  BOOST_TEST(failures >= 4u);
  BOOST_TEST(failures <= 48u);
  BOOST_TEST(src.stats().relists == 0u);  // resourceVersions survived the restart
  BOOST_TEST(m.duplicates == 0);
}

BOOST_AUTO_TEST_CASE(a_silently_dead_path_is_noticed_and_the_watch_recovers) {
  // The path to the API server goes dead without a FIN or a reset (its address moved, a route
  // renumbered): modelled by dropping every packet of the server's port. Only TCP keepalive
  // can tell; the source must give the watches up within ~30 s (15 s idle + 3 probes 5 s
  // apart; the kernel default of 9 probes took 2 min) and converge once the path is back.
  InNetns net;
  ApiServer server;
  load_fixtures(server);
  ApiSource src(plain(server), fast());
  Mirror m;
  REQUIRE_CONVERGED(m, src, truth(server, kAllKinds));
  auto before = src.stats();
  std::string port = std::to_string(server.port());
  net.ns.must("nft add table inet blackhole");
  net.ns.must("nft add chain inet blackhole in '{ type filter hook input priority 0; }'");
  net.ns.must("nft add rule inet blackhole in tcp dport " + port + " drop");
  net.ns.must("nft add rule inet blackhole in tcp sport " + port + " drop");
  auto start = Clock::now();
  bool noticed = false;
  while (!noticed && Clock::now() - start < 50s) {
    std::this_thread::sleep_for(250ms);
    noticed = src.stats().errors > before.errors;
  }
  auto waited = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - start);
  net.ns.must("nft delete table inet blackhole");
  BOOST_TEST_REQUIRE(noticed, "no watch noticed the dead path in " << waited.count() << " s");
  BOOST_TEST(waited < 40s, "noticed after " << waited.count() << " s");
  server.put(pod("x", "after-blackhole", "10.244.1.78"));
  REQUIRE_CONVERGED(m, src, truth(server, kAllKinds), 20s);
  BOOST_TEST(m.duplicates == 0);
}

BOOST_AUTO_TEST_CASE(slow_server_still_converges) {
  InNetns net;
  ApiServer server;
  load_fixtures(server);
  server.set_header_delay(700ms);
  server.set_line_delay(50ms);
  ApiSource src(plain(server), fast());
  Mirror m;
  REQUIRE_CONVERGED(m, src, truth(server, kAllKinds), 20s);
  for (int i = 0; i < 10; ++i)
    server.put(pod("x", "slow" + std::to_string(i), "10.244.1." + std::to_string(100 + i)));
  server.remove("Pod", "x", "slow3");
  REQUIRE_CONVERGED(m, src, truth(server, kAllKinds), 20s);
  BOOST_TEST(src.stats().errors == 0u);
}

BOOST_AUTO_TEST_CASE(malformed_objects_are_skipped_and_the_stream_goes_on) {
  InNetns net;
  ApiServer server;
  server.put(pod("a", "good", "10.0.0.1"));
  server.put(bad_pod("a", "bad-in-list"));
  ApiSource src(plain(server), fast({Kind::kPod}));
  Mirror m;
  REQUIRE_CONVERGED(m, src, truth(server, {Kind::kPod}));
  BOOST_TEST(m.objects[Kind::kPod].count("a/good") == 1u);
  BOOST_TEST(m.objects[Kind::kPod].count("a/bad-in-list") == 0u);
  BOOST_TEST(src.stats().skipped == 1u);
  BOOST_TEST_REQUIRE(eventually([&] { return server.active_watches("Pod") == 1; }, 5s));
  auto restarts = src.stats().watch_restarts;

  server.put(pod("a", "second", "10.0.0.2"));
  server.put(bad_pod("a", "good"));             // a valid pod turns invalid: forgotten
  server.send_raw("Pod", "{this is not json");  // an unreadable line
  server.send_raw(
      "Pod",
      R"({"type":"ADDED","object":{"kind":"Node","apiVersion":"v1","metadata":{"name":"n"}}})");
  server.put(pod("a", "third", "10.0.0.3"));
  REQUIRE_CONVERGED(m, src, truth(server, {Kind::kPod}));
  BOOST_TEST(m.objects[Kind::kPod].count("a/good") == 0u);
  BOOST_TEST(m.objects[Kind::kPod].count("a/third") == 1u);
  auto s = src.stats();
  BOOST_TEST(s.skipped == 2u);
  BOOST_TEST(s.errors == 2u);                // the two bad lines
  BOOST_TEST(s.watch_restarts == restarts);  // on the same stream
}

BOOST_AUTO_TEST_CASE(http_errors_back_off_and_recover) {
  InNetns net;
  ApiServer server;
  server.put(pod("a", "p", "10.0.0.1"));
  server.fail_next(4, 503);
  ApiSource src(plain(server), fast({Kind::kPod}));
  Mirror m;
  REQUIRE_CONVERGED(m, src, truth(server, {Kind::kPod}));
  BOOST_TEST(src.stats().errors == 4u);
  BOOST_TEST_REQUIRE(eventually([&] { return server.active_watches("Pod") == 1; }, 5s));
  server.fail_next(2, 500);  // the watch after a drop fails twice, then resumes
  server.drop_connections();
  server.put(pod("a", "q", "10.0.0.2"));
  REQUIRE_CONVERGED(m, src, truth(server, {Kind::kPod}));
  BOOST_TEST(src.stats().relists == 0u);
}

BOOST_AUTO_TEST_CASE(bearer_token_file_is_re_read_when_rejected) {
  InNetns net;
  char dir[] = "/tmp/knit-api-token-XXXXXX";
  BOOST_TEST_REQUIRE(mkdtemp(dir) != nullptr);
  std::string token_file = std::string(dir) + "/token";
  spit(token_file, "first\n");
  ApiServer server;
  server.set_token("first");
  server.put(pod("a", "p", "10.0.0.1"));
  spit(std::string(dir) + "/config",
       "current-context: c\n"
       "clusters: [{name: k, cluster: {server: \"" +
           server.url() +
           "\"}}]\n"
           "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
           "users: [{name: u, user: {tokenFile: token}}]\n");
  ApiConfig config = load_kubeconfig(std::string(dir) + "/config");
  BOOST_TEST(config.token == "first");
  ApiSource src(config, fast({Kind::kPod}));
  Mirror m;
  REQUIRE_CONVERGED(m, src, truth(server, {Kind::kPod}));

  // The token rotates: the server wants the new one, the file has it; a 401 makes the source
  // read the file again at once, whatever the refresh period.
  server.set_token("second");
  spit(token_file, "second\n");
  server.drop_connections();
  server.put(pod("a", "after-rotation", "10.0.0.2"));
  REQUIRE_CONVERGED(m, src, truth(server, {Kind::kPod}));
  BOOST_TEST(src.stats().errors >= 1u);  // the one 401
  (void)!system((std::string("rm -rf ") + dir).c_str());
}

BOOST_AUTO_TEST_CASE(https_with_client_certificate_from_kubeconfig_data) {
  InNetns net;
  char dir_tmpl[] = "/tmp/knit-api-tls-XXXXXX";
  BOOST_TEST_REQUIRE(mkdtemp(dir_tmpl) != nullptr);
  std::string d = dir_tmpl;
  // A CA, a server certificate for 127.0.0.1 and a client certificate, as kubeadm makes them.
  Proc p = sh("cd " + d +
              " && set -e; "
              "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
              "  -subj /CN=test-ca -keyout ca.key -out ca.crt 2>/dev/null; "
              "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
              "  -subj /CN=kube-apiserver -keyout server.key -out server.csr 2>/dev/null; "
              "printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext; "
              "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 "
              "  -extfile san.ext -out server.crt 2>/dev/null; "
              "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
              "  -subj /O=system:nodes/CN=system:node:node-1 -keyout client.key -out client.csr "
              "2>/dev/null; "
              "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 "
              "  -out client.crt 2>/dev/null; "
              "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
              "  -subj /CN=other-ca -keyout other.key -out other.crt 2>/dev/null");
  BOOST_TEST_REQUIRE(p.status == 0, p.err);
  ApiServer::Options so;
  so.cert_file = d + "/server.crt";
  so.key_file = d + "/server.key";
  so.client_ca_file = d + "/ca.crt";
  ApiServer server(so);
  server.put(pod("a", "p", "10.0.0.1"));

  auto b64 = [&](const std::string& file) {
    Proc r = sh("base64 -w0 " + d + "/" + file);
    return r.out;
  };
  auto write_config = [&](const std::string& ca) {
    spit(d + "/config",
         "apiVersion: v1\nkind: Config\ncurrent-context: kind-kind\n"
         "clusters:\n- cluster:\n    certificate-authority-data: " +
             b64(ca) + "\n    server: " + server.url() +
             "\n  name: kind-kind\n"
             "contexts:\n- context: {cluster: kind-kind, user: kind-kind}\n  name: kind-kind\n"
             "users:\n- name: kind-kind\n  user:\n    client-certificate-data: " +
             b64("client.crt") + "\n    client-key-data: " + b64("client.key") + "\n");
    return load_kubeconfig(d + "/config");
  };
  {
    ApiSource src(write_config("ca.crt"), fast({Kind::kPod}));
    Mirror m;
    REQUIRE_CONVERGED(m, src, truth(server, {Kind::kPod}));
    BOOST_TEST(src.stats().errors == 0u);
  }
  {
    // A server the CA does not vouch for is never trusted.
    ApiSource src(write_config("other.crt"), fast({Kind::kPod}));
    Mirror m;
    BOOST_TEST(!m.converge(src, truth(server, {Kind::kPod}), 1500ms));
    BOOST_TEST(src.stats().errors >= 1u);
    BOOST_TEST(m.log.empty());
  }
  (void)!system(("rm -rf " + d).c_str());
}

BOOST_AUTO_TEST_CASE(stop_is_prompt_in_a_watch_and_in_a_backoff) {
  InNetns net;
  ApiServer server;
  server.put(pod("a", "p", "10.0.0.1"));
  {
    ApiSource src(plain(server), fast());
    BOOST_TEST_REQUIRE(eventually([&] { return server.active_watches() == 4; }, 5s));
    auto t0 = Clock::now();
    src.stop();
    BOOST_TEST((Clock::now() - t0 < 500ms));
    BOOST_TEST(eventually([&] { return server.active_watches() == 0; }, 2s));
  }
  server.stop();
  auto o = fast();
  o.backoff_min = 5000ms;
  o.backoff_max = 5000ms;
  ApiSource src(plain(server), o);
  std::this_thread::sleep_for(200ms);  // every worker failed to connect and sleeps
  auto t0 = Clock::now();
  src.stop();
  BOOST_TEST((Clock::now() - t0 < 500ms));
  BOOST_TEST(src.stats().errors >= 4u);
}

BOOST_AUTO_TEST_SUITE_END()
