#include "watcher/claims.hpp"

#include <algorithm>

namespace knit::watcher {

namespace {
bool has(const std::vector<IpAddr>& ips, const IpAddr& ip) {
  return std::find(ips.begin(), ips.end(), ip) != ips.end();
}
}  // namespace

std::vector<AddressClaims::Loss> AddressClaims::report(const std::string& key,
                                                       const std::vector<IpAddr>& ips,
                                                       uint64_t rv) {
  std::vector<Loss> lost;
  auto self = pods_.try_emplace(key).first;
  const std::vector<IpAddr>& before = self->second.ips;
  for (const auto& ip : before) {
    if (has(ips, ip)) continue;
    if (auto h = holder_.find(ip); h != holder_.end() && h->second == self) holder_.erase(h);
  }
  for (const auto& ip : ips) {
    auto [h, unheld] = holder_.try_emplace(ip, self);
    if (unheld || h->second == self) continue;
    // Held by another pod, which still reports it (a holder's entry always lists what it
    // holds). A first report of the address takes it, unless both pods are reporting for the
    // first time (start-up) and the other one is newer.
    auto other = h->second;
    bool fresh = !has(before, ip);
    if (fresh && !(before.empty() && other->second.rv > rv)) {
      lost.push_back({other->first, ip, key});
      h->second = self;
    } else {
      lost.push_back({key, ip, other->first});
    }
  }
  self->second.ips = ips;
  self->second.rv = rv;
  return lost;
}

void AddressClaims::release(std::string_view key) {
  auto it = pods_.find(key);
  if (it == pods_.end()) return;
  for (const auto& ip : it->second.ips) {
    if (auto h = holder_.find(ip); h != holder_.end() && h->second == it) holder_.erase(h);
  }
  pods_.erase(it);
}

const std::string* AddressClaims::holder(const IpAddr& ip) const {
  auto h = holder_.find(ip);
  return h == holder_.end() ? nullptr : &h->second->first;
}

}  // namespace knit::watcher
