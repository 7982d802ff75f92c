// nft/nft.hpp: knit's nftables engine — model, diff, lowering, transactions, read-back.
//
// Approach. knit owns one table (`inet knit`). Callers describe the whole table they want as
// plain values (nft_types.hpp: a Ruleset of counters, sets/maps with elements, chains with
// rules built from a small statement vocabulary). plan() compares it with what the kernel holds
// (read_table(), lifted back into the same values) and returns an ordered list of changes:
// element-level adds and deletes for sets whose type is unchanged — never flush-and-refill, so
// packets never see a half-filled set — and flush-and-refill for chains whose rules changed.
// apply() lowers the plan to libnftnl objects and netlink messages and commits them as one
// nftables transaction (one batch, one sendmsg, every ACK read): the kernel takes all of it or
// none of it, and an error names the object it refused.
//
// Why not exec `nft`: ~10 ms per exec and a text round trip per change; the agent's targets are
// a full sync of ~50k elements in < 200 ms and an incremental change in well under 5 ms.
// `nft --debug=netlink` is the oracle for the bytecode (lower.cpp follows it), and render()
// prints nft syntax so people and golden tests read the same text nft would show.
//
// Layers: nft_types / plan / render / lower / lift are pure (no I/O; unit-tested by parsing the
// produced bytes back with libnftnl); apply.hpp alone talks to the kernel.
#pragma once

#include "nft/apply.hpp"      // IWYU pragma: export
#include "nft/batch.hpp"      // IWYU pragma: export
#include "nft/lower.hpp"      // IWYU pragma: export
#include "nft/nft_types.hpp"  // IWYU pragma: export
#include "nft/plan.hpp"       // IWYU pragma: export
#include "nft/render.hpp"     // IWYU pragma: export
