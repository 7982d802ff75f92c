// lab/control.hpp: the supervisor's control socket protocol (pure).
//
// /run/knit/lab/<N>/lab.sock, one JSON line each way, like the agent's protocol:
//   {"op":"sync"} -> {"ok":true,"digest":"...","warnings":["..."]}
// "sync" re-reads the manifests directory and wires or removes pods before answering, so a
// probe right after a file was copied into DIR sees its pods. Failure: {"ok":false,"error":...}.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace knit::lab {

struct SyncReply {
  bool ok = false;
  std::string error;
  std::string digest;                 ///< of the manifests the supervisor reconciled
  std::vector<std::string> warnings;  ///< manifest errors, pods that could not be wired
  friend bool operator==(const SyncReply&, const SyncReply&) = default;
};

/// The one request there is.
inline constexpr std::string_view kSyncRequest = R"({"op":"sync"})";

/// True when `line` is a sync request.
bool is_sync_request(std::string_view line);
std::string encode(const SyncReply& r);
/// Throws Error(kDecode).
SyncReply decode_sync_reply(std::string_view line);

}  // namespace knit::lab
