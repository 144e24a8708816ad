#include <mutex>

#include "absl/container/flat_hash_map.h"
#include "probity/warrant/warrant.h"

namespace probity::warrant {

// Counts live in memory only: the server rebuilds them from the ledger at start (Restore), so
// the ledger is the one durable record of what a warrant has spent.
struct BudgetTracker::Impl {
  mutable std::mutex mutex;
  absl::flat_hash_map<std::string, int64_t> used;
};

BudgetTracker::BudgetTracker() : impl_(std::make_unique<Impl>()) {}
BudgetTracker::~BudgetTracker() = default;

void BudgetTracker::Restore(const std::string& jti, int64_t used) {
  std::lock_guard lock(impl_->mutex);
  impl_->used[jti] = used < 0 ? 0 : used;
}

bool BudgetTracker::TryReserve(const std::string& jti, int64_t n, int64_t max) {
  if (n < 0) return false;
  std::lock_guard lock(impl_->mutex);
  int64_t& used = impl_->used[jti];
  // Written as a subtraction so that a huge n cannot overflow past max.
  if (used > max || n > max - used) return false;
  used += n;
  return true;
}

void BudgetTracker::Release(const std::string& jti, int64_t n) {
  if (n <= 0) return;
  std::lock_guard lock(impl_->mutex);
  auto it = impl_->used.find(jti);
  if (it == impl_->used.end()) return;
  it->second = it->second > n ? it->second - n : 0;
}

int64_t BudgetTracker::Used(const std::string& jti) const {
  std::lock_guard lock(impl_->mutex);
  auto it = impl_->used.find(jti);
  return it == impl_->used.end() ? 0 : it->second;
}

}  // namespace probity::warrant
