// Real packets through a knit ruleset: two namespaces joined by a veth, the ruleset in the
// receiver's input hook. Concatenated interval sets and verdict maps must accept and drop what
// they say, and element-level updates must take effect at once.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include "core/fd.hpp"
#include "core/netlink.hpp"
#include "core/netns.hpp"
#include "nft/nft.hpp"
#include "test/netns/fixture.hpp"
#include "test/unit/nft_sample.hpp"

using namespace knit::nft;
using knit::test::ip;
using knit::test::NeedsNetns;
using knit::test::TestNetns;

namespace {

constexpr auto kProbeTimeout = std::chrono::milliseconds(300);
const char* kClient = "10.99.0.1";
const char* kServer = "10.99.0.2";

/// A socket created inside `ns` (it stays in that namespace for its lifetime).
knit::Fd socket_in(const TestNetns& ns, int type) {
  knit::NetnsGuard g(knit::Netns::open(ns.path()));
  int fd = ::socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  BOOST_REQUIRE(fd >= 0);
  return knit::Fd(fd);
}

sockaddr_in addr(const char* a, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  inet_pton(AF_INET, a, &sa.sin_addr);
  return sa;
}

bool readable(int fd, std::chrono::milliseconds t) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(t.count())) == 1;
}

/// Sends one UDP datagram from a fresh client socket (a new flow each time) and reports
/// whether the server saw it.
bool udp_passes(const TestNetns& client, int server_fd, uint16_t port) {
  char buf[64];
  while (recv(server_fd, buf, sizeof buf, 0) > 0) {
  }  // drain stale datagrams
  auto c = socket_in(client, SOCK_DGRAM);
  auto to = addr(kServer, port);
  BOOST_REQUIRE(sendto(c.get(), "probe", 5, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) == 5);
  if (!readable(server_fd, kProbeTimeout)) return false;
  return recv(server_fd, buf, sizeof buf, 0) == 5;
}

/// A TCP handshake from `client` to the server's listening port.
bool tcp_connects(const TestNetns& client, uint16_t port) {
  auto c = socket_in(client, SOCK_STREAM);
  auto to = addr(kServer, port);
  int r = connect(c.get(), reinterpret_cast<sockaddr*>(&to), sizeof to);
  if (r == 0) return true;
  if (errno != EINPROGRESS) return false;
  pollfd p{c.get(), POLLOUT, 0};
  if (::poll(&p, 1, static_cast<int>(kProbeTimeout.count())) != 1) return false;
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(c.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  return err == 0;
}

knit::Fd udp_server(const TestNetns& ns, uint16_t port) {
  auto s = socket_in(ns, SOCK_DGRAM);
  auto a = addr(kServer, port);
  BOOST_REQUIRE(bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  return s;
}

Ruleset policy() {
  Ruleset rs;
  rs.table = Table{TableFamily::kInet, "knit"};
  Set allow{"allow_a", {Type::kIpv4Addr, Type::kInetProto, Type::kInetService}, {}, true, false,
            {}};
  allow.elements = {element({ip(kClient), Value::u8(proto::kUdp), port_range(5000, 5010)})};
  Set dispatch{"dispatch",
               {Type::kIpv4Addr},
               {Type::kVerdict},
               false,
               false,
               {element({ip(kClient)}, jump("from_a"))}};
  rs.sets = {allow, dispatch};
  Chain from_a{"from_a",
               std::nullopt,
               {Rule{{match(Sel::kThDport, Value::port(6000)), accept()}, {}}, Rule{{drop()}, {}}}};
  Chain input{
      "input",
      BaseChain{ChainType::kFilter, Hook::kInput, prio::kFilter, Policy::kAccept},
      {Rule{{Lookup{{Sel::kIpSaddr, Sel::kL4proto, Sel::kThDport}, "allow_a", false}, accept()},
            {}},
       Rule{{Vmap{{Sel::kIpSaddr}, "dispatch"}}, {}}}};
  rs.chains = {from_a, input};
  return rs;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(nft_traffic)

BOOST_AUTO_TEST_CASE(sets_and_verdict_maps_decide_what_passes,
                     *boost::unit_test::precondition(NeedsNetns())) {
  TestNetns a("nft-pa"), b("nft-pb");
  a.must("ip link add va type veth peer name vb netns " + b.name());
  a.must(std::string("ip addr add ") + kClient + "/24 dev va && ip link set va up");
  b.must(std::string("ip addr add ") + kServer + "/24 dev vb && ip link set vb up");

  auto s5005 = udp_server(b, 5005), s6000 = udp_server(b, 6000), s7000 = udp_server(b, 7000);
  knit::Fd listener = socket_in(b, SOCK_STREAM);
  {
    auto la = addr(kServer, 5005);
    BOOST_REQUIRE(bind(listener.get(), reinterpret_cast<sockaddr*>(&la), sizeof la) == 0);
    BOOST_REQUIRE(listen(listener.get(), 8) == 0);
  }
  // Without a ruleset everything passes (and ARP is resolved before the first verdict counts).
  // The first datagram can be lost while the fresh veth comes up on a loaded machine: retry.
  BOOST_REQUIRE(knit::test::eventually([&] { return udp_passes(a, s7000.get(), 7000); },
                                       std::chrono::seconds(5)));
  BOOST_REQUIRE(tcp_connects(a, 5005));

  auto sock = knit::nl::Socket::open_in(knit::Netns::open(b.path()), NETLINK_NETFILTER);
  Ruleset rs = policy();
  apply(sock, plan(std::nullopt, rs));

  BOOST_TEST(udp_passes(a, s5005.get(), 5005));   // in the concatenated interval set
  BOOST_TEST(udp_passes(a, s6000.get(), 6000));   // vmap → from_a → accept
  BOOST_TEST(!udp_passes(a, s7000.get(), 7000));  // vmap → from_a → drop
  BOOST_TEST(!tcp_connects(a, 5005));             // the set says udp: tcp falls to the drop

  // Element removed: 5005 now goes through the dispatch map and is dropped.
  auto cur = read_table(sock, rs.table.family, rs.table.name);
  rs.sets[0].elements.clear();
  Plan p = plan(cur, rs);
  BOOST_TEST(p.changes.size() == 1u);
  apply(sock, p);
  BOOST_TEST(!udp_passes(a, s5005.get(), 5005));

  // Element back, now a single port and tcp as well.
  rs.sets[0].elements = {element({ip(kClient), Value::u8(proto::kUdp), Value::port(5005)}),
                         element({ip(kClient), Value::u8(proto::kTcp), Value::port(5005)})};
  apply(sock, plan(read_table(sock, rs.table.family, rs.table.name), rs));
  BOOST_TEST(udp_passes(a, s5005.get(), 5005));
  BOOST_TEST(tcp_connects(a, 5005));
  BOOST_TEST(!udp_passes(a, s7000.get(), 7000));

  // Dispatch entry removed: the client no longer reaches from_a; the policy accepts.
  rs.sets[1].elements.clear();
  apply(sock, plan(read_table(sock, rs.table.family, rs.table.name), rs));
  BOOST_TEST(udp_passes(a, s7000.get(), 7000));

  // And the table deleted: everything passes again.
  BOOST_TEST(delete_table(sock, rs.table.family, rs.table.name));
  BOOST_TEST(udp_passes(a, s6000.get(), 6000));
}

BOOST_AUTO_TEST_SUITE_END()
