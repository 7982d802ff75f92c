#include <boost/test/unit_test.hpp>

#include "conf/agent_proto.hpp"
#include "core/error.hpp"

using namespace knit;
using namespace knit::conf;

BOOST_AUTO_TEST_SUITE(conf_agent_proto)

BOOST_AUTO_TEST_CASE(attach_round_trips) {
  AgentRequest r;
  r.op = AgentRequest::Op::kAttach;
  r.pod_namespace = "x";
  r.pod_name = "a";
  r.container_id = "cid";
  r.ifname = "eth0";
  r.ips = {*IpAddr::parse("10.0.0.5"), *IpAddr::parse("fd00::5")};
  auto line = encode(r);
  BOOST_TEST(line.find('\n') == std::string::npos);
  BOOST_CHECK(decode_agent_request(line) == r);
}

BOOST_AUTO_TEST_CASE(wait_and_reply_round_trip) {
  AgentRequest r;
  r.op = AgentRequest::Op::kWait;
  r.digest = "abc123";
  r.timeout_ms = 5000;
  BOOST_CHECK(decode_agent_request(encode(r)) == r);
  AgentReply rep{true, "", true, 42, "abc123"};
  BOOST_CHECK(decode_agent_reply(encode(rep)) == rep);
  AgentReply bad{false, "boom", false, 0, ""};
  BOOST_CHECK(decode_agent_reply(encode(bad)) == bad);
}

BOOST_AUTO_TEST_CASE(rejects_garbage) {
  BOOST_CHECK_THROW(decode_agent_request("not json"), Error);
  BOOST_CHECK_THROW(decode_agent_request(R"({"op":"explode"})"), Error);
  BOOST_CHECK_THROW(decode_agent_request(R"({"op":"attach","ips":["10.0.0.300"]})"), Error);
  BOOST_CHECK_THROW(decode_agent_request(R"({"op":5})"), Error);
}

BOOST_AUTO_TEST_SUITE_END()
