// Batches: framing (BEGIN/END, ACK on every message, consecutive sequence numbers), paging, and
// the sequence number → object description table used for error messages.
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include <boost/test/unit_test.hpp>

#include "core/error.hpp"
#include "nft/lower.hpp"
#include "test/unit/nft_sample.hpp"

using namespace knit::nft;
using knit::test::ip;

namespace {

const Table kTable{TableFamily::kInet, "knit"};

std::vector<const nlmsghdr*> walk(const std::vector<iovec>& iov) {
  std::vector<const nlmsghdr*> out;
  for (const auto& v : iov) {
    auto* nlh = static_cast<const nlmsghdr*>(v.iov_base);
    int len = static_cast<int>(v.iov_len);
    for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) out.push_back(nlh);
    BOOST_TEST(len == 0);  // pages hold whole messages
  }
  return out;
}

Set big_set(size_t n) {
  Set s{"big", {Type::kIpv4Addr, Type::kInetProto, Type::kInetService}, {}, true, false, {}};
  for (uint32_t i = 0; i < n; ++i) {
    s.elements.push_back(
        element({knit::IpAddr::v4(0x0a000000 + i), Value::u8(6), port_range(80, 90)}));
  }
  return s;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(nft_batch)

BOOST_AUTO_TEST_CASE(empty_plan_gives_an_empty_batch) {
  Batch b = lower(Plan{kTable, {}});
  BOOST_TEST(b.empty());
}

BOOST_AUTO_TEST_CASE(framing_and_sequence_numbers) {
  auto rs = knit::test::sample_ruleset();
  Plan p = plan(std::nullopt, rs);
  Batch b = lower(p);
  auto msgs = walk(b.seal(5000));
  BOOST_REQUIRE_EQUAL(msgs.size(), b.size() + 2);
  BOOST_TEST(msgs.front()->nlmsg_type == NFNL_MSG_BATCH_BEGIN);
  BOOST_TEST(msgs.back()->nlmsg_type == NFNL_MSG_BATCH_END);
  auto* nfg = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(msgs.front()));
  BOOST_TEST(ntohs(nfg->res_id) == NFNL_SUBSYS_NFTABLES);
  for (size_t i = 0; i < msgs.size(); ++i) {
    BOOST_TEST(msgs[i]->nlmsg_seq == 5000 + i);
    if (i == 0 || i + 1 == msgs.size()) continue;
    BOOST_TEST((msgs[i]->nlmsg_flags & NLM_F_ACK) != 0);
    BOOST_TEST((msgs[i]->nlmsg_type >> 8) == NFNL_SUBSYS_NFTABLES);
    BOOST_TEST(b.seq_of(i - 1) == msgs[i]->nlmsg_seq);
    BOOST_TEST(*b.index_of(msgs[i]->nlmsg_seq) == i - 1);
  }
  BOOST_TEST(!b.index_of(5000));                 // BEGIN
  BOOST_TEST(!b.index_of(5000 + 1 + b.size()));  // END
  BOOST_TEST(!b.index_of(4000));
  BOOST_CHECK_THROW(b.seal(1), knit::Error);
}

BOOST_AUTO_TEST_CASE(each_message_is_described) {
  auto rs = knit::test::sample_ruleset();
  Plan p = plan(std::nullopt, rs);
  Batch b = lower(p);
  BOOST_TEST(b.entry(0).what == "add table inet knit");
  bool saw_set = false, saw_elem = false, saw_rule = false;
  for (size_t i = 0; i < b.size(); ++i) {
    const auto& e = b.entry(i);
    BOOST_TEST(e.change < p.changes.size());
    saw_set = saw_set || e.what == "add set inet knit pol_a_r0_dst";
    saw_elem = saw_elem || e.what == "add 4 elements to set inet knit pol_a_r0_dst";
    saw_rule = saw_rule ||
               e.what == "add rule to chain inet knit postrouting (ip saddr vmap @egress_dispatch)";
  }
  BOOST_TEST(saw_set);
  BOOST_TEST(saw_elem);
  BOOST_TEST(saw_rule);
}

BOOST_AUTO_TEST_CASE(large_batches_span_pages) {
  Plan p{kTable, {AddTable{}, AddSet{big_set(60000)}}};
  Batch b = lower(p);
  BOOST_TEST(b.bytes() > Batch::kPageSize);
  auto iov = b.seal(1);
  BOOST_TEST(iov.size() > 1u);
  auto msgs = walk(iov);
  BOOST_TEST(msgs.size() == b.size() + 2);
  for (size_t i = 0; i < msgs.size(); ++i) BOOST_TEST(msgs[i]->nlmsg_seq == 1 + i);
}

BOOST_AUTO_TEST_CASE(refused_element_is_named_by_the_kernels_attribute_offset) {
  Set s = big_set(3000);
  Plan p{kTable, {AddElements{s}}};
  Batch b = lower(p);
  BOOST_REQUIRE(b.size() >= 2u);
  const auto& second = b.entry(1);
  BOOST_TEST(second.what.find("elements to set inet knit big") != std::string::npos);
  // The kernel points NLMSGERR_ATTR_OFFS at the element's nest; any byte inside it will do.
  uint32_t off = second.elem_offsets.at(5) + 6;
  uint32_t k = *b.element_at(1, off);
  BOOST_TEST(k == second.first_elem + 5);
  std::string what = refused_object(p, b, 1, off);
  BOOST_TEST(what == "add element " + render_element(s, s.elements[k]) + " to set inet knit big");
  // Without an offset (or one before the elements) the message is described as a whole.
  BOOST_TEST(refused_object(p, b, 1, std::nullopt) == second.what);
  BOOST_TEST(refused_object(p, b, 1, 20u) == second.what);
}

BOOST_AUTO_TEST_SUITE_END()
