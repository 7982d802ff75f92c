// ipam/crc32c.hpp: CRC-32C, the checksum of the IPAM store file.
//
// The store is checksummed twice per load and twice per save (each record line, then the whole
// file), inside the ~1 ms budget of a CNI ADD, so the checksum must cost a fraction of a
// nanosecond per byte. CRC-32C (Castagnoli; iSCSI, ext4, SCTP) has an instruction on x86-64
// (SSE 4.2); other CPUs compute the same value from tables, eight bytes per step.
#pragma once

#include <cstdint>
#include <string_view>

namespace knit::ipam {

/// CRC-32C of `s` (crc32c("123456789") == 0xe3069283), with the CPU's instruction when it has one.
uint32_t crc32c(std::string_view s) noexcept;

/// The same value from tables only: the path of CPUs without the instruction, kept callable so
/// that tests check it on every machine.
uint32_t crc32c_portable(std::string_view s) noexcept;

}  // namespace knit::ipam
