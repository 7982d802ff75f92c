// nft/plan.hpp: the changes that turn the kernel's table into the desired one (pure).
//
// Elements are diffed one by one: a set whose type is unchanged is never flushed and refilled,
// so lookups never see a half-filled set and an incremental update costs one small message.
// Rules are compared per chain: a chain whose rules changed is flushed and refilled inside the
// same transaction. The order of the changes is valid for the kernel: objects are created before
// anything refers to them and deleted after the last reference is gone.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "nft/nft_types.hpp"

namespace knit::nft {

struct AddTable {
  friend bool operator==(const AddTable&, const AddTable&) = default;
};
/// Creates an empty chain.
struct AddChain {
  std::string name;
  std::optional<BaseChain> base;
  friend bool operator==(const AddChain&, const AddChain&) = default;
};
/// Changes the policy of an existing base chain (hook, type and priority stay).
struct UpdateChain {
  std::string name;
  BaseChain base;
  friend bool operator==(const UpdateChain&, const UpdateChain&) = default;
};
/// Deletes every rule of the chain.
struct FlushChain {
  std::string name;
  friend bool operator==(const FlushChain&, const FlushChain&) = default;
};
struct DeleteChain {
  std::string name;
  friend bool operator==(const DeleteChain&, const DeleteChain&) = default;
};
struct AddCounter {
  std::string name;
  friend bool operator==(const AddCounter&, const AddCounter&) = default;
};
struct DeleteCounter {
  std::string name;
  friend bool operator==(const DeleteCounter&, const DeleteCounter&) = default;
};
/// Creates the set and fills it with set.elements.
struct AddSet {
  Set set;
  friend bool operator==(const AddSet&, const AddSet&) = default;
};
struct DeleteSet {
  std::string name;
  friend bool operator==(const DeleteSet&, const DeleteSet&) = default;
};
/// Adds set.elements to the existing set (set carries the type needed to encode them).
struct AddElements {
  Set set;
  friend bool operator==(const AddElements&, const AddElements&) = default;
};
/// Deletes set.elements from the existing set.
struct DeleteElements {
  Set set;
  friend bool operator==(const DeleteElements&, const DeleteElements&) = default;
};
/// Appends the rule to the chain.
struct AddRule {
  std::string chain;
  Rule rule;
  friend bool operator==(const AddRule&, const AddRule&) = default;
};

using Change = std::variant<AddTable, AddChain, UpdateChain, FlushChain, DeleteChain, AddCounter,
                            DeleteCounter, AddSet, DeleteSet, AddElements, DeleteElements, AddRule>;

/// An ordered list of changes to one table; applied as one transaction (nft/apply.hpp). Callers
/// may also build small plans by hand (e.g. one AddElements for a new pod).
struct Plan {
  Table table;
  std::vector<Change> changes;
  bool empty() const noexcept { return changes.empty(); }
};

/// The changes from `current` to `desired`. Returns an empty plan when nothing differs. Sets
/// whose key/data type or flags changed, and constant sets whose elements changed, are deleted
/// and recreated; chains whose hook, type or priority changed likewise. A kept chain that refers
/// to a set or counter being deleted is flushed and refilled. When `current` is another table
/// than `desired`'s, everything is created.
Plan plan(const Ruleset& current, const Ruleset& desired);
/// Same, where nullopt means the table does not exist (read_table()'s result): create it all.
Plan plan(const std::optional<Ruleset>& current, const Ruleset& desired);

/// "add chain inet knit post", "add 3 elements to set inet knit pods", ...: one line per change,
/// for logs and tests.
std::string describe(const Table& t, const Change& c);

}  // namespace knit::nft
