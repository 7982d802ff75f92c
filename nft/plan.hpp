// nft/plan.hpp: the changes that turn the kernel's table into the desired one (pure).
//
// Elements are diffed one by one: a set whose type is unchanged is never flushed and refilled,
// so lookups never see a half-filled set and an incremental update costs one small message.
// Rules are compared per chain: a chain whose rules changed is flushed and refilled inside the
// same transaction. The order of the changes is valid for the kernel: objects are created before
// anything refers to them and deleted after the last reference is gone.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
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

struct Plan;

/// The names the kernel knows a table's sets by, where they differ from the model's.
///
/// nf_tables finds a set by name with a walk of the table's list of sets that measures every
/// name it passes (strlen) and compares it: creating a set walks the whole list, and so does
/// every rule that names a set and every element change. With thousands of sets most of a full
/// sync's kernel time, and much of a pod event's, is these walks, and their cost grows with the
/// names' length. So the agent gives the kernel short names: plan() names each new set "_"
/// and a base-36 number (the model's names never begin with '_'), lower() puts the model's name
/// in the set's comment (where `nft list` shows it), and read_table() gives the model's names
/// back. A set without an entry here goes by its model name (short names, other tables, sets
/// of older versions, kept until they change).
class SetNames {
 public:
  /// The kernel name of model set `name`, or nullopt when it goes by its model name.
  std::optional<std::string> find(const std::string& name) const;
  /// Whether some set of the table goes by kernel name `kernel` through an entry here.
  bool in_use(const std::string& kernel) const;
  /// Records that model set `model` is kernel set `kernel` (a short name; others are ignored).
  void add(const std::string& model, const std::string& kernel);
  /// Records what committed plan `p` changed: its new sets' names, its deleted sets gone.
  void commit(const Plan& p);
  void clear();
  size_t size() const noexcept { return kernel_.size(); }
  /// Where plan() starts looking for a free short name.
  uint32_t cursor() const noexcept { return cursor_; }

  /// Longest model name a set comment holds (nft's NFTNL_UDATA_COMMENT_MAXLEN, less the NUL);
  /// a set with a longer name keeps it as its kernel name.
  static constexpr size_t kMaxModelName = 127;
  /// Names this short cost the walks little and stay as they are (the dispatch maps, `nd`).
  static constexpr size_t kKeepName = 10;
  /// How many short names there are: "_0" to "_9zldr" (2^24), handed out round.
  static constexpr uint32_t kAliases = 1u << 24;
  /// "_" and `n` in base 36; alias_number is its inverse (nullopt for other names, and for
  /// numbers from kAliases on).
  static std::string alias(uint32_t n);
  static std::optional<uint32_t> alias_number(std::string_view kernel);

 private:
  // Hashed: lower() looks a name up for every set and every rule's lookup of a full sync. The
  // agent keeps this for the life of the table: short names are kept as their numbers.
  std::unordered_map<std::string, uint32_t> kernel_;  // model name -> alias_number
  std::vector<bool> used_;                            // alias numbers in kernel_
  uint32_t cursor_ = 0;
};

/// An ordered list of changes to one table; applied as one transaction (nft/apply.hpp). Callers
/// may also build small plans by hand (e.g. one AddElements for a new pod).
struct Plan {
  Table table;
  std::vector<Change> changes;
  /// Kernel names of the table's existing sets (not owned; must outlive the plan), and those
  /// plan() gave the sets it creates. Without either, sets go by their model names.
  const SetNames* names = nullptr;
  std::unordered_map<std::string, std::string> new_names{};

  bool empty() const noexcept { return changes.empty(); }
  /// The name the kernel knows model set `name` by in this plan.
  std::string kernel_name(const std::string& name) const;
};

/// The changes from `current` to `desired`. Returns an empty plan when nothing differs. Sets
/// whose key/data type or flags changed, and constant sets whose elements changed, are deleted
/// and recreated; chains whose hook, type or priority changed likewise. A kept chain that refers
/// to a set or counter being deleted is flushed and refilled. When `current` is another table
/// than `desired`'s, everything is created.
/// With `names` (the kernel names of current's sets, see SetNames), each new set gets a short
/// kernel name, in Plan::new_names; the plan keeps the pointer.
Plan plan(const Ruleset& current, const Ruleset& desired, const SetNames* names = nullptr);
/// Same, where nullopt means the table does not exist (read_table()'s result): create it all.
Plan plan(const std::optional<Ruleset>& current, const Ruleset& desired,
          const SetNames* names = nullptr);
/// Same, but the sets it creates are moved out of `desired` instead of copied (a full sync
/// creates tens of thousands of elements; copying them doubled the agent's peak memory).
/// Afterwards those of `desired.sets` are moved-from; its chains and counters are intact.
Plan plan_moving_sets(const std::optional<Ruleset>& current, Ruleset& desired,
                      const SetNames* names = nullptr);

/// "add chain inet knit post", "add 3 elements to set inet knit pods", ...: one line per change,
/// for logs and tests.
std::string describe(const Table& t, const Change& c);

}  // namespace knit::nft
