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
/// VERSION: none), an unknown CNI_COMMAND, an invalid container id or interface name (checked
/// for ADD, CHECK and DEL), or a CNI_ARGS segment that is not KEY=VALUE. An empty variable counts
/// as missing; CNI_PATH is never required.
CniEnv decode_env(const Getenv& getenv);

/// Decodes the network configuration on stdin for `env.command`. Accepts a single plugin
/// configuration (what runtimes send) and, for convenience, a whole conflist (the plugin of type
/// "knit" is used, with the list's name and version). The version is the highest supported one
/// among cniVersion and cniVersions. Throws Error with code 6 (not JSON, a malformed version),
/// 7 (invalid config; the message names the key path), 1 (unsupported version, or a verb the
/// version does not have), 2 (unsupported ipam.type), 4 (CNI_ARGS IP=/MAC= malformed, when used).
/// ADD, CHECK, STATUS and GC need at least one ipam range set; DEL does not. For VERSION only the
/// version is read. Ranges are parsed, not validated or defaulted (ipam does that). Requested
/// IPs and MAC come from runtimeConfig, else args.cni, else CNI_ARGS (first non-empty source).
NetConf decode_netconf(std::string_view stdin_text, const CniEnv& env);

/// The version a request asked for, best effort, for rendering an error before (or while)
/// decoding fails: cniVersion when it can be read, else 1.1.0.
std::string requested_version(std::string_view stdin_text);

/// Renders `r` for version `v` (ips[].version below 1.0.0; route and interface fields of 1.1.0
/// only from 1.1.0 on).
std::string render_result(const Result& r, const Version& v);

/// Renders the spec's error object {"cniVersion","code","msg","details"}.
std::string render_error(std::string_view version, const Error& e);

/// Renders the VERSION reply for the version the caller sent (1.1.0 when empty).
std::string render_version(std::string_view version);

/// Parses a result object (prevResult) of any supported version. Throws Error(kDecode) on bad
/// JSON, a wrong type, a malformed address, an unsupported cniVersion, or an ips[].interface
/// that is not an index into interfaces.
Result decode_result(std::string_view json_text);

}  // namespace knit::conf
