// nft/render.hpp: canonical text of a ruleset, close to `nft list` syntax (and accepted by
// `nft -f`). Counters, sets and chains are sorted by name and set elements by key, so that the
// same ruleset always renders the same text; rule order is kept. Golden files compare this text.
#pragma once

#include <string>

#include "nft/nft_types.hpp"

namespace knit::nft {

/// The whole table, e.g. "table inet knit {\n\tset pods {\n ...". Rules render canonically
/// (see canonical()); Raw statements render as `__raw "..."`, which nft rejects on purpose.
std::string render(const Ruleset& rs);
/// One rule on one line, without indentation.
std::string render_rule(const Rule& r, TableFamily f);
/// One statement.
std::string render_stmt(const Stmt& s, TableFamily f);
/// One element of `set` as in an `elements = { ... }` list ("10.0.0.0/8 . tcp . 80-90").
std::string render_element(const Set& set, const Element& e);
/// One value of type `t` ("10.0.0.1", "tcp", "0x00000010", "established,related", "\"eth0\"").
std::string render_value(Type t, const Value& v);
std::string render_verdict(const Verdict& v);
/// Chain priority as nft prints it: "srcnat - 5", "filter", "42".
std::string render_priority(Hook hook, int32_t prio);
std::string_view hook_name(Hook h);

}  // namespace knit::nft
