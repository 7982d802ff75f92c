// core/ip.hpp: IPv4/IPv6 addresses and prefixes as plain values.
//
// An IpAddr stores either family in 16 bytes (IPv4 in the first 4). Arithmetic uses unsigned
// __int128 so that IPAM can walk IPv6 ranges the same way as IPv4 ones.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace knit {

enum class Family : uint8_t { kV4 = 4, kV6 = 6 };

class IpAddr {
 public:
  IpAddr() = default;
  static IpAddr v4(uint32_t host_order);
  static IpAddr from_bytes(Family f, const void* bytes);
  static IpAddr from_u128(Family f, unsigned __int128 v);

  /// Parses dotted-quad or RFC 4291 text; nullopt on anything else (no prefix, no zone).
  static std::optional<IpAddr> parse(std::string_view s);

  Family family() const noexcept { return family_; }
  bool is_v4() const noexcept { return family_ == Family::kV4; }
  /// 4 or 16.
  size_t size() const noexcept { return is_v4() ? 4 : 16; }
  const uint8_t* data() const noexcept { return bytes_.data(); }
  /// Address as a big number: 32 significant bits for IPv4, 128 for IPv6.
  unsigned __int128 to_u128() const noexcept;
  /// Address bits in the family's width.
  unsigned bits() const noexcept { return is_v4() ? 32 : 128; }
  std::string to_string() const;

  bool is_link_local() const noexcept;
  bool is_unspecified() const noexcept;

  /// Family first, then the bytes in network order (the defaulted form called memcmp for
  /// every comparison; sets of 10k addresses are compared and diffed on every pod event).
  friend std::strong_ordering operator<=>(const IpAddr& a, const IpAddr& b) noexcept {
    if (a.family_ != b.family_) return a.family_ <=> b.family_;
    if (auto c = a.half(0) <=> b.half(0); c != 0) return c;
    return a.half(1) <=> b.half(1);
  }
  friend bool operator==(const IpAddr& a, const IpAddr& b) noexcept {
    return a.family_ == b.family_ && a.half(0) == b.half(0) && a.half(1) == b.half(1);
  }

 private:
  /// Bytes [8i, 8i+8) as a number with the same order as the bytes.
  uint64_t half(int i) const noexcept {
    uint64_t v;
    std::memcpy(&v, bytes_.data() + 8 * i, sizeof v);
    return __builtin_bswap64(v);
  }

  Family family_ = Family::kV4;
  std::array<uint8_t, 16> bytes_{};
};

class Prefix {
 public:
  Prefix() = default;
  Prefix(IpAddr addr, uint8_t len) : addr_(addr), len_(len) {}

  /// Parses "addr/len"; a bare address becomes a host prefix. nullopt on junk or len too long.
  static std::optional<Prefix> parse(std::string_view s);
  /// Host prefix (/32 or /128) of `a`.
  static Prefix host(IpAddr a) { return Prefix(a, static_cast<uint8_t>(a.bits())); }

  const IpAddr& addr() const noexcept { return addr_; }
  uint8_t len() const noexcept { return len_; }
  Family family() const noexcept { return addr_.family(); }
  /// The prefix with host bits cleared.
  Prefix network() const;
  /// True when the host bits of addr() are zero.
  bool is_network() const { return network().addr_ == addr_; }
  /// First and last address covered.
  IpAddr first() const { return network().addr_; }
  IpAddr last() const;
  bool contains(const IpAddr& a) const;
  bool contains(const Prefix& p) const { return p.len_ >= len_ && contains(p.addr_); }
  std::string to_string() const;

  friend auto operator<=>(const Prefix&, const Prefix&) = default;
  friend bool operator==(const Prefix&, const Prefix&) = default;

 private:
  IpAddr addr_;
  uint8_t len_ = 0;
};

/// A 6-byte Ethernet address.
struct Mac {
  std::array<uint8_t, 6> bytes{};
  static std::optional<Mac> parse(std::string_view s);
  std::string to_string() const;
  friend auto operator<=>(const Mac&, const Mac&) = default;
  friend bool operator==(const Mac&, const Mac&) = default;
};

/// The EUI-64 link-local address (fe80::/64) the kernel derives from `mac`.
IpAddr eui64_link_local(const Mac& mac);

}  // namespace knit
