// watcher/intern.hpp: one shared copy of each distinct value (label maps, port lists).
//
// Pods of one Deployment carry identical labels and container ports; a cluster of 10k pods has
// a few hundred distinct label maps. Interned, each distinct value is held once and a holder
// keeps a shared pointer (16 bytes) instead of a copy. Equal values give the same pointer, so
// holders compare by pointer. A value leaves the pool when its last holder lets go.
// Single-threaded, like the reconciler that uses it; the pool must outlive its values.
#pragma once

#include <map>
#include <memory>

namespace knit::watcher {

template <typename T>
class Interner {
 public:
  Interner() = default;
  Interner(const Interner&) = delete;
  Interner& operator=(const Interner&) = delete;

  std::shared_ptr<const T> intern(const T& value) {
    if (auto it = pool_.find(&value); it != pool_.end()) return it->second.lock();
    auto* copy = new T(value);
    std::shared_ptr<const T> sp(copy, [this](const T* v) {
      pool_.erase(v);
      delete v;
    });
    pool_.emplace(copy, sp);
    return sp;
  }
  size_t size() const noexcept { return pool_.size(); }

 private:
  struct Less {
    bool operator()(const T* a, const T* b) const { return *a < *b; }
  };
  // Keys point at the values themselves; the deleter removes a key before its value dies, so
  // a lookup never compares against a freed value and lock() never comes back empty.
  std::map<const T*, std::weak_ptr<const T>, Less> pool_;
};

}  // namespace knit::watcher
