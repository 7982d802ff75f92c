// lab/sandbox.hpp: named network namespaces, the node's uplink, and the lab's lock (I/O).
//
// Namespaces are made the way iproute2 makes them, without running it: /run/netns is a shared
// mount (so a namespace bound there shows in every mount namespace that sees /run), the calling
// thread unshares a fresh network namespace, binds /proc/thread-self/ns/net onto
// /run/netns/<name>, and returns to its own namespace. Deleting is a lazy unmount and an unlink;
// the kernel frees the namespace (and the veth ends in it) once nothing holds it any more.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/fd.hpp"
#include "core/netns.hpp"

namespace knit::lab {

/// Creates /run/netns/<name> with lo up. Throws Error(kIo) naming the namespace, "File exists"
/// when it is there already.
void create_netns(const std::string& name);
/// Deletes /run/netns/<name>. Returns false when there was nothing to delete. Throws Error(kIo).
bool delete_netns(const std::string& name);
/// Names in /run/netns that start with `prefix`, sorted.
std::vector<std::string> list_netns(std::string_view prefix);

/// Gives the (fresh) node namespace its uplink: veth up0 with peer up0peer (both inside; this
/// kernel has no dummy links), 10.99.0.1/24 and fd99::1/64 on up0, default routes of both
/// families through it. One netlink request. Throws Error(kNetlink) naming what was refused.
void setup_uplink(const Netns& node);

/// An exclusive flock(2) on `path` (created if missing) without waiting: nullopt when another
/// process holds it. A lock file that was unlinked while we waited for it is not a lock: the
/// returned lock is on the file that is at `path` now. Throws Error(kIo).
std::optional<Fd> try_lock(const std::string& path);

}  // namespace knit::lab
