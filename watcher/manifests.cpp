#include "watcher/manifests.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/str.hpp"

namespace knit::watcher {

namespace {

bool is_manifest(std::string_view name) {
  if (name.empty() || name[0] == '.') return false;
  for (std::string_view ext : {".yaml", ".yml", ".json"}) {
    if (name.size() > ext.size() && name.substr(name.size() - ext.size()) == ext) return true;
  }
  return false;
}

struct File {
  std::string name;
  std::string text;
};

std::vector<File> read_dir(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) fail_errno(Code::kIo, str("read manifests directory ", dir), errno);
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    if (is_manifest(e->d_name)) names.emplace_back(e->d_name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  std::vector<File> files;
  for (auto& n : names) {
    std::string path = str(dir, '/', n);
    struct stat st {};
    if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    auto text = read_file(path);
    if (!text) continue;  // removed meanwhile
    files.push_back({std::move(n), std::move(*text)});
  }
  return files;
}

/// Two FNV-1a passes with different offsets: 128 bits, plenty to tell directory states apart.
std::string digest_of(const std::vector<File>& files) {
  uint64_t h[2] = {1469598103934665603ULL, 0x84222325cbf29ce4ULL};
  auto mix = [&](std::string_view s) {
    for (int i = 0; i < 2; ++i) {
      for (unsigned char c : s) {
        h[i] ^= c;
        h[i] *= 1099511628211ULL;
      }
      h[i] ^= 0xff;  // field separator
      h[i] *= 1099511628211ULL;
    }
  };
  for (const auto& f : files) {
    mix(f.name);
    mix(f.text);
  }
  return hex(h, sizeof h);
}

}  // namespace

Manifests load_manifests(const std::string& dir) {
  auto files = read_dir(dir);
  Manifests m;
  m.digest = digest_of(files);
  for (const auto& f : files) {
    try {
      m.objects.merge(decode_manifest(f.text, f.name));
    } catch (const Error& e) {
      m.objects.errors.push_back(e.what());
    }
  }
  return m;
}

std::string manifests_digest(const std::string& dir) { return digest_of(read_dir(dir)); }

}  // namespace knit::watcher
