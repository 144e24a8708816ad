#include "probity/service/audit_log.h"

#include <limits>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"

namespace probity::service {

int64_t NowMicros() { return absl::ToUnixMicros(absl::Now()); }

AuditLog::AuditLog(ledger::Ledger& ledger, RefusalLimits limits, RefusalLimiter::Clock clock)
    : ledger_(ledger), limiter_(limits, std::move(clock)) {}

absl::StatusOr<ledger::Receipt> AuditLog::Append(const v1::LedgerEntry& entry) {
  return ledger_.Append(entry);
}

absl::StatusOr<std::optional<ledger::Receipt>> AuditLog::AppendRefusal(
    v1::LedgerEntry entry, const RefusalSource& source) {
  if (!source.warrant_verified && !limiter_.TryTake(source.caller)) {
    refusals_not_recorded_.fetch_add(1);
    unreported_rate_limited_.fetch_add(1);
    return std::nullopt;
  }
  const uint64_t rate_limited = unreported_rate_limited_.exchange(0);
  const uint64_t failed = unreported_failed_.exchange(0);
  std::string note;
  if (rate_limited > 0) {
    absl::StrAppend(&note, " [", rate_limited,
                    " earlier refusals not recorded: over the refusal rate limit]");
  }
  if (failed > 0) {
    absl::StrAppend(&note, " [", failed,
                    " earlier refusals not recorded: the ledger could not append them]");
  }
  if (!note.empty()) {
    entry.mutable_refusal()->set_message(absl::StrCat(entry.refusal().message(), note));
  }
  auto receipt = ledger_.Append(entry);
  if (!receipt.ok()) {
    unreported_rate_limited_.fetch_add(rate_limited);
    unreported_failed_.fetch_add(failed + 1);
    return receipt.status();
  }
  return std::optional<ledger::Receipt>(*receipt);
}

absl::Status AuditLog::RestoreBudgets(warrant::BudgetTracker& budgets, absl::Time since) const {
  auto read = [&](uint64_t index) -> absl::StatusOr<v1::LedgerEntry> {
    auto bytes = ledger_.ReadEntry(index);
    if (!bytes.ok()) return bytes.status();
    v1::LedgerEntry entry;
    if (!entry.ParseFromString(*bytes)) {
      return absl::DataLossError(absl::StrCat("ledger entry ", index, " does not parse"));
    }
    return entry;
  };
  // Entries are appended in time order (up to the few milliseconds a search takes between
  // stamping its entry and appending it, which the caller's margin covers), so the first entry
  // at or after `since` is found by bisection: a start reads O(log n) old entries, not all.
  const int64_t since_micros = since == absl::InfinitePast() ? std::numeric_limits<int64_t>::min()
                                                             : absl::ToUnixMicros(since);
  uint64_t begin = 0;
  uint64_t end = since == absl::InfinitePast() ? 0 : ledger_.Size();
  while (begin < end) {
    const uint64_t middle = begin + (end - begin) / 2;
    auto entry = read(middle);
    if (!entry.ok()) return entry.status();
    if (entry->time_unix_micros() < since_micros) {
      begin = middle + 1;
    } else {
      end = middle;
    }
  }
  std::map<std::pair<std::string, std::string>, int64_t> used;
  const uint64_t size = ledger_.Size();
  for (uint64_t index = begin; index < size; ++index) {
    auto entry = read(index);
    if (!entry.ok()) return entry.status();
    if (entry->kind() == v1::ENTRY_KIND_SEARCH && !entry->warrant_id().empty()) {
      used[{entry->issuer(), entry->warrant_id()}] += entry->query_count();
    }
  }
  for (const auto& [warrant, count] : used) {
    budgets.Restore(warrant::WarrantId{warrant.first, warrant.second}, count);
  }
  return absl::OkStatus();
}

}  // namespace probity::service
