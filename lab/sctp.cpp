#include "lab/sctp.hpp"

#include <array>
#include <cstring>

namespace knit::lab::sctp {

namespace {

constexpr std::array<uint32_t, 256> make_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr auto kTable = make_table();

constexpr size_t kCommonHeader = 12;
constexpr size_t kInitChunk = 20;  // type, flags, length, tag, a_rwnd, streams, TSN

void put16(std::vector<uint8_t>& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}
void put32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}
uint16_t get16(std::span<const uint8_t> b, size_t at) {
  return static_cast<uint16_t>(b[at] << 8 | b[at + 1]);
}
uint32_t get32(std::span<const uint8_t> b, size_t at) {
  return uint32_t{b[at]} << 24 | uint32_t{b[at + 1]} << 16 | uint32_t{b[at + 2]} << 8 | b[at + 3];
}

/// Fills the checksum field: CRC32c over the packet with the field zero, least significant
/// byte first (Linux: cpu_to_le32 of the CRC).
void seal(std::vector<uint8_t>& p) {
  std::memset(p.data() + 8, 0, 4);
  uint32_t crc = crc32c(p);
  for (int i = 0; i < 4; ++i) p[8 + i] = static_cast<uint8_t>(crc >> (8 * i));
}

//   common header: src port, dst port, verification tag, checksum
//   chunk: type, flags, length, initiate tag, a_rwnd, outbound streams, inbound streams,
//          initial TSN, [parameters]
std::vector<uint8_t> init_like(uint8_t type, uint16_t src, uint16_t dst, uint32_t vtag,
                               uint32_t initiate_tag, uint32_t tsn, size_t params) {
  std::vector<uint8_t> p(kCommonHeader + kInitChunk + params, 0);
  put16(p, 0, src);
  put16(p, 2, dst);
  put32(p, 4, vtag);
  size_t c = kCommonHeader;
  p[c] = type;
  put16(p, c + 2, static_cast<uint16_t>(kInitChunk + params));
  put32(p, c + 4, initiate_tag);
  put32(p, c + 8, 65536);  // a_rwnd
  put16(p, c + 12, 1);     // outbound streams
  put16(p, c + 14, 1);     // inbound streams
  put32(p, c + 16, tsn);
  return p;
}

}  // namespace

uint32_t crc32c(std::span<const uint8_t> data) {
  uint32_t c = 0xffffffffu;
  for (uint8_t b : data) c = kTable[(c ^ b) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

std::vector<uint8_t> build_init(uint16_t src_port, uint16_t dst_port, uint32_t initiate_tag,
                                uint32_t initial_tsn) {
  auto p = init_like(kInit, src_port, dst_port, 0, initiate_tag, initial_tsn, 0);
  seal(p);
  return p;
}

std::vector<uint8_t> build_init_ack(uint16_t own_port, uint16_t peer_port, uint32_t peer_tag,
                                    uint32_t own_tag, uint32_t initial_tsn) {
  // The mandatory State Cookie parameter (type 7): opaque to the peer; ours echoes the tags.
  constexpr size_t kCookie = 4 + 8;
  auto p = init_like(kInitAck, own_port, peer_port, peer_tag, own_tag, initial_tsn, kCookie);
  size_t at = kCommonHeader + kInitChunk;
  put16(p, at, 7);
  put16(p, at + 2, kCookie);
  put32(p, at + 4, peer_tag);
  put32(p, at + 8, own_tag);
  seal(p);
  return p;
}

std::optional<Packet> parse(std::span<const uint8_t> b) {
  if (b.size() < kCommonHeader + 4) return std::nullopt;
  Packet p;
  p.src_port = get16(b, 0);
  p.dst_port = get16(b, 2);
  p.vtag = get32(b, 4);
  uint32_t sum =
      uint32_t{b[8]} | uint32_t{b[9]} << 8 | uint32_t{b[10]} << 16 | uint32_t{b[11]} << 24;
  std::vector<uint8_t> copy(b.begin(), b.end());
  std::memset(copy.data() + 8, 0, 4);
  p.checksum_ok = crc32c(copy) == sum;
  p.chunk_type = b[kCommonHeader];
  if (p.chunk_type == kInit || p.chunk_type == kInitAck) {
    if (b.size() < kCommonHeader + kInitChunk) return std::nullopt;
    p.initiate_tag = get32(b, kCommonHeader + 4);
  }
  return p;
}

std::span<const uint8_t> strip_ipv4(std::span<const uint8_t> b) {
  if (b.size() < 20 || (b[0] >> 4) != 4 || b[9] != kProtocol) return {};
  size_t ihl = size_t{b[0] & 0x0fu} * 4;
  size_t total = get16(b, 2);
  if (ihl < 20 || total < ihl || total > b.size()) return {};
  return b.subspan(ihl, total - ihl);
}

}  // namespace knit::lab::sctp
