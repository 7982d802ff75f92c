#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <string>

#include "core/sha256.hpp"
#include "core/str.hpp"

namespace {
std::string hex_sha256(std::string_view s) {
  auto d = knit::sha256(s);
  return knit::hex(d.data(), d.size());
}

struct Vector {
  std::string input;
  const char* digest;
};
std::ostream& operator<<(std::ostream& o, const Vector& v) {
  return o << v.input.size() << " bytes";
}

// FIPS 180-4 examples and NIST CAVP (SHA256ShortMsg) vectors, plus inputs at the padding edges:
// 55 bytes (length fits in the first block), 56 and 63 (it does not), 64 (two blocks, no tail).
const Vector kVectors[] = {
    {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnop"
     "qrsmnopqrstnopqrstu",
     "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    {std::string(55, 'a'), "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
    {std::string(56, 'a'), "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
    {std::string(63, 'a'), "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
    {std::string(64, 'a'), "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
    {std::string(1000000, 'a'), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
};
}  // namespace

BOOST_AUTO_TEST_SUITE(core_sha256)

BOOST_DATA_TEST_CASE(matches_the_standards_vectors, boost::unit_test::data::make(kVectors), v) {
  BOOST_TEST(hex_sha256(v.input) == v.digest);
}

BOOST_AUTO_TEST_SUITE_END()
