#include "watcher/curl_loader.hpp"

#include <dlfcn.h>

#include <mutex>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "core/str.hpp"

namespace knit::watcher {

namespace {

constexpr const char* kSoname = "libcurl.so.4";

CurlApi g_api;
std::string g_error;  // set when loading failed
std::string g_version;

void load() {
  void* lib = dlopen(kSoname, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* why = dlerror();
    g_error = str("load ", kSoname, ": ", why ? why : "not found",
                  "; the agent needs the libcurl4 package to talk to the Kubernetes API");
    return;
  }
  const char* missing = nullptr;
  auto sym = [&](auto& fn, const char* name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
    if (fn == nullptr && missing == nullptr) missing = name;
  };
  CURLcode (*global_init)(long) = nullptr;
  char* (*version)() = nullptr;
  sym(global_init, "curl_global_init");
  sym(version, "curl_version");
  sym(g_api.easy_init, "curl_easy_init");
  sym(g_api.easy_setopt, "curl_easy_setopt");
  sym(g_api.easy_getinfo, "curl_easy_getinfo");
  sym(g_api.easy_cleanup, "curl_easy_cleanup");
  sym(g_api.easy_strerror, "curl_easy_strerror");
  sym(g_api.easy_escape, "curl_easy_escape");
  sym(g_api.free, "curl_free");
  sym(g_api.slist_append, "curl_slist_append");
  sym(g_api.slist_free_all, "curl_slist_free_all");
  sym(g_api.multi_init, "curl_multi_init");
  sym(g_api.multi_add_handle, "curl_multi_add_handle");
  sym(g_api.multi_remove_handle, "curl_multi_remove_handle");
  sym(g_api.multi_perform, "curl_multi_perform");
  sym(g_api.multi_poll, "curl_multi_poll");
  sym(g_api.multi_wakeup, "curl_multi_wakeup");
  sym(g_api.multi_info_read, "curl_multi_info_read");
  sym(g_api.multi_cleanup, "curl_multi_cleanup");
  sym(g_api.multi_strerror, "curl_multi_strerror");
  if (missing != nullptr) {
    g_error = str("load ", kSoname, ": no symbol ", missing,
                  " (libcurl 7.68 or newer is needed; install the libcurl4 package)");
    return;
  }
  if (CURLcode rc = global_init(CURL_GLOBAL_DEFAULT); rc != CURLE_OK) {
    g_error = str("initialise ", kSoname, ": ", g_api.easy_strerror(rc));
    return;
  }
  // "libcurl/7.88.1 OpenSSL/3.0.11 zlib/... nghttp2/...": the first two say what matters.
  std::string_view v = version();
  auto sp = v.find(' ');
  if (sp != std::string_view::npos) sp = v.find(' ', sp + 1);
  g_version = v.substr(0, sp);
  g_api.version = g_version.c_str();
}

}  // namespace

const CurlApi& curl() {
  static std::once_flag once;
  std::call_once(once, load);
  if (!g_error.empty()) fail(Code::kNotAvailable, g_error);
  return g_api;
}

}  // namespace knit::watcher
