#include "nft/deps.hpp"

namespace knit::nft {

Deps sel_deps(Sel s, TableFamily f) {
  Deps d;
  bool inet = f == TableFamily::kInet;
  switch (s) {
    case Sel::kIpSaddr:
    case Sel::kIpDaddr:
      if (inet) d.nfproto = proto::kIpv4;
      break;
    case Sel::kIp6Saddr:
    case Sel::kIp6Daddr:
      if (inet) d.nfproto = proto::kIpv6;
      break;
    case Sel::kIcmpType:
      if (inet) d.nfproto = proto::kIpv4;
      d.l4proto = proto::kIcmp;
      break;
    case Sel::kIcmpv6Type:
      if (inet) d.nfproto = proto::kIpv6;
      d.l4proto = proto::kIcmpv6;
      break;
    default:
      break;
  }
  return d;
}

namespace {
void merge(Deps& into, const Deps& d) {
  if (!into.nfproto) into.nfproto = d.nfproto;
  if (!into.l4proto) into.l4proto = d.l4proto;
}
}  // namespace

Deps stmt_deps(const Stmt& s, TableFamily f) {
  Deps d;
  auto keys = [&](const std::vector<Sel>& k) {
    for (Sel x : k) merge(d, sel_deps(x, f));
  };
  if (auto* c = std::get_if<Cmp>(&s)) {
    d = sel_deps(c->sel, f);
  } else if (auto* r = std::get_if<Range>(&s)) {
    d = sel_deps(r->sel, f);
  } else if (auto* l = std::get_if<Lookup>(&s)) {
    keys(l->key);
  } else if (auto* v = std::get_if<Vmap>(&s)) {
    keys(v->key);
  } else if (auto* m = std::get_if<DnatMap>(&s)) {
    keys(m->key);
  } else if (auto* j = std::get_if<Reject>(&s)) {
    if (j->kind == RejectKind::kTcpReset) d.l4proto = proto::kTcp;
  }
  return d;
}

}  // namespace knit::nft
