#include "cni/cni.hpp"

#include "cni/verbs.hpp"
#include "conf/netconf.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/str.hpp"

namespace knit::cni {

int run(const conf::Getenv& getenv, std::string_view stdin_text, std::string& out) {
  std::string version;
  try {
    conf::Request req;
    req.env = conf::decode_env(getenv);
    if (req.env.command == conf::Command::kVersion) {
      out = conf::render_version(conf::requested_version(stdin_text));
      return 0;
    }
    version = conf::requested_version(stdin_text);
    req.conf = conf::decode_netconf(stdin_text, req.env);
    version = req.conf.cni_version.to_string();
    switch (req.env.command) {
      case conf::Command::kAdd:
        out = conf::render_result(cmd_add(req), req.conf.cni_version);
        break;
      case conf::Command::kDel:
        cmd_del(req);
        break;
      case conf::Command::kCheck:
        cmd_check(req);
        break;
      case conf::Command::kGc:
        cmd_gc(req);
        break;
      case conf::Command::kStatus:
        cmd_status(req);
        break;
      case conf::Command::kVersion:
        break;
    }
    return 0;
  } catch (const Error& e) {
    if (version.empty()) version = conf::requested_version(stdin_text);
    log::debug(str("error ", static_cast<int>(e.code()), ": ", e.what()));
    out = conf::render_error(version, e);
  } catch (const std::exception& e) {
    if (version.empty()) version = conf::requested_version(stdin_text);
    out = conf::render_error(version, Error(Code::kInternal, str("internal error: ", e.what())));
  }
  return 1;
}

Undo::~Undo() {
  for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) {
    try {
      (*it)();
    } catch (const std::exception& e) {
      log::warn(str("undo after failed ADD: ", e.what()));
    }
  }
}

}  // namespace knit::cni
