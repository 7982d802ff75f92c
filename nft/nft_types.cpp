#include "nft/nft_types.hpp"

#include <linux/netfilter.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "core/error.hpp"
#include "nft/deps.hpp"

namespace knit::nft {

uint8_t nfproto(TableFamily f) {
  switch (f) {
    case TableFamily::kInet:
      return NFPROTO_INET;
    case TableFamily::kIp:
      return NFPROTO_IPV4;
    case TableFamily::kIp6:
      return NFPROTO_IPV6;
  }
  return NFPROTO_INET;
}

std::string_view family_name(TableFamily f) {
  switch (f) {
    case TableFamily::kInet:
      return "inet";
    case TableFamily::kIp:
      return "ip";
    case TableFamily::kIp6:
      return "ip6";
  }
  return "?";
}

size_t type_size(Type t) {
  switch (t) {
    case Type::kVerdict:
      return 0;
    case Type::kNfproto:
    case Type::kInetProto:
    case Type::kIcmpType:
    case Type::kIcmpv6Type:
      return 1;
    case Type::kInetService:
      return 2;
    case Type::kIpv4Addr:
    case Type::kMark:
    case Type::kIfindex:
    case Type::kUid:
    case Type::kCtState:
    case Type::kCtStatus:
    case Type::kFibAddrType:
      return 4;
    case Type::kIpv6Addr:
    case Type::kIfname:
      return 16;
  }
  return 0;
}

bool type_host_order(Type t) {
  switch (t) {
    case Type::kMark:
    case Type::kIfindex:
    case Type::kUid:
    case Type::kCtState:
    case Type::kCtStatus:
    case Type::kFibAddrType:
      return true;
    default:
      return false;
  }
}

std::string_view type_name(Type t) {
  switch (t) {
    case Type::kVerdict:
      return "verdict";
    case Type::kNfproto:
      return "nf_proto";
    case Type::kIpv4Addr:
      return "ipv4_addr";
    case Type::kIpv6Addr:
      return "ipv6_addr";
    case Type::kInetProto:
      return "inet_proto";
    case Type::kInetService:
      return "inet_service";
    case Type::kIcmpType:
      return "icmp_type";
    case Type::kMark:
      return "mark";
    case Type::kIfindex:
      return "iface_index";
    case Type::kUid:
      return "uid";
    case Type::kCtState:
      return "ct_state";
    case Type::kCtStatus:
      return "ct_status";
    case Type::kIcmpv6Type:
      return "icmpv6_type";
    case Type::kFibAddrType:
      return "fib_addrtype";
    case Type::kIfname:
      return "ifname";
  }
  return "?";
}

std::optional<Type> type_from_id(uint32_t id) {
  switch (id) {
    case 1:
    case 2:
    case 7:
    case 8:
    case 12:
    case 13:
    case 14:
    case 19:
    case 20:
    case 24:
    case 26:
    case 28:
    case 29:
    case 38:
    case 41:
      return static_cast<Type>(id);
    default:
      return std::nullopt;
  }
}

// ---- Value -------------------------------------------------------------------------------------

Value Value::bytes(const void* data, size_t n) {
  if (n > 16) fail(Code::kInternal, "nft value longer than 16 bytes");
  Value v;
  if (n > 0) std::memcpy(v.b_.data(), data, n);
  v.len_ = static_cast<uint8_t>(n);
  return v;
}

Value Value::addr(const IpAddr& a) {
  return bytes(a.data(), a.size());
}

Value Value::u8(uint8_t x) {
  return bytes(&x, 1);
}

Value Value::port(uint16_t x) {
  uint8_t b[2] = {static_cast<uint8_t>(x >> 8), static_cast<uint8_t>(x)};
  return bytes(b, 2);
}

Value Value::u32(uint32_t x) {
  return bytes(&x, 4);
}

Value Value::ifname(std::string_view name) {
  Value v;
  std::memcpy(v.b_.data(), name.data(), std::min<size_t>(name.size(), 15));
  v.len_ = 16;
  return v;
}

uint32_t Value::as_u32() const noexcept {
  uint32_t x = 0;
  std::memcpy(&x, b_.data(), 4);
  return x;
}

IpAddr Value::as_addr() const {
  return IpAddr::from_bytes(len_ == 16 ? Family::kV6 : Family::kV4, b_.data());
}

std::string Value::as_ifname() const {
  const char* s = reinterpret_cast<const char*>(b_.data());
  return std::string(s, strnlen(s, len_));
}

// ---- Key / elements ----------------------------------------------------------------------------

namespace {
size_t pad4(size_t n) {
  return (n + 3) & ~size_t{3};
}
}  // namespace

void Key::append(const Value& v) {
  size_t at = pad4(len_);
  if (at + pad4(v.size()) > kMax) fail(Code::kInternal, "nft key longer than 64 bytes");
  std::memcpy(b_.data() + at, v.data(), v.size());
  len_ = static_cast<uint8_t>(at + v.size());
}

void Key::pad() {
  len_ = static_cast<uint8_t>(pad4(len_));
}

std::strong_ordering operator<=>(const Key& a, const Key& b) noexcept {
  int c = std::memcmp(a.b_.data(), b.b_.data(), std::min(a.len_, b.len_));
  if (c != 0) return c < 0 ? std::strong_ordering::less : std::strong_ordering::greater;
  return a.len_ <=> b.len_;
}

Value Key::field(size_t offset, size_t len) const {
  if (offset + len > len_) return {};
  return Value::bytes(b_.data() + offset, len);
}

void Key::assign(const void* data, size_t n) {
  if (n > kMax) fail(Code::kInternal, "nft key longer than 64 bytes");
  b_.fill(0);
  if (n > 0) std::memcpy(b_.data(), data, n);
  len_ = static_cast<uint8_t>(n);
}

Element element(std::span<const Field> key) {
  Element e;
  for (const auto& f : key) {
    e.key.append(f.lo);
    e.key_end.append(f.hi);
  }
  if (key.size() > 1) {
    e.key.pad();
    e.key_end.pad();
  }
  return e;
}

Element element(std::initializer_list<Field> key) {
  return element(std::span<const Field>(key.begin(), key.size()));
}

Element element(std::initializer_list<Field> key, Verdict v) {
  Element e = element(key);
  e.verdict = std::move(v);
  return e;
}

Element element(std::initializer_list<Field> key, std::initializer_list<Value> data) {
  Element e = element(key);
  for (const auto& v : data) e.data.append(v);
  if (data.size() > 1) e.data.pad();
  return e;
}

size_t packed_size(const std::vector<Type>& types) {
  if (types.size() == 1) return type_size(types[0]);
  size_t n = 0;
  for (Type t : types) n += pad4(type_size(t));
  return n;
}

size_t Set::key_size() const {
  return packed_size(key);
}

size_t Set::data_size() const {
  return packed_size(data);
}

bool Set::same_type(const Set& o) const {
  return name == o.name && key == o.key && data == o.data && interval == o.interval &&
         constant == o.constant;
}

// ---- Rules -------------------------------------------------------------------------------------

Type sel_type(Sel s) {
  switch (s) {
    case Sel::kIpSaddr:
    case Sel::kIpDaddr:
      return Type::kIpv4Addr;
    case Sel::kIp6Saddr:
    case Sel::kIp6Daddr:
      return Type::kIpv6Addr;
    case Sel::kThSport:
    case Sel::kThDport:
      return Type::kInetService;
    case Sel::kL4proto:
      return Type::kInetProto;
    case Sel::kNfproto:
      return Type::kNfproto;
    case Sel::kIifname:
    case Sel::kOifname:
      return Type::kIfname;
    case Sel::kIif:
    case Sel::kOif:
      return Type::kIfindex;
    case Sel::kSkuid:
      return Type::kUid;
    case Sel::kMark:
    case Sel::kCtMark:
      return Type::kMark;
    case Sel::kCtState:
      return Type::kCtState;
    case Sel::kCtStatus:
      return Type::kCtStatus;
    case Sel::kFibSaddrType:
    case Sel::kFibDaddrType:
      return Type::kFibAddrType;
    case Sel::kIcmpType:
      return Type::kIcmpType;
    case Sel::kIcmpv6Type:
      return Type::kIcmpv6Type;
  }
  return Type::kMark;
}

std::string_view sel_name(Sel s) {
  switch (s) {
    case Sel::kIpSaddr:
      return "ip saddr";
    case Sel::kIpDaddr:
      return "ip daddr";
    case Sel::kIp6Saddr:
      return "ip6 saddr";
    case Sel::kIp6Daddr:
      return "ip6 daddr";
    case Sel::kThSport:
      return "th sport";
    case Sel::kThDport:
      return "th dport";
    case Sel::kL4proto:
      return "meta l4proto";
    case Sel::kNfproto:
      return "meta nfproto";
    case Sel::kIifname:
      return "iifname";
    case Sel::kOifname:
      return "oifname";
    case Sel::kIif:
      return "meta iif";
    case Sel::kOif:
      return "meta oif";
    case Sel::kSkuid:
      return "meta skuid";
    case Sel::kMark:
      return "meta mark";
    case Sel::kCtState:
      return "ct state";
    case Sel::kCtMark:
      return "ct mark";
    case Sel::kCtStatus:
      return "ct status";
    case Sel::kFibSaddrType:
      return "fib saddr type";
    case Sel::kFibDaddrType:
      return "fib daddr type";
    case Sel::kIcmpType:
      return "icmp type";
    case Sel::kIcmpv6Type:
      return "icmpv6 type";
  }
  return "?";
}

Cmp match_prefix(Sel s, const Prefix& p, CmpOp op) {
  Prefix n = p.network();
  if (n.len() >= n.addr().bits()) return Cmp{s, op, Value::addr(n.addr()), std::nullopt};
  std::array<uint8_t, 16> m{};
  for (unsigned i = 0; i < n.len(); ++i) m[i / 8] |= static_cast<uint8_t>(0x80 >> (i % 8));
  return Cmp{s, op, Value::addr(n.addr()), Value::bytes(m.data(), n.addr().size())};
}

Cmp match_any(Sel s, uint32_t bits) {
  return Cmp{s, CmpOp::kNe, Value::u32(0), Value::u32(bits)};
}

Rule canonical(const Rule& r, TableFamily f) {
  auto is_dep_match = [](const Stmt& s, Sel which) {
    auto* c = std::get_if<Cmp>(&s);
    return c && c->sel == which && c->op == CmpOp::kEq && !c->mask && c->value.size() == 1;
  };
  auto default_level = [](const Stmt& s) {
    auto* l = std::get_if<Log>(&s);
    return l && l->level == kLogLevelDefault;
  };
  bool any = std::any_of(r.stmts.begin(), r.stmts.end(), [&](const Stmt& s) {
    return is_dep_match(s, Sel::kNfproto) || is_dep_match(s, Sel::kL4proto) || default_level(s);
  });
  if (!any) return r;
  Rule out;
  out.comment = r.comment;
  for (size_t i = 0; i < r.stmts.size(); ++i) {
    const Stmt& s = r.stmts[i];
    bool nf = is_dep_match(s, Sel::kNfproto), l4 = is_dep_match(s, Sel::kL4proto);
    if (nf || l4) {
      uint8_t v = std::get<Cmp>(s).value.as_u8();
      bool implied = false;
      for (size_t j = i + 1; j < r.stmts.size() && !implied; ++j) {
        Deps d = stmt_deps(r.stmts[j], f);
        implied = nf ? d.nfproto == v : d.l4proto == v;
      }
      if (implied) continue;
    }
    out.stmts.push_back(s);
    if (default_level(s)) std::get<Log>(out.stmts.back()).level.reset();
  }
  return out;
}

const std::string* set_named(const Stmt& s) {
  if (auto* l = std::get_if<Lookup>(&s)) return &l->set;
  if (auto* v = std::get_if<Vmap>(&s)) return &v->map;
  if (auto* d = std::get_if<DnatMap>(&s)) return &d->map;
  return nullptr;
}

std::string* set_named(Stmt& s) {
  return const_cast<std::string*>(set_named(std::as_const(s)));
}

// ---- Ruleset -----------------------------------------------------------------------------------

const Set* Ruleset::find_set(std::string_view name) const {
  for (const auto& s : sets)
    if (s.name == name) return &s;
  return nullptr;
}

const Chain* Ruleset::find_chain(std::string_view name) const {
  for (const auto& c : chains)
    if (c.name == name) return &c;
  return nullptr;
}

void Ruleset::sort() {
  auto by_name = [](const auto& a, const auto& b) { return a.name < b.name; };
  std::sort(counters.begin(), counters.end(), by_name);
  std::sort(sets.begin(), sets.end(), by_name);
  std::sort(chains.begin(), chains.end(), by_name);
}

}  // namespace knit::nft
