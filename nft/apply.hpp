// nft/apply.hpp: the only part of nft/ that talks to the kernel.
//
// apply() commits a plan as one nftables transaction: one batch, one sendmsg, every ACK read.
// The kernel applies all of it or none of it. read_table() dumps a table and lifts it back into
// the model, so that tests and the agent can compare what the kernel holds with what they want.
#pragma once

#include <map>
#include <optional>
#include <string_view>

#include "core/netlink.hpp"
#include "nft/batch.hpp"
#include "nft/nft_types.hpp"
#include "nft/plan.hpp"

namespace knit::nft {

/// Commits `plan` on `sock` (a NETLINK_NETFILTER socket, see nl::Socket::open_in). An empty plan
/// sends nothing. Throws Error(kNetlink) "commit nftables batch: <object>: <strerror>
/// (<extack>)" naming the first object the kernel refused — then nothing of the plan is applied —
/// and Error(kInternal) for a model that cannot be lowered (before anything is sent).
void apply(nl::Socket& sock, const Plan& plan);

/// Sends `plan` as apply() does but leaves the transaction's END out: the kernel takes every
/// message as it would for a commit, answers each, and then aborts (what `nft -c` does). Throws
/// exactly what apply() would; nothing changes either way. The agent uses it to find which
/// policy the kernel refuses.
void check(nl::Socket& sock, const Plan& plan);

/// Seals and sends a batch built by lower() or by hand; `plan` (when given) lets an error name
/// the element of a multi-element message. Same errors as apply(). With Batch::End::kCheck it
/// is check()'s probe.
void commit(nl::Socket& sock, Batch& batch, const Plan* plan = nullptr,
            Batch::End end = Batch::End::kCommit);

/// The table with its counters, sets (with elements), chains and rules, or nullopt when it does
/// not exist. Rules come back canonical (see canonical()); expressions the model does not know
/// become Raw statements. Throws Error(kNetlink) when a dump fails or the table holds objects
/// the model cannot represent (other object types, set timeouts, route chains).
/// Sets come back under their model names (SetNames); `names`, when given, receives the kernel
/// names of those that have a short one.
std::optional<Ruleset> read_table(nl::Socket& sock, TableFamily family, std::string_view name,
                                  SetNames* names = nullptr);

/// The packet count of every named counter of the table, by name (empty when the table does
/// not exist). One dump. Throws Error(kNetlink).
std::map<std::string, uint64_t> read_counters(nl::Socket& sock, TableFamily family,
                                              std::string_view name);

/// Deletes the table and everything in it; false when it did not exist. Throws Error(kNetlink).
bool delete_table(nl::Socket& sock, TableFamily family, std::string_view name);

}  // namespace knit::nft
