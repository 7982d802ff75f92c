#include "ipam/allocate.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "core/str.hpp"

namespace knit::ipam {

namespace {

using u128 = unsigned __int128;

const char* family_name(Family f) {
  return f == Family::kV4 ? "IPv4" : "IPv6";
}

std::string range_name(size_t set, size_t idx) {
  return str("ipam.ranges[", set, "][", idx, "]");
}

[[noreturn]] void invalid(std::string_view where, std::string_view cause) {
  fail(Code::kInvalidConfig, str("invalid network config: ", where, ": ", cause));
}

IpAddr offset(const IpAddr& a, int delta) {
  return IpAddr::from_u128(a.family(),
                           a.to_u128() + static_cast<u128>(static_cast<__int128>(delta)));
}

bool in_range(const Range& r, const IpAddr& a) {
  if (a.family() != r.start.family()) return false;
  auto v = a.to_u128();
  return r.start.to_u128() <= v && v <= r.end.to_u128();
}

/// Index of the range of `p` holding `a`, or npos.
size_t range_of(const Pool& p, const IpAddr& a) {
  for (size_t i = 0; i < p.ranges.size(); ++i) {
    if (in_range(p.ranges[i], a)) return i;
  }
  return std::string::npos;
}

/// Index of the pool holding `a`, or npos. Ranges never overlap, so at most one matches.
size_t pool_of(std::span<const Pool> pools, const IpAddr& a) {
  for (size_t i = 0; i < pools.size(); ++i) {
    if (pools[i].family == a.family() && range_of(pools[i], a) != std::string::npos) return i;
  }
  return std::string::npos;
}

/// Addresses of one family as sorted numbers: one allocation however many there are, and a
/// lookup of a few cache lines (a node-based hash set spends more in malloc than it saves).
using AddrSet = std::vector<u128>;

bool has(const AddrSet& set, u128 v) {
  return std::binary_search(set.begin(), set.end(), v);
}

void seal(AddrSet& set) {
  std::sort(set.begin(), set.end());
  set.erase(std::unique(set.begin(), set.end()), set.end());
}

/// Addresses of one family that are never handed out: every range's gateway, and the network
/// and (IPv4) broadcast address of every subnet. Few entries; kept sorted for binary search.
AddrSet reserved_addresses(std::span<const Pool> pools, Family family) {
  AddrSet out;
  for (const auto& p : pools) {
    if (p.family != family) continue;
    for (const auto& r : p.ranges) {
      out.push_back(r.gateway.to_u128());
      out.push_back(r.subnet.first().to_u128());
      if (family == Family::kV4) out.push_back(r.subnet.last().to_u128());
    }
  }
  seal(out);
  return out;
}

/// Why `a` can never be handed out, or nullptr.
const char* reserved_reason(std::span<const Pool> pools, const IpAddr& a) {
  for (const auto& p : pools) {
    if (p.family != a.family()) continue;
    for (const auto& r : p.ranges) {
      if (r.gateway == a) return "is the gateway of a configured range";
      if (r.subnet.first() == a) return "is the network address of a configured subnet";
      if (a.is_v4() && r.subnet.last() == a)
        return "is the broadcast address of a configured subnet";
    }
  }
  return nullptr;
}

/// Why `a`, in no pool, cannot be requested: name the subnet when it is inside one.
std::string outside_reason(std::span<const Pool> pools, const IpAddr& a) {
  for (size_t p = 0; p < pools.size(); ++p) {
    for (size_t r = 0; r < pools[p].ranges.size(); ++r) {
      const Range& range = pools[p].ranges[r];
      if (range.subnet.contains(a)) {
        return str("is in subnet ", range.subnet.to_string(), " but outside ", range_name(p, r),
                   " (", range.start.to_string(), "-", range.end.to_string(), ")");
      }
    }
  }
  return "is outside every configured range";
}

const Attachment* owner_of(const State& state, const IpAddr& a) {
  for (const auto& att : state.attachments) {
    if (std::find(att.ips.begin(), att.ips.end(), a) != att.ips.end()) return &att;
  }
  return nullptr;
}

struct Taken {
  const AddrSet& reserved;
  const AddrSet& used;
  bool operator()(u128 v) const { return has(reserved, v) || has(used, v); }
};

/// Round-robin search of pool `p`: from the address after `last` (or the first range's start
/// when `last` is not in the pool) across the ranges in order, wrapping around, until back at
/// the starting point. Touches only the candidates it tries.
std::optional<IpAddr> next_free(const Pool& p, const std::optional<IpAddr>& last,
                                const Taken& taken) {
  size_t ri = 0;
  u128 cur = p.ranges[0].start.to_u128();
  if (last) {
    size_t li = range_of(p, *last);
    if (li != std::string::npos) {
      u128 v = last->to_u128();
      if (v == p.ranges[li].end.to_u128()) {
        ri = (li + 1) % p.ranges.size();
        cur = p.ranges[ri].start.to_u128();
      } else {
        ri = li;
        cur = v + 1;
      }
    }
  }
  const size_t first_ri = ri;
  const u128 first = cur;
  do {
    if (!taken(cur)) return IpAddr::from_u128(p.family, cur);
    if (cur == p.ranges[ri].end.to_u128()) {
      ri = (ri + 1) % p.ranges.size();
      cur = p.ranges[ri].start.to_u128();
    } else {
      ++cur;
    }
  } while (cur != first || ri != first_ri);
  return std::nullopt;
}

}  // namespace

std::vector<Pool> resolve_pools(const std::vector<conf::RangeSet>& sets) {
  if (sets.empty()) invalid("ipam.ranges", "no range sets configured");
  std::vector<Pool> pools;
  pools.reserve(sets.size());
  for (size_t si = 0; si < sets.size(); ++si) {
    const auto& set = sets[si];
    if (set.empty()) invalid(str("ipam.ranges[", si, "]"), "empty range set");
    Pool pool;
    pool.family = set[0].subnet.family();
    for (size_t ri = 0; ri < set.size(); ++ri) {
      const auto& in = set[ri];
      const auto name = range_name(si, ri);
      const auto& subnet = in.subnet;
      const auto subnet_text = subnet.to_string();
      if (!subnet.is_network()) invalid(name, str("subnet ", subnet_text, " has host bits set"));
      if (subnet.len() + 1u >= subnet.addr().bits()) {
        invalid(name, str("subnet ", subnet_text, " is too small to allocate from"));
      }
      if (subnet.family() != pool.family) {
        invalid(name, str("subnet ", subnet_text, " is ", family_name(subnet.family()),
                          " but ipam.ranges[", si, "][0] is ", family_name(pool.family),
                          "; a range set holds one family"));
      }
      auto check_inside = [&](const std::optional<IpAddr>& a, const char* what) {
        if (a && !subnet.contains(*a)) {
          invalid(name, str(what, ' ', a->to_string(), " is outside subnet ", subnet_text));
        }
      };
      check_inside(in.range_start, "rangeStart");
      check_inside(in.range_end, "rangeEnd");
      check_inside(in.gateway, "gateway");
      Range r;
      r.subnet = subnet;
      r.gateway = in.gateway.value_or(offset(subnet.first(), 1));
      r.start = in.range_start.value_or(offset(subnet.first(), 1));
      r.end = in.range_end.value_or(subnet.family() == Family::kV4 ? offset(subnet.last(), -1)
                                                                   : subnet.last());
      if (r.start.to_u128() > r.end.to_u128()) {
        invalid(name,
                str("rangeStart ", r.start.to_string(), " is after rangeEnd ", r.end.to_string()));
      }
      // Overlap as host-local defines it: the handed-out intervals intersect. Two ranges may
      // share a subnet when they split it into disjoint start-end intervals.
      for (size_t ps = 0; ps <= pools.size(); ++ps) {
        const Pool& other = ps < pools.size() ? pools[ps] : pool;
        if (other.family != r.subnet.family()) continue;
        for (size_t pr = 0; pr < other.ranges.size(); ++pr) {
          const Range& o = other.ranges[pr];
          if (r.start.to_u128() <= o.end.to_u128() && o.start.to_u128() <= r.end.to_u128()) {
            invalid(name, str("range ", r.start.to_string(), "-", r.end.to_string(), " overlaps ",
                              range_name(ps, pr), " (", o.start.to_string(), "-", o.end.to_string(),
                              ")"));
          }
        }
      }
      pool.ranges.push_back(r);
    }
    pools.push_back(std::move(pool));
  }
  return pools;
}

Decision allocate(std::span<const Pool> pools, const State& state,
                  std::span<const IpAddr> requested) {
  std::vector<std::optional<IpAddr>> chosen(pools.size());

  for (const auto& ip : requested) {
    size_t p = pool_of(pools, ip);
    if (p == std::string::npos) return Unavailable{ip, outside_reason(pools, ip)};
    if (chosen[p]) {
      return Unavailable{ip, str("is in range set ipam.ranges[", p, "] like requested address ",
                                 chosen[p]->to_string(), "; one address per range set")};
    }
    if (const char* why = reserved_reason(pools, ip)) return Unavailable{ip, why};
    if (const Attachment* owner = owner_of(state, ip)) {
      return Unavailable{ip, str("is in use by ", owner->container_id, '/', owner->ifname)};
    }
    chosen[p] = ip;
  }

  AddrSet used[2];
  bool need[2] = {false, false};
  for (size_t p = 0; p < pools.size(); ++p) {
    if (!chosen[p]) need[pools[p].family == Family::kV4 ? 0 : 1] = true;
  }
  if (need[0] || need[1]) {
    for (auto& set : used) set.reserve(state.attachments.size());
    for (const auto& att : state.attachments) {
      for (const auto& ip : att.ips) {
        size_t fi = ip.is_v4() ? 0 : 1;
        if (need[fi]) used[fi].push_back(ip.to_u128());
      }
    }
    seal(used[0]);
    seal(used[1]);
  }

  std::vector<IpAddr> out;
  out.reserve(pools.size());
  for (size_t p = 0; p < pools.size(); ++p) {
    if (!chosen[p]) {
      const auto& pool = pools[p];
      auto reserved = reserved_addresses(pools, pool.family);
      Taken taken{reserved, used[pool.family == Family::kV4 ? 0 : 1]};
      std::optional<IpAddr> last;
      if (p < state.last_reserved.size()) last = state.last_reserved[p];
      chosen[p] = next_free(pool, last, taken);
      if (!chosen[p]) return Exhausted{p};
    }
    out.push_back(*chosen[p]);
  }
  return out;
}

void record(State& state, const Attachment& att, std::span<const Pool> pools) {
  auto it = std::find_if(state.attachments.begin(), state.attachments.end(), [&](const auto& a) {
    return a.container_id == att.container_id && a.ifname == att.ifname;
  });
  if (it != state.attachments.end()) {
    *it = att;
  } else {
    state.attachments.push_back(att);
  }
  if (state.last_reserved.size() < pools.size()) state.last_reserved.resize(pools.size());
  for (const auto& ip : att.ips) {
    size_t p = pool_of(pools, ip);
    if (p != std::string::npos) state.last_reserved[p] = ip;
  }
}

std::optional<Attachment> release(State& state, std::string_view container_id,
                                  std::string_view ifname) {
  auto it = std::find_if(state.attachments.begin(), state.attachments.end(), [&](const auto& a) {
    return a.container_id == container_id && a.ifname == ifname;
  });
  if (it == state.attachments.end()) return std::nullopt;
  Attachment out = std::move(*it);
  state.attachments.erase(it);
  return out;
}

std::vector<unsigned __int128> free_counts(std::span<const Pool> pools, const State& state) {
  std::vector<u128> out;
  out.reserve(pools.size());
  for (const auto& pool : pools) {
    // Addresses inside the pool's ranges that cannot be handed out, each counted once.
    AddrSet taken = reserved_addresses(pools, pool.family);
    for (const auto& att : state.attachments) {
      for (const auto& ip : att.ips) {
        if (ip.family() == pool.family) taken.push_back(ip.to_u128());
      }
    }
    seal(taken);
    u128 total = 0;
    for (const auto& r : pool.ranges) {
      u128 size = r.end.to_u128() - r.start.to_u128();
      // size + 1 overflows only for the whole IPv6 space; saturate rather than wrap to 0.
      size = size == ~u128{0} ? size : size + 1;
      total = total > ~u128{0} - size ? ~u128{0} : total + size;
    }
    for (u128 v : taken) {
      if (range_of(pool, IpAddr::from_u128(pool.family, v)) != std::string::npos) --total;
    }
    out.push_back(total);
  }
  return out;
}

}  // namespace knit::ipam
