#include "watcher/tls_loader.hpp"

#include <dlfcn.h>

#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>

#include "core/error.hpp"
#include "core/str.hpp"

namespace knit::watcher {

namespace {

constexpr const char* kSoname = "libssl.so.3";

TlsApi g_api;
std::string g_error;  // set when loading failed
std::string g_version;

void load() {
  void* lib = dlopen(kSoname, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* why = dlerror();
    g_error = str("load ", kSoname, ": ", why ? why : "not found",
                  "; install the libssl3 package (the agent needs it for an https:// API server)");
    return;
  }
  const char* missing = nullptr;
  auto sym = [&](auto& fn, const char* name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
    if (fn == nullptr && missing == nullptr) missing = name;
  };
  decltype(&::OPENSSL_init_ssl) init_ssl = nullptr;
  decltype(&::OpenSSL_version) version = nullptr;
  sym(init_ssl, "OPENSSL_init_ssl");
  sym(version, "OpenSSL_version");
  sym(g_api.TLS_client_method, "TLS_client_method");
  sym(g_api.SSL_CTX_new, "SSL_CTX_new");
  sym(g_api.SSL_CTX_free, "SSL_CTX_free");
  sym(g_api.SSL_CTX_ctrl, "SSL_CTX_ctrl");
  sym(g_api.SSL_CTX_set_options, "SSL_CTX_set_options");
  sym(g_api.SSL_CTX_set_verify, "SSL_CTX_set_verify");
  sym(g_api.SSL_CTX_set_default_verify_paths, "SSL_CTX_set_default_verify_paths");
  sym(g_api.SSL_CTX_get_cert_store, "SSL_CTX_get_cert_store");
  sym(g_api.SSL_CTX_use_certificate, "SSL_CTX_use_certificate");
  sym(g_api.SSL_CTX_use_PrivateKey, "SSL_CTX_use_PrivateKey");
  sym(g_api.SSL_CTX_check_private_key, "SSL_CTX_check_private_key");
  sym(g_api.SSL_new, "SSL_new");
  sym(g_api.SSL_free, "SSL_free");
  sym(g_api.SSL_ctrl, "SSL_ctrl");
  sym(g_api.SSL_set_fd, "SSL_set_fd");
  sym(g_api.SSL_set1_host, "SSL_set1_host");
  sym(g_api.SSL_get0_param, "SSL_get0_param");
  sym(g_api.SSL_connect, "SSL_connect");
  sym(g_api.SSL_read, "SSL_read");
  sym(g_api.SSL_write, "SSL_write");
  sym(g_api.SSL_get_error, "SSL_get_error");
  sym(g_api.SSL_get_verify_result, "SSL_get_verify_result");
  sym(g_api.BIO_new_mem_buf, "BIO_new_mem_buf");
  sym(g_api.BIO_free, "BIO_free");
  sym(g_api.PEM_read_bio_X509, "PEM_read_bio_X509");
  sym(g_api.PEM_read_bio_PrivateKey, "PEM_read_bio_PrivateKey");
  sym(g_api.X509_free, "X509_free");
  sym(g_api.EVP_PKEY_free, "EVP_PKEY_free");
  sym(g_api.X509_STORE_add_cert, "X509_STORE_add_cert");
  sym(g_api.X509_VERIFY_PARAM_set1_ip_asc, "X509_VERIFY_PARAM_set1_ip_asc");
  sym(g_api.X509_verify_cert_error_string, "X509_verify_cert_error_string");
  sym(g_api.ERR_get_error, "ERR_get_error");
  sym(g_api.ERR_peek_last_error, "ERR_peek_last_error");
  sym(g_api.ERR_clear_error, "ERR_clear_error");
  sym(g_api.ERR_reason_error_string, "ERR_reason_error_string");
  sym(g_api.ERR_error_string_n, "ERR_error_string_n");
  if (missing != nullptr) {
    g_error = str("load ", kSoname, ": no symbol ", missing,
                  " (OpenSSL 3 is needed; install the libssl3 package)");
    return;
  }
  // The defaults: error strings, and the system's openssl.cnf as every OpenSSL client reads it.
  if (init_ssl(0, nullptr) != 1) {
    g_error = str("initialise ", kSoname, ": OPENSSL_init_ssl failed");
    return;
  }
  // "OpenSSL 3.0.19 27 Jan 2026": the first two words say what matters.
  std::string_view v = version(OPENSSL_VERSION);
  auto sp = v.find(' ');
  if (sp != std::string_view::npos) sp = v.find(' ', sp + 1);
  g_version = v.substr(0, sp);
  g_api.version = g_version.c_str();
}

}  // namespace

const TlsApi& tls() {
  static std::once_flag once;
  std::call_once(once, load);
  if (!g_error.empty()) fail(Code::kNotAvailable, g_error);
  return g_api;
}

std::string tls_errors() {
  std::string out;
  while (unsigned long e = g_api.ERR_get_error()) {
    std::string reason;
    if (const char* r = g_api.ERR_reason_error_string(e)) {
      reason = r;
    } else {
      char buf[256];
      g_api.ERR_error_string_n(e, buf, sizeof buf);
      reason = buf;
    }
    if (out.find(reason) != std::string::npos) continue;  // the same reason from another layer
    if (!out.empty()) out += "; ";
    out += reason;
  }
  return out;
}

void TlsFree::operator()(SSL_CTX* p) const noexcept {
  g_api.SSL_CTX_free(p);
}
void TlsFree::operator()(SSL* p) const noexcept {
  g_api.SSL_free(p);
}
void TlsFree::operator()(BIO* p) const noexcept {
  g_api.BIO_free(p);
}
void TlsFree::operator()(X509* p) const noexcept {
  g_api.X509_free(p);
}
void TlsFree::operator()(EVP_PKEY* p) const noexcept {
  g_api.EVP_PKEY_free(p);
}

}  // namespace knit::watcher
