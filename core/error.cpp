#include "core/error.hpp"

#include <cstring>

#include "core/str.hpp"

namespace knit {

void fail(Code code, std::string msg, std::string details) {
  throw Error(code, std::move(msg), 0, std::move(details));
}

void fail_errno(Code code, std::string_view what, int err) {
  throw Error(code, str(what, ": ", std::strerror(err)), err);
}

}  // namespace knit
