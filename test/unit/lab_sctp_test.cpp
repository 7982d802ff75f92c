// The SCTP packets the lab's prober and servers exchange (no kernel SCTP needed).
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <numeric>
#include <ostream>
#include <string>

#include "lab/sctp.hpp"

using namespace knit::lab;
namespace bdata = boost::unit_test::data;

namespace {

struct CrcCase {
  std::string name;
  std::vector<uint8_t> data;
  uint32_t crc;
};
std::ostream& operator<<(std::ostream& os, const CrcCase& c) {
  return os << c.name;
}

std::vector<uint8_t> bytes(std::string_view s) {
  return {s.begin(), s.end()};
}
std::vector<uint8_t> iota32(bool up) {
  std::vector<uint8_t> v(32);
  for (size_t i = 0; i < 32; ++i) v[i] = static_cast<uint8_t>(up ? i : 31 - i);
  return v;
}

// The check value of CRC-32C and the iSCSI test vectors of RFC 3720 appendix B.4 (given there
// as the bytes on the wire, least significant first).
const std::vector<CrcCase> kCrc = {
    {"check value", bytes("123456789"), 0xe3069283u},
    {"32 zero bytes", std::vector<uint8_t>(32, 0x00), 0x8a9136aau},
    {"32 0xff bytes", std::vector<uint8_t>(32, 0xff), 0x62a8ab43u},
    {"32 incrementing bytes", iota32(true), 0x46dd794eu},
    {"32 decrementing bytes", iota32(false), 0x113fdb5cu},
};

uint32_t be32(const std::vector<uint8_t>& p, size_t at) {
  return uint32_t{p[at]} << 24 | uint32_t{p[at + 1]} << 16 | uint32_t{p[at + 2]} << 8 | p[at + 3];
}
uint16_t be16(const std::vector<uint8_t>& p, size_t at) {
  return static_cast<uint16_t>(p[at] << 8 | p[at + 1]);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(lab_sctp)

BOOST_DATA_TEST_CASE(crc32c_matches_the_published_vectors, bdata::make(kCrc), c) {
  BOOST_TEST(sctp::crc32c(c.data) == c.crc);
}

BOOST_AUTO_TEST_CASE(init_has_tag_zero_the_initiate_tag_and_a_little_endian_crc) {
  auto p = sctp::build_init(40000, 80, 0xdeadbeef, 7);
  BOOST_REQUIRE(p.size() == 32u);
  BOOST_TEST(be16(p, 0) == 40000);
  BOOST_TEST(be16(p, 2) == 80);
  BOOST_TEST(be32(p, 4) == 0u);  // verification tag of an INIT
  BOOST_TEST(p[12] == sctp::kInit);
  BOOST_TEST(be16(p, 14) == 20);  // chunk length
  BOOST_TEST(be32(p, 16) == 0xdeadbeefu);
  BOOST_TEST(be32(p, 28) == 7u);  // initial TSN
  // The checksum field holds CRC32c of the packet with the field zeroed, LSB first (as Linux's
  // sctp_compute_cksum stores it).
  auto zeroed = p;
  std::fill(zeroed.begin() + 8, zeroed.begin() + 12, 0);
  uint32_t crc = sctp::crc32c(zeroed);
  BOOST_TEST(p[8] == (crc & 0xff));
  BOOST_TEST(p[11] == (crc >> 24));
  auto parsed = sctp::parse(p);
  BOOST_REQUIRE(parsed.has_value());
  BOOST_TEST(parsed->checksum_ok);
  BOOST_TEST(parsed->chunk_type == sctp::kInit);
  BOOST_TEST(parsed->initiate_tag == 0xdeadbeefu);
  BOOST_TEST(parsed->vtag == 0u);
}

BOOST_AUTO_TEST_CASE(init_ack_answers_with_the_peers_tag_and_a_state_cookie) {
  auto p = sctp::build_init_ack(80, 40000, 0xdeadbeef, 0x01020304, 9);
  auto parsed = sctp::parse(p);
  BOOST_REQUIRE(parsed.has_value());
  BOOST_TEST(parsed->checksum_ok);
  BOOST_TEST(parsed->src_port == 80);
  BOOST_TEST(parsed->dst_port == 40000);
  BOOST_TEST(parsed->vtag == 0xdeadbeefu);  // the INIT's initiate tag
  BOOST_TEST(parsed->chunk_type == sctp::kInitAck);
  BOOST_TEST(parsed->initiate_tag == 0x01020304u);
  BOOST_TEST(be16(p, 14) == p.size() - 12);  // chunk length covers the parameter
  BOOST_TEST(be16(p, 32) == 7);              // State Cookie
  BOOST_TEST(be16(p, 34) == p.size() - 32);
}

BOOST_AUTO_TEST_CASE(a_flipped_bit_fails_the_checksum_and_short_packets_do_not_parse) {
  auto p = sctp::build_init(1, 2, 3, 4);
  p[20] ^= 0x10;
  BOOST_TEST(!sctp::parse(p)->checksum_ok);
  std::vector<uint8_t> short_header(15, 0);
  BOOST_TEST(!sctp::parse(short_header).has_value());
  auto truncated = sctp::build_init(1, 2, 3, 4);
  truncated.resize(24);  // an INIT chunk cut short
  BOOST_TEST(!sctp::parse(truncated).has_value());
}

BOOST_AUTO_TEST_CASE(strip_ipv4_finds_the_sctp_packet_after_the_ip_header) {
  auto sctp_part = sctp::build_init(5, 6, 7, 8);
  std::vector<uint8_t> ip(24, 0);  // a header with one option word: IHL 6
  ip[0] = 0x46;
  ip[9] = sctp::kProtocol;
  size_t total = ip.size() + sctp_part.size();
  ip[2] = static_cast<uint8_t>(total >> 8);
  ip[3] = static_cast<uint8_t>(total);
  ip.insert(ip.end(), sctp_part.begin(), sctp_part.end());
  ip.push_back(0xee);  // trailing bytes beyond the IP total length are not SCTP
  auto inner = sctp::strip_ipv4(ip);
  BOOST_TEST(std::vector<uint8_t>(inner.begin(), inner.end()) == sctp_part);
  ip[9] = 6;  // TCP
  BOOST_TEST(sctp::strip_ipv4(ip).empty());
}

BOOST_AUTO_TEST_SUITE_END()
