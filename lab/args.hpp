// lab/args.hpp: the command line of `knit lab` (pure: strings in, values out).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "lab/lab_types.hpp"

namespace knit::lab {

struct HelpArgs {
  friend bool operator==(const HelpArgs&, const HelpArgs&) = default;
};
struct UpArgs {
  std::string dir;
  std::string name = "default";
  bool agent = true;  ///< false with --no-agent
  /// --pod-cidr, at most one per family (network form, e.g. "10.1.0.0/24"): the range pods of
  /// that family get addresses from instead of the default (lab/names.hpp).
  std::vector<std::string> pod_cidrs;
  friend bool operator==(const UpArgs&, const UpArgs&) = default;
};
struct DownArgs {
  std::string name = "default";
  friend bool operator==(const DownArgs&, const DownArgs&) = default;
};
struct StatusArgs {
  std::string name = "default";
  Output output = Output::kTable;
  friend bool operator==(const StatusArgs&, const StatusArgs&) = default;
};
struct ProbeArgs {
  std::string name = "default";
  PortRef port = uint16_t{80};
  Protocol protocol = Protocol::kTcp;
  int family = 4;
  std::chrono::milliseconds timeout{1000};  ///< per attempt; failures are tried once more
  Output output = Output::kTable;
  friend bool operator==(const ProbeArgs&, const ProbeArgs&) = default;
};
using Args = std::variant<HelpArgs, UpArgs, DownArgs, StatusArgs, ProbeArgs>;

/// The usage text of `knit lab`.
extern const std::string_view kUsage;

/// Parses the arguments that follow `knit lab`. Options take their value as the next argument
/// or after '=' (`--name=x`, `-ojson`). Throws Error(kInvalidConfig) naming the argument.
Args parse_args(const std::vector<std::string_view>& args);

/// A lab name: 1 to 32 characters of [a-z0-9-], starting with a letter or digit. '.' is
/// excluded because it separates the lab name from the pod in namespace names (lab/names.hpp).
bool valid_lab_name(std::string_view name);
/// "80" -> 80; "serve-80-tcp" -> "serve-80-tcp" (an IANA_SVC_NAME: 1 to 15 of [a-z0-9-], with a
/// letter, no leading, trailing or double '-'). nullopt for anything else, 0 included.
std::optional<PortRef> parse_port_ref(std::string_view s);
/// TCP, UDP, SCTP in any case.
std::optional<Protocol> parse_protocol(std::string_view s);
/// "500ms", "1s", "1.5s", "2" (seconds); strictly positive, at most 10 minutes.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view s);

}  // namespace knit::lab
