// ipam/allocate.hpp: pure address-allocation decisions.
//
// Values in, values out: the store (ipam/store.hpp) loads a State under its lock, these
// functions decide, the store writes the new State back. Nothing here touches disk or netlink,
// so every decision is unit-tested without privileges.
//
// Pools are usually huge (/16, /64) and nearly empty, yet must work when nearly full, so nothing
// here builds a table of a whole range: the round-robin walk tests each candidate against the
// sorted addresses in use and the sorted reserved ones (gateways, network and IPv4 broadcast
// addresses), so it costs O((used + tried) log used) and never depends on the range's size.
// (A sorted vector beats a node-based hash set at the few hundred addresses of a node: one
// allocation instead of one per address.) Arithmetic is on unsigned __int128 for both families.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "conf/netconf_types.hpp"
#include "ipam/ipam_types.hpp"

namespace knit::ipam {

/// Applies host-local's defaults to the configured range sets (gateway and rangeStart network+1,
/// rangeEnd broadcast-1 for IPv4 and the last address for IPv6) and validates them: no sets or an
/// empty set, subnet with host bits set, a /31 or /32 (/127, /128) subnet, start/end/gateway
/// outside the subnet, start after end, mixed families in one set, overlapping ranges (within or
/// across sets; as in host-local, ranges overlap when their start-end intervals intersect, so two
/// ranges may split one subnet). Throws Error(kInvalidConfig, "invalid network config:
/// ipam.ranges[<set>][<range>]: <cause>").
std::vector<Pool> resolve_pools(const std::vector<conf::RangeSet>& sets);

/// Why allocation did not produce addresses.
struct Exhausted {
  size_t pool = 0;  ///< index of the pool with no free address
};
struct Unavailable {
  IpAddr requested;  ///< requested address that is taken, reserved or outside every pool
  std::string reason;
};

using Decision = std::variant<std::vector<IpAddr>, Exhausted, Unavailable>;

/// Picks one address per pool for a new attachment. A requested address is used for the pool
/// that contains it (it must be inside a range, free, and not the gateway or network/broadcast
/// address); other pools continue round-robin after state.last_reserved, wrapping around. A
/// requested address outside every pool, taken or reserved, or a second one for the same pool
/// gives Unavailable (reason in words, e.g. "is in use by <id>/<ifname>"); a pool with no free
/// address gives Exhausted. Does not modify `state` and does not look at who asks: the caller
/// checks State::find for an existing record first and records the result with `record`.
Decision allocate(std::span<const Pool> pools, const State& state,
                  std::span<const IpAddr> requested);

/// Adds `att` to `state` (replacing a record with the same container_id and ifname) and advances
/// the round-robin cursor of each pool that holds one of its addresses to that address.
void record(State& state, const Attachment& att, std::span<const Pool> pools);

/// Removes the attachment (container_id, ifname); returns it, or nullopt when absent.
std::optional<Attachment> release(State& state, std::string_view container_id,
                                  std::string_view ifname);

/// Number of free addresses in each pool (STATUS reports a full pool): the addresses of its
/// ranges minus gateways, network and broadcast addresses, and addresses in use. Saturates at
/// the maximum for a range covering the whole IPv6 space.
std::vector<unsigned __int128> free_counts(std::span<const Pool> pools, const State& state);

}  // namespace knit::ipam
