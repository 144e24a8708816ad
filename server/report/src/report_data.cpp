#include "report_data.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "probity/ledger/merkle.h"

namespace probity::report::internal {
namespace {

constexpr size_t kMaxRefusalCodes = 64;  // codes are the server's, but an old log may differ
constexpr int64_t kMicrosPerHour = int64_t{3600} * 1000000;

uint64_t CountCandidates(const v1::LedgerEntry& entry) {
  uint64_t count = 0;
  for (const auto& query : entry.queries()) count += query.candidates_size();
  return count;
}

bool Incomplete(const v1::LedgerEntry& entry) {
  return entry.outcome() == v1::OUTCOME_ANSWERED_PARTIAL || entry.outcome() == v1::OUTCOME_FAILED ||
         entry.coverage().shards_answered() < entry.coverage().shards_total();
}

}  // namespace

std::string WarrantKey(const std::string& issuer, const std::string& warrant_id) {
  return absl::StrCat(issuer, "\n", warrant_id);
}

void ReportData::Add(uint64_t index, std::string_view bytes, v1::LedgerEntry entry) {
  ++entries_matched;
  EntryRow row;
  row.index = index;
  row.leaf = ledger::HashLeaf(bytes);
  row.candidates = CountCandidates(entry);
  for (auto& query : *entry.mutable_queries()) query.clear_candidates();
  if (entry.kind() == v1::ENTRY_KIND_ADMIN) {
    if (entry.admin().action() == "erase" && entry.outcome() == v1::OUTCOME_APPLIED) {
      ++erasures;
      erased_ids += static_cast<uint64_t>(entry.admin().ids_size());
    }
    row.entry = std::move(entry);
    admin.Add(std::move(row));
    return;
  }

  auto found = cases.find(entry.case_number());
  if (found == cases.end()) {
    if (cases.size() >= limits.max_cases) {
      ++cases_not_shown_entries;
      return;
    }
    found = cases.emplace(entry.case_number(), CaseData(limits)).first;
  }
  CaseData& data = found->second;
  ++data.entries;

  // The warrant, when one verified (a refusal before that has no issuer or id).
  WarrantUse* warrant = nullptr;
  if (!entry.warrant_id().empty() || !entry.issuer().empty()) {
    const std::string key = WarrantKey(entry.issuer(), entry.warrant_id());
    auto it = data.warrants.find(key);
    if (it == data.warrants.end() && data.warrants.size() < limits.max_warrants_per_case) {
      WarrantUse use;
      use.issuer = entry.issuer();
      use.warrant_id = entry.warrant_id();
      use.purpose = entry.purpose();
      use.first_used = entry.time_unix_micros();
      it = data.warrants.emplace(key, std::move(use)).first;
    }
    if (it != data.warrants.end()) {
      warrant = &it->second;
    } else {
      ++data.warrants_not_listed;
    }
  }
  if (warrant != nullptr) {
    warrant->last_used = std::max(warrant->last_used, entry.time_unix_micros());
    if (entry.has_warrant_terms()) {
      warrant->terms = entry.warrant_terms();
      warrant->has_terms = true;
    }
    if (warrant->investigators.size() < 8) {
      const std::string& who = entry.investigator().sub().empty()
                                   ? entry.investigator().tls_identity()
                                   : entry.investigator().sub();
      if (!who.empty()) warrant->investigators.insert(who);
    }
  }

  const int64_t hour = entry.time_unix_micros() / kMicrosPerHour;
  row.entry = std::move(entry);
  const v1::LedgerEntry& kept = row.entry;
  switch (kept.kind()) {
    case v1::ENTRY_KIND_SEARCH:
      if (warrant != nullptr) ++warrant->searches;
      ++data.per_hour[hour].first;
      data.candidates += row.candidates;
      if (Incomplete(kept)) data.incomplete.Add(row);
      data.searches.Add(std::move(row));
      break;
    case v1::ENTRY_KIND_REFUSAL: {
      if (warrant != nullptr) ++warrant->refusals;
      ++data.per_hour[hour].second;
      std::string code = kept.refusal().code();
      if (data.refusals_by_code.size() >= kMaxRefusalCodes && !data.refusals_by_code.count(code)) {
        code = "(other codes)";
      }
      ++data.refusals_by_code[code];
      data.refusals.Add(std::move(row));
      break;
    }
    case v1::ENTRY_KIND_REVIEW: {
      if (warrant != nullptr) ++warrant->reviews;
      for (const auto& review : kept.review().candidates()) {
        ++data.reviewed_candidates;
        if (review.outcome() == v1::REVIEW_OUTCOME_KEPT) ++data.kept;
        if (review.outcome() == v1::REVIEW_OUTCOME_REJECTED) ++data.rejected;
      }
      // Beside the search it reviews, when that search's row is shown.
      const uint64_t search = kept.review().search_entry_index();
      data.searches.ForEach([&](EntryRow& shown) {
        if (shown.index == search && shown.review_entries.size() < 16) {
          shown.review_entries.push_back(row.index);
        }
      });
      data.reviews.Add(std::move(row));
      break;
    }
    default:
      break;
  }
}

void ReportData::ChargeBudget(const v1::LedgerEntry& entry) {
  if (entry.kind() != v1::ENTRY_KIND_SEARCH) return;
  auto found = cases.find(entry.case_number());
  if (found == cases.end()) return;
  auto it = found->second.warrants.find(WarrantKey(entry.issuer(), entry.warrant_id()));
  if (it != found->second.warrants.end()) it->second.budget_used += entry.query_count();
}

std::set<uint64_t> ReportData::ShownIndices() {
  std::set<uint64_t> shown;
  auto add = [&](EntryRow& row) { shown.insert(row.index); };
  admin.ForEach(add);
  for (auto& [name, data] : cases) {
    data.searches.ForEach(add);
    data.refusals.ForEach(add);
    data.incomplete.ForEach(add);
    data.reviews.ForEach(add);
  }
  return shown;
}

}  // namespace probity::report::internal
