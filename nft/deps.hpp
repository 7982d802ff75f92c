// nft/deps.hpp (internal): the protocol matches a selector implies.
//
// `ip saddr` in an inet table only makes sense for IPv4 packets, `icmpv6 type` only for
// ICMPv6. nft adds these dependency matches when it lowers a rule and drops them when it lists
// one; knit does the same, so that rules read back from the kernel compare equal to the model.
#pragma once

#include <cstdint>
#include <optional>

#include "nft/nft_types.hpp"

namespace knit::nft {

struct Deps {
  std::optional<uint8_t> nfproto;  ///< meta nfproto == v needed first (inet tables only)
  std::optional<uint8_t> l4proto;  ///< meta l4proto == v needed first
};

Deps sel_deps(Sel s, TableFamily f);
/// Union of the dependencies of everything the statement reads (and of reject with tcp reset).
Deps stmt_deps(const Stmt& s, TableFamily f);

}  // namespace knit::nft
