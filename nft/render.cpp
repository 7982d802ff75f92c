#include "nft/render.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "core/str.hpp"

namespace knit::nft {

namespace {

struct Name {
  uint32_t value;
  const char* name;
};

constexpr Name kProtos[] = {{1, "icmp"},   {2, "igmp"},     {6, "tcp"}, {17, "udp"},
                            {47, "gre"},   {50, "esp"},     {51, "ah"}, {58, "ipv6-icmp"},
                            {132, "sctp"}, {136, "udplite"}};
constexpr Name kIcmpTypes[] = {{0, "echo-reply"},           {3, "destination-unreachable"},
                               {4, "source-quench"},        {5, "redirect"},
                               {8, "echo-request"},         {9, "router-advertisement"},
                               {10, "router-solicitation"}, {11, "time-exceeded"},
                               {12, "parameter-problem"},   {13, "timestamp-request"},
                               {14, "timestamp-reply"},     {15, "info-request"},
                               {16, "info-reply"},          {17, "address-mask-request"},
                               {18, "address-mask-reply"}};
constexpr Name kIcmpv6Types[] = {
    {1, "destination-unreachable"}, {2, "packet-too-big"},        {3, "time-exceeded"},
    {4, "parameter-problem"},       {128, "echo-request"},        {129, "echo-reply"},
    {130, "mld-listener-query"},    {131, "mld-listener-report"}, {132, "mld-listener-done"},
    {133, "nd-router-solicit"},     {134, "nd-router-advert"},    {135, "nd-neighbor-solicit"},
    {136, "nd-neighbor-advert"},    {137, "nd-redirect"},         {138, "router-renumbering"},
    {143, "mld2-listener-report"}};
constexpr Name kCtStates[] = {
    {1, "invalid"}, {2, "established"}, {4, "related"}, {8, "new"}, {64, "untracked"}};
constexpr Name kCtStatus[] = {{1, "expected"}, {2, "seen-reply"}, {4, "assured"}, {8, "confirmed"},
                              {16, "snat"},    {32, "dnat"},      {512, "dying"}};
constexpr Name kFibTypes[] = {{0, "unspec"},    {1, "unicast"},     {2, "local"},
                              {3, "broadcast"}, {4, "anycast"},     {5, "multicast"},
                              {6, "blackhole"}, {7, "unreachable"}, {8, "prohibit"}};
constexpr const char* kLogLevels[] = {"emerg", "alert",  "crit", "err",
                                      "warn",  "notice", "info", "debug"};

template <size_t N>
std::string name_or_number(const Name (&names)[N], uint32_t v) {
  for (const auto& n : names)
    if (n.value == v) return n.name;
  return str(v);
}

template <size_t N>
std::string bit_names(const Name (&names)[N], uint32_t v) {
  std::string out;
  uint32_t left = v;
  for (const auto& n : names) {
    if ((v & n.value) == 0) continue;
    if (!out.empty()) out += ',';
    out += n.name;
    left &= ~n.value;
  }
  if (left != 0 || out.empty()) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08x", left);
    if (!out.empty()) out += ',';
    out += buf;
  }
  return out;
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

std::string quoted(std::string_view s) {
  return str('"', s, '"');
}

std::string render_key(const std::vector<Sel>& key) {
  std::string out;
  for (size_t i = 0; i < key.size(); ++i) {
    if (i > 0) out += " . ";
    out += sel_name(key[i]);
  }
  return out;
}

bool is_addr(Type t) {
  return t == Type::kIpv4Addr || t == Type::kIpv6Addr;
}
bool is_bitmask(Type t) {
  return t == Type::kCtState || t == Type::kCtStatus;
}

/// Prefix length when `mask` is a run of ones followed by zeros, else -1.
int prefix_len(const Value& mask) {
  int len = 0;
  bool zeros = false;
  for (size_t i = 0; i < mask.size(); ++i) {
    for (int b = 7; b >= 0; --b) {
      bool one = (mask.data()[i] >> b) & 1;
      if (one && zeros) return -1;
      if (one)
        ++len;
      else
        zeros = true;
    }
  }
  return len;
}

/// Prefix length when [lo, hi] is exactly one CIDR block, else -1.
int range_prefix(const Value& lo, const Value& hi) {
  size_t n = lo.size();
  int len = 0;
  size_t i = 0;
  for (; i < n && lo.data()[i] == hi.data()[i]; ++i) len += 8;
  if (i == n) return len;
  uint8_t x = lo.data()[i] ^ hi.data()[i];
  // The differing bits must be a suffix of ones in hi and zeros in lo.
  int run = 0;
  while (run < 8 && (x & (0x80 >> run)) == 0) ++run;
  uint8_t suffix = static_cast<uint8_t>(0xff >> run);
  if (x != suffix || (lo.data()[i] & suffix) != 0) return -1;
  len += run;
  for (++i; i < n; ++i)
    if (lo.data()[i] != 0 || hi.data()[i] != 0xff) return -1;
  return len;
}

std::string render_field(Type t, const Value& lo, const Value& hi) {
  if (lo == hi) return render_value(t, lo);
  if (is_addr(t)) {
    int len = range_prefix(lo, hi);
    if (len >= 0) return str(lo.as_addr().to_string(), '/', len);
  }
  return str(render_value(t, lo), '-', render_value(t, hi));
}

std::string reject_text(RejectKind k, TableFamily f) {
  if (k == RejectKind::kTcpReset) return "reject with tcp reset";
  if (k == RejectKind::kPortUnreachable) return "reject";
  const char* with = f == TableFamily::kInet ? "icmpx"
                     : f == TableFamily::kIp ? "icmp type"
                                             : "icmpv6 type";
  const char* code = "";
  switch (k) {
    case RejectKind::kAdminProhibited:
      code = "admin-prohibited";
      break;
    case RejectKind::kHostUnreachable:
      code = f == TableFamily::kIp6 ? "addr-unreachable" : "host-unreachable";
      break;
    case RejectKind::kNoRoute:
      code = f == TableFamily::kIp ? "net-unreachable" : "no-route";
      break;
    default:
      break;
  }
  return str("reject with ", with, ' ', code);
}

}  // namespace

std::string_view hook_name(Hook h) {
  switch (h) {
    case Hook::kPrerouting:
      return "prerouting";
    case Hook::kInput:
      return "input";
    case Hook::kForward:
      return "forward";
    case Hook::kOutput:
      return "output";
    case Hook::kPostrouting:
      return "postrouting";
  }
  return "?";
}

std::string render_value(Type t, const Value& v) {
  switch (t) {
    case Type::kIpv4Addr:
    case Type::kIpv6Addr:
      return v.as_addr().to_string();
    case Type::kInetProto:
      return name_or_number(kProtos, v.as_u8());
    case Type::kInetService:
      return str(v.as_port());
    case Type::kNfproto:
      return v.as_u8() == proto::kIpv4   ? "ipv4"
             : v.as_u8() == proto::kIpv6 ? "ipv6"
                                         : str(v.as_u8());
    case Type::kIcmpType:
      return name_or_number(kIcmpTypes, v.as_u8());
    case Type::kIcmpv6Type:
      return name_or_number(kIcmpv6Types, v.as_u8());
    case Type::kMark:
      return hex32(v.as_u32());
    case Type::kIfindex:
    case Type::kUid:
      return str(v.as_u32());
    case Type::kCtState:
      return bit_names(kCtStates, v.as_u32());
    case Type::kCtStatus:
      return bit_names(kCtStatus, v.as_u32());
    case Type::kFibAddrType:
      return name_or_number(kFibTypes, v.as_u32());
    case Type::kIfname:
      return quoted(v.as_ifname());
    case Type::kVerdict:
      return "?";
  }
  return "?";
}

std::string render_verdict(const Verdict& v) {
  switch (v.kind) {
    case VerdictKind::kAccept:
      return "accept";
    case VerdictKind::kDrop:
      return "drop";
    case VerdictKind::kReturn:
      return "return";
    case VerdictKind::kContinue:
      return "continue";
    case VerdictKind::kJump:
      return str("jump ", v.chain);
    case VerdictKind::kGoto:
      return str("goto ", v.chain);
  }
  return "?";
}

std::string render_priority(Hook hook, int32_t p) {
  struct Std {
    const char* name;
    int32_t value;
    bool ok;
  };
  const Std stds[] = {{"raw", prio::kRaw, true},
                      {"mangle", prio::kMangle, true},
                      {"dstnat", prio::kDstnat, hook == Hook::kPrerouting},
                      {"filter", prio::kFilter, true},
                      {"security", prio::kSecurity, true},
                      {"srcnat", prio::kSrcnat, hook == Hook::kPostrouting}};
  for (const auto& s : stds) {
    if (!s.ok) continue;
    int32_t off = p - s.value;
    if (off == 0) return s.name;
    if (off > 0 && off <= 10) return str(s.name, " + ", off);
    if (off < 0 && off >= -10) return str(s.name, " - ", -off);
  }
  return str(p);
}

std::string render_stmt(const Stmt& st, TableFamily f) {
  struct V {
    TableFamily f;
    std::string operator()(const Cmp& c) const {
      Type t = sel_type(c.sel);
      std::string s(sel_name(c.sel));
      const char* ne = c.op == CmpOp::kNe ? " != " : " ";
      if (!c.mask) return str(s, ne, render_value(t, c.value));
      if (is_addr(t)) {
        int len = prefix_len(*c.mask);
        if (len >= 0) return str(s, ne, c.value.as_addr().to_string(), '/', len);
      }
      if (is_bitmask(t) && c.op == CmpOp::kNe && c.value.as_u32() == 0) {
        return str(s, ' ', render_value(t, *c.mask));
      }
      return str(s, " & ", render_value(t, *c.mask),
                 c.op == CmpOp::kNe ? " != " : " == ", render_value(t, c.value));
    }
    std::string operator()(const Range& r) const {
      Type t = sel_type(r.sel);
      return str(sel_name(r.sel), r.op == CmpOp::kNe ? " != " : " ", render_value(t, r.lo), '-',
                 render_value(t, r.hi));
    }
    std::string operator()(const Lookup& l) const {
      return str(render_key(l.key), l.negate ? " != @" : " @", l.set);
    }
    std::string operator()(const Vmap& v) const { return str(render_key(v.key), " vmap @", v.map); }
    std::string operator()(const Verdict& v) const { return render_verdict(v); }
    std::string operator()(const Counter&) const { return "counter"; }
    std::string operator()(const CounterRef& c) const {
      return str("counter name ", quoted(c.name));
    }
    std::string operator()(const SetMark& m) const {
      return str(m.target == MarkTarget::kCt ? "ct" : "meta", " mark set ", hex32(m.value));
    }
    std::string operator()(const DnatMap& d) const {
      return str("dnat ", d.family == Family::kV4 ? "ip" : "ip6", " to ", render_key(d.key),
                 " map @", d.map);
    }
    std::string operator()(const Nat& n) const {
      bool v4 = n.addr.is_v4();
      std::string s = str(n.type == NatType::kSnat ? "snat " : "dnat ", v4 ? "ip" : "ip6", " to ");
      if (!n.port) return s + n.addr.to_string();
      if (v4) return str(s, n.addr.to_string(), ':', *n.port);
      return str(s, '[', n.addr.to_string(), "]:", *n.port);
    }
    std::string operator()(const Masquerade& m) const {
      std::string flags;
      auto add = [&](bool on, const char* name) {
        if (!on) return;
        if (!flags.empty()) flags += ',';
        flags += name;
      };
      add(m.random, "random");
      add(m.fully_random, "fully-random");
      add(m.persistent, "persistent");
      return flags.empty() ? "masquerade" : "masquerade " + flags;
    }
    std::string operator()(const Log& l) const {
      std::string s = "log";
      if (!l.prefix.empty()) s += str(" prefix ", quoted(l.prefix));
      if (l.group) s += str(" group ", *l.group);
      if (l.level) s += str(" level ", *l.level < 8 ? kLogLevels[*l.level] : "audit");
      return s;
    }
    std::string operator()(const Notrack&) const { return "notrack"; }
    std::string operator()(const Reject& r) const { return reject_text(r.kind, f); }
    std::string operator()(const Raw& r) const { return str("__raw ", quoted(r.text)); }
  };
  return std::visit(V{f}, st);
}

std::string render_rule(const Rule& r0, TableFamily f) {
  Rule r = canonical(r0, f);
  std::string out;
  for (const auto& s : r.stmts) {
    if (!out.empty()) out += ' ';
    out += render_stmt(s, f);
  }
  if (!r.comment.empty()) out += str(out.empty() ? "" : " ", "comment ", quoted(r.comment));
  return out;
}

std::string render_element(const Set& set, const Element& e) {
  std::string out;
  size_t off = 0;
  for (size_t i = 0; i < set.key.size(); ++i) {
    Type t = set.key[i];
    size_t n = type_size(t);
    if (i > 0) out += " . ";
    Value lo = e.key.field(off, n);
    Value hi = set.interval ? e.key_end.field(off, n) : lo;
    out += render_field(t, lo, hi.empty() ? lo : hi);
    off += (n + 3) & ~size_t{3};
  }
  // nft's syntax puts an element's comment after its key, before a map's value.
  if (!e.comment.empty()) out += str(" comment ", quoted(e.comment));
  if (set.is_vmap()) {
    out += str(" : ", render_verdict(e.verdict));
  } else if (set.is_map()) {
    out += " : ";
    size_t doff = 0;
    for (size_t i = 0; i < set.data.size(); ++i) {
      size_t n = type_size(set.data[i]);
      if (i > 0) out += " . ";
      out += render_value(set.data[i], e.data.field(doff, n));
      doff += (n + 3) & ~size_t{3};
    }
  }
  return out;
}

namespace {

void render_set(std::string& out, const Set& s) {
  out += str("\t", s.is_map() ? "map " : "set ", s.name, " {\n\t\ttype ");
  for (size_t i = 0; i < s.key.size(); ++i) out += str(i ? " . " : "", type_name(s.key[i]));
  if (s.is_map()) {
    out += " : ";
    for (size_t i = 0; i < s.data.size(); ++i) out += str(i ? " . " : "", type_name(s.data[i]));
  }
  out += '\n';
  if (s.constant || s.interval) {
    out += "\t\tflags ";
    if (s.constant)
      out += s.interval ? "constant,interval" : "constant";
    else
      out += "interval";
    out += '\n';
  }
  if (!s.elements.empty()) {
    std::vector<const Element*> els;
    els.reserve(s.elements.size());
    for (const auto& e : s.elements) els.push_back(&e);
    std::sort(els.begin(), els.end(), [](const Element* a, const Element* b) {
      if (a->key != b->key) return a->key < b->key;
      return a->key_end < b->key_end;
    });
    out += "\t\telements = { ";
    for (size_t i = 0; i < els.size(); ++i) {
      if (i > 0) out += ",\n\t\t\t     ";
      out += render_element(s, *els[i]);
    }
    out += " }\n";
  }
  out += "\t}\n";
}

void render_chain(std::string& out, const Chain& c, TableFamily f) {
  out += str("\tchain ", c.name, " {\n");
  if (c.base) {
    const auto& b = *c.base;
    out += str("\t\ttype ", b.type == ChainType::kNat ? "nat" : "filter", " hook ",
               hook_name(b.hook), " priority ", render_priority(b.hook, b.priority), "; policy ",
               b.policy == Policy::kDrop ? "drop" : "accept", ";\n");
  }
  for (const auto& r : c.rules) out += str("\t\t", render_rule(r, f), '\n');
  out += "\t}\n";
}

template <class T>
std::vector<const T*> sorted_by_name(const std::vector<T>& v) {
  std::vector<const T*> p;
  p.reserve(v.size());
  for (const auto& x : v) p.push_back(&x);
  std::sort(p.begin(), p.end(), [](const T* a, const T* b) { return a->name < b->name; });
  return p;
}

}  // namespace

std::string render(const Ruleset& rs) {
  std::string out = str("table ", family_name(rs.table.family), ' ', rs.table.name, " {\n");
  bool first = true;
  auto sep = [&] {
    if (!first) out += '\n';
    first = false;
  };
  for (const auto* c : sorted_by_name(rs.counters)) {
    sep();
    out += str("\tcounter ", c->name, " {\n\t}\n");
  }
  for (const auto* s : sorted_by_name(rs.sets)) {
    sep();
    render_set(out, *s);
  }
  for (const auto* c : sorted_by_name(rs.chains)) {
    sep();
    render_chain(out, *c, rs.table.family);
  }
  out += "}\n";
  return out;
}

}  // namespace knit::nft
