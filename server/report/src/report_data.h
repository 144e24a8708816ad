#pragma once

// What the report shows, collected in one pass over the verified entries, bounded whatever the
// ledger's size: per table the first and last N rows and a count of the rest.

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "probity/ledger/ledger.h"
#include "probity/report/report.h"
#include "probity/v1/ledger_entry.pb.h"

namespace probity::report::internal {

// The first and last `keep` of the rows added, and how many fell between.
template <typename Row>
class BoundedRows {
 public:
  explicit BoundedRows(size_t keep) : keep_(keep) {}
  void Add(Row row) {
    ++total_;
    if (first_.size() < keep_) {
      first_.push_back(std::move(row));
      return;
    }
    last_.push_back(std::move(row));
    if (last_.size() > keep_) last_.pop_front();
  }
  uint64_t total() const { return total_; }
  uint64_t left_out() const { return total_ - first_.size() - last_.size(); }
  const std::vector<Row>& first() const { return first_; }
  const std::deque<Row>& last() const { return last_; }
  template <typename Visit>
  void ForEach(Visit visit) {
    for (Row& row : first_) visit(row);
    for (Row& row : last_) visit(row);
  }

 private:
  size_t keep_;
  uint64_t total_ = 0;
  std::vector<Row> first_;
  std::deque<Row> last_;
};

// The fields of an entry a row shows, with its leaf hash (from the bytes read) for the proof.
struct EntryRow {
  uint64_t index = 0;
  ledger::Hash leaf{};
  v1::LedgerEntry entry;  // queries' candidates dropped: only their counts are shown
  uint64_t candidates = 0;
  std::vector<uint64_t> review_entries;  // REVIEW entries about this search, shown beside it
};

struct WarrantUse {
  std::string issuer, warrant_id, purpose;
  std::set<std::string> investigators;  // bounded by the case's rows: at most a few
  v1::WarrantTerms terms;               // from the latest entry that recorded them
  bool has_terms = false;
  int64_t first_used = 0, last_used = 0;
  uint64_t searches = 0, refusals = 0, reviews = 0;
  uint64_t budget_used = 0;  // query_count of every SEARCH entry of this warrant, whole ledger
};

struct CaseData {
  explicit CaseData(const ReportLimits& limits)
      : searches(limits.rows_per_table),
        refusals(limits.rows_per_table),
        incomplete(limits.rows_per_table),
        reviews(limits.rows_per_table) {}
  uint64_t entries = 0, candidates = 0, reviewed_candidates = 0, kept = 0, rejected = 0;
  std::map<std::string, uint64_t> refusals_by_code;
  std::map<std::string, WarrantUse> warrants;  // by issuer '\n' jti
  uint64_t warrants_not_listed = 0;
  std::map<int64_t, std::pair<uint64_t, uint64_t>> per_hour;  // searches, refusals
  BoundedRows<EntryRow> searches, refusals, incomplete, reviews;
};

struct ReportData {
  explicit ReportData(const ReportLimits& limits) : limits(limits), admin(limits.rows_per_table) {}
  ReportLimits limits;
  uint64_t tree_size = 0;
  uint64_t entries_matched = 0;
  std::map<std::string, CaseData> cases;  // by case number ("" = no verified warrant)
  uint64_t cases_not_shown_entries = 0;   // entries of cases beyond max_cases
  BoundedRows<EntryRow> admin;
  uint64_t erasures = 0, erased_ids = 0;

  // Adds one verified entry that matched the filter.
  void Add(uint64_t index, std::string_view bytes, v1::LedgerEntry entry);
  // Charges every SEARCH entry (matched or not) to the warrants listed: budget used is over
  // the warrant's whole life, not the filter's window.
  void ChargeBudget(const v1::LedgerEntry& entry);
  // Every ledger index a row shows.
  std::set<uint64_t> ShownIndices();
};

std::string WarrantKey(const std::string& issuer, const std::string& warrant_id);

}  // namespace probity::report::internal
