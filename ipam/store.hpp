// ipam/store.hpp: the crash-safe IPAM store, one file per network.
//
// Layout: <dir>/<network>/store (the records) and <dir>/<network>/lock (flock). A transaction
// takes the lock, loads the file, and commit() replaces it atomically (write temp, fsync, rename,
// fsync dir), so a crash at any point leaves the old or the new store, never a mix. The file
// carries a version header and a checksum trailer; a torn or corrupt file is repaired (every
// intact record is kept, the damaged original is kept beside it as store.corrupt.<time>, and the
// repair is reported) or, when nothing can be trusted, reported as Error(kStore). The file format
// is specified at the top of store.cpp.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "core/fs.hpp"
#include "ipam/ipam_types.hpp"

namespace knit::ipam {

/// What loading found, for logs and STATUS.
struct LoadReport {
  bool repaired = false;
  std::string detail;  ///< what was wrong and what was kept, empty if nothing
};

class Store {
 public:
  /// A locked, loaded store. Destroying it without commit() leaves the file untouched.
  class Txn {
   public:
    State& state() noexcept { return state_; }
    const LoadReport& report() const noexcept { return report_; }
    /// Writes state() back atomically. Throws Error(kStore) naming the file.
    void commit();

   private:
    friend class Store;
    Txn(FileLock lock, std::string dir, State state, LoadReport report)
        : lock_(std::move(lock)),
          dir_(std::move(dir)),
          state_(std::move(state)),
          report_(std::move(report)) {}
    FileLock lock_;
    std::string dir_;
    State state_;
    LoadReport report_;
  };

  /// The store of network `network` under `data_dir` (created if missing, mode 0700). Throws
  /// Error(kInvalidConfig) when `network` cannot name a directory (empty, ".", "..", or holding
  /// '/' or NUL), Error(kStore) when the directory cannot be created.
  Store(std::string data_dir, std::string network);

  /// Locks (waiting up to `timeout`) and loads; a missing store file is an empty State. When the
  /// file had to be repaired, the damaged bytes are first copied to <dir>/store.corrupt.<unix
  /// seconds> (unless an identical copy is already there) and report() says what was dropped and
  /// where the copy is; the repaired State reaches the disk with the next commit(). Throws
  /// Error(kTryAgainLater) on lock timeout, Error(kStore) when the file cannot be read, is not a
  /// knit store, or the damaged copy cannot be written.
  Txn begin(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  const std::string& dir() const noexcept { return dir_; }

 private:
  std::string dir_;
};

/// Serialises a State to the store's file format (header, one record per line, checksum trailer).
std::string encode(const State& s);
/// Parses the store's file format. A damaged file (torn tail, bad trailer or checksum, garbage
/// or damaged lines, duplicate records or address claims) yields every intact record (the first
/// of duplicates) and a report with repaired = true saying what was dropped. A file whose first
/// line is not the version header is not trusted at all: throws Error(kStore) naming `path`.
State decode(std::string_view text, LoadReport& report, std::string_view path = "(unnamed)");

}  // namespace knit::ipam
