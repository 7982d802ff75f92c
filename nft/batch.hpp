// nft/batch.hpp: one nftables transaction as netlink bytes (no I/O).
//
// Messages go into libnftnl's paged buffer between NFNL_MSG_BATCH_BEGIN and _END, like nft's own
// mnl.c: pages are large, a message may run past a page's end by at most kMaxMessage, and the
// pages go to the kernel as one iovec in one sendmsg (nft/apply.hpp). Every message asks for an
// ACK. Each message keeps a description of the object it is for, so that a refused commit can
// say "add set inet knit pods: File exists" rather than "EEXIST".
#pragma once

#include <linux/netlink.h>
#include <sys/uio.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nft/handles.hpp"

namespace knit::nft {

class Batch {
 public:
  /// Page size of the buffer: a full sync of a large ruleset takes a few pages.
  static constexpr uint32_t kPageSize = 2u << 20;
  /// Largest single message (an element list nest is at most 64 KiB), plus headers.
  static constexpr uint32_t kMaxMessage = 65536 + 4096;
  static constexpr uint32_t kNoChange = UINT32_MAX;

  struct Entry {
    std::string what;             ///< "add set inet knit pods"
    uint32_t change = kNoChange;  ///< index of the plan change the message encodes
    uint32_t first_elem = 0;      ///< element messages: index of the first element in the change
    std::vector<uint32_t> elem_offsets;  ///< element messages: offset of each element's nest
  };

  /// Starts the batch (writes NFNL_MSG_BATCH_BEGIN). Throws std::bad_alloc.
  Batch();
  Batch(Batch&&) noexcept = default;
  Batch& operator=(Batch&&) noexcept = default;

  /// Appends one message of NFT_MSG_* `type` for `family` (NFPROTO_*) with flags
  /// NLM_F_REQUEST | NLM_F_ACK | `flags`; `fill(nlh)` writes the payload (libnftnl
  /// *_nlmsg_build_payload or mnl_attr_put). Returns the message's entry for further details.
  template <class Fill>
  Entry& add(uint16_t type, uint8_t family, uint16_t flags, std::string what, Fill&& fill) {
    nlmsghdr* nlh = start(type, family, flags);
    fill(nlh);
    return finish(std::move(what));
  }

  /// Number of messages between BEGIN and END; an empty batch is not sent at all.
  size_t size() const noexcept { return entries_.size(); }
  bool empty() const noexcept { return entries_.empty(); }
  const Entry& entry(size_t i) const { return entries_.at(i); }
  /// Total bytes so far.
  size_t bytes() const noexcept { return bytes_; }

  /// How a sealed batch ends: with NFNL_MSG_BATCH_END, which commits it, or without, which makes
  /// the kernel process and answer every message and then abort the transaction (`nft -c`).
  enum class End { kCommit, kCheck };

  /// Writes NFNL_MSG_BATCH_END (for kCommit) and numbers the batch from `first_seq`: BEGIN gets
  /// first_seq, message i gets first_seq + 1 + i, END first_seq + 1 + size(). Returns the pages
  /// to send.
  /// Call once; throws Error(kInternal) on a second call (and for add() after seal()).
  std::vector<iovec> seal(uint32_t first_seq, End end = End::kCommit);
  bool sealed() const noexcept { return sealed_; }

  /// Sequence number of message i (valid after seal()).
  uint32_t seq_of(size_t i) const noexcept { return first_seq_ + 1 + static_cast<uint32_t>(i); }
  /// Index of the message with sequence number `seq`; nullopt for BEGIN, END or strangers.
  std::optional<size_t> index_of(uint32_t seq) const noexcept;
  /// For an element message: the index (within its change) of the element whose attributes
  /// contain byte `offset` of the message (NLMSGERR_ATTR_OFFS); nullopt when none does.
  std::optional<uint32_t> element_at(size_t i, uint32_t offset) const;

 private:
  nlmsghdr* start(uint16_t type, uint8_t family, uint16_t flags);
  Entry& finish(std::string what);
  char* write_position();
  void advance(uint32_t len);

  NftBatch batch_;
  char* page_end_ = nullptr;    ///< end of the current page's allocation (page + overrun)
  char* zeroed_end_ = nullptr;  ///< bytes from the write position up to here are zero
  nlmsghdr* current_ = nullptr;
  std::vector<Entry> entries_;
  size_t bytes_ = 0;
  uint32_t first_seq_ = 0;
  bool sealed_ = false;
};

}  // namespace knit::nft
