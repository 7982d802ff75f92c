// ipam/allocate.hpp: pure address-allocation decisions.
//
// Values in, values out: the store (ipam/store.hpp) loads a State under its lock, these
// functions decide, the store writes the new State back. Nothing here touches disk or netlink,
// so every decision is unit-tested without privileges.
#pragma once

#include <span>
#include <string>
#include <variant>
#include <vector>

#include "conf/netconf_types.hpp"
#include "ipam/ipam_types.hpp"

namespace knit::ipam {

/// Applies host-local's defaults to the configured range sets and validates them: subnet with
/// host bits set, a /31 or /32 (/127, /128) subnet, start/end/gateway outside the subnet,
/// start after end, mixed families in one set, overlapping ranges (within or across sets).
/// Throws Error(kInvalidConfig) naming the range.
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
/// address); other pools continue round-robin after state.last_reserved, wrapping around. Does
/// not modify `state`; the caller records the result with `record`.
Decision allocate(std::span<const Pool> pools, const State& state,
                  std::span<const IpAddr> requested);

/// Adds `att` to `state` and advances the round-robin cursors to its addresses.
void record(State& state, const Attachment& att, std::span<const Pool> pools);

/// Removes the attachment (container_id, ifname); returns it, or nullopt when absent.
std::optional<Attachment> release(State& state, std::string_view container_id,
                                  std::string_view ifname);

/// Number of free addresses in each pool (STATUS reports a full pool).
std::vector<unsigned __int128> free_counts(std::span<const Pool> pools, const State& state);

}  // namespace knit::ipam
