#include "ipam/ipam_types.hpp"

#include "core/str.hpp"

namespace knit::ipam {

const Attachment* State::find(std::string_view container_id, std::string_view ifname) const {
  for (const auto& a : attachments) {
    if (a.container_id == container_id && a.ifname == ifname) return &a;
  }
  return nullptr;
}

std::string to_string(const Range& r) {
  return str(r.subnet.to_string(), " [", r.start.to_string(), "-", r.end.to_string(), "] gw ",
             r.gateway.to_string());
}

std::string to_string(const Pool& p) {
  std::string out = "{";
  for (size_t i = 0; i < p.ranges.size(); ++i) {
    if (i) out += ", ";
    out += to_string(p.ranges[i]);
  }
  out += '}';
  return out;
}

std::string to_string(const Attachment& a) {
  std::string out = str(a.container_id, '/', a.ifname, " ips=");
  for (size_t i = 0; i < a.ips.size(); ++i) {
    if (i) out += ',';
    out += a.ips[i].to_string();
  }
  out += str(" host=", a.host_ifname, " netns=", a.netns, " pod=", a.pod_namespace, '/', a.pod_name,
             " ports=", a.port_mappings.size());
  return out;
}

}  // namespace knit::ipam
