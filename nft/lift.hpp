// nft/lift.hpp: libnftnl objects parsed from the kernel's dumps → model values (pure).
//
// Rules are lifted by recognising the expression patterns lower.cpp (and nft) emit; dependency
// matches are dropped as nft does when it lists a rule (see canonical()). An expression that fits
// no pattern becomes a Raw statement in place, so an unknown construct shows up in the rendered
// text instead of disappearing.
#pragma once

#include "nft/handles.hpp"
#include "nft/nft_types.hpp"

namespace knit::nft {

/// Name and hook of a chain (rules are lifted separately). Throws Error(kNetlink) for a chain
/// type or hook the model does not know.
Chain lift_chain(const nftnl_chain* c);
/// A set's name, key/data types and flags, without elements. Throws Error(kNetlink) for types or
/// flags the model does not know (timeouts, dynamic sets, object maps).
Set lift_set(const nftnl_set* s);
/// Collects the elements of one set over the messages of its dump. Plain interval sets hold
/// each range as a start element and an end element one past the range (none when the range
/// runs to the end of the key space); finish() pairs them back into ranges.
class ElementLifter {
 public:
  /// `set` gives the key layout; it must outlive the lifter.
  explicit ElementLifter(const Set& set) : set_(set) {}
  /// Takes the elements libnftnl parsed into `parsed` (nftnl_set_elems_nlmsg_parse).
  void add(nftnl_set* parsed);
  /// The elements, sorted by key.
  std::vector<Element> finish();

 private:
  struct Marker {
    Key key;
    bool end;
    size_t elem;  ///< index into elems_ (start markers)
  };
  const Set& set_;
  std::vector<Element> elems_;
  std::vector<Marker> markers_;
};
/// The set's comment (NFTNL_UDATA_SET_COMMENT of its userdata), empty when it has none.
std::string lift_set_comment(const nftnl_set* s);
/// One rule, in canonical form.
Rule lift_rule(TableFamily f, nftnl_rule* r);
/// A named counter; throws Error(kNetlink) for other object types.
NamedCounter lift_counter(nftnl_obj* o);

}  // namespace knit::nft
