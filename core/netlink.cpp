#include "core/netlink.hpp"

#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cstring>

#include "core/error.hpp"
#include "core/netns.hpp"
#include "core/str.hpp"

namespace knit::nl {

// ---- Request ---------------------------------------------------------------------------------

nlmsghdr* Request::begin(uint16_t type, uint16_t flags, std::string what,
                         std::initializer_list<int> tolerated) {
  finish();
  buf_.resize(end_ + kMaxMessage);
  std::memset(buf_.data() + end_, 0, kMaxMessage);
  auto* nlh = mnl_nlmsg_put_header(buf_.data() + end_);
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | NLM_F_ACK | flags);
  entries_.push_back(Entry{end_, std::move(what), std::vector<int>(tolerated)});
  return nlh;
}

void* Request::put_extra(size_t n) {
  auto* nlh = message(entries_.size() - 1);
  return mnl_nlmsg_put_extra_header(nlh, n);
}

void Request::finish() {
  if (entries_.empty()) return;
  auto* nlh = reinterpret_cast<nlmsghdr*>(buf_.data() + entries_.back().offset);
  size_t end = entries_.back().offset + NLMSG_ALIGN(nlh->nlmsg_len);
  if (end > end_) end_ = end;
}

std::span<const uint8_t> Request::bytes() {
  finish();
  return {buf_.data(), end_};
}

nlmsghdr* Request::message(size_t i) {
  return reinterpret_cast<nlmsghdr*>(buf_.data() + entries_.at(i).offset);
}

bool Request::tolerates(size_t i, int err) const {
  const auto& t = entries_.at(i).tolerated;
  return std::find(t.begin(), t.end(), err) != t.end();
}

// ---- Socket ----------------------------------------------------------------------------------

namespace {
constexpr size_t kRxSize = 64 * 1024;
constexpr int kDumpAttempts = 5;

void set_opt(mnl_socket* s, int opt) {
  int one = 1;
  // Best effort: old kernels lack these options; errors still arrive, just without extack text.
  (void)mnl_socket_setsockopt(s, opt, &one, sizeof one);
}
}  // namespace

Socket Socket::open(int bus) {
  Socket s;
  s.sock_ = mnl_socket_open2(bus, SOCK_CLOEXEC);
  if (s.sock_ == nullptr) fail_errno(Code::kNetlink, "open netlink socket", errno);
  if (mnl_socket_bind(s.sock_, 0, MNL_SOCKET_AUTOPID) < 0) {
    fail_errno(Code::kNetlink, "bind netlink socket", errno);
  }
  set_opt(s.sock_, NETLINK_EXT_ACK);
  set_opt(s.sock_, NETLINK_CAP_ACK);
  s.portid_ = mnl_socket_get_portid(s.sock_);
  // Start sequence numbers somewhere unpredictable so replies to an earlier process that used
  // the same port id can never be mistaken for ours.
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  s.seq_ = static_cast<uint32_t>(ts.tv_nsec ^ (ts.tv_sec << 20));
  s.rx_.resize(kRxSize);
  return s;
}

Socket Socket::open_in(const Netns& ns, int bus) {
  NetnsGuard guard(ns);
  return open(bus);
}

Socket::Socket(Socket&& o) noexcept
    : sock_(std::exchange(o.sock_, nullptr)),
      portid_(o.portid_),
      seq_(o.seq_),
      rx_(std::move(o.rx_)) {}

Socket& Socket::operator=(Socket&& o) noexcept {
  if (this != &o) {
    if (sock_) mnl_socket_close(sock_);
    sock_ = std::exchange(o.sock_, nullptr);
    portid_ = o.portid_;
    seq_ = o.seq_;
    rx_ = std::move(o.rx_);
  }
  return *this;
}

Socket::~Socket() {
  if (sock_) mnl_socket_close(sock_);
}

int Socket::fd() const noexcept { return mnl_socket_get_fd(sock_); }

void Socket::set_rcvbuf(int bytes) {
  if (setsockopt(fd(), SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) != 0) {
    (void)setsockopt(fd(), SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  }
}

void Socket::send_iov(std::span<const iovec> iov) {
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  msghdr msg{};
  msg.msg_name = &addr;
  msg.msg_namelen = sizeof addr;
  msg.msg_iov = const_cast<iovec*>(iov.data());
  msg.msg_iovlen = iov.size();
  for (;;) {
    ssize_t n = sendmsg(fd(), &msg, 0);
    if (n >= 0) return;
    if (errno == EINTR) continue;
    fail_errno(Code::kNetlink, "send netlink request", errno);
  }
}

std::string extack_message(const nlmsghdr* nlh) {
  if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS)) return {};
  auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
  size_t off = sizeof(nlmsghdr) + sizeof(nlmsgerr);
  if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) off += err->msg.nlmsg_len - sizeof(nlmsghdr);
  if (off >= nlh->nlmsg_len) return {};
  auto* attr = reinterpret_cast<const nlattr*>(reinterpret_cast<const uint8_t*>(nlh) + off);
  size_t len = nlh->nlmsg_len - off;
  while (mnl_attr_ok(attr, static_cast<int>(len))) {
    if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG) {
      const char* s = mnl_attr_get_str(attr);
      return std::string(s, strnlen(s, mnl_attr_get_payload_len(attr)));
    }
    len -= MNL_ALIGN(attr->nla_len);
    attr = mnl_attr_next(attr);
  }
  return {};
}

void for_each_attr(const nlmsghdr* msg, size_t hdr, const std::function<void(const nlattr*)>& f) {
  auto* base = static_cast<const uint8_t*>(mnl_nlmsg_get_payload(msg)) + MNL_ALIGN(hdr);
  auto* end = reinterpret_cast<const uint8_t*>(msg) + msg->nlmsg_len;
  auto* a = reinterpret_cast<const nlattr*>(base);
  while (mnl_attr_ok(a, static_cast<int>(end - reinterpret_cast<const uint8_t*>(a)))) {
    f(a);
    a = mnl_attr_next(a);
  }
}

void for_each_nested(const nlattr* nest, const std::function<void(const nlattr*)>& f) {
  auto* base = static_cast<const uint8_t*>(mnl_attr_get_payload(nest));
  auto* end = base + mnl_attr_get_payload_len(nest);
  auto* a = reinterpret_cast<const nlattr*>(base);
  while (mnl_attr_ok(a, static_cast<int>(end - reinterpret_cast<const uint8_t*>(a)))) {
    f(a);
    a = mnl_attr_next(a);
  }
}

void Socket::read_acks(std::span<Pending> pending, const ReplyFn& on_reply) {
  size_t outstanding = pending.size();
  auto find = [&](uint32_t seq) -> Pending* {
    // Sequence numbers are consecutive in practice; fall back to a scan.
    if (!pending.empty()) {
      uint32_t idx = seq - pending.front().seq;
      if (idx < pending.size() && pending[idx].seq == seq) return &pending[idx];
    }
    for (auto& p : pending)
      if (p.seq == seq) return &p;
    return nullptr;
  };
  while (outstanding > 0) {
    ssize_t n = recv(fd(), rx_.data(), rx_.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_errno(Code::kNetlink, "read netlink reply", errno);
    }
    auto* nlh = reinterpret_cast<const nlmsghdr*>(rx_.data());
    int len = static_cast<int>(n);
    for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
      if (nlh->nlmsg_pid != portid_ && nlh->nlmsg_pid != 0) continue;
      Pending* p = find(nlh->nlmsg_seq);
      if (p == nullptr || p->acked) continue;
      if (nlh->nlmsg_type == NLMSG_ERROR) {
        auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
        p->acked = true;
        p->error = -err->error;
        if (p->error != 0) p->extack = extack_message(nlh);
        --outstanding;
      } else if (nlh->nlmsg_type == NLMSG_DONE) {
        p->acked = true;
        if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(int)) {
          int status = 0;
          std::memcpy(&status, mnl_nlmsg_get_payload(nlh), sizeof status);
          if (status < 0) p->error = -status;
        }
        --outstanding;
      } else if (on_reply) {
        on_reply(nlh, static_cast<size_t>(p - pending.data()));
      }
    }
  }
}

namespace {
[[noreturn]] void throw_refused(const std::string& what, int err, const std::string& extack) {
  std::string msg = str(what, ": ", std::strerror(err));
  if (!extack.empty()) msg += str(" (", extack, ")");
  throw Error(Code::kNetlink, std::move(msg), err);
}
}  // namespace

void Socket::transact(Request& req, const ReplyFn& on_reply) {
  if (req.empty()) return;
  std::vector<Pending> pending(req.count());
  for (size_t i = 0; i < req.count(); ++i) {
    auto* nlh = req.message(i);
    nlh->nlmsg_seq = next_seq();
    pending[i].seq = nlh->nlmsg_seq;
  }
  // Pages of at most kMessagesPerSend messages: one sendmsg of everything exceeds the send
  // buffer from a few thousand messages on (EMSGSIZE: nothing done), and a few hundred ACKs
  // overflow the receive buffer (ENOBUFS). Every page is sent; the first refusal is thrown.
  auto bytes = req.bytes();
  const uint8_t* base = bytes.data();
  for (size_t first = 0; first < pending.size(); first += kMessagesPerSend) {
    size_t last = std::min(pending.size(), first + kMessagesPerSend);
    const auto* from = reinterpret_cast<const uint8_t*>(req.message(first));
    const auto* end = last < pending.size()
                          ? reinterpret_cast<const uint8_t*>(req.message(last))
                          : base + bytes.size();
    iovec iov{const_cast<uint8_t*>(from), static_cast<size_t>(end - from)};
    send_iov({&iov, 1});
    ReplyFn shifted;
    if (on_reply) shifted = [&](const nlmsghdr* m, size_t i) { on_reply(m, first + i); };
    read_acks(std::span<Pending>(pending).subspan(first, last - first), shifted);
  }
  for (size_t i = 0; i < pending.size(); ++i) {
    if (pending[i].error != 0 && !req.tolerates(i, pending[i].error)) {
      throw_refused(req.what(i), pending[i].error, pending[i].extack);
    }
  }
}

void Socket::dump(Request& req, const ReplyFn& on_msg, const std::function<void()>& on_restart) {
  for (int attempt = 0; attempt < kDumpAttempts; ++attempt) {
    if (attempt > 0 && on_restart) on_restart();
    auto* nlh = req.message(0);
    nlh->nlmsg_seq = next_seq();
    nlh->nlmsg_flags |= NLM_F_DUMP;
    Pending p;
    p.seq = nlh->nlmsg_seq;
    bool interrupted = false;
    auto bytes = req.bytes();
    iovec iov{const_cast<uint8_t*>(bytes.data()), bytes.size()};
    send_iov({&iov, 1});
    read_acks({&p, 1}, [&](const nlmsghdr* m, size_t i) {
      if (m->nlmsg_flags & NLM_F_DUMP_INTR) interrupted = true;
      on_msg(m, i);
    });
    if (p.error != 0) throw_refused(req.what(0), p.error, p.extack);
    if (!interrupted) return;
  }
  fail(Code::kTryAgainLater, str(req.what(0), ": dump interrupted ", kDumpAttempts, " times"));
}

}  // namespace knit::nl
