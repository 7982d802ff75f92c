#include "watcher/conntrack.hpp"

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

#include "core/error.hpp"
#include "core/str.hpp"

namespace knit::watcher {

namespace {

void put_nfgen(nl::Request& req, uint8_t family) {
  auto* g = req.extra<nfgenmsg>();
  g->nfgen_family = family;
  g->version = NFNETLINK_V0;
  g->res_id = 0;
}

uint16_t type_of(uint8_t msg) { return static_cast<uint16_t>((NFNL_SUBSYS_CTNETLINK << 8) | msg); }

struct Tuple {
  std::optional<IpAddr> src, dst;
  uint8_t proto = 0;
  uint16_t sport = 0, dport = 0;
};

Tuple parse_tuple(const nlattr* nest) {
  Tuple t;
  nl::for_each_nested(nest, [&](const nlattr* a) {
    if (mnl_attr_get_type(a) == CTA_TUPLE_IP) {
      nl::for_each_nested(a, [&](const nlattr* ip) {
        auto type = mnl_attr_get_type(ip);
        const void* p = mnl_attr_get_payload(ip);
        size_t n = mnl_attr_get_payload_len(ip);
        if (type == CTA_IP_V4_SRC && n == 4) t.src = IpAddr::from_bytes(Family::kV4, p);
        if (type == CTA_IP_V4_DST && n == 4) t.dst = IpAddr::from_bytes(Family::kV4, p);
        if (type == CTA_IP_V6_SRC && n == 16) t.src = IpAddr::from_bytes(Family::kV6, p);
        if (type == CTA_IP_V6_DST && n == 16) t.dst = IpAddr::from_bytes(Family::kV6, p);
      });
    } else if (mnl_attr_get_type(a) == CTA_TUPLE_PROTO) {
      nl::for_each_nested(a, [&](const nlattr* pr) {
        auto type = mnl_attr_get_type(pr);
        if (type == CTA_PROTO_NUM) t.proto = mnl_attr_get_u8(pr);
        if (type == CTA_PROTO_SRC_PORT) t.sport = ntohs(mnl_attr_get_u16(pr));
        if (type == CTA_PROTO_DST_PORT) t.dport = ntohs(mnl_attr_get_u16(pr));
      });
    }
  });
  return t;
}

// CTA_TUPLE_ORIG
//   CTA_TUPLE_IP    { CTA_IP_V4_SRC|CTA_IP_V6_SRC, CTA_IP_V4_DST|CTA_IP_V6_DST }
//   CTA_TUPLE_PROTO { CTA_PROTO_NUM u8, CTA_PROTO_SRC_PORT be16, CTA_PROTO_DST_PORT be16 }
void put_orig(nlmsghdr* nlh, const CtFlow& f) {
  auto* tuple = mnl_attr_nest_start(nlh, CTA_TUPLE_ORIG);
  auto* ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
  bool v4 = f.orig_src.is_v4();
  mnl_attr_put(nlh, v4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC, f.orig_src.size(), f.orig_src.data());
  mnl_attr_put(nlh, v4 ? CTA_IP_V4_DST : CTA_IP_V6_DST, f.orig_dst.size(), f.orig_dst.data());
  mnl_attr_nest_end(nlh, ip);
  auto* proto = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
  mnl_attr_put_u8(nlh, CTA_PROTO_NUM, f.proto);
  mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(f.orig_sport));
  mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(f.orig_dport));
  mnl_attr_nest_end(nlh, proto);
  mnl_attr_nest_end(nlh, tuple);
}

}  // namespace

std::vector<CtFlow> dump_flows(nl::Socket& ct) {
  std::vector<CtFlow> out;
  nl::Request req;
  req.begin(type_of(IPCTNL_MSG_CT_GET), NLM_F_DUMP, "dump conntrack");
  put_nfgen(req, AF_UNSPEC);
  ct.dump(
      req,
      [&](const nlmsghdr* m, size_t) {
        Tuple orig, reply;
        uint16_t zone = 0;
        nl::for_each_attr(m, sizeof(nfgenmsg), [&](const nlattr* a) {
          switch (mnl_attr_get_type(a)) {
            case CTA_TUPLE_ORIG:
              orig = parse_tuple(a);
              break;
            case CTA_TUPLE_REPLY:
              reply = parse_tuple(a);
              break;
            case CTA_ZONE:
              zone = ntohs(mnl_attr_get_u16(a));
              break;
            default:
              break;
          }
        });
        if (!orig.src || !orig.dst || !reply.src) return;
        if (orig.proto != IPPROTO_TCP && orig.proto != IPPROTO_UDP && orig.proto != IPPROTO_SCTP) {
          return;
        }
        out.push_back({*orig.src, *orig.dst, orig.proto, orig.sport, orig.dport, *reply.src,
                       reply.sport, zone});
      },
      [&] { out.clear(); });
  return out;
}

size_t revoke_flows(nl::Socket& ct, const std::vector<CtFlow>& flows) {
  if (flows.empty()) return 0;
  nl::Request req;
  for (const auto& f : flows) {
    // IPCTNL_MSG_CT_NEW without NLM_F_CREATE updates an existing entry:
    //   CTA_TUPLE_ORIG {...}, CTA_MARK be32 bit, CTA_MARK_MASK be32 ~bit (new = old & ~bit ^ bit)
    auto* nlh = req.begin(type_of(IPCTNL_MSG_CT_NEW), 0,
                          str("mark conntrack entry ", f.orig_src.to_string(), " -> ",
                              f.orig_dst.to_string(), ":", f.orig_dport, " revoked"),
                          {ENOENT});
    put_nfgen(req, f.orig_src.is_v4() ? AF_INET : AF_INET6);
    put_orig(nlh, f);
    if (f.zone) mnl_attr_put_u16(nlh, CTA_ZONE, htons(f.zone));
    mnl_attr_put_u32(nlh, CTA_MARK, htonl(kRevokedMark));
    mnl_attr_put_u32(nlh, CTA_MARK_MASK, htonl(~kRevokedMark));
  }
  ct.transact(req);
  return flows.size();
}

}  // namespace knit::watcher
