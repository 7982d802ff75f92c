// cni/conntrack.hpp: dropping conntrack entries that would shadow a new hostPort (ctnetlink).
//
// A UDP client that kept sending to a node port before the mapping existed has a conntrack entry
// that delivers locally (or answers port unreachable); conntrack keeps using it while the client
// keeps sending, so the new DNAT would never apply. ADD deletes such entries, as portmap and
// kindnet do. The kernel filters the dump (CTA_FILTER, Linux 5.8) and the reply is checked again
// here, so an older kernel that ignores the filter gives the same result, just slower.
#pragma once

#include <cstdint>

#include "core/ip.hpp"
#include "core/netlink.hpp"

namespace knit::cni {

/// Deletes every conntrack entry of family `f` and protocol `proto` whose original destination
/// port is `port`, in the namespace of `ct` (a NETLINK_NETFILTER socket). Returns how many were
/// deleted; entries that vanish meanwhile are fine. Throws Error(kNetlink).
size_t flush_conntrack_port(nl::Socket& ct, Family f, uint8_t proto, uint16_t port);

}  // namespace knit::cni
