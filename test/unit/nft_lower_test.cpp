// Lowering checked against nft's own bytecode (`nft --debug=netlink`, nftables 1.0.6 on this
// Debian): every rule is lowered, put in a netlink message, parsed back with libnftnl and
// printed expression by expression; the same parsed rule must lift back to the model.
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "core/error.hpp"
#include "core/str.hpp"
#include "nft/lift.hpp"
#include "nft/lower.hpp"
#include "nft/render.hpp"
#include "test/unit/nft_sample.hpp"

namespace bdata = boost::unit_test::data;
using namespace knit::nft;
using knit::test::ip;
using knit::test::net;

namespace {

const Table kTable{TableFamily::kInet, "knit"};

/// Message bytes of a rule as the kernel would receive them, parsed back by libnftnl.
NftRule roundtrip(const Rule& r) {
  auto lowered = lower_rule(kTable, "c", r);
  std::vector<char> buf(65536);
  auto* nlh = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_NEWRULE, NFPROTO_INET, 0, 1);
  nftnl_rule_nlmsg_build_payload(nlh, lowered.get());
  auto parsed = new_rule();
  BOOST_REQUIRE(nftnl_rule_nlmsg_parse(nlh, parsed.get()) >= 0);
  return parsed;
}

std::string exprs_text(nftnl_rule* r) {
  std::string out;
  auto it = new_expr_iter(r);
  for (nftnl_expr* e = nftnl_expr_iter_next(it.get()); e; e = nftnl_expr_iter_next(it.get())) {
    char buf[512];
    nftnl_expr_snprintf(buf, sizeof buf, e, NFTNL_OUTPUT_DEFAULT, 0);
    std::string_view text = knit::trim(buf);
    out += knit::str("[ ", nftnl_expr_get_str(e, NFTNL_EXPR_NAME), text.empty() ? "" : " ", text,
                     " ]\n");
  }
  return out;
}

struct RuleCase {
  const char* nft;  ///< the nft syntax the oracle was run on
  Rule rule;
  const char* bytecode;
};
std::ostream& operator<<(std::ostream& os, const RuleCase& c) {
  return os << c.nft;
}

using V = Value;
const std::vector<Sel> kDstKey = {Sel::kIpDaddr, Sel::kL4proto, Sel::kThDport};

std::vector<RuleCase> rule_cases() {
  return {
      {"ct state established,related accept",
       {{match_any(Sel::kCtState, ct::kEstablished | ct::kRelated), accept()}, {}},
       "[ ct load state => reg 1 ]\n"
       "[ bitwise reg 1 = ( reg 1 & 0x00000006 ) ^ 0x00000000 ]\n"
       "[ cmp neq reg 1 0x00000000 ]\n"
       "[ immediate reg 0 accept ]\n"},
      {"ip daddr . meta l4proto . th dport @d ip saddr @c counter name \"n\" accept",
       {{Lookup{kDstKey, "d", false}, Lookup{{Sel::kIpSaddr}, "c", false}, CounterRef{"n"},
         accept()},
        {}},
       "[ meta load nfproto => reg 1 ]\n"
       "[ cmp eq reg 1 0x00000002 ]\n"
       "[ payload load 4b @ network header + 16 => reg 1 ]\n"
       "[ meta load l4proto => reg 9 ]\n"
       "[ payload load 2b @ transport header + 2 => reg 10 ]\n"
       "[ lookup reg 1 set d ]\n"
       "[ payload load 4b @ network header + 12 => reg 1 ]\n"
       "[ lookup reg 1 set c ]\n"
       "[ objref type 1 name n ]\n"
       "[ immediate reg 0 accept ]\n"},
      {"fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @hostports",
       {{match(Sel::kFibDaddrType, V::u32(fib::kLocal)),
         DnatMap{knit::Family::kV4, kDstKey, "hostports"}},
        {}},
       "[ fib daddr type => reg 1 ]\n"
       "[ cmp eq reg 1 0x00000002 ]\n"
       "[ meta load nfproto => reg 1 ]\n"
       "[ cmp eq reg 1 0x00000002 ]\n"
       "[ payload load 4b @ network header + 16 => reg 1 ]\n"
       "[ meta load l4proto => reg 9 ]\n"
       "[ payload load 2b @ transport header + 2 => reg 10 ]\n"
       "[ lookup reg 1 set hostports dreg 1 ]\n"
       "[ nat dnat ip addr_min reg 1 proto_min reg 9 ]\n"},
      {"dnat ip6 to ip6 daddr . meta l4proto . th dport map @hp6",
       {{DnatMap{knit::Family::kV6, {Sel::kIp6Daddr, Sel::kL4proto, Sel::kThDport}, "hp6"}}, {}},
       "[ meta load nfproto => reg 1 ]\n"
       "[ cmp eq reg 1 0x0000000a ]\n"
       "[ payload load 16b @ network header + 24 => reg 1 ]\n"
       "[ meta load l4proto => reg 2 ]\n"
       "[ payload load 2b @ transport header + 2 => reg 13 ]\n"
       "[ lookup reg 1 set hp6 dreg 1 ]\n"
       "[ nat dnat ip6 addr_min reg 1 proto_min reg 2 ]\n"},
      {"ip daddr != @cluster_cidrs masquerade fully-random",
       {{Lookup{{Sel::kIpDaddr}, "cluster_cidrs", true}, Masquerade{false, true, false}}, {}},
       "[ meta load nfproto => reg 1 ]\n"
       "[ cmp eq reg 1 0x00000002 ]\n"
       "[ payload load 4b @ network header + 16 => reg 1 ]\n"
       "[ lookup reg 1 set cluster_cidrs 0x1 ]\n"
       "[ masq flags 0x10 ]\n"},
      {"ip saddr vmap @egress_dispatch",
       {{Vmap{{Sel::kIpSaddr}, "egress_dispatch"}}, {}},
       "[ meta load nfproto => reg 1 ]\n"
       "[ cmp eq reg 1 0x00000002 ]\n"
       "[ payload load 4b @ network header + 12 => reg 1 ]\n"
       "[ lookup reg 1 set egress_dispatch dreg 0 ]\n"},
      {"icmpv6 type nd-neighbor-solicit accept",
       {{match(Sel::kIcmpv6Type, V::u8(135)), accept()}, {}},
       "[ meta load nfproto => reg 1 ]\n"
       "[ cmp eq reg 1 0x0000000a ]\n"
       "[ meta load l4proto => reg 1 ]\n"
       "[ cmp eq reg 1 0x0000003a ]\n"
       "[ payload load 1b @ transport header + 0 => reg 1 ]\n"
       "[ cmp eq reg 1 0x00000087 ]\n"
       "[ immediate reg 0 accept ]\n"},
      {"meta l4proto icmp icmp type echo-request accept",
       {{match(Sel::kL4proto, V::u8(proto::kIcmp)), match(Sel::kIcmpType, V::u8(8)), accept()}, {}},
       "[ meta load l4proto => reg 1 ]\n"
       "[ cmp eq reg 1 0x00000001 ]\n"
       "[ payload load 1b @ transport header + 0 => reg 1 ]\n"
       "[ cmp eq reg 1 0x00000008 ]\n"
       "[ immediate reg 0 accept ]\n"},
      {"iifname \"eth0\" meta mark set 0x10 ct mark set 0x20 log prefix \"knit drop \" group 2 "
       "drop",
       {{match(Sel::kIifname, V::ifname("eth0")), SetMark{MarkTarget::kMeta, 0x10},
         SetMark{MarkTarget::kCt, 0x20}, Log{"knit drop ", 2, std::nullopt}, drop()},
        {}},
       "[ meta load iifname => reg 1 ]\n"
       "[ cmp eq reg 1 0x30687465 0x00000000 0x00000000 0x00000000 ]\n"
       "[ immediate reg 1 0x00000010 ]\n"
       "[ meta set mark with reg 1 ]\n"
       "[ immediate reg 1 0x00000020 ]\n"
       "[ ct set mark with reg 1 ]\n"
       "[ log prefix knit drop  group 2 snaplen 0 qthreshold 0 ]\n"
       "[ immediate reg 0 drop ]\n"},
      {"ip6 daddr fd00::1 tcp dport 80 dnat ip6 to [fd00::2]:8080",
       {{match(Sel::kIp6Daddr, V::addr(ip("fd00::1"))), match(Sel::kL4proto, V::u8(proto::kTcp)),
         match(Sel::kThDport, V::port(80)), Nat{NatType::kDnat, ip("fd00::2"), 8080}},
        {}},
       "[ meta load nfproto => reg 1 ]\n"
       "[ cmp eq reg 1 0x0000000a ]\n"
       "[ payload load 16b @ network header + 24 => reg 1 ]\n"
       "[ cmp eq reg 1 0x000000fd 0x00000000 0x00000000 0x01000000 ]\n"
       "[ meta load l4proto => reg 1 ]\n"
       "[ cmp eq reg 1 0x00000006 ]\n"
       "[ payload load 2b @ transport header + 2 => reg 1 ]\n"
       "[ cmp eq reg 1 0x00005000 ]\n"
       "[ immediate reg 1 0x000000fd 0x00000000 0x00000000 0x02000000 ]\n"
       "[ immediate reg 2 0x0000901f ]\n"
       "[ nat dnat ip6 addr_min reg 1 proto_min reg 2 flags 0x2 ]\n"},
      {"ip saddr 10.244.0.0/12 accept",
       {{match_prefix(Sel::kIpSaddr, net("10.244.0.0/12")), accept()}, {}},
       "[ meta load nfproto => reg 1 ]\n"
       "[ cmp eq reg 1 0x00000002 ]\n"
       "[ payload load 4b @ network header + 12 => reg 1 ]\n"
       "[ bitwise reg 1 = ( reg 1 & 0x0000f0ff ) ^ 0x00000000 ]\n"
       "[ cmp eq reg 1 0x0000f00a ]\n"
       "[ immediate reg 0 accept ]\n"},
      {"th dport != 1000-2000 accept",
       {{Range{Sel::kThDport, CmpOp::kNe, V::port(1000), V::port(2000)}, accept()}, {}},
       "[ payload load 2b @ transport header + 2 => reg 1 ]\n"
       "[ range neq reg 1 0x0000e803 0x0000d007 ]\n"
       "[ immediate reg 0 accept ]\n"},
      {"reject with tcp reset",
       {{Reject{RejectKind::kTcpReset}}, {}},
       "[ meta load l4proto => reg 1 ]\n"
       "[ cmp eq reg 1 0x00000006 ]\n"
       "[ reject type 1 code 0 ]\n"},
      {"reject", {{Reject{}}, {}}, "[ reject type 2 code 1 ]\n"},
      {"reject with icmpx admin-prohibited",
       {{Reject{RejectKind::kAdminProhibited}}, {}},
       "[ reject type 2 code 3 ]\n"},
      {"ip saddr 10.0.0.1 snat ip to 1.2.3.4",
       {{match(Sel::kIpSaddr, V::addr(ip("10.0.0.1"))),
         Nat{NatType::kSnat, ip("1.2.3.4"), std::nullopt}},
        {}},
       "[ meta load nfproto => reg 1 ]\n"
       "[ cmp eq reg 1 0x00000002 ]\n"
       "[ payload load 4b @ network header + 12 => reg 1 ]\n"
       "[ cmp eq reg 1 0x0100000a ]\n"
       "[ immediate reg 1 0x04030201 ]\n"
       "[ nat snat ip addr_min reg 1 ]\n"},
      {"ip saddr != 10.0.0.1 goto in2",
       {{match_ne(Sel::kIpSaddr, V::addr(ip("10.0.0.1"))), goto_("in2")}, {}},
       "[ meta load nfproto => reg 1 ]\n"
       "[ cmp eq reg 1 0x00000002 ]\n"
       "[ payload load 4b @ network header + 12 => reg 1 ]\n"
       "[ cmp neq reg 1 0x0100000a ]\n"
       "[ immediate reg 0 goto -> in2 ]\n"},
      {"ct status dnat masquerade",
       {{match_any(Sel::kCtStatus, ct::kStatusDnat), Masquerade{}}, {}},
       "[ ct load status => reg 1 ]\n"
       "[ bitwise reg 1 = ( reg 1 & 0x00000020 ) ^ 0x00000000 ]\n"
       "[ cmp neq reg 1 0x00000000 ]\n"
       "[ masq ]\n"},
      {"notrack", {{Notrack{}}, {}}, "[ notrack ]\n"},
      {"log prefix \"x\" level info",
       {{Log{"x", std::nullopt, 6}}, {}},
       "[ log prefix x level 6 ]\n"},
      {"fib saddr type local accept",
       {{match(Sel::kFibSaddrType, V::u32(fib::kLocal)), accept()}, {}},
       "[ fib saddr type => reg 1 ]\n"
       "[ cmp eq reg 1 0x00000002 ]\n"
       "[ immediate reg 0 accept ]\n"},
      {"meta iif 1 accept",
       {{match(Sel::kIif, V::u32(1)), accept()}, {}},
       "[ meta load iif => reg 1 ]\n"
       "[ cmp eq reg 1 0x00000001 ]\n"
       "[ immediate reg 0 accept ]\n"},
      {"ct state != established accept",
       {{match_ne(Sel::kCtState, V::u32(ct::kEstablished)), accept()}, {}},
       "[ ct load state => reg 1 ]\n"
       "[ cmp neq reg 1 0x00000002 ]\n"
       "[ immediate reg 0 accept ]\n"},
      {"jump in2", {{jump("in2")}, {}}, "[ immediate reg 0 jump -> in2 ]\n"},
      {"ip saddr . th dport vmap @vm2",
       {{Vmap{{Sel::kIpSaddr, Sel::kThDport}, "vm2"}}, {}},
       "[ meta load nfproto => reg 1 ]\n"
       "[ cmp eq reg 1 0x00000002 ]\n"
       "[ payload load 4b @ network header + 12 => reg 1 ]\n"
       "[ payload load 2b @ transport header + 2 => reg 9 ]\n"
       "[ lookup reg 1 set vm2 dreg 0 ]\n"},
      {"meta oif 2 ct mark 0x20 accept",
       {{match(Sel::kOif, V::u32(2)), match(Sel::kCtMark, V::u32(0x20)), accept()}, {}},
       "[ meta load oif => reg 1 ]\n"
       "[ cmp eq reg 1 0x00000002 ]\n"
       "[ ct load mark => reg 1 ]\n"
       "[ cmp eq reg 1 0x00000020 ]\n"
       "[ immediate reg 0 accept ]\n"},
  };
}

}  // namespace

BOOST_AUTO_TEST_SUITE(nft_lower)

BOOST_DATA_TEST_CASE(rules_lower_like_nft, bdata::make(rule_cases()), c) {
  auto parsed = roundtrip(c.rule);
  BOOST_TEST(exprs_text(parsed.get()) == c.bytecode);
}

BOOST_DATA_TEST_CASE(rules_lift_back, bdata::make(rule_cases()), c) {
  auto parsed = roundtrip(c.rule);
  Rule back = lift_rule(TableFamily::kInet, parsed.get());
  BOOST_TEST(render_rule(back, TableFamily::kInet) == render_rule(c.rule, TableFamily::kInet));
  BOOST_TEST((back == canonical(c.rule, TableFamily::kInet)));
}

BOOST_AUTO_TEST_CASE(every_sample_rule_lifts_back_unchanged) {
  auto rs = knit::test::sample_ruleset();
  for (const auto& ch : rs.chains) {
    for (const auto& r : ch.rules) {
      auto parsed = roundtrip(r);
      Rule back = lift_rule(TableFamily::kInet, parsed.get());
      BOOST_TEST((back == canonical(r, TableFamily::kInet)),
                 ch.name << ": " << render_rule(r, TableFamily::kInet) << " came back as "
                         << render_rule(back, TableFamily::kInet));
    }
  }
}

BOOST_AUTO_TEST_CASE(rule_comment_travels_as_userdata) {
  auto parsed = roundtrip(Rule{{accept()}, "allow web"});
  BOOST_TEST(lift_rule(TableFamily::kInet, parsed.get()).comment == "allow web");
}

BOOST_AUTO_TEST_CASE(unknown_expressions_lift_to_raw_statements) {
  // `ip version 4`-style header load at an offset the vocabulary does not know.
  auto r = new_rule();
  auto load = new_expr("payload");
  nftnl_expr_set_u32(load.get(), NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
  nftnl_expr_set_u32(load.get(), NFTNL_EXPR_PAYLOAD_BASE, NFT_PAYLOAD_NETWORK_HEADER);
  nftnl_expr_set_u32(load.get(), NFTNL_EXPR_PAYLOAD_OFFSET, 0);
  nftnl_expr_set_u32(load.get(), NFTNL_EXPR_PAYLOAD_LEN, 1);
  nftnl_rule_add_expr(r.get(), load.release());
  auto quota = new_expr("quota");
  nftnl_expr_set_u64(quota.get(), NFTNL_EXPR_QUOTA_BYTES, 1000);
  nftnl_rule_add_expr(r.get(), quota.release());
  auto imm = new_expr("immediate");
  nftnl_expr_set_u32(imm.get(), NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
  nftnl_expr_set_u32(imm.get(), NFTNL_EXPR_IMM_VERDICT, NF_ACCEPT);
  nftnl_rule_add_expr(r.get(), imm.release());

  Rule back = lift_rule(TableFamily::kInet, r.get());
  BOOST_REQUIRE_EQUAL(back.stmts.size(), 3u);
  BOOST_TEST(std::holds_alternative<Raw>(back.stmts[0]));
  BOOST_TEST(std::holds_alternative<Raw>(back.stmts[1]));
  BOOST_TEST((back.stmts[2] == Stmt{accept()}));
  std::string text = render_rule(back, TableFamily::kInet);
  BOOST_TEST(text.find("__raw \"[ payload load 1b @ network header + 0 => reg 1 ]\"") == 0u, text);
  BOOST_TEST(text.find("quota") != std::string::npos, text);
  // ... and refuses to be lowered again.
  BOOST_CHECK_THROW(lower_rule(kTable, "c", back), knit::Error);
}

BOOST_AUTO_TEST_CASE(invalid_values_are_refused_before_anything_is_sent) {
  // A port compared with a 4-byte value.
  Rule r{{match(Sel::kThDport, Value::u32(80)), accept()}, {}};
  BOOST_CHECK_THROW(lower_rule(kTable, "c", r), knit::Error);
  Rule both{{Log{"x", 1, 6}}, {}};
  BOOST_CHECK_THROW(lower_rule(kTable, "c", both), knit::Error);
}

BOOST_AUTO_TEST_SUITE_END()
