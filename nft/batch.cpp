#include "nft/batch.hpp"

#include <libmnl/libmnl.h>

#include <algorithm>
#include <cstring>
#include <new>

#include "core/error.hpp"

namespace knit::nft {

namespace {
/// Zeroed ahead of the write position beyond the largest message, so that a tiny batch zeroes
/// little and a large one zeroes each byte about once.
constexpr size_t kZeroAhead = 64 * 1024;
}  // namespace

Batch::Batch() : batch_(new_batch(kPageSize, kMaxMessage)) {
  char* buf = static_cast<char*>(nftnl_batch_buffer(batch_.get()));
  page_end_ = buf + kPageSize + kMaxMessage;
  zeroed_end_ = buf;
  // Relative sequence numbers while building (BEGIN 0, message i at i + 1); seal() rebases.
  auto* nlh = nftnl_batch_begin(write_position(), 0);
  advance(nlh->nlmsg_len);
}

char* Batch::write_position() {
  // libmnl 1.0.4 (Debian 12) does not write attribute padding and libnftnl's pages come from
  // malloc: zero the buffer ahead of the messages so that no stale heap bytes reach the kernel.
  // Can go once libmnl >= 1.0.5 (which zeroes padding itself) is the oldest supported.
  char* buf = static_cast<char*>(nftnl_batch_buffer(batch_.get()));
  if (buf + kMaxMessage > zeroed_end_) {
    char* from = std::max(buf, zeroed_end_);
    char* to = std::min(page_end_, buf + kMaxMessage + kZeroAhead);
    std::memset(from, 0, static_cast<size_t>(to - from));
    zeroed_end_ = to;
  }
  return buf;
}

void Batch::advance(uint32_t len) {
  char* before = static_cast<char*>(nftnl_batch_buffer(batch_.get()));
  if (nftnl_batch_update(batch_.get()) < 0) throw std::bad_alloc();
  bytes_ += len;
  char* after = static_cast<char*>(nftnl_batch_buffer(batch_.get()));
  if (after != before + len) {
    // The message overran the page and was copied to the start of a fresh one.
    page_end_ = after - len + kPageSize + kMaxMessage;
    zeroed_end_ = after;
  }
}

nlmsghdr* Batch::start(uint16_t type, uint8_t family, uint16_t flags) {
  if (sealed_) fail(Code::kInternal, "nft batch already sealed");
  current_ = nftnl_nlmsg_build_hdr(write_position(), type, family,
                                   static_cast<uint16_t>(NLM_F_ACK | flags),
                                   static_cast<uint32_t>(entries_.size() + 1));
  return current_;
}

Batch::Entry& Batch::finish(std::string what) {
  uint32_t len = current_->nlmsg_len;
  current_ = nullptr;
  advance(len);
  entries_.push_back(Entry{std::move(what), kNoChange, 0, {}});
  return entries_.back();
}

std::vector<iovec> Batch::seal(uint32_t first_seq, End end) {
  if (sealed_) fail(Code::kInternal, "nft batch already sealed");
  sealed_ = true;
  if (end == End::kCommit) {
    auto* e = nftnl_batch_end(write_position(), static_cast<uint32_t>(entries_.size() + 1));
    advance(e->nlmsg_len);
  }
  first_seq_ = first_seq;
  std::vector<iovec> iov(static_cast<size_t>(nftnl_batch_iovec_len(batch_.get())));
  nftnl_batch_iovec(batch_.get(), iov.data(), static_cast<uint32_t>(iov.size()));
  for (const auto& v : iov) {
    auto* nlh = static_cast<nlmsghdr*>(v.iov_base);
    int len = static_cast<int>(v.iov_len);
    for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) nlh->nlmsg_seq += first_seq;
  }
  return iov;
}

std::optional<size_t> Batch::index_of(uint32_t seq) const noexcept {
  uint32_t rel = seq - first_seq_;
  if (rel == 0 || rel > entries_.size()) return std::nullopt;
  return rel - 1;
}

std::optional<uint32_t> Batch::element_at(size_t i, uint32_t offset) const {
  const auto& offs = entries_.at(i).elem_offsets;
  auto it = std::upper_bound(offs.begin(), offs.end(), offset);
  if (it == offs.begin()) return std::nullopt;
  return entries_[i].first_elem + static_cast<uint32_t>(it - offs.begin() - 1);
}

}  // namespace knit::nft
