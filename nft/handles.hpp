// nft/handles.hpp: owners for libnftnl objects. The only place that calls a libnftnl *_alloc.
//
// libnftnl takes ownership of what is added to a parent (nftnl_rule_add_expr,
// nftnl_set_elem_add): callers hand it over with .release() at the call, so the transfer is
// visible. Freeing a parent frees its children.
#pragma once

#include <libnftnl/batch.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

#include <cstdint>

#include "core/handles.hpp"

namespace knit::nft {

using NftTable = CHandle<nftnl_table, nftnl_table_free>;
using NftChain = CHandle<nftnl_chain, nftnl_chain_free>;
using NftSet = CHandle<nftnl_set, nftnl_set_free>;
using NftSetElem = CHandle<nftnl_set_elem, nftnl_set_elem_free>;
using NftRule = CHandle<nftnl_rule, nftnl_rule_free>;
using NftExpr = CHandle<nftnl_expr, nftnl_expr_free>;
using NftObj = CHandle<nftnl_obj, nftnl_obj_free>;
using NftBatch = CHandle<nftnl_batch, nftnl_batch_free>;
using NftUdataBuf = CHandle<nftnl_udata_buf, nftnl_udata_buf_free>;
using NftExprIter = CHandle<nftnl_expr_iter, nftnl_expr_iter_destroy>;
using NftSetElemsIter = CHandle<nftnl_set_elems_iter, nftnl_set_elems_iter_destroy>;

inline NftTable new_table() {
  return make_handle<NftTable>(nftnl_table_alloc());
}
inline NftChain new_chain() {
  return make_handle<NftChain>(nftnl_chain_alloc());
}
inline NftSet new_set() {
  return make_handle<NftSet>(nftnl_set_alloc());
}
inline NftSetElem new_set_elem() {
  return make_handle<NftSetElem>(nftnl_set_elem_alloc());
}
inline NftRule new_rule() {
  return make_handle<NftRule>(nftnl_rule_alloc());
}
/// An expression by kernel name ("payload", "cmp", "lookup", ...).
inline NftExpr new_expr(const char* name) {
  return make_handle<NftExpr>(nftnl_expr_alloc(name));
}
inline NftObj new_obj() {
  return make_handle<NftObj>(nftnl_obj_alloc());
}
inline NftBatch new_batch(uint32_t page_size, uint32_t overrun) {
  return make_handle<NftBatch>(nftnl_batch_alloc(page_size, overrun));
}
inline NftUdataBuf new_udata_buf(uint32_t size) {
  return make_handle<NftUdataBuf>(nftnl_udata_buf_alloc(size));
}
inline NftExprIter new_expr_iter(const nftnl_rule* r) {
  return make_handle<NftExprIter>(nftnl_expr_iter_create(r));
}
inline NftSetElemsIter new_set_elems_iter(const nftnl_set* s) {
  return make_handle<NftSetElemsIter>(nftnl_set_elems_iter_create(s));
}

}  // namespace knit::nft
