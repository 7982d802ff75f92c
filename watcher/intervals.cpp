#include "watcher/intervals.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace knit::watcher {

namespace {
using U128 = unsigned __int128;

U128 max_of(Family f) {
  return f == Family::kV4 ? U128{0xffffffffu} : ~U128{0};
}
}  // namespace

AddrRange everything(Family f) {
  return {IpAddr::from_u128(f, 0), IpAddr::from_u128(f, max_of(f))};
}

std::vector<AddrRange> subtract(const Prefix& cidr, const std::vector<Prefix>& except) {
  Family f = cidr.family();
  std::vector<AddrRange> holes;
  for (const auto& e : except) {
    if (e.family() == f) holes.push_back(AddrRange::of(e));
  }
  holes = normalize(std::move(holes));
  std::vector<AddrRange> out;
  U128 cur = cidr.first().to_u128();
  U128 last = cidr.last().to_u128();
  bool done = false;
  for (const auto& h : holes) {
    U128 hlo = h.lo.to_u128(), hhi = h.hi.to_u128();
    if (hhi < cur || hlo > last) continue;
    if (hlo > cur) out.push_back({IpAddr::from_u128(f, cur), IpAddr::from_u128(f, hlo - 1)});
    if (hhi >= last) {
      done = true;
      break;
    }
    cur = std::max(cur, hhi + 1);
  }
  if (!done && cur <= last) out.push_back({IpAddr::from_u128(f, cur), IpAddr::from_u128(f, last)});
  return out;
}

std::vector<AddrRange> normalize(std::vector<AddrRange> ranges) {
  std::sort(ranges.begin(), ranges.end());
  std::vector<AddrRange> out;
  for (const auto& r : ranges) {
    if (!out.empty() && r.lo.to_u128() <= out.back().hi.to_u128()) {
      if (r.hi.to_u128() > out.back().hi.to_u128()) out.back().hi = r.hi;
    } else {
      out.push_back(r);
    }
  }
  out.shrink_to_fit();  // committed sets keep these: no growth slack (a third, on average)
  return out;
}

namespace {

/// Merges overlapping and adjacent port ranges (one dimension: merging loses nothing).
std::vector<PortRange> merge_ports(std::vector<PortRange> v) {
  std::sort(v.begin(), v.end());
  std::vector<PortRange> out;
  for (const auto& p : v) {
    if (!out.empty() && static_cast<uint32_t>(p.lo) <= static_cast<uint32_t>(out.back().hi) + 1) {
      out.back().hi = std::max(out.back().hi, p.hi);
    } else {
      out.push_back(p);
    }
  }
  return out;
}

}  // namespace

std::vector<Tuple> normalize(std::vector<Tuple> tuples) {
  if (tuples.empty()) return tuples;
  Family f = tuples.front().addr.lo.family();
  std::map<uint8_t, std::vector<const Tuple*>> by_proto;
  for (const auto& t : tuples) by_proto[t.proto].push_back(&t);
  std::vector<Tuple> out;
  for (auto& [proto, list] : by_proto) {
    // Sweep along the address axis. An event opens a port range at lo and closes it after hi.
    struct Event {
      U128 at;
      bool open;
      PortRange ports;
    };
    std::vector<Event> events;
    events.reserve(list.size() * 2);
    for (const Tuple* t : list) {
      events.push_back({t->addr.lo.to_u128(), true, t->ports});
      U128 hi = t->addr.hi.to_u128();
      // A range ending at the top of the address space never closes.
      if (hi != max_of(f)) events.push_back({hi + 1, false, t->ports});
    }
    std::sort(events.begin(), events.end(),
              [](const Event& a, const Event& b) { return a.at < b.at; });
    std::multiset<PortRange> active;
    size_t i = 0;
    while (i < events.size()) {
      U128 at = events[i].at;
      for (; i < events.size() && events[i].at == at; ++i) {
        if (events[i].open) {
          active.insert(events[i].ports);
        } else {
          active.erase(active.find(events[i].ports));
        }
      }
      if (active.empty()) continue;
      U128 end = i < events.size() ? events[i].at - 1 : max_of(f);
      auto ports = merge_ports(std::vector<PortRange>(active.begin(), active.end()));
      AddrRange piece{IpAddr::from_u128(f, at), IpAddr::from_u128(f, end)};
      for (const auto& p : ports) out.push_back({piece, proto, p});
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace knit::watcher
