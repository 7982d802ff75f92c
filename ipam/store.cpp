// ipam/store.cpp: the store file format and the locked load/commit cycle.
//
// File format, version 1. Text, one record per line, every line ended by '\n':
//
//   knit-ipam v1
//   cursor <set> <ip|-> <sum>
//   attach <container_id> <ifname> <ips> <host_ifname> <netns> <pod_namespace> <pod_name> <ports>
//   <sum> end <records> <checksum>
//
// - `cursor`: State::last_reserved[<set>] (decimal index); `-` when no address was handed out.
// - `attach`: one ipam::Attachment. String fields are percent-encoded: bytes 0x21-0x7e other than
//   '%' stand for themselves, every other byte is %XX (upper-case hex), so a field never holds a
//   space or newline. The empty string is `-`, and the one-character string "-" is `%2D`.
//   <ips> is the comma-separated address list, `-` when empty. <ports> is a comma-separated list
//   of `<proto>/<host_port>/<container_port>[/<host_ip>]` (proto tcp, udp or sctp), `-` when empty.
// - <sum> ends every record line: the CRC-32C (ipam/crc32c.hpp; 8 lower-case hex digits) of the
//   line before " <sum>". It lets a damaged file be repaired record by record: a line is kept
//   only when its own sum matches, so a flipped or torn byte drops that one record and never
//   yields a wrong one.
// - `end`: the last line. <records> is the number of cursor and attach lines, <checksum> the
//   CRC-32C (8 hex digits) of every byte before this line, header included. It proves that no
//   whole line was lost or reordered, which per-line sums cannot.
// - Encodings are canonical (decode() rejects a %XX for a byte that stands for itself, lower-case
//   hex, or %2D outside the field "%2D"), so equal strings have equal encoded fields.
//
// encode() writes cursors in set order, then attachments in State order. decode() accepts the
// lines in any order. A file whose first line is not the header is not trusted at all (it may be
// another program's file): decode throws. Anything else that is wrong (torn tail, missing or
// mismatching trailer, garbage or damaged lines, two records for one attachment, cursor or
// address) is repaired by keeping the first intact record of each and reporting what was dropped.

#include "ipam/store.hpp"

#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

#include "core/error.hpp"
#include "core/str.hpp"
#include "ipam/crc32c.hpp"

namespace knit::ipam {

namespace {

constexpr std::string_view kHeader = "knit-ipam v1";
constexpr std::string_view kHeaderStem = "knit-ipam ";
constexpr std::string_view kStoreName = "store";
constexpr std::string_view kCorruptPrefix = "store.corrupt.";
/// Larger cursor indexes are damage, not configuration (a netconf has a handful of range sets).
constexpr uint64_t kMaxSets = 1024;
/// Problems listed one by one in a LoadReport before they are only counted.
constexpr size_t kMaxListed = 8;

constexpr char kHex[] = "0123456789abcdef";
constexpr char kHexUpper[] = "0123456789ABCDEF";

void append_hex(std::string& out, uint32_t v) {
  char buf[8];
  for (int i = 7; i >= 0; --i, v >>= 4) buf[i] = kHex[v & 15];
  out.append(buf, 8);
}

/// Exactly 8 lower-case hex digits, as append_hex writes them.
bool parse_hex(std::string_view s, uint32_t& out) {
  if (s.size() != 8) return false;
  out = 0;
  for (char c : s) {
    uint32_t d;
    if (c >= '0' && c <= '9') {
      d = static_cast<uint32_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      d = static_cast<uint32_t>(c - 'a' + 10);
    } else {
      return false;
    }
    out = (out << 4) | d;
  }
  return true;
}

int upper_hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// Bytes written as themselves in a field.
constexpr std::array<bool, 256> kPlain = [] {
  std::array<bool, 256> t{};
  for (int c = 0x21; c < 0x7f; ++c) t[c] = c != '%';
  return t;
}();
bool is_plain(unsigned char c) {
  return kPlain[c];
}

void append_field(std::string& out, std::string_view s) {
  if (s.empty()) {
    out.push_back('-');
    return;
  }
  if (s == "-") {
    out.append("%2D");
    return;
  }
  size_t i = 0;
  while (i < s.size()) {
    size_t run = i;
    while (run < s.size() && is_plain(static_cast<unsigned char>(s[run]))) ++run;
    out.append(s.data() + i, run - i);
    if (run == s.size()) break;
    auto c = static_cast<unsigned char>(s[run]);
    const char esc[3] = {'%', kHexUpper[c >> 4], kHexUpper[c & 15]};
    out.append(esc, 3);
    i = run + 1;
  }
}

/// Decodes a field written by append_field; false on anything append_field would not write.
bool parse_field(std::string_view f, std::string& out) {
  out.clear();
  if (f == "-") return true;
  if (f == "%2D") {
    out.push_back('-');
    return true;
  }
  if (f.empty()) return false;
  size_t i = 0;
  while (i < f.size()) {
    size_t run = i;
    while (run < f.size() && is_plain(static_cast<unsigned char>(f[run]))) ++run;
    out.append(f.data() + i, run - i);
    if (run == f.size()) return true;
    if (f[run] != '%' || run + 2 >= f.size()) return false;
    int hi = upper_hex_digit(f[run + 1]);
    int lo = upper_hex_digit(f[run + 2]);
    if (hi < 0 || lo < 0) return false;
    auto c = static_cast<unsigned char>(hi << 4 | lo);
    if (is_plain(c)) return false;  // not canonical
    out.push_back(static_cast<char>(c));
    i = run + 3;
  }
  return true;
}

/// Appends `a` in RFC 5952 form without going through inet_ntop (which formats with sprintf and
/// costs a few hundred nanoseconds per address). IPv4-mapped IPv6 addresses come out in hex
/// (::ffff:a00:1), which IpAddr::parse reads back the same.
void append_ip(std::string& out, const IpAddr& a) {
  char buf[48];
  char* p = buf;
  const uint8_t* b = a.data();
  if (a.is_v4()) {
    for (int i = 0; i < 4; ++i) {
      if (i) *p++ = '.';
      p = std::to_chars(p, buf + sizeof buf, b[i]).ptr;
    }
    out.append(buf, p);
    return;
  }
  uint16_t g[8];
  for (int i = 0; i < 8; ++i) g[i] = static_cast<uint16_t>(b[2 * i] << 8 | b[2 * i + 1]);
  int best = -1, best_len = 1;  // longest run of zero groups, at least two, first on ties
  for (int i = 0; i < 8;) {
    if (g[i] != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && g[j] == 0) ++j;
    if (j - i > best_len) best = i, best_len = j - i;
    i = j;
  }
  bool colon = false;
  for (int i = 0; i < 8; ++i) {
    if (i == best) {
      *p++ = ':';
      *p++ = ':';
      i += best_len - 1;
      colon = false;
      continue;
    }
    if (colon) *p++ = ':';
    p = std::to_chars(p, buf + sizeof buf, g[i], 16).ptr;
    colon = true;
  }
  out.append(buf, p);
}

/// Splits `s` at every `sep` into `out`; returns the number of pieces, or out.size() + 1 when
/// there are more pieces than fit.
template <size_t N>
size_t split_into(std::string_view s, char sep, std::array<std::string_view, N>& out) {
  size_t n = 0;
  for (;;) {
    if (n == N) return N + 1;
    size_t pos = s.find(sep);
    out[n++] = s.substr(0, pos);
    if (pos == std::string_view::npos) return n;
    s.remove_prefix(pos + 1);
  }
}

const char* protocol_name(conf::Protocol p) {
  switch (p) {
    case conf::Protocol::kTcp:
      return "tcp";
    case conf::Protocol::kUdp:
      return "udp";
    case conf::Protocol::kSctp:
      return "sctp";
  }
  return "tcp";
}

std::optional<conf::Protocol> parse_protocol(std::string_view s) {
  if (s == "tcp") return conf::Protocol::kTcp;
  if (s == "udp") return conf::Protocol::kUdp;
  if (s == "sctp") return conf::Protocol::kSctp;
  return std::nullopt;
}

bool parse_port(std::string_view s, uint16_t& out) {
  uint64_t v = 0;
  if (!parse_uint(s, v) || v > 65535) return false;
  out = static_cast<uint16_t>(v);
  return true;
}

/// Appends " <sum>\n" for the record that starts at `line_start` in `out`.
void end_record(std::string& out, size_t line_start) {
  uint32_t sum = crc32c(std::string_view(out).substr(line_start));
  out.push_back(' ');
  append_hex(out, sum);
  out.push_back('\n');
}

/// IpAddr::parse with a fast path for dotted quads as append_ip writes them (no leading zeros);
/// inet_pton costs more than the rest of a record's parsing.
std::optional<IpAddr> parse_ip(std::string_view s) {
  uint32_t v = 0;
  size_t i = 0;
  for (int octet = 0; octet < 4; ++octet) {
    if (octet > 0) {
      if (i == s.size() || s[i] != '.') return IpAddr::parse(s);
      ++i;
    }
    size_t start = i;
    unsigned n = 0;
    while (i < s.size() && i - start < 3 && s[i] >= '0' && s[i] <= '9') n = n * 10 + (s[i++] - '0');
    if (i == start || n > 255 || (s[start] == '0' && i - start > 1)) return IpAddr::parse(s);
    v = v << 8 | n;
  }
  if (i != s.size()) return IpAddr::parse(s);
  return IpAddr::v4(v);
}

bool parse_ips(std::string_view f, std::vector<IpAddr>& out) {
  out.clear();
  if (f == "-") return true;
  for (;;) {
    size_t comma = f.find(',');
    auto ip = parse_ip(f.substr(0, comma));
    if (!ip) return false;
    out.push_back(*ip);
    if (comma == std::string_view::npos) return true;
    f.remove_prefix(comma + 1);
  }
}

bool parse_ports(std::string_view f, std::vector<conf::PortMapping>& out) {
  out.clear();
  if (f == "-") return true;
  for (;;) {
    size_t comma = f.find(',');
    std::array<std::string_view, 4> bits;
    size_t n = split_into(f.substr(0, comma), '/', bits);
    if (n != 3 && n != 4) return false;
    conf::PortMapping pm;
    auto proto = parse_protocol(bits[0]);
    if (!proto) return false;
    pm.protocol = *proto;
    if (!parse_port(bits[1], pm.host_port) || !parse_port(bits[2], pm.container_port)) {
      return false;
    }
    if (n == 4) {
      pm.host_ip = parse_ip(bits[3]);
      if (!pm.host_ip) return false;
    }
    out.push_back(pm);
    if (comma == std::string_view::npos) return true;
    f.remove_prefix(comma + 1);
  }
}

/// A record line after its sum was checked.
struct Cursor {
  size_t set = 0;
  std::optional<IpAddr> ip;
};

enum class LineKind { kCursor, kAttach, kGarbage, kBadSum };

/// Parses one record line (without its '\n'). For an attachment, `key` is set to the encoded
/// "<container_id> <ifname>" inside `line`: encodings are canonical, so it identifies the
/// attachment without copying.
LineKind parse_record(std::string_view line, Cursor& cursor, Attachment& att,
                      std::string_view& key) {
  constexpr size_t kSumLen = 9;  // " " + 8 hex digits
  if (line.size() <= kSumLen || line[line.size() - kSumLen] != ' ') return LineKind::kGarbage;
  auto body = line.substr(0, line.size() - kSumLen);
  uint32_t sum = 0;
  if (!parse_hex(line.substr(line.size() - 8), sum)) return LineKind::kGarbage;
  std::array<std::string_view, 9> f;
  size_t n = split_into(body, ' ', f);
  if (f[0] != "cursor" && f[0] != "attach") return LineKind::kGarbage;
  if (sum != crc32c(body)) return LineKind::kBadSum;
  if (f[0] == "cursor") {
    uint64_t set = 0;
    if (n != 3 || !parse_uint(f[1], set) || set >= kMaxSets) return LineKind::kGarbage;
    cursor.set = static_cast<size_t>(set);
    cursor.ip.reset();
    if (f[2] != "-") {
      cursor.ip = parse_ip(f[2]);
      if (!cursor.ip) return LineKind::kGarbage;
    }
    return LineKind::kCursor;
  }
  if (n != 9) return LineKind::kGarbage;
  bool ok = parse_field(f[1], att.container_id) && parse_field(f[2], att.ifname) &&
            parse_ips(f[3], att.ips) && parse_field(f[4], att.host_ifname) &&
            parse_field(f[5], att.netns) && parse_field(f[6], att.pod_namespace) &&
            parse_field(f[7], att.pod_name) && parse_ports(f[8], att.port_mappings);
  key = std::string_view(f[1].data(), f[1].size() + 1 + f[2].size());
  return ok ? LineKind::kAttach : LineKind::kGarbage;
}

/// Collects what decode() found wrong, for the LoadReport: findings about the whole file are
/// always listed, dropped lines up to kMaxListed and then only counted.
class Problems {
 public:
  void file(std::string what) { file_.push_back(std::move(what)); }
  void line(size_t line_no, std::string_view what) {
    if (lines_.size() < kMaxListed) {
      lines_.push_back(str("line ", line_no, ": ", what));
    } else {
      ++unlisted_;
    }
  }
  bool empty() const { return file_.empty() && lines_.empty(); }
  std::string join() const {
    std::string out;
    for (const auto* list : {&file_, &lines_}) {
      for (const auto& p : *list) {
        if (!out.empty()) out += "; ";
        out += p;
      }
    }
    if (unlisted_) out += str("; ", unlisted_, " more lines dropped");
    return out;
  }

 private:
  std::vector<std::string> file_;
  std::vector<std::string> lines_;
  size_t unlisted_ = 0;
};

/// An insert-only open-addressing hash set: decode() checks every record against the ones kept
/// before it, and node-based std::unordered_set spends more time in malloc than in hashing.
template <class T, class Hash>
class FlatSet {
 public:
  explicit FlatSet(size_t expected) {
    size_t cap = 16;
    while (cap < 2 * expected) cap *= 2;
    slots_.resize(cap);
  }
  bool contains(const T& v) const {
    for (size_t i = slot(v);; i = (i + 1) & mask()) {
      if (!slots_[i]) return false;
      if (*slots_[i] == v) return true;
    }
  }
  void insert(const T& v) {
    if (2 * (size_ + 1) > slots_.size()) grow();
    for (size_t i = slot(v);; i = (i + 1) & mask()) {
      if (!slots_[i]) {
        slots_[i] = v;
        ++size_;
        return;
      }
      if (*slots_[i] == v) return;
    }
  }

 private:
  size_t mask() const { return slots_.size() - 1; }
  size_t slot(const T& v) const { return static_cast<size_t>(Hash{}(v)) & mask(); }
  void grow() {
    std::vector<std::optional<T>> old(slots_.size() * 2);
    old.swap(slots_);
    size_ = 0;
    for (auto& v : old) {
      if (v) insert(*v);
    }
  }
  std::vector<std::optional<T>> slots_;
  size_t size_ = 0;
};

uint64_t mix(uint64_t x) {
  x ^= x >> 31;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 29;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 32);
}

struct AddrHash {
  size_t operator()(const IpAddr& a) const noexcept {
    uint64_t w[2];
    std::memcpy(w, a.data(), sizeof w);  // IpAddr keeps unused bytes zero
    return static_cast<size_t>(mix(w[0] ^ mix(w[1] ^ static_cast<uint64_t>(a.family()))));
  }
};

struct ViewHash {
  size_t operator()(std::string_view s) const noexcept {
    return mix(crc32c(s) ^ (uint64_t{s.size()} << 32));
  }
};

/// `s` for a one-line message: at most 40 bytes, control and non-ASCII bytes as %XX (the CNI
/// error is JSON, which must be valid UTF-8).
std::string printable(std::string_view s) {
  constexpr size_t kMax = 40;
  std::string out;
  for (unsigned char c : s.substr(0, kMax)) {
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      const char esc[3] = {'%', kHexUpper[c >> 4], kHexUpper[c & 15]};
      out.append(esc, 3);
    }
  }
  if (s.size() > kMax) out += "...";
  return out;
}

std::string join_path(const std::string& dir, std::string_view name) {
  return str(dir, '/', name);
}

/// Rethrows an I/O failure as Error(kStore) so callers see one code for "the store is unusable".
[[noreturn]] void store_failure(std::string_view what, const Error& e) {
  throw Error(Code::kStore, str(what, ": ", e.what()), e.sys_errno());
}

/// The path of a store.corrupt.* file in `dir` holding exactly `bytes`, or "". Unreadable
/// entries are skipped: this only avoids piling up copies of the same damage.
std::string find_copy(const std::string& dir, std::string_view bytes) {
  DIR* d = opendir(dir.c_str());
  if (!d) return {};
  std::string found;
  while (dirent* e = readdir(d)) {
    std::string_view name = e->d_name;
    if (name.substr(0, kCorruptPrefix.size()) != kCorruptPrefix) continue;
    auto path = join_path(dir, name);
    try {
      auto old = read_file(path);
      if (old && *old == bytes) {
        found = path;
        break;
      }
    } catch (const Error&) {
      continue;
    }
  }
  closedir(d);
  return found;
}

/// Saves the damaged bytes as <dir>/store.corrupt.<unix seconds>[.<n>] unless an identical copy
/// is already there (the damaged store was loaded before and not committed since); returns the
/// copy's path.
std::string save_corrupt(const std::string& dir, std::string_view bytes) {
  if (auto found = find_copy(dir, bytes); !found.empty()) return found;
  std::string base = str(kCorruptPrefix, static_cast<long long>(::time(nullptr)));
  std::string name = base;
  for (int n = 1; ::access(join_path(dir, name).c_str(), F_OK) == 0; ++n) {
    name = str(base, '.', n);
  }
  atomic_write(dir, name, bytes, 0600);
  return join_path(dir, name);
}

}  // namespace

std::string encode(const State& s) {
  std::string out;
  out.reserve(64 + 48 * s.last_reserved.size() + 256 * s.attachments.size());
  out.append(kHeader);
  out.push_back('\n');
  for (size_t i = 0; i < s.last_reserved.size(); ++i) {
    size_t start = out.size();
    out.append("cursor ");
    detail::append(out, i);
    out.push_back(' ');
    if (s.last_reserved[i]) {
      append_ip(out, *s.last_reserved[i]);
    } else {
      out.push_back('-');
    }
    end_record(out, start);
  }
  for (const auto& a : s.attachments) {
    size_t start = out.size();
    out.append("attach ");
    append_field(out, a.container_id);
    out.push_back(' ');
    append_field(out, a.ifname);
    out.push_back(' ');
    if (a.ips.empty()) out.push_back('-');
    for (size_t i = 0; i < a.ips.size(); ++i) {
      if (i) out.push_back(',');
      append_ip(out, a.ips[i]);
    }
    for (const auto* f : {&a.host_ifname, &a.netns, &a.pod_namespace, &a.pod_name}) {
      out.push_back(' ');
      append_field(out, *f);
    }
    out.push_back(' ');
    if (a.port_mappings.empty()) out.push_back('-');
    for (size_t i = 0; i < a.port_mappings.size(); ++i) {
      const auto& pm = a.port_mappings[i];
      if (i) out.push_back(',');
      out.append(protocol_name(pm.protocol));
      out.push_back('/');
      detail::append(out, pm.host_port);
      out.push_back('/');
      detail::append(out, pm.container_port);
      if (pm.host_ip) {
        out.push_back('/');
        append_ip(out, *pm.host_ip);
      }
    }
    end_record(out, start);
  }
  uint32_t sum = crc32c(out);
  out.append("end ");
  detail::append(out, s.last_reserved.size() + s.attachments.size());
  out.push_back(' ');
  append_hex(out, sum);
  out.push_back('\n');
  return out;
}

State decode(std::string_view text, LoadReport& report, std::string_view path) {
  report = {};
  State s;
  if (text.empty()) {
    report.repaired = true;
    report.detail = "the file is empty (a store has at least a header and a trailer); no records";
    return s;
  }

  size_t nl = text.find('\n');
  std::string_view header = text.substr(0, nl);
  if (header != kHeader) {
    // A torn header is a prefix of the real one; anything else may be another program's file.
    std::string cause =
        header.substr(0, kHeaderStem.size()) == kHeaderStem && nl != std::string_view::npos
            ? str("unsupported format version \"", printable(header.substr(kHeaderStem.size())),
                  "\" (this knit reads ", kHeader.substr(kHeaderStem.size()), ")")
            : str("first line is \"", printable(header), "\", expected \"", kHeader, "\"");
    fail(Code::kStore,
         str("ipam store ", path, " is not a knit store: ", cause, "; move it aside to reset"));
  }

  Problems problems;
  size_t records = 0;  // intact record lines before the trailer
  std::optional<uint64_t> trailer_count;
  uint32_t trailer_sum = 0;
  size_t trailer_offset = 0;

  // Sized for an intact file: a record per line, two addresses per attachment.
  size_t expect = 0;
  for (auto p = text.data(), e = p + text.size();
       (p = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(e - p)))); ++p) {
    ++expect;
  }
  s.attachments.reserve(expect);
  std::vector<bool> have_cursor;
  FlatSet<std::string_view, ViewHash> keys(expect);
  FlatSet<IpAddr, AddrHash> claimed(2 * expect);
  Cursor cursor;
  Attachment att;
  std::string_view key;

  size_t pos = nl == std::string_view::npos ? text.size() : nl + 1;
  for (size_t line_no = 2; pos < text.size(); ++line_no) {
    size_t end = text.find('\n', pos);
    size_t line_start = pos;
    if (end == std::string_view::npos) {
      problems.line(line_no, "torn (no final newline), dropped");
      break;
    }
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;

    if (line.substr(0, 4) == "end ") {
      std::array<std::string_view, 3> f;
      uint64_t count = 0;
      uint32_t sum = 0;
      if (trailer_count || split_into(line, ' ', f) != 3 || !parse_uint(f[1], count) ||
          !parse_hex(f[2], sum)) {
        problems.line(line_no, "damaged or repeated trailer, dropped");
        continue;
      }
      trailer_count = count;
      trailer_sum = sum;
      trailer_offset = line_start;
      if (pos != text.size()) problems.file(str("text after the trailer on line ", line_no));
      continue;
    }

    switch (parse_record(line, cursor, att, key)) {
      case LineKind::kGarbage:
        problems.line(line_no, "not a record, dropped");
        continue;
      case LineKind::kBadSum:
        problems.line(line_no, "record checksum mismatch, dropped");
        continue;
      case LineKind::kCursor:
        if (!trailer_count) ++records;
        if (cursor.set < have_cursor.size() && have_cursor[cursor.set]) {
          problems.line(line_no, str("second cursor for range set ", cursor.set, ", dropped"));
          continue;
        }
        if (have_cursor.size() <= cursor.set) {
          have_cursor.resize(cursor.set + 1);
          s.last_reserved.resize(cursor.set + 1);
        }
        have_cursor[cursor.set] = true;
        s.last_reserved[cursor.set] = cursor.ip;
        continue;
      case LineKind::kAttach:
        break;
    }

    if (!trailer_count) ++records;
    if (keys.contains(key)) {
      problems.line(line_no, str("second record for attachment ", printable(att.container_id), '/',
                                 printable(att.ifname), ", dropped"));
      continue;
    }
    auto taken = std::find_if(att.ips.begin(), att.ips.end(),
                              [&](const IpAddr& ip) { return claimed.contains(ip); });
    if (taken != att.ips.end()) {
      problems.line(line_no, str("address ", taken->to_string(),
                                 " already claimed by an earlier record, dropped attachment ",
                                 printable(att.container_id), '/', printable(att.ifname)));
      continue;
    }
    keys.insert(key);
    for (const auto& ip : att.ips) claimed.insert(ip);
    s.attachments.push_back(std::move(att));
    att = {};
  }

  if (!trailer_count) {
    problems.file("trailer missing (file truncated): records after the last intact line are lost");
  } else {
    if (*trailer_count != records) {
      problems.file(str("trailer counts ", *trailer_count, " records, found ", records, " intact"));
    }
    if (trailer_sum != crc32c(text.substr(0, trailer_offset))) {
      problems.file("file checksum mismatch");
    }
  }

  if (!problems.empty()) {
    report.repaired = true;
    report.detail = str(problems.join(), "; kept ", s.attachments.size(), " attachments");
  }
  return s;
}

Store::Store(std::string data_dir, std::string network) {
  if (network.empty() || network == "." || network == ".." ||
      network.find_first_of(std::string_view("/\0", 2)) != std::string::npos) {
    fail(Code::kInvalidConfig,
         str("open ipam store: network name \"", printable(network), "\" is not a directory name"));
  }
  dir_ = join_path(data_dir, network);
  try {
    make_dirs(dir_, 0700);
  } catch (const Error& e) {
    store_failure(str("open ipam store ", dir_), e);
  }
}

Store::Txn Store::begin(std::chrono::milliseconds timeout) {
  std::optional<FileLock> lock;
  try {
    lock = FileLock::acquire(join_path(dir_, "lock"), timeout);
  } catch (const Error& e) {
    store_failure(str("lock ipam store ", dir_), e);
  }
  if (!lock) {
    fail(Code::kTryAgainLater, str("ipam store ", dir_, " is busy: its lock is still held after ",
                                   static_cast<long long>(timeout.count()), " ms"));
  }
  auto path = join_path(dir_, kStoreName);
  std::optional<std::string> text;
  try {
    text = read_file(path);
  } catch (const Error& e) {
    store_failure(str("read ipam store ", path), e);
  }
  if (!text) return Txn(std::move(*lock), dir_, State{}, LoadReport{});
  LoadReport report;
  State state = decode(*text, report, path);
  if (report.repaired) {
    try {
      auto copy = save_corrupt(dir_, *text);
      report.detail += str("; damaged original kept as ", copy);
    } catch (const Error& e) {
      store_failure(str("keep damaged ipam store ", path), e);
    }
  }
  return Txn(std::move(*lock), dir_, std::move(state), std::move(report));
}

void Store::Txn::commit() {
  try {
    atomic_write(dir_, std::string(kStoreName), encode(state_), 0600);
  } catch (const Error& e) {
    store_failure(str("commit ipam store ", join_path(dir_, kStoreName)), e);
  }
}

}  // namespace knit::ipam
