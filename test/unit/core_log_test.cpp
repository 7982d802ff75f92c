// No log storm: repeats of a message are held back per key and counted in the next line.
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "core/log.hpp"
#include "core/str.hpp"

using knit::log::Level;
using knit::log::RateLimiter;
using namespace std::chrono_literals;

namespace {

/// Captures what is written to stderr (fd 2) while alive.
class StderrCapture {
 public:
  StderrCapture() {
    BOOST_TEST_REQUIRE(::pipe2(pipe_, O_CLOEXEC | O_NONBLOCK) == 0);
    saved_ = ::dup(2);
    ::dup2(pipe_[1], 2);
  }
  ~StderrCapture() {
    ::dup2(saved_, 2);
    ::close(saved_);
    ::close(pipe_[0]);
    ::close(pipe_[1]);
  }
  std::string take() {
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::read(pipe_[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
    return out;
  }

 private:
  int pipe_[2] = {-1, -1};
  int saved_ = -1;
};

size_t lines(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(core_log)

BOOST_AUTO_TEST_CASE(limiter_lets_one_through_per_interval_and_counts_the_rest) {
  RateLimiter r;
  auto t0 = RateLimiter::Clock::time_point{} + 1h;
  uint64_t suppressed = 99;
  BOOST_TEST(r.allow("apply", t0, 10s, suppressed));
  BOOST_TEST(suppressed == 0u);
  for (int i = 1; i <= 5; ++i) BOOST_TEST(!r.allow("apply", t0 + i * 1s, 10s, suppressed));
  BOOST_TEST(r.allow("other", t0 + 1s, 10s, suppressed));  // keys are independent
  BOOST_TEST(suppressed == 0u);
  BOOST_TEST(r.allow("apply", t0 + 10s, 10s, suppressed));
  BOOST_TEST(suppressed == 5u);
  BOOST_TEST(!r.allow("apply", t0 + 19s, 10s, suppressed));
  BOOST_TEST(r.allow("apply", t0 + 25s, 10s, suppressed));
  BOOST_TEST(suppressed == 1u);
}

BOOST_AUTO_TEST_CASE(limiter_memory_stays_bounded_under_key_churn) {
  RateLimiter r;
  auto t0 = RateLimiter::Clock::time_point{} + 1h;
  uint64_t s = 0;
  for (size_t i = 0; i < 10 * RateLimiter::kMaxKeys; ++i) {
    BOOST_TEST(r.allow(knit::str("pod-", i), t0 + std::chrono::milliseconds(i), 1h, s));
  }
  BOOST_TEST(r.size() <= RateLimiter::kMaxKeys);
  // Keys past their interval are the first to go.
  RateLimiter q;
  q.allow("old", t0, 1s, s);
  for (size_t i = 0; i + 1 < RateLimiter::kMaxKeys; ++i) q.allow(knit::str("k", i), t0 + 5s, 1h, s);
  q.allow("new", t0 + 5s, 1h, s);
  BOOST_TEST(!q.allow("k0", t0 + 6s, 1h, s));  // kept
  BOOST_TEST(q.allow("old", t0 + 6s, 1s, s));  // forgotten: allowed, nothing counted
  BOOST_TEST(s == 0u);
}

BOOST_AUTO_TEST_CASE(every_writes_one_line_for_a_storm) {
  knit::log::set_level(Level::kInfo);
  StderrCapture cap;
  for (int i = 0; i < 1000; ++i) {
    knit::log::every("storm-test", 100ms, Level::kWarn, "apply: commit failed: Device or resource busy");
  }
  std::string first = cap.take();
  BOOST_TEST(lines(first) == 1u, first);
  BOOST_TEST(first.find("warn: apply: commit failed: Device or resource busy\n") != std::string::npos);
  std::this_thread::sleep_for(120ms);
  BOOST_TEST(knit::log::every("storm-test", 100ms, Level::kWarn, "apply: commit failed: again"));
  std::string second = cap.take();
  BOOST_TEST(second.find("apply: commit failed: again (999 similar suppressed)\n") != std::string::npos, second);
  // Below the level nothing is written or counted.
  BOOST_TEST(!knit::log::every("debug-key", 100ms, Level::kDebug, "x"));
  BOOST_TEST(cap.take().empty());
}

BOOST_AUTO_TEST_SUITE_END()
