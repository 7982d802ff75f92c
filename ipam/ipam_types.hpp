// ipam/ipam_types.hpp: the IPAM store's contents as plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/netconf_types.hpp"
#include "core/ip.hpp"

namespace knit::ipam {

/// A range of host-local's form with every default applied and checked.
struct Range {
  Prefix subnet;
  IpAddr start;    ///< first address handed out
  IpAddr end;      ///< last address handed out
  IpAddr gateway;  ///< never handed out
  friend bool operator==(const Range&, const Range&) = default;
};

/// The ranges of one set (one address per set per attachment), all of one family.
struct Pool {
  Family family = Family::kV4;
  std::vector<Range> ranges;
  friend bool operator==(const Pool&, const Pool&) = default;
};

/// One attachment (CNI_CONTAINERID, CNI_IFNAME) and everything knit must undo for it. The store
/// keeps these records so DEL and GC never depend on the container's namespace still existing.
struct Attachment {
  std::string container_id;
  std::string ifname;
  std::vector<IpAddr> ips;    ///< one per pool, in pool order
  std::string host_ifname;    ///< host side of the veth
  std::string netns;          ///< CNI_NETNS at ADD time
  std::string pod_namespace;  ///< K8S_POD_NAMESPACE, if given
  std::string pod_name;       ///< K8S_POD_NAME, if given
  std::vector<conf::PortMapping> port_mappings;
  friend bool operator==(const Attachment&, const Attachment&) = default;
};

/// Everything one store file holds.
struct State {
  /// Last address handed out per pool (round-robin cursor); empty optional when none yet.
  std::vector<std::optional<IpAddr>> last_reserved;
  std::vector<Attachment> attachments;
  friend bool operator==(const State&, const State&) = default;

  /// The attachment for (container_id, ifname), or nullptr.
  const Attachment* find(std::string_view container_id, std::string_view ifname) const;
};

/// One-line renderings for logs and test failure messages.
std::string to_string(const Range& r);
std::string to_string(const Pool& p);
std::string to_string(const Attachment& a);

}  // namespace knit::ipam
