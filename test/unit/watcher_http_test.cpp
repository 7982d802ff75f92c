// The HTTP client's pure pieces: the response parser fed at every split point (Content-Length,
// chunked with extensions and trailers, close-delimited, HTTP/1.0, interim responses, and the
// malformed and truncated responses it must refuse), URL parsing and query escaping; and the
// TLS context built from PEM text and files (no connection).
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "watcher/http_client.hpp"
#include "test/files.hpp"

using knit::test::slurp;

using namespace knit::watcher;
using knit::Code;
using knit::Error;
using Event = ResponseParser::Event;
namespace data = boost::unit_test::data;

namespace {

/// What a parser made of a response given in pieces.
struct Parsed {
  int status = 0;
  std::string body;
  bool done = false;
  std::string error;  // empty unless kError
  bool keep_alive = false;
  int heads = 0;
  size_t left = 0;  // bytes given after the response was done

  bool operator==(const Parsed&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Parsed& p) {
  return os << "status " << p.status << " body \"" << p.body << "\" done " << p.done << " error \""
            << p.error << "\" keep_alive " << p.keep_alive << " heads " << p.heads << " left "
            << p.left;
}

/// Feeds `pieces` in order, then the end of the connection when `eof`.
Parsed feed(const std::vector<std::string_view>& pieces, bool eof,
            size_t max_head = ResponseParser::kMaxHead) {
  ResponseParser p(max_head);
  Parsed out;
  bool over = false;
  for (std::string_view in : pieces) {
    while (!over) {
      auto step = p.next(in);
      BOOST_TEST_REQUIRE(step.used <= in.size());
      in.remove_prefix(step.used);
      if (step.event == Event::kNeedMore) {
        BOOST_TEST_REQUIRE(in.empty());  // kNeedMore only once everything is consumed
        break;
      }
      if (step.event == Event::kHead) ++out.heads;
      if (step.event == Event::kBody) {
        BOOST_TEST_REQUIRE(!step.body.empty());
        out.body += step.body;
      }
      if (step.event == Event::kDone) out.done = over = true;
      if (step.event == Event::kError) {
        out.error = p.error();
        over = true;
      }
    }
    out.left += over ? in.size() : 0;
  }
  if (eof && !over) {
    Event e = p.end();
    out.done = e == Event::kDone;
    if (e == Event::kError) out.error = p.error();
  }
  out.status = p.status();
  out.keep_alive = out.done && p.keep_alive();
  return out;
}

struct ResponseCase {
  const char* name;
  std::string text;
  bool eof;  // the connection ends after the text
  int status;
  std::string body;
  bool done;
  bool keep_alive;
  const char* error;  // a part of error(), or "" when none
};
std::ostream& operator<<(std::ostream& os, const ResponseCase& c) {
  return os << c.name;
}

const std::string kChunked =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    "5;name=value\r\nhello\r\n"  // a chunk extension
    "1 ; a=\"b\"\r\n \r\n"       // white space before the extension
    "000006\r\nworld\n\r\n"      // leading zeros
    "0\r\nX-Trailer: yes\r\n\r\n";

const ResponseCase kResponses[] = {
    {"content-length",
     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\nhello world",
     false, 200, "hello world", true, true, ""},
    {"chunked, extensions, trailer", kChunked, false, 200, "hello world\n", true, true, ""},
    {"chunked, bare LF line ends", "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n",
     false, 200, "abc", true, true, ""},
    {"chunked, a watch cut mid-chunk",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab", true, 200, "ab", false, false,
     "in the middle of the chunked body"},
    {"chunked, cut before the last chunk",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n", true, 200, "ab", false,
     false, "in the middle of the chunked body"},
    {"close-delimited, HTTP/1.0", "HTTP/1.0 200 OK\r\nServer: old\r\n\r\nabc", true, 200, "abc",
     true, false, ""},
    {"close-delimited, HTTP/1.1 without a length", "HTTP/1.1 200 OK\r\n\r\nabc", true, 200, "abc",
     true, false, ""},
    {"HTTP/1.0 keep-alive with a length",
     "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok", false, 200, "ok",
     true, true, ""},
    {"HTTP/1.0 without keep-alive", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false, 200,
     "ok", true, false, ""},
    {"Connection: close",
     "HTTP/1.1 200 OK\r\nconnection: Upgrade, close\r\nContent-Length: 2\r\n\r\nok", false, 200,
     "ok", true, false, ""},
    {"header names in any case, white space around values",
     "HTTP/1.1 200 OK\r\nCONTENT-length:   3  \r\n\r\nabc", false, 200, "abc", true, true, ""},
    {"Transfer-Encoding wins over Content-Length",
     "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: "
     "Chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
     false, 200, "x", true, true, ""},
    {"chunked after another coding",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity, chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", false,
     200, "x", true, true, ""},
    {"another coding last: up to the end of the connection",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz", true, 200, "zz", true, false, ""},
    {"empty body, Content-Length: 0", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, 200,
     "", true, true, ""},
    {"204 has no body", "HTTP/1.1 204 No Content\r\n\r\n", false, 204, "", true, true, ""},
    {"304 has no body despite a length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
     false, 304, "", true, true, ""},
    {"interim 100 and 103 skipped",
     "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
     "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
     false, 200, "x", true, true, ""},
    {"blank lines before the status line", "\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
     false, 200, "x", true, true, ""},
    {"reason phrase absent", "HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx", false, 200, "x", true,
     true, ""},
    {"folded header line ignored",
     "HTTP/1.1 200 OK\r\nX-Long: a\r\n b\r\nContent-Length: 1\r\n\r\nx", false, 200, "x", true,
     true, ""},
    {"error status with a Status body",
     "HTTP/1.1 410 Gone\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n"
     "{\"reason\":\"Gone\"}",
     false, 410, "{\"reason\":\"Gone\"}", true, true, ""},
    {"content-length body cut", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcde", true, 200,
     "abcde", false, false, "the connection closed 5 bytes before the end of the body"},
    {"head cut", "HTTP/1.1 200 OK\r\nContent-Le", true, 0, "", false, false,
     "in the middle of the response head"},
    {"nothing at all", "", true, 0, "", false, false,
     "the server closed the connection before responding"},
    // Malformed: refused, whatever follows.
    {"status code of two digits", "HTTP/1.1 20 OK\r\n\r\n", false, 0, "", false, false,
     "malformed status line \"HTTP/1.1 20 OK\""},
    {"HTTP/2 status line", "HTTP/2 200\r\n\r\n", false, 0, "", false, false,
     "malformed status line"},
    {"not HTTP", "ICY 200 OK\r\n\r\n", false, 0, "", false, false, "malformed status line"},
    {"status 099", "HTTP/1.1 099 Odd\r\n\r\n", false, 0, "", false, false, "malformed status line"},
    {"101 without asking", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", false, 101,
     "", false, false, "unexpected 101"},
    {"header line without a colon", "HTTP/1.1 200 OK\r\nContent-Length 3\r\n\r\nabc", false, 0, "",
     false, false, "malformed header line \"Content-Length 3\""},
    {"white space before the colon", "HTTP/1.1 200 OK\r\nContent-Length : 3\r\n\r\nabc", false, 0,
     "", false, false, "malformed header line"},
    {"Content-Length not a number", "HTTP/1.1 200 OK\r\nContent-Length: 3a\r\n\r\nabc", false, 0,
     "", false, false, "bad Content-Length \"3a\""},
    {"Content-Length twice, different",
     "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc", false, 0, "", false,
     false, "bad Content-Length \"4\""},
    {"chunk size not hex",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n", false, 200, "",
     false, false, "malformed chunk size \"zz\""},
    {"chunk size empty", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n;x\r\n", false, 200,
     "", false, false, "malformed chunk size"},
    {"chunk size with junk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 x\r\nab\r\n",
     false, 200, "", false, false, "malformed chunk size \"2 x\""},
    {"chunk size over 60 bits",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n", false, 200, "",
     false, false, "too large"},
    {"chunk longer than announced",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n", false, 200, "ab",
     false, false, "no CRLF after chunk data"},
};

}  // namespace

BOOST_DATA_TEST_CASE(responses_are_read_the_same_at_every_split_point, data::make(kResponses), c) {
  Parsed whole = feed({c.text}, c.eof);
  BOOST_TEST(whole.heads == (c.status >= 200 ? 1 : 0));
  BOOST_TEST(whole.status == c.status);
  BOOST_TEST(whole.body == c.body);
  BOOST_TEST(whole.done == c.done);
  BOOST_TEST(whole.keep_alive == c.keep_alive);
  BOOST_TEST(whole.error.find(c.error) != std::string::npos, whole.error);
  BOOST_TEST(whole.error.empty() == (*c.error == '\0'), whole.error);
  if (whole.error.empty()) BOOST_TEST(whole.left == 0u);
  std::string_view t = c.text;
  for (size_t i = 0; i <= t.size(); ++i) {
    Parsed split = feed({t.substr(0, i), t.substr(i)}, c.eof);
    BOOST_TEST(split == whole, "split at " << i);
  }
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < t.size(); ++i) bytes.push_back(t.substr(i, 1));
  BOOST_TEST(feed(bytes, c.eof) == whole, "byte by byte");
}

BOOST_AUTO_TEST_CASE(a_chunked_body_split_at_every_pair_of_points) {
  std::string_view t = kChunked;
  Parsed whole = feed({t}, false);
  BOOST_TEST_REQUIRE(whole.done);
  for (size_t i = 0; i <= t.size(); ++i) {
    for (size_t j = i; j <= t.size(); ++j) {
      Parsed p = feed({t.substr(0, i), t.substr(i, j - i), t.substr(j)}, false);
      if (!(p == whole)) {
        BOOST_TEST(p == whole, "split at " << i << " and " << j);
        return;
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(bytes_after_a_response_are_not_part_of_it) {
  std::string next = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\ny";
  Parsed p = feed({"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx" + next}, false);
  BOOST_TEST(p.done);
  BOOST_TEST(p.body == "x");
  BOOST_TEST(p.left == next.size());
  // And the parser says so again, using nothing, until reset.
  ResponseParser r;
  std::string_view in = "HTTP/1.1 204 No Content\r\n\r\nHTTP";
  auto s = r.next(in);
  BOOST_TEST((s.event == Event::kHead));
  in.remove_prefix(s.used);
  BOOST_TEST(in == "HTTP");
  BOOST_TEST((r.next(in).event == Event::kDone));
  BOOST_TEST(r.next(in).used == 0u);
  BOOST_TEST((r.end() == Event::kDone));
  r.reset();
  BOOST_TEST(!r.started());
  BOOST_TEST(r.status() == 0);
}

BOOST_AUTO_TEST_CASE(started_tells_a_silent_close_from_a_cut_response) {
  ResponseParser p;
  BOOST_TEST(!p.started());
  p.next("\r\n");  // a blank line before a response is not one
  BOOST_TEST(!p.started());
  p.next("H");
  BOOST_TEST(p.started());
}

BOOST_AUTO_TEST_CASE(a_head_larger_than_the_limit_is_refused) {
  std::string big = "HTTP/1.1 200 OK\r\nX-Big: " + std::string(70000, 'a') + "\r\n\r\n";
  Parsed p = feed({big}, false);
  BOOST_TEST(p.error == "the response head is longer than 65536 bytes");
  // Many small lines count together.
  std::string many = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 100; ++i) many += "X-H: 0123456789\r\n";
  BOOST_TEST(feed({many + "\r\n"}, false, 1024).error.find("longer than 1024") !=
             std::string::npos);
  BOOST_TEST(feed({many + "Content-Length: 0\r\n\r\n"}, false).done);
  // Bounded while the head is still arriving, not only once it is complete.
  ResponseParser r(1024);
  std::string chunk(600, 'a');
  BOOST_TEST((r.next("HTTP/1.1 200 OK\r\nX: " + chunk).event == Event::kNeedMore));
  BOOST_TEST((r.next(chunk).event == Event::kError));
  // Trailers are bounded the same way; chunk-size lines too.
  std::string trailers = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n";
  for (int i = 0; i < 100; ++i) trailers += "X-T: 0123456789\r\n";
  BOOST_TEST(feed({trailers + "\r\n"}, false, 1024).error ==
             "the trailer is longer than 1024 bytes");
  std::string ext = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;" +
                    std::string(2000, 'e') + "\r\nx\r\n0\r\n\r\n";
  BOOST_TEST(feed({ext}, false, 1024).error == "a chunk line is longer than 1024 bytes");
}

BOOST_AUTO_TEST_CASE(a_large_body_comes_out_as_views_of_the_input) {
  std::string body(1 << 20, 'b');
  std::string text =
      "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  ResponseParser p;
  std::string_view in = text;
  auto head = p.next(in);
  BOOST_TEST((head.event == Event::kHead));
  in.remove_prefix(head.used);
  auto s = p.next(in);
  BOOST_TEST((s.event == Event::kBody));
  BOOST_TEST(s.body.size() == body.size());
  BOOST_TEST(static_cast<const void*>(s.body.data()) == static_cast<const void*>(in.data()));
  BOOST_TEST((p.next(in.substr(s.used)).event == Event::kDone));
}

// ---- URLs ---------------------------------------------------------------------------------

struct UrlCase {
  const char* text;
  bool https;
  const char* host;
  bool ip;
  uint16_t port;
  const char* path;
  const char* authority;
};
std::ostream& operator<<(std::ostream& os, const UrlCase& c) {
  return os << c.text;
}

const UrlCase kUrls[] = {
    {"https://10.96.0.1:443", true, "10.96.0.1", true, 443, "", "10.96.0.1"},
    {"https://kubernetes.default.svc", true, "kubernetes.default.svc", false, 443, "",
     "kubernetes.default.svc"},
    {"http://127.0.0.1:8080/prefix/", false, "127.0.0.1", true, 8080, "/prefix/", "127.0.0.1:8080"},
    {"http://localhost", false, "localhost", false, 80, "", "localhost"},
    {"https://[fd00::1]:6443", true, "fd00::1", true, 6443, "", "[fd00::1]:6443"},
    {"http://[::1]", false, "::1", true, 80, "", "[::1]"},
    {"https://api.example.com:6443/k8s/clusters/c-1?x=1#frag", true, "api.example.com", false, 6443,
     "/k8s/clusters/c-1?x=1", "api.example.com:6443"},
    {"https://h_1.example:443?x", true, "h_1.example", false, 443, "/?x", "h_1.example"},
};

BOOST_DATA_TEST_CASE(urls_are_split_for_the_client, data::make(kUrls), c) {
  Url u = parse_url(c.text);
  BOOST_TEST(u.https == c.https);
  BOOST_TEST(u.host == c.host);
  BOOST_TEST(u.host_is_ip == c.ip);
  BOOST_TEST(u.port == c.port);
  BOOST_TEST(u.path == c.path);
  BOOST_TEST(u.authority() == c.authority);
}

struct BadUrl {
  const char* text;
  const char* cause;
};
std::ostream& operator<<(std::ostream& os, const BadUrl& c) {
  return os << c.text;
}

const BadUrl kBadUrls[] = {
    {"ftp://x", "not an http:// or https:// URL"},
    {"HTTPS://x", "not an http:// or https:// URL"},
    {"https://", "no host"},
    {"https://:6443", "no host"},
    {"https://user:pw@host", "user information"},
    {"https://host:0", "the port \"0\" is not a number in 1..65535"},
    {"https://host:65536", "not a number in 1..65535"},
    {"https://host:x", "not a number in 1..65535"},
    {"https://host:", "empty port"},
    {"https://[fd00::1", "no ']'"},
    {"https://[10.0.0.1]", "\"10.0.0.1\" is not an IPv6 address"},
    {"https://[fd00::1]x", "junk after the IPv6 address"},
    {"https://fd00::1:443", "not a number"},
    {"https://ho st", "is not a name or an address"},
};

BOOST_DATA_TEST_CASE(bad_urls_are_refused_with_the_cause, data::make(kBadUrls), c) {
  try {
    parse_url(c.text);
    BOOST_FAIL("accepted " << c.text);
  } catch (const Error& e) {
    BOOST_TEST((e.code() == Code::kInvalidConfig));
    std::string what = e.what();
    BOOST_TEST(what.starts_with(std::string("parse URL \"") + c.text + "\": "), what);
    BOOST_TEST(what.find(c.cause) != std::string::npos, what);
  }
}

BOOST_AUTO_TEST_CASE(origin_names_the_server_for_messages) {
  BOOST_TEST(parse_url("https://[fd18::1]:6443/x").origin() == "https://[fd18::1]:6443");
  BOOST_TEST(parse_url("http://a.b").origin() == "http://a.b:80");
}

BOOST_AUTO_TEST_CASE(query_values_are_percent_encoded) {
  BOOST_TEST(percent_encode("") == "");
  BOOST_TEST(percent_encode("abcXYZ019-._~") == "abcXYZ019-._~");
  BOOST_TEST(percent_encode("a b/c?d=e&f") == "a%20b%2Fc%3Fd%3De%26f");
  // A continue token is base64 with padding; a resourceVersion is digits.
  BOOST_TEST(percent_encode("eyJ2+Ijo/i==") == "eyJ2%2BIjo%2Fi%3D%3D");
  BOOST_TEST(percent_encode("12345") == "12345");
  BOOST_TEST(percent_encode("\xc3\xa9%") == "%C3%A9%25");
  BOOST_TEST(percent_encode(std::string("\0\x7f", 2)) == "%00%7F");
}

// ---- TLS context --------------------------------------------------------------------------

namespace {

std::string tls_file(const char* name) {
  return std::string(KNIT_TEST_DATA) + "/tls/" + name;
}

/// The message of the Error(kInvalidConfig) that building `c` throws, or "" when it builds.
std::string context_error(const TlsConfig& c) {
  try {
    TlsContext ctx(c);
    BOOST_TEST(ctx.get() != nullptr);
    return "";
  } catch (const Error& e) {
    BOOST_TEST((e.code() == Code::kInvalidConfig), e.what());
    return e.what();
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(tls_context_from_pem_text_and_from_files) {
  TlsConfig text;
  text.ca_pem = slurp(tls_file("ca.crt"));
  text.cert_pem = slurp(tls_file("client.crt"));
  text.key_pem = slurp(tls_file("client.key"));
  BOOST_TEST(context_error(text) == "");
  BOOST_TEST(TlsContext(text).verify());

  TlsConfig files;
  files.ca_file = tls_file("ca.crt");
  files.cert_file = tls_file("client.crt");
  files.key_file = tls_file("client.key");
  BOOST_TEST(context_error(files) == "");

  // Several CAs in one bundle (the same one twice is no error); a client certificate followed
  // by its chain; no CA at all: the system's.
  TlsConfig bundle = text;
  bundle.ca_pem = text.ca_pem + "\n" + text.ca_pem;
  bundle.cert_pem = text.cert_pem + text.ca_pem;
  BOOST_TEST(context_error(bundle) == "");
  BOOST_TEST(context_error(TlsConfig{}) == "");

  TlsConfig insecure;
  insecure.insecure_skip_verify = true;
  insecure.ca_pem = "not read when nothing is verified";
  BOOST_TEST(context_error(insecure) == "");
  BOOST_TEST(!TlsContext(insecure).verify());
}

BOOST_AUTO_TEST_CASE(tls_context_refuses_what_it_cannot_use) {
  const std::string ca = slurp(tls_file("ca.crt"));
  const std::string cert = slurp(tls_file("client.crt"));
  const std::string key = slurp(tls_file("client.key"));
  auto with = [&](auto change) {
    TlsConfig c;
    c.ca_pem = ca;
    c.cert_pem = cert;
    c.key_pem = key;
    change(c);
    return context_error(c);
  };
  BOOST_TEST(with([](TlsConfig& c) { c.ca_pem = "hello"; }) ==
             "read the CA certificates: no PEM certificate");
  BOOST_TEST(with([&](TlsConfig& c) {
               c.ca_pem = ca.substr(0, ca.size() / 2);
             }).starts_with("read the CA certificates: "));
  BOOST_TEST(with([](TlsConfig& c) {
               c.ca_pem.clear();
               c.ca_file = "/nonexistent/ca.crt";
             }) == "read the CA certificates file /nonexistent/ca.crt: No such file or directory");
  BOOST_TEST(with([](TlsConfig& c) {
               c.cert_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n";
             }).starts_with("read the client certificate: "));
  BOOST_TEST(with([](TlsConfig& c) { c.key_pem = "nope"; }) ==
             "read the client key: no PEM private key");
  BOOST_TEST(with([](TlsConfig& c) { c.key_pem = slurp(tls_file("other.key")); }) ==
             "the client key does not match the client certificate: key values mismatch");
  // An encrypted key is refused at once: no pass phrase is asked for on a terminal.
  BOOST_TEST(with([](TlsConfig& c) { c.key_pem = slurp(tls_file("encrypted.key")); }) ==
             "read the client key: the key is encrypted, and a pass phrase is never asked for");
}
