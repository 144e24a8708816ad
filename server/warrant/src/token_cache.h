#pragma once

// A bounded least-recently-used map from token hash to a warrant whose signature and static
// claims were already checked. It never decides validity on its own: the Verifier re-checks
// time and revocation on every hit.

#include <list>
#include <mutex>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "probity/warrant/claims.h"

namespace probity::warrant::internal {

class TokenCache {
 public:
  explicit TokenCache(size_t capacity) : capacity_(capacity) {}

  std::optional<VerifiedWarrant> Find(const std::string& token_sha256) {
    std::lock_guard lock(mutex_);
    auto it = index_.find(token_sha256);
    if (it == index_.end()) return std::nullopt;
    entries_.splice(entries_.begin(), entries_, it->second);
    return it->second->second;
  }

  void Insert(const std::string& token_sha256, const VerifiedWarrant& warrant) {
    if (capacity_ == 0) return;
    std::lock_guard lock(mutex_);
    if (index_.contains(token_sha256)) return;
    entries_.emplace_front(token_sha256, warrant);
    index_.emplace(token_sha256, entries_.begin());
    if (entries_.size() > capacity_) {
      index_.erase(entries_.back().first);
      entries_.pop_back();
    }
  }

 private:
  using Entries = std::list<std::pair<std::string, VerifiedWarrant>>;
  const size_t capacity_;
  std::mutex mutex_;
  Entries entries_;  // most recently used first
  absl::flat_hash_map<std::string, Entries::iterator> index_;
};

}  // namespace probity::warrant::internal
