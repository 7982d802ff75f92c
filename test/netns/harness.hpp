// test/netns/harness.hpp: a sandbox node for CNI, agent and lab tests.
//
// The node is a namespace with a dummy "uplink" (10.99.0.1/24, fd99::1/64, default routes
// through it) so that the plugin derives its MTU and the node has addresses to talk from, like a
// real node. knit runs inside it, exactly as a runtime on that node would run it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "fixture.hpp"

namespace knit::test {

struct Node {
  explicit Node(const std::string& tag, int uplink_mtu = 1500);
  ~Node();

  /// A conflist-style plugin config for network `net` with the given `ranges` JSON.
  std::string config(const std::string& ranges_json, const std::string& version = "1.1.0",
                     const std::string& extra = "") const;
  std::string dual_stack_config(const std::string& version = "1.1.0") const;

  Proc add(const std::string& cid, const TestNetns& pod, const std::string& config,
           const std::string& ifname = "eth0", const std::string& args = "") const;
  Proc del(const std::string& cid, const std::string& netns_path, const std::string& config,
           const std::string& ifname = "eth0") const;
  Proc check(const std::string& cid, const TestNetns& pod, const std::string& config,
             const std::string& ifname = "eth0") const;
  Proc verb(const std::string& verb, const std::string& config) const;

  /// The text of the IPAM store file of network `net` ("" when missing).
  std::string store_text() const;
  /// Number of attachment records in the store.
  size_t attachments() const;

  TestNetns ns;
  std::string data_dir;
  std::string net = "knit-test";
};

/// Extracts the addresses ("10.22.0.2") of a CNI result, in order.
std::vector<std::string> result_ips(const std::string& result_json);
/// The host-side interface name of a CNI result (the interface without a sandbox).
std::string result_host_ifname(const std::string& result_json);
/// The "code" of a CNI error reply, or -1.
int error_code(const std::string& reply);

/// What a runtime hands plugin `index` of a conflist (libcni's flattening): the plugin's object
/// with the list's "name" and "cniVersion" added. "" when `conflist` is not a conflist.
std::string conflist_plugin_config(const std::string& conflist, size_t index = 0);
/// CNI_ARGS as the kubelet's runtimes pass them for a pod.
std::string pod_cni_args(const std::string& pod_namespace, const std::string& pod_name);

/// ping from `from` (a namespace path) to `addr`, one packet, one second.
bool ping(const std::string& from_netns, const std::string& addr);

}  // namespace knit::test
