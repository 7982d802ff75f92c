// `knit lab` command lines: what each one means, and what is refused.
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <ostream>

#include "core/error.hpp"
#include "lab/args.hpp"

using namespace knit;
using namespace knit::lab;
namespace bdata = boost::unit_test::data;
using namespace std::chrono_literals;

namespace {

Args parse(std::initializer_list<std::string_view> a) {
  return parse_args({a.begin(), a.end()});
}

/// The message of the error parse() throws, or "" when it does not throw.
std::string error_of(std::vector<std::string_view> a) {
  try {
    parse_args(a);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(lab_args)

BOOST_AUTO_TEST_CASE(up_needs_a_dir_and_defaults_to_the_default_lab_with_an_agent) {
  auto up = std::get<UpArgs>(parse({"up", "--dir", "/tmp/x"}));
  BOOST_TEST(up.dir == "/tmp/x");
  BOOST_TEST(up.name == "default");
  BOOST_TEST(up.agent);
  auto up2 = std::get<UpArgs>(parse({"up", "--name=demo", "--dir=/d", "--no-agent"}));
  BOOST_TEST(up2.name == "demo");
  BOOST_TEST(up2.dir == "/d");
  BOOST_TEST(!up2.agent);
  BOOST_TEST(up2.pod_cidrs.empty());
}

BOOST_AUTO_TEST_CASE(up_takes_one_pod_cidr_per_family_in_network_form) {
  auto up = std::get<UpArgs>(
      parse({"up", "--dir", "/d", "--pod-cidr", "10.1.2.3/28", "--pod-cidr=fd00:1::/120"}));
  BOOST_TEST((up.pod_cidrs == std::vector<std::string>{"10.1.2.0/28", "fd00:1::/120"}));
  BOOST_TEST(
      error_of({"up", "--dir", "/d", "--pod-cidr", "10.1.0.0/24", "--pod-cidr", "10.2.0.0/24"})
          .find("one range per address family") != std::string::npos);
  BOOST_TEST(error_of({"up", "--dir", "/d", "--pod-cidr", "10.1.0.0/31"}).find("too small") !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(probe_defaults_to_tcp_80_ipv4_one_second_table) {
  auto p = std::get<ProbeArgs>(parse({"probe"}));
  BOOST_CHECK(p.port == PortRef(uint16_t{80}));
  BOOST_CHECK(p.protocol == Protocol::kTcp);
  BOOST_TEST(p.family == 4);
  BOOST_CHECK(p.timeout == 1000ms);
  BOOST_CHECK(p.output == Output::kTable);
  BOOST_TEST(p.name == "default");
}

BOOST_AUTO_TEST_CASE(probe_takes_every_option_in_both_spellings) {
  auto p =
      std::get<ProbeArgs>(parse({"probe", "--name", "e2e-1", "--port", "serve-81-udp", "--protocol",
                                 "udp", "--family", "6", "--timeout", "250ms", "-ojson"}));
  BOOST_CHECK(p.port == PortRef(std::string("serve-81-udp")));
  BOOST_CHECK(p.protocol == Protocol::kUdp);
  BOOST_TEST(p.family == 6);
  BOOST_CHECK(p.timeout == 250ms);
  BOOST_CHECK(p.output == Output::kJson);
  BOOST_TEST(p.name == "e2e-1");
  auto q = std::get<ProbeArgs>(parse({"probe", "--port=8080", "--protocol=SCTP", "-o", "table"}));
  BOOST_CHECK(q.port == PortRef(uint16_t{8080}));
  BOOST_CHECK(q.protocol == Protocol::kSctp);
}

BOOST_AUTO_TEST_CASE(status_down_and_help) {
  auto s = std::get<StatusArgs>(parse({"status", "--output", "json", "--name", "a"}));
  BOOST_CHECK(s.output == Output::kJson);
  BOOST_TEST(s.name == "a");
  BOOST_TEST(std::get<DownArgs>(parse({"down"})).name == "default");
  BOOST_CHECK(std::holds_alternative<HelpArgs>(parse({"help"})));
  BOOST_CHECK(std::holds_alternative<HelpArgs>(parse({"probe", "--help"})));
}

struct Refused {
  std::vector<std::string_view> args;
};
std::ostream& operator<<(std::ostream& os, const Refused& c) {
  os << "knit lab";
  for (auto a : c.args) os << ' ' << a;
  return os;
}

const std::vector<Refused> kRefused = {
    {{}},
    {{"explode"}},
    {{"up"}},                                           // no --dir
    {{"up", "--dir"}},                                  // no value
    {{"up", "--dir", "/x", "--port", "80"}},            // a probe option
    {{"up", "--dir", "/x", "--no-agent=yes"}},          // a flag with a value
    {{"up", "--dir", "/x", "--pod-cidr", "10.1.0.0"}},  // no prefix length
    {{"up", "--dir", "/x", "--pod-cidr", "fd00::/127"}},
    {{"down", "--name", "Has.Dots"}},
    {{"down", "--name", ""}},
    {{"status", "-o", "yaml"}},
    {{"probe", "--port", "0"}},
    {{"probe", "--port", "65536"}},
    {{"probe", "--port", "Serve"}},
    {{"probe", "--protocol", "icmp"}},
    {{"probe", "--family", "5"}},
    {{"probe", "--timeout", "0"}},
    {{"probe", "--timeout", "soon"}},
};

BOOST_DATA_TEST_CASE(refuses_with_a_message_naming_the_argument, bdata::make(kRefused), c) {
  std::string msg = error_of(c.args);
  BOOST_TEST(!msg.empty());
  BOOST_TEST(msg.find("knit lab help") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(messages_name_the_culprit) {
  BOOST_TEST(error_of({"probe", "--protocol", "icmp"}).find("\"icmp\"") != std::string::npos);
  BOOST_TEST(error_of({"up"}).find("--dir DIR is required") != std::string::npos);
  BOOST_TEST(error_of({"explode"}).find("\"explode\"") != std::string::npos);
}

/// A string and what it should give.
template <class T>
struct Case {
  std::string_view in;
  T want;
};
template <class T>
std::ostream& operator<<(std::ostream& os, const Case<T>& c) {
  return os << '"' << c.in << '"';
}

const std::vector<Case<bool>> kLabNames = {
    {"default", true}, {"e2e-123", true},
    {"a", true},       {"0lab", true},
    {"", false},       {"-x", false},
    {"x.y", false},    {"Upper", false},
    {"a_b", false},    {"abcdefghijabcdefghijabcdefghijabc", false},  // 33 characters
};

BOOST_DATA_TEST_CASE(lab_names, bdata::make(kLabNames), c) {
  BOOST_TEST(valid_lab_name(c.in) == c.want);
}

const std::vector<Case<std::string>> kPorts = {
    {"80", "80"},
    {"65535", "65535"},
    {"serve-80-tcp", "serve-80-tcp"},
    {"http", "http"},
    {"0", "-"},
    {"65536", "-"},
    {"-http", "-"},
    {"http-", "-"},
    {"a--b", "-"},
    {"123-456", "-"},
    {"abcdefghijklmnop", "-"},
    {"HTTP", "-"},
    {"", "-"},
};

BOOST_DATA_TEST_CASE(port_refs, bdata::make(kPorts), c) {
  auto p = parse_port_ref(c.in);
  std::string got = !p ? "-"
                       : std::visit(
                             [](const auto& v) -> std::string {
                               if constexpr (std::is_same_v<std::decay_t<decltype(v)>, uint16_t>) {
                                 return std::to_string(v);
                               } else {
                                 return v;
                               }
                             },
                             *p);
  BOOST_TEST(got == c.want);
}

const std::vector<Case<long>> kDurations = {
    {"1s", 1000}, {"500ms", 500},  {"1.5s", 1500}, {"2", 2000}, {"0.25", 250}, {"0", -1},
    {"0ms", -1},  {"1.2345s", -1}, {"ms", -1},     {"1h", -1},  {"601s", -1},  {"-1s", -1},
};

BOOST_DATA_TEST_CASE(durations, bdata::make(kDurations), c) {
  auto d = parse_duration(c.in);
  BOOST_TEST((d ? static_cast<long>(d->count()) : -1L) == c.want);
}

BOOST_AUTO_TEST_CASE(protocols_in_any_case) {
  BOOST_CHECK(parse_protocol("tcp") == Protocol::kTcp);
  BOOST_CHECK(parse_protocol("Udp") == Protocol::kUdp);
  BOOST_CHECK(parse_protocol("SCTP") == Protocol::kSctp);
  BOOST_CHECK(!parse_protocol("icmp"));
}

BOOST_AUTO_TEST_SUITE_END()
