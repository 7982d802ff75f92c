// test/bench/synthetic.hpp: a synthetic cluster as the Kubernetes API serves it, for benchmarks.
//
// policy_bench's cluster idea, as JSON objects shaped like what `kubectl get -o json` (and so the
// API server) returns for objects made by Deployments, kubeadm and `kubectl apply`: server-set
// metadata (uid, resourceVersion left to the server, creationTimestamp, ownerReferences,
// managedFields, last-applied-configuration), defaulted specs (protocol, policyTypes,
// terminationMessagePath, ...) and a kubelet-written status. Sizes are what matter for a
// decoder: a pod here is ~5 KiB of JSON with managedFields (real ones are 4-10 KiB), a node
// ~8 KiB (the kubelet's images list is most of it).
//
// Shape (defaults): 100 namespaces ns-000..ns-099 labelled team=t<i%10> (ns-000 also
// purpose=monitoring); 100 pods per namespace labelled app=a<j%10>, tier=t<j%3>, pod j of every
// namespace on node j % nodes (so each node, node-000 included, runs one pod per namespace);
// 100 nodes node-000.. with podCIDR 10.244.<k>.0/24 and InternalIP 172.18.<k/250>.<k%250+2>;
// 10 policies per namespace of varied shapes (see policy_object): default deny, same-namespace
// and cross-namespace selectors, matchExpressions, named ports (ingress and egress), endPort
// ranges, ipBlock with except, allow-all, egress DNS, UDP and SCTP.
// Pod addresses are unique in 10.244.<node>.0/24 (fits() says whether the shape allows it).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <string>

namespace knit::bench {

using nlohmann::json;

struct ClusterShape {
  uint32_t namespaces = 100;
  uint32_t pods_per_namespace = 100;
  uint32_t policies_per_namespace = 10;
  uint32_t nodes = 100;
  /// metadata.managedFields on every object, as the API server returns it (client-go cannot
  /// ask for it to be left out of lists and watches).
  bool managed_fields = true;

  uint32_t pods() const { return namespaces * pods_per_namespace; }
  uint32_t policies() const { return namespaces * policies_per_namespace; }
};

inline std::string fmt(const char* f, uint32_t a) {
  char b[64];
  std::snprintf(b, sizeof b, f, a);
  return b;
}

inline std::string namespace_name(uint32_t i) {
  return fmt("ns-%03u", i);
}
inline std::string node_name(uint32_t k) {
  return fmt("node-%03u", k);
}
inline std::string pod_name(uint32_t i, uint32_t j) {
  return fmt("a%u-7d9f8c6b5-", j % 10) + fmt("p%04u", j) + fmt("x%02u", i % 100);
}
inline std::string node_ip(uint32_t k) {
  return "172.18." + std::to_string(k / 250) + "." + std::to_string(k % 250 + 2);
}
/// Unique per pod: pod j of namespace i is the (j / nodes)-th of that namespace on its node.
inline std::string pod_ip(const ClusterShape& s, uint32_t i, uint32_t j) {
  uint32_t per_node = (s.pods_per_namespace + s.nodes - 1) / s.nodes;
  return "10.244." + std::to_string(j % s.nodes) + "." +
         std::to_string(2 + i * per_node + j / s.nodes);
}
/// Whether every pod address fits its node's /24 (pod_ip stays unique).
inline bool fits(const ClusterShape& s) {
  uint32_t per_node = s.nodes ? (s.pods_per_namespace + s.nodes - 1) / s.nodes : 0;
  return s.nodes > 0 && s.nodes <= 256 && 2 + s.namespaces * per_node <= 255;
}

/// A stable UUID-looking string.
inline std::string uid(uint32_t kind, uint32_t a, uint32_t b) {
  char out[40];
  uint64_t h = (uint64_t{kind} << 48) ^ (uint64_t{a} << 20) ^ b;
  h = (h ^ (h >> 31)) * 0x7fb5d329728ea185ULL;
  h = (h ^ (h >> 27)) * 0x81dadef4bc2dd44dULL;
  std::snprintf(out, sizeof out, "%08x-%04x-4%03x-a%03x-%012llx", static_cast<uint32_t>(h >> 32),
                static_cast<uint32_t>(h >> 16) & 0xffff, static_cast<uint32_t>(h) & 0xfff,
                (a * 31 + b) & 0xfff, static_cast<unsigned long long>(h & 0xffffffffffffULL));
  return out;
}

inline const char* kTimestamp = "2024-05-14T09:21:37Z";

/// metadata.managedFields of one writer: the field set is an opaque tree to clients.
inline json managed(const char* manager, const char* operation, json fields,
                    const char* subresource = nullptr) {
  json m{{"manager", manager}, {"operation", operation},   {"apiVersion", "v1"},
         {"time", kTimestamp}, {"fieldsType", "FieldsV1"}, {"fieldsV1", std::move(fields)}};
  if (subresource) m["subresource"] = subresource;
  return m;
}

inline json namespace_object(const ClusterShape& s, uint32_t i) {
  std::string name = namespace_name(i);
  json labels{{"kubernetes.io/metadata.name", name}, {"team", "t" + std::to_string(i % 10)}};
  if (i == 0) labels["purpose"] = "monitoring";
  json meta{
      {"name", name}, {"uid", uid(1, i, 0)}, {"creationTimestamp", kTimestamp}, {"labels", labels}};
  if (s.managed_fields) {
    meta["managedFields"] =
        json::array({managed("kubectl-create", "Update",
                             {{"f:metadata",
                               {{"f:labels",
                                 {{".", json::object()},
                                  {"f:kubernetes.io/metadata.name", json::object()},
                                  {"f:team", json::object()}}}}}})});
  }
  return {{"kind", "Namespace"},
          {"apiVersion", "v1"},
          {"metadata", meta},
          {"spec", {{"finalizers", {"kubernetes"}}}},
          {"status", {{"phase", "Active"}}}};
}

inline json node_object(const ClusterShape& s, uint32_t k) {
  std::string name = node_name(k);
  std::string cidr = "10.244." + std::to_string(k) + ".0/24";
  json images = json::array();
  const char* names[] = {"registry.k8s.io/etcd",
                         "registry.k8s.io/kube-apiserver",
                         "registry.k8s.io/kube-controller-manager",
                         "registry.k8s.io/kube-proxy",
                         "registry.k8s.io/kube-scheduler",
                         "registry.k8s.io/coredns/coredns",
                         "docker.io/library/nginx",
                         "docker.io/library/redis",
                         "quay.io/prometheus/node-exporter",
                         "ghcr.io/example/shop-frontend",
                         "ghcr.io/example/shop-backend",
                         "ghcr.io/example/payments",
                         "docker.io/library/postgres",
                         "registry.k8s.io/pause",
                         "docker.io/envoyproxy/envoy",
                         "quay.io/jetstack/cert-manager-controller"};
  for (uint32_t n = 0; n < 16; ++n) {
    std::string base = names[n];
    images.push_back({{"names",
                       {base + "@sha256:" + uid(9, n, 0) + uid(9, n, 1).substr(0, 28),
                        base + ":v1." + std::to_string(n)}},
                      {"sizeBytes", 10'000'000 + n * 1'234'567}});
  }
  json cond = json::array();
  const char* types[][3] = {{"MemoryPressure", "False", "KubeletHasSufficientMemory"},
                            {"DiskPressure", "False", "KubeletHasNoDiskPressure"},
                            {"PIDPressure", "False", "KubeletHasSufficientPID"},
                            {"Ready", "True", "KubeletReady"}};
  for (auto& t : types) {
    cond.push_back({{"type", t[0]},
                    {"status", t[1]},
                    {"lastHeartbeatTime", kTimestamp},
                    {"lastTransitionTime", kTimestamp},
                    {"reason", t[2]},
                    {"message", std::string("kubelet reports ") + t[2]}});
  }
  json resources{{"cpu", "8"},
                 {"ephemeral-storage", "102625208Ki"},
                 {"hugepages-2Mi", "0"},
                 {"memory", "32780312Ki"},
                 {"pods", "110"}};
  json meta{{"name", name},
            {"uid", uid(2, k, 0)},
            {"creationTimestamp", kTimestamp},
            {"labels",
             {{"beta.kubernetes.io/arch", "amd64"},
              {"beta.kubernetes.io/os", "linux"},
              {"kubernetes.io/arch", "amd64"},
              {"kubernetes.io/hostname", name},
              {"kubernetes.io/os", "linux"},
              {"topology.kubernetes.io/zone", "zone-" + std::to_string(k % 3)}}},
            {"annotations",
             {{"kubeadm.alpha.kubernetes.io/cri-socket", "unix:///run/containerd/containerd.sock"},
              {"node.alpha.kubernetes.io/ttl", "0"},
              {"volumes.kubernetes.io/controller-managed-attach-detach", "true"}}}};
  if (s.managed_fields) {
    meta["managedFields"] = json::array(
        {managed("kubelet", "Update",
                 {{"f:metadata",
                   {{"f:annotations",
                     {{".", json::object()},
                      {"f:volumes.kubernetes.io/"
                       "controller-managed-attach-detach",
                       json::object()}}},
                    {"f:labels",
                     {{".", json::object()}, {"f:kubernetes.io/hostname", json::object()}}}}}}),
         managed("kube-controller-manager", "Update",
                 {{"f:spec", {{"f:podCIDR", json::object()}, {"f:podCIDRs", json::object()}}}}),
         managed("kubelet", "Update",
                 {{"f:status", {{"f:conditions", json::object()}, {"f:images", json::object()}}}},
                 "status")});
  }
  return {
      {"kind", "Node"},
      {"apiVersion", "v1"},
      {"metadata", meta},
      {"spec", {{"podCIDR", cidr}, {"podCIDRs", {cidr}}, {"providerID", "kind://docker/" + name}}},
      {"status",
       {{"addresses",
         {{{"type", "InternalIP"}, {"address", node_ip(k)}},
          {{"type", "Hostname"}, {"address", name}}}},
        {"allocatable", resources},
        {"capacity", resources},
        {"conditions", cond},
        {"daemonEndpoints", {{"kubeletEndpoint", {{"Port", 10250}}}}},
        {"images", images},
        {"nodeInfo",
         {{"architecture", "amd64"},
          {"bootID", uid(3, k, 0)},
          {"containerRuntimeVersion", "containerd://1.7.13"},
          {"kernelVersion", "6.1.0-18-amd64"},
          {"kubeProxyVersion", "v1.29.2"},
          {"kubeletVersion", "v1.29.2"},
          {"machineID", uid(4, k, 0)},
          {"operatingSystem", "linux"},
          {"osImage", "Debian GNU/Linux 12 (bookworm)"},
          {"systemUUID", uid(5, k, 0)}}}}}};
}

/// Container ports by app: every app serves http 8080 and metrics 9100; a2 adds grpc 9090,
/// a7 UDP mdns 5353, a4 SCTP diameter 3868; a5 runs a sidecar (a restartable init container)
/// with envoy-admin 15000.
inline json pod_object(const ClusterShape& s, uint32_t i, uint32_t j) {
  uint32_t app = j % 10;
  std::string a = "a" + std::to_string(app);
  std::string ns = namespace_name(i);
  std::string name = pod_name(i, j);
  json ports = json::array({{{"name", "http"}, {"containerPort", 8080}, {"protocol", "TCP"}},
                            {{"name", "metrics"}, {"containerPort", 9100}, {"protocol", "TCP"}}});
  if (app == 2) ports.push_back({{"name", "grpc"}, {"containerPort", 9090}, {"protocol", "TCP"}});
  if (app == 7) ports.push_back({{"name", "mdns"}, {"containerPort", 5353}, {"protocol", "UDP"}});
  if (app == 4) {
    ports.push_back({{"name", "diameter"}, {"containerPort", 3868}, {"protocol", "SCTP"}});
  }
  auto container = [&](const std::string& cname, const std::string& image, json cports) {
    json c{{"name", cname},
           {"image", image},
           {"imagePullPolicy", "IfNotPresent"},
           {"env",
            {{{"name", "POD_NAMESPACE"},
              {"valueFrom",
               {{"fieldRef", {{"apiVersion", "v1"}, {"fieldPath", "metadata.namespace"}}}}}},
             {{"name", "LOG_LEVEL"}, {"value", "info"}}}},
           {"resources",
            {{"limits", {{"cpu", "500m"}, {"memory", "256Mi"}}},
             {"requests", {{"cpu", "100m"}, {"memory", "128Mi"}}}}},
           {"readinessProbe",
            {{"httpGet", {{"path", "/healthz"}, {"port", 8080}, {"scheme", "HTTP"}}},
             {"periodSeconds", 10},
             {"timeoutSeconds", 1},
             {"successThreshold", 1},
             {"failureThreshold", 3}}},
           {"terminationMessagePath", "/dev/termination-log"},
           {"terminationMessagePolicy", "File"},
           {"volumeMounts",
            {{{"name", "kube-api-access-" + name.substr(name.size() - 5)},
              {"readOnly", true},
              {"mountPath", "/var/run/secrets/kubernetes.io/serviceaccount"}}}}};
    if (!cports.empty()) c["ports"] = std::move(cports);
    return c;
  };
  json spec{{"containers", {container("app", "ghcr.io/example/" + a + ":1.4.2", ports)}},
            {"dnsPolicy", "ClusterFirst"},
            {"enableServiceLinks", true},
            {"nodeName", node_name(j % s.nodes)},
            {"preemptionPolicy", "PreemptLowerPriority"},
            {"priority", 0},
            {"restartPolicy", "Always"},
            {"schedulerName", "default-scheduler"},
            {"securityContext", json::object()},
            {"serviceAccount", "default"},
            {"serviceAccountName", "default"},
            {"terminationGracePeriodSeconds", 30},
            {"tolerations",
             {{{"effect", "NoExecute"},
               {"key", "node.kubernetes.io/not-ready"},
               {"operator", "Exists"},
               {"tolerationSeconds", 300}},
              {{"effect", "NoExecute"},
               {"key", "node.kubernetes.io/unreachable"},
               {"operator", "Exists"},
               {"tolerationSeconds", 300}}}},
            {"volumes",
             {{{"name", "kube-api-access-" + name.substr(name.size() - 5)},
               {"projected",
                {{"defaultMode", 420},
                 {"sources",
                  {{{"serviceAccountToken", {{"expirationSeconds", 3607}, {"path", "token"}}}},
                   {{"configMap",
                     {{"name", "kube-root-ca.crt"},
                      {"items", {{{"key", "ca.crt"}, {"path", "ca.crt"}}}}}}}}}}}}}}};
  if (app == 5) {
    json sidecar =
        container("proxy", "docker.io/envoyproxy/envoy:v1.29.1",
                  {{{"name", "envoy-admin"}, {"containerPort", 15000}, {"protocol", "TCP"}}});
    sidecar["restartPolicy"] = "Always";
    spec["initContainers"] = {sidecar};
  }
  std::string ip = pod_ip(s, i, j);
  json cond = json::array();
  for (const char* t : {"Initialized", "Ready", "ContainersReady", "PodScheduled"}) {
    cond.push_back({{"type", t},
                    {"status", "True"},
                    {"lastProbeTime", nullptr},
                    {"lastTransitionTime", kTimestamp}});
  }
  json status{{"phase", "Running"},
              {"conditions", cond},
              {"hostIP", node_ip(j % s.nodes)},
              {"hostIPs", {{{"ip", node_ip(j % s.nodes)}}}},
              {"podIP", ip},
              {"podIPs", {{{"ip", ip}}}},
              {"startTime", kTimestamp},
              {"qosClass", "Burstable"},
              {"containerStatuses",
               {{{"name", "app"},
                 {"state", {{"running", {{"startedAt", kTimestamp}}}}},
                 {"lastState", json::object()},
                 {"ready", true},
                 {"restartCount", 0},
                 {"image", "ghcr.io/example/" + a + ":1.4.2"},
                 {"imageID", "ghcr.io/example/" + a + "@sha256:" + uid(6, app, 0)},
                 {"containerID", "containerd://" + uid(7, i, j) + uid(8, i, j).substr(0, 28)},
                 {"started", true}}}}};
  std::string rs = a + "-7d9f8c6b5";
  json meta{{"name", name},
            {"generateName", rs + "-"},
            {"namespace", ns},
            {"uid", uid(10, i, j)},
            {"creationTimestamp", kTimestamp},
            {"labels",
             {{"app", a},
              {"tier", "t" + std::to_string(j % 3)},
              {"app.kubernetes.io/name", a},
              {"app.kubernetes.io/part-of", "shop"},
              {"pod-template-hash", "7d9f8c6b5"},
              {"version", "v1"}}},
            {"ownerReferences",
             {{{"apiVersion", "apps/v1"},
               {"kind", "ReplicaSet"},
               {"name", rs},
               {"uid", uid(11, i, app)},
               {"controller", true},
               {"blockOwnerDeletion", true}}}}};
  if (s.managed_fields) {
    meta["managedFields"] = json::array(
        {managed("kube-controller-manager", "Update",
                 {{"f:metadata",
                   {{"f:generateName", json::object()},
                    {"f:labels",
                     {{".", json::object()},
                      {"f:app", json::object()},
                      {"f:tier", json::object()},
                      {"f:pod-template-hash", json::object()},
                      {"f:version", json::object()}}},
                    {"f:ownerReferences",
                     {{".", json::object()},
                      {"k:{\"uid\":\"" + uid(11, i, app) + "\"}", json::object()}}}}},
                  {"f:spec",
                   {{"f:containers",
                     {{"k:{\"name\":\"app\"}",
                       {{".", json::object()},
                        {"f:env", json::object()},
                        {"f:image", json::object()},
                        {"f:imagePullPolicy", json::object()},
                        {"f:name", json::object()},
                        {"f:ports", json::object()},
                        {"f:readinessProbe", json::object()},
                        {"f:resources", json::object()},
                        {"f:terminationMessagePath", json::object()},
                        {"f:terminationMessagePolicy", json::object()}}}}},
                    {"f:dnsPolicy", json::object()},
                    {"f:enableServiceLinks", json::object()},
                    {"f:restartPolicy", json::object()},
                    {"f:schedulerName", json::object()},
                    {"f:securityContext", json::object()},
                    {"f:terminationGracePeriodSeconds", json::object()}}}}),
         managed("kubelet", "Update",
                 {{"f:status",
                   {{"f:conditions", json::object()},
                    {"f:containerStatuses", json::object()},
                    {"f:hostIP", json::object()},
                    {"f:hostIPs", json::object()},
                    {"f:phase", json::object()},
                    {"f:podIP", json::object()},
                    {"f:podIPs",
                     {{".", json::object()}, {"k:{\"ip\":\"" + ip + "\"}", json::object()}}},
                    {"f:startTime", json::object()}}}},
                 "status")});
  }
  return {{"kind", "Pod"},
          {"apiVersion", "v1"},
          {"metadata", meta},
          {"spec", spec},
          {"status", status}};
}

inline json match_labels(json labels) {
  return {{"matchLabels", std::move(labels)}};
}
inline json port(const char* protocol, json p) {
  return {{"protocol", protocol}, {"port", p}};
}

/// The spec of policy k of namespace i: k % 10 picks one of ten shapes.
inline json policy_spec(const ClusterShape& s, uint32_t i, uint32_t k) {
  std::string a = "a" + std::to_string(k % 10);
  std::string next = "a" + std::to_string((k + 1) % 10);
  std::string team = "t" + std::to_string((k + i) % 10);
  switch (k % 10) {
    case 0:  // default deny ingress for the namespace
      return {{"podSelector", json::object()}, {"policyTypes", {"Ingress"}}};
    case 1:  // every pod of the namespace may reach the web tier on its named port
      return {
          {"podSelector", match_labels({{"tier", "t0"}})},
          {"policyTypes", {"Ingress"}},
          {"ingress",
           {{{"from", {{{"podSelector", json::object()}}}}, {"ports", {port("TCP", "http")}}}}}};
    case 2:  // the monitoring namespace's scraper on the metrics port, every pod
      return {{"podSelector", json::object()},
              {"policyTypes", {"Ingress"}},
              {"ingress",
               {{{"from",
                  {{{"namespaceSelector", match_labels({{"purpose", "monitoring"}})},
                    {"podSelector", match_labels({{"app", "a9"}})}}}},
                 {"ports", {port("TCP", "metrics")}}}}}};
    case 3:  // policy_bench's: next app here, or app/tier pods of a team's namespaces
      return {{"podSelector", match_labels({{"app", a}})},
              {"policyTypes", {"Ingress"}},
              {"ingress",
               {{{"from",
                  {{{"podSelector", match_labels({{"app", next}})}},
                   {{"namespaceSelector", match_labels({{"team", team}})},
                    {"podSelector", match_labels({{"app", a}, {"tier", "t0"}})}}}},
                 {"ports", {port("TCP", 80), port("TCP", "http")}}}}}};
    case 4:  // egress: DNS anywhere, the 10/8 network except a /16, and SCTP diameter
      return {
          {"podSelector", match_labels({{"app", a}})},
          {"policyTypes", {"Ingress", "Egress"}},
          {"ingress",
           {{{"from", {{{"podSelector", match_labels({{"app", "a3"}})}}}},
             {"ports", {port("SCTP", "diameter")}}}}},
          {"egress",
           {{{"to",
              {{{"namespaceSelector", json::object()},
                {"podSelector", match_labels({{"app", "a7"}})}}}},
             {"ports", {port("UDP", 53), port("TCP", 53)}}},
            {{"to", {{{"ipBlock", {{"cidr", "10.0.0.0/8"}, {"except", {"10.99.0.0/16"}}}}}}}}}}};
    case 5: {  // matchExpressions and a port range
      json expr{{"matchExpressions",
                 {{{"key", "app"}, {"operator", "NotIn"}, {"values", {"a5", "a6"}}},
                  {{"key", "tier"}, {"operator", "Exists"}}}}};
      json target{
          {"matchExpressions", {{{"key", "tier"}, {"operator", "In"}, {"values", {"t1", "t2"}}}}}};
      json p = port("TCP", 9000);
      p["endPort"] = 9100;
      return {{"podSelector", target},
              {"policyTypes", {"Ingress"}},
              {"ingress", {{{"from", {{{"podSelector", expr}}}}, {"ports", {p}}}}}};
    }
    case 6:  // from outside the cluster: ipBlocks with except
      return {{"podSelector", match_labels({{"app", a}})},
              {"policyTypes", {"Ingress"}},
              {"ingress",
               {{{"from",
                  {{{"ipBlock", {{"cidr", "172.16.0.0/12"}, {"except", {"172.18.0.0/16"}}}}},
                   {{"ipBlock", {{"cidr", "192.168.0.0/16"}}}}}},
                 {"ports", {port("TCP", 443), port("TCP", 8443)}}}}}};
    case 7:  // allow all ingress to one app
      return {{"podSelector", match_labels({{"app", a}})},
              {"policyTypes", {"Ingress"}},
              {"ingress", {json::object()}}};
    case 8: {  // egress to a named port of peers, and to databases of two teams
      json teams{
          {"matchExpressions", {{{"key", "team"}, {"operator", "In"}, {"values", {"t1", "t2"}}}}}};
      return {{"podSelector", match_labels({{"app", a}})},
              {"policyTypes", {"Egress"}},
              {"egress",
               {{{"to", {{{"podSelector", match_labels({{"app", next}})}}}},
                 {"ports", {port("TCP", "http"), port("UDP", "mdns")}}},
                {{"to",
                  {{{"namespaceSelector", teams}, {"podSelector", match_labels({{"app", "a2"}})}}}},
                 {"ports", {port("TCP", 5432), port("TCP", "grpc")}}}}}};
    }
    default:  // ingress from one team's namespaces; egress anywhere but the metadata service
      return {
          {"podSelector", match_labels({{"app", a}})},
          {"policyTypes", {"Ingress", "Egress"}},
          {"ingress",
           {{{"from",
              {{{"namespaceSelector", match_labels({{"team", "t" + std::to_string(i % 10)}})}}}}}}},
          {"egress",
           {{{"to",
              {{{"ipBlock", {{"cidr", "0.0.0.0/0"}, {"except", {"169.254.169.254/32"}}}}}}}}}}};
  }
  (void)s;
}

inline json policy_object(const ClusterShape& s, uint32_t i, uint32_t k) {
  std::string ns = namespace_name(i);
  std::string name = fmt("pol-%02u", k) + "-" + std::to_string(k % 10);
  json spec = policy_spec(s, i, k);
  json applied{{"apiVersion", "networking.k8s.io/v1"},
               {"kind", "NetworkPolicy"},
               {"metadata", {{"annotations", json::object()}, {"name", name}, {"namespace", ns}}},
               {"spec", spec}};
  json meta{{"name", name},
            {"namespace", ns},
            {"uid", uid(12, i, k)},
            {"generation", 1},
            {"creationTimestamp", kTimestamp},
            {"annotations",
             {{"kubectl.kubernetes.io/last-applied-configuration", applied.dump() + "\n"}}}};
  if (s.managed_fields) {
    meta["managedFields"] = json::array({managed("kubectl-client-side-apply", "Update",
                                                 {{"f:metadata",
                                                   {{"f:annotations",
                                                     {{".", json::object()},
                                                      {"f:kubectl.kubernetes.io/last-applied-"
                                                       "configuration",
                                                       json::object()}}}}},
                                                  {"f:spec",
                                                   {{"f:ingress", json::object()},
                                                    {"f:egress", json::object()},
                                                    {"f:podSelector", json::object()},
                                                    {"f:policyTypes", json::object()}}}})});
    meta["managedFields"][0]["apiVersion"] = "networking.k8s.io/v1";
  }
  return {{"kind", "NetworkPolicy"},
          {"apiVersion", "networking.k8s.io/v1"},
          {"metadata", meta},
          {"spec", spec}};
}

}  // namespace knit::bench
