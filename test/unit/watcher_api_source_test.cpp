// The API source's pure pieces: list continue tokens, backoff, collection paths; and that
// libssl loads at run time.
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <string>

#include "core/error.hpp"
#include "watcher/api_source.hpp"
#include "watcher/tls_loader.hpp"

using namespace knit::watcher;
using std::chrono::milliseconds;
namespace data = boost::unit_test::data;

struct ContinueCase {
  const char* body;
  const char* token;
};
std::ostream& operator<<(std::ostream& os, const ContinueCase& c) {
  return os << c.body;
}

const ContinueCase kContinue[] = {
    // As the API server writes it: metadata before items.
    {R"({"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"5","continue":"eyJ2Ijoi","remainingItemCount":3},"items":[{}]})",
     "eyJ2Ijoi"},
    // Metadata after items (any JSON writer): the items are skipped, strings and all.
    {R"({"items":[{"metadata":{"continue":"no"},"s":"}]\"{["}, [1, 2.5e3, true, null]], "metadata" : { "continue" : "yes" } })",
     "yes"},
    // Escapes are decoded.
    {R"({"metadata":{"continue":"a\/b\u0041\"c"}})", "a/bA\"c"},
    // Last page: no token, or an empty or null one.
    {R"({"kind":"PodList","metadata":{"resourceVersion":"5"},"items":[]})", ""},
    {R"({"metadata":{"continue":""}})", ""},
    {R"({"metadata":{"continue":null}})", ""},
    {R"({"metadata":{}})", ""},
    // A "continue" elsewhere is not the list's.
    {R"({"items":[{"metadata":{"continue":"item"}}],"continue":"top"})", ""},
    // Not a list object.
    {"", ""},
    {"[]", ""},
    {R"({"metadata":{"continue":"x")", "x"},  // truncated after the token: still read
    {R"({"metadata":{"continue":"x)", ""},
    {"not json", ""},
};

BOOST_DATA_TEST_CASE(list_continue_token, data::make(kContinue), c) {
  BOOST_TEST(list_continue(c.body) == c.token);
}

BOOST_AUTO_TEST_CASE(backoff_doubles_with_jitter_up_to_the_cap_and_resets) {
  Backoff b(milliseconds(100), milliseconds(1000), 42);
  const long caps[] = {100, 200, 400, 800, 1000, 1000, 1000};
  for (long cap : caps) {
    auto d = b.next().count();
    BOOST_TEST(d >= cap / 2);
    BOOST_TEST(d <= cap);
  }
  b.reset();
  BOOST_TEST(b.next().count() <= 100);
  // Jitter: many draws at the same step are not all equal.
  bool differ = false;
  long first = -1;
  for (int i = 0; i < 20; ++i) {
    b.reset();
    long d = b.next().count();
    if (first >= 0 && d != first) differ = true;
    first = d;
  }
  BOOST_TEST(differ);
}

BOOST_AUTO_TEST_CASE(collection_paths) {
  BOOST_TEST(api_path(Kind::kNamespace) == "/api/v1/namespaces");
  BOOST_TEST(api_path(Kind::kPod) == "/api/v1/pods");
  BOOST_TEST(api_path(Kind::kNetworkPolicy) == "/apis/networking.k8s.io/v1/networkpolicies");
  BOOST_TEST(api_path(Kind::kNode) == "/api/v1/nodes");
  BOOST_TEST(api_path(Kind::kOther).empty());
  BOOST_TEST(api_resource(Kind::kNamespace) == "namespaces");
  BOOST_TEST(api_resource(Kind::kPod) == "pods");
  BOOST_TEST(api_resource(Kind::kNetworkPolicy) == "networkpolicies");
  BOOST_TEST(api_resource(Kind::kNode) == "nodes");
  BOOST_TEST(api_resource(Kind::kOther).empty());
}

BOOST_AUTO_TEST_CASE(libssl_loads_at_run_time) {
  // libssl3 is a dependency of the agent (install/deps.sh); the test fails when it is missing.
  const TlsApi& api = tls();
  BOOST_TEST(std::string(api.version).find("OpenSSL 3.") == 0u, api.version);
  BOOST_TEST(&tls() == &api);  // loaded once
  BOOST_TEST(api.SSL_CTX_new != nullptr);
  BOOST_TEST(api.PEM_read_bio_X509 != nullptr);  // libcrypto's, found through libssl's handle
}
