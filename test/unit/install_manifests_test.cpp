// The shape of install/: the manifests a user applies, read with the test-side YAML reader
// (test/oracle/yaml_json.hpp, which also refuses YAML 1.1 booleans like `on`), and the agent
// configuration they carry, read with the agent's own loader.
#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "conf/agent_config.hpp"
#include "core/fs.hpp"
#include "core/str.hpp"
#include "test/oracle/yaml_json.hpp"

using nlohmann::json;
using knit::str;
using StrSet = std::set<std::string>;

namespace {

std::string install_dir() {
  std::string d = KNIT_TEST_DATA;
  return d.substr(0, d.size() - std::string("test/data").size()) + "install";
}

std::vector<json> manifests(const std::string& name) {
  return knit::test::oracle::yaml_file(str(install_dir(), '/', name));
}

const json& only(const std::vector<json>& docs, const std::string& kind) {
  const json* found = nullptr;
  for (const auto& d : docs) {
    if (d.value("kind", "") != kind) continue;
    BOOST_TEST_REQUIRE(found == nullptr, "two " << kind << " documents");
    found = &d;
  }
  BOOST_TEST_REQUIRE(found != nullptr, "no " << kind);
  return *found;
}

StrSet strings(const json& array) {
  StrSet out;
  for (const auto& s : array) out.insert(s.get<std::string>());
  return out;
}

const json& by_name(const json& array, const std::string& name) {
  for (const auto& e : array)
    if (e.value("name", "") == name) return e;
  BOOST_FAIL("no entry named " << name);
  return array;
}

/// The effective agent configuration a ConfigMap's knit.toml gives.
knit::conf::AgentConfig config_of(const json& configmap) {
  BOOST_TEST_REQUIRE(configmap["data"].contains("knit.toml"));
  knit::conf::AgentConfig c;
  knit::conf::apply_config_text(c, configmap["data"]["knit.toml"].get<std::string>(),
                                "ConfigMap knit-config");
  knit::conf::validate(c);
  return c;
}

/// Probes must reach the agent's metrics server where the configuration puts it.
void check_probes(const json& agent, const knit::conf::AgentConfig& c) {
  auto addr = knit::conf::parse_listen_address(c.metrics_address);
  BOOST_TEST_REQUIRE(addr.has_value(), "metrics.address is off or invalid");
  for (const char* probe : {"livenessProbe", "readinessProbe"}) {
    BOOST_TEST_REQUIRE(agent.contains(probe), "agent lacks " << probe);
    const json& get = agent[probe]["httpGet"];
    BOOST_TEST(get["host"].get<std::string>() == addr->ip.to_string(), probe);
    BOOST_TEST(get["port"].get<int>() == addr->port, probe);
  }
  BOOST_TEST(agent["livenessProbe"]["httpGet"]["path"].get<std::string>() == "/livez");
  BOOST_TEST(agent["readinessProbe"]["httpGet"]["path"].get<std::string>() == "/healthz");
  BOOST_TEST(by_name(agent["ports"], "metrics")["containerPort"].get<int>() == addr->port);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(install_manifests)

BOOST_AUTO_TEST_CASE(every_object_is_complete_and_in_kube_system) {
  auto docs = manifests("knit.yaml");
  StrSet kinds;
  for (const auto& d : docs) {
    BOOST_TEST_REQUIRE(d.is_object());
    BOOST_TEST(d.contains("apiVersion"));
    std::string kind = d.value("kind", "");
    kinds.insert(kind);
    BOOST_TEST(d["metadata"].value("name", "") == (kind == "ConfigMap" ? "knit-config" : "knit"));
    bool namespaced = kind != "ClusterRole" && kind != "ClusterRoleBinding";
    BOOST_TEST(d["metadata"].contains("namespace") == namespaced, kind);
    if (namespaced) BOOST_TEST(d["metadata"]["namespace"].get<std::string>() == "kube-system");
  }
  BOOST_TEST(kinds == (StrSet{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap",
                              "DaemonSet"}),
             boost::test_tools::per_element());
  BOOST_TEST(only(docs, "ClusterRole")["apiVersion"] == "rbac.authorization.k8s.io/v1");
  BOOST_TEST(only(docs, "DaemonSet")["apiVersion"] == "apps/v1");
}

// get/list/watch, exactly, on exactly what enforcement reads.
BOOST_AUTO_TEST_CASE(rbac_is_read_only_on_exactly_four_resources) {
  auto docs = manifests("knit.yaml");
  const json& role = only(docs, "ClusterRole");
  std::set<std::pair<std::string, std::string>> granted;
  for (const auto& rule : role["rules"]) {
    BOOST_TEST(strings(rule["verbs"]) == (StrSet{"get", "list", "watch"}),
               boost::test_tools::per_element());
    BOOST_TEST(rule["verbs"].size() == 3u);
    BOOST_TEST(!rule.contains("resourceNames"));
    BOOST_TEST(!rule.contains("nonResourceURLs"));
    for (const auto& g : rule["apiGroups"])
      for (const auto& r : rule["resources"]) granted.emplace(g.get<std::string>(), r.get<std::string>());
  }
  std::set<std::pair<std::string, std::string>> want{{"", "namespaces"},
                                                     {"", "pods"},
                                                     {"", "nodes"},
                                                     {"networking.k8s.io", "networkpolicies"}};
  BOOST_TEST((granted == want));

  const json& binding = only(docs, "ClusterRoleBinding");
  BOOST_TEST(binding["roleRef"]["kind"] == "ClusterRole");
  BOOST_TEST(binding["roleRef"]["name"] == role["metadata"]["name"]);
  BOOST_TEST(binding["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io");
  BOOST_TEST_REQUIRE(binding["subjects"].size() == 1u);
  const json& sa = only(docs, "ServiceAccount");
  BOOST_TEST(binding["subjects"][0]["kind"] == "ServiceAccount");
  BOOST_TEST(binding["subjects"][0]["name"] == sa["metadata"]["name"]);
  BOOST_TEST(binding["subjects"][0]["namespace"] == sa["metadata"]["namespace"]);
  BOOST_TEST(only(docs, "DaemonSet")["spec"]["template"]["spec"]["serviceAccountName"] ==
             sa["metadata"]["name"]);
}

BOOST_AUTO_TEST_CASE(daemonset_runs_on_every_node_with_the_host_network) {
  auto docs = manifests("knit.yaml");
  const json& ds = only(docs, "DaemonSet");
  const json& spec = ds["spec"];
  const json& pod = spec["template"]["spec"];
  for (const auto& [k, v] : spec["selector"]["matchLabels"].items()) {
    BOOST_TEST(spec["template"]["metadata"]["labels"][k] == v);
  }
  BOOST_TEST(spec["updateStrategy"]["type"] == "RollingUpdate");
  BOOST_TEST(pod["hostNetwork"] == true);
  BOOST_TEST(pod["priorityClassName"] == "system-node-critical");
  // One toleration without a key tolerates every taint.
  bool all = false;
  for (const auto& t : pod["tolerations"]) all |= t.value("operator", "") == "Exists" && !t.contains("key");
  BOOST_TEST(all);
}

BOOST_AUTO_TEST_CASE(containers_run_install_then_agent_with_the_configmap) {
  auto docs = manifests("knit.yaml");
  const json& pod = only(docs, "DaemonSet")["spec"]["template"]["spec"];
  BOOST_TEST_REQUIRE(pod["initContainers"].size() == 1u);
  BOOST_TEST_REQUIRE(pod["containers"].size() == 1u);
  const json& init = pod["initContainers"][0];
  const json& agent = pod["containers"][0];
  BOOST_TEST(init["image"] == agent["image"]);
  BOOST_TEST((init["command"] == json{"/usr/local/bin/knit", "install", "--config", "/etc/knit/knit.toml"}));
  BOOST_TEST((agent["command"] == json{"/usr/local/bin/knit", "agent", "--config", "/etc/knit/knit.toml"}));
  // The image puts the binary where the commands expect it.
  std::string containerfile = knit::read_file(install_dir() + "/Containerfile").value();
  BOOST_TEST(containerfile.find("COPY --from=build /knit /usr/local/bin/knit") != std::string::npos);

  const json& env = by_name(agent["env"], "NODE_NAME");
  BOOST_TEST(env["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName");

  // The config volume is the ConfigMap, mounted where --config reads it, in both containers.
  const json& config_volume = by_name(pod["volumes"], "config");
  BOOST_TEST(config_volume["configMap"]["name"] == only(docs, "ConfigMap")["metadata"]["name"]);
  for (const json* c : {&init, &agent}) {
    const json& m = by_name((*c)["volumeMounts"], "config");
    BOOST_TEST(m["mountPath"] == "/etc/knit");
    BOOST_TEST(m["readOnly"] == true);
  }
  BOOST_TEST(agent["resources"]["requests"]["cpu"] == "10m");
  BOOST_TEST(agent["resources"]["requests"]["memory"] == "20Mi");
}

// NET_ADMIN and NET_RAW for the agent, nothing for the installer, never privileged.
BOOST_AUTO_TEST_CASE(capabilities_are_net_admin_and_net_raw_only) {
  auto docs = manifests("knit.yaml");
  const json& pod = only(docs, "DaemonSet")["spec"]["template"]["spec"];
  const json& init = pod["initContainers"][0];
  const json& agent = pod["containers"][0];
  for (const json* c : {&init, &agent}) {
    const json& sc = (*c)["securityContext"];
    BOOST_TEST(sc.value("privileged", false) == false);
    BOOST_TEST(sc["allowPrivilegeEscalation"] == false);
    BOOST_TEST(sc["readOnlyRootFilesystem"] == true);
    BOOST_TEST(strings(sc["capabilities"]["drop"]) == StrSet{"ALL"}, boost::test_tools::per_element());
  }
  BOOST_TEST(strings(agent["securityContext"]["capabilities"]["add"]) == (StrSet{"NET_ADMIN", "NET_RAW"}),
             boost::test_tools::per_element());
  BOOST_TEST(agent["securityContext"]["capabilities"]["add"].size() == 2u);
  BOOST_TEST(!init["securityContext"]["capabilities"].contains("add"));
  BOOST_TEST(!pod.contains("hostPID"));
  BOOST_TEST(!pod.contains("hostIPC"));
}

BOOST_AUTO_TEST_CASE(host_paths_are_the_cni_dirs_and_run_knit_only) {
  auto docs = manifests("knit.yaml");
  const json& pod = only(docs, "DaemonSet")["spec"]["template"]["spec"];
  StrSet volumes, host_paths;
  for (const auto& v : pod["volumes"]) {
    volumes.insert(v["name"].get<std::string>());
    if (v.contains("hostPath")) host_paths.insert(v["hostPath"]["path"].get<std::string>());
  }
  BOOST_TEST(host_paths == (StrSet{"/run/knit", "/opt/cni/bin", "/etc/cni/net.d"}),
             boost::test_tools::per_element());
  // Host paths are mounted at the same path, and every mount names a volume.
  auto host_path_of = [&](const std::string& name) -> std::string {
    const json& v = by_name(pod["volumes"], name);
    return v.contains("hostPath") ? v["hostPath"]["path"].get<std::string>() : "";
  };
  auto mounts = [&](const json& c) {
    StrSet out;
    for (const auto& m : c["volumeMounts"]) {
      std::string name = m["name"].get<std::string>();
      BOOST_TEST(volumes.count(name) == 1u, "mount of undefined volume " << name);
      std::string hp = host_path_of(name);
      if (!hp.empty()) BOOST_TEST(m["mountPath"].get<std::string>() == hp);
      out.insert(m["mountPath"].get<std::string>());
    }
    return out;
  };
  BOOST_TEST(mounts(pod["initContainers"][0]) == (StrSet{"/etc/knit", "/opt/cni/bin", "/etc/cni/net.d"}),
             boost::test_tools::per_element());
  BOOST_TEST(mounts(pod["containers"][0]) == (StrSet{"/etc/knit", "/run/knit", "/etc/cni/net.d"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(configmap_toml_loads_and_probes_use_its_address) {
  auto docs = manifests("knit.yaml");
  knit::conf::AgentConfig c = config_of(only(docs, "ConfigMap"));
  const json& agent = only(docs, "DaemonSet")["spec"]["template"]["spec"]["containers"][0];
  check_probes(agent, c);
  // The socket and the plugin's state live in the /run/knit mount the CNI plugin also sees.
  BOOST_TEST(c.socket_path.rfind("/run/knit/", 0) == 0u);
  BOOST_TEST(c.data_dir == "/run/knit");
  // The service CIDR excluded from masquerade is kind's (install/kind-config.yaml).
  auto kind = manifests("kind-config.yaml");
  BOOST_TEST_REQUIRE(kind.size() == 1u);
  BOOST_TEST(kind[0]["networking"]["disableDefaultCNI"] == true);
  BOOST_TEST(kind[0]["networking"].contains("podSubnet"));
  BOOST_TEST_REQUIRE(c.no_masquerade_cidrs.size() == 1u);
  BOOST_TEST(c.no_masquerade_cidrs[0].to_string() == kind[0]["networking"]["serviceSubnet"].get<std::string>());
}

// install/k3s adds k3s's CNI directories (same path inside as outside) and k3s's service CIDR.
BOOST_AUTO_TEST_CASE(k3s_overlay_mounts_k3s_cni_dirs) {
  auto kustomization = manifests("k3s/kustomization.yaml");
  BOOST_TEST_REQUIRE(kustomization.size() == 1u);
  BOOST_TEST(strings(kustomization[0]["resources"]) == StrSet{"../knit.yaml"}, boost::test_tools::per_element());
  StrSet patches;
  for (const auto& p : kustomization[0]["patches"]) patches.insert(p["path"].get<std::string>());
  BOOST_TEST(patches == (StrSet{"k3s-paths.yaml", "k3s-config.yaml"}), boost::test_tools::per_element());

  auto base = manifests("knit.yaml");
  const json& base_pod = only(base, "DaemonSet")["spec"]["template"]["spec"];
  auto paths = manifests("k3s/k3s-paths.yaml");
  BOOST_TEST_REQUIRE(paths.size() == 1u);
  BOOST_TEST(paths[0]["metadata"]["name"] == only(base, "DaemonSet")["metadata"]["name"]);
  const json& pod = paths[0]["spec"]["template"]["spec"];
  StrSet host_paths;
  for (const auto& v : pod["volumes"]) {
    std::string p = v["hostPath"]["path"].get<std::string>();
    host_paths.insert(p);
    BOOST_TEST(p.rfind("/var/lib/rancher/k3s/", 0) == 0u);
    // Never the whole k3s tree: server/ and agent/*.key hold cluster credentials.
    BOOST_TEST(p.find("/server") == std::string::npos);
  }
  BOOST_TEST(host_paths == (StrSet{"/var/lib/rancher/k3s/agent/etc/containerd",
                                   "/var/lib/rancher/k3s/data/cni",
                                   "/var/lib/rancher/k3s/agent/etc/cni/net.d"}),
             boost::test_tools::per_element());
  auto mount_paths = [&](const json& c, const std::string& base_name) {
    BOOST_TEST(c["name"].get<std::string>() == base_name);  // patches the container of the base
    StrSet out;
    for (const auto& m : c["volumeMounts"]) {
      const json& v = by_name(pod["volumes"], m["name"].get<std::string>());
      BOOST_TEST(m["mountPath"] == v["hostPath"]["path"]);
      out.insert(m["mountPath"].get<std::string>());
    }
    return out;
  };
  BOOST_TEST(mount_paths(pod["initContainers"][0], base_pod["initContainers"][0]["name"]) == host_paths,
             boost::test_tools::per_element());
  BOOST_TEST(mount_paths(pod["containers"][0], base_pod["containers"][0]["name"]) ==
                 (StrSet{"/var/lib/rancher/k3s/agent/etc/containerd",
                         "/var/lib/rancher/k3s/agent/etc/cni/net.d"}),
             boost::test_tools::per_element());
  // The containerd config (the source of the paths) is only read.
  BOOST_TEST(by_name(pod["containers"][0]["volumeMounts"], "k3s-containerd")["readOnly"] == true);
  BOOST_TEST(by_name(pod["initContainers"][0]["volumeMounts"], "k3s-containerd")["readOnly"] == true);

  auto config = manifests("k3s/k3s-config.yaml");
  BOOST_TEST_REQUIRE(config.size() == 1u);
  BOOST_TEST(config[0]["metadata"]["name"] == only(base, "ConfigMap")["metadata"]["name"]);
  knit::conf::AgentConfig c = config_of(config[0]);
  BOOST_TEST_REQUIRE(c.no_masquerade_cidrs.size() == 1u);
  BOOST_TEST(c.no_masquerade_cidrs[0].to_string() == "10.43.0.0/16");
  check_probes(base_pod["containers"][0], c);
}

BOOST_AUTO_TEST_SUITE_END()
