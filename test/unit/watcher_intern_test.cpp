// Shared<T> (watcher/intern.hpp): one copy per distinct value, values that behave like copies.
#include <boost/test/unit_test.hpp>

#include <string>
#include <thread>
#include <vector>

#include "watcher/intern.hpp"
#include "watcher/k8s_decode.hpp"

using namespace knit::watcher;

namespace {

// A type no other test interns, so the pool's size is this test's own.
using Ints = std::vector<int>;

std::string pod_json(const std::string& name, const std::string& app) {
  return R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":")" + name +
         R"(","namespace":"x","labels":{"app":")" + app +
         R"(","tier":"web"}},"spec":{"containers":[{"name":"c","ports":[{"name":"http","containerPort":80}]}]}})";
}

std::string list_of(const std::vector<std::string>& items) {
  std::string out = R"({"apiVersion":"v1","kind":"List","items":[)";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + items[i];
  return out + "]}";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(watcher_intern)

BOOST_AUTO_TEST_CASE(replicas_share_one_copy_of_their_labels_and_ports) {
  auto d = decode_json(list_of({pod_json("a", "web"), pod_json("b", "web"), pod_json("c", "db")}));
  BOOST_TEST_REQUIRE(d.pods.size() == 3u);
  const Pod &a = d.pods[0], &b = d.pods[1], &c = d.pods[2];
  BOOST_TEST(&*a.labels == &*b.labels);
  BOOST_TEST(&*a.ports == &*b.ports);
  BOOST_TEST(&*a.ports == &*c.ports);  // same ports, different labels
  BOOST_TEST(&*a.labels != &*c.labels);
  BOOST_TEST(a.labels->at("app") == "web");
  BOOST_TEST(c.labels->at("app") == "db");
}

BOOST_AUTO_TEST_CASE(an_edit_changes_only_the_edited_holder) {
  Shared<Labels> a = Labels{{"app", "web"}};
  Shared<Labels> b = a;
  b.edit([](Labels& l) { l["app"] = "db"; });
  BOOST_TEST(a->at("app") == "web");
  BOOST_TEST(b->at("app") == "db");
  BOOST_TEST(!(a == b));
  b.edit([](Labels& l) { l["app"] = "web"; });
  BOOST_TEST((a == b));  // equal values: the same copy again
  BOOST_TEST(&*a == &*b);
  BOOST_TEST((Shared<Labels>() == Labels{}));
}

BOOST_AUTO_TEST_CASE(values_nobody_holds_are_swept) {
  std::vector<Shared<Ints>> live;
  for (int i = 0; i < 10; ++i) live.emplace_back(Ints{i});
  for (int i = 0; i < 10'000; ++i) Shared<Ints> gone(Ints{1000 + i});
  // At most twice what is held (plus the minimum before the first sweep) stays in the pool.
  BOOST_TEST(Shared<Ints>::pool_size() <= 2 * live.size() + 64 + 1);
  for (int i = 0; i < 10; ++i) BOOST_TEST(live[i]->at(0) == i);
}

BOOST_AUTO_TEST_CASE(threads_intern_and_drop_the_same_values) {
  std::vector<std::thread> threads;
  std::vector<int> wrong(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &wrong] {
      for (int i = 0; i < 20'000; ++i) {
        int v = i % 200;
        Shared<Ints> s(Ints{v, v});
        Shared<Ints> again(Ints{v, v});
        if (s->at(1) != v || &*s != &*again) ++wrong[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) BOOST_TEST(wrong[t] == 0);
}

BOOST_AUTO_TEST_SUITE_END()
