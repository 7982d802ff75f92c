// Where the CNI binary and conflist go: containerd's config as k3s, kind and containerd 1.x/2.x
// render it (fixtures in test/data/install/), and the search order on a host (a temp root).
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "conf/containerd.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/str.hpp"
#include "install/install.hpp"

using knit::Code;
using knit::Error;
using knit::str;
using namespace knit::conf;
namespace data = boost::unit_test::data;

namespace {

std::string fixture_path(const std::string& name) { return str(KNIT_TEST_DATA, "/install/", name); }

std::string fixture(const std::string& name) {
  auto text = knit::read_file(fixture_path(name));
  BOOST_TEST_REQUIRE(text.has_value(), "cannot open " << name);
  return *text;
}

class TempRoot {
 public:
  TempRoot() {
    char tmpl[] = "/tmp/knit-install-test.XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempRoot() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  /// Writes `content` at host path `p` (under the root).
  void put(const std::string& p, const std::string& content) const {
    std::string full = path_ + p;
    std::filesystem::create_directories(std::filesystem::path(full).parent_path());
    std::FILE* f = std::fopen(full.c_str(), "wb");
    BOOST_TEST_REQUIRE(f != nullptr);
    std::fwrite(content.data(), 1, content.size(), f);
    std::fclose(f);
  }

 private:
  std::string path_;
};

struct Case {
  const char* file;
  std::vector<std::string> bin_dirs;
  std::string conf_dir;
};
std::ostream& operator<<(std::ostream& os, const Case& c) { return os << c.file; }

const Case kCases[] = {
    {"k3s-1.32-v3.toml", {"/var/lib/rancher/k3s/data/cni"}, "/var/lib/rancher/k3s/agent/etc/cni/net.d"},
    {"k3s-1.30-v2.toml", {"/var/lib/rancher/k3s/data/cni"}, "/var/lib/rancher/k3s/agent/etc/cni/net.d"},
    {"k3s-1.21-flannel-none.toml", {}, ""},
    {"k3d-v1.toml", {"/bin"}, "/var/lib/rancher/k3s/agent/etc/cni/net.d"},
    {"containerd-2.1-default.toml", {"/opt/cni/bin", "/usr/libexec/cni"}, "/etc/cni/net.d"},
    {"kind-v2-no-cni.toml", {}, ""},
    {"v3-with-stale-v2-section.toml", {}, "/etc/cni/custom.d"},
};

}  // namespace

BOOST_AUTO_TEST_SUITE(install_containerd)

BOOST_DATA_TEST_CASE(reads_the_cni_section_of_each_config_version, data::make(kCases), c) {
  ContainerdCni got = parse_containerd_cni(fixture(c.file), c.file);
  BOOST_TEST(got.bin_dirs == c.bin_dirs, boost::test_tools::per_element());
  BOOST_TEST(got.conf_dir == c.conf_dir);
}

BOOST_AUTO_TEST_CASE(bin_dir_wins_over_bin_dirs_like_containerd_2_1) {
  auto got = parse_containerd_cni(
      "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.cni]\nbin_dir = '/a'\nbin_dirs = ['/b']\n",
      "c.toml");
  BOOST_TEST(got.bin_dirs == std::vector<std::string>{"/a"}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(errors_name_file_line_and_key) {
  auto error_of = [](const std::string& name) -> std::string {
    try {
      parse_containerd_cni(fixture(name), name);
    } catch (const Error& e) {
      BOOST_TEST((e.code() == Code::kInvalidConfig));
      return e.what();
    }
    return "(no error)";
  };
  BOOST_TEST(error_of("bad-bin-dirs.toml") ==
             "bad-bin-dirs.toml:4: bin_dirs: expected an array of strings, got string");
  BOOST_TEST(error_of("not-toml.toml") == "not-toml.toml:2: expected ']'");
}

BOOST_AUTO_TEST_CASE(k3s_config_is_found_under_the_root) {
  TempRoot root;
  root.put(std::string(kK3sContainerdConfig), fixture("k3s-1.32-v3.toml"));
  root.put(std::string(kContainerdConfig), fixture("containerd-2.1-default.toml"));
  CniDirs d = detect_cni_dirs(root.path(), "");
  BOOST_TEST(d.bin_dir == "/var/lib/rancher/k3s/data/cni");
  BOOST_TEST(d.conf_dir == "/var/lib/rancher/k3s/agent/etc/cni/net.d");
  BOOST_TEST(d.origin == str("containerd config ", kK3sContainerdConfig));
}

BOOST_AUTO_TEST_CASE(k3s_without_cni_section_keeps_containerd_defaults) {
  TempRoot root;
  root.put(std::string(kK3sContainerdConfig), fixture("k3s-1.21-flannel-none.toml"));
  CniDirs d = detect_cni_dirs(root.path(), "");
  BOOST_TEST(d.bin_dir == "/opt/cni/bin");
  BOOST_TEST(d.conf_dir == "/etc/cni/net.d");
  BOOST_TEST(d.origin == str("containerd config ", kK3sContainerdConfig));
}

BOOST_AUTO_TEST_CASE(falls_back_to_etc_containerd_then_defaults) {
  TempRoot root;
  BOOST_TEST((detect_cni_dirs(root.path(), "") ==
              CniDirs{"/opt/cni/bin", "/etc/cni/net.d", "defaults"}));
  root.put(std::string(kContainerdConfig), fixture("containerd-2.1-default.toml"));
  CniDirs d = detect_cni_dirs(root.path(), "");
  BOOST_TEST(d.bin_dir == "/opt/cni/bin");
  BOOST_TEST(d.origin == str("containerd config ", kContainerdConfig));
}

BOOST_AUTO_TEST_CASE(an_explicit_config_must_exist) {
  TempRoot root;
  try {
    detect_cni_dirs(root.path(), "/etc/containerd/mine.toml");
    BOOST_ERROR("no error");
  } catch (const Error& e) {
    BOOST_TEST((e.code() == Code::kIo));
    BOOST_TEST(std::string(e.what()) == str("read containerd config ", root.path(),
                                            "/etc/containerd/mine.toml: No such file or directory"));
  }
  root.put("/etc/containerd/mine.toml", fixture("k3d-v1.toml"));
  BOOST_TEST(detect_cni_dirs(root.path(), "/etc/containerd/mine.toml").bin_dir == "/bin");
}

BOOST_AUTO_TEST_CASE(flags_override_what_containerd_says) {
  TempRoot root;
  root.put(std::string(kK3sContainerdConfig), fixture("k3s-1.30-v2.toml"));
  knit::install::Options o;
  o.root = root.path();
  o.conf_dir = "/etc/cni/net.d";
  CniDirs d = knit::install::resolve_dirs(o);
  BOOST_TEST(d.bin_dir == "/var/lib/rancher/k3s/data/cni");
  BOOST_TEST(d.conf_dir == "/etc/cni/net.d");
  o.bin_dir = "/opt/cni/bin";
  BOOST_TEST((knit::install::resolve_dirs(o) == CniDirs{"/opt/cni/bin", "/etc/cni/net.d", "flags"}));
}

BOOST_AUTO_TEST_CASE(under_root_joins_paths) {
  BOOST_TEST(under_root("/", "/opt/cni/bin") == "/opt/cni/bin");
  BOOST_TEST(under_root("", "/opt/cni/bin") == "/opt/cni/bin");
  BOOST_TEST(under_root("/host/", "/opt/cni/bin") == "/host/opt/cni/bin");
  BOOST_TEST(under_root("/host", "opt") == "/host/opt");
}

BOOST_AUTO_TEST_SUITE_END()
