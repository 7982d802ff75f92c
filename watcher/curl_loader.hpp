// watcher/curl_loader.hpp: libcurl, loaded at run time.
//
// `knit` is exec'd by the container runtime for every CNI call, and each shared library linked at
// load time costs every one of those calls: libcurl and its dependencies (OpenSSL, nghttp2, ...)
// add ~5.5 ms of start-up against a budget of 0.5 ms. Only `knit agent` talks to the Kubernetes
// API, so libcurl is dlopen'ed when the agent starts its API source, and the few functions knit
// calls are resolved into a table. Nothing in the binary references a curl symbol, so the linker
// never adds libcurl (`ldd knit` shows it absent). The headers give the types; the table gives
// the code. Runtime dependency: Debian's libcurl4 (OpenSSL flavour, soname libcurl.so.4).
#pragma once

#include <curl/curl.h>

namespace knit::watcher {

/// The libcurl functions knit uses, resolved from libcurl.so.4.
struct CurlApi {
  CURL* (*easy_init)();
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...);
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...);
  void (*easy_cleanup)(CURL*);
  const char* (*easy_strerror)(CURLcode);
  char* (*easy_escape)(CURL*, const char*, int);
  void (*free)(void*);
  curl_slist* (*slist_append)(curl_slist*, const char*);
  void (*slist_free_all)(curl_slist*);
  CURLM* (*multi_init)();
  CURLMcode (*multi_add_handle)(CURLM*, CURL*);
  CURLMcode (*multi_remove_handle)(CURLM*, CURL*);
  CURLMcode (*multi_perform)(CURLM*, int*);
  CURLMcode (*multi_poll)(CURLM*, curl_waitfd*, unsigned, int, int*);
  CURLMcode (*multi_wakeup)(CURLM*);
  CURLMsg* (*multi_info_read)(CURLM*, int*);
  CURLMcode (*multi_cleanup)(CURLM*);
  const char* (*multi_strerror)(CURLMcode);
  const char* version;  ///< the start of curl_version(): "libcurl/7.88.1 OpenSSL/3.0.11"
};

/// Loads libcurl.so.4 (RTLD_NOW | RTLD_LOCAL) and runs curl_global_init, once per process
/// (thread-safe; later calls return the same table). The library is never unloaded. Throws
/// Error(kNotAvailable) "load libcurl.so.4: <dlerror>; install the libcurl4 package" when the
/// library or one of its functions is missing (libcurl older than 7.68 lacks multi_poll), and
/// remembers the failure, so every later call throws the same error.
const CurlApi& curl();

}  // namespace knit::watcher
