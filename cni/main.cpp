// The entry point of the one knit binary. It lives with the CNI module because the binary is
// first of all a CNI plugin; it is its own target and the only one that links every module.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "cni/cni.hpp"
#include "install/install.hpp"
#include "lab/lab.hpp"
#include "watcher/agent.hpp"
#include "core/log.hpp"

namespace {

std::string read_stdin() {
  std::string in;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(0, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return in;
    in.append(buf, static_cast<size_t>(n));
  }
}

void write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

constexpr const char* kUsage =
    "knit: a Kubernetes CNI plugin with NetworkPolicy enforcement\n"
    "\n"
    "As a CNI plugin: run by a container runtime with CNI_COMMAND set (spec 1.1.0;\n"
    "0.3.0, 0.3.1, 0.4.0 and 1.0.0 accepted).\n"
    "\n"
    "Subcommands:\n"
    "  knit agent [--manifests DIR] [--node-name NAME] [--socket PATH] [--data-dir DIR]\n"
    "                   run the NetworkPolicy agent\n"
    "  knit install [--config FILE] [--uninstall] ...\n"
    "                   copy knit into the node's CNI bin dir (knit install --help)\n"
    "  knit lab up|status|probe|down ...\n"
    "                   a NetworkPolicy sandbox on this machine (knit lab help)\n"
    "  knit version     print the version\n";

}  // namespace

int main(int argc, char** argv) {
  if (std::getenv("CNI_COMMAND") != nullptr) {
    knit::log::init_from_env(knit::log::Level::kWarn);
    std::string out;
    int rc = knit::cni::run([](const char* k) { return std::getenv(k); }, read_stdin(), out);
    if (!out.empty()) write_all(1, out + "\n");
    return rc;
  }
  if (argc >= 2 && std::strcmp(argv[1], "agent") == 0) return knit::watcher::agent_main(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "lab") == 0) return knit::lab::main(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "install") == 0) return knit::install::main(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "version") == 0) {
    write_all(1, "knit " KNIT_VERSION "\n");
    return 0;
  }
  write_all(2, kUsage);
  return argc >= 2 && std::strcmp(argv[1], "help") == 0 ? 0 : 2;
}
