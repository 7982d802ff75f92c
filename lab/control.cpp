#include "lab/control.hpp"

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/str.hpp"

namespace knit::lab {

using nlohmann::json;

bool is_sync_request(std::string_view line) {
  json j = json::parse(line.begin(), line.end(), nullptr, false);
  return j.is_object() && j.contains("op") && j["op"] == "sync";
}

std::string encode(const SyncReply& r) {
  json j = {{"ok", r.ok}};
  if (!r.error.empty()) j["error"] = r.error;
  if (!r.digest.empty()) j["digest"] = r.digest;
  if (!r.warnings.empty()) j["warnings"] = r.warnings;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

SyncReply decode_sync_reply(std::string_view line) {
  json j = json::parse(line.begin(), line.end(), nullptr, false);
  if (!j.is_object() || !j.contains("ok") || !j["ok"].is_boolean()) {
    fail(Code::kDecode, str("decode lab control reply: not a reply: ", line));
  }
  SyncReply r;
  r.ok = j["ok"].get<bool>();
  if (j.contains("error") && j["error"].is_string()) r.error = j["error"].get<std::string>();
  if (j.contains("digest") && j["digest"].is_string()) r.digest = j["digest"].get<std::string>();
  if (j.contains("warnings") && j["warnings"].is_array()) {
    for (const auto& w : j["warnings"])
      if (w.is_string()) r.warnings.push_back(w.get<std::string>());
  }
  return r;
}

}  // namespace knit::lab
