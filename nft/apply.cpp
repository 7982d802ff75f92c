#include "nft/apply.hpp"

#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <memory>

#include "core/error.hpp"
#include "core/str.hpp"
#include "nft/lift.hpp"
#include "nft/lower.hpp"

namespace knit::nft {

namespace {

/// Receive buffer per expected ACK: each is its own skb (~1 KiB of truesize). nft's mnl.c uses
/// the same figure.
constexpr size_t kAckBytes = 1024;
constexpr size_t kMinRcvbuf = 256 * 1024;
/// Below this the socket's default send buffer (wmem_default, ~208 KiB) holds the batch.
constexpr size_t kDefaultSndbuf = 128 * 1024;

struct Ack {
  bool seen = false;
  int error = 0;
  std::string extack;
  std::optional<uint32_t> offset;  ///< NLMSGERR_ATTR_OFFS: the attribute the kernel refused
};

/// Extended-ACK details of an NLMSG_ERROR message: message text and attribute offset.
void parse_extack(const nlmsghdr* nlh, Ack& a) {
  a.extack = nl::extack_message(nlh);
  if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS)) return;
  auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
  size_t off = sizeof(nlmsghdr) + sizeof(nlmsgerr);
  if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) off += err->msg.nlmsg_len - sizeof(nlmsghdr);
  if (off >= nlh->nlmsg_len) return;
  auto* attr = reinterpret_cast<const nlattr*>(reinterpret_cast<const uint8_t*>(nlh) + off);
  int len = static_cast<int>(nlh->nlmsg_len - off);
  for (; mnl_attr_ok(attr, len); attr = mnl_attr_next(attr)) {
    len -= static_cast<int>(MNL_ALIGN(attr->nla_len));
    if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_OFFS) a.offset = mnl_attr_get_u32(attr);
  }
}

void set_sndbuf(int fd, size_t bytes) {
  int n = static_cast<int>(bytes);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &n, sizeof n) != 0) {
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &n, sizeof n);
  }
}

/// Reads every reply already queued on the socket without blocking. nfnetlink processes a batch
/// inside sendmsg(), so when it returns every ACK is queued; unlike nl::Socket::read_acks this
/// cannot hang when the kernel refuses the batch as a whole (it then answers BEGIN only), and it
/// keeps NLMSGERR_ATTR_OFFS, which names the element inside a multi-element message. ACKs are
/// fetched 64 at a time with recvmmsg: a full sync gets thousands.
/// TODO(core): fold into nl::Socket once Pending carries the attribute offset.
void drain_acks(nl::Socket& sock, const Batch& b, uint32_t begin_seq, std::vector<Ack>& acks,
                Ack& begin, bool& overflow) {
  constexpr size_t kMaxSlots = 64, kSlotSize = 4096;
  const size_t slots = std::min(kMaxSlots, b.size() + 2);
  std::unique_ptr<uint8_t[]> buf(new uint8_t[slots * kSlotSize]);  // uninitialised on purpose
  std::array<iovec, kMaxSlots> iov{};
  std::array<mmsghdr, kMaxSlots> msgs{};
  for (;;) {
    for (size_t i = 0; i < slots; ++i) {
      iov[i] = {buf.get() + i * kSlotSize, kSlotSize};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int got = recvmmsg(sock.fd(), msgs.data(), static_cast<unsigned>(slots), MSG_DONTWAIT, nullptr);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {
        overflow = true;
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      fail_errno(Code::kNetlink, "commit nftables batch: read acknowledgements", errno);
    }
    for (int m = 0; m < got; ++m) {
      auto* nlh = static_cast<const nlmsghdr*>(iov[static_cast<size_t>(m)].iov_base);
      int len = static_cast<int>(msgs[static_cast<size_t>(m)].msg_len);
      for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
        if (nlh->nlmsg_type != NLMSG_ERROR) continue;
        if (nlh->nlmsg_pid != sock.portid() && nlh->nlmsg_pid != 0) continue;
        Ack* a = nullptr;
        if (nlh->nlmsg_seq == begin_seq) {
          a = &begin;
        } else if (auto i = b.index_of(nlh->nlmsg_seq)) {
          a = &acks[*i];
        }
        if (a == nullptr) continue;  // a stale reply to an earlier request
        auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
        a->seen = true;
        a->error = -err->error;
        if (a->error != 0) parse_extack(nlh, *a);
      }
    }
  }
}

[[noreturn]] void refused(const std::string& what, const Ack& a) {
  std::string msg = str("commit nftables batch: ", what, ": ", std::strerror(a.error));
  if (!a.extack.empty()) msg += str(" (", a.extack, ")");
  throw Error(Code::kNetlink, std::move(msg), a.error);
}

// ---- dumps --------------------------------------------------------------------------------------

nlmsghdr* begin_get(nl::Request& req, uint16_t type, uint8_t family, std::string what,
                    std::initializer_list<int> tolerated = {}) {
  auto* nlh = req.begin(static_cast<uint16_t>(NFNL_SUBSYS_NFTABLES << 8 | type), 0, std::move(what),
                        tolerated);
  auto* nfg = req.extra<nfgenmsg>();
  nfg->nfgen_family = family;
  nfg->version = NFNETLINK_V0;
  nfg->res_id = 0;
  return nlh;
}

}  // namespace

void commit(nl::Socket& sock, Batch& b, const Plan* plan, Batch::End end) {
  if (b.empty()) return;
  // BEGIN, the messages and END take consecutive sequence numbers.
  const uint32_t first = sock.next_seq();
  for (size_t i = 0; i <= b.size(); ++i) (void)sock.next_seq();
  std::vector<iovec> iov = b.seal(first, end);

  // The kernel copies the whole batch into one skb, which must fit the send buffer, and queues
  // every ACK before we read one, so the receive buffer must hold them all.
  if (b.bytes() > kDefaultSndbuf) set_sndbuf(sock.fd(), b.bytes() + 64 * 1024);
  sock.set_rcvbuf(static_cast<int>(std::max(kMinRcvbuf, (b.size() + 2) * kAckBytes)));
  sock.send_iov(iov);

  std::vector<Ack> acks(b.size());
  Ack begin;
  bool overflow = false;
  drain_acks(sock, b, first, acks, begin, overflow);

  if (begin.error != 0) refused("begin", begin);
  for (size_t i = 0; i < acks.size(); ++i) {
    if (acks[i].error == 0) continue;
    std::string what = plan ? refused_object(*plan, b, i, acks[i].offset) : b.entry(i).what;
    refused(what, acks[i]);
  }
  size_t missing = 0;
  for (const auto& a : acks) missing += a.seen ? 0 : 1;
  if (missing > 0) {
    fail(Code::kNetlink,
         str("commit nftables batch: ", missing, " of ", acks.size(), " acknowledgements missing",
             overflow ? " (receive buffer overrun)" : "", "; the outcome is unknown"));
  }
}

void apply(nl::Socket& sock, const Plan& plan) {
  if (plan.empty()) return;
  Batch b = lower(plan);
  commit(sock, b, &plan);
}

void check(nl::Socket& sock, const Plan& plan) {
  if (plan.empty()) return;
  Batch b = lower(plan);
  commit(sock, b, &plan, Batch::End::kCheck);
}

namespace {

/// Dumps the stateful objects of table `tname` (every object the kernel returns for it): `each`
/// gets each parsed object, `restart` runs when an interrupted dump starts over.
void dump_objects(nl::Socket& sock, uint8_t fam, const std::string& tname, std::string what,
                  const std::function<void(nftnl_obj*)>& each,
                  const std::function<void()>& restart) {
  nl::Request req;
  auto* nlh = begin_get(req, NFT_MSG_GETOBJ, fam, std::move(what));
  auto filter = new_obj();
  nftnl_obj_set_str(filter.get(), NFTNL_OBJ_TABLE, tname.c_str());
  nftnl_obj_nlmsg_build_payload(nlh, filter.get());
  sock.dump(
      req,
      [&](const nlmsghdr* m, size_t) {
        auto o = new_obj();
        if (nftnl_obj_nlmsg_parse(m, o.get()) < 0) return;
        if (tname != nftnl_obj_get_str(o.get(), NFTNL_OBJ_TABLE)) return;
        each(o.get());
      },
      restart);
}

}  // namespace

std::map<std::string, uint64_t> read_counters(nl::Socket& sock, TableFamily family,
                                              std::string_view name) {
  const std::string tname(name);
  std::map<std::string, uint64_t> out;
  dump_objects(
      sock, nfproto(family), tname, str("list counters of table ", family_name(family), ' ', tname),
      [&](nftnl_obj* o) {
        if (nftnl_obj_get_u32(o, NFTNL_OBJ_TYPE) != NFT_OBJECT_COUNTER) return;
        out[nftnl_obj_get_str(o, NFTNL_OBJ_NAME)] = nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_PKTS);
      },
      [&] { out.clear(); });
  return out;
}

std::optional<Ruleset> read_table(nl::Socket& sock, TableFamily family, std::string_view name,
                                  SetNames* names) {
  if (names != nullptr) names->clear();
  const uint8_t fam = nfproto(family);
  const std::string tname(name);
  const std::string where = str(family_name(family), ' ', tname);

  {
    nl::Request req;
    auto* nlh = begin_get(req, NFT_MSG_GETTABLE, fam, str("get table ", where), {ENOENT});
    auto t = new_table();
    nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, tname.c_str());
    nftnl_table_nlmsg_build_payload(nlh, t.get());
    bool found = false;
    sock.transact(req, [&](const nlmsghdr* m, size_t) {
      found = found || (m->nlmsg_type & 0xff) == NFT_MSG_NEWTABLE;
    });
    if (!found) return std::nullopt;
  }

  Ruleset rs;
  std::map<std::string, std::string, std::less<>> model_names;  // kernel name -> model name
  rs.table = Table{family, tname};

  {  // Chains: the kernel dumps every chain of the family; keep this table's.
    nl::Request req;
    begin_get(req, NFT_MSG_GETCHAIN, fam, str("list chains of table ", where));
    sock.dump(
        req,
        [&](const nlmsghdr* m, size_t) {
          auto c = new_chain();
          if (nftnl_chain_nlmsg_parse(m, c.get()) < 0) return;
          if (tname != nftnl_chain_get_str(c.get(), NFTNL_CHAIN_TABLE)) return;
          rs.chains.push_back(lift_chain(c.get()));
        },
        [&] { rs.chains.clear(); });
  }

  {
    nl::Request req;
    auto* nlh = begin_get(req, NFT_MSG_GETSET, fam, str("list sets of table ", where));
    auto filter = new_set();
    nftnl_set_set_str(filter.get(), NFTNL_SET_TABLE, tname.c_str());
    nftnl_set_nlmsg_build_payload(nlh, filter.get());
    sock.dump(
        req,
        [&](const nlmsghdr* m, size_t) {
          auto s = new_set();
          if (nftnl_set_nlmsg_parse(m, s.get()) < 0) return;
          if (tname != nftnl_set_get_str(s.get(), NFTNL_SET_TABLE)) return;
          // Anonymous sets belong to the rule that uses them (nft's `{ a, b }`); such a rule
          // renders with @__setN, visibly.
          if (nftnl_set_get_u32(s.get(), NFTNL_SET_FLAGS) & NFT_SET_ANONYMOUS) return;
          rs.sets.push_back(lift_set(s.get()));
          // A short kernel name carries the model's name in its comment (SetNames).
          if (SetNames::alias_number(rs.sets.back().name)) {
            std::string model = lift_set_comment(s.get());
            if (!model.empty()) model_names[rs.sets.back().name] = std::move(model);
          }
        },
        [&] {
          rs.sets.clear();
          model_names.clear();
        });
  }

  for (auto& set : rs.sets) {
    nl::Request req;
    auto* nlh =
        begin_get(req, NFT_MSG_GETSETELEM, fam, str("list elements of set ", where, ' ', set.name));
    auto filter = new_set();
    nftnl_set_set_str(filter.get(), NFTNL_SET_TABLE, tname.c_str());
    nftnl_set_set_str(filter.get(), NFTNL_SET_NAME, set.name.c_str());
    nftnl_set_elems_nlmsg_build_payload(nlh, filter.get());
    std::optional<ElementLifter> lifter(std::in_place, set);
    sock.dump(
        req,
        [&](const nlmsghdr* m, size_t) {
          auto s = new_set();
          if (nftnl_set_elems_nlmsg_parse(m, s.get()) < 0) {
            fail(Code::kNetlink, str("parse elements of set ", where, ' ', set.name));
          }
          lifter->add(s.get());
        },
        [&] { lifter.emplace(set); });
    set.elements = lifter->finish();
  }

  dump_objects(
      sock, fam, tname, str("list objects of table ", where),
      [&](nftnl_obj* o) { rs.counters.push_back(lift_counter(o)); }, [&] { rs.counters.clear(); });

  {
    std::map<std::string, size_t, std::less<>> chain_index;
    for (size_t i = 0; i < rs.chains.size(); ++i) chain_index.emplace(rs.chains[i].name, i);
    nl::Request req;
    auto* nlh = begin_get(req, NFT_MSG_GETRULE, fam, str("list rules of table ", where));
    auto filter = new_rule();
    nftnl_rule_set_str(filter.get(), NFTNL_RULE_TABLE, tname.c_str());
    nftnl_rule_nlmsg_build_payload(nlh, filter.get());
    sock.dump(
        req,
        [&](const nlmsghdr* m, size_t) {
          auto r = new_rule();
          if (nftnl_rule_nlmsg_parse(m, r.get()) < 0) {
            fail(Code::kNetlink, str("parse rule of table ", where));
          }
          if (tname != nftnl_rule_get_str(r.get(), NFTNL_RULE_TABLE)) return;
          auto it =
              chain_index.find(std::string_view(nftnl_rule_get_str(r.get(), NFTNL_RULE_CHAIN)));
          if (it == chain_index.end()) return;
          rs.chains[it->second].rules.push_back(lift_rule(family, r.get()));
        },
        [&] {
          for (auto& c : rs.chains) c.rules.clear();
        });
  }

  if (!model_names.empty()) {
    // A model name that another set already goes by (only a hand-edited table has one) is
    // left alone: the set keeps its kernel name.
    std::map<std::string_view, int> claims;
    for (const auto& set : rs.sets) {
      auto it = model_names.find(set.name);
      ++claims[it == model_names.end() ? std::string_view(set.name) : it->second];
    }
    for (auto it = model_names.begin(); it != model_names.end();) {
      it = claims[it->second] > 1 ? model_names.erase(it) : std::next(it);
    }
    // Back to the model's names, in the sets and in the rules that name them.
    auto model = [&](std::string& n) {
      if (auto it = model_names.find(n); it != model_names.end()) n = it->second;
    };
    for (auto& set : rs.sets) {
      std::string kernel = set.name;
      model(set.name);
      if (names != nullptr && set.name != kernel) names->add(set.name, kernel);
    }
    for (auto& c : rs.chains) {
      for (auto& r : c.rules) {
        for (auto& st : r.stmts) {
          if (auto* n = set_named(st)) model(*n);
        }
      }
    }
  }
  rs.sort();
  return rs;
}

bool delete_table(nl::Socket& sock, TableFamily family, std::string_view name) {
  Batch b;
  Table t{family, std::string(name)};
  auto o = lower_table(t);
  b.add(NFT_MSG_DELTABLE, nfproto(family), 0, str("delete table ", family_name(family), ' ', name),
        [&](nlmsghdr* n) { nftnl_table_nlmsg_build_payload(n, o.get()); });
  try {
    commit(sock, b);
  } catch (const Error& e) {
    if (e.sys_errno() == ENOENT) return false;
    throw;
  }
  return true;
}

}  // namespace knit::nft
