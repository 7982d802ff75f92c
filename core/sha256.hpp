// core/sha256.hpp: SHA-256 (FIPS 180-4), for names derived from user-controlled text.
//
// Policy sets shared by content are named by a hash of the content. The text is written by
// whoever may create a NetworkPolicy, so a weak hash (FNV) would let them craft a second policy
// whose sets take the name, and so the elements, of someone else's: an over-permit. SHA-256
// makes that infeasible; a dependency on libcrypto for it would cost every CNI call a library
// load, so it lives here, in ~100 lines checked against the standard's test vectors.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace knit {

using Sha256Digest = std::array<uint8_t, 32>;

/// The SHA-256 digest of `data`.
Sha256Digest sha256(std::string_view data) noexcept;

}  // namespace knit
