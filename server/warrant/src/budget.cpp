#include "probity/warrant/budget.h"

#include <mutex>
#include <utility>

#include "absl/container/flat_hash_map.h"

namespace probity::warrant {

// Counts live in memory only: the server rebuilds them from the ledger at start (Restore), so
// the ledger is the one durable record of what a warrant has spent. Keyed by (issuer, jti):
// two issuers may well pick the same jti, and neither may spend the other's budget.
struct BudgetTracker::Impl {
  using Key = std::pair<std::string, std::string>;
  static Key KeyOf(const WarrantId& warrant) { return {warrant.issuer, warrant.jti}; }

  mutable std::mutex mutex;
  absl::flat_hash_map<Key, int64_t> used;
};

BudgetTracker::BudgetTracker() : impl_(std::make_unique<Impl>()) {}
BudgetTracker::~BudgetTracker() = default;

void BudgetTracker::Restore(const WarrantId& warrant, int64_t used) {
  std::lock_guard lock(impl_->mutex);
  impl_->used[Impl::KeyOf(warrant)] = used < 0 ? 0 : used;
}

bool BudgetTracker::TryReserve(const WarrantId& warrant, int64_t n, int64_t max) {
  if (n < 0) return false;
  std::lock_guard lock(impl_->mutex);
  int64_t& used = impl_->used[Impl::KeyOf(warrant)];
  // Written as a subtraction so that a huge n cannot overflow past max.
  if (used > max || n > max - used) return false;
  used += n;
  return true;
}

void BudgetTracker::Release(const WarrantId& warrant, int64_t n) {
  if (n <= 0) return;
  std::lock_guard lock(impl_->mutex);
  auto it = impl_->used.find(Impl::KeyOf(warrant));
  if (it == impl_->used.end()) return;
  it->second = it->second > n ? it->second - n : 0;
}

int64_t BudgetTracker::Used(const WarrantId& warrant) const {
  std::lock_guard lock(impl_->mutex);
  auto it = impl_->used.find(Impl::KeyOf(warrant));
  return it == impl_->used.end() ? 0 : it->second;
}

}  // namespace probity::warrant
