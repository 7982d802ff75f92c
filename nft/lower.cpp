#include "nft/lower.hpp"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>

#include <cstring>

#include "core/error.hpp"
#include "core/str.hpp"
#include "nft/deps.hpp"
#include "nft/render.hpp"

namespace knit::nft {

namespace {

[[noreturn]] void invalid(std::string msg) {
  throw Error(Code::kInternal, std::move(msg));
}

size_t pad4(size_t n) {
  return (n + 3) & ~size_t{3};
}

/// nft's register numbering: a 16-byte-aligned offset uses the legacy 128-bit register name
/// (NFT_REG_1..4), any other offset the 32-bit one (NFT_REG32_xx).
uint32_t reg_for(size_t offset) {
  if (offset % 16 == 0) return NFT_REG_1 + static_cast<uint32_t>(offset / 16);
  return NFT_REG32_00 + static_cast<uint32_t>(offset / 4);
}

int verdict_code(VerdictKind k) {
  switch (k) {
    case VerdictKind::kAccept:
      return NF_ACCEPT;
    case VerdictKind::kDrop:
      return NF_DROP;
    case VerdictKind::kReturn:
      return NFT_RETURN;
    case VerdictKind::kJump:
      return NFT_JUMP;
    case VerdictKind::kGoto:
      return NFT_GOTO;
    case VerdictKind::kContinue:
      return NFT_CONTINUE;
  }
  return NF_DROP;
}

/// Builds the expressions of one rule. Tracks which protocol matches the rule has made so far,
/// so that dependencies (see deps.hpp) are added once, where nft would add them.
class RuleLowerer {
 public:
  RuleLowerer(const Table& t, std::string_view chain, nftnl_rule* r, const Plan* names)
      : fam_(t.family),
        rule_(r),
        names_(names),
        where_(str("add rule to chain ", family_name(t.family), ' ', t.name, ' ', chain)) {}

  void stmt(const Stmt& s) {
    deps(stmt_deps(s, fam_));
    std::visit([this](const auto& x) { lower(x); }, s);
  }

 private:
  void add(NftExpr e) { nftnl_rule_add_expr(rule_, e.release()); }  // libnftnl takes ownership

  void payload(uint32_t base, uint32_t offset, uint32_t len, uint32_t dreg) {
    auto e = new_expr("payload");
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_PAYLOAD_DREG, dreg);
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_PAYLOAD_BASE, base);
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_PAYLOAD_OFFSET, offset);
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_PAYLOAD_LEN, len);
    add(std::move(e));
  }
  void meta(uint32_t key, uint32_t dreg) {
    auto e = new_expr("meta");
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_META_KEY, key);
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_META_DREG, dreg);
    add(std::move(e));
  }
  void ct(uint32_t key, uint32_t dreg) {
    auto e = new_expr("ct");
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_CT_KEY, key);
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_CT_DREG, dreg);
    add(std::move(e));
  }
  void fib(uint32_t flags, uint32_t dreg) {
    auto e = new_expr("fib");
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_FIB_FLAGS, flags);
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_FIB_DREG, dreg);
    add(std::move(e));
  }

  void load(Sel s, uint32_t dreg) {
    constexpr uint32_t nh = NFT_PAYLOAD_NETWORK_HEADER, th = NFT_PAYLOAD_TRANSPORT_HEADER;
    switch (s) {
      case Sel::kIpSaddr:
        return payload(nh, 12, 4, dreg);
      case Sel::kIpDaddr:
        return payload(nh, 16, 4, dreg);
      case Sel::kIp6Saddr:
        return payload(nh, 8, 16, dreg);
      case Sel::kIp6Daddr:
        return payload(nh, 24, 16, dreg);
      case Sel::kThSport:
        return payload(th, 0, 2, dreg);
      case Sel::kThDport:
        return payload(th, 2, 2, dreg);
      case Sel::kIcmpType:
      case Sel::kIcmpv6Type:
        return payload(th, 0, 1, dreg);
      case Sel::kL4proto:
        return meta(NFT_META_L4PROTO, dreg);
      case Sel::kNfproto:
        return meta(NFT_META_NFPROTO, dreg);
      case Sel::kIifname:
        return meta(NFT_META_IIFNAME, dreg);
      case Sel::kOifname:
        return meta(NFT_META_OIFNAME, dreg);
      case Sel::kIif:
        return meta(NFT_META_IIF, dreg);
      case Sel::kOif:
        return meta(NFT_META_OIF, dreg);
      case Sel::kSkuid:
        return meta(NFT_META_SKUID, dreg);
      case Sel::kMark:
        return meta(NFT_META_MARK, dreg);
      case Sel::kCtState:
        return ct(NFT_CT_STATE, dreg);
      case Sel::kCtMark:
        return ct(NFT_CT_MARK, dreg);
      case Sel::kCtStatus:
        return ct(NFT_CT_STATUS, dreg);
      case Sel::kFibSaddrType:
        return fib(NFTA_FIB_F_SADDR, dreg);
      case Sel::kFibDaddrType:
        return fib(NFTA_FIB_F_DADDR, dreg);
    }
  }

  void cmp(uint32_t sreg, uint32_t op, const Value& v) {
    auto e = new_expr("cmp");
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_CMP_SREG, sreg);
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_CMP_OP, op);
    nftnl_expr_set(e.get(), NFTNL_EXPR_CMP_DATA, v.data(), static_cast<uint32_t>(v.size()));
    add(std::move(e));
  }

  void immediate(uint32_t dreg, const void* data, size_t n) {
    auto e = new_expr("immediate");
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_IMM_DREG, dreg);
    nftnl_expr_set(e.get(), NFTNL_EXPR_IMM_DATA, data, static_cast<uint32_t>(n));
    add(std::move(e));
  }

  void check_value(Sel s, const Value& v) const {
    if (v.size() != type_size(sel_type(s))) {
      invalid(str(where_, ": ", sel_name(s), " compares ", type_size(sel_type(s)),
                  " bytes, the value has ", v.size()));
    }
  }

  /// Dependency matches the statement needs and the rule has not made yet.
  void deps(const Deps& d) {
    auto dep = [this](Sel s, uint8_t v) {
      load(s, NFT_REG_1);
      cmp(NFT_REG_1, NFT_CMP_EQ, Value::u8(v));
      (s == Sel::kNfproto ? nf_ : l4_) = v;
    };
    // An explicit l4proto match implies the network protocol as far as nft is concerned.
    if (d.l4proto && l4_ != d.l4proto) {
      if (d.nfproto && nf_ != d.nfproto) dep(Sel::kNfproto, *d.nfproto);
      dep(Sel::kL4proto, *d.l4proto);
    } else if (d.nfproto && nf_ != d.nfproto && !d.l4proto) {
      dep(Sel::kNfproto, *d.nfproto);
    }
  }

  /// Loads a concatenation into consecutive registers from NFT_REG_1; returns its length.
  size_t load_key(const std::vector<Sel>& key) {
    if (key.empty()) invalid(str(where_, ": empty set key"));
    size_t off = 0;
    for (Sel s : key) {
      size_t n = pad4(type_size(sel_type(s)));
      if (off + n > Key::kMax) invalid(str(where_, ": key longer than 64 bytes"));
      load(s, reg_for(off));
      off += n;
    }
    return off;
  }

  void lookup(const std::string& set, bool negate, std::optional<uint32_t> dreg) {
    auto e = new_expr("lookup");
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
    const std::string& name = names_ ? names_->kernel_name(set) : set;
    nftnl_expr_set_str(e.get(), NFTNL_EXPR_LOOKUP_SET, name.c_str());
    if (dreg) nftnl_expr_set_u32(e.get(), NFTNL_EXPR_LOOKUP_DREG, *dreg);
    if (negate) nftnl_expr_set_u32(e.get(), NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
    add(std::move(e));
  }

  void nat(uint32_t type, Family f, std::optional<uint32_t> proto_reg, uint32_t flags) {
    auto e = new_expr("nat");
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_NAT_TYPE, type);
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_NAT_FAMILY,
                       f == Family::kV4 ? NFPROTO_IPV4 : NFPROTO_IPV6);
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1);
    if (proto_reg) nftnl_expr_set_u32(e.get(), NFTNL_EXPR_NAT_REG_PROTO_MIN, *proto_reg);
    if (flags) nftnl_expr_set_u32(e.get(), NFTNL_EXPR_NAT_FLAGS, flags);
    add(std::move(e));
  }

  // ---- statements ----

  void lower(const Cmp& c) {
    check_value(c.sel, c.value);
    load(c.sel, NFT_REG_1);
    if (c.mask) {
      check_value(c.sel, *c.mask);
      auto e = new_expr("bitwise");
      uint8_t zero[16] = {};
      auto n = static_cast<uint32_t>(c.mask->size());
      nftnl_expr_set_u32(e.get(), NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
      nftnl_expr_set_u32(e.get(), NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
      nftnl_expr_set_u32(e.get(), NFTNL_EXPR_BITWISE_LEN, n);
      nftnl_expr_set(e.get(), NFTNL_EXPR_BITWISE_MASK, c.mask->data(), n);
      nftnl_expr_set(e.get(), NFTNL_EXPR_BITWISE_XOR, zero, n);
      add(std::move(e));
    }
    cmp(NFT_REG_1, c.op == CmpOp::kEq ? NFT_CMP_EQ : NFT_CMP_NEQ, c.value);
    if (c.op == CmpOp::kEq && !c.mask) {
      if (c.sel == Sel::kNfproto) nf_ = c.value.as_u8();
      if (c.sel == Sel::kL4proto) l4_ = c.value.as_u8();
    }
  }
  void lower(const Range& r) {
    check_value(r.sel, r.lo);
    check_value(r.sel, r.hi);
    load(r.sel, NFT_REG_1);
    auto e = new_expr("range");
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_RANGE_SREG, NFT_REG_1);
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_RANGE_OP,
                       r.op == CmpOp::kEq ? NFT_RANGE_EQ : NFT_RANGE_NEQ);
    nftnl_expr_set(e.get(), NFTNL_EXPR_RANGE_FROM_DATA, r.lo.data(),
                   static_cast<uint32_t>(r.lo.size()));
    nftnl_expr_set(e.get(), NFTNL_EXPR_RANGE_TO_DATA, r.hi.data(),
                   static_cast<uint32_t>(r.hi.size()));
    add(std::move(e));
  }
  void lower(const Lookup& l) {
    load_key(l.key);
    lookup(l.set, l.negate, std::nullopt);
  }
  void lower(const Vmap& v) {
    load_key(v.key);
    lookup(v.map, false, NFT_REG_VERDICT);
  }
  void lower(const Verdict& v) {
    auto e = new_expr("immediate");
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_IMM_VERDICT,
                       static_cast<uint32_t>(verdict_code(v.kind)));
    if (v.kind == VerdictKind::kJump || v.kind == VerdictKind::kGoto) {
      if (v.chain.empty()) invalid(str(where_, ": jump without a chain"));
      nftnl_expr_set_str(e.get(), NFTNL_EXPR_IMM_CHAIN, v.chain.c_str());
    }
    add(std::move(e));
  }
  void lower(const Counter&) { add(new_expr("counter")); }
  void lower(const CounterRef& c) {
    auto e = new_expr("objref");
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_OBJREF_IMM_TYPE, NFT_OBJECT_COUNTER);
    nftnl_expr_set_str(e.get(), NFTNL_EXPR_OBJREF_IMM_NAME, c.name.c_str());
    add(std::move(e));
  }
  void lower(const SetMark& m) {
    immediate(NFT_REG_1, &m.value, sizeof m.value);
    if (m.target == MarkTarget::kCt) {
      auto e = new_expr("ct");
      nftnl_expr_set_u32(e.get(), NFTNL_EXPR_CT_KEY, NFT_CT_MARK);
      nftnl_expr_set_u32(e.get(), NFTNL_EXPR_CT_SREG, NFT_REG_1);
      add(std::move(e));
    } else {
      auto e = new_expr("meta");
      nftnl_expr_set_u32(e.get(), NFTNL_EXPR_META_KEY, NFT_META_MARK);
      nftnl_expr_set_u32(e.get(), NFTNL_EXPR_META_SREG, NFT_REG_1);
      add(std::move(e));
    }
  }
  void lower(const DnatMap& d) {
    // The map's data is addr . port: the address lands at NFT_REG_1, the port right after it.
    load_key(d.key);
    lookup(d.map, false, NFT_REG_1);
    nat(NFT_NAT_DNAT, d.family, reg_for(d.family == Family::kV4 ? 4 : 16), 0);
  }
  void lower(const Nat& n) {
    immediate(NFT_REG_1, n.addr.data(), n.addr.size());
    std::optional<uint32_t> proto;
    if (n.port) {
      uint16_t be = htons(*n.port);
      immediate(NFT_REG_2, &be, sizeof be);
      proto = NFT_REG_2;
    }
    nat(n.type == NatType::kSnat ? NFT_NAT_SNAT : NFT_NAT_DNAT, n.addr.family(), proto,
        n.port ? NF_NAT_RANGE_PROTO_SPECIFIED : 0);
  }
  void lower(const Masquerade& m) {
    auto e = new_expr("masq");
    uint32_t flags = (m.random ? NF_NAT_RANGE_PROTO_RANDOM : 0) |
                     (m.fully_random ? NF_NAT_RANGE_PROTO_RANDOM_FULLY : 0) |
                     (m.persistent ? NF_NAT_RANGE_PERSISTENT : 0);
    if (flags) nftnl_expr_set_u32(e.get(), NFTNL_EXPR_MASQ_FLAGS, flags);
    add(std::move(e));
  }
  void lower(const Log& l) {
    if (l.group && l.level) invalid(str(where_, ": log takes a group or a level, not both"));
    auto e = new_expr("log");
    if (!l.prefix.empty()) nftnl_expr_set_str(e.get(), NFTNL_EXPR_LOG_PREFIX, l.prefix.c_str());
    if (l.group) nftnl_expr_set_u16(e.get(), NFTNL_EXPR_LOG_GROUP, *l.group);
    if (l.level) nftnl_expr_set_u32(e.get(), NFTNL_EXPR_LOG_LEVEL, *l.level);
    add(std::move(e));
  }
  void lower(const Notrack&) { add(new_expr("notrack")); }
  void lower(const Reject& r) {
    uint32_t type = NFT_REJECT_ICMPX_UNREACH;
    uint8_t code = 0;
    if (r.kind == RejectKind::kTcpReset) {
      type = NFT_REJECT_TCP_RST;
    } else if (fam_ == TableFamily::kInet) {
      code = r.kind == RejectKind::kAdminProhibited   ? NFT_REJECT_ICMPX_ADMIN_PROHIBITED
             : r.kind == RejectKind::kHostUnreachable ? NFT_REJECT_ICMPX_HOST_UNREACH
             : r.kind == RejectKind::kNoRoute         ? NFT_REJECT_ICMPX_NO_ROUTE
                                                      : NFT_REJECT_ICMPX_PORT_UNREACH;
    } else if (fam_ == TableFamily::kIp) {
      type = NFT_REJECT_ICMP_UNREACH;
      // ICMP_PKT_FILTERED, ICMP_HOST_UNREACH, ICMP_NET_UNREACH, ICMP_PORT_UNREACH
      code = r.kind == RejectKind::kAdminProhibited   ? 13
             : r.kind == RejectKind::kHostUnreachable ? 1
             : r.kind == RejectKind::kNoRoute         ? 0
                                                      : 3;
    } else {
      type = NFT_REJECT_ICMP_UNREACH;
      // ICMPV6_ADM_PROHIBITED, ICMPV6_ADDR_UNREACH, ICMPV6_NOROUTE, ICMPV6_PORT_UNREACH
      code = r.kind == RejectKind::kAdminProhibited   ? 1
             : r.kind == RejectKind::kHostUnreachable ? 3
             : r.kind == RejectKind::kNoRoute         ? 0
                                                      : 4;
    }
    auto e = new_expr("reject");
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_REJECT_TYPE, type);
    nftnl_expr_set_u8(e.get(), NFTNL_EXPR_REJECT_CODE, code);
    add(std::move(e));
  }
  void lower(const Raw& r) {
    invalid(str(where_, ": cannot lower an unrecognised expression (", r.text, ")"));
  }

  TableFamily fam_;
  nftnl_rule* rule_;
  const Plan* names_;  ///< kernel names of sets; null: model names
  std::string where_;
  std::optional<uint8_t> nf_, l4_;
};

uint32_t concat_type_id(const std::vector<Type>& types) {
  // nft's concatenated type: the ids shifted in 6 bits at a time (TYPE_BITS).
  uint32_t id = 0;
  for (Type t : types) id = (id << 6) | static_cast<uint32_t>(t);
  return id;
}

// ---- elements -----------------------------------------------------------------------------------

/// Upper bound of one model element's attributes (two kernel elements for a plain range: key,
/// key_end, flags, data or verdict with a chain name, userdata with a comment).
constexpr size_t kElemBound = 2 * (4 + 3 * 72 + 8 + 4 + 8 + 4 + 260 + 4 + 140);
/// The element list nest carries a 16-bit length.
constexpr size_t kElemListMax = 65535;

void check_element(const Set& s, const Element& e, const std::string& where) {
  size_t kn = s.key_size();
  if (e.key.size() != kn || e.key_end.size() != kn) {
    invalid(str(where, ": element key is ", e.key.size(), " bytes, the set's key ", kn));
  }
  if (!s.interval && !(e.key == e.key_end)) {
    invalid(str(where, ": range ", render_element(s, e), " in a set without flags interval"));
  }
  if (s.interval && !(e.key == e.key_end)) {
    // Interval sets compare keys as big-endian byte strings; a range over a host-order field
    // (mark, uid) would need nft's byteorder conversion, which the model does not do.
    size_t off = 0;
    for (Type t : s.key) {
      size_t n = type_size(t);
      if (type_host_order(t) && !(e.key.field(off, n) == e.key_end.field(off, n))) {
        invalid(
            str(where, ": range on host-order field ", type_name(t), " in ", render_element(s, e)));
      }
      off += pad4(n);
    }
  }
  if (s.is_map() && !s.is_vmap() && e.data.size() != s.data_size()) {
    invalid(str(where, ": element data is ", e.data.size(), " bytes, the map's ", s.data_size()));
  }
}

void put_data(nlmsghdr* nlh, uint16_t type, const void* data, size_t n) {
  // {type} { NFTA_DATA_VALUE: bytes }
  auto* nest = mnl_attr_nest_start(nlh, type);
  mnl_attr_put(nlh, NFTA_DATA_VALUE, n, data);
  mnl_attr_nest_end(nlh, nest);
}

/// The key one past `k` as a big-endian number, or nullopt when `k` is all ones.
std::optional<Key> successor(const Key& k) {
  Key n = k;
  for (size_t i = n.size(); i-- > 0;) {
    if (++n.data()[i] != 0) return n;
  }
  return std::nullopt;
}

/// Writes the kernel element(s) for `e`:
///
///   NFTA_LIST_ELEM {
///     NFTA_SET_ELEM_KEY     { NFTA_DATA_VALUE }
///     NFTA_SET_ELEM_KEY_END { NFTA_DATA_VALUE }     concatenated interval sets
///     NFTA_SET_ELEM_DATA    { NFTA_DATA_VALUE }     typed maps
///                        or { NFTA_DATA_VERDICT { NFTA_VERDICT_CODE, NFTA_VERDICT_CHAIN } }
///     NFTA_SET_ELEM_USERDATA                        comment, open-interval flag
///   }
///   NFTA_LIST_ELEM { NFTA_SET_ELEM_KEY, NFTA_SET_ELEM_FLAGS = INTERVAL_END }
///                                                   plain interval sets: end one past the range
void put_element(nlmsghdr* nlh, const Set& s, const Element& e, bool with_data) {
  bool plain_interval = s.interval && !s.is_concat();
  std::optional<Key> end = plain_interval ? successor(e.key_end) : std::nullopt;

  auto* el = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
  put_data(nlh, NFTA_SET_ELEM_KEY, e.key.data(), e.key.size());
  if (s.interval && s.is_concat()) {
    put_data(nlh, NFTA_SET_ELEM_KEY_END, e.key_end.data(), e.key_end.size());
  }
  if (with_data && s.is_vmap()) {
    auto* d = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_DATA);
    auto* v = mnl_attr_nest_start(nlh, NFTA_DATA_VERDICT);
    mnl_attr_put_u32(nlh, NFTA_VERDICT_CODE,
                     htonl(static_cast<uint32_t>(verdict_code(e.verdict.kind))));
    if (e.verdict.kind == VerdictKind::kJump || e.verdict.kind == VerdictKind::kGoto) {
      mnl_attr_put_strz(nlh, NFTA_VERDICT_CHAIN, e.verdict.chain.c_str());
    }
    mnl_attr_nest_end(nlh, v);
    mnl_attr_nest_end(nlh, d);
  } else if (with_data && s.is_map()) {
    put_data(nlh, NFTA_SET_ELEM_DATA, e.data.data(), e.data.size());
  }
  // Userdata TLVs (type, length, value) as nft writes them: the comment, and for a range that
  // runs to the end of the key space the "open interval" flag, so that `nft list` prints it.
  uint8_t ud[2 + 128 + 6];
  size_t udn = 0;
  if (with_data && !e.comment.empty()) {
    size_t n = std::min<size_t>(e.comment.size(), NFTNL_UDATA_COMMENT_MAXLEN - 1);
    ud[udn++] = NFTNL_UDATA_SET_ELEM_COMMENT;
    ud[udn++] = static_cast<uint8_t>(n + 1);
    std::memcpy(ud + udn, e.comment.data(), n);
    udn += n;
    ud[udn++] = 0;
  }
  if (with_data && plain_interval && !end) {
    uint32_t flag = NFTNL_SET_ELEM_F_INTERVAL_OPEN;
    ud[udn++] = NFTNL_UDATA_SET_ELEM_FLAGS;
    ud[udn++] = sizeof flag;
    std::memcpy(ud + udn, &flag, sizeof flag);
    udn += sizeof flag;
  }
  if (udn > 0) mnl_attr_put(nlh, NFTA_SET_ELEM_USERDATA, udn, ud);
  mnl_attr_nest_end(nlh, el);

  if (end) {
    auto* el2 = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
    put_data(nlh, NFTA_SET_ELEM_KEY, end->data(), end->size());
    mnl_attr_put_u32(nlh, NFTA_SET_ELEM_FLAGS, htonl(NFT_SET_ELEM_INTERVAL_END));
    mnl_attr_nest_end(nlh, el2);
  }
}

std::string elems_what(const Table& t, const Set& s, bool add, size_t first, size_t count) {
  std::string tbl = str(family_name(t.family), ' ', t.name);
  const char* verb = add ? "add" : "delete";
  const char* prep = add ? "to" : "from";
  if (count == 1) {
    return str(verb, " element ", render_element(s, s.elements[first]), ' ', prep, " set ", tbl,
               ' ', s.name);
  }
  return str(verb, ' ', count, " elements ", prep, " set ", tbl, ' ', s.name);
}

/// NEWSETELEM / DELSETELEM messages for all of `s.elements`, split where the element list
/// would outgrow its 16-bit nest length.
void lower_elements(Batch& b, const Table& t, const Set& s, const std::string& kernel_name,
                    bool add, uint32_t change, uint32_t new_set_id = 0) {
  const std::string where = str(add ? "add elements to set " : "delete elements from set ",
                                family_name(t.family), ' ', t.name, ' ', s.name);
  for (const auto& e : s.elements) check_element(s, e, where);
  const uint8_t fam = nfproto(t.family);
  size_t i = 0;
  while (i < s.elements.size()) {
    size_t first = i;
    std::vector<uint32_t> offsets;
    auto& entry = b.add(
        add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM, fam, add ? NLM_F_CREATE | NLM_F_EXCL : 0,
        std::string(), [&](nlmsghdr* nlh) {
          mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, t.name.c_str());
          // A set created in this batch is named by its batch id only. The kernel looks a
          // set up by name with a linear walk of the table's sets (before trying the id), so
          // with thousands of sets naming them here made a full sync quadratic; the id lookup
          // finds a just-created set at once. Remove when the kernel hashes set names.
          if (new_set_id != 0) {
            mnl_attr_put_u32(nlh, NFTA_SET_ELEM_LIST_SET_ID, htonl(new_set_id));
          } else {
            mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, kernel_name.c_str());
          }
          auto* list = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
          size_t list_start = reinterpret_cast<uint8_t*>(list) - reinterpret_cast<uint8_t*>(nlh);
          while (i < s.elements.size() && nlh->nlmsg_len - list_start + kElemBound < kElemListMax) {
            offsets.push_back(nlh->nlmsg_len);
            put_element(nlh, s, s.elements[i], add);
            ++i;
          }
          mnl_attr_nest_end(nlh, list);
        });
    entry.what = elems_what(t, s, add, first, i - first);
    entry.change = change;
    entry.first_elem = static_cast<uint32_t>(first);
    entry.elem_offsets = std::move(offsets);
  }
}

}  // namespace

NftTable lower_table(const Table& t) {
  auto o = new_table();
  nftnl_table_set_str(o.get(), NFTNL_TABLE_NAME, t.name.c_str());
  nftnl_table_set_u32(o.get(), NFTNL_TABLE_FAMILY, nfproto(t.family));
  nftnl_table_set_u32(o.get(), NFTNL_TABLE_FLAGS, 0);
  return o;
}

NftChain lower_chain(const Table& t, std::string_view name, const std::optional<BaseChain>& base) {
  auto o = new_chain();
  nftnl_chain_set_str(o.get(), NFTNL_CHAIN_TABLE, t.name.c_str());
  nftnl_chain_set_str(o.get(), NFTNL_CHAIN_NAME, std::string(name).c_str());
  nftnl_chain_set_u32(o.get(), NFTNL_CHAIN_FAMILY, nfproto(t.family));
  if (base) {
    nftnl_chain_set_u32(o.get(), NFTNL_CHAIN_HOOKNUM, static_cast<uint32_t>(base->hook));
    nftnl_chain_set_s32(o.get(), NFTNL_CHAIN_PRIO, base->priority);
    nftnl_chain_set_str(o.get(), NFTNL_CHAIN_TYPE,
                        base->type == ChainType::kNat ? "nat" : "filter");
    nftnl_chain_set_u32(o.get(), NFTNL_CHAIN_POLICY,
                        base->policy == Policy::kDrop ? NF_DROP : NF_ACCEPT);
  }
  return o;
}

NftSet lower_set(const Table& t, const Set& s, uint32_t set_id, std::string_view kernel_name) {
  std::string where = str("add set ", family_name(t.family), ' ', t.name, ' ', s.name);
  if (s.key.empty()) invalid(str(where, ": no key type"));
  if (s.key_size() > Key::kMax || s.data_size() > Key::kMax) {
    invalid(str(where, ": key or data longer than 64 bytes"));
  }
  for (Type k : s.key)
    if (k == Type::kVerdict) invalid(str(where, ": verdict in the key"));
  auto o = new_set();
  nftnl_set_set_str(o.get(), NFTNL_SET_TABLE, t.name.c_str());
  // nft's set userdata. The byte order of a key (or a map's value) of one host-order type
  // (`mark`, `ifindex`, ...): without it nft prints such values byte-swapped, and its listing
  // would not load back as the same set. The kernel does not read it.
  const bool key_host = s.key.size() == 1 && type_host_order(s.key[0]);
  const bool data_host =
      s.data.size() == 1 && s.data[0] != Type::kVerdict && type_host_order(s.data[0]);
  // A short kernel name (SetNames): the model's name goes in the comment, as nft keeps one.
  const bool renamed = !kernel_name.empty() && kernel_name != s.name;
  if (renamed && s.name.size() >= NFTNL_UDATA_COMMENT_MAXLEN) {
    invalid(str(where, ": name longer than a comment can hold"));
  }
  nftnl_set_set_str(o.get(), NFTNL_SET_NAME,
                    renamed ? std::string(kernel_name).c_str() : s.name.c_str());
  if (key_host || data_host || renamed) {
    auto ud = new_udata_buf(NFTNL_UDATA_COMMENT_MAXLEN + 32);
    constexpr uint32_t kHostEndian = 1;  // nft's BYTEORDER_HOST_ENDIAN
    if (key_host) nftnl_udata_put_u32(ud.get(), NFTNL_UDATA_SET_KEYBYTEORDER, kHostEndian);
    if (data_host) nftnl_udata_put_u32(ud.get(), NFTNL_UDATA_SET_DATABYTEORDER, kHostEndian);
    if (renamed) nftnl_udata_put_strz(ud.get(), NFTNL_UDATA_SET_COMMENT, s.name.c_str());
    nftnl_set_set_data(o.get(), NFTNL_SET_USERDATA, nftnl_udata_buf_data(ud.get()),
                       nftnl_udata_buf_len(ud.get()));
  }
  nftnl_set_set_u32(o.get(), NFTNL_SET_FAMILY, nfproto(t.family));
  nftnl_set_set_u32(o.get(), NFTNL_SET_ID, set_id);
  // NFT_SET_CONCAT goes with the field descriptions below (pipapo); a plain concatenated set
  // or map is a hash keyed on the whole register range, as nft creates it.
  const bool pipapo = s.interval && s.is_concat();
  uint32_t flags = (s.interval ? NFT_SET_INTERVAL : 0) | (s.constant ? NFT_SET_CONSTANT : 0) |
                   (s.is_map() ? NFT_SET_MAP : 0) | (pipapo ? NFT_SET_CONCAT : 0);
  // The interval backends (rbtree, pipapo) walk every element of a set on the first commit
  // that changes it once gc-interval (1 s by default) has passed, looking for expired
  // elements. knit's elements never expire, so on a pod event that walk is pure cost (it was
  // a third of a local pod event's commit). A gc interval can only be given with the timeout
  // flag; elements without a timeout still never expire. lift_set takes both off again.
  if (s.interval && !s.constant) {
    flags |= NFT_SET_TIMEOUT;
    nftnl_set_set_u32(o.get(), NFTNL_SET_GC_INTERVAL, kNoGcInterval);
  }
  nftnl_set_set_u32(o.get(), NFTNL_SET_FLAGS, flags);
  nftnl_set_set_u32(o.get(), NFTNL_SET_KEY_TYPE, concat_type_id(s.key));
  nftnl_set_set_u32(o.get(), NFTNL_SET_KEY_LEN, static_cast<uint32_t>(s.key_size()));
  if (s.is_vmap()) {
    nftnl_set_set_u32(o.get(), NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT);
    nftnl_set_set_u32(o.get(), NFTNL_SET_DATA_LEN, 0);
  } else if (s.is_map()) {
    for (Type d : s.data)
      if (d == Type::kVerdict) invalid(str(where, ": verdict inside a typed map value"));
    nftnl_set_set_u32(o.get(), NFTNL_SET_DATA_TYPE, concat_type_id(s.data));
    nftnl_set_set_u32(o.get(), NFTNL_SET_DATA_LEN, static_cast<uint32_t>(s.data_size()));
  }
  if (pipapo) {
    // The field lengths select the pipapo backend and tell it where each field starts.
    uint8_t lens[NFT_REG32_COUNT] = {};
    for (size_t i = 0; i < s.key.size(); ++i) lens[i] = static_cast<uint8_t>(type_size(s.key[i]));
    nftnl_set_set_data(o.get(), NFTNL_SET_DESC_CONCAT, lens, static_cast<uint32_t>(s.key.size()));
  }
  return o;
}

NftRule lower_rule(const Table& t, std::string_view chain, const Rule& r, const Plan* names) {
  auto o = new_rule();
  nftnl_rule_set_str(o.get(), NFTNL_RULE_TABLE, t.name.c_str());
  nftnl_rule_set_str(o.get(), NFTNL_RULE_CHAIN, std::string(chain).c_str());
  nftnl_rule_set_u32(o.get(), NFTNL_RULE_FAMILY, nfproto(t.family));
  RuleLowerer l(t, chain, o.get(), names);
  for (const auto& s : r.stmts) l.stmt(s);
  if (!r.comment.empty()) {
    auto ud = new_udata_buf(NFTNL_UDATA_COMMENT_MAXLEN + 8);
    std::string c = r.comment.substr(0, NFTNL_UDATA_COMMENT_MAXLEN - 1);
    nftnl_udata_put_strz(ud.get(), NFTNL_UDATA_RULE_COMMENT, c.c_str());
    nftnl_rule_set_data(o.get(), NFTNL_RULE_USERDATA, nftnl_udata_buf_data(ud.get()),
                        nftnl_udata_buf_len(ud.get()));
  }
  return o;
}

NftObj lower_counter(const Table& t, std::string_view name) {
  auto o = new_obj();
  nftnl_obj_set_str(o.get(), NFTNL_OBJ_TABLE, t.name.c_str());
  nftnl_obj_set_str(o.get(), NFTNL_OBJ_NAME, std::string(name).c_str());
  nftnl_obj_set_u32(o.get(), NFTNL_OBJ_FAMILY, nfproto(t.family));
  nftnl_obj_set_u32(o.get(), NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
  // The kernel wants NFTA_OBJ_DATA even for a fresh counter.
  nftnl_obj_set_u64(o.get(), NFTNL_OBJ_CTR_PKTS, 0);
  nftnl_obj_set_u64(o.get(), NFTNL_OBJ_CTR_BYTES, 0);
  return o;
}

Batch lower(const Plan& p) {
  Batch b;
  const Table& t = p.table;
  const uint8_t fam = nfproto(t.family);
  constexpr uint16_t kCreate = NLM_F_CREATE | NLM_F_EXCL;
  uint32_t set_id = 0;
  for (size_t i = 0; i < p.changes.size(); ++i) {
    const Change& c = p.changes[i];
    const auto idx = static_cast<uint32_t>(i);
    auto msg = [&](uint16_t type, uint16_t flags, auto&& fill) {
      b.add(type, fam, flags, describe(t, c), fill).change = idx;
    };
    if (std::holds_alternative<AddTable>(c)) {
      auto o = lower_table(t);
      msg(NFT_MSG_NEWTABLE, kCreate,
          [&](nlmsghdr* n) { nftnl_table_nlmsg_build_payload(n, o.get()); });
    } else if (auto* a = std::get_if<AddChain>(&c)) {
      auto o = lower_chain(t, a->name, a->base);
      msg(NFT_MSG_NEWCHAIN, kCreate,
          [&](nlmsghdr* n) { nftnl_chain_nlmsg_build_payload(n, o.get()); });
    } else if (auto* u = std::get_if<UpdateChain>(&c)) {
      auto o = lower_chain(t, u->name, std::nullopt);
      nftnl_chain_set_u32(o.get(), NFTNL_CHAIN_POLICY,
                          u->base.policy == Policy::kDrop ? NF_DROP : NF_ACCEPT);
      msg(NFT_MSG_NEWCHAIN, NLM_F_CREATE,
          [&](nlmsghdr* n) { nftnl_chain_nlmsg_build_payload(n, o.get()); });
    } else if (auto* f = std::get_if<FlushChain>(&c)) {
      // DELRULE without a handle deletes every rule of the chain.
      auto o = new_rule();
      nftnl_rule_set_str(o.get(), NFTNL_RULE_TABLE, t.name.c_str());
      nftnl_rule_set_str(o.get(), NFTNL_RULE_CHAIN, f->name.c_str());
      nftnl_rule_set_u32(o.get(), NFTNL_RULE_FAMILY, fam);
      msg(NFT_MSG_DELRULE, 0, [&](nlmsghdr* n) { nftnl_rule_nlmsg_build_payload(n, o.get()); });
    } else if (auto* d = std::get_if<DeleteChain>(&c)) {
      auto o = lower_chain(t, d->name, std::nullopt);
      msg(NFT_MSG_DELCHAIN, 0, [&](nlmsghdr* n) { nftnl_chain_nlmsg_build_payload(n, o.get()); });
    } else if (auto* ac = std::get_if<AddCounter>(&c)) {
      auto o = lower_counter(t, ac->name);
      msg(NFT_MSG_NEWOBJ, kCreate, [&](nlmsghdr* n) { nftnl_obj_nlmsg_build_payload(n, o.get()); });
    } else if (auto* dc = std::get_if<DeleteCounter>(&c)) {
      auto o = new_obj();
      nftnl_obj_set_str(o.get(), NFTNL_OBJ_TABLE, t.name.c_str());
      nftnl_obj_set_str(o.get(), NFTNL_OBJ_NAME, dc->name.c_str());
      nftnl_obj_set_u32(o.get(), NFTNL_OBJ_FAMILY, fam);
      nftnl_obj_set_u32(o.get(), NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
      msg(NFT_MSG_DELOBJ, 0, [&](nlmsghdr* n) { nftnl_obj_nlmsg_build_payload(n, o.get()); });
    } else if (auto* as = std::get_if<AddSet>(&c)) {
      const std::string& kernel = p.kernel_name(as->set.name);
      auto o = lower_set(t, as->set, ++set_id, kernel);
      msg(NFT_MSG_NEWSET, kCreate, [&](nlmsghdr* n) { nftnl_set_nlmsg_build_payload(n, o.get()); });
      lower_elements(b, t, as->set, kernel, true, idx, set_id);
    } else if (auto* ds = std::get_if<DeleteSet>(&c)) {
      auto o = new_set();
      nftnl_set_set_str(o.get(), NFTNL_SET_TABLE, t.name.c_str());
      nftnl_set_set_str(o.get(), NFTNL_SET_NAME, p.kernel_name(ds->name).c_str());
      nftnl_set_set_u32(o.get(), NFTNL_SET_FAMILY, fam);
      msg(NFT_MSG_DELSET, 0, [&](nlmsghdr* n) { nftnl_set_nlmsg_build_payload(n, o.get()); });
    } else if (auto* ae = std::get_if<AddElements>(&c)) {
      lower_elements(b, t, ae->set, p.kernel_name(ae->set.name), true, idx);
    } else if (auto* de = std::get_if<DeleteElements>(&c)) {
      lower_elements(b, t, de->set, p.kernel_name(de->set.name), false, idx);
    } else if (auto* ar = std::get_if<AddRule>(&c)) {
      auto o = lower_rule(t, ar->chain, ar->rule, &p);
      msg(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND,
          [&](nlmsghdr* n) { nftnl_rule_nlmsg_build_payload(n, o.get()); });
    }
  }
  return b;
}

std::string refused_object(const Plan& p, const Batch& b, size_t index,
                           std::optional<uint32_t> attr_offset) {
  const auto& e = b.entry(index);
  if (!attr_offset || e.elem_offsets.empty() || e.change >= p.changes.size()) return e.what;
  auto k = b.element_at(index, *attr_offset);
  if (!k) return e.what;
  const Change& c = p.changes[e.change];
  const Set* s = nullptr;
  bool add = true;
  if (auto* as = std::get_if<AddSet>(&c)) s = &as->set;
  if (auto* ae = std::get_if<AddElements>(&c)) s = &ae->set;
  if (auto* de = std::get_if<DeleteElements>(&c)) s = &de->set, add = false;
  if (s == nullptr || *k >= s->elements.size()) return e.what;
  return elems_what(p.table, *s, add, *k, 1);
}

}  // namespace knit::nft
