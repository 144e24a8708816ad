#pragma once

// The service's side of the ledger: appends search, refusal and admin entries, limits the
// refusal entries of callers without a verified warrant per caller and in total (see
// RefusalLimiter) so that a flood of bad requests cannot flood the log, and rebuilds warrant
// budgets from the log at start so that a restart never refunds a budget.

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "probity/ledger/ledger.h"
#include "probity/service/refusal_limiter.h"
#include "probity/v1/ledger_entry.pb.h"
#include "probity/warrant/warrant.h"

namespace probity::service {

// Whose refusal: the caller it is counted against (CallerKey) and whether a warrant verified.
struct RefusalSource {
  std::string caller;
  bool warrant_verified = false;
};

class AuditLog {
 public:
  AuditLog(
      ledger::Ledger& ledger, RefusalLimits limits,
      RefusalLimiter::Clock clock = [] { return absl::Now(); });
  // One rate for all refusals together and for each caller alone.
  AuditLog(ledger::Ledger& ledger, double refusals_per_second)
      : AuditLog(ledger, RefusalLimits{refusals_per_second, refusals_per_second}) {}

  // Durable before it returns; an error means the entry is not in the log.
  absl::StatusOr<ledger::Receipt> Append(const v1::LedgerEntry& entry);

  // Always appends the refusal of a verified warrant. Otherwise nullopt when the caller's or
  // the total refusal budget is spent: the refusal is counted (refusals_not_recorded), and the
  // next refusal recorded says how many were left out, and why (the rate limit, or a failed
  // append).
  absl::StatusOr<std::optional<ledger::Receipt>> AppendRefusal(v1::LedgerEntry entry,
                                                               const RefusalSource& source);

  // Charges every search entry's query_count to its warrant (issuer, warrant id), reading only
  // the entries stamped at or after `since`: a warrant that is still valid cannot have searched
  // earlier than its maximum lifetime ago, so the server passes now minus that lifetime, the
  // clock skew and a day's margin, and a start does not read the whole log.
  absl::Status RestoreBudgets(warrant::BudgetTracker& budgets,
                              absl::Time since = absl::InfinitePast()) const;

  ledger::Ledger& ledger() { return ledger_; }
  uint64_t refusals_not_recorded() const { return refusals_not_recorded_.load(); }
  const RefusalLimiter& limiter() const { return limiter_; }

 private:
  ledger::Ledger& ledger_;
  RefusalLimiter limiter_;
  std::atomic<uint64_t> refusals_not_recorded_{0};  // over a rate limit, since start
  // Not yet reported in a recorded refusal: left out by the rate limits, lost to a failed append.
  std::atomic<uint64_t> unreported_rate_limited_{0};
  std::atomic<uint64_t> unreported_failed_{0};
};

int64_t NowMicros();

}  // namespace probity::service
