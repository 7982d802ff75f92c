// Sets and elements: the NEWSET / NEWSETELEM bytes checked against nft's (`nft --debug=netlink`
// and `--debug=mnl` on nftables 1.0.6) by parsing them with libnftnl, and lifted back.
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include <boost/test/unit_test.hpp>
#include <cstring>

#include "core/error.hpp"
#include "core/str.hpp"
#include "nft/lift.hpp"
#include "nft/lower.hpp"
#include "nft/render.hpp"
#include "test/unit/nft_sample.hpp"

using namespace knit::nft;
using knit::test::ip;
using knit::test::net;

namespace {

const Table kTable{TableFamily::kInet, "knit"};

/// The messages of a sealed batch, BEGIN and END included.
std::vector<const nlmsghdr*> messages(Batch& b) {
  std::vector<const nlmsghdr*> out;
  for (const auto& v : b.seal(1000)) {
    auto* nlh = static_cast<const nlmsghdr*>(v.iov_base);
    int len = static_cast<int>(v.iov_len);
    for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) out.push_back(nlh);
  }
  return out;
}

uint8_t msg_type(const nlmsghdr* n) {
  return static_cast<uint8_t>(n->nlmsg_type & 0xff);
}

/// Kernel elements of all NEWSETELEM messages, printed like `nft --debug=netlink`.
std::string kernel_elements(Batch& b, const Set& s) {
  std::string out;
  for (const auto* m : messages(b)) {
    if (msg_type(m) != NFT_MSG_NEWSETELEM) continue;
    auto parsed = new_set();
    BOOST_REQUIRE(nftnl_set_elems_nlmsg_parse(m, parsed.get()) >= 0);
    auto it = new_set_elems_iter(parsed.get());
    for (auto* e = nftnl_set_elems_iter_next(it.get()); e;
         e = nftnl_set_elems_iter_next(it.get())) {
      uint32_t len = 0;
      auto hex = [](const void* p, uint32_t n) { return knit::hex(p, n); };
      const void* k = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
      out += hex(k, len);
      if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_KEY_END)) {
        const void* ke = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY_END, &len);
        out += "-" + hex(ke, len);
      }
      if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_FLAGS) &&
          (nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_FLAGS) & NFT_SET_ELEM_INTERVAL_END)) {
        out += " end";
      }
      if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_CHAIN)) {
        out += knit::str(" : ", nftnl_set_elem_get_str(e, NFTNL_SET_ELEM_CHAIN));
      }
      if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_DATA)) {
        const void* d = nftnl_set_elem_get(e, NFTNL_SET_ELEM_DATA, &len);
        out += " : " + hex(d, len);
      }
      out += '\n';
    }
  }
  (void)s;
  return out;
}

/// Lowers `s` as a new set, parses the elements back and lifts them.
std::vector<Element> lift_back(const Set& s) {
  Plan p{kTable, {AddSet{s}}};
  Batch b = lower(p);
  ElementLifter lifter(s);
  for (const auto* m : messages(b)) {
    if (msg_type(m) != NFT_MSG_NEWSETELEM) continue;
    auto parsed = new_set();
    BOOST_REQUIRE(nftnl_set_elems_nlmsg_parse(m, parsed.get()) >= 0);
    lifter.add(parsed.get());
  }
  return lifter.finish();
}

std::vector<Element> sorted(std::vector<Element> v) {
  std::sort(v.begin(), v.end(), [](const Element& a, const Element& b) {
    return a.key != b.key ? a.key < b.key : a.key_end < b.key_end;
  });
  return v;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(nft_set)

BOOST_AUTO_TEST_CASE(concatenated_interval_set_uses_pipapo_layout) {
  Set s{"pol", {Type::kIpv4Addr, Type::kInetProto, Type::kInetService}, {}, true, false, {}};
  s.elements = {element({net("10.1.0.0/16"), Value::u8(proto::kTcp), port_range(80, 90)}),
                element({ip("10.2.0.1"), Value::u8(proto::kUdp), Value::port(53)})};
  auto o = lower_set(kTable, s, 1);
  // The timeout flag only carries the gc interval that turns the backend's element walk off.
  BOOST_TEST(nftnl_set_get_u32(o.get(), NFTNL_SET_FLAGS) ==
             (NFT_SET_INTERVAL | NFT_SET_CONCAT | NFT_SET_TIMEOUT));
  BOOST_TEST(nftnl_set_get_u32(o.get(), NFTNL_SET_GC_INTERVAL) == kNoGcInterval);
  // ipv4_addr(7) . inet_proto(12) . inet_service(13), 6 bits each: what nft sends.
  BOOST_TEST(nftnl_set_get_u32(o.get(), NFTNL_SET_KEY_TYPE) == 0x730du);
  BOOST_TEST(nftnl_set_get_u32(o.get(), NFTNL_SET_KEY_LEN) == 12u);
  uint32_t n = 0;
  auto* lens = static_cast<const uint8_t*>(nftnl_set_get_data(o.get(), NFTNL_SET_DESC_CONCAT, &n));
  BOOST_REQUIRE_EQUAL(n, 3u);
  BOOST_TEST(lens[0] == 4);
  BOOST_TEST(lens[1] == 1);
  BOOST_TEST(lens[2] == 2);

  Batch b = lower(Plan{kTable, {AddSet{s}}});
  // Byte for byte what nft sends for `10.1.0.0/16 . tcp . 80-90, 10.2.0.1 . udp . 53`.
  BOOST_TEST(kernel_elements(b, s) ==
             "0a0100000600000000500000-0a01ffff06000000005a0000\n"
             "0a0200011100000000350000-0a0200011100000000350000\n");
}

BOOST_AUTO_TEST_CASE(plain_interval_set_sends_start_and_end_markers) {
  Set s{"cidrs", {Type::kIpv4Addr}, {}, true, false, {}};
  s.elements = {element({net("10.0.0.0/8")}), element({net("172.16.0.1/32")}),
                element({net("192.168.1.0/24")})};
  Batch b = lower(Plan{kTable, {AddSet{s}}});
  BOOST_TEST(kernel_elements(b, s) ==
             "0a000000\n0b000000 end\nac100001\nac100002 end\nc0a80100\nc0a80200 end\n");
  // A range to the end of the address space has no end marker.
  Set all{"all", {Type::kIpv4Addr}, {}, true, false, {element({net("0.0.0.0/0")})}};
  Batch b2 = lower(Plan{kTable, {AddSet{all}}});
  BOOST_TEST(kernel_elements(b2, all) == "00000000\n");
}

BOOST_AUTO_TEST_CASE(maps_carry_verdicts_and_typed_data) {
  Set vm{"vm",
         {Type::kIpv4Addr},
         {Type::kVerdict},
         false,
         false,
         {element({ip("10.0.0.3")}, jump("ns_a"))}};
  auto o = lower_set(kTable, vm, 1);
  BOOST_TEST(nftnl_set_get_u32(o.get(), NFTNL_SET_FLAGS) == uint32_t{NFT_SET_MAP});
  BOOST_TEST(nftnl_set_get_u32(o.get(), NFTNL_SET_DATA_TYPE) == NFT_DATA_VERDICT);
  Batch b = lower(Plan{kTable, {AddSet{vm}}});
  BOOST_TEST(kernel_elements(b, vm) == "0a000003 : ns_a\n");

  Set hp{"hp",
         {Type::kIpv4Addr, Type::kInetProto, Type::kInetService},
         {Type::kIpv4Addr, Type::kInetService},
         false,
         false,
         {element({ip("192.168.0.1"), Value::u8(6), Value::port(8080)},
                  {Value::addr(ip("10.1.0.3")), Value::port(80)})}};
  auto h = lower_set(kTable, hp, 2);
  BOOST_TEST(nftnl_set_get_u32(h.get(), NFTNL_SET_DATA_TYPE) ==
             0x1cdu);  // ipv4_addr . inet_service
  BOOST_TEST(nftnl_set_get_u32(h.get(), NFTNL_SET_DATA_LEN) == 8u);
  BOOST_TEST(!nftnl_set_is_set(h.get(), NFTNL_SET_DESC_CONCAT));  // hash backend, as nft does
  Batch b2 = lower(Plan{kTable, {AddSet{hp}}});
  BOOST_TEST(kernel_elements(b2, hp) == "c0a80001060000001f900000 : 0a01000300500000\n");
}

BOOST_AUTO_TEST_CASE(single_field_keys_are_not_padded) {
  Set ports{"ports", {Type::kInetService}, {}, false, false, {element({Value::port(443)})}};
  BOOST_TEST(ports.key_size() == 2u);
  BOOST_TEST(ports.elements[0].key.size() == 2u);
  auto o = lower_set(kTable, ports, 1);
  BOOST_TEST(nftnl_set_get_u32(o.get(), NFTNL_SET_KEY_LEN) == 2u);
  Batch b = lower(Plan{kTable, {AddSet{ports}}});
  BOOST_TEST(kernel_elements(b, ports) == "01bb\n");
}

BOOST_AUTO_TEST_CASE(every_sample_set_lifts_back_unchanged) {
  for (const auto& s : knit::test::sample_ruleset().sets) {
    auto back = lift_back(s);
    BOOST_TEST((back == sorted(s.elements)), s.name);
  }
}

BOOST_AUTO_TEST_CASE(adjacent_and_open_ranges_lift_back) {
  Set s{"s", {Type::kIpv4Addr}, {}, true, false, {}};
  s.elements = {element({net("10.0.0.0/24")}), element({net("10.0.1.0/24")}),
                element({net("255.255.255.0/24")}), element({ip("0.0.0.0")})};
  BOOST_TEST((lift_back(s) == sorted(s.elements)));
  Set p{"p",   {Type::kInetService},
        {},    true,
        false, {element({port_range(1000, 2000)}), element({port_range(60000, 65535)})}};
  BOOST_TEST((lift_back(p) == sorted(p.elements)));
}

BOOST_AUTO_TEST_CASE(invalid_elements_are_refused) {
  Set plain{"p", {Type::kIpv4Addr}, {}, false, false, {element({net("10.0.0.0/8")})}};
  BOOST_CHECK_THROW(lower(Plan{kTable, {AddSet{plain}}}), knit::Error);  // range, no interval
  Set wrong{"w", {Type::kIpv4Addr}, {}, false, false, {element({ip("fd00::1")})}};
  BOOST_CHECK_THROW(lower(Plan{kTable, {AddSet{wrong}}}), knit::Error);  // 16 bytes for 4
  Set marks{"m", {Type::kMark}, {}, true, false, {element({Field(Value::u32(1), Value::u32(9))})}};
  BOOST_CHECK_THROW(lower(Plan{kTable, {AddSet{marks}}}), knit::Error);  // host-order range
}

BOOST_AUTO_TEST_CASE(large_element_lists_split_into_messages_under_64k) {
  Set s{"big", {Type::kIpv4Addr, Type::kInetProto, Type::kInetService}, {}, true, false, {}};
  for (uint32_t i = 0; i < 20000; ++i) {
    s.elements.push_back(
        element({knit::IpAddr::v4(0x0a000000 + i), Value::u8(6), port_range(80, 90)}));
  }
  Batch b = lower(Plan{kTable, {AddSet{s}}});
  BOOST_TEST(b.size() > 2u);
  size_t total = 0;
  for (size_t i = 1; i < b.size(); ++i) {
    total += b.entry(i).elem_offsets.size();
    BOOST_TEST(b.entry(i).first_elem + b.entry(i).elem_offsets.size() <= s.elements.size());
  }
  BOOST_TEST(total == s.elements.size());
  for (const auto* m : messages(b)) BOOST_TEST(m->nlmsg_len < 65536u + 4096u);
  BOOST_TEST((lift_back(s) == sorted(s.elements)));
}

BOOST_AUTO_TEST_SUITE_END()
