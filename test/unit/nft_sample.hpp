// test/unit/nft_sample.hpp: the ruleset behind test/data/golden/nft_sample.nft.
//
// Shaped like the policy agent's table (fast path, vmap dispatch to per-namespace chains,
// concatenated interval sets, hostPort DNAT map, masquerade) and touching every statement of
// the vocabulary once. The unit test renders it and compares with the golden file; the netns
// test applies it, reads the kernel's table back and compares the same file.
#pragma once

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

#include "core/str.hpp"
#include "nft/nft.hpp"

namespace knit::test {

inline knit::IpAddr ip(const char* s) {
  return *knit::IpAddr::parse(s);
}
inline knit::Prefix net(const char* s) {
  return *knit::Prefix::parse(s);
}

inline std::string read_text(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

#ifdef KNIT_TEST_DATA
inline std::string golden_path(const std::string& name) {
  return std::string(KNIT_TEST_DATA) + "/golden/" + name;
}
#endif

inline nft::Ruleset sample_ruleset() {
  using namespace knit::nft;
  using V = Value;
  Ruleset rs;
  rs.table = Table{TableFamily::kInet, "knit"};
  rs.counters = {{"pol_a_allowed"}};

  Set cluster{"cluster_cidrs", {Type::kIpv4Addr}, {}, true, false, {}};
  cluster.elements = {element({net("10.244.0.0/16")}), element({net("10.96.0.0/12")})};

  Set pods{"pod_v4", {Type::kIpv4Addr}, {}, false, false, {}};
  pods.elements = {element({ip("10.244.1.2")}), element({ip("10.244.1.3")})};
  pods.elements[0].comment = "default/web-0";

  Set pods6{"pod_v6", {Type::kIpv6Addr}, {}, true, false, {}};
  pods6.elements = {element({net("fd00:10:244::/56")})};

  Set any{"any_v4", {Type::kIpv4Addr}, {}, true, false, {}};
  any.elements = {element({net("0.0.0.0/0")})};

  Set dst{
      "pol_a_r0_dst", {Type::kIpv4Addr, Type::kInetProto, Type::kInetService}, {}, true, false, {}};
  dst.elements = {
      element({ip("10.244.1.2"), V::u8(proto::kTcp), V::port(80)}),
      element({ip("10.244.1.2"), V::u8(proto::kTcp), port_range(8000, 8100)}),
      element({net("10.244.0.0/16"), V::u8(proto::kUdp), V::port(53)}),
      element({net("10.244.0.0/16"), V::u8(proto::kSctp), port_range(1, 65535)}),
  };

  Set src{"pol_a_r0_src", {Type::kIpv4Addr}, {}, true, false, {}};
  src.elements = {element({net("10.244.2.0/24")}), element({net("192.168.0.0/16")}),
                  element({Field(V::addr(ip("172.16.0.5")), V::addr(ip("172.16.0.9")))})};

  Set ports{"svc_ports", {Type::kInetService}, {}, false, true, {}};
  ports.elements = {element({V::port(443)}), element({V::port(80)})};

  Set marks{"marks", {Type::kMark}, {}, false, false, {}};
  marks.elements = {element({V::u32(0x10)})};

  Set egress{"egress_dispatch", {Type::kIpv4Addr}, {Type::kVerdict}, false, false, {}};
  egress.elements = {element({ip("10.244.1.2")}, jump("ns_default_egress"))};

  Set ingress{"ingress_dispatch", {Type::kIpv4Addr}, {Type::kVerdict}, false, false, {}};
  ingress.elements = {element({ip("10.244.1.2")}, jump("ns_default_ingress")),
                      element({ip("10.244.1.3")}, goto_("ns_default_ingress"))};

  Set hostports{"hostports",
                {Type::kIpv4Addr, Type::kInetProto, Type::kInetService},
                {Type::kIpv4Addr, Type::kInetService},
                false,
                false,
                {}};
  hostports.elements = {element({ip("192.168.1.10"), V::u8(proto::kTcp), V::port(8080)},
                                {V::addr(ip("10.244.1.2")), V::port(80)})};

  rs.sets = {cluster, pods, pods6, any, dst, src, ports, marks, egress, ingress, hostports};

  const std::vector<Sel> dst_key = {Sel::kIpDaddr, Sel::kL4proto, Sel::kThDport};

  Chain post{"postrouting",
             BaseChain{ChainType::kFilter, Hook::kPostrouting, prio::kSrcnat - 5, Policy::kAccept},
             {}};
  post.rules = {
      {{match_any(Sel::kCtState, ct::kEstablished | ct::kRelated), accept()}, {}},
      {{match_any(Sel::kCtState, ct::kInvalid), drop()}, {}},
      {{match(Sel::kIcmpv6Type, V::u8(135)), accept()}, {}},
      {{match(Sel::kIcmpv6Type, V::u8(136)), accept()}, {}},
      {{match(Sel::kFibSaddrType, V::u32(fib::kLocal)), accept()}, {}},
      {{Vmap{{Sel::kIpSaddr}, "egress_dispatch"}}, {}},
      {{Vmap{{Sel::kIpDaddr}, "ingress_dispatch"}}, {}},
  };

  Chain input{
      "input", BaseChain{ChainType::kFilter, Hook::kInput, prio::kFilter, Policy::kAccept}, {}};
  input.rules = {
      {{match_any(Sel::kCtState, ct::kEstablished | ct::kRelated), accept()}, {}},
      {{match(Sel::kIifname, V::ifname("lo")), accept()}, {}},
      {{match(Sel::kIcmpType, V::u8(8)), accept()}, {}},
      {{match(Sel::kL4proto, V::u8(proto::kTcp)), match(Sel::kThDport, V::port(22)), accept()}, {}},
      {{Lookup{{Sel::kThDport}, "svc_ports", false}, accept()}, {}},
      {{Range{Sel::kThDport, CmpOp::kNe, V::port(1000), V::port(2000)}, Counter{}}, {}},
      {{Range{Sel::kThDport, CmpOp::kEq, V::port(3000), V::port(3999)}, drop()}, {}},
      {{Lookup{{Sel::kMark}, "marks", false}, SetMark{MarkTarget::kCt, 0x20}}, {}},
      {{match(Sel::kSkuid, V::u32(0)), match_ne(Sel::kMark, V::u32(0x1)), accept()}, {}},
      {{match(Sel::kIif, V::u32(1)), accept()}, {}},
      {{match(Sel::kOif, V::u32(2)), match(Sel::kCtMark, V::u32(0x20)), accept()}, {}},
      {{Cmp{Sel::kCtMark, CmpOp::kEq, V::u32(0x100), V::u32(0xff00)}, accept()}, {}},
      {{match_prefix(Sel::kIp6Saddr, net("fd00::/8"), CmpOp::kNe), drop()}, {}},
      {{match_prefix(Sel::kIpSaddr, net("10.96.0.0/12")), match(Sel::kNfproto, V::u8(proto::kIpv4)),
        Log{"in ", std::nullopt, 6}},
       {}},
      {{Lookup{{Sel::kIpSaddr}, "any_v4", true}, Reject{RejectKind::kAdminProhibited}}, {}},
      {{Reject{RejectKind::kTcpReset}}, "reset tcp"},
      {{Reject{}}, {}},
  };

  Chain egress_chain{"ns_default_egress", std::nullopt, {}};
  egress_chain.rules = {
      {{Lookup{dst_key, "pol_a_r0_dst", false}, Lookup{{Sel::kIpSaddr}, "pol_a_r0_src", false},
        CounterRef{"pol_a_allowed"}, accept()},
       {}},
      {{Log{"knit-drop ", 2, std::nullopt}, drop()}, "default deny"},
  };

  Chain ingress_chain{"ns_default_ingress", std::nullopt, {}};
  ingress_chain.rules = {
      {{Lookup{{Sel::kIpSaddr}, "pol_a_r0_src", false}, accept()}, {}},
      {{Lookup{{Sel::kIp6Saddr}, "pod_v6", false}, accept()}, {}},
      {{match_prefix(Sel::kIpSaddr, net("10.244.0.0/16")), ret()}, {}},
      {{match_any(Sel::kCtStatus, ct::kStatusDnat), Verdict{VerdictKind::kContinue, {}}}, {}},
      {{drop()}, {}},
  };

  Chain nat_pre{"nat_prerouting",
                BaseChain{ChainType::kNat, Hook::kPrerouting, prio::kDstnat, Policy::kAccept},
                {}};
  nat_pre.rules = {
      {{match(Sel::kFibDaddrType, V::u32(fib::kLocal)), DnatMap{Family::kV4, dst_key, "hostports"}},
       {}},
      {{match(Sel::kIpDaddr, V::addr(ip("192.168.1.10"))), match(Sel::kL4proto, V::u8(proto::kTcp)),
        match(Sel::kThDport, V::port(9090)), Nat{NatType::kDnat, ip("10.244.1.3"), 9090}},
       {}},
      {{match(Sel::kIp6Daddr, V::addr(ip("fd00::1"))), match(Sel::kL4proto, V::u8(proto::kTcp)),
        match(Sel::kThDport, V::port(80)), Nat{NatType::kDnat, ip("fd00::2"), 8080}},
       {}},
  };

  Chain nat_out{
      "nat_output", BaseChain{ChainType::kNat, Hook::kOutput, prio::kDstnat, Policy::kAccept}, {}};
  nat_out.rules = {
      {{match(Sel::kFibDaddrType, V::u32(fib::kLocal)), DnatMap{Family::kV4, dst_key, "hostports"}},
       {}},
  };

  Chain nat_post{"nat_postrouting",
                 BaseChain{ChainType::kNat, Hook::kPostrouting, prio::kSrcnat, Policy::kAccept},
                 {}};
  nat_post.rules = {
      {{match_any(Sel::kCtStatus, ct::kStatusDnat), Masquerade{}}, {}},
      {{Lookup{{Sel::kIpSaddr}, "pod_v4", false}, Lookup{{Sel::kIpDaddr}, "cluster_cidrs", true},
        Masquerade{false, true, false}},
       {}},
      {{match(Sel::kIpSaddr, V::addr(ip("10.0.0.1"))),
        Nat{NatType::kSnat, ip("1.2.3.4"), std::nullopt}},
       {}},
      {{match(Sel::kOifname, V::ifname("eth0")), Masquerade{true, false, true}}, {}},
  };

  Chain raw{"raw_prerouting",
            BaseChain{ChainType::kFilter, Hook::kPrerouting, prio::kRaw, Policy::kAccept},
            {}};
  raw.rules = {
      {{match(Sel::kIpDaddr, V::addr(ip("169.254.0.1"))), Notrack{}}, {}},
      {{SetMark{MarkTarget::kMeta, 0x1}, Counter{}}, {}},
  };

  rs.chains = {post, input, egress_chain, ingress_chain, nat_pre, nat_out, nat_post, raw};
  return rs;
}

/// A policy-agent-sized table: `namespaces` per-namespace chains, each with one policy set
/// (even: ipv4_addr . inet_proto . inet_service port ranges; odd: plain CIDR set) of
/// `elements_per_set` elements, a verdict map dispatching one pod address per namespace, and the
/// usual fast path. With 1000 × 50 it has 1001 sets, 1001 chains and 51k elements.
inline nft::Ruleset synthetic_ruleset(uint32_t namespaces, uint32_t elements_per_set) {
  using namespace knit::nft;
  Ruleset rs;
  rs.table = Table{TableFamily::kInet, "knit"};
  Set dispatch{"ingress_dispatch", {Type::kIpv4Addr}, {Type::kVerdict}, false, false, {}};
  Chain post{"postrouting",
             BaseChain{ChainType::kFilter, Hook::kPostrouting, prio::kSrcnat - 5, Policy::kAccept},
             {}};
  post.rules = {
      {{match_any(Sel::kCtState, ct::kEstablished | ct::kRelated), accept()}, {}},
      {{match_any(Sel::kCtState, ct::kInvalid), drop()}, {}},
      {{Vmap{{Sel::kIpDaddr}, "ingress_dispatch"}}, {}},
  };
  for (uint32_t i = 0; i < namespaces; ++i) {
    std::string chain = str("ns_", i);
    // Pod 10.200.i/256.i%256, namespace i's policy peers under 10.(i / 200 + 1).(i % 200).0/24.
    dispatch.elements.push_back(element({IpAddr::v4(0x0ac80000 + i)}, jump(chain)));
    uint32_t base = 0x0a000000 + ((i / 200 + 1) << 16) + ((i % 200) << 8);
    Chain c{chain, std::nullopt, {}};
    if (i % 2 == 0) {
      Set s{str("pol_", i, "_dst"),
            {Type::kIpv4Addr, Type::kInetProto, Type::kInetService},
            {},
            true,
            false,
            {}};
      for (uint32_t e = 0; e < elements_per_set; ++e) {
        uint16_t port = static_cast<uint16_t>(1000 + 10 * e);
        s.elements.push_back(
            element({IpAddr::v4(base + (e % 250)), Value::u8(e % 3 ? proto::kTcp : proto::kUdp),
                     port_range(port, static_cast<uint16_t>(port + 5))}));
      }
      c.rules.push_back(
          {{Lookup{{Sel::kIpSaddr, Sel::kL4proto, Sel::kThDport}, s.name, false}, accept()}, {}});
      rs.sets.push_back(std::move(s));
    } else {
      Set s{str("pol_", i, "_src"), {Type::kIpv4Addr}, {}, true, false, {}};
      for (uint32_t e = 0; e < elements_per_set; ++e) {
        // Disjoint /30s in the namespace's own /20 of 100.64.0.0/10.
        uint32_t a = 0x64400000 + (i << 12) + (e << 4);
        s.elements.push_back(element({Prefix(IpAddr::v4(a), 30)}));
      }
      c.rules.push_back({{Lookup{{Sel::kIpSaddr}, s.name, false}, accept()}, {}});
      rs.sets.push_back(std::move(s));
    }
    c.rules.push_back({{drop()}, {}});
    rs.chains.push_back(std::move(c));
  }
  rs.sets.push_back(std::move(dispatch));
  rs.chains.push_back(std::move(post));
  return rs;
}

/// `rs` without set `name` and the rules that look it up.
inline void drop_set(nft::Ruleset& rs, const std::string& name) {
  std::erase_if(rs.sets, [&](const nft::Set& s) { return s.name == name; });
  for (auto& c : rs.chains) {
    std::erase_if(c.rules, [&](const nft::Rule& r) {
      return std::any_of(r.stmts.begin(), r.stmts.end(), [&](const nft::Stmt& st) {
        auto* l = std::get_if<nft::Lookup>(&st);
        return l && l->set == name;
      });
    });
  }
}

}  // namespace knit::test
