#pragma once

// The service's side of the ledger: appends search, refusal and admin entries, rate-limits
// refusal entries so that a flood of bad tokens cannot flood the log, and rebuilds warrant
// budgets from the log at start so that a restart never refunds a budget.

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "probity/ledger/ledger.h"
#include "probity/v1/ledger_entry.pb.h"
#include "probity/warrant/warrant.h"

namespace probity::service {

class AuditLog {
 public:
  AuditLog(ledger::Ledger& ledger, double refusals_per_second);

  // Durable before it returns; an error means the entry is not in the log.
  absl::StatusOr<ledger::Receipt> Append(const v1::LedgerEntry& entry);

  // nullopt when the entry was dropped by the rate limit (counted, and the count of dropped
  // refusals is written into the next refusal that is recorded).
  absl::StatusOr<std::optional<ledger::Receipt>> AppendRefusal(v1::LedgerEntry entry);

  // Charges every search entry's query_count to its warrant id.
  absl::Status RestoreBudgets(warrant::BudgetTracker& budgets) const;

  ledger::Ledger& ledger() { return ledger_; }
  uint64_t refusals_not_recorded() const { return refusals_not_recorded_.load(); }

 private:
  bool TakeRefusalToken();

  ledger::Ledger& ledger_;
  double refusals_per_second_;
  double burst_;
  std::mutex bucket_mutex_;
  double tokens_;
  absl::Time last_refill_;
  std::atomic<uint64_t> refusals_not_recorded_{0};
  std::atomic<uint64_t> unreported_drops_{0};
};

int64_t NowMicros();

}  // namespace probity::service
