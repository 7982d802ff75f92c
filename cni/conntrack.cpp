#include "cni/conntrack.hpp"

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <vector>

#include "core/str.hpp"

namespace knit::cni {

namespace {

// CTA_FILTER_F_* of the kernel's nf_internals.h (not exported to uapi; libnetfilter_conntrack
// repeats them too).
constexpr uint32_t kFilterProtoNum = 1u << 3;
constexpr uint32_t kFilterProtoDstPort = 1u << 5;

uint16_t ct_type(uint8_t msg) {
  return static_cast<uint16_t>((NFNL_SUBSYS_CTNETLINK << 8) | msg);
}

void put_nfgen(nl::Request& req, Family f) {
  auto* g = req.extra<nfgenmsg>();
  g->nfgen_family = f == Family::kV4 ? AF_INET : AF_INET6;
  g->version = NFNETLINK_V0;
  g->res_id = 0;
}

/// The original tuple of a dumped entry, kept as raw bytes to send back in the delete.
struct Found {
  std::vector<uint8_t> orig;  // the whole CTA_TUPLE_ORIG attribute
  uint16_t zone = 0;
  bool has_zone = false;
};

/// Protocol and destination port of a CTA_TUPLE_ORIG nest.
void proto_of(const nlattr* tuple, uint8_t& proto, uint16_t& dport) {
  nl::for_each_nested(tuple, [&](const nlattr* a) {
    if (mnl_attr_get_type(a) != CTA_TUPLE_PROTO) return;
    nl::for_each_nested(a, [&](const nlattr* p) {
      if (mnl_attr_get_type(p) == CTA_PROTO_NUM) proto = mnl_attr_get_u8(p);
      if (mnl_attr_get_type(p) == CTA_PROTO_DST_PORT) dport = ntohs(mnl_attr_get_u16(p));
    });
  });
}

}  // namespace

size_t flush_conntrack_port(nl::Socket& ct, Family f, uint8_t proto, uint16_t port) {
  // IPCTNL_MSG_CT_GET, NLM_F_DUMP
  //   nfgenmsg (family)
  //   CTA_TUPLE_ORIG   { CTA_TUPLE_PROTO { CTA_PROTO_NUM u8, CTA_PROTO_DST_PORT be16 } }
  //   CTA_FILTER       { CTA_FILTER_ORIG_FLAGS u32 (PROTO_NUM | PROTO_DST_PORT),
  //                      CTA_FILTER_REPLY_FLAGS u32 0 }
  std::string what = str("list conntrack entries to port ", port, " (protocol ", proto, ")");
  nl::Request dump;
  auto* nlh = dump.begin(ct_type(IPCTNL_MSG_CT_GET), NLM_F_DUMP, what);
  put_nfgen(dump, f);
  auto* tuple = mnl_attr_nest_start(nlh, CTA_TUPLE_ORIG);
  auto* pr = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
  mnl_attr_put_u8(nlh, CTA_PROTO_NUM, proto);
  mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(port));
  mnl_attr_nest_end(nlh, pr);
  mnl_attr_nest_end(nlh, tuple);
  auto* filter = mnl_attr_nest_start(nlh, CTA_FILTER);
  mnl_attr_put_u32(nlh, CTA_FILTER_ORIG_FLAGS, kFilterProtoNum | kFilterProtoDstPort);
  mnl_attr_put_u32(nlh, CTA_FILTER_REPLY_FLAGS, 0);
  mnl_attr_nest_end(nlh, filter);

  const uint8_t want_family = f == Family::kV4 ? AF_INET : AF_INET6;
  std::vector<Found> found;
  ct.dump(
      dump,
      [&](const nlmsghdr* m, size_t) {
        auto* g = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(m));
        if (g->nfgen_family != want_family) return;
        Found e;
        uint8_t p = 0;
        uint16_t dport = 0;
        nl::for_each_attr(m, sizeof(nfgenmsg), [&](const nlattr* a) {
          if (mnl_attr_get_type(a) == CTA_TUPLE_ORIG) {
            proto_of(a, p, dport);
            auto* b = reinterpret_cast<const uint8_t*>(a);
            e.orig.assign(b, b + a->nla_len);
          } else if (mnl_attr_get_type(a) == CTA_ZONE) {
            e.zone = mnl_attr_get_u16(a);
            e.has_zone = true;
          }
        });
        if (p == proto && dport == port && !e.orig.empty()) found.push_back(std::move(e));
      },
      [&] { found.clear(); });
  if (found.empty()) return 0;

  // IPCTNL_MSG_CT_DELETE per entry: nfgenmsg, CTA_TUPLE_ORIG (as dumped), [CTA_ZONE]
  nl::Request del;
  for (const auto& e : found) {
    auto* d = del.begin(ct_type(IPCTNL_MSG_CT_DELETE), 0,
                        str("delete conntrack entry to port ", port), {ENOENT});
    put_nfgen(del, f);
    auto* dst = static_cast<uint8_t*>(mnl_nlmsg_get_payload_tail(d));
    std::copy(e.orig.begin(), e.orig.end(), dst);
    d->nlmsg_len += MNL_ALIGN(static_cast<uint32_t>(e.orig.size()));
    if (e.has_zone) mnl_attr_put_u16(d, CTA_ZONE, e.zone);
  }
  ct.transact(del);
  return found.size();
}

}  // namespace knit::cni
