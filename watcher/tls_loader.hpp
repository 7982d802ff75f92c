// watcher/tls_loader.hpp: OpenSSL's libssl, loaded at run time.
//
// `knit` is exec'd by the container runtime for every CNI call, and each shared library linked at
// load time costs every one of those calls start-up time. Only `knit agent` talks TLS (to an
// https:// Kubernetes API), so libssl.so.3 is dlopen'ed the first time an https API source is
// built, and the few functions knit calls are resolved into a table. OpenSSL's headers give the
// types and the constants, and through decltype the exact signature of each function; nothing
// in the binary references an OpenSSL symbol, so the linker never adds libssl or libcrypto
// (`readelf -d knit` shows neither). dlsym on libssl's handle also finds libcrypto's functions
// (PEM_*, BIO_*, X509_*, ERR_*): libcrypto is a dependency of libssl and is searched with it.
// Runtime dependency: Debian's libssl3 (soname libssl.so.3).
//
// libssl alone, not libcurl: libcurl brought its whole dependency tree (gnutls, ldap, sasl,
// krb5, ssh2, nghttp2, ...) into the agent, +8.5 MiB of RSS against +4.6 MiB for libssl.
#pragma once

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <memory>
#include <string>

namespace knit::watcher {

/// The OpenSSL functions knit uses, resolved from libssl.so.3 (and libcrypto.so.3 through it).
/// Members carry OpenSSL's own names and signatures. Macros of OpenSSL's API go through the
/// functions they expand to: SSL_set_tlsext_host_name and SSL_CTX_add_extra_chain_cert through
/// SSL_ctrl and SSL_CTX_ctrl.
struct TlsApi {
  // libssl
  decltype(&::TLS_client_method) TLS_client_method;
  decltype(&::SSL_CTX_new) SSL_CTX_new;
  decltype(&::SSL_CTX_free) SSL_CTX_free;
  decltype(&::SSL_CTX_ctrl) SSL_CTX_ctrl;
  decltype(&::SSL_CTX_set_options) SSL_CTX_set_options;
  decltype(&::SSL_CTX_set_verify) SSL_CTX_set_verify;
  decltype(&::SSL_CTX_set_default_verify_paths) SSL_CTX_set_default_verify_paths;
  decltype(&::SSL_CTX_get_cert_store) SSL_CTX_get_cert_store;
  decltype(&::SSL_CTX_use_certificate) SSL_CTX_use_certificate;
  decltype(&::SSL_CTX_use_PrivateKey) SSL_CTX_use_PrivateKey;
  decltype(&::SSL_CTX_check_private_key) SSL_CTX_check_private_key;
  decltype(&::SSL_new) SSL_new;
  decltype(&::SSL_free) SSL_free;
  decltype(&::SSL_ctrl) SSL_ctrl;
  decltype(&::SSL_set_fd) SSL_set_fd;
  decltype(&::SSL_set1_host) SSL_set1_host;
  decltype(&::SSL_get0_param) SSL_get0_param;
  decltype(&::SSL_connect) SSL_connect;
  decltype(&::SSL_read) SSL_read;
  decltype(&::SSL_write) SSL_write;
  decltype(&::SSL_get_error) SSL_get_error;
  decltype(&::SSL_get_verify_result) SSL_get_verify_result;
  // libcrypto
  decltype(&::BIO_new_mem_buf) BIO_new_mem_buf;
  decltype(&::BIO_free) BIO_free;
  decltype(&::PEM_read_bio_X509) PEM_read_bio_X509;
  decltype(&::PEM_read_bio_PrivateKey) PEM_read_bio_PrivateKey;
  decltype(&::X509_free) X509_free;
  decltype(&::EVP_PKEY_free) EVP_PKEY_free;
  decltype(&::X509_STORE_add_cert) X509_STORE_add_cert;
  decltype(&::X509_VERIFY_PARAM_set1_ip_asc) X509_VERIFY_PARAM_set1_ip_asc;
  decltype(&::X509_verify_cert_error_string) X509_verify_cert_error_string;
  decltype(&::ERR_get_error) ERR_get_error;
  decltype(&::ERR_peek_last_error) ERR_peek_last_error;
  decltype(&::ERR_clear_error) ERR_clear_error;
  decltype(&::ERR_reason_error_string) ERR_reason_error_string;
  decltype(&::ERR_error_string_n) ERR_error_string_n;
  const char* version;  ///< the start of OpenSSL_version(): "OpenSSL 3.0.19"
};

/// Loads libssl.so.3 (RTLD_NOW | RTLD_LOCAL) and runs OPENSSL_init_ssl, once per process
/// (thread-safe; later calls return the same table). The library is never unloaded. Throws
/// Error(kNotAvailable) "load libssl.so.3: <dlerror>; install the libssl3 package" when the
/// library or one of its functions is missing, and remembers the failure, so every later call
/// throws the same error.
const TlsApi& tls();

/// The OpenSSL errors queued in this thread, oldest first, as "reason; reason" (each reason
/// once; empty when none), and the queue cleared. Only after tls() succeeded.
std::string tls_errors();

/// Frees OpenSSL objects through the table: the deleter of the handles below. Only ever called
/// with objects made through tls(), so the library is loaded.
struct TlsFree {
  void operator()(SSL_CTX* p) const noexcept;
  void operator()(SSL* p) const noexcept;
  void operator()(BIO* p) const noexcept;
  void operator()(X509* p) const noexcept;
  void operator()(EVP_PKEY* p) const noexcept;
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, TlsFree>;
using SslPtr = std::unique_ptr<SSL, TlsFree>;
using BioPtr = std::unique_ptr<BIO, TlsFree>;
using X509Ptr = std::unique_ptr<X509, TlsFree>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, TlsFree>;

}  // namespace knit::watcher
