// core/netlink.hpp: the netlink transport every module uses (rtnetlink, ctnetlink, nftables).
//
// A Request is a plain buffer of one or more netlink messages, each remembering what it was for
// ("add route 10.0.0.3/32 dev knit1234") and which errnos mean "already done" for it. Building a
// request does no I/O, so unit tests parse the bytes back with libmnl. A Socket sends a request
// with one sendmsg, reads every acknowledgement, and throws an Error that names the message the
// kernel refused together with the kernel's extended-ACK text.
#pragma once

#include <linux/netlink.h>
#include <sys/uio.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

#include "core/fd.hpp"

struct mnl_socket;

namespace knit {
class Netns;
}

namespace knit::nl {

/// One or more netlink messages sent together.
class Request {
 public:
  /// Largest single message a builder may produce.
  static constexpr size_t kMaxMessage = 16384;

  /// Starts a new message of `type` with NLM_F_REQUEST | NLM_F_ACK | `flags`. `what` names the
  /// object for error messages; an errno in `tolerated` counts as success for this message.
  /// The returned header stays valid until the next begin().
  nlmsghdr* begin(uint16_t type, uint16_t flags, std::string what,
                  std::initializer_list<int> tolerated = {});
  /// Reserves and zeroes a fixed header (ifinfomsg, rtmsg, ...) right after the netlink header
  /// of the current message.
  template <class T>
  T* extra() {
    return static_cast<T*>(put_extra(sizeof(T)));
  }

  size_t count() const noexcept { return entries_.size(); }
  bool empty() const noexcept { return entries_.empty(); }
  /// The bytes of every finished message.
  std::span<const uint8_t> bytes();
  /// Header of message i (valid until the next begin()).
  nlmsghdr* message(size_t i);
  const std::string& what(size_t i) const { return entries_[i].what; }
  bool tolerates(size_t i, int err) const;

 private:
  struct Entry {
    size_t offset;
    std::string what;
    std::vector<int> tolerated;
  };
  void* put_extra(size_t n);
  void finish();
  std::vector<uint8_t> buf_;
  size_t end_ = 0;  // end of the last finished message
  std::vector<Entry> entries_;
};

/// Called for every data (non-ACK) reply; `index` is the request message it answers.
using ReplyFn = std::function<void(const nlmsghdr* msg, size_t index)>;

/// A message of a batch that the caller sent itself and whose acknowledgement it awaits.
struct Pending {
  uint32_t seq = 0;
  std::string what;
  bool acked = false;
  int error = 0;  // positive errno, 0 if none
  std::string extack;
};

/// A netlink socket bound to one namespace. Move-only; owns its port id and sequence counter.
class Socket {
 public:
  /// Opens a socket on `bus` (NETLINK_ROUTE, NETLINK_NETFILTER) in the caller's namespace, with
  /// extended ACKs enabled and capped ACKs. Throws Error(kNetlink).
  static Socket open(int bus);
  /// Same, in namespace `ns`: switches in, creates the socket, switches back.
  static Socket open_in(const Netns& ns, int bus);

  Socket(Socket&&) noexcept;
  Socket& operator=(Socket&&) noexcept;
  ~Socket();

  int fd() const noexcept;
  uint32_t portid() const noexcept { return portid_; }
  uint32_t next_seq() noexcept { return ++seq_; }
  /// Sets the receive buffer size (uses SO_RCVBUFFORCE when permitted).
  void set_rcvbuf(int bytes);

  /// Sends every message of `req` with one sendmsg and reads until each one is acknowledged.
  /// Data replies go to `on_reply`. Throws Error(kNetlink) for the first message the kernel
  /// refused (unless its errno is tolerated), after all replies have been read.
  void transact(Request& req, const ReplyFn& on_reply = {});
  /// transact() sends and acknowledges at most this many messages at a time.
  static constexpr size_t kMessagesPerSend = 64;

  /// Runs a dump: `req` holds one message with NLM_F_DUMP. Calls `on_msg` for each reply. When
  /// the kernel flags the dump as interrupted (NLM_F_DUMP_INTR) it calls `on_restart` and dumps
  /// again, at most 5 times; then throws Error(kTryAgainLater).
  void dump(Request& req, const ReplyFn& on_msg, const std::function<void()>& on_restart = {});

  /// Low level, for batches built elsewhere (nftables): sends the buffers with one sendmsg.
  void send_iov(std::span<const iovec> iov);
  /// Low level: reads replies until every entry of `pending` is acknowledged (or failed).
  /// Does not throw for kernel errors: they are recorded in the entries.
  void read_acks(std::span<Pending> pending, const ReplyFn& on_reply = {});

 private:
  Socket() = default;
  mnl_socket* sock_ = nullptr;
  uint32_t portid_ = 0;
  uint32_t seq_ = 0;
  std::vector<uint8_t> rx_;
};

/// Extended-ACK message text of an NLMSG_ERROR message, empty if none.
std::string extack_message(const nlmsghdr* err_msg);

/// Calls f(const nlattr*) for each attribute of `msg` after its fixed header of `hdr` bytes.
void for_each_attr(const nlmsghdr* msg, size_t hdr, const std::function<void(const nlattr*)>& f);
/// Calls f(const nlattr*) for each attribute nested in `nest`.
void for_each_nested(const nlattr* nest, const std::function<void(const nlattr*)>& f);

}  // namespace knit::nl
