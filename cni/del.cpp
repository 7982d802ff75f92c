// CNI DEL and GC: work from knit's own records, never from the container's namespace.
#include <fcntl.h>
#include <linux/netlink.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "cni/agent_client.hpp"
#include "cni/hostport.hpp"
#include "core/rtnl.hpp"
#include "cni/verbs.hpp"
#include "cni/wiring.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/str.hpp"
#include "ipam/allocate.hpp"
#include "ipam/store.hpp"

namespace knit::cni {

std::string store_root(const conf::NetConf& conf) {
  if (!conf.ipam.data_dir.empty()) return conf.ipam.data_dir;
  if (!conf.data_dir.empty()) return conf.data_dir + "/ipam";
  return "/run/knit/ipam";
}

void remove_host_routes(nl::Socket& host, const ipam::Attachment& att) {
  nl::Request req;
  for (const auto& ip : att.ips) {
    rtnl::del_route(req, {Prefix::host(ip), std::nullopt, 0, att.host_ifname, true});
  }
  host.transact(req);
}

namespace {

/// Deletes the hostPort elements of `owners` (see cni/hostport.hpp).
void remove_hostports(const conf::NetConf& c, const std::set<std::string>& owners) {
  auto lock = hostport::lock(c.data_dir);
  nl::Socket nft = nl::Socket::open(NETLINK_NETFILTER);
  size_t n = hostport::remove(nft, owners);
  if (n > 0) log::debug(str("removed ", n, " hostPort element(s)"));
}

void delete_links_now(const std::vector<LinkRef>& links) {
  if (links.empty()) return;
  nl::Socket host = nl::Socket::open(NETLINK_ROUTE);
  nl::Request req;
  for (const auto& l : links) rtnl::del_link_index(req, l.index, l.name);
  host.transact(req);
}

/// The host link of an attachment, if it exists and carries this attachment's alias.
std::optional<LinkRef> own_link(nl::Socket& host, std::string_view name, std::string_view alias) {
  auto l = rtnl::find_link(host, name);
  if (!l || l->alias != alias) return std::nullopt;
  return LinkRef{l->index, l->name};
}

}  // namespace

void delete_links_detached(const std::vector<LinkRef>& links) {
  if (links.empty()) return;
  // The child outlives the plugin (it is re-parented when we exit; nobody waits for it), so DEL
  // returns as soon as its real work is done. Its standard streams point at /dev/null so the
  // runtime's reads of our stdout/stderr see EOF when we exit. Build the request before
  // forking: the child only sends it.
  nl::Request req;
  for (const auto& l : links) rtnl::del_link_index(req, l.index, l.name);
  pid_t child = fork();
  if (child < 0) {
    delete_links_now(links);
    return;
  }
  if (child == 0) {
    setsid();
    int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int fd = 0; fd < 3; ++fd) dup2(devnull, fd);
    try {
      nl::Socket host = nl::Socket::open(NETLINK_ROUTE);
      host.transact(req);
    } catch (...) {
      _exit(1);
    }
    _exit(0);
  }
}

void cmd_del(const conf::Request& req) {
  const auto& c = req.conf;
  const auto& env = req.env;
  nl::Socket host = nl::Socket::open(NETLINK_ROUTE);
  ipam::Store store(store_root(c), c.name);
  std::string host_ifname = host_ifname_for(env.container_id, env.ifname);
  {
    auto txn = store.begin();
    if (txn.report().repaired) log::warn(str("ipam store ", store.dir(), ": ", txn.report().detail));
    if (const auto* att = txn.state().find(env.container_id, env.ifname)) {
      host_ifname = att->host_ifname;
      remove_host_routes(host, *att);
      if (!att->port_mappings.empty()) {
        remove_hostports(c, {hostport::owner_tag(c.name, env.container_id, env.ifname)});
      }
      ipam::release(txn.state(), env.container_id, env.ifname);
      txn.commit();
    }
  }
  report_detach(c, env.container_id, env.ifname);
  // The routes are gone and the addresses released: DEL's contract is met. The link goes in
  // the background (its teardown waits for RCU grace periods); the pod's namespace going away
  // would also remove it, and GC sweeps any knit link left without a record.
  if (auto link = own_link(host, host_ifname, link_alias(c.name, env.container_id, env.ifname))) {
    delete_links_detached({*link});
  }
}

void cmd_gc(const conf::Request& req) {
  const auto& c = req.conf;
  std::set<std::pair<std::string, std::string>> valid;
  for (const auto& a : c.valid_attachments) valid.emplace(a.container_id, a.ifname);

  nl::Socket host = nl::Socket::open(NETLINK_ROUTE);
  ipam::Store store(store_root(c), c.name);
  std::vector<std::string> errors;
  std::set<std::pair<std::string, std::string>> kept;
  {
    auto txn = store.begin();
    std::vector<ipam::Attachment> stale;
    for (const auto& att : txn.state().attachments) {
      if (valid.count({att.container_id, att.ifname})) {
        kept.emplace(att.container_id, att.ifname);
      } else {
        stale.push_back(att);
      }
    }
    for (const auto& att : stale) {
      try {
        remove_host_routes(host, att);
      } catch (const Error& e) {
        errors.push_back(e.what());  // keep going: GC reports every failure at the end
      }
      ipam::release(txn.state(), att.container_id, att.ifname);
    }
    // hostPort elements of this network whose attachment is gone: the stale ones, and any a
    // crash left without a record. Under the store lock, so no ADD of this network records an
    // attachment in between.
    try {
      std::set<std::string> keep;
      for (const auto& att : txn.state().attachments) {
        keep.insert(hostport::owner_tag(c.name, att.container_id, att.ifname));
      }
      auto lock = hostport::lock(c.data_dir);
      nl::Socket nft = nl::Socket::open(NETLINK_NETFILTER);
      if (size_t n = hostport::sweep(nft, c.name, keep); n > 0) {
        log::info(str("gc: removed ", n, " hostPort element(s)"));
      }
    } catch (const Error& e) {
      errors.push_back(e.what());
    }
    if (!stale.empty() || txn.report().repaired) txn.commit();
    if (!stale.empty()) log::info(str("gc: released ", stale.size(), " attachment(s)"));
  }
  // Sweep every link of this network whose attachment has no record (left by a crash, or a
  // detached teardown that never ran).
  std::vector<LinkRef> doomed;
  for (const auto& l : rtnl::list_links(host)) {
    auto parts = parse_link_alias(l.alias);
    if (!parts || parts->network != c.name) continue;
    if (kept.count({parts->container_id, parts->ifname})) continue;
    doomed.push_back({l.index, l.name});
  }
  try {
    delete_links_now(doomed);
  } catch (const Error& e) {
    errors.push_back(e.what());
  }
  if (!errors.empty()) {
    std::string all;
    for (const auto& e : errors) all += str(all.empty() ? "" : "; ", e);
    fail(Code::kNetlink, str("gc ", c.name, ": ", all));
  }
}

void cmd_status(const conf::Request& req) {
  const auto& c = req.conf;
  auto pools = ipam::resolve_pools(c.ipam.ranges);
  std::optional<ipam::Store::Txn> txn;
  try {
    ipam::Store store(store_root(c), c.name);
    txn.emplace(store.begin(std::chrono::seconds(2)));
  } catch (const Error& e) {
    fail(Code::kNotAvailable, str("ipam store is unusable: ", e.what()));
  }
  auto free = ipam::free_counts(pools, txn->state());
  for (size_t i = 0; i < free.size(); ++i) {
    if (free[i] == 0) {
      fail(Code::kNotAvailable,
           str("address pool ", i, " (", pools[i].ranges.front().subnet.to_string(),
               ") has no free address"));
    }
  }
}

}  // namespace knit::cni
