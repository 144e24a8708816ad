#pragma once

// The oversight report: from a ledger directory, one self-contained HTML page (no scripts, no
// fetches, charts as inline SVG) that shows per case the warrants used, searches over time,
// refusals by reason, candidates per search, searches with incomplete coverage and human
// reviews, plus the admin actions (erasures first) with their reasons. Every row names its
// ledger index, and the page carries the signed checkpoint the ledger was verified against and
// the RFC 6962 inclusion proof of every entry it shows, so a reader can check each row with
// any RFC 6962 verifier.
//
// It reports only on a ledger that verifies: the whole log is re-hashed and every commit
// marker's signature checked first (VerifyLedger), and any problem refuses the report.
//
// Size: each table of a case shows its first and last `rows_per_table` rows (the count of the
// rows between is stated), at most `max_cases` cases are shown (the entries of the others are
// counted), so the page and its proofs stay bounded however large the ledger is; filters
// narrow it to what an auditor looks at.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "probity/ledger/note.h"
#include "probity/v1/ledger_entry.pb.h"

namespace probity::report {

struct ReportFilter {
  std::string case_number;                   // exact; empty: every case
  std::string warrant_id;                    // the warrant's jti; empty: every warrant
  std::string investigator;                  // the warrant's subject or the caller's TLS identity
  std::optional<int64_t> since_unix_micros;  // entries at or after
  std::optional<int64_t> until_unix_micros;  // entries before

  // Search, refusal and review entries must match every filter given. Admin actions change
  // what every case searches, so they match on time alone.
  bool Matches(const v1::LedgerEntry& entry) const;
  std::string Describe() const;  // "case X, investigator Y, since ..." or "none"
};

struct ReportLimits {
  size_t rows_per_table = 10;  // first and last N rows of each table
  size_t max_cases = 20;       // cases beyond are counted, not shown
  size_t max_warrants_per_case = 20;
  size_t max_candidate_reviews_per_row = 20;
};

struct ReportOptions {
  std::filesystem::path ledger_dir;
  std::string origin;  // the checkpoints' expected origin; empty: any
  ReportFilter filter;
  ReportLimits limits;
  int64_t generated_at_unix_micros = 0;  // printed in the page header
};

// Verifies the ledger with `verifier` (the log's published key) and renders the report.
// FAILED_PRECONDITION (naming the first problem) when the ledger does not verify; other errors
// when it cannot be read.
absl::StatusOr<std::string> RenderReport(const ReportOptions& options,
                                         const ledger::NoteVerifier& verifier);

}  // namespace probity::report
