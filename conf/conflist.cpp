#include "conf/conflist.hpp"

#include <nlohmann/json.hpp>

#include "conf/agent_config.hpp"
#include "core/error.hpp"
#include "core/str.hpp"

namespace knit::conf {

std::string render_conflist(const ConflistSpec& spec) {
  using ojson = nlohmann::ordered_json;
  if (spec.pod_cidrs.empty()) fail(Code::kInvalidConfig, "render conflist: no pod CIDR");
  ojson ranges = ojson::array();
  for (const auto& p : spec.pod_cidrs) {
    if (!p.is_network()) {
      fail(Code::kInvalidConfig, str("render conflist: pod CIDR ", p.to_string(),
                                     " has host bits set"));
    }
    ranges.push_back(ojson::array({ojson{{"subnet", p.to_string()}}}));
  }
  ojson plugin;
  plugin["type"] = "knit";
  if (spec.mtu != 0) plugin["mtu"] = spec.mtu;
  plugin["agent"] = std::string(to_string(spec.agent_mode));
  if (!spec.agent_socket.empty()) plugin["agentSocket"] = spec.agent_socket;
  if (!spec.data_dir.empty()) plugin["dataDir"] = spec.data_dir;
  plugin["ipam"] = ojson{{"type", "knit"}, {"ranges", std::move(ranges)}};
  plugin["capabilities"] = ojson{{"portMappings", true}};
  ojson list;
  list["cniVersion"] = std::string(kConflistVersion);
  list["cniVersions"] = ojson::array({"0.3.1", "0.4.0", "1.0.0", "1.1.0"});
  list["name"] = spec.name;
  list["plugins"] = ojson::array({std::move(plugin)});
  return list.dump(2) + "\n";
}

}  // namespace knit::conf
