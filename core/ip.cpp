#include "core/ip.hpp"

#include <arpa/inet.h>

#include <cstring>

#include "core/str.hpp"

namespace knit {

IpAddr IpAddr::v4(uint32_t host_order) {
  IpAddr a;
  a.family_ = Family::kV4;
  uint32_t be = htonl(host_order);
  std::memcpy(a.bytes_.data(), &be, 4);
  return a;
}

IpAddr IpAddr::from_bytes(Family f, const void* bytes) {
  IpAddr a;
  a.family_ = f;
  std::memcpy(a.bytes_.data(), bytes, f == Family::kV4 ? 4 : 16);
  return a;
}

IpAddr IpAddr::from_u128(Family f, unsigned __int128 v) {
  IpAddr a;
  a.family_ = f;
  size_t n = f == Family::kV4 ? 4 : 16;
  for (size_t i = 0; i < n; ++i) a.bytes_[n - 1 - i] = static_cast<uint8_t>(v >> (8 * i));
  return a;
}

std::optional<IpAddr> IpAddr::parse(std::string_view s) {
  char buf[INET6_ADDRSTRLEN + 1];
  // inet_pton reads a C string: "10.0.0.1\0junk" would be 10.0.0.1.
  if (s.empty() || s.size() >= sizeof buf || s.find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  IpAddr a;
  if (s.find(':') == std::string_view::npos) {
    if (inet_pton(AF_INET, buf, a.bytes_.data()) != 1) return std::nullopt;
    a.family_ = Family::kV4;
  } else {
    if (inet_pton(AF_INET6, buf, a.bytes_.data()) != 1) return std::nullopt;
    a.family_ = Family::kV6;
  }
  return a;
}

unsigned __int128 IpAddr::to_u128() const noexcept {
  unsigned __int128 v = 0;
  for (size_t i = 0; i < size(); ++i) v = (v << 8) | bytes_[i];
  return v;
}

std::string IpAddr::to_string() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(is_v4() ? AF_INET : AF_INET6, bytes_.data(), buf, sizeof buf);
  return buf;
}

bool IpAddr::is_link_local() const noexcept {
  if (is_v4()) return bytes_[0] == 169 && bytes_[1] == 254;
  return bytes_[0] == 0xfe && (bytes_[1] & 0xc0) == 0x80;
}

bool IpAddr::is_unspecified() const noexcept { return to_u128() == 0; }

std::optional<Prefix> Prefix::parse(std::string_view s) {
  auto slash = s.find('/');
  auto addr = IpAddr::parse(s.substr(0, slash));
  if (!addr) return std::nullopt;
  if (slash == std::string_view::npos) return Prefix::host(*addr);
  uint64_t len = 0;
  if (!parse_uint(s.substr(slash + 1), len) || len > addr->bits()) return std::nullopt;
  return Prefix(*addr, static_cast<uint8_t>(len));
}

namespace {
unsigned __int128 host_mask(unsigned bits, unsigned len) {
  unsigned host = bits - len;
  if (host == 0) return 0;
  if (host >= 128) return ~static_cast<unsigned __int128>(0);
  return (static_cast<unsigned __int128>(1) << host) - 1;
}
}  // namespace

Prefix Prefix::network() const {
  auto v = addr_.to_u128() & ~host_mask(addr_.bits(), len_);
  return Prefix(IpAddr::from_u128(addr_.family(), v), len_);
}

IpAddr Prefix::last() const {
  auto v = addr_.to_u128() | host_mask(addr_.bits(), len_);
  return IpAddr::from_u128(addr_.family(), v);
}

bool Prefix::contains(const IpAddr& a) const {
  if (a.family() != addr_.family()) return false;
  auto mask = ~host_mask(addr_.bits(), len_);
  return (a.to_u128() & mask) == (addr_.to_u128() & mask);
}

std::string Prefix::to_string() const { return str(addr_.to_string(), '/', int{len_}); }

std::optional<Mac> Mac::parse(std::string_view s) {
  Mac m;
  auto parts = split(s, ':');
  if (parts.size() != 6) return std::nullopt;
  for (size_t i = 0; i < 6; ++i) {
    auto p = parts[i];
    if (p.size() != 2) return std::nullopt;
    unsigned v = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + 2, v, 16);
    if (ec != std::errc() || end != p.data() + 2) return std::nullopt;
    m.bytes[i] = static_cast<uint8_t>(v);
  }
  return m;
}

std::string Mac::to_string() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(17);
  for (size_t i = 0; i < 6; ++i) {
    if (i) out.push_back(':');
    out.push_back(kHex[bytes[i] >> 4]);
    out.push_back(kHex[bytes[i] & 15]);
  }
  return out;
}

IpAddr eui64_link_local(const Mac& mac) {
  uint8_t b[16] = {0xfe, 0x80};
  b[8] = mac.bytes[0] ^ 0x02;
  b[9] = mac.bytes[1];
  b[10] = mac.bytes[2];
  b[11] = 0xff;
  b[12] = 0xfe;
  b[13] = mac.bytes[3];
  b[14] = mac.bytes[4];
  b[15] = mac.bytes[5];
  return IpAddr::from_bytes(Family::kV6, b);
}

}  // namespace knit
