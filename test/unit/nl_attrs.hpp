// test/unit/nl_attrs.hpp: reading back the netlink messages a builder produced (tests only).
#pragma once

#include <libmnl/libmnl.h>

#include <boost/test/unit_test.hpp>
#include <map>
#include <string>

namespace knit::test {

/// Attributes of one level, by type.
using AttrMap = std::map<int, const nlattr*>;

inline int collect_attr(const nlattr* a, void* data) {
  (*static_cast<AttrMap*>(data))[mnl_attr_get_type(a)] = a;
  return MNL_CB_OK;
}

/// The top-level attributes of `nlh`, after a fixed header of `hdr` bytes.
inline AttrMap attrs(const nlmsghdr* nlh, size_t hdr) {
  AttrMap m;
  BOOST_REQUIRE(mnl_attr_parse(nlh, static_cast<unsigned>(hdr), collect_attr, &m) >= 0);
  return m;
}

/// The attributes nested in `a`.
inline AttrMap nested(const nlattr* a) {
  AttrMap m;
  BOOST_REQUIRE(mnl_attr_parse_nested(a, collect_attr, &m) >= 0);
  return m;
}

/// A string attribute.
inline std::string s(const nlattr* a) {
  return mnl_attr_get_str(a);
}

}  // namespace knit::test
