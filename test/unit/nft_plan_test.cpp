// plan(): diffs, and an order the kernel accepts. A small model of the kernel's reference rules
// (a set, chain or counter cannot be deleted while a rule or verdict-map element uses it; a rule
// or element cannot refer to something that does not exist yet) replays every plan and checks
// that the result equals the desired ruleset.
#include <boost/test/unit_test.hpp>
#include <functional>
#include <map>
#include <set>

#include "core/str.hpp"
#include "nft/plan.hpp"
#include "nft/render.hpp"
#include "test/unit/nft_sample.hpp"

using namespace knit::nft;
using knit::test::ip;
using knit::test::net;

namespace {

/// Replays `p` on `start` with the kernel's ordering constraints; fails the test on a violation.
class KernelModel {
 public:
  explicit KernelModel(const std::optional<Ruleset>& start) {
    if (!start) return;
    exists_ = true;
    rs_ = *start;
  }

  void apply(const Plan& p) {
    if (!exists_) rs_.table = p.table;
    for (size_t i = 0; i < p.changes.size(); ++i) {
      step_ = knit::str("#", i, " ", describe(p.table, p.changes[i]));
      std::visit([this](const auto& c) { on(c); }, p.changes[i]);
    }
  }
  Ruleset result() const {
    Ruleset r = rs_;
    r.sort();
    return r;
  }

 private:
  Chain* chain(const std::string& n) {
    for (auto& c : rs_.chains)
      if (c.name == n) return &c;
    return nullptr;
  }
  Set* set(const std::string& n) {
    for (auto& s : rs_.sets)
      if (s.name == n) return &s;
    return nullptr;
  }
  bool counter(const std::string& n) const {
    for (auto& c : rs_.counters)
      if (c.name == n) return true;
    return false;
  }
  void check(bool ok, const std::string& why) { BOOST_CHECK_MESSAGE(ok, step_ << ": " << why); }

  /// Names a rule refers to.
  template <class F>
  static void refs(const Rule& r, F&& f) {
    for (const auto& s : r.stmts) {
      if (auto* n = set_named(s)) f('s', *n);
      if (auto* c = std::get_if<CounterRef>(&s)) f('o', c->name);
      if (auto* v = std::get_if<Verdict>(&s); v && !v->chain.empty()) f('c', v->chain);
    }
  }
  bool referenced(char kind, const std::string& name) const {
    bool used = false;
    for (const auto& c : rs_.chains)
      for (const auto& r : c.rules)
        refs(r, [&](char k, const std::string& n) { used = used || (k == kind && n == name); });
    if (kind == 'c') {
      for (const auto& s : rs_.sets)
        for (const auto& e : s.elements) used = used || (s.is_vmap() && e.verdict.chain == name);
    }
    return used;
  }

  void on(const AddTable&) {
    check(!exists_, "table exists");
    exists_ = true;
  }
  void on(const AddChain& a) {
    check(exists_ && !chain(a.name), "chain exists");
    rs_.chains.push_back(Chain{a.name, a.base, {}});
  }
  void on(const UpdateChain& u) {
    Chain* c = chain(u.name);
    check(c && c->base, "no base chain to update");
    if (c && c->base) c->base->policy = u.base.policy;
  }
  void on(const FlushChain& f) {
    Chain* c = chain(f.name);
    check(c != nullptr, "flush of a missing chain");
    if (c) c->rules.clear();
  }
  void on(const DeleteChain& d) {
    Chain* c = chain(d.name);
    check(c != nullptr, "delete of a missing chain");
    if (!c) return;
    c->rules.clear();  // the kernel deletes a chain's own rules with it
    check(!referenced('c', d.name), "chain still referenced");
    std::erase_if(rs_.chains, [&](const Chain& x) { return x.name == d.name; });
  }
  void on(const AddCounter& a) {
    check(!counter(a.name), "counter exists");
    rs_.counters.push_back({a.name});
  }
  void on(const DeleteCounter& d) {
    check(counter(d.name), "delete of a missing counter");
    check(!referenced('o', d.name), "counter still referenced");
    std::erase_if(rs_.counters, [&](const NamedCounter& x) { return x.name == d.name; });
  }
  void elements_in(const Set& s) {
    if (!s.is_vmap()) return;
    for (const auto& e : s.elements)
      if (!e.verdict.chain.empty())
        check(chain(e.verdict.chain) != nullptr, "element jumps to a missing chain");
  }
  void on(const AddSet& a) {
    check(!set(a.set.name), "set exists");
    elements_in(a.set);
    rs_.sets.push_back(a.set);
  }
  void on(const DeleteSet& d) {
    check(set(d.name) != nullptr, "delete of a missing set");
    check(!referenced('s', d.name), "set still referenced");
    std::erase_if(rs_.sets, [&](const Set& x) { return x.name == d.name; });
  }
  void on(const AddElements& a) {
    Set* s = set(a.set.name);
    check(s && s->same_type(a.set), "add elements to a missing or different set");
    if (!s) return;
    check(!s->constant, "elements added to a constant set");
    elements_in(a.set);
    for (const auto& e : a.set.elements) {
      bool dup = std::any_of(s->elements.begin(), s->elements.end(), [&](const Element& x) {
        return x.key == e.key && x.key_end == e.key_end;
      });
      check(!dup, "element exists");
      s->elements.push_back(e);
    }
  }
  void on(const DeleteElements& d) {
    Set* s = set(d.set.name);
    check(s != nullptr, "delete elements from a missing set");
    if (!s) return;
    for (const auto& e : d.set.elements) {
      auto n = std::erase_if(
          s->elements, [&](const Element& x) { return x.key == e.key && x.key_end == e.key_end; });
      check(n == 1, "element to delete is missing");
    }
  }
  void on(const AddRule& a) {
    Chain* c = chain(a.chain);
    check(c != nullptr, "rule for a missing chain");
    refs(a.rule, [&](char k, const std::string& n) {
      if (k == 's') check(set(n) != nullptr, "rule uses a missing set " + n);
      if (k == 'o') check(counter(n), "rule uses a missing counter " + n);
      if (k == 'c') check(chain(n) != nullptr, "rule jumps to a missing chain " + n);
    });
    if (c) c->rules.push_back(a.rule);
  }

  bool exists_ = false;
  Ruleset rs_;
  std::string step_;
};

/// plan(current, desired), replayed: the kernel order holds and the result is `desired`.
Plan checked_plan(const std::optional<Ruleset>& cur, const Ruleset& des) {
  Plan p = plan(cur, des);
  KernelModel k(cur);
  k.apply(p);
  BOOST_TEST(render(k.result()) == render(des));
  return p;
}

template <class T>
size_t count(const Plan& p) {
  return static_cast<size_t>(std::count_if(p.changes.begin(), p.changes.end(), [](const Change& c) {
    return std::holds_alternative<T>(c);
  }));
}

template <class T>
std::optional<size_t> first(const Plan& p, const std::function<bool(const T&)>& pred = {}) {
  for (size_t i = 0; i < p.changes.size(); ++i) {
    if (auto* c = std::get_if<T>(&p.changes[i]); c && (!pred || pred(*c))) return i;
  }
  return std::nullopt;
}

Set* find_set(Ruleset& rs, const std::string& name) {
  for (auto& s : rs.sets)
    if (s.name == name) return &s;
  return nullptr;
}
Chain* find_chain(Ruleset& rs, const std::string& name) {
  for (auto& c : rs.chains)
    if (c.name == name) return &c;
  return nullptr;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(nft_plan)

BOOST_AUTO_TEST_CASE(no_change_is_an_empty_plan) {
  auto rs = knit::test::sample_ruleset();
  BOOST_TEST(plan(rs, rs).empty());
  // Order of sets, chains and elements carries no meaning.
  auto shuffled = rs;
  std::reverse(shuffled.sets.begin(), shuffled.sets.end());
  std::reverse(shuffled.chains.begin(), shuffled.chains.end());
  for (auto& s : shuffled.sets) std::reverse(s.elements.begin(), s.elements.end());
  BOOST_TEST(plan(rs, shuffled).empty());
}

BOOST_AUTO_TEST_CASE(explicit_dependencies_compare_equal_to_the_kernels_form) {
  // The kernel gives back `ip saddr 10.0.0.1 accept`; the compiler wrote the nfproto match.
  Ruleset cur{{TableFamily::kInet, "knit"},
              {},
              {},
              {Chain{"c",
                     std::nullopt,
                     {Rule{{match(Sel::kIpSaddr, Value::addr(ip("10.0.0.1"))), accept()}, {}}}}}};
  Ruleset des = cur;
  des.chains[0].rules[0].stmts.insert(des.chains[0].rules[0].stmts.begin(),
                                      match(Sel::kNfproto, Value::u8(proto::kIpv4)));
  BOOST_TEST(plan(cur, des).empty());
}

BOOST_AUTO_TEST_CASE(creating_from_nothing_orders_objects_before_rules) {
  auto rs = knit::test::sample_ruleset();
  Plan p = checked_plan(std::nullopt, rs);
  BOOST_REQUIRE(!p.empty());
  BOOST_TEST(std::holds_alternative<AddTable>(p.changes[0]));
  size_t rules = 0;
  for (const auto& c : rs.chains) rules += c.rules.size();
  BOOST_TEST(count<AddRule>(p) == rules);
  BOOST_TEST(count<AddSet>(p) == rs.sets.size());
  BOOST_TEST(count<AddChain>(p) == rs.chains.size());
  BOOST_TEST(*first<AddRule>(p) > *first<AddSet>(p));
}

BOOST_AUTO_TEST_CASE(new_sets_are_created_most_referenced_first) {
  // The kernel finds a rule's set by walking the table's sets in creation order: the set three
  // rules name comes first, the unnamed one last, ties in name order.
  Ruleset rs{{TableFamily::kInet, "knit"}, {}, {}, {}};
  for (const char* n : {"a", "b", "shared", "unused"}) {
    Set s;
    s.name = n;
    s.key = {Type::kIpv4Addr};
    rs.sets.push_back(s);
  }
  auto lookup = [](const char* set) {
    return Rule{{Lookup{{Sel::kIpSaddr}, set, false}, accept()}, {}};
  };
  rs.chains.push_back(Chain{"c1", std::nullopt, {lookup("shared"), lookup("b")}});
  rs.chains.push_back(Chain{"c2", std::nullopt, {lookup("shared"), lookup("a")}});
  rs.chains.push_back(Chain{"c3", std::nullopt, {lookup("shared")}});
  for (const auto& p : {checked_plan(std::nullopt, rs),
                        checked_plan(Ruleset{{TableFamily::kInet, "knit"}, {}, {}, {}}, rs)}) {
    std::vector<std::string> order;
    for (const auto& c : p.changes)
      if (auto* a = std::get_if<AddSet>(&c)) order.push_back(a->set.name);
    BOOST_TEST(order == (std::vector<std::string>{"shared", "a", "b", "unused"}),
               boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(moving_the_sets_gives_the_same_plan_as_copying_them) {
  // A full sync hands plan_moving_sets() its desired table: the plan must be the one plan()
  // gives, from nothing and over a table with sets to keep, recreate and create.
  auto sample = knit::test::sample_ruleset();
  auto changed = sample;
  find_set(changed, "pod_v4")->interval = true;  // recreated
  find_set(changed, "pod_v4")->elements.push_back(element({ip("10.244.1.9")}));
  Set fresh = *find_set(changed, "pod_v4");
  fresh.name = "pod_v4_new";  // created
  changed.sets.push_back(fresh);
  changed.sort();
  for (const auto& [cur, des] : {std::pair{std::optional<Ruleset>{}, sample},
                                 std::pair{std::optional<Ruleset>{sample}, changed}}) {
    SetNames names;
    Plan copied = plan(cur, des, &names);
    Ruleset given = des;
    Plan moved = plan_moving_sets(cur, given, &names);
    BOOST_REQUIRE_EQUAL(moved.changes.size(), copied.changes.size());
    for (size_t i = 0; i < copied.changes.size(); ++i) {
      BOOST_TEST((moved.changes[i] == copied.changes[i]),
                 describe(copied.table, copied.changes[i]));
    }
    BOOST_TEST(moved.new_names == copied.new_names);
    BOOST_TEST(given.chains == des.chains);  // left intact: the reconciler keeps them
    // Every set created was moved out, not copied; the others were left alone.
    size_t moved_out = 0;
    for (const auto& s : given.sets) moved_out += s.name.empty() && s.elements.empty();
    BOOST_TEST(moved_out == count<AddSet>(moved));
  }
}

BOOST_AUTO_TEST_CASE(element_changes_are_element_adds_and_deletes_only) {
  auto cur = knit::test::sample_ruleset();
  auto des = cur;
  auto* pods = find_set(des, "pod_v4");
  pods->elements.erase(pods->elements.begin() + 1);       // 10.244.1.3 leaves
  pods->elements.push_back(element({ip("10.244.1.9")}));  // 10.244.1.9 arrives
  auto* dst = find_set(des, "pol_a_r0_dst");
  dst->elements.push_back(element({ip("10.244.1.9"), Value::u8(proto::kTcp), port_range(1, 1024)}));
  auto* ingress = find_set(des, "ingress_dispatch");
  ingress->elements[1].verdict = jump("ns_default_ingress");  // goto -> jump: delete + add

  Plan p = checked_plan(cur, des);
  for (const auto& c : p.changes) {
    BOOST_TEST(
        (std::holds_alternative<AddElements>(c) || std::holds_alternative<DeleteElements>(c)),
        describe(p.table, c));
  }
  BOOST_TEST(count<DeleteElements>(p) == 2u);  // pod_v4, ingress_dispatch
  BOOST_TEST(count<AddElements>(p) == 3u);     // pod_v4, pol_a_r0_dst, ingress_dispatch
  // Deletes first, so that a changed element is gone before it is added again.
  BOOST_TEST(*first<DeleteElements>(p) < *first<AddElements>(p));
  auto add = first<AddElements>(p, [](const AddElements& a) { return a.set.name == "pod_v4"; });
  BOOST_REQUIRE(add);
  const auto& added = std::get<AddElements>(p.changes[*add]).set.elements;
  BOOST_REQUIRE_EQUAL(added.size(), 1u);
  BOOST_TEST(render_element(*find_set(des, "pod_v4"), added[0]) == "10.244.1.9");
  BOOST_TEST(describe(p.table, p.changes[*add]) ==
             "add element 10.244.1.9 to set inet knit pod_v4");
}

BOOST_AUTO_TEST_CASE(changed_set_type_recreates_it_and_refills_its_users) {
  auto cur = knit::test::sample_ruleset();
  auto des = cur;
  find_set(des, "pod_v4")->interval = true;  // type change: flags interval
  Plan p = checked_plan(cur, des);
  auto del = first<DeleteSet>(p, [](auto& d) { return d.name == "pod_v4"; });
  auto add = first<AddSet>(p, [](auto& a) { return a.set.name == "pod_v4"; });
  auto flush = first<FlushChain>(p, [](auto& f) { return f.name == "nat_postrouting"; });
  BOOST_REQUIRE(del && add && flush);
  BOOST_TEST(*flush < *del);  // the rule using the set is gone before the set
  BOOST_TEST(*del < *add);
  auto refill = first<AddRule>(p, [](auto& r) { return r.chain == "nat_postrouting"; });
  BOOST_REQUIRE(refill);
  BOOST_TEST(*refill > *add);
  // Unrelated sets are untouched.
  BOOST_TEST(!first<DeleteSet>(p, [](auto& d) { return d.name != "pod_v4"; }));
}

BOOST_AUTO_TEST_CASE(constant_sets_are_recreated_when_their_elements_change) {
  auto cur = knit::test::sample_ruleset();
  auto des = cur;
  find_set(des, "svc_ports")->elements.push_back(element({Value::port(8443)}));
  Plan p = checked_plan(cur, des);
  BOOST_TEST(count<DeleteSet>(p) == 1u);
  BOOST_TEST(count<AddSet>(p) == 1u);
  BOOST_TEST(count<AddElements>(p) == 0u);
}

BOOST_AUTO_TEST_CASE(changed_rules_flush_and_refill_only_that_chain) {
  auto cur = knit::test::sample_ruleset();
  auto des = cur;
  find_chain(des, "ns_default_ingress")->rules.pop_back();
  Plan p = checked_plan(cur, des);
  BOOST_TEST(count<FlushChain>(p) == 1u);
  BOOST_TEST(std::get<FlushChain>(p.changes[*first<FlushChain>(p)]).name == "ns_default_ingress");
  BOOST_TEST(count<AddRule>(p) == find_chain(des, "ns_default_ingress")->rules.size());
  BOOST_TEST(count<DeleteSet>(p) + count<AddSet>(p) + count<AddElements>(p) == 0u);
}

BOOST_AUTO_TEST_CASE(removing_a_namespace_deletes_in_reference_order) {
  auto cur = knit::test::sample_ruleset();
  auto des = cur;
  // The namespace's chains, its policy sets and counter go; dispatch entries and the rule in
  // the shared chain that used the set go with them.
  std::erase_if(des.chains, [](const Chain& c) { return c.name.rfind("ns_default_", 0) == 0; });
  std::erase_if(des.sets, [](const Set& s) { return s.name.rfind("pol_a_", 0) == 0; });
  des.counters.clear();
  find_set(des, "egress_dispatch")->elements.clear();
  find_set(des, "ingress_dispatch")->elements.clear();
  Plan p = checked_plan(cur, des);
  auto elem_del = first<DeleteElements>(p);
  auto chain_del = first<DeleteChain>(p);
  auto set_del = first<DeleteSet>(p);
  auto ctr_del = first<DeleteCounter>(p);
  BOOST_REQUIRE(elem_del && chain_del && set_del && ctr_del);
  BOOST_TEST(*elem_del < *chain_del);  // verdict-map entries jump to the chains
  BOOST_TEST(*chain_del < *set_del);   // the chains' rules use the sets
  BOOST_TEST(*chain_del < *ctr_del);
}

BOOST_AUTO_TEST_CASE(adding_a_namespace_creates_chains_before_dispatch_entries) {
  auto cur = knit::test::sample_ruleset();
  auto des = cur;
  des.chains.push_back(Chain{"ns_other_ingress", std::nullopt, {Rule{{drop()}, {}}}});
  find_set(des, "ingress_dispatch")
      ->elements.push_back(element({ip("10.244.3.3")}, jump("ns_other_ingress")));
  des.sets.push_back(
      Set{"pol_b", {Type::kIpv4Addr}, {}, true, false, {element({net("10.0.0.0/8")})}});
  des.chains.back().rules.insert(des.chains.back().rules.begin(),
                                 Rule{{Lookup{{Sel::kIpSaddr}, "pol_b", false}, accept()}, {}});
  Plan p = checked_plan(cur, des);
  BOOST_TEST(*first<AddChain>(p) < *first<AddElements>(p));
  BOOST_TEST(*first<AddSet>(p) < *first<AddRule>(p));
  BOOST_TEST(count<FlushChain>(p) == 0u);
}

BOOST_AUTO_TEST_CASE(base_chain_changes) {
  auto cur = knit::test::sample_ruleset();
  auto des = cur;
  find_chain(des, "input")->base->policy = Policy::kDrop;
  Plan p = checked_plan(cur, des);
  BOOST_REQUIRE_EQUAL(p.changes.size(), 1u);
  BOOST_TEST(std::holds_alternative<UpdateChain>(p.changes[0]));

  des = cur;
  find_chain(des, "input")->base->priority = 10;  // hooks cannot be moved: recreate
  p = checked_plan(cur, des);
  BOOST_TEST(count<DeleteChain>(p) == 1u);
  BOOST_TEST(count<AddChain>(p) == 1u);
  BOOST_TEST(count<AddRule>(p) == find_chain(des, "input")->rules.size());
}

BOOST_AUTO_TEST_CASE(table_from_scratch_when_current_is_another_table) {
  auto des = knit::test::sample_ruleset();
  Ruleset other{{TableFamily::kIp, "knit"}, {}, {}, {}};
  Plan p = plan(other, des);
  BOOST_TEST(std::holds_alternative<AddTable>(p.changes.at(0)));
}

BOOST_AUTO_TEST_CASE(short_names_are_base_36_after_an_underscore) {
  BOOST_TEST(SetNames::alias(0) == "_0");
  BOOST_TEST(SetNames::alias(35) == "_z");
  BOOST_TEST(SetNames::alias(36) == "_10");
  BOOST_TEST(SetNames::alias(SetNames::kAliases - 1) == "_9zldr");
  BOOST_TEST(!SetNames::alias_number("_9zlds").has_value());  // kAliases: past the last
  for (uint32_t n : {0u, 9u, 10u, 36u, 1295u, 1296u, 123456u, SetNames::kAliases - 1}) {
    BOOST_TEST(SetNames::alias_number(SetNames::alias(n)).value_or(0) == n);
    BOOST_TEST(SetNames::alias_number(SetNames::alias(n)).has_value());
  }
  for (const char* not_one : {"_", "x1", "_01", "_A", "_1-", "pods4", "_zzzzzzz"}) {
    BOOST_TEST(!SetNames::alias_number(not_one).has_value(), not_one);
  }
}

BOOST_AUTO_TEST_CASE(new_sets_get_short_kernel_names_that_no_set_goes_by) {
  auto rs = knit::test::sample_ruleset();
  SetNames names;
  Plan p = checked_plan(std::nullopt, rs);
  Plan named = plan(std::optional<Ruleset>{}, rs, &names);
  BOOST_TEST(named.changes == p.changes);  // the same changes, in the model's names
  std::set<std::string> kernel;
  for (const auto& s : rs.sets) {
    const std::string& k = named.kernel_name(s.name);
    if (s.name.size() <= SetNames::kKeepName) {
      BOOST_TEST(k == s.name);  // short enough already
    } else {
      BOOST_TEST(SetNames::alias_number(k).has_value(), s.name << " -> " << k);
    }
    BOOST_TEST(kernel.insert(k).second, k << " given twice");
  }
  // Most referenced first, so the walks' head also gets the shortest names.
  names.commit(named);
  BOOST_TEST(names.size() == named.new_names.size());
  BOOST_TEST(*names.find("ingress_dispatch") == named.kernel_name("ingress_dispatch"));

  // Later: a new set gets a name none has, not even one deleted in the same plan (the kernel
  // would have the old and the new set under one name within the transaction); the set whose
  // type changes is recreated under a new name.
  auto des = rs;
  knit::test::drop_set(des, "pol_a_r0_src");
  find_set(des, "cluster_cidrs")->interval = false;
  find_set(des, "cluster_cidrs")->elements.clear();
  Set fresh{"pol_b_r0_src", {Type::kIpv4Addr}, {}, false, false, {}};
  des.sets.push_back(fresh);
  des.sort();
  Plan next = checked_plan(rs, des);
  Plan renamed = plan(rs, des, &names);
  BOOST_TEST(renamed.changes == next.changes);
  BOOST_TEST(renamed.new_names.size() == 2u);  // pol_b_r0_src, cluster_cidrs (recreated)
  for (const auto& [model, k] : renamed.new_names) {
    BOOST_TEST(!names.in_use(k), model << " -> " << k << " is in use");
  }
  const std::string old_src = *names.find("pol_a_r0_src");
  const std::string old_cidrs = *names.find("cluster_cidrs");
  BOOST_TEST(renamed.kernel_name("cluster_cidrs") != old_cidrs);
  BOOST_TEST(renamed.kernel_name("pol_a_r0_dst") == *names.find("pol_a_r0_dst"));
  names.commit(renamed);
  BOOST_TEST(!names.find("pol_a_r0_src"));
  BOOST_TEST(!names.in_use(old_src));
  BOOST_TEST(!names.in_use(old_cidrs));
  BOOST_TEST(*names.find("cluster_cidrs") == renamed.new_names.at("cluster_cidrs"));
  BOOST_TEST(*names.find("pol_b_r0_src") == renamed.new_names.at("pol_b_r0_src"));
}

BOOST_AUTO_TEST_CASE(a_set_going_by_what_looks_like_a_short_name_keeps_it_to_itself) {
  // A set of the table named like a short name but without an entry (made by someone else, or
  // read back without its comment) goes by that name: it is never handed out.
  Ruleset cur{{TableFamily::kInet, "knit"}, {}, {}, {}};
  Set squatter{"_0", {Type::kIpv4Addr}, {}, false, false, {}};
  cur.sets.push_back(squatter);
  Ruleset des = cur;
  Set mine{"pol_a_r0_src", {Type::kIpv4Addr}, {}, false, false, {}};
  des.sets.push_back(mine);
  des.sort();
  SetNames names;
  Plan p = plan(cur, des, &names);
  BOOST_TEST(p.kernel_name("pol_a_r0_src") == "_1");
  BOOST_TEST(p.kernel_name("_0") == "_0");
  // Handed out round: after the last short name comes the first free one.
  SetNames late;
  late.add("x/old/pods4", SetNames::alias(SetNames::kAliases - 1));
  BOOST_TEST(late.cursor() == 0u);
  Plan round = plan(cur, des, &late);
  BOOST_TEST(round.kernel_name("pol_a_r0_src") == "_1");  // "_0" is the other set's
  // Names too long for a comment keep their own (the kernel takes up to 255 bytes).
  Ruleset big{{TableFamily::kInet, "knit"}, {}, {}, {}};
  Set longer{
      std::string(SetNames::kMaxModelName + 1, 'x'), {Type::kIpv4Addr}, {}, false, false, {}};
  big.sets.push_back(longer);
  Plan q = plan(std::optional<Ruleset>{}, big, &names);
  BOOST_TEST(q.new_names.empty());
  BOOST_TEST(q.kernel_name(longer.name) == longer.name);
}

BOOST_AUTO_TEST_SUITE_END()
