// nft/nft_types.hpp: the nftables model as plain, comparable values.
//
// A Ruleset is one table with its named counters, sets/maps and chains. Rules are lists of
// statements from a small vocabulary (selector × operator × action) that lowers 1:1 to kernel
// expressions and is lifted back from the kernel's dump (nft/lift.hpp). Anything the lifter does
// not recognise becomes a Raw statement, which renders visibly and never lowers.
//
// Values are kept in the layout the kernel compares them in (a register's bytes): addresses and
// ports big-endian, marks and other 32-bit meta/ct values in host order. Set element keys are
// packed concatenations (each field padded to 4 bytes) in a fixed 64-byte buffer, so a set of
// 50k elements is one allocation.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/ip.hpp"

namespace knit::nft {

// ---- Tables and field types --------------------------------------------------------------------

enum class TableFamily : uint8_t { kInet, kIp, kIp6 };

/// NFPROTO_* number of `f` (what netlink messages carry).
uint8_t nfproto(TableFamily f);
/// "inet", "ip", "ip6".
std::string_view family_name(TableFamily f);

struct Table {
  TableFamily family = TableFamily::kInet;
  std::string name;
  friend bool operator==(const Table&, const Table&) = default;
};

/// Field types of selectors, set keys and map values. The numbers are nftables' datatype ids,
/// which the kernel stores (and nft reads) in NFTA_SET_KEY_TYPE / NFTA_SET_DATA_TYPE.
enum class Type : uint8_t {
  kVerdict = 1,
  kNfproto = 2,
  kIpv4Addr = 7,
  kIpv6Addr = 8,
  kInetProto = 12,
  kInetService = 13,
  kIcmpType = 14,
  kMark = 19,
  kIfindex = 20,
  kUid = 24,
  kCtState = 26,
  kCtStatus = 28,
  kIcmpv6Type = 29,
  kFibAddrType = 38,
  kIfname = 41,
};

/// Size in bytes of one value of `t` (0 for kVerdict).
size_t type_size(Type t);
/// Size of a key or map value made of `types` (see Set::key_size()).
size_t packed_size(const std::vector<Type>& types);
/// True for types the kernel holds in host byte order (marks, uids, ct state, ...).
bool type_host_order(Type t);
/// nft's name of the type ("ipv4_addr", "inet_service", ...).
std::string_view type_name(Type t);
/// The type with nftables datatype id `id`; nullopt for ids this model does not know.
std::optional<Type> type_from_id(uint32_t id);

// ---- Values ------------------------------------------------------------------------------------

/// One value of a field type, as the bytes of a register (at most 16 bytes).
class Value {
 public:
  Value() = default;
  /// Raw bytes; throws Error(kInternal) when n > 16.
  static Value bytes(const void* data, size_t n);
  /// 4 or 16 bytes, network order.
  static Value addr(const IpAddr& a);
  /// One byte: inet_proto, nfproto, icmp types.
  static Value u8(uint8_t v);
  /// inet_service: two bytes, big-endian.
  static Value port(uint16_t v);
  /// A 32-bit value in host order: mark, uid, ifindex, ct state/status, fib address type.
  static Value u32(uint32_t v);
  /// An interface name, zero-padded to IFNAMSIZ (16) bytes; longer names are cut.
  static Value ifname(std::string_view name);

  size_t size() const noexcept { return len_; }
  bool empty() const noexcept { return len_ == 0; }
  const uint8_t* data() const noexcept { return b_.data(); }
  uint8_t* data() noexcept { return b_.data(); }

  /// Reads the value back; callers know the type.
  uint8_t as_u8() const noexcept { return b_[0]; }
  uint16_t as_port() const noexcept { return static_cast<uint16_t>(b_[0] << 8 | b_[1]); }
  uint32_t as_u32() const noexcept;
  IpAddr as_addr() const;
  std::string as_ifname() const;

  friend auto operator<=>(const Value&, const Value&) = default;
  friend bool operator==(const Value&, const Value&) = default;

 private:
  std::array<uint8_t, 16> b_{};
  uint8_t len_ = 0;
};

/// Protocol numbers and flag bits the vocabulary uses.
namespace proto {
inline constexpr uint8_t kIcmp = 1, kTcp = 6, kUdp = 17, kIcmpv6 = 58, kSctp = 132;
inline constexpr uint8_t kIpv4 = 2, kIpv6 = 10;  // NFPROTO_*, for Sel::kNfproto
}  // namespace proto
namespace ct {
inline constexpr uint32_t kInvalid = 1, kEstablished = 2, kRelated = 4, kNew = 8, kUntracked = 64;
inline constexpr uint32_t kStatusSnat = 0x10, kStatusDnat = 0x20;  // IPS_SRC_NAT, IPS_DST_NAT
}  // namespace ct
namespace fib {
inline constexpr uint32_t kUnicast = 1, kLocal = 2, kBroadcast = 3, kMulticast = 5;  // RTN_*
}  // namespace fib

/// A set key or map value in the kernel's register layout: one value as is, or a concatenation
/// with each field padded to 4 bytes. At most 64 bytes (NFT_DATA_VALUE_MAXLEN).
class Key {
 public:
  static constexpr size_t kMax = 64;
  Key() = default;
  /// Appends `v` at the next 4-byte boundary; throws Error(kInternal) past kMax.
  void append(const Value& v);
  /// Pads the length to a multiple of 4 (the end of a concatenation).
  void pad();
  /// The `len` bytes at `offset`.
  Value field(size_t offset, size_t len) const;

  size_t size() const noexcept { return len_; }
  bool empty() const noexcept { return len_ == 0; }
  const uint8_t* data() const noexcept { return b_.data(); }
  uint8_t* data() noexcept { return b_.data(); }
  /// Raw assignment (read-back); throws Error(kInternal) when n > kMax.
  void assign(const void* data, size_t n);

  /// Byte-wise over the used bytes (big-endian fields sort numerically), then by length.
  friend std::strong_ordering operator<=>(const Key& a, const Key& b) noexcept;
  friend bool operator==(const Key& a, const Key& b) noexcept {
    return a.len_ == b.len_ && std::memcmp(a.b_.data(), b.b_.data(), a.len_) == 0;
  }

 private:
  std::array<uint8_t, kMax> b_{};
  uint8_t len_ = 0;
};

// ---- Verdicts, sets and elements ---------------------------------------------------------------

enum class VerdictKind : uint8_t { kAccept, kDrop, kReturn, kJump, kGoto, kContinue };

struct Verdict {
  VerdictKind kind = VerdictKind::kAccept;
  std::string chain;  ///< jump and goto only
  friend auto operator<=>(const Verdict&, const Verdict&) = default;
  friend bool operator==(const Verdict&, const Verdict&) = default;
};
inline Verdict accept() {
  return {VerdictKind::kAccept, {}};
}
inline Verdict drop() {
  return {VerdictKind::kDrop, {}};
}
inline Verdict ret() {
  return {VerdictKind::kReturn, {}};
}
inline Verdict jump(std::string chain) {
  return {VerdictKind::kJump, std::move(chain)};
}
inline Verdict goto_(std::string chain) {
  return {VerdictKind::kGoto, std::move(chain)};
}

/// One element of a set or map. For interval sets each key field may be a range: `key` holds
/// the lower bounds and `key_end` the (inclusive) upper bounds; `key_end == key` when every field
/// is a single value. Build elements with element() below.
struct Element {
  Key key;
  Key key_end;
  Key data;         ///< map value for typed maps (packed like the key); empty otherwise
  Verdict verdict;  ///< verdict maps only
  std::string comment;
  friend bool operator==(const Element&, const Element&) = default;
};

/// One key field of an element under construction: a single value or an inclusive range.
struct Field {
  Value lo, hi;
  Field(const Value& v) : lo(v), hi(v) {}  // NOLINT: implicit on purpose
  Field(const Value& l, const Value& h) : lo(l), hi(h) {}
  Field(const IpAddr& a) : Field(Value::addr(a)) {}  // NOLINT
  /// Every address of the prefix.
  Field(const Prefix& p) : lo(Value::addr(p.first())), hi(Value::addr(p.last())) {}  // NOLINT
};
inline Field port_range(uint16_t lo, uint16_t hi) {
  return {Value::port(lo), Value::port(hi)};
}

/// An element of a set: the key fields in key-type order.
Element element(std::span<const Field> key);
Element element(std::initializer_list<Field> key);
/// An element of a verdict map.
Element element(std::initializer_list<Field> key, Verdict v);
/// An element of a typed map (`data` in data-type order, e.g. {addr, port}).
Element element(std::initializer_list<Field> key, std::initializer_list<Value> data);

/// NFTA_SET_GC_INTERVAL (ms, the largest the kernel takes: ~49 days) of every non-constant
/// interval set knit creates, which then also carries NFT_SET_TIMEOUT (needed to give a gc
/// interval; no element has a timeout). lower_set adds both, lift_set takes them off again.
inline constexpr uint32_t kNoGcInterval = 0xffffffffu;

struct Set {
  std::string name;
  std::vector<Type> key;   ///< one type, or several for a concatenation (a . b . c)
  std::vector<Type> data;  ///< empty: a set; {kVerdict}: a verdict map; else a typed map
  bool interval = false;   ///< elements may be ranges (CIDRs, port ranges)
  bool constant = false;   ///< elements are fixed at creation (changes recreate the set)
  std::vector<Element> elements;

  bool is_map() const noexcept { return !data.empty(); }
  bool is_vmap() const noexcept { return data.size() == 1 && data[0] == Type::kVerdict; }
  bool is_concat() const noexcept { return key.size() > 1; }
  /// Sizes in bytes of a key and a map value (NFTA_SET_KEY_LEN, NFTA_SET_DATA_LEN): a single
  /// type's own size, or the padded fields of a concatenation.
  size_t key_size() const;
  size_t data_size() const;
  /// Same name, key, data and flags: the kernel object can be kept and its elements diffed.
  bool same_type(const Set& o) const;
  friend bool operator==(const Set&, const Set&) = default;
};

// ---- Rules -------------------------------------------------------------------------------------

/// What a match or a set key reads from the packet or its metadata.
enum class Sel : uint8_t {
  kIpSaddr,
  kIpDaddr,
  kIp6Saddr,
  kIp6Daddr,
  kThSport,  ///< transport header bytes 0-1 (any protocol with ports)
  kThDport,  ///< transport header bytes 2-3
  kL4proto,  ///< meta l4proto
  kNfproto,  ///< meta nfproto
  kIifname,
  kOifname,
  kIif,
  kOif,
  kSkuid,
  kMark,  ///< meta mark
  kCtState,
  kCtMark,
  kCtStatus,
  kFibSaddrType,
  kFibDaddrType,
  kIcmpType,
  kIcmpv6Type,
};

/// The field type a selector yields.
Type sel_type(Sel s);
/// nft syntax of the selector ("ip saddr", "meta l4proto", "fib daddr type", ...).
std::string_view sel_name(Sel s);

enum class CmpOp : uint8_t { kEq, kNe };

/// `sel [& mask] ==/!= value`. A mask covering a prefix of an address is a CIDR match; on a
/// bitmask type (ct state) `mask=bits, op=kNe, value=0` is nft's "ct state a,b" (any bit set).
struct Cmp {
  Sel sel;
  CmpOp op = CmpOp::kEq;
  Value value;
  std::optional<Value> mask;
  friend bool operator==(const Cmp&, const Cmp&) = default;
};
/// `sel lo-hi` / `sel != lo-hi`.
struct Range {
  Sel sel;
  CmpOp op = CmpOp::kEq;
  Value lo, hi;
  friend bool operator==(const Range&, const Range&) = default;
};
/// `key @set` / `key != @set`, key a concatenation of selectors.
struct Lookup {
  std::vector<Sel> key;
  std::string set;
  bool negate = false;
  friend bool operator==(const Lookup&, const Lookup&) = default;
};
/// `key vmap @map`.
struct Vmap {
  std::vector<Sel> key;
  std::string map;
  friend bool operator==(const Vmap&, const Vmap&) = default;
};
/// Anonymous counter (`counter`); its packet counts are not part of the model.
struct Counter {
  friend bool operator==(const Counter&, const Counter&) = default;
};
/// `counter name "x"`: a reference to a named counter object of the table.
struct CounterRef {
  std::string name;
  friend bool operator==(const CounterRef&, const CounterRef&) = default;
};
enum class MarkTarget : uint8_t { kMeta, kCt };
/// `meta mark set v` / `ct mark set v`.
struct SetMark {
  MarkTarget target = MarkTarget::kMeta;
  uint32_t value = 0;
  friend bool operator==(const SetMark&, const SetMark&) = default;
};
/// `dnat ip to key map @map`: the map's data is address . port.
struct DnatMap {
  Family family = Family::kV4;
  std::vector<Sel> key;
  std::string map;
  friend bool operator==(const DnatMap&, const DnatMap&) = default;
};
enum class NatType : uint8_t { kSnat, kDnat };
/// `snat/dnat ip to addr[:port]` (family from the address).
struct Nat {
  NatType type = NatType::kDnat;
  IpAddr addr;
  std::optional<uint16_t> port;
  friend bool operator==(const Nat&, const Nat&) = default;
};
struct Masquerade {
  bool random = false;
  bool fully_random = false;
  bool persistent = false;
  friend bool operator==(const Masquerade&, const Masquerade&) = default;
};
/// The kernel's log level when none is given (warn).
inline constexpr uint8_t kLogLevelDefault = 4;
/// `log [prefix "p"] [group n] [level l]`; level is syslog 0-7 (unset: kLogLevelDefault).
struct Log {
  std::string prefix;
  std::optional<uint16_t> group;
  std::optional<uint8_t> level;
  friend bool operator==(const Log&, const Log&) = default;
};
struct Notrack {
  friend bool operator==(const Notrack&, const Notrack&) = default;
};
enum class RejectKind : uint8_t {
  kPortUnreachable,  ///< plain `reject`
  kAdminProhibited,
  kHostUnreachable,
  kNoRoute,
  kTcpReset,
};
struct Reject {
  RejectKind kind = RejectKind::kPortUnreachable;
  friend bool operator==(const Reject&, const Reject&) = default;
};
/// Kernel expressions the lifter did not recognise, in libnftnl's text form. Never lowers.
struct Raw {
  std::string text;
  friend bool operator==(const Raw&, const Raw&) = default;
};

using Stmt = std::variant<Cmp, Range, Lookup, Vmap, Verdict, Counter, CounterRef, SetMark, DnatMap,
                          Nat, Masquerade, Log, Notrack, Reject, Raw>;

/// The name of the set or map statement `s` looks up (Lookup, Vmap, DnatMap), or nullptr.
const std::string* set_named(const Stmt& s);
std::string* set_named(Stmt& s);

struct Rule {
  std::vector<Stmt> stmts;
  std::string comment;
  friend bool operator==(const Rule&, const Rule&) = default;
};

/// `sel == v`.
inline Cmp match(Sel s, const Value& v) {
  return Cmp{s, CmpOp::kEq, v, std::nullopt};
}
/// `sel != v`.
inline Cmp match_ne(Sel s, const Value& v) {
  return Cmp{s, CmpOp::kNe, v, std::nullopt};
}
/// `sel addr/len` (or `!=`) for an address selector; a host prefix is a plain comparison.
Cmp match_prefix(Sel s, const Prefix& p, CmpOp op = CmpOp::kEq);
/// `ct state a,b`: any of the bits set. Likewise `ct status dnat`.
Cmp match_any(Sel s, uint32_t bits);

/// The rule as the kernel gives it back (nft does the same): a `meta nfproto` or `meta l4proto`
/// equality that a later selector implies (ip saddr needs ipv4 in an inet table, icmpv6 type
/// needs l4proto ipv6-icmp, reject with tcp reset needs tcp) is dropped, because lowering adds
/// it back. A log level equal to the default is dropped too. Plans and renderings compare
/// canonical rules.
Rule canonical(const Rule& r, TableFamily f);

// ---- Chains and the ruleset --------------------------------------------------------------------

enum class Hook : uint8_t { kPrerouting, kInput, kForward, kOutput, kPostrouting };  // NF_INET_*
enum class ChainType : uint8_t { kFilter, kNat };
enum class Policy : uint8_t { kAccept, kDrop };

/// Standard priorities (nft's names).
namespace prio {
inline constexpr int32_t kRaw = -300, kMangle = -150, kDstnat = -100, kFilter = 0, kSecurity = 50,
                         kSrcnat = 100;
}

struct BaseChain {
  ChainType type = ChainType::kFilter;
  Hook hook = Hook::kInput;
  int32_t priority = 0;
  Policy policy = Policy::kAccept;
  friend bool operator==(const BaseChain&, const BaseChain&) = default;
};

struct Chain {
  std::string name;
  std::optional<BaseChain> base;  ///< set for base chains (attached to a hook)
  std::vector<Rule> rules;
  friend bool operator==(const Chain&, const Chain&) = default;
};

/// A named counter object (`counter name { }`), referenced by CounterRef.
struct NamedCounter {
  std::string name;
  friend bool operator==(const NamedCounter&, const NamedCounter&) = default;
};

/// One table and everything in it.
struct Ruleset {
  Table table;
  std::vector<NamedCounter> counters;
  std::vector<Set> sets;
  std::vector<Chain> chains;

  const Set* find_set(std::string_view name) const;
  const Chain* find_chain(std::string_view name) const;
  /// Sorts counters, sets and chains by name (their order carries no meaning).
  void sort();
  friend bool operator==(const Ruleset&, const Ruleset&) = default;
};

}  // namespace knit::nft
