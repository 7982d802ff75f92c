// watcher/intern.hpp: one shared copy of each distinct value (label maps, port lists).
//
// Pods of one Deployment carry identical labels and container ports; a cluster of 10k pods has
// a few hundred distinct label maps. A Shared<T> holds its value through a process-wide pool of
// T, so each distinct value is held once and a holder keeps a shared pointer (16 bytes) instead
// of a copy: 10k pods' labels cost ~6 MiB as copies and a few KiB interned. Equal values are
// the same pointer, so equality is a pointer compare.
//
// The pool is shared by all threads (the API workers decode pods; the agent's loop drops them)
// and guarded by a mutex, taken only when a value is interned. It keeps a strong reference to
// every value and sweeps out the ones nobody else holds once it has doubled since the last
// sweep: no deleter races, and at most twice the live values stay allocated. The pool itself is
// never destroyed, so a Shared in a static object outlives nothing it needs.
#pragma once

#include <memory>
#include <mutex>
#include <set>

namespace knit::watcher {

template <typename T>
class Shared {
 public:
  /// The empty value (T{}).
  Shared() : p_(empty_value()) {}
  /// The pool's copy of `value` (implicit: a Shared<T> is assigned and compared like a T).
  Shared(T value) : p_(pool().intern(std::move(value))) {}  // NOLINT(google-explicit-constructor)
  // Copies only: a moved-from Shared would hold no value, and a copy is two atomic increments.
  Shared(const Shared&) = default;
  Shared& operator=(const Shared&) = default;
  Shared& operator=(T value) { return *this = Shared(std::move(value)); }

  /// Replaces the value with `f` applied to a copy of it.
  template <typename F>
  void edit(F&& f) {
    T copy = *p_;
    f(copy);
    *this = std::move(copy);
  }

  const T& operator*() const noexcept { return *p_; }
  const T* operator->() const noexcept { return p_.get(); }
  operator const T&() const noexcept { return *p_; }  // NOLINT(google-explicit-constructor)

  friend bool operator==(const Shared& a, const Shared& b) noexcept { return a.p_ == b.p_; }
  friend bool operator==(const Shared& a, const T& b) { return *a.p_ == b; }

  /// Distinct values in the pool (some may be waiting for the next sweep), for tests.
  static size_t pool_size() { return pool().size(); }

 private:
  class Pool {
   public:
    std::shared_ptr<const T> intern(T&& value) {
      std::lock_guard lock(mu_);
      if (auto it = values_.find(value); it != values_.end()) return *it;
      if (values_.size() >= sweep_at_) sweep();
      auto sp = std::make_shared<const T>(std::move(value));
      values_.insert(sp);
      return sp;
    }
    size_t size() {
      std::lock_guard lock(mu_);
      return values_.size();
    }

   private:
    // Under the lock, use_count() == 1 means only the pool holds the value: a new reference
    // can come only from intern(), which waits for the lock.
    void sweep() {
      for (auto it = values_.begin(); it != values_.end();) {
        it = it->use_count() == 1 ? values_.erase(it) : std::next(it);
      }
      sweep_at_ = std::max<size_t>(kMinSweep, 2 * values_.size());
    }
    struct Less {
      using is_transparent = void;
      bool operator()(const std::shared_ptr<const T>& a, const std::shared_ptr<const T>& b) const {
        return *a < *b;
      }
      bool operator()(const std::shared_ptr<const T>& a, const T& b) const { return *a < b; }
      bool operator()(const T& a, const std::shared_ptr<const T>& b) const { return a < *b; }
    };
    static constexpr size_t kMinSweep = 64;
    std::mutex mu_;
    std::set<std::shared_ptr<const T>, Less> values_;
    size_t sweep_at_ = kMinSweep;
  };
  static Pool& pool() {
    static Pool* p = new Pool;  // never destroyed: see the top of the file
    return *p;
  }
  static const std::shared_ptr<const T>& empty_value() {
    static const auto* e = new std::shared_ptr<const T>(pool().intern(T{}));
    return *e;
  }

  std::shared_ptr<const T> p_;
};

}  // namespace knit::watcher
