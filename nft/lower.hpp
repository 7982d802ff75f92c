// nft/lower.hpp: model values → libnftnl objects and netlink messages (pure, no I/O).
//
// Rules lower 1:1 to kernel expressions the way nft does it (`nft --debug=netlink` is the
// oracle): a selector loads into a register, an operator consumes it; concatenated keys load
// field after field into consecutive 4-byte-aligned registers. Set elements are written straight
// into the message with libmnl (no per-element libnftnl object: a full sync carries 50k of them).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "nft/batch.hpp"
#include "nft/handles.hpp"
#include "nft/nft_types.hpp"
#include "nft/plan.hpp"

namespace knit::nft {

NftTable lower_table(const Table& t);
/// A chain without rules; `base` makes it a base chain.
NftChain lower_chain(const Table& t, std::string_view name, const std::optional<BaseChain>& base);
/// The set object without elements; `set_id` is the transaction-local NFTA_SET_ID. A
/// `kernel_name` other than s.name (SetNames) names the kernel object, with s.name as its
/// comment. Throws Error(kInternal) for an invalid key (no fields, longer than 64 bytes).
NftSet lower_set(const Table& t, const Set& s, uint32_t set_id, std::string_view kernel_name = {});
/// Sets are named by `names`' kernel names when given. Throws Error(kInternal) naming the chain
/// for statements that cannot be lowered (Raw, keys longer than the registers, log with both
/// group and level).
NftRule lower_rule(const Table& t, std::string_view chain, const Rule& r,
                   const Plan* names = nullptr);
NftObj lower_counter(const Table& t, std::string_view name);

/// Every message of the plan, in order, each with its description and the index of its change.
/// Throws Error(kInternal) for a model the kernel cannot take (element size not matching the set
/// type, ranges in a set without the interval flag, ranges on host-order fields).
Batch lower(const Plan& p);

/// The object of message `index` that the kernel refused, e.g. "add element 10.0.0.7 to set
/// inet knit pods". `attr_offset` (NLMSGERR_ATTR_OFFS) narrows a multi-element message to the
/// element the kernel pointed at.
std::string refused_object(const Plan& p, const Batch& b, size_t index,
                           std::optional<uint32_t> attr_offset);

}  // namespace knit::nft
