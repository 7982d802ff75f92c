// conf/netconf.hpp: the CNI wire format: decoding invocations, rendering results and errors.
//
// This is the only place (with watcher's Kubernetes decoder) that sees JSON. Decoding is strict
// about what knit needs and lenient about everything else: unknown keys are ignored, both key
// casings containerd and podman send for runtimeConfig capabilities are accepted, and every
// failure names the key or variable at fault with the spec's error code.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "conf/netconf_types.hpp"
#include "core/error.hpp"

namespace knit::conf {

/// Looks up an environment variable; nullptr when unset.
using Getenv = std::function<const char*(const char*)>;

/// Reads the CNI_* variables. Throws Error(kInvalidEnv) naming every missing variable required
/// for the command (ADD/CHECK: CONTAINERID, NETNS, IFNAME; DEL: CONTAINERID, IFNAME; GC, STATUS,
/// VERSION: none), an unknown CNI_COMMAND, an invalid container id or interface name.
CniEnv decode_env(const Getenv& getenv);

/// Decodes the network configuration on stdin for `env.command`. Accepts a single plugin
/// configuration (what runtimes send) and, for convenience, a whole conflist (the plugin of type
/// "knit" is used, with the list's name and version). The version is the highest supported one
/// among cniVersion and cniVersions. Throws Error with code 6 (not JSON), 7 (invalid config),
/// 1 (unsupported version, or a verb the version does not have), 2 (unsupported field value).
NetConf decode_netconf(std::string_view stdin_text, const CniEnv& env);

/// The version a request asked for, best effort, for rendering an error before (or while)
/// decoding fails: cniVersion when it can be read, else 1.1.0.
std::string requested_version(std::string_view stdin_text);

/// Renders `r` for version `v` (ips[].version below 1.0.0; route and interface fields of 1.1.0
/// only from 1.1.0 on).
std::string render_result(const Result& r, const Version& v);

/// Renders the spec's error object {"cniVersion","code","msg","details"}.
std::string render_error(std::string_view version, const Error& e);

/// Renders the VERSION reply for the version the caller sent.
std::string render_version(std::string_view version);

/// Parses a result object (prevResult) of any supported version. Throws Error(kDecode).
Result decode_result(std::string_view json_text);

}  // namespace knit::conf
