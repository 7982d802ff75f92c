#include "cni/hostport.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <chrono>

#include "core/error.hpp"
#include "core/str.hpp"
#include "nft/apply.hpp"
#include "nft/plan.hpp"

namespace knit::cni::hostport {

namespace {

using nft::Sel;
using nft::Type;
using nft::Value;

constexpr std::string_view kDnat4 = "dnat4", kDnat6 = "dnat6", kAny4 = "dnat_any4",
                           kAny6 = "dnat_any6", kHairpin4 = "hairpin4", kHairpin6 = "hairpin6";
constexpr std::string_view kHostports = "hostports";
/// nftables keeps 127 bytes of an element comment (NFTNL_UDATA_COMMENT_MAXLEN - 1).
constexpr size_t kMaxComment = 127;

bool v4(Family f) { return f == Family::kV4; }
Type addr_type(Family f) { return v4(f) ? Type::kIpv4Addr : Type::kIpv6Addr; }
size_t addr_len(Family f) { return v4(f) ? 4 : 16; }

std::string_view map_name(Family f, bool any) {
  if (any) return v4(f) ? kAny4 : kAny6;
  return v4(f) ? kDnat4 : kDnat6;
}

nft::Set dnat_map(std::string_view name, Family f, bool with_host) {
  nft::Set s;
  s.name = std::string(name);
  if (with_host) s.key.push_back(addr_type(f));
  s.key.push_back(Type::kInetProto);
  s.key.push_back(Type::kInetService);
  s.data = {addr_type(f), Type::kInetService};
  return s;
}

nft::Set hairpin_set(std::string_view name, Family f) {
  nft::Set s;
  s.name = std::string(name);
  s.key = {addr_type(f), addr_type(f)};
  return s;
}

nft::Chain base(std::string name, nft::ChainType type, nft::Hook hook, int32_t prio,
                std::vector<nft::Rule> rules) {
  return {std::move(name), nft::BaseChain{type, hook, prio, nft::Policy::kAccept},
          std::move(rules)};
}

/// The static part of the table: maps and sets (empty), chains and rules.
nft::Ruleset skeleton() {
  using nft::ChainType;
  using nft::Hook;
  nft::Ruleset rs;
  rs.table = {nft::TableFamily::kInet, std::string(kTable)};
  rs.sets = {dnat_map(kDnat4, Family::kV4, true), dnat_map(kDnat6, Family::kV6, true),
             dnat_map(kAny4, Family::kV4, false), dnat_map(kAny6, Family::kV6, false),
             hairpin_set(kHairpin4, Family::kV4), hairpin_set(kHairpin6, Family::kV6)};

  const nft::Rule to_hostports{
      {nft::match(Sel::kFibDaddrType, Value::u32(nft::fib::kLocal)),
       nft::jump(std::string(kHostports))},
      {}};
  rs.chains.push_back(
      base("prerouting", ChainType::kNat, Hook::kPrerouting, nft::prio::kDstnat, {to_hostports}));
  rs.chains.push_back(
      base("output", ChainType::kNat, Hook::kOutput, nft::prio::kDstnat, {to_hostports}));

  const std::vector<Sel> port_key = {Sel::kL4proto, Sel::kThDport};
  nft::Chain hostports{std::string(kHostports), std::nullopt, {}};
  hostports.rules.push_back(
      {{nft::DnatMap{Family::kV4, {Sel::kIpDaddr, Sel::kL4proto, Sel::kThDport},
                     std::string(kDnat4)}},
       {}});
  hostports.rules.push_back(
      {{nft::DnatMap{Family::kV6, {Sel::kIp6Daddr, Sel::kL4proto, Sel::kThDport},
                     std::string(kDnat6)}},
       {}});
  hostports.rules.push_back({{nft::match(Sel::kNfproto, Value::u8(nft::proto::kIpv4)),
                              nft::DnatMap{Family::kV4, port_key, std::string(kAny4)}},
                             {}});
  hostports.rules.push_back({{nft::match(Sel::kNfproto, Value::u8(nft::proto::kIpv6)),
                              nft::DnatMap{Family::kV6, port_key, std::string(kAny6)}},
                             {}});
  rs.chains.push_back(std::move(hostports));

  const Prefix loopback = *Prefix::parse("127.0.0.0/8");
  const auto dnatted = nft::match_any(Sel::kCtStatus, nft::ct::kStatusDnat);
  rs.chains.push_back(base(
      "postrouting", ChainType::kNat, Hook::kPostrouting, nft::prio::kSrcnat,
      {{{dnatted, nft::match_prefix(Sel::kIpSaddr, loopback), nft::Masquerade{}}, {}},
       {{dnatted, nft::Lookup{{Sel::kIpSaddr, Sel::kIpDaddr}, std::string(kHairpin4), false},
         nft::Masquerade{}},
        {}},
       {{dnatted, nft::Lookup{{Sel::kIp6Saddr, Sel::kIp6Daddr}, std::string(kHairpin6), false},
         nft::Masquerade{}},
        {}}}));
  // CVE-2020-8558: route_localnet on a pod's veth must not let anyone reach the node's
  // 127.0.0.0/8 services; only replies to connections the node opened come back that way.
  rs.chains.push_back(
      base("input", ChainType::kFilter, Hook::kInput, nft::prio::kFilter,
           {{{nft::match_ne(Sel::kIifname, Value::ifname("lo")),
              nft::match_prefix(Sel::kIpDaddr, loopback),
              nft::match_any(Sel::kCtState, nft::ct::kNew | nft::ct::kInvalid | nft::ct::kUntracked),
              nft::drop()},
             {}}}));
  rs.sort();
  return rs;
}

nft::Element to_element(const Entry& e) {
  nft::Element el =
      e.host_ip ? nft::element({nft::Field(*e.host_ip), Value::u8(e.proto), Value::port(e.host_port)},
                               {Value::addr(e.pod_ip), Value::port(e.container_port)})
                : nft::element({Value::u8(e.proto), Value::port(e.host_port)},
                               {Value::addr(e.pod_ip), Value::port(e.container_port)});
  el.comment = e.owner;
  return el;
}

nft::Element hairpin_element(const Entry& e) {
  nft::Element el = nft::element({nft::Field(e.pod_ip), nft::Field(e.pod_ip)});
  el.comment = e.owner;
  return el;
}

/// The entry an element of a DNAT map stands for; nullopt for any other set or a malformed key.
std::optional<Entry> parse(const nft::Set& s, const nft::Element& el) {
  bool any;
  Family f;
  if (s.name == kDnat4 || s.name == kDnat6) {
    any = false;
    f = s.name == kDnat4 ? Family::kV4 : Family::kV6;
  } else if (s.name == kAny4 || s.name == kAny6) {
    any = true;
    f = s.name == kAny4 ? Family::kV4 : Family::kV6;
  } else {
    return std::nullopt;
  }
  size_t alen = addr_len(f), off = any ? 0 : alen;
  if (el.key.size() != off + 8 || el.data.size() != alen + 4) return std::nullopt;
  Entry e;
  if (!any) e.host_ip = el.key.field(0, alen).as_addr();
  e.proto = el.key.field(off, 1).as_u8();
  e.host_port = el.key.field(off + 4, 2).as_port();
  e.pod_ip = el.data.field(0, alen).as_addr();
  e.container_port = el.data.field(alen, 2).as_port();
  e.owner = el.comment;
  return e;
}

std::vector<Entry> entries_in(const std::optional<nft::Ruleset>& current) {
  std::vector<Entry> out;
  if (!current) return out;
  for (const auto& s : current->sets) {
    for (const auto& el : s.elements) {
      if (auto e = parse(s, el)) out.push_back(std::move(*e));
    }
  }
  return out;
}

bool overlaps(const Entry& a, const Entry& b) {
  return a.family() == b.family() && a.proto == b.proto && a.host_port == b.host_port &&
         (!a.host_ip || !b.host_ip || *a.host_ip == *b.host_ip);
}

std::string_view proto_name(uint8_t p) {
  return p == IPPROTO_TCP ? "tcp" : p == IPPROTO_UDP ? "udp" : p == IPPROTO_SCTP ? "sctp" : "?";
}

/// "tcp/54323 on 127.0.0.1", "udp/53 on every IPv6 address".
std::string describe(const Entry& e) {
  return str(proto_name(e.proto), '/', e.host_port, " on ",
             e.host_ip ? e.host_ip->to_string()
                       : str("every IPv", v4(e.family()) ? '4' : '6', " address"));
}

uint64_t fnv1a(std::string_view s, uint64_t h = 1469598103934665603ULL) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

uint8_t proto_number(conf::Protocol p) {
  switch (p) {
    case conf::Protocol::kTcp:
      return IPPROTO_TCP;
    case conf::Protocol::kUdp:
      return IPPROTO_UDP;
    case conf::Protocol::kSctp:
      return IPPROTO_SCTP;
  }
  return IPPROTO_TCP;
}

}  // namespace

std::string owner_tag(std::string_view network, std::string_view container_id,
                      std::string_view ifname) {
  std::string tag = str(network, '/', container_id, '/', ifname);
  if (tag.size() <= kMaxComment) return tag;
  uint64_t h = fnv1a(ifname, fnv1a(std::string_view("\0", 1), fnv1a(container_id)));
  tag = str(network, "/#", hex(&h, sizeof h));
  if (tag.size() > kMaxComment) tag.resize(kMaxComment);
  return tag;
}

std::vector<Entry> entries_for(const ipam::Attachment& att, std::string_view network) {
  std::vector<Entry> out;
  const std::string owner = owner_tag(network, att.container_id, att.ifname);
  for (const auto& pm : att.port_mappings) {
    for (const auto& ip : att.ips) {
      if (pm.host_ip && pm.host_ip->family() != ip.family()) continue;
      Entry e;
      if (pm.host_ip && !pm.host_ip->is_unspecified()) e.host_ip = pm.host_ip;
      e.proto = proto_number(pm.protocol);
      e.host_port = pm.host_port;
      e.pod_ip = ip;
      e.container_port = pm.container_port;
      e.owner = owner;
      out.push_back(std::move(e));
    }
  }
  return out;
}

bool needs_route_localnet(const ipam::Attachment& att) {
  bool has_v4 = std::any_of(att.ips.begin(), att.ips.end(), [](const IpAddr& a) { return a.is_v4(); });
  if (!has_v4) return false;
  const Prefix loopback = *Prefix::parse("127.0.0.0/8");
  return std::any_of(att.port_mappings.begin(), att.port_mappings.end(), [&](const auto& pm) {
    return !pm.host_ip || pm.host_ip->is_unspecified() || loopback.contains(*pm.host_ip);
  });
}

std::optional<std::string> find_conflict(const std::vector<Entry>& wanted,
                                         const std::optional<nft::Ruleset>& current) {
  std::set<std::string> owners;
  for (const auto& w : wanted) owners.insert(w.owner);
  // Elements of the wanted owners themselves are about to be replaced: they never clash.
  auto existing = entries_in(current);
  std::erase_if(existing, [&](const Entry& e) { return owners.count(e.owner) > 0; });
  for (size_t i = 0; i < wanted.size(); ++i) {
    const Entry& w = wanted[i];
    for (const auto& x : existing) {
      if (overlaps(w, x)) {
        return str(describe(w), " is taken by ", x.owner.empty() ? "an unknown owner" : x.owner,
                    " (", describe(x), " -> ", x.pod_ip.to_string(), ':', x.container_port, ')');
      }
    }
    for (size_t j = 0; j < i; ++j) {
      if (overlaps(w, wanted[j]) && !(w == wanted[j])) {
        return str(describe(w), " is requested twice (", describe(wanted[j]), ")");
      }
    }
  }
  return std::nullopt;
}

nft::Ruleset desired(const std::optional<nft::Ruleset>& current, const std::vector<Entry>& add,
                     const std::set<std::string>& drop_owners) {
  nft::Ruleset rs = skeleton();
  for (auto& s : rs.sets) {
    const nft::Set* cur = current ? current->find_set(s.name) : nullptr;
    if (cur == nullptr || !cur->same_type(s)) continue;
    for (const auto& el : cur->elements) {
      if (!drop_owners.count(el.comment)) s.elements.push_back(el);
    }
  }
  auto put = [&](std::string_view name, nft::Element el) {
    auto it = std::find_if(rs.sets.begin(), rs.sets.end(),
                           [&](const nft::Set& s) { return s.name == name; });
    std::erase_if(it->elements, [&](const nft::Element& x) {
      return x.key == el.key && x.key_end == el.key_end;
    });
    it->elements.push_back(std::move(el));
  };
  for (const auto& e : add) {
    put(map_name(e.family(), !e.host_ip), to_element(e));
    put(v4(e.family()) ? kHairpin4 : kHairpin6, hairpin_element(e));
  }
  return rs;
}

std::set<std::string> stale_owners(const std::optional<nft::Ruleset>& current,
                                   std::string_view network, const std::set<std::string>& keep) {
  std::set<std::string> out;
  if (!current) return out;
  const std::string prefix = str(network, '/');
  for (const auto& s : current->sets) {
    for (const auto& el : s.elements) {
      if (el.comment.starts_with(prefix) && !keep.count(el.comment)) out.insert(el.comment);
    }
  }
  return out;
}

std::optional<std::string> find_missing(const std::vector<Entry>& entries,
                                        const std::optional<nft::Ruleset>& current) {
  auto have = entries_in(current);
  for (const auto& e : entries) {
    if (std::find(have.begin(), have.end(), e) == have.end()) {
      return str("hostPort ", describe(e), " -> ", e.pod_ip.to_string(), ':', e.container_port,
                 " is not in table inet ", kTable);
    }
  }
  return std::nullopt;
}

// ---- Apply --------------------------------------------------------------------------------------

FileLock lock(const std::string& data_dir) {
  const std::string dir = data_dir.empty() ? std::string("/run/knit") : data_dir;
  make_dirs(dir, 0700);
  const std::string path = str(dir, "/hostport.lock");
  auto l = FileLock::acquire(path, std::chrono::seconds(10));
  if (!l) fail(Code::kTryAgainLater, str("lock ", path, ": still held after 10 s"));
  return std::move(*l);
}

namespace {

std::optional<nft::Ruleset> read(nl::Socket& nft) {
  return nft::read_table(nft, nft::TableFamily::kInet, kTable);
}

size_t remove_from(nl::Socket& nft, const std::optional<nft::Ruleset>& current,
                   const std::set<std::string>& owners) {
  if (!current || owners.empty()) return 0;
  size_t n = 0;
  for (const auto& s : current->sets) {
    n += static_cast<size_t>(std::count_if(s.elements.begin(), s.elements.end(),
                                           [&](const nft::Element& el) {
                                             return owners.count(el.comment) > 0;
                                           }));
  }
  if (n > 0) nft::apply(nft, nft::plan(current, desired(current, {}, owners)));
  return n;
}

}  // namespace

void add(nl::Socket& nft, const std::vector<Entry>& entries) {
  if (entries.empty()) return;
  auto current = read(nft);
  if (auto clash = find_conflict(entries, current)) {
    fail(Code::kPortConflict, str("add hostPort for ", entries.front().owner, ": ", *clash));
  }
  std::set<std::string> owners;
  for (const auto& e : entries) owners.insert(e.owner);
  nft::apply(nft, nft::plan(current, desired(current, entries, owners)));
}

size_t remove(nl::Socket& nft, const std::set<std::string>& owners) {
  if (owners.empty()) return 0;
  return remove_from(nft, read(nft), owners);
}

size_t sweep(nl::Socket& nft, std::string_view network, const std::set<std::string>& keep) {
  auto current = read(nft);
  return remove_from(nft, current, stale_owners(current, network, keep));
}

std::optional<std::string> check(nl::Socket& nft, const std::vector<Entry>& entries) {
  if (entries.empty()) return std::nullopt;
  return find_missing(entries, read(nft));
}

}  // namespace knit::cni::hostport
