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
#include "watcher/compile.hpp"
#include "watcher/manifests.hpp"
#include "test/files.hpp"

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

BOOST_AUTO_TEST_SUITE_END()
