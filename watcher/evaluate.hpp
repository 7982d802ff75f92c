// watcher/evaluate.hpp: what the committed table decides for a new flow (pure).
//
// An interpreter for the shapes compile() produces: the dispatch maps, the namespace chains and
// lookups in the policies' sets, read from the reconciler's record of what it committed. The
// agent uses it to find the conntrack entries a change no longer allows; it answers "what would
// the kernel now do with the first packet of this flow", which is exactly the question
// revocation asks.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>

#include "core/ip.hpp"
#include "watcher/reconciler.hpp"

namespace knit::watcher {

struct Flow {
  IpAddr src;  ///< before SNAT
  IpAddr dst;  ///< after DNAT
  uint8_t proto = 6;
  uint16_t dport = 0;
};

class Evaluator {
 public:
  /// `rec` must outlive the evaluator. `node_addrs` are the node's own addresses (traffic from
  /// them is always allowed; traffic to them is judged only by the source's egress).
  Evaluator(const Reconciler& rec, std::set<IpAddr> node_addrs);

  /// True when the table accepts the first packet of `flow`.
  bool allows(const Flow& flow) const;
  /// True when `flow` has a local isolated pod at either end (anything else is never judged).
  bool relevant(const Flow& flow) const;

 private:
  bool chain_allows(const std::string& chain, const Flow& f, bool egress) const;
  bool lookup(const nft::Lookup& l, const Flow& f) const;
  std::optional<std::string> dispatch(const char* map, const IpAddr& a) const;

  const Reconciler& rec_;
  std::set<IpAddr> node_addrs_;
};

}  // namespace knit::watcher
