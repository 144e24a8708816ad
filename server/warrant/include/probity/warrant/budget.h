#pragma once

// Each warrant's query budget: what it has used, reserved before a search and given back when
// the search never ran.

#include <cstdint>
#include <memory>

#include "probity/warrant/claims.h"

namespace probity::warrant {

// Per-warrant query budget, kept per (issuer, jti). Counts are rebuilt at start from the ledger
// (Restore) so that a restart never refunds a budget. Thread-safe.
class BudgetTracker {
 public:
  BudgetTracker();
  ~BudgetTracker();
  void Restore(const WarrantId& warrant, int64_t used);
  // Reserves n queries against max; refuses (and reserves nothing) when it would exceed max.
  bool TryReserve(const WarrantId& warrant, int64_t n, int64_t max);
  // Gives back a reservation whose search never ran (e.g. the ledger append failed).
  void Release(const WarrantId& warrant, int64_t n);
  int64_t Used(const WarrantId& warrant) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace probity::warrant
