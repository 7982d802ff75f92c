#include "lab/sandbox.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/netlink.hpp"
#include "core/str.hpp"
#include "lab/names.hpp"
#include "core/rtnl.hpp"

namespace knit::lab {

namespace {

/// Makes /run/netns a shared mount, as `ip netns add` does: first try to mark it shared; if it
/// is not a mount point yet (EINVAL), bind it onto itself and try again.
void share_netns_dir() {
  std::string dir(kNetnsDir);
  make_dirs(dir, 0755);
  if (mount("", dir.c_str(), "none", MS_SHARED | MS_REC, nullptr) == 0) return;
  if (errno != EINVAL) fail_errno(Code::kIo, str("make ", dir, " a shared mount"), errno);
  if (mount(dir.c_str(), dir.c_str(), "none", MS_BIND | MS_REC, nullptr) != 0) {
    fail_errno(Code::kIo, str("bind mount ", dir, " onto itself"), errno);
  }
  if (mount("", dir.c_str(), "none", MS_SHARED | MS_REC, nullptr) != 0) {
    fail_errno(Code::kIo, str("make ", dir, " a shared mount"), errno);
  }
}

}  // namespace

void create_netns(const std::string& name) {
  share_netns_dir();
  std::string path = str(kNetnsDir, '/', name);
  {
    Fd f(::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0));
    if (!f) fail_errno(Code::kIo, str("create netns ", name), errno);
  }
  bool mounted = false;
  try {
    // The guard brings this thread back to its namespace whatever happens below.
    NetnsGuard back(Netns::current());
    if (unshare(CLONE_NEWNET) != 0) fail_errno(Code::kIo, str("create netns ", name), errno);
    if (mount("/proc/thread-self/ns/net", path.c_str(), "none", MS_BIND, nullptr) != 0) {
      fail_errno(Code::kIo, str("bind netns ", name, " to ", path), errno);
    }
    mounted = true;
    // A socket opened here carries the new namespace.
    nl::Socket sock = nl::Socket::open(NETLINK_ROUTE);
    nl::Request req;
    rtnl::set_link_up(req, 1, str("lo in ", name));
    sock.transact(req);
  } catch (...) {
    if (mounted) umount2(path.c_str(), MNT_DETACH);
    unlink(path.c_str());
    throw;
  }
}

bool delete_netns(const std::string& name) {
  std::string path = str(kNetnsDir, '/', name);
  if (umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    fail_errno(Code::kIo, str("unmount netns ", path), errno);
  }
  if (unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return false;
    fail_errno(Code::kIo, str("delete netns ", path), errno);
  }
  return true;
}

std::vector<std::string> list_netns(std::string_view prefix) {
  std::vector<std::string> out;
  std::string dir(kNetnsDir);
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return out;
    fail_errno(Code::kIo, str("list ", dir), errno);
  }
  while (dirent* e = readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != ".." && n.starts_with(prefix)) out.emplace_back(n);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

void setup_uplink(const Netns& node) {
  constexpr int kUp = 2, kPeer = 3;  // lo is 1 in a fresh namespace
  nl::Socket sock = nl::Socket::open_in(node, NETLINK_ROUTE);
  nl::Request req;
  rtnl::VethSpec veth;
  veth.host_name = kUplink;
  veth.host_index = kUp;
  veth.peer_name = kUplinkPeer;
  veth.peer_index = kPeer;  // no netns fd: the peer stays here
  rtnl::new_veth(req, veth);
  rtnl::set_link_up(req, kPeer, kUplinkPeer);
  rtnl::set_link_up(req, kUp, kUplink);
  rtnl::new_addr(req, kUp, kUplink, *Prefix::parse(kNodeV4), true);
  rtnl::new_addr(req, kUp, kUplink, *Prefix::parse(kNodeV6), true);
  for (Family f : {Family::kV4, Family::kV6}) {
    Prefix any(f == Family::kV4 ? IpAddr::v4(0) : IpAddr::from_u128(Family::kV6, 0), 0);
    rtnl::new_route(req, {any, std::nullopt, kUp, std::string(kUplink), true});
  }
  sock.transact(req);
}

std::optional<Fd> try_lock(const std::string& path) {
  for (;;) {
    Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd) fail_errno(Code::kIo, str("open lock ", path), errno);
    if (flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK) return std::nullopt;
      fail_errno(Code::kIo, str("lock ", path), errno);
    }
    struct stat held {
    }, now{};
    if (fstat(fd.get(), &held) != 0) fail_errno(Code::kIo, str("stat lock ", path), errno);
    if (stat(path.c_str(), &now) == 0 && now.st_ino == held.st_ino && now.st_dev == held.st_dev) {
      return fd;
    }
    // Unlinked (the lab was taken down) while we opened it: lock the file there now.
  }
}

}  // namespace knit::lab
