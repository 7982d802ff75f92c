// ipam/store.hpp: the crash-safe IPAM store, one file per network.
//
// Layout: <dir>/<network>/store (the records) and <dir>/<network>/lock (flock). A transaction
// takes the lock, loads the file, and commit() replaces it atomically (write temp, fsync, rename,
// fsync dir), so a crash at any point leaves the old or the new store, never a mix. The file
// carries a version header and a checksum trailer; a torn or corrupt file is repaired (every
// intact record is kept, the damaged original is kept beside it as store.corrupt.<time>, and the
// repair is reported) or, when nothing can be trusted, reported as Error(kStore).
#pragma once

#include <chrono>
#include <optional>
#include <string>

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
        : lock_(std::move(lock)), dir_(std::move(dir)), state_(std::move(state)),
          report_(std::move(report)) {}
    FileLock lock_;
    std::string dir_;
    State state_;
    LoadReport report_;
  };

  /// The store of network `network` under `data_dir` (created if missing, mode 0700).
  Store(std::string data_dir, std::string network);

  /// Locks (waiting up to `timeout`) and loads. Throws Error(kTryAgainLater) on lock timeout,
  /// Error(kStore) when the file cannot be read or repaired.
  Txn begin(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  const std::string& dir() const noexcept { return dir_; }

 private:
  std::string dir_;
};

/// Serialises a State to the store's file format (header, one record per line, checksum trailer).
std::string encode(const State& s);
/// Parses the store's file format. A damaged file yields the intact records and a report with
/// repaired = true; a file with nothing trustworthy throws Error(kStore).
State decode(std::string_view text, LoadReport& report);

}  // namespace knit::ipam
