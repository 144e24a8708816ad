#include "probity/service/audit_log.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"

namespace probity::service {

int64_t NowMicros() { return absl::ToUnixMicros(absl::Now()); }

AuditLog::AuditLog(ledger::Ledger& ledger, double refusals_per_second)
    : ledger_(ledger),
      refusals_per_second_(refusals_per_second),
      burst_(std::max(1.0, refusals_per_second * 5)),
      tokens_(burst_),
      last_refill_(absl::Now()) {}

absl::StatusOr<ledger::Receipt> AuditLog::Append(const v1::LedgerEntry& entry) {
  return ledger_.Append(entry);
}

bool AuditLog::TakeRefusalToken() {
  std::lock_guard lock(bucket_mutex_);
  const absl::Time now = absl::Now();
  tokens_ =
      std::min(burst_, tokens_ + absl::ToDoubleSeconds(now - last_refill_) * refusals_per_second_);
  last_refill_ = now;
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

absl::StatusOr<std::optional<ledger::Receipt>> AuditLog::AppendRefusal(v1::LedgerEntry entry) {
  if (!TakeRefusalToken()) {
    refusals_not_recorded_.fetch_add(1);
    unreported_drops_.fetch_add(1);
    return std::nullopt;
  }
  const uint64_t dropped = unreported_drops_.exchange(0);
  if (dropped > 0) {
    entry.mutable_refusal()->set_message(
        absl::StrCat(entry.refusal().message(), " [", dropped,
                     " earlier refusals not recorded: over the refusal rate limit]"));
  }
  auto receipt = ledger_.Append(entry);
  if (!receipt.ok()) {
    unreported_drops_.fetch_add(dropped + 1);
    return receipt.status();
  }
  return std::optional<ledger::Receipt>(*receipt);
}

absl::Status AuditLog::RestoreBudgets(warrant::BudgetTracker& budgets) const {
  std::map<std::string, int64_t> used;
  const uint64_t size = ledger_.Size();
  for (uint64_t index = 0; index < size; ++index) {
    auto bytes = ledger_.ReadEntry(index);
    if (!bytes.ok()) return bytes.status();
    v1::LedgerEntry entry;
    if (!entry.ParseFromString(*bytes)) {
      return absl::DataLossError(absl::StrCat("ledger entry ", index, " does not parse"));
    }
    if (entry.kind() == v1::ENTRY_KIND_SEARCH && !entry.warrant_id().empty()) {
      used[entry.warrant_id()] += entry.query_count();
    }
  }
  for (const auto& [jti, count] : used) budgets.Restore(jti, count);
  return absl::OkStatus();
}

}  // namespace probity::service
