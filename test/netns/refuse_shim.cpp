// A test-only LD_PRELOAD library for the agent: the kernel refuses every nftables set whose
// NEWSET message contains the text in KNIT_TEST_REFUSE_SET (in practice, a policy's name: its
// sets are named after it). The message's type is changed to one nf_tables does not have, so the
// refusal is the kernel's own (EINVAL for that message, the transaction not applied), as when a
// kernel cannot take what a policy compiles to. Nothing else is touched.
// KNIT_TEST_REFUSE_SET_FILE instead names a file holding the text, read at every send: a test
// changes what the kernel refuses while the agent runs (a missing or empty file: nothing).
#include <dlfcn.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <sys/socket.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>

namespace {

void refuse_marked_sets(const msghdr* msg, std::string_view marker) {
  constexpr uint16_t kNewSet = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSET;
  constexpr uint16_t kNoSuchMessage = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_MAX;
  for (size_t i = 0; i < msg->msg_iovlen; ++i) {
    auto* p = static_cast<char*>(msg->msg_iov[i].iov_base);
    size_t left = msg->msg_iov[i].iov_len;
    while (left >= sizeof(nlmsghdr)) {
      auto* nlh = reinterpret_cast<nlmsghdr*>(p);
      if (nlh->nlmsg_len < sizeof(nlmsghdr) || nlh->nlmsg_len > left) break;
      if (nlh->nlmsg_type == kNewSet &&
          std::string_view(p, nlh->nlmsg_len).find(marker) != std::string_view::npos) {
        nlh->nlmsg_type = kNoSuchMessage;
      }
      size_t step = NLMSG_ALIGN(nlh->nlmsg_len);
      if (step >= left) break;
      p += step;
      left -= step;
    }
  }
}

}  // namespace

extern "C" ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  using Real = ssize_t (*)(int, const msghdr*, int);
  static const Real real = reinterpret_cast<Real>(dlsym(RTLD_NEXT, "sendmsg"));
  static const char* marker = std::getenv("KNIT_TEST_REFUSE_SET");
  static const char* file = std::getenv("KNIT_TEST_REFUSE_SET_FILE");
  if (marker != nullptr && *marker != '\0') refuse_marked_sets(msg, marker);
  if (file != nullptr) {
    std::ifstream in(file);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    if (!text.empty()) refuse_marked_sets(msg, text);
  }
  return real(fd, msg, flags);
}
