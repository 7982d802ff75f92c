// Unit tests for ipam/store: the file format (round trip, golden file, torn and damaged files)
// and the locked load/commit cycle in a temporary directory.
#include <stdlib.h>
#include <sys/stat.h>

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <filesystem>
#include <ostream>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/str.hpp"
#include "ipam/crc32c.hpp"
#include "ipam/store.hpp"

namespace bdata = boost::unit_test::data;
using knit::Code;
using knit::Error;
using knit::IpAddr;
using knit::conf::PortMapping;
using knit::conf::Protocol;
using namespace knit::ipam;

namespace {

IpAddr ip(std::string_view s) {
  auto a = IpAddr::parse(s);
  if (!a) throw std::invalid_argument(std::string(s));
  return *a;
}

/// The State of test/data/ipam/store-v1.txt.
State golden_state() {
  State s;
  s.last_reserved = {ip("10.244.1.3"), std::nullopt, ip("fd00:10:244:1::3")};
  Attachment a;
  a.container_id = "6f1c3a9e0b2d4c5e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e";
  a.ifname = "eth0";
  a.ips = {ip("10.244.1.2"), ip("fd00:10:244:1::2")};
  a.host_ifname = "knit6f1c3a9e";
  a.netns = "/var/run/netns/cni-1f2e3d4c-aaaa-bbbb-cccc-0123456789ab";
  a.pod_namespace = "default";
  a.pod_name = "web-0";
  a.port_mappings = {PortMapping{8080, 80, Protocol::kTcp, std::nullopt},
                     PortMapping{5353, 53, Protocol::kUdp, ip("127.0.0.1")},
                     PortMapping{9000, 9000, Protocol::kSctp, ip("::1")}};
  Attachment b;
  b.container_id = "odd id %-,/\t\n\x7f\xc3\xa9";
  b.ifname = "-";
  b.ips = {ip("10.244.1.3")};
  b.netns = "/run/netns/with space";
  b.pod_namespace = "%2D";
  Attachment c;
  c.container_id = "no-ips";
  c.ifname = "net1";
  s.attachments = {a, b, c};
  return s;
}

/// Strings that break naive formats: separators, escapes, controls, NUL, and (when
/// `every_byte`) a string of all 256 byte values, each string once in every field.
State awkward_state(bool every_byte = true) {
  State s = golden_state();
  std::string all_bytes;
  for (int i = 0; i < 256; ++i) all_bytes.push_back(static_cast<char>(i));
  const std::vector<std::string> strings = {
      std::string("nul\0inside", 10),
      " leading and trailing ",
      "%",
      "%%41",
      "--",
      "a,b/c:d",
      "line1\r\nline2",
      "end 3 0123456789abcdef",
      "attach x",
      "pöd-ünïcode-名前",
      std::string(100, 'x'),
      every_byte ? all_bytes : std::string("\x01\x1f\x7f\x80\xff"),
  };
  for (size_t i = 0; i < strings.size(); ++i) {
    Attachment a;
    a.container_id = strings[i];
    a.ifname = strings[(i + 1) % strings.size()];
    a.ips = {IpAddr::v4(0x0a000100 + static_cast<uint32_t>(i))};
    a.host_ifname = strings[(i + 2) % strings.size()];
    a.netns = strings[(i + 3) % strings.size()];
    a.pod_namespace = strings[(i + 4) % strings.size()];
    a.pod_name = strings[(i + 5) % strings.size()];
    a.port_mappings = {PortMapping{static_cast<uint16_t>(i), 65535, Protocol::kUdp, ip("0.0.0.0")}};
    s.attachments.push_back(a);
  }
  return s;
}

/// A node's worth of pods: 250 dual-stack attachments with port mappings on some.
State busy_state(size_t n = 250) {
  State s;
  s.last_reserved = {IpAddr::v4(0x0af40000 + static_cast<uint32_t>(n)),
                     ip("fd00:10:244::" + knit::str(n))};
  for (size_t i = 0; i < n; ++i) {
    Attachment a;
    a.container_id =
        knit::str("c0ffee", i, "d1d2d3d4e5e6e7e8f9f0a1a2b3b4c5c6d7d8e9e0f1f2a3a4b5b6c7c8");
    a.ifname = "eth0";
    a.ips = {IpAddr::v4(0x0af40001 + static_cast<uint32_t>(i)),
             ip("fd00:10:244::" + knit::str(i + 1))};
    a.host_ifname = knit::str("knit", i, "abcdef");
    a.netns = knit::str("/var/run/netns/cni-", i, "-aaaa-bbbb-cccc-0123456789ab");
    a.pod_namespace = "kube-system";
    a.pod_name = knit::str("coredns-5d78c9869d-", i);
    if (i % 10 == 0)
      a.port_mappings = {
          PortMapping{static_cast<uint16_t>(30000 + i), 80, Protocol::kTcp, std::nullopt}};
    s.attachments.push_back(a);
  }
  return s;
}

std::string who(const Attachment& a) {
  return to_string(a);
}

/// `got` keeps a subset of `want`'s attachments, unchanged and in order, and its cursors are
/// `want`'s or unset. Returns how many attachments were kept.
size_t check_subset(const State& got, const State& want) {
  size_t j = 0;
  for (const auto& a : got.attachments) {
    while (j < want.attachments.size() && !(want.attachments[j].container_id == a.container_id &&
                                            want.attachments[j].ifname == a.ifname)) {
      ++j;
    }
    BOOST_TEST_REQUIRE(j < want.attachments.size(), "invented or reordered: " << who(a));
    BOOST_TEST((want.attachments[j] == a), "corrupted: " << who(a));
    ++j;
  }
  BOOST_TEST(got.last_reserved.size() <= want.last_reserved.size());
  for (size_t i = 0; i < got.last_reserved.size() && i < want.last_reserved.size(); ++i) {
    if (got.last_reserved[i]) BOOST_TEST((got.last_reserved[i] == want.last_reserved[i]));
  }
  return got.attachments.size();
}

int code_of(const Error& e) {
  return static_cast<int>(e.code());
}
constexpr int kStoreCode = static_cast<int>(Code::kStore);

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

struct Named {
  const char* name;
  State state;
};
std::ostream& operator<<(std::ostream& os, const Named& n) {
  return os << n.name;
}

struct BadHeader {
  std::string text;
  const char* cause;
};
std::ostream& operator<<(std::ostream& os, const BadHeader& b) {
  return os << b.cause;
}

/// A fresh directory under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/knit-ipam-test.XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string read(const std::string& path) {
  auto text = knit::read_file(path);
  if (!text) throw std::runtime_error("missing " + path);
  return *text;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(ipam_store)

BOOST_DATA_TEST_CASE(round_trips_exactly,
                     bdata::make(std::vector<Named>{
                         {"empty", State{}},
                         {"cursors only", State{{std::nullopt, ip("fd00::9")}, {}}},
                         {"golden", golden_state()},
                         {"awkward strings", awkward_state()},
                         {"250 attachments", busy_state()},
                     }),
                     c) {
  auto text = encode(c.state);
  LoadReport report;
  State back = decode(text, report);
  BOOST_TEST((back == c.state));
  BOOST_TEST(!report.repaired);
  BOOST_TEST(report.detail.empty());
  // One line per record between the header and the trailer.
  auto lines = std::count(text.begin(), text.end(), '\n');
  BOOST_TEST(static_cast<size_t>(lines) ==
             2 + c.state.last_reserved.size() + c.state.attachments.size());
  BOOST_TEST(text.substr(0, 13) == "knit-ipam v1\n");
}

BOOST_AUTO_TEST_CASE(crc32c_matches_the_published_check_values) {
  // RFC 3720 B.4 and the usual "123456789" check value.
  const std::string zeros(32, '\0');
  const std::string ones(32, '\xff');
  std::string ascending, descending;
  for (int i = 0; i < 32; ++i) {
    ascending.push_back(static_cast<char>(i));
    descending.push_back(static_cast<char>(31 - i));
  }
  for (auto f : {&crc32c, &crc32c_portable}) {
    BOOST_TEST(f("") == 0u);
    BOOST_TEST(f("123456789") == 0xe3069283u);
    BOOST_TEST(f(zeros) == 0x8a9136aau);
    BOOST_TEST(f(ones) == 0x62a8ab43u);
    BOOST_TEST(f(ascending) == 0x46dd794eu);
    BOOST_TEST(f(descending) == 0x113fdb5cu);
  }
}

BOOST_AUTO_TEST_CASE(crc32c_paths_agree_at_every_length_and_alignment) {
  // The instruction path (x86-64) and the table path (other CPUs) must write the same files.
  std::string buf(300, '\0');
  uint32_t x = 12345;
  for (auto& c : buf) c = static_cast<char>((x = x * 1103515245u + 12345u) >> 24);
  for (size_t off = 0; off < 8; ++off) {
    for (size_t len = 0; off + len <= buf.size(); ++len) {
      std::string_view s = std::string_view(buf).substr(off, len);
      BOOST_TEST_REQUIRE(crc32c(s) == crc32c_portable(s), "offset " << off << " length " << len);
    }
  }
}

BOOST_DATA_TEST_CASE(addresses_are_written_in_canonical_form,
                     bdata::make({"0.0.0.0", "10.0.0.1", "255.255.255.255", "192.168.100.10", "::",
                                  "::1", "1::", "fd00::", "fd00:10:244:1::3", "1:0:2:3:4:5:6:7",
                                  "1:0:0:2::3", "1::2:0:0:3:4", "fe80::858:aff:fef4:1",
                                  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db8::1:0:0:1"}),
                     text) {
  State s;
  s.last_reserved = {ip(text)};
  s.attachments.push_back(Attachment{"c", "eth0", {ip(text)}, "", "", "", "", {}});
  s.attachments[0].port_mappings = {PortMapping{1, 2, Protocol::kTcp, ip(text)}};
  auto encoded = encode(s);
  BOOST_TEST(ip(text).to_string() == text);  // the table itself is canonical
  BOOST_TEST(contains(encoded, knit::str("\ncursor 0 ", text, " ")), encoded);
  BOOST_TEST(contains(encoded, knit::str(" eth0 ", text, " ")), encoded);
  BOOST_TEST(contains(encoded, knit::str(" tcp/1/2/", text, " ")), encoded);
  LoadReport report;
  BOOST_TEST((decode(encoded, report) == s));
  BOOST_TEST(!report.repaired);
}

BOOST_AUTO_TEST_CASE(v4_mapped_addresses_round_trip) {
  State s;
  s.last_reserved = {ip("::ffff:10.1.2.3"), ip("::10.1.2.3")};
  LoadReport report;
  BOOST_TEST((decode(encode(s), report) == s));
  BOOST_TEST(!report.repaired);
}

BOOST_AUTO_TEST_CASE(reads_and_writes_the_v1_golden_file) {
  // Pins the on-disk format: a store written by this version must stay readable.
  auto text = read(KNIT_TEST_DATA "/ipam/store-v1.txt");
  LoadReport report;
  BOOST_TEST((decode(text, report) == golden_state()));
  BOOST_TEST(!report.repaired);
  BOOST_TEST(encode(golden_state()) == text);
}

BOOST_AUTO_TEST_CASE(a_torn_file_keeps_exactly_the_complete_records) {
  // Every offset of a file of a few kB: quadratic, so without the 256-byte string.
  const State original = awkward_state(false);
  const std::string text = encode(original);
  const size_t header_len = std::string_view("knit-ipam v1").size();
  for (size_t k = 0; k < text.size(); ++k) {
    BOOST_TEST_CONTEXT("truncated to " << k << " of " << text.size() << " bytes") {
      std::string_view torn = std::string_view(text).substr(0, k);
      LoadReport report;
      State got;
      try {
        got = decode(torn, report);
      } catch (const Error& e) {
        BOOST_TEST(code_of(e) == kStoreCode);
        BOOST_TEST((k > 0 && k < header_len), "threw past the header: " << e.what());
        continue;
      }
      BOOST_TEST(!(k > 0 && k < header_len), "accepted a torn header");
      // Every record whose line is complete is kept; nothing else.
      size_t complete_attach = 0;
      size_t complete_cursor = 0;
      for (size_t pos = 0, nl; (nl = torn.find('\n', pos)) != std::string_view::npos;
           pos = nl + 1) {
        auto line = torn.substr(pos, nl - pos);
        if (line.substr(0, 7) == "attach ") ++complete_attach;
        if (line.substr(0, 7) == "cursor ") ++complete_cursor;
      }
      BOOST_TEST(check_subset(got, original) == complete_attach);
      BOOST_TEST(got.last_reserved.size() == complete_cursor);
      BOOST_TEST(report.repaired);
      BOOST_TEST(!report.detail.empty());
    }
  }
}

BOOST_AUTO_TEST_CASE(a_flipped_byte_drops_records_but_never_corrupts_one) {
  const State original = golden_state();
  const std::string text = encode(original);
  const size_t header_line = std::string_view("knit-ipam v1\n").size();
  for (size_t i = 0; i < text.size(); ++i) {
    for (unsigned char mask : {0x01, 0x20, 0x80}) {
      BOOST_TEST_CONTEXT("byte " << i << " xor " << int{mask}) {
        std::string damaged = text;
        damaged[i] = static_cast<char>(damaged[i] ^ mask);
        LoadReport report;
        State got;
        try {
          got = decode(damaged, report);
        } catch (const Error& e) {
          BOOST_TEST(code_of(e) == kStoreCode);
          BOOST_TEST(i < header_line, "threw past the header: " << e.what());
          continue;
        }
        BOOST_TEST(i >= header_line, "accepted a damaged header");
        // A flipped byte damages at most two lines (a newline joining or splitting them).
        BOOST_TEST(check_subset(got, original) + 2 >= original.attachments.size());
        BOOST_TEST(report.repaired);
        BOOST_TEST(!report.detail.empty());
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(a_wrong_checksum_is_repaired_and_reported) {
  const State original = golden_state();
  std::string text = encode(original);
  auto& last_digit = text[text.size() - 2];
  last_digit = last_digit == '0' ? '1' : '0';
  LoadReport report;
  State got = decode(text, report);
  BOOST_TEST((got == original));  // every record line is intact on its own
  BOOST_TEST(report.repaired);
  BOOST_TEST(contains(report.detail, "file checksum mismatch"), report.detail);
}

BOOST_AUTO_TEST_CASE(a_lost_line_is_detected_by_the_trailer) {
  const State original = golden_state();
  std::string text = encode(original);
  // Remove the second attach line whole, as a bad sector or a bad merge might.
  auto start = text.find("\nattach ", text.find("\nattach ") + 1) + 1;
  text.erase(start, text.find('\n', start) + 1 - start);
  LoadReport report;
  State got = decode(text, report);
  State want = original;
  want.attachments.erase(want.attachments.begin() + 1);
  BOOST_TEST((got == want));
  BOOST_TEST(report.repaired);
  BOOST_TEST(contains(report.detail, "trailer counts 6 records, found 5 intact"), report.detail);
}

BOOST_AUTO_TEST_CASE(garbage_lines_are_dropped_and_reported) {
  const State original = golden_state();
  std::string text = encode(original);
  std::string other_cursor = encode(State{{ip("10.9.9.9")}, {}});
  other_cursor = other_cursor.substr(13, other_cursor.find('\n', 13) + 1 - 13);
  BOOST_TEST_REQUIRE(other_cursor.substr(0, 9) == "cursor 0 ");
  std::string damaged = text.substr(0, 13) + "garbage\n" + "\n" + other_cursor;
  auto body = text.substr(13);
  auto second = body.find('\n') + 1;
  damaged += body.substr(0, second) + "attach x\ncursor 1 - 00000000\n" + body.substr(second) +
             "after the trailer\n";
  LoadReport report;
  State got = decode(damaged, report);
  // The first cursor line for set 0 wins, even over the file's own (later) one.
  State want = original;
  want.last_reserved[0] = ip("10.9.9.9");
  BOOST_TEST((got == want));
  BOOST_TEST(report.repaired);
  for (const char* part :
       {"line 2: not a record", "line 3: not a record", "line 5: second cursor for range set 0",
        "line 6: not a record", "line 7: record checksum mismatch", "text after the trailer",
        "file checksum mismatch", "kept 3 attachments"}) {
    BOOST_TEST(contains(report.detail, part), part << " not in: " << report.detail);
  }
}

BOOST_AUTO_TEST_CASE(a_long_list_of_dropped_lines_is_summarised) {
  std::string text = encode(golden_state());
  std::string junk;
  for (int i = 0; i < 20; ++i) junk += knit::str("junk ", i, "\n");
  text.insert(13, junk);
  LoadReport report;
  State got = decode(text, report);
  BOOST_TEST((got == golden_state()));
  BOOST_TEST(report.repaired);
  BOOST_TEST(contains(report.detail, "file checksum mismatch; line 2: not a record, dropped; "),
             report.detail);
  BOOST_TEST(contains(report.detail, "line 9: not a record"), report.detail);
  BOOST_TEST(!contains(report.detail, "line 10:"), report.detail);
  BOOST_TEST(contains(report.detail, "; 12 more lines dropped; kept 3 attachments"), report.detail);
}

BOOST_AUTO_TEST_CASE(non_canonical_fields_are_not_records) {
  // Lines with a valid sum but an encoding encode() never writes: each is dropped, so equal
  // strings always have equal encodings (the duplicate check relies on it).
  for (const char* body : {"attach %61 eth0 - - - - - -", "attach a%2d eth0 - - - - - -",
                           "attach %2D%2D eth0 - - - - - -", "attach a eth0 - - - - - - extra",
                           "attach a eth0 010.0.0.1 - - - - -", "attach a eth0 - - - - - tcp/1",
                           "attach a eth0 - - - - - tcp/1/70000", "attach a  eth0 - - - - -",
                           "cursor 1024 -", "cursor x -"}) {
    BOOST_TEST_CONTEXT(body) {
      std::string line = body;
      char sum[9];
      std::snprintf(sum, sizeof sum, "%08x", crc32c(line));
      line = knit::str(line, ' ', sum, '\n');
      std::string text = knit::str("knit-ipam v1\n", line);
      LoadReport report;
      State got = decode(text, report);
      BOOST_TEST(got.attachments.empty());
      BOOST_TEST(got.last_reserved.empty());
      BOOST_TEST(contains(report.detail, "line 2: not a record"), report.detail);
    }
  }
}

BOOST_AUTO_TEST_CASE(duplicate_records_and_address_claims_keep_the_first) {
  State s;
  Attachment a;
  a.container_id = "a";
  a.ifname = "eth0";
  a.ips = {ip("10.0.0.5"), ip("fd00::5")};
  Attachment b = a;  // another container claiming a's v6 address
  b.container_id = "b";
  b.ips = {ip("10.0.0.6"), ip("fd00::5")};
  Attachment a_again = a;  // a second record for (a, eth0)
  a_again.ips = {ip("10.0.0.7")};
  Attachment d = a;
  d.container_id = "d";
  d.ips = {ip("10.0.0.8")};
  s.attachments = {a, b, a_again, d};
  LoadReport report;
  State got = decode(encode(s), report);
  BOOST_TEST_REQUIRE(got.attachments.size() == 2u);
  BOOST_TEST((got.attachments[0] == a));
  BOOST_TEST((got.attachments[1] == d));
  BOOST_TEST(report.repaired);
  BOOST_TEST(contains(report.detail, "line 3: address fd00::5 already claimed"), report.detail);
  BOOST_TEST(contains(report.detail, "line 4: second record for attachment a/eth0"), report.detail);
}

BOOST_DATA_TEST_CASE(
    refuses_what_is_not_a_knit_store,
    bdata::make(std::vector<BadHeader>{
        {"{\"cniVersion\": \"1.0.0\"}\n", "first line is"},
        {"10.0.0.5\n", "first line is"},
        {"KNIT-IPAM v1\nend 0 0000000000000000\n", "first line is"},
        {"knit-ipam v1 \nend 0 0000000000000000\n", "unsupported format version \"v1 \""},
        {"knit-ipam v2\ncursor 0 - 078f68b3\n", "unsupported format version \"v2\""},
        {std::string("\0\1\2\3binary", 10), "first line is \"%00%01%02%03binary\""},
        {"knit-ip", "first line is \"knit-ip\""},
    }),
    c) {
  LoadReport report;
  try {
    decode(c.text, report, "/run/knit/ipam/net/store");
    BOOST_FAIL("accepted");
  } catch (const Error& e) {
    std::string what = e.what();
    BOOST_TEST(code_of(e) == kStoreCode);
    BOOST_TEST(contains(what, "ipam store /run/knit/ipam/net/store is not a knit store: "), what);
    BOOST_TEST(contains(what, c.cause), what);
    BOOST_TEST(contains(what, "; move it aside to reset"), what);
  }
}

BOOST_DATA_TEST_CASE(an_empty_or_headless_body_is_repaired_to_nothing,
                     bdata::make({"", "knit-ipam v1", "knit-ipam v1\n"}), text) {
  LoadReport report;
  State got = decode(text, report);
  BOOST_TEST((got == State{}));
  BOOST_TEST(report.repaired);
  BOOST_TEST(!report.detail.empty());
}

BOOST_AUTO_TEST_CASE(store_starts_empty_in_a_private_directory) {
  TempDir tmp;
  Store store(tmp.path() + "/data/ipam", "kindnet");
  BOOST_TEST(store.dir() == tmp.path() + "/data/ipam/kindnet");
  struct stat st {};
  BOOST_TEST_REQUIRE(::stat(store.dir().c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 0777) == 0700u);
  {
    auto txn = store.begin();
    BOOST_TEST((txn.state() == State{}));
    BOOST_TEST(!txn.report().repaired);
  }
  // Loading creates only the lock file; nothing is written without commit().
  BOOST_TEST(names_in(store.dir()) == std::vector<std::string>{"lock"});
}

BOOST_AUTO_TEST_CASE(commit_persists_and_an_uncommitted_txn_changes_nothing) {
  TempDir tmp;
  Store store(tmp.path(), "net");
  const std::string file = store.dir() + "/store";
  {
    auto txn = store.begin();
    txn.state() = golden_state();
    txn.commit();
  }
  BOOST_TEST(read(file) == encode(golden_state()));
  BOOST_TEST(names_in(store.dir()) == (std::vector<std::string>{"lock", "store"}));
  const std::string before = read(file);
  {
    auto txn = store.begin();
    BOOST_TEST((txn.state() == golden_state()));
    txn.state().attachments.clear();
    txn.state().last_reserved.clear();
  }
  BOOST_TEST(read(file) == before);
  {
    Store again(tmp.path(), "net");
    auto txn = again.begin();
    BOOST_TEST((txn.state() == golden_state()));
    txn.state().attachments.pop_back();
    txn.commit();
    txn.state().attachments.pop_back();
    txn.commit();  // a Txn may commit more than once; the last commit wins
  }
  auto txn = store.begin();
  BOOST_TEST(txn.state().attachments.size() == 1u);
  BOOST_TEST(!txn.report().repaired);
}

BOOST_AUTO_TEST_CASE(a_held_lock_makes_begin_try_again_later) {
  TempDir tmp;
  Store store(tmp.path(), "net");
  Store other(tmp.path(), "net");
  {
    auto held = store.begin();
    try {
      other.begin(std::chrono::milliseconds(20));
      BOOST_FAIL("took a held lock");
    } catch (const Error& e) {
      BOOST_TEST(static_cast<int>(e.code()) == static_cast<int>(Code::kTryAgainLater));
      BOOST_TEST(contains(e.what(), "ipam store " + store.dir() + " is busy"), e.what());
    }
  }
  BOOST_CHECK_NO_THROW(other.begin(std::chrono::milliseconds(20)));
}

BOOST_AUTO_TEST_CASE(a_repaired_store_keeps_the_damaged_original) {
  TempDir tmp;
  Store store(tmp.path(), "net");
  const std::string file = store.dir() + "/store";
  const std::string full = encode(golden_state());
  const std::string torn = full.substr(0, full.size() - 30);  // into the last attach line
  knit::atomic_write(store.dir(), "store", torn);
  {
    auto txn = store.begin();
    BOOST_TEST(txn.report().repaired);
    BOOST_TEST(contains(txn.report().detail,
                        "damaged original kept as " + store.dir() + "/store.corrupt."),
               txn.report().detail);
    BOOST_TEST(txn.state().attachments.size() == 2u);
  }
  auto names = names_in(store.dir());
  BOOST_TEST_REQUIRE(names.size() == 3u);
  BOOST_TEST(names[2].substr(0, 14) == "store.corrupt.");
  BOOST_TEST(read(store.dir() + "/" + names[2]) == torn);
  BOOST_TEST(read(file) == torn);  // repaired on disk only by the next commit

  // Loading the same damage again does not pile up copies.
  {
    auto txn = store.begin();
    BOOST_TEST(txn.report().repaired);
    BOOST_TEST(contains(txn.report().detail, names[2]), txn.report().detail);
    txn.commit();
  }
  BOOST_TEST(names_in(store.dir()).size() == 3u);
  auto txn = store.begin();
  BOOST_TEST(!txn.report().repaired);
  BOOST_TEST(txn.state().attachments.size() == 2u);
}

BOOST_AUTO_TEST_CASE(a_foreign_file_is_refused_and_left_alone) {
  TempDir tmp;
  Store store(tmp.path(), "net");
  knit::atomic_write(store.dir(), "store", "10.244.0.7\r\neth0");
  try {
    store.begin();
    BOOST_FAIL("accepted a foreign file");
  } catch (const Error& e) {
    BOOST_TEST(code_of(e) == kStoreCode);
    BOOST_TEST(contains(e.what(), "ipam store " + store.dir() + "/store is not a knit store"),
               e.what());
  }
  BOOST_TEST(read(store.dir() + "/store") == "10.244.0.7\r\neth0");
  BOOST_TEST(names_in(store.dir()) == (std::vector<std::string>{"lock", "store"}));
}

BOOST_DATA_TEST_CASE(network_names_must_be_directory_names,
                     bdata::make({"", ".", "..", "a/b", "../escape"}), name) {
  TempDir tmp;
  try {
    Store store(tmp.path(), name);
    BOOST_FAIL("accepted");
  } catch (const Error& e) {
    BOOST_TEST(static_cast<int>(e.code()) == static_cast<int>(Code::kInvalidConfig));
  }
  BOOST_TEST(names_in(tmp.path()).empty());
}

BOOST_AUTO_TEST_SUITE_END()
