// watcher/kubeconfig.hpp: where the Kubernetes API is and how to authenticate to it.
//
// The agent finds the API the way kubectl and client-go do, in this order: the --kubeconfig
// flag, the KUBECONFIG environment variable (a ':'-separated list, merged: the first file to
// define a name or current-context wins), then the pod's own service account (in-cluster:
// KUBERNETES_SERVICE_HOST/PORT, token and ca.crt under kServiceAccountDir). A kubeconfig gives
// the current context's cluster (server, certificate-authority[-data],
// insecure-skip-tls-verify) and user (token, tokenFile, client-certificate[-data] and
// client-key[-data]); relative file paths are relative to the kubeconfig file that names them.
// Credential plugins (exec, auth-provider) and basic auth are refused with an error naming the
// key, never silently ignored: the agent would otherwise run unauthenticated.
//
// The result is a plain value; api_source.hpp turns it into HTTPS requests. A token file is read
// here once (to fail early) and again by the API source before requests, because bound
// service-account tokens rotate.
#pragma once

#include <string>
#include <string_view>

namespace knit::watcher {

/// The service-account directory Kubernetes mounts into every pod.
inline constexpr std::string_view kServiceAccountDir =
    "/var/run/secrets/kubernetes.io/serviceaccount";

/// Everything needed to talk to one API server.
struct ApiConfig {
  /// "https://host:port" with an optional path prefix, never a trailing slash. http:// is
  /// accepted (local proxies, tests); a server without a scheme gets https://.
  std::string server;
  /// Where this came from, for logs: "kubeconfig /root/.kube/config (context kind-kind)",
  /// "in-cluster (/var/run/secrets/kubernetes.io/serviceaccount)".
  std::string origin;

  std::string ca_file;  ///< PEM bundle to verify the server with; empty: the system's
  std::string ca_pem;   ///< PEM text (certificate-authority-data); wins over ca_file
  bool insecure_skip_tls_verify = false;

  /// Bearer token. When token_file is set, the token is that file's content, re-read
  /// periodically (the last successful read wins, as in client-go).
  std::string token;
  std::string token_file;

  std::string cert_file;  ///< client certificate (PEM file)
  std::string cert_pem;   ///< client certificate (PEM text); wins over cert_file
  std::string key_file;   ///< client key (PEM file)
  std::string key_pem;    ///< client key (PEM text); wins over key_file

  friend bool operator==(const ApiConfig&, const ApiConfig&) = default;
};

/// Loads a kubeconfig. `paths` is one file or a ':'-separated list (KUBECONFIG): with one file it
/// must exist; in a list, missing files are skipped but at least one must exist. `context`
/// overrides current-context when not empty. Throws Error(kInvalidConfig) with a message of the
/// form "load kubeconfig <file>: <key>: <cause>", e.g. `load kubeconfig /k: users["admin"].user:
/// exec credential plugins are not supported (use a token or a client certificate)`, and
/// Error(kIo) when a file cannot be read.
ApiConfig load_kubeconfig(std::string_view paths, std::string_view context = {});

/// The pod's own service account: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT
/// (IPv6 hosts bracketed), token and ca.crt from `sa_dir`. Throws Error(kInvalidConfig) when the
/// variables are unset or the token cannot be read, naming what is missing.
ApiConfig in_cluster_config(const std::string& sa_dir = std::string(kServiceAccountDir));

/// The agent's choice: load_kubeconfig(kubeconfig) when it is not empty, else
/// load_kubeconfig($KUBECONFIG) when that is set and not empty, else in_cluster_config(). Throws
/// as those do; when nothing is configured at all the error says all three were tried.
ApiConfig select_api_config(const std::string& kubeconfig, std::string_view context = {});

/// The content of a token file without surrounding whitespace. Throws Error(kInvalidConfig)
/// "read token file <path>: <cause>" when it cannot be read or is empty.
std::string read_token_file(const std::string& path);

/// The command-line flags of the API source.
struct ApiFlags {
  std::string kubeconfig;  ///< --kubeconfig FILE
  std::string context;     ///< --context NAME
};

/// If argv[i] is `--kubeconfig FILE`, `--kubeconfig=FILE`, `--context NAME` or `--context=NAME`,
/// stores the value in `flags`, leaves `i` on the last argument consumed and returns true;
/// returns false for any other argument. Throws Error(kInvalidConfig) when the value is missing
/// or empty.
bool parse_api_flag(int argc, char** argv, int& i, ApiFlags& flags);

}  // namespace knit::watcher
