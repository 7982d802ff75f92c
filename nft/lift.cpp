#include "nft/lift.hpp"

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>

#include <algorithm>
#include <cstring>

#include "core/error.hpp"
#include "core/str.hpp"

namespace knit::nft {

namespace {

[[noreturn]] void unsupported(std::string msg) {
  throw Error(Code::kNetlink, std::move(msg));
}

size_t pad4(size_t n) {
  return (n + 3) & ~size_t{3};
}

/// Byte offset of a register in the register file; nullopt for the verdict register.
std::optional<size_t> reg_offset(uint32_t r) {
  if (r >= NFT_REG_1 && r <= NFT_REG_4) return (r - NFT_REG_1) * 16;
  if (r >= NFT_REG32_00 && r <= NFT_REG32_15) return (r - NFT_REG32_00) * 4;
  return std::nullopt;
}

/// Splits an nft concatenated type id (ids shifted in 6 bits at a time) and checks it against
/// the key length.
std::optional<std::vector<Type>> split_type(uint32_t id, uint32_t len) {
  std::vector<Type> types;
  if (id == 0) return std::nullopt;
  while (id != 0) {
    auto t = type_from_id(id & 0x3f);
    if (!t || *t == Type::kVerdict) return std::nullopt;
    types.insert(types.begin(), *t);
    id >>= 6;
  }
  if (packed_size(types) != len) return std::nullopt;
  return types;
}

std::string expr_text(const nftnl_expr* e) {
  char buf[512];
  int n = nftnl_expr_snprintf(buf, sizeof buf, e, NFTNL_OUTPUT_DEFAULT, 0);
  std::string_view text =
      n > 0 ? std::string_view(buf, std::min<size_t>(static_cast<size_t>(n), sizeof buf - 1))
            : std::string_view();
  text = knit::trim(text);
  return str("[ ", nftnl_expr_get_str(e, NFTNL_EXPR_NAME), text.empty() ? "" : " ", text, " ]");
}

Value expr_value(const nftnl_expr* e, uint16_t attr) {
  uint32_t len = 0;
  const void* d = nftnl_expr_get(e, attr, &len);
  if (d == nullptr || len > 16) return {};
  return Value::bytes(d, len);
}

std::optional<VerdictKind> verdict_kind(int code) {
  switch (code) {
    case NF_ACCEPT:
      return VerdictKind::kAccept;
    case NF_DROP:
      return VerdictKind::kDrop;
    case NFT_RETURN:
      return VerdictKind::kReturn;
    case NFT_JUMP:
      return VerdictKind::kJump;
    case NFT_GOTO:
      return VerdictKind::kGoto;
    case NFT_CONTINUE:
      return VerdictKind::kContinue;
    default:
      return std::nullopt;
  }
}

/// Pattern matcher over one rule's expressions.
class RuleLifter {
 public:
  RuleLifter(TableFamily f, nftnl_rule* r) : fam_(f) {
    auto it = new_expr_iter(r);
    for (nftnl_expr* e = nftnl_expr_iter_next(it.get()); e; e = nftnl_expr_iter_next(it.get())) {
      exprs_.push_back(e);
    }
    if (f == TableFamily::kIp) nf_ = proto::kIpv4;
    if (f == TableFamily::kIp6) nf_ = proto::kIpv6;
  }

  std::vector<Stmt> run() {
    size_t i = 0;
    while (i < exprs_.size()) {
      size_t used = 0;
      std::optional<Stmt> s = parse(i, used);
      if (!s) {
        out_.push_back(Raw{expr_text(exprs_[i])});
        ++i;
        continue;
      }
      if (auto* c = std::get_if<Cmp>(&*s); c && c->op == CmpOp::kEq && !c->mask) {
        if (c->sel == Sel::kNfproto) nf_ = c->value.as_u8();
        if (c->sel == Sel::kL4proto) l4_ = c->value.as_u8();
      }
      out_.push_back(std::move(*s));
      i += used;
    }
    return std::move(out_);
  }

 private:
  struct Load {
    Sel sel;
    uint32_t dreg;
    size_t len;  ///< bytes loaded; less than the type's size for nft's short prefix loads
  };

  const nftnl_expr* at(size_t i) const { return i < exprs_.size() ? exprs_[i] : nullptr; }
  static bool is(const nftnl_expr* e, const char* name) {
    return e && std::strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), name) == 0;
  }
  static uint32_t u32(const nftnl_expr* e, uint16_t a) { return nftnl_expr_get_u32(e, a); }
  static bool has(const nftnl_expr* e, uint16_t a) { return nftnl_expr_is_set(e, a); }

  std::optional<Load> load(const nftnl_expr* e) const {
    if (is(e, "payload")) {
      if (!has(e, NFTNL_EXPR_PAYLOAD_DREG) || has(e, NFTNL_EXPR_PAYLOAD_SREG)) return std::nullopt;
      uint32_t base = u32(e, NFTNL_EXPR_PAYLOAD_BASE), off = u32(e, NFTNL_EXPR_PAYLOAD_OFFSET),
               len = u32(e, NFTNL_EXPR_PAYLOAD_LEN), dreg = u32(e, NFTNL_EXPR_PAYLOAD_DREG);
      std::optional<Sel> s;
      if (base == NFT_PAYLOAD_NETWORK_HEADER && nf_ == proto::kIpv4 && len >= 1 && len <= 4) {
        if (off == 12) s = Sel::kIpSaddr;
        if (off == 16) s = Sel::kIpDaddr;
      } else if (base == NFT_PAYLOAD_NETWORK_HEADER && nf_ == proto::kIpv6 && len >= 1 &&
                 len <= 16) {
        if (off == 8) s = Sel::kIp6Saddr;
        if (off == 24) s = Sel::kIp6Daddr;
      } else if (base == NFT_PAYLOAD_TRANSPORT_HEADER) {
        if (off == 0 && len == 2) s = Sel::kThSport;
        if (off == 2 && len == 2) s = Sel::kThDport;
        if (off == 0 && len == 1 && l4_ == proto::kIcmp) s = Sel::kIcmpType;
        if (off == 0 && len == 1 && l4_ == proto::kIcmpv6) s = Sel::kIcmpv6Type;
      }
      if (!s) return std::nullopt;
      return Load{*s, dreg, len};
    }
    if (is(e, "meta")) {
      if (!has(e, NFTNL_EXPR_META_DREG)) return std::nullopt;
      std::optional<Sel> s;
      switch (u32(e, NFTNL_EXPR_META_KEY)) {
        case NFT_META_L4PROTO:
          s = Sel::kL4proto;
          break;
        case NFT_META_NFPROTO:
          s = Sel::kNfproto;
          break;
        case NFT_META_IIFNAME:
          s = Sel::kIifname;
          break;
        case NFT_META_OIFNAME:
          s = Sel::kOifname;
          break;
        case NFT_META_IIF:
          s = Sel::kIif;
          break;
        case NFT_META_OIF:
          s = Sel::kOif;
          break;
        case NFT_META_SKUID:
          s = Sel::kSkuid;
          break;
        case NFT_META_MARK:
          s = Sel::kMark;
          break;
        default:
          return std::nullopt;
      }
      return Load{*s, u32(e, NFTNL_EXPR_META_DREG), type_size(sel_type(*s))};
    }
    if (is(e, "ct")) {
      if (!has(e, NFTNL_EXPR_CT_DREG) || has(e, NFTNL_EXPR_CT_DIR)) return std::nullopt;
      std::optional<Sel> s;
      switch (u32(e, NFTNL_EXPR_CT_KEY)) {
        case NFT_CT_STATE:
          s = Sel::kCtState;
          break;
        case NFT_CT_MARK:
          s = Sel::kCtMark;
          break;
        case NFT_CT_STATUS:
          s = Sel::kCtStatus;
          break;
        default:
          return std::nullopt;
      }
      return Load{*s, u32(e, NFTNL_EXPR_CT_DREG), 4};
    }
    if (is(e, "fib")) {
      if (u32(e, NFTNL_EXPR_FIB_RESULT) != NFT_FIB_RESULT_ADDRTYPE) return std::nullopt;
      uint32_t flags = u32(e, NFTNL_EXPR_FIB_FLAGS);
      if (flags == NFTA_FIB_F_SADDR)
        return Load{Sel::kFibSaddrType, u32(e, NFTNL_EXPR_FIB_DREG), 4};
      if (flags == NFTA_FIB_F_DADDR)
        return Load{Sel::kFibDaddrType, u32(e, NFTNL_EXPR_FIB_DREG), 4};
      return std::nullopt;
    }
    return std::nullopt;
  }

  /// Loads at i, i+1, ... filling consecutive registers from offset 0 (a concatenation); nft's
  /// byteorder conversions between them are skipped. `end` is the first other expression.
  std::vector<Load> key_loads(size_t i, size_t& end) const {
    std::vector<Load> loads;
    size_t off = 0;
    for (; i < exprs_.size(); ++i) {
      if (is(exprs_[i], "byteorder") && !loads.empty()) {
        uint32_t sreg = u32(exprs_[i], NFTNL_EXPR_BYTEORDER_SREG);
        if (sreg == u32(exprs_[i], NFTNL_EXPR_BYTEORDER_DREG) && reg_offset(sreg) &&
            *reg_offset(sreg) < off) {
          continue;
        }
        break;
      }
      auto l = load(exprs_[i]);
      if (!l || reg_offset(l->dreg) != off) break;
      loads.push_back(*l);
      off += pad4(l->len);
    }
    end = i;
    return loads;
  }

  std::optional<Stmt> parse(size_t i, size_t& used) {
    const nftnl_expr* e = exprs_[i];
    if (load(e)) return parse_match(i, used);
    if (is(e, "immediate")) return parse_immediate(i, used);
    used = 1;
    if (is(e, "counter")) return Counter{};
    if (is(e, "objref")) {
      if (!has(e, NFTNL_EXPR_OBJREF_IMM_TYPE) ||
          u32(e, NFTNL_EXPR_OBJREF_IMM_TYPE) != NFT_OBJECT_COUNTER) {
        return std::nullopt;
      }
      return CounterRef{nftnl_expr_get_str(e, NFTNL_EXPR_OBJREF_IMM_NAME)};
    }
    if (is(e, "notrack")) return Notrack{};
    if (is(e, "masq")) {
      if (has(e, NFTNL_EXPR_MASQ_REG_PROTO_MIN)) return std::nullopt;
      uint32_t f = has(e, NFTNL_EXPR_MASQ_FLAGS) ? u32(e, NFTNL_EXPR_MASQ_FLAGS) : 0;
      constexpr uint32_t known =
          NF_NAT_RANGE_PROTO_RANDOM | NF_NAT_RANGE_PROTO_RANDOM_FULLY | NF_NAT_RANGE_PERSISTENT;
      if (f & ~known) return std::nullopt;
      return Masquerade{(f & NF_NAT_RANGE_PROTO_RANDOM) != 0,
                        (f & NF_NAT_RANGE_PROTO_RANDOM_FULLY) != 0,
                        (f & NF_NAT_RANGE_PERSISTENT) != 0};
    }
    if (is(e, "log")) {
      if ((has(e, NFTNL_EXPR_LOG_FLAGS) && u32(e, NFTNL_EXPR_LOG_FLAGS) != 0) ||
          (has(e, NFTNL_EXPR_LOG_SNAPLEN) && u32(e, NFTNL_EXPR_LOG_SNAPLEN) != 0) ||
          (has(e, NFTNL_EXPR_LOG_QTHRESHOLD) &&
           nftnl_expr_get_u16(e, NFTNL_EXPR_LOG_QTHRESHOLD) != 0)) {
        return std::nullopt;
      }
      Log l;
      if (has(e, NFTNL_EXPR_LOG_PREFIX)) l.prefix = nftnl_expr_get_str(e, NFTNL_EXPR_LOG_PREFIX);
      if (has(e, NFTNL_EXPR_LOG_GROUP)) l.group = nftnl_expr_get_u16(e, NFTNL_EXPR_LOG_GROUP);
      if (has(e, NFTNL_EXPR_LOG_LEVEL) && !l.group) {
        uint32_t lvl = u32(e, NFTNL_EXPR_LOG_LEVEL);
        if (lvl > 8) return std::nullopt;
        if (lvl != kLogLevelDefault) l.level = static_cast<uint8_t>(lvl);
      }
      return l;
    }
    if (is(e, "reject")) return parse_reject(e);
    return std::nullopt;
  }

  std::optional<Stmt> parse_reject(const nftnl_expr* e) const {
    uint32_t type = u32(e, NFTNL_EXPR_REJECT_TYPE);
    uint8_t code =
        has(e, NFTNL_EXPR_REJECT_CODE) ? nftnl_expr_get_u8(e, NFTNL_EXPR_REJECT_CODE) : 0;
    if (type == NFT_REJECT_TCP_RST) return Reject{RejectKind::kTcpReset};
    if (type == NFT_REJECT_ICMPX_UNREACH && fam_ == TableFamily::kInet) {
      switch (code) {
        case NFT_REJECT_ICMPX_PORT_UNREACH:
          return Reject{RejectKind::kPortUnreachable};
        case NFT_REJECT_ICMPX_ADMIN_PROHIBITED:
          return Reject{RejectKind::kAdminProhibited};
        case NFT_REJECT_ICMPX_HOST_UNREACH:
          return Reject{RejectKind::kHostUnreachable};
        case NFT_REJECT_ICMPX_NO_ROUTE:
          return Reject{RejectKind::kNoRoute};
        default:
          return std::nullopt;
      }
    }
    if (type == NFT_REJECT_ICMP_UNREACH && fam_ == TableFamily::kIp) {
      switch (code) {
        case 3:
          return Reject{RejectKind::kPortUnreachable};
        case 13:
          return Reject{RejectKind::kAdminProhibited};
        case 1:
          return Reject{RejectKind::kHostUnreachable};
        case 0:
          return Reject{RejectKind::kNoRoute};
        default:
          return std::nullopt;
      }
    }
    if (type == NFT_REJECT_ICMP_UNREACH && fam_ == TableFamily::kIp6) {
      switch (code) {
        case 4:
          return Reject{RejectKind::kPortUnreachable};
        case 1:
          return Reject{RejectKind::kAdminProhibited};
        case 3:
          return Reject{RejectKind::kHostUnreachable};
        case 0:
          return Reject{RejectKind::kNoRoute};
        default:
          return std::nullopt;
      }
    }
    return std::nullopt;
  }

  /// load [bitwise] cmp | load cmp(gte) cmp(lte) | load range | loads... lookup [nat].
  std::optional<Stmt> parse_match(size_t i, size_t& used) {
    size_t end = i;
    std::vector<Load> loads = key_loads(i, end);
    const nftnl_expr* x = at(end);
    if (loads.empty() || !x) return std::nullopt;
    const Load& l0 = loads[0];
    Type t = sel_type(l0.sel);
    size_t full = type_size(t);

    if (loads.size() == 1 && end == i + 1 && (is(x, "cmp") || is(x, "bitwise") || is(x, "range"))) {
      std::optional<Value> mask;
      size_t j = end;
      if (is(x, "bitwise")) {
        if (l0.len != full || u32(x, NFTNL_EXPR_BITWISE_SREG) != l0.dreg ||
            u32(x, NFTNL_EXPR_BITWISE_DREG) != l0.dreg ||
            (has(x, NFTNL_EXPR_BITWISE_OP) && u32(x, NFTNL_EXPR_BITWISE_OP) != NFT_BITWISE_BOOL)) {
          return std::nullopt;
        }
        Value xr = expr_value(x, NFTNL_EXPR_BITWISE_XOR);
        for (size_t k = 0; k < xr.size(); ++k)
          if (xr.data()[k] != 0) return std::nullopt;
        mask = expr_value(x, NFTNL_EXPR_BITWISE_MASK);
        if (mask->size() != full) return std::nullopt;
        x = at(++j);
        if (!is(x, "cmp")) return std::nullopt;
      }
      if (is(x, "range")) {
        if (l0.len != full || u32(x, NFTNL_EXPR_RANGE_SREG) != l0.dreg) return std::nullopt;
        uint32_t op = u32(x, NFTNL_EXPR_RANGE_OP);
        Value lo = expr_value(x, NFTNL_EXPR_RANGE_FROM_DATA),
              hi = expr_value(x, NFTNL_EXPR_RANGE_TO_DATA);
        if (lo.size() != full || hi.size() != full) return std::nullopt;
        used = j + 1 - i;
        return Range{l0.sel, op == NFT_RANGE_NEQ ? CmpOp::kNe : CmpOp::kEq, lo, hi};
      }
      if (u32(x, NFTNL_EXPR_CMP_SREG) != l0.dreg) return std::nullopt;
      uint32_t op = u32(x, NFTNL_EXPR_CMP_OP);
      Value v = expr_value(x, NFTNL_EXPR_CMP_DATA);
      if (v.size() != l0.len) return std::nullopt;
      if (op == NFT_CMP_GTE && !mask && l0.len == full) {
        // nft writes `th dport 1000-2000` as gte + lte.
        const nftnl_expr* y = at(j + 1);
        if (is(y, "cmp") && u32(y, NFTNL_EXPR_CMP_SREG) == l0.dreg &&
            u32(y, NFTNL_EXPR_CMP_OP) == NFT_CMP_LTE) {
          Value hi = expr_value(y, NFTNL_EXPR_CMP_DATA);
          if (hi.size() != full) return std::nullopt;
          used = j + 2 - i;
          return Range{l0.sel, CmpOp::kEq, v, hi};
        }
        return std::nullopt;
      }
      if (op != NFT_CMP_EQ && op != NFT_CMP_NEQ) return std::nullopt;
      CmpOp cop = op == NFT_CMP_EQ ? CmpOp::kEq : CmpOp::kNe;
      used = j + 1 - i;
      if (l0.len < full) {
        // nft's short load for a byte-aligned prefix: `ip saddr 10.0.0.0/8` loads one byte.
        if (t != Type::kIpv4Addr && t != Type::kIpv6Addr) return std::nullopt;
        uint8_t b[16] = {}, m[16] = {};
        std::memcpy(b, v.data(), l0.len);
        std::memset(m, 0xff, l0.len);
        return Cmp{l0.sel, cop, Value::bytes(b, full), Value::bytes(m, full)};
      }
      return Cmp{l0.sel, cop, v, mask};
    }

    if (!is(x, "lookup") || u32(x, NFTNL_EXPR_LOOKUP_SREG) != NFT_REG_1) return std::nullopt;
    std::vector<Sel> key;
    for (const auto& l : loads) {
      if (l.len != type_size(sel_type(l.sel))) return std::nullopt;
      key.push_back(l.sel);
    }
    std::string set = nftnl_expr_get_str(x, NFTNL_EXPR_LOOKUP_SET);
    bool inv =
        has(x, NFTNL_EXPR_LOOKUP_FLAGS) && (u32(x, NFTNL_EXPR_LOOKUP_FLAGS) & NFT_LOOKUP_F_INV);
    if (!has(x, NFTNL_EXPR_LOOKUP_DREG)) {
      used = end + 1 - i;
      return Lookup{std::move(key), std::move(set), inv};
    }
    if (inv) return std::nullopt;
    uint32_t dreg = u32(x, NFTNL_EXPR_LOOKUP_DREG);
    if (dreg == NFT_REG_VERDICT) {
      used = end + 1 - i;
      return Vmap{std::move(key), std::move(set)};
    }
    const nftnl_expr* n = at(end + 1);
    if (dreg != NFT_REG_1 || !is(n, "nat")) return std::nullopt;
    auto nat = parse_nat(n);
    if (!nat || nat->type != NatType::kDnat || !nat->proto_reg) return std::nullopt;
    size_t addr_len = nat->family == Family::kV4 ? 4 : 16;
    if (reg_offset(*nat->proto_reg) != addr_len) return std::nullopt;
    used = end + 2 - i;
    return DnatMap{nat->family, std::move(key), std::move(set)};
  }

  struct NatExpr {
    NatType type;
    Family family;
    std::optional<uint32_t> proto_reg;
  };
  std::optional<NatExpr> parse_nat(const nftnl_expr* n) const {
    uint32_t type = u32(n, NFTNL_EXPR_NAT_TYPE), fam = u32(n, NFTNL_EXPR_NAT_FAMILY);
    if ((type != NFT_NAT_SNAT && type != NFT_NAT_DNAT) ||
        (fam != NFPROTO_IPV4 && fam != NFPROTO_IPV6)) {
      return std::nullopt;
    }
    if (!has(n, NFTNL_EXPR_NAT_REG_ADDR_MIN) || u32(n, NFTNL_EXPR_NAT_REG_ADDR_MIN) != NFT_REG_1) {
      return std::nullopt;
    }
    // The kernel reports max registers equal to the min ones and adds MAP_IPS / PROTO_SPECIFIED.
    if (has(n, NFTNL_EXPR_NAT_REG_ADDR_MAX) && u32(n, NFTNL_EXPR_NAT_REG_ADDR_MAX) != NFT_REG_1) {
      return std::nullopt;
    }
    std::optional<uint32_t> proto;
    if (has(n, NFTNL_EXPR_NAT_REG_PROTO_MIN)) proto = u32(n, NFTNL_EXPR_NAT_REG_PROTO_MIN);
    if (has(n, NFTNL_EXPR_NAT_REG_PROTO_MAX) && proto != u32(n, NFTNL_EXPR_NAT_REG_PROTO_MAX)) {
      return std::nullopt;
    }
    uint32_t flags = has(n, NFTNL_EXPR_NAT_FLAGS) ? u32(n, NFTNL_EXPR_NAT_FLAGS) : 0;
    if (flags & ~uint32_t{NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED}) return std::nullopt;
    return NatExpr{type == NFT_NAT_SNAT ? NatType::kSnat : NatType::kDnat,
                   fam == NFPROTO_IPV4 ? Family::kV4 : Family::kV6, proto};
  }

  /// immediate verdict | immediate reg, meta/ct set mark | immediate addr [immediate port] nat.
  std::optional<Stmt> parse_immediate(size_t i, size_t& used) {
    const nftnl_expr* e = exprs_[i];
    uint32_t dreg = u32(e, NFTNL_EXPR_IMM_DREG);
    if (dreg == NFT_REG_VERDICT) {
      auto k = verdict_kind(static_cast<int>(u32(e, NFTNL_EXPR_IMM_VERDICT)));
      if (!k) return std::nullopt;
      Verdict v{*k, {}};
      if (has(e, NFTNL_EXPR_IMM_CHAIN)) v.chain = nftnl_expr_get_str(e, NFTNL_EXPR_IMM_CHAIN);
      used = 1;
      return v;
    }
    if (dreg != NFT_REG_1) return std::nullopt;
    Value v = expr_value(e, NFTNL_EXPR_IMM_DATA);
    const nftnl_expr* x = at(i + 1);
    if ((is(x, "meta") && has(x, NFTNL_EXPR_META_SREG) &&
         u32(x, NFTNL_EXPR_META_KEY) == NFT_META_MARK &&
         u32(x, NFTNL_EXPR_META_SREG) == NFT_REG_1) ||
        (is(x, "ct") && has(x, NFTNL_EXPR_CT_SREG) && u32(x, NFTNL_EXPR_CT_KEY) == NFT_CT_MARK &&
         u32(x, NFTNL_EXPR_CT_SREG) == NFT_REG_1 && !has(x, NFTNL_EXPR_CT_DIR))) {
      if (v.size() != 4) return std::nullopt;
      used = 2;
      return SetMark{is(x, "ct") ? MarkTarget::kCt : MarkTarget::kMeta, v.as_u32()};
    }
    std::optional<uint16_t> port;
    size_t j = i + 1;
    if (is(x, "immediate") && u32(x, NFTNL_EXPR_IMM_DREG) == NFT_REG_2) {
      Value p = expr_value(x, NFTNL_EXPR_IMM_DATA);
      if (p.size() != 2) return std::nullopt;
      port = p.as_port();
      x = at(++j);
    }
    if (!is(x, "nat")) return std::nullopt;
    auto nat = parse_nat(x);
    if (!nat || (port.has_value() != nat->proto_reg.has_value()) ||
        (nat->proto_reg && *nat->proto_reg != NFT_REG_2)) {
      return std::nullopt;
    }
    if (v.size() != (nat->family == Family::kV4 ? 4u : 16u)) return std::nullopt;
    used = j + 1 - i;
    return Nat{nat->type, v.as_addr(), port};
  }

  TableFamily fam_;
  std::vector<nftnl_expr*> exprs_;
  std::vector<Stmt> out_;
  std::optional<uint8_t> nf_, l4_;
};

std::string udata_comment(const void* data, uint32_t len, uint8_t type) {
  // TLVs: type (1 byte), length (1 byte), value.
  const auto* p = static_cast<const uint8_t*>(data);
  for (uint32_t off = 0; off + 2 <= len;) {
    uint8_t t = p[off], n = p[off + 1];
    if (off + 2 + n > len) break;
    if (t == type && n > 0) {
      const char* s = reinterpret_cast<const char*>(p + off + 2);
      return std::string(s, strnlen(s, n));
    }
    off += 2 + n;
  }
  return {};
}

std::optional<Key> predecessor(const Key& k) {
  Key p = k;
  for (size_t i = p.size(); i-- > 0;) {
    if (p.data()[i]-- != 0) return p;
  }
  return std::nullopt;
}

}  // namespace

Chain lift_chain(const nftnl_chain* c) {
  Chain ch;
  ch.name = nftnl_chain_get_str(c, NFTNL_CHAIN_NAME);
  if (!nftnl_chain_is_set(c, NFTNL_CHAIN_HOOKNUM)) return ch;
  BaseChain b;
  uint32_t hook = nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM);
  if (hook > static_cast<uint32_t>(Hook::kPostrouting)) {
    unsupported(str("read chain ", ch.name, ": hook ", hook, " is not supported"));
  }
  b.hook = static_cast<Hook>(hook);
  b.priority = nftnl_chain_get_s32(c, NFTNL_CHAIN_PRIO);
  std::string_view type =
      nftnl_chain_is_set(c, NFTNL_CHAIN_TYPE) ? nftnl_chain_get_str(c, NFTNL_CHAIN_TYPE) : "filter";
  if (type == "nat")
    b.type = ChainType::kNat;
  else if (type == "filter")
    b.type = ChainType::kFilter;
  else
    unsupported(str("read chain ", ch.name, ": chain type ", type, " is not supported"));
  b.policy = nftnl_chain_is_set(c, NFTNL_CHAIN_POLICY) &&
                     nftnl_chain_get_u32(c, NFTNL_CHAIN_POLICY) == NF_DROP
                 ? Policy::kDrop
                 : Policy::kAccept;
  ch.base = b;
  return ch;
}

std::string lift_set_comment(const nftnl_set* s) {
  if (!nftnl_set_is_set(s, NFTNL_SET_USERDATA)) return {};
  uint32_t len = 0;
  const void* ud = nftnl_set_get_data(s, NFTNL_SET_USERDATA, &len);
  return udata_comment(ud, len, NFTNL_UDATA_SET_COMMENT);
}

Set lift_set(const nftnl_set* s) {
  Set out;
  out.name = nftnl_set_get_str(s, NFTNL_SET_NAME);
  std::string where = str("read set ", out.name);
  uint32_t flags = nftnl_set_get_u32(s, NFTNL_SET_FLAGS);
  constexpr uint32_t known = NFT_SET_CONSTANT | NFT_SET_INTERVAL | NFT_SET_MAP | NFT_SET_CONCAT;
  // lower_set's way of turning the interval backends' garbage collection off: the timeout
  // flag only to carry the gc interval, and no default timeout.
  if ((flags & NFT_SET_TIMEOUT) && (flags & NFT_SET_INTERVAL) &&
      nftnl_set_is_set(s, NFTNL_SET_GC_INTERVAL) &&
      nftnl_set_get_u32(s, NFTNL_SET_GC_INTERVAL) == kNoGcInterval &&
      !(nftnl_set_is_set(s, NFTNL_SET_TIMEOUT) && nftnl_set_get_u64(s, NFTNL_SET_TIMEOUT) != 0)) {
    flags &= ~NFT_SET_TIMEOUT;
  }
  if (flags & ~known)
    unsupported(str(where, ": set flags 0x", knit::hex(&flags, 4), " are not supported"));
  out.interval = flags & NFT_SET_INTERVAL;
  out.constant = flags & NFT_SET_CONSTANT;
  auto key =
      split_type(nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE), nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN));
  if (!key) unsupported(str(where, ": key type is not supported"));
  out.key = std::move(*key);
  if (flags & NFT_SET_MAP) {
    uint32_t dt = nftnl_set_get_u32(s, NFTNL_SET_DATA_TYPE);
    if (dt == NFT_DATA_VERDICT) {
      out.data = {Type::kVerdict};
    } else {
      auto data = split_type(dt, nftnl_set_get_u32(s, NFTNL_SET_DATA_LEN));
      if (!data) unsupported(str(where, ": map data type is not supported"));
      out.data = std::move(*data);
    }
  }
  return out;
}

void ElementLifter::add(nftnl_set* parsed) {
  const bool plain_interval = set_.interval && !set_.is_concat();
  auto it = new_set_elems_iter(parsed);
  for (nftnl_set_elem* e = nftnl_set_elems_iter_next(it.get()); e;
       e = nftnl_set_elems_iter_next(it.get())) {
    uint32_t len = 0;
    const void* k = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
    if (k == nullptr) continue;
    Key key;
    key.assign(k, len);
    uint32_t flags = nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_FLAGS)
                         ? nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_FLAGS)
                         : 0;
    if (plain_interval && (flags & NFT_SET_ELEM_INTERVAL_END)) {
      markers_.push_back({key, true, 0});
      continue;
    }
    Element el;
    el.key = key;
    el.key_end = key;
    if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_KEY_END)) {
      const void* ke = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY_END, &len);
      el.key_end.assign(ke, len);
    }
    if (set_.is_vmap() && nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_VERDICT)) {
      auto kind = verdict_kind(static_cast<int>(nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_VERDICT)));
      el.verdict.kind = kind.value_or(VerdictKind::kDrop);
      if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_CHAIN)) {
        el.verdict.chain = nftnl_set_elem_get_str(e, NFTNL_SET_ELEM_CHAIN);
      }
    } else if (set_.is_map() && nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_DATA)) {
      const void* d = nftnl_set_elem_get(e, NFTNL_SET_ELEM_DATA, &len);
      el.data.assign(d, len);
    }
    if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_USERDATA)) {
      const void* ud = nftnl_set_elem_get(e, NFTNL_SET_ELEM_USERDATA, &len);
      el.comment = udata_comment(ud, len, NFTNL_UDATA_SET_ELEM_COMMENT);
    }
    if (plain_interval) markers_.push_back({key, false, elems_.size()});
    elems_.push_back(std::move(el));
  }
}

std::vector<Element> ElementLifter::finish() {
  if (!markers_.empty()) {
    // Ends sort before starts at the same key: [a, b) followed by [b, c) is end b, start b.
    std::sort(markers_.begin(), markers_.end(), [](const Marker& a, const Marker& b) {
      if (a.key != b.key) return a.key < b.key;
      return a.end && !b.end;
    });
    for (size_t i = 0; i < markers_.size(); ++i) {
      if (markers_[i].end) continue;  // nft's leading "0 end" marker has no start
      Element& el = elems_[markers_[i].elem];
      std::optional<Key> last;
      if (i + 1 < markers_.size() && markers_[i + 1].end) last = predecessor(markers_[i + 1].key);
      if (last) {
        el.key_end = *last;
      } else {
        std::memset(el.key_end.data(), 0xff, el.key_end.size());
      }
    }
  }
  std::sort(elems_.begin(), elems_.end(), [](const Element& a, const Element& b) {
    if (a.key != b.key) return a.key < b.key;
    return a.key_end < b.key_end;
  });
  return std::move(elems_);
}

Rule lift_rule(TableFamily f, nftnl_rule* r) {
  Rule out;
  out.stmts = RuleLifter(f, r).run();
  if (nftnl_rule_is_set(r, NFTNL_RULE_USERDATA)) {
    uint32_t len = 0;
    const void* ud = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &len);
    out.comment = udata_comment(ud, len, NFTNL_UDATA_RULE_COMMENT);
  }
  return canonical(out, f);
}

NamedCounter lift_counter(nftnl_obj* o) {
  std::string name = nftnl_obj_get_str(o, NFTNL_OBJ_NAME);
  if (nftnl_obj_get_u32(o, NFTNL_OBJ_TYPE) != NFT_OBJECT_COUNTER) {
    unsupported(str("read object ", name, ": only counters are supported"));
  }
  return NamedCounter{std::move(name)};
}

}  // namespace knit::nft
