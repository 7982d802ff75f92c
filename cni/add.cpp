// CNI ADD: reserve, then wire; undo everything on failure.
#include <fcntl.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <unistd.h>

#include <variant>

#include "cni/agent_client.hpp"
#include "cni/conntrack.hpp"
#include "cni/hostport.hpp"
#include "core/rtnl.hpp"
#include "cni/verbs.hpp"
#include "cni/wiring.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/netns.hpp"
#include "core/str.hpp"
#include "ipam/allocate.hpp"
#include "ipam/store.hpp"

namespace knit::cni {

namespace {

constexpr uint32_t kDefaultMtu = 1500;

/// MTU of the link that carries the node's default route, or 1500 when there is none.
uint32_t uplink_mtu(nl::Socket& host, bool want_v4) {
  nl::Request req;
  rtnl::get_route(req, want_v4 ? *IpAddr::parse("192.0.2.1") : *IpAddr::parse("2001:db8::1"));
  int oif = 0;
  host.transact(req, [&](const nlmsghdr* m, size_t) {
    if (auto r = rtnl::parse_route(m)) oif = r->oif;
  });
  if (oif <= 0) return kDefaultMtu;
  nl::Request link_req;
  rtnl::get_link_index(link_req, oif);
  uint32_t mtu = kDefaultMtu;
  host.transact(link_req, [&](const nlmsghdr* m, size_t) {
    if (auto l = rtnl::parse_link(m); l && l->mtu > 0) mtu = l->mtu;
  });
  return mtu;
}

/// Writes `value` to a sysctl file opened in the calling thread's current namespace, skipping
/// the write when it already holds that value.
void write_sysctl(const std::string& path, std::string_view value) {
  Fd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) fail_errno(Code::kIo, str("open ", path), errno);
  char cur[16] = {};
  ssize_t n = ::read(fd.get(), cur, sizeof cur - 1);
  if (n > 0 && trim(std::string_view(cur, static_cast<size_t>(n))) == value) return;
  if (::pwrite(fd.get(), value.data(), value.size(), 0) != static_cast<ssize_t>(value.size())) {
    fail_errno(Code::kIo, str("write ", value, " to ", path), errno);
  }
}

/// Opens the sysctl file inside `ns` (a /proc/sys/net file resolves to the namespace of the
/// thread that opens it) and writes it from here.
void write_sysctl_in(const Netns& ns, const std::string& path, std::string_view value) {
  Fd fd;
  {
    NetnsGuard guard(ns);
    fd = Fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  }
  if (!fd) fail_errno(Code::kIo, str("open ", path, " in ", ns.path()), errno);
  if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    fail_errno(Code::kIo, str("write ", value, " to ", path, " in ", ns.path()), errno);
  }
}

struct VethIndexes {
  int host = 0;
  int pod = 0;
};

/// Creates the veth pair; returns both ifindexes (the pod's is the host side's IFLA_LINK). The
/// pod interface name being taken is Error(kInterfaceExists). A leftover host link of this very
/// attachment (a DEL whose detached teardown has not finished, or a crashed ADD) is removed
/// first; a host link that belongs to anything else is an error.
VethIndexes create_veth(nl::Socket& host, nl::Socket& pod_sock, const Wiring& w, const Netns& pod,
                        std::string_view alias) {
  rtnl::VethSpec spec{w.host_ifname, w.host_mac, w.pod_ifname, w.pod_mac, w.mtu, pod.fd()};
  for (int attempt = 0;; ++attempt) {
    nl::Request req;
    rtnl::new_veth(req, spec);
    rtnl::get_link(req, w.host_ifname, false);
    VethIndexes idx;
    try {
      host.transact(req, [&](const nlmsghdr* m, size_t) {
        if (auto l = rtnl::parse_link(m)) idx = {l->index, l->link};
      });
      if (idx.host <= 0 || idx.pod <= 0) {
        fail(Code::kNetlink, str("get link ", w.host_ifname, ": no peer in the reply"));
      }
      return idx;
    } catch (const Error& e) {
      if (e.sys_errno() != EEXIST || attempt > 0) throw;
      // Which side's name is taken? The container's wins the error: the spec requires ADD to
      // fail when CNI_IFNAME exists.
      if (rtnl::find_link(pod_sock, w.pod_ifname)) {
        fail(Code::kInterfaceExists,
             str("add ", w.pod_ifname, " in ", pod.path(), ": interface already exists"));
      }
      auto existing = rtnl::find_link(host, w.host_ifname);
      if (!existing || existing->alias != alias) {
        fail(Code::kInterfaceExists,
             str("create veth ", w.host_ifname, ": host interface name is taken",
                 existing && !existing->alias.empty() ? str(" by ", existing->alias) : ""));
      }
      log::info(str("removing leftover link ", w.host_ifname, " of ", alias));
      nl::Request del;
      rtnl::del_link_index(del, existing->index, w.host_ifname);
      host.transact(del);
    }
  }
}

/// Programs the DNAT of `entries` (one attachment's) and drops conntrack entries that would keep
/// UDP clients of those ports away from the new pod.
void add_hostports(const conf::NetConf& c, const std::vector<hostport::Entry>& entries) {
  nl::Socket nft = nl::Socket::open(NETLINK_NETFILTER);
  {
    auto lock = hostport::lock(c.data_dir);
    hostport::add(nft, entries);
  }
  for (const auto& e : entries) {
    if (e.proto != IPPROTO_UDP) continue;
    try {
      flush_conntrack_port(nft, e.family(), e.proto, e.host_port);
    } catch (const Error& err) {
      // Not fatal: stale entries expire once their clients pause (nf_conntrack_udp_timeout).
      log::warn(str("hostPort udp/", e.host_port, ": ", err.what()));
    }
  }
}

}  // namespace

conf::Result cmd_add(const conf::Request& req) {
  const auto& c = req.conf;
  const auto& env = req.env;
  auto pools = ipam::resolve_pools(c.ipam.ranges);

  Netns pod = Netns::open(env.netns);
  if (pod.same_as(Netns::current())) {
    fail(Code::kInvalidNetns, str("add ", env.ifname, ": CNI_NETNS ", env.netns,
                                  " is the plugin's own namespace"));
  }
  nl::Socket host = nl::Socket::open(NETLINK_ROUTE);
  nl::Socket pod_sock = nl::Socket::open_in(pod, NETLINK_ROUTE);
  bool has_v4 = false, has_v6 = false;
  for (const auto& p : pools) (p.family == Family::kV4 ? has_v4 : has_v6) = true;
  uint32_t mtu = c.mtu ? *c.mtu : uplink_mtu(host, has_v4);

  // Reserve the addresses and record the attachment in one store commit, before any link
  // exists: a crash from here on leaves a record that DEL and GC clean up.
  ipam::Store store(store_root(c), c.name);
  ipam::Attachment att;
  att.container_id = env.container_id;
  att.ifname = env.ifname;
  att.host_ifname = host_ifname_for(env.container_id, env.ifname);
  att.netns = env.netns;
  if (auto it = env.args.find("K8S_POD_NAMESPACE"); it != env.args.end()) {
    att.pod_namespace = it->second;
  }
  if (auto it = env.args.find("K8S_POD_NAME"); it != env.args.end()) att.pod_name = it->second;
  att.port_mappings = c.port_mappings;
  {
    auto txn = store.begin();
    if (txn.report().repaired) log::warn(str("ipam store ", store.dir(), ": ", txn.report().detail));
    if (txn.state().find(env.container_id, env.ifname)) {
      fail(Code::kInterfaceExists, str("add ", env.container_id, "/", env.ifname,
                                       ": attachment already exists (DEL it first)"));
    }
    auto decision = ipam::allocate(pools, txn.state(), c.requested_ips);
    if (auto* ex = std::get_if<ipam::Exhausted>(&decision)) {
      const auto& pool = pools[ex->pool];
      std::string ranges;
      for (const auto& r : pool.ranges) ranges += str(ranges.empty() ? "" : ",", r.subnet.to_string());
      fail(Code::kPoolExhausted, str("allocate address for ", env.container_id,
                                     ": no free address in range set ", ex->pool, " (", ranges,
                                     ")"));
    }
    if (auto* un = std::get_if<ipam::Unavailable>(&decision)) {
      fail(Code::kAddressUnavailable,
           str("allocate requested address ", un->requested.to_string(), ": ", un->reason));
    }
    att.ips = std::get<std::vector<IpAddr>>(decision);
    ipam::record(txn.state(), att, pools);
    txn.commit();
  }
  Undo undo;
  undo.add([&] {
    auto txn = store.begin();
    ipam::release(txn.state(), env.container_id, env.ifname);
    txn.commit();
  });

  Wiring w = plan_wiring(env.container_id, env.ifname, att.ips, mtu, c.requested_mac,
                         c.ipam.routes);
  std::string alias = link_alias(c.name, env.container_id, env.ifname);
  auto [host_index, pi] = create_veth(host, pod_sock, w, pod, alias);
  undo.add([&] {
    nl::Request del;
    rtnl::del_link_index(del, host_index, w.host_ifname);
    host.transact(del);
  });

  // Pod side. No address may wait on duplicate address detection.
  if (has_v6) write_sysctl_in(pod, str("/proc/sys/net/ipv6/conf/", env.ifname, "/accept_dad"), "0");
  nl::Request pod_req;
  rtnl::set_link_up(pod_req, pi, env.ifname, {});
  for (const auto& ip : w.pod_ips) rtnl::new_addr(pod_req, pi, env.ifname, Prefix::host(ip), true);
  if (w.gw4) {
    rtnl::new_route(pod_req, {Prefix::host(*w.gw4), std::nullopt, pi, env.ifname, true});
    rtnl::new_neigh(pod_req, pi, env.ifname, *w.gw4, w.host_mac);
  }
  if (w.gw6) rtnl::new_neigh(pod_req, pi, env.ifname, *w.gw6, w.host_mac);
  for (const auto& r : w.routes) rtnl::new_route(pod_req, {r.dst, r.gw, pi, env.ifname, false});
  pod_sock.transact(pod_req);

  // Node side.
  nl::Request host_req;
  if (w.gw6) rtnl::new_addr(host_req, host_index, w.host_ifname, Prefix(*w.gw6, 64), true);
  rtnl::set_link_up(host_req, host_index, w.host_ifname, alias);
  if (hostport::needs_route_localnet(att)) {
    rtnl::enable_route_localnet(host_req, host_index, w.host_ifname);
  }
  for (const auto& ip : w.pod_ips) {
    rtnl::new_route(host_req, {Prefix::host(ip), std::nullopt, host_index, w.host_ifname, true});
    rtnl::new_neigh(host_req, host_index, w.host_ifname, ip, w.pod_mac);
  }
  host.transact(host_req);
  if (has_v4) write_sysctl("/proc/sys/net/ipv4/ip_forward", "1");
  if (has_v6) write_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1");

  // hostPort: DNAT elements in knit's own table, before the container starts.
  if (auto entries = hostport::entries_for(att, c.name); !entries.empty()) {
    add_hostports(c, entries);
    undo.add([&c, owner = entries.front().owner] {
      auto lock = hostport::lock(c.data_dir);
      nl::Socket nft = nl::Socket::open(NETLINK_NETFILTER);
      hostport::remove(nft, {owner});
    });
  }

  // Policy: the pod's addresses must be in the agent's sets before the container starts.
  report_attach(c, att);

  undo.dismiss();
  return make_result(w, env.netns, c.prev_result);
}

}  // namespace knit::cni
