// watcher/intervals.hpp: set contents as disjoint intervals (pure).
//
// nftables interval sets, plain or concatenated, refuse overlapping elements. Policy sets are
// unions of overlapping things (a pod's /32 inside an ipBlock, port 80 and 80-90 for the same
// pod), so the compiler normalises every set into disjoint elements first. The result is
// canonical: the same union always gives the same elements, so diffs between two compilations
// are exact.
#pragma once

#include <compare>
#include <cstdint>
#include <vector>

#include "core/ip.hpp"

namespace knit::watcher {

/// An inclusive range of addresses of one family.
struct AddrRange {
  IpAddr lo;
  IpAddr hi;
  static AddrRange of(const Prefix& p) { return {p.first(), p.last()}; }
  static AddrRange host(const IpAddr& a) { return {a, a}; }
  friend auto operator<=>(const AddrRange&, const AddrRange&) = default;
  friend bool operator==(const AddrRange&, const AddrRange&) = default;
};

/// An inclusive port range.
struct PortRange {
  uint16_t lo = 0;
  uint16_t hi = 65535;
  friend auto operator<=>(const PortRange&, const PortRange&) = default;
  friend bool operator==(const PortRange&, const PortRange&) = default;
};

/// One element of an `addr . inet_proto . inet_service` interval set.
struct Tuple {
  AddrRange addr;
  uint8_t proto = 6;
  PortRange ports;
  friend auto operator<=>(const Tuple&, const Tuple&) = default;
  friend bool operator==(const Tuple&, const Tuple&) = default;
};

/// The whole address space of `f`.
AddrRange everything(Family f);

/// The addresses of `cidr` not in any of `except`, as disjoint sorted ranges.
std::vector<AddrRange> subtract(const Prefix& cidr, const std::vector<Prefix>& except);

/// Sorted, with overlapping ranges merged (adjacent ranges stay separate, so that a set of
/// single pod addresses keeps one element per pod). All ranges must be of one family.
std::vector<AddrRange> normalize(std::vector<AddrRange> ranges);

/// Disjoint tuples covering exactly the union of `tuples` (all of one family): for each protocol,
/// the address space is cut at every range boundary and each piece gets the merged port ranges
/// that cover it. Sorted.
std::vector<Tuple> normalize(std::vector<Tuple> tuples);

}  // namespace knit::watcher
