// The policy compiler against golden rulesets: test/data/policy/<case>/input.yaml compiled for
// node1 must render exactly as test/data/golden/policy-<case>.nft. The netns test applies the
// same compilation to a kernel and checks the kernel holds the same text.
// Regenerate after an intended change with KNIT_UPDATE_GOLDEN=1 (and read the diff!).
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "nft/render.hpp"
#include "test/files.hpp"
#include "watcher/compile.hpp"
#include "watcher/k8s_decode.hpp"
#include "watcher/manifests.hpp"

using knit::test::slurp;

using namespace knit;
using namespace knit::watcher;

namespace {

const char* kCases[] = {"deny-and-allow-all", "selectors-and-or", "ipblock-except",
                        "named-ports",        "egress",           "dual-stack",
                        "long-names"};

ClusterView view_of(const std::string& case_name) {
  auto m = load_manifests(std::string(KNIT_TEST_DATA) + "/policy/" + case_name);
  // The message is evaluated even when the check passes: no front() of an empty vector.
  BOOST_TEST_REQUIRE(m.objects.errors.empty(),
                     (m.objects.errors.empty() ? std::string() : m.objects.errors.front()));
  ClusterView v;
  v.node_name = "node1";
  for (auto& n : m.objects.namespaces) v.namespaces[n.name] = n;
  for (auto& p : m.objects.pods) v.pods[object_key(p.namespace_, p.name)] = p;
  for (auto& p : m.objects.policies) v.policies[object_key(p.namespace_, p.name)] = p;
  return v;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(watcher_compile)

BOOST_DATA_TEST_CASE(golden, boost::unit_test::data::make(kCases), case_name) {
  std::string text = nft::render(compile(view_of(case_name)));
  std::string golden = std::string(KNIT_TEST_DATA) + "/golden/policy-" + case_name + ".nft";
  if (std::getenv("KNIT_UPDATE_GOLDEN")) std::ofstream(golden) << text;
  BOOST_TEST(text == slurp(golden));
}

BOOST_AUTO_TEST_CASE(names_at_the_apis_limits_fit_the_kernel_and_stay_apart) {
  // Two 253-character policy names in a 63-character namespace, differing in the last
  // character: "allow/<ns>/<policy>" is 323 bytes, the kernel takes 255 and refuses the whole
  // batch otherwise (every later change with it).
  auto rs = compile(view_of("long-names"));
  std::set<std::string> counters, sets;
  for (const auto& c : rs.counters) {
    BOOST_TEST(c.name.size() <= 255u, c.name);
    counters.insert(c.name);
  }
  for (const auto& s : rs.sets) {
    BOOST_TEST(s.name.size() <= 255u, s.name);
    sets.insert(s.name);
  }
  for (const auto& c : rs.chains) BOOST_TEST(c.name.size() <= 255u, c.name);
  // Comments (the kernel keeps 127 bytes): a longer one in the model never equals the read-back.
  for (const auto& s : rs.sets)
    for (const auto& e : s.elements) BOOST_TEST(e.comment.size() <= 127u, e.comment);
  for (const auto& c : rs.chains)
    for (const auto& r : c.rules) BOOST_TEST(r.comment.size() <= 127u, r.comment);
  BOOST_TEST(counters.size() == rs.counters.size());
  BOOST_TEST(sets.size() == rs.sets.size());
  BOOST_TEST(counters.size() == 3u);  // two policies' allow counters and the namespace's drop
  std::string ns = "n" + std::string(58, 'n') + "-end";
  std::string stem = std::string(62, 'p') + "." + std::string(62, 'p') + "." +
                     std::string(62, 'p') + "." + std::string(62, 'p');
  BOOST_TEST(counters.count(allow_counter(ns, stem + "-a")));
  BOOST_TEST(counters.count(allow_counter(ns, stem + "-b")));
  BOOST_TEST(allow_counter(ns, stem + "-a") != allow_counter(ns, stem + "-b"));
  // A name that fits is kept as it is, so metrics read it back without a lookup.
  BOOST_TEST(allow_counter("x", "web") == "allow/x/web");
}

BOOST_AUTO_TEST_CASE(names_derived_from_content_are_128_bits_of_sha256) {
  // SHA-256("abc") begins ba7816bf8f01cfea414140de5dae2223.
  BOOST_TEST(name_hash("abc") == "ba7816bf8f01cfea414140de5dae2223");
  auto rs = compile(view_of("selectors-and-or"));
  size_t shared = 0;
  for (const auto& s : rs.sets) {
    if (s.name.rfind("peers/", 0) != 0) continue;
    ++shared;
    BOOST_TEST(s.name.size() == std::string("peers/").size() + 32 + 2, s.name);
  }
  BOOST_TEST(shared > 0u);
}

BOOST_AUTO_TEST_CASE(deterministic_and_pod_churn_changes_no_rule) {
  auto v = view_of("dual-stack");
  auto before = compile(v);
  BOOST_CHECK(before == compile(v));
  // A new frontend pod on another node, and the backend's labels changing: sets and maps move,
  // chains stay exactly the same.
  Pod p = v.pods.at("x/b");
  p.name = "b2";
  p.ips = {*IpAddr::parse("10.0.2.3")};
  v.pods["x/b2"] = p;
  v.pods.at("x/a").labels.edit([](Labels& l) { l["extra"] = "label"; });
  auto after = compile(v);
  BOOST_CHECK(after.chains == before.chains);
  BOOST_CHECK(!(after.sets == before.sets));
  v.pods.at("x/a").labels.edit([](Labels& l) { l["app"] = "nothing"; });  // no longer selected: no dispatch, same chains
  auto unselected = compile(v);
  BOOST_CHECK(unselected.chains == before.chains);
  BOOST_TEST(unselected.find_set("ingress4")->elements.empty());
}

BOOST_AUTO_TEST_CASE(an_address_two_local_pods_show_is_dispatched_once) {
  // A reused address while the old pod's object still lists it: the kernel refuses a map with
  // the address twice (the whole transaction would fail), so exactly one pod is dispatched.
  auto v = view_of("deny-and-allow-all");
  const std::string isolated = "x/a";  // running on node1, isolated by deny-all
  auto before = compile(v).find_set("ingress4")->elements;
  Pod twin = v.pods.at(isolated);
  twin.name = "zz-twin";
  v.pods[object_key(twin.namespace_, twin.name)] = twin;
  auto both = compile(v).find_set("ingress4")->elements;
  BOOST_TEST(both.size() == before.size());
  // The pod the CNI plugin reported holds the address, whatever the names' order.
  v.attachments["cid/eth0"] = Attachment{twin.namespace_, twin.name, twin.ips};
  auto attached = compile(v).find_set("ingress4")->elements;
  BOOST_TEST(attached.size() == before.size());
  bool twin_holds = false;
  for (const auto& e : attached) twin_holds = twin_holds || e.comment == twin.namespace_ + "/zz-twin";
  BOOST_TEST(twin_holds);
}

// ---- one address, two pods ----------------------------------------------------------------------
//
// Pod "old" (app=open) had 10.0.1.5 on node1; the CNI plugin released it and handed it to "new"
// (app=locked), while the API still shows "old" with it (terminating, or its delete not seen
// yet). Packets from and to 10.0.1.5 are new's: nothing "old" may have must reach them.
namespace {

const char* kReused = R"(
apiVersion: v1
kind: Namespace
metadata: {name: x, labels: {ns: x}}
---
apiVersion: v1
kind: Namespace
metadata: {name: c, labels: {ns: c}}
---
apiVersion: v1
kind: Pod
metadata: {name: old, namespace: x, labels: {app: open}}
spec: {nodeName: node1, containers: [{name: c, image: i, ports: [{name: http, containerPort: 8080}]}]}
status: {phase: Running, podIPs: [{ip: 10.0.1.5}]}
---
apiVersion: v1
kind: Pod
metadata: {name: new, namespace: x, labels: {app: locked}}
spec: {nodeName: node1, containers: [{name: c, image: i, ports: [{name: http, containerPort: 80}]}]}
status: {phase: Pending}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: c, labels: {app: client}}
spec: {nodeName: node1, containers: [{name: c, image: i}]}
status: {phase: Running, podIPs: [{ip: 10.0.1.7}]}
---
# x/open lets everyone in to app=open; x/locked isolates app=locked with no rule.
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: open, namespace: x}
spec:
  podSelector: {matchLabels: {app: open}}
  ingress: [{}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: locked, namespace: x}
spec:
  podSelector: {matchLabels: {app: locked}}
  policyTypes: [Ingress, Egress]
---
# c/from-open lets app=open of x in, and out to its named port http.
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-open, namespace: c}
spec:
  podSelector: {}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: x}}, podSelector: {matchLabels: {app: open}}}]}]
  egress: [{to: [{namespaceSelector: {matchLabels: {ns: x}}, podSelector: {matchLabels: {app: open}}}],
            ports: [{port: http}]}]
)";

const IpAddr kAddr = *IpAddr::parse("10.0.1.5");

ClusterView reused_view() {
  auto d = decode_manifest(kReused, "reused.yaml");
  BOOST_TEST_REQUIRE(d.errors.empty(), (d.errors.empty() ? std::string() : d.errors.front()));
  ClusterView v;
  v.node_name = "node1";
  for (auto& n : d.namespaces) v.namespaces[n.name] = n;
  for (auto& p : d.pods) v.pods[object_key(p.namespace_, p.name)] = p;
  for (auto& p : d.policies) v.policies[object_key(p.namespace_, p.name)] = p;
  v.attachments["cid-client/eth0"] = Attachment{"c", "client", {*IpAddr::parse("10.0.1.7")}};
  v.attachments["cid-new/eth0"] = Attachment{"x", "new", {kAddr}};
  return v;
}

/// What the compiled policies say about 10.0.1.5.
struct AddrFacts {
  bool open_target = false;   ///< in x/open's targets: whoever sends to it is let in
  bool open_peer = false;     ///< in c/from-open's ingress peers: it may reach c's pods
  std::set<uint16_t> named;   ///< c's pods may send to it on these ports (named port http)
  std::string ingress_chain;  ///< where its ingress is judged ("" = not isolated)
  friend std::ostream& operator<<(std::ostream& o, const AddrFacts& f) {
    o << "open_target=" << f.open_target << " open_peer=" << f.open_peer << " named={";
    for (auto p : f.named) o << p << ",";
    return o << "} ingress=" << f.ingress_chain;
  }
};

AddrFacts facts_of(const ClusterView& v) {
  Compiler c(v);
  AddrFacts f;
  auto open = c.policy(v.policies.at("x/open"));
  for (const auto& s : open.sets) {
    if (s->name == "x/open/pods4") {
      f.open_target = std::binary_search(s->hosts.begin(), s->hosts.end(), kAddr);
    }
  }
  const auto& from_open = v.policies.at("c/from-open");
  auto peers = c.peer_set(from_open, false, 0, Family::kV4);
  f.open_peer = std::binary_search(peers->hosts.begin(), peers->hosts.end(), kAddr);
  auto named = c.named_set(from_open, 0, Family::kV4);
  for (const auto& t : named->tuples) {
    if (t.addr.lo == kAddr) f.named.insert(t.ports.lo);
  }
  for (const auto& m : c.dispatch()) {
    if (m.name != "ingress4") continue;
    for (const auto& e : m.elements) {
      if (e.key == nft::element({kAddr}).key) f.ingress_chain = e.verdict.chain;
    }
  }
  return f;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_reused_address_is_the_attached_pods_alone) {
  // The CNI plugin's report is the truth on its node: "old"'s status is stale, and its labels
  // must not open 10.0.1.5 (x/open's targets, c/from-open's peers) nor its ports name it.
  auto f = facts_of(reused_view());
  BOOST_TEST(!f.open_target, f);
  BOOST_TEST(!f.open_peer, f);
  BOOST_TEST(f.named.empty(), f);  // "old"'s http (8080) is not new's, and new is no peer
  BOOST_TEST(f.ingress_chain == "ingress/x", f);
}

BOOST_AUTO_TEST_CASE(an_address_two_attachments_claim_allows_what_both_pods_are_allowed) {
  // Both attached: a DEL reports its detach after releasing the address, so a concurrent ADD
  // can report the same address first. Which pod's packets these are cannot be told: an
  // address is in a set only when every pod holding it would put it there, and isolated when
  // any of them is (never more open than either pod's policies).
  auto v = reused_view();
  v.attachments["cid-old/eth0"] = Attachment{"x", "old", {kAddr}};
  auto f = facts_of(v);
  BOOST_TEST(!f.open_target, f);
  BOOST_TEST(!f.open_peer, f);
  BOOST_TEST(f.named.empty(), f);  // http is 8080 on one, 80 on the other
  BOOST_TEST(f.ingress_chain == "ingress/x", f);
  // Both app=open: both are x/open's targets and c/from-open's peers.
  v.pods.at("x/new").labels.edit([](Labels& l) { l["app"] = "open"; });
  auto both_open = facts_of(v);
  BOOST_TEST(both_open.open_target, both_open);
  BOOST_TEST(both_open.open_peer, both_open);
  BOOST_TEST(both_open.named.empty(), both_open);  // still 8080 against 80
}

BOOST_AUTO_TEST_CASE(an_address_two_api_pods_show_without_attachment_allows_what_both_are) {
  // No report from this node decides (e.g. both are remote pods, or manifests list both): the
  // same fail-safe choice. And once "old" is gone, 10.0.1.5 is new's alone again.
  auto v = reused_view();
  v.attachments.erase("cid-new/eth0");
  v.pods.at("x/new").ips = {kAddr};
  v.pods.at("x/new").node_name = "node2";
  v.pods.at("x/old").node_name = "node2";
  auto f = facts_of(v);
  BOOST_TEST(!f.open_peer, f);
  BOOST_TEST(f.named.empty(), f);
  v.pods.erase("x/old");
  auto alone = facts_of(v);
  BOOST_TEST(!alone.open_peer, alone);
  BOOST_TEST(alone.named.empty(), alone);
  v.pods.at("x/new").labels.edit([](Labels& l) { l["app"] = "open"; });
  auto open = facts_of(v);
  BOOST_TEST(open.open_peer, open);
  BOOST_TEST((open.named == std::set<uint16_t>{80}), open);
}

BOOST_AUTO_TEST_SUITE_END()
