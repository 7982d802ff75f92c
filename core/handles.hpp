// core/handles.hpp: std::unique_ptr owners for C library objects.
//
// Each library header declares its aliases once, e.g.
//   using NftRule = knit::CHandle<nftnl_rule, nftnl_rule_free>;
// and allocates through knit::make_handle, which turns a null into std::bad_alloc.
#pragma once

#include <memory>
#include <new>

namespace knit {

template <auto Free>
struct CFree {
  template <class T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};

template <class T, auto Free>
using CHandle = std::unique_ptr<T, CFree<Free>>;

/// Wraps a freshly allocated C object; throws std::bad_alloc when the allocator returned null.
template <class Handle>
Handle make_handle(typename Handle::pointer p) {
  if (p == nullptr) throw std::bad_alloc();
  return Handle(p);
}

}  // namespace knit
