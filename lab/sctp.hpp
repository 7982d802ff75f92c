// lab/sctp.hpp: just enough SCTP to probe a port without kernel SCTP support (pure).
//
// The kernels knit is tested on have no SCTP sockets, but nftables and conntrack parse SCTP
// headers, so a policy's SCTP port match is exercised by packets alone: the prober sends an INIT
// from a raw IPPROTO_SCTP socket and the served pod answers with an INIT-ACK, both built here.
// conntrack checks both things a real stack would get right: the CRC32c checksum (RFC 9260
// appendix A, stored least significant byte first like Linux's sctp_compute_cksum) and the
// verification tags (an INIT carries tag 0; the INIT-ACK carries the INIT's initiate tag), so a
// sloppy packet would be dropped as invalid and look like a policy denial.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace knit::lab::sctp {

inline constexpr int kProtocol = 132;  ///< IPPROTO_SCTP
inline constexpr uint8_t kInit = 1;
inline constexpr uint8_t kInitAck = 2;

/// CRC32c (Castagnoli) of `data`: reflected, initial value and final xor 0xffffffff.
/// crc32c("123456789") == 0xe3069283.
uint32_t crc32c(std::span<const uint8_t> data);

/// An SCTP packet with one INIT chunk (verification tag 0, no optional parameters).
std::vector<uint8_t> build_init(uint16_t src_port, uint16_t dst_port, uint32_t initiate_tag,
                                uint32_t initial_tsn);
/// The INIT-ACK answering an INIT from `peer_port` to `own_port` that carried `peer_tag`; it
/// carries `own_tag` and a small state cookie.
std::vector<uint8_t> build_init_ack(uint16_t own_port, uint16_t peer_port, uint32_t peer_tag,
                                    uint32_t own_tag, uint32_t initial_tsn);

/// The parts of a received packet the lab looks at: the common header and the first chunk.
struct Packet {
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  uint32_t vtag = 0;
  bool checksum_ok = false;
  uint8_t chunk_type = 0;
  uint32_t initiate_tag = 0;  ///< INIT and INIT-ACK only
};

/// Parses an SCTP packet (starting at the common header). nullopt when it is too short to hold
/// a header and a chunk, or an INIT/INIT-ACK chunk is truncated.
std::optional<Packet> parse(std::span<const uint8_t> bytes);

/// The SCTP part of an IPv4 packet as a raw AF_INET socket delivers it (IP header included);
/// empty when it is not a well-formed IPv4 SCTP packet.
std::span<const uint8_t> strip_ipv4(std::span<const uint8_t> bytes);

}  // namespace knit::lab::sctp
