// cni/verbs.hpp: the CNI verbs behind cni::run (internal to the cni module).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "conf/netconf_types.hpp"
#include "core/netlink.hpp"
#include "ipam/ipam_types.hpp"

namespace knit::cni {

/// ADD: returns the result to print.
conf::Result cmd_add(const conf::Request& req);
/// DEL: idempotent; succeeds when there is nothing left to delete.
void cmd_del(const conf::Request& req);
/// CHECK: throws Error(kCheck...) describing the first difference found.
void cmd_check(const conf::Request& req);
/// GC: releases every attachment not in req.conf.valid_attachments.
void cmd_gc(const conf::Request& req);
/// STATUS: throws Error(50) when ADD could not succeed now.
void cmd_status(const conf::Request& req);

/// The store directory root for a request (ipam.dataDir, dataDir, or /run/knit/ipam).
std::string store_root(const conf::NetConf& conf);

/// Removes the node-side state of `att` (host routes) in one request on `host`.
void remove_host_routes(nl::Socket& host, const ipam::Attachment& att);

/// Deletes host links without waiting for the kernel's device teardown: a detached child
/// process sends the RTM_DELLINKs; the caller returns at once. Falls back to deleting inline
/// when the child cannot be created.
struct LinkRef {
  int index = 0;
  std::string name;
};
void delete_links_detached(const std::vector<LinkRef>& links);

/// Runs the registered undo steps in reverse unless dismissed; errors in undo steps are logged.
class Undo {
 public:
  Undo() = default;
  Undo(const Undo&) = delete;
  Undo& operator=(const Undo&) = delete;
  ~Undo();
  void add(std::function<void()> step) { steps_.push_back(std::move(step)); }
  void dismiss() { steps_.clear(); }

 private:
  std::vector<std::function<void()>> steps_;
};

}  // namespace knit::cni
