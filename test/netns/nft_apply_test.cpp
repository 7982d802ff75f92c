// nft/ against the kernel: apply, read back, compare with the golden text; incremental plans;
// atomicity of refused commits; a policy-agent-sized ruleset. Each test has its own namespace.
#include <linux/netlink.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdio>

#include "core/error.hpp"
#include "core/netlink.hpp"
#include "core/netns.hpp"
#include "nft/nft.hpp"
#include "test/netns/fixture.hpp"
#include "test/unit/nft_sample.hpp"

using namespace knit::nft;
using knit::test::ip;
using knit::test::NeedsNetns;
using knit::test::net;
using knit::test::TestNetns;

namespace {

knit::nl::Socket nft_socket(const TestNetns& ns) {
  return knit::nl::Socket::open_in(knit::Netns::open(ns.path()), NETLINK_NETFILTER);
}

Ruleset read(knit::nl::Socket& s, const Ruleset& like) {
  auto got = read_table(s, like.table.family, like.table.name);
  BOOST_REQUIRE(got.has_value());
  return *got;
}

/// Applies plan(current, desired), then checks the kernel holds `desired` and that a second
/// plan is empty. With `names`, sets get short kernel names and `names` follows the commit; it
/// must then agree with the names a fresh read finds. Returns the plan that was applied.
Plan converge(knit::nl::Socket& s, const Ruleset& desired, SetNames* names = nullptr) {
  auto cur = read_table(s, desired.table.family, desired.table.name);
  Plan p = plan(cur, desired, names);
  apply(s, p);
  if (names) names->commit(p);
  Ruleset now = read(s, desired);
  BOOST_TEST(render(now) == render(desired));
  BOOST_TEST(plan(now, desired).empty());
  if (names) {
    SetNames fresh;
    read_table(s, desired.table.family, desired.table.name, &fresh);
    BOOST_TEST(fresh.size() == names->size());
    for (const auto& set : desired.sets) {
      auto want = names->find(set.name);
      auto got = fresh.find(set.name);
      BOOST_TEST((want ? *want : "-") == (got ? *got : "-"), set.name);
    }
  }
  return p;
}

Set& set_of(Ruleset& rs, const std::string& name) {
  for (auto& s : rs.sets)
    if (s.name == name) return s;
  BOOST_FAIL("no set " << name);
  throw 0;
}

Chain& chain_of(Ruleset& rs, const std::string& name) {
  for (auto& c : rs.chains)
    if (c.name == name) return c;
  BOOST_FAIL("no chain " << name);
  throw 0;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(nft_apply)

BOOST_AUTO_TEST_CASE(sample_applies_and_reads_back_as_the_golden_text,
                     *boost::unit_test::precondition(NeedsNetns())) {
  TestNetns ns("nft-golden");
  auto sock = nft_socket(ns);
  BOOST_TEST(!read_table(sock, TableFamily::kInet, "knit").has_value());
  auto rs = knit::test::sample_ruleset();
  apply(sock, plan(std::nullopt, rs));
  Ruleset back = read(sock, rs);
  std::string want = knit::test::read_text(knit::test::golden_path("nft_sample.nft"));
  BOOST_TEST(render(back) == want);
  BOOST_TEST(plan(back, rs).empty());
  // nft itself can list what knit wrote.
  auto listed = ns.must("nft list table inet knit");
  BOOST_TEST(listed.find("ip daddr . meta l4proto . th dport @pol_a_r0_dst") != std::string::npos,
             listed);
  BOOST_TEST(listed.find("10.244.0.0/16 . sctp . 1-65535") != std::string::npos, listed);
  // Nothing of it reached the machine's own namespace.
  BOOST_TEST(knit::test::sh("nft list table inet knit").status != 0);
}

BOOST_AUTO_TEST_CASE(golden_text_loaded_by_nft_reads_back_identically,
                     *boost::unit_test::precondition(NeedsNetns())) {
  // The same golden file, loaded by `nft -f`: the lifter understands nft's bytecode too (short
  // prefix loads, gte/lte ranges, byteorder in concatenations, leading interval end markers).
  TestNetns ns("nft-nftf");
  std::string golden = knit::test::golden_path("nft_sample.nft");
  ns.must("nft -f " + golden);
  auto sock = nft_socket(ns);
  Ruleset back = read(sock, knit::test::sample_ruleset());
  BOOST_TEST(render(back) == knit::test::read_text(golden));
  BOOST_TEST(plan(back, knit::test::sample_ruleset()).empty());
}

namespace {

/// Element churn, a rule change, a set whose type changes, base chain changes and a namespace
/// going away, each converged with plan(); `names` as for converge().
void incremental_steps(knit::nl::Socket& sock, Ruleset rs, SetNames* names) {
  auto converge = [&](knit::nl::Socket& s, const Ruleset& d) { return ::converge(s, d, names); };
  converge(sock, rs);

  // Element churn only: pods come and go, a port range widens, a dispatch entry changes.
  auto& pods = set_of(rs, "pod_v4");
  pods.elements.erase(pods.elements.begin());
  pods.elements.push_back(element({ip("10.244.1.77")}));
  auto& dst = set_of(rs, "pol_a_r0_dst");
  dst.elements[1] = element({ip("10.244.1.2"), Value::u8(proto::kTcp), port_range(8000, 8200)});
  auto& src = set_of(rs, "pol_a_r0_src");
  src.elements[0] = element({net("10.244.2.0/23")});  // plain interval: start kept, end moves
  set_of(rs, "ingress_dispatch").elements[1].verdict = jump("ns_default_ingress");
  Plan p = converge(sock, rs);
  for (const auto& c : p.changes) {
    BOOST_TEST(
        (std::holds_alternative<AddElements>(c) || std::holds_alternative<DeleteElements>(c)),
        describe(p.table, c));
  }

  // A rule change flushes and refills one chain.
  chain_of(rs, "ns_default_ingress")
      .rules.insert(chain_of(rs, "ns_default_ingress").rules.begin(),
                    Rule{{match(Sel::kThDport, Value::port(53)), accept()}, "dns"});
  converge(sock, rs);

  // A set changes type: recreated, its users refilled.
  set_of(rs, "marks").interval = true;
  converge(sock, rs);

  // A base chain moves to another priority and another changes policy.
  chain_of(rs, "raw_prerouting").base->priority = prio::kRaw + 1;
  chain_of(rs, "input").base->policy = Policy::kDrop;
  converge(sock, rs);

  // A namespace goes away entirely.
  std::erase_if(rs.chains, [](const Chain& c) { return c.name.rfind("ns_default_", 0) == 0; });
  std::erase_if(rs.sets, [](const Set& s) { return s.name.rfind("pol_a_", 0) == 0; });
  rs.counters.clear();
  set_of(rs, "egress_dispatch").elements.clear();
  set_of(rs, "ingress_dispatch").elements.clear();
  converge(sock, rs);
}

}  // namespace

BOOST_AUTO_TEST_CASE(incremental_plans_converge, *boost::unit_test::precondition(NeedsNetns())) {
  TestNetns ns("nft-incr");
  auto sock = nft_socket(ns);
  incremental_steps(sock, knit::test::sample_ruleset(), nullptr);
  BOOST_TEST(delete_table(sock, TableFamily::kInet, "knit"));
  BOOST_TEST(!delete_table(sock, TableFamily::kInet, "knit"));
  BOOST_TEST(!read_table(sock, TableFamily::kInet, "knit").has_value());
}

BOOST_AUTO_TEST_CASE(short_kernel_set_names_carry_the_model_name_in_their_comment,
                     *boost::unit_test::precondition(NeedsNetns())) {
  TestNetns ns("nft-names");
  auto sock = nft_socket(ns);
  // With the host-order `mark` set: nft prints its elements the right way round only if the
  // set carries its byte order in the userdata, and else its listing would not load back.
  Ruleset rs = knit::test::sample_ruleset();
  SetNames names;
  converge(sock, rs, &names);
  // What nft shows: the short name, and the model's name as the set's comment; the rules name
  // the short one. Names of up to SetNames::kKeepName characters stay.
  auto dst = names.find("pol_a_r0_dst");
  BOOST_REQUIRE(dst);
  BOOST_TEST(dst->front() == '_');
  BOOST_TEST(!names.find("pod_v4"));
  auto listed = ns.must("nft list table inet knit");
  BOOST_TEST(listed.find(knit::str("set ", *dst, " {")) != std::string::npos, listed);
  BOOST_TEST(listed.find("comment \"pol_a_r0_dst\"") != std::string::npos, listed);
  BOOST_TEST(listed.find("set pol_a_r0_dst") == std::string::npos, listed);
  BOOST_TEST(listed.find(knit::str("@", *dst)) != std::string::npos, listed);
  BOOST_TEST(listed.find("set pod_v4 {") != std::string::npos, listed);
  // The text nft prints loads back as the same table.
  std::string text = listed;
  ns.must("nft delete table inet knit");
  ns.must(knit::str("nft -f - <<'EOF'\n", text, "\nEOF"));
  BOOST_TEST(render(read(sock, rs)) == render(rs));
  ns.must("nft delete table inet knit");

  // Every kind of change, with short names from the start.
  names.clear();
  incremental_steps(sock, knit::test::sample_ruleset(), &names);
  BOOST_TEST(delete_table(sock, TableFamily::kInet, "knit"));

  // A table of sets under their model names (an older knit) keeps them; new sets get short
  // names; both kinds change by element.
  converge(sock, knit::test::sample_ruleset());
  names.clear();
  read_table(sock, TableFamily::kInet, "knit", &names);
  BOOST_TEST(names.size() == 0u);
  Ruleset more = knit::test::sample_ruleset();
  Set extra{"pol_b_r0_src", {Type::kIpv4Addr}, {}, false, false, {}};
  extra.elements = {element({ip("10.244.3.4")})};
  more.sets.push_back(extra);
  more.chains.push_back(
      Chain{"ns_b",
            std::nullopt,
            {Rule{{Lookup{{Sel::kIpSaddr}, "pol_b_r0_src", false}, accept()}, {}}}});
  set_of(more, "pol_a_r0_src").elements.push_back(element({ip("172.16.1.1")}));
  converge(sock, more, &names);
  BOOST_TEST(!names.find("pol_a_r0_src"));
  BOOST_REQUIRE(names.find("pol_b_r0_src"));
  set_of(more, "pol_b_r0_src").elements.push_back(element({ip("10.244.3.5")}));
  set_of(more, "pol_a_r0_src").elements.pop_back();
  Plan p = converge(sock, more, &names);
  BOOST_TEST(p.changes.size() == 2u);
}

BOOST_AUTO_TEST_CASE(a_set_that_squats_a_short_name_refuses_the_commit_not_joins_it,
                     *boost::unit_test::precondition(NeedsNetns())) {
  // Short names are handed out from the names known to be in use; a set someone else made
  // under the next one makes the kernel refuse the commit (NLM_F_EXCL), so no set of knit's is
  // ever filled into another's. Read back, the squatter is a set like any other, and the next
  // plan deletes it and names around it.
  TestNetns ns("nft-squat");
  auto sock = nft_socket(ns);
  Ruleset rs = knit::test::sample_ruleset();
  SetNames names;
  converge(sock, rs, &names);
  Ruleset more = rs;
  Set extra{"pol_b_r0_src", {Type::kIpv4Addr}, {}, false, false, {}};
  more.sets.push_back(extra);
  Plan p = plan(read(sock, rs), more, &names);
  BOOST_REQUIRE(p.new_names.count("pol_b_r0_src"));
  const std::string squat = p.new_names.at("pol_b_r0_src");
  ns.must(knit::str("nft add set inet knit ", squat, " '{ type ipv4_addr; }'"));
  BOOST_CHECK_THROW(apply(sock, p), knit::Error);
  names.clear();
  auto now = read_table(sock, TableFamily::kInet, "knit", &names);
  BOOST_REQUIRE(now.has_value());
  BOOST_TEST(now->find_set(squat) != nullptr);
  converge(sock, more, &names);
  BOOST_TEST(*names.find("pol_b_r0_src") != squat);
  BOOST_TEST(read(sock, more).find_set(squat) == nullptr);
}

BOOST_AUTO_TEST_CASE(refused_commit_names_the_object_and_changes_nothing,
                     *boost::unit_test::precondition(NeedsNetns())) {
  TestNetns ns("nft-atomic");
  auto sock = nft_socket(ns);
  const Ruleset rs = knit::test::sample_ruleset();
  apply(sock, plan(std::nullopt, rs));
  const std::string before = render(read(sock, rs));

  // A valid change (a new set, a new element) followed by an element that already exists.
  Set fresh{"fresh", {Type::kIpv4Addr}, {}, false, false, {element({ip("10.1.1.1")})}};
  Set pods = rs.sets[1];
  BOOST_REQUIRE_EQUAL(pods.name, "pod_v4");
  pods.elements = {element({ip("10.244.1.50")})};
  Set dup = pods;
  dup.elements = {element({ip("10.244.1.2")})};
  Plan p{rs.table, {AddSet{fresh}, AddElements{pods}, AddElements{dup}}};
  try {
    apply(sock, p);
    BOOST_FAIL("commit succeeded");
  } catch (const knit::Error& e) {
    BOOST_TEST((e.code() == knit::Code::kNetlink));
    BOOST_TEST(e.sys_errno() == EEXIST);
    BOOST_TEST(
        std::string(e.what()) ==
        "commit nftables batch: add element 10.244.1.2 to set inet knit pod_v4: File exists");
  }
  BOOST_TEST(render(read(sock, rs)) == before);

  // In a message of many elements the kernel's attribute offset names the duplicate.
  Set many = rs.sets[4];
  BOOST_REQUIRE_EQUAL(many.name, "pol_a_r0_dst");
  many.elements.clear();
  for (uint16_t i = 0; i < 500; ++i) {
    many.elements.push_back(element(
        {ip("10.9.0.1"), Value::u8(proto::kTcp), Value::port(static_cast<uint16_t>(20000 + i))}));
  }
  many.elements.push_back(element({ip("10.244.1.2"), Value::u8(proto::kTcp), Value::port(80)}));
  try {
    apply(sock, Plan{rs.table, {AddElements{many}}});
    BOOST_FAIL("commit succeeded");
  } catch (const knit::Error& e) {
    BOOST_TEST(
        std::string(e.what()).find(
            "add element 10.244.1.2 . tcp . 80 to set inet knit pol_a_r0_dst: File exists") !=
            std::string::npos,
        e.what());
  }
  BOOST_TEST(render(read(sock, rs)) == before);

  // A rule that jumps to a chain that does not exist.
  Plan bad{rs.table,
           {AddChain{"new_chain", std::nullopt}, AddRule{"input", Rule{{jump("nowhere")}, {}}}}};
  try {
    apply(sock, bad);
    BOOST_FAIL("commit succeeded");
  } catch (const knit::Error& e) {
    BOOST_TEST(e.sys_errno() == ENOENT);
    BOOST_TEST(std::string(e.what()).find("commit nftables batch: add rule to chain inet knit "
                                          "input (jump nowhere): No such file or directory") == 0u,
               e.what());
  }
  BOOST_TEST(render(read(sock, rs)) == before);

  // A set deleted while a rule still uses it: the kernel says busy, nothing changes.
  try {
    apply(sock, Plan{rs.table, {DeleteSet{"cluster_cidrs"}}});
    BOOST_FAIL("commit succeeded");
  } catch (const knit::Error& e) {
    BOOST_TEST(e.sys_errno() == EBUSY);
    BOOST_TEST(
        std::string(e.what()).find("delete set inet knit cluster_cidrs") != std::string::npos,
        e.what());
  }
  BOOST_TEST(render(read(sock, rs)) == before);

  // An empty plan sends nothing and succeeds.
  apply(sock, Plan{rs.table, {}});
}

BOOST_AUTO_TEST_CASE(check_answers_as_apply_would_and_changes_nothing,
                     *boost::unit_test::precondition(NeedsNetns())) {
  TestNetns ns("nft-check");
  auto sock = nft_socket(ns);
  const Ruleset rs = knit::test::sample_ruleset();

  // A whole table that the kernel takes: checked, and still not there.
  check(sock, plan(std::nullopt, rs));
  BOOST_TEST(!read_table(sock, TableFamily::kInet, "knit").has_value());

  apply(sock, plan(std::nullopt, rs));
  const std::string before = render(read(sock, rs));
  Set pods = rs.sets[1];
  BOOST_REQUIRE_EQUAL(pods.name, "pod_v4");
  pods.elements = {element({ip("10.244.1.50")})};
  check(sock, Plan{rs.table, {AddElements{pods}}});
  BOOST_TEST(render(read(sock, rs)) == before);

  // A refused change: the same error as apply() gives, and nothing applied.
  Set dup = pods;
  dup.elements = {element({ip("10.244.1.2")})};
  Plan p{rs.table, {AddElements{pods}, AddElements{dup}}};
  std::string checked, applied;
  try {
    check(sock, p);
  } catch (const knit::Error& e) {
    checked = e.what();
  }
  BOOST_TEST(render(read(sock, rs)) == before);
  try {
    apply(sock, p);
  } catch (const knit::Error& e) {
    applied = e.what();
  }
  BOOST_TEST(checked ==
             "commit nftables batch: add element 10.244.1.2 to set inet knit pod_v4: File exists");
  BOOST_TEST(checked == applied);
  BOOST_TEST(render(read(sock, rs)) == before);

  // The socket stays usable: a later commit goes through.
  apply(sock, Plan{rs.table, {AddElements{pods}}});
  BOOST_TEST(render(read(sock, rs)) != before);
}

BOOST_AUTO_TEST_CASE(large_ruleset_commits_in_one_paged_batch,
                     *boost::unit_test::precondition(NeedsNetns())) {
  TestNetns ns("nft-big");
  auto sock = nft_socket(ns);
  const Ruleset rs = knit::test::synthetic_ruleset(1000, 50);
  size_t elements = 0;
  for (const auto& s : rs.sets) elements += s.elements.size();
  BOOST_TEST(elements >= 50000u);

  auto t0 = std::chrono::steady_clock::now();
  Plan p = plan(std::nullopt, rs);
  Batch b = lower(p);
  double build_ms = ms_since(t0);
  BOOST_TEST(b.bytes() > Batch::kPageSize);  // more than one page
  auto t1 = std::chrono::steady_clock::now();
  commit(sock, b, &p);
  double commit_ms = ms_since(t1);
  BOOST_TEST_MESSAGE("full sync: " << rs.sets.size() << " sets, " << rs.chains.size() << " chains, "
                                   << elements << " elements, " << b.size() << " messages, "
                                   << b.bytes() << " bytes: build " << build_ms << " ms, commit "
                                   << commit_ms << " ms");

  auto t2 = std::chrono::steady_clock::now();
  Ruleset back = read(sock, rs);
  BOOST_TEST_MESSAGE("read back in " << ms_since(t2) << " ms");
  size_t back_elements = 0;
  for (const auto& s : back.sets) back_elements += s.elements.size();
  BOOST_TEST(back_elements == elements);
  BOOST_TEST(plan(back, rs).empty());

  // One element in, one out: a two-message commit.
  Ruleset next = rs;
  auto& s0 = next.sets[0];
  s0.elements.pop_back();
  s0.elements.push_back(element({ip("10.250.0.1"), Value::u8(proto::kUdp), port_range(53, 53)}));
  Plan small = plan(back, next);
  BOOST_TEST(small.changes.size() == 2u);
  apply(sock, small);
  BOOST_TEST(plan(read(sock, next), next).empty());
}

BOOST_AUTO_TEST_SUITE_END()
