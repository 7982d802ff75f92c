#include "nft/plan.hpp"

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

#include "core/str.hpp"
#include "nft/render.hpp"

namespace knit::nft {

namespace {

bool same_identity(const Element& a, const Element& b) {
  return a.key == b.key && a.key_end == b.key_end;
}
bool identity_less(const Element* a, const Element* b) {
  if (a->key != b->key) return a->key < b->key;
  return a->key_end < b->key_end;
}

std::vector<const Element*> sorted(const std::vector<Element>& v) {
  std::vector<const Element*> p;
  p.reserve(v.size());
  for (const auto& e : v) p.push_back(&e);
  std::sort(p.begin(), p.end(), identity_less);
  // Duplicates in a list are one element.
  p.erase(std::unique(p.begin(), p.end(),
                      [](const Element* a, const Element* b) { return same_identity(*a, *b); }),
          p.end());
  return p;
}

/// Element-level diff. An element whose key stays but whose data, verdict or comment changes is
/// deleted and added again (the kernel cannot update an element in place).
void diff_elements(const Set& cur, const Set& des, std::vector<Element>& adds,
                   std::vector<Element>& dels) {
  if (cur.elements == des.elements) return;
  auto a = sorted(cur.elements), b = sorted(des.elements);
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (j == b.size() || (i < a.size() && identity_less(a[i], b[j]))) {
      dels.push_back(*a[i++]);
    } else if (i == a.size() || identity_less(b[j], a[i])) {
      adds.push_back(*b[j++]);
    } else {
      if (!(*a[i] == *b[j])) {
        dels.push_back(*a[i]);
        adds.push_back(*b[j]);
      }
      ++i;
      ++j;
    }
  }
}

Set spec_of(const Set& s) {
  Set out;
  out.name = s.name;
  out.key = s.key;
  out.data = s.data;
  out.interval = s.interval;
  out.constant = s.constant;
  return out;
}

bool same_rules(const std::vector<Rule>& a, const std::vector<Rule>& b, TableFamily f) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] == b[i]) continue;
    if (!(canonical(a[i], f) == canonical(b[i], f))) return false;
  }
  return true;
}

/// True when a rule of `c` names one of `sets` or `counters`.
bool refers_to(const Chain& c, const std::set<std::string>& sets,
               const std::set<std::string>& counters) {
  for (const auto& r : c.rules) {
    for (const auto& s : r.stmts) {
      if (auto* n = set_named(s); n && sets.count(*n)) return true;
      if (auto* n = std::get_if<CounterRef>(&s); n && counters.count(n->name)) return true;
    }
  }
  return false;
}

template <class T>
std::map<std::string_view, const T*> by_name(const std::vector<T>& v) {
  std::map<std::string_view, const T*> m;
  for (const auto& x : v) m.emplace(x.name, &x);
  return m;
}

/// `sets` (to be created) with the most referenced first: nf_tables resolves a rule's set by
/// walking the table's list of sets in creation order, comparing names, so a set that a
/// thousand rules name (a shared peer set) is best found at the head, not behind two thousand
/// others. Ties keep name order.
void most_referenced_first(std::vector<const Set*>& sets, const std::vector<Chain>& chains) {
  std::map<std::string_view, size_t> refs;
  for (const auto& c : chains) {
    for (const auto& r : c.rules) {
      for (const auto& s : r.stmts) {
        if (auto* n = set_named(s)) ++refs[*n];
      }
    }
  }
  // Counted once per set, not once per comparison (2,300 sets: half a million name compares).
  std::vector<std::pair<size_t, const Set*>> counted;
  counted.reserve(sets.size());
  for (const Set* s : sets) {
    auto it = refs.find(s->name);
    counted.emplace_back(it == refs.end() ? size_t{0} : it->second, s);
  }
  std::stable_sort(counted.begin(), counted.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (size_t i = 0; i < sets.size(); ++i) sets[i] = counted[i].second;
}

void add_rules(Plan& p, const Chain& c) {
  for (const auto& r : c.rules) p.changes.push_back(AddRule{c.name, r});
}

/// Gives each set of `sets` a short kernel name (SetNames) in p.new_names that no set of the
/// table has: not one in `names`, not one given before it, and not the model name of a set in
/// `cur` or `des` (sets without an entry go by it).
void name_new_sets(Plan& p, const std::vector<const Set*>& sets, const SetNames& names,
                   const Ruleset* cur, const Ruleset& des) {
  uint32_t n = names.cursor();
  std::set<std::string_view> own;  // model names that look like short names (none of knit's)
  for (const auto* rs : {cur, &des}) {
    if (rs == nullptr) continue;
    for (const auto& s : rs->sets)
      if (!s.name.empty() && s.name[0] == '_') own.insert(s.name);
  }
  auto taken = [&](const std::string& k) { return names.in_use(k) || own.count(k) != 0; };
  for (const Set* s : sets) {
    if (s->name.size() <= SetNames::kKeepName || s->name.size() > SetNames::kMaxModelName) {
      continue;
    }
    auto next = [&] {
      std::string k = SetNames::alias(n);
      n = (n + 1) % SetNames::kAliases;
      return k;
    };
    std::string k = next();
    while (taken(k)) k = next();
    p.new_names.emplace(s->name, std::move(k));
  }
}

/// AddSet for `s`, one of `des.sets`: moved out of `owned` when the caller gave the sets up
/// (`owned` is then `des.sets` itself), copied otherwise.
Change add_set(const Set* s, const Ruleset& des, std::vector<Set>* owned) {
  if (owned == nullptr) return AddSet{*s};
  return AddSet{std::move((*owned)[static_cast<size_t>(s - des.sets.data())])};
}

Plan create_all(const Ruleset& des, const SetNames* names, std::vector<Set>* owned) {
  Plan p{des.table, {}};
  p.changes.push_back(AddTable{});
  auto chains = by_name(des.chains);
  for (auto& [n, c] : chains) p.changes.push_back(AddChain{c->name, c->base});
  for (auto& [n, c] : by_name(des.counters)) p.changes.push_back(AddCounter{c->name});
  std::vector<const Set*> sets;
  for (auto& [n, s] : by_name(des.sets)) sets.push_back(s);
  most_referenced_first(sets, des.chains);
  // The table is new: no name is in use but those given here.
  if (names != nullptr) name_new_sets(p, sets, SetNames{}, nullptr, des);
  for (const auto* s : sets) p.changes.push_back(add_set(s, des, owned));
  for (auto& [n, c] : chains) add_rules(p, *c);
  return p;
}

}  // namespace

std::optional<std::string> SetNames::find(const std::string& name) const {
  auto it = kernel_.find(name);
  if (it == kernel_.end()) return std::nullopt;
  return alias(it->second);
}

bool SetNames::in_use(const std::string& kernel) const {
  auto n = alias_number(kernel);
  return n && *n < used_.size() && used_[*n];
}

void SetNames::add(const std::string& model, const std::string& kernel) {
  auto n = alias_number(kernel);
  if (!n) return;
  if (auto it = kernel_.find(model); it != kernel_.end()) used_[it->second] = false;
  kernel_[model] = *n;
  if (*n >= used_.size()) used_.resize(*n + 1);
  used_[*n] = true;
  if (*n >= cursor_) cursor_ = (*n + 1) % kAliases;
}

void SetNames::commit(const Plan& p) {
  for (const auto& c : p.changes) {
    if (auto* d = std::get_if<DeleteSet>(&c)) {
      if (auto it = kernel_.find(d->name); it != kernel_.end()) {
        used_[it->second] = false;
        kernel_.erase(it);
      }
    }
  }
  for (const auto& [model, kernel] : p.new_names) add(model, kernel);
}

void SetNames::clear() {
  kernel_.clear();
  used_.clear();
  cursor_ = 0;
}

std::string SetNames::alias(uint32_t n) {
  char digits[8];
  size_t len = 0;
  do {
    digits[len++] = "0123456789abcdefghijklmnopqrstuvwxyz"[n % 36];
    n /= 36;
  } while (n != 0);
  std::string out = "_";
  while (len > 0) out += digits[--len];
  return out;
}

std::optional<uint32_t> SetNames::alias_number(std::string_view k) {
  if (k.size() < 2 || k.size() > 8 || k[0] != '_' || (k[1] == '0' && k.size() > 2)) {
    return std::nullopt;
  }
  uint64_t n = 0;
  for (char c : k.substr(1)) {
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'z' ? c - 'a' + 10 : -1;
    if (d < 0) return std::nullopt;
    n = n * 36 + static_cast<uint64_t>(d);
  }
  if (n >= kAliases) return std::nullopt;
  return static_cast<uint32_t>(n);
}

std::string Plan::kernel_name(const std::string& name) const {
  if (auto it = new_names.find(name); it != new_names.end()) return it->second;
  if (names != nullptr) {
    if (auto k = names->find(name)) return std::move(*k);
  }
  return name;
}

namespace {

/// plan(): with `owned` (`des.sets` itself, given up by the caller), new sets are moved into the
/// plan instead of copied.
Plan plan_of(const Ruleset& cur, const Ruleset& des, const SetNames* names,
             std::vector<Set>* owned) {
  if (!(cur.table == des.table)) return create_all(des, names, owned);
  const TableFamily fam = des.table.family;
  Plan p{des.table, {}};

  // Sets: new, recreated (type changed), removed, or kept with element diffs.
  auto cur_sets = by_name(cur.sets), des_sets = by_name(des.sets);
  std::vector<const Set*> new_sets;
  std::vector<Change> elem_dels, elem_adds;
  std::set<std::string> gone_sets;
  for (auto& [name, d] : des_sets) {
    auto it = cur_sets.find(name);
    if (it == cur_sets.end()) {
      new_sets.push_back(d);
      continue;
    }
    const Set& c = *it->second;
    std::vector<Element> adds, dels;
    if (c.same_type(*d)) diff_elements(c, *d, adds, dels);
    // The kernel refuses element changes in a constant set: it is recreated instead.
    if (!c.same_type(*d) || (d->constant && (!adds.empty() || !dels.empty()))) {
      gone_sets.insert(d->name);
      new_sets.push_back(d);
      continue;
    }
    if (!dels.empty()) {
      Set s = spec_of(*d);
      s.elements = std::move(dels);
      elem_dels.push_back(DeleteElements{std::move(s)});
    }
    if (!adds.empty()) {
      Set s = spec_of(*d);
      s.elements = std::move(adds);
      elem_adds.push_back(AddElements{std::move(s)});
    }
  }
  for (auto& [name, c] : cur_sets)
    if (!des_sets.count(name)) gone_sets.emplace(name);
  most_referenced_first(new_sets, des.chains);
  p.names = names;
  if (names != nullptr) name_new_sets(p, new_sets, *names, &cur, des);

  // Counters.
  auto cur_ctrs = by_name(cur.counters), des_ctrs = by_name(des.counters);
  std::set<std::string> gone_ctrs;
  for (auto& [name, c] : cur_ctrs)
    if (!des_ctrs.count(name)) gone_ctrs.emplace(name);

  // Chains: new, recreated (hook/type/priority changed), rewritten (rules changed or they refer
  // to something deleted), removed.
  auto cur_chains = by_name(cur.chains), des_chains = by_name(des.chains);
  std::vector<const Chain*> new_chains, recreated, rewritten;
  std::vector<UpdateChain> updates;
  for (auto& [name, d] : des_chains) {
    auto it = cur_chains.find(name);
    if (it == cur_chains.end()) {
      new_chains.push_back(d);
      continue;
    }
    const Chain& c = *it->second;
    if (c.base.has_value() != d->base.has_value() ||
        (c.base && (c.base->type != d->base->type || c.base->hook != d->base->hook ||
                    c.base->priority != d->base->priority))) {
      recreated.push_back(d);
      continue;
    }
    if (c.base && c.base->policy != d->base->policy) updates.push_back({d->name, *d->base});
    if (!same_rules(c.rules, d->rules, fam) || refers_to(c, gone_sets, gone_ctrs)) {
      rewritten.push_back(d);
    }
  }
  std::vector<std::string> removed_chains;
  for (auto& [name, c] : cur_chains)
    if (!des_chains.count(name)) removed_chains.emplace_back(name);

  // 1. New chains first: rules and verdict-map elements added below may jump to them.
  for (const auto* c : new_chains) p.changes.push_back(AddChain{c->name, c->base});
  for (auto& u : updates) p.changes.push_back(std::move(u));
  for (auto& [name, c] : des_ctrs)
    if (!cur_ctrs.count(name)) p.changes.push_back(AddCounter{c->name});
  // 2. Drop references: flush chains being rewritten, recreated or removed, and delete
  //    elements (verdict-map elements may jump to chains removed next).
  for (const auto* c : rewritten) p.changes.push_back(FlushChain{c->name});
  for (const auto* c : recreated) p.changes.push_back(FlushChain{c->name});
  for (const auto& n : removed_chains) p.changes.push_back(FlushChain{n});
  for (auto& c : elem_dels) p.changes.push_back(std::move(c));
  // 3. Delete what is no longer referenced.
  for (const auto* c : recreated) p.changes.push_back(DeleteChain{c->name});
  for (const auto& n : removed_chains) p.changes.push_back(DeleteChain{n});
  for (const auto& n : gone_sets) p.changes.push_back(DeleteSet{n});
  for (const auto& n : gone_ctrs) p.changes.push_back(DeleteCounter{n});
  // 4. Create and fill.
  for (const auto* c : recreated) p.changes.push_back(AddChain{c->name, c->base});
  for (const auto* s : new_sets) p.changes.push_back(add_set(s, des, owned));
  for (auto& c : elem_adds) p.changes.push_back(std::move(c));
  // 5. Rules last: everything they refer to exists now. Chains in name order.
  std::vector<const Chain*> fill;
  fill.insert(fill.end(), new_chains.begin(), new_chains.end());
  fill.insert(fill.end(), recreated.begin(), recreated.end());
  fill.insert(fill.end(), rewritten.begin(), rewritten.end());
  std::sort(fill.begin(), fill.end(), [](auto* a, auto* b) { return a->name < b->name; });
  for (const auto* c : fill) add_rules(p, *c);
  return p;
}

}  // namespace

Plan plan(const Ruleset& cur, const Ruleset& des, const SetNames* names) {
  return plan_of(cur, des, names, nullptr);
}

Plan plan(const std::optional<Ruleset>& current, const Ruleset& des, const SetNames* names) {
  return current ? plan_of(*current, des, names, nullptr) : create_all(des, names, nullptr);
}

Plan plan_moving_sets(const std::optional<Ruleset>& current, Ruleset& des, const SetNames* names) {
  return current ? plan_of(*current, des, names, &des.sets) : create_all(des, names, &des.sets);
}

std::string describe(const Table& t, const Change& c) {
  std::string tbl = str(family_name(t.family), ' ', t.name);
  struct V {
    const std::string& tbl;
    TableFamily fam;
    std::string elems(const char* verb, const char* prep, const Set& s) const {
      if (s.elements.size() == 1) {
        return str(verb, " element ", render_element(s, s.elements[0]), ' ', prep, " set ", tbl,
                   ' ', s.name);
      }
      return str(verb, ' ', s.elements.size(), " elements ", prep, " set ", tbl, ' ', s.name);
    }
    std::string operator()(const AddTable&) const { return str("add table ", tbl); }
    std::string operator()(const AddChain& a) const { return str("add chain ", tbl, ' ', a.name); }
    std::string operator()(const UpdateChain& a) const {
      return str("set policy of chain ", tbl, ' ', a.name);
    }
    std::string operator()(const FlushChain& a) const {
      return str("flush chain ", tbl, ' ', a.name);
    }
    std::string operator()(const DeleteChain& a) const {
      return str("delete chain ", tbl, ' ', a.name);
    }
    std::string operator()(const AddCounter& a) const {
      return str("add counter ", tbl, ' ', a.name);
    }
    std::string operator()(const DeleteCounter& a) const {
      return str("delete counter ", tbl, ' ', a.name);
    }
    std::string operator()(const AddSet& a) const {
      return str("add ", a.set.is_map() ? "map " : "set ", tbl, ' ', a.set.name);
    }
    std::string operator()(const DeleteSet& a) const {
      return str("delete set ", tbl, ' ', a.name);
    }
    std::string operator()(const AddElements& a) const { return elems("add", "to", a.set); }
    std::string operator()(const DeleteElements& a) const { return elems("delete", "from", a.set); }
    std::string operator()(const AddRule& a) const {
      constexpr size_t kMaxText = 160;
      std::string text = render_rule(a.rule, fam);
      if (text.size() > kMaxText) text = text.substr(0, kMaxText) + "...";
      return str("add rule to chain ", tbl, ' ', a.chain, " (", text, ')');
    }
  };
  return std::visit(V{tbl, t.family}, c);
}

}  // namespace knit::nft
