// core/error.hpp: the one error type of knit.
//
// Every failure is a knit::Error carrying the CNI error code the plugin reports, a message of the
// form "<verb> <object>: <cause>", and errno where there is one. Expected outcomes (pool
// exhausted, nothing to delete) are values, not errors. Two places catch: the CNI entry point
// (which prints the spec's error JSON) and the agent's reconcile loop.
#pragma once

#include <cerrno>
#include <stdexcept>
#include <string>
#include <string_view>

namespace knit {

/// CNI error codes (SPEC §6 "Error") and knit's plugin-specific codes (100 and up).
enum class Code : int {
  kUnknown = 0,
  kIncompatibleVersion = 1,
  kUnsupportedField = 2,
  kUnknownContainer = 3,
  kInvalidEnv = 4,
  kIo = 5,
  kDecode = 6,
  kInvalidConfig = 7,
  kInvalidNetns = 8,
  kTryAgainLater = 11,
  kNotAvailable = 50,
  kLimitedConnectivity = 51,
  // knit's own codes.
  kNetlink = 100,             ///< the kernel refused a netlink request
  kStore = 101,               ///< the IPAM store is unusable (corrupt beyond repair, unwritable)
  kPoolExhausted = 102,       ///< no free address in a range set
  kAddressUnavailable = 103,  ///< a requested address is taken or outside every range
  kInterfaceExists = 104,     ///< CNI_IFNAME already exists in the container
  kAgent = 105,               ///< the policy agent did not confirm the pod in time
  kCheckFailed = 106,         ///< CHECK found the attachment differs from what ADD set up
  kPortConflict = 107,        ///< a hostPort (hostIP, protocol, port) is held by another attachment
  kInternal = 999,
};

class Error : public std::runtime_error {
 public:
  Error(Code code, std::string msg, int sys_errno = 0, std::string details = {})
      : std::runtime_error(std::move(msg)),
        code_(code),
        errno_(sys_errno),
        details_(std::move(details)) {}

  Code code() const noexcept { return code_; }
  /// errno of the failed system call or netlink request, 0 if none.
  int sys_errno() const noexcept { return errno_; }
  const std::string& details() const noexcept { return details_; }

 private:
  Code code_;
  int errno_;
  std::string details_;
};

/// Throws Error(code, msg).
[[noreturn]] void fail(Code code, std::string msg, std::string details = {});
/// Throws Error(code, "<what>: <strerror(err)>", err).
[[noreturn]] void fail_errno(Code code, std::string_view what, int err);
/// Throws Error(kInternal-ish code, "<what>: <strerror(errno)>") when r < 0; returns r otherwise.
inline int sys_check(int r, std::string_view what, Code code = Code::kInternal) {
  if (r < 0) fail_errno(code, what, errno);
  return r;
}

}  // namespace knit
