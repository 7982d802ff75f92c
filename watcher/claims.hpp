// watcher/claims.hpp: which pod an address belongs to when the API shows it on two pods.
//
// A pod address is reused once the pod that had it is gone from its node, but the API may still
// show the old pod with that address for a while (terminating, or its delete not yet seen). The
// newest claim wins: an address a pod reports for the first time is taken from whichever pod
// held it, and a pod that keeps reporting an address it lost does not take it back. So a new pod
// never inherits the rules its address had under the old pod. Claims seen together at start-up
// (two first reports) go to the pod with the newer resourceVersion.
//
// Pure bookkeeping: the agent reports each changed API pod and removes the lost addresses from
// its view of the losers, so that the compiler sees every address on one pod only.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/ip.hpp"

namespace knit::watcher {

class AddressClaims {
 public:
  /// An address a pod reports but does not hold: `holder` has it.
  struct Loss {
    std::string pod;
    IpAddr ip;
    std::string holder;
    friend bool operator==(const Loss&, const Loss&) = default;
  };

  /// Pod `key` reports `ips` (as the API shows them; none for a hostNetwork pod) at
  /// resourceVersion `rv` (its number; 0 when it is not one). Returns the addresses that some
  /// pod, `key` or another, reports but no longer holds after this report. Pods gone in the same
  /// batch of changes must be released first: a pod that still has an entry is taken to be
  /// there and to hold what it last reported.
  std::vector<Loss> report(const std::string& key, const std::vector<IpAddr>& ips, uint64_t rv);
  /// Pod `key` is gone: the addresses it holds are free.
  void release(std::string_view key);
  /// The pod that holds `ip` (nullptr when none).
  const std::string* holder(const IpAddr& ip) const;

 private:
  struct Reported {
    std::vector<IpAddr> ips;
    uint64_t rv = 0;
  };
  using Pods = std::map<std::string, Reported, std::less<>>;
  Pods pods_;
  /// An address's holder is its entry in pods_, whose ips include the address as long as it
  /// holds it; so a pod's entry is erased only with the addresses it holds.
  std::map<IpAddr, Pods::iterator> holder_;
};

}  // namespace knit::watcher
