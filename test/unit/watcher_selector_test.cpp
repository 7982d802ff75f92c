// Label-selector matching: Kubernetes semantics table, a cross-check against a naive reference
// over many random selectors, and the no-allocation promise.
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <cstdlib>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "test/unit/watcher_print.hpp"
#include "watcher/selector.hpp"

using namespace knit::watcher;
namespace data = boost::unit_test::data;

// Counts heap allocations while armed, to hold matches() to "allocation-free". Replacing the
// global operator new affects this test binary only.
namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};
}  // namespace

// noinline keeps GCC from pairing the malloc/free inside with new/delete at call sites
// (-Wmismatched-new-delete).
[[gnu::noinline]] void* operator new(std::size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept {
  std::free(p);
}
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace {

Requirement in(std::string k, std::vector<std::string> v) {
  return {std::move(k), Op::kIn, std::move(v)};
}
Requirement notin(std::string k, std::vector<std::string> v) {
  return {std::move(k), Op::kNotIn, std::move(v)};
}
Requirement exists(std::string k) {
  return {std::move(k), Op::kExists, {}};
}
Requirement absent(std::string k) {
  return {std::move(k), Op::kDoesNotExist, {}};
}

}  // namespace

struct MatchCase {
  const char* what;
  LabelSelector selector;
  Labels labels;
  bool want;
};
std::ostream& operator<<(std::ostream& os, const MatchCase& c) {
  return os << c.what << ": " << to_string(c.selector) << " vs " << to_string(c.labels);
}

const std::vector<MatchCase> kCases = {
    {"empty selector matches empty labels", {}, {}, true},
    {"empty selector matches anything", {}, {{"a", "1"}, {"b", "2"}}, true},
    {"matchLabels equal", {{{"app", "web"}}, {}}, {{"app", "web"}, {"tier", "fe"}}, true},
    {"matchLabels other value", {{{"app", "web"}}, {}}, {{"app", "db"}}, false},
    {"matchLabels key absent", {{{"app", "web"}}, {}}, {{"tier", "fe"}}, false},
    {"matchLabels all must hold", {{{"app", "web"}, {"tier", "fe"}}, {}}, {{"app", "web"}}, false},
    {"matchLabels empty value", {{{"flag", ""}}, {}}, {{"flag", ""}}, true},
    {"matchLabels empty value vs absent", {{{"flag", ""}}, {}}, {}, false},
    {"matchLabels is case-sensitive", {{{"app", "Web"}}, {}}, {{"app", "web"}}, false},
    {"In present", {{}, {in("env", {"prod", "stage"})}}, {{"env", "stage"}}, true},
    {"In other value", {{}, {in("env", {"prod", "stage"})}}, {{"env", "dev"}}, false},
    {"In key absent", {{}, {in("env", {"prod"})}}, {{"app", "prod"}}, false},
    {"NotIn other value", {{}, {notin("env", {"prod"})}}, {{"env", "dev"}}, true},
    {"NotIn listed value", {{}, {notin("env", {"prod", "dev"})}}, {{"env", "dev"}}, false},
    {"NotIn key absent matches", {{}, {notin("env", {"prod"})}}, {{"app", "x"}}, true},
    {"NotIn on empty labels matches", {{}, {notin("env", {"prod"})}}, {}, true},
    {"Exists present", {{}, {exists("canary")}}, {{"canary", "true"}}, true},
    {"Exists with empty value", {{}, {exists("canary")}}, {{"canary", ""}}, true},
    {"Exists absent", {{}, {exists("canary")}}, {{"app", "x"}}, false},
    {"DoesNotExist absent", {{}, {absent("canary")}}, {{"app", "x"}}, true},
    {"DoesNotExist present", {{}, {absent("canary")}}, {{"canary", "false"}}, false},
    {"expressions ANDed", {{}, {exists("a"), absent("b")}}, {{"a", "1"}, {"b", "2"}}, false},
    {"expressions ANDed, all hold", {{}, {exists("a"), absent("b")}}, {{"a", "1"}}, true},
    {"labels AND expressions",
     {{{"app", "web"}}, {notin("tier", {"db"})}},
     {{"app", "web"}, {"tier", "db"}},
     false},
    {"labels AND expressions hold",
     {{{"app", "web"}}, {notin("tier", {"db"})}},
     {{"app", "web"}},
     true},
    {"conflicting In and NotIn", {{}, {in("a", {"x"}), notin("a", {"x"})}}, {{"a", "x"}}, false},
    {"default namespace label",
     {{{"kubernetes.io/metadata.name", "y"}}, {}},
     {{"kubernetes.io/metadata.name", "y"}, {"ns", "y"}},
     true},
    {"prefixed key is a different key", {{}, {exists("app")}}, {{"example.com/app", "x"}}, false},
};

BOOST_AUTO_TEST_SUITE(watcher_selector)

BOOST_DATA_TEST_CASE(semantics, data::make(kCases), c) {
  BOOST_TEST(matches(c.selector, c.labels) == c.want);
  // A selector with the same terms in one requirement each must agree.
  if (c.selector.match_expressions.size() == 1) {
    BOOST_TEST(matches(c.selector.match_expressions[0], c.labels) == c.want);
  }
}

BOOST_AUTO_TEST_CASE(selects_all_only_without_terms) {
  BOOST_TEST(LabelSelector{}.selects_all());
  BOOST_TEST(!(LabelSelector{{{"a", "b"}}, {}}.selects_all()));
  BOOST_TEST(!(LabelSelector{{}, {notin("a", {"zzz"})}}.selects_all()));
}

// The reference implementation reads the definitions literally: it scans the labels as a list
// and never uses the map's ordering.
bool reference(const LabelSelector& s, const Labels& labels) {
  auto value_of = [&](const std::string& k) -> const std::string* {
    for (const auto& [lk, lv] : labels) {
      if (lk == k) return &lv;
    }
    return nullptr;
  };
  for (const auto& [k, v] : s.match_labels) {
    const auto* have = value_of(k);
    if (!have || *have != v) return false;
  }
  for (const auto& r : s.match_expressions) {
    const auto* have = value_of(r.key);
    bool listed = false;
    for (const auto& v : r.values) listed = listed || (have && *have == v);
    bool ok = r.op == Op::kIn       ? (have && listed)
              : r.op == Op::kNotIn  ? (!have || !listed)
              : r.op == Op::kExists ? have != nullptr
                                    : have == nullptr;
    if (!ok) return false;
  }
  return true;
}

BOOST_AUTO_TEST_CASE(agrees_with_reference_on_random_inputs) {
  std::mt19937 rng(20250302);
  const std::vector<std::string> keys{"a", "b", "c", "app", "tier", "kubernetes.io/metadata.name"};
  const std::vector<std::string> values{"", "x", "y", "web", "db"};
  auto pick = [&](const std::vector<std::string>& from) {
    return from[std::uniform_int_distribution<size_t>(0, from.size() - 1)(rng)];
  };
  auto count = [&](int hi) { return std::uniform_int_distribution<int>(0, hi)(rng); };
  int matched = 0;
  for (int i = 0; i < 20000; ++i) {
    Labels labels;
    for (int n = count(4); n > 0; --n) labels[pick(keys)] = pick(values);
    LabelSelector s;
    for (int n = count(2); n > 0; --n) s.match_labels[pick(keys)] = pick(values);
    for (int n = count(3); n > 0; --n) {
      auto op = static_cast<Op>(count(3));
      Requirement r{pick(keys), op, {}};
      if (op == Op::kIn || op == Op::kNotIn) {
        for (int m = count(2) + 1; m > 0; --m) r.values.push_back(pick(values));
      }
      s.match_expressions.push_back(std::move(r));
    }
    bool want = reference(s, labels);
    matched += want;
    if (matches(s, labels) != want) {
      BOOST_FAIL("mismatch for " << to_string(s) << " vs " << to_string(labels));
    }
  }
  // Both outcomes must be well represented, or the comparison proves little.
  BOOST_TEST(matched > 2000);
  BOOST_TEST(matched < 18000);
}

BOOST_AUTO_TEST_CASE(memo_answers_as_matches_does_for_repeated_and_colliding_maps) {
  // 300 distinct maps (far more than the memo's slots, so they collide), each asked about many
  // times in a random order, as a namespace's pods are: every answer must be matches()'s.
  std::mt19937 rng(20261127);
  std::vector<Labels> maps;
  for (int i = 0; i < 300; ++i) {
    maps.push_back({{"app", "a" + std::to_string(i % 7)}, {"tier", "t" + std::to_string(i % 5)}});
    if (i % 3 == 0) maps.back()["canary"] = "";
  }
  const std::vector<LabelSelector> selectors{
      {{{"app", "a1"}}, {}},
      {{}, {notin("tier", {"t0", "t2"}), exists("canary")}},
      {{}, {}},
  };
  for (const auto& s : selectors) {
    MatchMemo memo(s);
    int matched = 0;
    for (int n = 0; n < 20000; ++n) {
      const Labels& l = maps[std::uniform_int_distribution<size_t>(0, maps.size() - 1)(rng)];
      bool want = matches(s, l);
      matched += want;
      if (memo(l) != want)
        BOOST_FAIL("memo differs for " << to_string(s) << " vs " << to_string(l));
    }
    BOOST_TEST(matched > 0);
  }
  // An edit in place is a different value at the same address: the memo is for maps that do
  // not change while it lives (interned ones), and would repeat its answer.
  Labels l{{"app", "a1"}};
  MatchMemo memo(selectors[0]);
  BOOST_TEST(memo(l));
  l["app"] = "a2";
  BOOST_TEST(memo(l));
  BOOST_TEST(!matches(selectors[0], l));
}

BOOST_AUTO_TEST_CASE(matching_does_not_allocate) {
  LabelSelector s{{{"app", "web"}, {"tier", "frontend-with-a-long-value-beyond-sso"}},
                  {in("env", {"prod", "stage"}), notin("track", {"canary"}), exists("team"),
                   absent("kubernetes.io/legacy-and-long-enough-to-defeat-sso")}};
  Labels labels{{"app", "web"},
                {"tier", "frontend-with-a-long-value-beyond-sso"},
                {"env", "prod"},
                {"team", "payments"},
                {"pod-template-hash", "7d9f8b6c5d"}};
  BOOST_TEST_REQUIRE(matches(s, labels));
  g_allocations = 0;
  g_counting = true;
  bool all = true;
  for (int i = 0; i < 1000; ++i) all = matches(s, labels) && all;
  g_counting = false;
  BOOST_TEST(all);
  BOOST_TEST(g_allocations.load() == 0);
  // The counter does see allocations (the check above is not vacuous).
  auto* volatile allocate = static_cast<void* (*)(std::size_t)>(&::operator new);
  g_counting = true;
  void* probe = allocate(16);
  g_counting = false;
  ::operator delete(probe);
  BOOST_TEST(g_allocations.load() >= 1);
}

BOOST_AUTO_TEST_CASE(requirement_to_string) {
  BOOST_TEST(to_string(in("a", {"x", "y"})) == "a in (x,y)");
  BOOST_TEST(to_string(notin("a", {"x"})) == "a notin (x)");
  BOOST_TEST(to_string(exists("a")) == "a");
  BOOST_TEST(to_string(absent("a")) == "!a");
  BOOST_TEST(to_string(LabelSelector{}) == "{}");
}

BOOST_AUTO_TEST_SUITE_END()
