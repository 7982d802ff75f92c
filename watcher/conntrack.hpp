// watcher/conntrack.hpp: cutting connections a policy change no longer allows (ctnetlink).
//
// Established connections skip the policy chains (`ct state established accept`), so when a
// change revokes what allowed a connection, the agent marks just that connection's conntrack
// entry (one bit of the ct mark, kRevokedMark) and the first rule of knit's base chains drops
// packets of marked connections, in both directions. Marking rather than deleting matters: a
// deleted TCP entry is picked up again mid-stream by the next packet (nf_conntrack_tcp_loose),
// and if the server side speaks first that pickup is an unjudged new flow whose replies count
// as established. A marked entry simply dies; a new connection (new SYN) gets a fresh entry and
// is judged normally. Connections still allowed are never touched. The decision for each entry
// comes from evaluating the committed table itself (watcher/evaluate.hpp), so the cut follows
// exactly what the kernel would now do with that flow's first packet.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "core/ip.hpp"
#include "core/netlink.hpp"

namespace knit::watcher {

/// One conntrack entry, reduced to what policy decides on.
struct CtFlow {
  IpAddr orig_src, orig_dst;
  uint8_t proto = 0;
  uint16_t orig_sport = 0, orig_dport = 0;
  IpAddr reply_src;          ///< the real destination after DNAT (a Service's backend pod)
  uint16_t reply_sport = 0;  ///< its port
  uint16_t zone = 0;
};

/// Dumps the conntrack table of the socket's namespace (IPv4 and IPv6, TCP/UDP/SCTP only).
std::vector<CtFlow> dump_flows(nl::Socket& ct);

/// The ct mark bit of connections a policy change revoked.
inline constexpr uint32_t kRevokedMark = 0x40000000;

/// Sets kRevokedMark on the entries (other mark bits are kept); an entry already gone is fine.
/// Returns how many were marked.
size_t revoke_flows(nl::Socket& ct, const std::vector<CtFlow>& flows);

}  // namespace knit::watcher
