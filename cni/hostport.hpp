// cni/hostport.hpp: hostPort (the portMappings capability) as DNAT in a CNI-owned nftables table.
//
// Approach. Every mapping is one element of a concatenated map; the table around the maps is
// static and created once, in the same transaction as the first element, so pod churn is element
// adds and deletes only (like kindnet's cni-kindnet, unlike portmap's rule per mapping):
//
//   table inet knit-hostport
//     map dnat4      ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service  (hostIP set)
//     map dnat6      ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service
//     map dnat_any4  inet_proto . inet_service : ipv4_addr . inet_service     (hostIP "", 0.0.0.0)
//     map dnat_any6  inet_proto . inet_service : ipv6_addr . inet_service     (hostIP "", ::)
//     set hairpin4   ipv4_addr . ipv4_addr      (pod . pod: a pod reaching its own hostPort)
//     set hairpin6   ipv6_addr . ipv6_addr
//     chain prerouting   nat prerouting dstnat:  fib daddr type local jump hostports
//     chain output       nat output dstnat:      fib daddr type local jump hostports
//     chain hostports    dnat ip to ip daddr . meta l4proto . th dport map @dnat4, then @dnat6,
//                        then meta nfproto ipv4 dnat ip to meta l4proto . th dport map @dnat_any4,
//                        then the same for ipv6
//     chain postrouting  nat postrouting srcnat:
//                        ct status dnat ip saddr 127.0.0.0/8 masquerade             (localhost)
//                        ct status dnat ip saddr . ip daddr @hairpin4 masquerade    (hairpin)
//                        ct status dnat ip6 saddr . ip6 daddr @hairpin6 masquerade
//     chain input        filter input filter:
//                        iifname != "lo" ip daddr 127.0.0.0/8 ct state invalid,new,untracked drop
//
// Why `inet`: one table for both families is one read and one transaction per ADD or DEL, and
// the chains are shared; NAT in inet tables needs kernel 5.2. Why a table of its own: the agent
// owns `inet knit` and its reconciler deletes what it did not create; the CNI plugin must work
// with no agent at all. The output chain makes traffic from the node itself work, the fib check
// keeps the maps to addresses of this node (portmap#1210: without it DNAT hijacks forwarded
// traffic). A mapping with hostIP 127.0.0.1 (or any address) reached from 127.0.0.1 needs
// route_localnet on the pod's host veth (set by ADD) and the localhost masquerade; the input rule
// is the CVE-2020-8558 guard that route_localnet calls for (what kube-proxy does): nothing from
// outside the node may open a connection to 127.0.0.0/8. IPv6 has no route_localnet: ::1 mappings
// work for clients that bind a node address, as the upstream conformance test does.
//
// Hairpin and localhost traffic are told apart by conntrack and the addresses, not by a packet
// mark as iptables portmap does: the mark is a word shared with kube-proxy and others, and the
// nftables portmap backend matches `saddr == daddr == pod` the same way.
//
// Ownership. Every element carries its attachment as a comment ("<network>/<container>/<ifname>"),
// so DEL and GC delete exactly the elements of the attachments they remove, never a newer
// attachment's element with the same key. Updates run under a node-wide lock file, which makes
// "check for a conflicting mapping, then add" atomic between concurrent ADDs of any network.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/fs.hpp"
#include "core/ip.hpp"
#include "core/netlink.hpp"
#include "ipam/ipam_types.hpp"
#include "nft/nft_types.hpp"

namespace knit::cni::hostport {

inline constexpr std::string_view kTable = "knit-hostport";

/// One DNAT of one address family: host [ip] proto port -> pod ip port.
struct Entry {
  std::optional<IpAddr> host_ip;  ///< a node address; unset: every address of the family
  uint8_t proto = 6;              ///< IPPROTO_TCP, _UDP, _SCTP
  uint16_t host_port = 0;
  IpAddr pod_ip;                  ///< its family is the entry's
  uint16_t container_port = 0;
  std::string owner;              ///< owner_tag() of the attachment
  Family family() const noexcept { return pod_ip.family(); }
  friend bool operator==(const Entry&, const Entry&) = default;
};

/// The comment that marks an attachment's elements: "<network>/<container_id>/<ifname>", with
/// the container part hashed when the whole would not fit in an nftables comment (127 bytes).
std::string owner_tag(std::string_view network, std::string_view container_id,
                      std::string_view ifname);

/// The entries of `att`'s port mappings (pure). A mapping applies to each pod address of its
/// hostIP's family (both families when hostIP is unset); 0.0.0.0 and :: mean every address of
/// their family. A mapping whose family the pod has no address of yields nothing.
std::vector<Entry> entries_for(const ipam::Attachment& att, std::string_view network);

/// True when `att` has an IPv4 mapping that 127.0.0.1 can reach (hostIP unset, 0.0.0.0 or in
/// 127.0.0.0/8): its host veth then needs route_localnet (core/rtnl enable_route_localnet).
bool needs_route_localnet(const ipam::Attachment& att);

/// The first clash of `wanted` with what `current` holds or with itself, as "<what> is taken by
/// <owner>"; nullopt when there is none. Two entries clash when they are of one family, protocol
/// and host port, have different owners (or, for one owner, different targets), and their host
/// addresses are equal or either is "every address". An owner's own identical entries are fine.
std::optional<std::string> find_conflict(const std::vector<Entry>& wanted,
                                         const std::optional<nft::Ruleset>& current);

/// The table knit wants (pure): the static chains and maps, holding the elements of `current`
/// (nullopt: the table does not exist yet) except those whose owner is in `drop_owners`, plus
/// `add` (which replaces elements with the same key). Maps whose type changed start empty.
nft::Ruleset desired(const std::optional<nft::Ruleset>& current, const std::vector<Entry>& add,
                     const std::set<std::string>& drop_owners);

/// The first of `entries` that `current` does not hold exactly (same key, target and owner), as a
/// message for CHECK; nullopt when all are there.
std::optional<std::string> find_missing(const std::vector<Entry>& entries,
                                        const std::optional<nft::Ruleset>& current);

/// The owners of elements in `current` (nullopt: none) that belong to `network` and are not in
/// `keep`: what GC sweeps.
std::set<std::string> stale_owners(const std::optional<nft::Ruleset>& current,
                                   std::string_view network, const std::set<std::string>& keep);

// ---- Apply (the only part that talks to the kernel) ---------------------------------------------

/// Serialises hostport updates on this node: an flock on <data_dir>/hostport.lock (`data_dir` as
/// in the netconf; empty means /run/knit). Throws Error(kTryAgainLater) after 10 s, Error(kIo).
FileLock lock(const std::string& data_dir);

/// Adds `entries` (one attachment's, all with one owner) on `nft` (a NETLINK_NETFILTER socket),
/// creating the table when it is missing, in one transaction. Call with lock() held. Throws
/// Error(kPortConflict) naming the mapping and its owner when another attachment holds it (then
/// nothing changed), Error(kNetlink) when the kernel refuses.
void add(nl::Socket& nft, const std::vector<Entry>& entries);

/// Deletes every element owned by one of `owners`, in one transaction; returns how many. A
/// missing table or no such element is not an error. Call with lock() held. Throws
/// Error(kNetlink).
size_t remove(nl::Socket& nft, const std::set<std::string>& owners);

/// GC: deletes the elements of `network` whose owner is not in `keep`; returns how many.
/// Call with lock() held. Throws Error(kNetlink).
size_t sweep(nl::Socket& nft, std::string_view network, const std::set<std::string>& keep);

/// CHECK: find_missing() against the kernel's table. Throws Error(kNetlink).
std::optional<std::string> check(nl::Socket& nft, const std::vector<Entry>& entries);

}  // namespace knit::cni::hostport
